/**
 * An open-loop load generator for the latency bar (DESIGN.md §4: added p99 at half the
 * saturating load). wrk measures throughput with closed loops; latency at a fixed rate needs a
 * generator that sends on schedule whatever the server's speed, and measures each request from
 * the moment it was due, so that a stalled server cannot hide its stall (no coordinated
 * omission). Runs in its own process:
 *
 *   node --import tsx bench/http/open-loop.ts <url> <rate/s> <seconds> <connections> [cookie]
 *
 * Prints one JSON line: `{ sent, ok, errors, rate, p50Ms, p99Ms }`.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

const [url = '', rateText = '1000', secondsText = '10', connectionsText = '64', cookie] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
const target = new URL(url);
const pool = new Pool(target.origin, { connections: Number(connectionsText), pipelining: 1, keepAliveTimeout: 60_000 });
const headers: Record<string, string> = cookie === undefined ? {} : { cookie };
const total = Math.floor(rate * seconds);
const latencies = new Float64Array(total);
let sent = 0;
let done = 0;
let ok = 0;
let errors = 0;

function send(due: number): void {
  const index = sent++;
  pool
    .request({ method: 'GET', path: `${target.pathname}${target.search}`, headers })
    .then(async (response) => {
      await response.body.dump();
      if (response.statusCode === 200) ok += 1;
      else errors += 1;
    })
    .catch(() => {
      errors += 1;
    })
    .finally(() => {
      latencies[index] = performance.now() - due;
      done += 1;
    });
}

// Warm up the generator itself (module loading, JIT, connections) so that its own start-up
// cannot turn into a burst that the server then appears to be slow at.
await Promise.all(
  Array.from({ length: Number(connectionsText) }, async () => {
    for (let i = 0; i < 20; i++) {
      const response = await pool.request({ method: 'GET', path: `${target.pathname}${target.search}`, headers });
      await response.body.dump();
    }
  }),
);

const start = performance.now();
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate));
    while (sent < due) send(start + (sent / rate) * 1000);
    if (sent < total) setTimeout(tick, 1);
    else resolve();
  };
  tick();
});
while (done < total) await new Promise((resolve) => setTimeout(resolve, 5));
await pool.close();

const sorted = latencies.slice(0, total).sort();
const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
console.log(JSON.stringify({ sent, ok, errors, rate: total / ((performance.now() - start) / 1000), p50Ms: at(50), p99Ms: at(99) }));
