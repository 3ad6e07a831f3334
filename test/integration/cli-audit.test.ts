import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64, parseCheckpointBody, parseVerifierKey, verifyProofBundle } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { buildLog, checkpointNote, cutAt, editRecord, historyNotes, recordBytes } from '../helpers/audit-files.js';
import type { BuiltLog } from '../helpers/audit-files.js';
import { runTollgate, type CliRun } from '../helpers/cli.js';

// `tollgate audit ...` run as a separate process (from source, as the other CLI tests do), on a
// log written by the real store with a key pair made by `tollgate audit keygen`.

let workDir = '';
let log: BuiltLog;
let verifierKey = '';

const USERS = ['alice@example.com', 'bob@example.com', 'carol@example.com'];

/** 30 records: requests, SQL and logins of three users in three sessions; every fifth is denied. */
function event(i: number): AuditEvent {
  const email = USERS[i % 3]!;
  const principal = { subject: `sub-${email.split('@')[0]}`, email, groups: ['engineering'] };
  const decision = i % 5 === 4 ? { effect: 'deny' as const, rule: null, reason: 'no-matching-allow' } : { effect: 'allow' as const, rule: 'engineer.allow[0]', reason: 'request-allowed' };
  const session_id = `session-${i % 3}`;
  if (i % 2 === 0) return { kind: 'http.request', principal, resource: 'app', decision, session_id, request_id: `r${i}`, data: { method: 'GET', path: `/app/orders/${i}`, remote: '10.0.0.7' } };
  return { kind: 'pg.query', principal, resource: 'shop', decision, session_id, data: { sql: `select * from orders where id = ${i}`, class: 'read', tables: ['orders'] } };
}

function tollgate(args: readonly string[]): Promise<CliRun> {
  return runTollgate(args, { cwd: workDir });
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'tollgate-cli-audit-'));
  const keygen = await tollgate(['audit', 'keygen', '--name', 'gw.example.com/audit', '--out', 'keys']);
  expect(keygen.code).toBe(0);
  verifierKey = keygen.stdout.trim();
  const signerKey = readFileSync(join(workDir, 'keys', 'gw.example.com_audit.key'), 'utf8').trim();
  log = await buildLog({ logId: 'gw.example.com/audit', records: 30, checkpointsAt: [20], event, signerKey, dir: join(workDir, 'audit') });
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

function copyLog(): string {
  const dir = mkdtempSync(join(workDir, 'copy-'));
  cpSync(log.dir, dir, { recursive: true });
  return dir;
}

describe('tollgate audit keygen', () => {
  it('wrote the private key with mode 0600 and printed the verifier key that matches it', () => {
    const key = join(workDir, 'keys', 'gw.example.com_audit.key');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, 'utf8')).toMatch(/^PRIVATE\+KEY\+gw\.example\.com\/audit\+[0-9a-f]{8}\+\S+\n$/);
    expect(readFileSync(join(workDir, 'keys', 'gw.example.com_audit.pub'), 'utf8')).toBe(`${verifierKey}\n`);
    expect(parseVerifierKey(verifierKey).name).toBe('gw.example.com/audit');
    expect(log.verifierKey).toBe(verifierKey);
  });

  it('refuses to overwrite a key (exit 2) unless --force', async () => {
    const again = await tollgate(['audit', 'keygen', '--name', 'gw.example.com/audit', '--out', 'keys']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists; keep it, or pass --force');
    expect(readFileSync(join(workDir, 'keys', 'gw.example.com_audit.pub'), 'utf8')).toBe(`${verifierKey}\n`);
    const forced = await tollgate(['audit', 'keygen', '--name', 'gw.example.com/audit', '--out', 'keys2', '--force']);
    expect(forced.code).toBe(0);
  });

  it('refuses a key name with a space (exit 2)', async () => {
    const run = await tollgate(['audit', 'keygen', '--name', 'two words', '--out', 'keys3']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--name "two words"');
  });
});

describe('tollgate audit verify', () => {
  it('exits 0 and prints the size, root and signer of an intact log', async () => {
    const latest = parseCheckpointBody(checkpointNote(log.dir).split('\n\n')[0]! + '\n');
    const root = latest.ok ? encodeBase64(latest.checkpoint.rootHash) : '';
    const keyId = parseVerifierKey(verifierKey).keyId.toString(16).padStart(8, '0');
    for (const key of [verifierKey, 'keys/gw.example.com_audit.pub']) {
      const run = await tollgate(['audit', 'verify', '--dir', 'audit', '--key', key]);
      expect(run).toEqual({ code: 0, stdout: `ok: 30 records of log gw.example.com/audit, root ${root}, checkpoint signed by gw.example.com/audit+${keyId}\n`, stderr: '' });
    }
  });

  it('without --key it checks the rest and says the signatures were not', async () => {
    const run = await tollgate(['audit', 'verify', '--dir', 'audit']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ok: 30 records of log gw\.example\.com\/audit, root \S+, checkpoint of 30 records not authenticated \(no --key\)\n$/);
    expect(run.stderr).toContain('pass --key');
  });

  it('exits 1 with the first bad seq and why', async () => {
    const dir = copyLog();
    editRecord(dir, 6, (json) => json.replace('/app/orders/6', '/app/orders/7'));
    const run = await tollgate(['audit', 'verify', '--dir', dir, '--key', verifierKey]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^fail: seq 7: prev-mismatch: /);
  });

  it('prints the result as JSON with --json', async () => {
    const run = await tollgate(['audit', 'verify', '--dir', 'audit', '--key', verifierKey, '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, size: 30, log_id: 'gw.example.com/audit', checkpoint: { size: 30 }, signatures_checked: true });
  });

  it('catches a cut-off tail with the checkpoint saved elsewhere (exit 1)', async () => {
    const dir = copyLog();
    writeFileSync(join(workDir, 'saved.checkpoint'), checkpointNote(dir));
    const notes = historyNotes(dir);
    // Records 20..29 removed with their checkpoint: the log alone looks whole.
    cutAt(dir, 20);
    writeFileSync(join(dir, 'checkpoints'), `\u001e${notes[0]}\u001e${notes[1]}`);
    writeFileSync(join(dir, 'checkpoint'), notes[1]!);
    expect((await tollgate(['audit', 'verify', '--dir', dir, '--key', verifierKey])).code).toBe(0);
    const run = await tollgate(['audit', 'verify', '--dir', dir, '--key', verifierKey, '--checkpoint', 'saved.checkpoint']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^fail: seq 20: truncated: the log holds 20 records but the external checkpoint/);
  });

  it('with --log-id tells this log from another one signed with the same key (exit 1), and names the log it checked', async () => {
    const other = await buildLog({ logId: 'gw.example.com/other', records: 5, event, signerKey: log.signerKey, dir: join(workDir, 'other') });
    const plain = await tollgate(['audit', 'verify', '--dir', other.dir, '--key', verifierKey]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^ok: 5 records of log gw\.example\.com\/other, /);
    const run = await tollgate(['audit', 'verify', '--dir', other.dir, '--key', verifierKey, '--log-id', 'gw.example.com/audit']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^fail: seq 0: checkpoint-wrong-origin: .* of "gw\.example\.com\/other", not of this log \("gw\.example\.com\/audit"\)/);
    const ours = await tollgate(['audit', 'verify', '--dir', 'audit', '--key', verifierKey, '--log-id', 'gw.example.com/audit']);
    expect(ours.code).toBe(0);
    const proof = await tollgate(['audit', 'prove', '--dir', other.dir, '--seq', '1', '--key', verifierKey, '--log-id', 'gw.example.com/audit']);
    expect(proof.code).toBe(1);
    expect(proof.stderr).toContain('is a checkpoint of "gw.example.com/other", not of "gw.example.com/audit"');
    expect((await tollgate(['audit', 'prove', '--dir', 'audit', '--seq', '1', '--key', verifierKey, '--log-id', 'gw.example.com/audit'])).code).toBe(0);
  });

  it('refuses records whose checkpoint files were deleted (exit 1, checkpoint-missing)', async () => {
    const dir = copyLog();
    rmSync(join(dir, 'checkpoint'));
    rmSync(join(dir, 'checkpoints'));
    const run = await tollgate(['audit', 'verify', '--dir', dir, '--key', verifierKey]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^fail: seq 0: checkpoint-missing: the log holds 30 records but no signed checkpoint/);
  });

  it('exits 2 for usage errors: no --dir, a missing directory, a malformed key', async () => {
    expect((await tollgate(['audit', 'verify'])).code).toBe(2);
    const missing = await tollgate(['audit', 'verify', '--dir', 'nowhere']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('error TG_ERR_USAGE: there is no audit directory at');
    const badKey = await tollgate(['audit', 'verify', '--dir', 'audit', '--key', 'gw+12345678+AAAA']);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('--key gw+12345678+AAAA');
  });
});

describe('tollgate audit prove', () => {
  it('prints a tlog-proof that verifies offline with the verifier key', async () => {
    const run = await tollgate(['audit', 'prove', '--dir', 'audit', '--seq', '13', '--key', verifierKey]);
    expect(run.code).toBe(0);
    expect(run.stdout.startsWith('c2sp.org/tlog-proof@v1\nextra ')).toBe(true);
    const checked = verifyProofBundle(run.stdout, [parseVerifierKey(verifierKey)]);
    expect(checked).toMatchObject({ ok: true, index: 13, checkpoint: { size: 30 } });
    expect(checked.ok && checked.record.seq).toBe(13);
    expect(verifyProofBundle(run.stdout, [parseVerifierKey(verifierKey)], recordBytes(log.dir, 13))).toMatchObject({ ok: true });
    expect(verifyProofBundle(run.stdout, [parseVerifierKey(verifierKey)], recordBytes(log.dir, 14))).toMatchObject({ ok: false, reason: 'not-included' });
  });

  it('exits 1 for a record no checkpoint covers yet, 2 for a seq that is not a number', async () => {
    const beyond = await tollgate(['audit', 'prove', '--dir', 'audit', '--seq', '30']);
    expect(beyond.code).toBe(1);
    expect(beyond.stderr).toContain('error TG_ERR_AUDIT_NOT_SIGNED: seq 30 is not covered by the checkpoint');
    expect((await tollgate(['audit', 'prove', '--dir', 'audit', '--seq', 'x'])).code).toBe(2);
  });

  it('exits 1 rather than print a proof for a log that no longer matches its checkpoint', async () => {
    const dir = copyLog();
    editRecord(dir, 3, (json) => json.replace('"class":"read"', '"class":"write"'));
    const run = await tollgate(['audit', 'prove', '--dir', dir, '--seq', '10']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('TG_ERR_AUDIT_TAMPERED');
  });
});

describe('tollgate audit query', () => {
  it("prints one user's records, newest first, as a table", async () => {
    const run = await tollgate(['audit', 'query', '--dir', 'audit', '--user', 'BOB@example.com']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SEQ\s+TIME\s+KIND\s+USER\s+RESOURCE\s+DECISION\s+DETAIL$/);
    const seqs = lines.slice(1).map((line) => Number(line.split(/\s+/)[0]));
    expect(seqs).toEqual([28, 25, 22, 19, 16, 13, 10, 7, 4, 1]);
    expect(lines[1]).toMatch(/^28\s+2025-01-01T00:00:00\.028Z\s+http\.request\s+bob@example\.com\s+app\s+allow engineer\.allow\[0\]\s+GET \/app\/orders\/28$/);
    expect(lines.find((line) => line.startsWith('19 '))).toMatch(/pg\.query\s+bob@example\.com\s+shop\s+deny no-matching-allow\s+select \* from orders where id = 19$/);
  });

  it('prints JSON lines with --json, pages with --cursor, and filters by effect and kind', async () => {
    const first = await tollgate(['audit', 'query', '--dir', 'audit', '--effect', 'deny', '--kind', 'pg', '--limit', '2', '--json']);
    expect(first.code).toBe(0);
    const records = first.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { seq: number; kind: string });
    expect(records.map((r) => [r.seq, r.kind])).toEqual([
      [29, 'pg.query'],
      [19, 'pg.query'],
    ]);
    expect(first.stderr).toBe('more: run again with --cursor 19\n');
    const second = await tollgate(['audit', 'query', '--dir', 'audit', '--effect', 'deny', '--kind', 'pg', '--limit', '2', '--json', '--cursor', '19']);
    expect(second.stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual([9]);
    expect(second.stderr).toBe('');
  });

  it('takes --since and --until as RFC 3339 times', async () => {
    const run = await tollgate(['audit', 'query', '--dir', 'audit', '--since', '2025-01-01T00:00:00.010Z', '--until', '2025-01-01T00:00:00.013Z', '--json']);
    expect(run.stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual([12, 11, 10]);
  });

  it('takes a duration as "that long ago"', async () => {
    const recent = await tollgate(['audit', 'query', '--dir', 'audit', '--since', '15m']);
    expect(recent).toEqual({ code: 0, stdout: '', stderr: 'no records match\n' });
    const all = await tollgate(['audit', 'query', '--dir', 'audit', '--until', '15m', '--json', '--limit', '100']);
    expect(all.stdout.trimEnd().split('\n')).toHaveLength(30);
  });

  it('lists sessions with their counts', async () => {
    const run = await tollgate(['audit', 'query', '--dir', 'audit', '--sessions', '--json']);
    expect(run.code).toBe(0);
    const sessions = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(sessions.map((s) => s.sessionId)).toEqual(['session-2', 'session-1', 'session-0']);
    expect(sessions[0]).toMatchObject({ firstSeq: 2, lastSeq: 29, records: 10, requests: 5, statements: 5, denials: 2, resources: ['app', 'shop'], principal: { subject: 'sub-carol', email: 'carol@example.com' } });
  });

  it('exits 2 for an unknown kind, a malformed time or --sessions with --text', async () => {
    for (const args of [['--kind', 'nope'], ['--since', 'yesterday'], ['--sessions', '--text', 'x'], ['--effect', 'maybe']]) {
      const run = await tollgate(['audit', 'query', '--dir', 'audit', ...args]);
      expect(run.code, args.join(' ')).toBe(2);
    }
  });
});

describe('tollgate audit export', () => {
  it('streams the records as they are stored (jsonl)', async () => {
    const run = await tollgate(['audit', 'export', '--dir', 'audit', '--format', 'jsonl']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(30);
    expect(lines.map((line, seq) => line === recordBytes(log.dir, seq).toString('utf8'))).toEqual(lines.map(() => true));
  });

  it('streams OCSF 1.8.0 events (ocsf), filtered like a query', async () => {
    const run = await tollgate(['audit', 'export', '--dir', 'audit', '--format', 'ocsf', '--user', 'alice@example.com', '--kind', 'pg.query']);
    expect(run.code).toBe(0);
    const events = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
    expect(events.map((e) => e.metadata.sequence)).toEqual([3, 9, 15, 21, 27]);
    expect(events[0]).toMatchObject({
      class_uid: 6005,
      category_uid: 6,
      activity_id: 4,
      type_uid: 600504,
      metadata: { version: '1.8.0', product: { name: 'Tollgate', version: '0.1.0' } },
      actor: { user: { email_addr: 'alice@example.com' } },
      query_info: { query_string: 'select * from orders where id = 3' },
    });
  });

  it('exits 2 without a known --format, 1 when a record is damaged', async () => {
    expect((await tollgate(['audit', 'export', '--dir', 'audit'])).code).toBe(2);
    expect((await tollgate(['audit', 'export', '--dir', 'audit', '--format', 'csv'])).code).toBe(2);
    const dir = copyLog();
    editRecord(dir, 5, (json) => json.replace('"kind":', '"kind": '));
    const run = await tollgate(['audit', 'export', '--dir', dir, '--format', 'jsonl']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('error TG_ERR_AUDIT_TAMPERED: the export stopped at seq 5');
    expect(run.stdout.trimEnd().split('\n')).toHaveLength(5);
  });
});

describe('tollgate audit --help', () => {
  it.each(['verify', 'prove', 'query', 'export', 'keygen'])('audit %s --help exits 0 and describes the command', async (name) => {
    const run = await tollgate(['audit', name, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Usage: tollgate audit ${name}`);
  });
});
