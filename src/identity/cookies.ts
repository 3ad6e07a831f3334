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
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!TOKEN.test(name) || !COOKIE_OCTETS.test(value)) continue;
    const values = cookies.get(name);
    if (values === undefined) cookies.set(name, [value]);
    else values.push(value);
  }
  return cookies;
}

/** Attributes shared by every cookie the gateway sets. */
export interface CookieAttributes {
  /** Adds `Secure` (and allows the `__Host-` prefix); true when the public URL is https. */
  readonly secure: boolean;
}

/**
 * Cookie name with the `__Host-` prefix when `secure`: the browser then insists on `Secure`,
 * `Path=/` and no `Domain`, so no sibling subdomain can plant or shadow the cookie
 * (draft-ietf-httpbis-rfc6265bis §4.1.3.2).
 */
export function cookieName(base: string, attributes: CookieAttributes): string {
  return attributes.secure ? `__Host-${base}` : base;
}

/**
 * A `Set-Cookie` value: `HttpOnly` (no script access), `SameSite=Lax` (sent on top-level
 * navigations such as the IdP's redirect back, withheld from cross-site subrequests), `Path=/`,
 * no `Domain`, `Secure` on https. `maxAgeSeconds` 0 deletes the cookie.
 */
export function serializeCookie(name: string, value: string, maxAgeSeconds: number, attributes: CookieAttributes): string {
  const parts = [`${name}=${value}`, `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`, 'Path=/', 'HttpOnly', 'SameSite=Lax'];
  if (attributes.secure) parts.push('Secure');
  return parts.join('; ');
}

/**
 * RFC 6265 §6.1 only promises 4096 bytes per cookie, counting name, value and attributes; the
 * whole `Set-Cookie` value is held to that.
 */
export const MAX_COOKIE_BYTES = 4096;
