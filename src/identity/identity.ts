import { TollgateError, isTollgateError, silentLogger, systemClock, type Clock, type Logger, type Principal } from '../core/index.js';
import { BearerVerifier, type BearerResult } from './bearer.js';
import { DbTokens, type IssueDbTokenResult, type VerifyDbTokenResult } from './db-token.js';
import {
  RelyingParty,
  checkRelyingPartyOptions,
  discoverIssuer,
  sessionNeedsRefresh,
  sessionRefreshAt,
  type BeginLoginRequest,
  type BeginLoginResult,
  type LoginResult,
  type OidcIssuer,
  type RefreshResult,
} from './oidc.js';
import { bearerSettings, checkDbTokenKey, checkSessionKeys, gatewayUrls, type IdentityOptions } from './options.js';
import { DISCOVERY_BACKOFF, RetryLoop, type BackoffSettings, type Timers } from './retry.js';
import { SessionCookies, type Session, type SessionReadResult } from './session.js';

/** Injected dependencies; every one has a production default. */
export interface IdentityDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Timeout of each request to the IdP in milliseconds (discovery, token, UserInfo). Default 10 s. */
  readonly idpTimeoutMs?: number;
  /** Minimum time between JWKS re-fetches for unknown key ids, in milliseconds. Default 30 s. */
  readonly jwksCooldownMs?: number;
  /** Waits between discovery attempts while the IdP cannot be reached. Default {@link DISCOVERY_BACKOFF}. */
  readonly discoveryBackoff?: BackoffSettings;
  /** Timers of the discovery retries. Default Node's, unreferenced. */
  readonly timers?: Timers;
}

/**
 * The session and pending-login cookies for a config. Needs no IdP, so the audit pages and the
 * CLI can read sessions without discovery. Throws `TG_ERR_CONFIG_INVALID` for short keys.
 */
export function createSessionCookies(options: IdentityOptions, deps: Pick<IdentityDeps, 'clock'> = {}): SessionCookies {
  const { session } = options.identity;
  checkSessionKeys(session.keys);
  const settings = { keys: session.keys, cookieName: session.cookie_name, secure: gatewayUrls(options).secure, domain: session.cookie_domain };
  return new SessionCookies(settings, deps.clock ?? systemClock);
}

/**
 * Database-token issuing and verification. Needs no IdP (`tollgate token mint` works offline).
 * Throws `TG_ERR_CONFIG_INVALID` when `db_tokens.signing_key` is missing or short.
 */
export function createDbTokens(options: IdentityOptions, deps: Pick<IdentityDeps, 'clock'> = {}): DbTokens {
  const { db_tokens: settings } = options.identity;
  const signingKey = checkDbTokenKey(settings.signing_key);
  return new DbTokens({ signingKey, ttlMs: settings.ttl, maxTtlMs: settings.max_ttl }, deps.clock ?? systemClock);
}

/**
 * Everything the proxies and the web pages need from the identity room, built once at startup:
 * the cookies, database tokens when a signing key is configured, and the parts that need the IdP
 * (relying party, bearer verifier), wired once its issuer is discovered.
 *
 * Discovery is tried once before this resolves, bounded by `idpTimeoutMs`. When it fails because
 * the IdP is down (no answer, a 5xx, 408 or 429; see `isDiscoveryOutage`), the identity starts
 * undiscovered and keeps discovering in the background with capped exponential backoff and
 * jitter; until it succeeds, what needs the IdP answers `idp-unavailable` ({@link
 * Identity.unavailable}) and the rest (session cookies, database tokens) works as usual. When the
 * IdP answered and what it said is wrong (a 404, metadata naming another issuer, no JSON, a
 * certificate the gateway does not trust), the config is what needs fixing: this throws
 * `TG_ERR_IDENTITY_DISCOVERY` at once, so that a mistyped `identity.issuer` stops the start
 * instead of leaving an unready gateway. Config errors throw `TG_ERR_CONFIG_INVALID`.
 * Close the identity ({@link Identity.close}) to stop the retries.
 */
export async function createIdentity(options: IdentityOptions, deps: IdentityDeps = {}): Promise<Identity> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? silentLogger;
  const bearer = bearerSettings(options.identity);
  checkRelyingPartyOptions(options);
  const cookies = createSessionCookies(options, { clock });
  const dbTokens = options.identity.db_tokens.signing_key === undefined ? null : createDbTokens(options, { clock });
  const discoveryDeps = deps.idpTimeoutMs === undefined ? {} : { timeoutMs: deps.idpTimeoutMs };
  const connect = async (): Promise<IdpParts> => {
    const issuer = await discoverIssuer(options, discoveryDeps);
    const relyingParty = new RelyingParty(options, issuer, cookies, { clock, logger: logger.child({ component: 'oidc' }) });
    const verifier = new BearerVerifier(
      {
        enabled: options.identity.bearer.enabled,
        issuer: issuer.issuer,
        jwksUri: issuer.jwksUri,
        audiences: bearer.audiences,
        algorithms: bearer.algorithms,
        clockSkewMs: bearer.clockSkewMs,
        claims: options.identity.claims,
      },
      { clock, ...(deps.jwksCooldownMs === undefined ? {} : { jwksCooldownMs: deps.jwksCooldownMs }) },
    );
    return { issuer, relyingParty, bearer: verifier };
  };
  let first: IdpParts | TollgateError;
  try {
    first = await connect();
  } catch (error) {
    if (!isTollgateError(error, 'TG_ERR_IDENTITY_DISCOVERY') || error.details['outage'] !== true) throw error;
    first = error;
  }
  return new Identity(
    {
      cookies,
      dbTokens,
      clock,
      logger,
      issuer: options.identity.issuer,
      connect,
      backoff: deps.discoveryBackoff ?? DISCOVERY_BACKOFF,
      ...(deps.timers === undefined ? {} : { timers: deps.timers }),
    },
    first,
  );
}

/** The parts of the identity room that exist only once the IdP is discovered. */
export interface IdpParts {
  readonly issuer: OidcIssuer;
  readonly relyingParty: RelyingParty;
  readonly bearer: BearerVerifier;
}

/** What an {@link Identity} is made of; {@link createIdentity} assembles it from the config. */
export interface IdentityParts {
  readonly cookies: SessionCookies;
  readonly dbTokens: DbTokens | null;
  readonly clock: Clock;
  readonly logger: Logger;
  /** `identity.issuer` as configured, named while it is not discovered. */
  readonly issuer: string;
  /** One discovery attempt: discovers the issuer and wires the parts that need it. */
  readonly connect: () => Promise<IdpParts>;
  readonly backoff: BackoffSettings;
  readonly timers?: Timers;
}

/** Whether the IdP has been discovered, for readiness checks and operators. */
export type DiscoveryState =
  | { readonly status: 'discovered'; readonly issuer: string }
  | {
      readonly status: 'pending';
      /** The configured issuer. */
      readonly issuer: string;
      /** Failed discovery attempts so far. */
      readonly failures: number;
      /** Why the last attempt failed, in a few words (never a secret). */
      readonly lastError: string;
      /** When the next attempt starts (ms since the epoch); `null` while one runs or after close. */
      readonly nextAttemptAt: number | null;
    };

/**
 * The answer for anything that needs the IdP before it is discovered: the caller answers `503`
 * with `Retry-After`, never as though the user were not logged in.
 */
export interface IdpUnavailable {
  readonly ok: false;
  readonly reason: 'idp-unavailable';
  /** Why the last discovery attempt failed, for logs and operators; not for end users. */
  readonly detail: string;
  /** Seconds until the next discovery attempt, at least 1: the `Retry-After` to send. */
  readonly retryAfterSeconds: number;
}

/**
 * The identity room's façade. Each method delegates to the part that owns it. The cookies and
 * database tokens work from the start; logins, refreshes and bearer tokens need the IdP, which
 * may be discovered only after startup ({@link discovery}, {@link unavailable}).
 */
export class Identity {
  readonly cookies: SessionCookies;
  readonly dbTokens: DbTokens | null;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #configuredIssuer: string;
  #idp: IdpParts | null = null;
  #lastError = '';
  readonly #retry: RetryLoop<IdpParts> | null = null;

  /**
   * @param first the outcome of the first discovery attempt: the parts, or the outage that
   *   failed it, after which discovery goes on in the background.
   */
  constructor(parts: IdentityParts, first: IdpParts | TollgateError) {
    this.cookies = parts.cookies;
    this.dbTokens = parts.dbTokens;
    this.#clock = parts.clock;
    this.#logger = parts.logger;
    this.#configuredIssuer = parts.issuer;
    if (!(first instanceof TollgateError)) {
      this.#idp = first;
      return;
    }
    this.#retry = new RetryLoop(parts.connect, {
      backoff: parts.backoff,
      clock: parts.clock,
      ...(parts.timers === undefined ? {} : { timers: parts.timers }),
      onFailure: (error, failures, retryInMs) => this.#failed(error, failures, retryInMs),
      onSuccess: (idp, attempts) => this.#discovered(idp, attempts),
    });
    this.#failed(first, 1, this.#retry.start(1));
  }

  /** Whether the IdP is discovered, and if not, why and when it is tried next. */
  get discovery(): DiscoveryState {
    if (this.#idp !== null) return { status: 'discovered', issuer: this.#idp.issuer.issuer };
    return {
      status: 'pending',
      issuer: this.#configuredIssuer,
      failures: this.#retry?.failures ?? 0,
      lastError: this.#lastError,
      nextAttemptAt: this.#retry?.nextAttemptAt ?? null,
    };
  }

  /** The discovered issuer, or `null` before discovery. */
  get issuer(): OidcIssuer | null {
    return this.#idp?.issuer ?? null;
  }

  /**
   * `null` once the IdP is discovered (from then on it stays so); before, the answer to give
   * whatever needs it. Call it before {@link beginLogin} and {@link refreshSession}.
   */
  unavailable(): IdpUnavailable | null {
    if (this.#idp !== null) return null;
    const next = this.#retry?.nextAttemptAt ?? null;
    const retryAfterSeconds = next === null ? 1 : Math.max(1, Math.ceil((next - this.#clock.now()) / 1000));
    return { ok: false, reason: 'idp-unavailable', detail: this.#lastError, retryAfterSeconds };
  }

  /** Stops discovering (no timer is left); an attempt in progress is ignored when it ends. */
  close(): void {
    this.#retry?.close();
  }

  /**
   * See {@link RelyingParty.beginLogin}. Needs the IdP: rejects with `TG_ERR_IDENTITY_DISCOVERY` while
   * {@link unavailable} is not `null`.
   */
  beginLogin(request: BeginLoginRequest = {}): Promise<BeginLoginResult> {
    const idp = this.#idp;
    if (idp === null) return Promise.reject(this.#notDiscovered());
    return idp.relyingParty.beginLogin(request);
  }

  /** See {@link RelyingParty.completeLogin}; `idp-unavailable` (the pending login stays) before discovery. */
  completeLogin(callbackUrl: string | URL, pendingCookieValue: string | undefined, returnHosts?: Iterable<string>): Promise<LoginResult> {
    const idp = this.#idp;
    if (idp === null) return Promise.resolve({ ok: false, reason: 'idp-unavailable', setCookies: [] });
    return idp.relyingParty.completeLogin(callbackUrl, pendingCookieValue, returnHosts);
  }

  /** See {@link RelyingParty.needsRefresh}; needs no IdP. */
  needsRefresh(session: Session): boolean {
    return sessionNeedsRefresh(session, this.#clock.now());
  }

  /** See {@link RelyingParty.refreshAt}; needs no IdP. */
  refreshAt(session: Session): number | null {
    return sessionRefreshAt(session);
  }

  /**
   * See {@link RelyingParty.refreshSession}. Needs the IdP: rejects with `TG_ERR_IDENTITY_DISCOVERY`
   * while {@link unavailable} is not `null` (a refresh that cannot be tried must not end the session).
   */
  refreshSession(session: Session): Promise<RefreshResult> {
    const idp = this.#idp;
    if (idp === null) return Promise.reject(this.#notDiscovered());
    return idp.relyingParty.refreshSession(session);
  }

  /** See {@link RelyingParty.logoutUrl}; `null` before discovery, so that logout still ends the local session. */
  logoutUrl(session: Session | undefined, postLogoutRedirect?: string): string | null {
    return this.#idp?.relyingParty.logoutUrl(session, postLogoutRedirect) ?? null;
  }

  /** See {@link SessionCookies.readSessionCookie}. */
  readSessionCookie(cookieHeader: string | readonly string[] | undefined): SessionReadResult {
    return this.cookies.readSessionCookie(cookieHeader);
  }

  /** See {@link SessionCookies.serializeSessionCookie}. */
  serializeSessionCookie(session: Session): string {
    return this.cookies.serializeSessionCookie(session);
  }

  /** See {@link SessionCookies.clearSessionCookie}. */
  clearSessionCookie(): string {
    return this.cookies.clearSessionCookie();
  }

  /** See {@link SessionCookies.pendingCookieValue}. */
  pendingCookieValue(cookieHeader: string | readonly string[] | undefined): string | undefined {
    return this.cookies.pendingCookieValue(cookieHeader);
  }

  /** See {@link BearerVerifier.verifyBearer}; `idp-unavailable` before discovery. */
  verifyBearer(token: string): Promise<BearerResult> {
    const idp = this.#idp;
    if (idp === null) return Promise.resolve({ ok: false, reason: 'idp-unavailable' });
    return idp.bearer.verifyBearer(token);
  }

  /** See {@link DbTokens.issueDbToken}; throws `TG_ERR_CONFIG_INVALID` without a signing key. */
  issueDbToken(principal: Principal, ttlMs?: number): IssueDbTokenResult {
    return this.#dbTokens().issueDbToken(principal, ttlMs);
  }

  /** See {@link DbTokens.verifyDbToken}; throws `TG_ERR_CONFIG_INVALID` without a signing key. */
  verifyDbToken(token: string): VerifyDbTokenResult {
    return this.#dbTokens().verifyDbToken(token);
  }

  #notDiscovered(): TollgateError {
    return new TollgateError('TG_ERR_IDENTITY_DISCOVERY', `the OIDC issuer ${this.#configuredIssuer} is not discovered yet; check Identity.unavailable() before using the IdP`);
  }

  #dbTokens(): DbTokens {
    if (this.dbTokens === null) {
      throw new TollgateError('TG_ERR_CONFIG_INVALID', 'identity.db_tokens.signing_key: required to issue or verify database tokens; set it to a secret reference');
    }
    return this.dbTokens;
  }

  #failed(error: unknown, failures: number, retryInMs: number): void {
    this.#lastError = failureCause(error);
    this.#logger.warn(
      { issuer: this.#configuredIssuer, attempt: failures, retryInMs, error: this.#lastError },
      `OIDC issuer ${this.#configuredIssuer} not discovered (${this.#lastError}); browser logins, bearer tokens and session refreshes are answered 503 until it is. ` +
        `Check that the IdP is up and reachable from the gateway (DNS, firewall, proxy) and that identity.issuer is right; retrying in ${Math.ceil(retryInMs / 1000)} s`,
    );
  }

  #discovered(idp: IdpParts, attempts: number): void {
    this.#idp = idp;
    this.#lastError = '';
    this.#logger.info({ issuer: idp.issuer.issuer, attempts }, 'OIDC issuer discovered; browser logins, bearer tokens and session refreshes are served');
  }
}

/** A discovery failure in a few words: `discoverIssuer`'s own summary, else the error's message. */
function failureCause(error: unknown): string {
  if (isTollgateError(error) && typeof error.details['cause'] === 'string') return error.details['cause'];
  return error instanceof Error ? error.message : String(error);
}
