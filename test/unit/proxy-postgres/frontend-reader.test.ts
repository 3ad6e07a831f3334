import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  FrontendReader,
  bindParamFormat,
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeGSSResponse,
  type FrontendMessage,
  type ProtocolError,
  type StartupMessage,
} from '../../../src/proxy/postgres/protocol/index.js';
import { ascii, cstr, frame, int16, int32, packet, splitAt, uint32, version } from '../../helpers/pg-bytes.js';

type Item = FrontendMessage | ProtocolError;

function readChunks(reader: FrontendReader, chunks: readonly Buffer[]): Item[] {
  const items: Item[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    items.push(...reader.drain());
  }
  return items;
}

function readOne(bytes: Buffer, mode: 'startup' | 'tagged' = 'tagged'): Item {
  const items = readChunks(new FrontendReader({ mode }), [bytes]);
  expect(items).toHaveLength(1);
  return items[0] as Item;
}

function expectError(item: Item | undefined, code: ProtocolError['code']): void {
  expect(item?.type).toBe('ProtocolError');
  expect((item as ProtocolError).code).toBe(code);
}

const startup30 = packet(version(3, 0), cstr('user'), cstr('alice@example.com'), cstr('database'), cstr('shop'), cstr('application_name'), cstr('psql'), Buffer.from([0]));

describe('startup phase', () => {
  it('decodes a protocol 3.0 StartupMessage with its parameters in order and switches to tagged mode', () => {
    const reader = new FrontendReader();
    expect(reader.mode).toBe('startup');
    const [message] = readChunks(reader, [startup30]);
    expect(message).toEqual({
      type: 'StartupMessage',
      protocolVersion: { major: 3, minor: 0 },
      params: new Map([
        ['user', 'alice@example.com'],
        ['database', 'shop'],
        ['application_name', 'psql'],
      ]),
      raw: startup30,
    });
    expect([...(message as StartupMessage).params.keys()]).toEqual(['user', 'database', 'application_name']);
    expect(reader.mode).toBe('tagged');
  });

  it('accepts protocol 3.2 and reports newer 3.x minors for the session to negotiate', () => {
    for (const minor of [2, 9999]) {
      const bytes = packet(version(3, minor), cstr('user'), cstr('u'), cstr('_pq_.test'), cstr('1'), Buffer.from([0]));
      const message = readOne(bytes, 'startup');
      expect(message).toMatchObject({ type: 'StartupMessage', protocolVersion: { major: 3, minor } });
    }
  });

  it('leaves an empty parameter list to the session (no user is not a framing error)', () => {
    const bytes = packet(version(3, 0), Buffer.from([0]));
    expect(readOne(bytes, 'startup')).toMatchObject({ type: 'StartupMessage', params: new Map() });
  });

  it('rejects a major version other than 3', () => {
    expectError(readOne(packet(version(2, 0), cstr('user'), cstr('u'), Buffer.from([0])), 'startup'), 'unsupported-protocol-version');
    expectError(readOne(packet(version(4, 0), Buffer.from([0])), 'startup'), 'unsupported-protocol-version');
    // 1234.5681 is in the request-code range but names no request.
    expectError(readOne(packet(uint32(80877105)), 'startup'), 'unsupported-protocol-version');
  });

  it('decodes SSLRequest and GSSENCRequest and stays in startup mode after them', () => {
    const reader = new FrontendReader();
    const ssl = packet(int32(80877103));
    const gss = packet(int32(80877104));
    const items = readChunks(reader, [Buffer.concat([ssl, gss, startup30])]);
    expect(items.map((item) => item.type)).toEqual(['SSLRequest', 'GSSENCRequest', 'StartupMessage']);
    expect(items[0]).toEqual({ type: 'SSLRequest', raw: ssl });
    expect(items[1]).toEqual({ type: 'GSSENCRequest', raw: gss });
  });

  it('tells the session about bytes pipelined behind an SSLRequest (they must not be trusted)', () => {
    const reader = new FrontendReader();
    reader.push(Buffer.concat([packet(int32(80877103)), startup30]));
    expect(reader.next()?.type).toBe('SSLRequest');
    expect(reader.bufferedBytes).toBe(startup30.length);
  });

  it('decodes CancelRequest with a 4-byte key and with protocol 3.2 keys up to 256 bytes', () => {
    for (const keyLength of [4, 32, 256]) {
      const key = Buffer.alloc(keyLength, 0xab);
      const bytes = packet(int32(80877102), int32(4242), key);
      expect(readOne(bytes, 'startup')).toEqual({ type: 'CancelRequest', pid: 4242, secretKey: key, raw: bytes });
    }
  });

  it('rejects CancelRequest keys shorter than 4 or longer than 256 bytes', () => {
    expectError(readOne(packet(int32(80877102), int32(1), Buffer.alloc(3)), 'startup'), 'malformed-startup');
    expectError(readOne(packet(int32(80877102), int32(1), Buffer.alloc(257)), 'startup'), 'malformed-startup');
  });

  it('rejects SSLRequest and GSSENCRequest with a body', () => {
    expectError(readOne(packet(int32(80877103), int32(0)), 'startup'), 'malformed-startup');
    expectError(readOne(packet(int32(80877104), int32(0)), 'startup'), 'malformed-startup');
  });

  it('rejects malformed parameter lists', () => {
    const cases = {
      'missing final NUL': packet(version(3, 0), cstr('user'), cstr('alice')),
      'odd key/value count': packet(version(3, 0), cstr('user'), cstr('alice'), cstr('database'), Buffer.from([0])),
      'unterminated value': packet(version(3, 0), cstr('user'), ascii('alice')),
      'bytes after the terminator': packet(version(3, 0), cstr('user'), cstr('alice'), Buffer.from([0]), ascii('x')),
      'no terminator at all': packet(version(3, 0)),
      'a repeated key': packet(version(3, 0), cstr('user'), cstr('a'), cstr('user'), cstr('b'), Buffer.from([0])),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const item = readOne(bytes, 'startup');
      expect(item, name).toMatchObject({ type: 'ProtocolError', code: 'malformed-startup' });
    }
  });

  it('rejects startup parameters that are not UTF-8', () => {
    const bytes = packet(version(3, 0), cstr('user'), Buffer.from([0xff, 0xfe, 0]), Buffer.from([0]));
    expectError(readOne(bytes, 'startup'), 'invalid-encoding');
  });

  it('rejects an oversized declared startup length as soon as the length word arrives', () => {
    const reader = new FrontendReader();
    reader.push(int32(10_001));
    expectError(reader.next(), 'message-too-large');
    const custom = new FrontendReader({ maxStartupBytes: 64 });
    custom.push(int32(65));
    expectError(custom.next(), 'message-too-large');
    const exact = new FrontendReader({ maxStartupBytes: startup30.length });
    exact.push(startup30);
    expect(exact.next()?.type).toBe('StartupMessage');
  });

  it('rejects a startup length that cannot hold a request code', () => {
    for (const length of [-1, 0, 3, 4, 7]) {
      const reader = new FrontendReader();
      reader.push(int32(length));
      expectError(reader.next(), 'invalid-length');
    }
  });
});

const parse = frame('P', cstr('stmt1'), cstr('SELECT $1::int, $2'), int16(2), uint32(23), uint32(0));
const bind = frame(
  'B',
  cstr('portal1'),
  cstr('stmt1'),
  int16(2),
  int16(0),
  int16(1),
  int16(3),
  int32(2),
  ascii('42'),
  int32(-1),
  int32(0),
  int16(1),
  int16(1),
);
const taggedFixtures: { name: string; bytes: Buffer; expected: Record<string, unknown> }[] = [
  { name: 'Query', bytes: frame('Q', cstr('SELECT 1; SELECT ’é’')), expected: { type: 'Query', sql: 'SELECT 1; SELECT ’é’' } },
  { name: 'Parse', bytes: parse, expected: { type: 'Parse', name: 'stmt1', sql: 'SELECT $1::int, $2', paramTypes: [23, 0] } },
  {
    name: 'Parse with an OID above 2^31',
    bytes: frame('P', cstr(''), cstr('SELECT $1'), int16(1), uint32(0xfffffffe)),
    expected: { type: 'Parse', name: '', sql: 'SELECT $1', paramTypes: [0xfffffffe] },
  },
  {
    name: 'Bind',
    bytes: bind,
    expected: {
      type: 'Bind',
      portal: 'portal1',
      statement: 'stmt1',
      paramFormats: [0, 1],
      params: [ascii('42'), null, Buffer.alloc(0)],
      resultFormats: [1],
    },
  },
  {
    name: 'Bind with nothing',
    bytes: frame('B', cstr(''), cstr(''), int16(0), int16(0), int16(0)),
    expected: { type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] },
  },
  { name: 'Execute', bytes: frame('E', cstr('portal1'), int32(100)), expected: { type: 'Execute', portal: 'portal1', maxRows: 100 } },
  { name: 'Execute without limit', bytes: frame('E', cstr(''), int32(0)), expected: { type: 'Execute', portal: '', maxRows: 0 } },
  { name: 'Describe statement', bytes: frame('D', ascii('S'), cstr('stmt1')), expected: { type: 'Describe', target: 'statement', name: 'stmt1' } },
  { name: 'Describe portal', bytes: frame('D', ascii('P'), cstr('')), expected: { type: 'Describe', target: 'portal', name: '' } },
  { name: 'Close statement', bytes: frame('C', ascii('S'), cstr('stmt1')), expected: { type: 'Close', target: 'statement', name: 'stmt1' } },
  { name: 'Close portal', bytes: frame('C', ascii('P'), cstr('p')), expected: { type: 'Close', target: 'portal', name: 'p' } },
  { name: 'Flush', bytes: frame('H'), expected: { type: 'Flush' } },
  { name: 'Sync', bytes: frame('S'), expected: { type: 'Sync' } },
  { name: 'Terminate', bytes: frame('X'), expected: { type: 'Terminate' } },
  { name: 'CopyData', bytes: frame('d', ascii('1\tone\n')), expected: { type: 'CopyData', data: ascii('1\tone\n') } },
  { name: 'CopyData empty', bytes: frame('d'), expected: { type: 'CopyData', data: Buffer.alloc(0) } },
  { name: 'CopyDone', bytes: frame('c'), expected: { type: 'CopyDone' } },
  { name: 'CopyFail', bytes: frame('f', cstr('client gave up')), expected: { type: 'CopyFail', message: 'client gave up' } },
  {
    name: 'FunctionCall',
    bytes: frame('F', uint32(1598), int16(1), int16(1), int16(2), int32(4), int32(7), int32(-1), int16(1)),
    expected: { type: 'FunctionCall', functionOid: 1598, argFormats: [1], args: [int32(7), null], resultFormat: 1 },
  },
  { name: 'PasswordMessage', bytes: frame('p', cstr('token')), expected: { type: 'AuthenticationResponse', payload: cstr('token') } },
];

describe('tagged messages', () => {
  for (const fixture of taggedFixtures) {
    it(`decodes ${fixture.name} and keeps its raw frame`, () => {
      const message = readOne(fixture.bytes);
      expect(message).toEqual({ ...fixture.expected, raw: fixture.bytes });
      expect((message as { raw: Buffer }).raw.equals(fixture.bytes)).toBe(true);
    });
  }

  it('returns Bind parameters and CopyData as views of the frame, not copies', () => {
    const message = readOne(bind) as Extract<FrontendMessage, { type: 'Bind' }>;
    const first = message.params[0] as Buffer;
    expect(first.buffer).toBe(message.raw.buffer);
    const copy = readOne(frame('d', ascii('abc'))) as Extract<FrontendMessage, { type: 'CopyData' }>;
    expect(copy.data.buffer).toBe(copy.raw.buffer);
  });

  it('resolves the format of each Bind parameter', () => {
    expect(bindParamFormat({ paramFormats: [] }, 3)).toBe(0);
    expect(bindParamFormat({ paramFormats: [1] }, 3)).toBe(1);
    expect(bindParamFormat({ paramFormats: [0, 1] }, 1)).toBe(1);
    expect(bindParamFormat({ paramFormats: [0, 1] }, 2)).toBeUndefined();
  });

  it('rejects unknown message types from their first byte', () => {
    for (const byte of [0x00, 0x5a /* Z */, 0x52 /* R */, 0x71 /* q */, 0xff]) {
      const reader = new FrontendReader({ mode: 'tagged' });
      reader.push(Buffer.from([byte]));
      const item = reader.next();
      expectError(item, 'unknown-message-type');
    }
  });

  it('rejects declared lengths below 4', () => {
    for (const length of [-2147483648, -1, 0, 3]) {
      const reader = new FrontendReader({ mode: 'tagged' });
      reader.push(Buffer.concat([ascii('Q'), int32(length)]));
      expectError(reader.next(), 'invalid-length');
    }
  });

  it('rejects any length but 4 for bodyless messages before buffering a body', () => {
    for (const type of ['H', 'S', 'X', 'c']) {
      const reader = new FrontendReader({ mode: 'tagged' });
      reader.push(Buffer.concat([ascii(type), int32(5)]));
      expectError(reader.next(), 'invalid-length');
    }
  });

  it('rejects an oversized declared length as soon as the header arrives', () => {
    const reader = new FrontendReader({ mode: 'tagged' });
    reader.push(Buffer.concat([ascii('Q'), int32(64 * 1024 * 1024)]));
    expectError(reader.next(), 'message-too-large');
    const small = new FrontendReader({ mode: 'tagged', maxMessageBytes: 100 });
    small.push(Buffer.concat([ascii('d'), int32(100)]));
    expectError(small.next(), 'message-too-large');
    const exact = new FrontendReader({ mode: 'tagged', maxMessageBytes: 100 });
    exact.push(frame('d', Buffer.alloc(95)));
    expect(exact.next()?.type).toBe('CopyData');
  });

  it('rejects invalid reader bounds as a wiring bug', () => {
    expect(() => new FrontendReader({ maxMessageBytes: 4 })).toThrow(/maxMessageBytes/);
    expect(() => new FrontendReader({ maxStartupBytes: Number.NaN })).toThrow(/maxStartupBytes/);
  });

  const malformed: Record<string, Buffer> = {
    'Query without NUL': frame('Q', ascii('SELECT 1')),
    'Query with trailing bytes': frame('Q', cstr('SELECT 1'), ascii('x')),
    'Parse with more types than bytes': frame('P', cstr(''), cstr('SELECT 1'), int16(2), uint32(23)),
    'Parse with trailing bytes': frame('P', cstr(''), cstr('SELECT 1'), int16(0), ascii('x')),
    'Bind with parameter length -2': frame('B', cstr(''), cstr(''), int16(0), int16(1), int32(-2), int16(0)),
    'Bind with a value past the end': frame('B', cstr(''), cstr(''), int16(0), int16(1), int32(10), ascii('abc')),
    'Bind with a format count past the end': frame('B', cstr(''), cstr(''), int16(5), int16(0)),
    'Bind without result formats': frame('B', cstr(''), cstr(''), int16(0), int16(0)),
    'Execute without row limit': frame('E', cstr('')),
    'Describe with target X': frame('D', ascii('X'), cstr('')),
    'Close without name': frame('C', ascii('S')),
    'CopyFail without NUL': frame('f', ascii('oops')),
    'FunctionCall with trailing bytes': frame('F', uint32(1), int16(0), int16(0), int16(0), ascii('x')),
  };
  for (const [name, bytes] of Object.entries(malformed)) {
    it(`rejects ${name}`, () => {
      const item = readOne(bytes);
      expect(item).toMatchObject({ type: 'ProtocolError', code: 'malformed-message', messageType: bytes.toString('latin1', 0, 1) });
    });
  }

  it('rejects SQL text that is not UTF-8', () => {
    expectError(readOne(frame('Q', Buffer.from([0x53, 0xc3, 0x28, 0]))), 'invalid-encoding');
  });
});

describe('after a protocol error', () => {
  it('reports the error once, drops its buffer and refuses further input', () => {
    const reader = new FrontendReader({ mode: 'tagged' });
    reader.push(Buffer.concat([frame('Q', cstr('SELECT 1')), ascii('?'), frame('S')]));
    expect(reader.next()?.type).toBe('Query');
    const error = reader.next();
    expectError(error, 'unknown-message-type');
    expect(reader.failure).toBe(error);
    expect(reader.bufferedBytes).toBe(0);
    expect(reader.next()).toBeUndefined();
    reader.push(frame('S'));
    expect(reader.bufferedBytes).toBe(0);
    expect(reader.next()).toBeUndefined();
    expect([...reader.drain()]).toEqual([]);
  });
});

describe('partial chunks', () => {
  const stream = Buffer.concat([
    packet(int32(80877103)),
    startup30,
    frame('p', cstr('secret-token')),
    frame('Q', cstr('SELECT 1')),
    parse,
    bind,
    frame('D', ascii('P'), cstr('portal1')),
    frame('E', cstr('portal1'), int32(0)),
    frame('S'),
    frame('d', Buffer.alloc(300, 7)),
    frame('c'),
    frame('X'),
  ]);
  const expected = readChunks(new FrontendReader(), [stream]);

  it('reads the reference stream whole', () => {
    expect(expected.map((item) => item.type)).toEqual([
      'SSLRequest',
      'StartupMessage',
      'AuthenticationResponse',
      'Query',
      'Parse',
      'Bind',
      'Describe',
      'Execute',
      'Sync',
      'CopyData',
      'CopyDone',
      'Terminate',
    ]);
  });

  it('gives the same messages for every split point', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const reader = new FrontendReader();
      const items = readChunks(reader, splitAt(stream, [cut]));
      expect(items).toEqual(expected);
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('gives the same messages one byte at a time, buffering at most one message', () => {
    const reader = new FrontendReader();
    const items: Item[] = [];
    for (let i = 0; i < stream.length; i++) {
      reader.push(stream.subarray(i, i + 1));
      items.push(...reader.drain());
      expect(reader.bufferedBytes).toBeLessThanOrEqual(305);
    }
    expect(items).toEqual(expected);
  });
});

describe('large messages', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('assembles a 64 MiB message from 16 KiB chunks with a single copy', () => {
    const size = 64 * 1024 * 1024;
    const body = Buffer.alloc(size - 5, 0x61);
    body[body.length - 1] = 0x7a;
    const bytes = frame('d', body);
    const reader = new FrontendReader({ mode: 'tagged' });
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const chunk = 16 * 1024;
    let message: Item | undefined;
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      reader.push(bytes.subarray(offset, offset + chunk));
      message = reader.next();
      if (offset + chunk < bytes.length) expect(message).toBeUndefined();
    }
    expect(message?.type).toBe('CopyData');
    const copy = message as Extract<FrontendMessage, { type: 'CopyData' }>;
    expect(copy.raw.length).toBe(size);
    expect(copy.data.equals(body)).toBe(true);
    const allocated = allocUnsafe.mock.calls.reduce((sum, [n]) => sum + Number(n), 0);
    expect(allocated).toBe(size);
  });

  it('allocates nothing for a declared length whose body has not arrived', () => {
    const reader = new FrontendReader({ mode: 'tagged' });
    const header = Buffer.concat([ascii('d'), int32(60 * 1024 * 1024)]);
    const some = Buffer.alloc(10);
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    reader.push(header);
    reader.push(some);
    expect(reader.next()).toBeUndefined();
    expect(allocUnsafe).not.toHaveBeenCalled();
    expect(reader.bufferedBytes).toBe(15);
  });
});

describe('authentication payload decoders', () => {
  it('decodes PasswordMessage', () => {
    expect(decodePasswordMessage(cstr('hunter2'))).toEqual({ password: 'hunter2' });
    expect(decodePasswordMessage(ascii('hunter2'))).toMatchObject({ type: 'ProtocolError', code: 'malformed-message' });
    expect(decodePasswordMessage(Buffer.concat([cstr('a'), ascii('b')]))).toMatchObject({ type: 'ProtocolError' });
  });

  it('decodes SASLInitialResponse with and without data', () => {
    const data = ascii('n,,n=,r=abc');
    expect(decodeSASLInitialResponse(Buffer.concat([cstr('SCRAM-SHA-256'), int32(data.length), data]))).toEqual({
      mechanism: 'SCRAM-SHA-256',
      data,
    });
    expect(decodeSASLInitialResponse(Buffer.concat([cstr('SCRAM-SHA-256'), int32(-1)]))).toEqual({ mechanism: 'SCRAM-SHA-256', data: null });
    expect(decodeSASLInitialResponse(Buffer.concat([cstr('SCRAM-SHA-256'), int32(20), data]))).toMatchObject({ type: 'ProtocolError' });
    expect(decodeSASLInitialResponse(Buffer.concat([cstr('SCRAM-SHA-256'), int32(-5)]))).toMatchObject({ type: 'ProtocolError' });
  });

  it('passes SASLResponse and GSSResponse data through', () => {
    expect(decodeSASLResponse(ascii('c=biws,r=x,p=y'))).toEqual({ data: ascii('c=biws,r=x,p=y') });
    expect(decodeGSSResponse(Buffer.from([1, 2, 3]))).toEqual({ data: Buffer.from([1, 2, 3]) });
  });
});
