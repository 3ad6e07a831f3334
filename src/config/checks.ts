import { parseDuration } from '../core/index.js';
import { cookieDomainProblem, formatDuration, hostPortProblem, isLoopbackHost, isWithinDomain, normalizeCookieDomain, splitHostPort } from './formats.js';
import { closestWord, type KeyPath, type PathSegment } from './issues.js';
import type { Problem } from './yaml-source.js';

/**
 * Checks of how keys relate to each other: names that must refer to something defined
 * elsewhere, keys that only make sense together. They run on the raw data, tolerating any
 * shape, so that they are reported together with the schema's findings rather than after them.
 */
export function checkRelations(data: unknown, lineOf: (path: KeyPath) => number): Problem[] {
  if (!isRecord(data)) return [];
  const problems: Problem[] = [];
  const report = (path: KeyPath, message: string): void => {
    problems.push({ path, message });
  };
  const resources = checkResources(data, report, lineOf);
  checkRoles(data, resources, report);
  checkGrants(data, report);
  checkServer(data, report);
  checkIdentity(data, resources, report);
  checkAudit(data, report);
  return problems;
}

type Report = (path: KeyPath, message: string) => void;

interface KnownResource {
  readonly kind: unknown;
  readonly logins: readonly string[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function quoted(text: string): string {
  return JSON.stringify(text);
}

/** `; did you mean "shop"?`, or else the names that do exist. */
function suggestion(word: string, known: readonly string[], what: string): string {
  const match = closestWord(word, known);
  if (match !== null) return `; did you mean ${quoted(match)}?`;
  return known.length === 0 ? `; no ${what} are defined` : `; defined ${what}: ${known.join(', ')}`;
}

function checkResources(data: Record<string, unknown>, report: Report, lineOf: (path: KeyPath) => number): Map<string, KnownResource> {
  const known = new Map<string, KnownResource>();
  const firstByName = new Map<string, number>();
  const firstByMatch = new Map<string, number>();
  list(data['resources']).forEach((resource, index) => {
    if (!isRecord(resource)) return;
    const at = (...rest: PathSegment[]): KeyPath => ['resources', index, ...rest];
    const logins = checkLogins(resource, at, report, lineOf);
    const name = resource['name'];
    if (typeof name === 'string') {
      const first = firstByName.get(name);
      if (first === undefined) {
        firstByName.set(name, index);
        known.set(name, { kind: resource['kind'], logins });
      } else {
        report(at('name'), `duplicate resource name ${quoted(name)}; first at line ${lineOf(['resources', first, 'name'])}`);
      }
    }
    const match = resource['match'];
    if (resource['kind'] !== 'http' || !isRecord(match)) return;
    const host = match['host'];
    const prefix = match['path_prefix'];
    if (host === undefined && prefix === undefined) {
      report(at('match'), 'needs host, path_prefix or both');
      return;
    }
    if (resource['strip_prefix'] === true && prefix === undefined) {
      report(at('strip_prefix'), 'applies only with match.path_prefix');
    }
    const key = JSON.stringify([typeof host === 'string' ? host.toLowerCase() : host, prefix]);
    const first = firstByMatch.get(key);
    if (first === undefined) firstByMatch.set(key, index);
    else report(at('match'), `matches the same requests as resources[${first}] (line ${lineOf(['resources', first, 'match'])})`);
  });
  return known;
}

function checkLogins(
  resource: Record<string, unknown>,
  at: (...rest: PathSegment[]) => KeyPath,
  report: Report,
  lineOf: (path: KeyPath) => number,
): string[] {
  const names: string[] = [];
  const firstByName = new Map<string, number>();
  list(resource['logins']).forEach((login, index) => {
    const name = isRecord(login) ? login['name'] : undefined;
    if (typeof name !== 'string') return;
    const first = firstByName.get(name);
    if (first === undefined) {
      firstByName.set(name, index);
      names.push(name);
    } else {
      report(at('logins', index, 'name'), `duplicate login name ${quoted(name)}; first at line ${lineOf(at('logins', first, 'name'))}`);
    }
  });
  return names;
}

const HTTP_FIELDS = ['methods', 'paths'] as const;
const POSTGRES_FIELDS = ['logins', 'statements', 'tables', 'functions'] as const;

function checkRoles(data: Record<string, unknown>, resources: ReadonlyMap<string, KnownResource>, report: Report): void {
  const roles = data['roles'];
  if (!isRecord(roles)) return;
  for (const [roleName, role] of Object.entries(roles)) {
    if (!isRecord(role)) continue;
    for (const effect of ['allow', 'deny'] as const) {
      list(role[effect]).forEach((rule, index) => {
        if (isRecord(rule)) checkRule(rule, ['roles', roleName, effect, index], resources, report);
      });
    }
  }
}

function checkRule(rule: Record<string, unknown>, path: KeyPath, resources: ReadonlyMap<string, KnownResource>, report: Report): void {
  const resourceName = rule['resource'];
  const present = (field: string): boolean => rule[field] !== undefined;
  if (present('audit')) {
    if (resourceName !== undefined) {
      report([...path, 'audit'], 'audit rules name no resource; put the audit permissions in a rule of their own');
      return;
    }
    for (const field of [...HTTP_FIELDS, ...POSTGRES_FIELDS]) {
      if (present(field)) report([...path, field], 'does not apply to audit rules');
    }
    return;
  }
  if (resourceName === undefined) {
    report(path, 'names no resource and no audit permissions; add resource: NAME or audit: [view]');
    return;
  }
  if (typeof resourceName !== 'string') return;
  const resource = resources.get(resourceName);
  if (resource === undefined) {
    report([...path, 'resource'], `unknown resource ${quoted(resourceName)}${suggestion(resourceName, [...resources.keys()], 'resources')}`);
    return;
  }
  if (resource.kind === 'http') {
    for (const field of POSTGRES_FIELDS) {
      if (present(field)) report([...path, field], `applies only to postgres resources; ${quoted(resourceName)} is an http resource`);
    }
  } else if (resource.kind === 'postgres') {
    for (const field of HTTP_FIELDS) {
      if (present(field)) report([...path, field], `applies only to http resources; ${quoted(resourceName)} is a postgres resource`);
    }
    list(rule['logins']).forEach((login, index) => {
      if (typeof login === 'string' && !resource.logins.includes(login)) {
        report([...path, 'logins', index], `resource ${quoted(resourceName)} has no login ${quoted(login)}; its logins are ${resource.logins.join(', ')}`);
      }
    });
  }
}

function checkGrants(data: Record<string, unknown>, report: Report): void {
  const roles = isRecord(data['roles']) ? Object.keys(data['roles']) : [];
  list(data['grants']).forEach((grant, index) => {
    if (!isRecord(grant)) return;
    const role = grant['role'];
    if (typeof role === 'string' && !roles.includes(role)) {
      report(['grants', index, 'role'], `unknown role ${quoted(role)}${suggestion(role, roles, 'roles')}`);
    }
    const users = grant['users'];
    const groups = grant['groups'];
    const empty = (value: unknown): boolean => value === undefined || (Array.isArray(value) && value.length === 0);
    if (empty(users) && empty(groups)) {
      report(['grants', index], 'names no users and no groups; add at least one to either list');
    }
  });
}

function checkServer(data: Record<string, unknown>, report: Report): void {
  const server = data['server'];
  const postgres = isRecord(server) ? server['postgres'] : undefined;
  if (!isRecord(postgres) || postgres['tls'] !== undefined) return;
  if (postgres['allow_cleartext_on_loopback'] !== true) {
    // The gateway asks clients for their database token with AuthenticationCleartextPassword
    // (PostgreSQL Frontend/Backend Protocol, "Start-up"), so only TLS keeps the token secret.
    report(
      ['server', 'postgres', 'tls'],
      'is required: clients send database tokens as passwords, which must not cross a network in cleartext (or set allow_cleartext_on_loopback: true for a loopback listener)',
    );
    return;
  }
  const listen = postgres['listen'] ?? '127.0.0.1:6432';
  if (typeof listen === 'string' && hostPortProblem(listen) === null && !isLoopbackHost(splitHostPort(listen).host)) {
    report(['server', 'postgres', 'listen'], 'allow_cleartext_on_loopback covers only loopback addresses; listen on 127.0.0.1 or ::1, or configure tls');
  }
}

function checkIdentity(data: Record<string, unknown>, resources: ReadonlyMap<string, KnownResource>, report: Report): void {
  const identity = data['identity'];
  if (!isRecord(identity)) return;
  const dbTokens = isRecord(identity['db_tokens']) ? identity['db_tokens'] : {};
  const hasPostgres = [...resources.values()].some((resource) => resource.kind === 'postgres');
  if (hasPostgres && dbTokens['signing_key'] === undefined) {
    report(['identity', 'db_tokens', 'signing_key'], 'is required when a postgres resource exists: database tokens are signed with it');
  }
  const ttl = durationOr(dbTokens['ttl'], '1h');
  const maxTtl = durationOr(dbTokens['max_ttl'], '12h');
  if (ttl !== null && maxTtl !== null && ttl > maxTtl) {
    report(['identity', 'db_tokens', 'ttl'], `is longer than max_ttl (${formatDuration(maxTtl)})`);
  }
  checkCookieDomain(data, identity, report);
}

/**
 * With `session.cookie_domain`, login runs on the public host and the session cookie must reach
 * every host a browser may use (RFC 6265 §5.1.3 domain-match): a host outside the domain would
 * never receive it, and its browsers would be sent round the login forever.
 */
function checkCookieDomain(data: Record<string, unknown>, identity: Record<string, unknown>, report: Report): void {
  const session = identity['session'];
  const raw = isRecord(session) ? session['cookie_domain'] : undefined;
  if (typeof raw !== 'string' || cookieDomainProblem(raw) !== null) return;
  const domain = normalizeCookieDomain(raw);
  const server = data['server'];
  const publicUrl = isRecord(server) ? server['public_url'] : undefined;
  if (typeof publicUrl === 'string' && URL.canParse(publicUrl)) {
    const host = new URL(publicUrl).hostname.replace(/^\[|\]$/g, '');
    if (!isWithinDomain(host, domain)) {
      report(
        ['identity', 'session', 'cookie_domain'],
        `${quoted(domain)} does not cover the public URL's host ${quoted(host)}: login runs there, so it must be ${quoted(domain)} or a subdomain of it`,
      );
    }
  }
  list(data['resources']).forEach((resource, index) => {
    if (!isRecord(resource) || resource['kind'] !== 'http' || !isRecord(resource['match'])) return;
    const host = resource['match']['host'];
    if (typeof host !== 'string' || isWithinDomain(host, domain)) return;
    report(
      ['resources', index, 'match', 'host'],
      `${quoted(host)} is outside identity.session.cookie_domain ${quoted(domain)}, so browsers could not log in there; put the resource under ${quoted(domain)} or route it by path_prefix`,
    );
  });
}

function checkAudit(data: Record<string, unknown>, report: Report): void {
  const audit = data['audit'];
  if (!isRecord(audit) || audit['sync_interval'] === undefined) return;
  if (audit['durability'] !== 'interval') {
    report(['audit', 'sync_interval'], 'applies only with durability: interval; remove it, or set durability: interval');
  }
}

function durationOr(value: unknown, fallback: string): number | null {
  if (value === undefined) return parseDuration(fallback);
  return typeof value === 'string' ? parseDuration(value) : null;
}
