/**
 * The identity room: who is behind a request. Browser login with OpenID Connect (authorization
 * code + PKCE, `state`, `nonce`) into a sealed session cookie, bearer JWT verification for API
 * clients, and the short-lived database tokens engineers use as Postgres passwords.
 *
 * Every login, verification and refresh outcome is a value with a stable `reason`; exceptions
 * are for startup (`TG_ERR_IDENTITY_DISCOVERY` when the IdP's answer is wrong,
 * `TG_ERR_CONFIG_INVALID`) and bugs. An IdP that is down at startup is discovered in the
 * background; until then what needs it is `idp-unavailable` (`Identity.unavailable()`). The room
 * does not write audit records: each result carries what the caller records (see the README
 * section "Login and tokens").
 */
export { createIdentity, createSessionCookies, createDbTokens, Identity } from './identity.js';
export type { IdentityDeps, IdentityParts, IdpParts, DiscoveryState, IdpUnavailable } from './identity.js';
export { DISCOVERY_BACKOFF, RetryLoop, backoffDelay, systemTimers } from './retry.js';
export type { BackoffSettings, Timers, RetryLoopOptions } from './retry.js';
export { DEFAULT_CALLBACK_PATH, MIN_SECRET_BYTES } from './options.js';
export type { IdentityOptions } from './options.js';
export { discoverIssuer, isDiscoveryOutage, sessionNeedsRefresh, sessionRefreshAt, RelyingParty } from './oidc.js';
export type {
  OidcIssuer,
  DiscoveryDeps,
  BeginLoginRequest,
  RelyingPartyDeps,
  BeginLoginResult,
  LoginResult,
  LoginFailureReason,
  RefreshResult,
  RefreshFailureReason,
} from './oidc.js';
export { SessionCookies, sessionPrincipal, PENDING_LOGIN_TTL_MS } from './session.js';
export type {
  Session,
  PendingLogin,
  SessionReadResult,
  SessionReadFailureReason,
  PendingLoginReadResult,
  PendingLoginFailureReason,
  SessionCookieSettings,
} from './session.js';
export { BearerVerifier, bearerTokenFrom } from './bearer.js';
export type { BearerResult, BearerFailureReason, BearerSettings, BearerDeps } from './bearer.js';
export { DbTokens, DB_TOKEN_PREFIX } from './db-token.js';
export type { DbTokenClaims, DbTokenSettings, IssueDbTokenResult, VerifyDbTokenResult, DbTokenFailureReason } from './db-token.js';
export { claimAt, groupsFrom, principalFromClaims } from './claims.js';
export type { ClaimPaths, MappedClaims, MapClaimsResult } from './claims.js';
export { safeReturnTo, DEFAULT_RETURN_TO } from './return-to.js';
export type { AbsoluteReturnRules } from './return-to.js';
export { cookieValues, parseCookieHeader, MAX_COOKIE_BYTES } from './cookies.js';
export type { OpenFailureReason } from './seal.js';
