/**
 * The `proxy/http` room: the identity-aware HTTP and WebSocket gateway (DESIGN.md §2 "Browser
 * login", "HTTP forwarding"), its login routes and `/db` page, and the admin listener.
 *
 * Routes the gateway serves itself: `/_tollgate/login`, `/_tollgate/callback`,
 * `/_tollgate/logout`, the CLI login under `/_tollgate/cli/` and
 * `/.well-known/tollgate/jwks.json` on every host; `/db`, `/` (when no resource serves it) and
 * mounted {@link GatewayRoute}s on the public URL's host. Everything else goes to the resource
 * it matches, or is a 404.
 */
export { startHttpGateway } from './gateway.js';
export type { HttpGateway, HttpGatewayDeps, GatewayRoute, GatewayRouteRequest, RouteCaller } from './gateway.js';
export type { Caller } from './authenticate.js';
export type { ClientFacts, AuthMethod } from './audit-events.js';
export { startAdminServer, gatewayReadiness } from './admin.js';
export type { AdminServer, AdminServerOptions, ReadinessCheck, GatewayReadinessDeps } from './admin.js';
export { createMintRecorder, MINT_RECORD_PATH, MINT_RECORD_PROOF_HEADER, MINT_RECORD_MAX_BODY_BYTES, MINT_RECORD_MAX_AGE_MS, MINT_RECORD_METRIC } from './mint-record.js';
export type { MintRecorder, MintRecorderDeps, MintRecordRequest, MintRecordResponse, MintRecordError, MintRecordOutcome } from './mint-record.js';
export { METRIC_NAMES } from './metrics.js';
export { ASSERTION_HEADER, JWKS_PATH } from './assertion.js';
export { LOGIN_PATH, CALLBACK_PATH, LOGOUT_PATH, RESERVED_PREFIX } from './login.js';
export { DB_PAGE_PATH } from './db-page.js';
export { CLI_LOGIN_PREFIX, CLI_AUTHORIZE_PATH, CLI_DEVICE_PATH, CLI_DEVICE_APPROVE_PATH, CLI_TOKEN_PATH, DEVICE_CODE_GRANT_TYPE } from './cli-login.js';
export { normalizeRequestTarget } from './target.js';
export type { NormalizedTarget, TargetProblem } from './target.js';
export { ResourceRouter } from './resources.js';
export type { HttpRoute, RouteMatch } from './resources.js';
