import { hash } from 'node:crypto';
import { TollgateError } from '../../core/index.js';

/**
 * RFC 9162 §2.1.1 leaf and node hashes on `node:crypto`, injected into the pure modules
 * (`sealRecord`, `CompactRange`, the chain verifier) on the store's hot paths: the writer and
 * the recovery scan. The pure modules default to `@noble/hashes` so that the same code verifies
 * in the browser; OpenSSL's one-shot SHA-256 is two to three times faster on records of a few
 * hundred bytes, which matters at 100k appends per second and for a recovery that hashes a
 * million records. A test pins that both give identical digests and roots.
 *
 * The digests are asked for as strings: measured here, `hash()` spends more on handing back a
 * fresh `Buffer` (about 0.6 µs) than on hashing a node (SHA-NI), while a hex or `binary`
 * (latin1, one character per byte) string comes back cheaply and copies into a pooled `Buffer`.
 */

/** Holds `0x01 ‖ left ‖ right` for {@link fastNodeHash}; hashing is synchronous, so one serves all. */
const nodeInput = Buffer.alloc(65, 0x01);

function digestBytes(binary: string): Buffer {
  return Buffer.from(binary, 'latin1');
}

/** HASH(0x00 ‖ entry). */
export function fastLeafHash(entry: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(entry.length + 1);
  input[0] = 0x00;
  input.set(entry, 1);
  return digestBytes(hash('sha256', input, 'binary'));
}

/**
 * Lowercase hex of HASH(0x00 ‖ entry), given an `input` that already is `0x00 ‖ entry`: the
 * writer lays each record out just after a zero byte, so hashing it copies nothing, and the hex
 * is what the next record's `prev` holds.
 */
export function fastLeafHexOfPrefixed(input: Uint8Array): string {
  return hash('sha256', input, 'hex');
}

/** HASH(0x01 ‖ left ‖ right). */
export function fastNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== 32 || right.length !== 32) {
    throw new TollgateError('TG_ERR_INTERNAL', `node hashes join two 32-byte hashes, not ${left.length} and ${right.length} bytes`);
  }
  nodeInput.set(left, 1);
  nodeInput.set(right, 33);
  return digestBytes(hash('sha256', nodeInput, 'binary'));
}
