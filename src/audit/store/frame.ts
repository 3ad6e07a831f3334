import { crc32 } from 'node:zlib';

/**
 * Segment framing (DESIGN.md §2 "Audit log"): `u32be length ‖ record bytes ‖ u32be crc32(record)`.
 * The CRC is CRC-32/ISO-HDLC (the zlib/PNG polynomial), which `node:zlib` computes natively.
 * The length is checked against {@link MAX_FRAME_RECORD_BYTES} so a damaged header can never make
 * a reader allocate or skip an absurd amount.
 */
export const FRAME_HEADER_BYTES = 4;
export const FRAME_TRAILER_BYTES = 4;
export const FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + FRAME_TRAILER_BYTES;
/** Records are at most 64 KiB of canonical bytes. */
export const MAX_FRAME_RECORD_BYTES = 64 * 1024;

/** CRC-32 of `bytes` (the value stored in a frame trailer). */
export function frameCrc(bytes: Uint8Array): number {
  return crc32(bytes) >>> 0;
}

/** One complete frame holding `record`, ready to be written. */
export function encodeFrame(record: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(record.length + FRAME_OVERHEAD_BYTES);
  frame.writeUInt32BE(record.length, 0);
  frame.set(record, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(frameCrc(record), FRAME_HEADER_BYTES + record.length);
  return frame;
}

/** What sits at one offset of a buffer that holds (part of) a framed file. */
export type FrameAt =
  | { readonly status: 'ok'; readonly record: Uint8Array; readonly next: number }
  /** The bytes end before the frame does; more may follow in the file, or the file ends here. */
  | { readonly status: 'incomplete'; readonly needed: number }
  /** The header declares an impossible length (0, or over the maximum). */
  | { readonly status: 'bad-length'; readonly length: number }
  /** The frame is whole but its trailer does not match its bytes. */
  | { readonly status: 'bad-crc'; readonly next: number };

/**
 * Reads the frame starting at `offset` of `buf[0, end)`. Pure: no I/O, no copies (the record is a
 * view into `buf`), so a caller can stream a file through a fixed buffer.
 */
export function frameAt(buf: Uint8Array, offset: number, end: number): FrameAt {
  if (end - offset < FRAME_HEADER_BYTES) return { status: 'incomplete', needed: FRAME_HEADER_BYTES };
  const length = ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
  if (length === 0 || length > MAX_FRAME_RECORD_BYTES) return { status: 'bad-length', length };
  const total = length + FRAME_OVERHEAD_BYTES;
  if (end - offset < total) return { status: 'incomplete', needed: total };
  const recordStart = offset + FRAME_HEADER_BYTES;
  const record = buf.subarray(recordStart, recordStart + length);
  const t = recordStart + length;
  const stored = ((buf[t]! << 24) | (buf[t + 1]! << 16) | (buf[t + 2]! << 8) | buf[t + 3]!) >>> 0;
  if (stored !== frameCrc(record)) return { status: 'bad-crc', next: offset + total };
  return { status: 'ok', record, next: offset + total };
}

/** One frame laid out by {@link FrameArena.add}. */
export interface ArenaFrame {
  /** The whole frame, a view into the arena. */
  readonly frame: Buffer;
  /** RFC 9162 leaf hash of the record bytes. */
  readonly leafHash: Buffer;
}

/** Size of each arena buffer; larger when one record needs more. */
const ARENA_BYTES = 256 * 1024;

/**
 * Lays frames out back to back in large buffers as records are sealed: a record's text is
 * encoded once, straight into its frame, and consecutive frames of a batch reach the disk as one
 * slice. A buffer is never reused, so frames handed to a write stay as they are.
 */
export class FrameArena {
  readonly #hashLeafPrefixed: (input: Uint8Array) => Buffer;
  #buffer = Buffer.allocUnsafe(0);
  #at = 0;

  /** `hashLeafPrefixed` hashes `0x00 ‖ entry` given exactly those bytes (RFC 9162 leaf hash). */
  constructor(hashLeafPrefixed: (input: Uint8Array) => Buffer) {
    this.#hashLeafPrefixed = hashLeafPrefixed;
  }

  /** Frames `text` (canonical record text of at most {@link MAX_FRAME_RECORD_BYTES} UTF-8 bytes). */
  add(text: string): ArenaFrame {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8.
    const room = text.length * 3 + FRAME_OVERHEAD_BYTES;
    if (this.#buffer.length - this.#at < room) {
      this.#buffer = Buffer.allocUnsafe(Math.max(ARENA_BYTES, room));
      this.#at = 0;
    }
    const buffer = this.#buffer;
    const start = this.#at;
    const recordStart = start + FRAME_HEADER_BYTES;
    const length = buffer.write(text, recordStart, 'utf8');
    const recordEnd = recordStart + length;
    // The byte before the record is the header's last: a zero there makes `0x00 ‖ record` for
    // the leaf hash, before the header is written over it.
    buffer[recordStart - 1] = 0x00;
    const leafHash = this.#hashLeafPrefixed(buffer.subarray(recordStart - 1, recordEnd));
    buffer.writeUInt32BE(length, start);
    buffer.writeUInt32BE(frameCrc(buffer.subarray(recordStart, recordEnd)), recordEnd);
    this.#at = recordEnd + FRAME_TRAILER_BYTES;
    return { frame: buffer.subarray(start, this.#at), leafHash };
  }
}

/**
 * Adds `frame` to `frames`, merging it with the last one when it continues it in the same
 * buffer, so that a vectored write gets a few long slices instead of one per record.
 */
export function pushFrame(frames: Buffer[], frame: Buffer): void {
  const last = frames[frames.length - 1];
  if (last !== undefined && last.buffer === frame.buffer && last.byteOffset + last.length === frame.byteOffset) {
    frames[frames.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + frame.length);
    return;
  }
  frames.push(frame);
}
