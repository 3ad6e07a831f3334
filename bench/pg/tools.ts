/**
 * What the Postgres benchmarks share: running pgbench against a target, an audit store that
 * acknowledges at once, and CPU profiles of this process summarised by self time.
 */
import type { Session as InspectorSession } from 'node:inspector';
import type { AuditStore } from '../../src/audit/index.js';
import { runProcess } from '../../test/helpers/run-process.js';

export interface Target {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Served by this process (the pipe, the gateways): its CPU time is the target's. */
  readonly inProcess: boolean;
}

/** `pgbench -S` (select only) against `target`'s `shop` database; resolves to its tps. */
export async function pgbench(target: Target, mode: string, clients: number, seconds: number): Promise<number> {
  const result = await runProcess(
    'pgbench',
    ['-n', '-S', '-M', mode, '-c', String(clients), '-j', String(Math.min(2, clients)), '-T', String(seconds), '-h', target.host, '-p', String(target.port), '-U', target.user, 'shop'],
    { PGPASSWORD: target.password, PGSSLMODE: 'disable' },
  );
  const match = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(result.stdout);
  if (result.code !== 0 || match === null) throw new Error(`pgbench against ${target.name} failed: ${result.stderr || result.stdout}`);
  return Number(match[1]);
}

/**
 * The store with every append acknowledged at once and nothing written: the gateway's own cost
 * (framing, SQL classification, policy, relay) with no audit I/O, to tell it apart from the
 * audit's. Not a configuration Tollgate offers.
 */
export function acknowledgingStore(store: AuditStore): AuditStore {
  let seq = 0;
  const leafHash = new Uint8Array(32);
  return {
    append: () => Promise.resolve({ seq: seq++, leafHash }),
    state: () => store.state(),
    checkpointNow: () => store.checkpointNow(),
    close: () => store.close(),
  };
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
export interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

export function post<T>(session: InspectorSession, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
}

/**
 * Top functions by self time, grouped by function and file, as shares of the samples in which the
 * process was busy (idle samples, the event loop waiting, are left out and counted apart).
 */
export function summarize(profile: Profile, top = 15): { idleShare: number; rows: string[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const counts = new Map<string, number>();
  let idle = 0;
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (node === undefined) continue;
    if (node.callFrame.functionName === '(idle)') {
      idle += 1;
      continue;
    }
    const file = node.callFrame.url.replace(/^.*\/(node_modules\/[^/]+|src|node:)/, '$1').replace(/^file:\/\//, '');
    const key = `${node.callFrame.functionName || '(anonymous)'} ${file === '' ? '' : `(${file})`}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const busy = Math.max(1, profile.samples.length - idle);
  const rows = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, count]) => `| ${((100 * count) / busy).toFixed(1)}% | \`${key.replaceAll('|', '\\|')}\` |`);
  return { idleShare: idle / Math.max(1, profile.samples.length), rows };
}
