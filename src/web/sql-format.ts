import { html, joinHtml, type SafeHtml } from './html.js';

/**
 * A small SQL formatter for reading statements in the review pages: main clauses start new
 * lines, subqueries are indented, everything else is left as written. It only re-spaces the
 * text between tokens; tokens themselves (strings, comments, quoted identifiers) are kept byte
 * for byte, and the record's raw JSON remains the evidence. The lexer follows PostgreSQL's
 * lexical structure (https://www.postgresql.org/docs/current/sql-syntax-lexical.html) closely
 * enough to never split a string, a comment or a dollar-quoted body; text it does not know
 * (a truncated statement, another dialect) passes through as it is.
 *
 * Any database user can put a statement of up to the record size limit in the log, and every
 * review page and live view renders it, so the markup must stay linear in the statement's length
 * whatever it holds: subqueries nested deeper than {@link MAX_INDENT_DEPTH} are drawn at that
 * depth, and a statement over {@link FORMAT_TOKEN_BUDGET} tokens or {@link FORMAT_LINE_BUDGET}
 * lines is shown as recorded, escaped and wrapped, with a note that formatting was skipped.
 */

/** Subqueries deeper than this are indented as this deep. */
export const MAX_INDENT_DEPTH = 12;
/** A statement with more tokens than this is shown unformatted. */
export const FORMAT_TOKEN_BUDGET = 4_000;
/** A statement that would format to more lines than this is shown unformatted. */
export const FORMAT_LINE_BUDGET = 500;

export type SqlTokenType = 'keyword' | 'identifier' | 'quoted' | 'string' | 'number' | 'comment' | 'parameter' | 'punctuation' | 'operator';

export interface SqlToken {
  readonly type: SqlTokenType;
  readonly text: string;
  /** Whitespace came before it in the original text. */
  readonly spaced: boolean;
}

export interface SqlLine {
  readonly depth: number;
  readonly tokens: readonly SqlToken[];
}

/** Words shown as keywords (PostgreSQL's reserved and common non-reserved words). */
const KEYWORDS = new Set(
  (
    'all alter analyze and any array as asc begin between by case cast check collate column commit constraint copy create cross current_date ' +
    'current_time current_timestamp current_user default delete desc distinct do drop else end except exists explain false fetch filter first ' +
    'for foreign from full function grant group having if ilike in index inner insert intersect into is join key last lateral left like limit ' +
    'listen lock materialized natural not notify nothing null nulls of offset on only or order outer over partition primary privileges ' +
    'procedure recursive references release replace returning revoke right rollback row rows savepoint schema select sequence session_user ' +
    'set show similar some table tablesample then to transaction trigger true truncate union unique unlisten update user using vacuum values ' +
    'view when where window with within'
  ).split(' '),
);

/** Keywords that start a clause on a new line. */
const CLAUSE_STARTS = new Set([
  'select', 'from', 'where', 'group', 'order', 'having', 'limit', 'offset', 'fetch', 'window', 'union', 'intersect', 'except',
  'insert', 'values', 'update', 'set', 'delete', 'returning', 'join',
]);
/** Words that start a join, and the words that may follow them before JOIN. */
const JOIN_PREFIXES = new Set(['left', 'right', 'full', 'inner', 'cross', 'natural']);
const JOIN_CONTINUATIONS = new Set(['left', 'right', 'full', 'inner', 'cross', 'natural', 'outer', 'join']);

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;

/**
 * Splits SQL text into tokens; never fails, never drops a character other than whitespace. With
 * `maxTokens`, it stops after one token more than that, so a caller can tell the text is longer.
 */
export function tokenizeSql(text: string, maxTokens = Number.POSITIVE_INFINITY): SqlToken[] {
  const tokens: SqlToken[] = [];
  let i = 0;
  let spaced = false;
  const push = (type: SqlTokenType, end: number): void => {
    tokens.push({ type, text: text.slice(i, end), spaced });
    spaced = false;
    i = end;
  };
  while (i < text.length && tokens.length <= maxTokens) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (/\s/.test(ch)) {
      spaced = true;
      i += 1;
    } else if (ch === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      push('comment', end < 0 ? text.length : end);
    } else if (ch === '/' && next === '*') {
      push('comment', blockCommentEnd(text, i));
    } else if (ch === "'") {
      push('string', quotedEnd(text, i, "'", false));
    } else if ((ch === 'E' || ch === 'e') && next === "'") {
      push('string', quotedEnd(text, i + 1, "'", true));
    } else if (/[BbXxNn]/.test(ch) && next === "'") {
      push('string', quotedEnd(text, i + 1, "'", false));
    } else if ((ch === 'U' || ch === 'u') && next === '&' && (text[i + 2] === "'" || text[i + 2] === '"')) {
      push(text[i + 2] === "'" ? 'string' : 'quoted', quotedEnd(text, i + 2, text[i + 2]!, false));
    } else if (ch === '"') {
      push('quoted', quotedEnd(text, i, '"', false));
    } else if (ch === '$') {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 256));
      if (tag !== null) {
        const close = text.indexOf(tag[0], i + tag[0].length);
        push('string', close < 0 ? text.length : close + tag[0].length);
      } else if (next !== undefined && /[0-9]/.test(next)) {
        let end = i + 1;
        while (end < text.length && /[0-9]/.test(text[end]!)) end += 1;
        push('parameter', end);
      } else {
        push('operator', i + 1);
      }
    } else if (/[0-9]/.test(ch) || (ch === '.' && next !== undefined && /[0-9]/.test(next))) {
      const number = /^(?:0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+|(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][+-]?[0-9]+)?)/.exec(text.slice(i, i + 128));
      push('number', i + Math.max(1, number?.[0].length ?? 1));
    } else if (IDENT_START.test(ch)) {
      let end = i + 1;
      while (end < text.length && IDENT_PART.test(text[end]!)) end += 1;
      push(KEYWORDS.has(text.slice(i, end).toLowerCase()) ? 'keyword' : 'identifier', end);
    } else if ('(),;[]'.includes(ch) || (ch === '.' && next !== '.')) {
      push('punctuation', i + 1);
    } else if (ch === ':' && next === ':') {
      push('operator', i + 2);
    } else {
      let end = i + 1;
      while (end < text.length && '+-*/<>=~!@#%^&|`?'.includes(text[end]!) && !(text[end] === '-' && text[end + 1] === '-') && !(text[end] === '/' && text[end + 1] === '*')) end += 1;
      push('operator', end);
    }
  }
  return tokens;
}

/** End of a `/* … *\/` comment starting at `start`; PostgreSQL's block comments nest. */
function blockCommentEnd(text: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < text.length) {
    if (text[i] === '/' && text[i + 1] === '*') {
      depth += 1;
      i += 2;
    } else if (text[i] === '*' && text[i + 1] === '/') {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  return text.length;
}

/** End of a quoted token opening at `start` (doubled quotes escape; backslashes too when `backslash`). */
function quotedEnd(text: string, start: number, quote: string, backslash: boolean): number {
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i]!;
    if (backslash && ch === '\\') {
      i += 2;
    } else if (ch === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i += 1;
    }
  }
  return text.length;
}

function word(token: SqlToken | undefined): string {
  return token?.type === 'keyword' ? token.text.toLowerCase() : '';
}

/**
 * The statement as lines: main clauses at the start of a line, subqueries one level deeper (up
 * to {@link MAX_INDENT_DEPTH}).
 */
export function formatSql(text: string): SqlLine[] {
  return layoutSql(tokenizeSql(text));
}

function layoutSql(tokens: readonly SqlToken[]): SqlLine[] {
  const lines: SqlLine[] = [];
  let current: SqlToken[] = [];
  // The true nesting, so that each closing parenthesis returns to its level; lines show it capped.
  let depth = 0;
  // One entry per open parenthesis: whether it holds a query (its clauses get lines of their own).
  const parens: boolean[] = [];
  const breakLine = (nextDepth: number): void => {
    if (current.length > 0) lines.push({ depth: Math.min(depth, MAX_INDENT_DEPTH), tokens: current });
    current = [];
    depth = nextDepth;
  };
  const inQuery = (): boolean => parens.length === 0 || parens.at(-1) === true;

  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]!;
    const kw = word(token);
    const previous = word(tokens[t - 1]);
    if (token.type === 'punctuation' && token.text === '(') {
      const opensQuery = word(tokens[t + 1]) === 'select' || word(tokens[t + 1]) === 'with' || word(tokens[t + 1]) === 'values';
      current.push(token);
      parens.push(opensQuery);
      if (opensQuery) breakLine(depth + 1);
      continue;
    }
    if (token.type === 'punctuation' && token.text === ')') {
      const closesQuery = parens.pop() === true;
      if (closesQuery) breakLine(Math.max(0, depth - 1));
      current.push(token);
      continue;
    }
    const startsClause =
      inQuery() &&
      current.length > 0 &&
      ((CLAUSE_STARTS.has(kw) &&
        !(kw === 'join' && JOIN_PREFIXES.has(previous)) &&
        !(kw === 'join' && previous === 'outer') &&
        !(kw === 'from' && (previous === 'delete' || previous === 'distinct'))) ||
        (JOIN_PREFIXES.has(kw) && JOIN_CONTINUATIONS.has(word(tokens[t + 1])) && !JOIN_PREFIXES.has(previous)));
    if (startsClause) breakLine(depth);
    current.push(token);
    if (token.type === 'comment' && token.text.startsWith('--')) breakLine(depth);
    else if (token.type === 'punctuation' && token.text === ';') breakLine(0);
  }
  breakLine(0);
  return lines;
}

/** CSS class of each token type that is styled; the rest is plain text. */
const TOKEN_CLASSES: Partial<Record<SqlTokenType, string>> = {
  keyword: 'sql-keyword',
  string: 'sql-string',
  number: 'sql-number',
  parameter: 'sql-number',
  comment: 'sql-comment',
  quoted: 'sql-identifier',
};

/**
 * The statement formatted as markup: `<pre class="sql">` with every token escaped. Over the
 * token or line budget it is the recorded text, escaped, followed by a note saying so.
 */
export function renderSql(text: string): SafeHtml {
  const tokens = tokenizeSql(text, FORMAT_TOKEN_BUDGET);
  if (tokens.length > FORMAT_TOKEN_BUDGET) return renderUnformatted(text, `it has more than ${FORMAT_TOKEN_BUDGET.toLocaleString('en')} tokens`);
  const formatted = layoutSql(tokens);
  if (formatted.length > FORMAT_LINE_BUDGET) return renderUnformatted(text, `it would take more than ${FORMAT_LINE_BUDGET.toLocaleString('en')} lines`);
  const lines = formatted.map((line) => {
    const parts = line.tokens.map((token, i) => {
      const space = i > 0 && token.spaced ? ' ' : '';
      const cls = TOKEN_CLASSES[token.type];
      return cls === undefined ? html`${space}${token.text}` : html`${space}<span class="${cls}">${token.text}</span>`;
    });
    return html`${'  '.repeat(line.depth)}${parts}`;
  });
  return html`<pre class="sql"><code>${joinHtml(lines, html`\n`)}</code></pre>`;
}

/** The recorded text as it is, escaped; the page's style wraps it anywhere, even inside a word. */
function renderUnformatted(text: string, why: string): SafeHtml {
  return html`<pre class="sql sql-unformatted"><code>${text}</code></pre><p class="sql-note">Formatting skipped: ${why}. Shown as recorded.</p>`;
}
