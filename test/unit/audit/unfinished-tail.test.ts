import { describe, expect, it } from 'vitest';
import { unfinishedWrites } from '../../../src/audit/store/unfinished-tail.js';
import { frameOf } from '../../helpers/audit-store.js';

/** A frame holding `size` bytes of record text, different for every `n`. */
function frame(n: number, size = 300): Buffer {
  const text = `{"data":{"n":${n}},"pad":"${'x'.repeat(size)}`;
  return frameOf(Buffer.from(`${text.slice(0, size - 2)}"}`));
}

/** The tail as it starts at a file offset `fileOffset`: the given parts back to back. */
function tail(...parts: Buffer[]): Buffer {
  return Buffer.concat(parts);
}

/** `bytes` with everything from file offset `from` (relative to `fileOffset`) to its end zeroed. */
function zeroFrom(bytes: Buffer, from: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.fill(0, from);
  return copy;
}

describe('unfinished batch writes at the end of a segment', () => {
  it('takes a gap of zeros where a batch never landed, with the later batch written after it', () => {
    const unwritten = Buffer.alloc(frame(1).length + frame(2).length);
    const later = tail(frame(3), frame(4));
    const bytes = tail(unwritten, later, Buffer.alloc(4096));
    expect(unfinishedWrites(bytes, 1000, true)).toEqual({ bytes: unwritten.length + later.length, frames: 2 });
  });

  it('takes a batch cut at a sector boundary, zeros, then the later batch', () => {
    // The frame starts at file offset 400; its bytes from 512 on never reached the disk.
    const first = tail(frame(1), frame(2));
    const cut = zeroFrom(first, 512 - 400);
    const bytes = tail(cut, frame(3), Buffer.alloc(100));
    expect(unfinishedWrites(bytes, 400, true)).toEqual({ bytes: first.length + frame(3).length, frames: 1 });
  });

  it('takes a later batch that was itself cut short by the end of the file', () => {
    const later = tail(frame(3), frame(4));
    const bytes = tail(Buffer.alloc(frame(1).length), later.subarray(0, later.length - 50));
    expect(unfinishedWrites(bytes, 0, true)).toEqual({ bytes: bytes.length, frames: 1 });
  });

  it('finds the frame after a gap whatever the leading zero bytes of its length word', () => {
    for (const size of [20, 255, 256, 300, 4000, 65_000]) {
      const bytes = tail(Buffer.alloc(700), frame(7, size));
      expect(unfinishedWrites(bytes, 512, true)).toEqual({ bytes: bytes.length, frames: 1 });
    }
  });

  it('refuses a frame with a flipped byte and frames after it: altered, not unfinished', () => {
    const bad = frame(1);
    bad[40]! ^= 0x01;
    expect(unfinishedWrites(tail(bad, frame(2), frame(3)), 0, true)).toBeNull();
  });

  it('refuses a frame whose zeros do not begin at a sector boundary', () => {
    const first = frame(1);
    // Zeros from file offset 530 (not a boundary) to the frame's end, then a correct frame.
    const cut = zeroFrom(first, 30);
    expect(unfinishedWrites(tail(cut, frame(2)), 500, true)).toBeNull();
  });

  it('refuses data after a gap that is not a frame', () => {
    const bytes = tail(Buffer.alloc(300), Buffer.from('garbage written behind a gap, not a frame'), frame(2));
    expect(unfinishedWrites(bytes, 0, true)).toBeNull();
  });

  it('refuses a frame that is cut by the end of what was read when the file goes on', () => {
    const later = frame(3);
    const bytes = tail(Buffer.alloc(300), later.subarray(0, later.length - 10));
    expect(unfinishedWrites(bytes, 0, false)).toBeNull();
    expect(unfinishedWrites(bytes, 0, true)).toEqual({ bytes: bytes.length, frames: 0 });
  });

  it('refuses an impossible frame length', () => {
    const bytes = Buffer.alloc(600);
    bytes.writeUInt32BE(0x7fff_ffff, 0);
    bytes.fill(1, 4, 20);
    expect(unfinishedWrites(bytes, 0, true)).toBeNull();
  });
});
