import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize, decodeCanonical, encodeCanonical, MAX_JSON_DEPTH } from '../../../src/audit/index.js';
import type { JsonValue } from '../../../src/audit/index.js';
import { isTollgateError } from '../../../src/core/index.js';

const utf8 = (text: string) => new TextEncoder().encode(text);

function rejection(input: string | Uint8Array): string {
  const result = decodeCanonical(typeof input === 'string' ? utf8(input) : input);
  if (result.ok) throw new Error(`accepted ${JSON.stringify(input)}`);
  return result.reason;
}

/** Values of our domain: safe integers, well-formed strings (astral characters included). */
const jsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.string({ unit: 'binary' }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('canonicalize (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units, as the RFC 8785 §3.2.3 example shows', () => {
    // The emoji (surrogates D83D DE00) sorts before U+FB33 by code units, after it by code points.
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    expect(canonicalize(value)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('escapes only quote, backslash and controls, with short escapes where JSON has them', () => {
    let controls = '';
    for (let c = 0; c < 0x20; c++) controls += String.fromCharCode(c);
    expect(canonicalize(`${controls}"\\/\u007f\u2028é`)).toBe(
      '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f' +
        '\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f' +
        '\\"\\\\/\u007f\u2028é"',
    );
  });

  it('writes nested values without whitespace and integers as plain digits', () => {
    expect(canonicalize({ b: [1, -2, 0, true, null, { y: 'x' }], a: 9007199254740991 })).toBe('{"a":9007199254740991,"b":[1,-2,0,true,null,{"y":"x"}]}');
    expect(canonicalize(-0)).toBe('0');
    expect(new TextDecoder().decode(encodeCanonical({ é: 'ü' }))).toBe('{"é":"ü"}');
    expect(encodeCanonical('é')).toEqual(Uint8Array.of(0x22, 0xc3, 0xa9, 0x22));
  });

  it.each([
    ['a float', 1.5],
    ['an unsafe integer', 2 ** 53],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a lone surrogate', '\ud800x'],
    ['a lone surrogate key', { '\udc00': 1 }],
    ['undefined in an object', { a: undefined }],
    ['a Date', new Date(0)],
    ['a Uint8Array', new Uint8Array(1)],
    ['a bigint', 1n],
  ])('refuses %s with TG_ERR_AUDIT_RECORD_INVALID', (_what, value) => {
    expect(() => canonicalize(value as unknown as JsonValue)).toThrow(expect.objectContaining({ code: 'TG_ERR_AUDIT_RECORD_INVALID' }));
  });

  it('names the path of the offending value', () => {
    try {
      canonicalize({ data: { params: [1, 2.5] } });
      expect.unreachable();
    } catch (error) {
      expect(isTollgateError(error, 'TG_ERR_AUDIT_RECORD_INVALID')).toBe(true);
      expect((error as Error).message).toContain('$.data.params[1]');
    }
  });

  it('refuses cycles and nesting beyond the limit instead of overflowing the stack', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => canonicalize(cycle as JsonValue)).toThrow(expect.objectContaining({ code: 'TG_ERR_AUDIT_RECORD_INVALID' }));
  });
});

describe('decodeCanonical', () => {
  it('accepts canonical text and returns the value', () => {
    expect(decodeCanonical(utf8('{"a":[1,-9007199254740991,"x\\n\\u001f"],"b":{}}'))).toEqual({
      ok: true,
      value: { a: [1, -9007199254740991, 'x\n\u001f'], b: {} },
    });
    expect(decodeCanonical(utf8('9007199254740991'))).toEqual({ ok: true, value: 9007199254740991 });
    expect(decodeCanonical(utf8('"\ud83d\ude00"'))).toEqual({ ok: true, value: '\ud83d\ude00' });
  });

  it.each([
    ['whitespace after a colon', '{"a": 1}', 'whitespace'],
    ['whitespace before the value', ' {"a":1}', 'whitespace'],
    ['a trailing newline', '{"a":1}\n', 'whitespace'],
    ['whitespace before a comma', '[1 ,2]', 'whitespace'],
    ['keys out of order', '{"b":1,"a":2}', 'order'],
    ['keys ordered by code point instead of UTF-16', '{"\ufb33":1,"\ud83d\ude00":2}', 'order'],
    ['a duplicate key', '{"a":1,"a":2}', 'duplicate'],
    ['1.0', '1.0', 'fraction'],
    ['1e3', '1e3', 'exponent'],
    ['1E3', '1E3', 'exponent'],
    ['-0', '-0', '-0'],
    ['a leading zero', '01', 'leading zero'],
    ['2^53', '9007199254740992', '2^53'],
    ['-2^53', '-9007199254740992', '2^53'],
    ['a 20-digit integer', '12345678901234567890', '2^53'],
    ['an escaped slash', '"\\/"', 'escape'],
    ['a \\u escape of a printable character', '"\\u0041"', 'control'],
    ['uppercase hex in a \\u escape', '"\\u001F"', 'lowercase'],
    ['\\u000a instead of \\n', '"\\u000a"', 'short escape'],
    ['a raw control character', '"a\u0001"', 'escaped'],
    ['a raw tab', '"\t"', 'escaped'],
    ['an escaped astral character', '"\\ud83d\\ude00"', 'control'],
    ['a truncated literal', 'tru', 'unexpected'],
    ['a trailing comma', '[1,]', 'unexpected'],
    ['a key without value', '{"a"}', "':'"],
    ['an unterminated string', '"abc', 'unterminated'],
    ['trailing data', '{}{}', 'after the value'],
    ['empty input', '', 'end of input'],
    ['a single-quoted string', "'a'", 'unexpected'],
    ['a byte order mark', '\ufeff{}', 'unexpected'],
  ])('rejects %s', (_what, text, reason) => {
    expect(rejection(text)).toContain(reason);
  });

  it.each([
    ['a stray continuation byte', [0x22, 0x80, 0x22]],
    ['0xff', [0x22, 0xff, 0x22]],
    ['an overlong slash', [0x22, 0xc0, 0xaf, 0x22]],
    ['a UTF-8 encoded surrogate', [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ['a truncated sequence', [0x22, 0xe2, 0x82, 0x22]],
  ])('rejects invalid UTF-8: %s', (_what, bytes) => {
    expect(rejection(Uint8Array.from(bytes))).toBe('not valid UTF-8');
  });

  it('reports where the problem is', () => {
    const result = decodeCanonical(utf8('{"a":1,"b":1.5}'));
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('fraction'), at: 11 });
  });

  it('refuses nesting deeper than the limit', () => {
    const deep = '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1);
    expect(rejection(deep)).toContain('nesting');
    const ok = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);
    expect(decodeCanonical(utf8(ok)).ok).toBe(true);
  });

  it('decodes a "__proto__" key as data, without touching the prototype', () => {
    const result = decodeCanonical(utf8('{"__proto__":{"polluted":1}}'));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const value = result.value as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(canonicalize(result.value)).toBe('{"__proto__":{"polluted":1}}');
  });

  it('round-trips every value of the domain, and its text parses to the same value with JSON.parse', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        const text = canonicalize(value);
        const decoded = decodeCanonical(utf8(text));
        expect(decoded).toEqual({ ok: true, value });
        expect(JSON.parse(text)).toEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('accepts only bytes that re-encode to themselves', () => {
    // Arbitrary JSON texts (spaced, reordered, escaped differently): decoding succeeds exactly
    // when the text is already canonical.
    const spelled = jsonValue.chain((value) =>
      fc.constantFrom(JSON.stringify(value), JSON.stringify(value, null, 1), canonicalize(value), JSON.stringify(value).replace(/é/g, '\\u00e9')),
    );
    fc.assert(
      fc.property(spelled, (text) => {
        const decoded = decodeCanonical(utf8(text));
        const canonical = canonicalize(JSON.parse(text) as JsonValue);
        expect(decoded.ok).toBe(text === canonical);
      }),
      { numRuns: 500 },
    );
  });
});
