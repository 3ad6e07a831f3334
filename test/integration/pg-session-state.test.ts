/**
 * The Postgres gateway's picture of the session follows what the server did, in pipelines too:
 * SQL text is not decided while a statement that may change how the server reads it is
 * unanswered; the prepared-statement table changes when the server confirms a deletion, not
 * when the client asks for one; and a SQL FETCH of a protocol-level portal is decided and
 * recorded with the facts of the statement it runs.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/index.js';
import { BOB, startPgGateway, type PgGatewayHarness } from '../helpers/pg-gateway.js';
import { cstr, frame } from '../helpers/pg-bytes.js';
import { bind, execute, flush, parse, query, sync, types, WireClient, type Received } from '../helpers/pg-wire.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/** Close: `C`, `S` for a prepared statement, its name. */
const closeStatement = (name: string): Buffer => frame('C', Buffer.from('S'), cstr(name));

/** `dba` reads and writes `shop`, never `secret.*`, and runs no DDL. */
const POLICY = `
roles:
  dba:
    allow:
      - resource: shop
        logins: [writer]
        statements: [read, write]
    deny:
      - resource: shop
        tables: ["secret.*"]
grants:
  - role: dba
    groups: [dba]
`;

let server: TestPostgres;
let gw: PgGatewayHarness;

beforeAll(async () => {
  server = await startTestPostgres();
  // A function that turns standard_conforming_strings off: syntax shows only a read calling it.
  await server.query(`CREATE FUNCTION public.loosen() RETURNS text LANGUAGE sql AS $$SELECT set_config('standard_conforming_strings', 'off', false)$$`);
  // The same change where the syntax shows no function at all: a view, and attribute notation.
  await server.query(`CREATE VIEW public.loosen_v AS SELECT set_config('standard_conforming_strings', 'off', false) AS v`);
  await server.query('GRANT SELECT ON public.loosen_v TO shop_writer');
  await server.query(`CREATE FUNCTION public.loosen_o(o public.orders) RETURNS text LANGUAGE sql AS $$SELECT set_config('standard_conforming_strings', 'off', false)$$`);
  gw = await startPgGateway({ postgres: server, policyYaml: POLICY });
});

afterAll(async () => {
  await gw?.close();
  await server?.stop();
});

beforeEach(async () => {
  await server.query('DROP TABLE IF EXISTS public.victim; CREATE TABLE public.victim (x int); ALTER TABLE public.victim OWNER TO shop_writer');
});

async function connectBob(): Promise<WireClient> {
  const client = await WireClient.connect(gw.host, gw.port);
  const login = await client.login(BOB.email as string, 'shop', gw.token(BOB), { options: '-c tollgate.login=writer' });
  expect(login.at(-1)?.type).toBe('ReadyForQuery');
  return client;
}

async function victimExists(): Promise<boolean> {
  const result = await server.query("SELECT to_regclass('public.victim') IS NOT NULL AS present");
  return (result.rows[0] as { present: boolean }).present;
}

/** The session's `pg.query` records (by session id of the first record whose statement matches). */
async function sessionQueries(marker: string, count: number): Promise<AuditRecord[]> {
  const [first] = await gw.recordsWhere((record) => record.kind === 'pg.query' && (record.data as { statement?: string }).statement === marker);
  const sessionId = (first as AuditRecord).session_id;
  return gw.recordsWhere((record) => record.kind === 'pg.query' && record.session_id === sessionId, count);
}

/** Read with standard_conforming_strings off, this is one string literal and a DROP TABLE. */
const SMUGGLE = "SELECT '\\', $$'; DROP TABLE public.victim; --$$";
/** Read with standard_conforming_strings off, this one statement reads `secret.keys`. */
const SMUGGLE_READ = "SELECT '\\', $$', material FROM secret.keys --$$";

describe('SQL text pipelined behind a statement that may change how the server reads it', () => {
  it('is not decided until that statement is answered, and the session closes on the change (simple protocol)', async () => {
    const bob = await connectBob();
    bob.send(query('SELECT public.loosen()'), query(SMUGGLE));
    const got = await bob.readUntil(() => false);
    expect(types(got)).toContain('ErrorResponse(0A000)');
    expect(got.at(-1)?.type).toBe('Closed');
    expect(await victimExists()).toBe(true);
    expect(server.executed().some((entry) => entry.sql.includes('DROP TABLE public.victim'))).toBe(false);
    bob.close();
  });

  it('is not decided until the Sync after that statement is answered (extended protocol)', async () => {
    const bob = await connectBob();
    bob.send(parse('', 'SELECT public.loosen()'), bind('', ''), execute(''), sync(), parse('', SMUGGLE_READ), bind('', ''), execute(''), sync());
    const got = await bob.readUntil(() => false);
    expect(types(got)).toContain('ErrorResponse(0A000)');
    expect(got.at(-1)?.type).toBe('Closed');
    expect(bob.received.includes('k1')).toBe(false);
    expect(server.executed().some((entry) => entry.sql === SMUGGLE_READ)).toBe(false);
    bob.close();
  });

  it('is refused, not run, when it has a backslash and follows such a statement in the same unsynced batch (Flush)', async () => {
    const bob = await connectBob();
    bob.send(parse('', 'SELECT public.loosen()'), bind('', ''), execute(''), parse('', SMUGGLE_READ), bind('', ''), execute(''), flush());
    const got = await bob.readUntil((message) => message.type === 'ErrorResponse' || message.type === 'Closed');
    expect(types(got).at(-1)).toBe('ErrorResponse(0A000)');
    expect(bob.received.includes('k1')).toBe(false);
    expect(server.executed().some((entry) => entry.sql === SMUGGLE_READ)).toBe(false);
    const [refused] = await gw.recordsWhere((record) => record.kind === 'pg.query' && (record.data as { statement?: string }).statement === SMUGGLE_READ);
    expect(refused?.decision).toMatchObject({ effect: 'deny', reason: 'settings-may-have-changed' });
    // The refusal fails the implicit transaction, which undoes the change: the session goes on.
    bob.send(sync(), query('SELECT 2'));
    await bob.untilReady();
    expect(types(await bob.untilReady())).toContain('DataRow');
    bob.close();
  });

  it('lets plain text go on in the same unsynced batch, so a batch of INSERTs still pipelines', async () => {
    const bob = await connectBob();
    bob.send(parse('', 'INSERT INTO public.victim VALUES (1)'), bind('', ''), execute(''), parse('', 'INSERT INTO public.victim VALUES (2)'), bind('', ''), execute(''), sync());
    const got = await bob.untilReady();
    expect(types(got).filter((type) => type.startsWith('CommandComplete'))).toHaveLength(2);
    expect(types(got)).not.toContain('ErrorResponse(0A000)');
    bob.close();
  });

  it.each([
    ['a view', 'SELECT * FROM public.loosen_v'],
    ['attribute notation', 'SELECT o.loosen_o FROM orders o LIMIT 1'],
  ])('holds the next statement when the change hides in %s', async (_, loosen) => {
    const bob = await connectBob();
    bob.send(query(loosen), query(SMUGGLE));
    const got = await bob.readUntil(() => false);
    expect(types(got)).toContain('ErrorResponse(0A000)');
    expect(got.at(-1)?.type).toBe('Closed');
    expect(await victimExists()).toBe(true);
    expect(server.executed().some((entry) => entry.sql === SMUGGLE)).toBe(false);
    bob.close();
  });

  it('keeps deciding after a Query the server skipped in an unsynced batch that failed', async () => {
    const bob = await connectBob();
    bob.send(
      parse('', 'INSERT INTO public.victim VALUES (1)'), bind('', ''), execute(''),
      parse('', 'SELECT 1/0'), bind('', ''), execute(''),
      query('SELECT 1'), sync(),
      query('INSERT INTO public.victim VALUES (2)'), query('SELECT 3 AS three'),
    );
    expect(types(await bob.untilReady())).toContain('ErrorResponse(22012)');
    expect(types(await bob.untilReady())).toContain('CommandComplete');
    const last = await bob.untilReady();
    expect(types(last)).toEqual(['RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery(I)']);
    bob.close();
  });

  it('costs nothing when the statement is a plain read: the pipeline is answered whole', async () => {
    const bob = await connectBob();
    bob.send(query('SELECT 1'), query('SELECT 2'), parse('', 'SELECT 3'), bind('', ''), execute(''), sync());
    const answers: Received[] = [];
    for (let i = 0; i < 3; i++) answers.push(...(await bob.untilReady()));
    expect(types(answers).filter((type) => type.startsWith('ReadyForQuery'))).toHaveLength(3);
    bob.close();
  });
});

describe('the prepared-statement table', () => {
  it('keeps a statement whose DEALLOCATE the server skipped, so a pipelined Bind is recorded as what runs', async () => {
    const bob = await connectBob();
    bob.send(query('PREPARE x AS SELECT 1 AS old_statement'));
    await bob.untilReady();
    bob.send(query('SELECT 1/0; DEALLOCATE x'));
    expect(types(await bob.untilReady())).toContain('ErrorResponse(22012)');
    bob.send(parse('x', 'SELECT 2 AS new_statement'), sync(), bind('', 'x'), execute(''), sync());
    expect(types(await bob.untilReady())).toContain('ErrorResponse(42P05)');
    const run = await bob.untilReady();
    const row = run.find((message) => message.type === 'DataRow');
    expect(row).toBeDefined();
    const records = await sessionQueries('PREPARE x AS SELECT 1 AS old_statement', 4);
    const executed = records.find((record) => (record.data as { protocol?: string; statement_name?: string }).statement_name === 'x');
    // The server ran the old statement (its row says 1); the record says the same.
    expect((executed?.data as { statement?: string }).statement).toBe('PREPARE x AS SELECT 1 AS old_statement');
    bob.close();
  });

  it('keeps a statement whose Close the server skipped after an error', async () => {
    const bob = await connectBob();
    bob.send(query('PREPARE y AS SELECT 1 AS old_statement'));
    await bob.untilReady();
    bob.send(parse('', 'SELECT 1/0'), bind('', ''), execute(''), closeStatement('y'), sync());
    expect(types(await bob.untilReady())).toContain('ErrorResponse(22012)');
    bob.send(parse('y', 'SELECT 2 AS new_statement'), sync(), bind('', 'y'), execute(''), sync());
    expect(types(await bob.untilReady())).toContain('ErrorResponse(42P05)');
    await bob.untilReady();
    const records = await sessionQueries('PREPARE y AS SELECT 1 AS old_statement', 3);
    const executed = records.find((record) => (record.data as { statement_name?: string }).statement_name === 'y');
    expect((executed?.data as { statement?: string }).statement).toBe('PREPARE y AS SELECT 1 AS old_statement');
    bob.close();
  });

  it('holds a Parse of a name whose Close is unanswered, then decides it against what the server did', async () => {
    const bob = await connectBob();
    bob.send(query('PREPARE z AS SELECT 1 AS old_statement'));
    await bob.untilReady();
    bob.send(closeStatement('z'), parse('z', 'SELECT 2 AS new_statement'), bind('', 'z'), execute(''), sync());
    const got = await bob.untilReady();
    expect(types(got)).toEqual(['CloseComplete', 'ParseComplete', 'BindComplete', 'DataRow', 'CommandComplete', 'ReadyForQuery(I)']);
    const records = await sessionQueries('PREPARE z AS SELECT 1 AS old_statement', 2);
    expect((records[1]?.data as { statement?: string }).statement).toBe('SELECT 2 AS new_statement');
    bob.close();
  });

  it('forgets a statement that an extended-protocol DEALLOCATE removed, so a new PREPARE of the name is what EXECUTE is decided on', async () => {
    const bob = await connectBob();
    bob.send(query('PREPARE w AS SELECT 1'));
    await bob.untilReady();
    bob.send(parse('', 'DEALLOCATE w'), bind('', ''), execute(''), sync());
    expect(types(await bob.untilReady())).toContain('CommandComplete');
    bob.send(query('PREPARE w AS DELETE FROM orders WHERE id = 2'));
    expect(types(await bob.untilReady())).not.toContain('ErrorResponse');
    bob.send(query('BEGIN; EXECUTE w; ROLLBACK'));
    expect(types(await bob.untilReady())).not.toContain('ErrorResponse');
    const records = await sessionQueries('PREPARE w AS SELECT 1', 6);
    const run = records.find((record) => (record.data as { command?: string }).command === 'EXECUTE');
    expect(run?.data).toMatchObject({ class: 'write', tables: ['orders'] });
    bob.close();
  });
});

describe('SQL FETCH and MOVE of a protocol-level portal', () => {
  it('are decided and recorded with the facts of the portal’s statement', async () => {
    const bob = await connectBob();
    bob.send(query("SELECT 'fetch of a portal'"), query('BEGIN'));
    await bob.untilReady();
    await bob.untilReady();
    bob.send(parse('s', 'DELETE FROM orders WHERE id = 1 RETURNING *'), bind('p', 's'), sync());
    await bob.untilReady();
    bob.send(query('FETCH ALL FROM p'));
    expect(types(await bob.untilReady())).toContain('CommandComplete');
    bob.send(parse('m', 'SELECT * FROM orders FOR UPDATE'), bind('q', 'm'), sync());
    await bob.untilReady();
    bob.send(parse('', 'MOVE ALL IN "q"'), bind('', ''), execute(''), sync());
    expect(types(await bob.untilReady())).toContain('CommandComplete');
    bob.send(query('ROLLBACK'));
    await bob.untilReady();
    const records = await sessionQueries("SELECT 'fetch of a portal'", 5);
    const fetch = records.find((record) => (record.data as { statement?: string }).statement === 'FETCH ALL FROM p');
    expect(fetch?.data).toMatchObject({ class: 'write', tables: ['orders'], portal: 'p', statement_name: 's', command: 'FETCH' });
    expect(fetch?.decision?.effect).toBe('allow');
    const move = records.find((record) => (record.data as { statement?: string }).statement === 'MOVE ALL IN "q"');
    expect(move?.data).toMatchObject({ tables: ['orders'], portal: 'q', statement_name: 'm' });
    bob.close();
  });

  it('match the portal on its first 63 bytes, as the server does', async () => {
    const bob = await connectBob();
    const long = 'p'.repeat(70);
    bob.send(query("SELECT 'fetch of a long portal'"), query('BEGIN'));
    await bob.untilReady();
    await bob.untilReady();
    bob.send(parse('s', 'DELETE FROM orders WHERE id = 1 RETURNING *'), bind(long, 's'), sync());
    await bob.untilReady();
    bob.send(query(`FETCH ALL FROM ${long}`));
    expect(types(await bob.untilReady())).toContain('CommandComplete');
    bob.send(query('ROLLBACK'));
    await bob.untilReady();
    const records = await sessionQueries("SELECT 'fetch of a long portal'", 4);
    const fetch = records.find((record) => (record.data as { statement?: string }).statement === `FETCH ALL FROM ${long}`);
    expect(fetch?.data).toMatchObject({ class: 'write', tables: ['orders'], portal: 'p'.repeat(63), statement_name: 's' });
    bob.close();
  });

  it('of a SQL cursor keeps the DECLARE’s decision and is recorded as a read', async () => {
    const bob = await connectBob();
    bob.send(query("SELECT 'fetch of a cursor'; BEGIN; DECLARE c CURSOR FOR SELECT id FROM orders; FETCH ALL FROM c; ROLLBACK"));
    expect(types(await bob.untilReady())).not.toContain('ErrorResponse');
    const records = await sessionQueries("SELECT 'fetch of a cursor'", 5);
    const fetch = records.find((record) => (record.data as { statement?: string }).statement === 'FETCH ALL FROM c');
    expect(fetch?.data).toMatchObject({ class: 'read', tables: [] });
    expect((fetch?.data as { portal?: string }).portal).toBeUndefined();
    bob.close();
  });
});
