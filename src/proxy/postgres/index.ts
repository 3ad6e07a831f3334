/**
 * The `proxy/postgres` room: the PostgreSQL wire-protocol gateway (DESIGN.md §2 "Postgres
 * access"). Clients log in with a database token as their password over TLS; every `Query`,
 * `Parse`/`Bind`/`Execute` and `FunctionCall` is classified with PostgreSQL's own parser,
 * decided by policy and durably audited before the upstream database sees it.
 *
 * Modules: `gateway.ts` (listener, connection limits, lifecycle), `startup.ts` (SSLRequest,
 * direct TLS, GSSENCRequest, StartupMessage), `client-auth.ts` (token login, login choice,
 * failure rate limit), `upstream.ts` (upstream TLS and SCRAM/md5/cleartext login, cancel
 * forwarding), `session.ts` (the relay state machine, COPY accounting), `intercept.ts`
 * (classification, decisions, refusals), `cancel-map.ts` (gateway ↔ upstream cancel keys),
 * `audit-events.ts` (record builders), `metrics.ts`. The wire format lives in `protocol/`.
 */
export { startPostgresGateway } from './gateway.js';
export type { PostgresGateway, PostgresGatewayDeps } from './gateway.js';
export type { PgTokenVerifier } from './client-auth.js';
export { LOGIN_OPTION, parseStartupOptions, AuthFailureLimiter, isLoopbackAddress } from './client-auth.js';
export { PG_METRIC_NAMES } from './metrics.js';
export { PG_ALPN } from './startup.js';
export { REFUSED_SQL } from './intercept.js';
