import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditEvent } from '../../audit/index.js';
import type { Logger } from '../../core/index.js';
import type { CompiledPolicy } from '../../policy/index.js';
import type { TollgateConfig } from '../../config/index.js';
import type { Identity, IdpUnavailable } from '../../identity/index.js';
import type { ClientFacts } from './audit-events.js';
import type { Authenticator, Caller } from './authenticate.js';
import type { Forwarding } from './forward.js';
import type { ParsedHost } from './headers.js';
import type { CrossHostLogin } from './login.js';
import type { GatewayMetrics } from './metrics.js';
import { sendError } from './pages.js';

/** One request as the gateway's handlers see it, after framing and target checks. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly client: ClientFacts;
  readonly host: ParsedHost;
  /** Normalised path (see `normalizeRequestTarget`). */
  readonly path: string;
  /** Query with its `?`, or `''`. */
  readonly query: string;
  /** The client is a browser navigating: answer with pages and redirects. */
  readonly html: boolean;
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number;
  /** Labels of the request counter; handlers set them as they learn more. */
  labels: { resource: string; decision: string };
  /** The forwarding to abort when the client goes away before its response finished. */
  forwarding: Forwarding | null;
}

/** What the gateway's own routes need from it. */
export interface GatewayServices {
  readonly config: TollgateConfig;
  readonly policy: CompiledPolicy;
  readonly identity: Identity;
  readonly auth: Authenticator;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Set when `identity.session.cookie_domain` lets browsers on resource hosts log in. */
  readonly crossHostLogin: CrossHostLogin | null;
  /** Hosts of the host-matched resources in force: where a login may return besides the public host. */
  readonly returnHosts: readonly string[];
  /** Appends an audit event and resolves once it is durable, with its seq; rejects when it cannot be. */
  record(event: AuditEvent): Promise<number>;
  /**
   * Establishes the caller of a request that needs one. When there is none, the response has
   * been sent (a redirect to login for browsers, 401 otherwise, 503 when a failure could not be
   * recorded) and the result is `null`.
   */
  requireCaller(ctx: RequestContext): Promise<Caller | null>;
}

/** Seconds a client should wait before retrying when the audit log cannot take records. */
export const AUDIT_RETRY_AFTER_SECONDS = 5;

/**
 * The answer when an audit record could not be made durable: nothing was forwarded or issued
 * (DESIGN.md §2), and the client may retry once the store recovers.
 */
export function sendAuditUnavailable(ctx: RequestContext): void {
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, ctx.html, {
    status: 503,
    error: 'audit_unavailable',
    title: 'Temporarily unavailable',
    message: 'The gateway cannot record requests right now, so it forwards none. Try again in a few seconds.',
    requestId: ctx.requestId,
    headers: { 'retry-after': String(AUDIT_RETRY_AFTER_SECONDS) },
  });
}

/**
 * The answer to a browser's request for a page that hands out or approves a credential when the
 * request is not a top-level navigation (a script's `fetch`, a frame, an image): apps mounted by
 * path share the gateway's origin, and only a page the user opened may show such a thing.
 * `message` says which page and how to open it.
 */
export function sendNavigationRequired(ctx: RequestContext, message: string): void {
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, ctx.html, {
    status: 403,
    error: 'navigation_required',
    title: 'Open this page yourself',
    message,
    reason: 'fetch-metadata-not-navigation',
    requestId: ctx.requestId,
  });
}

/**
 * The answer when a request needs the IdP (a login, a bearer token to verify, a session to
 * refresh) before it is discovered: `503` with `Retry-After` until the next discovery attempt,
 * never a `401` or a login redirect, since the caller may well be logged in.
 */
export function sendIdpUnavailable(ctx: RequestContext, unavailable: IdpUnavailable): void {
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, ctx.html, {
    status: 503,
    error: 'idp_unavailable',
    title: 'Sign-in temporarily unavailable',
    message: 'The gateway cannot reach its identity provider yet, so it cannot sign you in or check this credential. Try again shortly; if it persists, tell the operators the request id.',
    reason: unavailable.reason,
    requestId: ctx.requestId,
    headers: { 'retry-after': String(unavailable.retryAfterSeconds) },
  });
}

export function sendNotFound(ctx: RequestContext): void {
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, ctx.html, {
    status: 404,
    error: 'not_found',
    title: 'Not found',
    message: 'No application is served at this address by this gateway.',
    requestId: ctx.requestId,
  });
}

/** 405 for a gateway route called with a method it does not serve; `allow` lists those it does. */
export function sendMethodNotAllowed(ctx: RequestContext, allow: string): void {
  closeIfBodyUnread(ctx.req, ctx.res);
  sendError(ctx.res, ctx.html, {
    status: 405,
    error: 'method_not_allowed',
    title: 'Method not allowed',
    message: `This address accepts ${allow} only.`,
    requestId: ctx.requestId,
    headers: { allow },
  });
}

/**
 * A response sent without reading the request body ends the connection afterwards, so that
 * unread body bytes can never be parsed as the next request and the client is not left
 * waiting on an `Expect: 100-continue` that never comes.
 */
export function closeIfBodyUnread(req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete && !res.headersSent && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)) {
    res.shouldKeepAlive = false;
    res.setHeader('connection', 'close');
  }
}
