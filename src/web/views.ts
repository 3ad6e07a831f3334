import type { AuditIndex, QueryHit, SessionSummary } from '../audit/index.js';
import { EMPTY_FIELDS, needsRecordScan, parsePageQuery, queryString, type FilterFields, type PageQuery } from './filter.js';
import { renderExportLinks, renderFilterForm, renderPager } from './filter-form.js';
import { html, type SafeHtml } from './html.js';
import type { NavItem } from './layout.js';
import { findOutcomes, searchSessions, SESSION_SEARCH_LIMIT, sessionSummary, type OutcomeScope } from './lookups.js';
import { formatDuration, recordRows, renderRecordTable, renderTime, sessionHref, type RecordRow } from './record-view.js';
import type { AuditCaller, AuditRouteRequest } from './route.js';

/**
 * The review pages proper: sessions, one session, records, one record. Each answers a browser
 * with a page and an API client (no `text/html` in `Accept`) with the same data as JSON.
 */

export interface ViewContext {
  readonly request: AuditRouteRequest;
  readonly caller: AuditCaller;
  readonly index: AuditIndex;
  readonly canExport: boolean;
  /** Milliseconds since the epoch, for relative times in filters. */
  readonly now: number;
  /** Sends a whole page, with the header and the chain banner. */
  page(status: number, title: string, current: NavItem | null, body: SafeHtml): void;
  /** Sends JSON, with the chain status added. */
  json(status: number, value: Record<string, unknown>): void;
  /** Sends a client error as a page or JSON. */
  problem(status: number, error: string, title: string, message: string): void;
}

const SESSION_LIMITS = { fallback: 50, max: 500 } as const;
const RECORD_LIMITS = { fallback: 100, max: 1_000 } as const;
const SESSION_RECORD_LIMITS = { fallback: 200, max: 1_000 } as const;

function rowJson(row: RecordRow): Record<string, unknown> {
  return { seq: row.seq, record: row.record, outcome: row.outcome === null ? null : { seq: row.outcome.seq, record: row.outcome.record } };
}

/** Rows of `hits` (in that order), with the outcomes the page lacks looked up. */
async function rowsWithOutcomes(index: AuditIndex, hits: readonly QueryHit[], scope: OutcomeScope): Promise<RecordRow[]> {
  const rows = recordRows(hits);
  const outcomes = await findOutcomes(index, rows, scope);
  return outcomes.length === 0 ? rows : recordRows(hits, outcomes);
}

function badQuery(ctx: ViewContext, action: string, title: string, fields: FilterFields, problems: readonly string[], recordFields: boolean): void {
  if (!ctx.request.html) return ctx.problem(400, 'bad_filter', title, problems.join('; '));
  ctx.page(400, title, null, html`<h1>${title}</h1>${renderFilterForm({ action, fields, recordFields, problems })}`);
}

// ---- sessions --------------------------------------------------------------------------------

function sessionRow(session: SessionSummary): SafeHtml {
  const who = session.principal === null ? 'unknown' : (session.principal.email ?? session.principal.subject);
  const duration = session.firstTime === '' || session.lastTime === '' ? null : Date.parse(session.lastTime) - Date.parse(session.firstTime);
  return html`<tr>
<th scope="row"><a href="${sessionHref(session.sessionId)}">${who}</a><span class="kind">session ${session.sessionId.slice(0, 12)}${session.sessionId.length > 12 ? '…' : ''}</span></th>
<td>${session.resources.length === 0 ? html`<span class="muted">—</span>` : session.resources.join(', ')}</td>
<td class="time">${renderTime(session.firstTime)}</td>
<td class="time">${renderTime(session.lastTime)}</td>
<td class="num">${duration === null ? '—' : formatDuration(duration)}</td>
<td class="num">${session.requests}</td>
<td class="num">${session.statements}</td>
<td class="num">${session.denials > 0 ? html`<span class="count-deny">${session.denials}</span>` : '0'}</td>
<td class="num">${session.records}</td>
</tr>`;
}

/** `/audit`: sessions, most recently active first, filtered and paginated. */
export async function sessionsView(ctx: ViewContext): Promise<void> {
  const parsed = parsePageQuery(ctx.request.query, ctx.now, SESSION_LIMITS);
  if (!parsed.ok) return badQuery(ctx, '/audit', 'Sessions', parsed.fields, parsed.problems, false);
  const { fields, filter, cursor, limit } = parsed.query;
  const { index } = ctx;
  let found: { sessions: readonly SessionSummary[]; nextCursor: string | null; partial: boolean };
  if (needsRecordScan(filter)) {
    found = await searchSessions(index, filter, { limit, cursor });
  } else {
    const { user, resource, since, until } = filter;
    const page = await index.sessions({
      ...(user === undefined ? {} : { user }),
      ...(resource === undefined ? {} : { resource }),
      ...(since === undefined ? {} : { since }),
      ...(until === undefined ? {} : { until }),
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    found = { ...page, partial: false };
  }
  if (!ctx.request.html) return ctx.json(200, { sessions: found.sessions, next_cursor: found.nextCursor, partial: found.partial });
  const pageFields = { ...fields, kind: '', session: '' };
  const rows = found.sessions.length === 0 ? html`<tr class="empty"><td colspan="9">No sessions match this filter.</td></tr>` : found.sessions.map(sessionRow);
  const partial = found.partial
    ? html`<p class="problems">Only the newest ${SESSION_SEARCH_LIMIT.toLocaleString('en-US')} matching records were searched for sessions; narrow the filter (user, time) to see older ones.</p>`
    : '';
  ctx.page(
    200,
    'Sessions',
    'sessions',
    html`<h1>Sessions</h1>
${renderFilterForm({ action: '/audit', fields: pageFields, recordFields: false, problems: [] })}
<div class="toolbar"><a href="/audit/records${queryString(pageFields)}">Records of this filter</a><span class="spacer"></span>${renderExportLinks(pageFields, ctx.canExport)}</div>
${partial}
<div class="table-wrap" role="region" aria-label="Sessions table" tabindex="0"><table>
<caption>Sessions, most recently active first<span class="hint">a session is one browser login or one database connection</span></caption>
<thead><tr><th scope="col">Who</th><th scope="col">Resources</th><th scope="col">Started</th><th scope="col">Last activity</th><th scope="col" class="num">Duration</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Statements</th><th scope="col" class="num">Denials</th><th scope="col" class="num">Records</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>
${renderPager('/audit', pageFields, cursor, found.nextCursor, { first: '← Most recent sessions', next: 'Older sessions →' })}`,
  );
}

// ---- one session -----------------------------------------------------------------------------

function summaryList(sessionId: string, summary: SessionSummary | null, first: QueryHit | undefined): SafeHtml {
  const principal = first?.record.principal;
  const who = summary?.principal?.email ?? summary?.principal?.subject ?? principal?.email ?? principal?.subject ?? 'unknown';
  if (summary === null) return html`<dl class="summary"><dt>User</dt><dd>${who}</dd><dt>Session</dt><dd><code>${sessionId}</code></dd></dl>`;
  const duration = Date.parse(summary.lastTime) - Date.parse(summary.firstTime);
  return html`<dl class="summary">
<dt>User</dt><dd>${who}</dd>
<dt>Groups</dt><dd>${principal === undefined || principal.groups.length === 0 ? '—' : principal.groups.join(', ')}</dd>
<dt>Resources</dt><dd>${summary.resources.length === 0 ? '—' : summary.resources.join(', ')}</dd>
<dt>Started</dt><dd>${renderTime(summary.firstTime)}</dd>
<dt>Last activity</dt><dd>${renderTime(summary.lastTime)}</dd>
<dt>Duration</dt><dd>${Number.isNaN(duration) ? '—' : formatDuration(duration)}</dd>
<dt>Requests</dt><dd>${summary.requests}</dd>
<dt>Statements</dt><dd>${summary.statements}</dd>
<dt>Denials</dt><dd>${summary.denials > 0 ? html`<span class="count-deny">${summary.denials}</span>` : '0'}</dd>
<dt>Records</dt><dd>${summary.records} (seq ${summary.firstSeq} to ${summary.lastSeq})</dd>
<dt>Session</dt><dd><code>${sessionId}</code></dd>
</dl>`;
}

/** `/audit/sessions/<id>`: the session's records in order, with decisions and outcomes. */
export async function sessionView(ctx: ViewContext, sessionId: string): Promise<void> {
  const parsed = parsePageQuery(ctx.request.query, ctx.now, SESSION_RECORD_LIMITS);
  const action = sessionHref(sessionId);
  if (!parsed.ok) return ctx.problem(400, 'bad_query', 'Session', parsed.problems.join('; '));
  const { cursor, limit } = parsed.query;
  const { index } = ctx;
  const page = await index.query({ sessionId, limit, ...(cursor === undefined ? {} : { cursor }) });
  if (page.records.length === 0 && cursor === undefined) {
    return ctx.problem(404, 'not_found', 'No such session', `No record of the audit log belongs to session ${sessionId}.`);
  }
  const chronological = [...page.records].reverse();
  const first = chronological.find((hit) => hit.record.principal !== undefined);
  const summary = await sessionSummary(index, sessionId, first?.record.principal?.subject);
  const rows = await rowsWithOutcomes(index, chronological, { sessionId });
  if (!ctx.request.html) return ctx.json(200, { session: summary, records: rows.map(rowJson), next_cursor: page.nextCursor });
  const newest = page.records[0]?.seq ?? -1;
  const fields = { ...EMPTY_FIELDS, session: sessionId };
  const table = renderRecordTable({
    caption: html`Records of the session, oldest first${page.nextCursor === null ? '' : html`<span class="hint">the latest ${rows.length} rows; earlier ones on the next page</span>`}`,
    rows,
    empty: 'No records.',
    ...(cursor === undefined ? { tail: { url: `/audit/tail${queryString(fields)}`, after: newest, order: 'asc' as const } } : {}),
  });
  ctx.page(
    200,
    'Session',
    null,
    html`<h1>Session of ${summary?.principal?.email ?? first?.record.principal?.email ?? first?.record.principal?.subject ?? 'unknown'}</h1>
${summaryList(sessionId, summary, first)}
<div class="toolbar"><a href="/audit/records${queryString(fields)}">All records of this session</a><span class="spacer"></span>${renderExportLinks(fields, ctx.canExport)}</div>
${table}
${renderPager(action, {}, cursor, page.nextCursor, { first: '← Latest records', next: 'Earlier records →' })}`,
  );
}

// ---- records ---------------------------------------------------------------------------------

function outcomeScope(query: PageQuery): OutcomeScope {
  const { user, resource, sessionId } = query.filter;
  return { ...(user === undefined ? {} : { user }), ...(resource === undefined ? {} : { resource }), ...(sessionId === undefined ? {} : { sessionId }) };
}

/** `/audit/records`: records matching the filter, newest first. */
export async function recordsView(ctx: ViewContext): Promise<void> {
  const parsed = parsePageQuery(ctx.request.query, ctx.now, RECORD_LIMITS);
  if (!parsed.ok) return badQuery(ctx, '/audit/records', 'Records', parsed.fields, parsed.problems, true);
  const { fields, filter, cursor, limit } = parsed.query;
  const { index } = ctx;
  const page = await index.query({ ...filter, limit, ...(cursor === undefined ? {} : { cursor }) });
  const rows = await rowsWithOutcomes(index, page.records, outcomeScope(parsed.query));
  if (!ctx.request.html) return ctx.json(200, { records: rows.map(rowJson), next_cursor: page.nextCursor });
  const newest = page.records[0]?.seq ?? -1;
  const table = renderRecordTable({
    caption: html`Records, newest first<span class="hint">outcomes are shown in the row of the request they complete</span>`,
    rows,
    empty: 'No records match this filter.',
    ...(cursor === undefined ? { tail: { url: `/audit/tail${queryString(fields)}`, after: newest, order: 'desc' as const } } : {}),
  });
  ctx.page(
    200,
    'Records',
    'records',
    html`<h1>Records</h1>
${renderFilterForm({ action: '/audit/records', fields, recordFields: true, problems: [] })}
<div class="toolbar"><span class="spacer"></span>${renderExportLinks(fields, ctx.canExport)}</div>
${table}
${renderPager('/audit/records', fields, cursor, page.nextCursor, { first: '← Newest records', next: 'Older records →' })}`,
  );
}

/** `/audit/records/<seq>`: one record, its outcome, its raw JSON and its proof. */
export async function recordView(ctx: ViewContext, seq: number): Promise<void> {
  const { index } = ctx;
  const page = await index.query({ cursor: String(seq + 1), limit: 1 });
  const hit = page.records[0];
  if (hit === undefined || hit.seq !== seq) {
    return ctx.problem(404, 'not_found', 'No such record', `Record ${seq} is not in the audit log, or it could not be read (the chain status says whether the log is intact).`);
  }
  const { record } = hit;
  const scope: OutcomeScope = {
    ...(record.principal === undefined ? {} : { user: record.principal.subject }),
    ...(record.resource === undefined ? {} : { resource: record.resource }),
  };
  const rows = await rowsWithOutcomes(index, [hit], scope);
  if (!ctx.request.html) return ctx.json(200, { record: rowJson(rows[0]!) });
  ctx.page(
    200,
    `Record ${seq}`,
    null,
    html`<h1>Record ${seq}</h1>
<div class="toolbar">${record.session_id === undefined ? '' : html`<a href="${sessionHref(record.session_id)}">Its session</a>`}<a href="/audit/records${queryString({}, { cursor: seq + 6 })}">Records around it</a></div>
${renderRecordTable({ caption: html`Record ${seq}`, rows, empty: 'No record.' })}`,
  );
}
