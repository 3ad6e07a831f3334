import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { genesisPrev, MAX_RECORD_BYTES, RECORD_KINDS, sealRecord } from '../../../src/audit/index.js';
import type { AuditEvent, AuditValue, SealOptions } from '../../../src/audit/index.js';
import { encodeRecordInto, recordEnvelope, recordText } from '../../../src/audit/record.js';

const LOG = 'tollgate.example.com/audit';
const at = (seq = 5): SealOptions => ({ logId: LOG, seq, prev: genesisPrev(LOG), timeMs: Date.UTC(2025, 0, 31, 12, 0, 0, 7) });
const decoder = new TextDecoder();

/** What sealRecord makes of the event: its bytes as text, or `null` when it refuses it. */
function sealedText(event: AuditEvent, options: SealOptions): string | null {
  try {
    return decoder.decode(sealRecord(event, options).bytes);
  } catch {
    return null;
  }
}

const principal = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] };

const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const OFFSET_BUFFER = new ArrayBuffer(MAX_RECORD_BYTES + 96);

/**
 * recordText's work done by encodeRecordInto into a view that starts 24 bytes into its buffer,
 * at position 16 of the view, over stale bytes: an encoder that ignored the view's offset or
 * its start, or skipped a byte, gives different text.
 */
function encodedAtOffset(event: AuditEvent, options: SealOptions): string | null {
  const envelope = recordEnvelope(options.logId, options.timeMs);
  if (envelope === null || !Number.isSafeInteger(options.seq) || options.seq < 0 || !/^[0-9a-f]{64}$/.test(options.prev)) return null;
  const into = new Uint8Array(OFFSET_BUFFER, 24, 16 + MAX_RECORD_BYTES);
  new Uint8Array(OFFSET_BUFFER).fill(0xff);
  const end = encodeRecordInto(event, envelope, options.seq, options.prev, into, 16);
  return end < 0 ? null : strictDecoder.decode(into.subarray(16, end));
}

const PLAIN_ASCII = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -./:;=?@_~';

/**
 * Strings of every length from 0 to 100, so on both sides of the encoder's length thresholds
 * (where long strings, and the rest of a string after a non-ASCII character, are copied
 * natively instead of by the character loop): a run of plain ASCII with up to three `special`
 * characters put anywhere in it.
 */
function acrossThresholds(special: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(fc.integer({ min: 0, max: 100 }), fc.nat(), fc.array(fc.tuple(fc.nat(), special), { maxLength: 3 })).map(([length, seed, inserts]) => {
    let text = '';
    for (let i = 0; i < length; i++) text += PLAIN_ASCII[(seed + i * 7) % PLAIN_ASCII.length];
    for (const [where, char] of inserts) {
      const cut = where % (text.length + 1);
      text = text.slice(0, cut) + char + text.slice(cut);
    }
    return text;
  });
}

/** Characters that change how a string is written: escapes, controls, DEL, two- to four-byte UTF-8. */
const SPECIAL = fc.constantFrom('"', '\\', '\n', '\u0007', '\u001f', '\u007f', 'é', '€', '\u2028', '\ufffd', '😀');
const LONE_SURROGATE = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');

describe('recordText', () => {
  it.each<[string, AuditEvent]>([
    [
      'a pg.query record as the Postgres gateway builds it',
      {
        kind: 'pg.query',
        principal,
        resource: 'shop',
        decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'statement-allowed' },
        session_id: 'pg-1',
        data: {
          class: 'read',
          command: 'SELECT',
          count: undefined,
          fingerprint: '348bee4e67e86ca6',
          functions: [],
          login: 'reader',
          params: ['12345', null],
          portal: '',
          protocol: 'extended',
          statement: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
          statement_name: 'P_1',
          tables: ['pgbench_accounts'],
        },
      },
    ],
    ['a pg.result record pointing at its query', { kind: 'pg.result', principal, resource: 'shop', session_id: 'pg-1', ref: 4, data: { command_tag: 'SELECT 1', rows: 1, duration_ms: 0, status: 'ok' } }],
    ['a denial with no rule', { kind: 'http.request', decision: { effect: 'deny', rule: null, reason: 'no-matching-allow' }, data: {} }],
    ['data keys out of order, nested', { kind: 'http.request', request_id: 'r-1', data: { path: '/a', method: 'GET', headers: { z: '1', a: '"quoted"\n' } } }],
    ['keys that look like array indexes', { kind: 'ws.close', data: { 10: 'ten', 9: 'nine', b: 'b', '': 'empty', '01': 'zero-one' } }],
    ['text that needs escaping and characters beyond the BMP', { kind: 'pg.query', data: { statement: 'select \'\u0000\t\u001f\u2028 😀 é\'' } }],
    ['negative zero and the largest safe integers', { kind: 'pg.result', data: { a: -0, b: Number.MAX_SAFE_INTEGER, c: Number.MIN_SAFE_INTEGER } }],
    ['more keys than the insertion sort takes, in reverse order', { kind: 'http.request', data: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${String(39 - i).padStart(2, '0')}`, i])) }],
    ['a few keys in reverse order', { kind: 'http.request', data: { z: 1, y: 2, x: 3, b: 4, a: 5 } }],
  ])('takes the fast path for %s, with exactly sealRecord’s bytes', (_what, event) => {
    const text = recordText(event, at());
    expect(text).not.toBeNull();
    expect(text).toBe(sealedText(event, at()));
  });

  it.each<[string, AuditEvent]>([
    ['a byte string', { kind: 'pg.query', data: { params: [Uint8Array.of(1, 2)] } }],
    ['a bigint', { kind: 'pg.result', data: { rows: 12n } }],
    ['a record over the size limit, which sealRecord truncates', { kind: 'pg.query', data: { statement: 'x'.repeat(MAX_RECORD_BYTES) } }],
  ])('leaves %s to sealRecord', (_what, event) => {
    expect(sealedText(event, at())).not.toBeNull();
    expect(recordText(event, at())).toBeNull();
  });

  it('gives sealRecord’s exact text or nothing, for any event, valid or not', () => {
    const text = fc.oneof(
      { weight: 20, arbitrary: fc.string({ maxLength: 12 }) },
      { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
      { weight: 6, arbitrary: acrossThresholds(fc.oneof({ weight: 30, arbitrary: SPECIAL }, { weight: 1, arbitrary: LONE_SURROGATE })) },
      { weight: 1, arbitrary: fc.constantFrom('a\ud800', '\udc00', '"\\\n\u0007') },
    );
    const key = fc.oneof({ weight: 10, arbitrary: text }, fc.nat(20).map(String), fc.constantFrom('__proto__', '$bytes', '4294967295', '01', ''));
    // Values sealRecord refuses or rewrites (floats, unsafe integers, dates, bigints, byte
    // strings) are rare, so that many events are valid and take the fast path.
    const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        { weight: 4, arbitrary: fc.constant(null) },
        { weight: 2, arbitrary: fc.constant(undefined) },
        { weight: 4, arbitrary: fc.boolean() },
        { weight: 8, arbitrary: fc.maxSafeInteger() },
        { weight: 1, arbitrary: fc.constantFrom(-0, 1.5, Number.NaN, 2 ** 60, new Date(0), 1n, 2n ** 60n, Uint8Array.of(1)) },
        { weight: 12, arbitrary: text },
        { weight: 3, arbitrary: fc.array(tie('v'), { maxLength: 4 }) },
        { weight: 3, arbitrary: fc.dictionary(key, tie('v'), { maxKeys: 5 }) },
      ),
    })).v;
    const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 2 });
    const rare = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) => fc.oneof({ weight: 12, arbitrary: usual }, { weight: 1, arbitrary: odd });
    const event = fc
      .record({
        kind: rare(fc.constantFrom<string>(...RECORD_KINDS), fc.constant('http.bogus')),
        principal: maybe(
          rare<unknown>(
            fc.record({ subject: text, email: maybe(text), groups: fc.array(text, { maxLength: 3 }) }, { requiredKeys: ['subject', 'groups'] }),
            fc.constantFrom(null, { subject: 's' }, { subject: 's', groups: [1] }, { subject: 's', groups: [], role: 'x' }),
          ),
        ),
        resource: maybe(text),
        decision: maybe(fc.record({ effect: rare(fc.constantFrom('allow', 'deny'), fc.constant('maybe')), rule: fc.option(text, { nil: null }), reason: text })),
        request_id: maybe(text),
        session_id: maybe(text),
        ref: maybe(fc.integer({ min: -1, max: 8 })),
        data: rare<unknown>(fc.dictionary(key, value, { maxKeys: 6 }), fc.constantFrom([], null, 'data')),
        outside: fc.nat(19),
      })
      .map(({ outside, ...fields }) => (outside === 0 ? { ...fields, sql: 'a field outside data' } : fields));
    const options = fc.record({
      logId: rare(fc.constant(LOG), fc.constant('')),
      seq: rare(fc.integer({ min: 0, max: 9 }), fc.constant(-1)),
      prev: rare(fc.constant(genesisPrev(LOG)), fc.constant('A'.repeat(64))),
      // Any millisecond from before year 0 to after 9999: the envelope caches the text of a second.
      timeMs: rare(
        fc.oneof(fc.constantFrom(Date.UTC(2025, 0, 31), Date.UTC(2025, 0, 31, 0, 0, 0, 1), Date.UTC(2025, 0, 31, 0, 0, 0, 999)), fc.integer({ min: -62_200_000_000_000, max: 253_402_400_000_000 })),
        fc.constantFrom(1.5, Date.UTC(10000, 0, 1), -1, 8.64e15 + 1),
      ),
    });
    let fast = 0;
    fc.assert(
      fc.property(event, options, (candidate, seal) => {
        const text = recordText(candidate as AuditEvent, seal);
        expect(encodedAtOffset(candidate as AuditEvent, seal)).toBe(text);
        if (text === null) return;
        fast += 1;
        expect(text).toBe(sealedText(candidate as AuditEvent, seal));
      }),
      { numRuns: 3000 },
    );
    // The comparison above only means something if the fast path is really taken.
    expect(fast).toBeGreaterThan(600);
  });

  it('agrees with sealRecord on every valid value sealRecord writes unchanged', () => {
    const value: fc.Arbitrary<AuditValue> = fc.letrec<{ v: AuditValue }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.maxSafeInteger(),
        fc.string({ unit: 'binary' }),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.nat(20).map(String)), tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 6 }), value, { maxKeys: 6 }), (data) => {
        const event: AuditEvent = { kind: 'pg.query', principal, data };
        expect(recordText(event, at())).toBe(sealedText(event, at()));
      }),
      { numRuns: 500 },
    );
  });

  it('writes strings on both sides of its length thresholds exactly as sealRecord does, wherever they stand', () => {
    const text = acrossThresholds(fc.oneof({ weight: 12, arbitrary: SPECIAL }, { weight: 1, arbitrary: LONE_SURROGATE }));
    const event = fc.record({
      kind: fc.constant<'http.request'>('http.request'),
      principal: fc.record({ subject: text, email: text, groups: fc.array(text, { maxLength: 2 }) }),
      resource: text,
      decision: fc.record({ effect: fc.constant<'deny'>('deny'), rule: text, reason: text }),
      request_id: text,
      session_id: text,
      data: fc.dictionary(text, fc.oneof(text, fc.array(text, { maxLength: 3 }), fc.dictionary(text, text, { maxKeys: 3 })), { maxKeys: 4 }),
    });
    let fast = 0;
    fc.assert(
      fc.property(event, (candidate) => {
        const text = recordText(candidate, at());
        expect(text).toBe(sealedText(candidate, at()));
        expect(encodedAtOffset(candidate, at())).toBe(text);
        if (text !== null) fast += 1;
      }),
      { numRuns: 1000 },
    );
    expect(fast).toBeGreaterThan(200);
  });

  it.each<[string, string, number]>([
    ['plain ASCII', 'a', 1],
    ['quotes', '"', 2],
    ['two-byte characters', 'é', 2],
    ['characters beyond the BMP', '😀', 4],
    ['control characters written as \\u00XX', '\u0001', 6],
  ])('fits a record of exactly MAX_RECORD_BYTES and refuses one character more, for a long string of %s', (_what, unit, bytesPerUnit) => {
    const eventWith = (value: string): AuditEvent => ({ kind: 'pg.query', principal, data: { statement: value } });
    const base = new TextEncoder().encode(sealedText(eventWith(''), at())!).length;
    const units = Math.floor((MAX_RECORD_BYTES - base) / bytesPerUnit);
    const fits = eventWith(unit.repeat(units));
    expect(recordText(fits, at())).toBe(sealedText(fits, at()));
    expect(new TextEncoder().encode(recordText(fits, at()) ?? '').length).toBeGreaterThan(MAX_RECORD_BYTES - bytesPerUnit);
    const over = eventWith(unit.repeat(units + 1));
    expect(sealedText(over, at())).not.toBeNull();
    expect(recordText(over, at())).toBeNull();
  });

  it('refuses a record that overflows its room early, whatever is written after', () => {
    const event: AuditEvent = {
      kind: 'http.request',
      principal,
      decision: { effect: 'allow', rule: 'r'.repeat(60), reason: 'request-allowed' },
      request_id: 'q'.repeat(60),
      data: { a: '\\'.repeat(MAX_RECORD_BYTES / 2), b: 'plain and long enough to be copied natively', c: 'é'.repeat(50) },
    };
    expect(sealedText(event, at())).not.toBeNull();
    expect(recordText(event, at())).toBeNull();
    const envelope = recordEnvelope(LOG, at().timeMs)!;
    const into = new Uint8Array(MAX_RECORD_BYTES + 8);
    expect(encodeRecordInto(event, envelope, 5, genesisPrev(LOG), into, 8)).toBe(-1);
  });
});
