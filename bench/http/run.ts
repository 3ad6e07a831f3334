/**
 * The HTTP bars of DESIGN.md §4, measured in one run on this machine:
 *
 * 1. Throughput with 64 keep-alive connections (wrk, 2 threads): direct to the upstream; bare
 *    `http-proxy` with its defaults and with a keep-alive agent (no checks); the gateway's undici
 *    engine (no checks); Tollgate with a logged-in session, a policy decision and durable audit
 *    (`durability: always`, two records per request). Target: Tollgate ≥ 1.5× bare `http-proxy`.
 *    A diagnostic row runs Tollgate with a no-op audit store to show the audit log's share.
 * 2. Latency at half of Tollgate's saturating load, open loop (`open-loop.ts`), direct and
 *    through Tollgate. Target: added p99 ≤ 2 ms + one fsync (fdatasync measured here too).
 *
 *   node --import tsx bench/http/run.ts        (installs wrk from Debian's packages if missing)
 */
import { execFileSync, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const SECONDS = 8;
const WARMUP_SECONDS = 2;
const CONNECTIONS = 64;
const PATH = '/app/orders/42?limit=50';

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly cookie?: string;
}

interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return;
  console.error('wrk is missing; installing it from the Debian packages (apt-get install -y wrk)');
  const update = spawnSync('apt-get', ['update'], { stdio: 'ignore' });
  const install = spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (update.status !== 0 || install.status !== 0 || spawnSync('wrk', ['--version']).error !== undefined) {
    throw new Error('wrk could not be installed (apt-get install -y wrk failed); install it and run again');
  }
}

function start(mode: string, upstream?: string): Promise<Started> {
  const child = fork(fileURLToPath(new URL('./servers.ts', import.meta.url)), [mode], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (message: { url: string; cookie?: string }) => resolve({ child, ...message }));
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
    child.send({ upstream });
  });
}

async function stop(started: Started): Promise<void> {
  const exited = new Promise<void>((resolve) => started.child.once('exit', () => resolve()));
  started.child.send({ close: true });
  const timer = setTimeout(() => started.child.kill(), 10_000);
  await exited;
  clearTimeout(timer);
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

function wrk(url: string, seconds: number, cookie?: string): WrkResult {
  const args = ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...(cookie === undefined ? [] : ['-H', `Cookie: ${cookie}`]), `${url}${PATH}`];
  const out = execFileSync('wrk', args, { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN');
  const latency = (p: string): number => {
    const match = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)$`, 'm').exec(out);
    return match === null ? Number.NaN : toMs(match[1] ?? '', match[2] ?? 'ms');
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? '0');
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors === null ? 0 : socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0));
  return { rps, p50Ms: latency('50'), p99Ms: latency('99'), errors };
}

function openLoop(url: string, rate: number, cookie?: string): { p50Ms: number; p99Ms: number; errors: number } {
  const script = fileURLToPath(new URL('./open-loop.ts', import.meta.url));
  const args = ['--import', 'tsx', script, `${url}${PATH}`, String(Math.round(rate)), String(SECONDS), String(CONNECTIONS), ...(cookie === undefined ? [] : [cookie])];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { p50Ms: number; p99Ms: number; errors: number };
}

/** fdatasync of a small append in the temp directory: the "one fsync" of the latency bar. */
function measureFsync(): { p50Ms: number; p99Ms: number } {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-fsync-'));
  const fd = openSync(join(dir, 'probe'), 'w');
  const record = Buffer.alloc(600, 0x61);
  const times: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    writeSync(fd, record);
    fdatasyncSync(fd);
    times.push(performance.now() - t0);
  }
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return { p50Ms: times[150] ?? 0, p99Ms: times[297] ?? 0 };
}

const fmt = (n: number, digits = 2): string => n.toFixed(digits);
const rps = (n: number): string => Math.round(n).toLocaleString('en-US');

ensureWrk();
const upstream = await start('upstream');
const rows: { name: string; result: WrkResult }[] = [];
const measure = (name: string, url: string, cookie?: string): WrkResult => {
  wrk(url, WARMUP_SECONDS, cookie);
  const result = wrk(url, SECONDS, cookie);
  if (result.errors > 0) throw new Error(`${name}: ${result.errors} failed requests; the numbers would be meaningless`);
  rows.push({ name, result });
  return result;
};

const direct = measure('direct to the upstream', upstream.url);
for (const [mode, name] of [
  ['http-proxy', 'bare http-proxy 1.18.1 (defaults: new upstream connection per request)'],
  ['http-proxy-keepalive', 'http-proxy 1.18.1 with a keep-alive agent'],
  ['undici', 'bare undici 7 engine (Pool.dispatch), no checks'],
] as const) {
  const server = await start(mode, upstream.url);
  measure(name, server.url);
  await stop(server);
}
const diagnostic = await start('tollgate-no-audit', upstream.url);
measure('diagnostic: Tollgate with a no-op audit store (not a valid setup)', diagnostic.url, diagnostic.cookie);
await stop(diagnostic);
const gateway = await start('tollgate', upstream.url);
const full = measure('**Tollgate: session + policy + durable audit**', gateway.url, gateway.cookie);
const halfRate = full.rps / 2;
const directHalf = openLoop(upstream.url, halfRate);
const tollgateHalf = openLoop(gateway.url, halfRate, gateway.cookie);
await stop(gateway);
await stop(upstream);
const fsync = measureFsync();

const baseline = rows.find((row) => row.name.startsWith('bare http-proxy'))?.result.rps ?? Number.NaN;
const keepAlive = rows.find((row) => row.name.includes('keep-alive agent'))?.result.rps ?? Number.NaN;
console.log(`## HTTP gateway (Node ${process.version}, ${CONNECTIONS} keep-alive connections, wrk -t2, ${SECONDS} s per row)\n`);
console.log('| configuration | req/s | p50 ms | p99 ms | vs bare http-proxy |');
console.log('|---|---:|---:|---:|---:|');
for (const { name, result } of rows) {
  console.log(`| ${name} | ${rps(result.rps)} | ${fmt(result.p50Ms)} | ${fmt(result.p99Ms)} | ${fmt(result.rps / baseline)}× |`);
}
const added = tollgateHalf.p99Ms - directHalf.p99Ms;
const allowed = 2 + fsync.p99Ms;
console.log(`\n### Latency at half load (${rps(halfRate)} req/s, open loop)\n`);
console.log('| path | p50 ms | p99 ms |');
console.log('|---|---:|---:|');
console.log(`| direct to the upstream | ${fmt(directHalf.p50Ms)} | ${fmt(directHalf.p99Ms)} |`);
console.log(`| through Tollgate | ${fmt(tollgateHalf.p50Ms)} | ${fmt(tollgateHalf.p99Ms)} |`);
console.log(`\nfdatasync here: p50 ${fmt(fsync.p50Ms, 3)} ms, p99 ${fmt(fsync.p99Ms, 3)} ms.`);
console.log(
  `Throughput: Tollgate / bare http-proxy = ${fmt(full.rps / baseline)}× (target ≥ 1.5×); Tollgate / http-proxy with keep-alive = ${fmt(full.rps / keepAlive)}×; direct / Tollgate = ${fmt(direct.rps / full.rps)}×.`,
);
console.log(`Added p99 at half load: ${fmt(added)} ms (target ≤ 2 ms + one fsync p99 = ${fmt(allowed)} ms).`);
