import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ClientMetadata, Configuration, KoaContextWithOIDC, Provider } from 'oidc-provider';
import { silentLogger, type Logger } from '../core/index.js';
import { importDemoDependency } from './dependency.js';
import { escapeHtml, newNonce, pageHeaders, renderPage } from './html.js';
import { listenOn } from './listen.js';
import type { DemoSecrets } from './secrets.js';
import type { DemoUser } from './users.js';

/** A client registered at the demo IdP; its consent is granted without asking (a first-party app). */
export interface DemoIdpClient {
  readonly clientId: string;
  /** Absent: a public client (PKCE alone). */
  readonly clientSecret?: string;
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris?: readonly string[];
}

export interface DemoIdpOptions {
  /** Listens on 127.0.0.1:`port`. */
  readonly port: number;
  /** The issuer identifier, `http://127.0.0.1:<port>`. */
  readonly issuer: string;
  readonly clients: readonly DemoIdpClient[];
  readonly users: readonly DemoUser[];
  /** Signing keys and cookie keys, kept in the data dir so that tokens and cookies outlive a restart. */
  readonly keys: DemoSecrets['idp'];
  readonly logger?: Logger;
}

export interface DemoIdp {
  readonly issuer: string;
  readonly port: number;
  close(): Promise<void>;
}

/** How long the pieces of a login live, in seconds. */
const TTL = {
  AuthorizationCode: 60,
  AccessToken: 3600,
  IdToken: 3600,
  RefreshToken: 86_400,
  Grant: 86_400,
  Session: 12 * 3600,
  Interaction: 3600,
} as const;

const MAX_FORM_BYTES = 8 * 1024;
const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/;

/**
 * The demo's OpenID Provider: a real `oidc-provider` 9 in-process on 127.0.0.1. It serves the
 * authorization code flow with PKCE (required), refresh tokens (rotated on use), RP-initiated
 * logout and the scopes `openid email profile groups`; the `groups` claim carries each user's
 * groups and `email_verified` is true. Its login page is ours: a form with labels and the demo
 * users with their passwords. Consent is granted without asking, as for a company's own apps.
 *
 * Grants, sessions and refresh tokens live in memory: after a restart a browser signs in at the
 * IdP again, while the gateway's own session (sealed with a key from the data dir) stays valid.
 *
 * @throws TollgateError `TG_ERR_DEMO_START` when the port cannot be listened on.
 */
export async function startDemoIdp(options: DemoIdpOptions): Promise<DemoIdp> {
  const logger = options.logger ?? silentLogger;
  const { Provider: ProviderClass } = await quietly(logger, () => importDemoDependency('oidc-provider', () => import('oidc-provider')));
  const bySubject = new Map(options.users.map((user) => [subjectOf(user), user]));
  const byLogin = new Map(options.users.flatMap((user) => [[user.username.toLowerCase(), user] as const, [user.email.toLowerCase(), user] as const]));
  const clientOrigins = [
    ...new Set(options.clients.flatMap((client) => [...client.redirectUris, ...(client.postLogoutRedirectUris ?? [])]).map((uri) => new URL(uri).origin)),
  ];
  const pages = new IdpPages(options.users, clientOrigins);

  const configuration: Configuration = {
    clients: options.clients.map(
      (client): ClientMetadata => ({
        client_id: client.clientId,
        ...(client.clientSecret === undefined
          ? { token_endpoint_auth_method: 'none' }
          : { client_secret: client.clientSecret, token_endpoint_auth_method: 'client_secret_basic' }),
        redirect_uris: [...client.redirectUris],
        post_logout_redirect_uris: [...(client.postLogoutRedirectUris ?? [])],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      }),
    ),
    jwks: { keys: options.keys.jwks.keys.map((key) => ({ ...key })) } as Configuration['jwks'],
    cookies: {
      keys: [...options.keys.cookieKeys],
      // The gateway shares the host (127.0.0.1) and browsers do not separate cookies by port:
      // names that say whose they are keep the two apart for anyone reading them.
      names: { session: 'demo_idp_session', interaction: 'demo_idp_interaction', resume: 'demo_idp_resume' },
    },
    // OIDC Core 1.0 §5.4: scopes request sets of claims; `groups` is our own scope for our own claim.
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    // Claims go into the ID token as well as UserInfo, as most enterprise IdPs do.
    conformIdTokenClaims: false,
    findAccount(_ctx, sub) {
      const user = bySubject.get(sub);
      if (user === undefined) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          email: user.email,
          email_verified: true,
          name: user.name,
          preferred_username: user.username,
          groups: [...user.groups],
        }),
      };
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx: KoaContextWithOIDC, form: string) => pages.logout(ctx, form),
        postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => pages.loggedOut(ctx),
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Refresh tokens for every client allowed the grant, without demanding `offline_access`:
    // the gateway refreshes sessions while the person is active (OIDC Core 1.0 §12).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // RFC 9700 §2.1.1: PKCE for every authorization code, confidential clients included.
    pkce: { required: () => true },
    ttl: { ...TTL },
    renderError: (ctx, out) => pages.error(ctx, out),
  };

  // The in-memory adapter it warns about is the intended one (see above).
  const provider: Provider = await quietly(logger, () => new ProviderClass(options.issuer, configuration));
  provider.on('server_error', (_ctx: unknown, error: Error) => logger.error({ err: error }, 'demo IdP server error'));
  const handle = provider.callback();

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', options.issuer).pathname;
    const interaction = INTERACTION_PATH.exec(path);
    if (interaction === null) {
      handle(req, res);
      return;
    }
    onInteraction(req, res, interaction[1] ?? '', interaction[2] !== undefined).catch((error: unknown) => {
      logger.error({ err: error }, 'demo IdP interaction failed');
      if (!res.headersSent) pages.send(res, 500, 'Sign-in failed', '<p>The sign-in could not be completed. Go back to the app and try again.</p>');
      else res.end();
    });
  });
  await listenOn(server, options.port, 'demo IdP');
  logger.debug({ issuer: options.issuer }, 'demo IdP listening');

  /** The login and consent steps of an authorization request (oidc-provider "interactions"). */
  async function onInteraction(req: IncomingMessage, res: ServerResponse, uid: string, isLoginPost: boolean): Promise<void> {
    let details: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      pages.send(res, 400, 'Sign-in expired', '<p>This sign-in attempt has expired or was started in another browser. Go back to the app and sign in again.</p>');
      return;
    }
    if (details.uid !== uid) {
      pages.send(res, 400, 'Sign-in expired', '<p>This sign-in attempt is not the current one. Go back to the app and sign in again.</p>');
      return;
    }
    if (isLoginPost) {
      if (req.method !== 'POST' || details.prompt.name !== 'login') {
        pages.send(res, 405, 'Not allowed', '<p>Submit the sign-in form instead.</p>');
        return;
      }
      const form = await readForm(req);
      if (form === null) {
        pages.send(res, 413, 'Form too large', '<p>The submitted form was too large.</p>');
        return;
      }
      const login = (form.get('login') ?? '').trim();
      const user = byLogin.get(login.toLowerCase());
      if (user === undefined || user.password !== form.get('password')) {
        pages.login(res, uid, { status: 401, error: 'That user name or password is not right. The demo users are listed below.', login });
        return;
      }
      logger.debug({ user: user.email }, 'demo IdP sign-in');
      await provider.interactionFinished(req, res, { login: { accountId: subjectOf(user) } }, { mergeWithLastSubmission: false });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      pages.send(res, 405, 'Not allowed', '<p>This page only shows the sign-in form.</p>');
      return;
    }
    if (details.prompt.name === 'login') {
      pages.login(res, uid, { status: 200 });
      return;
    }
    if (details.prompt.name === 'consent') {
      const grantId = await grantConsent(provider, details);
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    pages.send(res, 400, 'Unsupported request', '<p>The demo IdP cannot complete this kind of request.</p>');
  }

  return {
    issuer: options.issuer,
    port: options.port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/**
 * Grants what the consent prompt found missing (OIDC Core 1.0 §3.1.2.4: consent may be
 * established by other means; the demo's clients are first-party) and returns the grant's id.
 */
async function grantConsent(provider: Provider, details: Awaited<ReturnType<Provider['interactionDetails']>>): Promise<string> {
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  const accountId = details.session?.accountId;
  const clientId = details.params['client_id'];
  const existing = details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId);
  const grant =
    existing ??
    new provider.Grant({ ...(accountId === undefined ? {} : { accountId }), ...(typeof clientId === 'string' ? { clientId } : {}) });
  if (missing.missingOIDCScope !== undefined) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims !== undefined) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  return grant.save();
}

function subjectOf(user: DemoUser): string {
  return `demo-${user.username}`;
}

/** The urlencoded form body, or `null` when it is larger than {@link MAX_FORM_BYTES}. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Runs `step` with oidc-provider's console warnings sent to our logger instead of the demo's
 * terminal. It warns on import that Node 20 is not a runtime it supports (it works, see
 * DESIGN.md §5) and at construction that its store is in memory, which is the demo's choice.
 * The module is loaded on first use, so that commands other than `demo` never load this
 * development dependency.
 */
async function quietly<T>(logger: Logger, step: () => T | Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => logger.debug({ component: 'oidc-provider' }, args.map(String).join(' '));
  try {
    return await step();
  } finally {
    console.warn = warn;
  }
}

/** The IdP's own pages: login, logout confirmation, signed out, errors. */
class IdpPages {
  readonly #users: readonly DemoUser[];
  readonly #formAction: readonly string[];

  constructor(users: readonly DemoUser[], clientOrigins: readonly string[]) {
    this.#users = users;
    this.#formAction = clientOrigins;
  }

  /** The sign-in form, then the demo users with a one-click sign-in each. */
  login(res: ServerResponse, uid: string, state: { readonly status: number; readonly error?: string; readonly login?: string }): void {
    const action = `/interaction/${encodeURIComponent(uid)}/login`;
    const rows = this.#users
      .map(
        (user) =>
          `<tr><td><code>${escapeHtml(user.email)}</code></td><td><code>${escapeHtml(user.password)}</code></td>` +
          `<td>${escapeHtml(user.groups.join(', '))}</td><td>${escapeHtml(user.can)}</td>` +
          `<td><form method="post" action="${action}"><input type="hidden" name="login" value="${escapeHtml(user.email)}">` +
          `<input type="hidden" name="password" value="${escapeHtml(user.password)}">` +
          `<button type="submit" class="secondary">Sign in as ${escapeHtml(user.username)}</button></form></td></tr>`,
      )
      .join('');
    const error = state.error === undefined ? '' : `<p class="error" role="alert" id="login-error">${escapeHtml(state.error)}</p>`;
    const describedBy = state.error === undefined ? '' : ' aria-describedby="login-error"';
    const body =
      '<h1>Sign in</h1><p class="muted">Tollgate demo identity provider</p>' +
      `<form class="card" method="post" action="${action}">${error}` +
      `<label for="login">Email or user name</label><input id="login" name="login" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="${escapeHtml(state.login ?? '')}"${describedBy}>` +
      `<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${describedBy}>` +
      '<button type="submit">Sign in</button></form>' +
      '<section aria-labelledby="users-heading"><h2 id="users-heading">Demo users</h2>' +
      '<p>Demo only: each password is the user name. What each person may do comes from the gateway\'s policy (<code>config/demo.yaml</code>).</p>' +
      '<table><caption class="muted">Users of this IdP</caption><thead><tr><th scope="col">Email</th><th scope="col">Password</th><th scope="col">Groups</th><th scope="col">May</th><th scope="col"><span class="muted">Quick sign-in</span></th></tr></thead>' +
      `<tbody>${rows}</tbody></table></section>`;
    this.send(res, state.status, 'Sign in · Tollgate demo', body);
  }

  /** OIDC RP-Initiated Logout 1.0 §2: the End-User confirms before the IdP session ends. */
  logout(ctx: KoaContextWithOIDC, form: string): void {
    const body =
      `<h1>Sign out?</h1><section>${form}<p>Sign out of the demo identity provider as well? You will need to sign in again to use the demo.</p>` +
      '<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign out</button> ' +
      '<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in here</button></section>';
    this.#respond(ctx, 200, 'Sign out · Tollgate demo', body);
  }

  loggedOut(ctx: KoaContextWithOIDC): void {
    this.#respond(ctx, 200, 'Signed out · Tollgate demo', `<h1>Signed out</h1><p>You are signed out of the demo identity provider.</p>${this.#backLinks()}`);
  }

  error(ctx: KoaContextWithOIDC, out: { readonly error: string; readonly error_description?: string }): void {
    const description = out.error_description === undefined ? '' : `<p>${escapeHtml(out.error_description)}</p>`;
    this.#respond(ctx, ctx.status >= 400 ? ctx.status : 400, 'Error · Tollgate demo', `<h1>Sign-in error</h1><section><p class="error">${escapeHtml(out.error)}</p>${description}</section>${this.#backLinks()}`);
  }

  send(res: ServerResponse, status: number, title: string, body: string): void {
    const nonce = newNonce();
    res.writeHead(status, pageHeaders({ nonce, formAction: this.#formAction }));
    res.end(renderPage({ title, nonce, body }));
  }

  #respond(ctx: KoaContextWithOIDC, status: number, title: string, body: string): void {
    const nonce = newNonce();
    ctx.status = status;
    for (const [name, value] of Object.entries(pageHeaders({ nonce, formAction: this.#formAction }))) ctx.set(name, value);
    ctx.body = renderPage({ title, nonce, body });
  }

  #backLinks(): string {
    if (this.#formAction.length === 0) return '';
    return `<p>${this.#formAction.map((origin) => `<a href="${escapeHtml(origin)}/">Back to ${escapeHtml(origin)}</a>`).join(' · ')}</p>`;
  }
}
