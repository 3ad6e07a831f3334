import { mkdtempSync, readdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { generateSignerKey, openFileStore, parseSignerKey } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { manualClock } from '../../src/core/index.js';
import { sampleEvent } from './audit-records.js';

/**
 * Real audit directories for the verify, query and CLI tests: written by the real file store,
 * then read and damaged byte by byte through the helpers below (which parse the segment framing
 * themselves, so that a test never trusts the code it checks).
 */

export interface BuiltLog {
  readonly dir: string;
  readonly logId: string;
  readonly signerKey: string;
  readonly verifierKey: string;
  readonly size: number;
}

export interface BuildLogOptions {
  readonly logId?: string;
  readonly records: number;
  /** Sizes after which a checkpoint is signed; the store also signs one when it closes. */
  readonly checkpointsAt?: readonly number[];
  readonly segmentSize?: number;
  readonly event?: (i: number) => AuditEvent;
  readonly signerKey?: string;
  readonly dir?: string;
  /** Time of record 0, in ms since the epoch; each next record is 1 ms later. Default: 2025-01-01. */
  readonly startMs?: number;
}

export async function buildLog(options: BuildLogOptions): Promise<BuiltLog> {
  const logId = options.logId ?? 'alpha.example/audit';
  const keys = options.signerKey === undefined ? generateSignerKey(logId) : { signerKey: options.signerKey, verifierKey: parseSignerKey(options.signerKey).verifierKey };
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tollgate-audit-'));
  const clock = manualClock(options.startMs ?? Date.UTC(2025, 0, 1));
  const store = await openFileStore({
    dir,
    logId,
    signer: parseSignerKey(keys.signerKey),
    segmentSize: options.segmentSize ?? 4096,
    // Checkpoints only when the test asks (and on close).
    checkpointIntervalMs: 3_600_000,
    clock,
  });
  const event = options.event ?? sampleEvent;
  const stops = [...(options.checkpointsAt ?? [])].sort((a, b) => a - b);
  try {
    for (let i = 0; i < options.records; i++) {
      await store.append(event(i));
      clock.advance(1);
      if (stops.includes(i + 1)) await store.checkpointNow();
    }
  } finally {
    await store.close();
  }
  return { dir, logId, signerKey: keys.signerKey, verifierKey: keys.verifierKey, size: options.records };
}

export interface FrameLocation {
  readonly seq: number;
  /** The segment file. */
  readonly path: string;
  readonly offset: number;
  /** Length of the record (the frame is 8 bytes longer). */
  readonly length: number;
}

export function segmentPaths(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /^\d{20}\.seg$/.test(name))
    .sort()
    .map((name) => join(dir, name));
}

/** Every frame of the log, by position (the seq it should have). */
export function framesOf(dir: string): FrameLocation[] {
  const frames: FrameLocation[] = [];
  for (const path of segmentPaths(dir)) {
    const bytes = readFileSync(path);
    for (let at = 0; at + 8 <= bytes.length; ) {
      const length = bytes.readUInt32BE(at);
      // A zero length starts the preallocated zeros of a live segment: no frame is empty.
      if (length === 0 || at + 8 + length > bytes.length) break;
      frames.push({ seq: frames.length, path, offset: at, length });
      at += 8 + length;
    }
  }
  return frames;
}

export function frameAtSeq(dir: string, seq: number): FrameLocation {
  const frame = framesOf(dir)[seq];
  if (frame === undefined) throw new Error(`no frame ${seq} in ${dir}`);
  return frame;
}

export function recordBytes(dir: string, seq: number): Buffer {
  const frame = frameAtSeq(dir, seq);
  return readFileSync(frame.path).subarray(frame.offset + 4, frame.offset + 4 + frame.length);
}

/** A whole frame around `record`, with its correct CRC. */
export function frameOf(record: Uint8Array): Buffer {
  const frame = Buffer.alloc(record.length + 8);
  frame.writeUInt32BE(record.length, 0);
  frame.set(record, 4);
  frame.writeUInt32BE(crc32(record) >>> 0, 4 + record.length);
  return frame;
}

/** Replaces bytes `[from, to)` of a file with `bytes`. */
export function splice(path: string, from: number, to: number, bytes: Uint8Array): void {
  const old = readFileSync(path);
  writeFileSync(path, Buffer.concat([old.subarray(0, from), bytes, old.subarray(to)]));
}

/** Replaces the frame of `seq` by `frames` (none: deletes it). */
export function replaceFrame(dir: string, seq: number, ...frames: Uint8Array[]): void {
  const frame = frameAtSeq(dir, seq);
  splice(frame.path, frame.offset, frame.offset + 8 + frame.length, Buffer.concat(frames));
}

/** Rewrites record `seq` through `edit` (on its text) and gives the frame a correct CRC. */
export function editRecord(dir: string, seq: number, edit: (json: string) => string): void {
  const before = recordBytes(dir, seq).toString('utf8');
  const after = edit(before);
  if (after === before) throw new Error(`the edit left record ${seq} unchanged`);
  const edited = Buffer.from(after, 'utf8');
  replaceFrame(dir, seq, frameOf(edited));
}

export const HISTORY_SEPARATOR = 0x1e;

/** The signed notes of the `checkpoints` history, in order. */
export function historyNotes(dir: string): string[] {
  const bytes = readFileSync(join(dir, 'checkpoints'));
  return bytes
    .toString('utf8')
    .split(String.fromCharCode(HISTORY_SEPARATOR))
    .filter((note) => note !== '');
}

export function writeHistory(dir: string, notes: readonly string[]): void {
  writeFileSync(join(dir, 'checkpoints'), notes.map((note) => String.fromCharCode(HISTORY_SEPARATOR) + note).join(''));
}

export function checkpointNote(dir: string): string {
  return readFileSync(join(dir, 'checkpoint'), 'utf8');
}

/** Cuts the log so that it ends just before record `seq` (plus `partial` bytes of its frame). */
export function cutAt(dir: string, seq: number, partial = 0): void {
  const frame = frameAtSeq(dir, seq);
  truncateSync(frame.path, frame.offset + partial);
  for (const path of segmentPaths(dir)) if (path > frame.path) unlinkSync(path);
}
