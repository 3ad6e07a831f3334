import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexSecretFromSignerKey, queryLog } from '../../src/audit/index.js';
import type { AuditEvent, SessionSummary } from '../../src/audit/index.js';
import { buildLog, segmentPaths } from '../helpers/audit-files.js';
import { expectedSeqs, expectedSessions, readIndexFile, scanRecords, writeIndexFile, writeIndexFileV1 } from '../helpers/audit-index-files.js';
import { runTollgate } from '../helpers/cli.js';

// `tollgate audit query` against index files in the audit directory that someone without the
// signing key edited (the finding: a deny turned into an allow, CRC fixed, hid the record from
// `--effect deny` while `audit verify` passed): it answers exactly what a scan of the log does.

const START = Date.UTC(2025, 0, 1);

function event(i: number): AuditEvent {
  const email = ['ana@example.com', 'ben@example.com', 'chen@example.com'][i % 3]!;
  const decision = i % 5 === 1 ? { effect: 'deny' as const, rule: null, reason: 'no-matching-allow' } : { effect: 'allow' as const, rule: 'r', reason: 'ok' };
  return { kind: 'pg.query', principal: { subject: `sub-${i % 3}`, email, groups: [] }, resource: 'shop', session_id: `s-${i % 4}`, decision, data: { sql: `select ${i}` } };
}

describe('tollgate audit query with tampered index files', () => {
  let cwd: string;
  let dir: string;
  const env = () => ({ XDG_CACHE_HOME: join(cwd, 'cache') });

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'tollgate-cli-index-'));
    dir = join(cwd, 'audit');
    const log = await buildLog({ records: 120, event, segmentSize: 4096, startMs: START, dir });
    // The gateway's index, then edited: every deny row of segment 1 and 2 turned into an allow,
    // as an earlier-version file with its CRC fixed and as a current one with a forged MAC.
    await queryLog({ dir, indexSecret: indexSecretFromSignerKey(log.signerKey) });
    const names = readdirSync(join(dir, 'index')).sort();
    const segments = segmentPaths(dir);
    for (const s of [1, 2]) {
      const path = join(dir, 'index', names[s]!);
      const columns = readIndexFile(readFileSync(path));
      const tampered = { ...columns, effects: columns.effects.map((v) => (v === 2 ? 1 : v)) };
      const tailCrc = readFileSync(segments[s]!).readUInt32BE(columns.coveredBytes - 4);
      writeFileSync(path, s === 1 ? writeIndexFileV1(tampered, tailCrc) : writeIndexFile(tampered, randomBytes(32)));
    }
  });

  afterAll(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  it('lists every denial a scan finds, from a private index outside the audit directory', async () => {
    const run = await runTollgate(['audit', 'query', '--dir', 'audit', '--effect', 'deny', '--json', '--limit', '1000'], { cwd, env: env() });
    expect(run.code).toBe(0);
    const seqs = run.stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { seq: number }).seq);
    expect(seqs).toEqual(expectedSeqs(scanRecords(dir), { effect: 'deny' }));
    const cache = join(cwd, 'cache', 'tollgate', 'audit-index');
    const [own] = readdirSync(cache);
    expect(statSync(join(cache, own!)).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(cache, own!)).filter((name) => name.endsWith('.idx')).length).toBe(segmentPaths(dir).length);
  });

  it('counts every denial in --sessions as a scan does', async () => {
    const run = await runTollgate(['audit', 'query', '--dir', 'audit', '--sessions', '--json', '--user', 'ana@example.com'], { cwd, env: env() });
    expect(run.code).toBe(0);
    const sessions = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as SessionSummary);
    expect(sessions).toEqual(expectedSessions(scanRecords(dir), { user: 'ana@example.com' }));
  });
});
