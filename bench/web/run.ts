import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSignerKey, openFileStore, parseSignerKey, type AuditEvent } from '../../src/audit/index.js';
import { compilePolicy } from '../../src/policy/index.js';
import { createAuditPages, type AuditCaller, type AuditPages } from '../../src/web/index.js';

/**
 * The audit review pages on a log of 1,000,000 records: how long each page takes through HTTP
 * (the pages' own handler on a plain server; the gateway's authentication is measured by the
 * HTTP bench), how long the first look at a fresh log takes (building the query index), and how
 * long the background chain checks take before the banner turns green.
 *
 *   node --import tsx bench/web/run.ts [records]
 */

const RECORDS = Number(process.argv[2] ?? 1_000_000);
const USERS = 1_000;
const SESSION_RECORDS = 20;
const LOG_ID = 'bench.example/audit';

const principalOf = (user: number) => ({ subject: `user-${user}`, email: `user${user}@example.com`, groups: ['engineering'] });

/** Sessions of 20 records: Postgres sessions (connect, statements and results, one denial, disconnect) and browser sessions. */
function eventFor(n: number): AuditEvent {
  const session = Math.floor(n / SESSION_RECORDS);
  const at = n % SESSION_RECORDS;
  const principal = principalOf(session % USERS);
  const session_id = `session-${session}`;
  if (session % 2 === 0) {
    const base = { principal, resource: 'shop', session_id };
    if (at === 0) return { ...base, kind: 'pg.connect', data: { login: 'reader', upstream_user: 'shop_reader', database: 'shop' } };
    if (at === SESSION_RECORDS - 1) return { ...base, kind: 'pg.disconnect', ref: n - at, data: { statements: 9, denied: 1, duration_ms: 5_000, closed_by: 'client' } };
    if (at % 2 === 1) {
      const denied = at === 17;
      const statement = denied ? `update orders set status = 'paid' where id = ${n}` : `select id, total from orders where customer_id = ${n} order by id limit 10`;
      return {
        ...base,
        kind: 'pg.query',
        decision: denied ? { effect: 'deny', rule: null, reason: 'no-matching-allow' } : { effect: 'allow', rule: 'engineer.allow[1]', reason: 'allowed-by-rule' },
        data: { login: 'reader', protocol: 'simple', statement, command: denied ? 'UPDATE' : 'SELECT', class: denied ? 'write' : 'read', tables: ['public.orders'] },
      };
    }
    return { ...base, kind: 'pg.result', ref: n - 1, data: { status: 'ok', command_tag: 'SELECT 10', rows: 10, duration_ms: 3 } };
  }
  const base = { principal, resource: 'app', session_id, request_id: `req-${n}` };
  if (at === 0) return { principal, session_id, kind: 'auth.login', data: { method: 'oidc', user: principal.email } };
  if (at % 2 === 1) {
    return { ...base, kind: 'http.request', decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'allowed-by-rule' }, data: { method: 'GET', path: `/app/orders/${n}`, host: 'gw.example.com' } };
  }
  return { ...base, kind: 'http.response', ref: n - 1, data: { status: 200, bytes_in: 0, bytes_out: 5_000, duration_ms: 12 } };
}

async function writeLog(dir: string, signerKey: string): Promise<void> {
  const store = await openFileStore({ dir, logId: LOG_ID, signer: parseSignerKey(signerKey), durability: 'interval' });
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (next < RECORDS) await store.append(eventFor(next++));
      }),
    );
  } finally {
    await store.close();
  }
}

function serve(pages: AuditPages, caller: AuditCaller): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://bench');
    void pages.route.handle({
      req,
      res,
      requestId: 'bench',
      path: url.pathname,
      query: url.search,
      client: { remote: '127.0.0.1', userAgent: 'bench' },
      html: (req.headers.accept ?? '').includes('text/html'),
      requireCaller: () => Promise.resolve(caller),
      record: () => Promise.resolve(0),
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function timed(base: string, path: string, accept = 'text/html'): Promise<{ ms: number; status: number; bytes: number }> {
  const started = performance.now();
  const response = await fetch(`${base}${path}`, { headers: { accept } });
  const body = await response.arrayBuffer();
  return { ms: performance.now() - started, status: response.status, bytes: body.byteLength };
}

async function median(base: string, path: string, runs: number, accept?: string): Promise<{ ms: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const result = await timed(base, path, accept);
    if (result.status !== 200) throw new Error(`${path} answered ${result.status}`);
    times.push(result.ms);
    bytes = result.bytes;
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, bytes };
}

async function until(condition: () => boolean, limitMs: number): Promise<number> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > limitMs) throw new Error('the chain check did not finish in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return performance.now() - started;
}

const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-web-'));
const keys = generateSignerKey('bench.example');
const rows: [string, string][] = [];
let pages: AuditPages | null = null;
let server: Server | null = null;
try {
  let started = performance.now();
  await writeLog(dir, keys.signerKey);
  rows.push([`write ${RECORDS.toLocaleString('en-US')} records (${(RECORDS / SESSION_RECORDS).toLocaleString('en-US')} sessions, ${USERS} users)`, `${((performance.now() - started) / 1000).toFixed(1)} s`]);

  const policy = compilePolicy({ resources: [], roles: { security: { allow: [{ audit: ['view', 'export'] }], deny: [] } }, grants: [{ role: 'security', users: ['carol@example.com'], groups: [] }] });
  started = performance.now();
  const created = await createAuditPages({ dir, logId: LOG_ID, verifierKeys: [keys.verifierKey], policy, chain: { pollMs: 50 } });
  pages = created;
  rows.push(['start the pages (assets, index opened)', `${(performance.now() - started).toFixed(0)} ms`]);

  // The background chain checks first, alone: the full check (`verifyLog`, one worker thread)
  // gives the first green banner; the first incremental pass reads the whole log once, and
  // afterwards only the records of each new checkpoint.
  const full = await until(() => created.chainStatus().fullCheck !== null, 110_000);
  rows.push(['chain status: first full verification done (banner green)', `${(full / 1000).toFixed(1)} s after start`]);
  const incremental = await until(() => created.chainStatus().verified?.signedAt != null, 110_000);
  rows.push(['chain status: first incremental pass done', `${((full + incremental) / 1000).toFixed(1)} s after start`]);
  if (created.chainStatus().state !== 'verified') throw new Error(`the bench log did not verify: ${created.chainStatus().state}`);

  server = await serve(created, { principal: { subject: 'carol', email: 'carol@example.com', groups: [] }, user: 'carol@example.com', auth: 'session', revoked: () => false });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cold = await timed(base, '/audit');
  rows.push(['first `/audit` on a fresh log (builds the query index)', `${(cold.ms / 1000).toFixed(2)} s`]);
  const probes: [string, string][] = [
    ['`/audit` (latest 50 sessions)', '/audit'],
    ['`/audit?user=…` (one user)', `/audit?user=${encodeURIComponent('user500@example.com')}`],
    ['`/audit?effect=deny` (sessions with a denial)', '/audit?effect=deny'],
    ['`/audit?text=…` (text search reads every record)', `/audit?text=${encodeURIComponent('customer_id = 4242')}`],
    ['`/audit/records` (latest 100 records)', '/audit/records'],
    ['`/audit/records?effect=deny`', '/audit/records?effect=deny'],
    ['`/audit/sessions/<id>` (one session, 20 records)', `/audit/sessions/session-${Math.floor(RECORDS / SESSION_RECORDS / 4) * 2}`],
    ['`/audit/records/<seq>`', `/audit/records/${Math.floor(RECORDS / 2)}`],
  ];
  for (const [label, path] of probes) {
    const runs = path.includes('text=') ? 3 : 10;
    const result = await median(base, path, runs);
    rows.push([label, `**${result.ms.toFixed(0)} ms** median of ${runs} (${(result.bytes / 1024).toFixed(0)} KiB)`]);
  }
  const proofPath = `/audit/proof/${Math.floor(RECORDS / 2)}`;
  const firstProof = await timed(base, proofPath, 'text/plain');
  const cachedProof = await timed(base, proofPath, 'text/plain');
  rows.push(['`/audit/proof/<seq>` (reads every record the checkpoint covers)', `${firstProof.ms.toFixed(0)} ms; again (cached) ${cachedProof.ms.toFixed(1)} ms`]);
} finally {
  await pages?.close();
  await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
  rmSync(dir, { recursive: true, force: true });
}

console.log(['| audit review pages | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n'));
