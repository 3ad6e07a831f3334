import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import * as client from 'openid-client';
import { isWithinDomain } from '../config/index.js';
import { TollgateError, type Clock, type Logger, type Principal } from '../core/index.js';
import { claimAt, principalFromClaims, type ClaimPaths } from './claims.js';
import { gatewayUrls, type IdentityOptions } from './options.js';
import { DEFAULT_RETURN_TO, safeReturnTo, type AbsoluteReturnRules } from './return-to.js';
import { sessionPrincipal, type PendingLoginFailureReason, type Session, type SessionCookies } from './session.js';

/** The IdP as discovered at startup, with the client registration Tollgate uses there. */
export interface OidcIssuer {
  /** The issuer identifier exactly as the IdP states it (the `iss` of its tokens). */
  readonly issuer: string;
  readonly jwksUri: string;
  readonly endSessionEndpoint: string | undefined;
  /** The openid-client configuration; identity-room internals use it for every grant. */
  readonly configuration: client.Configuration;
}

/** Options of {@link discoverIssuer} beyond the config. */
export interface DiscoveryDeps {
  /** Timeout of each request to the IdP, in milliseconds. Default 10 s. */
  readonly timeoutMs?: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * OpenID Connect Discovery 1.0 §4: fetches `<issuer>/.well-known/openid-configuration`, checks
 * that the document names the same issuer, and prepares the client (`client_secret_basic` when
 * the IdP supports it, else `client_secret_post`; a public client with PKCE when there is no
 * secret). `http://` issuers are accepted on loopback only (the demo and tests).
 *
 * Throws `TG_ERR_IDENTITY_DISCOVERY` when the IdP is unreachable or its metadata unusable. Its
 * `details.outage` tells the two apart ({@link isDiscoveryOutage}): `true` when nothing usable
 * answered (the IdP may be down), `false` when a server answered at the configured address and
 * what it said is wrong (a configuration error); `details.cause` says why in a few words.
 */
export async function discoverIssuer(options: IdentityOptions, deps: DiscoveryDeps = {}): Promise<OidcIssuer> {
  const { identity } = options;
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(identity.issuer);
  } catch (cause) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', `identity.issuer: "${identity.issuer}" is not a URL`, { cause });
  }
  const insecure = issuerUrl.protocol === 'http:';
  if (insecure && !LOOPBACK_HOSTS.has(issuerUrl.hostname)) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', `identity.issuer: use https:// (plain http is accepted for loopback IdPs only)`);
  }
  const secret = identity.client_secret;
  const metadata: Partial<client.ClientMetadata> = {
    [client.clockTolerance]: Math.ceil(identity.bearer.clock_skew / 1000),
    ...(secret === undefined ? {} : { client_secret: secret }),
  };
  let configuration: client.Configuration;
  try {
    configuration = await client.discovery(issuerUrl, identity.client_id, metadata, clientAuthentication(secret), {
      timeout: Math.ceil((deps.timeoutMs ?? 10_000) / 1000),
      execute: insecure ? [client.allowInsecureRequests] : [],
    });
  } catch (cause) {
    const why = describe(cause);
    throw new TollgateError(
      'TG_ERR_IDENTITY_DISCOVERY',
      `could not discover the OIDC issuer ${issuerUrl.href} (${why}); check identity.issuer and that the IdP is reachable from the gateway, then start again`,
      { cause, details: { issuer: issuerUrl.href, outage: isDiscoveryOutage(cause), cause: why } },
    );
  }
  const server = configuration.serverMetadata();
  const missing = (['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const).filter((key) => server[key] === undefined);
  const jwksUri = server.jwks_uri;
  if (missing.length > 0 || jwksUri === undefined) {
    throw new TollgateError(
      'TG_ERR_IDENTITY_DISCOVERY',
      `the OIDC issuer ${server.issuer} does not advertise ${missing.join(', ')}; Tollgate needs an OpenID Connect provider with the authorization code flow`,
      { details: { issuer: server.issuer, outage: false, cause: `no ${missing.join(', ')} in its metadata` } },
    );
  }
  return { issuer: server.issuer, jwksUri, endSessionEndpoint: server.end_session_endpoint, configuration };
}

/** TLS failures that are the gateway's trust settings or the issuer's name, not an outage. */
const TLS_TRUST_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Whether a discovery failure is an outage, which may end by itself, rather than a configuration
 * error, which will not. An outage is no answer at all (connection refused or reset, a name that
 * does not resolve, an expired certificate, a timeout) or an answer that says "later" (5xx, 408,
 * 429; RFC 9110 §15.6, RFC 6585 §4). Everything else came from a server that answered at the
 * configured address with something wrong: another status (a 404 for a mistyped path), a
 * document that is not JSON or names another issuer (OIDC Discovery 1.0 §4.3), a certificate the
 * gateway does not trust or that names another host. A name that does not resolve counts as an
 * outage because orchestrators often publish the IdP's name only once it runs.
 */
export function isDiscoveryOutage(error: unknown): boolean {
  if (error instanceof TypeError) {
    const code: unknown = error.cause !== null && typeof error.cause === 'object' && 'code' in error.cause ? error.cause.code : undefined;
    return !(typeof code === 'string' && TLS_TRUST_ERRORS.has(code));
  }
  if (!(error instanceof client.ClientError)) return false;
  if (error.code === 'OAUTH_TIMEOUT' || error.code === 'OAUTH_ABORT') return true;
  return isOutageResponse(error);
}

/** An answer that says "not now" rather than "no" (RFC 9110 §15.6, §15.5.9; RFC 6585 §4): the IdP may be down or overloaded. */
function isOutageResponse(error: InstanceType<typeof client.ClientError>): boolean {
  if (error.code !== 'OAUTH_RESPONSE_IS_NOT_CONFORM' || !(error.cause instanceof Response)) return false;
  const status = error.cause.status;
  return status >= 500 || status === 408 || status === 429;
}

/** RFC 6749 §2.3.1: Basic is the method every server must support; use POST only when Basic is not offered. */
function clientAuthentication(secret: string | undefined): client.ClientAuth {
  if (secret === undefined) return client.None();
  const basic = client.ClientSecretBasic(secret);
  const post = client.ClientSecretPost(secret);
  return (as, metadata, body, headers) => {
    const methods = as.token_endpoint_auth_methods_supported;
    const usePost = Array.isArray(methods) && !methods.includes('client_secret_basic') && methods.includes('client_secret_post');
    (usePost ? post : basic)(as, metadata, body, headers);
  };
}

/** Why a login callback did not produce a session; stable strings for the `auth.failure` audit record. */
export type LoginFailureReason =
  | PendingLoginFailureReason
  | 'state-mismatch'
  | 'idp-error'
  | 'code-rejected'
  | 'nonce-mismatch'
  | 'invalid-id-token'
  | 'missing-subject'
  | 'session-too-large'
  | 'idp-unreachable'
  | 'invalid-response'
  /** The IdP has not been discovered yet (`Identity.unavailable()`); the pending login stays. */
  | 'idp-unavailable';

export type LoginResult =
  | {
      readonly ok: true;
      readonly session: Session;
      readonly principal: Principal;
      /**
       * Where to send the browser: a path on the gateway, or with a cookie domain an absolute URL
       * on the public host or an allowed resource host.
       */
      readonly returnTo: string;
      /** Set both: the new session cookie and the deletion of the pending-login cookie. */
      readonly setCookies: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason: LoginFailureReason;
      /** A protocol error code from the IdP (`access_denied`, `invalid_grant`), never a token. */
      readonly detail?: string;
      /**
       * Set them: deletes the pending-login cookie, except after a state mismatch (then empty, so
       * a forged or stale callback cannot cancel the browser's real login attempt).
       */
      readonly setCookies: readonly string[];
    };

export type RefreshFailureReason = 'session-expired' | 'refresh-rejected' | 'subject-changed' | 'session-too-large' | 'idp-unreachable' | 'invalid-response';

export type RefreshResult =
  | {
      readonly ok: true;
      readonly session: Session;
      /** False when the session has no refresh token and was returned unchanged. */
      readonly refreshed: boolean;
      /** The re-sealed session cookie to send (absent when nothing changed). */
      readonly setCookie?: string;
    }
  | {
      readonly ok: false;
      readonly reason: RefreshFailureReason;
      readonly detail?: string;
      /** Set it: deletes the session cookie, which ends the session. */
      readonly setCookie: string;
    };

/** What {@link RelyingParty.beginLogin} hands back. */
export interface BeginLoginResult {
  /** The IdP authorization URL to redirect the browser to. */
  readonly url: string;
  /** `Set-Cookie` value of the sealed pending login. */
  readonly pendingCookie: string;
  /** The return path that will be used after login (after {@link safeReturnTo}). */
  readonly returnTo: string;
}

/** What {@link RelyingParty.beginLogin} is asked. */
export interface BeginLoginRequest {
  /** Where the browser wants to go after login; anything unsafe becomes `/`. */
  readonly returnTo?: string | undefined;
  /**
   * Hosts of the host-matched resources, the places besides the public host that an absolute
   * return URL may name. Used only with `identity.session.cookie_domain`, and only those under it.
   */
  readonly returnHosts?: Iterable<string>;
}

export interface RelyingPartyDeps {
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Refresh this long before the access token runs out, so requests never carry a stale session. */
const REFRESH_MARGIN_MS = 30_000;
/** Assumed access-token lifetime when the IdP does not send `expires_in`. */
const DEFAULT_ACCESS_TTL_MS = 5 * 60_000;
/** How long a refresh outcome is reused for requests still carrying the pre-refresh cookie. */
const REFRESH_REUSE_MS = 30_000;
const PROTOCOL_CODE = /^[\x21-\x7E]{1,64}$/;

/**
 * When a session starts to need a refresh, in ms since the epoch: its access token's expiry less
 * the refresh margin. `null` when the session is never refreshed (no refresh token).
 */
export function sessionRefreshAt(session: Session): number | null {
  if (session.refreshToken === undefined || session.accessExpiresAt === undefined) return null;
  return session.accessExpiresAt - REFRESH_MARGIN_MS;
}

/** True when the session has a refresh token and, at `now`, its access token is (nearly) expired. */
export function sessionNeedsRefresh(session: Session, now: number): boolean {
  const refreshAt = sessionRefreshAt(session);
  return refreshAt !== null && now < session.expiresAt && now >= refreshAt;
}

/** Throws `TG_ERR_CONFIG_INVALID` for settings no relying party can work with, discovered or not. */
export function checkRelyingPartyOptions(options: IdentityOptions): void {
  if (!options.identity.scopes.includes('openid')) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', 'identity.scopes: must contain "openid"');
  }
}

/**
 * The OpenID Connect relying party: the authorization code flow with PKCE, `state` and `nonce`
 * (OIDC Core §3.1, RFC 7636, RFC 9700 §2.1.1), refresh (RFC 6749 §6) and RP-initiated logout
 * (OIDC RP-Initiated Logout 1.0). Protocol outcomes are values; only bugs throw.
 */
export class RelyingParty {
  readonly #issuer: OidcIssuer;
  readonly #cookies: SessionCookies;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #redirectUri: string;
  readonly #publicOrigin: string;
  /** Scheme, port and host an absolute return URL must have; `null` without a cookie domain. */
  readonly #returnBase: { readonly protocol: string; readonly port: string; readonly hostname: string; readonly domain: string } | null;
  readonly #scope: string;
  readonly #claimPaths: ClaimPaths;
  readonly #sessionTtlMs: number;
  readonly #inflight = new Map<string, Promise<RefreshResult>>();
  readonly #recent: LRUCache<string, RefreshResult>;

  constructor(options: IdentityOptions, issuer: OidcIssuer, cookies: SessionCookies, deps: RelyingPartyDeps) {
    const urls = gatewayUrls(options);
    checkRelyingPartyOptions(options);
    this.#issuer = issuer;
    this.#cookies = cookies;
    this.#clock = deps.clock;
    this.#recent = new LRUCache<string, RefreshResult>({ max: 10_000, ttl: REFRESH_REUSE_MS, perf: { now: () => this.#clock.now() } });
    this.#logger = deps.logger;
    this.#redirectUri = urls.redirectUri;
    this.#publicOrigin = urls.publicOrigin;
    const domain = options.identity.session.cookie_domain;
    const publicUrl = new URL(urls.publicOrigin);
    this.#returnBase = domain === undefined ? null : { protocol: publicUrl.protocol, port: publicUrl.port, hostname: publicUrl.hostname, domain };
    this.#scope = options.identity.scopes.join(' ');
    this.#claimPaths = options.identity.claims;
    this.#sessionTtlMs = options.identity.session.ttl;
  }

  /** The redirect URI registered at the IdP: `<public_url><callbackPath>`. */
  get redirectUri(): string {
    return this.#redirectUri;
  }

  /**
   * Starts a login (OIDC Core §3.1.2.1): fresh `state`, `nonce` and PKCE S256 verifier, sealed
   * into a short-lived pending-login cookie together with the (sanitised) return path.
   */
  async beginLogin(request: BeginLoginRequest = {}): Promise<BeginLoginResult> {
    const returnTo = safeReturnTo(request.returnTo ?? DEFAULT_RETURN_TO, this.#returnRules(request.returnHosts));
    const state = client.randomState();
    const nonce = client.randomNonce();
    const codeVerifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(this.#issuer.configuration, {
      response_type: 'code',
      redirect_uri: this.#redirectUri,
      scope: this.#scope,
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    const pendingCookie = this.#cookies.serializePendingCookie({ state, nonce, codeVerifier, returnTo, createdAt: this.#clock.now() });
    return { url: url.href, pendingCookie, returnTo };
  }

  /**
   * Finishes a login at the callback (OIDC Core §3.1.2.5–§3.1.3.7): checks `state` against the
   * pending login (RFC 6749 §10.12), surfaces an IdP error response, redeems the code with the
   * PKCE verifier, validates the ID token and its `nonce`, reads the configured claims (from the
   * UserInfo endpoint when the ID token lacks them) and seals the session.
   *
   * @param callbackUrl the callback request's URL; only its query is used, so a path-and-query
   *   (`/_tollgate/callback?code=…`) is enough.
   * @param pendingCookieValue the pending-login cookie's value ({@link SessionCookies.pendingCookieValue}).
   * @param returnHosts as for {@link beginLogin}: the return URL is checked again against the
   *   hosts in force now, so a resource removed in between is no longer a destination.
   */
  async completeLogin(callbackUrl: string | URL, pendingCookieValue: string | undefined, returnHosts?: Iterable<string>): Promise<LoginResult> {
    const clearPending = this.#cookies.clearPendingCookie();
    const fail = (reason: LoginFailureReason, detail?: string): LoginResult => {
      this.#logger.info({ reason, ...(detail === undefined ? {} : { detail }) }, 'login failed');
      return detail === undefined ? { ok: false, reason, setCookies: [clearPending] } : { ok: false, reason, detail, setCookies: [clearPending] };
    };
    const read = this.#cookies.readPendingLogin(pendingCookieValue);
    if (!read.ok) return fail(read.reason);
    const { pending } = read;

    const response = new URL(this.#redirectUri);
    const received = callbackUrl.toString();
    if (URL.canParse(received, this.#redirectUri)) response.search = new URL(received, this.#redirectUri).search;
    const states = response.searchParams.getAll('state');
    if (states.length !== 1 || !sameText(states[0] ?? '', pending.state)) {
      // The pending cookie stays: it belongs to the browser's own attempt, which a forged or
      // stale callback must not be able to cancel.
      this.#logger.info({ reason: 'state-mismatch' }, 'login failed');
      return { ok: false, reason: 'state-mismatch', setCookies: [] };
    }
    const idpError = response.searchParams.get('error');
    if (idpError !== null) return fail('idp-error', protocolCode(idpError));

    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(this.#issuer.configuration, response, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      const failure = classifyGrantError(error);
      return fail(failure.reason, failure.detail);
    }
    const idClaims = tokens.claims();
    if (idClaims === undefined || tokens.id_token === undefined) return fail('invalid-id-token');

    const claims = await this.#withUserInfo(idClaims, tokens.access_token, idClaims.sub);
    if (!claims.ok) return fail(claims.reason, claims.detail);
    const mapped = principalFromClaims(claims.claims, this.#claimPaths);
    if (!mapped.ok) return fail(mapped.reason);

    const now = this.#clock.now();
    const session = this.#cookies.fitSession({
      sessionId: randomBytes(12).toString('base64url'),
      subject: mapped.principal.subject,
      ...(mapped.principal.email === undefined ? {} : { email: mapped.principal.email }),
      groups: mapped.principal.groups,
      user: mapped.user,
      issuedAt: now,
      expiresAt: now + this.#sessionTtlMs,
      accessExpiresAt: accessExpiry(tokens.expiresIn(), now),
      ...(tokens.refresh_token === undefined ? {} : { refreshToken: tokens.refresh_token }),
      idToken: tokens.id_token,
    });
    if (session === null) return fail('session-too-large');
    return {
      ok: true,
      session,
      principal: sessionPrincipal(session),
      returnTo: safeReturnTo(pending.returnTo, this.#returnRules(returnHosts)),
      setCookies: [this.#cookies.serializeSessionCookie(session), clearPending],
    };
  }

  /** True when the session has a refresh token and its access token is (nearly) expired. */
  needsRefresh(session: Session): boolean {
    return sessionNeedsRefresh(session, this.#clock.now());
  }

  /** See {@link sessionRefreshAt}. */
  refreshAt(session: Session): number | null {
    return sessionRefreshAt(session);
  }

  /**
   * Refreshes a session with its refresh token (RFC 6749 §6; OIDC Core §12). Claims are read
   * again, so a user removed from a group at the IdP loses it here; the subject must not change
   * (OIDC Core §12.2). The session's absolute expiry never moves. A failure the IdP decided (it
   * rejected the token, its answer was wrong) ends the session: the caller sends `setCookie`.
   * `idp-unreachable` (no answer, a timeout, a 5xx, 408 or 429) decides nothing about the
   * session; the caller may keep it and try again later.
   *
   * Concurrent requests carrying the same session share one refresh, and requests that still
   * carry the old cookie within 30 s get the same outcome, because IdPs that rotate refresh
   * tokens treat a second use of the old one as theft and revoke the grant. (So an unreachable
   * IdP is asked again at most every 30 s per session.)
   */
  async refreshSession(session: Session): Promise<RefreshResult> {
    if (this.#clock.now() >= session.expiresAt) return this.#refreshFailure('session-expired');
    const refreshToken = session.refreshToken;
    if (refreshToken === undefined) return { ok: true, session, refreshed: false };
    const key = createHash('sha256').update(refreshToken).digest('base64url');
    const recent = this.#recent.get(key);
    if (recent !== undefined) return recent;
    const running = this.#inflight.get(key);
    if (running !== undefined) return running;
    const refresh = this.#refresh(session, refreshToken).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, refresh);
    const result = await refresh;
    this.#recent.set(key, result);
    return result;
  }

  /**
   * The IdP's end-session URL (OIDC RP-Initiated Logout 1.0 §2) with `id_token_hint` when the
   * session still holds the ID token, `client_id`, and `post_logout_redirect_uri` (a path on the
   * gateway, which must be registered at the IdP). `null` when the IdP advertises no
   * `end_session_endpoint`: then logout only clears the local session.
   */
  logoutUrl(session: Session | undefined, postLogoutRedirect?: string): string | null {
    if (this.#issuer.endSessionEndpoint === undefined) return null;
    const parameters: Record<string, string> = {};
    if (session?.idToken !== undefined) parameters['id_token_hint'] = session.idToken;
    if (postLogoutRedirect !== undefined) {
      parameters['post_logout_redirect_uri'] = new URL(safeReturnTo(postLogoutRedirect), this.#publicOrigin).href;
    }
    return client.buildEndSessionUrl(this.#issuer.configuration, parameters).href;
  }

  /**
   * With a cookie domain, the session reaches the public host and the resource hosts under the
   * domain, so a login may return there; never to any other host under the domain, which could
   * be anyone's.
   */
  #returnRules(returnHosts: Iterable<string> | undefined): AbsoluteReturnRules | undefined {
    const base = this.#returnBase;
    if (base === null) return undefined;
    const hosts = new Set([base.hostname]);
    for (const host of returnHosts ?? []) {
      const name = host.toLowerCase();
      if (isWithinDomain(name, base.domain)) hosts.add(name);
    }
    return { protocol: base.protocol, port: base.port, hosts };
  }

  async #refresh(session: Session, refreshToken: string): Promise<RefreshResult> {
    let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
    try {
      tokens = await client.refreshTokenGrant(this.#issuer.configuration, refreshToken);
    } catch (error) {
      const failure = classifyGrantError(error);
      return this.#refreshFailure(failure.reason === 'code-rejected' ? 'refresh-rejected' : toRefreshReason(failure.reason), failure.detail);
    }
    const idClaims = tokens.claims();
    if (idClaims !== undefined && idClaims.sub !== session.subject) return this.#refreshFailure('subject-changed');

    let mapped = { principal: sessionPrincipal(session), user: session.user };
    const claims = await this.#withUserInfo(idClaims ?? { sub: session.subject }, tokens.access_token, session.subject);
    if (!claims.ok) return this.#refreshFailure(toRefreshReason(claims.reason), claims.detail);
    if (idClaims !== undefined || claims.fromUserInfo) {
      const remapped = principalFromClaims(claims.claims, this.#claimPaths);
      if (!remapped.ok || remapped.principal.subject !== session.subject) return this.#refreshFailure('subject-changed');
      mapped = remapped;
    }

    const idToken = tokens.id_token ?? session.idToken;
    const refreshed = this.#cookies.fitSession({
      sessionId: session.sessionId,
      subject: session.subject,
      ...(mapped.principal.email === undefined ? {} : { email: mapped.principal.email }),
      groups: mapped.principal.groups,
      user: mapped.user,
      issuedAt: session.issuedAt,
      expiresAt: session.expiresAt,
      accessExpiresAt: accessExpiry(tokens.expiresIn(), this.#clock.now()),
      refreshToken: tokens.refresh_token ?? refreshToken,
      ...(idToken === undefined ? {} : { idToken }),
    });
    if (refreshed === null) return this.#refreshFailure('session-too-large');
    return { ok: true, session: refreshed, refreshed: true, setCookie: this.#cookies.serializeSessionCookie(refreshed) };
  }

  /**
   * Adds UserInfo claims (OIDC Core §5.3) when the ID token lacks a configured claim: many IdPs
   * put only `sub` in the ID token of the code flow. UserInfo's `sub` must match (§5.3.2).
   */
  async #withUserInfo(
    idClaims: Readonly<Record<string, unknown>>,
    accessToken: string,
    subject: string,
  ): Promise<
    | { ok: true; claims: Readonly<Record<string, unknown>>; fromUserInfo: boolean }
    | { ok: false; reason: 'idp-unreachable' | 'invalid-response'; detail?: string }
  > {
    const paths = [this.#claimPaths.user, this.#claimPaths.email, this.#claimPaths.groups];
    const complete = paths.every((path) => claimAt(idClaims, path) !== undefined);
    if (complete || this.#issuer.configuration.serverMetadata().userinfo_endpoint === undefined) {
      return { ok: true, claims: idClaims, fromUserInfo: false };
    }
    try {
      const userInfo = await client.fetchUserInfo(this.#issuer.configuration, accessToken, subject);
      return { ok: true, claims: { ...idClaims, ...userInfo }, fromUserInfo: true };
    } catch (error) {
      const failure = classifyGrantError(error);
      const reason = failure.reason === 'idp-unreachable' ? 'idp-unreachable' : 'invalid-response';
      return failure.detail === undefined ? { ok: false, reason } : { ok: false, reason, detail: failure.detail };
    }
  }

  #refreshFailure(reason: RefreshFailureReason, detail?: string): RefreshResult {
    this.#logger.info({ reason, ...(detail === undefined ? {} : { detail }) }, 'session refresh failed');
    const setCookie = this.#cookies.clearSessionCookie();
    return detail === undefined ? { ok: false, reason, setCookie } : { ok: false, reason, detail, setCookie };
  }
}

function toRefreshReason(reason: LoginFailureReason): RefreshFailureReason {
  return reason === 'idp-unreachable' ? 'idp-unreachable' : 'invalid-response';
}

function accessExpiry(expiresInSeconds: number | undefined, now: number): number {
  return expiresInSeconds === undefined ? now + DEFAULT_ACCESS_TTL_MS : now + expiresInSeconds * 1000;
}

/** Compares two strings in time independent of where they differ. */
function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** An IdP error code fit for logs and audit records; anything odd is replaced, not echoed. */
function protocolCode(value: unknown): string {
  return typeof value === 'string' && PROTOCOL_CODE.test(value) ? value : 'unrecognised';
}

/**
 * Maps openid-client failures to stable reasons. openid-client rethrows network failures as
 * `TypeError` (fetch) and timeouts as `ClientError` `OAUTH_TIMEOUT`/`OAUTH_ABORT`; the token
 * endpoint's error body arrives as `ResponseBodyError` (RFC 6749 §5.2), a client authentication
 * failure as `WWWAuthenticateChallengeError`, and a failed ID token
 * comparison as `OAUTH_JWT_CLAIM_COMPARISON_FAILED` naming the claim.
 */
function classifyGrantError(error: unknown): { reason: LoginFailureReason; detail?: string } {
  if (error instanceof client.ResponseBodyError) return { reason: 'code-rejected', detail: protocolCode(error.error) };
  if (error instanceof client.AuthorizationResponseError) return { reason: 'idp-error', detail: protocolCode(error.error) };
  if (error instanceof client.WWWAuthenticateChallengeError) {
    // RFC 6749 §5.2: a 401 `invalid_client` comes with a WWW-Authenticate challenge instead of a body.
    const challenged = error.cause.find((challenge) => typeof challenge.parameters.error === 'string');
    return { reason: 'code-rejected', detail: protocolCode(challenged?.parameters.error ?? 'invalid_client') };
  }
  if (error instanceof TypeError) return { reason: 'idp-unreachable' };
  if (error instanceof client.ClientError) {
    switch (error.code) {
      case 'OAUTH_TIMEOUT':
      case 'OAUTH_ABORT':
        return { reason: 'idp-unreachable' };
      case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
        return isOutageResponse(error) ? { reason: 'idp-unreachable', detail: `HTTP ${(error.cause as Response).status}` } : { reason: 'invalid-response', detail: protocolCode(error.code) };
      case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED': {
        const claim = comparedClaim(error);
        return claim === 'nonce' ? { reason: 'nonce-mismatch' } : { reason: 'invalid-id-token', detail: claim ?? 'claim' };
      }
      case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
        return { reason: 'invalid-id-token', detail: comparedClaim(error) ?? 'timestamp' };
      default:
        return { reason: 'invalid-response', detail: protocolCode(error.code) };
    }
  }
  return { reason: 'invalid-response' };
}

function comparedClaim(error: Error): string | undefined {
  const inner: unknown = error.cause;
  const facts: unknown = inner instanceof Error ? inner.cause : undefined;
  if (facts !== null && typeof facts === 'object' && 'claim' in facts && typeof facts.claim === 'string') return facts.claim;
  return undefined;
}

function describe(error: unknown): string {
  if (error instanceof client.ClientError && error.code !== undefined) {
    return `${error.code}: ${error.message}${error.cause instanceof Response ? ` (HTTP ${error.cause.status})` : ''}`;
  }
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
