import { normalizePathEncoding } from '../../policy/index.js';

/**
 * Why a request target was refused. Stable strings: they appear in the 400 response and the
 * operational log. Each names a spelling that two HTTP implementations may read as two
 * different paths, so the gateway cannot promise that the path it decides on is the path the
 * upstream serves.
 */
export type TargetProblem =
  /** Not `origin-form` (RFC 9112 §3.2.1): absolute-form, authority-form or `*`. */
  | 'not-origin-form'
  /** A `#`: fragments are never sent (RFC 9110 §7.1); one in a request is a client bug or a probe. */
  | 'fragment'
  /** `%` not followed by two hex digits. */
  | 'malformed-escape'
  /** A byte outside visible ASCII, sent raw instead of percent-encoded. */
  | 'invalid-character'
  /** `\` raw or as `%5C`: Windows servers and some frameworks read it as `/`. */
  | 'backslash'
  /** `%2F`: some upstreams decode it to `/` before routing, others keep it as data. */
  | 'encoded-slash'
  /** `%00`–`%1F`, `%7F`: truncation and log-injection tricks. */
  | 'control-character'
  /** `%25` followed by two hex digits: an upstream that decodes twice sees another path. */
  | 'double-encoding'
  /** `;` raw or as `%3B`: servlet containers cut `;params` out of segments (`/..;/admin`). */
  | 'path-parameter'
  /** `..` segments that climb above the root. */
  | 'above-root'
  /**
   * Escapes that do not decode to well-formed UTF-8 (RFC 3629 §4): overlong forms such as
   * `%C0%AE` (`.`) and `%C0%AF` (`/`), stray or missing continuation bytes, surrogates. Lenient
   * decoders read `%C0%AE%C0%AE` as `..`.
   */
  | 'invalid-utf8'
  /**
   * A segment ending in `.` or in an escaped space (`/app/secret.`, `/app/admin%20/x`): Windows
   * and IIS drop trailing dots and spaces from names, so the upstream may serve `/app/secret`.
   */
  | 'ambiguous-segment';

export type NormalizedTarget =
  | {
      readonly ok: true;
      /** The normalised path: what policy decides on and what the upstream receives. */
      readonly path: string;
      /** The query with its `?`, exactly as received, or `''`. */
      readonly query: string;
    }
  | { readonly ok: false; readonly problem: TargetProblem };

/** Paths made only of these, and without {@link NOT_YET_NORMAL}, are already normal and unambiguous. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]*$/;
/** What a path of plain characters may still need work for: `//`, or a segment starting or ending with `.`. */
const NOT_YET_NORMAL = /\/[/.]|\.(?:\/|$)/;
const VISIBLE_ASCII = /^[\x21-\x7E]*$/;
/** Escapes that survive {@link normalizePathEncoding} and are refused (its output is upper-case). */
const REFUSED_ESCAPE = /%(?:2F|5C|3B|[01][0-9A-F]|7F|25[0-9A-Fa-f]{2})/;
/**
 * A segment of a normalised path that ends in `.` or `%20`. Dot segments are gone by then, so this
 * is a name with a trailing dot (`...` included). A trailing `%09` never gets here: it is a
 * control character, refused before.
 */
const AMBIGUOUS_SEGMENT = /(?:\.|%20)(?:\/|$)/;

/**
 * Normalises the request target of an HTTP request so that the path the gateway matches
 * resources against, decides on and audits is byte for byte the path the upstream receives:
 *
 * 1. Only `origin-form` targets (`/path?query`, RFC 9112 §3.2.1) are accepted.
 * 2. Percent-encoding is normalised (RFC 3986 §6.2.2.1–2, via the policy room's
 *    `normalizePathEncoding`): escapes of unreserved characters are decoded (`%2e` → `.`,
 *    `%41` → `A`), the others upper-cased.
 * 3. Spellings that implementations disagree on are refused (see {@link TargetProblem}):
 *    backslashes, `%2F`, `;` parameters, controls, double encoding, escapes that are not UTF-8.
 * 4. Empty segments are merged (`//` → `/`), then dot segments removed (RFC 3986 §5.2.4);
 *    `..` above the root is refused rather than clamped.
 * 5. A segment that still ends in `.` or `%20` is refused (`ambiguous-segment`).
 *
 * Letter case of the path is kept: paths are case-sensitive (RFC 3986 §6.2.2.1), and the
 * upstream receives the same case that was decided on. The query is passed on untouched; it is
 * never part of a decision.
 */
export function normalizeRequestTarget(target: string): NormalizedTarget {
  if (target.charCodeAt(0) !== 0x2f) return { ok: false, problem: 'not-origin-form' };
  const mark = target.indexOf('?');
  const rawPath = mark < 0 ? target : target.slice(0, mark);
  const query = mark < 0 ? '' : target.slice(mark);
  if (target.includes('#')) return { ok: false, problem: 'fragment' };
  // The fast path, taken by nearly every request: two regex tests, no allocation beyond the path
  // and query strings themselves.
  if (PLAIN_PATH.test(rawPath) && !NOT_YET_NORMAL.test(rawPath)) {
    return { ok: true, path: rawPath, query };
  }
  if (!VISIBLE_ASCII.test(target)) return { ok: false, problem: 'invalid-character' };
  if (rawPath.includes('\\')) return { ok: false, problem: 'backslash' };
  if (rawPath.includes(';')) return { ok: false, problem: 'path-parameter' };
  const encoded = normalizePathEncoding(rawPath);
  if (encoded === null) return { ok: false, problem: 'malformed-escape' };
  const refused = REFUSED_ESCAPE.exec(encoded);
  if (refused !== null) return { ok: false, problem: escapeProblem(refused[0]) };
  if (!escapesAreUtf8(encoded)) return { ok: false, problem: 'invalid-utf8' };
  const path = removeDotSegments(encoded);
  if (path === null) return { ok: false, problem: 'above-root' };
  if (AMBIGUOUS_SEGMENT.test(path)) return { ok: false, problem: 'ambiguous-segment' };
  return { ok: true, path, query };
}

/** The value of an upper-case hex digit (the only kind a normalised path holds). */
function hexDigit(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x37;
}

/**
 * Whether the escapes of a normalised path stand for well-formed UTF-8 (RFC 3629 §4, the table of
 * well-formed byte sequences): every lead byte is followed by exactly the continuation bytes it
 * announces, with the narrower second-byte ranges that rule out overlong forms (`E0`, `F0`),
 * surrogates (`ED`) and code points above U+10FFFF (`F4`); `C0`, `C1` and `F5`–`FF` never occur.
 * Raw characters in a normalised path are ASCII, so they only have to fall between sequences.
 */
function escapesAreUtf8(path: string): boolean {
  let i = path.indexOf('%');
  if (i < 0) return true;
  let pending = 0;
  let low = 0x80;
  let high = 0xbf;
  while (i < path.length) {
    if (path.charCodeAt(i) !== 0x25) {
      if (pending > 0) return false;
      i += 1;
      continue;
    }
    const byte = hexDigit(path.charCodeAt(i + 1)) * 16 + hexDigit(path.charCodeAt(i + 2));
    i += 3;
    if (pending > 0) {
      if (byte < low || byte > high) return false;
      pending -= 1;
      low = 0x80;
      high = 0xbf;
    } else if (byte < 0x80) {
      continue;
    } else if (byte >= 0xc2 && byte <= 0xdf) {
      pending = 1;
    } else if (byte >= 0xe0 && byte <= 0xef) {
      pending = 2;
      if (byte === 0xe0) low = 0xa0;
      else if (byte === 0xed) high = 0x9f;
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      pending = 3;
      if (byte === 0xf0) low = 0x90;
      else if (byte === 0xf4) high = 0x8f;
    } else {
      return false;
    }
  }
  return pending === 0;
}

function escapeProblem(escape: string): TargetProblem {
  switch (escape) {
    case '%2F':
      return 'encoded-slash';
    case '%5C':
      return 'backslash';
    case '%3B':
      return 'path-parameter';
    default:
      return escape.startsWith('%25') ? 'double-encoding' : 'control-character';
  }
}

/**
 * RFC 3986 §5.2.4 on a path that starts with `/`, after merging empty segments. A trailing `.` or
 * `..` leaves a trailing `/` (`/a/b/..` → `/a/`). Returns `null` when `..` would climb above `/`.
 */
function removeDotSegments(path: string): string | null {
  const segments = path.split('/');
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    const last = i === segments.length - 1;
    if (segment === '..') {
      if (out.length === 0) return null;
      out.pop();
      trailingSlash = last;
    } else if (segment === '.' || segment === '') {
      trailingSlash = last;
    } else {
      out.push(segment);
      trailingSlash = false;
    }
  }
  const joined = `/${out.join('/')}`;
  return trailingSlash && out.length > 0 ? `${joined}/` : joined;
}
