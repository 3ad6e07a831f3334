/**
 * What `tollgate serve` writes to its log (real child process at log level debug, real IdP, real
 * upstream): after a browser login, requests with session cookies and bearer tokens, query
 * strings with secrets in them, a refused token, an upstream failure and a logout, no line holds
 * a cookie, a token, a query string or a configured secret.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, CLIENT_SECRET, TestUpstream, bearerFor, freePort } from '../helpers/http-gateway.js';
import { TestBrowser, startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { auditYaml, engineersYaml, httpResourceYaml, identityYaml, serveEnv, serverYaml, startServeProcess, type ServeProcess } from '../helpers/serve-process.js';

let idp: TestIdp;
let upstream: TestUpstream;
let dir: string;
let origin: string;
let gateway: ServeProcess | undefined;
const env = serveEnv('serve-logs');

beforeAll(async () => {
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  idp = await startOidcIdp({
    clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: [`${origin}/_tollgate/callback`], postLogoutRedirectUris: [`${origin}/`] }],
    users: [ALICE],
  });
  upstream = new TestUpstream();
  await upstream.listen();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-serve-logs-'));
  writeFileSync(
    join(dir, 'tollgate.yaml'),
    serverYaml({ publicUrl: origin, listen: `127.0.0.1:${port}` }) +
      identityYaml(idp.issuer) +
      'resources:\n' +
      httpResourceYaml('app', upstream.origin) +
      httpResourceYaml('down', 'http://127.0.0.1:1') +
      engineersYaml(['app', 'down']) +
      auditYaml('test.tollgate/serve-logs') +
      'logging:\n  level: debug\n',
  );
  gateway = await startServeProcess(dir, { ...env, CLIENT_SECRET });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await upstream?.close();
  await idp?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('tollgate serve logs', () => {
  it('never hold cookies, tokens, query strings or secrets', async () => {
    const served = gateway!;
    const browser = new TestBrowser();
    const atIdp = await browser.follow(`${origin}/_tollgate/login?return_to=${encodeURIComponent('/app/orders?card=4111111111111111')}`, { stopWhen: (url) => url.origin === idp.issuer });
    const callback = await idp.login(atIdp.stoppedAt!, { email: ALICE.email, password: ALICE.password }, browser);
    const landed = await browser.follow(callback);
    expect(landed.status).toBe(200);
    const session = browser.cookie(origin, 'tollgate_session') ?? '';
    expect(session.length).toBeGreaterThan(20);
    expect((await browser.request(`${origin}/app/report?month=CARD-QUERY-SECRET`)).status).toBe(200);

    const bearer = await bearerFor(idp, ALICE);
    const headers = { authorization: `Bearer ${bearer}` };
    expect((await sendRequest(served.httpBase, '/app/x?api_key=BEARER-QUERY-SECRET', { headers })).status).toBe(200);
    expect((await sendRequest(served.httpBase, '/down/x?reset=DOWN-QUERY-SECRET', { headers })).status).toBe(502);
    const forged = `${bearer.slice(0, bearer.lastIndexOf('.'))}.c2lnbmF0dXJlLW5vdC12YWxpZA`;
    expect((await sendRequest(served.httpBase, '/app/x?q=FORGED-QUERY-SECRET', { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
    const logout = await browser.request(`${origin}/_tollgate/logout`, { method: 'POST' });
    expect([302, 303]).toContain(logout.status);

    expect(await served.stop()).toBe(0);
    const text = served.logs.map((line) => JSON.stringify(line)).join('\n');
    // The log did see these events: the upstream failure and the shutdown.
    expect(served.logs.some((line) => line.msg === 'upstream failed')).toBe(true);
    expect(served.logs.some((line) => line.msg === 'HTTP gateway stopped')).toBe(true);
    const secrets = [
      session,
      bearer,
      bearer.split('.')[2] ?? '',
      forged.split('.')[2] ?? '',
      '4111111111111111',
      'CARD-QUERY-SECRET',
      'BEARER-QUERY-SECRET',
      'DOWN-QUERY-SECRET',
      'FORGED-QUERY-SECRET',
      CLIENT_SECRET,
      env.SESSION_KEY,
      env.DB_TOKEN_KEY,
      env.AUDIT_KEY,
    ];
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(10);
      expect(text).not.toContain(secret);
    }
  }, 60_000);
});
