import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { AuditRecord } from '../../src/audit/index.js';
import { manualClock } from '../../src/core/index.js';
import { createSessionCookies, type Session } from '../../src/identity/index.js';
import { Sealer } from '../../src/identity/seal.js';
import { ALICE, BOB, MALLORY, SESSION_KEY, freePort, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';
import { TestBrowser, type IdpUser } from '../helpers/oidc-idp.js';

const HTML = { accept: 'text/html' };
const JSON_ACCEPT = { accept: 'application/json' };
const HOUR = 3_600_000;

function kinds(records: readonly AuditRecord[]): string[] {
  return records.map((record) => record.kind);
}

/** Starts a login in `browser` and stops where the browser is sent to the IdP. */
async function toIdp(h: GatewayHarness, browser: TestBrowser, path = '/_tollgate/login'): Promise<URL> {
  const page = await browser.follow(`${h.url}${path}`, { stopWhen: (url) => url.origin === h.idp.issuer });
  if (page.stoppedAt === undefined) throw new Error(`no redirect to the IdP from ${path}: ${page.status}`);
  return page.stoppedAt;
}

/** Reseals the pending-login cookie with changed fields, as only a holder of the session key could. */
function forgePending(value: string, changes: Record<string, unknown>): string {
  const sealer = new Sealer([SESSION_KEY], 'pending-login');
  const opened = sealer.open(value);
  if (!opened.ok) throw new Error(opened.reason);
  const data = { ...(opened.data as Record<string, unknown>), ...changes };
  for (const [key, change] of Object.entries(changes)) if (change === undefined) delete data[key];
  return sealer.seal(data);
}

describe('browser login through the gateway', () => {
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGatewayHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('logs in end to end and returns to the original path, with the session cookie never reaching the upstream', async () => {
    const browser = new TestBrowser();
    const first = await browser.request(`${h.url}/app/orders?page=2`, { headers: HTML });
    expect(first.status).toBe(302);
    const authorization = await toIdp(h, browser, first.headers.get('location') ?? '');
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    const callback = await h.idp.login(authorization, ALICE, browser);
    expect(callback.pathname).toBe('/_tollgate/callback');
    const back = await browser.request(callback);
    expect(back.status).toBe(302);
    expect(back.headers.get('location')).toBe('/app/orders?page=2');
    const cookies = back.headers.getSetCookie();
    expect(cookies.some((cookie) => /^tollgate_session=v1\./.test(cookie) && /HttpOnly/.test(cookie) && /SameSite=Lax/.test(cookie))).toBe(true);

    const page = await browser.request(`${h.url}/app/orders?page=2`, { headers: { ...HTML } });
    expect(page.status).toBe(200);
    const requestId = page.headers.get('x-request-id') ?? '';
    const seen = h.upstream.byRequestId(requestId);
    expect(seen?.headers['x-tollgate-user']).toBe('alice@example.com');
    // The browser also holds the IdP's cookies (same host, another port); only the gateway's are withheld.
    expect(seen?.headers.cookie).toEqual(expect.any(String));
    expect(seen?.headers.cookie).not.toMatch(/tollgate_session/);

    const login = h.records().find((record) => record.kind === 'auth.login' && record.principal?.email === 'alice@example.com');
    const request = h.records().find((record) => record.request_id === requestId);
    expect(login?.session_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(request).toMatchObject({ kind: 'http.request', session_id: login?.session_id, data: { auth: 'session' } });
    expect(JSON.stringify(h.records())).not.toContain(browser.cookie(h.url, 'tollgate_session') ?? 'no-cookie');
  });

  it.each([
    '//evil.example/x',
    'https://evil.example/x',
    '/\\evil.example',
    '%2F%2Fevil.example',
    '/%2F%2Fevil.example',
    '/%5Cevil.example',
    '/%252F%252Fevil.example',
    '/%09/evil.example',
    'javascript:alert(1)',
  ])('lands on a gateway path after login whatever return_to says: %s', async (returnTo) => {
    const { landed } = await h.login(ALICE, `/_tollgate/login?return_to=${encodeURIComponent(returnTo)}`);
    expect(landed.origin).toBe(h.url);
    expect(landed.pathname).toBe('/');
  });

  it('refuses a callback whose state belongs to another login, and records why', async () => {
    const victim = new TestBrowser();
    await toIdp(h, victim);
    const attacker = new TestBrowser();
    const callback = await h.idp.login(await toIdp(h, attacker), MALLORY, attacker);
    const response = await victim.request(callback, { headers: HTML });
    expect(response.status).toBe(400);
    expect(response.body).toContain('state-mismatch');
    expect(response.headers.getSetCookie()).toEqual([]);
    const failure = h.records().findLast((record) => record.kind === 'auth.failure');
    expect(failure).toMatchObject({ data: { method: 'oidc', reason: 'state-mismatch' }, request_id: response.headers.get('x-request-id') });
  });

  it('refuses a reused authorization code', async () => {
    const browser = new TestBrowser();
    const authorization = await toIdp(h, browser);
    const pending = browser.cookie(h.url, 'tollgate_session_login') ?? '';
    const callback = await h.idp.login(authorization, ALICE, browser);
    expect((await browser.request(callback)).status).toBe(302);
    browser.setCookie(h.url, 'tollgate_session_login', pending);
    const replay = await browser.request(callback, { headers: HTML });
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('code-rejected');
  });

  it.each([
    ['nonce-mismatch', { no: 'another-nonce' }],
    ['missing-pkce-verifier', { cv: undefined }],
  ])('refuses a callback with %s', async (reason, changes) => {
    const browser = new TestBrowser();
    const authorization = await toIdp(h, browser);
    const callback = await h.idp.login(authorization, ALICE, browser);
    browser.setCookie(h.url, 'tollgate_session_login', forgePending(browser.cookie(h.url, 'tollgate_session_login') ?? '', changes));
    const response = await browser.request(callback);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'login_failed', reason });
    expect(browser.cookie(h.url, 'tollgate_session')).toBeUndefined();
  });

  it('treats a tampered session cookie as no session: back to login, the failure recorded, nothing forwarded', async () => {
    const { browser } = await h.login(ALICE);
    const value = browser.cookie(h.url, 'tollgate_session') ?? '';
    const flipped = `${value.slice(0, -3)}${value.at(-3) === 'A' ? 'B' : 'A'}${value.slice(-2)}`;
    browser.setCookie(h.url, 'tollgate_session', flipped);
    const before = h.upstream.requests.length;
    const response = await browser.request(`${h.url}/app/x`, { headers: HTML });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toMatch(/^\/_tollgate\/login\?return_to=/);
    expect(response.headers.getSetCookie()).toContain('tollgate_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax');
    expect(h.upstream.requests.length).toBe(before);
    expect(h.records().findLast((record) => record.kind === 'auth.failure')).toMatchObject({ data: { method: 'session', reason: 'cookie-tampered' } });
  });

  it('reads the session cookie one way only: a junk value that came along with a real one does not open that session on its own', async () => {
    const { browser } = await h.login(ALICE);
    const value = browser.cookie(h.url, 'tollgate_session') ?? '';
    const send = (cookie: string) => fetch(`${h.url}/app/x`, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
    // A space before `=` still names the session cookie (RFC 6265 §5.2 trims the name).
    const both = await send(`tollgate_session=junk-key; tollgate_session =${value}`);
    expect(both.status).toBe(200);
    const before = h.upstream.requests.length;
    const junk = await send('tollgate_session=junk-key');
    expect(junk.status).toBe(302);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('logs out: clears the cookie, records it, sends the browser to the IdP, and the old cookie stops working', async () => {
    const { browser } = await h.login(ALICE);
    const sessionCookie = browser.cookie(h.url, 'tollgate_session') ?? '';
    const response = await browser.request(`${h.url}/_tollgate/logout`, { method: 'POST', body: new URLSearchParams() });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location') ?? '');
    expect(location.origin).toBe(h.idp.issuer);
    expect(location.searchParams.get('id_token_hint')).toEqual(expect.any(String));
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(`${h.url}/`);
    expect(browser.cookie(h.url, 'tollgate_session')).toBeUndefined();
    expect(h.records().findLast((record) => record.kind === 'auth.logout')).toMatchObject({ principal: { email: 'alice@example.com' }, data: { reason: 'logout' } });

    browser.setCookie(h.url, 'tollgate_session', sessionCookie);
    const replay = await browser.request(`${h.url}/app/x`, { headers: HTML });
    expect(replay.status).toBe(302);
    expect(replay.headers.get('location')).toMatch(/^\/_tollgate\/login/);
  });

  it('asks before signing out a browser that another site sent to the logout path', async () => {
    const { browser } = await h.login(ALICE);
    const logouts = h.records().filter((record) => record.kind === 'auth.logout').length;
    const asked = await browser.request(`${h.url}/_tollgate/logout`, { headers: { ...HTML, 'sec-fetch-site': 'cross-site' } });
    expect(asked.status).toBe(200);
    expect(asked.body).toContain('<form method="post" action="/_tollgate/logout">');
    expect(asked.headers.getSetCookie()).toEqual([]);
    expect(h.records().filter((record) => record.kind === 'auth.logout')).toHaveLength(logouts);
    expect((await browser.request(`${h.url}/app/x`, { headers: HTML })).status).toBe(200);
    const confirmed = await browser.request(`${h.url}/_tollgate/logout`, { method: 'POST', body: new URLSearchParams(), headers: { 'sec-fetch-site': 'same-origin' } });
    expect(confirmed.status).toBe(302);
    expect(browser.cookie(h.url, 'tollgate_session')).toBeUndefined();
    expect(h.records().filter((record) => record.kind === 'auth.logout')).toHaveLength(logouts + 1);
  });

  it('shows the /db page: the databases policy grants, a fresh recorded token and a psql command', async () => {
    const { browser } = await h.login(ALICE);
    const page = await browser.request(`${h.url}/db`, { headers: HTML });
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.body).toContain('<code>shop</code>');
    expect(page.body).toContain('<code>reader</code>');
    expect(page.body).not.toContain('<code>writer</code>');
    const token = /<pre>(tgdb_[^<]+)<\/pre>/.exec(page.body)?.[1] ?? '';
    const verified = h.identity.verifyDbToken(token);
    expect(verified).toMatchObject({ ok: true, principal: { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] } });
    expect(page.body).toContain(`psql &quot;host=127.0.0.1 port=6432 dbname=shop user=alice@example.com sslmode=disable&quot;`);
    const issued = h.records().findLast((record) => record.kind === 'token.issued');
    expect(issued).toMatchObject({ principal: { email: 'alice@example.com' }, data: { token_id: verified.ok ? verified.tokenId : '', issued_via: 'db-page' } });
    expect(JSON.stringify(issued)).not.toContain(token);

    const { browser: dba } = await h.login(BOB);
    const json = JSON.parse((await dba.request(`${h.url}/db`, { headers: { accept: 'application/json' } })).body) as { databases: { name: string; logins: string[] }[]; token: string };
    expect(json.databases).toEqual([expect.objectContaining({ name: 'shop', logins: ['reader', 'writer'] })]);

    const { browser: nobody } = await h.login(MALLORY);
    const none = await nobody.request(`${h.url}/db`, { headers: HTML });
    expect(none.body).toContain('grant no access');
    expect(none.body).not.toContain('tgdb_');

    const anonymous = await new TestBrowser().request(`${h.url}/db`, { headers: HTML });
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('location')).toBe('/_tollgate/login?return_to=%2Fdb');
  });

  it('serves the JWKS and a home page on the public host', async () => {
    const jwks = await fetch(`${h.url}/.well-known/tollgate/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(await jwks.json()).toEqual({ keys: [expect.objectContaining({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: expect.any(String) })] });
    const { browser } = await h.login(ALICE);
    const home = await browser.request(`${h.url}/`, { headers: HTML });
    expect(home.body).toContain('alice@example.com');
    expect(home.body).toContain('href="/app/"');
  });
});

describe('sessions over time', () => {
  it('refuses an expired session and sends the browser to log in again', async () => {
    const clock = manualClock(Date.now());
    const h = await startGatewayHarness({ clock });
    try {
      const { browser } = await h.login(ALICE);
      expect((await browser.request(`${h.url}/app/x`, { headers: HTML })).status).toBe(200);
      clock.advance(8 * HOUR);
      const expired = await browser.request(`${h.url}/app/x`, { headers: HTML });
      expect(expired.status).toBe(302);
      expect(expired.headers.get('location')).toMatch(/^\/_tollgate\/login/);
    } finally {
      await h.close();
    }
  });

  it('refreshes a session whose access token is about to expire, and ends one whose refresh fails', async () => {
    const clock = manualClock(Date.now());
    const h = await startGatewayHarness({ clock, idp: { accessTokenTtlSeconds: 60 } });
    try {
      const { browser } = await h.login(ALICE);
      const before = browser.cookie(h.url, 'tollgate_session');
      clock.advance(45_000);
      const refreshed = await browser.request(`${h.url}/app/x`, { headers: HTML });
      expect(refreshed.status).toBe(200);
      expect(refreshed.headers.getSetCookie()).toEqual([expect.stringMatching(/^tollgate_session=v1\./)]);
      expect(browser.cookie(h.url, 'tollgate_session')).not.toBe(before);
      const sessions = h.records().filter((record) => record.kind === 'http.request' || record.kind === 'auth.login').map((record) => record.session_id);
      expect(new Set(sessions).size).toBe(1);

      const cookies = createSessionCookies({ publicUrl: h.config.server.public_url, identity: h.config.identity }, { clock });
      const now = clock.now();
      const stale: Session = { sessionId: 'stale-session', subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'], user: 'alice@example.com', issuedAt: now, expiresAt: now + HOUR, accessExpiresAt: now - 1, refreshToken: 'not-a-refresh-token' };
      const forged = new TestBrowser();
      forged.setCookie(h.url, 'tollgate_session', cookies.serializeSessionCookie(stale).split(';', 1)[0]?.split('=').slice(1).join('=') ?? '');
      const ended = await forged.request(`${h.url}/app/x`, { headers: HTML });
      expect(ended.status).toBe(302);
      expect(ended.headers.getSetCookie()).toContain('tollgate_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax');
      expect(h.records().findLast((record) => record.kind === 'auth.failure')).toMatchObject({ data: { method: 'refresh', reason: 'refresh-rejected' } });
    } finally {
      await h.close();
    }
  });

  it('ends every copy of a session when a rotated-away refresh token is presented after the sharing window (RFC 9700 §4.14.2)', async () => {
    const clock = manualClock(Date.now());
    // Access tokens live 120 s; the gateway refreshes from 30 s before they run out.
    const h = await startGatewayHarness({ clock, idp: { accessTokenTtlSeconds: 120 } });
    try {
      const { browser } = await h.login(ALICE);
      const stolen = browser.cookie(h.url, 'tollgate_session') ?? '';
      clock.advance(95_000);
      expect((await browser.request(`${h.url}/app/x`, { headers: HTML })).status).toBe(200);
      expect(browser.cookie(h.url, 'tollgate_session')).not.toBe(stolen);
      clock.advance(31_000);
      const thief = new TestBrowser();
      thief.setCookie(h.url, 'tollgate_session', stolen);
      const refused = await thief.request(`${h.url}/app/x`, { headers: HTML });
      expect(refused.status).toBe(302);
      expect(h.records().findLast((record) => record.kind === 'auth.failure')).toMatchObject({ data: { method: 'refresh', reason: 'refresh-rejected' } });
      // The owner's refreshed cookie is not due for a refresh yet, and is refused all the same.
      const before = h.upstream.requests.length;
      const owner = await browser.request(`${h.url}/app/x`, { headers: HTML });
      expect(owner.status).toBe(302);
      expect(h.upstream.requests.length).toBe(before);
    } finally {
      await h.close();
    }
  });

  it('rotates session keys: a cookie sealed with the old key opens and is resealed; once the old key is gone it is refused', async () => {
    const OLD = SESSION_KEY;
    const NEW = 'rotated-session-key-0123456789abcdef';
    const a = await startGatewayHarness({ sessionKeys: [OLD] });
    try {
      const { browser } = await a.login(ALICE);
      const oldCookie = browser.cookie(a.url, 'tollgate_session') ?? '';
      const b = await startGatewayHarness({ sessionKeys: [NEW, OLD], sharedIdp: { idp: a.idp, port: await freePort() } });
      const c = await startGatewayHarness({ sessionKeys: [NEW], sharedIdp: { idp: a.idp, port: await freePort() } });
      try {
        const resealed = await browser.request(`${b.url}/app/x`, { headers: HTML });
        expect(resealed.status).toBe(200);
        const [setCookie = ''] = resealed.headers.getSetCookie();
        const newCookie = setCookie.split(';', 1)[0]?.slice('tollgate_session='.length) ?? '';
        expect(newCookie).not.toBe(oldCookie);
        expect(newCookie.split('.')[1]).not.toBe(oldCookie.split('.')[1]);

        const withNew = new TestBrowser();
        withNew.setCookie(c.url, 'tollgate_session', newCookie);
        expect((await withNew.request(`${c.url}/app/x`, { headers: HTML })).status).toBe(200);
        const withOld = new TestBrowser();
        withOld.setCookie(c.url, 'tollgate_session', oldCookie);
        expect((await withOld.request(`${c.url}/app/x`, { headers: HTML })).status).toBe(302);
        expect(kinds(c.records())).toContain('auth.failure');
        expect(c.records().find((record) => record.kind === 'auth.failure')?.data).toMatchObject({ reason: 'cookie-unknown-key' });
      } finally {
        await c.close();
        await b.close();
      }
    } finally {
      await a.close();
    }
  });
});

/** The value of the `tollgate_session` cookie among `Set-Cookie` values, if one sets it. */
function sessionCookieIn(setCookies: readonly string[]): string | undefined {
  const line = setCookies.find((cookie) => cookie.startsWith('tollgate_session='));
  return line?.split(';', 1)[0]?.slice('tollgate_session='.length);
}

/** Opens a WebSocket and resolves once open, with the `Set-Cookie` values of its 101 response. */
function openWebSocket(url: string, headers: Record<string, string>): Promise<{ socket: WebSocket; setCookies: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    let setCookies: string[] = [];
    socket.once('upgrade', (response) => {
      setCookies = response.headers['set-cookie'] ?? [];
    });
    socket.once('open', () => resolve({ socket, setCookies }));
    socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused with ${response.statusCode ?? 0}`)));
    socket.once('error', reject);
  });
}

describe('refreshing sessions', () => {
  // The IdP's access tokens live 60 s; the gateway refreshes 30 s before they run out.
  const clock = manualClock(Date.now());
  const groups = ['engineering'];
  const DAVE: IdpUser = { email: 'dave@example.com', password: 'dave', groups };
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGatewayHarness({ clock, users: [ALICE, DAVE], idp: { accessTokenTtlSeconds: 60 } });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('reads the groups again at refresh: someone removed from a group at the IdP loses what it granted', async () => {
    const { browser } = await h.login(DAVE);
    expect((await browser.request(`${h.url}/app/reports`, { headers: HTML })).status).toBe(200);
    groups.splice(0, groups.length);
    try {
      clock.advance(45_000);
      const before = h.upstream.requests.length;
      const denied = await browser.request(`${h.url}/app/reports`, { headers: HTML });
      expect(denied.status).toBe(403);
      expect(denied.body).toContain('no-matching-allow');
      // Refreshed, not ended: the browser keeps a session, now without the group.
      expect(sessionCookieIn(denied.headers.getSetCookie())).toMatch(/^v1\./);
      expect(h.upstream.requests.length).toBe(before);
      expect(h.records().find((record) => record.request_id === denied.headers.get('x-request-id'))).toMatchObject({
        kind: 'http.request',
        principal: { subject: 'sub-dave', email: 'dave@example.com', groups: [] },
        decision: { effect: 'deny', reason: 'no-matching-allow' },
      });
    } finally {
      groups.push('engineering');
    }
  });

  it('rides out an IdP that cannot be reached at refresh: the session goes on while its access token lasts, then gets 503 until a refresh succeeds', async () => {
    const { browser } = await h.login(ALICE);
    clock.advance(45_000);
    h.idp.setAvailable(false);
    try {
      const kept = await browser.request(`${h.url}/app/x`, { headers: HTML });
      expect(kept.status).toBe(200);
      expect(kept.headers.getSetCookie()).toEqual([]);
      clock.advance(20_000);
      const waiting = await browser.request(`${h.url}/app/x`, { headers: JSON_ACCEPT });
      expect(waiting.status).toBe(503);
      expect(waiting.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(JSON.parse(waiting.body)).toMatchObject({ error: 'idp_unavailable' });
      expect(waiting.headers.getSetCookie()).toEqual([]);
      expect(h.records().findLast((record) => record.kind === 'auth.failure')).toMatchObject({ data: { method: 'refresh', reason: 'idp-unavailable' } });
    } finally {
      h.idp.setAvailable(true);
    }
    // Past the window in which the failed outcome is shared, the refresh is tried again.
    clock.advance(31_000);
    const refreshed = await browser.request(`${h.url}/app/x`, { headers: HTML });
    expect(refreshed.status).toBe(200);
    expect(sessionCookieIn(refreshed.headers.getSetCookie())).toMatch(/^v1\./);
  });

  it('hands the browser its refreshed cookie when the upstream fails, so the rotated-away refresh token is never presented again', async () => {
    const { browser } = await h.login(ALICE);
    const before = browser.cookie(h.url, 'tollgate_session');
    clock.advance(45_000);
    const failed = await browser.request(`${h.url}/down/x`, { headers: HTML });
    expect(failed.status).toBe(502);
    const refreshed = sessionCookieIn(failed.headers.getSetCookie());
    expect(refreshed).toMatch(/^v1\./);
    expect(refreshed).not.toBe(before);
    // The refreshed session needs no second refresh.
    const next = await browser.request(`${h.url}/app/x`, { headers: HTML });
    expect(next.status).toBe(200);
    expect(next.headers.getSetCookie()).toEqual([]);
  });

  it('hands the browser its refreshed cookie in the 101 response of a WebSocket upgrade', async () => {
    const { browser } = await h.login(ALICE);
    const before = browser.cookie(h.url, 'tollgate_session');
    clock.advance(45_000);
    const { socket, setCookies } = await openWebSocket(`${h.url.replace('http:', 'ws:')}/app/live`, { cookie: browser.cookieHeader(h.url) });
    try {
      const echoed = new Promise<string>((resolve) => socket.once('message', (data: Buffer) => resolve(data.toString())));
      socket.send('ping');
      expect(await echoed).toBe('ping');
    } finally {
      socket.close();
    }
    const refreshed = sessionCookieIn(setCookies);
    expect(refreshed).toMatch(/^v1\./);
    expect(refreshed).not.toBe(before);
    browser.setCookie(h.url, 'tollgate_session', refreshed ?? '');
    const next = await browser.request(`${h.url}/app/x`, { headers: HTML });
    expect(next.status).toBe(200);
    expect(next.headers.getSetCookie()).toEqual([]);
  });
});
