import { TollgateError, type Clock, type Principal } from '../core/index.js';
import { MAX_COOKIE_BYTES, cookieName, parseCookieHeader, serializeCookie, type CookieAttributes } from './cookies.js';
import { Sealer, type OpenFailureReason } from './seal.js';

/**
 * A browser session: who logged in, until when, and what is needed to refresh it and to log out
 * at the IdP. It lives only in the sealed session cookie; the gateway keeps no session store.
 * Times are milliseconds since the epoch.
 */
export interface Session {
  /** Random id of this login, kept across refreshes; correlates audit records, reveals nothing. */
  readonly sessionId: string;
  readonly subject: string;
  readonly email?: string;
  readonly groups: readonly string[];
  /** Display user name from the `claims.user` path. */
  readonly user: string;
  readonly issuedAt: number;
  /** Absolute end of the session (`session.ttl` after login); refreshing never moves it. */
  readonly expiresAt: number;
  /** Expiry of the IdP's access token: when to refresh. */
  readonly accessExpiresAt?: number;
  readonly refreshToken?: string;
  /** For `id_token_hint` at logout; dropped when the cookie would exceed 4 KB. */
  readonly idToken?: string;
}

/** The principal a session stands for. */
export function sessionPrincipal(session: Session): Principal {
  return session.email === undefined
    ? { subject: session.subject, groups: session.groups }
    : { subject: session.subject, email: session.email, groups: session.groups };
}

/** What is remembered between sending the browser to the IdP and its return (OIDC Core §3.1.2.1). */
export interface PendingLogin {
  readonly state: string;
  readonly nonce: string;
  /** RFC 7636 `code_verifier`. */
  readonly codeVerifier: string;
  readonly returnTo: string;
  readonly createdAt: number;
}

/** A login the IdP does not answer within this time is abandoned. */
export const PENDING_LOGIN_TTL_MS = 10 * 60_000;

export type SessionReadFailureReason = 'missing' | OpenFailureReason | 'expired';

export type SessionReadResult =
  | {
      readonly ok: true;
      readonly session: Session;
      /** Sealed with an older key: send `serializeSessionCookie(session)` again to re-seal it. */
      readonly resealAdvised: boolean;
    }
  | { readonly ok: false; readonly reason: SessionReadFailureReason };

export type PendingLoginFailureReason =
  | 'missing-pending-login'
  | 'invalid-pending-login'
  | 'pending-login-expired'
  | 'missing-pkce-verifier';

export type PendingLoginReadResult =
  | { readonly ok: true; readonly pending: PendingLogin }
  | { readonly ok: false; readonly reason: PendingLoginFailureReason };

/** Settings of {@link SessionCookies}, from `identity.session` and `server.public_url`. */
export interface SessionCookieSettings {
  readonly keys: readonly string[];
  readonly cookieName: string;
  readonly secure: boolean;
  /** `identity.session.cookie_domain`: the session cookie (never the pending-login one) gets `Domain`. */
  readonly domain?: string;
}

/**
 * Seals, reads and clears the session cookie and the pending-login cookie. Reading never throws:
 * a missing, malformed, tampered, unknown-key or expired cookie is a typed failure.
 */
export class SessionCookies {
  readonly #session: Sealer;
  readonly #pending: Sealer;
  readonly #clock: Clock;
  /** Attributes of the session cookie: with `Domain` when a cookie domain is configured. */
  readonly #attributes: CookieAttributes;
  /** Attributes of the pending-login cookie: always host-only, since login always runs on the public host. */
  readonly #pendingAttributes: CookieAttributes;
  /** Name of the session cookie: `__Host-` prefixed on https, `__Secure-` when it has a `Domain`. */
  readonly sessionCookieName: string;
  /** Name of the pending-login cookie, `__Host-` prefixed on https. */
  readonly pendingCookieName: string;
  /** The session cookie's `Domain`, when it has one. */
  readonly domain: string | undefined;

  constructor(settings: SessionCookieSettings, clock: Clock) {
    this.#session = new Sealer(settings.keys, 'session');
    this.#pending = new Sealer(settings.keys, 'pending-login');
    this.#clock = clock;
    this.#attributes = { secure: settings.secure, domain: settings.domain };
    this.#pendingAttributes = { secure: settings.secure };
    this.domain = settings.domain;
    this.sessionCookieName = cookieName(settings.cookieName, this.#attributes);
    this.pendingCookieName = cookieName(`${settings.cookieName}_login`, this.#pendingAttributes);
  }

  /**
   * The session as it will be stored: unchanged when its cookie fits in 4 KB, without the ID
   * token when only that makes it fit (logout then goes to the IdP without `id_token_hint`), or
   * `null` when even that is too large (an enormous groups claim; narrow `claims.groups`).
   */
  fitSession(session: Session): Session | null {
    if (this.#cookieBytes(session) <= MAX_COOKIE_BYTES) return session;
    if (session.idToken !== undefined) {
      const { idToken: _dropped, ...rest } = session;
      if (this.#cookieBytes(rest) <= MAX_COOKIE_BYTES) return rest;
    }
    return null;
  }

  /** The `Set-Cookie` value for a session; its `Max-Age` ends with the session. */
  serializeSessionCookie(session: Session): string {
    const cookie = serializeCookie(this.sessionCookieName, this.#session.seal(encodeSession(session)), this.#maxAge(session.expiresAt), this.#attributes);
    if (Buffer.byteLength(cookie) > MAX_COOKIE_BYTES) {
      throw new TollgateError('TG_ERR_INTERNAL', 'session cookie exceeds 4096 bytes; sessions must pass fitSession() before they are serialised');
    }
    return cookie;
  }

  /** Reads the session from a `Cookie` header; tries every value of the name, first valid wins. */
  readSessionCookie(cookieHeader: string | readonly string[] | undefined): SessionReadResult {
    const values = parseCookieHeader(cookieHeader).get(this.sessionCookieName) ?? [];
    let failure: SessionReadFailureReason = 'missing';
    for (const value of values) {
      const result = this.#openSession(value);
      if (result.ok) return result;
      if (failure === 'missing') failure = result.reason;
    }
    return { ok: false, reason: failure };
  }

  /** `Set-Cookie` value that deletes the session cookie (logout, failed refresh), with the same `Domain`. */
  clearSessionCookie(): string {
    return serializeCookie(this.sessionCookieName, '', 0, this.#attributes);
  }

  /** `Set-Cookie` value carrying a pending login; it lives {@link PENDING_LOGIN_TTL_MS}. */
  serializePendingCookie(pending: PendingLogin): string {
    return serializeCookie(this.pendingCookieName, this.#pending.seal(encodePending(pending)), PENDING_LOGIN_TTL_MS / 1000, this.#pendingAttributes);
  }

  /** The pending-login cookie's value from a `Cookie` header, for `completeLogin`. */
  pendingCookieValue(cookieHeader: string | readonly string[] | undefined): string | undefined {
    return parseCookieHeader(cookieHeader).get(this.pendingCookieName)?.[0];
  }

  /** Opens a pending-login cookie value. */
  readPendingLogin(value: string | undefined): PendingLoginReadResult {
    if (value === undefined || value === '') return { ok: false, reason: 'missing-pending-login' };
    const opened = this.#pending.open(value);
    if (!opened.ok) return { ok: false, reason: 'invalid-pending-login' };
    const decoded = decodePending(opened.data);
    if (!decoded.ok) return decoded;
    const now = this.#clock.now();
    const age = now - decoded.pending.createdAt;
    if (age >= PENDING_LOGIN_TTL_MS || age < -PENDING_LOGIN_TTL_MS) return { ok: false, reason: 'pending-login-expired' };
    return decoded;
  }

  /** `Set-Cookie` value that deletes the pending-login cookie once the callback has used it. */
  clearPendingCookie(): string {
    return serializeCookie(this.pendingCookieName, '', 0, this.#pendingAttributes);
  }

  #openSession(value: string): SessionReadResult {
    const opened = this.#session.open(value);
    if (!opened.ok) return opened;
    const session = decodeSession(opened.data);
    if (session === null) return { ok: false, reason: 'malformed' };
    if (session.expiresAt <= this.#clock.now()) return { ok: false, reason: 'expired' };
    return { ok: true, session, resealAdvised: !opened.sealedWithCurrentKey };
  }

  #cookieBytes(session: Session): number {
    const value = this.#session.seal(encodeSession(session));
    return Buffer.byteLength(serializeCookie(this.sessionCookieName, value, this.#maxAge(session.expiresAt), this.#attributes));
  }

  #maxAge(expiresAt: number): number {
    return Math.max(0, Math.floor((expiresAt - this.#clock.now()) / 1000));
  }
}

/**
 * Sealed session layout, short keys because every byte counts against 4 KB:
 * `v` layout version, `sid`, `sub`, `em` email, `gr` groups, `usr` user (only when it differs
 * from the email, or the subject when there is no email), `iat`/`exp`/`ate` times in ms,
 * `rt` refresh token, `idt` ID token. The access token itself is not kept: the gateway never
 * calls APIs with it.
 */
interface SealedSession {
  v: 1;
  sid: string;
  sub: string;
  em?: string;
  gr: string[];
  usr?: string;
  iat: number;
  exp: number;
  ate?: number;
  rt?: string;
  idt?: string;
}

function encodeSession(session: Session): SealedSession {
  const sealed: SealedSession = { v: 1, sid: session.sessionId, sub: session.subject, gr: [...session.groups], iat: session.issuedAt, exp: session.expiresAt };
  if (session.email !== undefined) sealed.em = session.email;
  if (session.user !== (session.email ?? session.subject)) sealed.usr = session.user;
  if (session.accessExpiresAt !== undefined) sealed.ate = session.accessExpiresAt;
  if (session.refreshToken !== undefined) sealed.rt = session.refreshToken;
  if (session.idToken !== undefined) sealed.idt = session.idToken;
  return sealed;
}

function decodeSession(data: unknown): Session | null {
  if (!isRecord(data) || data['v'] !== 1) return null;
  const { sid, sub, em, gr, usr, iat, exp, ate, rt, idt } = data;
  if (!isText(sid) || !isText(sub) || !isTime(iat) || !isTime(exp)) return null;
  if (!Array.isArray(gr) || !gr.every(isText)) return null;
  if ((em !== undefined && !isText(em)) || (usr !== undefined && !isText(usr)) || (ate !== undefined && !isTime(ate))) return null;
  if ((rt !== undefined && !isText(rt)) || (idt !== undefined && !isText(idt))) return null;
  return {
    sessionId: sid,
    subject: sub,
    ...(em === undefined ? {} : { email: em }),
    groups: gr,
    user: usr ?? em ?? sub,
    issuedAt: iat,
    expiresAt: exp,
    ...(ate === undefined ? {} : { accessExpiresAt: ate }),
    ...(rt === undefined ? {} : { refreshToken: rt }),
    ...(idt === undefined ? {} : { idToken: idt }),
  };
}

/** Sealed pending-login layout: `st` state, `no` nonce, `cv` PKCE verifier, `rt` return path, `iat`. */
function encodePending(pending: PendingLogin): Record<string, unknown> {
  return { v: 1, st: pending.state, no: pending.nonce, cv: pending.codeVerifier, rt: pending.returnTo, iat: pending.createdAt };
}

function decodePending(data: unknown): PendingLoginReadResult {
  if (!isRecord(data) || data['v'] !== 1) return { ok: false, reason: 'invalid-pending-login' };
  const { st, no, cv, rt, iat } = data;
  if (!isText(st) || !isText(no) || !isText(rt) || !isTime(iat)) return { ok: false, reason: 'invalid-pending-login' };
  if (!isText(cv)) return { ok: false, reason: 'missing-pkce-verifier' };
  return { ok: true, pending: { state: st, nonce: no, codeVerifier: cv, returnTo: rt, createdAt: iat } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
