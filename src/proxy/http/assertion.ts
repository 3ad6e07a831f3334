import { randomBytes } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { TollgateError, type Clock, type Principal } from '../../core/index.js';
import { BoundedCache } from './bounded-cache.js';

/** The header carrying the identity assertion to the upstream. */
export const ASSERTION_HEADER = 'x-tollgate-assertion';
/** Where the gateway publishes the public key that verifies assertions (RFC 7517 JWK Set). */
export const JWKS_PATH = '/.well-known/tollgate/jwks.json';

export interface AssertionSignerOptions {
  /** `iss` of every assertion: the gateway's public origin. */
  readonly issuer: string;
  readonly clock: Clock;
  /** Lifetime of an assertion; default 60 s. */
  readonly ttlMs?: number;
  /**
   * How long one signed assertion is reused for further requests of the same login to the same
   * resource; default (and at most) half of `ttlMs`. Signing costs about as much as the rest of
   * the request path, so it is kept off the hot path; an assertion reaching an upstream is at
   * most this much older than the request and still has `ttlMs - reuseMs` to live.
   */
  readonly reuseMs?: number;
  /** An Ed25519 private key as a JWK (with `d`); a fresh one is generated when absent. */
  readonly privateJwk?: JWK;
}

interface CachedAssertion {
  /** The signed token, or its signing still under way (concurrent requests share it). */
  readonly token: string | Promise<string>;
  readonly reuseUntil: number;
  /** Whom it was signed for: a refresh that changes the groups gives a new principal. */
  readonly principal: Principal;
}

/**
 * Signs the short-lived identity assertion every upstream request carries in
 * `X-Tollgate-Assertion`: a JWT (RFC 7519) signed with Ed25519 (`EdDSA`, RFC 8037) holding
 * `iss` (the gateway), `aud` (the resource name), `sub`, `email`, `groups`, `iat`, `exp` and
 * `jti`. Upstreams verify it against {@link JWKS_PATH}; unlike `X-Tollgate-User`, it cannot be
 * forged by anything that reaches the upstream without going through the gateway.
 */
export class AssertionSigner {
  readonly #issuer: string;
  readonly #clock: Clock;
  readonly #ttlSeconds: number;
  readonly #reuseMs: number;
  readonly #key: CryptoKey;
  readonly #kid: string;
  readonly #jwks: { readonly keys: readonly JWK[] };
  readonly #cache = new BoundedCache<string, CachedAssertion>(20_000);

  private constructor(options: AssertionSignerOptions, key: CryptoKey, publicJwk: JWK, kid: string) {
    this.#issuer = options.issuer;
    this.#clock = options.clock;
    this.#ttlSeconds = Math.max(1, Math.floor((options.ttlMs ?? 60_000) / 1000));
    this.#reuseMs = Math.min(options.reuseMs ?? Number.POSITIVE_INFINITY, this.#ttlSeconds * 500);
    this.#key = key;
    this.#kid = kid;
    this.#jwks = Object.freeze({ keys: Object.freeze([Object.freeze({ ...publicJwk, kid, alg: 'EdDSA', use: 'sig' })]) });
  }

  /** Prepares the signer: imports the configured key or generates one. */
  static async create(options: AssertionSignerOptions): Promise<AssertionSigner> {
    let key: CryptoKey;
    let publicJwk: JWK;
    if (options.privateJwk === undefined) {
      const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: false });
      key = pair.privateKey;
      publicJwk = await exportJWK(pair.publicKey);
    } else {
      const { d, ...rest } = options.privateJwk;
      if (options.privateJwk.kty !== 'OKP' || options.privateJwk.crv !== 'Ed25519' || d === undefined) {
        throw new TollgateError('TG_ERR_CONFIG_INVALID', 'the assertion signing key must be an Ed25519 private JWK (kty OKP, crv Ed25519, with d)');
      }
      key = (await importJWK(options.privateJwk, 'EdDSA')) as CryptoKey;
      publicJwk = { kty: rest.kty, crv: rest.crv, x: rest.x };
    }
    const kid = await calculateJwkThumbprint(publicJwk);
    return new AssertionSigner(options, key, publicJwk, kid);
  }

  /** The JWK Set served at {@link JWKS_PATH}. */
  get jwks(): { readonly keys: readonly JWK[] } {
    return this.#jwks;
  }

  /**
   * The assertion for `principal` on `resource`. `reuseKey` names the login it stands for (a
   * session or a bearer token); assertions are reused per login and resource for `reuseMs` while
   * the login's principal is the same object (a refreshed session brings a new one, possibly with
   * other groups, which must not ride on an assertion signed before), and a reused one is
   * returned synchronously once signed.
   */
  assertionFor(principal: Principal, resource: string, reuseKey: string): string | Promise<string> {
    const cacheKey = `${resource}\n${reuseKey}`;
    const now = this.#clock.now();
    const cached = this.#cache.get(cacheKey);
    if (cached !== undefined && now < cached.reuseUntil && cached.principal === principal) return cached.token;
    const signing = this.#sign(principal, resource, now);
    const entry: CachedAssertion = { token: signing, reuseUntil: now + this.#reuseMs, principal };
    this.#cache.set(cacheKey, entry);
    signing.then(
      (token) => {
        if (this.#cache.get(cacheKey) === entry) this.#cache.set(cacheKey, { token, reuseUntil: entry.reuseUntil, principal });
      },
      () => {
        if (this.#cache.get(cacheKey) === entry) this.#cache.delete(cacheKey);
      },
    );
    return signing;
  }

  #sign(principal: Principal, resource: string, now: number): Promise<string> {
    const iat = Math.floor(now / 1000);
    const claims: Record<string, unknown> = { sub: principal.subject, groups: [...principal.groups] };
    if (principal.email !== undefined) claims['email'] = principal.email;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: this.#kid, typ: 'JWT' })
      .setIssuer(this.#issuer)
      .setAudience(resource)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.#ttlSeconds)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(this.#key);
  }
}
