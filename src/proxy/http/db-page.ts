import type { Caller } from './authenticate.js';
import { sendAuditUnavailable, sendMethodNotAllowed, sendNavigationRequired, type GatewayServices, type RequestContext } from './context.js';
import { databaseAccess, issueRecordedDbToken } from './db-access.js';
import { LOGIN_PATH, LOGOUT_PATH } from './login.js';
import { browserRequestKind, escapeHtml, sendError, sendHtml, sendJson } from './pages.js';

export const DB_PAGE_PATH = '/db';

/**
 * `/db` (DESIGN.md §2 "Postgres access"): after login, lists the Postgres resources the caller
 * may reach and the upstream logins policy grants there, and hands out a fresh database token
 * with a ready `psql` command. Database tokens are issued only here and by the admin CLI; each
 * one is recorded (`token.issued`, durable) before it is shown, and the page is never cached.
 * Browsers get HTML; clients asking for JSON get `{ user, token, expires_at, databases }`.
 *
 * Apps mounted by path on the public host share this page's origin, so their scripts could ask
 * for it like any same-origin resource. A browser gets a token only for a top-level navigation,
 * where the user sees it and a script cannot read it (the page's opener is severed by
 * `Cross-Origin-Opener-Policy`, and it cannot be framed); a navigation from another site is
 * asked to confirm first, and `HEAD` never issues one.
 */
export async function handleDbPage(ctx: RequestContext, services: GatewayServices): Promise<void> {
  const method = ctx.req.method;
  if (method !== 'GET' && method !== 'HEAD') return sendMethodNotAllowed(ctx, 'GET, HEAD');
  if (browserRequestKind(ctx.req.headers) === 'not-navigation') {
    return sendNavigationRequired(ctx, `Database tokens are shown only on a page opened in the browser window, by a link or the address bar; scripts, frames and embedded requests get none. Open ${DB_PAGE_PATH} in your browser.`);
  }
  const caller = await services.requireCaller(ctx);
  if (caller === null) return;
  const found = databaseAccess(services, caller.principal);
  if (!found.ok) {
    if (!ctx.html) return sendJson(ctx.res, 200, { user: caller.user, databases: [], message: found.message });
    return sendHtml(ctx.res, 200, 'Databases', `<h1>Databases</h1><p>${escapeHtml(found.message)}</p>${footer(caller)}`);
  }
  const { databases } = found.access;
  // RFC 9110 §9.3.2: HEAD answers with GET's headers and no content; a token nobody can read
  // would only be an issued credential and a record about nothing.
  if (method === 'HEAD') {
    if (!ctx.html) return sendJson(ctx.res, 200, { user: caller.user, databases });
    return confirmToken(ctx, caller);
  }
  // As logout does: a link on another site may send the browser here, and the user should not
  // get a fresh credential they did not ask for. The confirmation repeats the request from here.
  if (ctx.req.headers['sec-fetch-site'] === 'cross-site') return confirmToken(ctx, caller);

  const issued = await issueRecordedDbToken(services, { principal: caller.principal, sessionRef: caller.sessionRef, client: ctx.client, via: 'db-page' });
  if (!issued.ok) {
    if (issued.reason === 'audit-unavailable') return sendAuditUnavailable(ctx);
    sendError(ctx.res, ctx.html, { status: 500, error: 'token_not_issued', title: 'No token', message: 'A database token could not be issued.', reason: issued.detail, requestId: ctx.requestId });
    return;
  }
  const expires = new Date(issued.expiresAt).toISOString();
  if (!ctx.html) {
    sendJson(ctx.res, 200, { user: caller.user, token: issued.token, expires_at: expires, databases });
    return;
  }
  const rows = databases
    .map((db) => `<tr><td><code>${escapeHtml(db.name)}</code></td><td>${db.logins.map((login) => `<code>${escapeHtml(login)}</code>`).join(', ')}</td></tr>`)
    .join('');
  const commands = databases.map((db) => `<pre>PGPASSWORD='${escapeHtml(issued.token)}' ${escapeHtml(db.psql)}</pre>`).join('');
  sendHtml(
    ctx.res,
    200,
    'Databases',
    '<h1>Databases</h1>' +
      `<table><thead><tr><th>Database</th><th>Logins you are granted</th></tr></thead><tbody>${rows}</tbody></table>` +
      `<h2>Your database token</h2><p>Use it as the password. It expires at <code>${escapeHtml(expires)}</code>; reload this page for a new one.</p>` +
      `<pre>${escapeHtml(issued.token)}</pre><h2>Connect</h2>${commands}${footer(caller)}`,
  );
}

/** Asks before issuing; the form is a same-origin navigation back to this page. */
function confirmToken(ctx: RequestContext, caller: Caller): void {
  sendHtml(
    ctx.res,
    200,
    'Databases',
    '<h1>Get a database token?</h1>' +
      '<p>This page issues a new database token in your name each time it is opened, and records it. ' +
      'You were sent here from another site: continue only if you meant to get one.</p>' +
      `<form method="get" action="${DB_PAGE_PATH}"><p><button type="submit">Get a database token</button></p></form>${footer(caller)}`,
  );
}

function footer(caller: Caller): string {
  return (
    `<p class="muted">Signed in as <strong>${escapeHtml(caller.user)}</strong> · ` +
    `<a href="/">Home</a> · <a href="${LOGOUT_PATH}">Sign out</a></p>`
  );
}

/**
 * `/` on the gateway's own host when no resource serves it: who is signed in, the applications
 * reachable by path on this host, and the way to `/db` and out.
 */
export async function handleHome(ctx: RequestContext, services: GatewayServices): Promise<void> {
  const outcome = await services.auth.authenticate(ctx.req.headers);
  const caller = outcome.kind === 'caller' ? outcome.caller : null;
  const apps = services.config.resources
    .filter((resource) => resource.kind === 'http' && resource.match.path_prefix !== undefined && (resource.match.host === undefined || resource.match.host === ctx.host.hostname))
    .map((resource) => (resource.kind === 'http' ? `<li><a href="${escapeHtml(resource.match.path_prefix ?? '/')}">${escapeHtml(resource.name)}</a></li>` : ''))
    .join('');
  const extra = outcome.kind === 'refused' ? {} : outcome.setCookies.length > 0 ? { 'set-cookie': [...outcome.setCookies] } : {};
  if (caller === null) {
    sendHtml(ctx.res, 200, 'Tollgate', `<h1>Tollgate</h1><p>You are not signed in.</p><p><a href="${LOGIN_PATH}">Sign in</a></p>`, extra);
    return;
  }
  sendHtml(
    ctx.res,
    200,
    'Tollgate',
    `<h1>Tollgate</h1>${apps === '' ? '' : `<h2>Applications</h2><ul>${apps}</ul>`}` +
      `<p><a href="${DB_PAGE_PATH}">Databases</a> (tokens for psql)</p>` +
      `<form method="post" action="${LOGOUT_PATH}"><p class="muted">Signed in as <strong>${escapeHtml(caller.user)}</strong> <button type="submit">Sign out</button></p></form>`,
    extra,
  );
}
