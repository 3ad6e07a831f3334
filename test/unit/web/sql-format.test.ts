import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FORMAT_LINE_BUDGET, FORMAT_TOKEN_BUDGET, MAX_INDENT_DEPTH, formatSql, renderSql, tokenizeSql } from '../../../src/web/sql-format.js';

/** The formatted statement as plain text, as the page shows it. */
function shown(sql: string): string {
  return formatSql(sql)
    .map((line) => '  '.repeat(line.depth) + line.tokens.map((t, i) => (i > 0 && t.spaced ? ' ' : '') + t.text).join(''))
    .join('\n');
}

describe('formatSql', () => {
  it('starts main clauses on new lines and indents subqueries', () => {
    expect(shown("select o.id, c.full_name from orders o left outer join customers c on c.id = o.customer_id where o.total > 10 group by 1 order by o.id desc limit 5")).toBe(
      ['select o.id, c.full_name', 'from orders o', 'left outer join customers c on c.id = o.customer_id', 'where o.total > 10', 'group by 1', 'order by o.id desc', 'limit 5'].join('\n'),
    );
    expect(shown('UPDATE orders SET status = $1 WHERE id IN (SELECT order_id FROM payments WHERE amount > 0) RETURNING id')).toBe(
      ['UPDATE orders', 'SET status = $1', 'WHERE id IN (', '  SELECT order_id', '  FROM payments', '  WHERE amount > 0', ')', 'RETURNING id'].join('\n'),
    );
    expect(shown('insert into t (a, b) values (1, 2)')).toBe(['insert into t (a, b)', 'values (1, 2)'].join('\n'));
    expect(shown('select 1 union all select 2')).toBe(['select 1', 'union all', 'select 2'].join('\n'));
  });

  it('leaves clause words inside function calls, and DELETE FROM, on their line', () => {
    expect(shown("select extract(year from ordered_at), substring(name from 2) from orders")).toBe(['select extract(year from ordered_at), substring(name from 2)', 'from orders'].join('\n'));
    expect(shown('delete from orders where id = 1')).toBe(['delete from orders', 'where id = 1'].join('\n'));
    expect(shown('select a is distinct from b from t')).toBe(['select a is distinct from b', 'from t'].join('\n'));
  });

  it('never splits strings, quoted identifiers, comments or dollar-quoted bodies', () => {
    const sql = `select 'it''s -- not a comment', E'a\\'b from', "Odd ""from"" name", $fn$ select from where $fn$ /* from /* nested */ where */ from t -- where\nwhere x = 1`;
    const tokens = tokenizeSql(sql).map((t) => [t.type, t.text]);
    expect(tokens).toContainEqual(['string', "'it''s -- not a comment'"]);
    expect(tokens).toContainEqual(['string', "E'a\\'b from'"]);
    expect(tokens).toContainEqual(['quoted', '"Odd ""from"" name"']);
    expect(tokens).toContainEqual(['string', '$fn$ select from where $fn$']);
    expect(tokens).toContainEqual(['comment', '/* from /* nested */ where */']);
    expect(tokens).toContainEqual(['comment', '-- where']);
    // A line comment ends its line, so what follows it is never shown commented out.
    expect(shown(sql).split('\n').at(-1)).toBe('where x = 1');
  });

  it('keeps every character but whitespace, in order, whatever the text', () => {
    const alphabet = fc.constantFrom(...` \n\t'"$-/*()[],;.:=<>+eEuU&xX0123456789abcselectfromwhere_é`.split(''));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 80 }).map((chars) => chars.join('')), (sql) => {
        const lines = formatSql(sql);
        const text = lines.flatMap((line) => line.tokens.map((t) => t.text)).join('');
        expect(text.replace(/\s/g, '')).toBe(sql.replace(/\s/g, ''));
      }),
    );
  });

  it('renders escaped markup', () => {
    const markup = String(renderSql("select '<img src=x onerror=alert(1)>' from \"<b>\" where a < b"));
    expect(markup).toContain('<span class="sql-string">&#39;&lt;img src=x onerror=alert(1)&gt;&#39;</span>');
    expect(markup).toContain('<span class="sql-identifier">&quot;&lt;b&gt;&quot;</span>');
    expect(markup).toContain('a &lt; b');
    expect(markup).not.toMatch(/<img|<b>/);
  });
});

/** Statement shapes that make a formatter's output grow faster than its input, each made `n` units long. */
const ADVERSARIAL: Readonly<Record<string, (n: number) => string>> = {
  'nested subqueries': (n) => '(select'.repeat(n),
  'nested subqueries, spaced': (n) => '( select '.repeat(n),
  'nested parentheses': (n) => '('.repeat(n),
  'nested subqueries closed': (n) => `${'(select 1 from '.repeat(n)}t${')'.repeat(n)}`,
  'many numbers': (n) => '1,'.repeat(n),
  'many quoted identifiers': (n) => '"" '.repeat(n),
  'many keywords': (n) => 'in,'.repeat(n),
  'many clauses': (n) => 'select '.repeat(n),
  'many line comments': (n) => '--\n'.repeat(n),
  'many escaped strings': (n) => "'&' ".repeat(n),
  'many dollar signs': (n) => '$a'.repeat(n),
  'long identifier': (n) => 'a'.repeat(n),
  'long quoted identifier': (n) => `"${'"'.repeat(n)}"`,
  'long unterminated comment': (n) => `/*${'/*'.repeat(n)}`,
  'long dollar tag': (n) => `$${'a'.repeat(n)}$`,
};

/** Bytes of markup per byte of statement that rendering never exceeds (a one-byte token becomes a `<span>`). */
const MARKUP_PER_BYTE = 32;
/** Escaping turns one byte into at most six (`&quot;`); the note adds a sentence. */
const UNFORMATTED_PER_BYTE = 6;
const NOTE_BYTES = 200;
const RECORD_LIMIT = 64 * 1024;

describe('renderSql on statements built to blow it up', () => {
  for (const [shape, make] of Object.entries(ADVERSARIAL)) {
    it(`renders ${shape} in markup linear in the statement's length`, () => {
      for (const n of [1, 10, 100, 1_000, 10_000, RECORD_LIMIT]) {
        const sql = make(n).slice(0, RECORD_LIMIT);
        const bytes = Buffer.byteLength(String(renderSql(sql)));
        expect(bytes, `${shape}, ${sql.length} bytes`).toBeLessThanOrEqual(MARKUP_PER_BYTE * Buffer.byteLength(sql) + NOTE_BYTES);
      }
    });
  }

  it('keeps markup linear for any text, formatted or not', () => {
    const unit = fc.constantFrom('(', ')', 'select ', '(select', '1,', '"" ', "'&'", '--\n', '/*', '*/', '$a$', '$1', ' ', '<', 'é', 'from ', 'x');
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 3_000 }).map((units) => units.join('')), (sql) => {
        expect(Buffer.byteLength(String(renderSql(sql)))).toBeLessThanOrEqual(MARKUP_PER_BYTE * Buffer.byteLength(sql) + NOTE_BYTES);
      }),
      { numRuns: 60 },
    );
  });

  it('the 63 KB nested statement of the security review renders in at most 64 KB of markup', () => {
    const sql = '(select'.repeat(9_000);
    expect(Buffer.byteLength(String(renderSql(sql)))).toBeLessThanOrEqual(sql.length + NOTE_BYTES);
  });

  it(`indents subqueries at most ${MAX_INDENT_DEPTH} levels deep, and returns to each level as they close`, () => {
    const depth = MAX_INDENT_DEPTH + 8;
    const sql = `${'select a from (\n'.repeat(depth)}select 1${') x\n'.repeat(depth)}where b`;
    const lines = formatSql(sql);
    expect(Math.max(...lines.map((line) => line.depth))).toBe(MAX_INDENT_DEPTH);
    expect(lines.filter((line) => line.depth === MAX_INDENT_DEPTH).length).toBeGreaterThan(8);
    expect(lines.at(-1)).toMatchObject({ depth: 0, tokens: [{ text: 'where' }, { text: 'b' }] });
    const markup = String(renderSql(sql));
    expect(markup).not.toContain(' '.repeat(2 * MAX_INDENT_DEPTH + 1));
  });

  it(`shows a statement over ${FORMAT_TOKEN_BUDGET} tokens as recorded, escaped, with a note`, () => {
    const sql = `select ${Array.from({ length: FORMAT_TOKEN_BUDGET }, (_, i) => `'<${i}>'`).join(', ')} from t`;
    const markup = String(renderSql(sql));
    expect(markup).toContain('<pre class="sql sql-unformatted"><code>select &#39;&lt;0&gt;&#39;, &#39;&lt;1&gt;&#39;');
    expect(markup).not.toContain('<span');
    expect(markup).toContain(`Formatting skipped: it has more than ${FORMAT_TOKEN_BUDGET.toLocaleString('en')} tokens. Shown as recorded.`);
    expect(markup).not.toMatch(/<(?!\/?(pre|code|p)\b)/);
    // At the budget it is still formatted.
    expect(String(renderSql(Array.from({ length: FORMAT_TOKEN_BUDGET }, () => '1').join(' ')))).toContain('<span class="sql-number">');
  });

  it(`shows a statement that would take over ${FORMAT_LINE_BUDGET} lines as recorded, with a note`, () => {
    const sql = 'select 1\n'.repeat(FORMAT_LINE_BUDGET + 1);
    const markup = String(renderSql(sql));
    expect(markup).toContain(`<code>${sql}</code>`);
    expect(markup).toContain(`it would take more than ${FORMAT_LINE_BUDGET} lines`);
    expect(String(renderSql('select 1\n'.repeat(FORMAT_LINE_BUDGET)))).not.toContain('Formatting skipped');
  });

  it('stops tokenizing one token past the budget it is given', () => {
    expect(tokenizeSql('a b c d e', 2).map((t) => t.text)).toEqual(['a', 'b', 'c']);
    expect(tokenizeSql('a b', 2)).toHaveLength(2);
  });
});
