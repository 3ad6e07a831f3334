/**
 * Path globs of HTTP rules, matched against request paths that the HTTP proxy has already
 * normalised. Globs go through the same percent-encoding normalisation as request paths, so that
 * a glob and a path spelling the same RFC 3986 resource compare equal byte for byte.
 */

const HEX_DIGITS = '0123456789ABCDEF';

/**
 * Characters that stay raw in a normalised path: `pchar` and `/` of RFC 3986 §3.3
 * (unreserved, sub-delims, `:` and `@`). `%` starts an escape and is handled on its own.
 */
const RAW_PATH_CHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;
const ALREADY_NORMAL = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

/** Unreserved characters (RFC 3986 §2.3): their escapes are equivalent to the raw character. */
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/**
 * Normalises the percent-encoding of a URL path (RFC 3986 §6.2.2.1 and §6.2.2.2): escapes of
 * unreserved characters are decoded, every other escape is upper-cased, and characters that may
 * not appear raw in a path are UTF-8 percent-encoded. An escaped `/` (`%2F`) stays escaped: it is
 * data inside a segment, never a separator. Returns `null` when the path holds a malformed escape
 * (`%` not followed by two hex digits) or a lone surrogate.
 *
 * Dot segments are not touched: removing them (RFC 3986 §5.2.4) after this step is the caller's
 * job, since a decoded `%2E` may form one.
 */
export function normalizePathEncoding(path: string): string | null {
  if (ALREADY_NORMAL.test(path)) return path;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i] as string;
    if (ch === '%') {
      const high = hexValue(path.charCodeAt(i + 1));
      const low = hexValue(path.charCodeAt(i + 2));
      if (high < 0 || low < 0) return null;
      const byte = high * 16 + low;
      out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX_DIGITS[high]}${HEX_DIGITS[low]}`;
      i += 2;
    } else if (RAW_PATH_CHAR.test(ch)) {
      out += ch;
    } else {
      const code = path.codePointAt(i) as number;
      const char = String.fromCodePoint(code);
      if (char.length === 1 && code >= 0xd800 && code <= 0xdfff) return null;
      out += encodeURIComponent(char);
      i += char.length - 1;
    }
  }
  return out;
}

const GLOB_KIND = { exact: 0, subtree: 1, pattern: 2 } as const;
type GlobKind = (typeof GLOB_KIND)[keyof typeof GLOB_KIND];

/**
 * Whether the first `length` characters of `path` equal `lower` (already lower-case) with ASCII
 * letter case ignored. Normalised paths and globs are ASCII (anything else is percent-encoded),
 * so ASCII folding is all the folding there is.
 */
function equalsIgnoringCase(path: string, lower: string, length: number): boolean {
  for (let i = 0; i < length; i++) {
    let code = path.charCodeAt(i);
    if (code >= 0x41 && code <= 0x5a) code += 0x20;
    if (code !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * One compiled path glob. `*` matches any run of characters, possibly empty, inside one segment;
 * a `**` segment matches any number of whole segments, including none. Globs without wildcards
 * compare by string equality and `<literal>/**` by prefix, the shapes most rules use.
 *
 * Deny rules match through {@link PathGlob.testFolded}, which also ignores letter case and one
 * trailing `/`; the folded form of each glob is built here, once, so matching stays a string
 * comparison or one prebuilt regular expression.
 */
export class PathGlob {
  /** The glob as written in the config. */
  readonly source: string;
  /** The glob after percent-encoding normalisation; what is matched. */
  readonly normalized: string;
  readonly #kind: GlobKind;
  readonly #literal: string;
  readonly #literalSlash: string;
  readonly #pattern: RegExp | null;
  /** `#literal` lower-cased, for the folded comparison of exact and subtree globs. */
  readonly #lowerLiteral: string;
  /** Pattern globs: the pattern with letter case ignored and an optional trailing `/`. */
  readonly #foldedPattern: RegExp | null;
  /** Pattern globs: the pattern with letter case ignored only; built when `explain` first asks. */
  #caseOnlyPattern: RegExp | null = null;
  readonly #patternSource: string;

  constructor(source: string, normalized: string) {
    this.source = source;
    this.normalized = normalized;
    const segments = normalized.split('/');
    const last = segments.length - 1;
    const head = segments.slice(0, last).join('/');
    if (!normalized.includes('*')) {
      this.#kind = GLOB_KIND.exact;
      this.#literal = normalized;
      this.#literalSlash = '';
      this.#pattern = null;
    } else if (segments[last] === '**' && !head.includes('*')) {
      this.#kind = GLOB_KIND.subtree;
      this.#literal = head;
      this.#literalSlash = `${head}/`;
      this.#pattern = null;
    } else {
      this.#kind = GLOB_KIND.pattern;
      this.#literal = '';
      this.#literalSlash = '';
      this.#pattern = new RegExp(`^${segments.slice(1).map(segmentPattern).join('')}$`);
    }
    this.#lowerLiteral = this.#literal.toLowerCase();
    this.#patternSource = this.#pattern === null ? '' : this.#pattern.source.slice(0, -1);
    this.#foldedPattern = this.#pattern === null ? null : new RegExp(`${this.#patternSource}/?$`, 'i');
  }

  /** Whether a normalised request path matches. */
  test(path: string): boolean {
    switch (this.#kind) {
      case GLOB_KIND.exact:
        return path === this.#literal;
      case GLOB_KIND.subtree:
        return path === this.#literal || path.startsWith(this.#literalSlash);
      default:
        return (this.#pattern as RegExp).test(path);
    }
  }

  /**
   * Whether a normalised request path matches with ASCII letter case ignored and one trailing `/`
   * dropped from the path: how deny rules match. Upstreams disagree with the gateway on both
   * (Express routes ignore case and a trailing slash by default, Rails and Spring 5 a trailing
   * slash, IIS case), so a deny must cover every spelling one of them serves as the denied path.
   * Allow rules stay exact: a spelling they miss is denied by default, which is safe. Everything
   * `test` matches, this matches too. Allocates nothing.
   */
  testFolded(path: string): boolean {
    const length = path.length;
    switch (this.#kind) {
      case GLOB_KIND.exact: {
        const literal = this.#lowerLiteral;
        if (length === literal.length) return equalsIgnoringCase(path, literal, length);
        return length === literal.length + 1 && path.charCodeAt(length - 1) === 0x2f && equalsIgnoringCase(path, literal, length - 1);
      }
      case GLOB_KIND.subtree: {
        // A trailing slash changes nothing here: `<head>/` is inside the subtree already.
        const head = this.#lowerLiteral;
        if (length < head.length || !equalsIgnoringCase(path, head, head.length)) return false;
        return length === head.length || path.charCodeAt(head.length) === 0x2f;
      }
      default:
        return (this.#foldedPattern as RegExp).test(path);
    }
  }

  /** Whether the path matches with ASCII letter case ignored, trailing slash kept; for `explain`. */
  testIgnoringCase(path: string): boolean {
    switch (this.#kind) {
      case GLOB_KIND.exact:
        return path.length === this.#lowerLiteral.length && equalsIgnoringCase(path, this.#lowerLiteral, path.length);
      case GLOB_KIND.subtree:
        return this.testFolded(path);
      default:
        this.#caseOnlyPattern ??= new RegExp(`${this.#patternSource}$`, 'i');
        return this.#caseOnlyPattern.test(path);
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** The pattern for one segment, including the `/` that precedes it. */
function segmentPattern(segment: string): string {
  // `(?:/…)?` lets `**` stand for zero segments, so `/app/**` also matches `/app`.
  if (segment === '**') return '(?:/[\\s\\S]*)?';
  return `/${segment.split(/\*+/).map(escapeRegExp).join('[^/]*')}`;
}

/** Characters that are glob syntax elsewhere but not here; rejected so nobody relies on them. */
const UNSUPPORTED_GLOB_CHARS = /[?#[\]{}]/;

/**
 * Compiles a path glob, or returns the reason it is invalid (a sentence for the policy error).
 */
export function compilePathGlob(source: string): PathGlob | string {
  if (!source.startsWith('/')) return `path glob "${source}" must start with "/"`;
  const unsupported = UNSUPPORTED_GLOB_CHARS.exec(source);
  if (unsupported) {
    return (
      `path glob "${source}" contains "${unsupported[0]}": only * and ** are wildcards, and paths are ` +
      'matched without the query string; percent-encode the character to match it literally'
    );
  }
  const normalized = normalizePathEncoding(source);
  if (normalized === null) return `path glob "${source}" has a malformed percent-escape`;
  if (normalized.split('/').some((segment) => segment === '.' || segment === '..')) {
    return `path glob "${source}" has a "." or ".." segment, which a normalised request path never has`;
  }
  return new PathGlob(source, normalized);
}
