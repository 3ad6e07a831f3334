import { DEFAULT_CALLBACK_PATH, sessionPrincipal } from '../../identity/index.js';
import { failureEvent, loginEvent, logoutEvent, sessionRef } from './audit-events.js';
import { CLI_LOGIN_PREFIX, handleCliLogin } from './cli-login.js';
import { sendAuditUnavailable, sendIdpUnavailable, sendMethodNotAllowed, sendNotFound, type GatewayServices, type RequestContext } from './context.js';
import type { ParsedHost } from './headers.js';
import { escapeHtml, sendError, sendHtml } from './pages.js';

/** The gateway's reserved path prefix; nothing under it is ever forwarded. */
export const RESERVED_PREFIX = '/_tollgate/';
export const LOGIN_PATH = '/_tollgate/login';
export const CALLBACK_PATH = DEFAULT_CALLBACK_PATH;
export const LOGOUT_PATH = '/_tollgate/logout';

/** `/_tollgate/login?return_to=<path>`: where unauthenticated browsers are sent. */
export function loginLocation(returnTo: string): string {
  return `${LOGIN_PATH}?return_to=${encodeURIComponent(returnTo)}`;
}

/**
 * The public host's facts, for browsers on other hosts when `identity.session.cookie_domain`
 * shares the session cookie with them: login must run on the public host, where the IdP returns
 * and the pending-login cookie lives.
 */
export interface CrossHostLogin {
  /** Lower-case host name of `server.public_url`. */
  readonly publicHost: string;
  /** `https://gw.example.com`. */
  readonly publicOrigin: string;
  /** `https:`: the scheme browsers use, whatever the listener speaks behind a TLS proxy. */
  readonly protocol: string;
}

/**
 * Where an unauthenticated browser asking for `pathAndQuery` on `host` is sent: the relative
 * login path on the public host (and everywhere without a cookie domain, as before), the public
 * host's login with the absolute URL to come back to from any other host. The identity room
 * decides whether that URL is an acceptable destination.
 */
export function loginLocationFor(crossHost: CrossHostLogin | null, host: ParsedHost, pathAndQuery: string): string {
  if (crossHost === null || host.hostname === crossHost.publicHost) return loginLocation(pathAndQuery);
  return `${crossHost.publicOrigin}${loginLocation(`${crossHost.protocol}//${host.raw}${pathAndQuery}`)}`;
}

/**
 * The login routes (DESIGN.md §2 "Browser login"): the identity room does the protocol work;
 * these routes move the browser, set the cookies and write `auth.login`, `auth.logout` and
 * `auth.failure` records. The CLI login routes under `/_tollgate/cli/` are in `cli-login.ts`.
 */
export async function handleReserved(ctx: RequestContext, services: GatewayServices): Promise<void> {
  const method = ctx.req.method;
  if (ctx.path.startsWith(CLI_LOGIN_PREFIX)) return handleCliLogin(ctx, services);
  switch (ctx.path) {
    case LOGIN_PATH:
      if (method !== 'GET' && method !== 'HEAD') return sendMethodNotAllowed(ctx, 'GET, HEAD');
      return beginLogin(ctx, services);
    case CALLBACK_PATH:
      if (method !== 'GET') return sendMethodNotAllowed(ctx, 'GET');
      return completeLogin(ctx, services);
    case LOGOUT_PATH:
      if (method !== 'GET' && method !== 'POST') return sendMethodNotAllowed(ctx, 'GET, POST');
      return logout(ctx, services);
    default:
      return sendNotFound(ctx);
  }
}

/**
 * OIDC Core §3.1.2.1: sends the browser to the IdP with fresh `state`, `nonce` and PKCE, kept in
 * the sealed pending-login cookie together with the return path. The return path is only ever a
 * path on this gateway (`safeReturnTo` in the identity room).
 */
async function beginLogin(ctx: RequestContext, services: GatewayServices): Promise<void> {
  const returnTo = new URLSearchParams(ctx.query).get('return_to') ?? undefined;
  const crossHost = services.crossHostLogin;
  if (crossHost !== null && ctx.host.hostname !== crossHost.publicHost) {
    // A pending-login cookie set here would be missing at the callback on the public host. A
    // path is a path on this host; an absolute URL goes on as it is, for the identity room to judge.
    const absolute = returnTo !== undefined && !returnTo.startsWith('/');
    const location = absolute ? `${crossHost.publicOrigin}${loginLocation(returnTo)}` : loginLocationFor(crossHost, ctx.host, returnTo ?? '/');
    ctx.res.writeHead(302, { location, 'cache-control': 'no-store', 'content-length': 0 });
    ctx.res.end();
    return;
  }
  // No record, as for any login start: nothing has been tried at the IdP. The callback records.
  const unavailable = services.identity.unavailable();
  if (unavailable !== null) return sendIdpUnavailable(ctx, unavailable);
  const begin = await services.identity.beginLogin({ returnTo, returnHosts: services.returnHosts });
  ctx.res.writeHead(302, { location: begin.url, 'set-cookie': begin.pendingCookie, 'cache-control': 'no-store', 'content-length': 0 });
  ctx.res.end();
}

/**
 * OIDC Core §3.1.2.5: the IdP's redirect back, checked and redeemed by the identity room. Before
 * the IdP is discovered the code cannot be redeemed: `503`, and the pending-login cookie stays.
 */
async function completeLogin(ctx: RequestContext, services: GatewayServices): Promise<void> {
  const { identity } = services;
  const unavailable = identity.unavailable();
  if (unavailable !== null) {
    services.metrics.authFailures.labels('oidc', unavailable.reason).inc();
    try {
      await services.record(failureEvent({ method: 'oidc', reason: unavailable.reason, client: ctx.client }));
    } catch {
      return sendAuditUnavailable(ctx);
    }
    return sendIdpUnavailable(ctx, unavailable);
  }
  const result = await identity.completeLogin(`${ctx.path}${ctx.query}`, identity.pendingCookieValue(ctx.req.headers.cookie), services.returnHosts);
  if (result.ok) {
    try {
      await services.record(loginEvent(result.principal, result.session.user, sessionRef(result.session.sessionId), ctx.client));
    } catch {
      // No session without its login record: the browser can simply sign in again.
      return sendAuditUnavailable(ctx);
    }
    ctx.res.writeHead(302, { location: result.returnTo, 'set-cookie': [...result.setCookies], 'cache-control': 'no-store', 'content-length': 0 });
    ctx.res.end();
    return;
  }
  services.metrics.authFailures.labels('oidc', result.reason).inc();
  try {
    await services.record(
      failureEvent({ method: 'oidc', reason: result.reason, ...(result.detail === undefined ? {} : { detail: result.detail }), client: ctx.client }),
    );
  } catch {
    return sendAuditUnavailable(ctx);
  }
  const headers = result.setCookies.length === 0 ? {} : { 'set-cookie': [...result.setCookies] };
  if (!ctx.html) {
    sendError(ctx.res, false, { status: 400, error: 'login_failed', title: 'Sign-in failed', message: 'The sign-in could not be completed.', reason: result.reason, requestId: ctx.requestId, headers });
    return;
  }
  sendHtml(
    ctx.res,
    400,
    'Sign-in failed',
    '<h1>Sign-in failed</h1><p>The sign-in could not be completed. This happens when a sign-in link is used twice, ' +
      'or opened in another browser, or took too long.</p>' +
      `<p><a href="${LOGIN_PATH}">Sign in again</a></p>` +
      `<p class="muted">Reason: <code>${escapeHtml(result.reason)}</code> · Request id: <code>${escapeHtml(ctx.requestId)}</code></p>`,
    headers,
  );
}

/**
 * Ends the session: clears the cookie, remembers the session as ended (the sealed cookie would
 * otherwise stay valid until it expires), writes `auth.logout`, then sends the browser to the
 * IdP's end-session endpoint (OIDC RP-Initiated Logout 1.0) or home. A logout is never refused
 * for want of an audit record: ending access must always work; the failure is logged.
 */
async function logout(ctx: RequestContext, services: GatewayServices): Promise<void> {
  // Another site could otherwise sign people out by linking here (SameSite=Lax cookies go along
  // with top-level navigations). Browsers say where a request comes from in Sec-Fetch-Site (Fetch
  // Metadata); one sent from another site is asked to confirm on a page of ours instead.
  if (ctx.req.headers['sec-fetch-site'] === 'cross-site') return confirmLogout(ctx);
  const { identity } = services;
  const read = identity.readSessionCookie(ctx.req.headers.cookie);
  const session = read.ok ? read.session : undefined;
  if (session !== undefined) {
    services.auth.revoke(session);
    const ref = sessionRef(session.sessionId);
    try {
      await services.record(logoutEvent(sessionPrincipal(session), ref, 'logout', ctx.client));
    } catch (error) {
      services.logger.error({ err: error, req: ctx.requestId }, 'auth.logout could not be recorded; the session was ended anyway');
    }
  }
  const location = identity.logoutUrl(session, '/') ?? '/';
  ctx.res.writeHead(302, { location, 'set-cookie': identity.clearSessionCookie(), 'cache-control': 'no-store', 'content-length': 0 });
  ctx.res.end();
}

/** The page asking a browser that came from another site whether to sign out; its form posts back here. */
function confirmLogout(ctx: RequestContext): void {
  sendHtml(
    ctx.res,
    200,
    'Sign out?',
    '<h1>Sign out?</h1><p>Another site sent you here to sign you out of this gateway.</p>' +
      `<form method="post" action="${LOGOUT_PATH}"><button type="submit">Sign out</button></form>` +
      '<p><a href="/">Stay signed in</a></p>',
    { 'cache-control': 'no-store' },
  );
}
