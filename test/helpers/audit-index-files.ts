import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { QueryOptions, SessionSummary } from '../../src/audit/index.js';
import { framesOf, recordBytes } from './audit-files.js';

/**
 * Query index files as someone who can write the audit directory edits them: the file layout is
 * parsed and written here from its description (src/audit/index-file.ts), not through the code
 * under test, and the reference answers come from reading every record of the segments.
 */

export interface IndexColumns {
  firstSeq: number;
  coveredBytes: number;
  ino: number;
  dev: number;
  lastLeaf: Buffer;
  times: number[];
  offsets: number[];
  subjects: number[];
  emails: number[];
  resources: number[];
  sessions: number[];
  kinds: number[];
  effects: number[];
  strings: string[];
}

const V2_HEADER = 96;

/** Parses a current (TGAIDX02) index file, ignoring its MAC. */
export function readIndexFile(file: Buffer): IndexColumns {
  if (file.subarray(0, 8).toString('latin1') !== 'TGAIDX02') throw new Error('not a TGAIDX02 index file');
  const n = file.readUInt32LE(12);
  const stringCount = file.readUInt32LE(48);
  let at = V2_HEADER;
  const column = (width: number, read: (offset: number) => number) => {
    const values = Array.from({ length: n }, (_, i) => read(at + i * width));
    at += width * n;
    return values;
  };
  const times = column(8, (o) => file.readDoubleLE(o));
  const offsets = column(4, (o) => file.readUInt32LE(o));
  const subjects = column(4, (o) => file.readUInt32LE(o));
  const emails = column(4, (o) => file.readUInt32LE(o));
  const resources = column(4, (o) => file.readUInt32LE(o));
  const sessions = column(4, (o) => file.readUInt32LE(o));
  const kinds = column(1, (o) => file[o]!);
  const effects = column(1, (o) => file[o]!);
  const strings: string[] = [];
  for (let i = 0; i < stringCount; i++) {
    const length = file.readUInt32LE(at);
    strings.push(file.subarray(at + 4, at + 4 + length).toString('utf8'));
    at += 4 + length;
  }
  return {
    firstSeq: file.readDoubleLE(16),
    coveredBytes: file.readDoubleLE(24),
    ino: file.readDoubleLE(32),
    dev: file.readDoubleLE(40),
    lastLeaf: Buffer.from(file.subarray(64, 96)),
    times,
    offsets,
    subjects,
    emails,
    resources,
    sessions,
    kinds,
    effects,
    strings,
  };
}

function body(c: IndexColumns): { columns: Buffer; strings: Buffer } {
  const n = c.times.length;
  const columns = Buffer.alloc(30 * n);
  let at = 0;
  for (const t of c.times) at = columns.writeDoubleLE(t, at);
  for (const col of [c.offsets, c.subjects, c.emails, c.resources, c.sessions]) for (const v of col) at = columns.writeUInt32LE(v, at);
  for (const col of [c.kinds, c.effects]) for (const v of col) at = columns.writeUInt8(v, at);
  const strings = Buffer.concat(c.strings.map((s) => {
    const text = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(text.length);
    return Buffer.concat([length, text]);
  }));
  return { columns, strings };
}

/** A TGAIDX02 file of these columns, its MAC made under `macKey` (a forger's own key). */
export function writeIndexFile(c: IndexColumns, macKey: Buffer): Buffer {
  const { columns, strings } = body(c);
  const header = Buffer.alloc(V2_HEADER);
  header.write('TGAIDX02', 0, 'latin1');
  header.writeUInt32LE(2, 8);
  header.writeUInt32LE(c.times.length, 12);
  header.writeDoubleLE(c.firstSeq, 16);
  header.writeDoubleLE(c.coveredBytes, 24);
  header.writeDoubleLE(c.ino, 32);
  header.writeDoubleLE(c.dev, 40);
  header.writeUInt32LE(c.strings.length, 48);
  header.writeUInt32LE(strings.length, 52);
  header.writeUInt32LE(0x01020304, 56);
  c.lastLeaf.copy(header, 64);
  const unsigned = Buffer.concat([header, columns, strings]);
  return Buffer.concat([unsigned, createHmac('sha256', macKey).update(unsigned).digest()]);
}

/**
 * The same columns as a file of the earlier format (TGAIDX01: a 64-byte header with the last
 * frame's CRC, and a plain CRC-32 trailer), which the earlier reader accepted from anyone.
 */
export function writeIndexFileV1(c: IndexColumns, tailCrc: number): Buffer {
  const { columns, strings } = body(c);
  const header = Buffer.alloc(64);
  header.write('TGAIDX01', 0, 'latin1');
  header.writeUInt32LE(1, 8);
  header.writeUInt32LE(c.times.length, 12);
  header.writeDoubleLE(c.firstSeq, 16);
  header.writeDoubleLE(c.coveredBytes, 24);
  header.writeDoubleLE(c.ino, 32);
  header.writeDoubleLE(c.dev, 40);
  header.writeUInt32LE(tailCrc, 48);
  header.writeUInt32LE(c.strings.length, 52);
  header.writeUInt32LE(strings.length, 56);
  header.writeUInt32LE(0x01020304, 60);
  const unsigned = Buffer.concat([header, columns, strings]);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(crc32(unsigned) >>> 0);
  return Buffer.concat([unsigned, trailer]);
}

/** Drops row `row` from every column, as if its record were not in the segment. */
export function withoutRow(c: IndexColumns, row: number): IndexColumns {
  const drop = (values: number[]) => values.filter((_, i) => i !== row);
  return {
    ...c,
    times: drop(c.times),
    offsets: drop(c.offsets),
    subjects: drop(c.subjects),
    emails: drop(c.emails),
    resources: drop(c.resources),
    sessions: drop(c.sessions),
    kinds: drop(c.kinds),
    effects: drop(c.effects),
  };
}

export interface ScannedRecord {
  readonly seq: number;
  readonly record: Record<string, any>;
  readonly json: string;
}

/** Every record, read straight from the segments. */
export function scanRecords(dir: string): ScannedRecord[] {
  return framesOf(dir).map(({ seq }) => {
    const json = recordBytes(dir, seq).toString('utf8');
    return { seq, record: JSON.parse(json) as Record<string, any>, json };
  });
}

function isUser(record: Record<string, any>, user: string | undefined): boolean {
  if (user === undefined) return true;
  const p = record.principal as { subject: string; email?: string } | undefined;
  return p?.subject === user || p?.email?.toLowerCase() === user.toLowerCase();
}

function inTime(record: Record<string, any>, since: number | undefined, until: number | undefined): boolean {
  const time = Date.parse(record.time as string);
  return !(since !== undefined && time < since) && !(until !== undefined && time >= until);
}

/** The seqs a query must return (newest first), by the filter semantics written out. */
export function expectedSeqs(rows: readonly ScannedRecord[], q: QueryOptions): number[] {
  const kinds = q.kind === undefined ? null : typeof q.kind === 'string' ? [q.kind] : q.kind;
  return rows
    .filter(({ record, json }) => {
      if (!isUser(record, q.user)) return false;
      if (q.resource !== undefined && record.resource !== q.resource) return false;
      if (q.effect !== undefined && record.decision?.effect !== q.effect) return false;
      if (kinds !== null && !kinds.some((k) => record.kind === k || String(record.kind).startsWith(`${k}.`))) return false;
      if (q.sessionId !== undefined && record.session_id !== q.sessionId) return false;
      if (!inTime(record, q.since, q.until)) return false;
      if (q.text !== undefined && !json.toLowerCase().includes(q.text.toLowerCase())) return false;
      return true;
    })
    .map((row) => row.seq)
    .reverse();
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The sessions a session listing must return, most recently active first. */
export function expectedSessions(rows: readonly ScannedRecord[], q: { user?: string; resource?: string; since?: number; until?: number } = {}): SessionSummary[] {
  const groups = new Map<string, Mutable<SessionSummary> & { resources: string[] }>();
  for (const { seq, record } of rows) {
    if (!isUser(record, q.user) || (q.resource !== undefined && record.resource !== q.resource) || !inTime(record, q.since, q.until)) continue;
    const id = record.session_id as string | undefined;
    if (id === undefined) continue;
    const p = record.principal as { subject: string; email?: string } | undefined;
    const g = groups.get(id) ?? {
      sessionId: id,
      firstSeq: seq,
      lastSeq: seq,
      firstTime: record.time as string,
      lastTime: record.time as string,
      principal: p === undefined ? null : { subject: p.subject, ...(p.email === undefined ? {} : { email: p.email }) },
      resources: [],
      records: 0,
      requests: 0,
      statements: 0,
      denials: 0,
    };
    g.lastSeq = seq;
    g.lastTime = record.time as string;
    g.records += 1;
    if (record.kind === 'http.request' || record.kind === 'ws.open') g.requests += 1;
    if (record.kind === 'pg.query') g.statements += 1;
    if (record.decision?.effect === 'deny') g.denials += 1;
    if (record.resource !== undefined && !g.resources.includes(record.resource as string)) g.resources.push(record.resource as string);
    groups.set(id, g);
  }
  return [...groups.values()].map((g) => ({ ...g, resources: [...g.resources].sort() })).sort((a, b) => b.lastSeq - a.lastSeq);
}
