import { basename } from 'node:path';
import { TollgateError } from '../../core/index.js';
import { bytesToHex, equalBytes } from '../bytes.js';
import type { Checkpoint } from '../note.js';
import { createChainVerifier } from '../verify-chain.js';
import type { ChainProblem, ChainVerifier } from '../verify-chain.js';
import { CompactRange } from '../merkle.js';
import { fastLeafHash, fastNodeHash } from './fast-hash.js';
import type { StoreFs } from './file-io.js';
import { FRAME_OVERHEAD_BYTES, frameAt, MAX_FRAME_RECORD_BYTES } from './frame.js';
import { UNFINISHED_TAIL_MAX_BYTES } from './in-flight.js';
import { segmentName } from './layout.js';
import { tornBySectorZeros, unfinishedWrites } from './unfinished-tail.js';
import type { SegmentEntry } from './layout.js';

/** Why the end of the last segment was cut on open. */
export type TornTailReason =
  /** The file ends inside a frame: a write that never finished. */
  | 'incomplete-frame'
  /**
   * The last frame (the last one before the end of the file or its preallocated zeros) fails its
   * CRC because its bytes are zeros from a sector boundary to its end: a write whose pages did
   * not all reach the disk. A last frame that fails its CRC otherwise is damage.
   */
  | 'crc-mismatch'
  /**
   * Batch writes that were on their way together and did not all finish: zeros where a write
   * never landed, with frames written after them (see {@link unfinishedWrites}).
   */
  | 'unfinished-writes'
  /**
   * The rest of a cut an earlier `audit.recovered` record announced: the store writes that record
   * where the torn bytes begin and cuts the rest once it is durable, and a crash came in between.
   */
  | 'cut-interrupted';

/** A torn end of the last segment: why, and how many bytes from where it starts. */
export interface TornWrite {
  readonly reason: TornTailReason;
  readonly bytes: number;
  /** With `unfinished-writes`: whole, correct frames after the gap, cut with it (never acknowledged). */
  readonly frames?: number;
}

export interface SegmentCut {
  /** The segment's file name. */
  readonly file: string;
  /** Byte offset in the segment where the torn bytes start (the end of the last whole frame). */
  readonly offset: number;
  /** How many torn bytes were removed (preallocated zeros after them are not counted). */
  readonly bytes: number;
  readonly reason: TornTailReason;
  /** The seq the torn frame would have had. */
  readonly seq: number;
  /** With `unfinished-writes`: whole, correct frames after the gap, cut with it (never acknowledged). */
  readonly frames?: number;
}

export interface RecoveredLog {
  /** Records in the log. */
  readonly size: number;
  /** Leaf hash of record `size − 1`, or null for an empty log. */
  readonly lastLeafHash: Uint8Array | null;
  readonly range: CompactRange;
  /** The last segment and the end of its last whole frame; null when there is no segment yet. */
  readonly tail: { readonly path: string; readonly firstSeq: number; readonly bytes: number } | null;
  readonly segmentCount: number;
  readonly totalBytes: number;
  readonly cut: SegmentCut | null;
}

/** Read size of the scan; a frame is at most 64 KiB + 8, so any frame fits after a shift. */
const SCAN_BUFFER_BYTES = 4 * 1024 * 1024;
/** Read size when checking that a preallocated tail is all zeros. */
const ZERO_SCAN_BYTES = 1024 * 1024;

interface Position {
  readonly segment: string;
  readonly offset: number;
}

function tamperedAt(seq: number, reason: string, detail: string, position: Position | undefined): TollgateError {
  const where = position === undefined ? '' : ` (${position.segment}, byte ${position.offset})`;
  return new TollgateError(
    'TG_ERR_AUDIT_TAMPERED',
    `the audit log fails verification at seq ${seq}${where}: ${reason}: ${detail}. Nothing was changed; run "tollgate audit verify" on the directory for the full report, then move the directory aside and start a new log`,
    { details: { seq, reason, ...(position ?? {}) } },
  );
}

/**
 * Scans every segment in order, streaming through one fixed buffer, and rebuilds the writer's
 * state: size, last leaf hash and Merkle right edge.
 *
 * The records the latest signed checkpoint covers are checked by framing, CRC and the Merkle
 * root: the signed root authenticates every byte of them, so they are hashed (fast, on
 * `node:crypto`) without being parsed. The records after it, which no signature covers yet, go
 * through the pure chain verifier (canonical form, log id, seq, prev). When the root does not
 * match, a second, full pass with the chain verifier names the first bad seq.
 *
 * Zeros after the last frame of the last segment are its preallocated space: the end of the log
 * (see {@link classifyTail}). Only a torn end of the last segment may be cut (see
 * {@link TornTailReason}), and only when it lies beyond the signed size; anything else throws `TG_ERR_AUDIT_TAMPERED`. The scan changes
 * nothing: the writer puts the `audit.recovered` record where the torn bytes begin and only then
 * cuts what is left of them, so a cut is never made without its record.
 */
export async function recoverSegments(fs: StoreFs, segments: readonly SegmentEntry[], logId: string, checkpoint: Checkpoint | null): Promise<RecoveredLog> {
  try {
    return await scan(fs, segments, logId, checkpoint, 'fast');
  } catch (error) {
    if (!(error instanceof RootMismatch)) throw error;
    await scan(fs, segments, logId, checkpoint, 'full');
    throw tamperedAt(
      error.size - 1,
      'checkpoint-mismatch',
      `the first ${error.size} records do not hash to the root the latest signed checkpoint signs: records before seq ${error.size} were altered`,
      undefined,
    );
  }
}

class RootMismatch extends Error {
  constructor(readonly size: number) {
    super('root mismatch');
  }
}

async function scan(fs: StoreFs, segments: readonly SegmentEntry[], logId: string, checkpoint: Checkpoint | null, mode: 'fast' | 'full'): Promise<RecoveredLog> {
  const signedSize = checkpoint?.size ?? 0;
  const range = new CompactRange(fastNodeHash);
  let lastLeaf: Uint8Array | null = null;
  let verifier: ChainVerifier<Position> | null = mode === 'full' || signedSize === 0 ? createChainVerifier<Position>({ logId, hashLeaf: fastLeafHash, hashNode: fastNodeHash }) : null;
  let totalBytes = 0;
  let cut: SegmentCut | null = null;
  let tail: RecoveredLog['tail'] = null;
  const buffer = Buffer.allocUnsafe(SCAN_BUFFER_BYTES);

  const accept = (record: Uint8Array, position: Position): void => {
    if (verifier === null) {
      const leaf = fastLeafHash(record);
      range.append(leaf);
      lastLeaf = leaf;
      if (range.size === signedSize) {
        if (!equalBytes(range.root(), checkpoint!.rootHash)) throw new RootMismatch(signedSize);
        verifier = createChainVerifier<Position>({
          logId,
          hashLeaf: fastLeafHash,
          hashNode: fastNodeHash,
          resume: { size: range.size, lastLeafHash: bytesToHex(leaf), range: range.toJSON() },
        });
      }
      return;
    }
    const step = verifier.push(record, position);
    if (!step.ok) throw tamperedAt(step.seq, step.reason, step.detail, step.position);
    range.append(step.leafHash);
    lastLeaf = step.leafHash;
    if (mode === 'full' && checkpoint !== null && range.size === signedSize) {
      const checked = verifier.checkCheckpoint(checkpoint);
      if (!checked.ok) throw tamperedAt(checked.seq, checked.reason, checked.detail, undefined);
    }
  };

  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    const name = basename(segment.path);
    const isLast = index === segments.length - 1;
    if (segment.firstSeq !== range.size) {
      const problem: ChainProblem = segment.firstSeq > range.size ? 'seq-gap' : 'seq-duplicate';
      throw tamperedAt(range.size, problem, `segment ${name} should be ${segmentName(range.size)}: the segments do not follow each other`, { segment: name, offset: 0 });
    }
    const file = await fs.openReadOnly(segment.path);
    let end = -1;
    try {
      const size = (await file.stat()).size;
      // `base` is the file offset of buffer[0]; buffer[0, have) holds file bytes; `at` is the parse cursor.
      let base = 0;
      let have = 0;
      let at = 0;
      let previous: number | null = null;
      for (;;) {
        const found = frameAt(buffer, at, have);
        if (found.status === 'ok') {
          previous = base + at;
          accept(found.record, { segment: name, offset: previous });
          at = found.next;
          continue;
        }
        if (found.status === 'incomplete' && base + have < size) {
          buffer.copy(buffer, 0, at, have);
          base += at;
          have -= at;
          at = 0;
          const n = await file.read(buffer, have, buffer.length - have, base + have);
          if (n === 0) throw tamperedAt(range.size, 'invalid-record', `segment ${name} shrank while it was read`, { segment: name, offset: base });
          have += n;
          continue;
        }
        const offset = base + at;
        if (offset === size) break;
        const seq = range.size;
        const position = { segment: name, offset };
        const tail = isLast ? await classifyTail(fs, segment.path, found, base, size, offset, previous) : 'damage';
        if (tail === 'end') {
          end = offset;
          break;
        }
        if (tail === 'damage') {
          const what =
            found.status === 'incomplete'
              ? `the segment ends inside a frame (${size - offset} bytes left)`
              : found.status === 'bad-length'
                ? `the frame declares ${found.length} bytes (1 to ${MAX_FRAME_RECORD_BYTES} allowed)`
                : 'the frame fails its CRC-32';
          throw tamperedAt(seq, 'invalid-record', isLast ? what : `${what}, in a segment that is not the last`, position);
        }
        if (seq < signedSize) {
          throw tamperedAt(seq, 'invalid-record', `the frame of a record the signed checkpoint covers (size ${signedSize}) is damaged (${tail.reason}): records were removed or altered below the signed size`, position);
        }
        cut = { file: name, offset, bytes: tail.bytes, reason: tail.reason, seq, ...(tail.frames === undefined ? {} : { frames: tail.frames }) };
        break;
      }
      if (end < 0) end = cut === null ? size : cut.offset;
    } finally {
      await file.close();
    }
    totalBytes += end;
    if (isLast) tail = { path: segment.path, firstSeq: segment.firstSeq, bytes: end };
  }

  if (range.size < signedSize) {
    throw tamperedAt(range.size, 'seq-gap', `the log holds ${range.size} records but the latest signed checkpoint covers ${signedSize}: records were removed (truncated below the signed size)`, undefined);
  }
  return { size: range.size, lastLeafHash: lastLeaf, range, tail, segmentCount: segments.length, totalBytes, cut };
}

/**
 * What the bytes at `offset` of the last segment are, where no whole, correct frame starts
 * (`found`, read from a buffer holding the file from `base`):
 *
 * - `'end'`: zeros from there to the end of the file. The writer preallocates segment space with
 *   zeros ahead of its writes, and a record is never empty, so a zero length word at a frame
 *   boundary followed by nothing but zeros is the end of the log, not damage.
 * - a {@link TornWrite}: what interrupted writes leave, which the store cuts (and records) on
 *   its next open: a frame cut short by the end of the file, a last frame that fails its CRC
 *   because it is zeros from a sector boundary to its end, with nothing but zeros (or nothing)
 *   after it, or the batches that were in flight together
 *   with a gap of zeros where one of them did not land (no further from the end than those
 *   batches reach, {@link UNFINISHED_TAIL_MAX_BYTES}), or the rest of a cut that the frame
 *   before it (at `previous`, when known) announced.
 * - `'damage'`: anything else, such as altered bytes in a frame, the last one included.
 */
export async function classifyTail(
  fs: StoreFs,
  path: string,
  found: Exclude<ReturnType<typeof frameAt>, { status: 'ok' }>,
  base: number,
  size: number,
  offset: number,
  previous: number | null,
): Promise<TornWrite | 'end' | 'damage'> {
  if (found.status === 'incomplete') return { reason: 'incomplete-frame', bytes: size - offset };
  if (found.status === 'bad-crc') {
    const next = base + found.next;
    if ((next === size || (await allZero(fs, path, next, size))) && (await tornFrame(fs, path, offset, next))) return { reason: 'crc-mismatch', bytes: next - offset };
  } else if (found.length === 0 && (await allZero(fs, path, offset, size))) {
    return 'end';
  }
  if (await completedSince(fs, path, offset)) return 'end';
  return (await unfinishedTail(fs, path, offset, size)) ?? (await interruptedCut(fs, path, previous, offset, size)) ?? 'damage';
}

/**
 * The bytes at `offset` as the rest of a cut announced by the record just before them: an
 * `audit.recovered` record of this segment written where that cut began (its `offset` is the
 * record's own), with everything from `offset` to where the announced cut ends being what it
 * did not cut yet, and only zeros after that. Anything else is null.
 */
async function interruptedCut(fs: StoreFs, path: string, previous: number | null, offset: number, size: number): Promise<TornWrite | null> {
  if (previous === null) return null;
  const frame = Buffer.allocUnsafe(offset - previous);
  const file = await fs.openReadOnly(path);
  try {
    if ((await file.read(frame, 0, frame.length, previous)) !== frame.length) return null;
  } finally {
    await file.close();
  }
  const found = frameAt(frame, 0, frame.length);
  if (found.status !== 'ok') return null;
  let record: { kind?: unknown; data?: { file?: unknown; offset?: unknown; bytes?: unknown } };
  try {
    record = JSON.parse(Buffer.from(found.record).toString('utf8')) as typeof record;
  } catch {
    return null;
  }
  const cut = record.data;
  if (record.kind !== 'audit.recovered' || cut?.file !== basename(path) || cut.offset !== previous || !Number.isSafeInteger(cut.bytes)) return null;
  const cutEnd = previous + (cut.bytes as number);
  if (cutEnd <= offset) return null;
  if (cutEnd < size && !(await allZero(fs, path, cutEnd, size))) return null;
  return { reason: 'cut-interrupted', bytes: Math.min(cutEnd, size) - offset };
}

/** Whether the whole frame at `[offset, next)` that fails its CRC was cut short by a write (see {@link tornBySectorZeros}). */
async function tornFrame(fs: StoreFs, path: string, offset: number, next: number): Promise<boolean> {
  const frame = Buffer.allocUnsafe(next - offset);
  const file = await fs.openReadOnly(path);
  try {
    for (let have = 0; have < frame.length; ) {
      const n = await file.read(frame, have, frame.length - have, offset + have);
      if (n === 0) return false;
      have += n;
    }
  } finally {
    await file.close();
  }
  return tornBySectorZeros(frame, offset);
}

/** The tail from `offset` as unfinished batch writes, or null when it is not what they leave. */
async function unfinishedTail(fs: StoreFs, path: string, offset: number, size: number): Promise<TornWrite | null> {
  const length = Math.min(size - offset, UNFINISHED_TAIL_MAX_BYTES);
  if (offset + length < size && !(await allZero(fs, path, offset + length, size))) return null;
  const bytes = Buffer.allocUnsafe(length);
  const file = await fs.openReadOnly(path);
  try {
    for (let have = 0; have < length; ) {
      const n = await file.read(bytes, have, length - have, offset + have);
      if (n === 0) return null;
      have += n;
    }
  } finally {
    await file.close();
  }
  const found = unfinishedWrites(bytes, offset, offset + length === size);
  return found === null ? null : { reason: 'unfinished-writes', bytes: found.bytes, frames: found.frames };
}

/** Re-reads of a suspect frame before calling it damage, and the pause between them. */
const LIVE_REREADS = 3;
const LIVE_REREAD_PAUSE_MS = 2;

/**
 * Whether a whole, correct frame now starts at `offset`. A reader of a live log can see a batch
 * half copied into preallocated space (a zero length word with the batch's later bytes already
 * there, or a frame whose tail is still zeros); the writer fills the log strictly in order and
 * never rewrites a frame, so a frame that completes on a second look was a write in progress and
 * the reader's snapshot of the log ends before it. Damage stays damage however often it is read.
 */
async function completedSince(fs: StoreFs, path: string, offset: number): Promise<boolean> {
  const file = await fs.openReadOnly(path);
  try {
    const buf = Buffer.allocUnsafe(MAX_FRAME_RECORD_BYTES + FRAME_OVERHEAD_BYTES);
    for (let attempt = 0; attempt < LIVE_REREADS; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, LIVE_REREAD_PAUSE_MS));
      const n = await file.read(buf, 0, buf.length, offset);
      if (frameAt(buf, 0, n).status === 'ok') return true;
    }
    return false;
  } finally {
    await file.close();
  }
}

async function allZero(fs: StoreFs, path: string, from: number, to: number): Promise<boolean> {
  const file = await fs.openReadOnly(path);
  try {
    const chunk = Buffer.allocUnsafe(Math.min(to - from, ZERO_SCAN_BYTES));
    for (let at = from; at < to; ) {
      const n = await file.read(chunk, 0, Math.min(chunk.length, to - at), at);
      if (n === 0) return false;
      for (let i = 0; i < n; i++) if (chunk[i] !== 0) return false;
      at += n;
    }
    return true;
  } finally {
    await file.close();
  }
}
