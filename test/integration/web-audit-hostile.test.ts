import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryEvent } from '../../src/proxy/postgres/audit-events.js';
import type { TestBrowser } from '../helpers/oidc-idp.js';
import { ALICE } from '../helpers/http-gateway.js';
import { CAROL, VICTOR, principalOf, startWebAudit, type WebAuditHarness } from '../helpers/web-audit.js';

/**
 * The review pages against what a database user or another site can send them: a statement built
 * to blow up the page that lists it, and a cross-site link to an export.
 */

const HTML = { accept: 'text/html' };
/** What a browser sends when a link on another site is followed. */
const CROSS_SITE = { ...HTML, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const SAME_ORIGIN = { ...HTML, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

/** Subqueries nested 9,000 deep: 63 KB, under the record size limit. */
const NESTED = '(select'.repeat(9_000);

describe('audit review pages against hostile input', () => {
  let w: WebAuditHarness;
  let carol: TestBrowser;
  let victor: TestBrowser;

  const get = (browser: TestBrowser, path: string, headers: Record<string, string> = HTML, method = 'GET') => browser.request(`${w.h.url}${path}`, { method, headers });
  const exportRecords = () => w.h.records().filter((r) => r.kind === 'http.request' && r.data['path'] === '/audit/export');

  beforeAll(async () => {
    w = await startWebAudit({ chain: { pollMs: 50, fullMinIntervalMs: 50 } });
    ({ browser: carol } = await w.h.login(CAROL));
    ({ browser: victor } = await w.h.login(VICTOR));
  });

  afterAll(async () => {
    await w?.close();
  });

  it('lists records of a deeply nested statement in a page linear in their size, each shown unformatted with a note', async () => {
    const session = { sessionId: 'nested-statements', principal: principalOf(ALICE), resource: 'shop', login: 'reader', remote: '127.0.0.1' };
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) {
      // As the Postgres gateway records a statement its parser rejects: denied, with the whole text.
      const event = queryEvent({ session, decision: { effect: 'deny', rule: null, reason: 'statement-unparseable' }, protocol: 'simple', statement: null, text: NESTED, unclassified: 'syntax-error' });
      seqs.push((await w.h.store.append(event)).seq);
    }
    // Each row holds the statement and the record's raw JSON, both escaped, and little else.
    const bound = seqs.length * 3 * NESTED.length + 256 * 1024;
    for (const path of ['/audit/records', '/audit/sessions/nested-statements', '/audit/records?user=alice%40example.com']) {
      const page = await get(carol, path);
      expect(page.status, path).toBe(200);
      expect(Buffer.byteLength(page.body), path).toBeLessThanOrEqual(bound);
      for (const seq of seqs) expect(page.body, path).toContain(`<tr data-seq="${seq}"`);
      expect(page.body.split('Formatting skipped').length - 1, path).toBe(seqs.length);
    }
    const one = await get(carol, `/audit/records/${seqs[0]}`);
    expect(one.status).toBe(200);
    expect(Buffer.byteLength(one.body)).toBeLessThanOrEqual(3 * NESTED.length + 256 * 1024);
    expect(one.body).toContain(`<pre class="sql sql-unformatted"><code>${NESTED}</code></pre>`);
  });

  it('asks a browser another site sent to an export to confirm it, and runs and records nothing until then', async () => {
    const before = exportRecords().length;
    const query = '?format=jsonl&text=x&kind=pg.query&kind=http.request';
    const page = await get(carol, `/audit/export${query}`, CROSS_SITE);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-disposition')).toBeNull();
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
    expect(page.body).toContain('Export audit records?');
    expect(page.body).toContain('<form method="get" action="/audit/export">');
    expect(exportRecords()).toHaveLength(before);

    // The button repeats the same request, now from the page itself.
    const fields = [...page.body.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m): [string, string] => [m[1]!, m[2]!]);
    const repeated = `?${new URLSearchParams(fields).toString()}`;
    expect(repeated).toBe(query);
    const download = await get(carol, `/audit/export${repeated}`, SAME_ORIGIN);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toMatch(/^attachment; /);
    expect(exportRecords()).toHaveLength(before + 1);
    expect(exportRecords().at(-1)).toMatchObject({ principal: { email: 'carol@example.com' }, data: { export: { format: 'jsonl', filter: { text: 'x', kind: ['pg.query', 'http.request'] } } } });
  });

  it('records no export for a cross-site request of any kind, allowed or not, nor for a HEAD', async () => {
    const before = exportRecords().length;
    const denied = await get(victor, '/audit/export?format=ocsf', CROSS_SITE);
    expect(denied.status).toBe(200);
    expect(denied.body).toContain('Export audit records?');
    const api = await get(carol, '/audit/export?format=jsonl', { accept: 'application/json', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' });
    expect(api.status).toBe(403);
    expect(JSON.parse(api.body)).toMatchObject({ error: 'cross_site' });
    for (const headers of [CROSS_SITE, HTML]) {
      const head = await get(carol, '/audit/export?format=jsonl', headers, 'HEAD');
      expect(head.status).toBe(405);
      expect(head.headers.get('allow')).toBe('GET');
    }
    expect(exportRecords()).toHaveLength(before);
  });

  it('runs an export asked for without Fetch Metadata (curl, the CLI) as before', async () => {
    const before = exportRecords().length;
    const download = await get(carol, '/audit/export?format=jsonl&text=x');
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toMatch(/^attachment; /);
    expect(exportRecords()).toHaveLength(before + 1);
  });
});
