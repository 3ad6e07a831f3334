import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BackendReader,
  FrontendReader,
  PROTOCOL_ERROR_CODES,
  type BackendMessage,
  type FrontendMessage,
  type ProtocolError,
  type SSLResponse,
} from '../../../src/proxy/postgres/protocol/index.js';
import { ascii, cstr, frame, int16, int32, packet, splitAt, uint32, version } from '../../helpers/pg-bytes.js';

/**
 * Property-based fuzzing of both readers with mutated valid frames: bit flips, truncations,
 * length-field edits, type-byte edits and insertions, fed in random splits. The readers must
 * never throw or spin, must return only messages or protocol-error values, must account for
 * every byte, and must never hold more than their bound after draining.
 */

const MAX_MESSAGE = 2048;
const MAX_STARTUP = 512;
const ERROR_CODES = new Set(Object.keys(PROTOCOL_ERROR_CODES));

interface Generated {
  readonly bytes: Buffer;
  /** The decoded message (without `raw`) a pristine frame must produce. */
  readonly expected: Record<string, unknown>;
  /** Which reader mode the frame belongs to. */
  readonly startup: boolean;
}

const text = fc.string({ maxLength: 40, unit: 'grapheme' }).map((s) => s.replaceAll('\0', ''));
const shortText = fc.string({ maxLength: 12 }).map((s) => s.replaceAll('\0', ''));
const bytesArb = (maxLength: number) => fc.uint8Array({ maxLength }).map((array) => Buffer.from(array));
const int16Arb = fc.integer({ min: -32768, max: 32767 });
const valueArb = fc.option(bytesArb(24), { nil: null, freq: 4 });

const tagged = (bytes: Buffer, expected: Record<string, unknown>): Generated => ({ bytes, expected, startup: false });

const frontendTagged: fc.Arbitrary<Generated> = fc.oneof(
  text.map((sql) => tagged(frame('Q', cstr(sql)), { type: 'Query', sql })),
  fc
    .tuple(shortText, text, fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 6 }))
    .map(([name, sql, types]) =>
      tagged(frame('P', cstr(name), cstr(sql), int16(types.length), ...types.map(uint32)), { type: 'Parse', name, sql, paramTypes: types }),
    ),
  fc
    .tuple(shortText, shortText, fc.array(int16Arb, { maxLength: 3 }), fc.array(valueArb, { maxLength: 5 }), fc.array(int16Arb, { maxLength: 3 }))
    .map(([portal, statement, formats, values, results]) =>
      tagged(
        frame(
          'B',
          cstr(portal),
          cstr(statement),
          int16(formats.length),
          ...formats.map(int16),
          int16(values.length),
          ...values.flatMap((value) => (value === null ? [int32(-1)] : [int32(value.length), value])),
          int16(results.length),
          ...results.map(int16),
        ),
        { type: 'Bind', portal, statement, paramFormats: formats, params: values, resultFormats: results },
      ),
    ),
  fc.tuple(shortText, fc.integer({ min: -2147483648, max: 2147483647 })).map(([portal, maxRows]) =>
    tagged(frame('E', cstr(portal), int32(maxRows)), { type: 'Execute', portal, maxRows }),
  ),
  fc.tuple(fc.constantFrom('D', 'C'), fc.constantFrom('S', 'P'), shortText).map(([type, target, name]) =>
    tagged(frame(type, ascii(target), cstr(name)), {
      type: type === 'D' ? 'Describe' : 'Close',
      target: target === 'S' ? 'statement' : 'portal',
      name,
    }),
  ),
  fc.constantFrom(
    tagged(frame('H'), { type: 'Flush' }),
    tagged(frame('S'), { type: 'Sync' }),
    tagged(frame('X'), { type: 'Terminate' }),
    tagged(frame('c'), { type: 'CopyDone' }),
  ),
  bytesArb(120).map((data) => tagged(frame('d', data), { type: 'CopyData', data })),
  fc.integer({ min: MAX_MESSAGE - 8, max: MAX_MESSAGE + 4 }).map((size) => {
    const data = Buffer.alloc(size - 5, 0x2a);
    return tagged(frame('d', data), size <= MAX_MESSAGE ? { type: 'CopyData', data } : { type: 'ProtocolError', code: 'message-too-large' });
  }),
  text.map((message) => tagged(frame('f', cstr(message)), { type: 'CopyFail', message })),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.array(int16Arb, { maxLength: 3 }), fc.array(valueArb, { maxLength: 4 }), int16Arb)
    .map(([oid, formats, args, resultFormat]) =>
      tagged(
        frame(
          'F',
          uint32(oid),
          int16(formats.length),
          ...formats.map(int16),
          int16(args.length),
          ...args.flatMap((value) => (value === null ? [int32(-1)] : [int32(value.length), value])),
          int16(resultFormat),
        ),
        { type: 'FunctionCall', functionOid: oid, argFormats: formats, args, resultFormat },
      ),
    ),
  bytesArb(60).map((payload) => tagged(frame('p', payload), { type: 'AuthenticationResponse', payload })),
);

const startupMessage: fc.Arbitrary<Generated> = fc
  .tuple(fc.constantFrom(0, 2), fc.uniqueArray(fc.tuple(shortText.filter((key) => key !== ''), shortText), { maxLength: 5, selector: ([key]) => key }))
  .map(([minor, params]) => ({
    bytes: packet(version(3, minor), ...params.flatMap(([key, value]) => [cstr(key), cstr(value)]), Buffer.from([0])),
    expected: { type: 'StartupMessage', protocolVersion: { major: 3, minor }, params: new Map(params) },
    startup: true,
  }));

/** The untagged requests that may come before a StartupMessage. */
const startupRequest: fc.Arbitrary<Generated> = fc.oneof(
  fc.constantFrom(
    { bytes: packet(int32(80877103)), expected: { type: 'SSLRequest' }, startup: true },
    { bytes: packet(int32(80877104)), expected: { type: 'GSSENCRequest' }, startup: true },
  ),
  fc.tuple(fc.integer({ min: -2147483648, max: 2147483647 }), fc.integer({ min: 4, max: 256 })).map(([pid, keyLength]) => {
    const secretKey = Buffer.alloc(keyLength, keyLength & 0xff);
    return { bytes: packet(int32(80877102), int32(pid), secretKey), expected: { type: 'CancelRequest', pid, secretKey }, startup: true };
  }),
);

const backendFrame: fc.Arbitrary<Generated> = fc.oneof(
  fc.constantFrom(
    tagged(frame('R', int32(0)), { type: 'AuthenticationOk' }),
    tagged(frame('R', int32(3)), { type: 'AuthenticationCleartextPassword' }),
    tagged(frame('R', int32(5), Buffer.from([1, 2, 3, 4])), { type: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) }),
    tagged(frame('R', int32(10), cstr('SCRAM-SHA-256'), Buffer.from([0])), { type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] }),
    tagged(frame('1'), { type: 'ParseComplete' }),
    tagged(frame('2'), { type: 'BindComplete' }),
    tagged(frame('3'), { type: 'CloseComplete' }),
    tagged(frame('n'), { type: 'NoData' }),
    tagged(frame('s'), { type: 'PortalSuspended' }),
    tagged(frame('I'), { type: 'EmptyQueryResponse' }),
    tagged(frame('c'), { type: 'CopyDone' }),
    tagged(frame('H', Buffer.from([0]), int16(1), int16(0)), { type: 'CopyOutResponse', format: 0, columnFormats: [0] }),
  ),
  fc.constantFrom('I', 'T', 'E').map((status) => tagged(frame('Z', ascii(status)), { type: 'ReadyForQuery', status })),
  fc.tuple(shortText, shortText).map(([name, value]) => tagged(frame('S', cstr(name), cstr(value)), { type: 'ParameterStatus', name, value })),
  fc.tuple(fc.integer({ min: 0, max: 2147483647 }), bytesArb(64).filter((key) => key.length >= 4)).map(([pid, secretKey]) =>
    tagged(frame('K', int32(pid), secretKey), { type: 'BackendKeyData', pid, secretKey }),
  ),
  fc.integer({ min: 0, max: 1_000_000 }).map((rows) =>
    tagged(frame('C', cstr(`SELECT ${rows}`)), { type: 'CommandComplete', tag: `SELECT ${rows}`, command: 'SELECT', rows }),
  ),
  fc.tuple(shortText, shortText).map(([severity, message]) =>
    tagged(frame('E', ascii('S'), cstr(severity), ascii('C'), cstr('XX000'), ascii('M'), cstr(message), Buffer.from([0])), {
      type: 'ErrorResponse',
      fields: { severity, code: 'XX000', message },
    }),
  ),
  fc.array(valueArb, { maxLength: 6 }).map((columns) => {
    const bytes = frame('D', int16(columns.length), ...columns.flatMap((value) => (value === null ? [int32(-1)] : [int32(value.length), value])));
    return tagged(bytes, { type: 'DataRow', columnCount: columns.length, byteLength: bytes.length });
  }),
  bytesArb(120).map((data) => tagged(frame('d', data), { type: 'CopyData', byteLength: data.length + 5, data })),
  fc.integer({ min: MAX_MESSAGE - 8, max: MAX_MESSAGE + 4 }).map((size) => {
    const data = Buffer.alloc(size - 5, 0x2a);
    return tagged(frame('d', data), size <= MAX_MESSAGE ? { type: 'CopyData', byteLength: size, data } : { type: 'ProtocolError', code: 'message-too-large' });
  }),
  fc.tuple(fc.integer({ min: 0, max: 2147483647 }), shortText, text).map(([pid, channel, payload]) =>
    tagged(frame('A', int32(pid), cstr(channel), cstr(payload)), { type: 'NotificationResponse', pid, channel, payload }),
  ),
);

type Mutation =
  | { kind: 'none' }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'length'; value: number }
  | { kind: 'type'; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('length' as const),
      value: fc.oneof(
        fc.integer({ min: -4, max: 16 }),
        fc.integer({ min: -2147483648, max: 2147483647 }),
        fc.integer({ min: MAX_STARTUP - 8, max: MAX_STARTUP + 8 }),
        fc.integer({ min: MAX_MESSAGE - 8, max: MAX_MESSAGE + 8 }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('type' as const), value: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
);

function mutate(generated: Generated, change: Mutation): Buffer {
  const bytes = Buffer.from(generated.bytes);
  const lengthAt = generated.startup ? 0 : 1;
  switch (change.kind) {
    case 'none':
      return bytes;
    case 'flip': {
      const at = change.at % bytes.length;
      bytes[at] = (bytes[at] as number) ^ (1 << change.bit);
      return bytes;
    }
    case 'truncate':
      return bytes.subarray(0, change.at % bytes.length);
    case 'length':
      bytes.writeInt32BE(change.value, lengthAt);
      return bytes;
    case 'type':
      if (!generated.startup) bytes[0] = change.value;
      else bytes.writeInt32BE(80877100 + (change.value % 8), 4);
      return bytes;
    case 'insert': {
      const at = change.at % (bytes.length + 1);
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(change.bytes), bytes.subarray(at)]);
    }
  }
}

type Reader = FrontendReader | BackendReader;
type Item = FrontendMessage | BackendMessage | SSLResponse | ProtocolError;

const stats = { frames: 0, mutated: 0, messages: 0, errors: 0 };

/**
 * Feeds the mutated frames in random splits. When a reader fails, a fresh one takes over at the
 * first frame that starts after the point of failure, so every mutated frame is read by some
 * reader, in whatever context the frames before it leave.
 */
function feed(
  frames: readonly { generated: Generated; change: Mutation }[],
  cuts: readonly number[],
  makeReader: (startup: boolean) => Reader,
  retain: boolean,
  bound: number,
): void {
  const pieces = frames.map(({ generated, change }) => mutate(generated, change));
  const starts: number[] = [];
  let offset = 0;
  for (const piece of pieces) {
    starts.push(offset);
    offset += piece.length;
  }
  const stream = Buffer.concat(pieces);
  const fed = new Array<boolean>(frames.length).fill(false);

  let readerStart = 0;
  let reader = makeReader(frames[0]?.generated.startup ?? false);
  /** Bytes of the current reader's input returned as messages (skipped bodies included). */
  let consumed = 0;
  let pushed = 0;

  const push = (from: number, to: number): void => {
    reader.push(stream.subarray(from, to));
    pushed += to - from;
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i] as number;
      if (start >= from && start < to) fed[i] = true;
    }
  };

  let chunkStart = 0;
  for (const chunk of splitAt(stream, cuts.map((cut) => cut % Math.max(stream.length, 1)))) {
    const chunkEnd = chunkStart + chunk.length;
    if (chunkEnd > readerStart) push(Math.max(chunkStart, readerStart), chunkEnd);
    let guard = pushed + 2;
    for (;;) {
      const item = reader.next() as Item | undefined;
      if (item === undefined) break;
      guard -= 1;
      expect(guard, 'a drain loop must end').toBeGreaterThan(0);
      checkItem(item, bound);
      if (item.type !== 'ProtocolError') {
        stats.messages += 1;
        if (item.type === 'SSLResponse') consumed += 1;
        else if (item.type === 'DataRow' || (item.type === 'CopyData' && 'byteLength' in item)) consumed += item.byteLength;
        else consumed += (item as { raw: Buffer }).raw.length;
        continue;
      }
      stats.errors += 1;
      expect(reader.next()).toBeUndefined();
      expect(reader.bufferedBytes).toBe(0);
      reader.push(Buffer.from([1, 2, 3]));
      expect(reader.bufferedBytes).toBe(0);
      const failedAt = readerStart + consumed;
      const next = starts.findIndex((start) => start > failedAt);
      if (next === -1) return finish();
      readerStart = starts[next] as number;
      reader = makeReader(frames[next]?.generated.startup ?? false);
      consumed = 0;
      pushed = 0;
      if (readerStart < chunkEnd) push(readerStart, chunkEnd);
      guard = pushed + 2;
    }
    expect(reader.bufferedBytes, 'buffered bytes after draining').toBeLessThanOrEqual(bound);
    if (retain && readerStart < chunkEnd) expect(consumed + reader.bufferedBytes, 'every byte accounted for').toBe(pushed);
    chunkStart = chunkEnd;
  }
  finish();

  function finish(): void {
    stats.frames += frames.length;
    stats.mutated += frames.filter(({ change }, i) => change.kind !== 'none' && fed[i]).length;
  }
}

function checkItem(item: Item, bound: number): void {
  if (item.type === 'ProtocolError') {
    expect(ERROR_CODES.has(item.code)).toBe(true);
    expect(typeof item.message).toBe('string');
    return;
  }
  if (item.type === 'SSLResponse') return;
  const raw = (item as { raw: Buffer | null }).raw;
  if (raw !== null) {
    expect(Buffer.isBuffer(raw)).toBe(true);
    expect(raw.length).toBeLessThanOrEqual(bound);
    expect(raw.length).toBeGreaterThanOrEqual(5);
  }
}

const frameList = (arb: fc.Arbitrary<Generated>, min: number, max: number) =>
  fc.array(fc.record({ generated: arb, change: mutation }), { minLength: min, maxLength: max });
const cutsArb = fc.array(fc.nat({ max: 1 << 20 }), { maxLength: 40 });

describe('fuzzing with mutated frames', () => {
  afterAll(() => {
    // The run must really have fed the volume it claims; printed for the record.
    process.stdout.write(`fuzz: ${stats.frames} frames, ${stats.mutated} mutated, ${stats.messages} messages, ${stats.errors} errors\n`);
  });

  it('frontend reader, tagged mode: never throws, never spins, stays bounded', () => {
    fc.assert(
      fc.property(frameList(frontendTagged, 50, 70), cutsArb, (frames, cuts) => {
        feed(frames, cuts, () => new FrontendReader({ mode: 'tagged', maxMessageBytes: MAX_MESSAGE }), true, MAX_MESSAGE);
      }),
      { numRuns: 1300 },
    );
  });

  it('frontend reader, startup phase: never throws, never spins, stays bounded', () => {
    const stream = fc
      .tuple(frameList(startupRequest, 0, 3), frameList(startupMessage, 1, 1), frameList(frontendTagged, 20, 40))
      .map(([requests, opening, frames]) => [...requests, ...opening, ...frames]);
    fc.assert(
      fc.property(stream, cutsArb, (frames, cuts) => {
        feed(
          frames,
          cuts,
          (startup) => new FrontendReader({ mode: startup ? 'startup' : 'tagged', maxStartupBytes: MAX_STARTUP, maxMessageBytes: MAX_MESSAGE }),
          true,
          MAX_MESSAGE,
        );
      }),
      { numRuns: 600 },
    );
  });

  it('backend reader, both bulk modes: never throws, never spins, stays bounded', () => {
    fc.assert(
      fc.property(frameList(backendFrame, 50, 70), cutsArb, fc.boolean(), (frames, cuts, skip) => {
        feed(frames, cuts, () => new BackendReader({ maxMessageBytes: MAX_MESSAGE, bulk: skip ? 'skip' : 'retain' }), !skip, MAX_MESSAGE);
      }),
      { numRuns: 1000 },
    );
  });

  it('fed at least 100,000 mutated frames', () => {
    expect(stats.mutated).toBeGreaterThanOrEqual(100_000);
  });
});

describe('pristine frames decode to their model', () => {
  function decodeAll(reader: Reader, bytes: Buffer, cuts: readonly number[]): Item[] {
    const items: Item[] = [];
    for (const chunk of splitAt(bytes, cuts.map((cut) => cut % Math.max(bytes.length, 1)))) {
      reader.push(chunk);
      for (;;) {
        const item = reader.next() as Item | undefined;
        if (item === undefined) break;
        items.push(item);
      }
    }
    return items;
  }
  function strip(item: Item): unknown {
    if (item.type === 'ProtocolError') return { type: item.type, code: item.code };
    const { raw: _raw, ...rest } = item as Item & { raw?: unknown };
    return rest;
  }
  function expectedUpToError(frames: readonly Generated[]): unknown[] {
    const out: unknown[] = [];
    for (const generated of frames) {
      out.push(generated.expected);
      if (generated.expected.type === 'ProtocolError') break;
    }
    return out;
  }

  it('frontend frames', () => {
    fc.assert(
      fc.property(fc.array(startupRequest, { maxLength: 3 }), startupMessage, fc.array(frontendTagged, { maxLength: 30 }), cutsArb, (requests, opening, frames, cuts) => {
        const all = [...requests, opening, ...frames];
        const reader = new FrontendReader({ maxStartupBytes: MAX_STARTUP, maxMessageBytes: MAX_MESSAGE });
        const items = decodeAll(reader, Buffer.concat(all.map((generated) => generated.bytes)), cuts);
        expect(items.map(strip)).toEqual(expectedUpToError(all));
      }),
      { numRuns: 300 },
    );
  });

  it('backend frames', () => {
    fc.assert(
      fc.property(fc.array(backendFrame, { maxLength: 30 }), cutsArb, (frames, cuts) => {
        const items = decodeAll(new BackendReader({ maxMessageBytes: MAX_MESSAGE }), Buffer.concat(frames.map((generated) => generated.bytes)), cuts);
        expect(items.map(strip)).toEqual(expectedUpToError(frames));
      }),
      { numRuns: 300 },
    );
  });
});
