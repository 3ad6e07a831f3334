import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { fromBase64url, toBase64url } from './base64url.js';

/**
 * Sealed values: AES-256-GCM (NIST SP 800-38D) with keys derived from the configured secrets by
 * HKDF-SHA256 (RFC 5869).
 *
 * Format: `v1.<kid>.<iv>.<ciphertext‖tag>`, each part base64url. `kid` names the secret that
 * sealed the value (8 characters derived from the secret by HKDF, so it reveals nothing about
 * it), which lets opening pick the right key instead of trying all of them. The version, key id
 * and purpose are the additional authenticated data, so none can be swapped without the tag
 * failing. IVs are 96 random bits; keep a secret below 2^32 seals (NIST's bound for random
 * IVs), which key rotation does long before a gateway gets there.
 *
 * Why not JWE: the format has one version and one algorithm, so there is no header for an
 * attacker to negotiate with, and it is about 70 bytes shorter than a compact JWE, which matters
 * under the 4 KB cookie limit.
 */

/** What a sealed value is for; each purpose gets its own derived key (domain separation). */
export type SealPurpose = 'session' | 'pending-login';

export type OpenFailureReason = 'malformed' | 'unknown-key' | 'tampered';

export type OpenResult =
  | { readonly ok: true; readonly data: unknown; readonly sealedWithCurrentKey: boolean }
  | { readonly ok: false; readonly reason: OpenFailureReason };

const VERSION = 'v1';
const HKDF_SALT = 'tollgate.identity.v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID_BYTES = 6;
const KID = /^[A-Za-z0-9_-]{8}$/;
/** Sealed values larger than a cookie can hold are never ours; refuse before any work. */
const MAX_SEALED_CHARS = 8192;

interface DerivedKey {
  readonly kid: string;
  readonly key: Buffer;
  readonly current: boolean;
}

/** HKDF-SHA256 with the room's fixed salt; `info` separates every use of one secret. */
export function deriveKey(secret: string, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), HKDF_SALT, info, length));
}

/** The public key id of a secret: stable, short, and independent of the keys derived from it. */
export function keyIdOf(secret: string): string {
  return toBase64url(deriveKey(secret, 'tollgate.key-id.v1', KID_BYTES));
}

/** Seals with the first secret, opens with any of them. */
export class Sealer {
  readonly #purpose: SealPurpose;
  readonly #current: DerivedKey;
  readonly #byKid = new Map<string, DerivedKey[]>();

  constructor(secrets: readonly string[], purpose: SealPurpose) {
    this.#purpose = purpose;
    const keys = secrets.map((secret, index) => ({
      kid: keyIdOf(secret),
      key: deriveKey(secret, `tollgate.${purpose}.v1`),
      current: index === 0,
    }));
    const first = keys[0];
    if (first === undefined) throw new RangeError('a sealer needs at least one secret');
    this.#current = first;
    for (const key of keys) this.#byKid.set(key.kid, [...(this.#byKid.get(key.kid) ?? []), key]);
  }

  /** Encrypts and authenticates `data` (as JSON) with the current key. */
  seal(data: unknown): string {
    const { kid, key } = this.#current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(this.#aad(kid));
    const body = Buffer.concat([cipher.update(JSON.stringify(data), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${kid}.${toBase64url(iv)}.${toBase64url(body)}`;
  }

  /** Opens a sealed value; every failure is a value, never an exception. */
  open(sealed: string): OpenResult {
    if (sealed.length > MAX_SEALED_CHARS) return { ok: false, reason: 'malformed' };
    const parts = sealed.split('.');
    if (parts.length !== 4) return { ok: false, reason: 'malformed' };
    const [version, kid, ivText, bodyText] = parts as [string, string, string, string];
    if (version !== VERSION || !KID.test(kid)) return { ok: false, reason: 'malformed' };
    const iv = fromBase64url(ivText);
    const body = fromBase64url(bodyText);
    if (iv === null || iv.length !== IV_BYTES || body === null || body.length < TAG_BYTES) {
      return { ok: false, reason: 'malformed' };
    }
    const candidates = this.#byKid.get(kid);
    if (candidates === undefined) return { ok: false, reason: 'unknown-key' };
    for (const candidate of candidates) {
      const plaintext = this.#decrypt(candidate, iv, body);
      if (plaintext === null) continue;
      try {
        return { ok: true, data: JSON.parse(plaintext) as unknown, sealedWithCurrentKey: candidate.current };
      } catch {
        return { ok: false, reason: 'malformed' };
      }
    }
    return { ok: false, reason: 'tampered' };
  }

  #decrypt(candidate: DerivedKey, iv: Buffer, body: Buffer): string | null {
    const decipher = createDecipheriv('aes-256-gcm', candidate.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(this.#aad(candidate.kid));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }

  #aad(kid: string): Buffer {
    return Buffer.from(`${VERSION}.${kid}.${this.#purpose}`, 'utf8');
  }
}
