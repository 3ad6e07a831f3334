import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { generateSignerKey, openFileStore, parseSignerKey } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';

/**
 * Durable appends per second (DESIGN.md §4: ≥ 100k records/s with 64 concurrent writers):
 * `writers` loops each await one append at a time, records of about 500 canonical bytes,
 * durability `always`, a fresh audit directory under the system temp dir.
 */
export interface AppendBenchOptions {
  readonly records: number;
  readonly writers: number;
  /** Keep the log here (and keep it afterwards) instead of a temp directory removed at the end. */
  readonly dir?: string;
  readonly signerKey?: string;
}

export interface AppendBenchResult {
  readonly records: number;
  readonly writers: number;
  readonly seconds: number;
  readonly recordsPerSecond: number;
  readonly batches: number;
  readonly meanBatch: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly recordBytes: number;
  /** Mean time from a batch's write call to its return (write and sync with O_DSYNC). */
  readonly meanWriteMs: number;
  /** Process CPU time (user + system, all threads) per record. */
  readonly cpuMicrosPerRecord: number;
  /** Time the event loop spent running code (not waiting for I/O), per record: the writer's own cost. */
  readonly loopMicrosPerRecord: number;
  /** Share of the run the event loop was busy (1 means the main thread was the limit). */
  readonly loopUtilization: number;
}

/** The bench's record: an allowed HTTP request of about 570 canonical bytes, from writer `writer`. */
export function httpRequestEvent(writer: number, n: number): AuditEvent {
  return {
    kind: 'http.request',
    principal: { subject: `user-${writer}`, email: `user${writer}@example.com`, groups: ['engineering'] },
    resource: 'app',
    decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'request-allowed' },
    request_id: `req-${writer}-${n}`,
    data: {
      method: 'GET',
      path: `/app/api/orders/${n}?limit=50`,
      host: 'app.example.com',
      remote: '10.0.0.7',
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0',
    },
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

export async function benchAppend(options: AppendBenchOptions): Promise<AppendBenchResult> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tollgate-bench-audit-'));
  const signer = parseSignerKey(options.signerKey ?? generateSignerKey('bench.example').signerKey);
  const latencies = new Float64Array(options.records + 8);
  let latencyCount = 0;
  let batches = 0;
  let batchRecords = 0;
  let recordBytes = 0;
  let writeMs = 0;
  const store = await openFileStore({
    dir,
    logId: BENCH_LOG_ID,
    signer,
    durability: 'always',
    observer: {
      appended: (ms) => {
        if (latencyCount < latencies.length) latencies[latencyCount++] = ms;
      },
      batch: ({ records, bytes, durationMs }) => {
        batches += 1;
        writeMs += durationMs;
        batchRecords += records;
        recordBytes = Math.round(bytes / records) - 8;
      },
    },
  });
  try {
    let issued = 0;
    const cpuBefore = process.cpuUsage();
    const loopBefore = performance.eventLoopUtilization();
    const started = performance.now();
    const writer = async (id: number): Promise<void> => {
      while (issued < options.records) {
        issued += 1;
        await store.append(httpRequestEvent(id, issued));
      }
    };
    await Promise.all(Array.from({ length: options.writers }, (_, id) => writer(id)));
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const loop = performance.eventLoopUtilization(loopBefore);
    const sorted = latencies.subarray(0, latencyCount).sort();
    return {
      records: options.records,
      writers: options.writers,
      seconds,
      recordsPerSecond: options.records / seconds,
      batches,
      meanBatch: batchRecords / Math.max(1, batches),
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      recordBytes,
      meanWriteMs: writeMs / Math.max(1, batches),
      cpuMicrosPerRecord: (cpu.user + cpu.system) / options.records,
      loopMicrosPerRecord: (loop.active * 1000) / options.records,
      loopUtilization: loop.utilization,
    };
  } finally {
    await store.close();
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

export const BENCH_LOG_ID = 'bench.example/audit';

export function formatAppendResult(result: AppendBenchResult): string {
  const rows = [
    ['records', String(result.records)],
    ['concurrent writers', String(result.writers)],
    ['record size (canonical bytes)', String(result.recordBytes)],
    ['durability', 'always (one O_DSYNC vectored write per batch)'],
    ['seconds', result.seconds.toFixed(2)],
    ['**durable appends/s**', `**${Math.round(result.recordsPerSecond).toLocaleString('en-US')}** (target ≥ 100,000)`],
    ['batches', String(result.batches)],
    ['mean batch size', result.meanBatch.toFixed(1)],
    ['mean write cycle (write and sync, per batch)', `${result.meanWriteMs.toFixed(3)} ms`],
    ['append latency p50', `${result.p50Ms.toFixed(2)} ms`],
    ['append latency p99', `${result.p99Ms.toFixed(2)} ms`],
    ['CPU per record (user + system, all threads)', `${result.cpuMicrosPerRecord.toFixed(1)} µs`],
    ['event-loop busy per record', `${result.loopMicrosPerRecord.toFixed(1)} µs (loop ${Math.round(result.loopUtilization * 100)}% busy)`],
  ];
  return ['| audit append | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const records = Number(process.argv[2] ?? 200_000);
  console.log(formatAppendResult(await benchAppend({ records, writers: 64 })));
}
