import { createPrivateKey, sign } from 'node:crypto';
import { parseSignerKeyWith, type Ed25519Signing, type NoteSigner } from './note.js';

/**
 * Node's own Ed25519 (OpenSSL) for the processes that sign: about 0.03 ms per checkpoint against
 * 0.7 ms for the pure-JS default, and a gateway signs a checkpoint every second on the thread that
 * serves its requests. The signatures are the same bytes (RFC 8032 signing is deterministic); the
 * browser still verifies with @noble/curves. Kept apart from `note.ts`, which the browser bundle
 * includes and which must not import Node's crypto.
 */

/** RFC 8410 §7: the PKCS #8 DER prefix of an Ed25519 private key, followed by its 32-byte seed. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export const nativeEd25519Signing: Ed25519Signing = (seed) => {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return (message) => new Uint8Array(sign(null, message, key));
};

/** Parses a signer key (see `parseSignerKeyWith`) whose signatures Node's crypto makes. */
export function parseSignerKey(text: string): NoteSigner {
  return parseSignerKeyWith(text, nativeEd25519Signing);
}
