import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateSignerKey, openFileStore, parseSignerKey, parseVerifierKey, queryLog, verifyLog } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';

/**
 * `tollgate audit verify` and `audit query` on a large log (DESIGN.md §4: verify ≥ 200,000
 * records/s with memory flat in the log's size; one user's records out of 1,000,000 in under
 * 1 s).
 *
 * One log is written by the real store (durability `interval`, a checkpoint signed every second
 * as a running gateway does), verified at the first size, grown, and verified again. Every
 * measurement runs in a fresh child process, so that its peak resident memory is its own and the
 * page cache (warm: the log was just written) is the only thing shared.
 */
export interface VerifyBenchOptions {
  /** Log sizes to verify at, ascending; the query is measured at the last. */
  readonly sizes: readonly number[];
  /** Distinct users in the log; one user's records are queried. */
  readonly users: number;
}

export interface VerifyRun {
  readonly records: number;
  readonly workers: number;
  readonly seconds: number;
  readonly recordsPerSecond: number;
  readonly peakRssMiB: number;
  readonly checkpoints: number;
}

export interface QueryRun {
  readonly records: number;
  readonly hits: number;
  /** First query in a fresh process with no index: builds every segment's index. */
  readonly buildSeconds: number;
  /** The same query in another fresh process, the index files in place. */
  readonly querySeconds: number;
  readonly peakRssMiB: number;
}

export interface VerifyBenchResult {
  readonly recordBytes: number;
  readonly segments: number;
  readonly verify: readonly VerifyRun[];
  readonly query: QueryRun;
}

const LOG_ID = 'bench.example/audit';

function eventFor(n: number, users: number): AuditEvent {
  const user = n % users;
  return {
    kind: 'http.request',
    principal: { subject: `user-${user}`, email: `user${user}@example.com`, groups: ['engineering'] },
    resource: n % 3 === 0 ? 'shop' : 'app',
    decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'request-allowed' },
    request_id: `req-${n}`,
    session_id: `session-${n % (users * 3)}`,
    data: { method: 'GET', path: `/app/api/orders/${n}?limit=50`, host: 'app.example.com', remote: '10.0.0.7', user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0' },
  };
}

const self = fileURLToPath(import.meta.url);

/** Runs one measurement of this file's child mode in a fresh process; returns its JSON. */
function child<T>(args: readonly string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...process.execArgv, self, '--child', ...args], { maxBuffer: 1 << 20, timeout: 600_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as T);
    });
  });
}

function peakRssMiB(): number {
  // resourceUsage().maxRSS is in KiB on Linux.
  return process.resourceUsage().maxRSS / 1024;
}

export async function benchVerify(options: VerifyBenchOptions): Promise<VerifyBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-verify-'));
  const keys = generateSignerKey('bench.example');
  const workers = Math.min(availableParallelism(), 4);
  try {
    let next = 0;
    let recordBytes = 0;
    const runs: VerifyRun[] = [];
    for (const size of options.sizes) {
      const store = await openFileStore({
        dir,
        logId: LOG_ID,
        signer: parseSignerKey(keys.signerKey),
        durability: 'interval',
        observer: { batch: ({ records, bytes }) => void (recordBytes = Math.round(bytes / records) - 8) },
      });
      try {
        await Promise.all(
          Array.from({ length: 256 }, async () => {
            while (next < size) await store.append(eventFor(next++, options.users));
          }),
        );
      } finally {
        await store.close();
      }
      runs.push(await child<VerifyRun>(['verify', dir, keys.verifierKey, String(workers)]));
    }
    const user = `user${Math.floor(options.users / 2)}@example.com`;
    const built = await child<{ seconds: number; hits: number; peakRssMiB: number }>(['query', dir, user]);
    const warm = await child<{ seconds: number; hits: number; peakRssMiB: number }>(['query', dir, user]);
    const segments = readdirSync(dir).filter((name) => name.endsWith('.seg')).length;
    return {
      recordBytes,
      segments,
      verify: runs,
      query: { records: next, hits: warm.hits, buildSeconds: built.seconds, querySeconds: warm.seconds, peakRssMiB: Math.max(built.peakRssMiB, warm.peakRssMiB) },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function childMain(mode: string, args: readonly string[]): Promise<unknown> {
  if (mode === 'verify') {
    const [dir, key, workers] = args as [string, string, string];
    const started = performance.now();
    const result = await verifyLog({ dir, verifiers: [parseVerifierKey(key)], workers: Number(workers) });
    const seconds = (performance.now() - started) / 1000;
    if (!result.ok) throw new Error(`the bench log fails verification: ${result.reason} at ${result.seq}`);
    return { records: result.size, workers: Number(workers), seconds, recordsPerSecond: result.size / seconds, peakRssMiB: peakRssMiB(), checkpoints: result.checkpointsChecked };
  }
  const [dir, user] = args as [string, string];
  const started = performance.now();
  const page = await queryLog({ dir, user, limit: 100_000 });
  return { seconds: (performance.now() - started) / 1000, hits: page.records.length, peakRssMiB: peakRssMiB() };
}

export function formatVerifyResult(result: VerifyBenchResult): string {
  const rows = result.verify.map((run) => [
    `verify ${run.records.toLocaleString('en-US')} records (${run.workers} worker threads, ${run.checkpoints} checkpoints)`,
    `**${Math.round(run.recordsPerSecond).toLocaleString('en-US')} records/s** (${run.seconds.toFixed(2)} s), peak RSS ${run.peakRssMiB.toFixed(0)} MiB`,
  ]);
  const q = result.query;
  rows.push(
    ['record size (canonical bytes) / segments', `${result.recordBytes} / ${result.segments}`],
    [`query one user out of ${q.records.toLocaleString('en-US')} (${q.hits} records), index on disk`, `**${(q.querySeconds * 1000).toFixed(0)} ms** (target < 1 s)`],
    ['the same query building the index first (fresh log)', `${q.buildSeconds.toFixed(2)} s, peak RSS ${q.peakRssMiB.toFixed(0)} MiB`],
  );
  return ['| audit verify and query | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`), '', 'Target: verify ≥ 200,000 records/s, peak RSS the same at every size.'].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv[2] === '--child') {
    console.log(JSON.stringify(await childMain(process.argv[3]!, process.argv.slice(4))));
  } else {
    const sizes = (process.argv[2] ?? '250000,1000000').split(',').map(Number);
    console.log(formatVerifyResult(await benchVerify({ sizes, users: 1000 })));
  }
}
