import { describe, expect, it } from 'vitest';
import { manualClock } from '../../../src/core/index.js';
import { MAX_COOKIE_BYTES, PENDING_LOGIN_TTL_MS, SessionCookies, type Session } from '../../../src/identity/index.js';
import { cookieName, serializeCookie } from '../../../src/identity/cookies.js';
import { Sealer } from '../../../src/identity/seal.js';

const KEY = 'session-key-0123456789-0123456789';
const OLD_KEY = 'old-session-key-0123456789-abcdef';
const START = Date.UTC(2026, 10, 1);
const HOUR = 3_600_000;

function cookies(options: { keys?: string[]; secure?: boolean; domain?: string; clock?: ReturnType<typeof manualClock> } = {}) {
  const clock = options.clock ?? manualClock(START);
  const settings = { keys: options.keys ?? [KEY], cookieName: 'tollgate_session', secure: options.secure ?? false, domain: options.domain };
  return { clock, jar: new SessionCookies(settings, clock) };
}

function session(overrides: Partial<Session> = {}): Session {
  return {
    sessionId: 'sid-1',
    subject: 'sub-alice',
    email: 'alice@example.com',
    groups: ['engineering'],
    user: 'alice@example.com',
    issuedAt: START,
    expiresAt: START + 8 * HOUR,
    accessExpiresAt: START + HOUR,
    refreshToken: 'rt-1',
    idToken: 'header.payload.signature',
    ...overrides,
  };
}

/** The `name=value` pair of a `Set-Cookie` value, as a browser would send it back. */
function pair(setCookie: string): string {
  return setCookie.split(';')[0] ?? '';
}

describe('session cookie', () => {
  it('round-trips a session', () => {
    const { jar } = cookies();
    const result = jar.readSessionCookie(pair(jar.serializeSessionCookie(session())));
    expect(result).toEqual({ ok: true, session: session(), resealAdvised: false });
  });

  it('keeps a user name that differs from the email', () => {
    const { jar } = cookies();
    const custom = session({ user: 'alice' });
    const result = jar.readSessionCookie(pair(jar.serializeSessionCookie(custom)));
    expect(result.ok && result.session.user).toBe('alice');
  });

  it('on http: plain name, HttpOnly, SameSite=Lax, Path=/, no Secure, no Domain, Max-Age to expiry', () => {
    const { jar } = cookies();
    const header = jar.serializeSessionCookie(session());
    expect(header).toMatch(/^tollgate_session=v1\./);
    expect(header.split('; ').slice(1)).toEqual(['Max-Age=28800', 'Path=/', 'HttpOnly', 'SameSite=Lax']);
  });

  it('on https: __Host- prefix and Secure', () => {
    const { jar } = cookies({ secure: true });
    const header = jar.serializeSessionCookie(session());
    expect(header).toMatch(/^__Host-tollgate_session=v1\./);
    expect(header).toContain('; Secure');
    expect(header).not.toMatch(/Domain=/i);
    expect(jar.readSessionCookie(pair(header)).ok).toBe(true);
    expect(jar.readSessionCookie(pair(header).replace('__Host-', ''))).toEqual({ ok: false, reason: 'missing' });
  });

  it('reports an expired session', () => {
    const { jar, clock } = cookies();
    const header = pair(jar.serializeSessionCookie(session()));
    clock.advance(8 * HOUR);
    expect(jar.readSessionCookie(header)).toEqual({ ok: false, reason: 'expired' });
  });

  it('reports missing, tampered and unknown-key cookies as values', () => {
    const { jar } = cookies();
    expect(jar.readSessionCookie(undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(jar.readSessionCookie('other=1')).toEqual({ ok: false, reason: 'missing' });
    const value = pair(jar.serializeSessionCookie(session()));
    const at = value.lastIndexOf('.') + 5;
    const tampered = value.slice(0, at) + (value[at] === 'A' ? 'B' : 'A') + value.slice(at + 1);
    expect(jar.readSessionCookie(tampered)).toEqual({ ok: false, reason: 'tampered' });
    expect(jar.readSessionCookie('tollgate_session=garbage')).toEqual({ ok: false, reason: 'malformed' });
    const foreign = cookies({ keys: [OLD_KEY] }).jar;
    expect(foreign.readSessionCookie(value)).toEqual({ ok: false, reason: 'unknown-key' });
  });

  it('a sealed value that is not a session is malformed', () => {
    const { jar } = cookies();
    const forged = new Sealer([KEY], 'session').seal({ v: 1, sid: 's', sub: 42, gr: [], iat: 0, exp: START + HOUR });
    expect(jar.readSessionCookie(`tollgate_session=${forged}`)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('accepts a cookie sealed with an older key and advises re-sealing', () => {
    const old = cookies({ keys: [OLD_KEY] }).jar;
    const header = pair(old.serializeSessionCookie(session()));
    const rotated = cookies({ keys: [KEY, OLD_KEY] }).jar;
    expect(rotated.readSessionCookie(header)).toEqual({ ok: true, session: session(), resealAdvised: true });
  });

  it('with two cookies of the same name, the first valid one wins', () => {
    const { jar } = cookies();
    const good = pair(jar.serializeSessionCookie(session()));
    expect(jar.readSessionCookie(`tollgate_session=bad; ${good}`).ok).toBe(true);
  });

  it('clearing sets an empty value with Max-Age=0 and the same attributes', () => {
    expect(cookies({ secure: true }).jar.clearSessionCookie()).toBe('__Host-tollgate_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure');
  });

  it('fits the 4 KB limit by dropping the ID token first', () => {
    const { jar } = cookies({ secure: true });
    const big = session({ idToken: 'x'.repeat(3000) });
    const fitted = jar.fitSession(big);
    expect(fitted).not.toBeNull();
    expect(fitted?.idToken).toBeUndefined();
    expect(fitted?.refreshToken).toBe('rt-1');
    expect(Buffer.byteLength(jar.serializeSessionCookie(fitted as Session))).toBeLessThanOrEqual(MAX_COOKIE_BYTES);
    expect(jar.fitSession(session())).toEqual(session());
  });

  it('gives up when the groups alone are too large, and refuses to serialise an unfitted session', () => {
    const { jar } = cookies();
    const huge = session({ groups: Array.from({ length: 400 }, (_, i) => `group-with-a-long-name-${i}`) });
    expect(jar.fitSession(huge)).toBeNull();
    expect(() => jar.serializeSessionCookie(huge)).toThrow(/4096 bytes/);
  });
});

describe('pending-login cookie', () => {
  const pending = { state: 'st', nonce: 'no', codeVerifier: 'cv', returnTo: '/app/', createdAt: START };

  it('round-trips and lives ten minutes', () => {
    const { jar } = cookies();
    const header = jar.serializePendingCookie(pending);
    expect(header).toMatch(/^tollgate_session_login=v1\..*; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax$/);
    const value = jar.pendingCookieValue(`a=b; ${pair(header)}`);
    expect(jar.readPendingLogin(value)).toEqual({ ok: true, pending });
  });

  it('expires after ten minutes', () => {
    const { jar, clock } = cookies();
    const value = jar.pendingCookieValue(pair(jar.serializePendingCookie(pending)));
    clock.advance(PENDING_LOGIN_TTL_MS);
    expect(jar.readPendingLogin(value)).toEqual({ ok: false, reason: 'pending-login-expired' });
  });

  it('reports a missing, invalid or verifier-less pending login', () => {
    const { jar } = cookies();
    expect(jar.readPendingLogin(undefined)).toEqual({ ok: false, reason: 'missing-pending-login' });
    expect(jar.readPendingLogin('')).toEqual({ ok: false, reason: 'missing-pending-login' });
    expect(jar.readPendingLogin('v1.x')).toEqual({ ok: false, reason: 'invalid-pending-login' });
    const sessionHeader = jar.serializeSessionCookie(session());
    expect(jar.readPendingLogin(pair(sessionHeader).split('=')[1])).toEqual({ ok: false, reason: 'invalid-pending-login' });
    const noVerifier = new Sealer([KEY], 'pending-login').seal({ v: 1, st: 'st', no: 'no', rt: '/', iat: START });
    expect(jar.readPendingLogin(noVerifier)).toEqual({ ok: false, reason: 'missing-pkce-verifier' });
  });

  it('on https the name is __Host- prefixed', () => {
    expect(cookies({ secure: true }).jar.pendingCookieName).toBe('__Host-tollgate_session_login');
  });
});

function attributes(setCookie: string): string[] {
  return setCookie.split('; ').slice(1);
}

describe('cookie names and attributes with a cookie domain', () => {
  it('prefixes by RFC 6265bis: __Host- host-only, __Secure- with Domain, none on http', () => {
    expect(cookieName('s', { secure: true })).toBe('__Host-s');
    expect(cookieName('s', { secure: true, domain: 'example.com' })).toBe('__Secure-s');
    expect(cookieName('s', { secure: false, domain: 'example.com' })).toBe('s');
  });

  it('writes Domain only when one is configured', () => {
    expect(serializeCookie('s', 'v', 60, { secure: true })).not.toContain('Domain=');
    expect(attributes(serializeCookie('s', 'v', 60, { secure: true, domain: 'example.com' }))).toEqual([
      'Max-Age=60',
      'Path=/',
      'Domain=example.com',
      'HttpOnly',
      'SameSite=Lax',
      'Secure',
    ]);
  });

  it('gives the session cookie the domain and the __Secure- prefix on https, and clears it with the same Domain', () => {
    const { jar } = cookies({ secure: true, domain: 'example.com' });
    expect(jar.sessionCookieName).toBe('__Secure-tollgate_session');
    const set = jar.serializeSessionCookie(session());
    expect(set.startsWith('__Secure-tollgate_session=')).toBe(true);
    expect(attributes(set)).toContain('Domain=example.com');
    const cleared = jar.clearSessionCookie();
    expect(cleared.startsWith('__Secure-tollgate_session=;')).toBe(true);
    expect(attributes(cleared)).toEqual(expect.arrayContaining(['Max-Age=0', 'Domain=example.com', 'Secure']));
    // The browser sends back the `name=value` pair.
    expect(jar.readSessionCookie(set.split(';', 1)[0]).ok).toBe(true);
  });

  it('keeps the pending-login cookie host-only with the __Host- prefix', () => {
    const { jar } = cookies({ secure: true, domain: 'example.com' });
    expect(jar.pendingCookieName).toBe('__Host-tollgate_session_login');
    const pending = jar.serializePendingCookie({ state: 's', nonce: 'n', codeVerifier: 'v', returnTo: '/', createdAt: START });
    expect(pending).not.toContain('Domain=');
    expect(jar.clearPendingCookie()).not.toContain('Domain=');
  });

  it('changes nothing without a domain', () => {
    const { jar } = cookies({ secure: true });
    expect(jar.sessionCookieName).toBe('__Host-tollgate_session');
    expect(jar.serializeSessionCookie(session())).not.toContain('Domain=');
    expect(jar.clearSessionCookie()).not.toContain('Domain=');
  });
});
