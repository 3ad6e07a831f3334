import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/**
 * Header handling of the forwarding path: framing checks, hop-by-hop headers (RFC 9110 §7.6.1),
 * `X-Forwarded-*`, and what the upstream and the client receive. Pure functions over header
 * objects, so each rule is tested without sockets.
 */

/** Headers that describe one connection, never the message (RFC 9110 §7.6.1, RFC 9112 §9.6). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * Request headers that name the client or how it connected, besides `X-Forwarded-*`: proxies and
 * CDNs in front set them, and applications read them as the client's address. Passed on only from
 * a trusted proxy (`server.http.trusted_proxies`); from anyone else they would let a client choose
 * the address an application logs, rate-limits or allow-lists.
 */
const FORWARDING_HEADERS: ReadonlySet<string> = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'x-originating-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
]);

/**
 * Headers through which frameworks replace the request's path or method after the gateway has
 * decided on it: `X-Original-URL`/`X-Rewrite-URL` (IIS URL Rewrite, Zend, older Symfony),
 * `X-Original-URI` and `X-Original-Method` (set by auth front ends, read back by some apps), and
 * the method overrides of Express `method-override`, Rack, OData and others. Forwarding any of them
 * would let a request allowed as `POST /app/public` run as `DELETE /app/admin/x`. Dropped from
 * every peer, trusted or not: the path and method the gateway decided on are the request's.
 */
const OVERRIDE_HEADERS: ReadonlySet<string> = new Set([
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  'x-original-method',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
]);

/**
 * Header names forwarded at all: letters, digits and `-` (Node has already lower-cased them).
 * CGI-style servers (RFC 3875 §4.1.18; WSGI, Rack, PHP-FPM) hand headers to the application as
 * `HTTP_<NAME>` with `-` turned into `_`, and some (Apache before 2.4) turn every other character
 * into `_` too, so `X_Tollgate_User` or `X.Tollgate.User` from a client lands in the same variable
 * as the gateway's `X-Tollgate-User`, and the application may read the forged one. Dropping only
 * look-alikes of our own names is not enough: the gateway cannot know which other names an
 * application trusts (`X-Remote-User` from an earlier SSO proxy, `X-Api-Key`, ...), and each has
 * the same collision. Legitimate clients hardly ever use such names, and nginx drops them by
 * default as well (`underscores_in_headers off`, `ignore_invalid_headers on`), so upstreams that
 * sat behind nginx see no change.
 */
const FORWARDABLE_NAME = /^[a-z0-9-]+$/;

/** Why a request's framing was refused; each closes the connection (RFC 9112 §6.3). */
export type FramingProblem =
  | 'transfer-encoding-with-content-length'
  | 'transfer-encoding-not-chunked'
  | 'transfer-encoding-in-http-1.0'
  | 'duplicate-host';

/**
 * Framing rules the HTTP parser does not enforce on its own. Node's parser already refuses
 * `Content-Length` together with `Transfer-Encoding: chunked`, duplicate `Content-Length`,
 * obs-fold and bare LF; this adds:
 * - `Transfer-Encoding` other than exactly `chunked` (RFC 9112 §6.1: the gateway would have to
 *   pass on a coding it cannot frame; 501);
 * - `Transfer-Encoding` in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing);
 * - more than one `Host` (RFC 9112 §3.2: 400); Node silently keeps the first.
 */
export function framingProblem(req: IncomingMessage): FramingProblem | null {
  const headers = req.headers;
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    if (headers['content-length'] !== undefined) return 'transfer-encoding-with-content-length';
    if (req.httpVersionMinor === 0) return 'transfer-encoding-in-http-1.0';
    if (te.toLowerCase() !== 'chunked') return 'transfer-encoding-not-chunked';
  }
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts += 1;
  }
  return hosts > 1 ? 'duplicate-host' : null;
}

/** Whether the request carries a body to forward (RFC 9112 §6.3). */
export function hasRequestBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

export interface ParsedHost {
  /** Lower-case, without port or trailing dot; IPv6 without brackets. */
  readonly hostname: string;
  /** The header as sent, for `X-Forwarded-Host`. */
  readonly raw: string;
}

const HOST_HEADER = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/;

/** The `Host` header (RFC 9110 §7.2), or `null` when it is missing or not a host. */
export function parseHostHeader(value: string | undefined): ParsedHost | null {
  if (value === undefined) return null;
  const match = HOST_HEADER.exec(value);
  if (match === null) return null;
  const v6 = match[1];
  if (v6 !== undefined) return isIP(v6) === 6 ? { hostname: v6.toLowerCase(), raw: value } : null;
  const name = (match[2] as string).toLowerCase().replace(/\.$/, '');
  return name === '' ? null : { hostname: name, raw: value };
}

/** The header names a `Connection` header lists (RFC 9110 §7.6.1), lower-case; `null` for none. */
function connectionOptions(value: string | undefined): ReadonlySet<string> | null {
  if (value === undefined || value.length < 4) return null;
  // The two values nearly every client sends name no header; skip the split for them.
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return null;
  const names = new Set<string>();
  for (const token of lower.split(',')) {
    const name = token.trim();
    if (name !== '' && name !== 'keep-alive' && name !== 'close') names.add(name);
  }
  return names.size === 0 ? null : names;
}

/**
 * Which peers may tell the gateway who the client is (`server.http.trusted_proxies`): their
 * `X-Forwarded-For` is extended instead of replaced, and their `X-Forwarded-Proto`/`-Host` kept.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address = '', bits] = cidr.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.#list.addAddress(address, family);
      else this.#list.addSubnet(address, Number(bits), family);
    }
    this.#empty = cidrs.length === 0;
  }

  trusts(address: string): boolean {
    if (this.#empty || address === '') return false;
    const family = isIP(address);
    if (family === 0) return false;
    return this.#list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * The client's address: the peer, or, behind trusted proxies, the right-most address of
   * `X-Forwarded-For` that is not itself a trusted proxy (RFC 7239 §5.2 reasoning: entries left
   * of the first untrusted hop are the client's own claims).
   */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    if (forwardedFor === undefined || !this.trusts(peer)) return peer;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = (hops[i] as string).trim();
      if (isIP(hop) === 0) return peer;
      if (!this.trusts(hop)) return hop;
    }
    return (hops[0] as string).trim();
  }
}

/** The peer address of a socket, with IPv4-mapped IPv6 addresses written as IPv4. */
export function peerAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Everything the gateway adds to or takes from the request headers on the way upstream. */
export interface UpstreamHeaderOptions {
  readonly peer: string;
  readonly peerTrusted: boolean;
  /** `http` or `https`: the scheme the client used to reach the gateway. */
  readonly scheme: string;
  /** The `Cookie` header without the gateway's own cookies, or `null` for none. */
  readonly cookie: string | null;
  /** Drop `Authorization`: it carried the bearer token the gateway consumed. */
  readonly dropAuthorization: boolean;
  /** `X-Tollgate-*` headers to add; names lower-case. */
  readonly identity: Readonly<Record<string, string>>;
}

/**
 * The request headers the upstream receives: the client's, minus hop-by-hop headers and the
 * headers the `Connection` header names, minus `Host` (the upstream's own host is sent),
 * `Expect` (the gateway answers `100-continue` itself), `Proxy` and `Proxy-*` (httpoxy,
 * CVE-2016-5385), every inbound `X-Tollgate-*`, the method and URL overrides, every name with a
 * character other than a letter, digit or `-` (see {@link FORWARDABLE_NAME}), and the gateway's
 * cookies; plus `X-Forwarded-For/Proto/Host` and the identity headers.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, options: UpstreamHeaderOptions): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionOptions(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (!FORWARDABLE_NAME.test(name) || OVERRIDE_HEADERS.has(name)) continue;
    if (HOP_BY_HOP.has(name) || (listed !== null && listed.has(name))) continue;
    if (name.startsWith('x-tollgate-') || name.startsWith('proxy-') || name === 'proxy') continue;
    if (name === 'host' || name === 'expect' || name === 'cookie') continue;
    if (name === 'authorization' && options.dropAuthorization) continue;
    if (name.startsWith('x-forwarded-') || FORWARDING_HEADERS.has(name)) {
      if (!options.peerTrusted) continue;
      if (name === 'x-forwarded-for' || name === 'x-forwarded-proto' || name === 'x-forwarded-host') continue;
    }
    out[name] = value;
  }
  if (options.cookie !== null) out['cookie'] = options.cookie;
  const trusted = options.peerTrusted;
  const forwardedFor = trusted ? headers['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = forwardedFor === undefined ? options.peer : `${forwardedFor}, ${options.peer}`;
  out['x-forwarded-proto'] = (trusted ? singleValue(headers['x-forwarded-proto']) : undefined) ?? options.scheme;
  const host = (trusted ? singleValue(headers['x-forwarded-host']) : undefined) ?? headers.host;
  if (host !== undefined) out['x-forwarded-host'] = host;
  for (const name in options.identity) out[name] = options.identity[name] as string;
  return out;
}

function singleValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The response headers the client receives, as a flat `[name, value, ...]` list in the
 * upstream's order: hop-by-hop headers, the headers `Connection` names and `Proxy-*` removed,
 * `Set-Cookie` lines that would set one of the gateway's cookies dropped (an upstream must
 * not be able to log a user out or plant a login attempt), and `X-Request-Id` dropped (the
 * gateway sends its own; the upstream received it as `X-Tollgate-Request-Id`). Node frames the
 * response itself.
 *
 * @param raw undici's raw headers: alternating names and values, as buffers or strings.
 */
export function downstreamResponseHeaders(raw: readonly (Buffer | string)[], reservedCookies: readonly string[]): string[] {
  const out: string[] = [];
  let listed: ReadonlySet<string> | null = null;
  // Each name is decoded once: turning a buffer into a string is the costly step here.
  const names: string[] = new Array<string>(raw.length >> 1);
  const lowers: string[] = new Array<string>(raw.length >> 1);
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i] as Buffer | string);
    const lower = name.toLowerCase();
    names[i >> 1] = name;
    lowers[i >> 1] = lower;
    if (lower === 'connection') listed = connectionOptions(latin1(raw[i + 1] as Buffer | string));
  }
  for (let i = 0; i < raw.length; i += 2) {
    const lower = lowers[i >> 1] as string;
    if (HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || lower === 'x-request-id' || (listed !== null && listed.has(lower))) continue;
    // Header bytes are octets (RFC 9110 §5.5): latin1 keeps each one as it came, and Node
    // writes header strings back as latin1.
    const value = latin1(raw[i + 1] as Buffer | string);
    if (lower === 'set-cookie' && setsReservedCookie(value, reservedCookies)) continue;
    out.push(names[i >> 1] as string, value);
  }
  return out;
}

function latin1(value: Buffer | string): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

/**
 * Whether a `Set-Cookie` value sets one of `reserved`. A nameless cookie (`=name=value`) counts
 * as the cookie its value names: browsers send a cookie with an empty name back as its bare value
 * (draft-ietf-httpbis-rfc6265bis, retrieval algorithm), so it would arrive as `name=value`.
 */
function setsReservedCookie(setCookie: string, reserved: readonly string[]): boolean {
  const eq = setCookie.indexOf('=');
  const name = (eq < 0 ? setCookie : setCookie.slice(0, eq)).trim();
  if (name !== '' || eq < 0) return reserved.includes(name);
  const valueEq = setCookie.indexOf('=', eq + 1);
  return valueEq >= 0 && reserved.includes(setCookie.slice(eq + 1, valueEq).trim());
}

/**
 * The `Cookie` header without the named cookies (the gateway's session and pending-login
 * cookies are never forwarded), other pairs unchanged and in order; `null` when nothing is left.
 */
export function cookieHeaderWithout(header: string | undefined, names: readonly string[]): string | null {
  if (header === undefined || header === '') return null;
  let hasReserved = false;
  for (const name of names) {
    if (header.includes(name)) {
      hasReserved = true;
      break;
    }
  }
  if (!hasReserved) return header;
  const kept: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    if (name === '' || names.includes(name)) continue;
    kept.push(pair.trim());
  }
  return kept.length === 0 ? null : kept.join('; ');
}

const HEADER_SAFE = /^[\x21-\x24\x26-\x2B\x2D-\x7E]*$/;
const HEADER_UNSAFE = /[^\x21-\x24\x26-\x2B\x2D-\x7E]/gu;

/**
 * A header-safe rendering of a user name or group: visible ASCII kept, except `%` and `,`
 * (the group list separator); every other character percent-encoded as UTF-8 (a lone surrogate
 * as U+FFFD), so a name with a comma, a space or non-ASCII letters reaches the upstream intact
 * and decodable with `decodeURIComponent`.
 */
export function headerText(text: string): string {
  if (HEADER_SAFE.test(text)) return text;
  return text.replace(HEADER_UNSAFE, (ch) => {
    try {
      return encodeURIComponent(ch);
    } catch {
      return '%EF%BF%BD';
    }
  });
}
