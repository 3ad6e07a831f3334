import { describe, expect, it } from 'vitest';
import { manualClock, type Principal } from '../../../src/core/index.js';
import {
  CliLoginGrants,
  MAX_PENDING_DEVICES_PER_CLIENT,
  MAX_USER_CODE_FAILURES,
  USER_CODE_ALPHABET,
  checkLoopbackRedirectUri,
  clientNetwork,
  formatUserCode,
  generateUserCode,
  isPkceValue,
  normalizeUserCode,
  pkceMatches,
  s256Challenge,
  type CodeBinding,
} from '../../../src/proxy/http/cli-login-grants.js';

const ALICE: Principal = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] };
// RFC 7636 Appendix B.
const RFC_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const RFC_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const REDIRECT = 'http://127.0.0.1:49152/callback';
const CLIENT = '203.0.113.5';

function binding(overrides: Partial<CodeBinding> = {}): CodeBinding {
  return { principal: ALICE, user: 'alice@example.com', sessionRef: 'ref-1', redirectUri: REDIRECT, codeChallenge: RFC_CHALLENGE, ...overrides };
}

describe('checkLoopbackRedirectUri (RFC 8252 §7.3, §8.3)', () => {
  it.each([
    ['http://127.0.0.1:49152/callback', 'http://127.0.0.1:49152'],
    ['http://[::1]:8080/cb?session=1', 'http://[::1]:8080'],
    ['http://127.0.0.1/', 'http://127.0.0.1'],
    ['http://127.0.0.1:65535', 'http://127.0.0.1:65535'],
  ])('accepts %s', (uri, origin) => {
    expect(checkLoopbackRedirectUri(uri)).toEqual({ ok: true, uri, origin });
  });

  it.each([
    ['http://localhost:49152/callback', 'localhost'],
    ['http://LOCALHOST:49152/callback', 'localhost'],
    ['http://app.localhost:49152/callback', 'localhost'],
    ['https://127.0.0.1:49152/callback', 'not-http'],
    ['javascript:alert(1)', 'not-http'],
    ['//127.0.0.1:49152/callback', 'not-http'],
    ['http://127.0.0.2:49152/callback', 'not-loopback-ip'],
    ['http://127.1:49152/callback', 'not-loopback-ip'],
    ['http://0x7f.0.0.1:49152/callback', 'not-loopback-ip'],
    ['http://evil.example:49152/callback', 'not-loopback-ip'],
    ['http://127.0.0.1.evil.example/callback', 'not-loopback-ip'],
    ['http://evil.example@127.0.0.1:49152/callback', 'not-loopback-ip'],
    ['http://127.0.0.1:49152@evil.example/callback', 'not-loopback-ip'],
    ['http://127.0.0.1:99999/callback', 'malformed'],
    ['http://127.0.0.1:0/callback', 'malformed'],
    ['http://127.0.0.1:49152/call back', 'malformed'],
    ['http://127.0.0.1:49152/callback#top', 'fragment'],
    ['', 'missing'],
    [`http://127.0.0.1:1/${'a'.repeat(2100)}`, 'too-long'],
  ])('refuses %s (%s)', (uri, reason) => {
    expect(checkLoopbackRedirectUri(uri)).toEqual({ ok: false, reason });
  });

  it('refuses what is not a string', () => {
    expect(checkLoopbackRedirectUri(undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(checkLoopbackRedirectUri(['http://127.0.0.1:1/'])).toEqual({ ok: false, reason: 'missing' });
  });
});

describe('PKCE (RFC 7636)', () => {
  it('computes the S256 challenge of the RFC example', () => {
    expect(s256Challenge(RFC_VERIFIER)).toBe(RFC_CHALLENGE);
    expect(pkceMatches(RFC_VERIFIER, RFC_CHALLENGE)).toBe(true);
  });

  it('refuses another verifier and a challenge of another length', () => {
    expect(pkceMatches(`${RFC_VERIFIER.slice(0, -1)}l`, RFC_CHALLENGE)).toBe(false);
    expect(pkceMatches(RFC_VERIFIER, RFC_CHALLENGE.slice(1))).toBe(false);
  });

  it('knows the verifier form: 43 to 128 unreserved characters', () => {
    expect(isPkceValue('a'.repeat(43))).toBe(true);
    expect(isPkceValue('A-._~9'.repeat(21).slice(0, 128))).toBe(true);
    expect(isPkceValue('a'.repeat(42))).toBe(false);
    expect(isPkceValue('a'.repeat(129))).toBe(false);
    expect(isPkceValue(`${'a'.repeat(42)}+`)).toBe(false);
    expect(isPkceValue(43)).toBe(false);
  });
});

describe('user codes (RFC 8628 §6.1)', () => {
  it('generates 8 characters of the unambiguous alphabet, shown as XXXX-XXXX', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const code = generateUserCode();
      expect(code).toMatch(new RegExp(`^[${USER_CODE_ALPHABET}]{8}$`));
      expect(formatUserCode(code)).toMatch(new RegExp(`^[${USER_CODE_ALPHABET}]{4}-[${USER_CODE_ALPHABET}]{4}$`));
      seen.add(code);
    }
    expect(seen.size).toBeGreaterThan(490);
    expect(USER_CODE_ALPHABET).not.toMatch(/[AEIOU01]/);
  });

  it('reads what people type regardless of case, dashes and spaces', () => {
    expect(normalizeUserCode('bcdf-ghjk')).toBe('BCDFGHJK');
    expect(normalizeUserCode(' BCDF GHJK ')).toBe('BCDFGHJK');
    expect(normalizeUserCode('BCDFGHJK')).toBe('BCDFGHJK');
  });

  it.each(['BCDF-GHJ', 'BCDF-GHJKL', 'ABCD-FGHJ', 'BCDF-GH0K', 'BCDF_GHJK', ''])('refuses %j', (typed) => {
    expect(normalizeUserCode(typed)).toBeNull();
  });
});

describe('CliLoginGrants: authorization codes', () => {
  it('redeems a code once, with the right verifier and redirect_uri, for the approval it carries', () => {
    const grants = new CliLoginGrants({ clock: manualClock(1_000) });
    const code = grants.issueCode(binding()) ?? '';
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(grants.redeemCode({ code, codeVerifier: RFC_VERIFIER, redirectUri: REDIRECT })).toEqual({
      ok: true,
      approval: { principal: ALICE, user: 'alice@example.com', sessionRef: 'ref-1' },
    });
    expect(grants.redeemCode({ code, codeVerifier: RFC_VERIFIER, redirectUri: REDIRECT })).toEqual({ ok: false, reason: 'code-unknown' });
  });

  it.each([
    ['pkce-mismatch', { codeVerifier: 'x'.repeat(43) }],
    ['verifier-malformed', { codeVerifier: 'short' }],
    ['redirect-uri-mismatch', { redirectUri: 'http://127.0.0.1:49153/callback' }],
  ] as const)('refuses a %s with the approval named, and uses the code up', (reason, change) => {
    const grants = new CliLoginGrants({ clock: manualClock(1_000) });
    const code = grants.issueCode(binding()) ?? '';
    const refused = grants.redeemCode({ code, codeVerifier: RFC_VERIFIER, redirectUri: REDIRECT, ...change });
    expect(refused).toMatchObject({ ok: false, reason, approval: { principal: ALICE, sessionRef: 'ref-1' } });
    expect(grants.redeemCode({ code, codeVerifier: RFC_VERIFIER, redirectUri: REDIRECT })).toEqual({ ok: false, reason: 'code-unknown' });
  });

  it('lets a code expire after 60 seconds', () => {
    const clock = manualClock(1_000);
    const grants = new CliLoginGrants({ clock });
    const fresh = grants.issueCode(binding()) ?? '';
    const stale = grants.issueCode(binding()) ?? '';
    clock.advance(59_999);
    expect(grants.redeemCode({ code: fresh, codeVerifier: RFC_VERIFIER, redirectUri: REDIRECT }).ok).toBe(true);
    clock.advance(1);
    expect(grants.redeemCode({ code: stale, codeVerifier: RFC_VERIFIER, redirectUri: REDIRECT })).toMatchObject({ ok: false, reason: 'code-expired' });
  });

  it('holds a bounded number of pending codes, and makes room as they expire', () => {
    const clock = manualClock(1_000);
    const grants = new CliLoginGrants({ clock, maxPending: 2 });
    expect(grants.issueCode(binding())).not.toBeNull();
    expect(grants.issueCode(binding())).not.toBeNull();
    expect(grants.issueCode(binding())).toBeNull();
    clock.advance(60_000);
    expect(grants.issueCode(binding())).not.toBeNull();
    expect(grants.pendingCodes).toBe(1);
  });

  it('knows nothing of a code it never issued', () => {
    const grants = new CliLoginGrants({ clock: manualClock(1_000) });
    expect(grants.redeemCode({ code: 'x'.repeat(43), codeVerifier: RFC_VERIFIER, redirectUri: REDIRECT })).toEqual({ ok: false, reason: 'code-unknown' });
  });
});

describe('CliLoginGrants: device grants (RFC 8628)', () => {
  const approval = { principal: ALICE, user: 'alice@example.com', sessionRef: 'ref-1' };

  function started(grants: CliLoginGrants): { deviceCode: string; userCode: string } {
    const start = grants.startDevice(CLIENT);
    if (!start.ok) throw new Error(`no grant: ${start.reason}`);
    return start;
  }

  it('is pending until approved, slows a client that polls too fast, then issues once', () => {
    const clock = manualClock(1_000);
    const grants = new CliLoginGrants({ clock });
    const started = grants.startDevice(CLIENT);
    expect(started).toMatchObject({ ok: true, expiresInMs: 600_000, intervalMs: 5_000 });
    const { deviceCode, userCode } = started.ok ? started : { deviceCode: '', userCode: '' };
    expect(grants.pendingDevice(userCode)).toEqual({ client: clientNetwork(CLIENT), startedAt: 1_000 });
    expect(grants.pollDevice(deviceCode)).toEqual({ ok: false, error: 'authorization_pending', intervalMs: 5_000 });
    clock.advance(1_000);
    expect(grants.pollDevice(deviceCode)).toEqual({ ok: false, error: 'slow_down', intervalMs: 10_000 });
    clock.advance(10_000);
    expect(grants.pollDevice(deviceCode)).toEqual({ ok: false, error: 'authorization_pending', intervalMs: 10_000 });

    expect(grants.decideDevice(userCode, approval)).toBe('decided');
    expect(grants.pendingDevice(userCode)).toBeNull();
    expect(grants.decideDevice(userCode, approval)).toBe('unknown');
    clock.advance(10_000);
    const polled = grants.pollDevice(deviceCode);
    expect(polled).toMatchObject({ ok: true, approval });
    // While the token is being issued, another poll waits.
    clock.advance(10_000);
    expect(grants.pollDevice(deviceCode)).toMatchObject({ ok: false, error: 'authorization_pending' });
    if (polled.ok) polled.settle(true);
    clock.advance(10_000);
    expect(grants.pollDevice(deviceCode)).toEqual({ ok: false, error: 'invalid_grant' });
  });

  it('can be polled again when the token could not be issued', () => {
    const clock = manualClock(1_000);
    const grants = new CliLoginGrants({ clock });
    const { deviceCode, userCode } = started(grants);
    grants.decideDevice(userCode, approval);
    const first = grants.pollDevice(deviceCode);
    if (first.ok) first.settle(false);
    clock.advance(5_000);
    expect(grants.pollDevice(deviceCode)).toMatchObject({ ok: true, approval });
  });

  it('answers access_denied once when the user cancels, then forgets the grant', () => {
    const grants = new CliLoginGrants({ clock: manualClock(1_000) });
    const { deviceCode, userCode } = started(grants);
    expect(grants.decideDevice(userCode, null)).toBe('decided');
    expect(grants.pollDevice(deviceCode)).toEqual({ ok: false, error: 'access_denied' });
    expect(grants.pollDevice(deviceCode)).toEqual({ ok: false, error: 'invalid_grant' });
  });

  it('expires: expired_token to the client, and the code can no longer be approved', () => {
    const clock = manualClock(1_000);
    const grants = new CliLoginGrants({ clock });
    const { deviceCode, userCode } = started(grants);
    clock.advance(600_000);
    expect(grants.pendingDevice(userCode)).toBeNull();
    expect(grants.decideDevice(userCode, approval)).toBe('expired');
    expect(grants.pollDevice(deviceCode)).toEqual({ ok: false, error: 'expired_token' });
  });

  it('refuses new grants when full', () => {
    const grants = new CliLoginGrants({ clock: manualClock(1_000), maxPending: 1 });
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: true });
    expect(grants.startDevice('198.51.100.9')).toEqual({ ok: false, reason: 'full', limit: 1, retryAfterMs: 600_000 });
  });

  it('holds only its share of grants per client network, so one client cannot lock everyone out', () => {
    const clock = manualClock(1_000);
    const grants = new CliLoginGrants({ clock });
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: true });
    clock.advance(60_000);
    for (let i = 1; i < MAX_PENDING_DEVICES_PER_CLIENT; i++) expect(grants.startDevice(CLIENT)).toMatchObject({ ok: true });
    expect(grants.startDevice(CLIENT)).toEqual({ ok: false, reason: 'client-limit', limit: MAX_PENDING_DEVICES_PER_CLIENT, retryAfterMs: 540_000 });
    expect(grants.startDevice('198.51.100.9')).toMatchObject({ ok: true });
    // The oldest grant expires: room for one more.
    clock.advance(540_000);
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: true });
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: false, reason: 'client-limit' });
  });

  it('gives a client back its share as its grants are used up or cancelled', () => {
    const clock = manualClock(1_000);
    const grants = new CliLoginGrants({ clock, maxPendingDevicesPerClient: 2 });
    const first = started(grants);
    const second = started(grants);
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: false, reason: 'client-limit' });
    grants.decideDevice(first.userCode, approval);
    const polled = grants.pollDevice(first.deviceCode);
    if (polled.ok) polled.settle(true);
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: true });
    grants.decideDevice(second.userCode, null);
    expect(grants.pollDevice(second.deviceCode)).toEqual({ ok: false, error: 'access_denied' });
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: true });
    expect(grants.startDevice(CLIENT)).toMatchObject({ ok: false, reason: 'client-limit' });
  });

  it('keeps the global cap as a backstop across client networks', () => {
    const grants = new CliLoginGrants({ clock: manualClock(1_000), maxPending: 3 });
    for (const client of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) expect(grants.startDevice(client)).toMatchObject({ ok: true });
    expect(grants.startDevice('198.51.100.4')).toMatchObject({ ok: false, reason: 'full' });
  });

  it('stops a session after too many wrong user codes (RFC 8628 §5.1)', () => {
    const grants = new CliLoginGrants({ clock: manualClock(1_000) });
    for (let i = 1; i < MAX_USER_CODE_FAILURES; i++) expect(grants.userCodeAttempt('session-a', true)).toBe(true);
    expect(grants.userCodeAttempt('session-a', true)).toBe(false);
    expect(grants.userCodeAttempt('session-a', false)).toBe(false);
    expect(grants.userCodeAttempt('session-b', false)).toBe(true);
  });
});

describe('clientNetwork: what device grants are counted against', () => {
  it.each([
    ['203.0.113.5', '203.0.113.5'],
    ['::ffff:203.0.113.5', '203.0.113.5'],
    ['2001:db8:1:2::a', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:ffff:0:0:1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:3:4:5:6%eth0', '2001:db8:1:2::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
    ['', ''],
  ])('%s counts as %s', (address, network) => {
    expect(clientNetwork(address)).toBe(network);
  });
});
