/**
 * The whole gateway (`startGateway`, as `tollgate serve` runs it) started while its IdP's port
 * refuses connections: it serves what needs no IdP, answers 503 with Retry-After for what does,
 * and becomes ready once the IdP comes up on that port (real oidc-provider, upstream, audit log).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { AuditRecord } from '../../src/audit/index.js';
import { generateSignerKey } from '../../src/audit/index.js';
import { startGateway, type RunningGateway } from '../../src/cli/gateway.js';
import { configFileReader } from '../../src/cli/reload.js';
import { silentLogger } from '../../src/core/index.js';
import { createSessionCookies, type Session } from '../../src/identity/index.js';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, CLIENT_SECRET, DB_TOKEN_KEY, DEFAULT_POLICY_YAML, SESSION_KEY, TestUpstream, freePort, gatewayYaml, readAuditRecords } from '../helpers/http-gateway.js';
import { TestBrowser, startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';

const HOUR = 3_600_000;
const HTML = { accept: 'text/html' };

let dir: string;
let upstream: TestUpstream;
let gateway: RunningGateway;
let idp: TestIdp | undefined;
let origin: string;
let idpPort: number;
let issuer: string;
let configFile: string;
let configText: string;

/** A session cookie (`name=value`) sealed with the gateway's key, as an earlier gateway process would have. */
function sealedCookie(session: Partial<Session> = {}): string {
  const cookies = createSessionCookies({ publicUrl: gateway.config.server.public_url, identity: gateway.config.identity });
  const now = Date.now();
  const full: Session = { sessionId: `s-${Math.random().toString(36).slice(2)}`, subject: 'sub-alice', email: ALICE.email, groups: ['engineering'], user: ALICE.email, issuedAt: now, expiresAt: now + HOUR, ...session };
  return cookies.serializeSessionCookie(full).split(';', 1)[0] ?? '';
}

async function readiness(): Promise<{ status: number; body: { status: string; checks: Record<string, { ok: boolean; detail?: string }> } }> {
  const response = await fetch(`${gateway.admin.url}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, { ok: boolean; detail?: string }> } };
}

function lastFailure(method: string): AuditRecord | undefined {
  return readAuditRecords(join(dir, 'audit')).findLast((record) => record.kind === 'auth.failure' && (record.data as { method?: string }).method === method);
}

beforeAll(async () => {
  const port = await freePort();
  idpPort = await freePort();
  origin = `http://127.0.0.1:${port}`;
  issuer = `http://127.0.0.1:${idpPort}`;
  upstream = new TestUpstream();
  await upstream.listen();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-idp-deferred-'));
  const auditKey = generateSignerKey('test.tollgate').signerKey;
  configFile = join(dir, 'tollgate.yaml');
  configText = gatewayYaml({
    port,
    issuer,
    upstream: upstream.origin,
    auditDir: join(dir, 'audit'),
    signingKey: auditKey,
    sessionKeys: [SESSION_KEY],
    trustedProxies: [],
    policyYaml: DEFAULT_POLICY_YAML,
    appendTimeout: '2s',
  }).replace('listen: 127.0.0.1:6432', 'listen: 127.0.0.1:0');
  writeFileSync(configFile, configText);
  const reader = configFileReader(configFile, { cwd: dir, env: { CLIENT_SECRET, DB_TOKEN_KEY, AUDIT_KEY: auditKey }, stdout: () => undefined, stderr: () => undefined });
  const read = reader.read();
  if (!read.result.ok) throw new Error(JSON.stringify(read.result.errors));
  gateway = await startGateway(read.result.config, { logger: silentLogger, configFile: { reader, sha256: read.sha256 } });
}, 60_000);

afterAll(async () => {
  await gateway?.close('test');
  await idp?.close();
  await upstream?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('a gateway started while its IdP refuses connections', () => {
  it('is up but not ready, and says why', async () => {
    expect(gateway.identity.discovery.status).toBe('pending');
    expect((await fetch(`${gateway.admin.url}/healthz`)).status).toBe(200);
    const ready = await readiness();
    expect(ready.status).toBe(503);
    expect(ready.body.checks['idp']).toMatchObject({ ok: false, detail: expect.stringMatching(new RegExp(`not discovered: ${issuer}.*ECONNREFUSED`)) });
    expect(ready.body.checks['audit']).toMatchObject({ ok: true });
  });

  it('answers a browser login with 503 and Retry-After, as a page and as JSON, never a redirect', async () => {
    const page = await sendRequest(origin, '/_tollgate/login?return_to=%2Fapp%2F', { headers: HTML });
    expect(page.status).toBe(503);
    expect(Number(page.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('Sign-in temporarily unavailable');
    expect(page.body).toContain(String(page.headers['x-request-id']));
    expect(page.headers['set-cookie']).toBeUndefined();

    const json = await sendRequest(origin, '/_tollgate/login');
    expect(json.status).toBe(503);
    expect(JSON.parse(json.body)).toEqual({ error: 'idp_unavailable', message: expect.any(String), reason: 'idp-unavailable', request_id: json.headers['x-request-id'] });
  });

  it('answers the login callback with 503 and records the failed login, keeping the pending-login cookie', async () => {
    const callback = await sendRequest(origin, '/_tollgate/callback?code=abc&state=xyz', { headers: { ...HTML, cookie: 'tollgate_session_login=v1.pending' } });
    expect(callback.status).toBe(503);
    expect(callback.headers['retry-after']).toBeDefined();
    expect(callback.headers['set-cookie']).toBeUndefined();
    expect(lastFailure('oidc')).toMatchObject({ request_id: callback.headers['x-request-id'], data: { method: 'oidc', reason: 'idp-unavailable' } });
  });

  it('forwards requests with a session cookie sealed earlier with the same key', async () => {
    const response = await sendRequest(origin, '/app/orders', { headers: { ...HTML, cookie: sealedCookie() } });
    expect(response.status).toBe(200);
    const received = upstream.byRequestId(String(response.headers['x-request-id']));
    expect(received?.headers['x-tollgate-user']).toBe(ALICE.email);
  });

  it('answers a session that needs a refresh with 503, keeps it, and records the failed refresh', async () => {
    const cookie = sealedCookie({ accessExpiresAt: Date.now() - 1_000, refreshToken: 'refresh-token-from-before' });
    const before = upstream.requests.length;
    const response = await sendRequest(origin, '/app/orders', { headers: { ...HTML, cookie } });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBeDefined();
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(upstream.requests.length).toBe(before);
    const failure = lastFailure('refresh');
    expect(failure).toMatchObject({ request_id: response.headers['x-request-id'], principal: { email: ALICE.email }, data: { reason: 'idp-unavailable' } });
    expect(JSON.stringify(failure)).not.toContain('refresh-token-from-before');
  });

  it('answers a bearer token with 503, not 401, and records it without the token', async () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    const response = await sendRequest(origin, '/app/orders', { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(503);
    expect(response.headers['www-authenticate']).toBeUndefined();
    expect(response.headers['retry-after']).toBeDefined();
    expect(JSON.parse(response.body)).toMatchObject({ error: 'idp_unavailable', request_id: response.headers['x-request-id'] });
    const failure = lastFailure('bearer');
    expect(failure).toMatchObject({ request_id: response.headers['x-request-id'], data: { reason: 'idp-unavailable' } });
    expect(JSON.stringify(failure)).not.toContain(token);

    const socket = new WebSocket(`${origin.replace('http:', 'ws:')}/app/socket`, { headers: { authorization: `Bearer ${token}` } });
    const refused = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      socket.once('unexpected-response', (_request, res) => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
      socket.once('open', () => reject(new Error('the WebSocket opened')));
      socket.once('error', reject);
    });
    socket.terminate();
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBeDefined();
  });

  it('issues database tokens on /db for a valid session, and serves the audit pages', async () => {
    const cookie = sealedCookie();
    const db = await sendRequest(origin, '/db', { headers: { accept: 'application/json', cookie } });
    expect(db.status).toBe(200);
    const issued = JSON.parse(db.body) as { token: string };
    expect(issued.token).toMatch(/^tgdb_/);
    expect(gateway.identity.verifyDbToken(issued.token)).toMatchObject({ ok: true });
    const audit = await sendRequest(origin, '/audit', { headers: { ...HTML, cookie } });
    // Alice reviews nothing, but the pages answer her from her session: no 503, no login redirect.
    expect(audit.status).toBe(403);
  });

  it('reloads the config', async () => {
    writeFileSync(configFile, configText.replace('  - role: dba\n', '  - role: dba\n    users: [carol@example.com]\n'));
    const outcome = await gateway.reload('SIGHUP');
    expect(outcome).toMatchObject({ ok: true, changed: ['grants'] });
  });

  it('turns ready once the IdP listens on its port, and a browser login then succeeds', async () => {
    idp = await startOidcIdp({
      clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: [`${origin}/_tollgate/callback`], postLogoutRedirectUris: [`${origin}/`] }],
      users: [ALICE],
      port: idpPort,
    });
    const deadline = Date.now() + 30_000;
    let ready = await readiness();
    while (ready.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = await readiness();
    }
    expect(ready.status).toBe(200);
    expect(ready.body.checks['idp']).toEqual({ ok: true, detail: issuer });

    const browser = new TestBrowser();
    const atIdp = await browser.follow(`${origin}/_tollgate/login?return_to=${encodeURIComponent('/app/after-outage')}`, { stopWhen: (url) => url.origin === issuer });
    expect(atIdp.stoppedAt).toBeDefined();
    const callback = await idp.login(atIdp.stoppedAt!, { email: ALICE.email, password: ALICE.password }, browser);
    const landed = await browser.follow(callback);
    expect(landed.status).toBe(200);
    expect(landed.url.pathname).toBe('/app/after-outage');
    expect(readAuditRecords(join(dir, 'audit')).findLast((record) => record.kind === 'auth.login')).toMatchObject({ principal: { email: ALICE.email } });
  });
});
