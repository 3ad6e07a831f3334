/**
 * The servers of the HTTP benchmark, one per child process so that each gets its own event loop
 * and the load generator measures it alone: `node --import tsx bench/http/servers.ts <mode>`.
 *
 * - `upstream`: the application, answering every request with a small body.
 * - `http-proxy`: bare `http-proxy` 1.18 with its defaults (a new upstream connection per
 *   request), no checks: the baseline of the throughput target.
 * - `http-proxy-keepalive`: the same with a keep-alive agent, as a tuned deployment runs it.
 * - `undici`: the gateway's forwarding engine (undici `Pool.dispatch`) with no checks.
 * - `tollgate`: the full gateway: session cookie, policy decision, durable audit (`always`),
 *   identity headers and assertion.
 * - `tollgate-no-audit`: diagnostic only, never a valid configuration: the full gateway with an
 *   audit store whose appends resolve at once, to show how much of the cost is the audit log.
 *
 * The parent sends `{ upstream }` (the upstream's URL, except for `upstream` itself) and gets
 * `{ url, cookie? }` back once the server listens; `{ close: true }` stops it. `{ report: true }`
 * gets `{ cpuMs, writes }` back: the CPU time the process has used so far, and for `tollgate` the
 * audit writes since the previous report ({@link WriteStats}), otherwise `null`.
 * `{ profile: 'start', promoted? }` starts a CPU profile and an allocation-sampling heap profile of the
 * process (objects the GC has already freed included) and counts its garbage collections;
 * `{ profile: 'stop', dir }` ends them, writes `gateway.cpuprofile` and `gateway.heapprofile` to
 * `dir` (both open in Chrome DevTools) and answers `{ profiled }` ({@link ProfileReport}).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:http';
import { Session as InspectorSession } from 'node:inspector';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants, type PerformanceEntry } from 'node:perf_hooks';
import httpProxy from 'http-proxy';
import { Registry } from 'prom-client';
import { generateSignerKey, openFileStore, parseSignerKey, type AuditStore } from '../../src/audit/index.js';
import { tuneHeapForGateway } from '../../src/cli/heap.js';
import { loadConfigOrThrow } from '../../src/config/index.js';
import { createIdentity, createSessionCookies } from '../../src/identity/index.js';
import { compilePolicy } from '../../src/policy/index.js';
import { startHttpGateway, type HttpGateway } from '../../src/proxy/http/index.js';
import { createUpstreamPool, forward } from '../../src/proxy/http/forward.js';
import { upstreamRequestHeaders } from '../../src/proxy/http/headers.js';

type Mode = 'upstream' | 'http-proxy' | 'http-proxy-keepalive' | 'undici' | 'tollgate' | 'tollgate-no-audit';

const BODY = Buffer.from('{"ok":true,"service":"bench-upstream"}\n');
const SESSION_KEY = 'bench-session-key-0123456789abcdefghij';

async function listen(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function upstreamServer(): Server {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
      res.end(BODY);
    });
  });
  server.keepAliveTimeout = 60_000;
  return server;
}

/**
 * `http-proxy` as it comes (`agent` unset: one upstream connection per request, closed after
 * it), or with a keep-alive agent, the way a tuned deployment would run it.
 */
function httpProxyServer(upstream: string, keepAlive: boolean): Server {
  const proxy = httpProxy.createProxyServer(keepAlive ? { target: upstream, agent: new Agent({ keepAlive: true, maxSockets: 256 }) } : { target: upstream });
  proxy.on('error', (_error, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502);
    res.end();
  });
  const server = createServer((req, res) => proxy.web(req, res));
  server.keepAliveTimeout = 60_000;
  return server;
}

function undiciServer(upstream: string): Server {
  const pool = createUpstreamPool({ origin: upstream, connectTimeoutMs: 5_000, idleTimeoutMs: 60_000, maxConnections: 256 });
  const server = createServer((req, res) => {
    const forwarding = forward({
      pool,
      req,
      res,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: upstreamRequestHeaders(req.headers, { peer: req.socket.remoteAddress ?? '', peerTrusted: false, scheme: 'http', cookie: null, dropAuthorization: false, identity: {} }),
      hasBody: req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined,
      responseHeaders: [],
      reservedCookies: [],
      listener: { upstreamFailed: (status) => res.writeHead(status).end(), done: () => undefined },
    });
    res.once('close', () => {
      if (!res.writableFinished) forwarding.clientClosed();
    });
  });
  server.keepAliveTimeout = 60_000;
  return server;
}

/** A discovery document is all the gateway needs from an IdP when every caller has a session. */
function discoveryStub(): Server {
  let issuer = '';
  const server = createServer((req, res) => {
    const metadata = { issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'] };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.url === '/jwks' ? { keys: [] } : metadata));
  });
  server.on('listening', () => {
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  return server;
}

interface Tollgate {
  readonly url: string;
  readonly cookie: string;
  /** The audit writes since the previous call. */
  takeStats(): WriteStats;
  close(): Promise<void>;
}

/** The audit log's batches (one vectored write each, synced with durability `always`). */
export interface WriteStats {
  readonly writes: number;
  readonly records: number;
  /** Duration of one batch's write and sync, milliseconds. */
  readonly writeP50Ms: number;
  readonly writeP99Ms: number;
}

/** Collects the audit store's batches through its observer. */
class WriteRecorder {
  #durations: number[] = [];
  #records = 0;

  batch(info: { readonly records: number; readonly durationMs: number }): void {
    this.#durations.push(info.durationMs);
    this.#records += info.records;
  }

  take(): WriteStats {
    const sorted = this.#durations.sort((a, b) => a - b);
    const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
    const stats = { writes: sorted.length, records: this.#records, writeP50Ms: at(50), writeP99Ms: at(99) };
    this.#durations = [];
    this.#records = 0;
    return stats;
  }
}

async function tollgate(upstream: string, durable: boolean): Promise<Tollgate> {
  // As `tollgate serve` runs.
  tuneHeapForGateway();
  const idp = discoveryStub();
  const issuer = await listen(idp);
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-http-'));
  const keys = generateSignerKey('bench.tollgate');
  const port = await freePort();
  const text = `
server:
  public_url: http://127.0.0.1:${port}
  http:
    listen: 127.0.0.1:${port}
identity:
  issuer: ${issuer}
  client_id: tollgate
  session:
    keys: ["${SESSION_KEY}"]
resources:
  - name: app
    kind: http
    upstream: ${upstream}
    match:
      path_prefix: /app/
roles:
  engineer:
    allow:
      - resource: app
        methods: [GET, HEAD, POST]
        paths: ["/app/**"]
    deny:
      - resource: app
        paths: ["/app/admin/**"]
grants:
  - role: engineer
    groups: [engineering]
audit:
  dir: ${join(dir, 'audit')}
  log_id: bench.tollgate/audit
  signing_key: \${env:AUDIT_KEY}
  durability: always
`;
  const config = loadConfigOrThrow({ file: join(dir, 'tollgate.yaml'), text, env: { AUDIT_KEY: keys.signerKey }, readFile: () => '' });
  const identity = await createIdentity({ publicUrl: config.server.public_url, identity: config.identity });
  const writes = new WriteRecorder();
  const store: AuditStore = await openFileStore({
    dir: config.audit.dir,
    logId: config.audit.log_id,
    signer: parseSignerKey(config.audit.signing_key),
    observer: { batch: (info) => writes.batch(info) },
  });
  let seq = 0;
  const audit: AuditStore = durable ? store : { ...store, append: () => Promise.resolve({ seq: seq++, leafHash: new Uint8Array(32) }), state: () => store.state(), close: () => store.close(), checkpointNow: () => store.checkpointNow() };
  const gateway: HttpGateway = await startHttpGateway({ config, policy: compilePolicy(config.policy), identity, audit, registry: new Registry() });
  const now = Date.now();
  const cookies = createSessionCookies({ publicUrl: config.server.public_url, identity: config.identity });
  const setCookie = cookies.serializeSessionCookie({
    sessionId: 'bench-session',
    subject: '5f2b6c1e-8d0a-4c1b-9f3e-2a7d9c4b1e60',
    email: 'alice@example.com',
    groups: ['engineering', 'oncall'],
    user: 'alice@example.com',
    issuedAt: now,
    expiresAt: now + 8 * 3_600_000,
  });
  return {
    url: gateway.url,
    cookie: setCookie.split(';', 1)[0] ?? '',
    takeStats: () => writes.take(),
    async close() {
      await gateway.close();
      await store.close();
      idp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const mode = process.argv[2] as Mode;

interface Running {
  stop(): Promise<void>;
  writes?(): WriteStats;
}

/** What a server tells the parent when asked. */
export interface ServerReport {
  readonly cpuMs: number;
  readonly writes: WriteStats | null;
}

/** What `{ profile: 'stop' }` answers. */
export interface ProfileReport {
  readonly cpuMs: number;
  readonly cpuProfile: string;
  readonly heapProfile: string;
  /** Garbage collections during the profile: count and total pause, by kind. */
  readonly gc: { readonly young: number; readonly youngMs: number; readonly old: number; readonly oldMs: number };
}

function post<T>(session: InspectorSession, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
}

/** The profilers of one `start` … `stop` window. */
class Profiling {
  readonly #session = new InspectorSession();
  readonly #gc = { young: 0, youngMs: 0, old: 0, oldMs: 0 };
  readonly #observer = new PerformanceObserver((list) => list.getEntries().forEach((entry) => this.#count(entry)));
  #cpuAtStart = process.cpuUsage();

  /**
   * With `promoted`, the heap profile keeps only objects that outlived the young collections
   * (finer sampling, since they are few): what fills the old generation and so brings on the
   * full collections. Otherwise every allocation counts, freed or not: the allocation rate.
   */
  async start(promoted: boolean): Promise<void> {
    this.#session.connect();
    await post(this.#session, 'Profiler.enable');
    await post(this.#session, 'Profiler.setSamplingInterval', { interval: 100 });
    await post(this.#session, 'HeapProfiler.enable');
    await post(this.#session, 'HeapProfiler.startSampling', {
      samplingInterval: promoted ? 1024 : 16_384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: !promoted,
    });
    await post(this.#session, 'Profiler.start');
    this.#observer.observe({ entryTypes: ['gc'] });
    this.#cpuAtStart = process.cpuUsage();
  }

  async stop(dir: string): Promise<ProfileReport> {
    const cpu = process.cpuUsage(this.#cpuAtStart);
    this.#observer.disconnect();
    const { profile } = await post<{ profile: unknown }>(this.#session, 'Profiler.stop');
    const heap = await post<{ profile: unknown }>(this.#session, 'HeapProfiler.stopSampling');
    this.#session.disconnect();
    const cpuProfile = join(dir, 'gateway.cpuprofile');
    const heapProfile = join(dir, 'gateway.heapprofile');
    writeFileSync(cpuProfile, JSON.stringify(profile));
    writeFileSync(heapProfile, JSON.stringify(heap.profile));
    return { cpuMs: (cpu.user + cpu.system) / 1000, cpuProfile, heapProfile, gc: { ...this.#gc } };
  }

  #count(entry: PerformanceEntry): void {
    const kind = (entry as PerformanceEntry & { readonly detail?: { readonly kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
      this.#gc.young += 1;
      this.#gc.youngMs += entry.duration;
    } else {
      this.#gc.old += 1;
      this.#gc.oldMs += entry.duration;
    }
  }
}

process.once('message', (message: { upstream?: string }) => {
  const start = async (): Promise<Running> => {
    const upstream = message.upstream ?? '';
    if (mode === 'tollgate' || mode === 'tollgate-no-audit') {
      const gateway = await tollgate(upstream, mode === 'tollgate');
      process.send?.({ url: gateway.url, cookie: gateway.cookie });
      return { stop: () => gateway.close(), writes: () => gateway.takeStats() };
    }
    const server =
      mode === 'upstream' ? upstreamServer() : mode === 'undici' ? undiciServer(upstream) : httpProxyServer(upstream, mode === 'http-proxy-keepalive');
    process.send?.({ url: await listen(server) });
    return {
      async stop() {
        server.closeAllConnections();
        server.close();
      },
    };
  };
  start()
    .then((running) => {
      let profiling: Profiling | null = null;
      const onMessage = (next: { report?: boolean; profile?: 'start' | 'stop'; promoted?: boolean; dir?: string }): void => {
        if (next.profile === 'start') {
          profiling = new Profiling();
          void profiling.start(next.promoted === true).then(() => process.send?.({ profiling: true }));
          return;
        }
        if (next.profile === 'stop' && profiling !== null) {
          void profiling.stop(next.dir ?? tmpdir()).then((profiled) => process.send?.({ profiled }));
          profiling = null;
          return;
        }
        if (next.report === true) {
          const cpu = process.cpuUsage();
          const report: ServerReport = { cpuMs: (cpu.user + cpu.system) / 1000, writes: running.writes?.() ?? null };
          process.send?.(report);
          return;
        }
        process.off('message', onMessage);
        void running.stop().then(() => process.disconnect?.());
      };
      process.on('message', onMessage);
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
});
