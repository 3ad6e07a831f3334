import { createPrivateKey, createPublicKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, type JWK } from 'jose';
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
  /**
   * The secrets the Ed25519 signing keys are derived from: the session keys. The first signs and
   * every one's public key is published, so gateways that share the secrets (replicas behind one
   * URL, the same gateway after a restart) sign with keys every upstream's cached JWKS already
   * holds, and a rotated-out key stays verifiable while the secret is still listed.
   */
  readonly secrets: readonly string[];
}

/** HKDF-SHA256 salt and info of the assertion keys: a use of the session secrets apart from the cookies'. */
const KEY_SALT = 'tollgate.assertion.v1';
const KEY_INFO = 'x-tollgate-assertion ed25519 seed';
/** DER header of an Ed25519 private key in PKCS #8 (RFC 8410 §7); the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The public half of `key` as published in the JWK Set, its `kid` the RFC 7638 thumbprint. */
async function publishedJwk(key: KeyObject): Promise<JWK> {
  const { kty, crv, x } = createPublicKey(key).export({ format: 'jwk' });
  const publicJwk: JWK = { kty, crv, x };
  return Object.freeze({ ...publicJwk, kid: await calculateJwkThumbprint(publicJwk), alg: 'EdDSA', use: 'sig' });
}

/** The Ed25519 key derived from `secret`: the same secret gives the same key in every process. */
function derivedKey(secret: string): KeyObject {
  const seed = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), KEY_SALT, KEY_INFO, 32));
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
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
  readonly #key: KeyObject;
  readonly #kid: string;
  readonly #jwks: { readonly keys: readonly JWK[] };
  readonly #cache = new BoundedCache<string, CachedAssertion>(20_000);

  private constructor(options: AssertionSignerOptions, key: KeyObject, kid: string, jwks: readonly JWK[]) {
    this.#issuer = options.issuer;
    this.#clock = options.clock;
    this.#ttlSeconds = Math.max(1, Math.floor((options.ttlMs ?? 60_000) / 1000));
    this.#reuseMs = Math.min(options.reuseMs ?? Number.POSITIVE_INFINITY, this.#ttlSeconds * 500);
    this.#key = key;
    this.#kid = kid;
    this.#jwks = Object.freeze({ keys: Object.freeze(jwks) });
  }

  /** Prepares the signer: derives its keys from the secrets. */
  static async create(options: AssertionSignerOptions): Promise<AssertionSigner> {
    const [first] = options.secrets;
    if (first === undefined) throw new TollgateError('TG_ERR_CONFIG_INVALID', 'the assertion signer needs at least one secret (identity.session.keys)');
    const jwks: JWK[] = [];
    for (const secret of new Set(options.secrets)) jwks.push(await publishedJwk(derivedKey(secret)));
    return new AssertionSigner(options, derivedKey(first), (jwks[0] as JWK).kid as string, jwks);
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
