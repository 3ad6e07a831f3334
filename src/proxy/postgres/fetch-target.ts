/** PostgreSQL's NAMEDATALEN - 1: identifiers longer than this many bytes are truncated. */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * The cursor (portal) name a `FETCH` or `MOVE` statement reads from, as PostgreSQL resolves it,
 * or `null` when the text is not one the gateway can read with certainty.
 *
 * The grammar (PostgreSQL docs, SQL commands "FETCH" and "MOVE") always ends the statement with
 * the cursor name, after an optional direction, count and `FROM`/`IN`; so the name is the last
 * token. Tokens are read forward (§4.1 "Lexical Structure": whitespace, `--` and nested `/* *\/`
 * comments, identifiers, signed integers, double-quoted identifiers) so that a comment can never
 * be mistaken for the name; anything else yields `null` and the caller fails closed.
 */
export function fetchCursorName(text: string): string | null {
  let at = 0;
  let first: string | null = null;
  let last: string | null = null;
  const length = text.length;
  while (at < length) {
    const c = text.charCodeAt(at);
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) {
      at += 1;
    } else if (c === 0x2d && text.charCodeAt(at + 1) === 0x2d) {
      const end = text.indexOf('\n', at);
      at = end < 0 ? length : end + 1;
    } else if (c === 0x2f && text.charCodeAt(at + 1) === 0x2a) {
      let depth = 1;
      at += 2;
      while (depth > 0) {
        if (at >= length) return null;
        if (text.startsWith('/*', at)) {
          depth += 1;
          at += 2;
        } else if (text.startsWith('*/', at)) {
          depth -= 1;
          at += 2;
        } else {
          at += 1;
        }
      }
    } else if (c === 0x22) {
      let name = '';
      at += 1;
      for (;;) {
        const close = text.indexOf('"', at);
        if (close < 0) return null;
        name += text.slice(at, close);
        at = close + 1;
        if (text.charCodeAt(at) !== 0x22) break;
        name += '"';
        at += 1;
      }
      if (name === '') return null;
      last = truncateIdentifier(name);
    } else if (isIdentStart(c)) {
      const start = at;
      at += 1;
      while (at < length && isIdentPart(text.charCodeAt(at))) at += 1;
      // A Unicode-escaped identifier (U&"...") is left to the server: not read here.
      if (text.charCodeAt(at) === 0x26 || text.charCodeAt(at) === 0x27 || text.charCodeAt(at) === 0x22) return null;
      // Unquoted identifiers fold to lower case; in a UTF8 database only ASCII letters fold.
      const word = text.slice(start, at).replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
      first ??= word;
      last = truncateIdentifier(word);
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d) {
      at += 1;
      while (at < length && text.charCodeAt(at) >= 0x30 && text.charCodeAt(at) <= 0x39) at += 1;
      last = null;
    } else if (c === 0x3b) {
      at += 1;
    } else {
      return null;
    }
  }
  if (first !== 'fetch' && first !== 'move') return null;
  return last;
}

function isIdentStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x24;
}

/** Cuts a name to 63 bytes of UTF-8 on a character boundary, as the server does (portal names at Bind, Close, Execute and FETCH alike). */
export function truncateIdentifier(name: string): string {
  if (Buffer.byteLength(name) <= MAX_IDENTIFIER_BYTES) return name;
  let out = '';
  let bytes = 0;
  for (const ch of name) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > MAX_IDENTIFIER_BYTES) break;
    out += ch;
    bytes += size;
  }
  return out;
}
