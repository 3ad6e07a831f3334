import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { genesisPrev, MAX_RECORD_BYTES, RECORD_KINDS, sealRecord } from '../../../src/audit/index.js';
import type { AuditEvent, AuditValue, SealOptions } from '../../../src/audit/index.js';
import { recordText } from '../../../src/audit/record.js';

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
      timeMs: rare(fc.constantFrom(Date.UTC(2025, 0, 31), Date.UTC(2025, 0, 31, 0, 0, 0, 1)), fc.constantFrom(1.5, Date.UTC(10000, 0, 1))),
    });
    let fast = 0;
    fc.assert(
      fc.property(event, options, (candidate, seal) => {
        const text = recordText(candidate as AuditEvent, seal);
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
});
