import { randomBytes } from 'node:crypto';
import { STATUS_CODES, createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { JWK } from 'jose';
import type { Registry } from 'prom-client';
import type { Pool } from 'undici';
import type { AppendOptions, AuditEvent, AuditStore } from '../../audit/index.js';
import { splitHostPort, type TollgateConfig } from '../../config/index.js';
import { TollgateError, silentLogger, systemClock, type Clock, type Logger } from '../../core/index.js';
import type { Identity } from '../../identity/index.js';
import { decide, policySource, type CompiledPolicy, type Decision, type PolicySource } from '../../policy/index.js';
import { ASSERTION_HEADER, AssertionSigner, JWKS_PATH } from './assertion.js';
import { failureEvent, requestEvent, responseEvent, wsCloseEvent, type ClientFacts } from './audit-events.js';
import { Authenticator, type AuthOutcome, type Caller, type SessionFailure } from './authenticate.js';
import { AUDIT_RETRY_AFTER_SECONDS, closeIfBodyUnread, sendAuditUnavailable, sendIdpUnavailable, sendNotFound, type GatewayServices, type RequestContext } from './context.js';
import { DB_PAGE_PATH, handleDbPage, handleHome } from './db-page.js';
import { createUpstreamPool, forward, type Forwarding, type ForwardListener, type ForwardRequest } from './forward.js';
import {
  TrustedProxies,
  cookieHeaderWithout,
  framingProblem,
  hasRequestBody,
  parseHostHeader,
  peerAddress,
  upstreamRequestHeaders,
  type FramingProblem,
} from './headers.js';
import { RESERVED_PREFIX, handleReserved, loginLocationFor, type CrossHostLogin } from './login.js';
import { GatewayMetrics } from './metrics.js';
import { sendError, sendJson, wantsHtml } from './pages.js';
import { ResourceRouter, type HttpRoute } from './resources.js';
import { normalizeRequestTarget } from './target.js';
import { WebSocketRelay, handshakeProblem, requestedProtocols } from './websocket.js';

/** A route the gateway serves itself on its public host (the web room mounts `/audit` here). */
export interface GatewayRoute {
  /** `/audit` serves `/audit` and everything under `/audit/`. */
  readonly path: string;
  handle(request: GatewayRouteRequest): void | Promise<void>;
}

/** What a mounted route receives. */
export interface GatewayRouteRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  /** Normalised path. */
  readonly path: string;
  /** Query with its `?`, or `''`. */
  readonly query: string;
  readonly client: ClientFacts;
  /** The client is a browser navigating (HTML `Accept`). */
  readonly html: boolean;
  /** The caller, or `null` once the gateway has answered (login redirect, 401, 503). */
  requireCaller(): Promise<RouteCaller | null>;
  /** Appends an audit event; resolves with its seq once durable, rejects when it cannot be. */
  record(event: AuditEvent): Promise<number>;
}

/**
 * The caller as a mounted route sees it: a route that keeps a response open (the live audit
 * view) must know when the login behind it changes after the request authenticated.
 */
export interface RouteCaller extends Caller {
  /**
   * For a session with a refresh token: when the gateway will next refresh it, reading the
   * user's groups at the IdP again (ms since the epoch). A request made after it gets the
   * refreshed principal.
   */
  readonly refreshAt?: number;
  /** True once logout has ended the caller's session; always false for bearer callers. */
  revoked(): boolean;
}

/** Everything the gateway runs on, built by the caller (`tollgate serve`, tests). */
export interface HttpGatewayDeps {
  readonly config: TollgateConfig;
  /**
   * `compilePolicy(config.policy)`, or a {@link PolicySource} that a config reload updates: each
   * request is decided by the policy in force when it arrives, also on open keep-alive connections.
   */
  readonly policy: CompiledPolicy | PolicySource;
  /** `createIdentity(...)`, with the IdP discovered. */
  readonly identity: Identity;
  /** The open audit store; the caller owns it and closes it after the gateway. */
  readonly audit: AuditStore;
  /** The prom-client registry the metrics are registered on (served by the admin listener). */
  readonly registry: Registry;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** More routes on the public host, e.g. the audit pages. */
  readonly routes?: readonly GatewayRoute[];
  /** How long `close()` lets in-flight requests and WebSocket sessions finish; default 30 s. */
  readonly drainTimeoutMs?: number;
}

/** A running gateway. */
export interface HttpGateway {
  /** The address the listener is bound to (port resolved when the config said 0). */
  readonly address: { readonly host: string; readonly port: number };
  /** `http(s)://host:port` of the listener itself. */
  readonly url: string;
  /** The JWK Set served at `/.well-known/tollgate/jwks.json`. */
  readonly jwks: { readonly keys: readonly JWK[] };
  /**
   * Takes the resources of a reloaded config (routing, upstream addresses) for requests that
   * arrive from now on, on new and open connections alike. Pools of upstreams that stay keep
   * their connections; the others finish what they carry and close. The listener keeps the
   * `server.*` and `identity.*` settings it started with.
   */
  reconfigure(config: TollgateConfig): void;
  /**
   * Stops accepting connections, lets in-flight requests finish (WebSocket sessions are closed
   * with 1001) within the drain timeout, waits for their audit records, and closes upstream
   * pools. The audit store stays open: its owner closes it next, which signs the final checkpoint.
   */
  close(): Promise<void>;
}

/**
 * Starts the identity-aware HTTP and WebSocket gateway (DESIGN.md §2 "HTTP forwarding") on
 * `server.http.listen`, HTTPS when `server.http.tls` is set. For every request to a resource:
 * normalise the target → authenticate → `decide()` → append `http.request` and wait until it
 * is durable → forward only if allowed → append `http.response`.
 */
export async function startHttpGateway(deps: HttpGatewayDeps): Promise<HttpGateway> {
  const signer = await AssertionSigner.create({
    issuer: new URL(deps.config.server.public_url).origin,
    clock: deps.clock ?? systemClock,
    secrets: deps.config.identity.session.keys,
  });
  const gateway = new Gateway(deps, signer);
  try {
    await gateway.listen();
  } catch (error) {
    await gateway.close();
    throw error;
  }
  return gateway;
}

/** Paths under this prefix belong to the gateway on every host, like {@link RESERVED_PREFIX}. */
const WELL_KNOWN_PREFIX = '/.well-known/tollgate/';

/** At most one "audit append failed" log line per this interval. */
const APPEND_FAILURE_LOG_INTERVAL_MS = 5_000;

const DEFERRED: AppendOptions = Object.freeze({ defer: true });

const NO_SET_COOKIES: readonly string[] = Object.freeze([]);

/** WebSocket messages larger than this close the session with 1009 (RFC 6455 §7.4.1). */
const MAX_WS_MESSAGE_BYTES = 16 * 1024 * 1024;

const FRAMING_STATUS: Readonly<Record<FramingProblem, number>> = {
  'transfer-encoding-with-content-length': 400,
  'transfer-encoding-not-chunked': 501,
  'transfer-encoding-in-http-1.0': 400,
  'duplicate-host': 400,
};

class Gateway implements HttpGateway {
  #config: TollgateConfig;
  readonly #policy: PolicySource;
  readonly #audit: AuditStore;
  readonly #logger: Logger;
  readonly #metrics: GatewayMetrics;
  readonly #signer: AssertionSigner;
  readonly #auth: Authenticator;
  #router: ResourceRouter;
  /** One pool per HTTP resource, by resource name. */
  #pools = new Map<string, { readonly origin: string; readonly pool: Pool }>();
  /**
   * The exchange being forwarded on each client connection, when it is the only one: Node hands
   * pipelined requests over at once and only queues their answers, and a connection with several
   * keeps the plain idle timeout (its entry is removed).
   */
  readonly #forwardingOn = new WeakMap<Socket, Forwarding | null>();
  /** Pools a reload took out of use, closing once their requests are done. */
  readonly #retiring = new Set<Pool>();
  readonly #trusted: TrustedProxies;
  readonly #relay: WebSocketRelay;
  readonly #routes: readonly GatewayRoute[];
  readonly #server: Server;
  readonly #services: GatewayServices;
  readonly #publicHost: string;
  readonly #crossHostLogin: CrossHostLogin | null;
  readonly #scheme: 'http' | 'https';
  readonly #reservedCookies: readonly string[];
  readonly #drainTimeoutMs: number;
  readonly #maxConcurrent: number;
  readonly #idPrefix = randomBytes(6).toString('base64url');
  #idCounter = 0;
  #inFlight = 0;
  /** Relayed WebSocket sessions: each holds a slot of `max_concurrent_requests` from its upgrade until it ends. */
  #webSockets = 0;
  /**
   * Responses still owed on each client connection, the pipelined ones Node holds back included;
   * an {@link AfterResponses} once something waits to be written after them.
   */
  readonly #owed = new WeakMap<object, number | AfterResponses>();
  #drained: (() => void) | null = null;
  /** Outcome records handed to the store and not yet settled; shutdown waits for them. */
  #pendingLater = 0;
  #laterSettled: (() => void) | null = null;
  readonly #expectsContinue = new WeakSet<IncomingMessage>();
  /** Connections whose framing was refused: requests parsed after that one are never handled. */
  readonly #poisoned = new WeakSet<object>();
  #closing: Promise<void> | null = null;
  #address: { host: string; port: number } = { host: '', port: 0 };
  #appendFailuresSinceLog = 0;
  #appendFailureLoggedAt = Number.NEGATIVE_INFINITY;
  readonly #exchangeHooks: ExchangeHooks;

  constructor(deps: HttpGatewayDeps, signer: AssertionSigner) {
    const clock = deps.clock ?? systemClock;
    const limits = deps.config.server.http.limits;
    this.#config = deps.config;
    this.#policy = policySource(deps.policy);
    this.#audit = deps.audit;
    this.#logger = (deps.logger ?? silentLogger).child({ component: 'http' });
    this.#exchangeHooks = { logger: this.#logger, recordLater: (event) => this.#recordLater(event) };
    this.#metrics = new GatewayMetrics(deps.registry);
    this.#signer = signer;
    this.#auth = new Authenticator(deps.identity, clock);
    this.#router = new ResourceRouter(deps.config.resources);
    this.#trusted = new TrustedProxies(deps.config.server.http.trusted_proxies);
    this.#relay = new WebSocketRelay(MAX_WS_MESSAGE_BYTES);
    this.#routes = deps.routes ?? [];
    const publicUrl = new URL(deps.config.server.public_url);
    this.#publicHost = publicUrl.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    this.#crossHostLogin =
      deps.identity.cookies.domain === undefined ? null : { publicHost: this.#publicHost, publicOrigin: publicUrl.origin, protocol: publicUrl.protocol };
    this.#scheme = deps.config.server.http.tls === undefined ? 'http' : 'https';
    this.#reservedCookies = this.#auth.reservedCookies;
    this.#drainTimeoutMs = deps.drainTimeoutMs ?? 30_000;
    this.#maxConcurrent = limits.max_concurrent_requests;
    this.#syncPools();
    const currentConfig = (): TollgateConfig => this.#config;
    const currentPolicy = (): CompiledPolicy => this.#policy.current();
    const currentRouter = (): ResourceRouter => this.#router;
    this.#services = {
      get config() {
        return currentConfig();
      },
      get policy() {
        return currentPolicy();
      },
      get returnHosts() {
        return currentRouter().hosts;
      },
      identity: deps.identity,
      crossHostLogin: this.#crossHostLogin,
      auth: this.#auth,
      metrics: this.#metrics,
      logger: this.#logger,
      record: (event) => this.#record(event),
      requireCaller: (ctx) => this.#requireCaller(ctx),
    };

    const serverOptions = {
      maxHeaderSize: limits.max_header_bytes,
      headersTimeout: limits.headers_timeout,
      // Bodies may take long; inactivity is bounded by the socket idle timeout instead.
      requestTimeout: 0,
      keepAliveTimeout: limits.idle_timeout,
      connectionsCheckingInterval: Math.max(250, Math.min(Math.floor(limits.headers_timeout / 4), 5_000)),
    };
    const tls = deps.config.server.http.tls;
    this.#server = tls === undefined ? createHttpServer(serverOptions) : createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key });
    this.#server.timeout = limits.idle_timeout;
    // A client whose request waits on a slow upstream is quiet, not idle: the upstream's own idle
    // timeout (the same limit) ends that wait with a 504 or a broken body, which the client
    // receives and the record names. Any other quiet connection is closed.
    this.#server.on('timeout', (socket: Socket) => {
      if (this.#forwardingOn.get(socket)?.waitsOnUpstream() !== true) {
        socket.destroy();
        return;
      }
      // Node arms the timer again only on socket activity, which a quiet wait has none of.
      socket.setTimeout(this.#server.timeout);
    });
    this.#server.on('request', this.#onRequest);
    this.#server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      this.#expectsContinue.add(req);
      this.#onRequest(req, res);
    });
    this.#server.on('upgrade', this.#onUpgrade);
    this.#server.on('clientError', this.#onClientError);
    this.#server.on('connection', (socket: Socket) => {
      this.#metrics.openConnections.inc();
      socket.once('close', () => this.#metrics.openConnections.dec());
    });
  }

  get address(): { readonly host: string; readonly port: number } {
    return this.#address;
  }

  get url(): string {
    const host = this.#address.host.includes(':') ? `[${this.#address.host}]` : this.#address.host;
    return `${this.#scheme}://${host}:${this.#address.port}`;
  }

  get jwks(): { readonly keys: readonly JWK[] } {
    return this.#signer.jwks;
  }

  reconfigure(config: TollgateConfig): void {
    this.#config = config;
    this.#router = new ResourceRouter(config.resources);
    this.#syncPools();
  }

  /** Gives every routed resource a pool, keeping the pool of each whose upstream origin stayed. */
  #syncPools(): void {
    const limits = this.#config.server.http.limits;
    const pools = new Map<string, { readonly origin: string; readonly pool: Pool }>();
    for (const route of this.#router.routes) {
      const kept = this.#pools.get(route.resource.name);
      pools.set(
        route.resource.name,
        kept !== undefined && kept.origin === route.origin
          ? kept
          : {
              origin: route.origin,
              pool: createUpstreamPool({
                origin: route.origin,
                connectTimeoutMs: limits.upstream_connect_timeout,
                idleTimeoutMs: limits.idle_timeout,
                maxConnections: limits.max_concurrent_requests,
              }),
            },
      );
    }
    for (const [name, old] of this.#pools) {
      if (pools.get(name) === old) continue;
      // undici's close() lets dispatched requests finish; only new ones are refused.
      this.#retiring.add(old.pool);
      void old.pool
        .close()
        .catch((error: unknown) => this.#logger.debug({ err: error, resource: name }, 'retired upstream pool closed with an error'))
        .finally(() => this.#retiring.delete(old.pool));
    }
    this.#pools = pools;
  }

  async listen(): Promise<void> {
    const listen = this.#config.server.http.listen;
    const { host, port } = splitHostPort(listen);
    await new Promise<void>((resolve, reject) => {
      const fail = (cause: NodeJS.ErrnoException): void =>
        reject(
          new TollgateError('TG_ERR_LISTEN', `the HTTP gateway cannot listen on ${listen} (${cause.code ?? cause.message}); free the port or change server.http.listen`, {
            cause,
            details: { listen },
          }),
        );
      this.#server.once('error', fail);
      this.#server.listen(port, host, () => {
        this.#server.off('error', fail);
        resolve();
      });
    });
    const bound = this.#server.address() as AddressInfo;
    this.#address = { host: bound.address, port: bound.port };
    this.#logger.info({ listen: this.url, resources: this.#router.routes.length }, 'HTTP gateway listening');
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  // ---- requests ------------------------------------------------------------------------------

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.#poisoned.has(req.socket)) {
      // Bytes after a request with refused framing may belong to its body; they must never be
      // taken for a request of their own (RFC 9112 §11.2).
      req.socket.destroy();
      return;
    }
    const requestId = `${this.#idPrefix}-${(this.#idCounter++).toString(36)}`;
    const html = wantsHtml(req.headers);
    if (this.#inFlight + this.#webSockets >= this.#maxConcurrent) {
      res.setHeader('x-request-id', requestId);
      closeIfBodyUnread(req, res);
      this.#metrics.countRequest('-', 'none', 503);
      sendError(res, html, {
        status: 503,
        error: 'overloaded',
        title: 'Busy',
        message: 'The gateway is handling as many requests as it may. Try again shortly.',
        requestId,
        headers: { 'retry-after': '1' },
      });
      return;
    }
    this.#inFlight += 1;
    this.#metrics.inFlight.inc();
    this.#owe(req.socket);
    const host = parseHostHeader(req.headers.host);
    const target = normalizeRequestTarget(req.url ?? '');
    const ctx: RequestContext = {
      req,
      res,
      requestId,
      client: { requestId, remote: this.#trusted.clientAddress(peerAddress(req.socket.remoteAddress), singleHeader(req.headers['x-forwarded-for'])), userAgent: req.headers['user-agent'] },
      host: host ?? { hostname: '', raw: '' },
      path: target.ok ? target.path : '',
      query: target.ok ? target.query : '',
      html,
      startedAt: performance.now(),
      labels: { resource: '-', decision: 'none' },
      forwarding: null,
    };
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      if (ctx.forwarding !== null) {
        if (!res.writableFinished) ctx.forwarding.clientClosed();
        const current = this.#forwardingOn.get(req.socket);
        if (current === ctx.forwarding || current === null) this.#forwardingOn.delete(req.socket);
      }
      this.#metrics.countRequest(ctx.labels.resource, ctx.labels.decision, res.statusCode);
      this.#metrics.inFlight.dec();
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#drained?.();
      this.#settle(req.socket);
    };
    // `on`, not `once`: a response closes once, and `once` would wrap the listener per request.
    res.on('close', end);
    // A response queued behind an earlier one on its connection never emits 'close' when the
    // client goes away (Node aborts only the request): without this its slot would be lost for good.
    req.on('close', () => {
      if (!res.writableFinished && req.socket.destroyed) end();
    });
    const framing = framingProblem(req);
    if (framing !== null || host === null || !target.ok) {
      res.setHeader('x-request-id', requestId);
      this.#refuseRequest(ctx, framing, host === null ? 'bad-host' : target.ok ? null : target.problem);
      return;
    }
    this.#handle(ctx).catch((error: unknown) => this.#internalError(ctx, error));
  };

  /** Framing, Host or target problems: 400 (or 501), and for framing the connection is done. */
  #refuseRequest(ctx: RequestContext, framing: FramingProblem | null, problem: string | null): void {
    const { req, res } = ctx;
    if (framing !== null) {
      this.#poisoned.add(req.socket);
      req.socket.pause();
      res.shouldKeepAlive = false;
      res.setHeader('connection', 'close');
      sendError(res, ctx.html, {
        status: FRAMING_STATUS[framing],
        error: 'bad_framing',
        title: 'Bad request',
        message: 'The request framing is ambiguous, so the gateway refuses it and closes the connection.',
        reason: framing,
        requestId: ctx.requestId,
      });
      return;
    }
    closeIfBodyUnread(req, res);
    sendError(res, ctx.html, {
      status: 400,
      error: 'bad_request',
      title: 'Bad request',
      message:
        problem === 'bad-host'
          ? 'The Host header is missing or malformed.'
          : 'The request path cannot be normalised unambiguously, so the gateway refuses it rather than guess what the application would see.',
      reason: problem ?? 'bad-request',
      requestId: ctx.requestId,
    });
  }

  async #handle(ctx: RequestContext): Promise<void> {
    const { req, res, path, host } = ctx;
    const match = this.#router.match(host.hostname, path);
    const reserved = path.startsWith(RESERVED_PREFIX) || path.startsWith(WELL_KNOWN_PREFIX);
    const onPublicHost = host.hostname === this.#publicHost;
    const page = onPublicHost && !reserved ? this.#pageFor(path) : null;
    if (match.kind === 'resource' && !reserved && page === null && req.method !== 'TRACE' && req.method !== 'CONNECT') {
      return this.#proxy(ctx, match.route, match.upstreamPath);
    }
    // From here on the gateway answers itself; forwarded responses carry the id in #proxy.
    res.setHeader('x-request-id', ctx.requestId);
    if (this.#closing !== null) res.setHeader('connection', 'close');
    if (req.method === 'TRACE' || req.method === 'CONNECT') {
      closeIfBodyUnread(req, res);
      return sendError(res, ctx.html, { status: 405, error: 'method_not_allowed', title: 'Method not allowed', message: `${req.method} is not forwarded by the gateway.`, requestId: ctx.requestId });
    }
    if (path.startsWith(RESERVED_PREFIX)) return handleReserved(ctx, this.#services);
    if (path.startsWith(WELL_KNOWN_PREFIX)) return this.#wellKnown(ctx);
    if (page === 'db') return handleDbPage(ctx, this.#services);
    if (page !== null) return this.#mounted(ctx, page);
    closeIfBodyUnread(req, res);
    if (match.kind === 'add-slash') {
      res.writeHead(308, { location: `${match.location}${ctx.query}`, 'content-length': 0 });
      res.end();
      return;
    }
    if (onPublicHost && path === '/') return handleHome(ctx, this.#services);
    return sendNotFound(ctx);
  }

  /** The gateway page served at `path` on the public host: `/db` or a mounted route. */
  #pageFor(path: string): 'db' | GatewayRoute | null {
    if (path === DB_PAGE_PATH) return 'db';
    return this.#routes.find((candidate) => path === candidate.path || path.startsWith(`${candidate.path}/`)) ?? null;
  }

  /** Starts forwarding on `socket`'s behalf; the server's idle timeout asks it whom it waits on. */
  #forwarded(socket: Socket, request: ForwardRequest): Forwarding {
    const forwarding = forward(request);
    // `null` marks a connection with pipelined exchanges until the ones in progress are done.
    this.#forwardingOn.set(socket, this.#forwardingOn.has(socket) ? null : forwarding);
    return forwarding;
  }

  /**
   * The hot path: authenticate → decide → durable `http.request` → forward → `http.response`.
   * The assertion is signed (or taken from its short cache) while the record is on its way to
   * disk.
   */
  async #proxy(ctx: RequestContext, route: HttpRoute, upstreamPath: string): Promise<void> {
    const { req, res } = ctx;
    const resource = route.resource.name;
    ctx.labels.resource = resource;
    const authenticating = this.#auth.authenticate(req.headers);
    const outcome = authenticating instanceof Promise ? await authenticating : authenticating;
    if (outcome.kind !== 'caller') {
      res.setHeader('x-request-id', ctx.requestId);
      return this.#unauthenticated(ctx, outcome);
    }
    const { caller } = outcome;
    const method = req.method ?? 'GET';
    const decision = decide(this.#policy.current(), caller.principal, { kind: 'http', resource, method, path: upstreamPath });
    ctx.labels.decision = decision.effect;
    const assertion = decision.effect === 'allow' ? this.#signer.assertionFor(caller.principal, resource, caller.reuseKey) : null;
    // Awaited below only when the request goes on; a failure on the other paths is not lost as unhandled.
    if (assertion instanceof Promise) assertion.catch(() => undefined);
    // Built while the record is on its way to disk, so that forwarding starts the moment it is durable.
    const headers =
      assertion === null
        ? null
        : this.#upstreamHeaders(req, caller, typeof assertion === 'string' ? assertion : '', ctx.requestId);
    let seq: number;
    try {
      seq = await this.#record(requestEvent({ kind: 'http.request', caller, client: ctx.client, resource, decision, method, path: upstreamPath, host: ctx.host.raw }));
    } catch {
      res.setHeader('x-request-id', ctx.requestId);
      setSessionCookies(res, outcome.setCookies);
      return sendAuditUnavailable(ctx);
    }
    if (assertion === null || headers === null) {
      res.setHeader('x-request-id', ctx.requestId);
      setSessionCookies(res, outcome.setCookies);
      return this.#forbidden(ctx, decision);
    }
    const exchange = new ForwardedExchange(this.#exchangeHooks, ctx, caller, resource, seq, outcome.setCookies);
    if (req.socket.destroyed) {
      // The client left while the record was made durable: nothing is forwarded for nobody.
      exchange.done(0, 0, 0, 'client-closed');
      return;
    }
    if (typeof assertion !== 'string') headers[ASSERTION_HEADER] = await assertion;
    if (this.#expectsContinue.has(req)) res.writeContinue();
    // Passed to writeHead as one list, never through setHeader: setHeader keeps one value per
    // name, which would lose all but the last of an upstream's Set-Cookie lines.
    const responseHeaders: string[] = ['x-request-id', ctx.requestId];
    for (const cookie of outcome.setCookies) responseHeaders.push('set-cookie', cookie);
    if (this.#closing !== null) responseHeaders.push('connection', 'close');
    // Looked up at dispatch, after the awaits above: a reload in between may have retired the pool.
    const upstream = this.#pools.get(resource);
    if (upstream === undefined) {
      // The reload removed the resource while this request's record was being written.
      res.setHeader('x-request-id', ctx.requestId);
      setSessionCookies(res, outcome.setCookies);
      closeIfBodyUnread(req, res);
      sendError(res, ctx.html, {
        status: 502,
        error: 'upstream_unavailable',
        title: 'Application unavailable',
        message: 'The application was removed from the gateway configuration while this request was on its way.',
        requestId: ctx.requestId,
      });
      exchange.done(502, 0, 0, 'resource-removed');
      return;
    }
    ctx.forwarding = this.#forwarded(req.socket, {
      pool: upstream.pool,
      req,
      res,
      method,
      path: `${upstreamPath}${ctx.query}`,
      headers,
      hasBody: hasRequestBody(req.headers),
      responseHeaders,
      reservedCookies: this.#reservedCookies,
      listener: exchange,
    });
  }

  /** Counts and records a refused credential; when the record cannot be made, answers 503 and returns false. */
  async #recordFailure(ctx: RequestContext, failure: SessionFailure): Promise<boolean> {
    this.#metrics.authFailures.labels(failure.method, failure.reason).inc();
    try {
      await this.#record(failureEvent({ ...failure, client: ctx.client }));
      return true;
    } catch {
      sendAuditUnavailable(ctx);
      return false;
    }
  }

  /**
   * No caller: record a refused credential, then redirect browsers to login or answer 401; a
   * credential that needs the undiscovered IdP gets 503 instead.
   */
  async #unauthenticated(ctx: RequestContext, outcome: Exclude<AuthOutcome, { kind: 'caller' }>): Promise<void> {
    const { req, res } = ctx;
    closeIfBodyUnread(req, res);
    if (outcome.kind === 'idp-unavailable') {
      if (!(await this.#recordFailure(ctx, outcome.failure))) return;
      return sendIdpUnavailable(ctx, outcome.unavailable);
    }
    if (outcome.kind === 'refused') {
      if (!(await this.#recordFailure(ctx, { method: 'bearer', reason: outcome.reason }))) return;
      return sendError(res, false, {
        status: 401,
        error: 'invalid_token',
        title: 'Unauthorized',
        message: 'The bearer token was refused.',
        reason: outcome.reason,
        requestId: ctx.requestId,
        // RFC 6750 §3.1.
        headers: { 'www-authenticate': `Bearer realm="tollgate", error="invalid_token", error_description="${outcome.reason}"` },
      });
    }
    if (outcome.failure !== undefined && !(await this.#recordFailure(ctx, outcome.failure))) return;
    const cookies = outcome.setCookies.length > 0 ? { 'set-cookie': [...outcome.setCookies] } : {};
    if (ctx.html && (req.method === 'GET' || req.method === 'HEAD')) {
      const location = loginLocationFor(this.#crossHostLogin, ctx.host, `${ctx.path}${ctx.query}`);
      res.writeHead(302, { ...cookies, location, 'cache-control': 'no-store', 'content-length': 0 });
      res.end();
      return;
    }
    sendError(res, ctx.html, {
      status: 401,
      error: 'unauthenticated',
      title: 'Sign-in required',
      message: 'Sign in through the gateway, or send an OIDC access token as "Authorization: Bearer <token>".',
      requestId: ctx.requestId,
      // RFC 6750 §3: a request without credentials gets the challenge without an error code.
      headers: { ...cookies, 'www-authenticate': 'Bearer realm="tollgate"' },
    });
  }

  #forbidden(ctx: RequestContext, decision: Decision): void {
    closeIfBodyUnread(ctx.req, ctx.res);
    sendError(ctx.res, ctx.html, {
      status: 403,
      error: 'forbidden',
      title: 'Access denied',
      message: 'Your roles do not allow this request. If you need access, ask for a role that grants it and quote the request id.',
      reason: decision.reason,
      requestId: ctx.requestId,
    });
  }

  async #requireCaller(ctx: RequestContext): Promise<Caller | null> {
    const authenticating = this.#auth.authenticate(ctx.req.headers);
    const outcome = authenticating instanceof Promise ? await authenticating : authenticating;
    if (outcome.kind !== 'caller') {
      await this.#unauthenticated(ctx, outcome);
      return null;
    }
    if (outcome.setCookies.length > 0) ctx.res.setHeader('set-cookie', [...outcome.setCookies]);
    return outcome.caller;
  }

  #wellKnown(ctx: RequestContext): void {
    if (ctx.path !== JWKS_PATH) return sendNotFound(ctx);
    sendJson(ctx.res, 200, this.#signer.jwks, { 'cache-control': 'public, max-age=300' });
  }

  async #mounted(ctx: RequestContext, route: GatewayRoute): Promise<void> {
    await route.handle({
      req: ctx.req,
      res: ctx.res,
      requestId: ctx.requestId,
      path: ctx.path,
      query: ctx.query,
      client: ctx.client,
      html: ctx.html,
      requireCaller: () => this.#routeCaller(ctx),
      record: (event) => this.#record(event),
    });
  }

  async #routeCaller(ctx: RequestContext): Promise<RouteCaller | null> {
    const caller = await this.#requireCaller(ctx);
    if (caller === null) return null;
    const { session } = caller;
    if (session === undefined) return { ...caller, revoked: () => false };
    const refreshAt = this.#auth.refreshAt(session);
    return { ...caller, ...(refreshAt === null ? {} : { refreshAt }), revoked: () => this.#auth.isRevoked(session.sessionId) };
  }

  #internalError(ctx: RequestContext, error: unknown): void {
    this.#logger.error({ err: error, req: ctx.requestId }, 'request failed');
    if (ctx.res.headersSent) {
      ctx.res.destroy();
      return;
    }
    closeIfBodyUnread(ctx.req, ctx.res);
    sendError(ctx.res, ctx.html, { status: 500, error: 'internal', title: 'Internal error', message: 'The gateway failed to handle this request.', requestId: ctx.requestId });
  }

  /** Parse errors: the socket may be mid-request, so answer once and close (RFC 9112 §9.6). */
  readonly #onClientError = (error: Error & { code?: string }, socket: Duplex): void => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (this.#owes(socket)) {
      // The error is in a request pipelined behind one still being answered: RFC 9112 §9.3.2
      // keeps responses in request order, so the refusal waits for that answer rather than
      // cutting into it. Node reports the error again for each later chunk; the first is answered.
      this.#afterResponses(socket, () => this.#onClientError(error, socket));
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    this.#metrics.countRequest('-', 'none', status);
    this.#logger.debug({ code: error.code }, 'malformed request refused');
    const body = JSON.stringify({ error: 'bad_request', message: STATUS_CODES[status], reason: error.code ?? 'parse-error' });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };

  /** One more response is owed on `socket`. */
  #owe(socket: object): void {
    const owed = this.#owed.get(socket);
    if (typeof owed === 'object') owed.count += 1;
    else this.#owed.set(socket, (owed ?? 0) + 1);
  }

  /** A response on `socket` is over (sent, or the connection is gone); runs what waited for the last one. */
  #settle(socket: object): void {
    const owed = this.#owed.get(socket);
    if (typeof owed === 'number') {
      this.#owed.set(socket, owed - 1);
    } else if (owed !== undefined && (owed.count -= 1) === 0) {
      this.#owed.delete(socket);
      owed.then();
    }
  }

  /**
   * Whether responses to earlier requests on `socket` are still on their way. Node emits
   * 'upgrade' and 'clientError' for a request without waiting for those, so what the gateway
   * writes on the raw socket for it must wait ({@link #afterResponses}).
   */
  #owes(socket: object): boolean {
    const owed = this.#owed.get(socket);
    return owed !== undefined && owed !== 0;
  }

  /**
   * Runs `then` once the responses `socket` {@link #owes} are over. Only the first to wait on a
   * connection runs: whatever waits ends the connection.
   */
  #afterResponses(socket: object, then: () => void): void {
    const owed = this.#owed.get(socket);
    if (typeof owed === 'number') this.#owed.set(socket, { count: owed, then });
  }

  /** Takes a slot of `max_concurrent_requests` for a WebSocket session; the function returned gives it back, once. */
  #holdSlot(): () => void {
    this.#webSockets += 1;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#webSockets -= 1;
    };
  }

  /**
   * Answers a refused upgrade request on the raw socket and closes it. Node's server has let go
   * of the socket, timeouts included, so a client that never closes its side would otherwise keep
   * it open for good; it gets the idle timeout to read the answer (closing at once could reset
   * the connection before the answer is read, while request bytes are still unread).
   */
  #refuseUpgrade(
    socket: Duplex,
    status: number,
    requestId: string,
    body: Record<string, string>,
    headers: Record<string, string> = {},
    setCookies: readonly string[] = NO_SET_COOKIES,
  ): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const json = JSON.stringify({ ...body, request_id: requestId });
    const extra =
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') + setCookies.map((cookie) => `set-cookie: ${cookie}\r\n`).join('');
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-type: application/json\r\n` +
        `x-request-id: ${requestId}\r\n${extra}content-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
    );
    const linger = setTimeout(() => socket.destroy(), this.#server.timeout).unref();
    socket.once('close', () => clearTimeout(linger));
  }

  // ---- WebSocket -------------------------------------------------------------------------------

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const requestId = `${this.#idPrefix}-${(this.#idCounter++).toString(36)}`;
    if (this.#owes(socket)) {
      // A 101 switches the connection the moment it is sent (RFC 9110 §7.8): with answers to
      // earlier requests still to come it would go out of order (RFC 9112 §9.3.2) or cut into
      // one. Refused, after them.
      this.#afterResponses(socket, () => {
        this.#metrics.countRequest('-', 'none', 400);
        this.#refuseUpgrade(socket, 400, requestId, { error: 'bad_request', reason: 'pipelined-upgrade' });
      });
      return;
    }
    if (this.#inFlight + this.#webSockets >= this.#maxConcurrent) {
      this.#metrics.countRequest('-', 'none', 503);
      this.#refuseUpgrade(socket, 503, requestId, { error: 'overloaded', message: 'The gateway is handling as many requests as it may. Try again shortly.' }, { 'retry-after': '1' });
      return;
    }
    const release = this.#holdSlot();
    this.#upgrade(req, socket, head, requestId, release).catch((error: unknown) => {
      release();
      this.#logger.error({ err: error, req: requestId }, 'WebSocket upgrade failed');
      this.#refuseUpgrade(socket, 500, requestId, { error: 'internal' });
    });
  };

  /** `release` gives back the session's slot: called when the upgrade is refused or the session ends. */
  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string, release: () => void): Promise<void> {
    // Set once the caller is known: a refreshed session's cookie goes back whatever the answer.
    let setCookies = NO_SET_COOKIES;
    const refuse = (status: number, body: Record<string, string>, resource = '-', decision = 'none', headers: Record<string, string> = {}): void => {
      release();
      this.#metrics.countRequest(resource, decision, status);
      this.#refuseUpgrade(socket, status, requestId, body, headers, setCookies);
    };
    if (this.#closing !== null) return refuse(503, { error: 'shutting_down' });
    const problem = handshakeProblem(req) ?? framingProblem(req);
    const host = parseHostHeader(req.headers.host);
    const target = normalizeRequestTarget(req.url ?? '');
    if (problem !== null || host === null || !target.ok) {
      return refuse(400, { error: 'bad_request', reason: problem ?? (host === null ? 'bad-host' : target.ok ? 'bad-request' : target.problem) });
    }
    const match = this.#router.match(host.hostname, target.path);
    if (match.kind !== 'resource' || target.path.startsWith(RESERVED_PREFIX) || target.path.startsWith(WELL_KNOWN_PREFIX)) {
      return refuse(404, { error: 'not_found' });
    }
    const resource = match.route.resource.name;
    const client: ClientFacts = {
      requestId,
      remote: this.#trusted.clientAddress(peerAddress(req.socket.remoteAddress), singleHeader(req.headers['x-forwarded-for'])),
      userAgent: req.headers['user-agent'],
    };
    const outcome = await this.#auth.authenticate(req.headers);
    if (outcome.kind !== 'refused') setCookies = outcome.setCookies;
    if (outcome.kind !== 'caller') {
      const failure =
        outcome.kind === 'refused' ? { method: 'bearer' as const, reason: outcome.reason } : outcome.failure;
      if (failure !== undefined) {
        this.#metrics.authFailures.labels(failure.method, failure.reason).inc();
        try {
          await this.#record(failureEvent({ ...failure, client }));
        } catch {
          return refuse(503, { error: 'audit_unavailable' }, resource, 'none', { 'retry-after': String(AUDIT_RETRY_AFTER_SECONDS) });
        }
      }
      if (outcome.kind === 'idp-unavailable') {
        return refuse(503, { error: 'idp_unavailable', reason: outcome.unavailable.reason }, resource, 'none', { 'retry-after': String(outcome.unavailable.retryAfterSeconds) });
      }
      return outcome.kind === 'refused'
        ? refuse(401, { error: 'invalid_token', reason: outcome.reason }, resource, 'none', { 'www-authenticate': `Bearer realm="tollgate", error="invalid_token", error_description="${outcome.reason}"` })
        : refuse(401, { error: 'unauthenticated' }, resource, 'none', { 'www-authenticate': 'Bearer realm="tollgate"' });
    }
    const { caller } = outcome;
    const decision = decide(this.#policy.current(), caller.principal, { kind: 'http', resource, method: 'GET', path: match.upstreamPath });
    let seq: number;
    try {
      seq = await this.#record(requestEvent({ kind: 'ws.open', caller, client, resource, decision, method: 'GET', path: match.upstreamPath, host: host.raw }));
    } catch {
      return refuse(503, { error: 'audit_unavailable' }, resource, decision.effect, { 'retry-after': String(AUDIT_RETRY_AFTER_SECONDS) });
    }
    if (decision.effect === 'deny') return refuse(403, { error: 'forbidden', reason: decision.reason }, resource, 'deny');

    const headers = this.#upstreamHeaders(req, caller, await this.#signer.assertionFor(caller.principal, resource, caller.reuseKey), requestId);
    for (const name of Object.keys(headers)) if (name.startsWith('sec-websocket-')) delete headers[name];
    const upstream = new URL(`${match.upstreamPath}${target.query}`, match.route.origin);
    upstream.protocol = upstream.protocol === 'https:' ? 'wss:' : 'ws:';
    const started = performance.now();
    const gauge = this.#metrics.webSocketSessions.labels(resource);
    this.#relay.relay({
      req,
      socket,
      head,
      url: upstream.href,
      protocols: requestedProtocols(req) ?? [],
      headers,
      connectTimeoutMs: this.#config.server.http.limits.upstream_connect_timeout,
      maxPayload: MAX_WS_MESSAGE_BYTES,
      setCookies,
      onUpstreamFailure: (status, error) => {
        this.#logger.warn({ req: requestId, resource, error }, 'WebSocket upstream failed');
        refuse(status, { error: status === 504 ? 'upstream_timeout' : 'upstream_unavailable' }, resource, 'allow');
      },
      onOpen: () => {
        this.#metrics.countRequest(resource, 'allow', 101);
        gauge.inc();
      },
      onDone: (done) => {
        release();
        if (done.opened) gauge.dec();
        this.#recordLater(
          wsCloseEvent({
            caller,
            requestId,
            resource,
            ref: seq,
            durationMs: performance.now() - started,
            bytesIn: done.bytesIn,
            bytesOut: done.bytesOut,
            messagesIn: done.messagesIn,
            messagesOut: done.messagesOut,
            code: done.code,
            closedBy: done.closedBy,
            upstreamError: done.error,
          }),
        );
      },
    });
  }

  // ---- audit -----------------------------------------------------------------------------------

  /**
   * What the upstream receives for a forwarded request or WebSocket handshake: the client's
   * headers cleaned up (hop-by-hop, reserved cookies, inbound `X-Tollgate-*`) plus who is calling.
   */
  #upstreamHeaders(req: IncomingMessage, caller: Caller, assertion: string, requestId: string): Record<string, string | string[]> {
    const peer = peerAddress(req.socket.remoteAddress);
    return upstreamRequestHeaders(req.headers, {
      peer,
      peerTrusted: this.#trusted.trusts(peer),
      scheme: this.#scheme,
      cookie: cookieHeaderWithout(req.headers.cookie, this.#reservedCookies),
      dropAuthorization: caller.auth === 'bearer',
      identity: {
        'x-tollgate-user': caller.userHeader,
        'x-tollgate-groups': caller.groupsHeader,
        [ASSERTION_HEADER]: assertion,
        'x-tollgate-request-id': requestId,
      },
    });
  }

  async #record(event: AuditEvent, options?: AppendOptions): Promise<number> {
    const started = performance.now();
    try {
      const { seq } = await this.#audit.append(event, options);
      this.#metrics.observeAppend(event.kind, (performance.now() - started) / 1000);
      return seq;
    } catch (error) {
      this.#metrics.auditAppendFailures.labels(event.kind).inc();
      this.#logAppendFailure(error, event);
      throw error;
    }
  }

  /** One log line per failure burst, not one per refused request (the metric counts them all). */
  #logAppendFailure(error: unknown, event: AuditEvent): void {
    this.#appendFailuresSinceLog += 1;
    const now = performance.now();
    if (now - this.#appendFailureLoggedAt < APPEND_FAILURE_LOG_INTERVAL_MS) return;
    this.#logger.error({ err: error, kind: event.kind, req: event.request_id, failures: this.#appendFailuresSinceLog }, 'audit append failed; requests are refused');
    this.#appendFailureLoggedAt = now;
    this.#appendFailuresSinceLog = 0;
  }

  /**
   * Outcome records: nobody waits for them, but shutdown does. Deferred, they start no write of
   * their own and ride with the next request record's, so a request costs one durable write.
   */
  #recordLater(event: AuditEvent): void {
    // One promise and two callbacks per record: this runs once per forwarded request.
    const started = performance.now();
    this.#pendingLater += 1;
    let appending: Promise<unknown>;
    try {
      appending = this.#audit.append(event, DEFERRED);
    } catch (error) {
      appending = Promise.reject(error);
    }
    appending.then(
      () => {
        this.#metrics.observeAppend(event.kind, (performance.now() - started) / 1000);
        this.#settledLater();
      },
      (error: unknown) => {
        this.#metrics.auditAppendFailures.labels(event.kind).inc();
        this.#logAppendFailure(error, event);
        this.#settledLater();
      },
    );
  }

  #settledLater(): void {
    this.#pendingLater -= 1;
    if (this.#pendingLater === 0 && this.#laterSettled !== null) {
      this.#laterSettled();
      this.#laterSettled = null;
    }
  }

  // ---- shutdown --------------------------------------------------------------------------------

  async #close(): Promise<void> {
    this.#logger.info({ inFlight: this.#inFlight, webSockets: this.#relay.sessions }, 'HTTP gateway draining');
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    this.#relay.closeAll();
    const deadline = performance.now() + this.#drainTimeoutMs;
    if (this.#inFlight > 0) {
      await Promise.race([new Promise<void>((resolve) => (this.#drained = resolve)), sleep(this.#drainTimeoutMs)]);
    }
    while (this.#relay.sessions > 0 && performance.now() < deadline) await sleep(20);
    if (this.#relay.sessions > 0) {
      this.#relay.terminateAll();
      for (let wait = 0; this.#relay.sessions > 0 && wait < 50; wait++) await sleep(20);
    }
    this.#server.closeAllConnections();
    await closed;
    if (this.#pendingLater > 0) await new Promise<void>((resolve) => (this.#laterSettled = resolve));
    await Promise.all([...[...this.#pools.values()].map(({ pool }) => pool), ...this.#retiring].map((pool) => pool.destroy()));
    this.#logger.info({}, 'HTTP gateway stopped');
  }
}

/** A connection's owed responses once something waits to be written after them. */
interface AfterResponses {
  count: number;
  readonly then: () => void;
}

/** What a {@link ForwardedExchange} needs from its gateway; one object shared by all requests. */
interface ExchangeHooks {
  readonly logger: Logger;
  recordLater(event: AuditEvent): void;
}

/**
 * One forwarded request as the forwarding engine reports on it: answers the client when the
 * upstream fails before a response, and records `http.response` once the exchange is over.
 */
class ForwardedExchange implements ForwardListener {
  readonly #hooks: ExchangeHooks;
  readonly #ctx: RequestContext;
  readonly #caller: Caller;
  readonly #resource: string;
  /** Seq of the request's `http.request` record. */
  readonly #ref: number;
  /** The session cookies authentication asked to send (a refreshed session), also on a failure. */
  readonly #setCookies: readonly string[];

  constructor(hooks: ExchangeHooks, ctx: RequestContext, caller: Caller, resource: string, ref: number, setCookies: readonly string[]) {
    this.#hooks = hooks;
    this.#ctx = ctx;
    this.#caller = caller;
    this.#resource = resource;
    this.#ref = ref;
    this.#setCookies = setCookies;
  }

  upstreamFailed(status: 502 | 504, error: string): void {
    const { req, res, requestId, html } = this.#ctx;
    this.#hooks.logger.warn({ req: requestId, resource: this.#resource, error }, 'upstream failed');
    res.setHeader('x-request-id', requestId);
    setSessionCookies(res, this.#setCookies);
    closeIfBodyUnread(req, res);
    sendError(res, html, {
      status,
      error: status === 504 ? 'upstream_timeout' : 'upstream_unavailable',
      title: status === 504 ? 'Application timed out' : 'Application unavailable',
      message: 'The application behind the gateway did not answer. Try again; if it keeps failing, tell its owners the request id.',
      requestId,
    });
  }

  done(status: number, bytesIn: number, bytesOut: number, error: string | undefined): void {
    const ctx = this.#ctx;
    this.#hooks.recordLater(
      responseEvent({
        caller: this.#caller,
        requestId: ctx.requestId,
        resource: this.#resource,
        ref: this.#ref,
        status,
        bytesIn,
        bytesOut,
        durationMs: performance.now() - ctx.startedAt,
        upstreamError: error,
      }),
    );
  }
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Sends the session cookies authentication produced on a response the gateway writes itself.
 * A refreshed session's cookie must reach the browser whatever the answer (403, 502, 503, 101):
 * IdPs that rotate refresh tokens treat a second use of the old one as theft (RFC 9700 §4.14.2),
 * so a browser left holding the pre-refresh cookie would lose its session at its next refresh.
 */
function setSessionCookies(res: ServerResponse, setCookies: readonly string[]): void {
  if (setCookies.length > 0) res.setHeader('set-cookie', setCookies);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
