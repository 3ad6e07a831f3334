import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier } from '../../../src/sql/index.js';
import type { ClassifyResult, SqlClassifier } from '../../../src/sql/index.js';

let classifier: SqlClassifier;

beforeAll(async () => {
  classifier = await loadSqlClassifier();
});

function statements(result: ClassifyResult) {
  if (!result.ok) throw new Error(result.error.message);
  return result.statements;
}

function texts(sql: string): string[] {
  return statements(classifier.classify(sql)).map((statement) => statement.text);
}

function failure(sql: string) {
  const result = classifier.classify(sql);
  if (result.ok) throw new Error(`expected ${sql} to be rejected`);
  return result.error;
}

describe('splitting a text into statements', () => {
  it('gives each statement its own slice: the first at location 0, the last without a length', () => {
    expect(texts('SELECT 1; INSERT INTO t VALUES (2)')).toEqual(['SELECT 1', 'INSERT INTO t VALUES (2)']);
  });

  it('classifies each statement of a multi-statement text on its own', () => {
    const result = statements(classifier.classify("SELECT * FROM a; DELETE FROM b; SET ROLE admin; CREATE TABLE c (x int)"));
    expect(result.map((s) => [s.command, s.class, s.tables])).toEqual([
      ['SELECT', 'read', ['a']],
      ['DELETE', 'write', ['b']],
      ['SET', 'admin', []],
      ['CREATE TABLE', 'ddl', ['c']],
    ]);
  });

  it('starts each statement at its first token: leading comments and whitespace are not part of it', () => {
    expect(texts('-- lead\nSELECT 1;\n/* block */ SELECT 2')).toEqual(['SELECT 1', 'SELECT 2']);
    expect(texts('   \n\tSELECT 1')).toEqual(['SELECT 1']);
  });

  it('keeps comments inside a statement and after the last one when no ; follows', () => {
    expect(texts('SELECT /* inner */ 1 ;SELECT 2 -- tail\n')).toEqual(['SELECT /* inner */ 1', 'SELECT 2 -- tail']);
  });

  it('ends a statement before its ; and drops the trailing whitespace', () => {
    expect(texts('SELECT 1 ; SELECT 2 ;  \n')).toEqual(['SELECT 1', 'SELECT 2']);
  });

  it('skips empty statements', () => {
    expect(texts(';;SELECT 1;;;SELECT 2;;')).toEqual(['SELECT 1', 'SELECT 2']);
  });

  it('slices by characters, although the parser counts UTF-8 bytes', () => {
    expect(texts(`SELECT 'é' AS "ü"; DELETE FROM "tä" ; SELECT '😀😀'; SELECT 3`)).toEqual([
      `SELECT 'é' AS "ü"`,
      'DELETE FROM "tä"',
      `SELECT '😀😀'`,
      'SELECT 3',
    ]);
    const result = statements(classifier.classify(`SELECT 'é'; DELETE FROM "Tä"`));
    expect(result[1]?.tables).toEqual(['"Tä"']);
  });

  it('keeps a dollar-quoted body with semicolons in one statement', () => {
    expect(texts('DO $$ BEGIN PERFORM 1; PERFORM 2; END $$; SELECT 1')).toEqual([
      'DO $$ BEGIN PERFORM 1; PERFORM 2; END $$',
      'SELECT 1',
    ]);
  });

  it('answers zero statements for an empty text and for comments or whitespace only', () => {
    for (const sql of ['', '   ', '-- nothing here', '/* a */ /* b */', ';', ' ; ; ']) {
      expect(classifier.classify(sql)).toEqual({ ok: true, statements: [] });
    }
  });
});

describe('SQL the parser rejects', () => {
  it('is an error value with the parser’s message', () => {
    expect(failure('SELEC 1')).toEqual({ kind: 'syntax', message: 'syntax error at or near "SELEC"' });
  });

  it('points at the offending token, in JavaScript string indexes', () => {
    const sql = "SELECT 'é😀' FROM WHERE";
    expect(failure(sql)).toEqual({ kind: 'syntax', message: 'syntax error at or near "WHERE"', position: sql.indexOf('WHERE') });
  });

  it('rejects the whole text when any statement is invalid, never a guess for the rest', () => {
    const error = failure('SELECT 1; DELET FROM t; SELECT 2');
    expect(error.kind).toBe('syntax');
    expect(error.position).toBe(10);
  });

  it('reports unterminated literals and comments', () => {
    expect(failure("SELECT 'abc").message).toBe('unterminated quoted string at or near "\'abc"');
    expect(failure('SELECT 1 /* open').message).toBe('unterminated /* comment at or near "/* open"');
  });

  it('rejects a text with a NUL character, which would hide the rest from the parser', () => {
    expect(failure('SELECT 1\u0000; DROP TABLE t').kind).toBe('invalid-text');
  });

  it('rejects an unpaired surrogate but accepts paired ones', () => {
    expect(failure("SELECT '\uD800'").kind).toBe('invalid-text');
    expect(texts("SELECT '\uD83D\uDE00'")).toEqual(["SELECT '😀'"]);
  });
});

describe('fingerprints', () => {
  const fingerprint = (sql: string): string => statements(classifier.classify(sql))[0]?.fingerprint ?? '';

  it('are the same for statements that differ only in literals, case, spacing and comments', () => {
    const a = fingerprint("SELECT name FROM users WHERE id = 1 AND email = 'a@example.com'");
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprint("select name\n  from users /* hi */ where id=2 and email='b@example.com'")).toBe(a);
  });

  it('differ when the shape differs', () => {
    const a = fingerprint('SELECT name FROM users WHERE id = 1');
    expect(fingerprint('SELECT name FROM customers WHERE id = 1')).not.toBe(a);
    expect(fingerprint('SELECT email FROM users WHERE id = 1')).not.toBe(a);
  });

  it('are computed per statement', () => {
    const [one, two] = statements(classifier.classify('SELECT 1; SELECT * FROM t'));
    expect(one?.fingerprint).toBe(fingerprint('SELECT 2'));
    expect(two?.fingerprint).toBe(fingerprint('SELECT * FROM t'));
    expect(one?.fingerprint).not.toBe(two?.fingerprint);
  });
});

describe('the cursor a FETCH or MOVE reads', () => {
  const cursorOf = (sql: string): string | undefined => statements(classifier.classify(sql))[0]?.cursor;

  it('is named as PostgreSQL resolves it: lower-cased unless quoted, cut to 63 bytes, after any direction and comments', () => {
    expect(cursorOf('FETCH ALL FROM P')).toBe('p');
    expect(cursorOf('fetch forward 5 in "Mixed ""Name"""')).toBe('Mixed "Name"');
    expect(cursorOf('MOVE ABSOLUTE -1 /* not the name */ FROM c -- nor this')).toBe('c');
    expect(cursorOf(`FETCH NEXT FROM ${'p'.repeat(70)}`)).toBe('p'.repeat(63));
    expect(cursorOf('SELECT 1')).toBeUndefined();
    expect(cursorOf('CLOSE c')).toBeUndefined();
  });
});
