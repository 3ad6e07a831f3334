import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexSecretFromSignerKey, listSessions, parseVerifierKey, queryLog, verifyLog } from '../../../src/audit/index.js';
import type { AuditEvent, AuditIndexOptions, QueryOptions } from '../../../src/audit/index.js';
import { buildLog, segmentPaths } from '../../helpers/audit-files.js';
import type { BuiltLog } from '../../helpers/audit-files.js';
import { expectedSeqs, expectedSessions, readIndexFile, scanRecords, withoutRow, writeIndexFile, writeIndexFileV1 } from '../../helpers/audit-index-files.js';
import type { IndexColumns } from '../../helpers/audit-index-files.js';

// Regression for the finding "the audit query index can hide records from reviewers": someone who
// can write the audit directory, but holds no secret, edits index files so that a filtered
// query or the session list leaves a record out while `audit verify` still passes. Every query
// must still answer exactly what a full scan of the segments answers.

const START = Date.UTC(2025, 0, 1);
const USERS = ['ana@example.com', 'ben@example.com', 'chen@example.com'];

function event(i: number, users = USERS): AuditEvent {
  const principal = { subject: `sub-${i % users.length}`, email: users[i % users.length]!, groups: [] };
  const decision = i % 5 === 1 ? { effect: 'deny' as const, rule: null, reason: 'no-matching-allow' } : { effect: 'allow' as const, rule: 'r', reason: 'ok' };
  return { kind: i % 2 === 0 ? 'http.request' : 'pg.query', principal, resource: i % 4 === 0 ? 'shop' : 'app', session_id: `s-${i % 7}`, decision, data: { n: i } };
}

const QUERIES: QueryOptions[] = [
  { effect: 'deny' },
  { effect: 'allow' },
  { user: 'ana@example.com' },
  { user: 'sub-1' },
  { resource: 'shop' },
  { since: START + 40, until: START + 120 },
];

let log: BuiltLog;
let secret: Uint8Array;
const dirs: string[] = [];

beforeAll(async () => {
  log = await buildLog({ records: 200, event: (i) => event(i), segmentSize: 8 * 1024, startMs: START });
  secret = indexSecretFromSignerKey(log.signerKey);
});

afterAll(() => {
  for (const dir of [log.dir, ...dirs]) rmSync(dir, { recursive: true, force: true });
});

function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** A copy of the log whose index (with the gateway's secret) is built. */
async function indexedCopy(): Promise<string> {
  const dir = scratch('tollgate-trust-');
  cpSync(log.dir, dir, { recursive: true, filter: (source) => !source.startsWith(join(log.dir, 'index')) });
  await queryLog({ dir, indexSecret: secret });
  return dir;
}

/** The index file of the log's second segment, and its columns. */
function secondIndexFile(dir: string): { path: string; columns: IndexColumns } {
  const name = readdirSync(join(dir, 'index')).sort()[1]!;
  const path = join(dir, 'index', name);
  return { path, columns: readIndexFile(readFileSync(path)) };
}

/** Answers every query and the session listings as a full scan does, and the log still verifies. */
async function expectScanAnswers(dir: string, options: Omit<AuditIndexOptions, 'dir'>): Promise<void> {
  const rows = scanRecords(dir);
  for (const q of QUERIES) {
    const page = await queryLog({ dir, ...options, ...q, limit: 1000 });
    expect(page.records.map((hit) => hit.seq), JSON.stringify(q)).toEqual(expectedSeqs(rows, q));
  }
  expect((await listSessions({ dir, ...options, limit: 100 })).sessions).toEqual(expectedSessions(rows));
  expect((await listSessions({ dir, ...options, user: 'ana@example.com', limit: 100 })).sessions).toEqual(expectedSessions(rows, { user: 'ana@example.com' }));
  expect((await listSessions({ dir, ...options, resource: 'shop', limit: 100 })).sessions).toEqual(expectedSessions(rows, { resource: 'shop' }));
}

/** Edits of one row that would hide it from a filter or misreport it. */
const ROW_EDITS: [string, (c: IndexColumns, row: number) => IndexColumns][] = [
  ['effect deny → allow', (c, row) => ({ ...c, effects: c.effects.map((v, i) => (i === row ? 1 : v)) })],
  ['user (subject and email) → another user', (c, row) => ({ ...c, subjects: c.subjects.map((v, i) => (i === row ? c.subjects[row + 1]! : v)), emails: c.emails.map((v, i) => (i === row ? c.emails[row + 1]! : v)) })],
  ['resource → none', (c, row) => ({ ...c, resources: c.resources.map((v, i) => (i === row ? 0 : v)) })],
  ['time → a year later', (c, row) => ({ ...c, times: c.times.map((v, i) => (i === row ? v + 365 * 86_400_000 : v)) })],
  ['session → none', (c, row) => ({ ...c, sessions: c.sessions.map((v, i) => (i === row ? 0 : v)) })],
];

/** A deny row of user ana in the segment (the one a reviewer would look for). */
function targetRow(c: IndexColumns): number {
  const ana = c.strings.indexOf('ana@example.com') + 1;
  const row = c.effects.findIndex((effect, i) => effect === 2 && c.emails[i] === ana && i + 1 < c.effects.length);
  if (row < 0) throw new Error('the fixture has no deny row of ana in its second segment');
  return row;
}

describe('index files someone without the secret edited', () => {
  it.each(ROW_EDITS)('a row with its %s, the MAC forged under another key, is rebuilt: queries and sessions match a scan', async (_, edit) => {
    const dir = await indexedCopy();
    const { path, columns } = secondIndexFile(dir);
    writeFileSync(path, writeIndexFile(edit(columns, targetRow(columns)), randomBytes(32)));
    await expectScanAnswers(dir, { indexSecret: secret });
    expect(readIndexFile(readFileSync(path))).toEqual(columns);
    expect(await verifyLog({ dir, verifiers: [parseVerifierKey(log.verifierKey)] })).toMatchObject({ ok: true, size: 200 });
  });

  it('a row deleted (every column), the MAC forged, is rebuilt', async () => {
    const dir = await indexedCopy();
    const { path, columns } = secondIndexFile(dir);
    writeFileSync(path, writeIndexFile(withoutRow(columns, targetRow(columns)), randomBytes(32)));
    await expectScanAnswers(dir, { indexSecret: secret });
    expect(readIndexFile(readFileSync(path)).offsets).toEqual(columns.offsets);
  });

  it('an index file of the earlier version (plain CRC-32), with a deny turned into an allow, is treated as untrusted and rebuilt', async () => {
    const dir = await indexedCopy();
    const { path, columns } = secondIndexFile(dir);
    // Everything the earlier reader checked holds: inode, first seq, size, the last frame's CRC.
    const segment = readFileSync(segmentPaths(dir)[1]!);
    const tailCrc = segment.readUInt32BE(columns.coveredBytes - 4);
    const tampered = ROW_EDITS[0]![1](columns, targetRow(columns));
    writeFileSync(path, writeIndexFileV1(tampered, tailCrc));
    await expectScanAnswers(dir, { indexSecret: secret });
    expect(readFileSync(path).subarray(0, 8).toString('latin1')).toBe('TGAIDX02');
  });

  it("an index file from another log under the same secret, bound to this segment's inode, is rebuilt", async () => {
    const dir = await indexedCopy();
    const segmentPath = segmentPaths(dir)[0]!;
    const own = readFileSync(segmentPath);
    // Another log of the same gateway key, whose first segment is shorter; its bytes are put in
    // place of ours (same inode) while its index is built, then ours are put back.
    const other = await buildLog({ records: 40, event: (i) => event(i, ['zed@example.com']), segmentSize: 8 * 1024, startMs: START, signerKey: log.signerKey, logId: log.logId, dir: scratch('tollgate-other-') });
    const theirs = readFileSync(segmentPaths(other.dir)[0]!);
    expect(theirs.length).toBeLessThan(own.length);
    writeFileSync(segmentPath, theirs);
    rmSync(join(dir, 'index'), { recursive: true });
    await queryLog({ dir, indexSecret: secret });
    const swapped = readFileSync(join(dir, 'index', readdirSync(join(dir, 'index')).sort()[0]!));
    writeFileSync(segmentPath, own);
    writeFileSync(join(dir, 'index', readdirSync(join(dir, 'index')).sort()[0]!), swapped);
    expect(statSync(segmentPath).size).toBe(own.length);
    await expectScanAnswers(dir, { indexSecret: secret });
  });

  it('a reader without the secret never reads the index files in the audit directory; its private index answers as a scan', async () => {
    const dir = await indexedCopy();
    const { path, columns } = secondIndexFile(dir);
    const tampered = ROW_EDITS[0]![1](columns, targetRow(columns));
    writeFileSync(path, writeIndexFileV1(tampered, readFileSync(segmentPaths(dir)[1]!).readUInt32BE(columns.coveredBytes - 4)));
    const before = readFileSync(path);
    const privateDir = join(scratch('tollgate-private-'), 'cache');
    await expectScanAnswers(dir, { indexDir: privateDir });
    expect(readFileSync(path)).toEqual(before);
    expect(statSync(privateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(privateDir, 'index.secret')).mode & 0o777).toBe(0o600);
    // Its own files, from a second process's point of view, are reused.
    expect(readdirSync(privateDir).filter((name) => name.endsWith('.idx')).length).toBe(segmentPaths(dir).length);
    await expectScanAnswers(dir, { indexDir: privateDir });
    await expectScanAnswers(dir, {});
  });

  it('refuses a private index directory that others can write', async () => {
    const open = join(scratch('tollgate-open-'), 'cache');
    mkdirSync(open, { mode: 0o700 });
    chmodSync(open, 0o777);
    await expect(queryLog({ dir: log.dir, indexDir: open })).rejects.toMatchObject({ code: 'TG_ERR_USAGE', message: expect.stringContaining('chmod 700') });
  });

  it('refuses an index secret shorter than 32 bytes', async () => {
    await expect(queryLog({ dir: log.dir, indexSecret: new Uint8Array(16) })).rejects.toMatchObject({ code: 'TG_ERR_USAGE' });
  });
});
