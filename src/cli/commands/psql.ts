import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { TollgateError } from '../../core/index.js';
import { credentialsFile, normalizeGatewayUrl, pickLogin, readStoredLogins, type StoredLogin } from '../credentials.js';
import { CommandExit, type CliIo } from '../io.js';

interface PsqlOptions {
  gateway?: string;
}

/** Signals a terminal sends to the whole foreground group: psql acts on them itself. */
const LEFT_TO_PSQL: readonly NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];
/** Signals meant for this process alone, passed on so that psql ends with it. */
const PASSED_TO_PSQL: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];

/**
 * `tollgate psql RESOURCE [--gateway URL] [-- psql args]`: runs `psql` on the gateway's
 * Postgres listener with the token stored by `tollgate login`. The connection string goes on
 * the command line; the token only into psql's environment (`PGPASSWORD`), never into argv,
 * where other users could read it. psql's exit status becomes this command's.
 */
export function registerPsqlCommand(program: Command, io: CliIo): void {
  program
    .command('psql')
    .description('Run psql on a database behind the gateway with the token stored by tollgate login')
    .argument('<resource>', 'the Postgres resource (database) to connect to, e.g. shop')
    .argument('[psql-args...]', 'more psql arguments, after --, e.g. -- -c "select 1"')
    .option('--gateway <url>', 'which stored login to use when there are several')
    .action(async (resource: string, psqlArgs: string[], options: PsqlOptions) => {
      const gateway = options.gateway === undefined ? undefined : normalizeGatewayUrl(options.gateway);
      const login = pickLogin(await readStoredLogins(credentialsFile(io.env)), gateway, Date.now());
      if (login.databases.length > 0 && !login.databases.some((db) => db.name === resource)) {
        io.stderr(
          `warning: ${resource} was not among your databases at login (${login.databases.map((db) => db.name).join(', ')}); ` +
            'if your roles changed since, run tollgate login again\n',
        );
      }
      const code = await runPsql([connectionString(login, resource), ...psqlArgs], { ...io.env, PGPASSWORD: login.token });
      if (code !== 0) throw new CommandExit(code);
    });
}

/**
 * A libpq key/value connection string (PostgreSQL docs §34.1.1): values with spaces, quotes or
 * backslashes are single-quoted with `\` escapes.
 */
export function connectionString(login: StoredLogin, resource: string): string {
  const pairs: Array<[string, string]> = [
    ['host', login.postgres.host],
    ['port', String(login.postgres.port)],
    ['dbname', resource],
    ['user', login.user],
    ['sslmode', login.postgres.sslmode],
  ];
  return pairs.map(([key, value]) => `${key}=${conninfoValue(value)}`).join(' ');
}

function conninfoValue(value: string): string {
  if (value !== '' && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/[\\']/g, (ch) => `\\${ch}`)}'`;
}

/** Runs psql with the terminal, and resolves with its exit status (128 + signal number when killed). */
function runPsql(args: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', args, { stdio: 'inherit', env: { ...env } });
    const ignore = (): void => undefined;
    const pass = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    for (const signal of LEFT_TO_PSQL) process.on(signal, ignore);
    for (const signal of PASSED_TO_PSQL) process.on(signal, pass);
    const restore = (): void => {
      for (const signal of LEFT_TO_PSQL) process.off(signal, ignore);
      for (const signal of PASSED_TO_PSQL) process.off(signal, pass);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      restore();
      reject(
        error.code === 'ENOENT'
          ? new TollgateError('TG_ERR_PSQL_NOT_FOUND', 'psql is not installed or not on PATH; install the PostgreSQL client (e.g. apt-get install postgresql-client)')
          : new TollgateError('TG_ERR_PSQL_NOT_FOUND', `psql could not be started (${error.code ?? error.message})`, { cause: error }),
      );
    });
    child.once('exit', (code, signal) => {
      restore();
      resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
    });
  });
}
