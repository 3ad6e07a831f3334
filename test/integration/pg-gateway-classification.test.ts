/**
 * Statements whose reach the syntax hides, against a real PostgreSQL through the gateway: a
 * write to `pg_settings` (which changes how the server reads the next statements, or where bare
 * names resolve), a bare catalog name, a built-in function that runs a SQL text, and attribute
 * notation that calls a function without a call in the syntax.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, startPgGateway, type PgGatewayHarness } from '../helpers/pg-gateway.js';
import { bind, execute, parse, query, sync, types, WireClient, type Received } from '../helpers/pg-wire.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

const POLICY = `
roles:
  engineer:
    allow:
      - resource: shop
        logins: [reader]
        statements: [read]
    deny:
      - resource: shop
        tables: ["secret.*", "pg_catalog.*"]
      - resource: shop
        functions: [pg_terminate_backend, audit_touch]
  dba:
    allow:
      - resource: shop
        logins: [writer]
        statements: [read, write]
    deny:
      - resource: shop
        tables: ["secret.*"]
grants:
  - role: engineer
    groups: [engineering]
  - role: dba
    groups: [dba]
`;

let server: TestPostgres;
let gw: PgGatewayHarness;

beforeAll(async () => {
  server = await startTestPostgres();
  await server.query(`
    CREATE TABLE public.victim (x int);
    ALTER TABLE public.victim OWNER TO shop_writer;
    CREATE FUNCTION public.audit_touch(o public.orders) RETURNS int LANGUAGE sql AS 'SELECT 42';
    GRANT EXECUTE ON FUNCTION public.audit_touch(public.orders) TO shop_reader;
  `);
  gw = await startPgGateway({ postgres: server, policyYaml: POLICY });
});

afterAll(async () => {
  await gw?.close();
  await server?.stop();
});

async function loggedIn(who: typeof ALICE): Promise<WireClient> {
  const client = await WireClient.connect(gw.host, gw.port);
  const login = await client.login(who.email as string, 'shop', gw.token(who));
  expect(types(login).at(-1)).toBe('ReadyForQuery(I)');
  return client;
}

async function run(client: WireClient, sql: string): Promise<Received[]> {
  client.send(query(sql));
  return client.untilReady();
}

function errorCode(messages: readonly Received[]): string | undefined {
  const error = messages.find((message) => message.type === 'ErrorResponse');
  return error?.type === 'ErrorResponse' ? error.fields.code : undefined;
}

/** What the server executed after `since` (a count of earlier entries) that matches `pattern`. */
function executed(pattern: RegExp, since: number): string[] {
  return server.executed().slice(since).map((entry) => entry.sql).filter((sql) => pattern.test(sql));
}

describe('a writer cannot change session settings through pg_settings', () => {
  it('refuses turning standard_conforming_strings off, so the smuggled DROP never runs', async () => {
    const mark = server.executed().length;
    const bob = await loggedIn(BOB);
    bob.send(
      query("UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"),
      query("SELECT '\\', $$'; DROP TABLE public.victim; --$$"),
    );
    expect(errorCode(await bob.untilReady())).toBe('42501');
    expect(errorCode(await bob.untilReady())).toBeUndefined();
    expect((await server.query("SELECT to_regclass('public.victim') AS t")).rows[0]?.t).toBe('victim');
    expect(executed(/pg_settings/, mark)).toEqual([]);
    bob.close();
  });

  it('refuses moving search_path to a denied schema, by every spelling', async () => {
    const mark = server.executed().length;
    const bob = await loggedIn(BOB);
    for (const sql of [
      "UPDATE pg_settings SET setting = 'secret' WHERE name = 'search_path'",
      `UPDATE pg_catalog."pg_settings" SET setting = 'secret' WHERE name = 'search_path'`,
      "WITH s AS (UPDATE pg_settings SET setting = 'secret' WHERE name = 'search_path' RETURNING 1) SELECT * FROM s",
      "UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
    ]) {
      expect(errorCode(await run(bob, sql)), sql).toBe('42501');
    }
    // The bare name still means public.keys, which does not exist: secret.keys stays out of reach.
    expect(errorCode(await run(bob, 'SELECT material FROM keys'))).toBe('42P01');
    bob.send(parse('s', "UPDATE pg_settings SET setting = 'secret' WHERE name = 'search_path'"), bind('', 's'), execute(''), sync());
    expect(errorCode(await bob.untilReady())).toBe('42501');
    expect(executed(/pg_settings/, mark)).toEqual([]);
    bob.close();
  });
});

describe('table and function rules see what the syntax hides', () => {
  it('denies a bare catalog name under a pg_catalog deny, and still allows bare public tables', async () => {
    const alice = await loggedIn(ALICE);
    expect(errorCode(await run(alice, 'SELECT rolname FROM pg_roles LIMIT 1'))).toBe('42501');
    expect(errorCode(await run(alice, 'SELECT rolname FROM pg_catalog.pg_roles LIMIT 1'))).toBe('42501');
    const orders = await run(alice, 'SELECT count(*) FROM orders');
    expect(types(orders)).toContain('DataRow');
    alice.close();
  });

  it('refuses a function that runs a SQL text, as admin', async () => {
    const mark = server.executed().length;
    const alice = await loggedIn(ALICE);
    for (const sql of [
      "SELECT query_to_xml('select material from secret.keys', true, false, '')",
      "SELECT table_to_xml('secret.keys', true, false, '')",
      "SELECT * FROM ts_stat('select to_tsvector(material) from secret.keys')",
    ]) {
      const reply = await run(alice, sql);
      expect(errorCode(reply), sql).toBe('42501');
      expect(types(reply)).not.toContain('DataRow');
    }
    expect(executed(/secret\.keys/, mark)).toEqual([]);
    alice.close();
  });

  it('denies a denied function called by attribute notation, and leaves plain columns alone', async () => {
    const mark = server.executed().length;
    const alice = await loggedIn(ALICE);
    expect(errorCode(await run(alice, 'SELECT o.audit_touch FROM orders o LIMIT 1'))).toBe('42501');
    expect(errorCode(await run(alice, 'SELECT (o).audit_touch FROM orders o LIMIT 1'))).toBe('42501');
    expect(errorCode(await run(alice, 'SELECT audit_touch(o) FROM orders o LIMIT 1'))).toBe('42501');
    const plain = await run(alice, 'SELECT o.id FROM orders o ORDER BY o.id LIMIT 1');
    expect(errorCode(plain)).toBeUndefined();
    expect(types(plain)).toContain('DataRow');
    expect(executed(/audit_touch/, mark)).toEqual([]);
    alice.close();
  });
});
