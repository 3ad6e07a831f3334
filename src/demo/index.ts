/**
 * The `demo` room: everything `tollgate demo` runs besides the gateway itself (DESIGN.md §3
 * "The demo"): the data dir's secrets, the effective config rendered from `config/demo.yaml`,
 * a demo OpenID Provider, an embedded PostgreSQL with the seeded `shop` database, and a demo
 * web app. `startDemoStack` starts them in order; the CLI then starts the gateway on the
 * config it returns and prints `banner(stack)`.
 */
export { startDemoStack } from './stack.js';
export type { DemoStack, DemoStackOptions, DemoStackUser } from './stack.js';
export { banner } from './banner.js';
export { ensureDemoSecrets, DEMO_SECRET_FILES, DEMO_AUDIT_LOG_ID, DEMO_TLS_HOSTS } from './secrets.js';
export type { DemoSecrets, DemoSecretName } from './secrets.js';
export { startDemoIdp } from './idp.js';
export type { DemoIdp, DemoIdpClient, DemoIdpOptions } from './idp.js';
export { startDemoPostgres, runningPostmasterPid, DEMO_DATABASE } from './postgres.js';
export type { DemoPostgres, DemoPostgresOptions } from './postgres.js';
export { SHOP_TABLES } from './seed.js';
export { startDemoApp, DEMO_APP_PREFIX } from './app.js';
export type { DemoApp, DemoAppOptions } from './app.js';
export { renderDemoConfig, DEMO_CONFIG_TEMPLATE, DEMO_CONFIG_NAME, TEMPLATE_DATA_DIR } from './config.js';
export type { RenderDemoConfigInput } from './config.js';
export { demoPorts, findBusyPorts, DEFAULT_DEMO_PORTS, DEMO_PORT_ROLES, DEMO_PORT_COUNT } from './ports.js';
export type { DemoPorts, BusyPort } from './ports.js';
export { createSelfSignedCertificate, certificateNeedsRenewal } from './tls-certificate.js';
export type { CertificatePair, SelfSignedOptions } from './tls-certificate.js';
export { DEMO_USERS } from './users.js';
export type { DemoUser } from './users.js';
