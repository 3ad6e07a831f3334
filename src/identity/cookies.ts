/**
 * The little of RFC 6265 the gateway needs: reading a `Cookie` request header and writing
 * `Set-Cookie` values for its own cookies. No cookie parser is a dependency of the gateway, and
 * the job is small enough to do strictly here.
 */

/** RFC 7230 §3.2.6 `token`, which RFC 6265 §4.1.1 uses for cookie names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 6265 §4.1.1 `cookie-octet`: no controls, whitespace, DQUOTE, comma, semicolon or backslash. */
const COOKIE_OCTETS = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;

/**
 * Parses a `Cookie` header into name → values, in header order. Pairs that break the grammar of
 * RFC 6265 §4.2.1 are skipped rather than guessed at. A name can occur more than once (a parent
 * domain can set a cookie of the same name), so every value is kept and the caller decides.
 */
export function parseCookieHeader(header: string | readonly string[] | undefined): Map<string, string[]> {
  const cookies = new Map<string, string[]>();
  const text = typeof header === 'string' ? header : (header ?? []).join('; ');
  for (const pair of text.split(';')) {
    const parsed = cookiePair(pair);
    if (parsed === null) continue;
    const values = cookies.get(parsed.name);
    if (values === undefined) cookies.set(parsed.name, [parsed.value]);
    else values.push(parsed.value);
  }
  return cookies;
}

/**
 * The values of cookie `name` in a `Cookie` header, exactly as {@link parseCookieHeader} reads
 * them, without parsing the other pairs. Whoever keys a cache on a cookie must key it on these:
 * any other reading of the header (a name with spaces around it, a quoted value) would let two
 * headers that open the same session differ in the key, or two keys open different sessions.
 */
export function cookieValues(header: string, name: string): string[] {
  const values: string[] = [];
  if (!header.includes(name)) return values;
  for (const pair of header.split(';')) {
    if (!pair.includes(name)) continue;
    const parsed = cookiePair(pair);
    if (parsed !== null && parsed.name === name) values.push(parsed.value);
  }
  return values;
}

/** One `name=value` pair of RFC 6265 §4.2.1 (optional quotes around the value), or `null`. */
function cookiePair(pair: string): { readonly name: string; readonly value: string } | null {
  const eq = pair.indexOf('=');
  if (eq <= 0) return null;
  const name = pair.slice(0, eq).trim();
  let value = pair.slice(eq + 1).trim();
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
  return TOKEN.test(name) && COOKIE_OCTETS.test(value) ? { name, value } : null;
}

/** Attributes of a cookie the gateway sets. */
export interface CookieAttributes {
  /** Adds `Secure` (and allows a `__Host-` or `__Secure-` prefix); true when the public URL is https. */
  readonly secure: boolean;
  /**
   * `Domain` attribute (lower case, no leading dot): the browser then sends the cookie to that
   * host and every host under it (RFC 6265 §5.2.3). Absent: a host-only cookie.
   */
  readonly domain?: string;
}

/**
 * Cookie name with a prefix the browser enforces when `secure` (draft-ietf-httpbis-rfc6265bis
 * §4.1.3): `__Host-` for a host-only cookie, so the browser insists on `Secure`, `Path=/` and no
 * `Domain`, and no sibling subdomain can plant or shadow it; `__Secure-` for a cookie with a
 * `Domain`, which `__Host-` forbids, so at least `Secure` is still enforced.
 */
export function cookieName(base: string, attributes: CookieAttributes): string {
  if (!attributes.secure) return base;
  return attributes.domain === undefined ? `__Host-${base}` : `__Secure-${base}`;
}

/**
 * A `Set-Cookie` value: `HttpOnly` (no script access), `SameSite=Lax` (sent on top-level
 * navigations such as the IdP's redirect back, withheld from cross-site subrequests), `Path=/`,
 * `Domain` only when the attributes name one, `Secure` on https. `maxAgeSeconds` 0 deletes the
 * cookie; a deletion must carry the same `Domain` as the cookie, or the browser keeps it
 * (RFC 6265 §5.3 step 11 matches name, domain and path).
 */
export function serializeCookie(name: string, value: string, maxAgeSeconds: number, attributes: CookieAttributes): string {
  const parts = [`${name}=${value}`, `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`, 'Path=/'];
  if (attributes.domain !== undefined) parts.push(`Domain=${attributes.domain}`);
  parts.push('HttpOnly', 'SameSite=Lax');
  if (attributes.secure) parts.push('Secure');
  return parts.join('; ');
}

/**
 * RFC 6265 §6.1 only promises 4096 bytes per cookie, counting name, value and attributes; the
 * whole `Set-Cookie` value is held to that.
 */
export const MAX_COOKIE_BYTES = 4096;
