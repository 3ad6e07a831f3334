/**
 * Where the gateway's CPU and allocations go at the latency bar's load: the Tollgate half-load
 * round of `run.ts` alone (same servers, same open-loop generator, same request), profiled.
 *
 * 1. A warm-up run, then an unprofiled run: the gateway process's CPU per request and the
 *    generator's latencies (the profiler's own cost is kept out of these).
 * 2. A profiled run: CPU profile (100 µs sampling) and allocation-sampling heap profile with
 *    freed objects included, plus the garbage collections counted. Prints the top functions by
 *    self time (µs per request) and the top allocation sites (bytes per request), and leaves
 *    `gateway.cpuprofile` / `gateway.heapprofile` for Chrome DevTools. With `--promoted` the heap
 *    profile counts only what outlived the young collections instead: the bytes per request that
 *    fill the old generation and so set how often V8 runs a full collection.
 *
 *   node --import tsx bench/http/profile.ts [--rate 5700] [--seconds 8] [--top 25] [--out dir] [--promoted]
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, CONNECTIONS, openLoop, start, stop } from './control.js';
import type { ProfileReport, ServerReport } from './servers.js';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index > 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const RATE = Number(option('--rate', '5700'));
const SECONDS = Number(option('--seconds', '8'));
const TOP = Number(option('--top', '25'));
const OUT = option('--out', '') || mkdtempSync(join(tmpdir(), 'tollgate-http-profile-'));
const PROMOTED = process.argv.includes('--promoted');
mkdirSync(OUT, { recursive: true });
interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

function frameKey(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(node_modules\/[^/]+|src|bench)\//, '$1/').replace(/^file:\/\//, '');
  return `${frame.functionName || '(anonymous)'}${file === '' ? '' : ` (${file}:${frame.lineNumber + 1})`}`;
}

/** Self time by function, µs per request; idle and the profiler's own entries left out. */
function cpuRows(path: string, requests: number): { rows: string[]; busyUs: number } {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as {
    nodes: { id: number; callFrame: CallFrame }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let busyUs = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (node === undefined || node.callFrame.functionName === '(idle)' || node.callFrame.functionName === '(program)') return;
    const key = frameKey(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    busyUs += us;
  });
  const rows = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([key, us]) => `| ${(us / requests).toFixed(2)} | ${((100 * us) / busyUs).toFixed(1)}% | \`${key.replaceAll('|', '\\|')}\` |`);
  return { rows, busyUs };
}

interface HeapNode {
  readonly callFrame: CallFrame;
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}

/** Sampled bytes by allocation site (the function that allocated), per request. */
function heapRows(path: string, requests: number): { rows: string[]; totalBytes: number } {
  const { head } = JSON.parse(readFileSync(path, 'utf8')) as { head: HeapNode };
  const self = new Map<string, number>();
  let totalBytes = 0;
  const stack: HeapNode[] = [head];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (node.selfSize > 0) {
      const key = frameKey(node.callFrame);
      self.set(key, (self.get(key) ?? 0) + node.selfSize);
      totalBytes += node.selfSize;
    }
    stack.push(...node.children);
  }
  const rows = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([key, bytes]) => `| ${(bytes / requests).toFixed(0)} | ${((100 * bytes) / totalBytes).toFixed(1)}% | \`${key.replaceAll('|', '\\|')}\` |`);
  return { rows, totalBytes };
}

const upstream = await start('upstream');
const gateway = await start('tollgate', upstream.url);
try {
  openLoop('warm-up', gateway, RATE, 3);
  const cpuBefore = (await ask<ServerReport>(gateway, { report: true }, 'cpuMs')).cpuMs;
  const plain = openLoop('unprofiled', gateway, RATE, SECONDS);
  const cpuAfter = (await ask<ServerReport>(gateway, { report: true }, 'cpuMs')).cpuMs;
  await ask<{ profiling: boolean }>(gateway, { profile: 'start', promoted: PROMOTED }, 'profiling');
  const profiled = openLoop('profiled', gateway, RATE, SECONDS);
  const { profiled: report } = await ask<{ profiled: ProfileReport }>(gateway, { profile: 'stop', dir: OUT }, 'profiled');
  const cpu = cpuRows(report.cpuProfile, profiled.ok);
  const heap = heapRows(report.heapProfile, profiled.ok);
  const lines = [
    `## Tollgate at ${RATE} req/s, open loop, ${CONNECTIONS} connections, ${SECONDS} s per run (Node ${process.version})`,
    '',
    `Unprofiled: ${plain.ok} requests, gateway CPU ${((1000 * (cpuAfter - cpuBefore)) / plain.ok).toFixed(1)} µs per request ` +
      `(${((100 * (cpuAfter - cpuBefore)) / (SECONDS * 1000)).toFixed(0)} % of a core); latency p50 / p90 / p99 ${plain.p50Ms.toFixed(2)} / ${plain.p90Ms.toFixed(2)} / ${plain.p99Ms.toFixed(2)} ms.`,
    `Profiled: ${profiled.ok} requests, ${((1000 * report.cpuMs) / profiled.ok).toFixed(1)} µs CPU per request with the profilers on, ` +
      `${(cpu.busyUs / profiled.ok).toFixed(1)} µs in JS and the runtime (sampled); ${PROMOTED ? 'promoted' : 'allocated'} ${(heap.totalBytes / profiled.ok / 1024).toFixed(PROMOTED ? 2 : 1)} KB per request; ` +
      `young GCs ${report.gc.young} (one per ${((SECONDS * 1000) / Math.max(1, report.gc.young)).toFixed(0)} ms, mean ${(report.gc.youngMs / Math.max(1, report.gc.young)).toFixed(2)} ms), ` +
      `old GCs ${report.gc.old} (${report.gc.oldMs.toFixed(1)} ms in all).`,
    '',
    '| self µs / request | share of busy | function |',
    '|---:|---:|---|',
    ...cpu.rows,
    '',
    `| ${PROMOTED ? 'bytes promoted' : 'bytes'} / request | share | allocation site |`,
    '|---:|---:|---|',
    ...heap.rows,
    '',
    `Profiles: ${report.cpuProfile}, ${report.heapProfile}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await stop(gateway);
  await stop(upstream);
}
