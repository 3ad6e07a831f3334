/**
 * Postgres gateway throughput: `pgbench -S` (select only) with 8 clients, simple and prepared
 * protocol, against one embedded PostgreSQL, in one run:
 *   direct        pgbench → PostgreSQL
 *   raw pipe      pgbench → a Node TCP pipe (no parsing: the floor of any Node proxy) → PostgreSQL
 *   pgbouncer     pgbench → pgbouncer, session mode (when Debian's package is installed or installable)
 *   tollgate      pgbench → Tollgate (TLS off on loopback, full policy, durable audit) → PostgreSQL,
 *                 and the same with durability `interval`, and with no audit I/O at all (the
 *                 proxy's own cost)
 * Prints tps and ratios as a markdown table; what the durable audit costs on this disk (the
 * gateway's write batches, and the physical bound: with every `pg.query` durable before it is
 * forwarded, each client waits at least one round trip plus one sync per statement, so 8 clients
 * cannot exceed 8 ÷ (round trip + sync), measured here with one client through the raw pipe and
 * with bare O_DSYNC writes next to the audit directory); and where Tollgate's CPU time went (a
 * CPU profile of the gateway during its runs, durable and with no audit I/O, top functions by self time).
 *
 * Run: node --import tsx bench/pg/run.ts [--seconds 8]
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { Session as InspectorSession } from 'node:inspector';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AuditStore } from '../../src/audit/index.js';
import { ALICE, startPgGateway } from '../../test/helpers/pg-gateway.js';
import { LOGIN_PASSWORDS, startTestPostgres, SUPERUSER, SUPERUSER_PASSWORD } from '../../test/helpers/postgres.js';
import { runProcess } from '../../test/helpers/run-process.js';
import { acknowledgingStore, pgbench, post, summarize, type Profile, type Target } from './tools.js';

const argSeconds = process.argv.indexOf('--seconds');
const SECONDS = argSeconds > 0 ? Number(process.argv[argSeconds + 1]) : 8;
const CLIENTS = 8;
const MODES = ['simple', 'prepared'] as const;
const UNAUDITED = 'tollgate, no audit I/O (appends acknowledged at once)';

/** A raw TCP pipe: bytes in both directions, nothing parsed. */
async function startPipe(upstreamPort: number): Promise<Server> {
  const server = createServer({ noDelay: true }, (client: Socket) => {
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Latency of a bare durable 4 KiB append (O_DSYNC, as the store writes), in a temp dir on the audit directory's file system. */
function bareSyncMs(writes = 500): { p50: number } {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-sync-'));
  const fd = openSync(join(dir, 'probe'), constants.O_RDWR | constants.O_CREAT | constants.O_DSYNC, 0o600);
  const block = Buffer.alloc(4096, 0x61);
  const times: number[] = [];
  try {
    for (let i = 0; i < writes; i++) {
      const started = performance.now();
      writeSync(fd, block, 0, block.length, i * block.length);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return { p50: times[times.length >> 1] as number };
}

/** What the gateway's audit store did during one pgbench run. */
interface AuditRun {
  batches: number;
  records: number;
  batchMs: number;
  queries: number;
  queryWaitMs: number;
}

function emptyAuditRun(): AuditRun {
  return { batches: 0, records: 0, batchMs: 0, queries: 0, queryWaitMs: 0 };
}

/** The store, with the time from each `pg.query` append to its durability added to `current()`. */
function timingStore(current: () => AuditRun): (store: AuditStore) => AuditStore {
  return (store) => ({
    append(event, options) {
      const started = performance.now();
      const appended = store.append(event, options);
      if (event.kind === 'pg.query') {
        appended.then(
          () => {
            const stats = current();
            stats.queries += 1;
            stats.queryWaitMs += performance.now() - started;
          },
          () => undefined,
        );
      }
      return appended;
    },
    state: () => store.state(),
    checkpointNow: () => store.checkpointNow(),
    close: () => store.close(),
  });
}

function which(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/** pgbouncer in session mode, as the `postgres` system user (it refuses to run as root). */
async function startPgbouncer(upstreamPort: number): Promise<{ port: number; stop: () => void } | null> {
  if (!which('pgbouncer')) {
    process.stderr.write('pgbouncer is not installed; installing the Debian package...\n');
    const install = spawnSync('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1)'], { stdio: 'inherit' });
    if (install.status !== 0 || !which('pgbouncer')) return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-pgbouncer-'));
  chmodSync(dir, 0o755);
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  writeFileSync(join(dir, 'userlist.txt'), `"shop_reader" "${LOGIN_PASSWORDS.shop_reader}"\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `shop = host=127.0.0.1 port=${upstreamPort} dbname=shop`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = plain',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = session',
      `max_client_conn = 100`,
      `default_pool_size = ${CLIENTS * 2}`,
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  for (const name of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, name), Number(ids.stdout), Number(gid.stdout));
  const child = spawn('pgbouncer', ['-u', 'postgres', join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ready = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const server = await startTestPostgres();
  const cleanups: (() => Promise<void> | void)[] = [() => server.stop()];
  try {
    const init = await runProcess('pgbench', ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(server.port), '-U', SUPERUSER, 'shop'], { PGPASSWORD: SUPERUSER_PASSWORD });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    await server.query('grant select on all tables in schema public to shop_reader');

    const pipe = await startPipe(server.port);
    cleanups.push(() => new Promise<void>((resolve) => pipe.close(() => resolve())));
    const bouncer = await startPgbouncer(server.port);
    if (bouncer !== null) cleanups.push(bouncer.stop);
    let audit = emptyAuditRun();
    const gateway = await startPgGateway({
      postgres: server,
      wrapStore: timingStore(() => audit),
      auditObserver: {
        batch: ({ records, durationMs }) => {
          audit.batches += 1;
          audit.records += records;
          audit.batchMs += durationMs;
        },
      },
    });
    cleanups.push(() => gateway.close());
    const relaxed = await startPgGateway({ postgres: server, durability: 'interval' });
    cleanups.push(() => relaxed.close());
    const unaudited = await startPgGateway({ postgres: server, wrapStore: acknowledgingStore });
    cleanups.push(() => unaudited.close());

    const reader = { user: 'shop_reader', password: LOGIN_PASSWORDS.shop_reader };
    const targets: Target[] = [
      { name: 'direct', host: '127.0.0.1', port: server.port, ...reader, inProcess: false },
      { name: 'raw Node TCP pipe', host: '127.0.0.1', port: (pipe.address() as AddressInfo).port, ...reader, inProcess: true },
      ...(bouncer === null ? [] : [{ name: 'pgbouncer (session)', host: '127.0.0.1', port: bouncer.port, ...reader, inProcess: false }]),
      { name: 'tollgate', host: gateway.host, port: gateway.port, user: ALICE.email as string, password: gateway.token(ALICE, 2 * 60 * 60 * 1000), inProcess: true },
      {
        name: 'tollgate, audit durability: interval',
        host: relaxed.host,
        port: relaxed.port,
        user: ALICE.email as string,
        password: relaxed.token(ALICE, 2 * 60 * 60 * 1000),
        inProcess: true,
      },
      {
        name: UNAUDITED,
        host: unaudited.host,
        port: unaudited.port,
        user: ALICE.email as string,
        password: unaudited.token(ALICE, 2 * 60 * 60 * 1000),
        inProcess: true,
      },
    ];

    // Before and after the runs: the disk is shared, and its sync latency drifts.
    const syncBefore = bareSyncMs();
    const inspector = new InspectorSession();
    inspector.connect();
    await post(inspector, 'Profiler.enable');
    await post(inspector, 'Profiler.setSamplingInterval', { interval: 200 });
    const tps = new Map<string, Map<string, number>>();
    /** CPU time of this process (all threads) per transaction, for the targets it serves. */
    const cpuPerTx = new Map<string, Map<string, number>>();
    const audits = new Map<string, AuditRun>();
    /** CPU profiles of the durable gateway and of the one with no audit I/O (the proxy's own cost). */
    const profiles = new Map<string, Profile>();
    for (const target of targets) {
      const perMode = new Map<string, number>();
      const cpu = new Map<string, number>();
      const profiled = target.name === 'tollgate' || target.name === UNAUDITED;
      if (profiled) await post(inspector, 'Profiler.start');
      for (const mode of MODES) {
        audit = emptyAuditRun();
        const before = process.cpuUsage();
        const rate = await pgbench(target, mode, CLIENTS, SECONDS);
        const used = process.cpuUsage(before);
        perMode.set(mode, rate);
        cpu.set(mode, (used.user + used.system) / (rate * SECONDS));
        if (target.name === 'tollgate') audits.set(mode, audit);
      }
      if (target.inProcess) cpuPerTx.set(target.name, cpu);
      if (profiled) profiles.set(target.name, (await post<{ profile: Profile }>(inspector, 'Profiler.stop')).profile);
      tps.set(target.name, perMode);
      process.stderr.write(`${target.name}: ${MODES.map((mode) => `${mode} ${perMode.get(mode)?.toFixed(0)} tps`).join(', ')}\n`);
    }
    inspector.disconnect();
    // The physical bound's inputs: one client's round trip through the raw pipe, and a bare sync.
    const pipeTarget = targets[1] as Target;
    const roundTripMs = new Map<string, number>();
    for (const mode of MODES) roundTripMs.set(mode, 1000 / (await pgbench(pipeTarget, mode, 1, 3)));
    const syncAfter = bareSyncMs();
    // The faster of the two makes the bound an upper bound.
    const sync = syncBefore.p50 <= syncAfter.p50 ? syncBefore : syncAfter;
    const records = gateway.store.state().size;

    const pipeTps = tps.get('raw Node TCP pipe') as Map<string, number>;
    const lines = [
      `pgbench -S, ${CLIENTS} clients, ${SECONDS} s per run, scale 1; ${records} audit records written durably by Tollgate`,
      '',
      '| target | simple tps | ÷ pipe | prepared tps | ÷ pipe | proxy CPU per statement (simple / prepared) |',
      '|---|---:|---:|---:|---:|---:|',
      ...[...tps.entries()].map(([name, perMode]) => {
        const cells = MODES.map((mode) => {
          const value = perMode.get(mode) as number;
          return `${value.toFixed(0)} | ${(value / (pipeTps.get(mode) as number)).toFixed(2)}×`;
        });
        const cpu = cpuPerTx.get(name);
        const micros = cpu === undefined ? '—' : MODES.map((mode) => `${(cpu.get(mode) as number).toFixed(0)} µs`).join(' / ');
        return `| ${name} | ${cells.join(' | ')} | ${micros} |`;
      }),
      '',
      'Targets: tollgate ≥ 0.90× the raw pipe in simple mode, ≥ 0.80× in prepared mode.',
      '`tollgate` waits for every `pg.query` record to be fdatasync\'d (durability `always`); the `interval` row',
      'acknowledges records once written and syncs within 100 ms; the last row writes no audit record at all (a',
      'measurement only), which shows the cost of the proxy itself: framing, SQL classification, policy and relay.',
      'Proxy CPU is the user + system time of the process serving the target (all its threads), per transaction;',
      'pgbench, PostgreSQL and the proxy share the machine, so CPU spent in the proxy is taken from the other two.',
    ];
    if (bouncer === null) lines.push('', 'pgbouncer: not installed and could not be installed; row left out.');
    lines.push(
      '',
      `Durable audit on this disk: a bare O_DSYNC 4 KiB append takes ${syncBefore.p50.toFixed(2)} ms before the runs and ${syncAfter.p50.toFixed(2)} ms after them (p50). Every \`pg.query\` is durable before`,
      `it is forwarded, so each client waits at least one round trip plus one sync per statement: ${CLIENTS} clients cannot exceed`,
      `${CLIENTS} ÷ (round trip + sync), whatever the gateway's own cost. The round trip is one client's through the raw pipe.`,
      '',
      '| mode | tollgate tps | writes/s | records per write | mean write | mean wait of a `pg.query` | 1-client round trip | bound | bound ÷ pipe |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...MODES.map((mode) => {
        const run = audits.get(mode) ?? emptyAuditRun();
        const seconds = SECONDS;
        const roundTrip = roundTripMs.get(mode) as number;
        const bound = (CLIENTS * 1000) / (roundTrip + sync.p50);
        return [
          mode,
          (tps.get('tollgate')?.get(mode) as number).toFixed(0),
          (run.batches / seconds).toFixed(0),
          (run.records / Math.max(1, run.batches)).toFixed(1),
          `${(run.batchMs / Math.max(1, run.batches)).toFixed(2)} ms`,
          `${(run.queryWaitMs / Math.max(1, run.queries)).toFixed(2)} ms`,
          `${roundTrip.toFixed(3)} ms`,
          bound.toFixed(0),
          `${(bound / (pipeTps.get(mode) as number)).toFixed(2)}×`,
        ].join(' | ');
      }).map((row) => `| ${row} |`),
    );
    for (const [name, profile] of profiles) {
      const { idleShare, rows } = summarize(profile);
      lines.push(
        '',
        `Where the gateway process spent its CPU during the \`${name}\` runs (self time, as shares of busy samples; idle ${(100 * idleShare).toFixed(0)}% of the time):`,
        '',
        '| share | function |',
        '|---:|---|',
        ...rows,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

await main();
