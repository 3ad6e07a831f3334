import type { AuditIndex, QueryHit, RecordFilter, SessionSummary } from '../audit/index.js';
import { TollgateError } from '../core/index.js';
import { OUTCOME_KINDS, pendingOutcomes, type RecordRow } from './record-view.js';

/**
 * Look-ups the pages make through the query index beyond one page of records: the outcome
 * records of a page's requests, and sessions selected by record fields the index's session
 * listing does not take.
 */

/** Who and where an outcome record shares with its request (the scope of a look-up). */
export interface OutcomeScope {
  readonly user?: string;
  readonly resource?: string;
  readonly sessionId?: string;
}

/**
 * Windows (in seqs after a page's newest request) searched for outcome records, widest last. An
 * outcome follows its request within milliseconds, so almost all are in the first window; a
 * long statement or a WebSocket session may end much later.
 */
const OUTCOME_WINDOWS = [1_000, 20_000] as const;
/** Outcome records read at most per window. */
const MAX_OUTCOME_READ = 20_000;

/** The outcome records (`ref` → request) of the rows that have none yet, as far as they exist. */
export async function findOutcomes(index: AuditIndex, rows: readonly RecordRow[], scope: OutcomeScope): Promise<QueryHit[]> {
  const pending = pendingOutcomes(rows);
  if (pending.length === 0) return [];
  // Past the newest record there is nothing to find: a request there is still in flight.
  const newest = (await index.query({ limit: 1 })).records[0]?.seq ?? -1;
  const found = new Map<number, QueryHit>();
  let searched = 0;
  for (const window of OUTCOME_WINDOWS) {
    // Requests whose narrower window ended inside the log, and found nothing there.
    const waiting = pending.filter((seq) => !found.has(seq) && (searched === 0 || seq + searched < newest));
    if (waiting.length === 0) break;
    const low = Math.min(...waiting);
    const upper = Math.min(Math.max(...waiting) + window, newest);
    searched = window;
    if (upper <= low) continue;
    // Every outcome-kind record in (low, upper], newest first: the limit covers them all.
    const page = await index.query({ ...scope, kind: [...OUTCOME_KINDS], cursor: String(upper + 1), limit: Math.min(upper - low, MAX_OUTCOME_READ) });
    // A set: up to a thousand rows wait, and up to MAX_OUTCOME_READ records are looked through.
    const waitingSet = new Set(waiting);
    for (const hit of page.records) {
      const ref = hit.record.ref;
      if (ref !== undefined && waitingSet.has(ref) && !found.has(ref)) found.set(ref, hit);
    }
  }
  return [...found.values()];
}

/** How many matching records a session search reads at most before it stops and says so. */
export const SESSION_SEARCH_LIMIT = 200_000;
/** Sessions the index's listing hands back at most (its own limit). */
const MAX_SESSIONS = 100_000;

export interface SessionSearch {
  /** Matching sessions, most recently active first, from the cursor on. */
  readonly sessions: readonly SessionSummary[];
  readonly nextCursor: string | null;
  /** The search stopped after {@link SESSION_SEARCH_LIMIT} matching records. */
  readonly partial: boolean;
}

/**
 * Sessions that hold at least one record matching `filter` when it selects by effect, kind,
 * text or session (which the index's session listing does not take): the matching records are
 * read through the index, their session ids collected, and the listing (by user, resource and
 * time) narrowed to them. The cursor works as the listing's: the last activity (seq) below which
 * the next page starts.
 */
export async function searchSessions(index: AuditIndex, filter: RecordFilter, options: { readonly limit: number; readonly cursor: string | undefined }): Promise<SessionSearch> {
  if (options.cursor !== undefined && !/^(0|[1-9][0-9]{0,15})$/.test(options.cursor)) {
    throw new TollgateError('TG_ERR_USAGE', `the cursor "${options.cursor}" is not one a previous page returned`);
  }
  const { user, resource, since, until } = filter;
  const listing = await index.sessions({
    ...(user === undefined ? {} : { user }),
    ...(resource === undefined ? {} : { resource }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
    limit: MAX_SESSIONS,
  });
  const onlyDenials = filter.effect === 'deny' && filter.kind === undefined && filter.text === undefined && filter.sessionId === undefined;
  // Each summary counts the denials among its records that match user, resource and time: the
  // sessions with a denied record are those with a count, and no record needs to be read.
  const ids = onlyDenials ? null : await matchingSessionIds(index, filter);
  const below = options.cursor === undefined ? Number.POSITIVE_INFINITY : Number(options.cursor);
  const matching = listing.sessions.filter((session) => (ids === null ? session.denials > 0 : ids.sessions.has(session.sessionId)) && session.lastSeq < below);
  const page = matching.slice(0, options.limit);
  return { sessions: page, nextCursor: matching.length > options.limit ? String(page.at(-1)!.lastSeq) : null, partial: ids?.partial ?? false };
}

/** The session ids of the records that match `filter`, read through the index. */
async function matchingSessionIds(index: AuditIndex, filter: RecordFilter): Promise<{ readonly sessions: ReadonlySet<string>; readonly partial: boolean }> {
  const ids = new Set<string>();
  let cursor: string | undefined;
  let read = 0;
  let partial = false;
  for (;;) {
    const page = await index.query({ ...filter, limit: 10_000, ...(cursor === undefined ? {} : { cursor }) });
    for (const hit of page.records) if (hit.record.session_id !== undefined) ids.add(hit.record.session_id);
    read += page.records.length;
    if (page.nextCursor === null) break;
    if (read >= SESSION_SEARCH_LIMIT) {
      partial = true;
      break;
    }
    cursor = page.nextCursor;
  }
  return { sessions: ids, partial };
}

/** One session's summary, found in the listing of the user it belongs to. */
export async function sessionSummary(index: AuditIndex, sessionId: string, user: string | undefined): Promise<SessionSummary | null> {
  const listing = await index.sessions({ ...(user === undefined ? {} : { user }), limit: MAX_SESSIONS });
  return listing.sessions.find((session) => session.sessionId === sessionId) ?? null;
}
