import { DB_PAGE_PATH } from '../proxy/http/index.js';
import { DEMO_APP_PREFIX } from './app.js';
import type { DemoStack } from './stack.js';

/** The review pages' path (DESIGN.md §3 "The demo"). */
const AUDIT_PAGE_PATH = '/audit';

/**
 * The text `tollgate demo` prints once everything listens: where to go, who to sign in as and
 * what each may do, a ready psql command, where the data lives, and how to stop.
 */
export function banner(stack: DemoStack): string {
  const { urls, ports } = stack;
  const rows: (readonly [string, string])[] = [
    ['Sign in and use the app', `${urls.web}${DEMO_APP_PREFIX}`],
    ['Database token for psql', `${urls.web}${DB_PAGE_PATH}`],
    ['Audit log review', `${urls.web}${AUDIT_PAGE_PATH}`],
    ['Postgres (through the gateway)', `127.0.0.1:${ports.postgres}, database shop, TLS required`],
    ['Metrics and health', `${urls.admin}/metrics  ${urls.admin}/healthz  ${urls.admin}/readyz`],
    ['Demo identity provider', urls.idp],
    ['Demo app (upstream, direct)', urls.app],
    ['Embedded PostgreSQL (upstream)', `127.0.0.1:${ports.database}`],
  ];
  const labelWidth = Math.max(...rows.map(([label]) => label.length));
  const emailWidth = Math.max(...stack.users.map((user) => user.email.length));
  const passwordWidth = Math.max(...stack.users.map((user) => user.password.length));
  const groupWidth = Math.max(...stack.users.map((user) => user.groups.join(',').length));
  const audit = stack.config.audit.dir;
  return [
    '',
    'Tollgate demo is running.',
    '',
    ...rows.map(([label, value]) => `  ${label.padEnd(labelWidth)}  ${value}`),
    '',
    'Users (demo only; the password is the user name):',
    ...stack.users.map(
      (user) =>
        `  ${user.email.padEnd(emailWidth)}  password ${user.password.padEnd(passwordWidth)}  group ${user.groups.join(',').padEnd(groupWidth)}  ${user.can}`,
    ),
    '',
    'Query the shop database through the gateway (as alice: reads only):',
    `  ${stack.psqlCommand}`,
    `  (${stack.psqlNote})`,
    '',
    `Data (keys, database, audit log): ${stack.dataDir}`,
    `  config in use   ${stack.configFile}`,
    `  verify the log  tollgate audit verify --dir ${audit} --key ${stack.auditVerifierKeyFile}`,
    `  start afresh    stop the demo, then delete ${stack.dataDir}`,
    '',
    'Ctrl-C stops the demo.',
    '',
  ].join('\n');
}
