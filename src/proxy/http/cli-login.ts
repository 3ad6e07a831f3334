import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AuditEvent } from '../../audit/index.js';
import { systemClock } from '../../core/index.js';
import { auditPrincipal } from '../../audit/index.js';
import type { ClientFacts } from './audit-events.js';
import type { Caller } from './authenticate.js';
import {
  CliLoginGrants,
  checkLoopbackRedirectUri,
  clientNetwork,
  formatUserCode,
  isPkceValue,
  normalizeUserCode,
  type CliApproval,
  type CodeFailureReason,
  type DevicePollError,
  type PendingDevice,
  type RedirectUriProblem,
} from './cli-login-grants.js';
import { closeIfBodyUnread, sendMethodNotAllowed, sendNavigationRequired, sendNotFound, type GatewayServices, type RequestContext } from './context.js';
import { databaseAccess, issueRecordedDbToken, type DatabaseAccess } from './db-access.js';
import { browserRequestKind, escapeHtml, sendError, sendHtml, sendJson } from './pages.js';

/** Every CLI login route lives under this prefix (inside the reserved `/_tollgate/`). */
export const CLI_LOGIN_PREFIX = '/_tollgate/cli/';
/** RFC 8252 loopback flow: the browser's authorization and consent page. */
export const CLI_AUTHORIZE_PATH = '/_tollgate/cli/authorize';
/** RFC 8628: `POST` starts a device grant (the CLI); `GET` is the page where the user enters the code. */
export const CLI_DEVICE_PATH = '/_tollgate/cli/device';
/** Where the device page's Approve / Cancel form posts. */
export const CLI_DEVICE_APPROVE_PATH = '/_tollgate/cli/device/approve';
/** The token endpoint of both grants. */
export const CLI_TOKEN_PATH = '/_tollgate/cli/token';
/** RFC 8628 §3.4. */
export const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

/** Request bodies of these routes are a few hundred bytes; more is refused unread. */
const MAX_BODY_BYTES = 16 * 1024;
/** A consent or device form must be submitted within this time after it was shown. */
const FORM_MAX_AGE_MS = 10 * 60_000;
/** RFC 6749 §4.1.1 `state`: printable ASCII, bounded here. */
const STATE_VALUE = /^[\x20-\x7E]{1,512}$/;

/** The pending grants and the form key of one gateway; both live only in this process. */
interface CliLoginState {
  readonly grants: CliLoginGrants;
  /** Keys the anti-CSRF values of the consent and device forms. */
  readonly formKey: Buffer;
}

const states = new WeakMap<GatewayServices, CliLoginState>();

function stateOf(services: GatewayServices): CliLoginState {
  let state = states.get(services);
  if (state === undefined) {
    state = { grants: new CliLoginGrants({ clock: systemClock }), formKey: randomBytes(32) };
    states.set(services, state);
  }
  return state;
}

/**
 * The routes behind `tollgate login` (README "Logging in from a terminal"):
 * - the loopback flow (RFC 8252 §7.3 with PKCE, RFC 7636): `GET /_tollgate/cli/authorize`
 *   shows a consent page to the signed-in user, whose Approve sends the browser back to the
 *   CLI's `http://127.0.0.1:<port>/…` with a one-time code;
 * - the device flow (RFC 8628) for terminals without a browser: `POST /_tollgate/cli/device`,
 *   then the user confirms the code at `/_tollgate/cli/device`;
 * - `POST /_tollgate/cli/token` redeems either for a database token, recorded as
 *   `token.issued` before it is returned.
 * Codes and grants are held in memory by this gateway process.
 */
export async function handleCliLogin(ctx: RequestContext, services: GatewayServices): Promise<void> {
  const state = stateOf(services);
  const method = ctx.req.method;
  switch (ctx.path) {
    case CLI_AUTHORIZE_PATH:
      if (method === 'GET' || method === 'HEAD') return showConsent(ctx, services, state);
      if (method === 'POST') return decideConsent(ctx, services, state);
      return sendMethodNotAllowed(ctx, 'GET, HEAD, POST');
    case CLI_DEVICE_PATH:
      if (method === 'POST') return startDevice(ctx, services, state);
      if (method === 'GET' || method === 'HEAD') return showDevicePage(ctx, services, state);
      return sendMethodNotAllowed(ctx, 'GET, HEAD, POST');
    case CLI_DEVICE_APPROVE_PATH:
      if (method === 'POST') return decideDevice(ctx, services, state);
      return sendMethodNotAllowed(ctx, 'POST');
    case CLI_TOKEN_PATH:
      if (method === 'POST') return token(ctx, services, state);
      return sendMethodNotAllowed(ctx, 'POST');
    default:
      return sendNotFound(ctx);
  }
}

// ---- loopback flow ---------------------------------------------------------------------------

interface AuthorizeRequest {
  readonly redirectUri: string;
  /** The CLI's origin, allowed as a form target on the consent page (CSP `form-action`). */
  readonly redirectOrigin: string;
  readonly state: string;
  readonly codeChallenge: string;
}

type AuthorizeParse =
  | { readonly ok: true; readonly request: AuthorizeRequest }
  /** RFC 6749 §4.1.2.1: with a bad `redirect_uri` the error is shown, never redirected. */
  | { readonly ok: false; readonly redirectUri: null; readonly reason: RedirectUriProblem }
  | { readonly ok: false; readonly redirectUri: string; readonly state: string | undefined; readonly error: string; readonly description: string };

function parseAuthorizeRequest(params: ReadonlyMap<string, string>): AuthorizeParse {
  const redirect = checkLoopbackRedirectUri(params.get('redirect_uri'));
  if (!redirect.ok) return { ok: false, redirectUri: null, reason: redirect.reason };
  const state = params.get('state');
  const fail = (error: string, description: string): AuthorizeParse => ({
    ok: false,
    redirectUri: redirect.uri,
    state: state !== undefined && STATE_VALUE.test(state) ? state : undefined,
    error,
    description,
  });
  const responseType = params.get('response_type');
  if (responseType !== undefined && responseType !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported');
  if (state === undefined || !STATE_VALUE.test(state)) return fail('invalid_request', 'state is required: up to 512 printable ASCII characters');
  // RFC 7636 §4.3; only S256, since `plain` would put the verifier itself in the browser's URL.
  if (params.get('code_challenge_method') !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256');
  const codeChallenge = params.get('code_challenge');
  if (!isPkceValue(codeChallenge)) return fail('invalid_request', 'code_challenge is required: BASE64URL(SHA256(code_verifier))');
  return { ok: true, request: { redirectUri: redirect.uri, redirectOrigin: redirect.origin, state, codeChallenge } };
}

const REDIRECT_PROBLEMS: Readonly<Record<RedirectUriProblem, string>> = {
  missing: 'The request names no redirect_uri.',
  'too-long': 'The redirect_uri is too long.',
  'not-http': 'The redirect_uri must be an http:// address on this computer (RFC 8252 §7.3).',
  localhost: 'The redirect_uri names "localhost"; only the loopback IP literals 127.0.0.1 and [::1] are accepted (RFC 8252 §8.3).',
  'not-loopback-ip': 'The redirect_uri is not on this computer: only http://127.0.0.1:<port>/… and http://[::1]:<port>/… are accepted.',
  fragment: 'The redirect_uri may not contain a fragment.',
  malformed: 'The redirect_uri is not a valid address.',
};

/** A refused authorization request: a page when the CLI cannot be trusted with the answer, else a redirect with the error. */
function refuseAuthorize(ctx: RequestContext, parsed: AuthorizeParse & { ok: false }): void {
  if (parsed.redirectUri === null) {
    closeIfBodyUnread(ctx.req, ctx.res);
    sendError(ctx.res, ctx.html, {
      status: 400,
      error: 'invalid_request',
      title: 'Bad sign-in request',
      message: `${REDIRECT_PROBLEMS[parsed.reason]} Run tollgate login again; if this keeps happening, the program that opened this page is not the Tollgate CLI.`,
      reason: `redirect-uri-${parsed.reason}`,
      requestId: ctx.requestId,
    });
    return;
  }
  redirectToCli(ctx, parsed.redirectUri, { error: parsed.error, error_description: parsed.description, ...(parsed.state === undefined ? {} : { state: parsed.state }) });
}

/** RFC 6749 §4.1.2: back to the CLI's loopback listener with the answer in the query. */
function redirectToCli(ctx: RequestContext, redirectUri: string, params: Readonly<Record<string, string>>): void {
  const target = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) target.searchParams.append(name, value);
  closeIfBodyUnread(ctx.req, ctx.res);
  ctx.res.writeHead(302, { location: target.href, 'cache-control': 'no-store', 'content-length': 0 });
  ctx.res.end();
}

/**
 * `GET /_tollgate/cli/authorize`: checks the request, sends a browser without a session to log
 * in (returning here), and asks the signed-in user to approve.
 */
async function showConsent(ctx: RequestContext, services: GatewayServices, state: CliLoginState): Promise<void> {
  if (browserRequestKind(ctx.req.headers) === 'not-navigation') return refuseNonNavigation(ctx);
  const parsed = parseAuthorizeRequest(queryParams(ctx.query));
  if (!parsed.ok) return refuseAuthorize(ctx, parsed);
  const caller = await requireBrowserCaller(ctx, services);
  if (caller === null) return;
  const { request } = parsed;
  const access = databaseAccess(services, caller.principal);
  if (!access.ok) return redirectToCli(ctx, request.redirectUri, { error: 'access_denied', error_description: access.message, state: request.state });
  const issuedAt = Date.now();
  const formToken = signForm(state, issuedAt, ['authorize', caller.sessionRef ?? '', request.redirectUri, request.state, request.codeChallenge]);
  const hidden = [
    ['redirect_uri', request.redirectUri],
    ['state', request.state],
    ['code_challenge', request.codeChallenge],
    ['code_challenge_method', 'S256'],
    ['form_token', formToken],
  ]
    .map(([name, value]) => `<input type="hidden" name="${name}" value="${escapeHtml(value ?? '')}">`)
    .join('');
  const question = `Sign in the Tollgate CLI as ${caller.user}?`;
  sendHtml(
    ctx.res,
    200,
    'Sign in the Tollgate CLI',
    `<h1>${escapeHtml(question)}</h1>` +
      '<p>The <code>tollgate login</code> command on this computer asks for a database token in your name. ' +
      'Approve only if you started it just now.</p>' +
      `<p>With it, the command can connect as you to: ${databaseList(access.access)}.</p>` +
      `<form method="post" action="${CLI_AUTHORIZE_PATH}">${hidden}` +
      '<p><button type="submit" name="decision" value="approve">Approve</button> ' +
      '<button type="submit" name="decision" value="cancel">Cancel</button></p></form>' +
      `<p class="muted">The answer goes to <code>${escapeHtml(request.redirectUri)}</code>, the command's listener on this computer.</p>`,
    // Browsers apply form-action to the redirect after the form is posted, so the CLI's origin
    // is allowed too (CSP Level 3 §6.4.1).
    { 'content-security-policy': consentPolicy(request.redirectOrigin) },
  );
}

/** `POST /_tollgate/cli/authorize`: the user's Approve or Cancel. */
async function decideConsent(ctx: RequestContext, services: GatewayServices, state: CliLoginState): Promise<void> {
  if (!sameOrigin(ctx, services)) return refuseCrossSite(ctx);
  if (browserRequestKind(ctx.req.headers) === 'not-navigation') return refuseNonNavigation(ctx);
  const body = await readParams(ctx);
  if (!body.ok) return sendBodyProblem(ctx, body, false);
  const parsed = parseAuthorizeRequest(body.params);
  if (!parsed.ok) return refuseAuthorize(ctx, parsed);
  const caller = await requireBrowserCaller(ctx, services);
  if (caller === null) return;
  const { request } = parsed;
  if (!verifyForm(state, body.params.get('form_token'), ['authorize', caller.sessionRef ?? '', request.redirectUri, request.state, request.codeChallenge])) {
    return staleForm(ctx);
  }
  if (body.params.get('decision') !== 'approve') {
    return redirectToCli(ctx, request.redirectUri, { error: 'access_denied', error_description: 'the user cancelled the sign-in', state: request.state });
  }
  const code = state.grants.issueCode({
    principal: caller.principal,
    user: caller.user,
    sessionRef: caller.sessionRef,
    redirectUri: request.redirectUri,
    codeChallenge: request.codeChallenge,
  });
  if (code === null) {
    services.metrics.cliLoginRefusals.labels('code-pending-limit').inc();
    return busy(ctx);
  }
  redirectToCli(ctx, request.redirectUri, { code, state: request.state });
}

// ---- device flow -----------------------------------------------------------------------------

/** RFC 8628 §3.1–3.2: the device authorization request of a CLI without a browser. */
async function startDevice(ctx: RequestContext, services: GatewayServices, state: CliLoginState): Promise<void> {
  const body = await readParams(ctx);
  if (!body.ok) return sendBodyProblem(ctx, body, true);
  const unavailable = tokensUnavailable(services);
  if (unavailable !== null) return oauthError(ctx, 400, 'invalid_request', unavailable);
  const started = state.grants.startDevice(clientNetwork(ctx.client.remote));
  if (!started.ok) {
    const seconds = Math.max(1, Math.ceil(started.retryAfterMs / 1000));
    const retryAfter = { 'retry-after': String(seconds) };
    if (started.reason === 'client-limit') {
      services.metrics.cliLoginRefusals.labels('device-client-limit').inc();
      // RFC 6585 §4 status; `slow_down` as RFC 8628 §3.5 uses it: this client must wait.
      return oauthError(
        ctx,
        429,
        'slow_down',
        `${started.limit} sign-ins started from your network are still waiting for approval; approve one in the browser, or try again in ${seconds} s when the oldest expires`,
        retryAfter,
      );
    }
    services.metrics.cliLoginRefusals.labels('device-pending-limit').inc();
    return oauthError(ctx, 503, 'temporarily_unavailable', `too many sign-ins are pending on this gateway; try again in ${seconds} s`, retryAfter);
  }
  const verificationUri = new URL(CLI_DEVICE_PATH, services.config.server.public_url).href;
  const userCode = formatUserCode(started.userCode);
  sendJson(ctx.res, 200, {
    device_code: started.deviceCode,
    user_code: userCode,
    verification_uri: verificationUri,
    verification_uri_complete: `${verificationUri}?user_code=${encodeURIComponent(userCode)}`,
    expires_in: Math.floor(started.expiresInMs / 1000),
    interval: Math.ceil(started.intervalMs / 1000),
  });
}

/**
 * `GET /_tollgate/cli/device[?user_code=…]` (RFC 8628 §3.3): after login, a form for the code,
 * or, with a code that is waiting, the question whether to approve it.
 */
async function showDevicePage(ctx: RequestContext, services: GatewayServices, state: CliLoginState): Promise<void> {
  if (browserRequestKind(ctx.req.headers) === 'not-navigation') return refuseNonNavigation(ctx);
  const caller = await requireBrowserCaller(ctx, services);
  if (caller === null) return;
  const attemptKey = caller.sessionRef ?? caller.reuseKey;
  if (!state.grants.userCodeAttempt(attemptKey, false)) return tooManyCodes(ctx);
  const typed = queryParams(ctx.query).get('user_code');
  if (typed === undefined || typed.trim() === '') return sendCodeForm(ctx, caller, null);
  const userCode = normalizeUserCode(typed);
  const pending = userCode === null ? null : state.grants.pendingDevice(userCode);
  if (userCode === null || pending === null) {
    if (!state.grants.userCodeAttempt(attemptKey, true)) return tooManyCodes(ctx);
    return sendCodeForm(ctx, caller, 'That code is not valid, was already used, or has expired. Check the code your terminal shows, or run tollgate login again.');
  }
  const access = databaseAccess(services, caller.principal);
  if (!access.ok) {
    return sendError(ctx.res, true, { status: 403, error: 'access_denied', title: 'No databases', message: access.message, requestId: ctx.requestId });
  }
  const formatted = formatUserCode(userCode);
  const formToken = signForm(state, Date.now(), ['device', caller.sessionRef ?? '', userCode]);
  sendHtml(
    ctx.res,
    200,
    'Sign in the Tollgate CLI',
    `<h1>${escapeHtml(`Sign in the Tollgate CLI as ${caller.user}?`)}</h1>` +
      `<p>A <code>tollgate login</code> command asks for a database token in your name. Approve only if you started it ` +
      `and your terminal shows the code <strong><code>${formatted}</code></strong>.</p>` +
      startedWhere(pending, clientNetwork(ctx.client.remote), Date.now()) +
      `<p>With it, the command can connect as you to: ${databaseList(access.access)}.</p>` +
      `<form method="post" action="${CLI_DEVICE_APPROVE_PATH}">` +
      `<input type="hidden" name="user_code" value="${formatted}"><input type="hidden" name="form_token" value="${escapeHtml(formToken)}">` +
      '<p><button type="submit" name="decision" value="approve">Approve</button> ' +
      '<button type="submit" name="decision" value="cancel">Cancel</button></p></form>',
  );
}

/**
 * Where and when the sign-in was started, and whether from this browser's network: a code someone
 * else started (and sent as a link or read out) comes from their machine, which the user can see.
 */
function startedWhere(pending: PendingDevice, browserNetwork: string, now: number): string {
  const minutes = Math.max(0, Math.round((now - pending.startedAt) / 60_000));
  const when = minutes === 0 ? 'less than a minute ago' : minutes === 1 ? 'a minute ago' : `${minutes} minutes ago`;
  const where = `<code>${escapeHtml(pending.client)}</code>`;
  return pending.client === browserNetwork
    ? `<p class="muted">It was started ${when} from ${where}, the network this browser is on.</p>`
    : `<p><strong>It was started ${when} from ${where}, not from the network this browser is on.</strong> ` +
        'Cancel unless you started it on another machine yourself.</p>';
}

/** `POST /_tollgate/cli/device/approve`: the user's Approve or Cancel of a device grant. */
async function decideDevice(ctx: RequestContext, services: GatewayServices, state: CliLoginState): Promise<void> {
  if (!sameOrigin(ctx, services)) return refuseCrossSite(ctx);
  if (browserRequestKind(ctx.req.headers) === 'not-navigation') return refuseNonNavigation(ctx);
  const body = await readParams(ctx);
  if (!body.ok) return sendBodyProblem(ctx, body, false);
  const caller = await requireBrowserCaller(ctx, services);
  if (caller === null) return;
  const userCode = normalizeUserCode(body.params.get('user_code'));
  if (userCode === null || !verifyForm(state, body.params.get('form_token'), ['device', caller.sessionRef ?? '', userCode])) return staleForm(ctx);
  const approve = body.params.get('decision') === 'approve';
  const decided = state.grants.decideDevice(userCode, approve ? { principal: caller.principal, user: caller.user, sessionRef: caller.sessionRef } : null);
  if (decided !== 'decided') {
    return sendError(ctx.res, true, {
      status: 400,
      error: 'invalid_grant',
      title: 'Code no longer valid',
      message: decided === 'already-decided' ? 'This code was already approved or cancelled.' : 'This code has expired or is unknown. Run tollgate login again.',
      requestId: ctx.requestId,
    });
  }
  const title = approve ? 'The Tollgate CLI is signed in' : 'Sign-in cancelled';
  const text = approve
    ? `Your terminal receives a database token for ${caller.user} within a few seconds. You can close this tab.`
    : 'The command was not signed in. You can close this tab.';
  sendHtml(ctx.res, 200, title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>`);
}

function sendCodeForm(ctx: RequestContext, caller: Caller, problem: string | null): void {
  sendHtml(
    ctx.res,
    problem === null ? 200 : 400,
    'Sign in the Tollgate CLI',
    '<h1>Sign in the Tollgate CLI</h1>' +
      (problem === null ? '' : `<p role="alert"><strong>${escapeHtml(problem)}</strong></p>`) +
      `<form method="get" action="${CLI_DEVICE_PATH}"><p><label for="user_code">Enter the code your terminal shows</label></p>` +
      '<p><input id="user_code" name="user_code" type="text" autocomplete="off" autocapitalize="characters" spellcheck="false" ' +
      'placeholder="XXXX-XXXX" maxlength="16" required autofocus> <button type="submit">Continue</button></p></form>' +
      `<p class="muted">Signed in as <strong>${escapeHtml(caller.user)}</strong></p>`,
  );
}

function tooManyCodes(ctx: RequestContext): void {
  sendError(ctx.res, true, {
    status: 429,
    error: 'too_many_attempts',
    title: 'Too many wrong codes',
    message: 'This session entered too many wrong codes. Sign out and in again, then enter the code your terminal shows.',
    requestId: ctx.requestId,
  });
}

// ---- token endpoint --------------------------------------------------------------------------

/** RFC 6749 §4.1.3 and RFC 8628 §3.4: redeem a code or a device grant for a database token. */
async function token(ctx: RequestContext, services: GatewayServices, state: CliLoginState): Promise<void> {
  const body = await readParams(ctx);
  if (!body.ok) return sendBodyProblem(ctx, body, true);
  const { params } = body;
  const grantType = params.get('grant_type');
  if (grantType === 'authorization_code') {
    const code = params.get('code');
    const codeVerifier = params.get('code_verifier');
    const redirectUri = params.get('redirect_uri');
    if (code === undefined || codeVerifier === undefined || redirectUri === undefined) {
      return oauthError(ctx, 400, 'invalid_request', 'code, code_verifier and redirect_uri are required');
    }
    const redeemed = state.grants.redeemCode({ code, codeVerifier, redirectUri });
    if (!redeemed.ok) {
      if (!(await recordCodeFailure(ctx, services, redeemed.reason, redeemed.approval))) return oauthAuditUnavailable(ctx);
      return oauthError(ctx, 400, 'invalid_grant', CODE_FAILURES[redeemed.reason]);
    }
    const issued = await issueFor(ctx, services, redeemed.approval);
    if (issued !== null) sendJson(ctx.res, 200, issued, { pragma: 'no-cache' });
    return;
  }
  if (grantType === DEVICE_CODE_GRANT_TYPE) {
    const deviceCode = params.get('device_code');
    if (deviceCode === undefined) return oauthError(ctx, 400, 'invalid_request', 'device_code is required');
    const polled = state.grants.pollDevice(deviceCode);
    if (!polled.ok) {
      if (polled.error === 'invalid_grant' && !(await recordCodeFailure(ctx, services, 'code-unknown', undefined))) return oauthAuditUnavailable(ctx);
      return oauthError(ctx, 400, polled.error, DEVICE_ERRORS[polled.error]);
    }
    const issued = await issueFor(ctx, services, polled.approval);
    polled.settle(issued !== null);
    if (issued !== null) sendJson(ctx.res, 200, issued, { pragma: 'no-cache' });
    return;
  }
  if (grantType === undefined) return oauthError(ctx, 400, 'invalid_request', 'grant_type is required');
  return oauthError(ctx, 400, 'unsupported_grant_type', `use authorization_code or ${DEVICE_CODE_GRANT_TYPE}`);
}

const CODE_FAILURES: Readonly<Record<CodeFailureReason, string>> = {
  'code-unknown': 'the code is unknown or was already used; run tollgate login again',
  'code-expired': 'the code has expired; run tollgate login again',
  'redirect-uri-mismatch': 'redirect_uri differs from the one the code was issued for',
  'verifier-malformed': 'code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)',
  'pkce-mismatch': 'code_verifier does not match the code_challenge',
};

const DEVICE_ERRORS: Readonly<Record<DevicePollError, string>> = {
  authorization_pending: 'the user has not approved the code yet',
  slow_down: 'polling too fast; wait 5 more seconds between polls',
  access_denied: 'the user cancelled the sign-in',
  expired_token: 'the code expired before it was approved; run tollgate login again',
  invalid_grant: 'the device code is unknown or was already used',
};

/** The token response (README "Logging in from a terminal"). */
interface CliTokenResponse {
  readonly token: string;
  readonly expires_at: string;
  readonly user: string;
  readonly postgres: DatabaseAccess['endpoint'];
  readonly databases: ReadonlyArray<{ readonly name: string; readonly logins: readonly string[] }>;
}

/** Issues and records the token for an approval; `null` once an error has been sent. */
async function issueFor(ctx: RequestContext, services: GatewayServices, approval: CliApproval): Promise<CliTokenResponse | null> {
  const found = databaseAccess(services, approval.principal);
  if (!found.ok) {
    oauthError(ctx, 400, 'access_denied', found.message);
    return null;
  }
  const issued = await issueRecordedDbToken(services, { principal: approval.principal, sessionRef: approval.sessionRef, client: ctx.client, via: 'cli-login' });
  if (!issued.ok) {
    if (issued.reason === 'audit-unavailable') oauthAuditUnavailable(ctx);
    else oauthError(ctx, 500, 'server_error', `no token could be issued (${issued.detail})`);
    return null;
  }
  const { access } = found;
  return {
    token: issued.token,
    expires_at: new Date(issued.expiresAt).toISOString(),
    user: access.user,
    postgres: access.endpoint,
    databases: access.databases.map((db) => ({ name: db.name, logins: db.logins })),
  };
}

/** `auth.failure` for a code or device code that was refused; `false` when it could not be recorded. */
async function recordCodeFailure(ctx: RequestContext, services: GatewayServices, reason: CodeFailureReason, approval: CliApproval | undefined): Promise<boolean> {
  services.metrics.authFailures.labels('cli-login', reason).inc();
  try {
    await services.record(cliFailureEvent(reason, ctx.client, approval));
    return true;
  } catch {
    return false;
  }
}

function cliFailureEvent(reason: string, client: ClientFacts, approval: CliApproval | undefined): AuditEvent {
  return {
    kind: 'auth.failure',
    ...(approval === undefined ? {} : { principal: auditPrincipal(approval.principal) }),
    request_id: client.requestId,
    ...(approval?.sessionRef === undefined ? {} : { session_id: approval.sessionRef }),
    data: { method: 'cli-login', reason, remote: client.remote, user_agent: client.userAgent },
  };
}

/** RFC 6749 §5.2 error response. */
function oauthError(ctx: RequestContext, status: number, error: string, description: string, headers: Readonly<Record<string, string>> = {}): void {
  closeIfBodyUnread(ctx.req, ctx.res);
  sendJson(ctx.res, status, { error, error_description: description }, { pragma: 'no-cache', ...headers });
}

function oauthAuditUnavailable(ctx: RequestContext): void {
  oauthError(ctx, 503, 'temporarily_unavailable', 'the gateway cannot record the sign-in right now; try again in a few seconds', { 'retry-after': '5' });
}

// ---- shared pieces ---------------------------------------------------------------------------

/** Why no database token can be had here at all, or `null`. */
function tokensUnavailable(services: GatewayServices): string | null {
  if (services.config.server.postgres === undefined) return 'this gateway has no PostgreSQL listener';
  if (services.identity.dbTokens === null) return 'database tokens are not configured on this gateway (identity.db_tokens.signing_key)';
  return null;
}

/**
 * The caller of a page that must be approved in a browser session: a bearer token (an API
 * client) cannot approve a CLI login, since nobody would have seen the question.
 */
async function requireBrowserCaller(ctx: RequestContext, services: GatewayServices): Promise<Caller | null> {
  const caller = await services.requireCaller(ctx);
  if (caller === null) return null;
  if (caller.auth === 'session') return caller;
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, ctx.html, {
    status: 403,
    error: 'browser_session_required',
    title: 'Sign in with your browser',
    message: 'A CLI login is approved in a browser signed in to the gateway, not with a bearer token.',
    requestId: ctx.requestId,
  });
  return null;
}

/**
 * The forms post to the gateway itself. Beside the session-bound form token, a browser's own
 * `Sec-Fetch-Site` and `Origin` (RFC 6454 §7) headers must not name another site. The pages are
 * sent with `Referrer-Policy: no-referrer`, under which browsers send `Origin: null` even for a
 * same-origin form (Fetch §3.2.5), so `null` says nothing either way.
 */
function sameOrigin(ctx: RequestContext, services: GatewayServices): boolean {
  const site = ctx.req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = ctx.req.headers.origin;
  if (origin === undefined || origin === 'null') return true;
  const scheme = new URL(services.config.server.public_url).protocol;
  return origin === `${scheme}//${ctx.host.raw}`;
}

function refuseCrossSite(ctx: RequestContext): void {
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, true, {
    status: 403,
    error: 'cross_site',
    title: 'Refused',
    message: 'This form can only be submitted from the gateway\'s own page. Run tollgate login again.',
    requestId: ctx.requestId,
  });
}

/**
 * The consent and device pages carry a form token that approves a sign-in, and apps mounted by
 * path share their origin: a script there must neither read a page (only a top-level navigation
 * gets one; `Cross-Origin-Opener-Policy` keeps an opener from reading the window) nor post a
 * form with `fetch`. A real form submission is a navigation too (request mode `navigate` in the
 * Fetch Standard); clients without Fetch Metadata are judged by the form token alone.
 */
function refuseNonNavigation(ctx: RequestContext): void {
  sendNavigationRequired(ctx, 'Sign-ins are approved only on a page opened in the browser window, by the address tollgate login shows or a link; scripts and frames cannot. Open that address in your browser.');
}

function staleForm(ctx: RequestContext): void {
  sendError(ctx.res, true, {
    status: 400,
    error: 'stale_form',
    title: 'This page has expired',
    message: 'The page was open too long, or belongs to another sign-in. Run tollgate login again.',
    requestId: ctx.requestId,
  });
}

function busy(ctx: RequestContext): void {
  sendError(ctx.res, true, {
    status: 503,
    error: 'temporarily_unavailable',
    title: 'Busy',
    message: 'Too many sign-ins are pending on this gateway. Try again in a minute.',
    requestId: ctx.requestId,
    headers: { 'retry-after': '60' },
  });
}

/**
 * The anti-CSRF value of a form: `<issued ms>.<HMAC-SHA256 over the issue time and the form's
 * fields>`, the fields including the session reference, so a value works only for the session
 * and the request it was shown for, and only for {@link FORM_MAX_AGE_MS}.
 */
function signForm(state: CliLoginState, issuedAt: number, fields: readonly string[]): string {
  return `${issuedAt}.${formMac(state, issuedAt, fields).toString('base64url')}`;
}

function verifyForm(state: CliLoginState, value: string | undefined, fields: readonly string[]): boolean {
  const match = value === undefined ? null : /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (match === null) return false;
  const issuedAt = Number(match[1]);
  const age = Date.now() - issuedAt;
  if (age < 0 || age > FORM_MAX_AGE_MS) return false;
  return timingSafeEqual(Buffer.from(match[2] ?? '', 'base64url'), formMac(state, issuedAt, fields));
}

function formMac(state: CliLoginState, issuedAt: number, fields: readonly string[]): Buffer {
  const mac = createHmac('sha256', state.formKey).update(String(issuedAt));
  for (const field of fields) mac.update('\0').update(field, 'utf8');
  return mac.digest();
}

/** The pages' policy (`PAGE_SECURITY_HEADERS`), with the CLI's loopback origin as a form target. */
function consentPolicy(redirectOrigin: string): string {
  return `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${redirectOrigin}; frame-ancestors 'none'; base-uri 'none'`;
}

function databaseList(access: DatabaseAccess): string {
  return access.databases
    .map((db) => `<code>${escapeHtml(db.name)}</code> (${db.logins.map((login) => escapeHtml(login)).join(', ')})`)
    .join(', ');
}

/** The query's parameters; a repeated parameter counts as absent (RFC 6749 §3.1). */
function queryParams(query: string): ReadonlyMap<string, string> {
  return uniqueParams(new URLSearchParams(query));
}

function uniqueParams(search: URLSearchParams): Map<string, string> {
  const params = new Map<string, string>();
  const repeated = new Set<string>();
  for (const [name, value] of search) {
    if (params.has(name)) repeated.add(name);
    params.set(name, value);
  }
  for (const name of repeated) params.delete(name);
  return params;
}

type ParamsRead =
  | { readonly ok: true; readonly params: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly status: 400 | 413 | 415; readonly description: string };

/**
 * The request's parameters from an `application/x-www-form-urlencoded` or JSON body of at most
 * {@link MAX_BODY_BYTES}; an empty body has none.
 */
async function readParams(ctx: RequestContext): Promise<ParamsRead> {
  const { req } = ctx;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) return { ok: false, status: 413, description: `the body may be at most ${MAX_BODY_BYTES} bytes` };
  if (/^100-continue$/i.test(req.headers.expect ?? '')) ctx.res.writeContinue();
  const bytes = await readBody(req, MAX_BODY_BYTES);
  if (bytes === null) return { ok: false, status: 413, description: `the body may be at most ${MAX_BODY_BYTES} bytes` };
  if (bytes.length === 0) return { ok: true, params: new Map() };
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return { ok: true, params: uniqueParams(new URLSearchParams(bytes.toString('utf8'))) };
  if (type === 'application/json') {
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      return { ok: false, status: 400, description: 'the body is not valid JSON' };
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, status: 400, description: 'the JSON body must be an object' };
    const params = new Map<string, string>();
    for (const [name, field] of Object.entries(value)) if (typeof field === 'string') params.set(name, field);
    return { ok: true, params };
  }
  return { ok: false, status: 415, description: 'send the parameters as application/x-www-form-urlencoded or application/json' };
}

/** The whole body, or `null` when it grows past `max` or the client goes away. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (value: Buffer | null): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
      if (value === null) req.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) finish(null);
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(Buffer.concat(chunks));
    const onAbort = (): void => finish(null);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}

/** A body that could not be read: an RFC 6749 §5.2 `invalid_request` for the CLI's endpoints, a page for forms. */
function sendBodyProblem(ctx: RequestContext, problem: ParamsRead & { ok: false }, oauth: boolean): void {
  if (problem.status === 413) {
    ctx.res.shouldKeepAlive = false;
    ctx.res.setHeader('connection', 'close');
  }
  if (oauth) return oauthError(ctx, problem.status, 'invalid_request', problem.description);
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, ctx.html, { status: problem.status, error: 'invalid_request', title: 'Bad request', message: problem.description, requestId: ctx.requestId });
}

