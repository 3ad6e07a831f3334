/**
 * A real OpenID Provider (`oidc-provider` 9) in-process on 127.0.0.1, port 0, for integration
 * tests, plus a small cookie-keeping browser that walks redirects and submits HTML forms.
 *
 * The IdP has its own minimal interaction: a login form at `/interaction/<uid>` that checks the
 * user's password (submitted over HTTP as a browser would), and consent granted automatically
 * for the configured clients (first-party apps). Refresh tokens are issued to clients allowed
 * the `refresh_token` grant without `offline_access`, and rotate on use (reusing a rotated one
 * revokes the grant); RP-initiated logout is on unless turned off. Signing keys are generated per IdP and can be rotated; `signToken` signs arbitrary claims
 * with the IdP's current key for bearer-token tests.
 *
 * oidc-provider prints a warning that Node 20 is not a supported runtime; that is expected.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type AddressInfo, type LookupFunction } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { Provider, type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';

export interface IdpUser {
  /** Login name typed into the form. */
  readonly email: string;
  readonly password: string;
  /** Stable subject; default `sub-<email local part>`. */
  readonly sub?: string;
  readonly groups?: readonly string[];
  /** Default true. */
  readonly emailVerified?: boolean;
  /** More claims, released with the `profile` scope (e.g. `realm_access: { roles: [...] }`). */
  readonly claims?: Readonly<Record<string, unknown>>;
}

export interface IdpClient {
  readonly clientId: string;
  /** Absent: a public client (`token_endpoint_auth_method: none`, PKCE required). */
  readonly clientSecret?: string;
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris?: readonly string[];
  /** Allow the `refresh_token` grant; default true. */
  readonly refreshTokens?: boolean;
}

export interface IdpOptions {
  readonly clients: readonly IdpClient[];
  readonly users: readonly IdpUser[];
  /** Put scope claims in the ID token (like Keycloak); false leaves them to UserInfo. Default true. */
  readonly claimsInIdToken?: boolean;
  /** Access token lifetime in seconds; default 3600. */
  readonly accessTokenTtlSeconds?: number;
  /** Advertise `end_session_endpoint` (RP-initiated logout); default true. */
  readonly endSession?: boolean;
  /** Listen on this port of 127.0.0.1 (a gateway may already know the issuer); default any free one. */
  readonly port?: number;
}

export interface TestIdp {
  /** Issuer identifier, `http://127.0.0.1:<port>`. */
  readonly issuer: string;
  readonly jwksUri: string;
  /** `kid` of the key that currently signs. */
  readonly currentKid: string;
  /** How many times the JWKS has been fetched so far. */
  readonly jwksFetches: number;
  /** Signs `claims` as a JWT with the IdP's current key (or the key `kid`), RS256. */
  signToken(claims: Record<string, unknown>, options?: { readonly kid?: string; readonly header?: Record<string, unknown> }): Promise<string>;
  /** Public JWK of the current signing key. */
  publicJwk(): JWK;
  /** While `false`, every request to the IdP is answered 503 (an outage); `true` ends it. */
  setAvailable(available: boolean): void;
  /** Puts a new signing key first (the old one stays published); returns its `kid`. */
  rotateSigningKey(): Promise<string>;
  /**
   * Logs `credentials` in by walking the authorization URL, filling in the IdP's login form and
   * following redirects until the browser is sent off the IdP; returns that URL (the client's
   * redirect URI with `code`, `state` and `iss`).
   */
  login(authorizationUrl: string | URL, credentials: { readonly email: string; readonly password: string }, browser?: TestBrowser): Promise<URL>;
  close(): Promise<void>;
}

interface SigningKey {
  readonly kid: string;
  readonly privateJwk: JWK;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  readonly publicJwk: JWK;
}

async function newSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomBytes(8).toString('base64url');
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateJwk, privateKey, publicJwk };
}

function subjectOf(user: IdpUser): string {
  return user.sub ?? `sub-${user.email.split('@')[0] ?? user.email}`;
}

/** Starts an IdP on 127.0.0.1, port `options.port` or 0. Close it with `close()`. */
export async function startOidcIdp(options: IdpOptions): Promise<TestIdp> {
  const keys: SigningKey[] = [await newSigningKey()];
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const byLogin = new Map(options.users.map((user) => [user.email.toLowerCase(), user]));
  const bySub = new Map(options.users.map((user) => [subjectOf(user), user]));
  const extraClaims = [...new Set(options.users.flatMap((user) => Object.keys(user.claims ?? {})))];

  let provider: Provider | null = null;
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;

  let jwksFetches = 0;
  let available = true;
  const server: Server = createServer((req, res) => {
    if (req.url?.split('?', 1)[0] === '/jwks') jwksFetches += 1;
    if (!available || provider === null || handle === null) {
      res.writeHead(503).end();
      return;
    }
    if (req.url?.startsWith('/interaction/')) {
      interaction(provider, req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${error instanceof Error ? error.message : String(error)}`);
      });
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const configuration = (): Configuration => ({
    clients: options.clients.map(
      (c): ClientMetadata => ({
        client_id: c.clientId,
        ...(c.clientSecret === undefined ? { token_endpoint_auth_method: 'none' } : { client_secret: c.clientSecret, token_endpoint_auth_method: 'client_secret_basic' }),
        redirect_uris: [...c.redirectUris],
        post_logout_redirect_uris: [...(c.postLogoutRedirectUris ?? [])],
        grant_types: c.refreshTokens === false ? ['authorization_code'] : ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      }),
    ),
    jwks: { keys: keys.map((key) => key.privateJwk) } as Configuration['jwks'],
    cookies: { keys: cookieKeys },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups', ...extraClaims] },
    conformIdTokenClaims: options.claimsInIdToken === false,
    async findAccount(_ctx, sub) {
      const user = bySub.get(sub);
      if (user === undefined) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          email: user.email,
          email_verified: user.emailVerified ?? true,
          name: user.email,
          groups: [...(user.groups ?? [])],
          ...(user.claims ?? {}),
        }),
      };
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: options.endSession !== false,
        logoutSource(ctx: KoaContextWithOIDC, form: string) {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><html><body><h1>Sign out?</h1>${form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>')}</body></html>`;
        },
        postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
          ctx.type = 'html';
          ctx.body = '<!DOCTYPE html><html><body><h1>Signed out</h1></body></html>';
        },
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    pkce: { required: () => true },
    ttl: {
      AccessToken: options.accessTokenTtlSeconds ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 86_400,
      Grant: 86_400,
      Session: 86_400,
      Interaction: 3600,
    },
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  const install = (): void => {
    const next = new Provider(issuer, configuration());
    provider = next;
    handle = next.callback();
  };
  install();

  /** The minimal interaction: a password form for `login`, automatic grant for `consent`. */
  async function interaction(current: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await current.interactionDetails(req, res);
    const path = new URL(req.url ?? '/', issuer).pathname;
    if (req.method === 'POST' && path === `/interaction/${details.uid}/login`) {
      const form = new URLSearchParams(await readBody(req));
      const user = byLogin.get((form.get('login') ?? '').toLowerCase());
      if (details.prompt.name !== 'login' || user === undefined || user.password !== form.get('password')) {
        sendLoginForm(res, details.uid, 401, 'Invalid login or password.');
        return;
      }
      await current.interactionFinished(req, res, { login: { accountId: subjectOf(user) } }, { mergeWithLastSubmission: false });
      return;
    }
    if (req.method !== 'GET' || path !== `/interaction/${details.uid}`) {
      res.writeHead(404).end();
      return;
    }
    if (details.prompt.name === 'login') {
      sendLoginForm(res, details.uid, 200);
      return;
    }
    if (details.prompt.name === 'consent') {
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      const accountId = details.session?.accountId;
      const clientId = details.params['client_id'];
      const grant = details.grantId
        ? await current.Grant.find(details.grantId)
        : new current.Grant({ ...(accountId === undefined ? {} : { accountId }), ...(typeof clientId === 'string' ? { clientId } : {}) });
      if (grant === undefined) throw new Error('grant not found');
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await current.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    res.writeHead(501).end();
  }

  const idp: TestIdp = {
    issuer,
    jwksUri: `${issuer}/jwks`,
    get currentKid() {
      return (keys[0] as SigningKey).kid;
    },
    get jwksFetches() {
      return jwksFetches;
    },
    async signToken(claims, signOptions = {}) {
      const key = signOptions.kid === undefined ? keys[0] : keys.find((k) => k.kid === signOptions.kid);
      if (key === undefined) throw new Error(`no IdP key ${signOptions.kid ?? ''}`);
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid, ...signOptions.header }).sign(key.privateKey);
    },
    publicJwk() {
      return (keys[0] as SigningKey).publicJwk;
    },
    setAvailable(value) {
      available = value;
    },
    async rotateSigningKey() {
      keys.unshift(await newSigningKey());
      install();
      return (keys[0] as SigningKey).kid;
    },
    async login(authorizationUrl, credentials, browser = new TestBrowser()) {
      const offIdp = (url: URL) => url.origin !== issuer;
      const form = await browser.follow(authorizationUrl, { stopWhen: offIdp });
      if (form.stoppedAt !== undefined) return form.stoppedAt;
      if (form.status !== 200 || !form.body.includes('name="password"')) {
        throw new Error(`expected the IdP login form, got ${form.status}: ${form.body.slice(0, 300)}`);
      }
      const submitted = await browser.submitForm(form, { login: credentials.email, password: credentials.password });
      const done = await browser.followFrom(submitted, { stopWhen: offIdp });
      if (done.stoppedAt === undefined) throw new Error(`login did not return to the client: ${done.status}: ${done.body.slice(0, 300)}`);
      return done.stoppedAt;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
  return idp;
}

function sendLoginForm(res: ServerResponse, uid: string, status: number, error?: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(
    `<!DOCTYPE html><html><body><h1>Sign in</h1>${error === undefined ? '' : `<p class="error">${error}</p>`}` +
      `<form method="post" action="/interaction/${uid}/login">` +
      '<input type="text" name="login" autofocus/><input type="password" name="password"/>' +
      '<button type="submit">Sign in</button></form></body></html>',
  );
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** One response as the browser saw it. */
export interface BrowserPage {
  readonly url: URL;
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** Set by `follow` when a redirect pointed at a URL matching `stopWhen` (not fetched). */
  readonly stoppedAt?: URL;
}

interface StoredCookie {
  readonly name: string;
  readonly value: string;
  /** The request host for a host-only cookie, else the `Domain` attribute (lower case, no leading dot). */
  readonly host: string;
  /** No `Domain` attribute: sent to `host` alone (RFC 6265 §5.3 step 6). */
  readonly hostOnly: boolean;
  readonly path: string;
  readonly expiresAt: number | null;
}

/** The test domain whose names {@link testHostsAgent} resolves to 127.0.0.1. */
export const TEST_DOMAIN = 'tollgate.test';

/**
 * An undici dispatcher that connects every `*.tollgate.test` name (and `tollgate.test`) to
 * 127.0.0.1 while the request keeps its host name (URL, `Host` header, cookie scoping); other
 * names resolve as usual. The caller closes it.
 */
export function testHostsAgent(): Agent {
  const lookup: LookupFunction = (hostname, options, callback) => {
    if (hostname !== TEST_DOMAIN && !hostname.endsWith(`.${TEST_DOMAIN}`)) {
      dnsLookup(hostname, options, callback);
      return;
    }
    // Node asks for every address (`all`) when it races IPv4 and IPv6 (autoSelectFamily).
    if (options.all === true) callback(null, [{ address: '127.0.0.1', family: 4 } satisfies LookupAddress]);
    else callback(null, '127.0.0.1', 4);
  };
  return new Agent({ connect: { lookup } });
}

/**
 * A minimal browser for tests: a cookie jar (RFC 6265: host-only cookies go to their host alone,
 * cookies with `Domain` to that domain and its subdomains (§5.1.3 domain-match), different ports
 * of a host share cookies just as in a real browser; `Path` and `Max-Age` respected), manual
 * redirects, and HTML form submission. With a `dispatcher` (such as {@link testHostsAgent}),
 * requests go through it, so test host names can be used.
 */
export class TestBrowser {
  readonly #cookies: StoredCookie[] = [];
  readonly #dispatcher: Dispatcher | undefined;

  constructor(options: { readonly dispatcher?: Dispatcher } = {}) {
    this.#dispatcher = options.dispatcher;
  }

  /** Sends one request with the jar's cookies and stores the cookies of the response. */
  async request(url: string | URL, init: { readonly method?: string; readonly body?: URLSearchParams; readonly headers?: Record<string, string> } = {}): Promise<BrowserPage> {
    const target = new URL(url);
    const headers: Record<string, string> = { ...init.headers };
    const cookie = this.cookieHeader(target);
    if (cookie !== '') headers['cookie'] = cookie;
    if (init.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const requestInit = {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      redirect: 'manual',
      ...(init.body === undefined ? {} : { body: init.body.toString() }),
    } as const;
    // The package's own fetch with its own dispatcher: Node's built-in fetch bundles another undici.
    const response = this.#dispatcher === undefined ? await fetch(target, requestInit) : await undiciFetch(target, { ...requestInit, dispatcher: this.#dispatcher });
    for (const line of response.headers.getSetCookie()) this.#store(target, line);
    return { url: target, status: response.status, headers: response.headers, body: await response.text() };
  }

  /** GETs `url` and follows redirects until a page that is not a redirect, or a URL matching `stopWhen`. */
  async follow(url: string | URL, options: { readonly stopWhen?: (url: URL) => boolean; readonly maxRedirects?: number } = {}): Promise<BrowserPage> {
    const target = new URL(url);
    if (options.stopWhen?.(target)) return { url: target, status: 0, headers: new Headers(), body: '', stoppedAt: target };
    return this.followFrom(await this.request(target), options);
  }

  /** Follows the redirects starting at an already received page. */
  async followFrom(page: BrowserPage, options: { readonly stopWhen?: (url: URL) => boolean; readonly maxRedirects?: number } = {}): Promise<BrowserPage> {
    let current = page;
    for (let hop = 0; hop <= (options.maxRedirects ?? 20); hop += 1) {
      const location = current.headers.get('location');
      if (current.status < 300 || current.status >= 400 || location === null) return current;
      const next = new URL(location, current.url);
      if (options.stopWhen?.(next)) return { ...current, stoppedAt: next };
      current = await this.request(next);
    }
    throw new Error(`too many redirects from ${page.url.href}`);
  }

  /**
   * Submits the first `<form>` of `page`: its hidden inputs plus `fields`, urlencoded, to its
   * action (resolved against the page URL). Returns the response without following it.
   */
  async submitForm(page: BrowserPage, fields: Record<string, string>): Promise<BrowserPage> {
    const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(page.body);
    if (form === null) throw new Error(`no form on ${page.url.href}`);
    const attributes = form[1] ?? '';
    const action = attributeOf(attributes, 'action') ?? page.url.href;
    const method = (attributeOf(attributes, 'method') ?? 'GET').toUpperCase();
    const body = new URLSearchParams();
    for (const input of (form[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const inputAttributes = input[1] ?? '';
      const name = attributeOf(inputAttributes, 'name');
      if (name !== undefined && attributeOf(inputAttributes, 'type')?.toLowerCase() === 'hidden') body.set(name, attributeOf(inputAttributes, 'value') ?? '');
    }
    for (const [name, value] of Object.entries(fields)) body.set(name, value);
    const target = new URL(decodeEntities(action), page.url);
    return method === 'POST' ? this.request(target, { method, body }) : this.request(new URL(`${target.pathname}?${body}`, target));
  }

  /** The `Cookie` header the jar would send to `url`. */
  cookieHeader(url: string | URL): string {
    const target = new URL(url);
    const now = Date.now();
    return this.#cookies
      .filter((c) => hostMatches(target.hostname, c) && pathMatches(target.pathname, c.path) && (c.expiresAt === null || c.expiresAt > now))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** One cookie's value for `url`, if the jar holds it. */
  cookie(url: string | URL, name: string): string | undefined {
    const target = new URL(url);
    return this.#cookies.find((c) => hostMatches(target.hostname, c) && c.name === name && pathMatches(target.pathname, c.path))?.value;
  }

  /** Puts a cookie into the jar directly (path `/`), as a tampering client would. */
  setCookie(url: string | URL, name: string, value: string): void {
    this.#store(new URL(url), `${name}=${value}; Path=/`);
  }

  #store(url: URL, line: string): void {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
    let expiresAt: number | null = null;
    let domain: string | null = null;
    for (const attribute of attributes) {
      const [key = '', raw = ''] = attribute.split('=', 2).map((part) => part.trim());
      if (key.toLowerCase() === 'path' && raw.startsWith('/')) path = raw;
      // RFC 6265 §5.2.3: a leading dot is ignored; the last Domain attribute wins.
      if (key.toLowerCase() === 'domain' && raw !== '') domain = raw.replace(/^\./, '').toLowerCase();
      if (key.toLowerCase() === 'max-age') expiresAt = Date.now() + Number.parseInt(raw, 10) * 1000;
      if (key.toLowerCase() === 'expires' && expiresAt === null) expiresAt = Date.parse(raw);
    }
    // RFC 6265 §5.3 step 6: a Domain the request host does not domain-match is refused whole.
    if (domain !== null && !domainMatches(url.hostname, domain)) return;
    const host = domain ?? url.hostname;
    // §5.3 step 11: the same name, domain and path replace the stored cookie.
    const existing = this.#cookies.findIndex((c) => c.name === name && c.host === host && c.path === path);
    if (existing >= 0) this.#cookies.splice(existing, 1);
    if (expiresAt !== null && expiresAt <= Date.now()) return;
    this.#cookies.push({ name, value, host, hostOnly: domain === null, path, expiresAt });
  }
}

function hostMatches(requestHost: string, cookie: StoredCookie): boolean {
  return cookie.hostOnly ? requestHost === cookie.host : domainMatches(requestHost, cookie.host);
}

/** RFC 6265 §5.1.3: identical, or a subdomain of `domain` when the host is a name, not an IP address. */
function domainMatches(host: string, domain: string): boolean {
  const name = host.toLowerCase();
  return name === domain || (name.endsWith(`.${domain}`) && isIP(name) === 0);
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  return requestPath === cookiePath || (requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'));
}

function attributeOf(attributes: string, name: string): string | undefined {
  const match = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(attributes);
  if (match === null) return undefined;
  return decodeEntities(match[2] ?? match[3] ?? match[4] ?? '');
}

function decodeEntities(text: string): string {
  return text.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}
