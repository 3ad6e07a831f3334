import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createSecureContext, type SecureContext } from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { Registry } from 'prom-client';
import type { AuditStore } from '../../audit/index.js';
import { splitHostPort, type PostgresListenerConfig, type PostgresResourceConfig, type TollgateConfig } from '../../config/index.js';
import { silentLogger, systemClock, TollgateError, type Clock, type Logger } from '../../core/index.js';
import { policySource, type CompiledPolicy, type PolicySource } from '../../policy/index.js';
import type { SqlClassifier } from '../../sql/index.js';
import { authFailureEvent, connectEvent, disconnectEvent, type SessionFacts } from './audit-events.js';
import { CancelMap } from './cancel-map.js';
import { AuthFailureLimiter, authenticateClient, type PgTokenVerifier } from './client-auth.js';
import { fatalResponse } from './errors.js';
import { StatementGate } from './intercept.js';
import { PgMetrics } from './metrics.js';
import {
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeNegotiateProtocolVersion,
  encodeReadyForQuery,
  encodeTerminate,
  PROTOCOL_3_0,
  SQLSTATE,
  type ScramKeys,
} from './protocol/index.js';
import { Session } from './session.js';
import { negotiateStartup, type StartupSettings } from './startup.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

/** Everything the gateway runs on, built by the caller (`tollgate serve`, tests). */
export interface PostgresGatewayDeps {
  /** The validated config; `server.postgres` must be present. */
  readonly config: TollgateConfig;
  /**
   * `compilePolicy(config.policy)`, or a {@link PolicySource} that a config reload updates: each
   * login and each statement is decided by the policy in force at that moment.
   */
  readonly policy: CompiledPolicy | PolicySource;
  /** `await loadSqlClassifier()`. */
  readonly sql: SqlClassifier;
  /**
   * Database-token verification (`createDbTokens(...)` or an `Identity`); with
   * `accept_oidc_tokens`, also `verifyBearer` (an `Identity`).
   */
  readonly tokens: PgTokenVerifier;
  /** The open audit store; the caller owns it and closes it after the gateway. */
  readonly audit: AuditStore;
  /** The prom-client registry the metrics are registered on (served by the admin listener). */
  readonly registry: Registry;
  readonly logger?: Logger;
  /** Time for token expiry and the auth-failure window. Default: the system clock. */
  readonly clock?: Clock;
  /** Connect-and-login budget of each upstream connection. Default: `limits.startup_timeout`. */
  readonly upstreamTimeoutMs?: number;
}

/** A running Postgres gateway. */
export interface PostgresGateway {
  /** The address the listener is bound to (port resolved when the config said 0). */
  readonly address: { readonly host: string; readonly port: number };
  /** Client connections open now, in startup or in a session. */
  connectionCount(): number;
  /** Sessions relaying now. */
  sessionCount(): number;
  /**
   * Takes the Postgres resources of a reloaded config (upstream addresses, logins) for sessions
   * that start from now on; open sessions keep the upstream login they connected with. The
   * listener keeps the `server.postgres` settings it started with.
   */
  reconfigure(config: TollgateConfig): void;
  /**
   * Stops accepting connections, ends every session with FATAL 57P01 (as a PostgreSQL fast
   * shutdown does), closes their upstream connections and waits for their `pg.disconnect`
   * records. The audit store stays open: its owner closes it next.
   */
  close(): Promise<void>;
}

/**
 * Starts the PostgreSQL wire-protocol gateway (DESIGN.md §2 "Postgres access") on
 * `server.postgres.listen`. Per connection: startup and TLS → token authentication → upstream
 * login (the login policy grants) → `pg.connect` durable → relay, in which every statement is
 * classified, decided and durably recorded before the database sees it.
 */
export async function startPostgresGateway(deps: PostgresGatewayDeps): Promise<PostgresGateway> {
  const listener = deps.config.server.postgres;
  if (listener === undefined) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', 'server.postgres: the section is missing, so there is no Postgres listener to start; add it to the config');
  }
  const gateway = new Gateway(deps, listener);
  await gateway.listen();
  return gateway;
}

class Gateway implements PostgresGateway {
  readonly #deps: PostgresGatewayDeps;
  readonly #listener: PostgresListenerConfig;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #tls: SecureContext | null;
  readonly #policy: PolicySource;
  #resources: ReadonlyMap<string, PostgresResourceConfig>;
  readonly #limiter: AuthFailureLimiter;
  readonly #cancels: CancelMap;
  readonly #keyCache = new LRUCache<string, ScramKeys>({ max: 1024 });
  readonly #metrics: PgMetrics;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** Sockets not yet handed to a session: shutdown destroys them, while sessions end politely. */
  readonly #starting = new Set<Socket>();
  readonly #sessions = new Set<Session>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #sweeper: NodeJS.Timeout;
  #address: { host: string; port: number } = { host: '', port: 0 };
  #closing: Promise<void> | null = null;

  constructor(deps: PostgresGatewayDeps, listener: PostgresListenerConfig) {
    this.#deps = deps;
    this.#listener = listener;
    this.#logger = (deps.logger ?? silentLogger).child({ component: 'pg-gateway' });
    this.#clock = deps.clock ?? systemClock;
    this.#tls = listener.tls === undefined ? null : createSecureContext({ cert: listener.tls.cert, key: listener.tls.key, minVersion: 'TLSv1.2' });
    this.#policy = policySource(deps.policy);
    this.#resources = postgresResources(deps.config);
    this.#limiter = new AuthFailureLimiter(listener.auth_failures.max, listener.auth_failures.window, this.#clock);
    this.#cancels = new CancelMap(5000);
    this.#metrics = new PgMetrics(deps.registry);
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    const idleMs = listener.limits.idle_timeout;
    this.#sweeper = setInterval(() => this.#sweepIdle(idleMs), Math.min(5000, Math.max(50, Math.floor(idleMs / 4))));
    this.#sweeper.unref();
  }

  get address(): { host: string; port: number } {
    return this.#address;
  }

  connectionCount(): number {
    return this.#sockets.size;
  }

  sessionCount(): number {
    return this.#sessions.size;
  }

  reconfigure(config: TollgateConfig): void {
    this.#resources = postgresResources(config);
  }

  async listen(): Promise<void> {
    const { host, port } = splitHostPort(this.#listener.listen);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const bound = this.#server.address() as AddressInfo;
    this.#address = { host: bound.address, port: bound.port };
    this.#server.on('error', (error) => this.#logger.error({ err: error }, 'postgres listener error'));
    this.#logger.info({ listen: `${bound.address}:${bound.port}`, tls: this.#tls !== null }, 'postgres gateway listening');
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#sweeper);
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const session of this.#sessions) session.terminate('the gateway is shutting down');
      for (const socket of this.#starting) socket.destroy();
      await Promise.allSettled([...this.#handlers]);
      await closed;
    })();
    return this.#closing;
  }

  #accept(socket: Socket): void {
    socket.on('error', (error) => this.#logger.debug({ err: error }, 'client socket error'));
    if (this.#closing !== null) {
      socket.destroy();
      return;
    }
    if (this.#sockets.size >= this.#listener.limits.max_connections) {
      // The client's first message is unread; PostgreSQL clients read an ErrorResponse in its place.
      socket.end(fatalResponse({ code: SQLSTATE.too_many_connections, message: 'sorry, too many clients already' }));
      socket.destroySoon();
      return;
    }
    socket.setKeepAlive(true, 60_000);
    this.#sockets.add(socket);
    this.#starting.add(socket);
    this.#metrics.connections.inc();
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#starting.delete(socket);
      this.#metrics.connections.dec();
    });
    const handler = this.#handle(socket).catch((error: unknown) => {
      this.#logger.error({ err: error }, 'postgres connection failed');
      socket.destroy();
    });
    this.#handlers.add(handler);
    void handler.then(() => this.#handlers.delete(handler));
  }

  async #handle(socket: Socket): Promise<void> {
    const limits = this.#listener.limits;
    const remote = socket.remoteAddress ?? 'unknown';
    const startedAt = performance.now();
    // Slow or half-open clients: the whole startup, login and upstream connect fit in this budget.
    const timer = setTimeout(() => socket.destroy(), limits.startup_timeout);
    try {
      const settings: StartupSettings = { tls: this.#tls, maxStartupBytes: limits.max_startup_bytes, maxMessageBytes: limits.max_message_bytes };
      const outcome = await negotiateStartup(socket, settings);
      if (outcome.kind === 'cancel') {
        clearTimeout(timer);
        socket.destroy();
        const result = await this.#cancels.cancel(outcome.request);
        this.#logger.debug({ remote, result }, 'cancel request');
        return;
      }
      if (outcome.kind === 'closed') {
        if (outcome.reply !== null) {
          this.#metrics.protocolErrors.labels('client').inc();
          socket.end(outcome.reply);
        } else {
          socket.destroy();
        }
        return;
      }
      const { socket: stream, inbox, reader, startup, tls } = outcome;
      const unsupported = [...startup.params.keys()].filter((name) => name.startsWith('_pq_.'));
      // §55.2.1: a client asking for a newer minor version or protocol options is told what it gets.
      if (startup.protocolVersion.minor > 0 || unsupported.length > 0) stream.write(encodeNegotiateProtocolVersion(PROTOCOL_3_0, unsupported));

      const auth = await authenticateClient(stream, inbox, startup, tls !== null, {
        listener: this.#listener,
        resources: this.#resources,
        policy: this.#policy,
        tokens: this.#deps.tokens,
        limiter: this.#limiter,
        remote,
      });
      if (!auth.ok) {
        // Recorded first, so that a refusal a client has heard is always on record.
        if (auth.audit) {
          this.#metrics.authFailures.labels(auth.reason).inc();
          await this.#deps.audit
            .append(
              authFailureEvent({
                reason: auth.reason,
                ...(auth.principal === undefined ? {} : { principal: auth.principal }),
                user: startup.params.get('user'),
                database: startup.params.get('database'),
                remote,
                tls: tls !== null,
              }),
            )
            .catch((error: unknown) => this.#logger.warn({ err: error }, 'auth.failure record could not be appended'));
        }
        if (auth.reply !== null) stream.end(auth.reply);
        else stream.destroy();
        return;
      }
      inbox.detach();

      const resource = auth.resource;
      const target: UpstreamTarget = {
        host: resource.upstream.host,
        port: resource.upstream.port,
        database: resource.upstream.database,
        tls: resource.upstream.tls,
        ...(resource.upstream.ca === undefined ? {} : { ca: resource.upstream.ca }),
      };
      const remaining = Math.max(1, limits.startup_timeout - (performance.now() - startedAt));
      const upstreamResult = await connectUpstream({
        resource: resource.name,
        target,
        user: auth.login.user,
        password: auth.login.password,
        params: auth.params,
        timeoutMs: Math.min(remaining, this.#deps.upstreamTimeoutMs ?? limits.startup_timeout),
        keyCache: this.#keyCache,
      });
      if (!upstreamResult.ok) {
        this.#logger.warn({ resource: resource.name, login: auth.login.name, reason: upstreamResult.reason }, upstreamResult.error.message);
        stream.end(fatalResponse(upstreamResult.error));
        return;
      }
      const upstream = upstreamResult.connection;
      clearTimeout(timer);
      if (socket.destroyed) {
        upstream.socket.end(encodeTerminate());
        return;
      }

      const facts: SessionFacts = {
        sessionId: randomBytes(12).toString('base64url'),
        principal: auth.principal,
        resource: resource.name,
        login: auth.login.name,
        remote,
      };
      let connectSeq: number;
      try {
        const appended = await this.#deps.audit.append(
          connectEvent({
            session: facts,
            auth: auth.auth,
            tokenId: auth.tokenId,
            upstreamUser: auth.login.user,
            database: resource.upstream.database,
            tls,
            upstreamTls: upstream.tls,
            upstreamPid: upstream.backendKey.pid,
            applicationName: startup.params.get('application_name'),
          }),
        );
        connectSeq = appended.seq;
      } catch (error) {
        this.#metrics.auditFailures.labels('pg.connect').inc();
        this.#logger.warn({ err: error }, 'pg.connect record could not be appended; the session is refused');
        stream.end(fatalResponse({ code: SQLSTATE.cannot_connect_now, message: 'the audit log cannot record this session right now, so it is refused', hint: 'Retry later.' }));
        upstream.socket.end(encodeTerminate());
        return;
      }
      if (socket.destroyed || this.#closing !== null) {
        upstream.socket.end(encodeTerminate());
        await this.#disconnectRecord(facts, connectSeq, startedAt, null, { closedBy: 'client', reason: 'client left during login' });
        return;
      }

      const key = this.#cancels.register({ target, pid: upstream.backendKey.pid, secretKey: upstream.backendKey.secretKey });
      // §55.2.1: AuthenticationOk, ParameterStatus…, BackendKeyData, ReadyForQuery, in one write.
      stream.cork();
      stream.write(encodeAuthenticationOk());
      for (const frame of upstream.parameterStatus) stream.write(frame);
      for (const frame of upstream.notices) stream.write(frame);
      stream.write(encodeBackendKeyData(key.pid, key.secretKey));
      stream.write(encodeReadyForQuery(upstream.status));
      stream.uncork();

      const session = new Session({
        client: stream,
        clientReader: reader,
        upstream: upstream.socket,
        upstreamReader: upstream.reader,
        gate: new StatementGate(this.#policy, this.#deps.sql, auth.principal, resource.name, auth.login.name),
        audit: this.#deps.audit,
        facts,
        redactParameters: resource.redact_parameters,
        metrics: this.#metrics,
        logger: this.#logger.child({ session: facts.sessionId }),
      });
      this.#starting.delete(socket);
      this.#sessions.add(session);
      this.#metrics.sessions.labels(resource.name, auth.login.name).inc();
      session.start();
      const end = await session.done;
      this.#sessions.delete(session);
      this.#cancels.unregister(key.pid);
      await this.#disconnectRecord(facts, connectSeq, startedAt, session, end);
    } finally {
      clearTimeout(timer);
    }
  }

  async #disconnectRecord(
    facts: SessionFacts,
    connectSeq: number,
    startedAt: number,
    session: Session | null,
    end: { closedBy: 'client' | 'upstream' | 'gateway'; reason: string | undefined },
  ): Promise<void> {
    try {
      await this.#deps.audit.append(
        disconnectEvent({
          session: facts,
          ref: connectSeq,
          durationMs: performance.now() - startedAt,
          statements: session?.statements ?? 0,
          denied: session?.denied ?? 0,
          bytesIn: session?.bytesIn ?? 0,
          bytesOut: session?.bytesOut ?? 0,
          closedBy: end.closedBy,
          reason: end.reason,
        }),
      );
    } catch (error) {
      this.#metrics.auditFailures.labels('pg.disconnect').inc();
      this.#logger.warn({ err: error }, 'pg.disconnect record could not be appended');
    }
  }

  #sweepIdle(idleMs: number): void {
    const now = performance.now();
    for (const session of this.#sessions) session.closeIfIdle(now, idleMs);
  }
}

function postgresResources(config: TollgateConfig): ReadonlyMap<string, PostgresResourceConfig> {
  const resources = new Map<string, PostgresResourceConfig>();
  for (const resource of config.resources) if (resource.kind === 'postgres') resources.set(resource.name, resource);
  return resources;
}
