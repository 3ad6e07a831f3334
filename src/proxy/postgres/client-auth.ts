import type { Duplex } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { PostgresListenerConfig, PostgresLoginConfig, PostgresResourceConfig } from '../../config/index.js';
import type { Clock, Principal } from '../../core/index.js';
import type { BearerResult, VerifyDbTokenResult } from '../../identity/index.js';
import { grantedLogins, type PolicySource } from '../../policy/index.js';
import { isHarmlessSetting } from '../../sql/index.js';
import { fatalResponse, protocolViolation, type ClientError } from './errors.js';
import { CLOSED, type SocketInbox } from './inbox.js';
import {
  decodePasswordMessage,
  encodeAuthenticationCleartextPassword,
  SQLSTATE,
  type FrontendMessage,
  type StartupMessage,
} from './protocol/index.js';

/** What the gateway needs from the identity room to check a password. */
export interface PgTokenVerifier {
  /** Database tokens (`tgdb_…`), always accepted. */
  verifyDbToken(token: string): VerifyDbTokenResult;
  /** OIDC access or ID tokens, used only when `server.postgres.accept_oidc_tokens` is true. */
  verifyBearer?(token: string): Promise<BearerResult>;
}

/** The startup option that picks an upstream login: `options=-c tollgate.login=writer`. */
export const LOGIN_OPTION = 'tollgate.login';
const DB_TOKEN_PREFIX = 'tgdb_';

export interface ClientAuthContext {
  readonly listener: PostgresListenerConfig;
  readonly resources: ReadonlyMap<string, PostgresResourceConfig>;
  /** Read once the token is verified: the login is picked by the policy in force then. */
  readonly policy: PolicySource;
  readonly tokens: PgTokenVerifier;
  readonly limiter: AuthFailureLimiter;
  readonly remote: string;
}

export interface ClientAuthSuccess {
  readonly ok: true;
  readonly principal: Principal;
  readonly auth: 'db-token' | 'oidc';
  readonly tokenId: string | undefined;
  readonly resource: PostgresResourceConfig;
  readonly login: PostgresLoginConfig;
  /** The startup parameters to send upstream (user and database excluded). */
  readonly params: ReadonlyMap<string, string>;
}

export interface ClientAuthFailure {
  readonly ok: false;
  /** The FATAL ErrorResponse to send, or `null` when the client is gone. */
  readonly reply: Buffer | null;
  /** Stable reason for the `auth.failure` record and the metric. */
  readonly reason: string;
  readonly detail?: string;
  readonly principal?: Principal;
  /** Whether to write an `auth.failure` record (not for a client that just went away). */
  readonly audit: boolean;
}

export type ClientAuthResult = ClientAuthSuccess | ClientAuthFailure;

/**
 * Authenticates a client after its StartupMessage (PostgreSQL docs §55.2.1 "Start-up"): asks for
 * a cleartext password (AuthenticationCleartextPassword; only inside TLS, or on loopback when the
 * config allows it), takes it as a database token (or an OIDC token when enabled), requires the
 * startup `user` to be the token's subject or email, resolves the startup `database` to a
 * Postgres resource and picks the upstream login policy grants. Nothing is sent upstream here.
 */
export async function authenticateClient(
  socket: Duplex,
  inbox: SocketInbox<FrontendMessage>,
  startup: StartupMessage,
  tls: boolean,
  context: ClientAuthContext,
): Promise<ClientAuthResult> {
  const params = startup.params;
  const user = params.get('user');
  if (user === undefined || user === '') {
    return refuse('no-user', { code: SQLSTATE.invalid_authorization_specification, message: 'no PostgreSQL user name specified in startup packet', hint: 'Connect with user=<your email>.' });
  }
  const database = params.get('database') || user;
  const replication = params.get('replication');
  if (replication !== undefined && !['false', 'off', 'no', '0'].includes(replication.toLowerCase())) {
    return refuse('replication-refused', { code: SQLSTATE.feature_not_supported, message: 'replication connections are not supported by the gateway' });
  }
  const blockedMs = context.limiter.blockedFor(context.remote);
  if (blockedMs > 0) {
    return refuse('rate-limited', {
      code: SQLSTATE.invalid_authorization_specification,
      message: `too many failed logins from ${context.remote}; try again in ${Math.ceil(blockedMs / 1000)} s`,
    });
  }
  if (!tls && !(context.listener.allow_cleartext_on_loopback && isLoopbackAddress(context.remote))) {
    return refuse('tls-required', {
      code: SQLSTATE.invalid_authorization_specification,
      message: 'the gateway accepts tokens only over TLS',
      hint: 'Connect with sslmode=require (or verify-full).',
    });
  }

  // §55.2.1: AuthenticationCleartextPassword, answered by a PasswordMessage.
  socket.write(encodeAuthenticationCleartextPassword());
  const answer = await inbox.next();
  if (answer.type === CLOSED.type) return { ok: false, reply: null, reason: 'closed-during-auth', audit: false };
  if (answer.type === 'ProtocolError') return { ok: false, reply: protocolViolation(answer.message), reason: answer.code, audit: true };
  if (answer.type !== 'AuthenticationResponse') {
    return { ok: false, reply: protocolViolation(`expected a password message, got ${answer.type}`), reason: 'unexpected-message', audit: true };
  }
  const decoded = decodePasswordMessage(answer.payload);
  if ('type' in decoded) return { ok: false, reply: protocolViolation(decoded.message), reason: decoded.code, audit: true };

  const verified = await verifyPassword(decoded.password, user, context);
  if (!verified.ok) {
    context.limiter.recordFailure(context.remote);
    return { ...verified, ok: false, audit: true };
  }
  const { principal } = verified;
  if (!userMatches(user, principal)) {
    context.limiter.recordFailure(context.remote);
    return refuse(
      'user-mismatch',
      {
        code: SQLSTATE.invalid_authorization_specification,
        message: `user "${user}" does not match the token, which belongs to ${principal.email ?? principal.subject}`,
        hint: 'Connect with user=<the email the token was issued to>.',
      },
      principal,
    );
  }

  const resource = context.resources.get(database);
  if (resource === undefined) {
    return refuse(
      'unknown-resource',
      { code: SQLSTATE.invalid_catalog_name, message: `database "${database}" does not exist: it names no Postgres resource of this gateway` },
      principal,
    );
  }
  const options = parseStartupOptions(params.get('options') ?? '');
  if (options === null) {
    return refuse('bad-options', { code: SQLSTATE.invalid_parameter_value, message: 'the startup "options" parameter is malformed' }, principal);
  }
  const setting = refusedStartupSetting(params, options.rest);
  if (setting !== null) {
    return refuse(
      'startup-setting-refused',
      {
        code: SQLSTATE.insufficient_privilege,
        message: `tollgate: the startup setting "${setting}" is not passed to the database`,
        hint: 'Only settings that change formatting, timeouts or transaction modes may come with the login; set others with SET in the session, where policy decides them.',
      },
      principal,
    );
  }
  const granted = grantedLogins(context.policy.current(), principal, resource.name);
  if (granted.length === 0) {
    return refuse(
      'no-login-granted',
      { code: SQLSTATE.invalid_authorization_specification, message: `your roles grant no login on "${resource.name}"`, hint: 'Ask for a role that allows this resource.' },
      principal,
    );
  }
  const loginName = options.login ?? granted[0];
  if (loginName === undefined || !granted.includes(loginName)) {
    return refuse(
      'login-not-granted',
      {
        code: SQLSTATE.invalid_authorization_specification,
        message: `login "${loginName}" is not granted to you on "${resource.name}"`,
        detail: `Granted logins: ${granted.join(', ')}.`,
      },
      principal,
    );
  }
  const login = resource.logins.find((candidate) => candidate.name === loginName) as PostgresLoginConfig;
  return {
    ok: true,
    principal,
    auth: verified.auth,
    tokenId: verified.tokenId,
    resource,
    login,
    params: upstreamParams(params, options.rest),
  };
}

function refuse(reason: string, error: ClientError, principal?: Principal): ClientAuthFailure {
  return { ok: false, reply: fatalResponse(error), reason, audit: true, ...(principal === undefined ? {} : { principal }) };
}

type Verified =
  | { readonly ok: true; readonly principal: Principal; readonly auth: 'db-token' | 'oidc'; readonly tokenId: string | undefined }
  | { readonly ok: false; readonly reply: Buffer; readonly reason: string };

async function verifyPassword(password: string, user: string, context: ClientAuthContext): Promise<Verified> {
  const failed = (reason: string, message: string, hint?: string): Verified => ({
    ok: false,
    reason,
    reply: fatalResponse({ code: SQLSTATE.invalid_password, message, ...(hint === undefined ? {} : { hint }) }),
  });
  if (password.startsWith(DB_TOKEN_PREFIX)) {
    const result = context.tokens.verifyDbToken(password);
    if (result.ok) return { ok: true, principal: result.principal, auth: 'db-token', tokenId: result.tokenId };
    if (result.reason === 'expired') {
      return failed('token-expired', `the database token for user "${user}" has expired`, 'Get a new one with `tollgate login` or on the gateway\'s /db page.');
    }
    return failed(`token-${result.reason}`, `password authentication failed for user "${user}": not a valid database token`);
  }
  if (context.listener.accept_oidc_tokens && context.tokens.verifyBearer !== undefined) {
    const result = await context.tokens.verifyBearer(password);
    if (result.ok) return { ok: true, principal: result.principal, auth: 'oidc', tokenId: result.tokenId };
    return failed(`oidc-${result.reason}`, `password authentication failed for user "${user}": the OIDC token was refused (${result.reason})`);
  }
  return failed(
    'not-a-token',
    `password authentication failed for user "${user}": the password must be a database token`,
    'Get one with `tollgate login` or on the gateway\'s /db page.',
  );
}

function userMatches(user: string, principal: Principal): boolean {
  if (user === principal.subject) return true;
  return principal.email !== undefined && user.toLowerCase() === principal.email.toLowerCase();
}

/** Startup parameters that never go upstream as the client sent them. */
const GATEWAY_PARAMS = new Set(['user', 'database', 'options', 'replication', 'client_encoding']);

/**
 * The parameters sent upstream: the client's own (application_name, DateStyle, ...) with the
 * login's user and the resource's database set by the caller. `client_encoding` is always UTF8:
 * the gateway classifies the text it forwards, so it must read it in the encoding the server does.
 */
function upstreamParams(params: ReadonlyMap<string, string>, options: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of params) {
    if (GATEWAY_PARAMS.has(name) || name.startsWith('_pq_.')) continue;
    out.set(name, value);
  }
  out.set('client_encoding', 'UTF8');
  if (options.length > 0) out.set('options', options.map(escapeOption).join(' '));
  return out;
}

/**
 * Splits the `options` startup parameter as the server does (pg_split_opts): arguments are
 * separated by whitespace, and a backslash takes the next character literally. Pulls out
 * `-c tollgate.login=NAME` (also `-ctollgate.login=NAME` and `--tollgate.login=NAME`); the other
 * arguments are returned unchanged. `null` for a dangling `-c`.
 */
export function parseStartupOptions(text: string): { login?: string; rest: string[] } | null {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '\\' && i + 1 < text.length) {
      current += text[++i];
      inArg = true;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (inArg) args.push(current);

  const rest: string[] = [];
  let login: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    let setting: string | null = null;
    let consumed: string[] = [arg];
    if (arg === '-c') {
      const next = args[i + 1];
      if (next === undefined) return null;
      setting = next;
      consumed = [arg, next];
      i++;
    } else if (arg.startsWith('-c')) {
      setting = arg.slice(2);
    } else if (arg.startsWith('--')) {
      setting = arg.slice(2);
    }
    const eq = setting?.indexOf('=') ?? -1;
    if (setting !== null && eq > 0 && setting.slice(0, eq).replaceAll('-', '_').toLowerCase() === LOGIN_OPTION) {
      login = setting.slice(eq + 1);
      continue;
    }
    rest.push(...consumed);
  }
  return login === undefined ? { rest } : { login, rest };
}

/**
 * The first setting the client asked for at startup that may not reach the server, or `null`.
 * Settings given at startup never pass through statement policy, so only the harmless ones the
 * `sql` room lets any reader `SET` are forwarded: anything else (`search_path`, `role`,
 * `standard_conforming_strings`, ...) could change which tables a statement names, or how the
 * server reads the text the gateway classified. In `options`, the server takes `-c name=value` and
 * `--name=value` with dashes as underscores (PostgreSQL docs §20.1.4); any other switch is refused.
 */
export function refusedStartupSetting(params: ReadonlyMap<string, string>, options: readonly string[]): string | null {
  for (const name of params.keys()) {
    if (GATEWAY_PARAMS.has(name) || name.startsWith('_pq_.')) continue;
    if (!isHarmlessSetting(name)) return name;
  }
  for (let i = 0; i < options.length; i++) {
    const arg = options[i] as string;
    const setting = arg === '-c' ? (options[++i] ?? '') : arg.startsWith('-c') ? arg.slice(2) : arg.startsWith('--') ? arg.slice(2) : null;
    if (setting === null) return arg;
    const eq = setting.indexOf('=');
    const name = (eq > 0 ? setting.slice(0, eq) : setting).replaceAll('-', '_');
    if (eq <= 0 || !isHarmlessSetting(name)) return name;
  }
  return null;
}

function escapeOption(arg: string): string {
  return arg.replace(/[\\\s]/g, (ch) => `\\${ch}`);
}

/** Whether a peer address is on this machine (127.0.0.0/8, ::1, or their IPv4-mapped forms). */
export function isLoopbackAddress(address: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain === '::1' || /^127\.\d+\.\d+\.\d+$/.test(plain);
}

/**
 * Failed logins per source address in a sliding window (`server.postgres.auth_failures`). An
 * address with `max` failures inside the window is refused before its password is even asked
 * for, until the oldest failure leaves the window. Memory is bounded: the least recently seen
 * addresses are forgotten first.
 */
export class AuthFailureLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #failures: LRUCache<string, number[]>;

  constructor(max: number, windowMs: number, clock: Clock, maxAddresses = 100_000) {
    this.#max = max;
    this.#windowMs = windowMs;
    this.#clock = clock;
    this.#failures = new LRUCache({ max: maxAddresses });
  }

  /** Milliseconds until `address` may try again; 0 when it may now. */
  blockedFor(address: string): number {
    const recent = this.#recent(address);
    if (recent.length < this.#max) return 0;
    return Math.max(1, (recent[recent.length - this.#max] as number) + this.#windowMs - this.#clock.now());
  }

  recordFailure(address: string): void {
    const recent = this.#recent(address);
    recent.push(this.#clock.now());
    // Only the newest `max` failures can ever decide a block.
    if (recent.length > this.#max) recent.splice(0, recent.length - this.#max);
    this.#failures.set(address, recent);
  }

  #recent(address: string): number[] {
    const times = this.#failures.get(address);
    if (times === undefined) return [];
    const since = this.#clock.now() - this.#windowMs;
    const kept = times.filter((time) => time > since);
    if (kept.length === 0) this.#failures.delete(address);
    return kept;
  }
}
