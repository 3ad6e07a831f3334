import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { Clock, Principal } from '../core/index.js';
import { principalFromClaims, type ClaimPaths } from './claims.js';

/** Why a bearer token was refused; stable strings for the `auth.failure` audit record. */
export type BearerFailureReason =
  | 'bearer-disabled'
  | 'malformed'
  | 'alg-not-allowed'
  | 'unknown-key'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'missing-subject'
  | 'jwks-unavailable'
  /** The IdP has not been discovered yet, so there is no JWKS to verify against. */
  | 'idp-unavailable';

export type BearerResult =
  | {
      readonly ok: true;
      readonly principal: Principal;
      readonly user: string;
      /** The token's `jti` when it has one: record it, never the token. */
      readonly tokenId?: string;
      /** `exp` in milliseconds since the epoch. */
      readonly expiresAt: number;
    }
  | { readonly ok: false; readonly reason: BearerFailureReason };

/** Settings of a {@link BearerVerifier}. */
export interface BearerSettings {
  readonly enabled: boolean;
  /** Expected `iss`, exactly as discovered. */
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockSkewMs: number;
  readonly claims: ClaimPaths;
}

export interface BearerDeps {
  readonly clock: Clock;
  /**
   * Minimum time between two JWKS fetches caused by unknown `kid`s, in milliseconds. Default
   * 30 s: a flood of tokens with made-up key ids cannot turn into a flood of requests to the IdP.
   */
  readonly jwksCooldownMs?: number;
  /** Timeout of a JWKS fetch in milliseconds. Default 5 s. */
  readonly jwksTimeoutMs?: number;
}

/** Tokens longer than this are refused before any parsing. */
const MAX_TOKEN_CHARS = 16_384;

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or `undefined`. */
export function bearerTokenFrom(authorization: string | undefined): string | undefined {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization ?? '');
  return match?.[1];
}

/**
 * Verifies OIDC access or ID tokens presented by API clients (RFC 9068, RFC 8725): signature
 * against the issuer's JWKS, `alg` from the allow-list only (so `none` and HMAC keyed with a
 * public key are refused before any key is used), `iss`, `aud`, `exp` and `nbf` within the
 * configured clock tolerance; `sub` and `exp` must be present.
 *
 * The JWKS is fetched lazily, cached, and fetched again when a token names an unknown `kid`
 * (the IdP rotated its keys), at most once per cooldown.
 */
export class BearerVerifier {
  readonly #settings: BearerSettings;
  readonly #clock: Clock;
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(settings: BearerSettings, deps: BearerDeps) {
    this.#settings = settings;
    this.#clock = deps.clock;
    this.#jwks = createRemoteJWKSet(new URL(settings.jwksUri), {
      cooldownDuration: deps.jwksCooldownMs ?? 30_000,
      timeoutDuration: deps.jwksTimeoutMs ?? 5_000,
    });
  }

  /** Verifies a bearer token; every failure is a value with a reason. */
  async verifyBearer(token: string): Promise<BearerResult> {
    const settings = this.#settings;
    if (!settings.enabled) return { ok: false, reason: 'bearer-disabled' };
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) return { ok: false, reason: 'malformed' };
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#jwks, {
        issuer: settings.issuer,
        audience: [...settings.audiences],
        algorithms: [...settings.algorithms],
        clockTolerance: Math.floor(settings.clockSkewMs / 1000),
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (error) {
      return { ok: false, reason: classifyJoseError(error) };
    }
    const mapped = principalFromClaims(payload, settings.claims);
    if (!mapped.ok) return { ok: false, reason: mapped.reason };
    const exp = payload['exp'] as number;
    const jti = payload['jti'];
    return {
      ok: true,
      principal: mapped.principal,
      user: mapped.user,
      ...(typeof jti === 'string' && jti !== '' ? { tokenId: jti } : {}),
      expiresAt: exp * 1000,
    };
  }
}

function classifyJoseError(error: unknown): BearerFailureReason {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return error.claim === 'sub' ? 'missing-subject' : 'malformed';
    switch (error.claim) {
      case 'nbf':
        return 'not-yet-valid';
      case 'iss':
        return 'wrong-issuer';
      case 'aud':
        return 'wrong-audience';
      default:
        return 'malformed';
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'alg-not-allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad-signature';
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return 'unknown-key';
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return 'jwks-unavailable';
  if (error instanceof errors.JOSEError) {
    return error.code === 'ERR_JOSE_GENERIC' ? 'jwks-unavailable' : 'malformed';
  }
  return error instanceof TypeError ? 'jwks-unavailable' : 'malformed';
}
