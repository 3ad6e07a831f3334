/**
 * Stock Postgres clients through the gateway against a real PostgreSQL: psql, node-postgres
 * (simple, prepared, pooled), porsager `postgres` (extended protocol, pipelined) and pgbench;
 * policy decisions and PostgreSQL's own error semantics as the clients see them.
 */
import { connect } from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, OPS, startPgGateway, type PgGatewayHarness } from '../helpers/pg-gateway.js';
import { int32, packet } from '../helpers/pg-bytes.js';
import { bind, execute, parse, query, sync, types, WireClient } from '../helpers/pg-wire.js';
import { startTestPostgres, SUPERUSER, SUPERUSER_PASSWORD, type TestPostgres } from '../helpers/postgres.js';
import { runProcess, type ProcessRun } from '../helpers/run-process.js';

let server: TestPostgres;
let gw: PgGatewayHarness;

beforeAll(async () => {
  server = await startTestPostgres();
  gw = await startPgGateway({ postgres: server });
});

afterAll(async () => {
  await gw?.close();
  await server?.stop();
});

/** Clients give up on a gateway that does not answer instead of hanging the test. */
const CONNECT_TIMEOUT = { PGCONNECT_TIMEOUT: '10' };

function psql(principal: typeof ALICE, args: readonly string[], input?: string, conninfo = ''): Promise<ProcessRun> {
  const dsn = `host=${gw.host} port=${gw.port} dbname=shop user=${principal.email} sslmode=disable ${conninfo}`;
  return runProcess('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...args, dsn], { ...CONNECT_TIMEOUT, PGPASSWORD: gw.token(principal) }, input);
}

async function withClient<T>(principal: typeof ALICE, body: (client: pg.Client) => Promise<T>, extra: pg.ClientConfig = {}): Promise<T> {
  const client = new pg.Client(gw.pgConfig(principal, extra));
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

async function errorOf(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected the statement to fail');
}

describe('psql', () => {
  it('reads through the gateway and is refused a write with 42501', async () => {
    const read = await psql(ALICE, ['-c', 'select item from orders order by id']);
    expect(read.code).toBe(0);
    expect(read.stdout.trim().split('\n')).toEqual(['apple', 'pear', 'plum']);

    const write = await psql(ALICE, ['-c', "insert into orders values (10, 'fig', 1)"]);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toContain('tollgate: permission denied for INSERT');
    expect(await server.query('select count(*)::int as n from orders where id = 10')).toMatchObject({ rows: [{ n: 0 }] });
  });

  it('copies in and out with \\copy, and the record counts the bytes', async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => `${i}\tnote ${i}`).join('\n') + '\n';
    const copyIn = await psql(BOB, ['-c', '\\copy imports from stdin'], rows, 'options=-ctollgate.login=writer');
    expect(copyIn.code, copyIn.stderr).toBe(0);
    expect(await server.query('select count(*)::int as n from imports')).toMatchObject({ rows: [{ n: 1000 }] });

    const copyOut = await psql(ALICE, ['-c', '\\copy (select id, item from orders order by id) to stdout']);
    expect(copyOut.code, copyOut.stderr).toBe(0);
    expect(copyOut.stdout).toBe('1\tapple\n2\tpear\n3\tplum\n');

    const results = await gw.recordsWhere((record) => record.kind === 'pg.result' && typeof record.data['copy_bytes'] === 'number', 2);
    expect(results.map((record) => record.data['copy_bytes'])).toEqual(expect.arrayContaining([Buffer.byteLength(rows), Buffer.byteLength('1\tapple\n2\tpear\n3\tplum\n')]));
    expect(results.map((record) => record.data['command_tag'])).toEqual(expect.arrayContaining(['COPY 1000', 'COPY 3']));

    const denied = await psql(ALICE, ['-c', '\\copy imports from stdin'], '1\tx\n');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('permission denied for COPY');
  });
});

describe('node-postgres', () => {
  it('runs simple and prepared statements, with parameters recorded at Execute', async () => {
    await withClient(ALICE, async (client) => {
      expect((await client.query('select count(*)::int as n from orders')).rows).toEqual([{ n: 3 }]);
      for (const id of [1, 3]) {
        const result = await client.query({ name: 'order-item', text: 'select item from orders where id = $1', values: [id] });
        expect(result.rows).toEqual([{ item: id === 1 ? 'apple' : 'plum' }]);
      }
    });
    const executes = gw.records().filter((record) => record.kind === 'pg.query' && record.data['statement_name'] === 'order-item');
    expect(executes.map((record) => record.data['params'])).toEqual([['1'], ['3']]);
    expect(executes.every((record) => record.data['protocol'] === 'extended' && record.decision?.effect === 'allow')).toBe(true);
  });

  it('serves a pool of concurrent clients', async () => {
    const pool = new pg.Pool({ ...gw.pgConfig(ALICE), max: 4 });
    try {
      const ids = Array.from({ length: 24 }, (_, i) => (i % 3) + 1);
      const results = await Promise.all(ids.map((id) => pool.query('select id from orders where id = $1', [id])));
      expect(results.map((result) => result.rows[0].id)).toEqual(ids);
    } finally {
      await pool.end();
    }
  });

  it('denies DDL to the writer login but allows its writes', async () => {
    await withClient(
      BOB,
      async (client) => {
        await client.query("insert into imports values (5000, 'by bob')");
        const ddl = await errorOf(client.query('create table bobs_table (a int)'));
        expect(ddl.code).toBe('42501');
        expect(ddl.message).toContain('permission denied for CREATE TABLE');
        expect((await client.query('select count(*)::int as n from imports where id = 5000')).rows).toEqual([{ n: 1 }]);
      },
      { options: '-c tollgate.login=writer' },
    );
    expect((await server.query("select to_regclass('public.bobs_table') as t")).rows).toEqual([{ t: null }]);
  });

  it('keeps the transaction failed after a denial, as PostgreSQL would, until ROLLBACK', async () => {
    await withClient(BOB, async (client) => {
      await client.query('begin');
      await client.query("insert into imports values (6000, 'in tx')");
      const denied = await errorOf(client.query('drop table imports'));
      expect(denied.code).toBe('42501');
      const aborted = await errorOf(client.query('select 1'));
      expect(aborted.code).toBe('25P02');
      await client.query('rollback');
      expect((await client.query('select 2 as two')).rows).toEqual([{ two: 2 }]);
    }, { options: '-c tollgate.login=writer' });
    expect((await server.query('select count(*)::int as n from imports where id = 6000')).rows).toEqual([{ n: 0 }]);
  });

  it('refuses a multi-statement string whole when one part is denied', async () => {
    await withClient(ALICE, async (client) => {
      const error = await errorOf(client.query("select 1; insert into imports values (7000, 'x'); select 2"));
      expect(error.code).toBe('42501');
      expect((await client.query('select 3 as three')).rows).toEqual([{ three: 3 }]);
    });
    expect((await server.query('select count(*)::int as n from imports where id = 7000')).rows).toEqual([{ n: 0 }]);
    const parts = gw.records().filter((record) => record.kind === 'pg.query' && record.data['count'] === 3);
    expect(parts.map((record) => [record.data['index'], record.decision?.effect])).toEqual([
      [0, 'deny'],
      [1, 'deny'],
      [2, 'deny'],
    ]);
  });

  it('refuses SQL the parser rejects, with a message that says so', async () => {
    await withClient(ALICE, async (client) => {
      const error = await errorOf(client.query('selec id from orders'));
      expect(error.code).toBe('42601');
      expect(error.message).toContain("PostgreSQL's parser rejects it");
      expect((await client.query('select 4 as four')).rows).toEqual([{ four: 4 }]);
    });
  });

  it('streams a 100,000-row result', async () => {
    await withClient(ALICE, async (client) => {
      const result = await client.query('select id, payload from big order by id');
      expect(result.rows.length).toBe(100_000);
      expect(result.rows[99_999]).toMatchObject({ id: 100_000 });
    });
    const [result] = await gw.recordsWhere((record) => record.kind === 'pg.result' && record.data['command_tag'] === 'SELECT 100000');
    expect(result?.data['rows']).toBe(100_000);
  });

  it('relays LISTEN/NOTIFY', async () => {
    const listener = new pg.Client(gw.pgConfig(ALICE));
    await listener.connect();
    try {
      const received = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
      await listener.query('listen orders_changed');
      await withClient(BOB, (client) => client.query("notify orders_changed, 'order 3'"), { options: '-c tollgate.login=writer' });
      const notification = await received;
      expect(notification).toMatchObject({ channel: 'orders_changed', payload: 'order 3' });
    } finally {
      await listener.end();
    }
  });

  it('cancels pg_sleep(30) through the gateway key', async () => {
    await withClient(ALICE, async (client) => {
      const sleeping = errorOf(client.query('select pg_sleep(30)'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const socket = connect({ host: gw.host, port: gw.port });
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.end(packet(int32(80877102), int32(processID), int32(secretKey)));
      const error = await sleeping;
      expect(error.code).toBe('57014');
      expect((await client.query('select 5 as five')).rows).toEqual([{ five: 5 }]);
    });
  });

  it('logs in upstream with md5 and with a cleartext password', async () => {
    await withClient(OPS, async (client) => {
      expect((await client.query('select current_user as u')).rows).toEqual([{ u: 'shop_md5' }]);
    });
    await withClient(OPS, async (client) => {
      expect((await client.query('select current_user as u')).rows).toEqual([{ u: 'shop_plain' }]);
    }, { options: '-c tollgate.login=plain' });
  });
});

describe('postgres (porsager), extended protocol with pipelining', () => {
  it('pipelines queries on one connection and refuses only the denied one', async () => {
    const sql = postgres({ host: gw.host, port: gw.port, database: 'shop', username: ALICE.email, password: gw.token(ALICE), max: 1, ssl: false, onnotice: () => undefined });
    try {
      const settled = await Promise.allSettled([
        sql`select item from orders where id = ${1}`,
        sql`insert into imports values (${8000}, ${'pipelined'})`,
        sql`select item from orders where id = ${2}`,
        sql`select count(*)::int as n from orders`,
      ]);
      expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      const value = (index: number): unknown => (settled[index] as PromiseFulfilledResult<unknown[]>).value[0];
      expect(value(0)).toEqual({ item: 'apple' });
      expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: '42501' });
      expect(value(2)).toEqual({ item: 'pear' });
      expect(value(3)).toEqual({ n: 3 });
    } finally {
      await sql.end();
    }
    expect((await server.query('select count(*)::int as n from imports where id = 8000')).rows).toEqual([{ n: 0 }]);
  });
});

describe('raw extended-protocol pipeline', () => {
  it('discards up to Sync after a denied Parse and rolls back the batch, as PostgreSQL does', async () => {
    const client = await WireClient.connect(gw.host, gw.port);
    try {
      const login = await client.login(BOB.email as string, 'shop', gw.token(BOB), { options: '-c tollgate.login=writer' });
      expect(types(login).at(-1)).toBe('ReadyForQuery(I)');
      client.send(
        parse('', "insert into imports values (9000, 'batch')"),
        bind('', ''),
        execute(),
        parse('', 'create table evil (a int)'),
        bind('', ''),
        execute(),
        sync(),
        parse('s2', 'select count(*)::int from imports where id = 9000'),
        bind('', 's2'),
        execute(),
        sync(),
      );
      const first = await client.untilReady();
      expect(types(first)).toEqual(['ParseComplete', 'BindComplete', 'CommandComplete', 'ErrorResponse(42501)', 'ReadyForQuery(I)']);
      const second = await client.untilReady();
      expect(types(second)).toEqual(['ParseComplete', 'BindComplete', 'DataRow', 'CommandComplete', 'ReadyForQuery(I)']);
      const row = second[2];
      // The insert ran in the batch's implicit transaction, which the refusal aborted.
      expect(row?.type === 'DataRow' && row.raw !== null ? row.raw.subarray(11).toString() : '').toBe('0');
    } finally {
      client.close();
    }
  });

  it('reports a failed transaction block in ReadyForQuery after a denial', async () => {
    const client = await WireClient.connect(gw.host, gw.port);
    try {
      await client.login(ALICE.email as string, 'shop', gw.token(ALICE));
      client.send(query('begin'));
      expect(types(await client.untilReady()).at(-1)).toBe('ReadyForQuery(T)');
      client.send(query("update orders set qty = 0"));
      expect(types(await client.untilReady())).toEqual(['ErrorResponse(42501)', 'ReadyForQuery(E)']);
      client.send(query('select 1'));
      expect(types(await client.untilReady())).toEqual(['ErrorResponse(25P02)', 'ReadyForQuery(E)']);
      client.send(query('rollback'));
      expect(types(await client.untilReady())).toEqual(['CommandComplete', 'ReadyForQuery(I)']);
    } finally {
      client.close();
    }
  });
});

describe('pgbench', () => {
  it('runs the select-only benchmark in simple and prepared mode', async () => {
    const env = { ...CONNECT_TIMEOUT, PGPASSWORD: SUPERUSER_PASSWORD };
    const init = await runProcess('pgbench', ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(server.port), '-U', SUPERUSER, 'shop'], env);
    expect(init.code, init.stderr).toBe(0);
    await server.query('grant select on all tables in schema public to shop_reader');
    for (const mode of ['simple', 'prepared']) {
      const run = await runProcess('pgbench', ['-n', '-S', '-M', mode, '-c', '4', '-t', '50', '-h', gw.host, '-p', String(gw.port), '-U', ALICE.email as string, 'shop'], {
        ...CONNECT_TIMEOUT,
        PGPASSWORD: gw.token(ALICE),
        PGSSLMODE: 'disable',
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('number of transactions actually processed: 200/200');
    }
  }, 120_000);
});
