import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateSignerKey, openFileStore, parseSignerKey } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';

/**
 * `tollgate audit verify` and `audit query` on a large log (DESIGN.md §4: verify ≥ 200,000
 * records/s with memory flat in the log's size; one user's records out of 1,000,000 in under
 * 1 s).
 *
 * One log is written by the real store (durability `interval`, a checkpoint signed every second
 * as a running gateway does), verified at the first size, grown, and verified again. Every
 * measurement runs in a fresh child process on a compiled build, so that its peak resident memory
 * is its own and the page cache (warm: the log was just written) is the only thing shared.
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
  /** CPU time of all threads (user + system) per record. */
  readonly cpuMicrosPerRecord: number;
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
  /** The same query without the secret, from a private index built by an earlier process. */
  readonly privateQuerySeconds: number;
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

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Compiles `src/` (as `npm run build` does) into a scratch directory, so that verify and query
 * are measured as `tollgate` runs them: plain JavaScript, worker threads included, no
 * TypeScript loader compiling modules on the way.
 */
function buildForBench(): string {
  const out = mkdtempSync(join(tmpdir(), 'tollgate-bench-build-'));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(out, 'dist')], { stdio: 'ignore' });
  } catch {
    // tsc exits non-zero on a type error in a file under construction elsewhere; it still emits.
  }
  if (!existsSync(join(out, 'dist', 'audit', 'index.js'))) throw new Error('the TypeScript build for the bench produced no dist/audit/index.js');
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(repoRoot, 'node_modules'), join(out, 'node_modules'));
  return out;
}

/**
 * One measurement in a fresh process running the build: an ES module that imports the audit
 * room and prints a JSON object, with the process's peak resident memory added.
 */
function child<T>(build: string, body: string): Promise<T> {
  const audit = JSON.stringify(pathToFileURL(join(build, 'dist', 'audit', 'index.js')).href);
  const script = `import * as audit from ${audit};\nconst out = await (async () => { ${body} })();\nconsole.log(JSON.stringify({ ...out, peakRssMiB: process.resourceUsage().maxRSS / 1024 }));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { maxBuffer: 1 << 20, timeout: 600_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as T);
    });
  });
}

function verifyIn(build: string, dir: string, verifierKey: string, workers: number): Promise<VerifyRun> {
  return child<VerifyRun>(
    build,
    `const started = performance.now();
     const cpu = process.cpuUsage();
     const result = await audit.verifyLog({ dir: ${JSON.stringify(dir)}, verifiers: [audit.parseVerifierKey(${JSON.stringify(verifierKey)})], workers: ${workers} });
     const seconds = (performance.now() - started) / 1000;
     const used = process.cpuUsage(cpu);
     if (!result.ok) throw new Error('the bench log fails verification: ' + result.reason + ' at ' + result.seq);
     return { records: result.size, workers: ${workers}, seconds, recordsPerSecond: result.size / seconds, cpuMicrosPerRecord: (used.user + used.system) / result.size, checkpoints: result.checkpointsChecked };`,
  );
}

/**
 * One query in a fresh process: with the gateway's index secret (index files in the audit
 * directory), or, given `privateDir`, as `audit query` runs without it (its own private index).
 */
function queryIn(build: string, dir: string, user: string, signerKey: string, privateDir?: string): Promise<{ seconds: number; hits: number; peakRssMiB: number }> {
  const index = privateDir === undefined ? `indexSecret: audit.indexSecretFromSignerKey(${JSON.stringify(signerKey)})` : `indexDir: ${JSON.stringify(privateDir)}`;
  return child(
    build,
    `const started = performance.now();
     const page = await audit.queryLog({ dir: ${JSON.stringify(dir)}, user: ${JSON.stringify(user)}, limit: 100000, ${index} });
     return { seconds: (performance.now() - started) / 1000, hits: page.records.length };`,
  );
}

export async function benchVerify(options: VerifyBenchOptions): Promise<VerifyBenchResult> {
  const build = buildForBench();
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
      runs.push(await verifyIn(build, dir, keys.verifierKey, workers));
    }
    const user = `user${Math.floor(options.users / 2)}@example.com`;
    const built = await queryIn(build, dir, user, keys.signerKey);
    const warm = await queryIn(build, dir, user, keys.signerKey);
    const privateDir = join(build, 'private-index');
    await queryIn(build, dir, user, keys.signerKey, privateDir);
    const privateWarm = await queryIn(build, dir, user, keys.signerKey, privateDir);
    const segments = readdirSync(dir).filter((name) => name.endsWith('.seg')).length;
    return {
      recordBytes,
      segments,
      verify: runs,
      query: { records: next, hits: warm.hits, buildSeconds: built.seconds, querySeconds: warm.seconds, privateQuerySeconds: privateWarm.seconds, peakRssMiB: Math.max(built.peakRssMiB, warm.peakRssMiB) },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(build, { recursive: true, force: true });
  }
}

export function formatVerifyResult(result: VerifyBenchResult): string {
  const rows = result.verify.map((run) => [
    `verify ${run.records.toLocaleString('en-US')} records (${run.workers} worker threads, ${run.checkpoints} checkpoints)`,
    `**${Math.round(run.recordsPerSecond).toLocaleString('en-US')} records/s** (${run.seconds.toFixed(2)} s, ${run.cpuMicrosPerRecord.toFixed(1)} µs CPU per record), peak RSS ${run.peakRssMiB.toFixed(0)} MiB`,
  ]);
  const q = result.query;
  rows.push(
    ['record size (canonical bytes) / segments', `${result.recordBytes} / ${result.segments}`],
    [`query one user out of ${q.records.toLocaleString('en-US')} (${q.hits} records), authenticated index on disk`, `**${(q.querySeconds * 1000).toFixed(0)} ms** (target < 1 s)`],
    ['the same query without the index secret, from its private index', `**${(q.privateQuerySeconds * 1000).toFixed(0)} ms** (target < 1 s)`],
    ['the same query building the index first (fresh log)', `${q.buildSeconds.toFixed(2)} s, peak RSS ${q.peakRssMiB.toFixed(0)} MiB`],
  );
  return ['| audit verify and query | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`), '', 'Target: verify ≥ 200,000 records/s, peak RSS the same at every size.'].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sizes = (process.argv[2] ?? '250000,1000000').split(',').map(Number);
  console.log(formatVerifyResult(await benchVerify({ sizes, users: 1000 })));
}
