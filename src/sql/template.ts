import type { LexedText } from './lexer.js';
import { LITERAL_READING_FUNCTIONS } from './rules.js';
import { trimTrailingSpace } from './text.js';
import { isNode, nameParts } from './tree.js';

/**
 * Where a statement sits among a text's tokens: from the start of token `first` to the start of
 * the `;` token `end`, or to the end of the text when `end` is -1, without trailing whitespace.
 * That is how PostgreSQL 18 delimits statements (from the first token, leading comments and
 * whitespace skipped; up to the `;`), so the same token indices delimit the statements of every
 * text with the same key.
 */
export interface StatementBounds {
  readonly first: number;
  readonly end: number;
}

/** The text of a statement of `sql` at `bounds`, given the token starts of `sql`. */
export function statementText(sql: string, starts: readonly number[], bounds: StatementBounds): string {
  const from = starts[bounds.first] as number;
  const to = bounds.end < 0 ? sql.length : (starts[bounds.end] as number);
  return trimTrailingSpace(sql.slice(from, to));
}

/** The UTF-8 byte offset of each token start (the parser's locations count bytes). */
export function byteStarts(sql: string, starts: readonly number[]): readonly number[] {
  if (Buffer.byteLength(sql, 'utf8') === sql.length) return starts;
  const offsets: number[] = new Array<number>(starts.length);
  let bytes = 0;
  let unit = 0;
  starts.forEach((start, index) => {
    for (; unit < start; unit++) {
      const c = sql.charCodeAt(unit);
      // A surrogate pair is four bytes: two for each half.
      if (c < 0x80) bytes += 1;
      else if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) bytes += 2;
      else bytes += 3;
    }
    offsets[index] = bytes;
  });
  return offsets;
}

/**
 * Whether every constant the lexer found is a plain value in the parse tree, whose value nothing
 * in the classification reads: each is an `A_Const` node at the constant's own location (or at
 * the `-` signs before it, where the grammar folds a negation into the constant), and no call of
 * a function whose class depends on a constant argument appears. A constant the grammar turns
 * into anything else (`COPY ... FROM 'file'`, `COMMENT ... IS '...'`, `float(5)`, a function body,
 * an `EXPLAIN` option) makes the text's classification its own.
 *
 * libpg_query's fingerprint leaves `A_Const` values out, and the rules and the tree walk read no
 * `A_Const` value except through {@link LITERAL_READING_FUNCTIONS}; so when this holds, every
 * text with the same key has the same command, class, tables, functions and fingerprint.
 */
export function constantsAreValues(lexed: LexedText, bytes: readonly number[], tree: unknown): boolean {
  const locations = new Set<number>();
  const stack: unknown[] = [tree];
  for (let value = stack.pop(); value !== undefined; value = stack.pop()) {
    if (Array.isArray(value)) {
      for (const item of value) if (typeof item === 'object' && item !== null) stack.push(item);
      continue;
    }
    if (!isNode(value)) continue;
    // A FuncCall is found by shape, as the tree walk finds it: CALL holds one unwrapped.
    if (Array.isArray(value['funcname']) && typeof value['funcformat'] === 'string') {
      const parts = nameParts(value['funcname']);
      const name = parts?.[parts.length - 1];
      if (name === undefined || LITERAL_READING_FUNCTIONS.has(name)) return false;
    }
    for (const key in value) {
      const child = value[key];
      if (typeof child !== 'object' || child === null) continue;
      // libpg_query leaves out a location of 0.
      if (key === 'A_Const' && isNode(child)) locations.add(typeof child['location'] === 'number' ? child['location'] : 0);
      stack.push(child);
    }
  }
  for (let token = 0; token < lexed.kinds.length; token++) {
    if (lexed.kinds[token] !== 'c') continue;
    let found = locations.has(bytes[token] as number);
    for (let sign = token - 1; !found && sign >= 0 && lexed.kinds[sign] === '-'; sign--) found = locations.has(bytes[sign] as number);
    if (!found) return false;
  }
  return true;
}

/**
 * The token bounds of a parsed statement at byte `location` with byte `length` (absent: to the
 * end of the text), or `null` when they do not fall on a token start and a `;` token.
 */
export function boundsOf(lexed: LexedText, bytes: readonly number[], location: number, length: number | undefined): StatementBounds | null {
  const first = indexOf(bytes, location);
  if (first < 0) return null;
  if (length === undefined) return { first, end: -1 };
  const end = indexOf(bytes, location + length);
  return end > first && lexed.kinds[end] === ';' ? { first, end } : null;
}

/** The index of `value` in the ascending `sorted`, or -1. */
function indexOf(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const found = sorted[middle] as number;
    if (found === value) return middle;
    if (found < value) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}
