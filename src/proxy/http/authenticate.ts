import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Clock, Principal } from '../../core/index.js';
import { bearerTokenFrom, cookieValues, sessionPrincipal, type BearerFailureReason, type BearerResult, type Identity, type IdpUnavailable, type RefreshResult, type Session } from '../../identity/index.js';
import { sessionRef, type RecordedCaller } from './audit-events.js';
import { BoundedCache } from './bounded-cache.js';
import { headerText } from './headers.js';

/** Who sent a request, as far as the gateway could establish it. */
export interface Caller extends RecordedCaller {
  /** Display name (the `claims.user` value). */
  readonly user: string;
  /** `X-Tollgate-User` and `X-Tollgate-Groups` as sent upstream, computed once per login. */
  readonly userHeader: string;
  readonly groupsHeader: string;
  /** Names the login for the assertion cache: one per session or bearer token. */
  readonly reuseKey: string;
  /** The browser session, when the caller came with one. */
  readonly session?: Session;
  /** The bearer token's `exp`, in ms since the epoch, when the caller came with one. */
  readonly bearer?: { readonly expiresAt: number };
}

/** A refused cookie or refresh (or a credential the IdP is needed for), to be recorded as `auth.failure`. */
export interface SessionFailure {
  readonly method: 'session' | 'refresh' | 'bearer';
  readonly reason: string;
  readonly detail?: string;
  readonly principal?: Principal;
  readonly sessionRef?: string;
}

export type AuthOutcome =
  | { readonly kind: 'caller'; readonly caller: Caller; readonly setCookies: readonly string[] }
  | { readonly kind: 'anonymous'; readonly setCookies: readonly string[]; readonly failure?: SessionFailure }
  /** An `Authorization: Bearer` token that failed verification: answer 401, never fall back to cookies. */
  | { readonly kind: 'refused'; readonly reason: BearerFailureReason }
  /**
   * A bearer token to verify or a session to refresh before the IdP is discovered: answer 503
   * with `Retry-After`, never 401 or a login redirect; record the failure. The session is kept.
   */
  | { readonly kind: 'idp-unavailable'; readonly unavailable: IdpUnavailable; readonly failure: SessionFailure; readonly setCookies: readonly string[] };

interface CachedSession {
  readonly session: Session;
  /** The outcome handed out while the session needs nothing else (no refresh, no reseal). */
  readonly outcome: AuthOutcome & { readonly kind: 'caller' };
  readonly resealAdvised: boolean;
}

interface CachedBearer {
  readonly outcome: AuthOutcome & { readonly kind: 'caller' };
  readonly expiresAt: number;
}

/** Bound on the verification caches; beyond it the oldest entries go. */
const CACHE_ENTRIES = 50_000;
/** RFC 6750 §2.1: the scheme name is case-insensitive; what follows it must be one token. */
const BEARER_SCHEME = /^bearer(?:[ \t]|$)/i;
const MALFORMED_BEARER: AuthOutcome = Object.freeze({ kind: 'refused', reason: 'malformed' });

/** A verified bearer token is re-verified at least this often (JWKS changes, revoked keys). */
const BEARER_REUSE_MS = 60_000;
const NO_COOKIES: readonly string[] = Object.freeze([]);
/** `Retry-After` while an unreachable IdP holds up a due refresh (the identity room asks again at most every 30 s). */
const REFRESH_RETRY_SECONDS = 10;
const ANONYMOUS: AuthOutcome = Object.freeze({ kind: 'anonymous', setCookies: NO_COOKIES });

/**
 * Establishes the caller of a request from its `Authorization: Bearer` header (API clients) or
 * the sealed session cookie (browsers), refreshing sessions whose access token is about to
 * expire. Opening a sealed cookie and verifying a JWT each cost more than the rest of the
 * request path, so the outcome is cached under the exact cookie value or token: the same bytes
 * always open to the same session, and expiry is checked again on every use. A cached outcome
 * is returned synchronously; only verification and refresh are asynchronous.
 */
export class Authenticator {
  readonly #identity: Identity;
  readonly #clock: Clock;
  readonly #sessionCookie: string;
  readonly #sessions = new BoundedCache<string, CachedSession>(CACHE_ENTRIES);
  readonly #bearers = new BoundedCache<string, CachedBearer>(CACHE_ENTRIES);
  /** Session ids ended by logout or a failed refresh, with the time their cookies expire (this process only). */
  readonly #revoked = new BoundedCache<string, number>(CACHE_ENTRIES);

  constructor(identity: Identity, clock: Clock) {
    this.#identity = identity;
    this.#clock = clock;
    this.#sessionCookie = identity.cookies.sessionCookieName;
  }

  /** The names of the gateway's own cookies, never forwarded to upstreams. */
  get reservedCookies(): readonly string[] {
    return [this.#identity.cookies.sessionCookieName, this.#identity.cookies.pendingCookieName];
  }

  authenticate(headers: IncomingHttpHeaders): AuthOutcome | Promise<AuthOutcome> {
    const authorization = headers.authorization;
    if (authorization === undefined) return this.#session(headers.cookie);
    const token = bearerTokenFrom(authorization);
    if (token !== undefined) return this.#bearer(token);
    // A Bearer credential that is not even a token (`Bearer a b`, `Bearer` alone) is refused like
    // a bad token (RFC 6750 §3.1): taking the cookie instead would answer as someone the client
    // did not name, and pass its broken credential on to the upstream.
    if (BEARER_SCHEME.test(authorization)) return MALFORMED_BEARER;
    return this.#session(headers.cookie);
  }

  /**
   * Ends a session before its cookie expires: a sealed cookie is valid on its own, so a copy kept
   * after logout would otherwise still open. Held in memory until the session's expiry; a restart
   * forgets it (the cookie's own expiry still bounds it).
   */
  revoke(session: Session): void {
    this.#revoked.set(session.sessionId, session.expiresAt);
  }

  /** Whether logout or a failed refresh has ended the session `sessionId` (in this process). */
  isRevoked(sessionId: string): boolean {
    return this.#revokedAt(sessionId, this.#clock.now());
  }

  #revokedAt(sessionId: string, now: number): boolean {
    const revokedUntil = this.#revoked.get(sessionId);
    return revokedUntil !== undefined && now < revokedUntil;
  }

  /** When the gateway will next refresh `session`, in ms since the epoch; `null` when it never does. */
  refreshAt(session: Session): number | null {
    return this.#identity.refreshAt(session);
  }

  #bearer(token: string): AuthOutcome | Promise<AuthOutcome> {
    const cached = this.#bearers.get(token);
    if (cached !== undefined && this.#clock.now() < cached.expiresAt) return cached.outcome;
    const unavailable = this.#identity.unavailable();
    if (unavailable !== null) return { kind: 'idp-unavailable', unavailable, failure: { method: 'bearer', reason: unavailable.reason }, setCookies: NO_COOKIES };
    return this.#identity.verifyBearer(token).then((result) => this.#bearerVerified(token, result));
  }

  #bearerVerified(token: string, result: BearerResult): AuthOutcome {
    if (!result.ok) return { kind: 'refused', reason: result.reason };
    const reuseKey = `bearer:${createHash('sha256').update(token, 'utf8').digest().subarray(0, 16).toString('base64url')}`;
    const caller: Caller = {
      principal: result.principal,
      auth: 'bearer',
      ...(result.tokenId === undefined ? {} : { tokenId: result.tokenId }),
      bearer: { expiresAt: result.expiresAt },
      user: result.user,
      userHeader: headerText(result.user),
      groupsHeader: result.principal.groups.map(headerText).join(','),
      reuseKey,
    };
    const outcome = { kind: 'caller', caller, setCookies: NO_COOKIES } as const;
    this.#bearers.set(token, { outcome, expiresAt: Math.min(result.expiresAt, this.#clock.now() + BEARER_REUSE_MS) });
    return outcome;
  }

  #session(cookieHeader: string | undefined): AuthOutcome | Promise<AuthOutcome> {
    if (cookieHeader === undefined) return ANONYMOUS;
    const values = cookieValues(cookieHeader, this.#sessionCookie);
    if (values.length === 0) return ANONYMOUS;
    // Keyed on every value the session is read from, so the same key always opens the same session.
    const key = values.length === 1 ? (values[0] as string) : values.join('\n');
    const now = this.#clock.now();
    let entry = this.#sessions.get(key);
    if (entry === undefined || entry.session.expiresAt <= now) {
      const read = this.#identity.readSessionCookie(cookieHeader);
      if (!read.ok) {
        this.#sessions.delete(key);
        const setCookies = [this.#identity.clearSessionCookie()];
        if (read.reason === 'expired' || read.reason === 'missing') return { kind: 'anonymous', setCookies };
        return { kind: 'anonymous', setCookies, failure: { method: 'session', reason: `cookie-${read.reason}` } };
      }
      entry = this.#remember(key, read.session, read.resealAdvised);
    }
    const { session } = entry;
    if (this.#revokedAt(session.sessionId, now)) return { kind: 'anonymous', setCookies: [this.#identity.clearSessionCookie()] };
    if (this.#identity.needsRefresh(session)) {
      const unavailable = this.#identity.unavailable();
      if (unavailable !== null) return this.#refreshUnavailable(unavailable, entry.outcome.caller);
      return this.#identity.refreshSession(session).then((result) => this.#refreshed(result, entry.outcome.caller));
    }
    if (entry.resealAdvised) return { kind: 'caller', caller: entry.outcome.caller, setCookies: [this.#identity.serializeSessionCookie(session)] };
    return entry.outcome;
  }

  /**
   * After a refresh (identity room: one refresh per refresh token, shared by concurrent
   * requests). A refresh the IdP refused ends the session: the cookie is cleared and the request
   * goes on as anonymous, so a browser is sent to log in again. The session is revoked too, as
   * at logout: a rotated-away refresh token replayed after the shared-outcome window (theft, RFC
   * 9700 §4.14.2) then ends every copy of the session, not only the replaying request's. An IdP
   * that cannot be reached has refused nothing ({@link #refreshDeferred}).
   */
  #refreshed(result: RefreshResult, previous: Caller): AuthOutcome {
    if (!result.ok) {
      if (result.reason === 'idp-unreachable') return this.#refreshDeferred(previous, result.detail);
      if (previous.session !== undefined) this.revoke(previous.session);
      const failure: SessionFailure = {
        method: 'refresh',
        reason: result.reason,
        ...(result.detail === undefined ? {} : { detail: result.detail }),
        principal: previous.principal,
        ...(previous.sessionRef === undefined ? {} : { sessionRef: previous.sessionRef }),
      };
      return { kind: 'anonymous', setCookies: [result.setCookie], failure };
    }
    if (result.setCookie === undefined) return { kind: 'caller', caller: previous, setCookies: NO_COOKIES };
    const entry = this.#remember(setCookieValue(result.setCookie), result.session, false);
    return { kind: 'caller', caller: entry.outcome.caller, setCookies: [result.setCookie] };
  }

  /**
   * A refresh the IdP could not be asked for: the session goes on unchanged while its access
   * token lasts (the refresh starts ahead of expiry for this), then gets 503 until a refresh
   * succeeds. Ending it would log everyone out for an IdP's blip, and letting it run past the
   * access token would keep access the IdP may have withdrawn.
   */
  #refreshDeferred(previous: Caller, detail: string | undefined): AuthOutcome {
    const accessExpiresAt = previous.session?.accessExpiresAt;
    if (accessExpiresAt !== undefined && this.#clock.now() < accessExpiresAt) return { kind: 'caller', caller: previous, setCookies: NO_COOKIES };
    return this.#refreshUnavailable({ ok: false, reason: 'idp-unavailable', detail: detail ?? 'idp-unreachable', retryAfterSeconds: REFRESH_RETRY_SECONDS }, previous);
  }

  /** A refresh that cannot be tried yet: the session stays as it is, for a retry once the IdP is discovered. */
  #refreshUnavailable(unavailable: IdpUnavailable, caller: Caller): AuthOutcome {
    const failure: SessionFailure = {
      method: 'refresh',
      reason: unavailable.reason,
      principal: caller.principal,
      ...(caller.sessionRef === undefined ? {} : { sessionRef: caller.sessionRef }),
    };
    return { kind: 'idp-unavailable', unavailable, failure, setCookies: NO_COOKIES };
  }

  #remember(key: string, session: Session, resealAdvised: boolean): CachedSession {
    const ref = sessionRef(session.sessionId);
    const caller: Caller = {
      principal: sessionPrincipal(session),
      auth: 'session',
      sessionRef: ref,
      user: session.user,
      userHeader: headerText(session.user),
      groupsHeader: session.groups.map(headerText).join(','),
      reuseKey: `session:${ref}`,
      session,
    };
    const entry: CachedSession = { session, outcome: { kind: 'caller', caller, setCookies: NO_COOKIES }, resealAdvised };
    this.#sessions.set(key, entry);
    return entry;
  }
}

/** The value of a `Set-Cookie` line's `name=value` pair. */
function setCookieValue(setCookie: string): string {
  const pair = setCookie.split(';', 1)[0] ?? '';
  return pair.slice(pair.indexOf('=') + 1);
}
