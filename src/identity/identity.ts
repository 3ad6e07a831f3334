import { TollgateError, silentLogger, systemClock, type Clock, type Logger, type Principal } from '../core/index.js';
import { BearerVerifier, type BearerResult } from './bearer.js';
import { DbTokens, type IssueDbTokenResult, type VerifyDbTokenResult } from './db-token.js';
import { RelyingParty, discoverIssuer, type BeginLoginRequest, type BeginLoginResult, type LoginResult, type OidcIssuer, type RefreshResult } from './oidc.js';
import { bearerSettings, checkDbTokenKey, checkSessionKeys, gatewayUrls, type IdentityOptions } from './options.js';
import { SessionCookies, type Session, type SessionReadResult } from './session.js';

/** Injected dependencies; every one has a production default. */
export interface IdentityDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Timeout of each request to the IdP in milliseconds (discovery, token, UserInfo). Default 10 s. */
  readonly idpTimeoutMs?: number;
  /** Minimum time between JWKS re-fetches for unknown key ids, in milliseconds. Default 30 s. */
  readonly jwksCooldownMs?: number;
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
 * discovers the IdP (throws `TG_ERR_IDENTITY_DISCOVERY` when it cannot), then wires the relying
 * party, the cookies, the bearer verifier and, when a signing key is configured, database tokens.
 */
export async function createIdentity(options: IdentityOptions, deps: IdentityDeps = {}): Promise<Identity> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? silentLogger;
  const bearer = bearerSettings(options.identity);
  const cookies = createSessionCookies(options, { clock });
  const dbTokens = options.identity.db_tokens.signing_key === undefined ? null : createDbTokens(options, { clock });
  const issuer = await discoverIssuer(options, deps.idpTimeoutMs === undefined ? {} : { timeoutMs: deps.idpTimeoutMs });
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
  return new Identity(issuer, relyingParty, cookies, verifier, dbTokens);
}

/**
 * The identity room's façade. Each method delegates to the part that owns it; the parts are
 * exposed too for callers that want one of them only.
 */
export class Identity {
  constructor(
    readonly issuer: OidcIssuer,
    readonly relyingParty: RelyingParty,
    readonly cookies: SessionCookies,
    readonly bearer: BearerVerifier,
    readonly dbTokens: DbTokens | null,
  ) {}

  /** See {@link RelyingParty.beginLogin}. */
  beginLogin(request: BeginLoginRequest = {}): Promise<BeginLoginResult> {
    return this.relyingParty.beginLogin(request);
  }

  /** See {@link RelyingParty.completeLogin}. */
  completeLogin(callbackUrl: string | URL, pendingCookieValue: string | undefined, returnHosts?: Iterable<string>): Promise<LoginResult> {
    return this.relyingParty.completeLogin(callbackUrl, pendingCookieValue, returnHosts);
  }

  /** See {@link RelyingParty.needsRefresh}. */
  needsRefresh(session: Session): boolean {
    return this.relyingParty.needsRefresh(session);
  }

  /** See {@link RelyingParty.refreshAt}. */
  refreshAt(session: Session): number | null {
    return this.relyingParty.refreshAt(session);
  }

  /** See {@link RelyingParty.refreshSession}. */
  refreshSession(session: Session): Promise<RefreshResult> {
    return this.relyingParty.refreshSession(session);
  }

  /** See {@link RelyingParty.logoutUrl}. */
  logoutUrl(session: Session | undefined, postLogoutRedirect?: string): string | null {
    return this.relyingParty.logoutUrl(session, postLogoutRedirect);
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

  /** See {@link BearerVerifier.verifyBearer}. */
  verifyBearer(token: string): Promise<BearerResult> {
    return this.bearer.verifyBearer(token);
  }

  /** See {@link DbTokens.issueDbToken}; throws `TG_ERR_CONFIG_INVALID` without a signing key. */
  issueDbToken(principal: Principal, ttlMs?: number): IssueDbTokenResult {
    return this.#dbTokens().issueDbToken(principal, ttlMs);
  }

  /** See {@link DbTokens.verifyDbToken}; throws `TG_ERR_CONFIG_INVALID` without a signing key. */
  verifyDbToken(token: string): VerifyDbTokenResult {
    return this.#dbTokens().verifyDbToken(token);
  }

  #dbTokens(): DbTokens {
    if (this.dbTokens === null) {
      throw new TollgateError('TG_ERR_CONFIG_INVALID', 'identity.db_tokens.signing_key: required to issue or verify database tokens; set it to a secret reference');
    }
    return this.dbTokens;
  }
}
