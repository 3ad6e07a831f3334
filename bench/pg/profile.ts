/**
 * A CPU profile of the Postgres gateway alone under `pgbench -S`, 8 clients, one profile per
 * protocol mode: tps, the gateway process's CPU per statement, and the top functions by self
 * time. The audit store acknowledges at once by default, so what shows is the proxy's own cost
 * (framing, classification, policy, relay); `--audit durable` profiles the real file store.
 *
 * Run: node --import tsx bench/pg/profile.ts [--seconds 8] [--audit durable] [--top 20]
 */
import { Session as InspectorSession } from 'node:inspector';
import { ALICE, startPgGateway } from '../../test/helpers/pg-gateway.js';
import { startTestPostgres, SUPERUSER, SUPERUSER_PASSWORD } from '../../test/helpers/postgres.js';
import { runProcess } from '../../test/helpers/run-process.js';
import { acknowledgingStore, pgbench, post, summarize, type Profile, type Target } from './tools.js';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index > 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const SECONDS = Number(option('--seconds', '8'));
const DURABLE = option('--audit', 'none') === 'durable';
const TOP = Number(option('--top', '20'));
const CLIENTS = 8;

async function main(): Promise<void> {
  const server = await startTestPostgres();
  try {
    const init = await runProcess('pgbench', ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(server.port), '-U', SUPERUSER, 'shop'], { PGPASSWORD: SUPERUSER_PASSWORD });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    await server.query('grant select on all tables in schema public to shop_reader');
    const gateway = await startPgGateway(DURABLE ? { postgres: server } : { postgres: server, wrapStore: acknowledgingStore });
    try {
      const target: Target = {
        name: 'tollgate',
        host: gateway.host,
        port: gateway.port,
        user: ALICE.email as string,
        password: gateway.token(ALICE, 60 * 60 * 1000),
        inProcess: true,
      };
      const inspector = new InspectorSession();
      inspector.connect();
      await post(inspector, 'Profiler.enable');
      await post(inspector, 'Profiler.setSamplingInterval', { interval: 100 });
      const lines = [`Gateway alone, pgbench -S, ${CLIENTS} clients, ${SECONDS} s per mode, audit: ${DURABLE ? 'durable file store' : 'acknowledged at once, nothing written'}`];
      for (const mode of ['simple', 'prepared']) {
        await post(inspector, 'Profiler.start');
        const before = process.cpuUsage();
        const tps = await pgbench(target, mode, CLIENTS, SECONDS);
        const used = process.cpuUsage(before);
        const { profile } = await post<{ profile: Profile }>(inspector, 'Profiler.stop');
        const { idleShare, rows } = summarize(profile, TOP);
        lines.push(
          '',
          `${mode}: ${tps.toFixed(0)} tps, ${((used.user + used.system) / (tps * SECONDS)).toFixed(1)} µs gateway CPU per statement, idle ${(100 * idleShare).toFixed(0)}% of the time`,
          '',
          '| share of busy | function |',
          '|---:|---|',
          ...rows,
        );
      }
      inspector.disconnect();
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      await gateway.close();
    }
  } finally {
    await server.stop();
  }
}

await main();
