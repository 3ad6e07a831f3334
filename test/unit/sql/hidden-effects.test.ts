/**
 * Statements whose effect the syntax hides behind a table name, a function name or a column
 * reference: writes to `pg_settings` and other catalog relations, built-in functions that run a
 * SQL text or have side effects, and attribute notation (`o.f` calling `f(o)`).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier } from '../../../src/sql/index.js';
import type { ClassifiedStatement, SqlClassifier, StatementClass } from '../../../src/sql/index.js';

let classifier: SqlClassifier;
let uncached: SqlClassifier;

beforeAll(async () => {
  classifier = await loadSqlClassifier();
  uncached = await loadSqlClassifier({ cacheSize: 0 });
});

function only(sql: string, using: SqlClassifier = classifier): ClassifiedStatement {
  const result = using.classify(sql);
  if (!result.ok) throw new Error(`${sql}: ${result.error.message}`);
  expect(result.statements).toHaveLength(1);
  return result.statements[0] as ClassifiedStatement;
}

const classOf = (sql: string): StatementClass => only(sql).class;

describe('writes to pg_settings are admin, like SET and set_config', () => {
  it.each([
    "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
    "UPDATE pg_catalog.pg_settings SET setting = 'secret' WHERE name = 'search_path'",
    `UPDATE "pg_settings" SET setting = 'SJIS' WHERE name = 'client_encoding'`,
    `UPDATE pg_catalog."pg_settings" AS s SET setting = 'x' WHERE s.name = 'search_path'`,
    `UPDATE shop.pg_catalog.pg_settings SET setting = 'x' WHERE name = 'search_path'`,
    "UPDATE PG_SETTINGS SET setting = 'secret' WHERE name = 'search_path'",
    "WITH s AS (UPDATE pg_settings SET setting = 'secret' WHERE name = 'search_path' RETURNING name) SELECT * FROM s",
    "SELECT * FROM orders WHERE id IN (WITH s AS (UPDATE pg_settings SET setting = 'x' WHERE name = 'search_path' RETURNING 1) SELECT 1 FROM s)",
    "INSERT INTO pg_settings (name, setting) VALUES ('search_path', 'secret')",
    "DELETE FROM pg_settings WHERE name = 'search_path'",
    "MERGE INTO pg_settings s USING (VALUES ('search_path', 'secret')) v(n, x) ON s.name = v.n WHEN MATCHED THEN UPDATE SET setting = v.x",
    'COPY pg_settings (name, setting) FROM STDIN',
    "EXPLAIN ANALYZE UPDATE pg_settings SET setting = 'secret' WHERE name = 'search_path'",
    "PREPARE p AS UPDATE pg_settings SET setting = $1 WHERE name = 'search_path'",
  ])('%s', (sql) => {
    expect(classOf(sql)).toBe('admin');
  });

  it('is admin whatever the setting, so constants never change the class', () => {
    expect(classOf("UPDATE pg_settings SET setting = 'x' WHERE name = 'application_name'")).toBe('admin');
  });

  it('makes writes to every other catalog relation admin too (pg_group, pg_stat_database_conflicts write through)', () => {
    expect(classOf("UPDATE pg_group SET groname = 'x'")).toBe('admin');
    expect(classOf('UPDATE pg_catalog.pg_stat_database_conflicts SET datname = datname')).toBe('admin');
    expect(classOf("INSERT INTO pg_catalog.pg_db_role_setting VALUES (0, 0, '{search_path=secret}')")).toBe('admin');
  });

  it('makes bare writes to writable catalog relations admin, in any statement that writes', () => {
    expect(classOf('UPDATE pg_stat_database_conflicts SET datname = datname')).toBe('admin');
    expect(classOf("UPDATE pg_authid SET rolsuper = true WHERE rolname = 'app'")).toBe('admin');
    expect(classOf("INSERT INTO pg_db_role_setting VALUES (0, 0, '{search_path=secret}')")).toBe('admin');
    expect(classOf('DELETE FROM pg_largeobject')).toBe('admin');
    expect(classOf('COPY pg_class FROM STDIN')).toBe('admin');
  });

  it('leaves writes to user tables whose bare name merely starts with pg_ at write', () => {
    expect(classOf('INSERT INTO pg_jobs VALUES (1)')).toBe('write');
    expect(classOf("UPDATE pg_jobs SET state = 'done' WHERE id = 1")).toBe('write');
    expect(classOf('DELETE FROM pg_settings_history')).toBe('write');
    expect(classOf('MERGE INTO pg_jobs j USING (VALUES (1)) v(id) ON j.id = v.id WHEN NOT MATCHED THEN INSERT VALUES (v.id)')).toBe('write');
    expect(classOf('COPY pg_jobs FROM STDIN')).toBe('write');
    expect(classOf('UPDATE "PG_SETTINGS" SET setting = 1')).toBe('write');
  });

  it('makes every pg_catalog-qualified write admin, writable relation or not', () => {
    expect(classOf('INSERT INTO pg_catalog.pg_jobs VALUES (1)')).toBe('admin');
    expect(classOf('DELETE FROM pg_catalog.pg_stat_activity')).toBe('admin');
  });

  it('leaves reads of pg_settings, a plain EXPLAIN of the write, and user tables alone', () => {
    expect(classOf("SELECT setting FROM pg_settings WHERE name = 'search_path'")).toBe('read');
    expect(classOf("EXPLAIN UPDATE pg_settings SET setting = 'x' WHERE name = 'search_path'")).toBe('read');
    expect(classOf("UPDATE public.pg_settings SET setting = 'x'")).toBe('write');
    expect(classOf("UPDATE orders SET note = 'pg_settings'")).toBe('write');
    expect(classOf('COPY pg_settings TO STDOUT')).toBe('read');
  });
});

describe('built-in functions that run a SQL text or act beyond the statement', () => {
  it.each([
    "SELECT query_to_xml('select material from secret.keys', true, false, '')",
    "SELECT query_to_xmlschema('select 1', true, false, '')",
    "SELECT query_to_xml_and_xmlschema('select 1', true, false, '')",
    "SELECT pg_catalog.query_to_xml('select 1', true, false, '')",
    "SELECT cursor_to_xml('c', 10, true, false, '')",
    "SELECT cursor_to_xmlschema('c', true, false, '')",
    "SELECT table_to_xml('secret.keys', true, false, '')",
    "SELECT table_to_xml_and_xmlschema('secret.keys', true, false, '')",
    "SELECT schema_to_xml('secret', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT * FROM ts_stat('select to_tsvector(material) from secret.keys')",
    "SELECT ts_rewrite('a & b'::tsquery, 'select t, s from secret.aliases')",
    "SELECT pg_logical_emit_message(true, 'p', 'x')",
    "SELECT pg_replication_slot_advance('s', '0/0')",
    "SELECT pg_copy_logical_replication_slot('a', 'b')",
    "SELECT pg_copy_physical_replication_slot('a', 'b')",
    "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)",
    "SELECT * FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL)",
    'SELECT pg_stat_reset()',
    "SELECT pg_stat_reset_shared('io')",
    "SELECT pg_stat_reset_single_table_counters('secret.keys'::regclass)",
    'SELECT pg_ls_waldir()',
    "SELECT pg_replication_origin_create('o')",
    "SELECT dblink_exec('dbname=shop', 'drop table orders')",
  ])('%s is admin', (sql) => {
    expect(classOf(sql)).toBe('admin');
  });

  it('makes advisory locks write, like LOCK and SELECT ... FOR UPDATE, and lo_truncate write, like lowrite', () => {
    expect(classOf('SELECT pg_advisory_lock(1)')).toBe('write');
    expect(classOf('SELECT pg_try_advisory_xact_lock(1, 2)')).toBe('write');
    expect(classOf('SELECT pg_advisory_unlock_all()')).toBe('write');
    expect(classOf('SELECT lo_truncate(0, 0)')).toBe('write');
    expect(classOf('SELECT lo_truncate64(0, 0)')).toBe('write');
  });

  it('leaves functions that evaluate no SQL as reads', () => {
    expect(classOf("SELECT xpath('/a', '<a/>'::xml), xmlexists('/a' PASSING BY VALUE xml '<a/>')")).toBe('read');
    expect(classOf("SELECT to_tsvector('a b'), ts_headline('a b', 'a'::tsquery)")).toBe('read');
    expect(classOf('SELECT * FROM pg_stat_activity')).toBe('read');
  });
});

describe('attribute notation names possible functions', () => {
  it('reports every part after the first of a qualified column reference, and field selections', () => {
    const statement = only('SELECT o.audit_touch, (o).other_fn, orders.id, s.t.c, (o.x).y[1].z, o.* FROM orders o');
    expect(statement.functions).toEqual([]);
    expect(statement.possibleFunctions).toEqual(['audit_touch', 'c', 'id', 'other_fn', 't', 'x', 'y', 'z']);
  });

  it('reports names as the other name lists do, quoted when they are not plain', () => {
    expect(only('SELECT o."Audit Touch" FROM orders o').possibleFunctions).toEqual(['"Audit Touch"']);
  });

  it('finds them anywhere: WHERE, subqueries, CTEs, DML', () => {
    expect(only('WITH w AS (SELECT 1 FROM orders o WHERE o.f > 0) SELECT 1 FROM w').possibleFunctions).toEqual(['f']);
    expect(only('UPDATE orders o SET total = 1 WHERE o.g IS NULL').possibleFunctions).toEqual(['g']);
  });

  it('does not report bare column names, which PostgreSQL never calls', () => {
    expect(only('SELECT audit_touch FROM orders').possibleFunctions).toEqual([]);
  });

  it('is part of what an EXECUTE inherits from a PREPARE in the same text', () => {
    const result = classifier.classify('PREPARE q AS SELECT o.audit_touch FROM orders o; EXECUTE q');
    expect(result.ok && result.statements[1]?.possibleFunctions).toEqual(['audit_touch']);
    const known = new Map([['k', { class: 'read' as const, tables: [], functions: [], possibleFunctions: ['h'] }]]);
    const executed = classifier.classify('EXECUTE k', { prepared: known });
    expect(executed.ok && executed.statements[0]?.possibleFunctions).toEqual(['h']);
  });
});

describe('the template cache keeps these classifications', () => {
  const pairs: readonly (readonly [string, string])[] = [
    ["UPDATE pg_settings SET setting = 'a' WHERE name = 'application_name'", "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"],
    ["SELECT query_to_xml('select 1', true, false, '')", "SELECT query_to_xml('select material from secret.keys', true, false, '')"],
    ['SELECT o.audit_touch FROM orders o WHERE o.id = 1', 'SELECT o.audit_touch FROM orders o WHERE o.id = 2'],
    ['SELECT pg_advisory_lock(1)', 'SELECT pg_advisory_lock(2)'],
  ];

  it.each(pairs)('%s then %s: the same as a full parse', (first, second) => {
    only(first);
    const fromTemplate = only(second);
    const parsed = only(second, uncached);
    expect(fromTemplate).toEqual(parsed);
  });

  it('never shares a template between the catalog relation and a look-alike name', () => {
    expect(classOf("UPDATE pg_settings SET setting = 'a' WHERE name = 'b'")).toBe('admin');
    expect(classOf("UPDATE pg_settingz SET setting = 'a' WHERE name = 'b'")).toBe('write');
    expect(classOf("UPDATE settings SET setting = 'a' WHERE name = 'b'")).toBe('write');
  });
});
