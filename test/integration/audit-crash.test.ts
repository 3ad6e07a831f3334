import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openFileStore, verifyLog } from '../../src/audit/index.js';
import { readLog, TEST_LOG_ID, tempAuditDir, testKeys } from '../helpers/audit-store.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(root, 'test/helpers/audit-append-child.ts');
const KILLS = 24;
const keys = testKeys();
const work = tempAuditDir();
const dir = join(work, 'audit');

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A small seeded generator, so that a failing run can be told apart and repeated. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Round {
  readonly ready: number;
  readonly acknowledged: Map<number, string>;
}

/** Starts the child, kills it with SIGKILL `delayMs` after it opened the log, and returns what it acknowledged. */
async function runAndKill(round: number, delayMs: number): Promise<Round> {
  const acksPath = join(work, `acks-${round}.txt`);
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, keys.signerKey, TEST_LOG_ID, acksPath], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let ready = -1;
  // A child that never opens the log is killed too, and the round fails below.
  let timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (ready < 0) {
      const match = /^ready (\d+)\n/.exec(out);
      if (match) {
        ready = Number(match[1]);
        clearTimeout(timer);
        timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.on('exit', (c, s) => done([c, s])));
  clearTimeout(timer);
  if (signal !== 'SIGKILL') throw new Error(`the child exited with ${code} before it was killed: ${err}`);
  if (ready < 0) throw new Error(`the child never opened the log: ${err}`);
  const acknowledged = new Map<number, string>();
  for (const line of readFileSync(acksPath, 'utf8').split('\n')) {
    const match = /^(\d+) (\S+)$/.exec(line);
    if (match) acknowledged.set(Number(match[1]), match[2]!);
  }
  return { ready, acknowledged };
}

/** request_id of each record from `fromSeq` on, read straight from the segment files. */
function requestIdsFrom(fromSeq: number): Map<number, string | undefined> {
  const ids = new Map<number, string | undefined>();
  const segments = readdirSync(dir)
    .filter((name) => name.endsWith('.seg'))
    .sort();
  for (let i = 0; i < segments.length; i++) {
    const next = segments[i + 1];
    if (next !== undefined && Number(next.slice(0, 20)) <= fromSeq) continue;
    const bytes = readFileSync(join(dir, segments[i]!));
    for (let at = 0; at < bytes.length; ) {
      const length = bytes.readUInt32BE(at);
      const record = JSON.parse(bytes.subarray(at + 4, at + 4 + length).toString('utf8')) as { seq: number; request_id?: string };
      if (record.seq >= fromSeq) ids.set(record.seq, record.request_id);
      at += length + 8;
    }
  }
  return ids;
}

describe('audit log crash safety', () => {
  it(`keeps every acknowledged record through ${KILLS} SIGKILLs at random moments`, { timeout: 300_000 }, async () => {
    const seed = Date.now();
    const next = random(seed);
    let acknowledgedTotal = 0;
    for (let round = 0; round < KILLS; round++) {
      const delayMs = 50 + Math.floor(next() * 350);
      const { ready, acknowledged } = await runAndKill(round, delayMs);
      acknowledgedTotal += acknowledged.size;

      const where = `round ${round}, seed ${seed}, kill after ${delayMs} ms`;
      // What the kill left (preallocated zeros after the last frame, perhaps a torn write in
      // them) verifies as it is: a torn tail is reported, never damage.
      const checked = await verifyLog({ dir, verifiers: [keys.verifier] });
      expect(checked.ok, `${where}: ${checked.ok ? '' : checked.message}`).toBe(true);
      if (checked.ok) expect(checked.size, where).toBeGreaterThanOrEqual(acknowledged.size === 0 ? 0 : Math.max(...acknowledged.keys()) + 1);

      // Reopening recovers the log (cutting a torn tail if the kill left one) and verifies it.
      const store = await openFileStore({ dir, logId: TEST_LOG_ID, signer: keys.signer });
      const size = store.state().size;
      await store.close();

      const ids = requestIdsFrom(ready);
      for (const [seq, id] of acknowledged) {
        expect(seq, where).toBeLessThan(size);
        expect(ids.get(seq), `${where}: seq ${seq}`).toBe(id);
      }
    }
    expect(acknowledgedTotal).toBeGreaterThan(KILLS);
    // The whole log, every round included, is one valid chain.
    const { records } = readLog(dir);
    expect(records.length).toBeGreaterThanOrEqual(acknowledgedTotal);
  });
});
