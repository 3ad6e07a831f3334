import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../../src/core/index.js';
import { DB_TOKEN_PREFIX, DbTokens, createDbTokens, type IdentityOptions } from '../../../src/identity/index.js';
import { deriveKey } from '../../../src/identity/seal.js';

const SIGNING_KEY = 'db-token-signing-key-0123456789abcdef';
const START = Date.UTC(2026, 10, 1, 12);
const HOUR = 3_600_000;
const ALICE = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering', 'oncall'] };

function tokens(clock = manualClock(START), key = SIGNING_KEY) {
  return { clock, db: new DbTokens({ signingKey: key, ttlMs: HOUR, maxTtlMs: 12 * HOUR }, clock) };
}

function issued(db: DbTokens, ttl?: number): string {
  const result = db.issueDbToken(ALICE, ttl);
  if (!result.ok) throw new Error(result.reason);
  return result.token;
}

/** Builds a token by hand with the real key, to test the verifier's checks beyond the MAC. */
function handMade(body: unknown): string {
  const signed = `${DB_TOKEN_PREFIX}${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
  const mac = createHmac('sha256', deriveKey(SIGNING_KEY, 'tollgate.db-token.v1')).update(signed).digest('base64url');
  return `${signed}.${mac}`;
}

describe('database tokens', () => {
  it('issue and verify round-trip the principal, with jti, iat and exp', () => {
    const { db } = tokens();
    const result = db.issueDbToken(ALICE);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.issuedAt).toBe(START);
    expect(result.expiresAt).toBe(START + HOUR);
    expect(result.tokenId).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(db.verifyDbToken(result.token)).toEqual({ ok: true, principal: ALICE, tokenId: result.tokenId, issuedAt: START, expiresAt: START + HOUR });
  });

  it('is prefixed, password-safe and short', () => {
    const token = issued(tokens().db);
    expect(token).toMatch(/^tgdb_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(token.length).toBeLessThan(260);
  });

  it('gives every token its own id', () => {
    const { db } = tokens();
    expect(issued(db)).not.toBe(issued(db));
  });

  it('carries a principal without email', () => {
    const { db } = tokens();
    const result = db.issueDbToken({ subject: 'robot', groups: [] });
    expect(result.ok && db.verifyDbToken(result.token)).toMatchObject({ ok: true, principal: { subject: 'robot', groups: [] } });
  });

  it('expires at exp', () => {
    const { db, clock } = tokens();
    const token = issued(db, 15 * 60_000);
    clock.advance(15 * 60_000 - 1000);
    expect(db.verifyDbToken(token).ok).toBe(true);
    clock.advance(1000);
    expect(db.verifyDbToken(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('enforces max_ttl and a sane ttl', () => {
    const { db } = tokens();
    expect(db.issueDbToken(ALICE, 12 * HOUR).ok).toBe(true);
    expect(db.issueDbToken(ALICE, 12 * HOUR + 1000)).toEqual({ ok: false, reason: 'ttl-exceeds-max' });
    expect(db.issueDbToken(ALICE, 0)).toEqual({ ok: false, reason: 'ttl-invalid' });
    expect(db.issueDbToken(ALICE, Number.NaN)).toEqual({ ok: false, reason: 'ttl-invalid' });
  });

  it('rejects a changed payload and a changed MAC as bad signatures', () => {
    const { db } = tokens();
    const token = issued(db);
    const [signed = '', mac = ''] = token.split('.');
    const payload = JSON.parse(Buffer.from(signed.slice(5), 'base64url').toString()) as Record<string, unknown>;
    payload['gr'] = ['dba'];
    const escalated = `tgdb_${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${mac}`;
    expect(db.verifyDbToken(escalated)).toEqual({ ok: false, reason: 'bad-signature' });
    const otherMac = `${signed}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`;
    expect(db.verifyDbToken(otherMac)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('rejects a token signed with another key', () => {
    const token = issued(tokens(manualClock(START), 'another-signing-key-0123456789abcdef').db);
    expect(tokens().db.verifyDbToken(token)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('proves a holder of the signing key for one message, and for nothing else', () => {
    const { db } = tokens();
    const other = tokens(manualClock(START), 'another-signing-key-0123456789abcdef').db;
    const message = '{"token":"tgdb_x","minted_by":{"os_user":"ops","host":"h","pid":1}}';
    const proof = db.proveKeyHolder(message);
    expect(db.verifyKeyHolder(message, proof)).toBe(true);
    expect(db.verifyKeyHolder(`${message} `, proof)).toBe(false);
    expect(db.verifyKeyHolder(message, other.proveKeyHolder(message))).toBe(false);
    expect(db.verifyKeyHolder(message, '')).toBe(false);
    expect(db.verifyKeyHolder(message, 'not base64url!')).toBe(false);
    // Derived apart from the token key: a token's MAC is no proof, and a proof is no token MAC.
    const token = issued(db);
    const signed = token.slice(0, token.lastIndexOf('.'));
    expect(db.verifyKeyHolder(signed, token.slice(token.lastIndexOf('.') + 1))).toBe(false);
    expect(db.verifyDbToken(`${signed}.${db.proveKeyHolder(signed)}`)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it.each([
    ['empty', ''],
    ['no prefix', 'abc.def'],
    ['other prefix', 'tgxx_abc.def'],
    ['no MAC', 'tgdb_eyJ9'],
    ['empty payload', `tgdb_.${'A'.repeat(43)}`],
    ['short MAC', 'tgdb_eyJ9.AAAA'],
    ['padded MAC', `tgdb_eyJ9.${'A'.repeat(43)}=`],
    ['non-base64url payload', `tgdb_ey+J9.${'A'.repeat(43)}`],
    ['huge', `tgdb_${'A'.repeat(5000)}.${'A'.repeat(43)}`],
  ])('reports %s as malformed', (_what, token) => {
    expect(tokens().db.verifyDbToken(token)).toEqual({ ok: false, reason: 'malformed' });
  });

  it.each([
    ['not JSON', 'not json'],
    ['an array', []],
    ['no subject', { gr: [], iat: 1, exp: 2, jti: 'j' }],
    ['groups not strings', { sub: 's', gr: [1], iat: 1, exp: 2, jti: 'j' }],
    ['exp before iat', { sub: 's', gr: [], iat: 5, exp: 2, jti: 'j' }],
    ['fractional time', { sub: 's', gr: [], iat: 1.5, exp: 2e12, jti: 'j' }],
    ['no jti', { sub: 's', gr: [], iat: 1, exp: 2e12 }],
  ])('reports a correctly signed token with %s as malformed', (_what, body) => {
    const token = typeof body === 'string' ? `tgdb_${Buffer.from(body).toString('base64url')}` : handMade(body);
    const withMac =
      typeof body === 'string'
        ? `${token}.${createHmac('sha256', deriveKey(SIGNING_KEY, 'tollgate.db-token.v1')).update(token).digest('base64url')}`
        : token;
    expect(tokens().db.verifyDbToken(withMac)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('createDbTokens wants a signing key of at least 32 bytes', () => {
    const options = (signing_key?: string): IdentityOptions => ({
      publicUrl: 'https://gw.example',
      identity: {
        issuer: 'https://idp.example',
        client_id: 'tollgate',
        scopes: ['openid'],
        claims: { user: 'email', email: 'email', groups: 'groups' },
        session: { keys: ['k'.repeat(32)], ttl: HOUR, cookie_name: 'tollgate_session' },
        bearer: { enabled: true, audiences: [], algorithms: ['RS256'], clock_skew: 60_000 },
        db_tokens: { ttl: HOUR, max_ttl: 12 * HOUR, ...(signing_key === undefined ? {} : { signing_key }) },
      },
    });
    expect(() => createDbTokens(options())).toThrow(expect.objectContaining({ code: 'TG_ERR_CONFIG_INVALID' }));
    expect(() => createDbTokens(options('short'))).toThrow(/at least 32 bytes/);
    expect(createDbTokens(options(SIGNING_KEY))).toBeInstanceOf(DbTokens);
  });
});
