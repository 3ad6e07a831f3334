import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportSPKI, generateKeyPair, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityConfig } from '../../src/config/index.js';
import { manualClock, type Clock } from '../../src/core/index.js';
import {
  createIdentity,
  discoverIssuer,
  type Identity,
  type IdentityDeps,
  type IdentityOptions,
  type LoginResult,
  type Session,
} from '../../src/identity/index.js';
import { Sealer } from '../../src/identity/seal.js';
import { TestBrowser, startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';

const GATEWAY = 'http://gateway.test:8080';
const CALLBACK = `${GATEWAY}/_tollgate/callback`;
const SESSION_KEY = 'integration-session-key-0123456789abcdef';
const CLIENT_SECRET = 'client-secret-0123456789abcdef';
const HOUR = 3_600_000;

const ALICE = { email: 'alice@example.com', password: 'alice', groups: ['engineering'] };
const BOB = { email: 'Bob@Example.com', password: 'bob', sub: 'bob-subject', groups: [], claims: { realm_access: { roles: ['dba', 'oncall'] } } };

function identityConfig(issuer: string, overrides: Partial<IdentityConfig> = {}): IdentityConfig {
  return {
    issuer,
    client_id: 'tollgate',
    client_secret: CLIENT_SECRET,
    scopes: ['openid', 'email', 'profile'],
    claims: { user: 'email', email: 'email', groups: 'groups' },
    session: { keys: [SESSION_KEY], ttl: 8 * HOUR, cookie_name: 'tollgate_session' },
    bearer: { enabled: true, audiences: [], algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'], clock_skew: 60_000 },
    db_tokens: { ttl: HOUR, max_ttl: 12 * HOUR },
    ...overrides,
  };
}

function build(issuer: string, overrides: Partial<IdentityConfig> = {}, deps: IdentityDeps = {}): Promise<Identity> {
  const options: IdentityOptions = { publicUrl: GATEWAY, identity: identityConfig(issuer, overrides) };
  return createIdentity(options, { jwksCooldownMs: 0, ...deps });
}

/** The `name=value` pair of a `Set-Cookie` value, as the browser would send it back. */
function pair(setCookie: string): string {
  return setCookie.split(';')[0] ?? '';
}

/** The pending-login cookie value a browser would present at the callback. */
function pendingOf(identity: Identity, pendingCookie: string): string | undefined {
  return identity.pendingCookieValue(pair(pendingCookie));
}

/** Runs the whole browser flow and returns the callback result. */
async function login(idp: TestIdp, identity: Identity, user: { email: string; password: string }, returnTo?: string, browser = new TestBrowser()) {
  const begin = await identity.beginLogin({ returnTo });
  const callback = await idp.login(begin.url, user, browser);
  const result = await identity.completeLogin(`${callback.pathname}${callback.search}`, pendingOf(identity, begin.pendingCookie));
  return { begin, callback, result, browser };
}

function sessionOf(result: LoginResult): Session {
  if (!result.ok) throw new Error(`login failed: ${result.reason} ${result.detail ?? ''}`);
  return result.session;
}

/** Reseals a pending login with changed fields, as only someone holding the session keys could. */
function forgePending(pendingValue: string | undefined, changes: Record<string, unknown>): string {
  const sealer = new Sealer([SESSION_KEY], 'pending-login');
  const opened = sealer.open(pendingValue ?? '');
  if (!opened.ok) throw new Error(opened.reason);
  const data = { ...(opened.data as Record<string, unknown>), ...changes };
  for (const [key, value] of Object.entries(changes)) if (value === undefined) delete data[key];
  return sealer.seal(data);
}

function movableClock(): Clock & { advance(ms: number): void } {
  return manualClock(Date.now());
}

describe('OIDC login against a real oidc-provider', () => {
  let idp: TestIdp;
  let identity: Identity;

  beforeAll(async () => {
    idp = await startOidcIdp({
      clients: [
        { clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: [CALLBACK], postLogoutRedirectUris: [`${GATEWAY}/`] },
        { clientId: 'tollgate-public', redirectUris: [CALLBACK] },
      ],
      users: [ALICE, BOB],
    });
    identity = await build(idp.issuer);
  });

  afterAll(async () => {
    await idp.close();
  });

  it('completes the code flow end to end: begin → IdP login form → callback → session', async () => {
    const { begin, callback, result } = await login(idp, identity, ALICE, '/app/x?y=1');

    const authorization = new URL(begin.url);
    expect(authorization.origin).toBe(idp.issuer);
    expect(Object.fromEntries(authorization.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: 'tollgate',
      redirect_uri: CALLBACK,
      scope: 'openid email profile',
      code_challenge_method: 'S256',
    });
    expect(authorization.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorization.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorization.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(begin.pendingCookie).toMatch(/^tollgate_session_login=v1\.[^;]+; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(callback.searchParams.get('iss')).toBe(idp.issuer);

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.returnTo).toBe('/app/x?y=1');
    expect(result.principal).toEqual({ subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] });
    expect(result.session).toMatchObject({ subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'], user: 'alice@example.com' });
    expect(result.session.expiresAt - result.session.issuedAt).toBe(8 * HOUR);
    expect(result.session.refreshToken).toEqual(expect.any(String));
    expect(result.session.idToken).toEqual(expect.any(String));
    const [sessionCookie = '', clearPending = ''] = result.setCookies;
    expect(clearPending).toBe('tollgate_session_login=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax');
    expect(sessionCookie).toMatch(/^tollgate_session=v1\./);
    expect(Buffer.byteLength(sessionCookie)).toBeLessThanOrEqual(4096);
    expect(identity.readSessionCookie(`other=1; ${pair(sessionCookie)}`)).toEqual({ ok: true, session: result.session, resealAdvised: false });
  });

  it('maps a mixed-case email and nested groups with configured claim paths', async () => {
    const nested = await build(idp.issuer, { claims: { user: 'email', email: 'email', groups: 'realm_access.roles' } });
    const session = sessionOf((await login(idp, nested, BOB)).result);
    expect(session).toMatchObject({ subject: 'bob-subject', email: 'bob@example.com', groups: ['dba', 'oncall'] });
  });

  it('sends an unsafe return path home', async () => {
    const { begin, result } = await login(idp, identity, ALICE, '//evil.example/x');
    expect(begin.returnTo).toBe('/');
    expect(result.ok && result.returnTo).toBe('/');
  });

  it('works as a public client with PKCE alone', async () => {
    const publicClient = await build(idp.issuer, { client_id: 'tollgate-public', client_secret: undefined });
    expect(sessionOf((await login(idp, publicClient, ALICE)).result).subject).toBe('sub-alice');
  });

  it('does not log in with a wrong password at the IdP', async () => {
    const begin = await identity.beginLogin();
    await expect(idp.login(begin.url, { email: ALICE.email, password: 'wrong' })).rejects.toThrow(/expected the IdP login form|did not return/);
  });

  it('rejects a callback whose state does not match the pending login', async () => {
    const first = await identity.beginLogin();
    const second = await identity.beginLogin();
    const callback = await idp.login(first.url, ALICE);
    const result = await identity.completeLogin(callback.href, pendingOf(identity, second.pendingCookie));
    // The pending login of the browser's real attempt survives a mismatching callback.
    expect(result).toEqual({ ok: false, reason: 'state-mismatch', setCookies: [] });
    const stateless = new URL(callback);
    stateless.searchParams.delete('state');
    expect(await identity.completeLogin(stateless, pendingOf(identity, first.pendingCookie))).toMatchObject({ ok: false, reason: 'state-mismatch' });
    expect(await identity.completeLogin('http://[unparsable', pendingOf(identity, first.pendingCookie))).toMatchObject({ ok: false, reason: 'state-mismatch' });
  });

  it('rejects a callback without the pending-login cookie', async () => {
    const begin = await identity.beginLogin();
    const callback = await idp.login(begin.url, ALICE);
    expect(await identity.completeLogin(callback, undefined)).toMatchObject({ ok: false, reason: 'missing-pending-login' });
    expect(await identity.completeLogin(callback, 'v1.garbage')).toMatchObject({ ok: false, reason: 'invalid-pending-login' });
  });

  it('rejects a pending login without a PKCE verifier, and the IdP refuses a wrong verifier', async () => {
    const begin = await identity.beginLogin();
    const callback = await idp.login(begin.url, ALICE);
    const pending = pendingOf(identity, begin.pendingCookie);
    expect(await identity.completeLogin(callback, forgePending(pending, { cv: undefined }))).toMatchObject({ ok: false, reason: 'missing-pkce-verifier' });
    const wrongVerifier = forgePending(pending, { cv: 'x'.repeat(43) });
    expect(await identity.completeLogin(callback, wrongVerifier)).toMatchObject({ ok: false, reason: 'code-rejected', detail: 'invalid_grant' });
  });

  it('rejects a reused authorization code (the IdP refuses it)', async () => {
    const { begin, callback, result } = await login(idp, identity, ALICE);
    expect(result.ok).toBe(true);
    const replay = await identity.completeLogin(callback, pendingOf(identity, begin.pendingCookie));
    expect(replay).toMatchObject({ ok: false, reason: 'code-rejected', detail: 'invalid_grant' });
  });

  it('rejects an ID token whose nonce differs from the pending login', async () => {
    const begin = await identity.beginLogin();
    const callback = await idp.login(begin.url, ALICE);
    const forged = forgePending(pendingOf(identity, begin.pendingCookie), { no: 'a-different-nonce' });
    expect(await identity.completeLogin(callback, forged)).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
  });

  it('reports an IdP error response with its code, after checking state', async () => {
    const begin = await identity.beginLogin();
    const state = new URL(begin.url).searchParams.get('state') ?? '';
    const pending = pendingOf(identity, begin.pendingCookie);
    const denied = `/_tollgate/callback?error=access_denied&state=${state}`;
    expect(await identity.completeLogin(denied, pending)).toMatchObject({ ok: false, reason: 'idp-error', detail: 'access_denied' });
    expect(await identity.completeLogin('/_tollgate/callback?error=access_denied&state=other', pending)).toMatchObject({ ok: false, reason: 'state-mismatch' });
    const odd = `/_tollgate/callback?error=${encodeURIComponent('<script>')}&state=${state}`;
    expect(await identity.completeLogin(odd, pending)).toMatchObject({ ok: false, reason: 'idp-error', detail: '<script>' });
    const spaced = `/_tollgate/callback?error=${encodeURIComponent('a b')}&state=${state}`;
    expect(await identity.completeLogin(spaced, pending)).toMatchObject({ ok: false, reason: 'idp-error', detail: 'unrecognised' });
  });

  it('rejects a pending login older than ten minutes', async () => {
    const clock = movableClock();
    const timed = await build(idp.issuer, {}, { clock });
    const begin = await timed.beginLogin();
    const callback = await idp.login(begin.url, ALICE);
    clock.advance(10 * 60_000);
    expect(await timed.completeLogin(callback, pendingOf(timed, begin.pendingCookie))).toMatchObject({ ok: false, reason: 'pending-login-expired' });
  });

  it('reports the client authentication failure when the client secret is wrong', async () => {
    const wrongSecret = await build(idp.issuer, { client_secret: 'not-the-secret-0123456789' });
    expect((await login(idp, wrongSecret, ALICE)).result).toMatchObject({ ok: false, reason: 'code-rejected', detail: 'invalid_client' });
  });

  describe('sessions over time', () => {
    it('an expired session cookie is refused and cannot be refreshed', async () => {
      const clock = movableClock();
      const timed = await build(idp.issuer, {}, { clock });
      const { result } = await login(idp, timed, ALICE);
      const session = sessionOf(result);
      const cookie = pair(result.ok ? (result.setCookies[0] ?? '') : '');
      clock.advance(8 * HOUR);
      expect(timed.readSessionCookie(cookie)).toEqual({ ok: false, reason: 'expired' });
      expect(await timed.refreshSession(session)).toEqual({ ok: false, reason: 'session-expired', setCookie: 'tollgate_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax' });
    });

    it('refreshes before the access token expires, once for concurrent requests, keeping the session id and expiry', async () => {
      const clock = movableClock();
      const timed = await build(idp.issuer, {}, { clock });
      const session = sessionOf((await login(idp, timed, ALICE)).result);
      expect(timed.needsRefresh(session)).toBe(false);
      clock.advance((session.accessExpiresAt ?? 0) - clock.now() - 10_000);
      expect(timed.needsRefresh(session)).toBe(true);

      const [first, second] = await Promise.all([timed.refreshSession(session), timed.refreshSession(session)]);
      expect(first.ok).toBe(true);
      if (!first.ok) return;
      expect(second).toEqual(first);
      expect(first.refreshed).toBe(true);
      expect(first.session.refreshToken).not.toBe(session.refreshToken);
      expect(first.session).toMatchObject({ sessionId: session.sessionId, subject: 'sub-alice', groups: ['engineering'], expiresAt: session.expiresAt });
      expect(first.session.accessExpiresAt).toBeGreaterThan(clock.now() + 30 * 60_000);
      expect(timed.needsRefresh(first.session)).toBe(false);
      expect(timed.readSessionCookie(pair(first.setCookie ?? ''))).toMatchObject({ ok: true, session: first.session });
      // A request still carrying the old cookie right after gets the same outcome, not a second refresh.
      expect(await timed.refreshSession(session)).toEqual(first);
    });

    it('a refresh the IdP rejects ends the session', async () => {
      const session = sessionOf((await login(idp, identity, ALICE)).result);
      const refreshed = await identity.refreshSession(session);
      expect(refreshed.ok).toBe(true);
      // Another gateway instance (no shared memory) presents the rotated-away refresh token: the
      // IdP treats the reuse as theft, refuses it and revokes the grant.
      const other = await build(idp.issuer);
      const reuse = await other.refreshSession(session);
      expect(reuse).toEqual({ ok: false, reason: 'refresh-rejected', detail: 'invalid_grant', setCookie: 'tollgate_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax' });
      if (!refreshed.ok) return;
      const third = await build(idp.issuer);
      expect(await third.refreshSession(refreshed.session)).toMatchObject({ ok: false, reason: 'refresh-rejected' });
    });

    it('a session without a refresh token is returned unchanged', async () => {
      const session = sessionOf((await login(idp, identity, ALICE)).result);
      const { refreshToken: _dropped, ...withoutRefresh } = session;
      expect(identity.needsRefresh(withoutRefresh)).toBe(false);
      expect(await identity.refreshSession(withoutRefresh)).toEqual({ ok: true, session: withoutRefresh, refreshed: false });
    });
  });

  it('builds the end-session URL with id_token_hint, and the IdP accepts it', async () => {
    const browser = new TestBrowser();
    const session = sessionOf((await login(idp, identity, ALICE, '/', browser)).result);
    const url = new URL(identity.logoutUrl(session, '/') ?? '');
    expect(`${url.origin}${url.pathname}`).toBe(`${idp.issuer}/session/end`);
    expect(url.searchParams.get('id_token_hint')).toBe(session.idToken);
    expect(url.searchParams.get('client_id')).toBe('tollgate');
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${GATEWAY}/`);

    const confirm = await browser.follow(url);
    expect(confirm.status).toBe(200);
    const done = await browser.followFrom(await browser.submitForm(confirm, {}), { stopWhen: (next) => next.origin === GATEWAY });
    expect(done.stoppedAt?.href).toBe(`${GATEWAY}/`);

    const { idToken: _dropped, ...withoutHint } = session;
    const bare = new URL(identity.logoutUrl(withoutHint) ?? '');
    expect(bare.searchParams.has('id_token_hint')).toBe(false);
    expect(bare.searchParams.get('client_id')).toBe('tollgate');
  });

  describe('bearer tokens', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const claims = (extra: Record<string, unknown> = {}) => ({
      iss: idp.issuer,
      aud: 'tollgate',
      sub: 'api-client',
      email: 'Robot@Example.com',
      groups: ['automation'],
      iat: now(),
      exp: now() + 300,
      jti: 'token-1',
      ...extra,
    });

    it('accepts an ID token issued by the IdP', async () => {
      const session = sessionOf((await login(idp, identity, ALICE)).result);
      const result = await identity.verifyBearer(session.idToken ?? '');
      expect(result).toMatchObject({ ok: true, principal: { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] } });
    });

    it('accepts a signed access token and reports its jti', async () => {
      const exp = now() + 300;
      const result = await identity.verifyBearer(await idp.signToken(claims({ exp })));
      expect(result).toEqual({
        ok: true,
        principal: { subject: 'api-client', email: 'robot@example.com', groups: ['automation'] },
        user: 'robot@example.com',
        tokenId: 'token-1',
        expiresAt: exp * 1000,
      });
    });

    it('tolerates clock skew within the configured bound only', async () => {
      expect((await identity.verifyBearer(await idp.signToken(claims({ exp: now() - 30 })))).ok).toBe(true);
      expect(await identity.verifyBearer(await idp.signToken(claims({ exp: now() - 120 })))).toEqual({ ok: false, reason: 'expired' });
    });

    it.each([
      ['not-yet-valid', { nbf: now() + 600 }],
      ['wrong-issuer', { iss: 'http://evil.example' }],
      ['wrong-audience', { aud: 'someone-else' }],
      ['missing-subject', { sub: undefined }],
      ['malformed', { exp: undefined }],
    ])('refuses with %s', async (reason, extra) => {
      expect(await identity.verifyBearer(await idp.signToken(claims(extra)))).toEqual({ ok: false, reason });
    });

    it('refuses alg none', async () => {
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
      const payload = Buffer.from(JSON.stringify(claims())).toString('base64url');
      expect(await identity.verifyBearer(`${header}.${payload}.`)).toEqual({ ok: false, reason: 'alg-not-allowed' });
    });

    it('refuses HS256 signed with the IdP public key as the HMAC secret', async () => {
      const publicPem = await exportSPKI((await importJWK(idp.publicJwk(), 'RS256')) as Parameters<typeof exportSPKI>[0]);
      for (const secret of [publicPem, JSON.stringify(idp.publicJwk())]) {
        const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: idp.currentKid })).toString('base64url');
        const payload = Buffer.from(JSON.stringify(claims())).toString('base64url');
        const mac = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
        expect(await identity.verifyBearer(`${header}.${payload}.${mac}`)).toEqual({ ok: false, reason: 'alg-not-allowed' });
      }
    });

    it('refuses a changed payload and garbage', async () => {
      const [header, , signature] = (await idp.signToken(claims())).split('.');
      const escalated = Buffer.from(JSON.stringify(claims({ groups: ['admin'] }))).toString('base64url');
      expect(await identity.verifyBearer(`${header}.${escalated}.${signature}`)).toEqual({ ok: false, reason: 'bad-signature' });
      expect(await identity.verifyBearer('not-a-jwt')).toEqual({ ok: false, reason: 'malformed' });
      expect(await identity.verifyBearer('')).toEqual({ ok: false, reason: 'malformed' });
    });

    it('refuses a token signed by a key the IdP never published', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const ghost = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'ghost-key' }).sign(privateKey);
      expect(await identity.verifyBearer(ghost)).toEqual({ ok: false, reason: 'unknown-key' });
    });

    it('is refused when bearer tokens are disabled', async () => {
      const disabled = await build(idp.issuer, { bearer: { ...identityConfig(idp.issuer).bearer, enabled: false } });
      expect(await disabled.verifyBearer(await idp.signToken(claims()))).toEqual({ ok: false, reason: 'bearer-disabled' });
    });

    it('follows a key rotation at the IdP by fetching the JWKS again', async () => {
      expect((await identity.verifyBearer(await idp.signToken(claims()))).ok).toBe(true);
      const oldKid = idp.currentKid;
      const newKid = await idp.rotateSigningKey();
      expect(newKid).not.toBe(oldKid);
      const session = sessionOf((await login(idp, identity, ALICE)).result);
      const [header = ''] = (session.idToken ?? '').split('.');
      expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toMatchObject({ kid: newKid });
      expect(await identity.verifyBearer(session.idToken ?? '')).toMatchObject({ ok: true, principal: { subject: 'sub-alice' } });
      expect((await identity.verifyBearer(await idp.signToken(claims(), { kid: oldKid }))).ok).toBe(true);
    });
  });
});

describe('an IdP that releases claims through UserInfo only and has no end-session endpoint', () => {
  let idp: TestIdp;

  beforeAll(async () => {
    idp = await startOidcIdp({
      clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: [CALLBACK] }],
      users: [BOB],
      claimsInIdToken: false,
      endSession: false,
    });
  });

  afterAll(async () => {
    await idp.close();
  });

  it('reads email and nested groups from UserInfo, and logout is local only', async () => {
    const identity = await build(idp.issuer, { claims: { user: 'email', email: 'email', groups: 'realm_access.roles' } });
    const session = sessionOf((await login(idp, identity, BOB)).result);
    expect(session).toMatchObject({ subject: 'bob-subject', email: 'bob@example.com', groups: ['dba', 'oncall'] });
    const [, payload = ''] = (session.idToken ?? '').split('.');
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).not.toHaveProperty('email');
    expect(identity.logoutUrl(session, '/')).toBeNull();
  });
});

describe('discovery', () => {
  it('fails with TG_ERR_IDENTITY_DISCOVERY when the IdP is unreachable', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    const options: IdentityOptions = { publicUrl: GATEWAY, identity: identityConfig(`http://127.0.0.1:${port}`) };
    await expect(discoverIssuer(options, { timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'TG_ERR_IDENTITY_DISCOVERY',
      message: expect.stringMatching(/check identity\.issuer/),
    });
  });

  it('refuses a plain-http issuer that is not on loopback', async () => {
    const options: IdentityOptions = { publicUrl: GATEWAY, identity: identityConfig('http://idp.example') };
    await expect(discoverIssuer(options)).rejects.toMatchObject({ code: 'TG_ERR_CONFIG_INVALID' });
  });
});
