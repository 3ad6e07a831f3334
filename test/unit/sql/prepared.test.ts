import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier } from '../../../src/sql/index.js';
import type { ClassifiedStatement, PreparedStatementFacts, SqlClassifier } from '../../../src/sql/index.js';

let classifier: SqlClassifier;

beforeAll(async () => {
  classifier = await loadSqlClassifier();
});

function classify(sql: string, prepared?: ReadonlyMap<string, PreparedStatementFacts>): ClassifiedStatement[] {
  const result = classifier.classify(sql, prepared === undefined ? undefined : { prepared });
  if (!result.ok) throw new Error(result.error.message);
  return [...result.statements];
}

function one(sql: string, prepared?: ReadonlyMap<string, PreparedStatementFacts>): ClassifiedStatement {
  const [statement] = classify(sql, prepared);
  if (statement === undefined) throw new Error(`no statement in ${sql}`);
  return statement;
}

describe('SQL-level prepared statements', () => {
  it('gives PREPARE the class, tables and functions of its statement, and names it', () => {
    const statement = one('PREPARE del (int) AS DELETE FROM orders WHERE id = $1 AND now() > created_at');
    expect(statement).toMatchObject({
      command: 'PREPARE',
      class: 'write',
      tables: ['orders'],
      functions: ['now'],
      prepared: { op: 'prepare', name: 'del' },
    });
  });

  it('folds an unquoted name and keeps a quoted one', () => {
    expect(one('PREPARE MyStmt AS SELECT 1').prepared).toEqual({ op: 'prepare', name: 'mystmt' });
    expect(one('PREPARE "MyStmt" AS SELECT 1').prepared).toEqual({ op: 'prepare', name: 'MyStmt' });
  });

  it('makes EXECUTE of a statement it knows nothing about admin', () => {
    expect(one('EXECUTE del(1)')).toMatchObject({
      command: 'EXECUTE',
      class: 'admin',
      tables: [],
      prepared: { op: 'execute', name: 'del', known: false },
    });
  });

  it('gives EXECUTE the facts of the prepared statement the caller knows', () => {
    const known = new Map([['del', one('PREPARE del (int) AS DELETE FROM orders WHERE id = $1')]]);
    expect(one('EXECUTE del(1)', known)).toMatchObject({
      class: 'write',
      tables: ['orders'],
      prepared: { op: 'execute', name: 'del', known: true },
    });
    const reader: PreparedStatementFacts = { class: 'read', tables: ['public.items'], functions: ['lower'] };
    expect(one('EXECUTE sel', new Map([['sel', reader]]))).toMatchObject({
      class: 'read',
      tables: ['public.items'],
      functions: ['lower'],
    });
  });

  it('adds what the parameters of EXECUTE do to the prepared statement’s facts', () => {
    const reader: PreparedStatementFacts = { class: 'read', tables: ['t'], functions: [] };
    expect(one("EXECUTE sel(nextval('s'))", new Map([['sel', reader]]))).toMatchObject({
      class: 'write',
      tables: ['t'],
      functions: ['nextval'],
    });
  });

  it('uses a PREPARE earlier in the same text', () => {
    const [prepare, execute] = classify('PREPARE p AS SELECT * FROM t; EXECUTE p');
    expect(prepare?.class).toBe('read');
    expect(execute).toMatchObject({ class: 'read', tables: ['t'], prepared: { op: 'execute', name: 'p', known: true } });
  });

  it('forgets statements deallocated earlier in the text, even when the caller knows them', () => {
    const known = new Map<string, PreparedStatementFacts>([['p', { class: 'read', tables: [], functions: [] }]]);
    expect(classify('DEALLOCATE p; EXECUTE p', known)[1]).toMatchObject({ class: 'admin', prepared: { known: false } });
    expect(classify('DISCARD ALL; EXECUTE p', known)[1]).toMatchObject({ class: 'admin', prepared: { known: false } });
    expect(classify('DEALLOCATE ALL; PREPARE p AS SELECT 1; EXECUTE p', known)[2]).toMatchObject({
      class: 'read',
      prepared: { known: true },
    });
  });

  it('reports what DEALLOCATE and DISCARD ALL remove', () => {
    expect(one('DEALLOCATE PREPARE p').prepared).toEqual({ op: 'deallocate', name: 'p' });
    expect(one('DEALLOCATE ALL').prepared).toEqual({ op: 'deallocate', name: null });
    expect(one('DISCARD ALL').prepared).toEqual({ op: 'deallocate', name: null });
    expect(one('DISCARD PLANS').prepared).toBeNull();
    expect(one('SELECT 1').prepared).toBeNull();
  });

  it('runs the prepared statement under EXPLAIN ANALYZE and CREATE TABLE AS, but not under plain EXPLAIN', () => {
    const known = new Map<string, PreparedStatementFacts>([['del', { class: 'write', tables: ['orders'], functions: [] }]]);
    expect(one('EXPLAIN ANALYZE EXECUTE del(1)', known)).toMatchObject({ class: 'write', tables: ['orders'] });
    expect(one('EXPLAIN ANALYZE EXECUTE del(1)')).toMatchObject({ class: 'admin', prepared: { op: 'execute', known: false } });
    expect(one('EXPLAIN EXECUTE del(1)')).toMatchObject({ class: 'read', prepared: null });
    expect(one('CREATE TABLE copy AS EXECUTE del(1)', known)).toMatchObject({ class: 'ddl', tables: ['copy', 'orders'] });
  });

  it('caches the result without context and computes the one with context afresh', () => {
    const known = new Map<string, PreparedStatementFacts>([['q', { class: 'read', tables: [], functions: [] }]]);
    const bare = classifier.classify('EXECUTE q');
    expect(classifier.classify('EXECUTE q')).toBe(bare);
    const withContext = classifier.classify('EXECUTE q', { prepared: known });
    expect(withContext).not.toBe(bare);
    expect(withContext.ok && withContext.statements[0]?.class).toBe('read');
    expect(classifier.classify('EXECUTE q', { prepared: new Map() })).toBe(bare);
    expect(classifier.classify('EXECUTE q')).toBe(bare);
  });
});
