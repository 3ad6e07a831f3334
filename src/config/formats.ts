import { isIP } from 'node:net';

/**
 * Checks of the value formats the config uses. Each returns `null` when the text is fine, or a
 * message saying what is wrong and how it should look.
 */

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;

export function hostProblem(text: string): string | null {
  if (isIP(text) !== 0 || HOSTNAME.test(text)) return null;
  return `${JSON.stringify(text)} is not a host name or IP address`;
}

/**
 * `identity.session.cookie_domain`: a DNS name with at least one dot, written with or without a
 * leading dot. IP addresses are refused: RFC 6265 §5.1.3 domain-matches them only exactly, so a
 * `Domain` of an address would share the cookie with no other host.
 */
export function cookieDomainProblem(text: string): string | null {
  const domain = normalizeCookieDomain(text);
  const example = 'write it like example.com';
  if (isIP(domain) !== 0) return `${JSON.stringify(text)} is an IP address; a cookie domain must be a DNS name; ${example}`;
  if (!HOSTNAME.test(domain) || !domain.includes('.') || /^\d+$/.test(domain.slice(domain.lastIndexOf('.') + 1))) {
    return `${JSON.stringify(text)} is not a DNS name with at least one dot; ${example}`;
  }
  return null;
}

/** A cookie domain as the gateway uses it: lower case, without the leading dot RFC 6265 §5.2.3 ignores. */
export function normalizeCookieDomain(text: string): string {
  return (text.startsWith('.') ? text.slice(1) : text).toLowerCase();
}

/** RFC 6265 §5.1.3 domain-match: `host` is `domain` or a subdomain of it, and not an IP address. */
export function isWithinDomain(host: string, domain: string): boolean {
  const name = host.toLowerCase();
  return name === domain || (name.endsWith(`.${domain}`) && isIP(name) === 0);
}

/** A listen or connect address: `host:port`, with IPv6 in brackets (`[::1]:8080`). */
export function hostPortProblem(text: string): string | null {
  const match = HOST_PORT.exec(text);
  const example = 'write it like 127.0.0.1:8080 or [::1]:8080';
  if (!match) return `${JSON.stringify(text)} is not host:port; ${example}`;
  const bracketed = match[1];
  if (bracketed !== undefined && isIP(bracketed) !== 6) return `${JSON.stringify(text)}: only IPv6 addresses go in brackets; ${example}`;
  if (bracketed === undefined && hostProblem(match[2] ?? '') !== null) return `${JSON.stringify(text)} is not host:port; ${example}`;
  const port = Number(match[3]);
  if (port > 65535) return `port ${port} is out of range (0 to 65535)`;
  return null;
}

/** `127.0.0.1:8080` → `{ host: '127.0.0.1', port: 8080 }`; `[::1]:8080` → `{ host: '::1', ... }`. */
export function splitHostPort(text: string): { readonly host: string; readonly port: number } {
  const match = HOST_PORT.exec(text);
  if (!match) throw new RangeError(`${JSON.stringify(text)} is not host:port`);
  return { host: match[1] ?? match[2] ?? '', port: Number(match[3]) };
}

/** Whether a listen host only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

interface UrlRules {
  /** Only `/` may follow the authority. */
  readonly noPath?: boolean;
}

/** An `http:` or `https:` URL with no credentials, query or fragment. */
export function httpUrlProblem(text: string, rules: UrlRules = {}): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text)} is not a URL; write it like https://host.example.com`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${JSON.stringify(text)} is not an http or https URL`;
  if (url.username !== '' || url.password !== '') return 'must not hold a user name or password; credentials belong in secret keys';
  if (url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#')) return `${JSON.stringify(text)} must have no query or fragment`;
  if (rules.noPath === true && url.pathname !== '/') {
    return `${JSON.stringify(text)} must have no path (found ${JSON.stringify(url.pathname)}); Tollgate serves from the root of its public URL`;
  }
  return null;
}

/** A CIDR block (`10.0.0.0/8`, `fd00::/8`) or a single address. */
export function cidrProblem(text: string): string | null {
  const [address = '', prefix, extra] = text.split('/');
  const family = isIP(address);
  const bad = `${JSON.stringify(text)} is not a CIDR block; write it like 10.0.0.0/8 or fd00::/8`;
  if (family === 0 || extra !== undefined) return bad;
  if (prefix === undefined) return null;
  if (!/^\d{1,3}$/.test(prefix)) return bad;
  const max = family === 4 ? 32 : 128;
  if (Number(prefix) > max) return `prefix /${prefix} is longer than ${max} bits`;
  return null;
}

const DURATION_UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
] as const;

/** Milliseconds in the largest unit that divides them: 300000 → `5m`, 1500 → `1500ms`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of DURATION_UNITS) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
