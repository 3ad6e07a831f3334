import { describe, expect, it } from 'vitest';
import {
  BackendReader,
  parseCommandTag,
  type BackendMessage,
  type ProtocolError,
  type SSLResponse,
} from '../../../src/proxy/postgres/protocol/index.js';
import { ascii, cstr, frame, int16, int32, splitAt, uint32 } from '../../helpers/pg-bytes.js';

type Item = BackendMessage | SSLResponse | ProtocolError;

function readChunks(reader: BackendReader, chunks: readonly Buffer[]): Item[] {
  const items: Item[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    items.push(...reader.drain());
  }
  return items;
}

function readOne(bytes: Buffer): Item {
  const items = readChunks(new BackendReader(), [bytes]);
  expect(items).toHaveLength(1);
  return items[0] as Item;
}

function expectError(item: Item | undefined, code: ProtocolError['code']): void {
  expect(item).toMatchObject({ type: 'ProtocolError', code });
}

const z = Buffer.from([0]);
const errorFields = Buffer.concat([
  ascii('S'), cstr('ERREUR'),
  ascii('V'), cstr('ERROR'),
  ascii('C'), cstr('42P01'),
  ascii('M'), cstr('relation "nope" does not exist'),
  ascii('D'), cstr('detail text'),
  ascii('H'), cstr('hint text'),
  ascii('P'), cstr('15'),
  ascii('p'), cstr('3'),
  ascii('q'), cstr('SELECT inner'),
  ascii('W'), cstr('PL/pgSQL function f()'),
  ascii('s'), cstr('public'),
  ascii('t'), cstr('orders'),
  ascii('c'), cstr('id'),
  ascii('d'), cstr('int4'),
  ascii('n'), cstr('orders_pkey'),
  ascii('F'), cstr('parse_relation.c'),
  ascii('L'), cstr('1452'),
  ascii('R'), cstr('parserOpenTable'),
  ascii('Y'), cstr('a field type from the future'),
  z,
]);
const copyOut = frame('H', Buffer.from([0]), int16(2), int16(0), int16(0));
const dataRow = frame('D', int16(3), int32(1), ascii('1'), int32(-1), int32(0));

const fixtures: { name: string; bytes: Buffer; expected: Record<string, unknown> }[] = [
  { name: 'AuthenticationOk', bytes: frame('R', int32(0)), expected: { type: 'AuthenticationOk' } },
  { name: 'AuthenticationKerberosV5', bytes: frame('R', int32(2)), expected: { type: 'AuthenticationKerberosV5' } },
  { name: 'AuthenticationCleartextPassword', bytes: frame('R', int32(3)), expected: { type: 'AuthenticationCleartextPassword' } },
  {
    name: 'AuthenticationMD5Password',
    bytes: frame('R', int32(5), Buffer.from([1, 2, 3, 4])),
    expected: { type: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
  },
  { name: 'AuthenticationGSS', bytes: frame('R', int32(7)), expected: { type: 'AuthenticationGSS' } },
  { name: 'AuthenticationGSSContinue', bytes: frame('R', int32(8), ascii('tok')), expected: { type: 'AuthenticationGSSContinue', data: ascii('tok') } },
  { name: 'AuthenticationSSPI', bytes: frame('R', int32(9)), expected: { type: 'AuthenticationSSPI' } },
  {
    name: 'AuthenticationSASL',
    bytes: frame('R', int32(10), cstr('SCRAM-SHA-256-PLUS'), cstr('SCRAM-SHA-256'), z),
    expected: { type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
  },
  {
    name: 'AuthenticationSASLContinue',
    bytes: frame('R', int32(11), ascii('r=abc,s=c2FsdA==,i=4096')),
    expected: { type: 'AuthenticationSASLContinue', data: ascii('r=abc,s=c2FsdA==,i=4096') },
  },
  {
    name: 'AuthenticationSASLFinal',
    bytes: frame('R', int32(12), ascii('v=c2ln')),
    expected: { type: 'AuthenticationSASLFinal', data: ascii('v=c2ln') },
  },
  {
    name: 'ParameterStatus',
    bytes: frame('S', cstr('server_version'), cstr('18.1')),
    expected: { type: 'ParameterStatus', name: 'server_version', value: '18.1' },
  },
  {
    name: 'BackendKeyData (3.0)',
    bytes: frame('K', int32(31337), Buffer.from([9, 8, 7, 6])),
    expected: { type: 'BackendKeyData', pid: 31337, secretKey: Buffer.from([9, 8, 7, 6]) },
  },
  {
    name: 'BackendKeyData (3.2, 32-byte key)',
    bytes: frame('K', int32(7), Buffer.alloc(32, 5)),
    expected: { type: 'BackendKeyData', pid: 7, secretKey: Buffer.alloc(32, 5) },
  },
  { name: 'ReadyForQuery idle', bytes: frame('Z', ascii('I')), expected: { type: 'ReadyForQuery', status: 'I' } },
  { name: 'ReadyForQuery in transaction', bytes: frame('Z', ascii('T')), expected: { type: 'ReadyForQuery', status: 'T' } },
  { name: 'ReadyForQuery failed', bytes: frame('Z', ascii('E')), expected: { type: 'ReadyForQuery', status: 'E' } },
  {
    name: 'CommandComplete INSERT',
    bytes: frame('C', cstr('INSERT 0 5')),
    expected: { type: 'CommandComplete', tag: 'INSERT 0 5', command: 'INSERT', oid: 0, rows: 5 },
  },
  {
    name: 'CommandComplete CREATE TABLE',
    bytes: frame('C', cstr('CREATE TABLE')),
    expected: { type: 'CommandComplete', tag: 'CREATE TABLE', command: 'CREATE TABLE' },
  },
  {
    name: 'ErrorResponse with every field',
    bytes: frame('E', errorFields),
    expected: {
      type: 'ErrorResponse',
      fields: {
        severity: 'ERREUR',
        severityNonLocalized: 'ERROR',
        code: '42P01',
        message: 'relation "nope" does not exist',
        detail: 'detail text',
        hint: 'hint text',
        position: '15',
        internalPosition: '3',
        internalQuery: 'SELECT inner',
        where: 'PL/pgSQL function f()',
        schema: 'public',
        table: 'orders',
        column: 'id',
        dataType: 'int4',
        constraint: 'orders_pkey',
        file: 'parse_relation.c',
        line: '1452',
        routine: 'parserOpenTable',
      },
    },
  },
  {
    name: 'NoticeResponse',
    bytes: frame('N', ascii('S'), cstr('NOTICE'), ascii('C'), cstr('00000'), ascii('M'), cstr('hello'), z),
    expected: { type: 'NoticeResponse', fields: { severity: 'NOTICE', code: '00000', message: 'hello' } },
  },
  {
    name: 'RowDescription',
    bytes: frame(
      'T',
      int16(2),
      cstr('id'), uint32(16384), int16(1), uint32(23), int16(4), int32(-1), int16(0),
      cstr('name'), uint32(16384), int16(2), uint32(25), int16(-1), int32(-1), int16(0),
    ),
    expected: { type: 'RowDescription', fieldCount: 2 },
  },
  { name: 'DataRow', bytes: dataRow, expected: { type: 'DataRow', columnCount: 3, byteLength: dataRow.length } },
  {
    name: 'CopyInResponse',
    bytes: frame('G', Buffer.from([1]), int16(2), int16(1), int16(1)),
    expected: { type: 'CopyInResponse', format: 1, columnFormats: [1, 1] },
  },
  { name: 'CopyOutResponse', bytes: copyOut, expected: { type: 'CopyOutResponse', format: 0, columnFormats: [0, 0] } },
  {
    name: 'CopyBothResponse',
    bytes: frame('W', Buffer.from([0]), int16(0)),
    expected: { type: 'CopyBothResponse', format: 0, columnFormats: [] },
  },
  {
    name: 'NotificationResponse',
    bytes: frame('A', int32(4711), cstr('orders'), cstr('{"id":1}')),
    expected: { type: 'NotificationResponse', pid: 4711, channel: 'orders', payload: '{"id":1}' },
  },
  {
    name: 'ParameterDescription',
    bytes: frame('t', int16(2), uint32(23), uint32(25)),
    expected: { type: 'ParameterDescription', paramTypes: [23, 25] },
  },
  {
    name: 'NegotiateProtocolVersion',
    bytes: frame('v', uint32(0x00030002), int32(2), cstr('_pq_.a'), cstr('_pq_.b')),
    expected: { type: 'NegotiateProtocolVersion', version: { major: 3, minor: 2 }, unsupportedOptions: ['_pq_.a', '_pq_.b'] },
  },
  { name: 'CopyData', bytes: frame('d', ascii('1\tx\n')), expected: { type: 'CopyData', byteLength: 9, data: ascii('1\tx\n') } },
  { name: 'CopyDone', bytes: frame('c'), expected: { type: 'CopyDone' } },
  {
    name: 'FunctionCallResponse',
    bytes: frame('V', int32(2), ascii('ok')),
    expected: { type: 'FunctionCallResponse', result: ascii('ok') },
  },
  { name: 'FunctionCallResponse NULL', bytes: frame('V', int32(-1)), expected: { type: 'FunctionCallResponse', result: null } },
  { name: 'ParseComplete', bytes: frame('1'), expected: { type: 'ParseComplete' } },
  { name: 'BindComplete', bytes: frame('2'), expected: { type: 'BindComplete' } },
  { name: 'CloseComplete', bytes: frame('3'), expected: { type: 'CloseComplete' } },
  { name: 'NoData', bytes: frame('n'), expected: { type: 'NoData' } },
  { name: 'PortalSuspended', bytes: frame('s'), expected: { type: 'PortalSuspended' } },
  { name: 'EmptyQueryResponse', bytes: frame('I'), expected: { type: 'EmptyQueryResponse' } },
];

describe('backend messages', () => {
  for (const fixture of fixtures) {
    it(`decodes ${fixture.name} and keeps its raw frame`, () => {
      expect(readOne(fixture.bytes)).toEqual({ ...fixture.expected, raw: fixture.bytes });
    });
  }

  it('parses command tags into command, rows and oid', () => {
    const cases: [string, Record<string, unknown>][] = [
      ['INSERT 0 1', { command: 'INSERT', oid: 0, rows: 1 }],
      ['INSERT 16384 1', { command: 'INSERT', oid: 16384, rows: 1 }],
      ['SELECT 0', { command: 'SELECT', rows: 0 }],
      ['SELECT 1234567', { command: 'SELECT', rows: 1234567 }],
      ['UPDATE 10', { command: 'UPDATE', rows: 10 }],
      ['DELETE 3', { command: 'DELETE', rows: 3 }],
      ['MERGE 2', { command: 'MERGE', rows: 2 }],
      ['MOVE 5', { command: 'MOVE', rows: 5 }],
      ['FETCH 100', { command: 'FETCH', rows: 100 }],
      ['COPY 42', { command: 'COPY', rows: 42 }],
      ['BEGIN', { command: 'BEGIN' }],
      ['CREATE INDEX', { command: 'CREATE INDEX' }],
      ['SELECT', { command: 'SELECT' }],
      ['INSERT 0', { command: 'INSERT 0' }],
      ['UPDATE x', { command: 'UPDATE x' }],
      ['SELECT 99999999999999999999', { command: 'SELECT 99999999999999999999' }],
    ];
    for (const [tag, expected] of cases) {
      const parsed = parseCommandTag(tag);
      expect(parsed, tag).toEqual({ tag, ...expected });
    }
  });

  const malformed: Record<string, Buffer> = {
    'ReadyForQuery with status X': frame('Z', ascii('X')),
    'an unknown authentication code': frame('R', int32(99)),
    'AuthenticationOk with a body': frame('R', int32(0), int32(0)),
    'AuthenticationMD5Password with a short salt': frame('R', int32(5), Buffer.from([1, 2])),
    'AuthenticationSASL without its terminator': frame('R', int32(10), cstr('SCRAM-SHA-256')),
    'BackendKeyData with a 3-byte key': frame('K', int32(1), Buffer.from([1, 2, 3])),
    'BackendKeyData with a 257-byte key': frame('K', int32(1), Buffer.alloc(257)),
    'ParameterStatus without value': frame('S', cstr('a')),
    'CommandComplete with trailing bytes': frame('C', cstr('SELECT 1'), ascii('x')),
    'ErrorResponse without terminator': frame('E', ascii('S'), cstr('ERROR'), ascii('C'), cstr('XX000'), ascii('M'), cstr('m')),
    'ErrorResponse without code': frame('E', ascii('S'), cstr('ERROR'), ascii('M'), cstr('m'), z),
    'RowDescription with a short field': frame('T', int16(1), cstr('id'), uint32(1)),
    'DataRow with a column past the end': frame('D', int16(1), int32(5), ascii('ab')),
    'DataRow with length -2': frame('D', int16(1), int32(-2)),
    'CopyOutResponse with format 2': frame('H', Buffer.from([2]), int16(0)),
    'CopyInResponse with a column count past the end': frame('G', Buffer.from([0]), int16(3), int16(0)),
    'NotificationResponse without payload': frame('A', int32(1), cstr('chan')),
    'ParameterDescription with a count past the end': frame('t', int16(3), uint32(23)),
    'NegotiateProtocolVersion with a negative count': frame('v', uint32(0x30000), int32(-1)),
    'NegotiateProtocolVersion with a missing option': frame('v', uint32(0x30000), int32(2), cstr('_pq_.a')),
    'FunctionCallResponse with a short result': frame('V', int32(4), ascii('ab')),
  };
  for (const [name, bytes] of Object.entries(malformed)) {
    it(`rejects ${name}`, () => {
      expect(readOne(bytes)).toMatchObject({ type: 'ProtocolError', code: 'malformed-message', messageType: bytes.toString('latin1', 0, 1) });
    });
  }

  it('rejects unknown types, lengths below 4, wrong fixed lengths and oversized lengths before the body', () => {
    for (const byte of [0x00, 0x51 /* Q */, 0x50 /* P */, 0x78 /* x */]) {
      const reader = new BackendReader();
      reader.push(Buffer.from([byte]));
      expectError(reader.next(), 'unknown-message-type');
    }
    for (const [type, length] of [['C', 3], ['D', -1], ['Z', 4], ['Z', 6], ['1', 5], ['c', 8]] as const) {
      const reader = new BackendReader();
      reader.push(Buffer.concat([ascii(type), int32(length)]));
      expectError(reader.next(), 'invalid-length');
    }
    const reader = new BackendReader({ maxMessageBytes: 1000 });
    reader.push(Buffer.concat([ascii('D'), int32(1000)]));
    expectError(reader.next(), 'message-too-large');
    const large = new BackendReader();
    large.push(Buffer.concat([ascii('D'), int32(1024 * 1024 * 1024)]));
    expectError(large.next(), 'message-too-large');
  });

  it('stops after an error and ignores further bytes', () => {
    const reader = new BackendReader();
    reader.push(Buffer.concat([frame('Z', ascii('I')), frame('Z', ascii('Q')), frame('Z', ascii('I'))]));
    expect(reader.next()?.type).toBe('ReadyForQuery');
    expectError(reader.next(), 'malformed-message');
    expect(reader.next()).toBeUndefined();
    reader.push(frame('Z', ascii('I')));
    expect(reader.next()).toBeUndefined();
    expect(reader.bufferedBytes).toBe(0);
  });
});

describe('SSLRequest answers', () => {
  it('reads S, then leaves any pipelined bytes for the caller to reject', () => {
    const reader = new BackendReader();
    reader.expectSslResponse();
    reader.push(Buffer.concat([ascii('S'), frame('Z', ascii('I'))]));
    expect(reader.next()).toEqual({ type: 'SSLResponse', accepted: true });
    expect(reader.bufferedBytes).toBe(6);
  });

  it('reads N and then tagged messages', () => {
    const reader = new BackendReader();
    reader.expectSslResponse();
    const items = readChunks(reader, [ascii('N'), frame('R', int32(0))]);
    expect(items.map((item) => item.type)).toEqual(['SSLResponse', 'AuthenticationOk']);
    expect(items[0]).toEqual({ type: 'SSLResponse', accepted: false });
  });

  it('reads an ErrorResponse sent instead of an answer', () => {
    const reader = new BackendReader();
    reader.expectSslResponse();
    const error = frame('E', ascii('S'), cstr('FATAL'), ascii('C'), cstr('08P01'), ascii('M'), cstr('no'), z);
    expect(readChunks(reader, [error]).map((item) => item.type)).toEqual(['ErrorResponse']);
  });

  it('rejects any other answer', () => {
    const reader = new BackendReader();
    reader.expectSslResponse();
    reader.push(ascii('R'));
    expectError(reader.next(), 'unknown-message-type');
  });

  it('does not read a tagged S as an answer when none is expected', () => {
    const reader = new BackendReader();
    reader.push(ascii('S'));
    expect(reader.next()).toBeUndefined();
  });
});

const stream = Buffer.concat([
  frame('R', int32(10), cstr('SCRAM-SHA-256'), z),
  frame('R', int32(0)),
  frame('S', cstr('client_encoding'), cstr('UTF8')),
  frame('K', int32(99), Buffer.from([1, 2, 3, 4])),
  frame('Z', ascii('I')),
  frame('T', int16(1), cstr('n'), uint32(0), int16(0), uint32(23), int16(4), int32(-1), int16(0)),
  dataRow,
  frame('D', int16(1), int32(200), Buffer.alloc(200, 1)),
  frame('C', cstr('SELECT 2')),
  copyOut,
  frame('d', Buffer.alloc(150, 2)),
  frame('d'),
  frame('c'),
  frame('C', cstr('COPY 1')),
  frame('Z', ascii('T')),
]);

describe('partial chunks', () => {
  const expected = readChunks(new BackendReader(), [stream]);

  it('reads the reference stream whole', () => {
    expect(expected.map((item) => item.type)).toEqual([
      'AuthenticationSASL',
      'AuthenticationOk',
      'ParameterStatus',
      'BackendKeyData',
      'ReadyForQuery',
      'RowDescription',
      'DataRow',
      'DataRow',
      'CommandComplete',
      'CopyOutResponse',
      'CopyData',
      'CopyData',
      'CopyDone',
      'CommandComplete',
      'ReadyForQuery',
    ]);
  });

  it('gives the same messages for every split point and one byte at a time', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      expect(readChunks(new BackendReader(), splitAt(stream, [cut]))).toEqual(expected);
    }
    const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(readChunks(new BackendReader(), bytes)).toEqual(expected);
  });
});

describe("bulk: 'skip'", () => {
  function withoutBodies(items: Item[]): unknown[] {
    return items.map((item) => {
      if (item.type === 'DataRow') return { type: 'DataRow', columnCount: item.columnCount, byteLength: item.byteLength, raw: null };
      if (item.type === 'CopyData') return { type: 'CopyData', byteLength: item.byteLength, data: null, raw: null };
      return item;
    });
  }
  const expected = withoutBodies(readChunks(new BackendReader(), [stream]));

  it('returns DataRow and CopyData without bodies, at every split point and byte by byte', () => {
    expect(readChunks(new BackendReader({ bulk: 'skip' }), [stream])).toEqual(expected);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(readChunks(new BackendReader({ bulk: 'skip' }), splitAt(stream, [cut]))).toEqual(expected);
    }
    const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(readChunks(new BackendReader({ bulk: 'skip' }), bytes)).toEqual(expected);
  });

  it('never buffers the body of a large row', () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 3);
    const row = frame('D', int16(1), int32(body.length), body);
    const bytes = Buffer.concat([row, frame('C', cstr('SELECT 1'))]);
    const reader = new BackendReader({ bulk: 'skip', maxMessageBytes: 16 * 1024 * 1024 });
    const items: Item[] = [];
    for (let offset = 0; offset < bytes.length; offset += 16 * 1024) {
      reader.push(bytes.subarray(offset, offset + 16 * 1024));
      items.push(...reader.drain());
      expect(reader.bufferedBytes).toBeLessThan(16 * 1024);
    }
    expect(items).toEqual([
      { type: 'DataRow', columnCount: 1, byteLength: row.length, raw: null },
      { type: 'CommandComplete', tag: 'SELECT 1', command: 'SELECT', rows: 1, raw: frame('C', cstr('SELECT 1')) },
    ]);
  });

  it('still bounds skipped messages and checks their column count', () => {
    const reader = new BackendReader({ bulk: 'skip', maxMessageBytes: 100 });
    reader.push(Buffer.concat([ascii('d'), int32(100)]));
    expectError(reader.next(), 'message-too-large');
    const short = new BackendReader({ bulk: 'skip' });
    short.push(frame('D', Buffer.from([0])));
    expectError(short.next(), 'malformed-message');
    const tooMany = new BackendReader({ bulk: 'skip' });
    tooMany.push(frame('D', int16(2), int32(-1)));
    expectError(tooMany.next(), 'malformed-message');
  });
});
