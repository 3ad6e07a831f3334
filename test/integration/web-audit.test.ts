import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVerifierKey, verifyProofBundle } from '../../src/audit/index.js';
import { editRecord, recordBytes } from '../helpers/audit-files.js';
import { ALICE, bearerFor } from '../helpers/http-gateway.js';
import { TestBrowser } from '../helpers/oidc-idp.js';
import { CAROL, VICTOR, principalOf, recordPgSession, startWebAudit, waitForVerified, type RecordedPgSession, type WebAuditHarness } from '../helpers/web-audit.js';

const HTML = { accept: 'text/html' };
const JSON_ACCEPT = { accept: 'application/json' };

const STATEMENTS = [
  'select id, total from orders where customer_id = 7 order by id',
  "update orders set status = 'paid' where id = 7",
  "select '<script>alert(1)</script>' as x",
];

function unescapeHtml(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/** The `<tr>` of record `seq` in a page. */
function rowOf(body: string, seq: number): string {
  const match = new RegExp(`<tr data-seq="${seq}"[\\s\\S]*?</tr>`).exec(body);
  if (match === null) throw new Error(`no row for record ${seq}`);
  return match[0];
}

/** The rows' seqs, in page order. */
function rowSeqs(body: string): number[] {
  return [...body.matchAll(/<tr data-seq="(\d+)"/g)].map((m) => Number(m[1]));
}

/** The `<tr>` of a session in the sessions table. */
function sessionRow(body: string, sessionId: string): string | null {
  const rows = body.match(/<tr>\s*<th scope="row">[\s\S]*?<\/tr>/g) ?? [];
  return rows.find((row) => row.includes(`/audit/sessions/${encodeURIComponent(sessionId)}"`)) ?? null;
}

describe('audit review pages', () => {
  let w: WebAuditHarness;
  let alice: TestBrowser;
  let carol: TestBrowser;
  let victor: TestBrowser;
  let pg: RecordedPgSession;
  let aliceSession: string;

  const get = (browser: TestBrowser, path: string, headers: Record<string, string> = HTML) => browser.request(`${w.h.url}${path}`, { headers });

  beforeAll(async () => {
    w = await startWebAudit({ chain: { pollMs: 50, fullMinIntervalMs: 50 } });
    ({ browser: alice } = await w.h.login(ALICE));
    expect((await get(alice, '/app/orders')).status).toBe(200);
    expect((await get(alice, '/app/admin/users')).status).toBe(403);
    aliceSession = w.h.records().find((r) => r.kind === 'http.request' && r.data['path'] === '/app/orders')?.session_id ?? '';
    pg = await recordPgSession(w.h.store, w.policy, principalOf(ALICE), STATEMENTS);
    await w.h.store.checkpointNow();
    await waitForVerified(w.pages, pg.querySeqs[2]!);
    ({ browser: carol } = await w.h.login(CAROL));
    ({ browser: victor } = await w.h.login(VICTOR));
  });

  afterAll(async () => {
    await w?.close();
  });

  it('refuses a principal without the audit permission with a 403 page that gives the reason', async () => {
    for (const path of ['/audit', '/audit/records', `/audit/sessions/${pg.sessionId}`, `/audit/proof/${pg.querySeqs[0]}`, '/audit/status']) {
      const page = await get(alice, path);
      expect(page.status, path).toBe(403);
      expect(page.body).toContain('Access denied');
      expect(page.body).toContain('no-matching-allow');
      // Nothing of the log leaks onto the refusal: no chain banner, no verifier key.
      expect(page.body).not.toContain('verifier-key');
    }
    const token = await bearerFor(w.h.idp, ALICE);
    const api = await fetch(`${w.h.url}/audit/records`, { headers: { authorization: `Bearer ${token}`, ...JSON_ACCEPT } });
    expect(api.status).toBe(403);
    expect(await api.json()).toMatchObject({ error: 'forbidden', reason: 'no-matching-allow' });
  });

  it('sends an anonymous browser to login', async () => {
    const page = await get(new TestBrowser(), '/audit/records?effect=deny');
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toMatch(/^\/_tollgate\/login\?/);
  });

  it('lists sessions with who, resources, times, counts and denials, under a strict Content Security Policy', async () => {
    const page = await get(carol, '/audit');
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(page.body).not.toMatch(/\sstyle=/);

    const row = sessionRow(page.body, pg.sessionId);
    expect(row).not.toBeNull();
    expect(row).toContain('alice@example.com');
    expect(row).toContain('shop');
    const numbers = [...(row ?? '').matchAll(/<td class="num">(?:<span class="count-deny">)?([^<]+)/g)].map((m) => m[1]);
    // Duration, requests, statements, denials, records.
    expect(numbers.slice(1)).toEqual(['0', '3', '1', '7']);
    expect(sessionRow(page.body, aliceSession)).toContain('app');
  });

  it('filters sessions by user, resource, decision, text and time, in shareable URLs', async () => {
    const ids = async (query: string) => {
      const page = await get(carol, `/audit${query}`);
      expect(page.status, query).toBe(200);
      return { pg: sessionRow(page.body, pg.sessionId) !== null, browser: sessionRow(page.body, aliceSession) !== null, body: page.body };
    };
    expect(await ids('?user=ALICE%40example.com')).toMatchObject({ pg: true, browser: true });
    expect(await ids('?user=bob%40example.com')).toMatchObject({ pg: false, browser: false });
    expect(await ids('?resource=shop')).toMatchObject({ pg: true, browser: false });
    expect(await ids('?effect=deny')).toMatchObject({ pg: true, browser: true });
    expect(await ids('?effect=deny&resource=app')).toMatchObject({ pg: false, browser: true });
    expect(await ids('?text=customer_id+%3D+7')).toMatchObject({ pg: true, browser: false });
    const future = await ids('?since=2999-01-01');
    expect(future).toMatchObject({ pg: false, browser: false });
    expect(future.body).toContain('No sessions match this filter.');
    expect(await ids('?since=1h&until=2999-01-01T00%3A00%3A00Z')).toMatchObject({ pg: true, browser: true });
    // The form shows the filter again.
    expect((await ids('?user=alice%40example.com&effect=deny')).body).toMatch(/<option value="deny" selected>/);

    const bad = await get(carol, '/audit?effect=maybe&since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('effect is allow or deny');
    expect(bad.body).toContain('From &quot;yesterday&quot;');
  });

  it('pages through sessions with cursors', async () => {
    const first = await get(carol, '/audit?limit=1');
    const next = /<a rel="next" href="([^"]+)"/.exec(first.body)?.[1];
    expect(next).toMatch(/cursor=\d+/);
    const second = await get(carol, unescapeHtml(next ?? ''));
    expect(second.status).toBe(200);
    const linkOf = (body: string) => /<th scope="row"><a href="(\/audit\/sessions\/[^"]+)"/.exec(body)?.[1];
    expect(linkOf(second.body)).toBeDefined();
    expect(linkOf(second.body)).not.toBe(linkOf(first.body));
  });

  it('shows a session: every statement in order with decision, rule, reason, result and duration, SQL formatted and escaped', async () => {
    const page = await get(carol, `/audit/sessions/${pg.sessionId}`);
    expect(page.status).toBe(200);
    const [q0, q1, q2] = pg.querySeqs as [number, number, number];
    // Outcomes are joined into the rows of what they complete.
    expect(rowSeqs(page.body)).toEqual([pg.connectSeq, q0, q1, q2]);
    expect(page.body).toMatch(/<dt>Statements<\/dt><dd>3<\/dd>/);

    const allowed = rowOf(page.body, q0);
    expect(allowed).toContain('effect-allow');
    expect(allowed).toContain('<code>engineer.allow[1]</code>');
    expect(allowed).toContain('<code>allowed-by-rule</code>');
    expect(allowed).toMatch(/<strong>ok<\/strong> · <code>SELECT 1<\/code>/);
    expect(allowed).toMatch(/<td data-col="duration" class="num">3 ms<\/td>/);
    expect(allowed).toContain('<span class="sql-keyword">select</span> id, total\n<span class="sql-keyword">from</span> orders\n<span class="sql-keyword">where</span>');

    const denied = rowOf(page.body, q1);
    expect(denied).toContain('class="denied"');
    expect(denied).toContain('effect-deny');
    expect(denied).toContain('default deny');
    expect(denied).toContain('<code>no-matching-allow</code>');
    expect(denied).toContain('not forwarded');

    const hostile = rowOf(page.body, q2);
    expect(hostile).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.body).not.toContain('<script>alert(1)');
    expect(rowOf(page.body, pg.connectSeq)).toContain('3 statements, 1 denied');
  });

  it("shows each record's raw canonical JSON, byte for byte the stored record", async () => {
    const seq = pg.querySeqs[1]!;
    const page = await get(carol, `/audit/records/${seq}`);
    expect(page.status).toBe(200);
    const raw = new RegExp(`<pre id="raw-${seq}">([^<]*)</pre>`).exec(page.body)?.[1];
    expect(raw).toBeDefined();
    expect(Buffer.from(unescapeHtml(raw ?? ''), 'utf8').equals(recordBytes(w.h.auditDir, seq))).toBe(true);
  });

  it('lists records by filter, newest first, and answers API clients with JSON', async () => {
    const page = await get(carol, '/audit/records?effect=deny');
    const seqs = rowSeqs(page.body);
    expect(seqs).toContain(pg.querySeqs[1]);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    for (const seq of seqs) expect(rowOf(page.body, seq)).toContain('effect-deny');

    const api = await get(carol, `/audit/records?session=${pg.sessionId}&kind=pg.query`, JSON_ACCEPT);
    expect(api.status).toBe(200);
    const json = JSON.parse(api.body) as { records: { seq: number; outcome: { seq: number } | null }[]; chain: { state: string } };
    expect(json.records.map((r) => r.seq)).toEqual([...pg.querySeqs].reverse());
    expect(json.records.find((r) => r.seq === pg.querySeqs[0])?.outcome?.seq).toBe(pg.querySeqs[0]! + 1);
    expect(json.chain.state).toBe('verified');
  });

  it('hands out a tlog-proof of a record that verifyProofBundle accepts with the published key', async () => {
    const seq = pg.querySeqs[0]!;
    const response = await get(carol, `/audit/proof/${seq}`, { accept: 'text/plain' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const key = await get(carol, '/audit/verifier-key', { accept: 'text/plain' });
    expect(key.body.trim()).toBe(w.h.auditVerifierKey);
    const verified = verifyProofBundle(response.body, [parseVerifierKey(key.body.trim())], recordBytes(w.h.auditDir, seq), { origin: w.h.config.audit.log_id });
    expect(verified).toMatchObject({ ok: true, index: seq, record: { kind: 'pg.query' } });

    const unsigned = await get(carol, '/audit/proof/999999', { accept: 'text/plain' });
    expect(unsigned.status).toBe(409);
    expect(JSON.parse(unsigned.body)).toMatchObject({ error: 'not_signed' });
  });

  it('exports the current filter as JSONL and as OCSF, as an audited download', async () => {
    const jsonl = await get(carol, `/audit/export?format=jsonl&session=${pg.sessionId}`);
    expect(jsonl.status).toBe(200);
    expect(jsonl.headers.get('content-disposition')).toMatch(/^attachment; filename="test\.tollgate_audit-.*\.jsonl"$/);
    const lines = jsonl.body.trimEnd().split('\n');
    const expected = w.h.records().filter((r) => r.session_id === pg.sessionId);
    expect(lines).toHaveLength(expected.length);
    lines.forEach((line, i) => expect(Buffer.from(line).equals(recordBytes(w.h.auditDir, expected[i]!.seq))).toBe(true));

    const ocsf = await get(carol, `/audit/export?format=ocsf&session=${pg.sessionId}&kind=pg.query`);
    expect(ocsf.status).toBe(200);
    const events = ocsf.body.trimEnd().split('\n').map((line) => JSON.parse(line) as { class_uid: number });
    expect(events).toHaveLength(3);
    expect(events.every((event) => event.class_uid === 6005)).toBe(true);

    const requests = w.h.records().filter((r) => r.kind === 'http.request' && r.data['path'] === '/audit/export');
    expect(requests.at(-2)).toMatchObject({ principal: { email: 'carol@example.com' }, decision: { effect: 'allow' }, data: { export: { format: 'jsonl', filter: { session_id: pg.sessionId } } } });
    const done = w.h.records().find((r) => r.kind === 'http.response' && r.ref === requests.at(-2)?.seq);
    expect(done).toMatchObject({ data: { status: 200, bytes_out: Buffer.byteLength(jsonl.body) } });

    const refused = await get(victor, '/audit/export?format=jsonl');
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('export');
    expect(w.h.records().filter((r) => r.kind === 'http.request' && r.data['path'] === '/audit/export').at(-1)).toMatchObject({
      principal: { email: 'victor@example.com' },
      decision: { effect: 'deny', reason: 'no-matching-allow' },
    });
    // Viewing is allowed to the same reviewer.
    expect((await get(victor, '/audit')).status).toBe(200);
    expect((await get(carol, '/audit/export?format=csv')).status).toBe(400);
  });

  it('streams new records matching the filter as server-sent events', async () => {
    const newest = w.h.records().at(-1)?.seq ?? -1;
    const controller = new AbortController();
    const response = await fetch(`${w.h.url}/audit/tail?user=alice%40example.com&after=${newest}`, {
      headers: { cookie: carol.cookieHeader(w.h.url), accept: 'text/event-stream' },
      signal: controller.signal,
    });
    try {
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      expect((await get(alice, '/app/live-check')).status).toBe(200);
      let text = '';
      while (!/event: result\n/.test(text) || !text.includes('/app/live-check')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      const event = /id: (\d+)\nevent: record\ndata: (.*)\n\n/.exec(text);
      expect(event).not.toBeNull();
      const data = JSON.parse(event![2]!) as { seq: number; html: string };
      expect(data.seq).toBe(Number(event![1]));
      expect(data.seq).toBeGreaterThan(newest);
      expect(data.html).toContain('<code>GET /app/live-check</code>');
      expect(data.html).toContain('effect-allow');
      const result = /event: result\ndata: (.*)\n\n/.exec(text);
      expect(JSON.parse(result![1]!)).toMatchObject({ ref: data.seq, result: expect.stringContaining('status <strong>200</strong>') });
    } finally {
      controller.abort();
    }
  });

  it('serves its script and stylesheet from /audit/assets with integrity, without login', async () => {
    const page = await get(carol, '/audit');
    for (const [tag, attribute] of [
      ['script', 'src'],
      ['link', 'href'],
    ] as const) {
      const match = new RegExp(`<${tag}[^>]*${attribute}="(/audit/assets/[^"]+)" integrity="(sha384-[^"]+)"`).exec(page.body);
      expect(match, tag).not.toBeNull();
      const asset = await fetch(`${w.h.url}${match![1]}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('cache-control')).toContain('immutable');
      const body = Buffer.from(await asset.arrayBuffer());
      expect(`sha384-${createHash('sha384').update(body).digest('base64')}`).toBe(match![2]);
    }
    expect((await fetch(`${w.h.url}/audit/assets/nothing.js`)).status).toBe(404);
  });

  it('shows the verified chain on every page, and turns it red naming the first bad seq after a record is tampered with', async () => {
    const page = await get(carol, '/audit/records');
    expect(page.body).toContain('chain-verified');
    expect(page.body).toMatch(/Audit log verified up to checkpoint \d+/);
    expect(page.body).toContain(`data-log-id="${w.h.config.audit.log_id}"`);
    const label = w.h.auditVerifierKey.split('+').slice(0, 2).join('+');
    expect(page.body).toContain(`>${label}</code>`);

    const altered = pg.querySeqs[0]!;
    editRecord(w.h.auditDir, altered, (json) => json.replace('customer_id = 7', 'customer_id = 8'));
    let body = '';
    for (let attempt = 0; attempt < 200 && !body.includes('chain-failed'); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      body = (await get(carol, '/audit')).body;
    }
    expect(body).toContain('chain-failed');
    // The altered record's successor no longer chains to it.
    expect(body).toContain(`FAILED at seq ${altered + 1}: prev-mismatch`);
    expect(body).toContain(`record ${altered} was altered`);
    expect(w.pages.chainStatus()).toMatchObject({ state: 'failed', failure: { seq: altered + 1 } });
  });
});
