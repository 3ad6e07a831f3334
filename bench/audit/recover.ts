import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { generateSignerKey, openFileStore, parseSignerKey } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';

/**
 * How long opening (recovering) an audit log takes: the store scans every segment, checks
 * framing and CRCs, hashes every record into the Merkle tree and compares the root with the
 * latest signed checkpoint, then chain-verifies the unsigned tail. The log is built first with
 * durability `interval` (faster to write; recovery reads the same bytes either way).
 */
export interface RecoverBenchResult {
  readonly records: number;
  readonly unsigned: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly recordsPerSecond: number;
  /** Peak resident memory during the open, above what the process held before it. */
  readonly peakGrowthMiB: number;
}

const LOG_ID = 'bench.example/audit';

function eventFor(n: number): AuditEvent {
  return {
    kind: 'pg.query',
    principal: { subject: `user-${n % 50}`, email: `user${n % 50}@example.com`, groups: ['engineering'] },
    resource: 'shop',
    decision: { effect: 'allow', rule: 'engineer.allow[1]', reason: 'statement-allowed' },
    request_id: `req-${n}`,
    data: { sql: `select * from orders where id = ${n}`, class: 'read', tables: ['public.orders'], fingerprint: 'a1b2c3d4e5f60718' },
  };
}

export async function benchRecover(options: { readonly records: number; readonly unsigned: number }): Promise<RecoverBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'tollgate-bench-recover-'));
  const dir = join(work, 'log');
  const image = join(work, 'image');
  const signer = parseSignerKey(generateSignerKey('bench.example').signerKey);
  try {
    const writer = await openFileStore({ dir, logId: LOG_ID, signer, durability: 'interval', checkpointIntervalMs: 3_600_000 });
    const signedCount = options.records - options.unsigned;
    let next = 0;
    const fill = async (until: number) => {
      await Promise.all(
        Array.from({ length: 256 }, async () => {
          while (next < until) await writer.append(eventFor(next++));
        }),
      );
    };
    await fill(signedCount);
    await writer.checkpointNow();
    await fill(options.records);
    const bytes = writer.state().bytes;
    // A crash image: the tail after the checkpoint stays unsigned, as after a kill.
    cpSync(dir, image, { recursive: true });
    await writer.close();

    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const started = performance.now();
    const store = await openFileStore({ dir: image, logId: LOG_ID, signer });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const peakGrowthMiB = (peak - baseline) / 2 ** 20;
    if (store.state().size !== options.records) throw new Error(`recovered ${store.state().size} records, expected ${options.records}`);
    await store.close();
    return { records: options.records, unsigned: options.unsigned, bytes, seconds, recordsPerSecond: options.records / seconds, peakGrowthMiB };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function formatRecoverResult(result: RecoverBenchResult): string {
  const rows = [
    ['records (of which unsigned, chain-verified)', `${result.records.toLocaleString('en-US')} (${result.unsigned.toLocaleString('en-US')})`],
    ['log size', `${(result.bytes / 2 ** 20).toFixed(0)} MiB`],
    ['**open (recovery) time**', `**${result.seconds.toFixed(2)} s** (target: a few seconds for 1M records)`],
    ['records/s', Math.round(result.recordsPerSecond).toLocaleString('en-US')],
    ['peak memory growth during open (RSS)', `${result.peakGrowthMiB.toFixed(0)} MiB`],
  ];
  return ['| audit recovery on open | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const records = Number(process.argv[2] ?? 1_000_000);
  console.log(formatRecoverResult(await benchRecover({ records, unsigned: Math.min(50_000, Math.floor(records / 10)) })));
}
