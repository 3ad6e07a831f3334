/**
 * The audit guarantees of the Postgres gateway, checked against the database's own statement
 * log (`log_statement=all`): every statement the upstream executed has exactly one `pg.query`
 * allow record, durable before the upstream saw it; and when the audit log cannot be written,
 * statements are refused and the upstream receives none of them.
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord, AuditStore } from '../../src/audit/index.js';
import { FaultyFs, waitFor } from '../helpers/audit-store.js';
import { ALICE, BOB, startPgGateway, type PgGatewayHarness } from '../helpers/pg-gateway.js';
import { bind, execute, parse, sync, WireClient } from '../helpers/pg-wire.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

let server: TestPostgres;

beforeAll(async () => {
  server = await startTestPostgres();
});

afterAll(async () => {
  await server?.stop();
});

function psql(gw: PgGatewayHarness, args: readonly string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const dsn = `host=${gw.host} port=${gw.port} dbname=shop user=${ALICE.email} sslmode=disable`;
    const child = spawn('psql', ['-X', '-A', '-t', ...args, dsn], { env: { ...process.env, PGPASSWORD: gw.token(ALICE) }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', resolve);
  });
}

/** The store, with `pg.query` appends held 20 ms longer and the moment each became durable noted. */
function delayingStore(resolvedAt: Map<number, number>): (store: AuditStore) => AuditStore {
  return (store) => ({
    async append(event, options) {
      const result = await store.append(event, options);
      if (event.kind === 'pg.query') await new Promise((resolve) => setTimeout(resolve, 20));
      resolvedAt.set(result.seq, Date.now());
      return result;
    },
    state: () => store.state(),
    checkpointNow: () => store.checkpointNow(),
    close: () => store.close(),
  });
}

describe('every executed statement has one durable pg.query allow record before it', () => {
  const resolvedAt = new Map<number, number>();
  let gw: PgGatewayHarness;

  beforeAll(async () => {
    gw = await startPgGateway({ postgres: server, wrapStore: delayingStore(resolvedAt) });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('matches the upstream statement log, session by session', async () => {
    const alice = new pg.Client(gw.pgConfig(ALICE));
    await alice.connect();
    await alice.query('select count(*) from orders');
    await alice.query('select 1 as a; select 2 as b');
    await alice.query("insert into orders values (99, 'x', 1)").catch(() => undefined);
    for (const id of [1, 2]) await alice.query({ name: 'by-id', text: 'select item from orders where id = $1', values: [id] });
    await alice.query('select id from orders where id = $1', [3]);
    await alice.end();

    const bob = new pg.Client(gw.pgConfig(BOB, { options: '-c tollgate.login=writer' }));
    await bob.connect();
    await bob.query('begin');
    await bob.query("insert into imports values (1, 'audited')");
    await bob.query('commit');
    await bob.query('create table nope (a int)').catch(() => undefined);
    await bob.end();

    const sql = postgres({ host: gw.host, port: gw.port, database: 'shop', username: ALICE.email, password: gw.token(ALICE), max: 1, ssl: false });
    await Promise.allSettled([sql`select ${1}::int as one`, sql`delete from orders`, sql`select ${2}::int as two`]);
    await sql.end();

    expect(await psql(gw, ['-c', 'select item from orders where id = 1', '-c', '\\copy (select id from orders) to stdout'])).toBe(0);

    const wire = await WireClient.connect(gw.host, gw.port);
    await wire.login(BOB.email as string, 'shop', gw.token(BOB), { options: '-c tollgate.login=writer' });
    wire.send(parse('', "insert into imports values (2, 'rolled back')"), bind('', ''), execute(), parse('', 'drop table imports'), bind('', ''), execute(), sync());
    await wire.untilReady();
    wire.close();

    // The server logs through a pipe; give the last lines a moment to arrive.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await gw.recordsWhere((record) => record.kind === 'pg.disconnect', 5);
    const records = gw.records();
    const sessions = records.filter((record) => record.kind === 'pg.connect');
    expect(sessions.length).toBe(5);
    let compared = 0;
    for (const connect of sessions) {
      const pid = connect.data['upstream_pid'] as number;
      const executed = server.executed().filter((entry) => entry.pid === pid);
      const allowed = records.filter((record) => record.kind === 'pg.query' && record.session_id === connect.session_id && record.decision?.effect === 'allow');
      // A multi-statement Query is one message upstream and one record per statement.
      const messages: AuditRecord[][] = [];
      for (const record of allowed) {
        const index = record.data['index'];
        if (typeof index === 'number' && index > 0) messages.at(-1)?.push(record);
        else messages.push([record]);
      }
      expect(executed.length, `session ${connect.session_id}`).toBe(messages.length);
      messages.forEach((parts, i) => {
        const entry = executed[i]!;
        for (const part of parts) {
          expect(entry.sql).toContain(part.data['statement'] as string);
          expect(entry.time).toBeGreaterThanOrEqual(resolvedAt.get(part.seq) as number);
        }
        compared += 1;
      });
      for (const record of allowed) {
        expect(records.filter((result) => result.kind === 'pg.result' && result.ref === record.seq)).toHaveLength(1);
      }
    }
    expect(compared).toBeGreaterThanOrEqual(14);
    const denied = records.filter((record) => record.kind === 'pg.query' && record.decision?.effect === 'deny');
    expect(denied.map((record) => record.data['command'])).toEqual(['INSERT', 'CREATE TABLE', 'DELETE', 'DROP TABLE']);
    const disconnects = records.filter((record) => record.kind === 'pg.disconnect');
    expect(disconnects.map((record) => record.ref).sort()).toEqual(sessions.map((record) => record.seq).sort());
  });
});

describe('the cost of a statement in audit writes', () => {
  it('is one durable write: the outcome of a statement rides with the next statement’s record', async () => {
    const faulty = new FaultyFs();
    // Deferred outcomes never go on their own here (they may wait up to half the append
    // deadline), so each write is one that a statement waited for.
    const gw = await startPgGateway({ postgres: server, auditFs: faulty.fs, groupCommit: { maxDelayMs: 60_000 }, appendTimeout: '120s' });
    try {
      const segmentWrites = () => faulty.calls.filter((call) => call.op === 'writev' && call.path.endsWith('.seg')).length;
      const client = new pg.Client(gw.pgConfig(ALICE));
      await client.connect();
      await client.query('select 0 as warm');
      const before = segmentWrites();
      const statements = 20;
      for (let i = 1; i <= statements; i++) expect((await client.query(`select ${i} as n`)).rows).toEqual([{ n: i }]);
      expect(segmentWrites() - before).toBe(statements);
      await client.end();

      const results = await gw.recordsWhere((record) => record.kind === 'pg.result', statements + 1);
      const queries = gw.records().filter((record) => record.kind === 'pg.query');
      expect(queries).toHaveLength(statements + 1);
      // Every outcome is durable, in the log after its statement, and points at it.
      expect(results.map((record) => record.ref)).toEqual(queries.map((record) => record.seq));
      for (const result of results) expect(result.seq).toBeGreaterThan(result.ref as number);
    } finally {
      await gw.close();
    }
  });
});

describe('an audit log that cannot be written', () => {
  it('refuses statements with 57P03, forwards none of them, and recovers', async () => {
    const faulty = new FaultyFs();
    const gw = await startPgGateway({ postgres: server, auditFs: faulty.fs, appendTimeout: '1s' });
    try {
      const client = new pg.Client(gw.pgConfig(ALICE));
      await client.connect();
      try {
        expect((await client.query("select 'before the outage' as t")).rows).toEqual([{ t: 'before the outage' }]);
        faulty.fail('writev', 'EACCES', /\.seg$/);
        faulty.fail('datasync', 'EACCES', /\.seg$/);
        for (const n of [1, 2, 3]) {
          const error = await client.query(`select 'during the outage ${n}' as t`).then(
            () => null,
            (failure: { code?: string; message: string }) => failure,
          );
          expect(error?.code).toBe('57P03');
          expect(error?.message).toContain('the audit log cannot record it');
        }
        const prepared = await client.query({ name: 'outage', text: "select 'during the outage 4' as t" }).then(
          () => null,
          (failure: { code?: string }) => failure,
        );
        expect(prepared?.code).toBe('57P03');

        const newcomer = new pg.Client(gw.pgConfig(ALICE));
        const refused = await newcomer.connect().then(
          () => null,
          (failure: { code?: string; message: string }) => failure,
        );
        await newcomer.end().catch(() => undefined);
        expect(refused?.code).toBe('57P03');

        faulty.clear();
        await waitFor(() => gw.store.state().status === 'ready', 'the audit store to recover');
        let after: unknown = null;
        for (let attempt = 0; attempt < 50 && after === null; attempt++) {
          after = await client.query("select 'after the outage' as t").then(
            (result) => result.rows,
            async () => {
              await new Promise((resolve) => setTimeout(resolve, 50));
              return null;
            },
          );
        }
        expect(after).toEqual([{ t: 'after the outage' }]);
      } finally {
        await client.end();
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const texts = server.executed().map((entry) => entry.sql);
      expect(texts.some((text) => text.includes('before the outage'))).toBe(true);
      expect(texts.some((text) => text.includes('after the outage'))).toBe(true);
      expect(texts.filter((text) => text.includes('during the outage'))).toEqual([]);
    } finally {
      await gw.close();
    }
  });
});
