import { FRAME_HEADER_BYTES, FRAME_OVERHEAD_BYTES, frameAt, MAX_FRAME_RECORD_BYTES } from './frame.js';

/**
 * The smallest unit a disk writes whole. A write cut short (the process killed while the kernel
 * copied it, or power lost before all of it reached the disk) leaves its bytes up to a sector
 * boundary and the segment's preallocated zeros after it.
 */
const SECTOR_BYTES = 512;

/**
 * How every record begins: `data` is in every record and first in canonical key order. A frame
 * that is not whole is only taken for a cut one when what was written of it begins so.
 */
const RECORD_START = Buffer.from('{"data":');

/** What {@link unfinishedWrites} found. */
export interface UnfinishedWrites {
  /** Bytes from the start of `bytes` to the end of its last non-zero byte. */
  readonly bytes: number;
  /** Whole, correct frames after the first gap: written, but behind a batch that never finished. */
  readonly frames: number;
}

/**
 * Whether `bytes`, the end of the last segment from a frame that is not whole and correct, is
 * what batch writes in flight at a crash leave. The writer has up to two batches on their way at
 * once, into preallocated zeros, so a later one can reach the disk while an earlier one does not,
 * or only in part. Such a tail is frames, each either correct or cut off at a sector boundary
 * with zeros after it, separated by runs of zeros where a write never landed.
 *
 * Anything else gives null: a frame with altered bytes (a wrong CRC without zeros from a sector
 * boundary to its end), an impossible length, data after a gap that is not a frame, or a frame
 * cut by the end of `bytes` when the file goes on (`toFileEnd` false).
 *
 * `fileOffset` is where `bytes` starts in the segment, for the sector boundaries. Pure.
 */
export function unfinishedWrites(bytes: Uint8Array, fileOffset: number, toFileEnd: boolean): UnfinishedWrites | null {
  let at = 0;
  let frames = 0;
  while (at < bytes.length) {
    const found = frameAt(bytes, at, bytes.length);
    if (found.status === 'ok') {
      frames += 1;
      at = found.next;
      continue;
    }
    const zeros = startsLikeRecord(bytes, at) ? zerosCutting(bytes, at, fileOffset) : -1;
    if (zeros < 0) {
      // The file ends inside a frame that was being written.
      if (found.status === 'incomplete' && toFileEnd) break;
      return null;
    }
    let next = zeros;
    while (next < bytes.length && bytes[next] === 0) next++;
    if (next === bytes.length) break;
    at = frameStartNear(bytes, zeros, next, fileOffset);
    if (at < 0) return null;
  }
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return { bytes: end, frames };
}

/**
 * Whether `frame`, a whole frame that fails its CRC and starts at `fileOffset` of the last
 * segment, is what a write cut short leaves: its record begins as every record does, and its
 * bytes are zeros from a sector boundary to its end. A frame with altered bytes and no such zeros
 * is damage, even after the last checkpoint. Pure.
 *
 * A write cut short never leaves a frame torn inside a sector. Killed while the kernel copies a
 * write into the page cache, a process leaves a prefix of it that ends at a page boundary of the
 * file (Linux checks for a fatal signal between pages, not within one); measured here, a
 * 256 MiB O_DSYNC write from a non-aligned offset, killed at twelve moments into preallocated or
 * new space, always left its bytes up to a 4096-byte file offset and the old zeros (or the end
 * of the file) after them. A power loss leaves whole sectors: a disk writes a 512-byte sector
 * entirely or not at all.
 */
export function tornBySectorZeros(frame: Uint8Array, fileOffset: number): boolean {
  return startsLikeRecord(frame, 0) && zerosCutting(frame, 0, fileOffset) >= 0;
}

/**
 * Where the zeros that cut the frame at `at` begin: `at` itself when its length word is zero
 * (nothing of it was written), else the first sector boundary after its last non-zero byte, when
 * that falls inside the frame. -1 when the frame is not cut by zeros.
 */
function zerosCutting(bytes: Uint8Array, at: number, fileOffset: number): number {
  if (bytes.length - at < FRAME_HEADER_BYTES) return allZeroFrom(bytes, at) ? at : -1;
  const length = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
  if (length === 0) return at;
  if (length > MAX_FRAME_RECORD_BYTES) return -1;
  const frameEnd = Math.min(bytes.length, at + length + FRAME_OVERHEAD_BYTES);
  let last = frameEnd - 1;
  while (bytes[last] === 0) last--;
  const cut = Math.ceil((fileOffset + last + 1) / SECTOR_BYTES) * SECTOR_BYTES - fileOffset;
  return cut < frameEnd ? cut : -1;
}

/**
 * The start of the frame whose length word holds the first non-zero byte after a gap, `next`:
 * the word's leading bytes are zero for any length up to the maximum, so it starts one to three
 * bytes before. A correct frame wins, then one that runs to the end of `bytes`, then one cut by
 * zeros; -1 when none is a frame.
 */
function frameStartNear(bytes: Uint8Array, zeros: number, next: number, fileOffset: number): number {
  const starts: number[] = [];
  for (let start = Math.max(zeros, next - (FRAME_HEADER_BYTES - 1)); start < next; start++) if (startsLikeRecord(bytes, start)) starts.push(start);
  const status = (start: number) => frameAt(bytes, start, bytes.length).status;
  return (
    starts.find((start) => status(start) === 'ok') ??
    starts.find((start) => status(start) === 'incomplete') ??
    starts.find((start) => status(start) === 'bad-crc' && zerosCutting(bytes, start, fileOffset) >= 0) ??
    -1
  );
}

/** Whether the record of the frame at `at` begins as every record does, as far as it was written (up to the first zero). */
function startsLikeRecord(bytes: Uint8Array, at: number): boolean {
  const from = at + FRAME_HEADER_BYTES;
  for (let i = 0; i < RECORD_START.length && from + i < bytes.length; i++) {
    const byte = bytes[from + i]!;
    if (byte === 0) return true;
    if (byte !== RECORD_START[i]) return false;
  }
  return true;
}

function allZeroFrom(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
