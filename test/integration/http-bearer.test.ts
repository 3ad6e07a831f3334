import { SignJWT, exportSPKI, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/index.js';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness();
});

afterAll(async () => {
  await h?.close();
});

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const now = (): number => Math.floor(Date.now() / 1000);

async function call(token: string) {
  const before = h.upstream.requests.length;
  const response = await sendRequest(h.url, '/app/api/orders', { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  return { response, forwarded: h.upstream.requests.length - before };
}

describe('bearer tokens', () => {
  it('accepts a valid token and forwards without the Authorization header', async () => {
    const { response, forwarded } = await call(await bearerFor(h.idp, ALICE));
    expect(response.status).toBe(200);
    expect(forwarded).toBe(1);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBeUndefined();
  });

  const cases: [string, string, () => Promise<string>][] = [
    ['expired', 'expired', () => bearerFor(h.idp, ALICE, { iat: now() - 600, exp: now() - 300 })],
    ['not yet valid', 'not-yet-valid', () => bearerFor(h.idp, ALICE, { nbf: now() + 600 })],
    ['from another issuer', 'wrong-issuer', () => bearerFor(h.idp, ALICE, { iss: 'https://evil.example' })],
    ['for another audience', 'wrong-audience', () => bearerFor(h.idp, ALICE, { aud: 'some-other-api' })],
    [
      'unsigned (alg none)',
      'alg-not-allowed',
      async () => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iss: h.idp.issuer, aud: 'tollgate', sub: 'sub-alice', exp: now() + 300 })}.`,
    ],
    [
      'HS256-signed with the IdP public key as the secret',
      'alg-not-allowed',
      async () => {
        const pem = await exportSPKI((await importJWK(h.idp.publicJwk(), 'RS256', { extractable: true })) as CryptoKey);
        return new SignJWT({ sub: 'sub-alice', email: ALICE.email, groups: ['engineering'] })
          .setProtectedHeader({ alg: 'HS256', kid: h.idp.currentKid })
          .setIssuer(h.idp.issuer)
          .setAudience('tollgate')
          .setExpirationTime(now() + 300)
          .sign(new TextEncoder().encode(pem));
      },
    ],
    [
      'signed by a key the IdP never published (unknown kid)',
      'unknown-key',
      async () => {
        const { privateKey } = await generateKeyPair('RS256');
        return new SignJWT({ sub: 'sub-alice', email: ALICE.email })
          .setProtectedHeader({ alg: 'RS256', kid: 'attacker-key' })
          .setIssuer(h.idp.issuer)
          .setAudience('tollgate')
          .setExpirationTime(now() + 300)
          .sign(privateKey);
      },
    ],
    ['with a tampered payload', 'bad-signature', async () => {
      const [header, , signature] = (await bearerFor(h.idp, ALICE)).split('.');
      return `${header}.${base64url({ iss: h.idp.issuer, aud: 'tollgate', sub: 'sub-root', groups: ['admins'], exp: now() + 300 })}.${signature}`;
    }],
  ];

  it.each(cases)('refuses a token %s with 401 and records %s, never the token', async (_what, reason, make) => {
    const token = await make();
    const { response, forwarded } = await call(token);
    expect(response.status).toBe(401);
    expect(forwarded).toBe(0);
    expect(response.headers['www-authenticate']).toBe(`Bearer realm="tollgate", error="invalid_token", error_description="${reason}"`);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_token', reason });
    const records = h.records();
    expect(records.findLast((record) => record.kind === 'auth.failure')).toMatchObject({ request_id: response.headers['x-request-id'], data: { method: 'bearer', reason } });
    expect(JSON.stringify(records)).not.toContain(token.split('.')[2] || token);
  });

  it('never falls back to the session cookie when a bearer token is refused', async () => {
    const { browser } = await h.login(ALICE);
    const response = await sendRequest(h.url, '/app/x', { headers: { cookie: browser.cookieHeader(h.url), authorization: 'Bearer not.a.token' } });
    expect(response.status).toBe(401);
  });

  it.each(['Bearer a b', 'Bearer', 'bearer  two tokens', 'BEARER ,'])('refuses a Bearer credential that is not a token (%j) even with a session cookie, and passes nothing on', async (authorization) => {
    const { browser } = await h.login(ALICE);
    const before = h.upstream.requests.length;
    const response = await sendRequest(h.url, '/app/x', { headers: { cookie: browser.cookieHeader(h.url), authorization, accept: 'application/json' } });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_token', reason: 'malformed' });
    expect(h.upstream.requests.length).toBe(before);
    expect(h.records().findLast((record) => record.kind === 'auth.failure')).toMatchObject({ request_id: response.headers['x-request-id'], data: { method: 'bearer', reason: 'malformed' } });
  });

  it('leaves other Authorization schemes to the upstream: the session cookie decides', async () => {
    const { browser } = await h.login(ALICE);
    const response = await sendRequest(h.url, '/app/x', { headers: { cookie: browser.cookieHeader(h.url), authorization: 'Basic dXNlcjpwYXNz' } });
    expect(response.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Basic dXNlcjpwYXNz');
  });

  it('fetches the JWKS again when the IdP starts signing with a new key', async () => {
    const kid = await h.idp.rotateSigningKey();
    const token = await bearerFor(h.idp, ALICE);
    expect(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).kid).toBe(kid);
    const { response } = await call(token);
    expect(response.status).toBe(200);
  });
});

describe('bearer tokens over time', () => {
  it('stops accepting a token once exp is more than clock_skew (60 s) past, even seconds after it was accepted', async () => {
    const clock = manualClock(Date.now());
    const timed = await startGatewayHarness({ clock });
    try {
      // Expired 50 s ago: still inside the tolerance, so accepted, and the verification cached.
      const exp = Math.floor(clock.now() / 1000) - 50;
      const token = await bearerFor(timed.idp, ALICE, { iat: exp - 300, exp });
      const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
      expect((await sendRequest(timed.url, '/app/orders', { headers })).status).toBe(200);
      clock.advance(11_000);
      const before = timed.upstream.requests.length;
      const late = await sendRequest(timed.url, '/app/orders', { headers });
      expect(late.status).toBe(401);
      expect(JSON.parse(late.body)).toMatchObject({ error: 'invalid_token', reason: 'expired' });
      expect(timed.upstream.requests.length).toBe(before);
    } finally {
      await timed.close();
    }
  });
});

describe('the IdP\'s JWKS', () => {
  it('is fetched once for many tokens, and not again for unknown kids within the cooldown after a fetch', async () => {
    const cached = await startGatewayHarness({ jwksCooldownMs: 30_000 });
    try {
      const headers = async (token: string) => ({ authorization: `Bearer ${token}`, accept: 'application/json' });
      for (let i = 0; i < 10; i++) {
        const token = await bearerFor(cached.idp, ALICE, { jti: `jwks-${i}` });
        expect((await sendRequest(cached.url, '/app/orders', { headers: await headers(token) })).status).toBe(200);
      }
      const afterTokens = cached.idp.jwksFetches;
      expect(afterTokens).toBeLessThanOrEqual(1);
      const { privateKey } = await generateKeyPair('RS256');
      const stranger = (kid: string) =>
        new SignJWT({ sub: 'sub-alice', email: ALICE.email }).setProtectedHeader({ alg: 'RS256', kid }).setIssuer(cached.idp.issuer).setAudience('tollgate').setExpirationTime(now() + 300).sign(privateKey);
      // A flood of tokens naming keys the IdP never had cannot make the gateway hammer the IdP.
      for (const kid of ['unknown-1', 'unknown-2', 'unknown-3']) {
        expect((await sendRequest(cached.url, '/app/orders', { headers: await headers(await stranger(kid)) })).status).toBe(401);
      }
      expect(cached.idp.jwksFetches).toBe(afterTokens);
    } finally {
      await cached.close();
    }
  });
});
