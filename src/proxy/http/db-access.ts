import { splitHostPort, type PostgresResourceConfig } from '../../config/index.js';
import type { Principal } from '../../core/index.js';
import { grantedLogins } from '../../policy/index.js';
import { tokenIssuedEvent, type ClientFacts } from './audit-events.js';
import type { GatewayServices } from './context.js';

/**
 * Database access as the `/db` page and the CLI login hand it out (DESIGN.md §2 "Postgres
 * access"): where to connect, which databases the caller's roles reach, and a fresh database
 * token that is recorded (`token.issued`, durable) before anyone sees it.
 */

/** A Postgres resource the principal may reach, with the logins policy grants on it. */
export interface ReachableDatabase {
  readonly name: string;
  readonly logins: readonly string[];
  /** A ready `psql` command (without the password). */
  readonly psql: string;
}

/** Where a client connects to the gateway's Postgres listener, as seen from outside. */
export interface PostgresEndpoint {
  /** The host of `server.public_url`. */
  readonly host: string;
  /** The port of `server.postgres.listen`. */
  readonly port: number;
  /** `require` when the listener speaks TLS, `disable` on a cleartext loopback listener. */
  readonly sslmode: 'require' | 'disable';
}

export interface DatabaseAccess {
  readonly endpoint: PostgresEndpoint;
  /** The Postgres user name to connect as: the principal's email, or its subject. */
  readonly user: string;
  readonly databases: readonly ReachableDatabase[];
}

export type DatabaseAccessResult =
  | { readonly ok: true; readonly access: DatabaseAccess }
  | { readonly ok: false; readonly reason: 'no-postgres-listener' | 'no-db-tokens' | 'no-databases'; readonly message: string };

/** What `principal` may reach behind this gateway, or why no token would be of use to them. */
export function databaseAccess(services: GatewayServices, principal: Principal): DatabaseAccessResult {
  const listener = services.config.server.postgres;
  if (listener === undefined) return { ok: false, reason: 'no-postgres-listener', message: 'This gateway has no PostgreSQL listener.' };
  if (services.identity.dbTokens === null) {
    return { ok: false, reason: 'no-db-tokens', message: 'Database tokens are not configured on this gateway (identity.db_tokens.signing_key).' };
  }
  const endpoint: PostgresEndpoint = {
    host: new URL(services.config.server.public_url).hostname.replace(/^\[|\]$/g, ''),
    port: splitHostPort(listener.listen).port,
    sslmode: listener.tls === undefined ? 'disable' : 'require',
  };
  const user = principal.email ?? principal.subject;
  const databases = services.config.resources
    .filter((resource): resource is PostgresResourceConfig => resource.kind === 'postgres')
    .map((resource) => ({ name: resource.name, logins: grantedLogins(services.policy, principal, resource.name) }))
    .filter((db) => db.logins.length > 0)
    .map((db) => ({
      ...db,
      psql: psqlCommand({ host: endpoint.host, port: endpoint.port, dbname: db.name, user, sslmode: endpoint.sslmode }),
    }));
  if (databases.length === 0) return { ok: false, reason: 'no-databases', message: 'Your roles grant no access to any database behind this gateway.' };
  return { ok: true, access: { endpoint, user, databases } };
}

/** Conninfo values that need no quoting (RFC-style hosts, database names, typical e-mail addresses). */
const PLAIN_CONNINFO_VALUE = /^[A-Za-z0-9@._+:-]+$/;
/** Characters a POSIX shell interprets inside double quotes (and `!`, bash's history expansion). */
const SHELL_SPECIAL_IN_DOUBLE_QUOTES = /[$`"\\!]/;

/**
 * The `psql` command line for `params`, safe to paste into a POSIX shell whatever the values hold:
 * each value is quoted for libpq's conninfo syntax when it needs it (single quotes, `\'` and `\\`
 * inside), and the conninfo is wrapped in double quotes when the shell would leave it alone
 * there, in single quotes otherwise (an e-mail address may hold `$(…)` or a backtick, which the
 * shell would run inside double quotes).
 */
export function psqlCommand(params: Readonly<Record<string, string | number>>): string {
  const conninfo = Object.entries(params)
    .map(([key, value]) => {
      const text = String(value);
      return `${key}=${PLAIN_CONNINFO_VALUE.test(text) ? text : `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`}`;
    })
    .join(' ');
  return SHELL_SPECIAL_IN_DOUBLE_QUOTES.test(conninfo) ? `psql '${conninfo.replaceAll("'", `'\\''`)}'` : `psql "${conninfo}"`;
}

/** Where a token was handed out, as `token.issued` records it. */
export type TokenIssuedVia = 'db-page' | 'cli-login';

export interface RecordedTokenInput {
  readonly principal: Principal;
  /** The browser session behind the request, when there is one. */
  readonly sessionRef: string | undefined;
  readonly client: ClientFacts;
  readonly via: TokenIssuedVia;
}

export type RecordedTokenResult =
  | { readonly ok: true; readonly token: string; readonly tokenId: string; readonly expiresAt: number }
  | { readonly ok: false; readonly reason: 'not-issued'; readonly detail: string }
  /** The record could not be made durable: the token was never shown and is worthless to nobody. */
  | { readonly ok: false; readonly reason: 'audit-unavailable' };

/**
 * Issues a database token for `principal` with the configured lifetime and makes its
 * `token.issued` record durable; only then is the token returned.
 */
export async function issueRecordedDbToken(services: GatewayServices, input: RecordedTokenInput): Promise<RecordedTokenResult> {
  const issued = services.identity.issueDbToken(input.principal);
  if (!issued.ok) return { ok: false, reason: 'not-issued', detail: issued.reason };
  const event = tokenIssuedEvent(input.principal, issued.tokenId, issued.expiresAt, input.sessionRef, input.client);
  try {
    await services.record(input.via === 'db-page' ? event : { ...event, data: { ...event.data, issued_via: input.via } });
  } catch {
    return { ok: false, reason: 'audit-unavailable' };
  }
  return { ok: true, token: issued.token, tokenId: issued.tokenId, expiresAt: issued.expiresAt };
}
