import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { AuditStore } from '../../audit/index.js';
import { splitHostPort, type TollgateConfig } from '../../config/index.js';
import { TollgateError, silentLogger, type Logger } from '../../core/index.js';
import type { Identity } from '../../identity/index.js';
import { MINT_RECORD_PATH, type MintRecorder } from './mint-record.js';

/** One readiness check as `/readyz` reports it. */
export interface ReadinessCheck {
  /** `config`, `idp`, `audit`, ... */
  readonly name: string;
  readonly ok: boolean;
  /** A short state word or message for the operator (`ready`, `degraded: <why>`). */
  readonly detail?: string;
}

export interface AdminServerOptions {
  /** `host:port` (`server.admin.listen`; loopback by default). */
  readonly listen: string;
  readonly registry: Registry;
  /** The checks `/readyz` runs on every call; ready when all are ok. */
  readonly readiness: () => readonly ReadinessCheck[] | Promise<readonly ReadinessCheck[]>;
  readonly logger?: Logger;
  /** Records tokens minted by `tollgate token mint` while the gateway runs; absent without database tokens. */
  readonly mintRecorder?: MintRecorder;
}

export interface AdminServer {
  readonly address: { readonly host: string; readonly port: number };
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The admin listener (DESIGN.md §3, `server.admin.listen`), apart from the gateway so that it
 * can stay on loopback: `/healthz` (the process answers), `/readyz` (every readiness check
 * passes: 200, else 503, with a JSON body naming each check), `/metrics` (Prometheus text
 * format from the registry) and, with a {@link MintRecorder}, `POST /tokens/issued`.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const logger = (options.logger ?? silentLogger).child({ component: 'admin' });
  const server = createServer((req, res) => {
    handle(req, res, options).catch((error: unknown) => {
      logger.error({ err: error }, 'admin request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  server.keepAliveTimeout = 5_000;
  const { host, port } = splitHostPort(options.listen);
  await new Promise<void>((resolve, reject) => {
    const fail = (cause: NodeJS.ErrnoException): void =>
      reject(
        new TollgateError('TG_ERR_LISTEN', `the admin listener cannot listen on ${options.listen} (${cause.code ?? cause.message}); free the port or change server.admin.listen`, {
          cause,
          details: { listen: options.listen },
        }),
      );
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  const url = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  logger.info({ listen: url }, 'admin listener listening');
  return {
    address,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AdminServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path === MINT_RECORD_PATH && options.mintRecorder !== undefined) return options.mintRecorder.handle(req, res);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  switch (path) {
    case '/healthz':
      json(res, 200, { status: 'ok' });
      return;
    case '/readyz': {
      const checks = await options.readiness();
      const ready = checks.every((check) => check.ok);
      json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not-ready', checks: Object.fromEntries(checks.map(({ name, ...rest }) => [name, rest])) });
      return;
    }
    case '/metrics': {
      const text = await options.registry.metrics();
      res.writeHead(200, { 'content-type': options.registry.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    default:
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** What {@link gatewayReadiness} looks at. */
export interface GatewayReadinessDeps {
  /** The loaded config; its presence is the `config` check, its file names the detail. */
  readonly config: TollgateConfig | null;
  /** The identity room's façade; `null` before it is built. */
  readonly identity: Identity | null;
  readonly audit: AuditStore | null;
}

/**
 * The gateway's readiness checks: `config` (a valid config is loaded), `idp` (the issuer is
 * discovered; before, the detail says why not and when it is tried next), `audit` (the store
 * accepts appends: status `ready`, not `degraded` or `closed`).
 */
export function gatewayReadiness(deps: GatewayReadinessDeps): ReadinessCheck[] {
  const checks: ReadinessCheck[] = [
    deps.config === null ? { name: 'config', ok: false, detail: 'not loaded' } : { name: 'config', ok: true, detail: deps.config.source.file },
    idpCheck(deps.identity),
  ];
  if (deps.audit === null) {
    checks.push({ name: 'audit', ok: false, detail: 'not open' });
  } else {
    const state = deps.audit.state();
    const detail = state.status === 'ready' ? 'ready' : `${state.status}${state.lastError === null ? '' : `: ${state.lastError.message}`}`;
    checks.push({ name: 'audit', ok: state.status === 'ready', detail });
  }
  return checks;
}

function idpCheck(identity: Identity | null): ReadinessCheck {
  if (identity === null) return { name: 'idp', ok: false, detail: 'not discovered' };
  const state = identity.discovery;
  if (state.status === 'discovered') return { name: 'idp', ok: true, detail: state.issuer };
  const next = state.nextAttemptAt === null ? 'an attempt is running' : `next attempt at ${new Date(state.nextAttemptAt).toISOString()}`;
  return { name: 'idp', ok: false, detail: `not discovered: ${state.issuer}: ${state.lastError} (${state.failures} failed attempts; ${next})` };
}
