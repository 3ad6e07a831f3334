import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { genesisPrev, sealRecord } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { encodeRecordInto, recordEnvelope } from '../../src/audit/record.js';
import { httpRequestEvent } from './append.js';

/**
 * The record encoder alone: nanoseconds per record for `encodeRecordInto` (the writer's hot path,
 * which encodes straight into its frame buffer) against `sealRecord`'s general path (check and
 * copy the event, `JSON.stringify`, UTF-8 encode; its leaf hash is left out) measured in the
 * same run. The last case mixes the three shapes, as one gateway's writer sees them.
 *
 * Events are built fresh for every round, outside the timed part, because the store encodes each
 * event exactly once: its strings arrive as the caller made them (template-literal strings not
 * yet flattened), not warmed by an earlier encoding.
 */
export interface EncodeBenchOptions {
  /** Timed rounds per case and encoder; the median round is reported. */
  readonly rounds: number;
  /** Events per round. */
  readonly batch: number;
}

export interface EncodeCaseResult {
  readonly name: string;
  /** Mean canonical bytes per record. */
  readonly recordBytes: number;
  readonly encodeNs: number;
  readonly sealNs: number;
}

const LOG_ID = 'bench.example/audit';
const TIME_MS = Date.UTC(2025, 0, 31, 12, 0, 0, 7);

/** The same shape with text outside ASCII: accented names, CJK, an emoji, an escaped quote. */
function nonAsciiEvent(writer: number, n: number): AuditEvent {
  return {
    kind: 'http.request',
    principal: { subject: `utilisateur-${writer}`, email: `zoë.müller${writer}@exemple.fr`, groups: ['ingénierie', '開発'] },
    resource: 'app',
    decision: { effect: 'allow', rule: 'ingénieur.allow[0]', reason: 'request-allowed' },
    request_id: `req-${writer}-${n}`,
    data: {
      method: 'GET',
      path: `/app/api/commandes/${n}?q=café "crème" 😀`,
      host: 'app.example.com',
      remote: '10.0.0.7',
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 — 日本語版',
    },
  };
}

/** A Postgres statement record with one long SQL text, the string-heavy end of the mix. */
function sqlEvent(writer: number, n: number): AuditEvent {
  return {
    kind: 'pg.query',
    principal: { subject: `user-${writer}`, email: `user${writer}@example.com`, groups: ['dba'] },
    resource: 'shop',
    decision: { effect: 'allow', rule: 'dba.allow[1]', reason: 'statement-allowed' },
    session_id: `pg-${writer}`,
    data: {
      class: 'read',
      command: 'SELECT',
      fingerprint: '348bee4e67e86ca6',
      functions: [],
      login: 'reader',
      params: [`${n}`, null],
      protocol: 'extended',
      statement: `SELECT o.id, o.created_at, o.status, c.name, c.email, sum(l.quantity * l.unit_price) AS total FROM orders o JOIN customers c ON c.id = o.customer_id JOIN order_lines l ON l.order_id = o.id WHERE o.customer_id = $1 AND o.created_at > now() - interval '30 days' AND o.status <> 'cancelled' GROUP BY o.id, c.name, c.email ORDER BY o.created_at DESC LIMIT 50 /* ${n} */`,
      tables: ['customers', 'order_lines', 'orders'],
    },
  };
}

const SHAPES = [httpRequestEvent, nonAsciiEvent, sqlEvent] as const;

const CASES: readonly (readonly [string, (writer: number, n: number) => AuditEvent])[] = [
  ['HTTP request (bench/audit/append.ts shape, ASCII)', httpRequestEvent],
  ['HTTP request with non-ASCII text', nonAsciiEvent],
  ['pg.query with a 390-character statement', sqlEvent],
  ['the three above in turn', (writer, n) => SHAPES[n % SHAPES.length]!(writer, n)],
];

const NO_HASH = new Uint8Array(0);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function benchEncode(options: EncodeBenchOptions): EncodeCaseResult[] {
  const envelope = recordEnvelope(LOG_ID, TIME_MS);
  if (envelope === null) throw new Error('the bench envelope is invalid');
  const prev = genesisPrev(LOG_ID);
  const seal = { logId: LOG_ID, seq: 1_000_000, prev, timeMs: TIME_MS, hashLeaf: () => NO_HASH };
  // Laid out as FrameArena lays frames: back to back in one large buffer, 8 bytes apart.
  const arena = Buffer.allocUnsafe(options.batch * 2048 + 65_536);
  const decoder = new TextDecoder();
  const results: EncodeCaseResult[] = [];
  for (const [name, make] of CASES) {
    const fresh = (round: number) => Array.from({ length: options.batch }, (_, i) => make(i % 64, round * options.batch + i));
    // Both paths must give the same bytes, or the comparison means nothing.
    const sample = make(7, 12_345);
    const end = encodeRecordInto(sample, envelope, seal.seq, prev, arena, 0);
    const sealed = sealRecord(sample, seal).bytes;
    if (end < 0 || decoder.decode(arena.subarray(0, end)) !== decoder.decode(sealed)) throw new Error(`${name}: the encoders disagree`);
    const encodeRounds: number[] = [];
    const sealRounds: number[] = [];
    let sink = 0;
    let recordBytes = 0;
    for (let round = -3; round < options.rounds; round++) {
      let events = fresh(round + 3);
      let at = 0;
      let started = performance.now();
      for (const event of events) at = encodeRecordInto(event, envelope, seal.seq, prev, arena, at) + 8;
      const encodeMs = performance.now() - started;
      recordBytes = at / options.batch - 8;
      sink += at;
      events = fresh(round + 3);
      started = performance.now();
      for (const event of events) sink += sealRecord(event, seal).bytes.length;
      const sealMs = performance.now() - started;
      // The first rounds warm the code up and are not counted.
      if (round < 0) continue;
      encodeRounds.push((encodeMs * 1e6) / options.batch);
      sealRounds.push((sealMs * 1e6) / options.batch);
    }
    if (sink === 0) throw new Error('nothing was encoded');
    results.push({ name, recordBytes, encodeNs: median(encodeRounds), sealNs: median(sealRounds) });
  }
  return results;
}

export function formatEncodeResult(results: readonly EncodeCaseResult[]): string {
  const rows = results.map(
    (r) => `| ${r.name} | ${Math.round(r.recordBytes)} | **${Math.round(r.encodeNs)}** | ${Math.round(r.sealNs)} | ${(r.sealNs / r.encodeNs).toFixed(2)}× |`,
  );
  return ['| record | bytes | encodeRecordInto ns/record | sealRecord ns/record (no hash) | ratio |', '|---|---|---|---|---|', ...rows].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rounds = Number(process.argv[2] ?? 30);
  console.log(formatEncodeResult(benchEncode({ rounds, batch: 4096 })));
}
