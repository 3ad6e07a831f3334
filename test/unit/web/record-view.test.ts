import { describe, expect, it } from 'vitest';
import { genesisPrev, parseRecord, sealRecord, type AuditEvent, type QueryHit } from '../../../src/audit/index.js';
import { canonicalText, recordRows, renderRecordRow } from '../../../src/web/record-view.js';

const principal = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] };

function hits(events: readonly AuditEvent[]): QueryHit[] {
  let prev = genesisPrev('t/audit');
  return events.map((event, seq) => {
    const sealed = sealRecord(event, { logId: 't/audit', seq, prev, timeMs: Date.UTC(2025, 0, 1) + seq });
    prev = Buffer.from(sealed.leafHash).toString('hex');
    return { seq, record: sealed.record };
  });
}

const events: AuditEvent[] = [
  { kind: 'http.request', principal, resource: 'app', decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'allowed-by-rule' }, session_id: 's', data: { method: 'GET', path: '/app/<b>' } },
  { kind: 'http.request', principal, resource: 'app', decision: { effect: 'deny', rule: null, reason: 'no-matching-allow' }, session_id: 's', data: { method: 'POST', path: '/app/admin' } },
  { kind: 'http.response', principal, resource: 'app', session_id: 's', ref: 0, data: { status: 200, bytes_out: 2048, duration_ms: 1500 } },
  { kind: 'pg.query', principal, resource: 'shop', decision: { effect: 'allow', rule: 'engineer.allow[1]', reason: 'allowed-by-rule' }, session_id: 'q', data: { statement: 'select 1' } },
  { kind: 'pg.result', principal, resource: 'shop', session_id: 'q', ref: 3, data: { status: 'ok', rows: 1 } },
];
/** A page that ends between a statement and its result. */
const page = () => hits(events).filter((hit) => hit.seq !== 3);

describe('record rows', () => {
  it('joins each outcome into the row of the record its ref points at', () => {
    const rows = recordRows(page());
    expect(rows.map((row) => [row.seq, row.outcome?.seq ?? null])).toEqual([
      [0, 2],
      [1, null],
      // An outcome whose request is not among the rows stays a row of its own.
      [4, null],
    ]);
  });

  it('renders decision, rule, reason, result and duration, escaping the record', () => {
    const rows = recordRows(page());
    const allowed = String(renderRecordRow(rows[0]!));
    expect(allowed).toContain('<code>GET /app/&lt;b&gt;</code>');
    expect(allowed).toContain('<code>engineer.allow[0]</code>');
    expect(allowed).toContain('status <strong>200</strong> · 2.0 KiB');
    expect(allowed).toContain('<td data-col="duration" class="num">1.50 s</td>');
    expect(allowed).not.toContain('<b>');
    const denied = String(renderRecordRow(rows[1]!));
    expect(denied).toContain('class="denied"');
    expect(denied).toContain('default deny');
    expect(denied).toContain('not forwarded');
  });

  it("shows the record's canonical JSON: exactly the bytes that were sealed", () => {
    const sealed = sealRecord(
      { kind: 'pg.query', principal, resource: 'shop', decision: { effect: 'allow', rule: 'r', reason: 'allowed-by-rule' }, data: { statement: 'select "é", \'\u2028\'', params: [new Uint8Array([1, 2]), 10n ** 20n] } },
      { logId: 't/audit', seq: 0, prev: genesisPrev('t/audit'), timeMs: 0 },
    );
    const parsed = parseRecord(sealed.bytes);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(Buffer.from(canonicalText(parsed.record), 'utf8').equals(Buffer.from(sealed.bytes))).toBe(true);
  });
});
