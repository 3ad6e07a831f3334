import { join } from 'node:path';

/**
 * The names of the files in an audit directory (DESIGN.md §2 "Audit log"):
 *
 * - `NNNNNNNNNNNNNNNNNNNN.seg`: segments of framed records; the name is the seq of the segment's
 *   first record, zero-padded to 20 decimal digits so that names sort in log order.
 * - `checkpoint`: the latest signed checkpoint note, replaced atomically.
 * - `checkpoints`: every signed checkpoint note, one frame each (the segment framing).
 * - `lock`: the pid of the process that writes the log.
 * - `*.tmp`: a file being prepared for an atomic rename; left-overs of a crash are removed on open.
 */
export const SEGMENT_SUFFIX = '.seg';
export const CHECKPOINT_FILE = 'checkpoint';
export const CHECKPOINT_HISTORY_FILE = 'checkpoints';
export const TEMP_SUFFIX = '.tmp';

const SEGMENT_NAME = /^(\d{20})\.seg$/;

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** The first seq a segment file name stands for, or null when the name is not a segment's. */
export function parseSegmentName(name: string): number | null {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return null;
  const seq = Number(match[1]);
  return Number.isSafeInteger(seq) ? seq : null;
}

export interface SegmentEntry {
  readonly firstSeq: number;
  readonly path: string;
}

/** The segments among the names of a directory, in log order. */
export function segmentsOf(dir: string, names: readonly string[]): SegmentEntry[] {
  const segments: SegmentEntry[] = [];
  for (const name of names) {
    const firstSeq = parseSegmentName(name);
    if (firstSeq !== null) segments.push({ firstSeq, path: join(dir, name) });
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}
