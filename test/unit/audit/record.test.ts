import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BYTES_MARKER,
  bytesFromValue,
  bytesToHex,
  canonicalize,
  decodeCanonical,
  genesisPrev,
  GENESIS_PREFIX,
  isTruncatedValue,
  leafHash,
  MAX_RECORD_BYTES,
  parseRecord,
  RECORD_KINDS,
  sealRecord,
  TRUNCATED_PREFIX_BYTES,
  validateEvent,
} from '../../../src/audit/index.js';
import type { AuditEvent, AuditValue, JsonValue, SealOptions } from '../../../src/audit/index.js';

const LOG = 'tollgate.example.com/audit';
const at = (seq = 0): SealOptions => ({ logId: LOG, seq, prev: genesisPrev(LOG), timeMs: Date.UTC(2025, 0, 31, 12, 0, 0, 7) });
const utf8 = (text: string) => new TextEncoder().encode(text);
const hexSha256 = (bytes: Uint8Array) => bytesToHex(sha256(bytes));

const query: AuditEvent = {
  kind: 'pg.query',
  principal: { subject: 'u-1', email: 'alice@example.com', groups: ['engineering'] },
  resource: 'shop',
  decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'allowed-by-rule' },
  session_id: 's-1',
  data: { sql: 'select 1', class: 'read', tables: ['public.orders'] },
};

describe('genesisPrev', () => {
  it('is the hex SHA-256 of the documented domain-separated string', () => {
    expect(GENESIS_PREFIX).toBe('tollgate/audit/genesis\n');
    expect(genesisPrev(LOG)).toBe(hexSha256(utf8(`tollgate/audit/genesis\n${LOG}`)));
    expect(genesisPrev(LOG)).toMatch(/^[0-9a-f]{64}$/);
    expect(genesisPrev('a')).not.toBe(genesisPrev('b'));
  });
});

describe('sealRecord', () => {
  it('adds the envelope and encodes canonical JSON whose leaf hash it returns', () => {
    const { record, bytes, leafHash: leaf } = sealRecord(query, at());
    expect(new TextDecoder().decode(bytes)).toBe(
      '{"data":{"class":"read","sql":"select 1","tables":["public.orders"]},' +
        '"decision":{"effect":"allow","reason":"allowed-by-rule","rule":"engineer.allow[0]"},' +
        '"kind":"pg.query","log_id":"tollgate.example.com/audit",' +
        `"prev":"${genesisPrev(LOG)}",` +
        '"principal":{"email":"alice@example.com","groups":["engineering"],"subject":"u-1"},' +
        '"resource":"shop","seq":0,"session_id":"s-1","time":"2025-01-31T12:00:00.007Z","v":1}',
    );
    expect(record).toMatchObject({ v: 1, log_id: LOG, seq: 0, time: '2025-01-31T12:00:00.007Z', kind: 'pg.query' });
    expect(leaf).toEqual(leafHash(bytes));
    expect(parseRecord(bytes)).toEqual({ ok: true, record });
  });

  it('writes a denial with no rule, and an outcome record pointing at its request', () => {
    const denied = sealRecord({ kind: 'http.request', decision: { effect: 'deny', rule: null, reason: 'no-matching-allow' }, data: {} }, at(4));
    expect(denied.record.decision).toEqual({ effect: 'deny', rule: null, reason: 'no-matching-allow' });
    const outcome = sealRecord({ kind: 'http.response', ref: 4, data: { status: 403 } }, at(5));
    expect(outcome.record.ref).toBe(4);
  });

  it('writes bigints as numbers when safe and as decimal strings beyond 2^53−1', () => {
    const { record } = sealRecord({ kind: 'pg.result', data: { rows: 12n, big: 9007199254740993n, neg: -9007199254740993n, max: 9007199254740991n } }, at());
    expect(record.data).toEqual({ rows: 12, big: '9007199254740993', neg: '-9007199254740993', max: 9007199254740991 });
  });

  it('writes byte strings as a base64 marker object', () => {
    const raw = Uint8Array.of(0, 1, 2, 250, 255);
    const { record } = sealRecord({ kind: 'pg.query', data: { params: [raw, 'text', null] } }, at());
    expect(record.data.params).toEqual([{ [BYTES_MARKER]: 'AAEC+v8=' }, 'text', null]);
    expect(bytesFromValue((record.data.params as JsonValue[])[0])).toEqual(raw);
    expect(bytesFromValue('AAEC+v8=')).toBeNull();
  });

  it('leaves out undefined properties of data and of the event', () => {
    const { record } = sealRecord({ kind: 'ws.close', resource: undefined, data: { code: 1000, reason: undefined } }, at());
    expect(record).not.toHaveProperty('resource');
    expect(record.data).toEqual({ code: 1000 });
  });

  it.each<[string, unknown, string]>([
    ['an unknown kind', { kind: 'http.bogus', data: {} }, 'kind'],
    ['a float in data', { kind: 'pg.result', data: { duration: 1.5 } }, 'data.duration'],
    ['NaN in data', { kind: 'pg.result', data: { n: Number.NaN } }, 'data.n'],
    ['an unsafe integer number', { kind: 'pg.result', data: { n: 2 ** 60 } }, 'data.n'],
    ['a lone surrogate', { kind: 'pg.query', data: { sql: 'a\ud800' } }, 'data.sql'],
    ['undefined in an array', { kind: 'pg.query', data: { params: [undefined] } }, 'data.params[0]'],
    ['a Date', { kind: 'pg.query', data: { at: new Date() } }, 'data.at'],
    ['a Map', { kind: 'pg.query', data: { m: new Map() } }, 'data.m'],
    ['the reserved bytes key', { kind: 'pg.query', data: { x: { $bytes: 'AA==' } } }, 'data.x.$bytes'],
    ['a field outside data', { kind: 'pg.query', data: {}, sql: 'x' }, 'sql'],
    ['a bad effect', { kind: 'pg.query', decision: { effect: 'maybe', rule: null, reason: 'x' }, data: {} }, 'decision.effect'],
    ['a principal without groups', { kind: 'pg.query', principal: { subject: 's' }, data: {} }, 'principal.groups'],
    ['a negative ref', { kind: 'http.response', ref: -1, data: {} }, 'ref'],
    ['data that is an array', { kind: 'pg.query', data: [] }, 'data'],
  ])('refuses %s: validateEvent names the path, sealRecord throws TG_ERR_AUDIT_RECORD_INVALID', (_what, event, path) => {
    expect(validateEvent(event as AuditEvent)).toMatchObject({ ok: false, path });
    expect(() => sealRecord(event as AuditEvent, at())).toThrow(expect.objectContaining({ code: 'TG_ERR_AUDIT_RECORD_INVALID', details: expect.objectContaining({ path }) }));
  });

  it('writes exactly the canonical encoding of the record it returns, whatever the data', () => {
    // Keys that look like array indexes ("0", "10", "9") are enumerated by engines in numeric
    // order, not in the canonical UTF-16 order: the generator includes them on purpose.
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.nat(20).map(String), fc.constantFrom('__proto__', '4294967295', '-1', '01'));
    const value: fc.Arbitrary<AuditValue> = fc.letrec<{ v: AuditValue }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.maxSafeInteger(),
        fc.bigInt(),
        fc.string({ unit: 'binary' }),
        fc.uint8Array({ maxLength: 8 }),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(key, tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 6 }), (data) => {
        const { record, bytes } = sealRecord({ kind: 'pg.query', principal: { subject: 's', groups: ['g'] }, data }, at());
        expect(new TextDecoder().decode(bytes)).toBe(canonicalize(record as unknown as JsonValue));
        expect(parseRecord(bytes)).toEqual({ ok: true, record });
      }),
      { numRuns: 400 },
    );
  });

  it('accepts a valid event in validateEvent', () => {
    expect(validateEvent(query)).toEqual({ ok: true });
  });

  it.each<[string, Partial<SealOptions>]>([
    ['a ref not before seq', { seq: 3 }],
    ['an empty log id', { logId: '' }],
    ['a negative seq', { seq: -1 }],
    ['an uppercase prev', { prev: 'A'.repeat(64) }],
    ['a short prev', { prev: 'ab' }],
    ['a fractional time', { timeMs: 1.5 }],
    ['a time after year 9999', { timeMs: Date.UTC(10000, 0, 1) }],
    ['a time beyond the range of Date', { timeMs: 8.64e15 + 1 }],
    ['a time before year 0', { timeMs: Date.UTC(-1, 0, 1) }],
  ])('refuses %s', (_what, options) => {
    expect(() => sealRecord({ kind: 'http.response', ref: 3, data: {} }, { ...at(), seq: 5, ...options })).toThrow(
      expect.objectContaining({ code: 'TG_ERR_AUDIT_RECORD_INVALID' }),
    );
  });

  it('knows exactly the documented kinds', () => {
    expect(RECORD_KINDS).toEqual([
      'http.request',
      'http.response',
      'ws.open',
      'ws.close',
      'pg.connect',
      'pg.query',
      'pg.result',
      'pg.disconnect',
      'auth.login',
      'auth.logout',
      'auth.failure',
      'token.issued',
      'config.loaded',
      'audit.recovered',
      'gateway.start',
      'gateway.stop',
    ]);
  });
});

describe('records over 64 KiB', () => {
  it('cuts the longest string, keeping a prefix with the hash and length of the whole', () => {
    const sql = `select ${'x'.repeat(100_000)} from t`;
    const { record, bytes } = sealRecord({ ...query, data: { sql, class: 'read' } }, at());
    expect(bytes.length).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect(record.data.sql).toEqual({ truncated: true, prefix: sql.slice(0, TRUNCATED_PREFIX_BYTES), sha256: hexSha256(utf8(sql)), bytes: utf8(sql).length });
    expect(isTruncatedValue(record.data.sql)).toBe(true);
    expect(record.data.class).toBe('read');
    expect(parseRecord(bytes)).toEqual({ ok: true, record });
  });

  it('cuts only as many values as needed, longest first', () => {
    const long = 'a'.repeat(50_000);
    const longer = 'b'.repeat(60_000);
    const short = 'c'.repeat(5_000);
    const { record, bytes } = sealRecord({ kind: 'pg.query', data: { long, longer, short } }, at());
    expect(bytes.length).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect(isTruncatedValue(record.data.longer)).toBe(true);
    expect(record.data.long).toBe(long);
    expect(record.data.short).toBe(short);
  });

  it('keeps a prefix of whole characters within the byte budget', () => {
    const sql = '€'.repeat(40_000);
    const { record } = sealRecord({ kind: 'pg.query', data: { sql } }, at());
    const cut = record.data.sql as { prefix: string; bytes: number };
    // '€' is 3 bytes in UTF-8: 341 of them fit in 1024 bytes, 342 would not.
    expect(cut.prefix).toBe('€'.repeat(341));
    expect(cut.bytes).toBe(120_000);
  });

  it('never splits a surrogate pair', () => {
    const sql = `x${'😀'.repeat(20_000)}`;
    const { record } = sealRecord({ kind: 'pg.query', data: { sql } }, at());
    const { prefix } = record.data.sql as { prefix: string };
    expect(prefix).toBe(`x${'😀'.repeat(255)}`);
    expect(decodeCanonical(utf8(canonicalize(prefix))).ok).toBe(true);
  });

  it('cuts byte strings by their raw bytes', () => {
    const raw = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
    const { record, bytes } = sealRecord({ kind: 'pg.query', data: { params: [raw] } }, at());
    expect(bytes.length).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    const cut = (record.data.params as JsonValue[])[0] as Record<string, JsonValue>;
    expect(cut).toMatchObject({ truncated: true, encoding: 'base64', sha256: hexSha256(raw), bytes: 70_000 });
    expect(bytesFromValue({ [BYTES_MARKER]: cut.prefix as string })).toEqual(raw.subarray(0, 768));
  });

  it('cuts a whole array when its many small values are what makes the record too big', () => {
    const params = Array.from({ length: 20_000 }, (_, i) => `p${i}`);
    const { record, bytes } = sealRecord({ kind: 'pg.query', data: { sql: 'insert ...', params } }, at());
    expect(bytes.length).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    const whole = utf8(canonicalize(params));
    expect(record.data.params).toEqual({
      truncated: true,
      encoding: 'json',
      prefix: new TextDecoder().decode(whole.subarray(0, TRUNCATED_PREFIX_BYTES)),
      sha256: hexSha256(whole),
      bytes: whole.length,
    });
    expect(record.data.sql).toBe('insert ...');
  });

  it('hashes a cut container over its original content, not over values cut inside it', () => {
    const rows = Array.from({ length: 200 }, (_, i) => ({ id: i, note: `${i}`.repeat(400) }));
    const { record } = sealRecord({ kind: 'pg.result', data: { rows } }, at());
    expect(record.data.rows).toMatchObject({ truncated: true, encoding: 'json', sha256: hexSha256(utf8(canonicalize(rows))) });
  });

  it('refuses a record whose fixed fields alone exceed the limit', () => {
    const groups = Array.from({ length: 10_000 }, (_, i) => `group-${i}`);
    expect(() => sealRecord({ kind: 'auth.login', principal: { subject: 's', groups }, data: {} }, at())).toThrow(
      expect.objectContaining({ code: 'TG_ERR_AUDIT_RECORD_INVALID' }),
    );
  });

  it('does not touch a record of exactly the limit', () => {
    const base = sealRecord({ kind: 'pg.query', data: { sql: '' } }, at()).bytes.length;
    const sql = 'y'.repeat(MAX_RECORD_BYTES - base);
    const { bytes, record } = sealRecord({ kind: 'pg.query', data: { sql } }, at());
    expect(bytes.length).toBe(MAX_RECORD_BYTES);
    expect(record.data.sql).toBe(sql);
    expect(isTruncatedValue(sealRecord({ kind: 'pg.query', data: { sql: `${sql}y` } }, at()).record.data.sql)).toBe(true);
  });
});

describe('parseRecord', () => {
  const good = sealRecord(query, at());
  const text = new TextDecoder().decode(good.bytes);
  const reparse = (json: string) => parseRecord(utf8(json));

  it.each<[string, string, string]>([
    ['whitespace', text.replace('"kind":', '"kind": '), 'non-canonical'],
    ['a float', text.replace('"seq":0', '"seq":0.0'), 'non-canonical'],
    ['an unknown kind', text.replace('"pg.query"', '"pg.querz"'), 'unknown-kind'],
    ['an unknown field', text.replace('"v":1}', '"v":1,"w":2}'), 'invalid-record'],
    ['another version', text.replace('"v":1}', '"v":2}'), 'invalid-record'],
    ['an uppercase prev', text.replace(genesisPrev(LOG), genesisPrev(LOG).toUpperCase()), 'invalid-record'],
    ['an impossible date', text.replace('2025-01-31', '2025-02-31'), 'invalid-record'],
    ['a time without milliseconds', text.replace('12:00:00.007Z', '12:00:00Z'), 'invalid-record'],
    ['a bad decision', text.replace('"effect":"allow"', '"effect":"permit"'), 'invalid-record'],
    ['a principal without groups', text.replace('"groups":["engineering"],', ''), 'invalid-record'],
    ['a ref to itself', text.replace('"resource":"shop",', '"ref":0,"resource":"shop",'), 'invalid-record'],
    ['an array', '[]', 'invalid-record'],
  ])('rejects %s as %s', (_what, json, reason) => {
    expect(reparse(json)).toMatchObject({ ok: false, reason });
  });

  it('rejects bytes over the limit before decoding them', () => {
    expect(parseRecord(new Uint8Array(MAX_RECORD_BYTES + 1))).toMatchObject({ ok: false, reason: 'too-large' });
  });
});
