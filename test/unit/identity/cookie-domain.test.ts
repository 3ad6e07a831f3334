import { describe, expect, it } from 'vitest';
import { manualClock } from '../../../src/core/index.js';
import { SessionCookies, type Session } from '../../../src/identity/index.js';
import { cookieName, serializeCookie } from '../../../src/identity/cookies.js';

const KEY = 'session-key-0123456789-0123456789';
const START = Date.UTC(2026, 10, 1);

const SESSION: Session = {
  sessionId: 'sid-1',
  subject: 'sub-alice',
  email: 'alice@example.com',
  groups: ['engineering'],
  user: 'alice@example.com',
  issuedAt: START,
  expiresAt: START + 3_600_000,
};

function jar(secure: boolean, domain?: string): SessionCookies {
  return new SessionCookies({ keys: [KEY], cookieName: 'tollgate_session', secure, domain }, manualClock(START));
}

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
    const cookies = jar(true, 'example.com');
    expect(cookies.sessionCookieName).toBe('__Secure-tollgate_session');
    const set = cookies.serializeSessionCookie(SESSION);
    expect(set.startsWith('__Secure-tollgate_session=')).toBe(true);
    expect(attributes(set)).toContain('Domain=example.com');
    const cleared = cookies.clearSessionCookie();
    expect(cleared.startsWith('__Secure-tollgate_session=;')).toBe(true);
    expect(attributes(cleared)).toEqual(expect.arrayContaining(['Max-Age=0', 'Domain=example.com', 'Secure']));
    // The browser sends back the `name=value` pair.
    expect(cookies.readSessionCookie(set.split(';', 1)[0]).ok).toBe(true);
  });

  it('keeps the pending-login cookie host-only with the __Host- prefix', () => {
    const cookies = jar(true, 'example.com');
    expect(cookies.pendingCookieName).toBe('__Host-tollgate_session_login');
    const pending = cookies.serializePendingCookie({ state: 's', nonce: 'n', codeVerifier: 'v', returnTo: '/', createdAt: START });
    expect(pending).not.toContain('Domain=');
    expect(cookies.clearPendingCookie()).not.toContain('Domain=');
  });

  it('changes nothing without a domain', () => {
    const cookies = jar(true);
    expect(cookies.sessionCookieName).toBe('__Host-tollgate_session');
    expect(cookies.serializeSessionCookie(SESSION)).not.toContain('Domain=');
    expect(cookies.clearSessionCookie()).not.toContain('Domain=');
  });
});
