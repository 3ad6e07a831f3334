import { bytesToHex as nobleBytesToHex } from '@noble/hashes/utils.js';

/**
 * Byte helpers shared by the audit encodings. Everything here runs unchanged in Node and in the
 * browser: `Uint8Array`, `TextEncoder`/`TextDecoder` and `@noble/hashes` only, never `Buffer`.
 */

const encoder = new TextEncoder();
// `fatal` rejects invalid UTF-8 (overlong forms, encoded surrogates, truncated sequences);
// `ignoreBOM` keeps a leading U+FEFF in the text so that the strict parsers above us reject it
// instead of the decoder silently dropping it.
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, or returns `null` when the bytes are not well-formed UTF-8. */
export function utf8DecodeStrict(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

/** Number of bytes `text` takes in UTF-8, without allocating; lone surrogates count as U+FFFD. */
export function utf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) length += 1;
    else if (c < 0x800) length += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        length += 4;
        i++;
      } else length += 3;
    } else length += 3;
  }
  return length;
}

const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/** True when `text` holds a UTF-16 surrogate without its partner (not representable in UTF-8). */
export function hasLoneSurrogate(text: string): boolean {
  // Runs for every string of every record: prefer the engine's own check (ES2024), else scan.
  if (nativeIsWellFormed !== undefined) return !nativeIsWellFormed.call(text);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return true;
    const d = text.charCodeAt(i + 1);
    if (!(d >= 0xdc00 && d <= 0xdfff)) return true;
    i++;
  }
  return false;
}

/** Lowercase hex. */
export function bytesToHex(bytes: Uint8Array): string {
  return nobleBytesToHex(bytes);
}

/** Parses lowercase hex of an exact byte length; `null` for anything else (uppercase included). */
export function hexToBytesStrict(hex: string, length: number): Uint8Array | null {
  if (hex.length !== length * 2 || !/^[0-9a-f]*$/.test(hex)) return null;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VALUES = new Int16Array(128).fill(-1);
for (let i = 0; i < B64_ALPHABET.length; i++) B64_VALUES[B64_ALPHABET.charCodeAt(i)] = i;

/** Standard base64 with padding (RFC 4648 §4), the encoding signed notes and checkpoints use. */
export function encodeBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64_ALPHABET[n >>> 18]! + B64_ALPHABET[(n >>> 12) & 63]! + B64_ALPHABET[(n >>> 6) & 63]! + B64_ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += `${B64_ALPHABET[n >>> 18]!}${B64_ALPHABET[(n >>> 12) & 63]!}==`;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += `${B64_ALPHABET[n >>> 18]!}${B64_ALPHABET[(n >>> 12) & 63]!}${B64_ALPHABET[(n >>> 6) & 63]!}=`;
  }
  return out;
}

/**
 * Decodes standard padded base64 (RFC 4648 §4) and accepts only the canonical spelling: no
 * whitespace, no missing or extra padding, and zero bits in the unused tail (RFC 4648 §3.5), so
 * that every byte string has exactly one accepted text. `null` for anything else.
 */
export function decodeBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    if (a < 0 || b < 0) return null;
    if (last && padding === 2) {
      if ((b & 15) !== 0) return null;
      out[o++] = (a << 2) | (b >>> 4);
      break;
    }
    const c = sextet(text, i + 2);
    if (c < 0) return null;
    if (last && padding === 1) {
      if ((c & 3) !== 0) return null;
      out[o++] = (a << 2) | (b >>> 4);
      out[o++] = ((b & 15) << 4) | (c >>> 2);
      break;
    }
    const d = sextet(text, i + 3);
    if (d < 0) return null;
    out[o++] = (a << 2) | (b >>> 4);
    out[o++] = ((b & 15) << 4) | (c >>> 2);
    out[o++] = ((c & 3) << 6) | d;
  }
  return out;
}

function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < 128 ? B64_VALUES[code]! : -1;
}
