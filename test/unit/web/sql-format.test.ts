import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSql, renderSql, tokenizeSql } from '../../../src/web/sql-format.js';

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
