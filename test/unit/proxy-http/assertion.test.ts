import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../../src/core/index.js';
import { AssertionSigner } from '../../../src/proxy/http/assertion.js';

const ALICE = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] };
const SECRETS = ['assertion-test-secret-0123456789abcdef'];

describe('AssertionSigner', () => {
  it('signs EdDSA assertions that verify against its JWKS with the claims upstreams rely on', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const signer = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: SECRETS, clock });
    const token = await signer.assertionFor(ALICE, 'app', 'session:a');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet({ keys: [...signer.jwks.keys] }), {
      issuer: 'https://gw.example',
      audience: 'app',
      currentDate: new Date(clock.now()),
    });
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', typ: 'JWT', kid: signer.jwks.keys[0]?.kid });
    expect(payload).toEqual({ iss: 'https://gw.example', aud: 'app', sub: 'sub-alice', email: 'alice@example.com', groups: ['engineering'], iat: clock.now() / 1000, exp: clock.now() / 1000 + 60, jti: expect.any(String) });
    expect(signer.jwks.keys[0]).not.toHaveProperty('d');
  });

  it('reuses an assertion per login and resource for the reuse window only', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const signer = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: SECRETS, clock, reuseMs: 5_000 });
    const first = await signer.assertionFor(ALICE, 'app', 'session:a');
    expect(signer.assertionFor(ALICE, 'app', 'session:a')).toBe(first);
    expect(await signer.assertionFor(ALICE, 'api', 'session:a')).not.toBe(first);
    expect(await signer.assertionFor(ALICE, 'app', 'session:b')).not.toBe(first);
    clock.advance(5_000);
    expect(await signer.assertionFor(ALICE, 'app', 'session:a')).not.toBe(first);
  });

  it('signs anew when the login comes back with another principal, so groups lost at a refresh are not asserted', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const signer = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: SECRETS, clock });
    const jwks = createLocalJWKSet({ keys: [...signer.jwks.keys] });
    const admin = { ...ALICE, groups: ['admins', 'engineering'] };
    const first = await signer.assertionFor(admin, 'app', 'session:a');
    const refreshed = await signer.assertionFor(ALICE, 'app', 'session:a');
    expect(refreshed).not.toBe(first);
    const { payload } = await jwtVerify(refreshed, jwks, { currentDate: new Date(clock.now()) });
    expect(payload['groups']).toEqual(['engineering']);
  });

  it('by default reuses an assertion until half its lifetime is spent, so each one reaching an upstream has half left', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const signer = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: SECRETS, clock });
    const jwks = createLocalJWKSet({ keys: [...signer.jwks.keys] });
    const first = await signer.assertionFor(ALICE, 'app', 'session:a');
    clock.advance(29_999);
    expect(signer.assertionFor(ALICE, 'app', 'session:a')).toBe(first);
    const { payload } = await jwtVerify(first, jwks, { audience: 'app', currentDate: new Date(clock.now()) });
    expect((payload.exp ?? 0) * 1000 - clock.now()).toBeGreaterThan(29_000);
    clock.advance(1);
    const second = await signer.assertionFor(ALICE, 'app', 'session:a');
    expect(second).not.toBe(first);
    expect((await jwtVerify(second, jwks, { audience: 'app', currentDate: new Date(clock.now()) })).payload.iat).toBe(clock.now() / 1000);
  });

  it('signs once for concurrent requests of one login and resource', async () => {
    const signer = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: SECRETS, clock: manualClock(Date.UTC(2026, 0, 1)) });
    const first = signer.assertionFor(ALICE, 'app', 'session:a');
    const second = signer.assertionFor(ALICE, 'app', 'session:a');
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBe(first);
    const token = await first;
    expect(signer.assertionFor(ALICE, 'app', 'session:a')).toBe(token);
  });

  it('derives its key from the secrets: the same secrets sign verifiably everywhere, and the key of a rotated-out secret stays published', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const NEW = 'assertion-test-secret-rotated-456789ab';
    const restarted = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: SECRETS, clock });
    const rotated = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: [NEW, ...SECRETS], clock });
    const before = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: SECRETS, clock });
    expect(restarted.jwks).toEqual(before.jwks);
    expect(rotated.jwks.keys).toHaveLength(2);
    expect(rotated.jwks.keys[1]).toEqual(before.jwks.keys[0]);
    expect(rotated.jwks.keys[0]?.kid).not.toBe(before.jwks.keys[0]?.kid);
    // An upstream that cached the JWKS before a restart verifies what the restarted gateway signs;
    // one that fetched it after the rotation still verifies what the old key signed.
    const options = { issuer: 'https://gw.example', audience: 'app', currentDate: new Date(clock.now()) };
    await expect(jwtVerify(await restarted.assertionFor(ALICE, 'app', 'session:a'), createLocalJWKSet({ keys: [...before.jwks.keys] }), options)).resolves.toBeDefined();
    await expect(jwtVerify(await before.assertionFor(ALICE, 'app', 'session:b'), createLocalJWKSet({ keys: [...rotated.jwks.keys] }), options)).resolves.toBeDefined();
    const other = await AssertionSigner.create({ issuer: 'https://gw.example', secrets: ['some-other-secret-0123456789abcdef'], clock });
    await expect(jwtVerify(await other.assertionFor(ALICE, 'app', 'session:c'), createLocalJWKSet({ keys: [...rotated.jwks.keys] }), options)).rejects.toThrow();
    await expect(AssertionSigner.create({ issuer: 'https://gw.example', secrets: [], clock })).rejects.toMatchObject({ code: 'TG_ERR_CONFIG_INVALID' });
  });
});
