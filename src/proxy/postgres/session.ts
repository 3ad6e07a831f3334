import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { AppendOptions, AppendResult, AuditEvent, AuditStore, AuditValue } from '../../audit/index.js';
import type { Logger } from '../../core/index.js';
import type { Decision } from '../../policy/index.js';
import type { ClassifiedStatement } from '../../sql/index.js';
import { queryEvent, recordedParams, resultEvent, type AuditDecisionLike, type SessionFacts } from './audit-events.js';
import { errorResponse, fatalResponse, protocolViolation } from './errors.js';
import { truncateIdentifier } from './identifier.js';
import { GATEWAY_DECISIONS, REFUSED_QUERY, refusedParse, type PreparedEntry, type StatementGate } from './intercept.js';
import type { PgMetrics } from './metrics.js';
import {
  encodeFlush,
  encodeTerminate,
  SQLSTATE,
  type BackendMessage,
  type BackendReader,
  type Execute,
  type FrontendMessage,
  type FrontendReader,
  type ProtocolError,
  type SSLResponse,
} from './protocol/index.js';
import { unsafeReadingSetting } from './upstream.js';

/** An append whose outcome is read synchronously once settled (see {@link whenSettled}). */
class TrackedAppend {
  seq = -1;
  failed = false;
  settled = false;
  /** The one batch waiting on this append; each append is waited on by the batch that made it. */
  waiter: (() => void) | null = null;

  constructor(promise: Promise<AppendResult>) {
    promise.then(
      (result) => {
        this.seq = result.seq;
        this.#settle();
      },
      () => {
        this.failed = true;
        this.#settle();
      },
    );
  }

  #settle(): void {
    this.settled = true;
    this.waiter?.();
  }
}

/** Resolves once every append of a decision batch (never empty) has settled: one promise per batch, not one per record. */
function whenSettled(appends: readonly TrackedAppend[]): Promise<void> {
  return new Promise((resolve) => {
    let left = appends.length;
    const one = (): void => {
      left -= 1;
      if (left === 0) resolve();
    };
    for (const append of appends) {
      if (append.settled) one();
      else append.waiter = one;
    }
  });
}

/** One forwarded statement, from its `pg.query` record to its `pg.result`. */
interface StatementRun {
  /** Seq of the `pg.query` record; set when the record is durable. */
  ref: number;
  startedAt: number;
  rows: number;
  copyBytes: number | undefined;
  done: boolean;
}

type ExpectKind = 'query' | 'parse' | 'bind' | 'describe' | 'execute' | 'close' | 'sync';

/**
 * What the upstream owes the client for one forwarded message (PostgreSQL docs §55.2.2 "Simple
 * Query", §55.2.3 "Extended Query"): the session walks the backend stream against a queue of
 * these to attribute results to statements, to find the errors that stand in for refused
 * messages, and to know which messages the server skips after an error.
 */
class Expectation {
  /** The statements of a Query; the `index` one is the one running. */
  index = 0;
  constructor(
    readonly kind: ExpectKind,
    readonly runs: StatementRun[] | null,
    /** The gateway's ErrorResponse that replaces the server's answer to a refused message. */
    readonly refusal: Buffer | null,
    /** Changes to the prepared-statement table that wait on the server's answer, by statement index. */
    readonly changes: (PreparedChange[] | null)[] | null,
  ) {}
}

/**
 * A change to the gateway's prepared-statement table tied to one statement, so that the table
 * follows what the server did rather than what the client asked for:
 * - `add`: registered when decided (a pipelined Bind or EXECUTE needs its facts), undone when
 *   the statement fails or is skipped;
 * - `add-on-success`: registered once the server confirms it (a PREPARE of a name that an
 *   earlier statement of the same Query deallocates);
 * - `remove`: forgotten once the server confirms it (CloseComplete, DEALLOCATE's
 *   CommandComplete), kept when the statement fails or is skipped.
 * The entry is compared by identity, so a change never touches a later statement of the same name.
 */
interface PreparedChange {
  readonly op: 'add' | 'add-on-success' | 'remove';
  readonly name: string;
  readonly entry: PreparedEntry;
}

const EXPECT_BIND = new Expectation('bind', null, null, null);
const EXPECT_DESCRIBE = new Expectation('describe', null, null, null);
const EXPECT_CLOSE = new Expectation('close', null, null, null);
const EXPECT_SYNC = new Expectation('sync', null, null, null);

/** One client message after its decision, written upstream once its records are durable. */
interface Action {
  readonly raw: Buffer;
  readonly expect: Expectation | null;
  /** `pg.query` records that must be durable before `raw` may be forwarded. */
  readonly audits: TrackedAppend[] | null;
  /** Part of an extended-protocol batch (Sync-terminated). */
  readonly extended: boolean;
  readonly sync: boolean;
}

interface PortalEntry {
  readonly statementName: string;
  readonly entry: PreparedEntry | undefined;
  /** The Bind's parameter values as recorded (copies: a portal must not pin the client's buffers). */
  readonly params: AuditValue[] | undefined;
}

export interface SessionEnd {
  readonly closedBy: 'client' | 'upstream' | 'gateway';
  readonly reason: string | undefined;
}

export interface SessionOptions {
  readonly client: Duplex;
  /** In tagged mode, possibly holding bytes that followed the startup. */
  readonly clientReader: FrontendReader;
  readonly upstream: Duplex;
  readonly upstreamReader: BackendReader;
  readonly gate: StatementGate;
  readonly audit: AuditStore;
  readonly facts: SessionFacts;
  readonly redactParameters: boolean;
  readonly metrics: PgMetrics;
  readonly logger: Logger;
}

const DEFER: AppendOptions = { defer: true };

/** Stands for "every name" among the names a Query deletes (DEALLOCATE ALL, DISCARD ALL). */
const ALL_STATEMENTS = Symbol('all prepared statements');

/** The protocol-level portal a SQL `FETCH`/`MOVE` reads, with the decision made for it. */
interface PortalTarget {
  readonly portal: string;
  readonly statementName: string;
  /** The FETCH as recorded: its own text, with the facts of the portal's statement. */
  readonly statement: ClassifiedStatement;
  readonly decision: Decision | AuditDecisionLike;
}

/**
 * Whether running a statement may change a setting that decides how the server reads SQL text.
 * Only a read that touches no table and names no function runs nothing that could: SET,
 * set_config, an UPDATE of pg_settings and triggers may, and so may any table, since a view,
 * row-level security policy, attribute-notation call, operator, cast or domain check on it can
 * run a function the syntax does not show. A FETCH from a SQL cursor runs a query decided at its
 * DECLARE, whose facts are not at hand.
 */
function mayChangeSettings(statement: ClassifiedStatement, cursor: PortalTarget | null): boolean {
  if (statement.class !== 'read' || statement.tables.length > 0 || statement.functions.length > 0 || (statement.possibleFunctions?.length ?? 0) > 0) return true;
  return cursor === null && (statement.command === 'FETCH' || statement.command === 'MOVE');
}

/**
 * Whether the server could read `sql` differently once `standard_conforming_strings` or
 * `client_encoding` changed: only a backslash (escapes in string literals) or a non-ASCII
 * character (multi-byte decoding) is read differently; plain ASCII text is read the same.
 */
function readsDependOnSettings(sql: string): boolean {
  return /[\\\u0080-\uffff]/.test(sql);
}

/** Messages drained from the client per decision batch, to bound the work between two awaits. */
const MAX_BATCH = 256;
/** Client bytes buffered while a batch waits for the audit log before the client is paused. */
const CLIENT_HIGH_WATER = 1024 * 1024;
/** Named portals kept at most; a client that never closes them cannot grow the map without end. */
const MAX_PORTALS = 10_000;
/** How long a closing connection may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * The relay of one authenticated session (DESIGN.md §2 "Postgres access").
 *
 * Client → upstream: messages are framed, and each `Query`, `Parse` and `Execute` is classified,
 * decided, and recorded (`pg.query`); the raw bytes are forwarded, unchanged and in order, once
 * the records of everything in the batch are durable. Messages drained together share one wait,
 * so pipelined statements share a group commit. A refused message is replaced by
 * {@link REFUSED_QUERY} or {@link refusedParse}, whose server error the backend side swaps for
 * the gateway's own ErrorResponse.
 *
 * Upstream → client: bytes are forwarded as they arrive, never re-encoded; the reader skips row
 * and COPY bodies and looks only at the messages that end statements, so the backend stream is
 * held back only for an incomplete message header, never for a row.
 */
export class Session {
  readonly #o: SessionOptions;
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #clientReader: FrontendReader;
  readonly #upstreamReader: BackendReader;
  readonly #gate: StatementGate;
  readonly #allowedStatements: ReturnType<PgMetrics['statements']['labels']>;

  // Backend expectations, oldest first, from #head.
  #queue: Expectation[] = [];
  #head = 0;
  readonly #prepared = new Map<string, PreparedEntry>();
  readonly #portals = new Map<string, PortalEntry>();
  /** Prepared statements whose deletion was forwarded and not yet answered, with how many are pending. */
  readonly #pendingDeletes = new Map<string, number>();
  /**
   * Session-settings barrier. Messages that end in a ReadyForQuery (Query, Sync) are counted as
   * decided and as answered; SQL text decided after the `#barrierUntil`-th one waits until it is
   * answered, because the server reports a changed setting (ParameterStatus) just before that
   * ReadyForQuery (PostgreSQL docs §55.2.7 "Asynchronous Operations").
   */
  #rfqDecided = 0;
  #rfqAnswered = 0;
  #barrierUntil = 0;
  /** A client message taken from the reader and held, undecided, until {@link #mustHold} clears. */
  #stalled: FrontendMessage | null = null;
  #wake: (() => void) | null = null;
  /** The last message written upstream is an extended-protocol one not yet followed by Sync. */
  #unsynced = false;
  /** Decision side: drop client messages until Sync (after a refusal in the extended protocol). */
  #clientSkipping = false;
  /** Write side: the server is skipping until Sync, so nothing but Sync is worth sending. */
  #upstreamSkipping = false;
  /** The statement whose COPY data is streaming. */
  #copyRun: StatementRun | null = null;

  // Backend bytes received but not yet forwarded (the tail of an incomplete message).
  #held: Buffer[] = [];
  #heldStart = 0;
  #received = 0;

  #busy = false;
  #closed = false;
  /** Client reading is paused while the upstream socket's buffer drains. */
  #pausedForUpstream = false;
  /** Client reading is paused while a batch waits and too many client bytes are buffered. */
  #pausedForBuffer = false;
  #sawUpstreamFatal = false;
  #lastActivity = performance.now();
  readonly #done: Promise<SessionEnd>;
  #resolveDone!: (end: SessionEnd) => void;

  /** Statements forwarded, statements refused, and bytes relayed each way: the `pg.disconnect` totals. */
  statements = 0;
  denied = 0;
  bytesIn = 0;
  bytesOut = 0;

  constructor(options: SessionOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#upstream = options.upstream;
    this.#clientReader = options.clientReader;
    this.#upstreamReader = options.upstreamReader;
    this.#gate = options.gate;
    this.#allowedStatements = options.metrics.statements.labels(options.facts.resource, 'allow');
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /**
   * Resolves when both connections are closed. Every `pg.result` record of the session has been
   * appended by then, in order; the deferred ones become durable with the next record that
   * starts a write, such as the gateway's `pg.disconnect`.
   */
  get done(): Promise<SessionEnd> {
    return this.#done;
  }

  /** Starts relaying; the caller has already sent the client its ReadyForQuery. */
  start(): void {
    const client = this.#client;
    const upstream = this.#upstream;
    client.on('data', this.#onClientData);
    client.on('end', () => this.#close('client', 'client closed the connection', null));
    client.on('close', () => this.#close('client', 'client closed the connection', null));
    client.on('error', (error: Error) => this.#close('client', `client connection error: ${error.message}`, null));
    client.on('drain', () => upstream.resume());
    upstream.on('data', this.#onUpstreamData);
    upstream.on('end', () => this.#upstreamGone('upstream closed the connection'));
    upstream.on('close', () => this.#upstreamGone('upstream closed the connection'));
    upstream.on('error', (error: Error) => this.#upstreamGone(`upstream connection error: ${error.message}`));
    upstream.on('drain', () => {
      this.#pausedForUpstream = false;
      this.#updateClientFlow();
    });
    upstream.resume();
    client.resume();
    if (this.#clientReader.bufferedBytes > 0) void this.#pump();
  }

  /** Ends an idle session (no client message and nothing outstanding for `idleMs`), as idle_session_timeout does. */
  closeIfIdle(now: number, idleMs: number): void {
    if (this.#closed || this.#busy || this.#head < this.#queue.length || now - this.#lastActivity < idleMs) return;
    this.#close('gateway', 'idle timeout', fatalResponse({ code: SQLSTATE.idle_session_timeout, message: 'terminating connection due to idle timeout' }));
  }

  /** Ends the session from the gateway's side (shutdown). */
  terminate(reason: string): void {
    this.#close('gateway', reason, fatalResponse({ code: SQLSTATE.admin_shutdown, message: `terminating connection: ${reason}` }));
  }

  // ---- client → upstream ------------------------------------------------------------------

  readonly #onClientData = (chunk: Buffer): void => {
    this.bytesIn += chunk.length;
    this.#lastActivity = performance.now();
    this.#clientReader.push(chunk);
    if (this.#busy) {
      if (this.#clientReader.bufferedBytes > CLIENT_HIGH_WATER && !this.#pausedForBuffer) {
        this.#pausedForBuffer = true;
        this.#updateClientFlow();
      }
      return;
    }
    void this.#pump();
  };

  async #pump(): Promise<void> {
    this.#busy = true;
    try {
      while (!this.#closed) {
        const actions: Action[] = [];
        const waits: TrackedAppend[] = [];
        let failure: ProtocolError | null = null;
        let terminate = false;
        while (actions.length < MAX_BATCH) {
          const message = this.#stalled ?? this.#clientReader.next();
          if (message === undefined) break;
          if (message.type === 'ProtocolError') {
            failure = message;
            break;
          }
          if (message.type === 'Terminate') {
            terminate = true;
            break;
          }
          if (this.#mustHold(message)) {
            this.#stalled = message;
            break;
          }
          this.#stalled = null;
          const problem = this.#decide(message, actions, waits);
          if (problem !== null) {
            failure = problem;
            break;
          }
        }
        if (actions.length === 0 && failure === null && !terminate && this.#stalled === null) break;
        if (waits.length > 0) {
          const started = performance.now();
          await whenSettled(waits);
          this.#o.metrics.auditAppend.observe((performance.now() - started) / 1000);
          if (this.#closed) return;
        }
        this.#flush(actions);
        if (terminate) {
          this.#close('client', 'client sent Terminate', null);
          return;
        }
        if (failure !== null) {
          this.#o.metrics.protocolErrors.labels('client').inc();
          this.#close('gateway', `protocol violation: ${failure.message}`, protocolViolation(failure.message));
          return;
        }
        if (this.#stalled !== null) {
          await this.#untilAnswered(this.#stalled);
          if (this.#closed) return;
        }
      }
    } catch (error) {
      this.#o.logger.error({ err: error }, 'postgres session failed');
      this.#close('gateway', 'internal error', fatalResponse({ code: SQLSTATE.internal_error, message: 'internal error in the gateway; the session is closed' }));
    } finally {
      this.#busy = false;
      if (this.#pausedForBuffer) {
        this.#pausedForBuffer = false;
        this.#updateClientFlow();
      }
    }
  }

  /**
   * Whether a message must wait, undecided, for the server's answer to what was forwarded before
   * it: SQL text (Query, Parse) while a statement that may have changed how the server reads SQL
   * (`standard_conforming_strings`, `client_encoding`) is unanswered; and a Parse or PREPARE of a
   * name whose deletion the server has not confirmed, which would otherwise be decided against a
   * statement the server may still hold.
   */
  #mustHold(message: FrontendMessage): boolean {
    if (message.type !== 'Query' && message.type !== 'Parse' && message.type !== 'Execute') return false;
    if (message.type !== 'Execute' && this.#rfqDecided >= this.#barrierUntil && this.#rfqAnswered < this.#barrierUntil) return true;
    if (this.#pendingDeletes.size === 0 || this.#clientSkipping || this.#upstreamSkipping) return false;
    switch (message.type) {
      case 'Parse':
        return message.name !== '' && this.#pendingDeletes.has(message.name);
      case 'Execute': {
        const op = this.#portals.get(truncateIdentifier(message.portal))?.entry?.statement?.prepared;
        return op?.op === 'prepare' && this.#pendingDeletes.has(op.name);
      }
      default: {
        const classified = this.#gate.classify(message.sql, this.#prepared);
        return classified.ok && classified.statements.some((statement) => statement.prepared?.op === 'prepare' && this.#pendingDeletes.has(statement.prepared.name));
      }
    }
  }

  /** Waits until `message` need not be held any more (or the session closed). */
  async #untilAnswered(message: FrontendMessage): Promise<void> {
    // §55.2.3: the server buffers its answers until Sync or Flush; a held message must not wait on a Sync it is itself ahead of.
    if (this.#unsynced) {
      this.#unsynced = false;
      this.#writeUpstream(encodeFlush());
    }
    while (!this.#closed && this.#mustHold(message)) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Decides one client message into `actions`; returns a protocol error for an unexpected one. */
  #decide(message: FrontendMessage, actions: Action[], waits: TrackedAppend[]): ProtocolError | null {
    if (message.type === 'Sync') {
      this.#clientSkipping = false;
      this.#rfqDecided += 1;
      actions.push({ raw: message.raw, expect: EXPECT_SYNC, audits: null, extended: true, sync: true });
      return null;
    }
    // §55.2.3: after an error the server discards extended-protocol messages until Sync; so does the gateway.
    if (this.#clientSkipping || this.#upstreamSkipping) return null;
    switch (message.type) {
      case 'Query':
        this.#decideQuery(message.sql, message.raw, actions, waits);
        return null;
      case 'Parse':
        this.#decideParse(message.name, message.sql, message.raw, actions, waits);
        return null;
      case 'Bind': {
        // The server keys portals by their first 63 bytes (NAMEDATALEN - 1), as FETCH reads them.
        const portal = truncateIdentifier(message.portal);
        if (this.#portals.size >= MAX_PORTALS && !this.#portals.has(portal)) {
          this.#portals.delete(this.#portals.keys().next().value as string);
        }
        const params = this.#o.redactParameters || message.params.length === 0 ? undefined : recordedParams(message.params, message.paramFormats);
        this.#portals.set(portal, { statementName: message.statement, entry: this.#prepared.get(message.statement), params });
        actions.push({ raw: message.raw, expect: EXPECT_BIND, audits: null, extended: true, sync: false });
        return null;
      }
      case 'Execute':
        this.#decideExecute(message, actions, waits);
        return null;
      case 'Describe':
        actions.push({ raw: message.raw, expect: EXPECT_DESCRIBE, audits: null, extended: true, sync: false });
        return null;
      case 'Close': {
        let expect = EXPECT_CLOSE;
        if (message.target === 'statement') {
          const entry = this.#prepared.get(message.name);
          if (entry !== undefined) expect = new Expectation('close', null, null, [[this.#removal(message.name, entry)]]);
        } else {
          this.#portals.delete(truncateIdentifier(message.name));
        }
        actions.push({ raw: message.raw, expect, audits: null, extended: true, sync: false });
        return null;
      }
      case 'Flush':
        actions.push({ raw: message.raw, expect: null, audits: null, extended: true, sync: false });
        return null;
      case 'CopyData':
        if (this.#copyRun !== null) this.#copyRun.copyBytes = (this.#copyRun.copyBytes ?? 0) + message.data.length;
        actions.push({ raw: message.raw, expect: null, audits: null, extended: false, sync: false });
        return null;
      case 'CopyDone':
      case 'CopyFail':
        actions.push({ raw: message.raw, expect: null, audits: null, extended: false, sync: false });
        return null;
      case 'FunctionCall': {
        const denial = this.#record(queryEvent({ session: this.#o.facts, decision: GATEWAY_DECISIONS.fastpath, protocol: 'fastpath', statement: null, functionOid: message.functionOid }));
        this.#refuse(REFUSED_QUERY, this.#gate.fastpath(), false, [denial], actions, waits);
        return null;
      }
      default:
        return { type: 'ProtocolError', code: 'unknown-message-type', message: `unexpected ${message.type} message during a session` };
    }
  }

  #decideQuery(sql: string, raw: Buffer, actions: Action[], waits: TrackedAppend[]): void {
    const facts = this.#o.facts;
    if (this.#refusedForSettings(sql, 'simple', undefined, actions, waits)) return;
    const classified = this.#gate.classify(sql, this.#prepared);
    if (!classified.ok) {
      const { reply, decision } = this.#gate.unclassified(classified.error);
      const denial = this.#record(queryEvent({ session: facts, decision, protocol: 'simple', statement: null, text: sql, unclassified: classified.error.kind }));
      this.#refuse(REFUSED_QUERY, reply, false, [denial], actions, waits);
      return;
    }
    const statements = classified.statements;
    if (statements.length === 0) {
      // An empty query string runs nothing; the server answers EmptyQueryResponse.
      this.#rfqDecided += 1;
      actions.push({ raw, expect: new Expectation('query', [], null, null), audits: null, extended: false, sync: false });
      return;
    }
    const count = statements.length;
    const decisions: (Decision | AuditDecisionLike)[] = new Array<Decision | AuditDecisionLike>(count);
    const recorded: ClassifiedStatement[] = new Array<ClassifiedStatement>(count);
    const cursors: (PortalTarget | null)[] = new Array<PortalTarget | null>(count);
    let refusal: { decision: Decision | AuditDecisionLike; statement: ClassifiedStatement; portal: string | null } | null = null;
    for (let i = 0; i < count; i++) {
      const statement = statements[i] as ClassifiedStatement;
      const cursor = this.#cursorTarget(statement);
      cursors[i] = cursor;
      recorded[i] = cursor?.statement ?? statement;
      const decision = cursor === null ? this.#gate.decide(statement) : cursor.decision;
      decisions[i] = decision;
      if (refusal === null && decision.effect === 'deny') refusal = { decision, statement: recorded[i] as ClassifiedStatement, portal: cursor?.portal ?? null };
    }
    const records: TrackedAppend[] = new Array<TrackedAppend>(count);
    for (let i = 0; i < count; i++) {
      // A multi-statement Query is refused whole when any part is denied, so every part's record says deny.
      const decision = refusal === null ? (decisions[i] as Decision) : refusal.decision;
      const cursor = cursors[i] as PortalTarget | null;
      records[i] = this.#record(
        queryEvent({
          session: facts,
          decision,
          protocol: 'simple',
          statement: recorded[i] as ClassifiedStatement,
          index: i,
          count,
          ...(cursor === null ? {} : { portal: cursor.portal, statementName: cursor.statementName }),
        }),
      );
    }
    if (refusal !== null) {
      const reply = refusal.portal !== null && refusal.decision === GATEWAY_DECISIONS.unknownPortal ? this.#gate.unknownPortal(refusal.portal) : this.#gate.denial(refusal.decision as Decision, refusal.statement);
      this.#refuse(REFUSED_QUERY, reply, false, records, actions, waits);
      return;
    }
    const runs: StatementRun[] = new Array<StatementRun>(count);
    let changes: (PreparedChange[] | null)[] | null = null;
    let removing: Set<string | symbol> | null = null;
    let suspect = false;
    for (let i = 0; i < count; i++) {
      runs[i] = { ref: -1, startedAt: 0, rows: 0, copyBytes: undefined, done: false };
      const statement = recorded[i] as ClassifiedStatement;
      if (!suspect && mayChangeSettings(statement, cursors[i] as PortalTarget | null)) suspect = true;
      if (statement.prepared === null) continue;
      removing ??= new Set<string | symbol>();
      const change = this.#trackSqlPrepared(statement, removing);
      if (change !== null) (changes ??= new Array<PreparedChange[] | null>(count).fill(null))[i] = change;
    }
    this.#rfqDecided += 1;
    if (suspect) this.#barrierUntil = this.#rfqDecided;
    for (const record of records) waits.push(record);
    actions.push({ raw, expect: new Expectation('query', runs, null, changes), audits: records, extended: false, sync: false });
  }

  /**
   * A `FETCH` or `MOVE` (SQL) that names a protocol-level portal runs that portal's statement
   * (PostgreSQL docs §55.2.3: a portal is a cursor), so it is decided with that statement's facts
   * under the policy in force, as an Execute of the portal is. A cursor the gateway did not bind
   * is a SQL `DECLARE` cursor, whose query was decided at DECLARE: `null`, decided as classified.
   */
  #cursorTarget(statement: ClassifiedStatement): PortalTarget | null {
    if (statement.command !== 'FETCH' && statement.command !== 'MOVE') return null;
    if (this.#portals.size === 0 || (this.#portals.size === 1 && this.#portals.has(''))) return null;
    const name = statement.cursor ?? null;
    const portal = name === null ? undefined : this.#portals.get(name);
    if (name !== null && portal === undefined) return null;
    const entry = portal?.entry;
    if (name === null || portal === undefined || entry === undefined) {
      // Fail closed: a FETCH whose cursor the parser did not name, or a portal bound to a statement it never checked.
      return { portal: name ?? '', statementName: portal?.statementName ?? '', statement, decision: GATEWAY_DECISIONS.unknownPortal };
    }
    const inner = entry.statement;
    return {
      portal: name,
      statementName: portal.statementName,
      statement: { ...statement, class: entry.class, tables: entry.tables, functions: entry.functions, possibleFunctions: entry.possibleFunctions ?? [] },
      decision: inner === null ? this.#gate.decide(statement) : this.#gate.decideExecute(entry),
    };
  }

  /**
   * SQL-level PREPARE / DEALLOCATE / DISCARD ALL share the namespace of protocol-level
   * statements. A new PREPARE is registered now (and undone if the server refuses it) so that a
   * pipelined EXECUTE sees its facts; a deletion waits for the server's confirmation. `removing`
   * holds the names deleted by earlier statements of the same message.
   */
  #trackSqlPrepared(statement: ClassifiedStatement, removing: Set<string | symbol>): PreparedChange[] | null {
    const op = statement.prepared;
    if (op === null) return null;
    if (op.op === 'deallocate') {
      if (statement.command === 'DISCARD ALL') this.#portals.clear();
      const changes: PreparedChange[] = [];
      if (op.name === null) {
        for (const [name, entry] of this.#prepared) {
          changes.push(this.#removal(name, entry));
          removing.add(name);
        }
        removing.add(ALL_STATEMENTS);
      } else {
        const entry = this.#prepared.get(op.name);
        if (entry !== undefined) changes.push(this.#removal(op.name, entry));
        removing.add(op.name);
      }
      return changes.length === 0 ? null : changes;
    }
    if (op.op !== 'prepare') return null;
    const entry: PreparedEntry = { class: statement.class, tables: statement.tables, functions: statement.functions, possibleFunctions: statement.possibleFunctions ?? [], statement, decision: null };
    if (removing.has(op.name) || removing.has(ALL_STATEMENTS)) return [{ op: 'add-on-success', name: op.name, entry }];
    if (this.#prepared.has(op.name)) return null;
    this.#prepared.set(op.name, entry);
    return [{ op: 'add', name: op.name, entry }];
  }

  /** A deletion that waits for the server; a Parse or PREPARE of the name is held meanwhile. */
  #removal(name: string, entry: PreparedEntry): PreparedChange {
    this.#pendingDeletes.set(name, (this.#pendingDeletes.get(name) ?? 0) + 1);
    return { op: 'remove', name, entry };
  }

  #decideParse(name: string, sql: string, raw: Buffer, actions: Action[], waits: TrackedAppend[]): void {
    const facts = this.#o.facts;
    if (this.#refusedForSettings(sql, 'extended', name, actions, waits)) return;
    const classified = this.#gate.classify(sql, this.#prepared);
    // §55.2.3: Parse into the unnamed statement first drops the previous one, even when it fails.
    if (name === '') this.#prepared.delete('');
    if (!classified.ok) {
      const { reply, decision } = this.#gate.unclassified(classified.error);
      const denial = this.#record(queryEvent({ session: facts, decision, protocol: 'extended', statement: null, text: sql, unclassified: classified.error.kind, statementName: name }));
      this.#refuse(refusedParse(name), reply, true, [denial], actions, waits);
      return;
    }
    const statements = classified.statements;
    let entry: PreparedEntry | null = null;
    if (statements.length === 0) {
      entry = { class: 'read', tables: [], functions: [], statement: null, decision: null };
    } else if (statements.length === 1) {
      const statement = statements[0] as ClassifiedStatement;
      const decision = this.#gate.decide(statement);
      if (decision.effect === 'deny') {
        const denial = this.#record(queryEvent({ session: facts, decision, protocol: 'extended', statement, statementName: name }));
        this.#refuse(refusedParse(name), this.#gate.denial(decision, statement), true, [denial], actions, waits);
        return;
      }
      entry = { class: statement.class, tables: statement.tables, functions: statement.functions, possibleFunctions: statement.possibleFunctions ?? [], statement, decision };
    }
    // Several statements: the server refuses to prepare them; nothing is registered.
    let changes: PreparedChange[][] | null = null;
    if (entry !== null && !this.#prepared.has(name)) {
      this.#prepared.set(name, entry);
      changes = [[{ op: 'add', name, entry }]];
    }
    actions.push({ raw, expect: new Expectation('parse', null, null, changes), audits: null, extended: true, sync: false });
  }

  #decideExecute(message: Execute, actions: Action[], waits: TrackedAppend[]): void {
    const facts = this.#o.facts;
    const portal = this.#portals.get(truncateIdentifier(message.portal));
    const entry = portal?.entry;
    if (portal === undefined || entry === undefined) {
      const denial = this.#record(queryEvent({ session: facts, decision: GATEWAY_DECISIONS.unknownPortal, protocol: 'extended', statement: null, portal: message.portal }));
      this.#refuse(refusedParse(), this.#gate.unknownPortal(message.portal), true, [denial], actions, waits);
      return;
    }
    const prepared = entry.statement;
    if (prepared === null) {
      actions.push({ raw: message.raw, expect: new Expectation('execute', [], null, null), audits: null, extended: true, sync: false });
      return;
    }
    // A prepared FETCH or MOVE of a protocol-level portal runs that portal's statement.
    const cursor = this.#cursorTarget(prepared);
    const statement = cursor?.statement ?? prepared;
    const decision = cursor?.decision ?? this.#gate.decideExecute(entry);
    const params = portal.params;
    const record = this.#record(
      queryEvent({
        session: facts,
        decision,
        protocol: 'extended',
        statement,
        // A FETCH is recorded with the portal it reads, whose statement is what runs.
        statementName: cursor?.statementName ?? portal.statementName,
        portal: cursor?.portal ?? message.portal,
        ...(params === undefined ? {} : { params }),
      }),
    );
    if (decision.effect === 'deny') {
      const reply = decision === GATEWAY_DECISIONS.unknownPortal ? this.#gate.unknownPortal(cursor?.portal ?? message.portal) : this.#gate.denial(decision as Decision, statement);
      this.#refuse(refusedParse(), reply, true, [record], actions, waits);
      return;
    }
    waits.push(record);
    // The Sync after this Execute ends in the ReadyForQuery that reports any setting it changed.
    if (mayChangeSettings(statement, cursor)) this.#barrierUntil = this.#rfqDecided + 1;
    const change = statement.prepared === null ? null : this.#trackSqlPrepared(statement, new Set<string | symbol>());
    const run: StatementRun = { ref: -1, startedAt: 0, rows: 0, copyBytes: undefined, done: false };
    actions.push({ raw: message.raw, expect: new Expectation('execute', [run], null, change === null ? null : [change]), audits: [record], extended: true, sync: false });
  }

  /**
   * Refuses SQL text that follows, in the same extended-protocol batch, a statement that may have
   * changed how the server reads SQL: the server applies a changed setting at once but reports it
   * only before the ReadyForQuery of the Sync (§55.2.7), which the client has not sent, so the
   * gateway cannot wait for it (a Flush gets the results without it). Text that reads the same
   * under any of those settings goes on, so batches of plain statements still pipeline.
   */
  #refusedForSettings(sql: string, protocol: 'simple' | 'extended', name: string | undefined, actions: Action[], waits: TrackedAppend[]): boolean {
    if (this.#rfqDecided >= this.#barrierUntil || !readsDependOnSettings(sql)) return false;
    if (name === '') this.#prepared.delete('');
    const decision = GATEWAY_DECISIONS.settingsMayHaveChanged;
    const denial = this.#record(queryEvent({ session: this.#o.facts, decision, protocol, statement: null, text: sql, ...(name === undefined ? {} : { statementName: name }) }));
    this.#refuse(protocol === 'extended' ? refusedParse(name) : REFUSED_QUERY, this.#gate.settingsMayHaveChanged(), protocol === 'extended', [denial], actions, waits);
    return true;
  }

  /** Queues a stand-in for a refused message; in the extended protocol, skips to the next Sync. */
  #refuse(standIn: Buffer, reply: Buffer, extended: boolean, denials: TrackedAppend[], actions: Action[], waits: TrackedAppend[]): void {
    this.denied += 1;
    this.#o.metrics.countStatement(this.#o.facts.resource, 'deny');
    // Denial records are waited for too, so the client hears the refusal after it is on record.
    for (const denial of denials) waits.push(denial);
    if (extended) this.#clientSkipping = true;
    else this.#rfqDecided += 1;
    actions.push({ raw: standIn, expect: new Expectation(extended ? 'parse' : 'query', extended ? null : [], reply, null), audits: null, extended, sync: false });
  }

  /**
   * Writes a decided batch upstream, in order, in one corked write. Messages forwarded unchanged
   * that lay next to each other in the client's bytes (a Bind, Execute and Sync sent together)
   * go out as one slice of those bytes.
   */
  #flush(actions: Action[]): void {
    const upstream = this.#upstream;
    let dropUntilSync = false;
    let pending: Buffer | null = null;
    upstream.cork();
    try {
      for (const action of actions) {
        if (action.sync) {
          dropUntilSync = false;
          this.#upstreamSkipping = false;
        } else if (dropUntilSync || this.#upstreamSkipping) {
          if (action.expect !== null) {
            this.#abandon(action.expect, 'skipped', undefined);
            // A Query the server would ignore while skipping gets no ReadyForQuery.
            if (action.expect.kind === 'query') this.#rfqAnswered += 1;
          }
          continue;
        }
        this.#unsynced = action.extended && !action.sync;
        let raw = action.raw;
        let expect = action.expect;
        if (action.audits !== null) {
          if (action.audits.some((append) => append.failed)) {
            // Fail closed: nothing that was not durably recorded reaches the database.
            this.#o.metrics.auditFailures.labels('pg.query').inc();
            this.denied += 1;
            const reply = errorResponse({
              code: SQLSTATE.cannot_connect_now,
              message: 'statement refused: the audit log cannot record it right now, and nothing is forwarded unrecorded',
              hint: 'Retry later; the operator sees the cause in /readyz and the gateway log.',
            });
            if (expect !== null) this.#abandon(expect, 'skipped', undefined);
            raw = action.extended ? refusedParse() : REFUSED_QUERY;
            expect = new Expectation(action.extended ? 'parse' : 'query', action.extended ? null : [], reply, null);
            if (action.extended) {
              dropUntilSync = true;
              if (!actions.slice(actions.indexOf(action) + 1).some((later) => later.sync)) this.#clientSkipping = true;
            }
          } else if (expect !== null && expect.runs !== null) {
            const now = performance.now();
            for (let i = 0; i < expect.runs.length; i++) {
              const run = expect.runs[i] as StatementRun;
              run.ref = (action.audits[i] as TrackedAppend).seq;
              run.startedAt = now;
            }
            this.statements += expect.runs.length;
            this.#allowedStatements.inc(expect.runs.length);
          }
        }
        if (expect !== null) this.#queue.push(expect);
        if (pending !== null && pending.buffer === raw.buffer && pending.byteOffset + pending.length === raw.byteOffset) {
          pending = Buffer.from(pending.buffer, pending.byteOffset, pending.length + raw.length);
          continue;
        }
        if (pending !== null) this.#writeUpstream(pending);
        pending = raw;
      }
      if (pending !== null) this.#writeUpstream(pending);
    } finally {
      upstream.uncork();
    }
  }

  #writeUpstream(bytes: Buffer): void {
    if (!this.#upstream.write(bytes) && !this.#pausedForUpstream) {
      this.#pausedForUpstream = true;
      this.#updateClientFlow();
    }
  }

  // ---- upstream → client ------------------------------------------------------------------

  readonly #onUpstreamData = (chunk: Buffer): void => {
    this.bytesOut += chunk.length;
    this.#received += chunk.length;
    this.#held.push(chunk);
    const reader = this.#upstreamReader;
    reader.push(chunk);
    const client = this.#client;
    client.cork();
    try {
      for (;;) {
        const message = reader.next();
        if (message === undefined) break;
        if (message.type === 'ProtocolError') {
          this.#o.metrics.protocolErrors.labels('upstream').inc();
          this.#close('upstream', `upstream protocol violation: ${message.message}`, fatalResponse({ code: SQLSTATE.connection_failure, message: `the upstream sent a malformed message (${message.message}); the session is closed` }));
          return;
        }
        const replacement = this.#onBackendMessage(message);
        if (this.#closed) return;
        if (replacement !== null && message.type === 'ErrorResponse') {
          // The message just read ends where the reader's consumed bytes end.
          const end = this.#received - reader.bufferedBytes;
          this.#emitUpTo(end - message.raw.length);
          this.#write(replacement);
          this.#dropUpTo(end);
        }
      }
      this.#emitUpTo(this.#received - reader.bufferedBytes);
    } finally {
      client.uncork();
    }
    this.#wakePump();
  };

  /** Lets a held client message be looked at again: the server's answers may have cleared its hold. */
  #wakePump(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Forwards held backend bytes up to absolute stream offset `end`. */
  #emitUpTo(end: number): void {
    while (this.#held.length > 0) {
      const first = this.#held[0] as Buffer;
      const firstEnd = this.#heldStart + first.length;
      if (end >= firstEnd) {
        this.#write(first);
        this.#held.shift();
        this.#heldStart = firstEnd;
        continue;
      }
      if (end > this.#heldStart) {
        const cut = end - this.#heldStart;
        this.#write(first.subarray(0, cut));
        this.#held[0] = first.subarray(cut);
        this.#heldStart = end;
      }
      return;
    }
  }

  /** Discards held backend bytes up to absolute stream offset `end` (a replaced message). */
  #dropUpTo(end: number): void {
    while (this.#held.length > 0 && this.#heldStart < end) {
      const first = this.#held[0] as Buffer;
      const firstEnd = this.#heldStart + first.length;
      if (end >= firstEnd) {
        this.#held.shift();
        this.#heldStart = firstEnd;
      } else {
        this.#held[0] = first.subarray(end - this.#heldStart);
        this.#heldStart = end;
      }
    }
  }

  #write(bytes: Buffer): void {
    if (!this.#client.write(bytes)) this.#upstream.pause();
  }

  /**
   * Tracks one backend message against the expectations (§55.2.2, §55.2.3); returns the bytes
   * to send instead of it when it answers a refused message, else `null`.
   */
  #onBackendMessage(message: BackendMessage | SSLResponse): Buffer | null {
    const head = this.#queue[this.#head];
    switch (message.type) {
      case 'DataRow':
        if (head !== undefined) {
          const run = currentRun(head);
          if (run !== null) run.rows += 1;
        }
        return null;
      case 'CommandComplete': {
        if (head === undefined) return null;
        const run = currentRun(head);
        if (run !== null) this.#finish(run, 'ok', message.tag, message.rows, undefined);
        this.#copyRun = null;
        if (head.kind === 'query') {
          this.#confirm(head, head.index);
          head.index += 1;
        } else if (head.kind === 'execute') {
          this.#confirm(head, 0);
          this.#shift();
        }
        return null;
      }
      case 'ReadyForQuery':
        this.#rfqAnswered += 1;
        this.#copyRun = null;
        // Pops the Query or Sync this answers, and anything the server skipped before it.
        while (this.#head < this.#queue.length) {
          const entry = this.#shift() as Expectation;
          if (entry.kind === 'query' || entry.kind === 'sync') {
            this.#abandon(entry, 'skipped', undefined);
            break;
          }
          this.#abandon(entry, 'skipped', undefined);
        }
        return null;
      case 'ErrorResponse':
        return this.#onError(head, message.fields.code, message.fields.severity);
      case 'EmptyQueryResponse':
        if (head?.kind === 'execute') this.#shift();
        return null;
      case 'ParameterStatus': {
        // Only a role that may run `admin` statements can change these; from then on the server
        // would read other statements out of the text than the ones classified, so the session
        // ends before the gateway relays anything more.
        const unsafe = unsafeReadingSetting(message.name, message.value);
        if (unsafe !== null) {
          this.#close('gateway', `${unsafe} changed`, fatalResponse({
            code: SQLSTATE.feature_not_supported,
            message: `tollgate: ${unsafe} was changed to ${message.value}; the gateway reads SQL as the server does only with the login's UTF8 and standard strings, so the session is closed`,
          }));
        }
        return null;
      }
      case 'PortalSuspended':
        if (head?.kind === 'execute') {
          const run = currentRun(head);
          if (run !== null) this.#finish(run, 'suspended', undefined, undefined, undefined);
          this.#shift();
        }
        return null;
      case 'ParseComplete':
        if (head?.kind === 'parse') this.#shift();
        return null;
      case 'BindComplete':
        if (head?.kind === 'bind') this.#shift();
        return null;
      case 'CloseComplete':
        if (head?.kind === 'close') {
          this.#confirm(head, 0);
          this.#shift();
        }
        return null;
      case 'RowDescription':
      case 'NoData':
        if (head?.kind === 'describe') this.#shift();
        return null;
      case 'CopyInResponse':
      case 'CopyOutResponse':
      case 'CopyBothResponse':
        if (head !== undefined) {
          const run = currentRun(head);
          if (run !== null) {
            run.copyBytes ??= 0;
            this.#copyRun = run;
          }
        }
        return null;
      case 'CopyData':
        if (this.#copyRun !== null) this.#copyRun.copyBytes = (this.#copyRun.copyBytes ?? 0) + message.byteLength - 5;
        return null;
      default:
        return null;
    }
  }

  #onError(head: Expectation | undefined, code: string, severity: string): Buffer | null {
    if (severity === 'FATAL' || severity === 'PANIC') this.#sawUpstreamFatal = true;
    this.#copyRun = null;
    if (head === undefined) return null;
    const refusal = head.refusal;
    switch (head.kind) {
      case 'query': {
        // §55.2.2: an error ends the Query; the statements after it never run. ReadyForQuery follows.
        const runs = head.runs as StatementRun[];
        for (let i = head.index; i < runs.length; i++) {
          const run = runs[i] as StatementRun;
          if (i === head.index) this.#finish(run, 'error', undefined, undefined, code);
          else this.#finish(run, 'skipped', undefined, undefined, undefined);
        }
        this.#undo(head, head.index);
        head.index = runs.length;
        return refusal;
      }
      case 'sync':
        // A failed COMMIT at Sync; ReadyForQuery follows.
        return null;
      default: {
        // §55.2.3: the server discards every message up to the next Sync.
        this.#shift();
        this.#abandon(head, 'error', code);
        while (this.#head < this.#queue.length && (this.#queue[this.#head] as Expectation).kind !== 'sync') {
          const skipped = this.#shift() as Expectation;
          this.#abandon(skipped, 'skipped', undefined);
          // A Query the server ignores while skipping gets no ReadyForQuery.
          if (skipped.kind === 'query') this.#rfqAnswered += 1;
        }
        if (this.#head === this.#queue.length) this.#upstreamSkipping = true;
        return refusal;
      }
    }
  }

  #shift(): Expectation | undefined {
    const entry = this.#queue[this.#head];
    if (entry === undefined) return undefined;
    this.#head += 1;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  /** Settles an expectation that will get no (more) answers: unfinished runs end as `status`. */
  #abandon(entry: Expectation, status: 'skipped' | 'error', code: string | undefined): void {
    if (entry.runs !== null) {
      for (let i = entry.index; i < entry.runs.length; i++) {
        const run = entry.runs[i] as StatementRun;
        if (!run.done) this.#finish(run, i === entry.index ? status : 'skipped', undefined, undefined, i === entry.index ? code : undefined);
      }
    }
    this.#undo(entry, entry.kind === 'query' ? entry.index : 0);
  }

  /** Applies the prepared-statement changes of statement `index`, which the server completed. */
  #confirm(entry: Expectation, index: number): void {
    const changes = entry.changes?.[index];
    if (changes === null || changes === undefined) return;
    for (const change of changes) {
      if (change.op === 'remove') {
        if (this.#prepared.get(change.name) === change.entry) this.#prepared.delete(change.name);
        this.#settleDelete(change.name);
      } else if (change.op === 'add-on-success' && !this.#prepared.has(change.name)) {
        this.#prepared.set(change.name, change.entry);
      }
    }
  }

  /** Undoes the changes of statements `from` on, which failed or were skipped: the server made none of them. */
  #undo(entry: Expectation, from: number): void {
    const all = entry.changes;
    if (all === null) return;
    for (let i = from; i < all.length; i++) {
      const changes = all[i];
      if (changes === null || changes === undefined) continue;
      for (const change of changes) {
        if (change.op === 'remove') this.#settleDelete(change.name);
        else if (change.op === 'add' && this.#prepared.get(change.name) === change.entry) this.#prepared.delete(change.name);
      }
    }
  }

  #settleDelete(name: string): void {
    const left = (this.#pendingDeletes.get(name) ?? 1) - 1;
    if (left <= 0) this.#pendingDeletes.delete(name);
    else this.#pendingDeletes.set(name, left);
  }

  #finish(run: StatementRun, status: 'ok' | 'error' | 'suspended' | 'skipped', tag: string | undefined, rows: number | undefined, sqlstate: string | undefined): void {
    if (run.done || run.ref < 0) {
      run.done = true;
      return;
    }
    run.done = true;
    const event = resultEvent({
      session: this.#o.facts,
      ref: run.ref,
      status,
      commandTag: tag,
      rows: rows ?? run.rows,
      sqlstate,
      durationMs: status === 'skipped' ? 0 : performance.now() - run.startedAt,
      copyBytes: run.copyBytes,
    });
    // Nothing waits on the outcome: it rides with the next record that starts a write.
    void this.#o.audit.append(event, DEFER).catch(() => {
      this.#o.metrics.auditFailures.labels('pg.result').inc();
      this.#o.logger.warn({ ref: run.ref }, 'a pg.result record could not be appended');
    });
  }

  #record(event: AuditEvent): TrackedAppend {
    return new TrackedAppend(this.#o.audit.append(event));
  }

  // ---- flow control and closing -----------------------------------------------------------

  #updateClientFlow(): void {
    if (this.#closed) return;
    if (this.#pausedForUpstream || this.#pausedForBuffer) this.#client.pause();
    else this.#client.resume();
  }

  #upstreamGone(reason: string): void {
    if (this.#closed) return;
    const reply = this.#sawUpstreamFatal ? null : fatalResponse({ code: SQLSTATE.connection_failure, message: 'the upstream database closed the connection' });
    this.#close('upstream', reason, reply);
  }

  #close(closedBy: SessionEnd['closedBy'], reason: string, reply: Buffer | null): void {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.#client;
    const upstream = this.#upstream;
    if (!client.destroyed) {
      if (reply !== null && client.writable) client.end(reply);
      else client.end();
    }
    if (!upstream.destroyed) {
      if (closedBy !== 'upstream' && upstream.writable) upstream.end(encodeTerminate());
      else upstream.end();
    }
    const grace = setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, CLOSE_GRACE_MS);
    grace.unref();
    // Runs that never got an answer end as skipped.
    while (this.#head < this.#queue.length) this.#abandon(this.#shift() as Expectation, 'skipped', undefined);
    this.#wakePump();
    this.#resolveDone({ closedBy, reason });
  }
}

/** The run an answer belongs to: the running statement of a Query, or an Execute's. */
function currentRun(entry: Expectation): StatementRun | null {
  const runs = entry.runs;
  if (runs === null) return null;
  return runs[entry.index] ?? null;
}

