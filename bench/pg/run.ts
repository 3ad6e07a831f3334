/**
 * Postgres gateway throughput: `pgbench -S` (select only) with 8 clients, simple and prepared
 * protocol, against one embedded PostgreSQL, in one run:
 *   direct        pgbench → PostgreSQL
 *   raw pipe      pgbench → a Node TCP pipe (no parsing: the floor of any Node proxy) → PostgreSQL
 *   pgbouncer     pgbench → pgbouncer, session mode (when Debian's package is installed or installable)
 *   tollgate      pgbench → Tollgate (TLS off on loopback, full policy, durable audit) → PostgreSQL
 * Prints tps and ratios as a markdown table, and where Tollgate's CPU time went (a CPU profile of
 * the gateway during its runs, top functions by self time).
 *
 * Run: node --import tsx bench/pg/run.ts [--seconds 8]
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session as InspectorSession } from 'node:inspector';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, startPgGateway } from '../../test/helpers/pg-gateway.js';
import { LOGIN_PASSWORDS, startTestPostgres, SUPERUSER, SUPERUSER_PASSWORD } from '../../test/helpers/postgres.js';

const argSeconds = process.argv.indexOf('--seconds');
const SECONDS = argSeconds > 0 ? Number(process.argv[argSeconds + 1]) : 8;
const CLIENTS = 8;
const MODES = ['simple', 'prepared'] as const;

interface Target {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

function run(command: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function pgbench(target: Target, mode: string): Promise<number> {
  const result = await run(
    'pgbench',
    ['-n', '-S', '-M', mode, '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-h', target.host, '-p', String(target.port), '-U', target.user, 'shop'],
    { PGPASSWORD: target.password, PGSSLMODE: 'disable' },
  );
  const match = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(result.stdout);
  if (result.code !== 0 || match === null) throw new Error(`pgbench against ${target.name} failed: ${result.stderr || result.stdout}`);
  return Number(match[1]);
}

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

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

function post<T>(session: InspectorSession, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
}

/** Top functions by self time, grouped by function and file. */
function summarize(profile: Profile, top = 15): string[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const counts = new Map<string, number>();
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const file = node.callFrame.url.replace(/^.*\/(node_modules\/[^/]+|src|node:)/, '$1').replace(/^file:\/\//, '');
    const key = `${node.callFrame.functionName || '(anonymous)'} ${file === '' ? '' : `(${file})`}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, count]) => `| ${((100 * count) / total).toFixed(1)}% | \`${key.replaceAll('|', '\\|')}\` |`);
}

async function main(): Promise<void> {
  const server = await startTestPostgres();
  const cleanups: (() => Promise<void> | void)[] = [() => server.stop()];
  try {
    const init = await run('pgbench', ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(server.port), '-U', SUPERUSER, 'shop'], { PGPASSWORD: SUPERUSER_PASSWORD });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    await server.query('grant select on all tables in schema public to shop_reader');

    const pipe = await startPipe(server.port);
    cleanups.push(() => new Promise<void>((resolve) => pipe.close(() => resolve())));
    const bouncer = await startPgbouncer(server.port);
    if (bouncer !== null) cleanups.push(bouncer.stop);
    const gateway = await startPgGateway({ postgres: server });
    cleanups.push(() => gateway.close());
    const relaxed = await startPgGateway({ postgres: server, durability: 'interval' });
    cleanups.push(() => relaxed.close());

    const reader = { user: 'shop_reader', password: LOGIN_PASSWORDS.shop_reader };
    const targets: Target[] = [
      { name: 'direct', host: '127.0.0.1', port: server.port, ...reader },
      { name: 'raw Node TCP pipe', host: '127.0.0.1', port: (pipe.address() as AddressInfo).port, ...reader },
      ...(bouncer === null ? [] : [{ name: 'pgbouncer (session)', host: '127.0.0.1', port: bouncer.port, ...reader }]),
      { name: 'tollgate', host: gateway.host, port: gateway.port, user: ALICE.email as string, password: gateway.token(ALICE, 2 * 60 * 60 * 1000) },
      { name: 'tollgate, audit durability: interval', host: relaxed.host, port: relaxed.port, user: ALICE.email as string, password: relaxed.token(ALICE, 2 * 60 * 60 * 1000) },
    ];

    const inspector = new InspectorSession();
    inspector.connect();
    await post(inspector, 'Profiler.enable');
    await post(inspector, 'Profiler.setSamplingInterval', { interval: 200 });
    const tps = new Map<string, Map<string, number>>();
    let profile: Profile | null = null;
    for (const target of targets) {
      const perMode = new Map<string, number>();
      const profiled = target.name === 'tollgate';
      if (profiled) await post(inspector, 'Profiler.start');
      for (const mode of MODES) perMode.set(mode, await pgbench(target, mode));
      if (profiled) profile = (await post<{ profile: Profile }>(inspector, 'Profiler.stop')).profile;
      tps.set(target.name, perMode);
      process.stderr.write(`${target.name}: ${MODES.map((mode) => `${mode} ${perMode.get(mode)?.toFixed(0)} tps`).join(', ')}\n`);
    }
    inspector.disconnect();
    const records = gateway.store.state().size;

    const pipeTps = tps.get('raw Node TCP pipe') as Map<string, number>;
    const lines = [
      `pgbench -S, ${CLIENTS} clients, ${SECONDS} s per run, scale 1; ${records} audit records written durably by Tollgate`,
      '',
      '| target | simple tps | ÷ pipe | prepared tps | ÷ pipe |',
      '|---|---:|---:|---:|---:|',
      ...[...tps.entries()].map(([name, perMode]) => {
        const cells = MODES.map((mode) => {
          const value = perMode.get(mode) as number;
          return `${value.toFixed(0)} | ${(value / (pipeTps.get(mode) as number)).toFixed(2)}×`;
        });
        return `| ${name} | ${cells.join(' | ')} |`;
      }),
      '',
      'Targets: tollgate ≥ 0.90× the raw pipe in simple mode, ≥ 0.80× in prepared mode.',
      '`tollgate` waits for every `pg.query` record to be fdatasync\'d (durability `always`); the `interval` row',
      'acknowledges records once written and syncs within 100 ms, which shows the cost of the proxy itself.',
    ];
    if (bouncer === null) lines.push('', 'pgbouncer: not installed and could not be installed; row left out.');
    if (profile !== null) {
      lines.push('', 'Where the gateway process spent its CPU during the Tollgate runs (self time):', '', '| share | function |', '|---:|---|', ...summarize(profile));
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

await main();
