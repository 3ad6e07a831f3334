import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier } from '../../../src/sql/index.js';
import type { SqlClassifier, StatementClass } from '../../../src/sql/index.js';

interface Case {
  readonly sql: string;
  readonly command: string;
  readonly class: StatementClass;
  readonly tables?: readonly string[];
  readonly functions?: readonly string[];
}

const READ: readonly Case[] = [
  { sql: 'SELECT 1', command: 'SELECT', class: 'read' },
  {
    sql: 'SELECT o.id, c.name FROM public.orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > 10',
    command: 'SELECT',
    class: 'read',
    tables: ['customers', 'public.orders'],
  },
  {
    sql: 'SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)',
    command: 'SELECT',
    class: 'read',
    tables: ['t', 'u'],
  },
  { sql: 'SELECT * FROM (SELECT * FROM inner_t) AS sub', command: 'SELECT', class: 'read', tables: ['inner_t'] },
  {
    sql: 'SELECT a.x FROM a LEFT JOIN b ON true FULL JOIN c.d.e ON true, LATERAL (SELECT * FROM f WHERE f.x = a.x) l',
    command: 'SELECT',
    class: 'read',
    tables: ['a', 'b', 'c.d.e', 'f'],
  },
  // CTE names are not tables...
  { sql: 'WITH recent AS (SELECT * FROM orders) SELECT * FROM recent', command: 'SELECT', class: 'read', tables: ['orders'] },
  // ...except inside their own (non-recursive) body, where the name is the real table.
  {
    sql: 'WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets',
    command: 'SELECT',
    class: 'read',
    tables: ['secrets'],
  },
  { sql: 'WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b', command: 'SELECT', class: 'read', tables: [] },
  // A non-recursive CTE does not see the ones after it.
  { sql: 'WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b', command: 'SELECT', class: 'read', tables: ['a'] },
  {
    sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r',
    command: 'SELECT',
    class: 'read',
    tables: [],
  },
  // A CTE hides only a bare name: a qualified one is always a table.
  { sql: 'WITH orders AS (SELECT 1) SELECT * FROM orders, public.orders', command: 'SELECT', class: 'read', tables: ['public.orders'] },
  { sql: 'SELECT * FROM "My Schema"."Order Items"', command: 'SELECT', class: 'read', tables: ['"My Schema"."Order Items"'] },
  { sql: 'SELECT * FROM Public.ORDERS', command: 'SELECT', class: 'read', tables: ['public.orders'] },
  { sql: 'SELECT * FROM "public"."orders", "a.b"', command: 'SELECT', class: 'read', tables: ['"a.b"', 'public.orders'] },
  { sql: 'SELECT count(*), lower(name), NOW() FROM t', command: 'SELECT', class: 'read', tables: ['t'], functions: ['count', 'lower', 'now'] },
  { sql: 'SELECT "Upper"(x) FROM t', command: 'SELECT', class: 'read', tables: ['t'], functions: ['"Upper"'] },
  { sql: 'SELECT * FROM generate_series(1, 10) g', command: 'SELECT', class: 'read', functions: ['generate_series'] },
  { sql: "VALUES (1, 'a'), (2, 'b')", command: 'SELECT', class: 'read' },
  { sql: 'TABLE orders', command: 'SELECT', class: 'read', tables: ['orders'] },
  { sql: 'SHOW search_path', command: 'SHOW', class: 'read' },
  { sql: 'EXPLAIN SELECT * FROM t', command: 'EXPLAIN', class: 'read', tables: ['t'] },
  // Plain EXPLAIN plans the statement without running it.
  { sql: 'EXPLAIN DELETE FROM t', command: 'EXPLAIN', class: 'read', tables: ['t'] },
  { sql: "EXPLAIN SELECT nextval('s')", command: 'EXPLAIN', class: 'read', functions: ['nextval'] },
  { sql: 'EXPLAIN (ANALYZE false, COSTS) DELETE FROM t', command: 'EXPLAIN', class: 'read', tables: ['t'] },
  { sql: 'EXPLAIN (ANALYZE 0) DELETE FROM t', command: 'EXPLAIN', class: 'read', tables: ['t'] },
  { sql: 'EXPLAIN ANALYZE SELECT * FROM t', command: 'EXPLAIN', class: 'read', tables: ['t'] },
  { sql: 'BEGIN', command: 'BEGIN', class: 'read' },
  { sql: 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE', command: 'START TRANSACTION', class: 'read' },
  { sql: 'SAVEPOINT s1', command: 'SAVEPOINT', class: 'read' },
  { sql: 'ROLLBACK TO SAVEPOINT s1', command: 'ROLLBACK', class: 'read' },
  { sql: 'RELEASE SAVEPOINT s1', command: 'RELEASE', class: 'read' },
  { sql: 'COMMIT', command: 'COMMIT', class: 'read' },
  { sql: 'LISTEN jobs', command: 'LISTEN', class: 'read' },
  { sql: 'UNLISTEN *', command: 'UNLISTEN', class: 'read' },
  { sql: 'DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t', command: 'DECLARE CURSOR', class: 'read', tables: ['t'] },
  { sql: 'FETCH 10 FROM c', command: 'FETCH', class: 'read' },
  { sql: 'MOVE LAST IN c', command: 'MOVE', class: 'read' },
  { sql: 'CLOSE c', command: 'CLOSE CURSOR', class: 'read' },
  { sql: 'DISCARD ALL', command: 'DISCARD ALL', class: 'read' },
  { sql: 'DISCARD PLANS', command: 'DISCARD PLANS', class: 'read' },
  { sql: "SET application_name = 'psql'", command: 'SET', class: 'read' },
  { sql: "SET LOCAL statement_timeout = '5s'", command: 'SET', class: 'read' },
  { sql: "SET TIME ZONE 'UTC'", command: 'SET', class: 'read' },
  { sql: 'SET "DateStyle" TO ISO, MDY', command: 'SET', class: 'read' },
  { sql: 'SET extra_float_digits = 3', command: 'SET', class: 'read' },
  { sql: 'RESET statement_timeout', command: 'RESET', class: 'read' },
  { sql: 'RESET ALL', command: 'RESET', class: 'read' },
  { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', command: 'SET', class: 'read' },
  { sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', command: 'SET', class: 'read' },
  { sql: 'SET CONSTRAINTS ALL DEFERRED', command: 'SET CONSTRAINTS', class: 'read' },
  { sql: 'COPY orders TO STDOUT WITH (FORMAT csv)', command: 'COPY', class: 'read', tables: ['orders'] },
  { sql: 'COPY (SELECT * FROM t JOIN u USING (id)) TO STDOUT', command: 'COPY', class: 'read', tables: ['t', 'u'] },
  { sql: "SELECT set_config('application_name', 'x', false)", command: 'SELECT', class: 'read', functions: ['set_config'] },
  { sql: 'DEALLOCATE ALL', command: 'DEALLOCATE ALL', class: 'read' },
];

const WRITE: readonly Case[] = [
  { sql: 'INSERT INTO orders (id) VALUES (1)', command: 'INSERT', class: 'write', tables: ['orders'] },
  {
    sql: 'INSERT INTO archive SELECT * FROM orders WHERE created_at < now() ON CONFLICT DO NOTHING',
    command: 'INSERT',
    class: 'write',
    tables: ['archive', 'orders'],
    functions: ['now'],
  },
  {
    sql: 'UPDATE orders SET total = p.total FROM prices p WHERE p.id = orders.id',
    command: 'UPDATE',
    class: 'write',
    tables: ['orders', 'prices'],
  },
  {
    sql: 'DELETE FROM orders USING customers c WHERE c.id = orders.customer_id AND c.banned',
    command: 'DELETE',
    class: 'write',
    tables: ['customers', 'orders'],
  },
  {
    sql: 'MERGE INTO stock s USING incoming i ON s.id = i.id WHEN MATCHED THEN UPDATE SET qty = s.qty + i.qty WHEN NOT MATCHED THEN INSERT VALUES (i.id, i.qty)',
    command: 'MERGE',
    class: 'write',
    tables: ['incoming', 'stock'],
  },
  {
    sql: 'MERGE INTO stock s USING (SELECT * FROM staging.incoming) i ON s.id = i.id WHEN MATCHED THEN DELETE',
    command: 'MERGE',
    class: 'write',
    tables: ['staging.incoming', 'stock'],
  },
  // A write hidden in a CTE makes the whole statement a write.
  {
    sql: 'WITH d AS (DELETE FROM sessions WHERE expired RETURNING *) SELECT count(*) FROM d',
    command: 'SELECT',
    class: 'write',
    tables: ['sessions'],
    functions: ['count'],
  },
  {
    sql: 'WITH moved AS (UPDATE jobs SET state = 1 RETURNING id) SELECT * FROM moved',
    command: 'SELECT',
    class: 'write',
    tables: ['jobs'],
  },
  // The target of a data change is a table even when a CTE has its name.
  { sql: 'WITH orders AS (SELECT 1) DELETE FROM orders', command: 'DELETE', class: 'write', tables: ['orders'] },
  { sql: 'SELECT * FROM accounts WHERE id = 1 FOR UPDATE', command: 'SELECT', class: 'write', tables: ['accounts'] },
  { sql: 'SELECT * FROM accounts FOR NO KEY UPDATE NOWAIT', command: 'SELECT', class: 'write', tables: ['accounts'] },
  { sql: 'SELECT * FROM accounts FOR SHARE', command: 'SELECT', class: 'write', tables: ['accounts'] },
  { sql: 'SELECT * FROM accounts FOR KEY SHARE SKIP LOCKED', command: 'SELECT', class: 'write', tables: ['accounts'] },
  { sql: 'SELECT * FROM (SELECT * FROM jobs FOR UPDATE SKIP LOCKED) j', command: 'SELECT', class: 'write', tables: ['jobs'] },
  { sql: 'SELECT * INTO backup_orders FROM orders', command: 'SELECT INTO', class: 'write', tables: ['backup_orders', 'orders'] },
  { sql: 'COPY orders FROM STDIN', command: 'COPY', class: 'write', tables: ['orders'] },
  { sql: "COPY orders (id, total) FROM STDIN WITH (FORMAT csv) WHERE total > 0", command: 'COPY', class: 'write', tables: ['orders'] },
  { sql: 'EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1', command: 'EXPLAIN', class: 'write', tables: ['orders'] },
  { sql: 'EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1', command: 'EXPLAIN', class: 'write', tables: ['t'] },
  { sql: 'EXPLAIN (ANALYZE on) INSERT INTO t VALUES (1)', command: 'EXPLAIN', class: 'write', tables: ['t'] },
  { sql: "NOTIFY jobs, 'x'", command: 'NOTIFY', class: 'write' },
  { sql: 'LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE', command: 'LOCK TABLE', class: 'write', tables: ['accounts'] },
  // Sequence mutation: nextval/setval make a SELECT a write.
  { sql: "SELECT nextval('orders_id_seq')", command: 'SELECT', class: 'write', functions: ['nextval'] },
  { sql: "SELECT pg_catalog.setval('s', 42)", command: 'SELECT', class: 'write', functions: ['pg_catalog.setval'] },
  { sql: "SELECT pg_notify('ch', 'x')", command: 'SELECT', class: 'write', functions: ['pg_notify'] },
  { sql: 'DECLARE c CURSOR FOR SELECT * FROM jobs FOR UPDATE', command: 'DECLARE CURSOR', class: 'write', tables: ['jobs'] },
  { sql: 'COPY (DELETE FROM queue RETURNING *) TO STDOUT', command: 'COPY', class: 'write', tables: ['queue'] },
];

const DDL: readonly Case[] = [
  {
    sql: 'CREATE TABLE app.items (id bigint PRIMARY KEY, owner_id int REFERENCES app.owners (id), LIKE app.template)',
    command: 'CREATE TABLE',
    class: 'ddl',
    tables: ['app.items', 'app.owners', 'app.template'],
  },
  { sql: 'CREATE TABLE t2 AS SELECT * FROM t', command: 'CREATE TABLE AS', class: 'ddl', tables: ['t', 't2'] },
  { sql: 'CREATE MATERIALIZED VIEW mv AS SELECT * FROM t', command: 'CREATE MATERIALIZED VIEW', class: 'ddl', tables: ['mv', 't'] },
  { sql: 'CREATE OR REPLACE VIEW reports.v AS SELECT * FROM t', command: 'CREATE VIEW', class: 'ddl', tables: ['reports.v', 't'] },
  { sql: 'CREATE INDEX CONCURRENTLY idx ON orders (created_at)', command: 'CREATE INDEX', class: 'ddl', tables: ['orders'] },
  { sql: 'ALTER TABLE orders ADD COLUMN note text', command: 'ALTER TABLE', class: 'ddl', tables: ['orders'] },
  { sql: 'ALTER TABLE orders RENAME TO orders_old', command: 'ALTER TABLE', class: 'ddl', tables: ['orders'] },
  { sql: 'ALTER TABLE orders RENAME COLUMN a TO b', command: 'ALTER TABLE', class: 'ddl', tables: ['orders'] },
  { sql: 'ALTER VIEW v OWNER TO app', command: 'ALTER VIEW', class: 'ddl', tables: ['v'] },
  { sql: 'DROP TABLE a, s."B" CASCADE', command: 'DROP TABLE', class: 'ddl', tables: ['a', 's."B"'] },
  { sql: 'DROP VIEW IF EXISTS reports.v', command: 'DROP VIEW', class: 'ddl', tables: ['reports.v'] },
  { sql: 'DROP MATERIALIZED VIEW mv', command: 'DROP MATERIALIZED VIEW', class: 'ddl', tables: ['mv'] },
  { sql: 'DROP INDEX idx', command: 'DROP INDEX', class: 'ddl' },
  { sql: 'DROP FUNCTION f(int)', command: 'DROP FUNCTION', class: 'ddl' },
  { sql: 'DROP SCHEMA reports CASCADE', command: 'DROP SCHEMA', class: 'ddl' },
  { sql: 'CREATE SCHEMA reports', command: 'CREATE SCHEMA', class: 'ddl' },
  { sql: 'CREATE SEQUENCE s', command: 'CREATE SEQUENCE', class: 'ddl', tables: ['s'] },
  {
    sql: "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b'",
    command: 'CREATE FUNCTION',
    class: 'ddl',
  },
  { sql: 'CREATE TYPE mood AS ENUM (\'sad\', \'ok\')', command: 'CREATE TYPE', class: 'ddl' },
  { sql: 'TRUNCATE orders, order_items', command: 'TRUNCATE TABLE', class: 'ddl', tables: ['order_items', 'orders'] },
  { sql: "COMMENT ON TABLE public.orders IS 'x'", command: 'COMMENT', class: 'ddl', tables: ['public.orders'] },
  { sql: "COMMENT ON COLUMN public.orders.total IS 'x'", command: 'COMMENT', class: 'ddl', tables: ['public.orders'] },
  { sql: 'GRANT SELECT ON public.orders TO reporting', command: 'GRANT', class: 'ddl', tables: ['public.orders'] },
  { sql: 'REVOKE INSERT ON orders FROM app', command: 'REVOKE', class: 'ddl', tables: ['orders'] },
  { sql: 'ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO r', command: 'ALTER DEFAULT PRIVILEGES', class: 'ddl' },
  { sql: 'VACUUM ANALYZE orders', command: 'VACUUM', class: 'ddl', tables: ['orders'] },
  { sql: 'ANALYZE orders', command: 'ANALYZE', class: 'ddl', tables: ['orders'] },
  { sql: 'REINDEX TABLE orders', command: 'REINDEX', class: 'ddl', tables: ['orders'] },
  { sql: 'CLUSTER orders USING orders_pkey', command: 'CLUSTER', class: 'ddl', tables: ['orders'] },
  { sql: 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv', command: 'REFRESH MATERIALIZED VIEW', class: 'ddl', tables: ['mv'] },
  // The call in a column default is not run now; the statement stays ddl.
  { sql: "CREATE TABLE t (id int DEFAULT nextval('s'))", command: 'CREATE TABLE', class: 'ddl', tables: ['t'], functions: ['nextval'] },
];

const ADMIN: readonly Case[] = [
  { sql: 'SET ROLE admin', command: 'SET', class: 'admin' },
  { sql: 'SET SESSION AUTHORIZATION postgres', command: 'SET', class: 'admin' },
  { sql: 'RESET ROLE', command: 'RESET', class: 'admin' },
  { sql: 'SET "ROLE" = admin', command: 'SET', class: 'admin' },
  { sql: 'SET search_path TO evil, public', command: 'SET', class: 'admin' },
  { sql: "SET SCHEMA 'evil'", command: 'SET', class: 'admin' },
  { sql: "SET myapp.tenant_id = '42'", command: 'SET', class: 'admin' },
  { sql: "SET work_mem = '1GB'", command: 'SET', class: 'admin' },
  { sql: "ALTER SYSTEM SET work_mem = '1GB'", command: 'ALTER SYSTEM', class: 'admin' },
  { sql: "COPY (SELECT 1) TO PROGRAM 'curl http://example.com'", command: 'COPY', class: 'admin' },
  { sql: "COPY orders FROM PROGRAM 'cat /etc/passwd'", command: 'COPY', class: 'admin', tables: ['orders'] },
  { sql: "COPY orders FROM '/tmp/orders.csv'", command: 'COPY', class: 'admin', tables: ['orders'] },
  { sql: "COPY orders TO '/tmp/out.csv'", command: 'COPY', class: 'admin', tables: ['orders'] },
  { sql: "LOAD 'auto_explain'", command: 'LOAD', class: 'admin' },
  { sql: 'DO $$ BEGIN PERFORM 1; END $$', command: 'DO', class: 'admin' },
  { sql: 'CALL process_orders(42)', command: 'CALL', class: 'admin', functions: ['process_orders'] },
  { sql: 'CALL ops.rotate(now())', command: 'CALL', class: 'admin', functions: ['now', 'ops.rotate'] },
  { sql: "CREATE ROLE bob LOGIN PASSWORD 'x'", command: 'CREATE ROLE', class: 'admin' },
  { sql: 'CREATE USER alice', command: 'CREATE ROLE', class: 'admin' },
  { sql: 'ALTER ROLE bob SUPERUSER', command: 'ALTER ROLE', class: 'admin' },
  { sql: 'DROP ROLE bob', command: 'DROP ROLE', class: 'admin' },
  { sql: 'GRANT admin TO bob', command: 'GRANT', class: 'admin' },
  { sql: 'GRANT ALL ON DATABASE shop TO bob', command: 'GRANT', class: 'admin' },
  { sql: 'CREATE DATABASE d', command: 'CREATE DATABASE', class: 'admin' },
  { sql: 'DROP DATABASE d', command: 'DROP DATABASE', class: 'admin' },
  { sql: 'ALTER DATABASE shop OWNER TO bob', command: 'ALTER DATABASE', class: 'admin' },
  { sql: 'ALTER ROLE bob RENAME TO robert', command: 'ALTER ROLE', class: 'admin' },
  { sql: 'CREATE EXTENSION dblink', command: 'CREATE EXTENSION', class: 'admin' },
  { sql: 'DROP EXTENSION dblink', command: 'DROP EXTENSION', class: 'admin' },
  { sql: "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", command: 'CREATE SUBSCRIPTION', class: 'admin' },
  { sql: 'CREATE PUBLICATION p FOR TABLE orders', command: 'CREATE PUBLICATION', class: 'admin', tables: ['orders'] },
  { sql: 'CREATE SERVER srv FOREIGN DATA WRAPPER postgres_fdw', command: 'CREATE SERVER', class: 'admin' },
  { sql: 'IMPORT FOREIGN SCHEMA public FROM SERVER srv INTO staging', command: 'IMPORT FOREIGN SCHEMA', class: 'admin' },
  { sql: 'CHECKPOINT', command: 'CHECKPOINT', class: 'admin' },
  { sql: "PREPARE TRANSACTION 'tx1'", command: 'PREPARE TRANSACTION', class: 'admin' },
  { sql: "COMMIT PREPARED 'tx1'", command: 'COMMIT PREPARED', class: 'admin' },
  { sql: "SECURITY LABEL ON TABLE orders IS 'secret'", command: 'SECURITY LABEL', class: 'admin', tables: ['orders'] },
  { sql: 'VACUUM FULL', command: 'VACUUM', class: 'admin' },
  { sql: 'REINDEX DATABASE shop', command: 'REINDEX', class: 'admin' },
  {
    sql: 'SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity',
    command: 'SELECT',
    class: 'admin',
    tables: ['pg_stat_activity'],
    functions: ['pg_catalog.pg_terminate_backend'],
  },
  { sql: "SELECT lo_import('/etc/passwd')", command: 'SELECT', class: 'admin', functions: ['lo_import'] },
  { sql: "SELECT pg_read_file('postgresql.conf')", command: 'SELECT', class: 'admin', functions: ['pg_read_file'] },
  {
    sql: "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS r(a int)",
    command: 'SELECT',
    class: 'admin',
    functions: ['dblink'],
  },
  { sql: "SELECT ext.dblink_exec('host=x', 'DROP TABLE t')", command: 'SELECT', class: 'admin', functions: ['ext.dblink_exec'] },
  { sql: "SELECT set_config('role', 'postgres', false)", command: 'SELECT', class: 'admin', functions: ['set_config'] },
  // With it off the server would read backslashes in '...' as escapes, unlike the gateway's parser.
  { sql: 'SET standard_conforming_strings = off', command: 'SET', class: 'admin' },
  // In SJIS, BIG5 or GBK a backslash or quote can be the second byte of a character.
  { sql: "SET NAMES 'SJIS'", command: 'SET', class: 'admin' },
  { sql: "SET client_encoding = 'UTF8'", command: 'SET', class: 'admin' },
  { sql: "SELECT set_config('client_encoding', 'BIG5', false)", command: 'SELECT', class: 'admin', functions: ['set_config'] },
  { sql: "SELECT set_config('standard_conforming_strings', 'off', false)", command: 'SELECT', class: 'admin', functions: ['set_config'] },
  { sql: "SELECT set_config(current_setting('x'), 'y', false)", command: 'SELECT', class: 'admin', functions: ['current_setting', 'set_config'] },
  // An admin call inside a write's CTE still makes the statement admin.
  {
    sql: 'WITH k AS (SELECT pg_cancel_backend(1)) INSERT INTO log SELECT * FROM k',
    command: 'INSERT',
    class: 'admin',
    tables: ['log'],
    functions: ['pg_cancel_backend'],
  },
  { sql: 'EXECUTE unknown_statement', command: 'EXECUTE', class: 'admin' },
];

let classifier: SqlClassifier;

beforeAll(async () => {
  classifier = await loadSqlClassifier();
});

function classifyOne(sql: string) {
  const result = classifier.classify(sql);
  if (!result.ok) throw new Error(`${sql}: ${result.error.message}`);
  expect(result.statements).toHaveLength(1);
  return result.statements[0] as (typeof result.statements)[number];
}

describe.each([
  ['read', READ],
  ['write', WRITE],
  ['ddl', DDL],
  ['admin', ADMIN],
] as const)('%s statements', (_name, cases) => {
  it.each(cases)('$sql', (testCase) => {
    const statement = classifyOne(testCase.sql);
    expect({
      command: statement.command,
      class: statement.class,
      tables: statement.tables,
      functions: statement.functions,
    }).toEqual({
      command: testCase.command,
      class: testCase.class,
      tables: testCase.tables ?? [],
      functions: testCase.functions ?? [],
    });
  });
});

describe('the table of cases', () => {
  it('holds over 150 distinct statements, at least 25 of each class', () => {
    const all = [...READ, ...WRITE, ...DDL, ...ADMIN];
    expect(all.length).toBeGreaterThan(150);
    for (const cases of [READ, WRITE, DDL, ADMIN]) expect(cases.length).toBeGreaterThanOrEqual(25);
    expect(new Set(all.map((c) => c.sql)).size).toBe(all.length);
  });
});

describe('functions called through SQL syntax', () => {
  it('are listed under the pg_catalog names the parser gives them', () => {
    const statement = classifyOne("SELECT EXTRACT(year FROM now()), substring('abc' FROM 1 FOR 2), ts AT TIME ZONE 'UTC' FROM t");
    expect(statement.functions).toEqual(['now', 'pg_catalog.extract', 'pg_catalog.substring', 'pg_catalog.timezone']);
    expect(statement.class).toBe('read');
  });
});
