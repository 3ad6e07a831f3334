/**
 * The `web` room: the audit review pages at `/audit` and their JSON API (DESIGN.md §1), mounted
 * by the HTTP gateway as a route on its public host (see `pages` for the routes).
 */
export { AUDIT_PATH, createAuditPages } from './pages.js';
export type { AuditPages, AuditPagesOptions } from './pages.js';
export type { AuditCaller, AuditClient, AuditRoute, AuditRouteRequest } from './route.js';
export type { ChainStatus, ChainFailureInfo, VerifiedCheckpointInfo, FullCheckInfo } from './chain-monitor.js';
