import { describe, expect, it } from 'vitest';
import type { IdentityConfig } from '../../../src/config/index.js';
import { createSessionCookies, type IdentityOptions } from '../../../src/identity/index.js';
import { bearerSettings, gatewayUrls } from '../../../src/identity/options.js';

function config(overrides: Partial<IdentityConfig> = {}): IdentityConfig {
  return {
    issuer: 'https://idp.example',
    client_id: 'tollgate',
    scopes: ['openid', 'email', 'profile'],
    claims: { user: 'email', email: 'email', groups: 'groups' },
    session: { keys: ['k'.repeat(32)], ttl: 8 * 3_600_000, cookie_name: 'tollgate_session' },
    bearer: { enabled: true, audiences: [], algorithms: ['RS256', 'ES256'], clock_skew: 60_000 },
    db_tokens: { ttl: 3_600_000, max_ttl: 12 * 3_600_000 },
    ...overrides,
  };
}

function options(identity: IdentityConfig, publicUrl = 'https://gw.example'): IdentityOptions {
  return { publicUrl, identity };
}

describe('identity options', () => {
  it('derives the redirect URI and cookie security from the public URL', () => {
    expect(gatewayUrls(options(config()))).toEqual({ publicOrigin: 'https://gw.example', redirectUri: 'https://gw.example/_tollgate/callback', secure: true });
    expect(gatewayUrls({ ...options(config(), 'http://127.0.0.1:8080/'), callbackPath: '/auth/cb' })).toEqual({
      publicOrigin: 'http://127.0.0.1:8080',
      redirectUri: 'http://127.0.0.1:8080/auth/cb',
      secure: false,
    });
  });

  it('refuses a public URL that is not http(s)', () => {
    expect(() => gatewayUrls(options(config(), 'ftp://gw.example'))).toThrow(expect.objectContaining({ code: 'TG_ERR_CONFIG_INVALID' }));
    expect(() => gatewayUrls(options(config(), 'not a url'))).toThrow(expect.objectContaining({ code: 'TG_ERR_CONFIG_INVALID' }));
  });

  it('defaults the bearer audience to the client id', () => {
    expect(bearerSettings(config()).audiences).toEqual(['tollgate']);
    expect(bearerSettings(config({ bearer: { ...config().bearer, audiences: ['api'] } })).audiences).toEqual(['api']);
  });

  it.each(['none', 'HS256', 'hs512'])('refuses the algorithm %s even if a config let it through', (alg) => {
    const algorithms = ['RS256', alg] as unknown as IdentityConfig['bearer']['algorithms'];
    expect(() => bearerSettings(config({ bearer: { ...config().bearer, algorithms } }))).toThrow(/not allowed/);
  });

  it('bounds the clock tolerance at five minutes', () => {
    expect(bearerSettings(config({ bearer: { ...config().bearer, clock_skew: 300_000 } })).clockSkewMs).toBe(300_000);
    expect(() => bearerSettings(config({ bearer: { ...config().bearer, clock_skew: 300_001 } }))).toThrow(/between 0s and 5m/);
  });

  it('wants at least one session key, each of 32 bytes or more', () => {
    expect(() => createSessionCookies(options(config({ session: { ...config().session, keys: [] } })))).toThrow(/at least one key/);
    expect(() => createSessionCookies(options(config({ session: { ...config().session, keys: ['k'.repeat(32), 'short'] } })))).toThrow(
      /session\.keys\[1\]: must be at least 32 bytes/,
    );
  });

  it('names cookies with __Host- on https only', () => {
    expect(createSessionCookies(options(config())).sessionCookieName).toBe('__Host-tollgate_session');
    expect(createSessionCookies(options(config(), 'http://127.0.0.1:8080')).sessionCookieName).toBe('tollgate_session');
  });
});
