import { canonicalize, isTruncatedValue, type AuditRecord, type JsonObject, type JsonValue, type QueryHit } from '../audit/index.js';
import { html, joinHtml, type SafeHtml } from './html.js';
import { renderSql } from './sql-format.js';

/**
 * Records as table rows: one row per request, statement or event, with its outcome record (the
 * one whose `ref` points at it) joined into the Result and Duration columns. Every value is
 * escaped by the `html` template; the record's canonical JSON is shown on demand, and it is the
 * text the browser hashes when it proves the record.
 */

/** Kinds of the records that complete another one, the one their `ref` points at. */
export const OUTCOME_KINDS = ['http.response', 'ws.close', 'pg.result', 'pg.disconnect'] as const;
const OUTCOME_SET: ReadonlySet<string> = new Set(OUTCOME_KINDS);

export function isOutcome(record: AuditRecord): boolean {
  return OUTCOME_SET.has(record.kind);
}

export interface RecordRow {
  readonly seq: number;
  readonly record: AuditRecord;
  /** The outcome record that points at this one, when known. */
  readonly outcome: QueryHit | null;
}

/**
 * Rows for `hits` in the order given. An outcome becomes part of its request's row when both are
 * known (on the page, or among `outcomes` looked up separately); otherwise it is a row of its own.
 */
export function recordRows(hits: readonly QueryHit[], outcomes: readonly QueryHit[] = []): RecordRow[] {
  const onPage = new Set(hits.filter((hit) => !isOutcome(hit.record)).map((hit) => hit.seq));
  const byRef = new Map<number, QueryHit>();
  for (const hit of [...outcomes, ...hits]) {
    const ref = hit.record.ref;
    if (isOutcome(hit.record) && ref !== undefined && onPage.has(ref) && !byRef.has(ref)) byRef.set(ref, hit);
  }
  const joined = new Set([...byRef.values()].map((hit) => hit.seq));
  return hits.filter((hit) => !joined.has(hit.seq)).map((hit) => ({ seq: hit.seq, record: hit.record, outcome: byRef.get(hit.seq) ?? null }));
}

/** Seqs of the rows whose outcome is not known yet (for a lookup). */
export function pendingOutcomes(rows: readonly RecordRow[]): number[] {
  return rows.filter((row) => row.outcome === null && !isOutcome(row.record) && expectsOutcome(row.record)).map((row) => row.seq);
}

/** A Postgres connection ends with `pg.disconnect`; requests and statements let through get their outcome. */
function expectsOutcome(record: AuditRecord): boolean {
  if (record.kind === 'pg.connect') return true;
  const kinds = ['http.request', 'ws.open', 'pg.query'];
  return kinds.includes(record.kind) && record.decision?.effect === 'allow';
}

function field(data: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(data, key) ? data[key] : undefined;
}

/** A data field as display text: strings as they are, truncated values as their prefix. */
function text(data: JsonObject, key: string): string | null {
  const value = field(data, key);
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (isTruncatedValue(value)) return `${value.prefix}…`;
  return null;
}

function number(data: JsonObject, key: string): number | null {
  const value = field(data, key);
  return typeof value === 'number' ? value : null;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1_000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * `2025-01-31 12:00:00Z` in a `<time>` element carrying the full RFC 3339 value; `stacked` puts
 * the date above the time, for narrow table columns.
 */
export function renderTime(iso: string, stacked = false): SafeHtml {
  if (iso === '') return html`—`;
  const date = iso.slice(0, 10);
  const time = `${iso.slice(11, 19)}Z`;
  return stacked
    ? html`<time datetime="${iso}" title="${iso}"><span class="date">${date}</span> ${time}</time>`
    : html`<time datetime="${iso}" title="${iso}">${date} ${time}</time>`;
}

function principalName(record: AuditRecord): string | null {
  return record.principal === undefined ? null : (record.principal.email ?? record.principal.subject);
}

export function sessionHref(sessionId: string): string {
  return `/audit/sessions/${encodeURIComponent(sessionId)}`;
}

export function recordHref(seq: number): string {
  return `/audit/records/${seq}`;
}

/** What was asked for: the request line, the SQL statement, the connection, the event. */
function renderAction(record: AuditRecord): SafeHtml {
  const { data } = record;
  switch (record.kind) {
    case 'http.request':
    case 'ws.open':
      return html`<code>${text(data, 'method') ?? ''} ${text(data, 'path') ?? ''}</code>`;
    case 'pg.query': {
      const statement = text(data, 'statement');
      const facts = [text(data, 'class'), text(data, 'command'), text(data, 'unclassified') === null ? null : `unclassified: ${text(data, 'unclassified')}`]
        .filter((fact): fact is string => fact !== null)
        .join(' · ');
      const tables = field(data, 'tables');
      const tableList = Array.isArray(tables) ? tables.filter((t): t is string => typeof t === 'string') : [];
      return html`${statement === null ? html`<span class="muted">no statement text</span>` : renderSql(statement)}${
        facts === '' && tableList.length === 0 ? '' : html`<span class="kind">${facts}${tableList.length > 0 ? ` · tables ${tableList.join(', ')}` : ''}</span>`
      }`;
    }
    case 'pg.connect':
      return html`login <code>${text(data, 'login') ?? '?'}</code> as <code>${text(data, 'upstream_user') ?? '?'}</code> to <code>${text(data, 'database') ?? '?'}</code>`;
    case 'auth.login':
    case 'auth.logout':
    case 'auth.failure':
      return html`${text(data, 'method') ?? ''}${text(data, 'reason') === null ? '' : html` · <code>${text(data, 'reason')}</code>`}`;
    case 'token.issued':
      return html`database token <code>${text(data, 'token_id') ?? ''}</code>${text(data, 'expires_at') === null ? '' : html` until ${text(data, 'expires_at')}`}`;
    default: {
      if (isOutcome(record) && record.ref !== undefined) return html`outcome of <a href="${recordHref(record.ref)}">#${record.ref}</a>`;
      const facts = Object.keys(data)
        .slice(0, 4)
        .map((key) => [key, text(data, key)] as const)
        .filter(([, value]) => value !== null)
        .map(([key, value]) => html`${key} <code>${value}</code>`);
      return joinHtml(facts, html` · `);
    }
  }
}

/** What came of it, from the outcome record's data. */
export function renderResult(record: AuditRecord, outcome: AuditRecord | null): SafeHtml {
  const subject = outcome ?? (isOutcome(record) ? record : null);
  if (subject === null) {
    if (record.decision?.effect === 'deny') return html`<span class="muted">not forwarded</span>`;
    return html`<span class="muted" title="no outcome record found">—</span>`;
  }
  const { data } = subject;
  switch (subject.kind) {
    case 'http.response': {
      const error = text(data, 'upstream_error') ?? text(data, 'error');
      const bytes = number(data, 'bytes_out');
      return html`status <strong>${number(data, 'status') ?? '?'}</strong>${bytes === null ? '' : ` · ${formatBytes(bytes)}`}${error === null ? '' : html` · <code>${error}</code>`}`;
    }
    case 'pg.result': {
      const status = text(data, 'status') ?? '?';
      const tag = text(data, 'command_tag');
      const rows = number(data, 'rows');
      const sqlstate = text(data, 'sqlstate');
      return html`<strong>${status}</strong>${tag === null ? '' : html` · <code>${tag}</code>`}${rows === null ? '' : ` · ${count(rows, 'row')}`}${sqlstate === null ? '' : html` · SQLSTATE <code>${sqlstate}</code>`}`;
    }
    case 'ws.close':
      return html`closed ${number(data, 'code') ?? ''}${text(data, 'closed_by') === null ? '' : ` by ${text(data, 'closed_by')}`}`;
    case 'pg.disconnect':
      return html`${count(number(data, 'statements') ?? 0, 'statement')}, ${number(data, 'denied') ?? 0} denied${text(data, 'closed_by') === null ? '' : ` · closed by ${text(data, 'closed_by')}`}`;
    default:
      return html`—`;
  }
}

export function renderDuration(record: AuditRecord, outcome: AuditRecord | null): SafeHtml {
  const ms = number((outcome ?? record).data, 'duration_ms');
  return ms === null ? html`<span class="muted">—</span>` : html`${formatDuration(ms)}`;
}

function renderDecision(record: AuditRecord): { effect: SafeHtml; rule: SafeHtml; reason: SafeHtml } {
  const decision = record.decision;
  if (decision === undefined) return { effect: html`<span class="muted">—</span>`, rule: html``, reason: html`` };
  return {
    effect: html`<span class="effect effect-${decision.effect}">${decision.effect}</span>`,
    rule: decision.rule === null ? html`<span class="muted">default deny</span>` : html`<code>${decision.rule}</code>`,
    reason: html`<code>${decision.reason}</code>`,
  };
}

/** The record's canonical JSON (RFC 8785): the exact bytes the log holds and the proof covers. */
export function canonicalText(record: AuditRecord): string {
  return canonicalize(record as unknown as JsonValue);
}

/** The Proof column: the proof file, and the in-browser check (its button shows with scripts only). */
function renderProofCell(seq: number): SafeHtml {
  return html`<div class="links">
<a href="/audit/proof/${seq}" download="record-${seq}.tlog-proof" title="C2SP tlog-proof of record ${seq}, for offline verification">proof file</a>
<button type="button" class="secondary" data-prove="${seq}" aria-describedby="proof-${seq}" hidden>Prove<span class="visually-hidden"> record ${seq}</span></button>
</div>
<output id="proof-${seq}" class="proof-result" aria-live="polite"></output>`;
}

/** The record's exact JSON, on demand. */
function renderRaw(row: RecordRow): SafeHtml {
  return html`<details class="raw"><summary>Raw JSON<span class="visually-hidden"> of record ${row.seq}</span></summary><pre id="raw-${row.seq}">${canonicalText(row.record)}</pre></details>`;
}

/** One `<tr>`; used by the pages and by the live tail. */
export function renderRecordRow(row: RecordRow): SafeHtml {
  const { record, outcome } = row;
  const who = principalName(record);
  const decision = renderDecision(record);
  const denied = record.decision?.effect === 'deny';
  const outcomeRecord = outcome?.record ?? null;
  const groups = record.principal?.groups.join(', ') ?? '';
  return html`<tr data-seq="${row.seq}"${denied ? html` class="denied"` : ''}>
<th scope="row" class="seq"><a href="${recordHref(row.seq)}">#${row.seq}</a></th>
<td class="time">${renderTime(record.time, true)}</td>
<td class="who">${who === null ? html`<span class="muted">—</span>` : html`<span title="${groups === '' ? 'no groups' : `groups: ${groups}`}">${who}</span>`}<span class="kind">${
    record.resource === undefined ? 'no resource' : html`on <strong>${record.resource}</strong>`
  }${record.session_id === undefined ? '' : html` · <a href="${sessionHref(record.session_id)}">session</a>`}</span></td>
<td class="action"><span class="kind">${record.kind}</span>${renderAction(record)}${renderRaw(row)}</td>
<td>${decision.effect}</td>
<td class="code">${decision.rule}</td>
<td class="code">${decision.reason}</td>
<td data-col="result">${renderResult(record, outcomeRecord)}${outcome === null ? '' : html`<span class="kind"><a href="${recordHref(outcome.seq)}">#${outcome.seq}</a></span>`}</td>
<td data-col="duration" class="num">${renderDuration(record, outcomeRecord)}</td>
<td class="proof">${renderProofCell(row.seq)}</td>
</tr>`;
}

export interface RecordTableOptions {
  readonly caption: SafeHtml;
  readonly rows: readonly RecordRow[];
  /** Shown in an empty table. */
  readonly empty: string;
  /** The live tail of this table (`/audit/tail?…`) and where new rows go, when it has one. */
  readonly tail?: { readonly url: string; readonly after: number; readonly order: 'asc' | 'desc' };
}

const COLUMNS = ['Seq', 'Time', 'Who, where', 'Action', 'Decision', 'Rule', 'Reason', 'Result', 'Duration', 'Proof'] as const;

/** The records table in a keyboard-scrollable region, with its live switch when it tails. */
export function renderRecordTable(options: RecordTableOptions): SafeHtml {
  const { tail } = options;
  const head = COLUMNS.map((name) => html`<th scope="col"${name === 'Duration' ? html` class="num"` : ''}>${name}</th>`);
  const body = options.rows.length === 0 ? html`<tr class="empty"><td colspan="${COLUMNS.length}">${options.empty}</td></tr>` : options.rows.map(renderRecordRow);
  const controls =
    tail === undefined
      ? ''
      : html`<p class="tail-controls" hidden><button type="button" class="secondary" data-tail-toggle aria-pressed="false">Live: off</button> <span class="tail-state" aria-live="polite"></span></p>`;
  const attributes = tail === undefined ? '' : html` data-tail="${tail.url}" data-tail-order="${tail.order}" data-after="${tail.after}"`;
  return html`<section class="records"${attributes} aria-label="Records">${controls}<div class="table-wrap" role="region" aria-label="Records table" tabindex="0"><table>
<caption>${options.caption}</caption>
<thead><tr>${head}</tr></thead>
<tbody>${body}</tbody>
</table></div></section>`;
}
