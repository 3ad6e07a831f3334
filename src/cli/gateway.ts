import { Registry, collectDefaultMetrics } from 'prom-client';
import { indexSecretFromSignerKey, parseSignerKey, type AuditStore } from '../audit/index.js';
import type { TollgateConfig } from '../config/index.js';
import type { Logger } from '../core/index.js';
import { createIdentity, type Identity } from '../identity/index.js';
import { LivePolicy, compilePolicy, type PolicySource } from '../policy/index.js';
import {
  createMintRecorder,
  gatewayReadiness,
  startAdminServer,
  startHttpGateway,
  type AdminServer,
  type GatewayRoute,
  type HttpGateway,
} from '../proxy/http/index.js';
import { startPostgresGateway, type PostgresGateway } from '../proxy/postgres/index.js';
import { loadSqlClassifier } from '../sql/index.js';
import { createAuditPages } from '../web/index.js';
import { openConfiguredAuditStore } from './audit-store.js';
import { tuneHeapForGateway } from './heap.js';
import { ConfigReloader, type ConfigFileReader, type ReloadOutcome, type ReloadTrigger } from './reload.js';

/** The whole running gateway: audit store, HTTP and Postgres gateways, admin listener. */
export interface RunningGateway {
  /** The config in force: the one started with, or the last successful reload's. */
  readonly config: TollgateConfig;
  /** The policy in force, which the proxies and the audit pages read at each decision. */
  readonly policy: PolicySource;
  readonly audit: AuditStore;
  readonly identity: Identity;
  readonly http: HttpGateway;
  /** Absent when the config has no `server.postgres` section. */
  readonly postgres: PostgresGateway | null;
  readonly admin: AdminServer;
  readonly registry: Registry;
  /**
   * Reads and validates the config file again and, when it is valid and changes only `roles`,
   * `grants` and `resources`, records `config.loaded` (durable) and puts it in force without
   * dropping a connection. Otherwise the old config stays in force whole; the outcome says why.
   */
  reload(trigger?: ReloadTrigger): Promise<ReloadOutcome>;
  /** Drains the listeners, records `gateway.stop`, then closes the audit store (final checkpoint). */
  close(reason?: string): Promise<void>;
}

export interface StartGatewayOptions {
  readonly logger: Logger;
  /** Extra routes on the public host, besides the audit review pages. */
  readonly routes?: readonly GatewayRoute[];
  /** Where `config` was read from and the SHA-256 of those bytes; `reload()` reads it again. */
  readonly configFile: { readonly reader: ConfigFileReader; readonly sha256: string };
}

/**
 * Starts everything `tollgate serve` runs, in dependency order: the audit store first (nothing is
 * served that cannot be recorded), then the identity room, then the listeners. When a step
 * fails, what was already started is closed again before the error propagates.
 *
 * An IdP that cannot be reached does not stop the start: the identity room keeps discovering it
 * in the background while sessions, database tokens, the audit pages and the admin listener
 * work, and `/readyz` says not ready. An IdP that answers wrongly (a mistyped `identity.issuer`)
 * fails the start with `TG_ERR_IDENTITY_DISCOVERY` (see `createIdentity`).
 */
export async function startGateway(config: TollgateConfig, options: StartGatewayOptions): Promise<RunningGateway> {
  const { logger } = options;
  tuneHeapForGateway();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const undo: Array<() => Promise<void>> = [];
  const rollback = async () => {
    for (const step of undo.reverse()) await step().catch((error: unknown) => logger.warn({ err: error }, 'cleanup after failed start'));
  };
  try {
    const policy = new LivePolicy(compilePolicy(config.policy));
    const audit = await openConfiguredAuditStore(config, logger);
    undo.push(() => audit.close());
    await audit.append({ kind: 'gateway.start', data: { pid: process.pid, node: process.version } });
    await audit.append({
      kind: 'config.loaded',
      data: {
        file: config.source.file,
        sha256: options.configFile.sha256,
        reload: false,
        resources: config.resources.map((r) => r.name),
        roles: Object.keys(config.roles),
        grants: config.grants.length,
      },
    });
    const identity = await createIdentity(
      { publicUrl: config.server.public_url, identity: config.identity },
      { logger: logger.child({ component: 'identity' }) },
    );
    undo.push(async () => identity.close());
    const pages = await createAuditPages({
      dir: config.audit.dir,
      logId: config.audit.log_id,
      verifierKeys: [parseSignerKey(config.audit.signing_key).verifierKey],
      indexSecret: indexSecretFromSignerKey(config.audit.signing_key),
      policy,
      store: audit,
      logger,
    });
    undo.push(() => pages.close());
    const http = await startHttpGateway({
      config,
      policy,
      identity,
      audit,
      registry,
      logger,
      routes: [...(options.routes ?? []), pages.route],
    });
    undo.push(() => http.close());
    const postgres = config.server.postgres === undefined
      ? null
      : await startPostgresGateway({ config, policy, sql: await loadSqlClassifier(), tokens: identity, audit, registry, logger });
    if (postgres !== null) undo.push(() => postgres.close());
    // `tollgate token mint` records its tokens here while this process holds the audit log.
    const mintRecorder = identity.dbTokens === null ? undefined : createMintRecorder({ tokens: identity.dbTokens, audit, logId: config.audit.log_id, registry, logger });
    const admin = await startAdminServer({
      listen: config.server.admin.listen,
      registry,
      readiness: () => gatewayReadiness({ config, identity, audit }),
      logger,
      ...(mintRecorder === undefined ? {} : { mintRecorder }),
    });
    undo.push(() => admin.close());
    const reloader = new ConfigReloader({
      reader: options.configFile.reader,
      config,
      sha256: options.configFile.sha256,
      audit,
      apply: (next, compiled) => {
        policy.replace(compiled);
        http.reconfigure(next);
        postgres?.reconfigure(next);
      },
      logger,
    });
    logger.info({ http: http.url, postgres: postgres?.address, admin: admin.url, idp: identity.discovery.status }, 'gateway started');

    let closing: Promise<void> | null = null;
    const close = (reason = 'shutdown') => {
      closing ??= (async () => {
        identity.close();
        mintRecorder?.close();
        await reloader.close();
        // The pages end their live streams, which the gateway's drain would otherwise wait for.
        await Promise.all([pages.close(), http.close(), postgres?.close()]);
        await audit.append({ kind: 'gateway.stop', data: { reason } }).catch((error: unknown) => {
          logger.error({ err: error }, 'could not record gateway.stop');
        });
        await audit.close();
        await admin.close();
        logger.info({ reason }, 'gateway stopped');
      })();
      return closing;
    };
    return {
      get config() {
        return reloader.config;
      },
      policy,
      audit,
      identity,
      http,
      postgres,
      admin,
      registry,
      reload: (trigger) => reloader.reload(trigger),
      close,
    };
  } catch (error) {
    await rollback();
    throw error;
  }
}
