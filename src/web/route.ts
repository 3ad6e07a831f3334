import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditEvent } from '../audit/index.js';
import type { Principal } from '../core/index.js';

/**
 * The shape of a route the HTTP gateway mounts on its public host, as the review pages need it.
 * The web room may not import the proxy (DESIGN.md §1), so the shape is stated here; the
 * gateway's own `GatewayRoute` and `GatewayRouteRequest` are assignable to these types.
 */

/** The authenticated caller of a page. */
export interface AuditCaller {
  readonly principal: Principal;
  /** Display name. */
  readonly user: string;
  readonly auth: 'session' | 'bearer';
  /** Hash of the browser session's id: the `session_id` of the caller's records. */
  readonly sessionRef?: string;
  /** `jti` of a bearer token. */
  readonly tokenId?: string;
  /** The browser session, for `auth: session`: its absolute end, which refreshing never moves. */
  readonly session?: { readonly expiresAt: number };
  /** The bearer token, for `auth: bearer`: its `exp` in ms since the epoch. */
  readonly bearer?: { readonly expiresAt: number };
  /**
   * For `auth: session` with a refresh token: when the gateway next refreshes the session, reading
   * the user's groups at the IdP again (ms since the epoch). A request after it sees the new groups.
   */
  readonly refreshAt?: number;
  /** True once logout has ended the caller's session; false for bearer callers. */
  revoked(): boolean;
}

export interface AuditClient {
  readonly remote: string;
  readonly userAgent: string | undefined;
}

export interface AuditRouteRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  /** Normalised path, without the query. */
  readonly path: string;
  /** The query with its `?`, or `''`. */
  readonly query: string;
  readonly client: AuditClient;
  /** A browser navigating: pages and login redirects rather than JSON and 401. */
  readonly html: boolean;
  /** The caller, or null once the gateway has answered (login redirect, 401). */
  requireCaller(): Promise<AuditCaller | null>;
  /** Appends an audit event and resolves with its seq once it is durable. */
  record(event: AuditEvent): Promise<number>;
}

export interface AuditRoute {
  /** `/audit`: serves `/audit` and everything under `/audit/`. */
  readonly path: string;
  handle(request: AuditRouteRequest): Promise<void>;
}
