import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CompactRange, genesisPrev, leafHash, nodeHash, sealRecord } from '../../../src/audit/index.js';
import { recordEnvelope } from '../../../src/audit/record.js';
import { fastLeafHash, fastLeafHexOfPrefixed, fastNodeHash } from '../../../src/audit/store/fast-hash.js';
import { encodeFrame, FrameArena, frameAt, frameCrc, MAX_FRAME_RECORD_BYTES, sliceChunks } from '../../../src/audit/store/frame.js';
import { parseSegmentName, segmentName } from '../../../src/audit/store/layout.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('segment frames', () => {
  it('uses CRC-32/ISO-HDLC (check value of "123456789" is cbf43926)', () => {
    expect(frameCrc(Buffer.from('123456789')).toString(16)).toBe('cbf43926');
  });

  it('lays a frame out as u32be length, the record, u32be crc32', () => {
    const frame = encodeFrame(Buffer.from('{"a":1}'));
    expect(hex(frame)).toBe(`00000007${Buffer.from('{"a":1}').toString('hex')}${frameCrc(Buffer.from('{"a":1}')).toString(16).padStart(8, '0')}`);
  });

  it('reads back what it writes, frame after frame, from any buffer position', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 10 }), fc.nat(16), (records, pad) => {
        const buf = Buffer.concat([Buffer.alloc(pad), ...records.map(encodeFrame)]);
        let at = pad;
        for (const record of records) {
          const found = frameAt(buf, at, buf.length);
          expect(found.status).toBe('ok');
          if (found.status !== 'ok') return;
          expect(hex(found.record)).toBe(hex(record));
          at = found.next;
        }
        expect(at).toBe(buf.length);
      }),
    );
  });

  it('reports a frame cut short as incomplete, with the bytes it needs', () => {
    const frame = encodeFrame(Buffer.alloc(100, 1));
    expect(frameAt(frame, 0, 3)).toEqual({ status: 'incomplete', needed: 4 });
    expect(frameAt(frame, 0, 107)).toEqual({ status: 'incomplete', needed: 108 });
  });

  it('refuses a zero or oversized length before reading the body', () => {
    expect(frameAt(Buffer.alloc(16), 0, 16)).toEqual({ status: 'bad-length', length: 0 });
    const header = Buffer.alloc(8);
    header.writeUInt32BE(MAX_FRAME_RECORD_BYTES + 1, 0);
    expect(frameAt(header, 0, 8)).toEqual({ status: 'bad-length', length: MAX_FRAME_RECORD_BYTES + 1 });
  });

  it('detects a flipped bit anywhere in the record or trailer', () => {
    const frame = encodeFrame(Buffer.from('{"kind":"http.request"}'));
    for (let i = 4; i < frame.length; i++) {
      const damaged = Buffer.from(frame);
      damaged[i]! ^= 0x10;
      expect(frameAt(damaged, 0, damaged.length)).toEqual({ status: 'bad-crc', next: frame.length });
    }
  });
});

describe('segment names', () => {
  it('are the first seq zero-padded to 20 digits, so names sort in log order', () => {
    expect(segmentName(0)).toBe('00000000000000000000.seg');
    expect(segmentName(1234)).toBe('00000000000000001234.seg');
    expect(parseSegmentName(segmentName(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseSegmentName('0000000000000000001.seg')).toBeNull();
    expect(parseSegmentName('00000000000000000001.seg.tmp')).toBeNull();
  });
});

describe('store hashing on node:crypto', () => {
  it('gives the same leaf and node hashes as the portable @noble/hashes implementation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (entry, left, right) => {
        expect(hex(fastLeafHash(entry))).toBe(hex(leafHash(entry)));
        expect(fastLeafHexOfPrefixed(Buffer.concat([Buffer.of(0), entry]))).toBe(hex(leafHash(entry)));
        expect(hex(fastNodeHash(left, right))).toBe(hex(nodeHash(left, right)));
      }),
    );
  });

  it('builds the same Merkle roots through CompactRange', () => {
    const portable = new CompactRange();
    const fast = new CompactRange(fastNodeHash);
    for (let i = 0; i < 300; i++) {
      const leaf = leafHash(Buffer.from(`record ${i}`));
      portable.append(leaf);
      fast.append(leaf);
      expect(hex(fast.root())).toBe(hex(portable.root()));
    }
  });
});

describe('frame arena', () => {
  const envelope = recordEnvelope('test.example/audit', Date.UTC(2025, 0, 31))!;
  const prev = genesisPrev('test.example/audit');

  it('lays out exactly the frames and leaf hashes sealRecord gives, across arena buffers, and hands each frame over once', () => {
    const arena = new FrameArena(fastLeafHexOfPrefixed);
    const expected: Buffer[] = [];
    const taken: Buffer[] = [];
    // Records of about 20 KiB: the 1 MiB buffers fill and the arena moves on several times.
    for (let seq = 0; seq < 120; seq++) {
      const event = { kind: 'pg.query' as const, data: { statement: `select ${seq} -- ${'é'.repeat(10_000)}` } };
      const sealed = sealRecord(event, { logId: 'test.example/audit', seq, prev, timeMs: Date.UTC(2025, 0, 31) });
      expect(arena.addEvent(event, envelope, seq, prev)).toBe(hex(sealed.leafHash));
      expected.push(encodeFrame(sealed.bytes));
      if (seq % 7 === 0) taken.push(...arena.take());
    }
    taken.push(...arena.take());
    expect(arena.take()).toEqual([]);
    expect(Buffer.concat(taken).equals(Buffer.concat(expected))).toBe(true);
    expect(arena.framed).toBe(Buffer.concat(expected).length);
  });

  it('adds nothing for an event that needs sealRecord', () => {
    const arena = new FrameArena(fastLeafHexOfPrefixed);
    expect(arena.addEvent({ kind: 'pg.query', data: { params: [Uint8Array.of(1)] } }, envelope, 0, prev)).toBeNull();
    expect(arena.framed).toBe(0);
    expect(arena.take()).toEqual([]);
  });

  it('slices a byte range out of chunks laid end to end', () => {
    const chunks = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')];
    const text = (from: number, to: number) => Buffer.concat(sliceChunks(chunks, from, to)).toString();
    expect(text(0, 10)).toBe('abcdefghij');
    expect(text(2, 9)).toBe('cdefghi');
    expect(text(3, 8)).toBe('defgh');
    expect(sliceChunks(chunks, 3, 8)[0]).toBe(chunks[1]);
    expect(text(4, 4)).toBe('');
  });
});
