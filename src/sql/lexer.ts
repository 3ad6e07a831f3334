/**
 * A lexer that turns a SQL text into a key shared by texts that differ only in the values of
 * their literals, so that one full parse can classify them all. It follows PostgreSQL's lexical
 * rules (docs §4.1 "Lexical Structure", and the server's scan.l where the docs are silent):
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 *
 * The key lists every token but whitespace and comments, separated by NUL (which no SQL text the
 * classifier accepts contains): identifiers, quoted identifiers, parameters and operators as
 * written, and each constant as a placeholder for the kind of token the server's grammar sees
 * (`ICONST`, `FCONST`, `SCONST`, `BCONST`, `XCONST`). Two texts with the same key therefore reach
 * PostgreSQL's grammar as the same token sequence, up to constant values.
 *
 * Wherever that could fail, the lexer answers `null` ("no key") and the text is parsed in full:
 * the places where the server's lexer decides by a constant's value (escapes in `E''` and `U&''`
 * strings, `UESCAPE`), where whitespace between two tokens matters (string continuation across a
 * newline, `..`, `:=`, an operator that runs into a comment), where the lexer would error
 * (trailing junk after a number, unterminated strings and comments), and any character it does
 * not know. The classifier adds the checks on the parse tree that only it can make.
 */

/** Placeholders of constants; no verbatim token starts with a quote. */
const PLACEHOLDER = { iconst: "'i", fconst: "'f", sconst: "'s", bconst: "'b", xconst: "'x" } as const;

/** What the classifier needs from a lexed text. */
export interface LexedText {
  readonly key: string;
  /** The UTF-16 offset where each token (in key order) starts. */
  readonly starts: readonly number[];
  /** Per token: `c` constant, `-` a lone minus operator, `;` a semicolon, `o` anything else. */
  readonly kinds: string;
}

const INT32_MAX_TEXT = '2147483647';

// Character classes of scan.l, on UTF-16 code units: every non-ASCII unit is an identifier
// character there (its bytes are all >= 0x80).
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}
function isIdentStart(c: number): boolean {
  return isLetter(c) || c === 0x5f || c >= 0x80;
}
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 0x24;
}
/** `op_chars`: ~ ! @ # ^ & | ` ? + - * / % < > = */
function isOpChar(c: number): boolean {
  switch (c) {
    case 0x7e: case 0x21: case 0x40: case 0x23: case 0x5e: case 0x26: case 0x7c: case 0x60:
    case 0x3f: case 0x2b: case 0x2d: case 0x2a: case 0x2f: case 0x25: case 0x3c: case 0x3e: case 0x3d:
      return true;
    default:
      return false;
  }
}
function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Digits of `base` with single underscores between them (`decinteger`, `hexinteger`, ...), from `at`; the end, or -1 if none. */
function scanDigits(text: string, at: number, base: 2 | 8 | 10 | 16): number {
  let i = at;
  if (!isDigitOf(text.charCodeAt(i), base)) return -1;
  i++;
  for (;;) {
    const c = text.charCodeAt(i);
    if (isDigitOf(c, base)) i++;
    else if (c === 0x5f && isDigitOf(text.charCodeAt(i + 1), base)) i += 2;
    else return i;
  }
}

function isDigitOf(c: number, base: 2 | 8 | 10 | 16): boolean {
  return base === 16 ? isHexDigit(c) : c >= 0x30 && c < 0x30 + base;
}

/** The lexer's output as it grows. */
class Tokens {
  key = '';
  kinds = '';
  readonly starts: number[] = [];

  add(start: number, part: string, kind: string): void {
    this.starts.push(start);
    this.kinds += kind;
    this.key += part;
    this.key += '\0';
  }
}

/** Whether an integer literal's digits (no prefix) fit in int32, which makes it `ICONST` rather than `FCONST`. */
function fitsInt32(digits: string, base: 2 | 8 | 10 | 16): boolean {
  let value = 0;
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i);
    if (c === 0x5f) continue;
    value = value * base + (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
    if (value > 2147483647) return false;
  }
  return true;
}

/**
 * The key of `text`, the start of each token and its kind; `null` when the text has anything
 * whose meaning could depend on a constant's value or on what the key leaves out.
 */
export function lexSql(text: string): LexedText | null {
  const length = text.length;
  const tokens = new Tokens();
  /** The previous token was a quoted string constant, which a following one might continue. */
  let afterString = false;
  let i = 0;

  while (i < length) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const next = text.charCodeAt(i + 1);
    // Comments: `--` to the end of the line, `/* */` nesting (§4.1.5).
    if (c === 0x2d && next === 0x2d) {
      i += 2;
      while (i < length && text.charCodeAt(i) !== 0x0a && text.charCodeAt(i) !== 0x0d) {
        if (!checkUnit(text, i)) return null;
        i++;
      }
      continue;
    }
    if (c === 0x2f && next === 0x2a) {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= length) return null;
        const d = text.charCodeAt(i);
        const e = text.charCodeAt(i + 1);
        if (d === 0x2f && e === 0x2a) {
          depth++;
          i += 2;
        } else if (d === 0x2a && e === 0x2f) {
          depth--;
          i += 2;
        } else {
          if (!checkUnit(text, i)) return null;
          i++;
        }
      }
      continue;
    }

    const start = i;
    // A constant: strings of every form, bit strings, numbers.
    let constant: string | null = null;
    let isString = false;
    if (c === 0x27) {
      i = endOfQuoted(text, i + 1, false);
      constant = PLACEHOLDER.sconst;
      isString = true;
    } else if ((c === 0x65 || c === 0x45) && next === 0x27) {
      // E'...': backslash escapes (§4.1.2.2). Octal, hex and Unicode escapes can make bytes
      // the server rejects, so a text with them gets no key; the others stand for a character.
      i = endOfQuoted(text, i + 2, true);
      constant = PLACEHOLDER.sconst;
      isString = true;
    } else if ((c === 0x62 || c === 0x42 || c === 0x78 || c === 0x58) && next === 0x27) {
      // B'...' and X'...' (§4.1.2.5): the lexer takes any characters; the digits are checked later, by value.
      const close = text.indexOf("'", i + 2);
      if (close < 0) return null;
      for (let k = i + 2; k < close; k++) if (!checkUnit(text, k)) return null;
      i = close + 1;
      constant = c === 0x62 || c === 0x42 ? PLACEHOLDER.bconst : PLACEHOLDER.xconst;
      isString = true;
    } else if ((c === 0x75 || c === 0x55) && next === 0x26 && text.charCodeAt(i + 2) === 0x27) {
      // U&'...' (§4.1.2.3): its escapes are checked by value, so only a string without any is shared.
      i = endOfQuoted(text, i + 3, false);
      if (i > 0 && text.slice(start + 3, i - 1).includes('\\')) return null;
      constant = PLACEHOLDER.sconst;
      isString = true;
    } else if ((c === 0x6e || c === 0x4e) && next === 0x27) {
      // N'...' becomes the type name `nchar` and a string: rare enough to parse in full.
      return null;
    } else if (c === 0x24 && next !== 0x24 && !isIdentStart(next)) {
      // $n, a positional parameter (§4.1.4); kept as written.
      const end = scanDigits(text, i + 1, 10);
      if (end < 0 || isIdentCont(text.charCodeAt(end)) || text.charCodeAt(end) === 0x2e) return null;
      tokens.add(start, text.slice(start, end), 'o');
      i = end;
      afterString = false;
      continue;
    } else if (c === 0x24) {
      // $tag$...$tag$ (§4.1.2.4).
      let tagEnd = i + 1;
      while (tagEnd < length && isIdentCont(text.charCodeAt(tagEnd)) && text.charCodeAt(tagEnd) !== 0x24) tagEnd++;
      if (text.charCodeAt(tagEnd) !== 0x24) return null;
      const delimiter = text.slice(i, tagEnd + 1);
      const close = text.indexOf(delimiter, tagEnd + 1);
      if (close < 0) return null;
      for (let k = tagEnd + 1; k < close; k++) if (!checkUnit(text, k)) return null;
      i = close + delimiter.length;
      constant = PLACEHOLDER.sconst;
      isString = true;
    } else if (isDigit(c) || (c === 0x2e && isDigit(next))) {
      const end = endOfNumber(text, i);
      if (end === null) return null;
      i = end.end;
      constant = end.kind;
    }
    if (constant !== null) {
      if (i < 0) return null;
      // Quoted strings separated only by whitespace with a newline are one constant; without
      // the newline, a syntax error. Either way the key could not tell, so no key.
      if (isString && afterString) return null;
      afterString = isString;
      tokens.add(start, constant, 'c');
      continue;
    }
    afterString = false;

    if (isIdentStart(c)) {
      if ((c === 0x75 || c === 0x55) && next === 0x26 && text.charCodeAt(i + 2) === 0x22) {
        // U&"..." (§4.1.1): kept as written, escapes and all.
        i = endOfQuotedIdentifier(text, i + 3);
        if (i < 0) return null;
        tokens.add(start, text.slice(start, i), 'o');
        continue;
      }
      i++;
      while (i < length && isIdentCont(text.charCodeAt(i))) {
        if (!checkUnit(text, i)) return null;
        i++;
      }
      if (!checkUnit(text, start)) return null;
      const word = text.slice(start, i);
      // UESCAPE names the escape character of the U& token before it with a string constant.
      if (word.length === 7 && word.toLowerCase() === 'uescape') return null;
      tokens.add(start, word, 'o');
      continue;
    }
    if (c === 0x22) {
      i = endOfQuotedIdentifier(text, i + 1);
      if (i < 0) return null;
      tokens.add(start, text.slice(start, i), 'o');
      continue;
    }
    if (isOpChar(c)) {
      // An operator is the longest run of operator characters; where the server splits it
      // depends on those characters alone, unless a comment starts inside the run.
      i++;
      while (i < length && isOpChar(text.charCodeAt(i))) i++;
      const operator = text.slice(start, i);
      if (operator.includes('--') || operator.includes('/*')) return null;
      tokens.add(start, operator, operator === '-' ? '-' : 'o');
      continue;
    }
    switch (c) {
      case 0x3a: // `::` a cast; `:=` is a token only when the two are adjacent
        if (next === 0x3d) return null;
        i += next === 0x3a ? 2 : 1;
        tokens.add(start, text.slice(start, i), 'o');
        continue;
      case 0x2e: // `..` is a token only when adjacent
        if (next === 0x2e) return null;
        i++;
        tokens.add(start, '.', 'o');
        continue;
      case 0x3b:
        i++;
        tokens.add(start, ';', ';');
        continue;
      case 0x2c:
      case 0x28:
      case 0x29:
      case 0x5b:
      case 0x5d:
        i++;
        tokens.add(start, text[start] as string, 'o');
        continue;
      default:
        return null;
    }
  }
  return { key: tokens.key, starts: tokens.starts, kinds: tokens.kinds };
}

/**
 * The end (after the closing quote) of a string constant whose body starts at `at`, with `''`
 * for a quote inside; -1 when unterminated or, in an escape string, when an escape could make
 * bytes the server refuses.
 */
function endOfQuoted(text: string, at: number, escapes: boolean): number {
  let i = at;
  for (;;) {
    if (i >= text.length) return -1;
    const c = text.charCodeAt(i);
    if (c === 0x27) {
      if (text.charCodeAt(i + 1) !== 0x27) return i + 1;
      i += 2;
    } else if (escapes && c === 0x5c) {
      const e = text.charCodeAt(i + 1);
      if ((e >= 0x30 && e <= 0x37) || e === 0x78 || e === 0x75 || e === 0x55 || Number.isNaN(e)) return -1;
      if (!checkUnit(text, i + 1)) return -1;
      i += 2;
    } else {
      if (!checkUnit(text, i)) return -1;
      i++;
    }
  }
}

/** The end of a double-quoted identifier whose body starts at `at` (`""` for a quote inside), or -1. */
function endOfQuotedIdentifier(text: string, at: number): number {
  let i = at;
  for (;;) {
    if (i >= text.length) return -1;
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      if (text.charCodeAt(i + 1) !== 0x22) return i + 1;
      i += 2;
    } else {
      if (!checkUnit(text, i)) return -1;
      i++;
    }
  }
}

/**
 * A numeric constant from `at` (§4.1.2.6): its end and token kind, or `null` when the server's
 * lexer would see trailing junk (`123abc`, `0x`, `1..2`) or the kind is unclear.
 */
function endOfNumber(text: string, at: number): { end: number; kind: string } | null {
  const c = text.charCodeAt(at);
  const prefix = text.charCodeAt(at + 1) | 0x20;
  if (c === 0x30 && (prefix === 0x78 || prefix === 0x6f || prefix === 0x62)) {
    const base = prefix === 0x78 ? 16 : prefix === 0x6f ? 8 : 2;
    // `0x_1F` is allowed: an underscore may follow the prefix.
    const from = text.charCodeAt(at + 2) === 0x5f ? at + 3 : at + 2;
    const end = scanDigits(text, from, base);
    if (end < 0 || junkAfterNumber(text, end)) return null;
    return { end, kind: fitsInt32(text.slice(from, end), base) ? PLACEHOLDER.iconst : PLACEHOLDER.fconst };
  }
  let i = at;
  let integer = true;
  if (c !== 0x2e) {
    i = scanDigits(text, at, 10);
    if (i < 0) return null;
  }
  if (text.charCodeAt(i) === 0x2e) {
    if (text.charCodeAt(i + 1) === 0x2e) return null;
    integer = false;
    i++;
    if (isDigit(text.charCodeAt(i))) i = scanDigits(text, i, 10);
    if (i < 0) return null;
  }
  const e = text.charCodeAt(i) | 0x20;
  if (e === 0x65) {
    const sign = text.charCodeAt(i + 1);
    const digitsAt = sign === 0x2b || sign === 0x2d ? i + 2 : i + 1;
    const end = scanDigits(text, digitsAt, 10);
    // `1e`, `1e+` are errors or junk in the server's lexer.
    if (end < 0) return null;
    integer = false;
    i = end;
  }
  if (junkAfterNumber(text, i)) return null;
  if (!integer) return { end: i, kind: PLACEHOLDER.fconst };
  return { end: i, kind: decimalFitsInt32(text.slice(at, i)) ? PLACEHOLDER.iconst : PLACEHOLDER.fconst };
}

function decimalFitsInt32(digits: string): boolean {
  const plain = digits.replaceAll('_', '').replace(/^0+(?=\d)/, '');
  if (plain.length !== INT32_MAX_TEXT.length) return plain.length < INT32_MAX_TEXT.length;
  return plain <= INT32_MAX_TEXT;
}

/** A number directly followed by an identifier character, `$` or `.` is junk or ambiguous. */
function junkAfterNumber(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  return isIdentCont(c) || c === 0x2e;
}

/**
 * Whether the code unit at `at` may be part of a text the classifier accepts: no NUL, no lone
 * surrogate (they have no UTF-8 form). Checked where units are skipped over, so a text that
 * gets a key is one the parser would receive unchanged.
 */
function checkUnit(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  if (c === 0) return false;
  if (c < 0xd800 || c > 0xdfff) return true;
  if (c <= 0xdbff) {
    const low = text.charCodeAt(at + 1);
    return low >= 0xdc00 && low <= 0xdfff;
  }
  const high = text.charCodeAt(at - 1);
  return high >= 0xd800 && high <= 0xdbff;
}
