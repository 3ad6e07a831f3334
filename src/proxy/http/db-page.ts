import { splitHostPort, type PostgresResourceConfig } from '../../config/index.js';
import { grantedLogins } from '../../policy/index.js';
import { tokenIssuedEvent } from './audit-events.js';
import type { Caller } from './authenticate.js';
import { sendAuditUnavailable, type GatewayServices, type RequestContext } from './context.js';
import { LOGIN_PATH, LOGOUT_PATH } from './login.js';
import { escapeHtml, sendError, sendHtml, sendJson } from './pages.js';

export const DB_PAGE_PATH = '/db';

/** A Postgres resource the caller may reach, with the logins policy grants on it. */
interface ReachableDatabase {
  readonly name: string;
  readonly logins: readonly string[];
  readonly psql: string;
}

/**
 * `/db` (DESIGN.md §2 "Postgres access"): after login, lists the Postgres resources the caller
 * may reach and the upstream logins policy grants there, and hands out a fresh database token
 * with a ready `psql` command. Database tokens are issued only here and by the admin CLI; each
 * one is recorded (`token.issued`, durable) before it is shown, and the page is never cached.
 * Browsers get HTML; clients asking for JSON get `{ user, token, expires_at, databases }`.
 */
export async function handleDbPage(ctx: RequestContext, services: GatewayServices): Promise<void> {
  const method = ctx.req.method;
  if (method !== 'GET' && method !== 'HEAD') {
    sendError(ctx.res, ctx.html, { status: 405, error: 'method_not_allowed', title: 'Method not allowed', message: 'This page accepts GET only.', requestId: ctx.requestId, headers: { allow: 'GET, HEAD' } });
    return;
  }
  const caller = await services.requireCaller(ctx);
  if (caller === null) return;
  const { config, identity } = services;
  const listener = config.server.postgres;
  const databases = listener === undefined ? [] : reachable(services, caller, listener.listen, listener.tls !== undefined);

  if (listener === undefined || databases.length === 0 || identity.dbTokens === null) {
    const why =
      listener === undefined
        ? 'This gateway has no PostgreSQL listener.'
        : identity.dbTokens === null
          ? 'Database tokens are not configured on this gateway (identity.db_tokens.signing_key).'
          : 'Your roles grant no access to any database behind this gateway.';
    if (!ctx.html) return sendJson(ctx.res, 200, { user: caller.user, databases: [], message: why });
    return sendHtml(ctx.res, 200, 'Databases', `<h1>Databases</h1><p>${escapeHtml(why)}</p>${footer(caller)}`);
  }

  const issued = identity.issueDbToken(caller.principal);
  if (!issued.ok) {
    sendError(ctx.res, ctx.html, { status: 500, error: 'token_not_issued', title: 'No token', message: 'A database token could not be issued.', reason: issued.reason, requestId: ctx.requestId });
    return;
  }
  try {
    await services.record(tokenIssuedEvent(caller.principal, issued.tokenId, issued.expiresAt, caller.sessionRef, ctx.client));
  } catch {
    return sendAuditUnavailable(ctx);
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

function reachable(services: GatewayServices, caller: Caller, listen: string, tls: boolean): ReachableDatabase[] {
  const { port } = splitHostPort(listen);
  const host = new URL(services.config.server.public_url).hostname.replace(/^\[|\]$/g, '');
  const user = caller.principal.email ?? caller.principal.subject;
  return services.config.resources
    .filter((resource): resource is PostgresResourceConfig => resource.kind === 'postgres')
    .map((resource) => ({ name: resource.name, logins: grantedLogins(services.policy, caller.principal, resource.name) }))
    .filter((db) => db.logins.length > 0)
    .map((db) => ({
      ...db,
      psql: `psql "host=${host} port=${port} dbname=${db.name} user=${user} sslmode=${tls ? 'require' : 'disable'}"`,
    }));
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
