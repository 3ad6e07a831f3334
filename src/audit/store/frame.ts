import { crc32 } from 'node:zlib';
import { encodeRecordInto } from '../record.js';
import type { AuditEvent, RecordEnvelope } from '../record.js';

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

/** Size of each arena buffer: the next one is started when less than a largest frame is left. */
const ARENA_BYTES = 1024 * 1024;

/**
 * Lays frames out back to back in large buffers as records are sealed: a record is encoded
 * once, straight into its frame, and the frames of a batch reach the disk as one slice
 * per arena buffer. A buffer is never reused, so frames handed to a write stay as they are.
 */
export class FrameArena {
  readonly #hashLeafPrefixed: (input: Uint8Array) => string;
  #buffer = Buffer.allocUnsafe(0);
  #at = 0;
  /** Where the frames not yet taken begin in {@link #buffer}. */
  #from = 0;
  /** Frames not yet taken that fill earlier buffers. */
  #full: Buffer[] = [];
  #framed = 0;

  /** `hashLeafPrefixed` gives the hex RFC 9162 leaf hash of `0x00 ‖ entry`, given exactly those bytes. */
  constructor(hashLeafPrefixed: (input: Uint8Array) => string) {
    this.#hashLeafPrefixed = hashLeafPrefixed;
  }

  /** Bytes of all frames added so far: frame `i` of a batch ends where this stood after adding it. */
  get framed(): number {
    return this.#framed;
  }

  /**
   * Frames the record sealed from `event` (see {@link encodeRecordInto}), encoded straight into
   * its frame, and returns its leaf hash in lowercase hex; `null` (nothing added) when the event
   * needs `sealRecord`'s full treatment.
   */
  addEvent(event: AuditEvent, envelope: RecordEnvelope, seq: number, prev: string): string | null {
    const recordStart = this.#reserve() + FRAME_HEADER_BYTES;
    const buffer = this.#buffer;
    const recordEnd = encodeRecordInto(event, envelope, seq, prev, buffer, recordStart);
    if (recordEnd < 0) return null;
    const length = recordEnd - recordStart;
    // The byte before the record is the header's last: a zero there makes `0x00 ‖ record` for
    // the leaf hash, before the header is written over it.
    buffer[recordStart - 1] = 0x00;
    const leafHex = this.#hashLeafPrefixed(buffer.subarray(recordStart - 1, recordEnd));
    this.#close(recordStart, length);
    return leafHex;
  }

  /** Frames record bytes sealed elsewhere (the full `sealRecord` path, which hashes them itself). */
  addBytes(record: Uint8Array): void {
    const recordStart = this.#reserve() + FRAME_HEADER_BYTES;
    this.#buffer.set(record, recordStart);
    this.#close(recordStart, record.length);
  }

  /** The frames added since the last call, in order, as one slice per arena buffer they fill. */
  take(): Buffer[] {
    const taken = this.#full;
    if (this.#at > this.#from) taken.push(this.#buffer.subarray(this.#from, this.#at));
    this.#full = [];
    this.#from = this.#at;
    return taken;
  }

  /** Makes room for a frame of the largest record and returns where it starts. */
  #reserve(): number {
    if (this.#buffer.length - this.#at < MAX_FRAME_RECORD_BYTES + FRAME_OVERHEAD_BYTES) {
      if (this.#at > this.#from) this.#full.push(this.#buffer.subarray(this.#from, this.#at));
      this.#buffer = Buffer.allocUnsafe(ARENA_BYTES);
      this.#at = 0;
      this.#from = 0;
    }
    return this.#at;
  }

  /** Writes the header and trailer around the `length` record bytes at `recordStart`. */
  #close(recordStart: number, length: number): void {
    const buffer = this.#buffer;
    const recordEnd = recordStart + length;
    buffer.writeUInt32BE(length, recordStart - FRAME_HEADER_BYTES);
    buffer.writeUInt32BE(frameCrc(buffer.subarray(recordStart, recordEnd)), recordEnd);
    this.#at = recordEnd + FRAME_TRAILER_BYTES;
    this.#framed += length + FRAME_OVERHEAD_BYTES;
  }
}

/** `[from, to)` of the byte stream made by `chunks` laid end to end, as slices of them. */
export function sliceChunks(chunks: readonly Buffer[], from: number, to: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const chunk of chunks) {
    const start = Math.max(from - at, 0);
    const end = Math.min(to - at, chunk.length);
    if (start < end) out.push(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end));
    at += chunk.length;
    if (at >= to) break;
  }
  return out;
}
