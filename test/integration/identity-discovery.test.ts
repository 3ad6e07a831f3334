/**
 * Discovery of an IdP that is down at startup (identity room, real oidc-provider, real sockets):
 * an outage leaves the identity undiscovered and retrying in the background; an IdP that answers
 * wrongly fails at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IdentityConfig } from '../../src/config/index.js';
import { manualClock, type Logger } from '../../src/core/index.js';
import { createIdentity, type Identity, type IdentityDeps, type Timers } from '../../src/identity/index.js';
import { freePort } from '../helpers/http-gateway.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';

const GATEWAY = 'http://127.0.0.1:8080';
const SESSION_KEY = 'discovery-session-key-0123456789abcdef';
const CLIENT_SECRET = 'client-secret-0123456789abcdef';
const ALICE = { email: 'alice@example.com', password: 'alice', groups: ['engineering'] };
const HOUR = 3_600_000;
/** Short waits, so that a test sees a retry succeed quickly. */
const FAST = { initialMs: 50, maxMs: 200 };

function identityConfig(issuer: string): IdentityConfig {
  return {
    issuer,
    client_id: 'tollgate',
    client_secret: CLIENT_SECRET,
    scopes: ['openid', 'email', 'profile'],
    claims: { user: 'email', email: 'email', groups: 'groups' },
    session: { keys: [SESSION_KEY], ttl: 8 * HOUR, cookie_name: 'tollgate_session' },
    bearer: { enabled: true, audiences: [], algorithms: ['RS256'], clock_skew: 60_000 },
    db_tokens: { ttl: HOUR, max_ttl: 12 * HOUR, signing_key: 'discovery-db-token-key-0123456789abcdef' },
  };
}

interface LogEntry {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

function recordingLogger(entries: LogEntry[]): Logger {
  const at =
    (level: string) =>
    (fieldsOrMsg: Record<string, unknown> | string, msg?: string): void => {
      entries.push(typeof fieldsOrMsg === 'string' ? { level, fields: {}, msg: fieldsOrMsg } : { level, fields: fieldsOrMsg, msg: msg ?? '' });
    };
  const logger: Logger = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), child: () => logger };
  return logger;
}

function startIdp(port?: number): Promise<TestIdp> {
  return startOidcIdp({
    clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: [`${GATEWAY}/_tollgate/callback`] }],
    users: [ALICE],
    ...(port === undefined ? {} : { port }),
  });
}

async function waitUntilDiscovered(identity: Identity): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (identity.discovery.status !== 'discovered') {
    if (Date.now() > deadline) throw new Error(`still not discovered: ${JSON.stringify(identity.discovery)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function build(issuer: string, deps: IdentityDeps): Promise<Identity> {
  return createIdentity({ publicUrl: GATEWAY, identity: identityConfig(issuer) }, { discoveryBackoff: FAST, ...deps }).then((identity) => {
    cleanups.push(() => identity.close());
    return identity;
  });
}

describe('an IdP that cannot be reached at startup', () => {
  it('leaves the identity undiscovered, answering idp-unavailable, until it discovers the IdP in the background', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const logs: LogEntry[] = [];
    const identity = await build(issuer, { logger: recordingLogger(logs) });

    const state = identity.discovery;
    expect(state).toMatchObject({ status: 'pending', issuer, failures: 1 });
    expect(state.status === 'pending' ? state.lastError : '').toMatch(/ECONNREFUSED/);
    expect(identity.issuer).toBeNull();
    expect(identity.unavailable()).toMatchObject({ ok: false, reason: 'idp-unavailable', detail: expect.stringMatching(/ECONNREFUSED/) });
    expect(identity.unavailable()?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    const warned = logs.find((entry) => entry.level === 'warn');
    expect(warned?.fields).toMatchObject({ issuer, attempt: 1, error: expect.stringMatching(/ECONNREFUSED/) });
    expect(warned?.msg).toMatch(new RegExp(`OIDC issuer ${issuer} not discovered .*Check that the IdP is up and reachable.*identity\\.issuer`));

    // What needs the IdP is a value, never a session ended or a user taken for logged out.
    expect(await identity.verifyBearer('a.b.c')).toEqual({ ok: false, reason: 'idp-unavailable' });
    expect(await identity.completeLogin('/_tollgate/callback?code=x&state=y', 'pending')).toEqual({ ok: false, reason: 'idp-unavailable', setCookies: [] });
    await expect(identity.beginLogin()).rejects.toMatchObject({ code: 'TG_ERR_IDENTITY_DISCOVERY' });
    expect(identity.logoutUrl(undefined, '/')).toBeNull();
    // What does not need it works: sessions and database tokens.
    const now = Date.now();
    const cookie = identity.serializeSessionCookie({ sessionId: 's1', subject: 'sub-alice', groups: ['engineering'], user: ALICE.email, issuedAt: now, expiresAt: now + HOUR });
    expect(identity.readSessionCookie(cookie.split(';', 1)[0])).toMatchObject({ ok: true, session: { subject: 'sub-alice' } });
    const token = identity.issueDbToken({ subject: 'sub-alice', email: ALICE.email, groups: ['engineering'] });
    expect(token.ok && identity.verifyDbToken(token.token).ok).toBe(true);

    const idp = await startIdp(port);
    cleanups.push(() => idp.close());
    await waitUntilDiscovered(identity);
    expect(identity.unavailable()).toBeNull();
    expect(identity.issuer?.issuer).toBe(issuer);
    expect(logs.find((entry) => entry.level === 'info' && entry.msg.startsWith('OIDC issuer discovered'))?.fields).toMatchObject({ issuer });
    const begin = await identity.beginLogin({ returnTo: '/app/' });
    expect(new URL(begin.url).origin).toBe(issuer);
    const callback = await idp.login(begin.url, ALICE);
    const result = await identity.completeLogin(`${callback.pathname}${callback.search}`, identity.pendingCookieValue(begin.pendingCookie.split(';', 1)[0]));
    expect(result).toMatchObject({ ok: true, principal: { email: ALICE.email }, returnTo: '/app/' });
  });

  it('takes a 503 from the IdP for an outage too', async () => {
    const idp = await startIdp();
    cleanups.push(() => idp.close());
    idp.setAvailable(false);
    const identity = await build(idp.issuer, {});
    const state = identity.discovery;
    expect(state.status === 'pending' ? state.lastError : 'discovered').toMatch(/HTTP 503/);
    idp.setAvailable(true);
    await waitUntilDiscovered(identity);
    expect(await identity.verifyBearer('not-a-jwt')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('leaves no timer once closed', async () => {
    const clock = manualClock(Date.now());
    const armed = new Set<number>();
    let next = 0;
    const timers: Timers = {
      after() {
        const id = next++;
        armed.add(id);
        return () => armed.delete(id);
      },
    };
    const identity = await build(`http://127.0.0.1:${await freePort()}`, { clock, timers });
    expect(armed.size).toBe(1);
    expect(identity.unavailable()?.retryAfterSeconds).toBe(1);
    identity.close();
    expect(armed.size).toBe(0);
    expect(identity.discovery).toMatchObject({ status: 'pending', nextAttemptAt: null });
  });
});

describe('an IdP that answers wrongly at startup (a configuration error)', () => {
  it('fails at once with TG_ERR_IDENTITY_DISCOVERY when the discovery document is a 404 (a mistyped issuer path)', async () => {
    const idp = await startIdp();
    cleanups.push(() => idp.close());
    await expect(build(`${idp.issuer}/realms/typo`, {})).rejects.toMatchObject({
      code: 'TG_ERR_IDENTITY_DISCOVERY',
      message: expect.stringMatching(/HTTP 404.*check identity\.issuer/),
      details: { outage: false },
    });
  });

  it('fails at once when the metadata names another issuer', async () => {
    const idp = await startIdp();
    cleanups.push(() => idp.close());
    const elsewhere = idp.issuer.replace('127.0.0.1', 'localhost');
    await expect(build(elsewhere, {})).rejects.toMatchObject({ code: 'TG_ERR_IDENTITY_DISCOVERY', details: { outage: false } });
  });
});
