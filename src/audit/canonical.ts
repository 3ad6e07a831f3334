import { TollgateError } from '../core/index.js';
import { hasLoneSurrogate, utf8DecodeStrict, utf8Encode } from './bytes.js';

/**
 * Canonical JSON after RFC 8785 (JSON Canonicalization Scheme, JCS) for the value domain the
 * audit log uses: no floats, only safe integers (|n| ≤ 2^53−1), strings that are valid Unicode.
 * In that domain JCS has exactly one spelling for every value, so a record's bytes (and hence its
 * leaf hash) are a function of its content, and any other spelling is evidence of tampering.
 *
 * https://www.rfc-editor.org/rfc/rfc8785
 */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
export interface JsonObject {
  readonly [key: string]: JsonValue;
}

export type DecodeResult =
  | { readonly ok: true; readonly value: JsonValue }
  /** `at` is the UTF-16 index in the decoded text where the problem was found. */
  | { readonly ok: false; readonly reason: string; readonly at: number };

/** Nesting deeper than this is refused on both sides; records are a few levels deep. */
export const MAX_JSON_DEPTH = 64;

/**
 * The JCS text of `value`. Throws `TG_ERR_AUDIT_RECORD_INVALID` for anything outside the domain
 * (floats, unsafe integers, `undefined`, lone surrogates, non-plain objects, cycles), naming
 * the path of the offending value.
 */
export function canonicalize(value: JsonValue): string {
  return serialize(value, '$', 0);
}

/** {@link canonicalize} as UTF-8 bytes. */
export function encodeCanonical(value: JsonValue): Uint8Array {
  return utf8Encode(canonicalize(value));
}

function invalid(path: string, what: string): TollgateError {
  return new TollgateError('TG_ERR_AUDIT_RECORD_INVALID', `${path}: ${what}; audit values are null, booleans, safe integers, strings, arrays and plain objects`, {
    details: { path },
  });
}

function serialize(value: unknown, path: string, depth: number): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // RFC 8785 §3.2.2.3 serialises numbers as ECMAScript does; for safe integers that is plain
      // decimal digits, and -0 becomes "0".
      if (!Number.isSafeInteger(value)) throw invalid(path, `${value} is not a safe integer`);
      return String(value === 0 ? 0 : value);
    case 'string':
      return serializeString(value, path);
    case 'object':
      break;
    default:
      throw invalid(path, `a ${typeof value} is not JSON`);
  }
  if (depth >= MAX_JSON_DEPTH) throw invalid(path, `nesting deeper than ${MAX_JSON_DEPTH}`);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += serialize(value[i], `${path}[${i}]`, depth + 1);
    }
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) throw invalid(path, 'only plain objects are JSON objects');
  // RFC 8785 §3.2.3: properties sorted by their names as arrays of UTF-16 code units, which is
  // exactly what the default Array.prototype.sort comparison does.
  const keys = Object.keys(value).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0) out += ',';
    out += `${serializeString(key, `${path} key`)}:${serialize((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1)}`;
  }
  return `${out}}`;
}

function serializeString(value: string, path: string): string {
  // RFC 8785 §3.2.2.2 escapes exactly as ECMAScript JSON.stringify does (", \, \b \f \n \r \t,
  // \u00xx for other controls, lowercase hex, everything else literal). JSON.stringify would
  // escape a lone surrogate as \udxxx, which is not representable in UTF-8: refuse it instead.
  if (hasLoneSurrogate(value)) throw invalid(path, 'a string holds a lone UTF-16 surrogate');
  return JSON.stringify(value);
}

class Reject {
  constructor(
    readonly reason: string,
    readonly at: number,
  ) {}
}

const SHORT_ESCAPES: Readonly<Record<number, string>> = {
  0x22: '"',
  0x5c: '\\',
  0x62: '\b',
  0x66: '\f',
  0x6e: '\n',
  0x72: '\r',
  0x74: '\t',
};
// Controls with a two-character escape must use it; \u00XX is only for the others (RFC 8785 §3.2.2.2).
const HAS_SHORT_ESCAPE = new Set([0x08, 0x09, 0x0a, 0x0c, 0x0d]);

/**
 * Parses bytes that must be the canonical JCS encoding of a value in our domain, and nothing
 * else: valid UTF-8 without BOM, no whitespace, object keys strictly increasing by UTF-16 code
 * units (so duplicates and misordering are both refused), integers without sign on zero,
 * leading zeros, fraction or exponent and within ±(2^53−1), and only the escapes JCS produces.
 * Accepting exactly one spelling per value means `encodeCanonical(decoded)` equals the input.
 */
export function decodeCanonical(bytes: Uint8Array): DecodeResult {
  const text = utf8DecodeStrict(bytes);
  if (text === null) return { ok: false, reason: 'not valid UTF-8', at: 0 };
  try {
    const parser = new CanonicalParser(text);
    const value = parser.value(0);
    parser.end();
    return { ok: true, value };
  } catch (error) {
    if (error instanceof Reject) return { ok: false, reason: error.reason, at: error.at };
    throw error;
  }
}

class CanonicalParser {
  readonly #s: string;
  #i = 0;

  constructor(text: string) {
    this.#s = text;
  }

  end(): void {
    if (this.#i !== this.#s.length) throw this.#unexpected('unexpected data after the value', this.#i);
  }

  value(depth: number): JsonValue {
    const c = this.#s.charCodeAt(this.#i);
    switch (c) {
      case 0x7b:
        return this.#object(depth);
      case 0x5b:
        return this.#array(depth);
      case 0x22:
        return this.#string();
      case 0x74:
        return this.#literal('true', true);
      case 0x66:
        return this.#literal('false', false);
      case 0x6e:
        return this.#literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.#number();
        throw this.#unexpected('unexpected character', this.#i);
    }
  }

  #unexpected(what: string, at: number): Reject {
    const c = this.#s.charCodeAt(at);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) return new Reject('whitespace is not canonical', at);
    return new Reject(Number.isNaN(c) ? 'unexpected end of input' : what, at);
  }

  #literal<T>(word: string, result: T): T {
    if (!this.#s.startsWith(word, this.#i)) throw new Reject('unexpected character', this.#i);
    this.#i += word.length;
    return result;
  }

  #number(): number {
    const s = this.#s;
    const start = this.#i;
    let i = start;
    const negative = s.charCodeAt(i) === 0x2d;
    if (negative) i++;
    const first = s.charCodeAt(i);
    if (first === 0x30) {
      i++;
      if (negative) throw new Reject('-0 is not canonical (write 0)', start);
      if (isDigit(s.charCodeAt(i))) throw new Reject('leading zeros are not canonical', start);
    } else if (first >= 0x31 && first <= 0x39) {
      while (isDigit(s.charCodeAt(i))) i++;
    } else {
      throw new Reject('a number needs digits', start);
    }
    const next = s.charCodeAt(i);
    if (next === 0x2e || next === 0x65 || next === 0x45) throw new Reject('fractions and exponents are not allowed (integers only)', start);
    // 2^53−1 has 16 digits: a longer run cannot be safe, and Number() of it would round.
    if (i - start - (negative ? 1 : 0) > 16) throw new Reject('integer beyond ±(2^53−1); large integers are written as decimal strings', start);
    const n = Number(s.slice(start, i));
    if (!Number.isSafeInteger(n)) throw new Reject('integer beyond ±(2^53−1); large integers are written as decimal strings', start);
    this.#i = i;
    return n;
  }

  #string(): string {
    const s = this.#s;
    let i = this.#i + 1;
    let out = '';
    let chunk = i;
    for (;;) {
      if (i >= s.length) throw new Reject('unterminated string', this.#i);
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) throw new Reject('control characters must be escaped', i);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += s.slice(chunk, i);
      const e = s.charCodeAt(i + 1);
      const short = SHORT_ESCAPES[e];
      if (short !== undefined) {
        out += short;
        i += 2;
      } else if (e === 0x75) {
        const hex = s.slice(i + 2, i + 6);
        if (!/^00[01][0-9a-f]$/.test(hex)) throw new Reject('\\u escapes are only for control characters, in lowercase hex', i);
        const code = Number.parseInt(hex, 16);
        if (HAS_SHORT_ESCAPE.has(code)) throw new Reject('this control character has a short escape (\\b \\t \\n \\f \\r)', i);
        out += String.fromCharCode(code);
        i += 6;
      } else {
        throw new Reject('escape not used by canonical JSON', i);
      }
      chunk = i;
    }
    out += s.slice(chunk, i);
    this.#i = i + 1;
    return out;
  }

  #array(depth: number): JsonValue[] {
    if (depth >= MAX_JSON_DEPTH) throw new Reject(`nesting deeper than ${MAX_JSON_DEPTH}`, this.#i);
    this.#i++;
    const out: JsonValue[] = [];
    if (this.#s.charCodeAt(this.#i) === 0x5d) {
      this.#i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      const c = this.#s.charCodeAt(this.#i);
      this.#i++;
      if (c === 0x5d) return out;
      if (c !== 0x2c) throw this.#unexpected("expected ',' or ']'", this.#i - 1);
    }
  }

  #object(depth: number): JsonObject {
    if (depth >= MAX_JSON_DEPTH) throw new Reject(`nesting deeper than ${MAX_JSON_DEPTH}`, this.#i);
    this.#i++;
    const out: Record<string, JsonValue> = {};
    if (this.#s.charCodeAt(this.#i) === 0x7d) {
      this.#i++;
      return out;
    }
    let previous: string | undefined;
    for (;;) {
      const keyAt = this.#i;
      if (this.#s.charCodeAt(keyAt) !== 0x22) throw this.#unexpected('expected a quoted key', keyAt);
      const key = this.#string();
      // RFC 8785 §3.2.3: keys in ascending UTF-16 code unit order; JS `<` on strings compares
      // exactly that. Equal means a duplicate, which JSON.parse would silently collapse.
      if (previous !== undefined) {
        if (key === previous) throw new Reject(`duplicate key ${JSON.stringify(key)}`, keyAt);
        if (key < previous) throw new Reject(`key ${JSON.stringify(key)} is out of canonical order`, keyAt);
      }
      previous = key;
      if (this.#s.charCodeAt(this.#i) !== 0x3a) throw this.#unexpected("expected ':'", this.#i);
      this.#i++;
      const value = this.value(depth + 1);
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
      const c = this.#s.charCodeAt(this.#i);
      this.#i++;
      if (c === 0x7d) return out;
      if (c !== 0x2c) throw this.#unexpected("expected ',' or '}'", this.#i - 1);
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
