import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexSecretFromSignerKey, listSessions, openFileStore, openAuditIndex, parseSignerKey, parseVerifierKey, queryLog, verifyLog } from '../../../src/audit/index.js';
import type { AuditEvent, QueryOptions } from '../../../src/audit/index.js';
import { manualClock } from '../../../src/core/index.js';
import { buildLog, editRecord, framesOf, recordBytes } from '../../helpers/audit-files.js';
import { expectedSeqs, expectedSessions, scanRecords } from '../../helpers/audit-index-files.js';
import type { BuiltLog } from '../../helpers/audit-files.js';

// The query index against a full scan of the same log: for every filter the results, their order
// and their pages must be exactly what reading every record would give.

const START = Date.UTC(2025, 0, 1);
const USERS = ['ana@example.com', 'Ben@Example.com', 'chen@example.com', 'dee@example.com', 'eli@example.com'];
const KINDS = ['http.request', 'http.response', 'pg.query', 'pg.result', 'auth.login'] as const;

function event(i: number): AuditEvent {
  const email = USERS[(i * 7) % USERS.length]!;
  const kind = KINDS[i % KINDS.length]!;
  const principal = { subject: `sub-${i % USERS.length}`, email, groups: [] };
  const base = { principal, session_id: `s-${i % 11}`, resource: i % 4 === 0 ? 'shop' : 'app' };
  const decision = i % 6 === 5 ? { effect: 'deny' as const, rule: null, reason: 'no-matching-allow' } : { effect: 'allow' as const, rule: 'r', reason: 'ok' };
  if (kind === 'http.request' || kind === 'pg.query') return { ...base, kind, decision, data: { note: i % 13 === 0 ? `Needle ${i}` : `hay ${i}` } };
  if (kind === 'auth.login') return { kind, principal, session_id: base.session_id, data: { method: 'oidc' } };
  return { ...base, kind, ref: Math.max(0, i - 1), data: { n: i } };
}

let log: BuiltLog;
const dirs: string[] = [];

beforeAll(async () => {
  log = await buildLog({ records: 400, event, segmentSize: 8 * 1024, startMs: START });
});

afterAll(() => {
  for (const dir of [log.dir, ...dirs]) rmSync(dir, { recursive: true, force: true });
});

function copyOf(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-query-'));
  dirs.push(dir);
  // The log without the index that earlier tests built in it.
  cpSync(log.dir, dir, { recursive: true, filter: (source) => !source.startsWith(join(log.dir, 'index')) });
  return dir;
}

const FILTERS: [string, QueryOptions][] = [
  ['everything', {}],
  ['one user by email, any case', { user: 'ben@example.com' }],
  ['one user by subject', { user: 'sub-3' }],
  ['one resource', { resource: 'shop' }],
  ['denials', { effect: 'deny' }],
  ['a kind family', { kind: 'pg' }],
  ['two kinds', { kind: ['auth.login', 'http.response'] }],
  ['one session', { sessionId: 's-4' }],
  ['a time range', { since: START + 100, until: START + 250 }],
  ['text', { text: 'NEEDLE' }],
  ['everything at once', { user: 'ana@example.com', resource: 'app', effect: 'allow', kind: 'http', since: START + 10, until: START + 390 }],
  ['nobody', { user: 'zed@example.com' }],
  ['a resource no record names', { resource: 'nothing' }],
];

describe('queryLog', () => {
  it.each(FILTERS)('gives what a full scan gives (%s)', async (_, filter) => {
    const expected = expectedSeqs(scanRecords(log.dir), filter);
    const page = await queryLog({ dir: log.dir, ...filter, limit: 1000 });
    expect(page.records.map((hit) => hit.seq)).toEqual(expected);
    expect(page.nextCursor).toBeNull();
    for (const hit of page.records) expect(hit.record.seq).toBe(hit.seq);
  });

  it.each(FILTERS.slice(0, 6))('pages through the same results with cursors (%s)', async (_, filter) => {
    const expected = expectedSeqs(scanRecords(log.dir), filter);
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = await queryLog({ dir: log.dir, ...filter, limit: 7, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.records.map((hit) => hit.seq));
      if (page.nextCursor === null) break;
      expect(page.records).toHaveLength(7);
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(expected);
  });

  it('saves one index file per segment, with the index secret, and never needs them to verify', async () => {
    const dir = copyOf();
    await queryLog({ dir, user: 'ana@example.com', indexSecret: indexSecretFromSignerKey(log.signerKey) });
    const segments = readdirSync(dir).filter((name) => name.endsWith('.seg'));
    const indexes = readdirSync(join(dir, 'index'));
    expect(indexes.sort()).toEqual(segments.map((name) => name.replace('.seg', '.idx')).sort());
    for (const name of indexes) writeFileSync(join(dir, 'index', name), 'garbage');
    expect(await verifyLog({ dir, verifiers: [parseVerifierKey(log.verifierKey)] })).toMatchObject({ ok: true, size: 400 });
  });

  it('rebuilds a damaged index file and answers the same', async () => {
    const dir = copyOf();
    const expected = expectedSeqs(scanRecords(dir), { effect: 'deny' });
    const indexSecret = indexSecretFromSignerKey(log.signerKey);
    await queryLog({ dir, effect: 'deny', indexSecret });
    const file = join(dir, 'index', readdirSync(join(dir, 'index'))[1]!);
    const bytes = readFileSync(file);
    bytes[100]! ^= 0xff;
    writeFileSync(file, bytes);
    expect((await queryLog({ dir, effect: 'deny', limit: 1000, indexSecret })).records.map((hit) => hit.seq)).toEqual(expected);
    expect(readFileSync(file)).not.toEqual(bytes);
  });

  it('notices records the index got wrong (a segment edited under it) and indexes the segment again', async () => {
    const dir = copyOf();
    await queryLog({ dir, user: 'ana@example.com' });
    // A record in the middle of a segment changes its user; the segment's last frame, which
    // the index checks cheaply, is untouched.
    const frames = framesOf(dir);
    const target = frames.find((f) => f.seq > 50 && frames[f.seq + 1]?.path === f.path && JSON.parse(recordBytes(dir, f.seq).toString()).principal?.email === 'ana@example.com')!;
    editRecord(dir, target.seq, (json) => json.replace('"ana@example.com"', '"ann@example.com"'));
    const ana = await queryLog({ dir, user: 'ana@example.com', limit: 1000 });
    expect(ana.records.map((hit) => hit.seq)).toEqual(expectedSeqs(scanRecords(dir), { user: 'ana@example.com' }));
    expect(ana.records.map((hit) => hit.seq)).not.toContain(target.seq);
    const ann = await queryLog({ dir, user: 'ann@example.com' });
    expect(ann.records.map((hit) => hit.seq)).toEqual([target.seq]);
  });

  it('indexes only the new tail when the log grew, in a long-lived index too', async () => {
    const dir = copyOf();
    const index = await openAuditIndex({ dir });
    try {
      expect(await index.refresh()).toBe(400);
      const clock = manualClock(START + 400);
      const store = await openFileStore({ dir, logId: log.logId, signer: parseSignerKey(log.signerKey), segmentSize: 8 * 1024, clock, checkpointIntervalMs: 3_600_000 });
      try {
        for (let i = 400; i < 460; i++) {
          await store.append(event(i));
          clock.advance(1);
        }
      } finally {
        await store.close();
      }
      const page = await index.query({ kind: 'pg.query', limit: 1000 });
      expect(page.records.map((hit) => hit.seq)).toEqual(expectedSeqs(scanRecords(dir), { kind: 'pg.query' }));
      expect(page.records[0]!.seq).toBeGreaterThanOrEqual(400);
      expect(await index.refresh()).toBe(460);
    } finally {
      await index.close();
    }
  });

  it('can keep the index in memory only', async () => {
    const dir = copyOf();
    const index = await openAuditIndex({ dir, indexDir: null });
    try {
      expect(index.persistent).toBe(false);
      expect((await index.query({ user: 'chen@example.com', limit: 1000 })).records.map((hit) => hit.seq)).toEqual(expectedSeqs(scanRecords(dir), { user: 'chen@example.com' }));
    } finally {
      await index.close();
    }
    expect(existsSync(join(dir, 'index'))).toBe(false);
  });

  it('refuses an unknown kind, a backwards time range and a forged cursor', async () => {
    await expect(queryLog({ dir: log.dir, kind: 'smtp' })).rejects.toMatchObject({ code: 'TG_ERR_USAGE' });
    await expect(queryLog({ dir: log.dir, since: START + 5, until: START })).rejects.toMatchObject({ code: 'TG_ERR_USAGE' });
    await expect(queryLog({ dir: log.dir, cursor: 'abc' })).rejects.toMatchObject({ code: 'TG_ERR_USAGE' });
  });
});

describe('listSessions', () => {
  it('groups records by session, most recently active first, as a full scan would', async () => {
    const page = await listSessions({ dir: log.dir, limit: 100 });
    expect(page.sessions).toEqual(expectedSessions(scanRecords(log.dir)));
    expect(page.nextCursor).toBeNull();
  });

  it("pages through one user's sessions", async () => {
    const expected = expectedSessions(scanRecords(log.dir), { user: 'BEN@example.com' });
    const first = await listSessions({ dir: log.dir, user: 'BEN@example.com', limit: 4 });
    expect(first.sessions).toEqual(expected.slice(0, 4));
    const rest = await listSessions({ dir: log.dir, user: 'BEN@example.com', limit: 100, cursor: first.nextCursor! });
    expect(rest.sessions).toEqual(expected.slice(4));
  });
});
