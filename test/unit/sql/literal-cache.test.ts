import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { lexSql } from '../../../src/sql/lexer.js';
import { loadSqlClassifier } from '../../../src/sql/index.js';
import type { ClassifyResult, SqlClassifier } from '../../../src/sql/index.js';

/** A classifier without any cache: every text is parsed in full. */
let uncached: SqlClassifier;

beforeAll(async () => {
  uncached = await loadSqlClassifier({ cacheSize: 0 });
});

function key(sql: string): string | null {
  return lexSql(sql)?.key.replaceAll('\0', ' ').trimEnd() ?? null;
}

/** Classifies `first` then `then` with one fresh cache; returns `then`'s result and the templates held. */
async function after(first: string, then: string): Promise<{ result: ClassifyResult; templates: number }> {
  const classifier = await loadSqlClassifier();
  classifier.classify(first);
  const templates = classifier.cachedTemplates;
  return { result: classifier.classify(then), templates };
}

describe('the lexer key', () => {
  it('replaces each constant with its token kind and keeps everything else as written', () => {
    expect(key("SELECT abalance FROM pgbench_accounts WHERE aid = 4711;")).toBe("SELECT abalance FROM pgbench_accounts WHERE aid = 'i ;");
    expect(key("select 1e5, .5, 0x1F, 1_000, 1., 2147483647, 2147483648, 0x80000000")).toBe(
      "select 'f , 'f , 'i , 'i , 'f , 'i , 'f , 'f",
    );
    expect(key("select B'0101', X'1F', E'a', $$b$$, $t$c$t$, U&'d'")).toBe("select 'b , 'x , 's , 's , 's , 's");
    expect(key('select $1::int, "Quoted ""x""", U&"d\\0061t" from s.t')).toBe('select $1 :: int , "Quoted ""x""" , U&"d\\0061t" from s . t');
  });

  it('never takes a semicolon, quote or comment inside a constant for a token', () => {
    expect(key("select 'a;drop table x'")).toBe("select 's");
    expect(key("select $$a'; drop table x; --$$ from t")).toBe("select 's from t");
    expect(key("select E'\\'; drop table x; --' from t")).toBe("select 's from t");
    expect(key("select $x$ $$ ; $x$")).toBe("select 's");
  });

  it('leaves comments out, including quotes and nested block comments inside them', () => {
    expect(key("select /* it's /* nested */ still ' comment */ 1 -- don't\nfrom t")).toBe("select 'i from t");
    expect(key('select 1 -- trailing')).toBe("select 'i");
  });

  it('tells apart what PostgreSQL tells apart', () => {
    expect(key("select E'x'")).not.toBe(key("select E 'x'"));
    expect(key("select U&'x'")).not.toBe(key("select U& 'x'"));
    expect(key("select B'1'")).not.toBe(key("select b '1'"));
    expect(key('select 1')).not.toBe(key('select 1.0'));
    expect(key('select a::int')).not.toBe(key('select a: :int'));
    expect(key('select Orders')).not.toBe(key('select orders'));
    expect(key('select a.b')).toBe(key('select a . b'));
  });

  it('gives no key wherever a constant value or whitespace could change the tokens', () => {
    for (const sql of [
      "select E'\\x41'", // escapes that make bytes
      "select E'\\101'",
      "select E'\\u0041'",
      "select U&'\\0041'",
      "select U&'!0041' UESCAPE '!'",
      'select U&"!0061" uescape \'!\'',
      "select 'a'\n'b'", // continuation across a newline
      "select 'a' 'b'",
      "select N'x'",
      'select 1abc', // trailing junk
      'select 0x',
      'select 0b102',
      'select 1..2',
      'select 1e',
      'select $1abc',
      'select f(a := 1)',
      'select a +-- comment\n b',
      "select 'unterminated",
      'select /* unterminated',
      'select $$unterminated',
      'select "unterminated',
      'select {1}',
      'select \\x',
      'select $',
      'select 1\0',
      "select '\uD800'",
      'select x -- \uDC00',
    ]) {
      expect(lexSql(sql), sql).toBeNull();
    }
  });
});

describe('classifying from a template', () => {
  it('shares a classification among texts that differ only in constants', async () => {
    const { result, templates } = await after("SELECT * FROM orders WHERE id = 1 AND note = 'a'", "SELECT * FROM orders WHERE id = 2 AND note = 'b;c'");
    expect(templates).toBe(1);
    expect(result).toEqual(uncached.classify("SELECT * FROM orders WHERE id = 2 AND note = 'b;c'"));
    if (!result.ok) throw new Error(result.error.message);
    expect(result.statements[0]?.text).toBe("SELECT * FROM orders WHERE id = 2 AND note = 'b;c'");
    expect(Object.isFrozen(result.statements[0])).toBe(true);
  });

  it('cuts each statement of a multi-statement text from its own text, comments and all', async () => {
    const second = "select 10 /* a ' */ ; -- lead\n insert into t values ('x;y', -3)  ";
    const { result } = await after('select 1; insert into t values (\'a\', -1)', second);
    expect(result).toEqual(uncached.classify(second));
    if (!result.ok) throw new Error(result.error.message);
    expect(result.statements.map((statement) => statement.text)).toEqual(['select 10 /* a \' */', "insert into t values ('x;y', -3)"]);
  });

  it('keeps statement texts right when constants hold multi-byte characters', async () => {
    const second = "select 'Zoë 𝄞' from \"Tëst\"; select 'ü'";
    const { result } = await after('select \'a\' from "Tëst"; select \'b\'', second);
    expect(result).toEqual(uncached.classify(second));
  });

  it('makes no template when a constant is not a plain value', async () => {
    for (const [first, second] of [
      ["copy t from 'a.csv'", "copy t from 'b.csv'"],
      ["comment on table t is 'a'", "comment on table t is 'b'"],
      ["select set_config('application_name', 'x', false)", "select set_config('search_path', 'x', false)"],
      ['explain (analyze 0) delete from t', 'explain (analyze 1) delete from t'],
      ['select 1::float(5)', 'select 1::float(0)'],
      ['fetch 5 from c', 'fetch 6 from c'],
      ["do $$begin perform 1; end$$", "do $$begin delete from t; end$$"],
    ] as const) {
      const { result, templates } = await after(first, second);
      expect(templates, first).toBe(0);
      expect(result, second).toEqual(uncached.classify(second));
    }
  });

  it('classifies set_config by its own setting name, never by a look-alike text', async () => {
    const { result } = await after("select set_config('application_name', 'x', false)", "select set_config('search_path', 'x', false)");
    if (!result.ok) throw new Error(result.error.message);
    expect(result.statements[0]?.class).toBe('admin');
  });

  it('answers a text the parser rejects from a full parse, never from a template', async () => {
    const { result } = await after('select 1::float(5)', 'select 1::float(0)');
    expect(result.ok).toBe(false);
  });

  it('resolves EXECUTE against the caller\'s prepared statements for every text of a template', async () => {
    const classifier = await loadSqlClassifier();
    const prepared = new Map([['p', { class: 'write', tables: ['orders'], functions: [] }] as const]);
    classifier.classify('execute p(1)', { prepared });
    const result = classifier.classify('execute p(2)', { prepared });
    expect(classifier.cachedTemplates).toBe(1);
    expect(result).toEqual(uncached.classify('execute p(2)', { prepared }));
    if (!result.ok) throw new Error(result.error.message);
    expect(result.statements[0]?.class).toBe('write');
    expect(classifier.classify('execute p(3)')).toEqual(uncached.classify('execute p(3)'));
  });
});

/** Constants of each kind, in the forms PostgreSQL accepts, with the characters that trip lexers. */
const stringBody = fc.stringMatching(/^[a-z0-9 ;,'"$\-*/\\()é𝄞]{0,12}$/);
const stringConstant = fc.oneof(
  stringBody.map((body) => `'${body.replaceAll("'", "''")}'`),
  stringBody.map((body) => `E'${body.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`),
  fc.tuple(fc.constantFrom('', 'q', 'tag_1'), stringBody).map(([tag, body]) => `$${tag}$${body.replaceAll('$', '')}$${tag}$`),
  stringBody.filter((body) => !body.includes('\\')).map((body) => `U&'${body.replaceAll("'", "''")}'`),
);
const integerConstant = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 40 }).map(String),
  fc.integer({ min: 0, max: 2 ** 40 }).map((n) => `0x${n.toString(16)}`),
  fc.integer({ min: 0, max: 999_999 }).map((n) => n.toLocaleString('en-US').replaceAll(',', '_')),
);
const numericConstant = fc.oneof(
  fc.tuple(fc.nat(9999), fc.nat(999)).map(([a, b]) => `${a}.${b}`),
  fc.nat(999).map((b) => `.${b}`),
  fc.tuple(fc.nat(99), fc.integer({ min: -30, max: 30 })).map(([a, e]) => `${a}e${e}`),
);
const constant = fc.oneof(stringConstant, integerConstant, numericConstant, fc.constantFrom("B'0101'", "X'1F'", "B''"));
const separator = fc.constantFrom(' ', '  ', '\n', ' /* c\'o;m */ ', ' -- note; \'\n', '\t');

/** Statement shapes with holes (`?`) for constants: plain values, and the places where they are not. */
const shapes = fc.constantFrom(
  'SELECT abalance FROM pgbench_accounts WHERE aid = ?',
  'select * from orders where id = ? and note <> ? limit ?',
  'select -?, - - ?, ? - ?, +? from t',
  "select interval ? from t where d > date ? and x = ?::text",
  'insert into s.orders (a, b) values (?, ?), (?, ?) returning id',
  'update orders set total = total * ? where id in (?, ?)',
  'delete from "Order Items" where qty < ?',
  'with w as (select ? as x) select x from w where x = ?',
  'select f(?), nextval(?), pg_read_file(?) from t',
  'select set_config(?, ?, false)',
  'copy t from ?',
  'copy (select ?) to stdout',
  'comment on table t is ?',
  'explain (analyze ?) delete from t where a = ?',
  'select ?::float(?)',
  'select ?::varchar(?), ?::numeric(?, ?)',
  'set statement_timeout = ?',
  'set search_path = ?',
  'fetch ? from c',
  'prepare p as select * from t where a = ?; execute p(?)',
  'select ?; select ? from t; delete from u where v = ?',
  'select * from t where a = ? for update',
  'select ? ?',
  'select * from t where a = any(array[?, ?])',
  'create table t (a int default ?, b text check (b <> ?))',
  'alter table t alter column a set statistics ?',
  'select * from t tablesample bernoulli (?) repeatable (?)',
  'select u&? from t',
);

function fill(shape: string, constants: readonly string[], separators: readonly string[]): string {
  let index = 0;
  return shape
    .split(' ')
    .map((word) => word.replaceAll('?', () => constants[index++ % constants.length] as string))
    .map((word, at) => (at === 0 ? word : `${separators[at % separators.length] as string}${word}`))
    .join('');
}

describe('a template against full parses (property)', () => {
  it('classifies every text exactly as a full parse does, whatever its constants', async () => {
    const cached = await loadSqlClassifier();
    let hits = 0;
    await fc.assert(
      fc.asyncProperty(
        shapes,
        fc.array(constant, { minLength: 1, maxLength: 6 }),
        fc.array(constant, { minLength: 1, maxLength: 6 }),
        fc.array(separator, { minLength: 1, maxLength: 4 }),
        fc.array(separator, { minLength: 1, maxLength: 4 }),
        async (shape, firstConstants, secondConstants, firstSpaces, secondSpaces) => {
          const first = fill(shape, firstConstants, firstSpaces);
          const second = fill(shape, secondConstants, secondSpaces);
          cached.classify(first);
          const before = cached.cachedTemplates;
          const result = cached.classify(second);
          if (cached.cachedTemplates === before && lexSql(second) !== null && lexSql(second)?.key === lexSql(first)?.key) hits += 1;
          expect(result).toEqual(uncached.classify(second));
        },
      ),
      { numRuns: 1_500 },
    );
    // The property is only worth something if templates were really used.
    expect(hits).toBeGreaterThan(100);
  });
});
