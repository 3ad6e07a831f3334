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
  | 'above-root';

export type NormalizedTarget =
  | {
      readonly ok: true;
      /** The normalised path: what policy decides on and what the upstream receives. */
      readonly path: string;
      /** The query with its `?`, exactly as received, or `''`. */
      readonly query: string;
    }
  | { readonly ok: false; readonly problem: TargetProblem };

/** Paths made only of these, with no `//` and no segment starting with `.`, are already normal. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]*$/;
const VISIBLE_ASCII = /^[\x21-\x7E]*$/;
/** Escapes that survive {@link normalizePathEncoding} and are refused (its output is upper-case). */
const REFUSED_ESCAPE = /%(?:2F|5C|3B|[01][0-9A-F]|7F|25[0-9A-Fa-f]{2})/;

/**
 * Normalises the request target of an HTTP request so that the path the gateway matches
 * resources against, decides on and audits is byte for byte the path the upstream receives:
 *
 * 1. Only `origin-form` targets (`/path?query`, RFC 9112 §3.2.1) are accepted.
 * 2. Percent-encoding is normalised (RFC 3986 §6.2.2.1–2, via the policy room's
 *    `normalizePathEncoding`): escapes of unreserved characters are decoded (`%2e` → `.`,
 *    `%41` → `A`), the others upper-cased.
 * 3. Spellings that implementations disagree on are refused (see {@link TargetProblem}):
 *    backslashes, `%2F`, `;` parameters, controls, double encoding.
 * 4. Empty segments are merged (`//` → `/`), then dot segments removed (RFC 3986 §5.2.4);
 *    `..` above the root is refused rather than clamped.
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
  if (PLAIN_PATH.test(rawPath) && !rawPath.includes('//') && !rawPath.includes('/.')) {
    return { ok: true, path: rawPath, query };
  }
  if (!VISIBLE_ASCII.test(target)) return { ok: false, problem: 'invalid-character' };
  if (rawPath.includes('\\')) return { ok: false, problem: 'backslash' };
  if (rawPath.includes(';')) return { ok: false, problem: 'path-parameter' };
  const encoded = normalizePathEncoding(rawPath);
  if (encoded === null) return { ok: false, problem: 'malformed-escape' };
  const refused = REFUSED_ESCAPE.exec(encoded);
  if (refused !== null) return { ok: false, problem: escapeProblem(refused[0]) };
  const path = removeDotSegments(encoded);
  return path === null ? { ok: false, problem: 'above-root' } : { ok: true, path, query };
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
