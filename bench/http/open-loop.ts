/**
 * An open-loop load generator for the latency bar (DESIGN.md §4: added p99 at half the
 * saturating load), run in its own process:
 *
 *   node --import tsx bench/http/open-loop.ts <url> <rate/s> <seconds> <connections> [cookie]
 *
 * Requests are due at a fixed schedule, `rate` per second evenly spaced, whatever the server's
 * speed. Each is sent on the first free keep-alive connection (one request in flight per
 * connection, as browsers and wrk send). Its latency runs from the moment the generator found
 * it due, not from the moment it was sent: a request waiting for a free connection keeps its
 * clock running, so that a stalled server cannot hide its stall by delaying the requests it
 * has not seen yet (no coordinated omission). How late the generator itself woke up to find
 * requests due (its timer and the CPU it shares with the server) is reported apart, as
 * `wakeLagP99Ms`, with the strict latency from the schedule, `dueP99Ms`, that includes it.
 *
 * It shares the machine's two cores with the server it measures, so it is kept cheap: one
 * request serialised once, written with one socket write, and responses framed by their
 * `Content-Length` without an HTTP client library (the undici client used before spent more
 * than twice the CPU per request: about 0.3 of a core at 3,500 req/s, this one about 0.12). Its
 * own CPU time and how late it sent requests are part of its output, so that a run where the
 * generator itself was the bottleneck shows it.
 *
 * Prints one JSON line: `{ sent, ok, errors, rate, p50Ms, p90Ms, p99Ms, p999Ms, maxMs, dueP99Ms,
 * wakeLagP99Ms, cpuMsPerSecond, processCpuMs }` (`processCpuMs`: the CPU this process used since it
 * started, loading included).
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

const [url = '', rateText = '1000', secondsText = '10', connectionsText = '64', cookie] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
const connections = Number(connectionsText);
const target = new URL(url);
if (target.protocol !== 'http:' || !(rate > 0) || !(seconds > 0) || !(connections > 0)) {
  console.error('usage: open-loop.ts <http://host:port/path> <rate/s> <seconds> <connections> [cookie]');
  process.exit(2);
}

/** Requests per connection sent back to back before the measured run. */
const WARMUP_PER_CONNECTION = 40;
const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

const request = Buffer.from(
  `GET ${target.pathname}${target.search} HTTP/1.1\r\nhost: ${target.host}\r\nuser-agent: tollgate-bench-open-loop\r\naccept: application/json\r\n` +
    `${cookie === undefined ? '' : `cookie: ${cookie}\r\n`}\r\n`,
  'latin1',
);

type Done = (ok: boolean) => void;

/**
 * One keep-alive connection with at most one request in flight; parses just enough of each
 * response (status line, `Content-Length`, body length) to know where it ends.
 */
class Connection {
  readonly #socket: Socket;
  #buffer: Buffer | null = null;
  /** Body bytes still to come for the response being read; -1 while its head is incomplete. */
  #bodyLeft = -1;
  #status = 0;
  #done: Done | null = null;
  #broken = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    const fail = (): void => {
      this.#broken = true;
      const done = this.#done;
      this.#done = null;
      done?.(false);
    };
    socket.on('error', fail);
    socket.on('close', fail);
  }

  static open(host: string, port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('connect', () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  get free(): boolean {
    return this.#done === null && !this.#broken;
  }

  send(done: Done): void {
    this.#done = done;
    this.#bodyLeft = -1;
    this.#socket.write(request);
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    let data = this.#buffer === null ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#buffer = null;
    if (this.#bodyLeft < 0) {
      const end = data.indexOf(HEADER_END);
      if (end < 0) {
        this.#buffer = data;
        return;
      }
      const head = data.toString('latin1', 0, end);
      const length = CONTENT_LENGTH.exec(head);
      this.#status = Number(head.slice(9, 12));
      if (length === null) {
        // Only Content-Length framing is expected from the bench's servers (RFC 9112 §6.3).
        this.#socket.destroy();
        return;
      }
      this.#bodyLeft = Number(length[1]);
      data = data.subarray(end + HEADER_END.length);
    }
    this.#bodyLeft -= data.length;
    if (this.#bodyLeft > 0) return;
    if (this.#bodyLeft < 0) {
      // Bytes past the response with one request in flight: the framing is not understood.
      this.#socket.destroy();
      return;
    }
    const done = this.#done;
    this.#done = null;
    done?.(this.#status === 200);
  }
}

const pool = await Promise.all(Array.from({ length: connections }, () => Connection.open(target.hostname, Number(target.port || 80))));

// Warm the server's and the generator's code paths (JIT, connection set-up) before measuring.
await Promise.all(
  pool.map(
    (connection) =>
      new Promise<void>((resolve, reject) => {
        let left = WARMUP_PER_CONNECTION;
        const next = (ok: boolean): void => {
          if (!ok) return reject(new Error('a warm-up request failed; is the server answering 200?'));
          if (--left === 0) return resolve();
          connection.send(next);
        };
        connection.send(next);
      }),
  ),
);

const total = Math.floor(rate * seconds);
const intervalMs = 1000 / rate;
const latencies = new Float64Array(total);
const fromDue = new Float64Array(total);
/** When the generator found each request due: its schedule time plus the generator's own lag. */
const readyAt = new Float64Array(total);
const idle: Connection[] = [...pool];
let due = 0;
let sent = 0;
let finished = 0;
let ok = 0;
let errors = 0;
let start = 0;
let resolveRun: () => void = () => undefined;
const run = new Promise<void>((resolve) => (resolveRun = resolve));

/** Sends every request that is due while a connection is free. */
function dispatch(): void {
  while (sent < due) {
    const connection = idle.pop();
    if (connection === undefined) return;
    if (!connection.free) continue;
    const index = sent++;
    connection.send((success) => {
      const at = performance.now();
      latencies[index] = at - (readyAt[index] ?? at);
      fromDue[index] = at - (start + index * intervalMs);
      if (success) ok += 1;
      else errors += 1;
      finished += 1;
      if (connection.free) idle.push(connection);
      if (finished === total) resolveRun();
      else dispatch();
    });
  }
}

// Bounded in time whatever the server does: a run that cannot finish is a failed run.
setTimeout(() => {
  console.error(`open loop: ${total - finished} of ${total} requests unanswered after ${seconds * 2 + 30} s`);
  process.exit(1);
}, (seconds * 2 + 30) * 1000).unref();
const cpuBefore = process.cpuUsage();
start = performance.now();
const tick = (): void => {
  const now = performance.now();
  const found = due;
  due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
  readyAt.fill(now, found, due);
  dispatch();
  if (due < total) setTimeout(tick, Math.max(0, start + due * intervalMs - performance.now()));
};
tick();
await run;
const elapsedMs = performance.now() - start;
const cpu = process.cpuUsage(cpuBefore);
const processCpu = process.cpuUsage();
for (const connection of pool) connection.close();

const lags = readyAt.map((ready, index) => ready - (start + index * intervalMs)).sort();
const sorted = latencies.sort();
const strict = fromDue.sort();
const at = (values: Float64Array, p: number): number => values[Math.min(values.length - 1, Math.floor((values.length * p) / 100))] ?? 0;
console.log(
  JSON.stringify({
    sent,
    ok,
    errors,
    rate: total / (elapsedMs / 1000),
    p50Ms: at(sorted, 50),
    p90Ms: at(sorted, 90),
    p99Ms: at(sorted, 99),
    p999Ms: at(sorted, 99.9),
    maxMs: sorted[sorted.length - 1] ?? 0,
    dueP99Ms: at(strict, 99),
    wakeLagP99Ms: at(lags, 99),
    cpuMsPerSecond: (cpu.user + cpu.system) / 1000 / (elapsedMs / 1000),
    processCpuMs: (processCpu.user + processCpu.system) / 1000,
  }),
);
