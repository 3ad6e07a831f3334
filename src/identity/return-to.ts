/** Where a login or logout lands when the requested place is not acceptable. */
export const DEFAULT_RETURN_TO = '/';

const MAX_RETURN_TO_CHARS = 2048;
/** Printable ASCII without space; a browser sends everything else percent-encoded anyway. */
const PRINTABLE = /^[\x21-\x7E]+$/;
const ORIGIN_PROBE = 'http://return-to.invalid';
const CONTROL = /[\x00-\x1F\x7F]/;
const MAX_DECODE_ROUNDS = 3;

/**
 * Where an absolute return URL may point, when `identity.session.cookie_domain` lets the session
 * reach hosts other than the public one.
 */
export interface AbsoluteReturnRules {
  /** The public URL's scheme with its colon: `https:`. */
  readonly protocol: string;
  /** The public URL's port as `URL.port` gives it (`''` for the scheme's default). */
  readonly port: string;
  /** Lower-case host names allowed: the public host and the host-matched resources' hosts. */
  readonly hosts: ReadonlySet<string>;
}

/**
 * The post-login redirect target, if it is a path on the gateway itself; `/` otherwise
 * (DESIGN.md §2, the open-redirect rule; RFC 9700 §4.11).
 *
 * Accepted: `/x/y?z#f`. Refused: scheme-relative `//evil`, backslashes that browsers read as
 * slashes (`/\evil`), absolute URLs and `javascript:` (they do not start with `/`), controls,
 * spaces and tabs (browsers strip tabs and newlines, so `/\t/evil` would become `//evil`), and
 * percent-encoded forms of any of these (`/%2F%2Fevil`, `%5C`, `%09`), decoded up to three times
 * since an upstream may decode again. The value is returned unchanged, never re-normalised,
 * because normalising `/..//evil` would produce `//evil`.
 *
 * With `absolute` rules, an absolute URL is accepted too when it is written exactly as
 * `<protocol>//<host>[:<port>]<path>`: the public URL's scheme, a host from the allow-list (never
 * merely one under the cookie domain), no userinfo, the public URL's port or none, and a path
 * that passes the checks above.
 */
export function safeReturnTo(input: unknown, absolute?: AbsoluteReturnRules): string {
  if (typeof input !== 'string' || input.length > MAX_RETURN_TO_CHARS || !PRINTABLE.test(input)) return DEFAULT_RETURN_TO;
  if (absolute !== undefined && input.startsWith(`${absolute.protocol}//`)) return safeAbsolute(input, absolute) ? input : DEFAULT_RETURN_TO;
  return safePath(input) ? input : DEFAULT_RETURN_TO;
}

function safePath(input: string): boolean {
  let layer = input;
  for (let round = 0; ; round += 1) {
    if (!layer.startsWith('/') || layer.startsWith('//') || layer.includes('\\') || CONTROL.test(layer)) return false;
    const next = percentDecode(layer);
    if (next === layer) break;
    if (round === MAX_DECODE_ROUNDS) return false;
    layer = next;
  }
  return new URL(input, ORIGIN_PROBE).origin === ORIGIN_PROBE;
}

/**
 * The authority is compared as written with the one the URL parser finds (RFC 3986 §3.2), so
 * that nothing the parser would rewrite gets through: userinfo (`app.example.com@evil`),
 * percent-encoded or IDN host names, a trailing dot, an explicit default port.
 */
function safeAbsolute(input: string, rules: AbsoluteReturnRules): boolean {
  if (input.includes('\\') || !URL.canParse(input)) return false;
  const url = new URL(input);
  if (url.protocol !== rules.protocol || url.username !== '' || url.password !== '') return false;
  if (!rules.hosts.has(url.hostname) || (url.port !== '' && url.port !== rules.port)) return false;
  const start = rules.protocol.length + 2;
  const end = input.slice(start).search(/[/?#]/);
  const authority = end < 0 ? input.slice(start) : input.slice(start, start + end);
  if (authority.toLowerCase() !== url.host) return false;
  const rest = end < 0 ? '' : input.slice(start + end);
  return rest === '' || (rest.startsWith('/') && safePath(rest));
}

/**
 * Decodes every valid `%XX` to the byte's Latin-1 character and leaves anything else alone, so a
 * stray `%` cannot stop the inspection of the sequences around it (`/%2F%2Fevil%zz`).
 */
function percentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
