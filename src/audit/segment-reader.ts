import { hash } from 'node:crypto';
import { basename } from 'node:path';
import { TollgateError } from '../core/index.js';
import type { StoreFs } from './store/file-io.js';
import { frameAt, FRAME_OVERHEAD_BYTES, MAX_FRAME_RECORD_BYTES } from './store/frame.js';
import type { FrameAt } from './store/frame.js';
import { segmentsOf } from './store/layout.js';
import { classifyTail } from './store/recover.js';
import type { TornTailReason } from './store/recover.js';

/**
 * Reads the records of an audit directory's segments front to back through fixed-size chunks, for
 * the readers that never write: `audit verify`, `audit prove`, `audit export` and the query
 * index. The framing is the store's own (`frameAt`, `u32be length ‖ record ‖ u32be crc32`); this
 * module only adds the streaming: whole frames are handed out a chunk at a time, a frame cut by
 * the chunk's end is carried over to the next chunk, and memory stays at one chunk whatever the
 * size of the log.
 */

export interface LogSegment {
  /** The seq of the segment's first record, from its file name. */
  readonly firstSeq: number;
  readonly path: string;
  /** The file name (`00000000000000000000.seg`). */
  readonly name: string;
}

/** The segments of `dir`, in log order. */
export async function listSegments(fs: StoreFs, dir: string): Promise<LogSegment[]> {
  return segmentsOf(dir, await fs.readDir(dir)).map((entry) => ({ ...entry, name: basename(entry.path) }));
}

/** Whole frames read from one segment. */
export interface FrameChunk {
  readonly type: 'frames';
  /**
   * The chunk's bytes: whole frames, back to back, starting at file offset {@link start}. With
   * `freshBuffers` each chunk owns its buffer (it may be transferred to a worker); otherwise the
   * buffer is reused once the consumer asks for the next chunk.
   */
  readonly bytes: Uint8Array;
  readonly start: number;
  /** Each record's bytes: views into {@link bytes}. */
  readonly records: readonly Uint8Array[];
  /** File offset of each record's frame. */
  readonly offsets: readonly number[];
}

/** Why reading a segment stopped before its end. */
export interface FrameDamage {
  /** File offset of the first frame that is not whole and correct. */
  readonly offset: number;
  readonly problem: 'bad-length' | 'bad-crc' | 'incomplete';
  /** With `bad-length`, the length the header declares. */
  readonly declaredLength?: number;
  /**
   * In the last segment only: the damage is what an interrupted write leaves (see the store's
   * recovery), which the store cuts on its next open. Null when it is not, or not the last segment.
   */
  readonly torn: TornTailReason | null;
  /** With `torn`: how many bytes the torn write left (preallocated zeros after them not counted). */
  readonly tornBytes: number;
}

/** The last item of a segment. */
export interface SegmentEnd {
  readonly type: 'end';
  /** File size when the segment was opened; bytes appended later are not read. */
  readonly size: number;
  /**
   * Offset just after the last whole frame. In the last segment, zeros from there to `size` are
   * space the writer preallocated, not damage.
   */
  readonly end: number;
  readonly damage: FrameDamage | null;
}

export interface ReadFramesOptions {
  /** File offset to start at: a frame boundary (0 for the whole segment). */
  readonly from?: number;
  /** Stop at this file offset (a frame boundary) instead of the end of the file. */
  readonly until?: number;
  /** Whether this is the log's last segment, where a torn tail is recognised. */
  readonly last: boolean;
  /** Read size; at least one maximal frame. Default 4 MiB. */
  readonly chunkBytes?: number;
  /** Give each chunk its own buffer (for handing chunks to workers). Default false. */
  readonly freshBuffers?: boolean;
}

export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
const MIN_CHUNK_BYTES = MAX_FRAME_RECORD_BYTES + FRAME_OVERHEAD_BYTES;

/**
 * Streams the frames of one segment: `frames` chunks, then exactly one `end`. The file size is
 * taken when the segment is opened, so a segment that a live gateway is appending to is read up
 * to that point; a frame still being written there shows as a torn tail, and the zeros the writer
 * preallocated after the last frame as the end of the segment.
 */
export async function* readFrames(fs: StoreFs, segment: LogSegment, options: ReadFramesOptions): AsyncGenerator<FrameChunk | SegmentEnd> {
  const chunkBytes = Math.max(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, MIN_CHUNK_BYTES);
  const fresh = options.freshBuffers ?? false;
  const file = await fs.openReadOnly(segment.path);
  try {
    const fileSize = (await file.stat()).size;
    let size = options.until === undefined ? fileSize : Math.min(options.until, fileSize);
    let buffer = new Uint8Array(chunkBytes);
    // buffer[0, have) holds the file's bytes from offset `base`; `at` is the parse cursor in it.
    let base = options.from ?? 0;
    let have = 0;
    let at = 0;
    /** Where the last whole frame read starts, for {@link classifyTail}. */
    let previous: number | null = null;
    for (;;) {
      if (base + have < size && have < buffer.length) {
        const n = await file.read(buffer, have, Math.min(buffer.length - have, size - base - have), base + have);
        // The file shrank under us (the store cut an unfinished batch): what was read is all there is.
        if (n === 0) size = base + have;
        have += n;
      }
      const records: Uint8Array[] = [];
      const offsets: number[] = [];
      const first = at;
      let found: FrameAt;
      for (;;) {
        found = frameAt(buffer, at, have);
        if (found.status !== 'ok') break;
        records.push(found.record);
        offsets.push(base + at);
        previous = base + at;
        at = found.next;
      }
      const more = found.status === 'incomplete' && base + have < size;
      // A partial frame is carried to the front of the next buffer and read on. With fresh
      // buffers it is copied out first: the consumer may hand this chunk's buffer away.
      let next = buffer;
      if (more && fresh) {
        next = new Uint8Array(chunkBytes);
        next.set(buffer.subarray(at, have), 0);
      }
      if (records.length > 0) yield { type: 'frames', bytes: buffer.subarray(first, at), start: base + first, records, offsets };
      if (more) {
        if (!fresh) buffer.copyWithin(0, at, have);
        buffer = next;
        base += at;
        have -= at;
        at = 0;
        continue;
      }
      const offset = base + at;
      if (offset === size) {
        yield { type: 'end', size, end: offset, damage: null };
        return;
      }
      const tail = options.last ? await classifyTail(fs, segment.path, found, base, size, offset, previous) : 'damage';
      if (tail === 'end') {
        yield { type: 'end', size, end: offset, damage: null };
        return;
      }
      const torn = tail === 'damage' ? null : tail.reason;
      const tornBytes = tail === 'damage' ? 0 : tail.bytes;
      const damage: FrameDamage =
        found.status === 'bad-length'
          ? { offset, problem: 'bad-length', declaredLength: found.length, torn, tornBytes }
          : { offset, problem: found.status, torn, tornBytes };
      yield { type: 'end', size, end: offset, damage };
      return;
    }
  } finally {
    await file.close();
  }
}

/**
 * RFC 9162 §2.1.1 leaf hash, SHA-256(0x00 ‖ record), of a record handed out by
 * {@link readFrames}, computed without copying the record: the byte just before it is the last
 * byte of its frame header, which has been read already, so it is overwritten with the `0x00`
 * leaf prefix and the hash runs over the view from there. The record's own bytes are untouched.
 */
export function frameLeafHash(record: Uint8Array): Uint8Array {
  if (record.byteOffset === 0) throw new TollgateError('TG_ERR_INTERNAL', 'frameLeafHash needs a record read by readFrames');
  const prefixed = new Uint8Array(record.buffer, record.byteOffset - 1, record.length + 1);
  prefixed[0] = 0x00;
  return hash('sha256', prefixed, 'buffer');
}
