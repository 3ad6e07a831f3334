/**
 * A whole Postgres gateway for integration tests: a config built from YAML (through the real
 * config loader), the compiled policy, the SQL classifier, database tokens, a file audit store
 * in a temporary folder and `startPostgresGateway` on 127.0.0.1 port 0, in front of a
 * {@link TestPostgres}. Closed by {@link PgGatewayHarness.close}.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { Registry } from 'prom-client';
import {
  generateSignerKey,
  openFileStore,
  parseRecord,
  parseSignerKey,
  type AuditRecord,
  type AuditStore,
  type AuditStoreObserver,
  type StoreFs,
} from '../../src/audit/index.js';
import { loadConfigOrThrow, type TollgateConfig } from '../../src/config/index.js';
import { systemClock, type Clock, type Principal } from '../../src/core/index.js';
import { createDbTokens } from '../../src/identity/index.js';
import { compilePolicy } from '../../src/policy/index.js';
import { startPostgresGateway, type PgTokenVerifier, type PostgresGateway } from '../../src/proxy/postgres/index.js';
import { loadSqlClassifier } from '../../src/sql/index.js';
import { LOGIN_PASSWORDS, type TestPostgres } from './postgres.js';
import type { TestCertificate } from './tls.js';

export const DB_TOKEN_KEY = 'pg-gateway-db-token-key-0123456789abcdef';
export const SESSION_KEY = 'pg-gateway-session-key-0123456789abcdef';
export const TEST_LOG_ID = 'test.tollgate/pg-audit';

export const ALICE: Principal = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] };
export const BOB: Principal = { subject: 'sub-bob', email: 'bob@example.com', groups: ['dba'] };
export const OPS: Principal = { subject: 'sub-olga', email: 'olga@example.com', groups: ['ops'] };
export const MALLORY: Principal = { subject: 'sub-mallory', email: 'mallory@example.com', groups: [] };

/**
 * `engineer` reads `shop` as `reader`, never `secret.*`, never `pg_terminate_backend`; `dba`
 * reads and writes as `reader` or `writer` (no DDL); `ops` reads through the md5 and cleartext
 * logins.
 */
export const DEFAULT_PG_POLICY = `
roles:
  engineer:
    allow:
      - resource: shop
        logins: [reader]
        statements: [read]
    deny:
      - resource: shop
        tables: ["secret.*"]
      - resource: shop
        functions: [pg_terminate_backend]
  dba:
    allow:
      - resource: shop
        logins: [reader, writer]
        statements: [read, write]
  ops:
    allow:
      - resource: shop
        logins: [md5, plain]
        statements: [read]
grants:
  - role: engineer
    groups: [engineering]
  - role: dba
    groups: [dba]
  - role: ops
    groups: [ops]
`;

export interface PgGatewayOptions {
  readonly postgres: TestPostgres;
  /** Listener certificate; without one the listener is cleartext on loopback. */
  readonly tls?: TestCertificate;
  /** `allow_cleartext_on_loopback`; default true without `tls`, false with it. */
  readonly allowCleartext?: boolean;
  readonly policyYaml?: string;
  readonly upstreamTls?: 'disable' | 'prefer' | 'require' | 'verify-full';
  /** PEM of the upstream's CA, for `verify-full`. */
  readonly upstreamCa?: string;
  /** Point the resource at another port (an upstream that is down). */
  readonly upstreamPort?: number;
  /** Extra `server.postgres.limits` YAML lines, e.g. `startup_timeout: 500ms`. */
  readonly limits?: Readonly<Record<string, string | number>>;
  readonly authFailures?: { readonly max: number; readonly window: string };
  readonly redactParameters?: boolean;
  readonly acceptOidcTokens?: boolean;
  /** Replaces the default database-token verifier (an `Identity` for OIDC tests). */
  readonly tokens?: PgTokenVerifier;
  /** The issuer written in the config (discovery is the caller's business when it matters). */
  readonly issuer?: string;
  /** File operations of the audit store (fault injection). */
  readonly auditFs?: StoreFs;
  /** `audit.append_timeout`; default 2s. */
  readonly appendTimeout?: string;
  /** `audit.durability`; default `always`. */
  readonly durability?: 'always' | 'interval';
  /** The audit store's group commit (`audit.group_commit`); the store's defaults when absent. */
  readonly groupCommit?: { readonly maxRecords?: number; readonly maxDelayMs?: number };
  readonly clock?: Clock;
  /** Wraps the audit store the gateway writes to (to observe or delay appends). */
  readonly wrapStore?: (store: AuditStore) => AuditStore;
  /** The audit store's observer (batches, latencies), for benchmarks. */
  readonly auditObserver?: AuditStoreObserver;
}

export interface PgGatewayHarness {
  readonly config: TollgateConfig;
  readonly store: AuditStore;
  readonly gateway: PostgresGateway;
  readonly registry: Registry;
  readonly auditDir: string;
  readonly host: string;
  readonly port: number;
  /** A database token for `principal` (default lifetime 1h). */
  token(principal: Principal, ttlMs?: number): string;
  /** node-postgres client settings for `principal`, with a fresh token. */
  pgConfig(principal: Principal, extra?: pg.ClientConfig): pg.ClientConfig;
  /** Every record in the audit directory, in seq order (a frame still being written is left out). */
  records(): AuditRecord[];
  /**
   * The records `where` accepts, once there are at least `count` of them. Outcome records
   * (`pg.result`, `pg.disconnect`) become durable after the client has its answer, so tests wait.
   */
  recordsWhere(where: (record: AuditRecord) => boolean, count?: number): Promise<AuditRecord[]>;
  close(): Promise<void>;
}

function yamlFor(options: PgGatewayOptions, auditDir: string, issuer: string): string {
  const listenerTls = options.tls === undefined ? '' : `    tls:\n      cert: \${env:PG_TLS_CERT}\n      key: \${env:PG_TLS_KEY}\n`;
  const allowCleartext = options.allowCleartext ?? options.tls === undefined;
  const limits = Object.entries(options.limits ?? {})
    .map(([key, value]) => `      ${key}: ${value}\n`)
    .join('');
  const failures = options.authFailures ?? { max: 1000, window: '1m' };
  const ca = options.upstreamCa === undefined ? '' : '      ca: ${env:UPSTREAM_CA}\n';
  return `
server:
  public_url: http://127.0.0.1:1
  postgres:
    listen: 127.0.0.1:0
${listenerTls}    allow_cleartext_on_loopback: ${allowCleartext}
    accept_oidc_tokens: ${options.acceptOidcTokens ?? false}
${limits === '' ? '' : `    limits:\n${limits}`}    auth_failures:
      max: ${failures.max}
      window: ${failures.window}
  admin:
    listen: 127.0.0.1:0
identity:
  issuer: ${issuer}
  client_id: tollgate
  session:
    keys: ["${SESSION_KEY}"]
  db_tokens:
    signing_key: \${env:DB_TOKEN_KEY}
resources:
  - name: shop
    kind: postgres
    upstream:
      host: 127.0.0.1
      port: ${options.upstreamPort ?? options.postgres.port}
      database: shop
      tls: ${options.upstreamTls ?? 'disable'}
${ca}    logins:
      - name: reader
        user: shop_reader
        password: ${LOGIN_PASSWORDS.shop_reader}
      - name: writer
        user: shop_writer
        password: ${LOGIN_PASSWORDS.shop_writer}
      - name: md5
        user: shop_md5
        password: ${LOGIN_PASSWORDS.shop_md5}
      - name: plain
        user: shop_plain
        password: ${LOGIN_PASSWORDS.shop_plain}
    redact_parameters: ${options.redactParameters ?? false}
${options.policyYaml ?? DEFAULT_PG_POLICY}
audit:
  dir: ${auditDir}
  log_id: ${TEST_LOG_ID}
  signing_key: \${env:AUDIT_KEY}
  append_timeout: ${options.appendTimeout ?? '2s'}
`;
}

/** Starts a gateway in front of `options.postgres`. */
export async function startPgGateway(options: PgGatewayOptions): Promise<PgGatewayHarness> {
  const clock = options.clock ?? systemClock;
  const auditDir = mkdtempSync(join(tmpdir(), 'tollgate-pg-audit-'));
  const auditKeys = generateSignerKey('test.tollgate');
  const issuer = options.issuer ?? 'https://idp.invalid';
  const config = loadConfigOrThrow({
    file: join(auditDir, '..', 'tollgate-pg-test.yaml'),
    text: yamlFor(options, auditDir, issuer),
    env: {
      DB_TOKEN_KEY,
      AUDIT_KEY: auditKeys.signerKey,
      ...(options.tls === undefined ? {} : { PG_TLS_CERT: options.tls.cert, PG_TLS_KEY: options.tls.key }),
      ...(options.upstreamCa === undefined ? {} : { UPSTREAM_CA: options.upstreamCa }),
    },
    readFile: (path) => readFileSync(path, 'utf8'),
  });
  const dbTokens = createDbTokens({ publicUrl: config.server.public_url, identity: config.identity }, { clock });
  const store = await openFileStore({
    dir: config.audit.dir,
    logId: config.audit.log_id,
    signer: parseSignerKey(config.audit.signing_key),
    appendTimeoutMs: config.audit.append_timeout,
    retry: { initialMs: 50, maxMs: 200 },
    ...(options.groupCommit === undefined ? {} : { groupCommit: options.groupCommit }),
    ...(options.durability === undefined ? {} : { durability: options.durability }),
    ...(options.auditFs === undefined ? {} : { fs: options.auditFs }),
    ...(options.auditObserver === undefined ? {} : { observer: options.auditObserver }),
  });
  const registry = new Registry();
  let gateway: PostgresGateway;
  try {
    gateway = await startPostgresGateway({
      config,
      policy: compilePolicy(config.policy),
      sql: await loadSqlClassifier(),
      tokens: options.tokens ?? dbTokens,
      audit: options.wrapStore === undefined ? store : options.wrapStore(store),
      registry,
      clock,
    });
  } catch (error) {
    await store.close();
    rmSync(auditDir, { recursive: true, force: true });
    throw error;
  }
  const { host, port } = gateway.address;
  const token = (principal: Principal, ttlMs?: number): string => {
    const issued = dbTokens.issueDbToken(principal, ttlMs);
    if (!issued.ok) throw new Error(`token not issued: ${issued.reason}`);
    return issued.token;
  };
  return {
    config,
    store,
    gateway,
    registry,
    auditDir,
    host,
    port,
    token,
    pgConfig(principal, extra = {}) {
      return { host, port, user: principal.email ?? principal.subject, database: 'shop', password: token(principal), ...extra };
    },
    records: () => readRecords(auditDir),
    async recordsWhere(where, count = 1) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const found = readRecords(auditDir).filter(where);
        if (found.length >= count) return found;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} matching audit records (found ${found.length})`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {
      await gateway.close();
      await store.close();
      rmSync(auditDir, { recursive: true, force: true });
    },
  };
}

/** Decodes every whole frame (`u32be length ‖ record ‖ u32be crc32`) of the segments in `dir`. */
export function readRecords(dir: string): AuditRecord[] {
  const records: AuditRecord[] = [];
  const segments = readdirSync(dir)
    .filter((name) => /^\d{20}\.seg$/.test(name))
    .sort();
  for (const name of segments) {
    const bytes = readFileSync(join(dir, name));
    let at = 0;
    while (at + 8 <= bytes.length) {
      const length = bytes.readUInt32BE(at);
      if (length === 0 || at + 8 + length > bytes.length) break;
      const parsed = parseRecord(bytes.subarray(at + 4, at + 4 + length));
      if (!parsed.ok) throw new Error(`audit record at ${name}:${at} is invalid: ${parsed.detail}`);
      records.push(parsed.record);
      at += 8 + length;
    }
  }
  return records;
}
