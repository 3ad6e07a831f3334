import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock, Principal } from '../core/index.js';
import { fromBase64url, toBase64url } from './base64url.js';
import { deriveKey } from './seal.js';

/**
 * Database tokens: the short-lived passwords engineers give `psql` (DESIGN.md §2 "Postgres
 * access").
 *
 * Format: `tgdb_<payload>.<mac>`, where `payload` is base64url of compact JSON
 * `{"sub","em"?,"gr","iat","exp","jti"}` (times in seconds) and `mac` is base64url of
 * HMAC-SHA256 (RFC 2104) over `tgdb_<payload>` with a key derived by HKDF from
 * `db_tokens.signing_key`. The `tgdb_` prefix makes a leaked token easy to spot in logs and
 * for secret scanners.
 *
 * Why HMAC and not a signature: only the gateway issues and verifies these tokens, so a
 * symmetric key loses nothing, and a 32-byte MAC keeps the token short enough to paste as a
 * password (about 260 characters for a UUID subject, an email and two groups).
 */
export const DB_TOKEN_PREFIX = 'tgdb_';

const MAC_BYTES = 32;
const MAX_TOKEN_CHARS = 4096;

/** The facts a database token carries. Times are milliseconds since the epoch. */
export interface DbTokenClaims {
  readonly principal: Principal;
  /** Unique id (`jti`): record it in `token.issued`, never the token. */
  readonly tokenId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export type IssueDbTokenResult =
  | ({ readonly ok: true; readonly token: string } & DbTokenClaims)
  | { readonly ok: false; readonly reason: 'ttl-invalid' | 'ttl-exceeds-max' };

export type DbTokenFailureReason = 'malformed' | 'bad-signature' | 'expired';

export type VerifyDbTokenResult = ({ readonly ok: true } & DbTokenClaims) | { readonly ok: false; readonly reason: DbTokenFailureReason };

/** Settings of {@link DbTokens}, from `identity.db_tokens`. */
export interface DbTokenSettings {
  readonly signingKey: string;
  readonly ttlMs: number;
  readonly maxTtlMs: number;
}

/** Issues and verifies database tokens. */
export class DbTokens {
  readonly #key: Buffer;
  /** For {@link proveKeyHolder}: derived apart from the token key, so neither MAC stands in for the other. */
  readonly #proofKey: Buffer;
  readonly #ttlMs: number;
  readonly #maxTtlMs: number;
  readonly #clock: Clock;

  constructor(settings: DbTokenSettings, clock: Clock) {
    this.#key = deriveKey(settings.signingKey, 'tollgate.db-token.v1');
    this.#proofKey = deriveKey(settings.signingKey, 'tollgate.key-holder-proof.v1');
    this.#ttlMs = settings.ttlMs;
    this.#maxTtlMs = settings.maxTtlMs;
    this.#clock = clock;
  }

  /**
   * Issues a token for `principal`, valid `ttlMs` (default `db_tokens.ttl`, at most
   * `db_tokens.max_ttl`; whole seconds). The caller records `token.issued` with the returned
   * `tokenId`, principal and expiry.
   */
  issueDbToken(principal: Principal, ttlMs: number = this.#ttlMs): IssueDbTokenResult {
    if (!Number.isFinite(ttlMs) || ttlMs < 1000) return { ok: false, reason: 'ttl-invalid' };
    if (ttlMs > this.#maxTtlMs) return { ok: false, reason: 'ttl-exceeds-max' };
    const iat = Math.floor(this.#clock.now() / 1000);
    const exp = iat + Math.floor(ttlMs / 1000);
    const jti = randomBytes(12).toString('base64url');
    const body: Record<string, unknown> = { sub: principal.subject };
    if (principal.email !== undefined) body['em'] = principal.email;
    body['gr'] = [...principal.groups];
    body['iat'] = iat;
    body['exp'] = exp;
    body['jti'] = jti;
    const signed = `${DB_TOKEN_PREFIX}${Buffer.from(JSON.stringify(body), 'utf8').toString('base64url')}`;
    return {
      ok: true,
      token: `${signed}.${toBase64url(this.#mac(signed))}`,
      principal: copyPrincipal(principal),
      tokenId: jti,
      issuedAt: iat * 1000,
      expiresAt: exp * 1000,
    };
  }

  /** Verifies a token: MAC first, in constant time, then shape and expiry. Never throws. */
  verifyDbToken(token: string): VerifyDbTokenResult {
    if (token.length > MAX_TOKEN_CHARS || !token.startsWith(DB_TOKEN_PREFIX)) return { ok: false, reason: 'malformed' };
    const dot = token.lastIndexOf('.');
    if (dot <= DB_TOKEN_PREFIX.length) return { ok: false, reason: 'malformed' };
    const signed = token.slice(0, dot);
    const mac = fromBase64url(token.slice(dot + 1));
    const payloadBytes = fromBase64url(signed.slice(DB_TOKEN_PREFIX.length));
    if (mac === null || mac.length !== MAC_BYTES || payloadBytes === null) return { ok: false, reason: 'malformed' };
    if (!timingSafeEqual(mac, this.#mac(signed))) return { ok: false, reason: 'bad-signature' };
    const claims = decodeClaims(payloadBytes);
    if (claims === null) return { ok: false, reason: 'malformed' };
    if (claims.expiresAt <= this.#clock.now()) return { ok: false, reason: 'expired' };
    return { ok: true, ...claims };
  }

  /**
   * A MAC (HMAC-SHA256, base64url) over `message` that only a holder of `db_tokens.signing_key`
   * can make: how `tollgate token mint` shows the running gateway that it may record a token as
   * minted, which a token alone cannot show (every user holds tokens of their own).
   */
  proveKeyHolder(message: string): string {
    return toBase64url(createHmac('sha256', this.#proofKey).update(message, 'utf8').digest());
  }

  /** Checks a {@link proveKeyHolder} proof of `message`, in constant time. */
  verifyKeyHolder(message: string, proof: string): boolean {
    const mac = fromBase64url(proof);
    return mac !== null && mac.length === MAC_BYTES && timingSafeEqual(mac, createHmac('sha256', this.#proofKey).update(message, 'utf8').digest());
  }

  #mac(signed: string): Buffer {
    return createHmac('sha256', this.#key).update(signed, 'utf8').digest();
  }
}

function copyPrincipal(principal: Principal): Principal {
  return principal.email === undefined
    ? { subject: principal.subject, groups: [...principal.groups] }
    : { subject: principal.subject, email: principal.email, groups: [...principal.groups] };
}

function decodeClaims(bytes: Buffer): DbTokenClaims | null {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  const { sub, em, gr, iat, exp, jti } = data as Record<string, unknown>;
  if (typeof sub !== 'string' || sub === '' || typeof jti !== 'string' || jti === '') return null;
  if (em !== undefined && (typeof em !== 'string' || em === '')) return null;
  if (!Array.isArray(gr) || !gr.every((group) => typeof group === 'string')) return null;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp) || (exp as number) <= (iat as number)) return null;
  const groups = gr as string[];
  return {
    principal: em === undefined ? { subject: sub, groups } : { subject: sub, email: em, groups },
    tokenId: jti,
    issuedAt: (iat as number) * 1000,
    expiresAt: (exp as number) * 1000,
  };
}
