import { hash } from 'node:crypto';

/**
 * RFC 9162 §2.1.1 leaf and node hashes on `node:crypto`, injected into the pure modules
 * (`sealRecord`, `CompactRange`, the chain verifier) on the store's hot paths: the writer and
 * the recovery scan. The pure modules default to `@noble/hashes` so that the same code verifies
 * in the browser; OpenSSL's one-shot SHA-256 is two to three times faster on records of a few
 * hundred bytes, which matters at 100k appends per second and for a recovery that hashes a
 * million records. A test pins that both give identical digests and roots.
 */

/** HASH(0x00 ‖ entry). */
export function fastLeafHash(entry: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(entry.length + 1);
  input[0] = 0x00;
  input.set(entry, 1);
  return hash('sha256', input, 'buffer');
}

/**
 * HASH(0x00 ‖ entry) of an `input` that already is `0x00 ‖ entry`: the writer lays each record
 * out just after a zero byte, so hashing it copies nothing.
 */
export function fastLeafHashOfPrefixed(input: Uint8Array): Buffer {
  return hash('sha256', input, 'buffer');
}

/** HASH(0x01 ‖ left ‖ right). */
export function fastNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = 0x01;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return hash('sha256', input, 'buffer');
}
