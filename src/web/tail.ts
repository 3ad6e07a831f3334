import type { ServerResponse } from 'node:http';
import { compileFilter, matchesRecord, type AuditIndex, type AuditStoreState, type CompiledFilter, type QueryHit, type RecordFilter } from '../audit/index.js';
import type { Logger } from '../core/index.js';
import { isOutcome, renderDuration, renderRecordRow, renderResult } from './record-view.js';
import { PAGE_HEADERS } from './respond.js';

/**
 * `/audit/tail`: new records as server-sent events (HTML Living Standard §9.2), for the live
 * view of the records and session pages. One poller serves every open stream: while anyone
 * listens it looks for records past the last one seen (first asking the store, when it has one,
 * whether the log grew at all) and hands each subscriber what matches its filter:
 *
 * - `event: record`, `id: <seq>`, data `{ seq, html }`: a new row, rendered by the same code as
 *   the pages;
 * - `event: result`, data `{ ref, result, duration }`: an outcome record for the row `ref`;
 * - `event: revoked`, data `{ reason, message }`: the last event of a stream whose caller lost
 *   access (see {@link TailAccess}); the response ends after it.
 *
 * A reconnecting EventSource sends `Last-Event-ID`, and the stream resumes after it.
 *
 * Access is decided when a stream opens, and that is not enough for a stream that stays open for
 * hours: a config reload can take the caller's permission away, their login can expire or be
 * signed out, and the IdP can change their groups. So each subscriber's access is checked again
 * before every flush of records to it (once per flush, not per record), and on the poller's own
 * timer at least every `accessCheckMs` when nothing arrives; a caller who fails the check gets
 * `revoked` and nothing more. A stream whose session the gateway is due to refresh (re-reading
 * the groups) ends with no event instead ({@link TailReconnect}): the EventSource reconnects,
 * and the gateway authenticates that request as any other.
 */

export interface TailOptions {
  readonly index: AuditIndex;
  /** The live store: polling skips the index while the log has not grown. */
  readonly store?: { state(): Pick<AuditStoreState, 'size'> };
  readonly logger?: Logger;
  /** Default 500 ms. */
  readonly pollMs?: number;
  /** Open streams at most; default 64. */
  readonly maxSubscribers?: number;
  /** Open streams of one viewer at most; default 8, so that one reviewer cannot take every slot. */
  readonly maxPerViewer?: number;
  /** Access of idle streams is checked again at least this often; default 2 s. */
  readonly accessCheckMs?: number;
}

/** Why a stream was ended by its access check; stable `reason`s, a `message` the page shows. */
export interface TailRevocation {
  readonly reason: 'access-revoked' | 'session-expired' | 'token-expired' | 'logged-out';
  readonly message: string;
  /** What the log line says besides the reason: the denying decision, the expiry. */
  readonly detail: Readonly<Record<string, string | number | null>>;
}

/**
 * The caller's access is to be decided afresh by the gateway: the stream ends with no event, so
 * the EventSource reconnects (with `Last-Event-ID`) through the gateway's authentication.
 */
export interface TailReconnect {
  readonly reconnect: true;
  readonly reason: 'session-refresh';
  readonly detail: Readonly<Record<string, string | number | null>>;
}

/** Whether a stream's caller may still read the log; given by the pages when a stream opens. */
export interface TailAccess {
  /** Says who the stream is for in log lines: request id and user, never credentials. */
  readonly context: Readonly<Record<string, string>>;
  /** Decides again now: `null` while the caller may still read the log. Cheap and synchronous. */
  check(): TailRevocation | TailReconnect | null;
}

interface Subscriber {
  readonly res: ServerResponse;
  readonly filter: CompiledFilter;
  /** Outcomes go to a subscriber when they share its user, resource and session selection. */
  readonly scope: CompiledFilter;
  /** Outcome records are rows only when the filter asks for kinds. */
  readonly outcomeRows: boolean;
  readonly access: TailAccess;
  /** Who the stream is for (the principal's subject): their streams share {@link TailOptions.maxPerViewer}. */
  readonly viewer: string;
  after: number;
}

/** Buffered bytes beyond which a stream is too slow to keep up and is closed. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** A comment line this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;
/** Records delivered per poll at most; a client further behind reloads the page. */
const MAX_BATCH = 5_000;
/** A config reload or an expired login ends an idle stream within this long. */
const ACCESS_CHECK_MS = 2_000;

export class TailHub {
  readonly #index: AuditIndex;
  readonly #store: TailOptions['store'];
  readonly #logger: Logger | undefined;
  readonly #pollMs: number;
  readonly #max: number;
  readonly #maxPerViewer: number;
  readonly #accessCheckMs: number;
  readonly #subscribers = new Set<Subscriber>();
  /** The newest seq the poller has looked at; -1 before the first poll. */
  #seen = -1;
  #storeSize = -1;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  #lastBeat = 0;
  /** Streams are decided when they open, so the periodic check counts from the hub's start. */
  #lastAccessCheck = Date.now();
  #closed = false;

  constructor(options: TailOptions) {
    this.#index = options.index;
    this.#store = options.store;
    this.#logger = options.logger;
    this.#pollMs = options.pollMs ?? 500;
    this.#max = options.maxSubscribers ?? 64;
    this.#maxPerViewer = options.maxPerViewer ?? 8;
    this.#accessCheckMs = options.accessCheckMs ?? ACCESS_CHECK_MS;
  }

  /** Why `viewer` cannot open another stream now (every slot taken, or their share), or `null`. */
  refusal(viewer: string): 'full' | 'viewer-limit' | null {
    if (this.#subscribers.size >= this.#max) return 'full';
    let held = 0;
    for (const subscriber of this.#subscribers) if (subscriber.viewer === viewer) held += 1;
    return held >= this.#maxPerViewer ? 'viewer-limit' : null;
  }

  /**
   * Starts a stream on `res` of the records after seq `after` that match `filter`, for as long as
   * `access` allows; the caller has just been allowed to read the log.
   */
  async subscribe(res: ServerResponse, filter: RecordFilter, after: number, access: TailAccess, viewer: string): Promise<void> {
    const { user, resource, sessionId } = filter;
    const subscriber: Subscriber = {
      res,
      filter: compileFilter(filter),
      scope: compileFilter({ ...(user === undefined ? {} : { user }), ...(resource === undefined ? {} : { resource }), ...(sessionId === undefined ? {} : { sessionId }) }),
      outcomeRows: filter.kind !== undefined,
      access,
      viewer,
      after,
    };
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    let closed = false;
    res.once('close', () => {
      closed = true;
      this.#subscribers.delete(subscriber);
    });
    if (this.#seen < 0) {
      const newest = (await this.#index.query({ limit: 1 })).records[0]?.seq ?? -1;
      // Another subscriber, or a poll, may have moved it further meanwhile: it never goes back.
      this.#seen = Math.max(this.#seen, newest);
    }
    // What arrived between the page and this stream (or before a reconnect) comes first, up to
    // what the poller has seen; the subscriber joins the poller's deliveries once caught up.
    let upTo = after;
    while (upTo < this.#seen && !closed && !res.writableEnded) {
      const from = upTo;
      upTo = this.#seen;
      this.#deliver(subscriber, await this.#recordsAfter(from, upTo));
    }
    // Gone, revoked while catching up, or too slow.
    if (closed || res.writableEnded) return;
    if (this.#closed) {
      res.end();
      return;
    }
    this.#subscribers.add(subscriber);
    this.#schedule();
  }

  /** Ends every stream and stops polling. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#polling;
    for (const subscriber of this.#subscribers) subscriber.res.end();
    this.#subscribers.clear();
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== null || this.#polling !== null || this.#subscribers.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#polling = this.#poll()
        .catch((error: unknown) => this.#logger?.warn({ err: error }, 'audit tail poll failed'))
        .finally(() => {
          this.#polling = null;
          this.#schedule();
        });
    }, this.#pollMs);
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastAccessCheck >= this.#accessCheckMs) {
      this.#lastAccessCheck = now;
      for (const subscriber of this.#subscribers) this.#admit(subscriber);
    }
    if (now - this.#lastBeat >= HEARTBEAT_MS) {
      this.#lastBeat = now;
      for (const subscriber of this.#subscribers) this.#write(subscriber, ': keep-alive\n\n');
    }
    const size = this.#store?.state().size;
    if (size !== undefined && size === this.#storeSize) return;
    const newest = (await this.#index.query({ limit: 1 })).records[0]?.seq ?? -1;
    const seen = this.#seen;
    const fresh = newest > seen ? await this.#recordsAfter(seen, newest) : [];
    // The index reads what the store wrote and may be a little behind it: the size counts as
    // seen only once the index holds every record it counts, or the next polls would skip them.
    if (size !== undefined && newest >= size - 1) this.#storeSize = size;
    if (newest > this.#seen) this.#seen = newest;
    for (const subscriber of this.#subscribers) this.#deliver(subscriber, fresh);
  }

  /** Records with `from < seq <= upTo`, oldest first; at most the newest {@link MAX_BATCH}. */
  async #recordsAfter(from: number, upTo: number): Promise<QueryHit[]> {
    const found: QueryHit[] = [];
    let cursor = String(upTo + 1);
    while (found.length < MAX_BATCH) {
      const page = await this.#index.query({ limit: 1_000, cursor });
      const newer = page.records.filter((hit) => hit.seq > from);
      found.push(...newer);
      if (newer.length < page.records.length || page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    return found.reverse();
  }

  /**
   * Sends `hits` that concern the subscriber. Its access is decided once, right before the first
   * of them is written: the whole flush runs synchronously, so no reload can take effect between
   * that decision and the last write of the flush.
   */
  #deliver(subscriber: Subscriber, hits: readonly QueryHit[]): void {
    let admitted = false;
    const send = (text: string): boolean => {
      if (!admitted && !this.#admit(subscriber)) return false;
      admitted = true;
      this.#write(subscriber, text);
      return true;
    };
    for (const { seq, record } of hits) {
      if (seq <= subscriber.after) continue;
      if (isOutcome(record)) {
        if (record.ref !== undefined && matchesRecord(subscriber.scope, record)) {
          const data = { ref: record.ref, result: String(renderResult(record, null)), duration: String(renderDuration(record, null)) };
          if (!send(`event: result\ndata: ${JSON.stringify(data)}\n\n`)) return;
        }
        if (!subscriber.outcomeRows) continue;
      }
      if (!matchesRecord(subscriber.filter, record)) continue;
      const html = String(renderRecordRow({ seq, record, outcome: null }));
      if (!send(`id: ${seq}\nevent: record\ndata: ${JSON.stringify({ seq, html })}\n\n`)) return;
      subscriber.after = seq;
    }
  }

  /**
   * Decides the subscriber's access again; when it is gone, sends the one `revoked` event the
   * page shows and ends the stream, and when the gateway is to decide it afresh, just ends the
   * stream. True while the subscriber may still be sent records.
   */
  #admit(subscriber: Subscriber): boolean {
    const { res } = subscriber;
    if (res.writableEnded || res.destroyed) return false;
    const verdict = subscriber.access.check();
    if (verdict === null) return true;
    this.#subscribers.delete(subscriber);
    if ('reconnect' in verdict) res.end();
    else res.end(`event: revoked\ndata: ${JSON.stringify({ reason: verdict.reason, message: verdict.message })}\n\n`);
    this.#logger?.info({ ...subscriber.access.context, reason: verdict.reason, ...verdict.detail }, `audit tail ended: ${verdict.reason}`);
    return false;
  }

  #write(subscriber: Subscriber, text: string): void {
    const { res } = subscriber;
    if (res.writableEnded || res.destroyed) return;
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.#logger?.info({}, 'audit tail client too slow; stream closed');
      this.#subscribers.delete(subscriber);
      res.end();
      return;
    }
    res.write(text);
  }
}
