import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfigOrThrow, type PolicyProblem, type TollgateConfig } from '../config/index.js';
import { TollgateError, isTollgateError, silentLogger, type Logger } from '../core/index.js';
import { compilePolicy, type PolicySpec } from '../policy/index.js';
import { CALLBACK_PATH, DB_PAGE_PATH } from '../proxy/http/index.js';
import { DEMO_APP_PREFIX, startDemoApp } from './app.js';
import { DEMO_CONFIG_NAME, DEMO_CONFIG_TEMPLATE, renderDemoConfig } from './config.js';
import { startDemoIdp } from './idp.js';
import { DEMO_PORT_ROLES, demoPorts, findBusyPorts, type DemoPorts } from './ports.js';
import { DEMO_DATABASE, runningPostmasterPid, startDemoPostgres } from './postgres.js';
import { ensureDemoSecrets } from './secrets.js';
import { DEMO_USERS } from './users.js';

export interface DemoStackOptions {
  /** The demo's data dir (`./data/demo` for `npm run demo`); created when missing. Pass it absolute. */
  readonly dataDir: string;
  /** Moves every port: web = N, postgres = N+1, admin = N+2, IdP = N+3, app = N+4, database = N+5. */
  readonly portBase?: number;
  readonly logger?: Logger;
  /** The config template; default this package's `config/demo.yaml`. */
  readonly templateFile?: string;
}

/** One demo user, as the banner shows them. */
export interface DemoStackUser {
  readonly email: string;
  readonly password: string;
  readonly groups: readonly string[];
  readonly can: string;
}

export interface DemoStack {
  /** Absolute data dir. */
  readonly dataDir: string;
  /** `<dataDir>/tollgate.yaml`: the effective config, written at this start (no secret values in it). */
  readonly configFile: string;
  readonly configText: string;
  /** The validated config the gateway runs on. */
  readonly config: TollgateConfig;
  readonly ports: DemoPorts;
  readonly urls: {
    /** The gateway's public URL (login, `/app/`, `/db`, `/audit`). */
    readonly web: string;
    /** The gateway's PostgreSQL listener, `postgresql://127.0.0.1:<port>/shop`. */
    readonly postgres: string;
    readonly admin: string;
    /** The demo IdP's issuer. */
    readonly idp: string;
    /** The demo app, direct (without the gateway). */
    readonly app: string;
    /** The embedded PostgreSQL, direct (the gateway's upstream). */
    readonly database: string;
  };
  readonly users: readonly DemoStackUser[];
  /** A ready psql command for alice through the gateway. */
  readonly psqlCommand: string;
  /** What psql will ask for: a database token from the `/db` page. */
  readonly psqlNote: string;
  /** The audit log's verifier key file, for `tollgate audit verify --key`. */
  readonly auditVerifierKeyFile: string;
  /** Stops the app, the embedded PostgreSQL and the IdP, in that order. */
  close(): Promise<void>;
}

/**
 * Starts everything of the demo except the gateway itself: the data dir's secrets, the effective
 * config (rendered from `config/demo.yaml`, written to `<dataDir>/tollgate.yaml`, validated as
 * `tollgate config check` would), the demo IdP, the embedded PostgreSQL and the demo app, in
 * that order. The caller then starts the gateway on `config`. When a step fails, what was
 * already started is stopped again before the error propagates.
 *
 * @throws TollgateError `TG_ERR_USAGE` (bad port base), `TG_ERR_DEMO_START` (a port in use, a
 *   component that cannot start), `TG_ERR_CONFIG_INVALID` (the template is invalid).
 */
export async function startDemoStack(options: DemoStackOptions): Promise<DemoStack> {
  const logger = options.logger ?? silentLogger;
  const ports = demoPorts(options.portBase);
  const dataDir = resolve(options.dataDir);
  await assertPortsFree(ports, dataDir);

  await mkdir(dataDir, { recursive: true });
  const secrets = await ensureDemoSecrets(dataDir);
  const templateFile = options.templateFile ?? DEMO_CONFIG_TEMPLATE;
  const templateText = await readFile(templateFile, 'utf8').catch((cause: unknown) => {
    throw new TollgateError('TG_ERR_CONFIG_NOT_FOUND', `cannot read the demo config template ${templateFile}: ${(cause as Error).message}`, { cause });
  });
  const configText = renderDemoConfig({ templateText, templateFile, dataDir, ports });
  const configFile = join(dataDir, DEMO_CONFIG_NAME);
  await writeWhole(configFile, configText);
  const config = loadConfigOrThrow({
    file: configFile,
    text: configText,
    env: {},
    readFile: (path) => readFileSync(path, 'utf8'),
    checkPolicy: policyProblems,
  });

  const publicUrl = new URL(config.server.public_url);
  const started: Array<{ readonly name: string; close(): Promise<void> }> = [];
  const stopAll = async () => {
    for (const component of started.splice(0).reverse()) {
      await component.close().catch((error: unknown) => logger.warn({ err: error, component: component.name }, 'demo component did not stop cleanly'));
    }
  };
  try {
    const idp = await startDemoIdp({
      port: ports.idp,
      issuer: config.identity.issuer,
      clients: [
        {
          clientId: config.identity.client_id,
          ...(config.identity.client_secret === undefined ? {} : { clientSecret: config.identity.client_secret }),
          redirectUris: [new URL(CALLBACK_PATH, publicUrl).href],
          postLogoutRedirectUris: [new URL('/', publicUrl).href],
        },
      ],
      users: DEMO_USERS,
      keys: secrets.idp,
      logger: logger.child({ component: 'demo-idp' }),
    });
    started.push({ name: 'demo IdP', close: () => idp.close() });
    const database = await startDemoPostgres({ dataDir, port: ports.database, passwords: secrets.database, logger: logger.child({ component: 'demo-postgres' }) });
    started.push({ name: 'embedded PostgreSQL', close: () => database.close() });
    const app = await startDemoApp({ port: ports.app, gatewayUrl: publicUrl.href, logger: logger.child({ component: 'demo-app' }) });
    started.push({ name: 'demo app', close: () => app.close() });
  } catch (error) {
    await stopAll();
    throw error;
  }

  let closing: Promise<void> | null = null;
  const web = publicUrl.origin;
  return {
    dataDir,
    configFile,
    configText,
    config,
    ports,
    urls: {
      web,
      postgres: `postgresql://127.0.0.1:${ports.postgres}/${DEMO_DATABASE.name}`,
      admin: `http://127.0.0.1:${ports.admin}`,
      idp: config.identity.issuer,
      app: `http://127.0.0.1:${ports.app}${DEMO_APP_PREFIX}`,
      database: `postgresql://127.0.0.1:${ports.database}/${DEMO_DATABASE.name}`,
    },
    users: DEMO_USERS.map(({ email, password, groups, can }) => ({ email, password, groups, can })),
    psqlCommand: `psql "host=127.0.0.1 port=${ports.postgres} dbname=${DEMO_DATABASE.name} user=alice@example.com sslmode=require"`,
    psqlNote: `the password psql asks for is a database token: sign in at ${web}${DB_PAGE_PATH} and copy it from there`,
    auditVerifierKeyFile: secrets.files.auditVerifierKey,
    close() {
      closing ??= stopAll();
      return closing;
    },
  };
}

/**
 * Fails before anything starts when a port is taken, naming each one; a PostgreSQL left running
 * on this data dir by a demo that was killed gets its own hint.
 */
async function assertPortsFree(ports: DemoPorts, dataDir: string): Promise<void> {
  const busy = await findBusyPorts(ports);
  if (busy.length === 0) return;
  const list = busy.map(({ role, port, code }) => `${port} (${DEMO_PORT_ROLES[role]}${code === 'EADDRINUSE' ? '' : `: ${code}`})`).join(', ');
  const leftover = busy.some(({ role }) => role === 'database') ? runningPostmasterPid(dataDir) : null;
  const hint =
    leftover === null
      ? 'stop what uses them, or move the demo with --port-base N (it uses N to N+5)'
      : `a PostgreSQL still runs on this data dir (pid ${leftover}): another demo is running on it, or one was killed and left it behind (then stop it with: kill ${leftover})`;
  throw new TollgateError('TG_ERR_DEMO_START', `the demo cannot listen on ${busy.length === 1 ? 'port' : 'ports'} ${list}; ${hint}`, {
    details: { ports: busy.map(({ port }) => port) },
  });
}

/** What `compilePolicy` would refuse at startup, as config problems with key paths. */
function policyProblems(spec: PolicySpec): readonly PolicyProblem[] {
  try {
    compilePolicy(spec);
    return [];
  } catch (error) {
    if (!isTollgateError(error, 'TG_ERR_POLICY_INVALID')) throw error;
    const problems = error.details['problems'];
    return Array.isArray(problems) ? (problems as PolicyProblem[]) : [{ path: '', message: error.message }];
  }
}

async function writeWhole(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, text, { mode: 0o600 });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new TollgateError('TG_ERR_DEMO_START', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}
