import { createHash } from 'node:crypto';
import { auditPrincipal, type AuditEvent } from '../../audit/index.js';
import type { Principal } from '../../core/index.js';
import type { Decision } from '../../policy/index.js';

/**
 * The audit events of the HTTP gateway (DESIGN.md §2). Builders only: the gateway appends them.
 * Records never hold a cookie, a token or a query string: a session is named by a hash of its
 * id, a bearer token by its `jti`, a database token by its id.
 */

/** How a request proved who sent it. */
export type AuthMethod = 'session' | 'bearer';

/** Facts about the client side of a request, common to every record about it. */
export interface ClientFacts {
  readonly requestId: string;
  /** Client address (the peer, or the client named by trusted proxies). */
  readonly remote: string;
  readonly userAgent: string | undefined;
}

/** The caller behind a request, as recorded. */
export interface RecordedCaller {
  readonly principal: Principal;
  readonly auth: AuthMethod;
  /** {@link sessionRef} of the session, for `auth: session`. */
  readonly sessionRef?: string;
  /** `jti` of the bearer token, when it has one. */
  readonly tokenId?: string;
}

/**
 * A stable, non-reversible name for a session: base64url of the first 16 bytes of SHA-256 of the
 * session id. It correlates the records of one login without letting anyone holding the log
 * present it as a cookie.
 */
export function sessionRef(sessionId: string): string {
  return createHash('sha256').update(sessionId, 'utf8').digest().subarray(0, 16).toString('base64url');
}

/** Recorded form of each decision: `decide()` hands out one decision object per rule. */
const recordedDecisions = new WeakMap<Decision, NonNullable<AuditEvent['decision']>>();

function decisionOf(decision: Decision): AuditEvent['decision'] {
  let recorded = recordedDecisions.get(decision);
  if (recorded === undefined) {
    recorded = { effect: decision.effect, rule: decision.rule, reason: decision.reason };
    recordedDecisions.set(decision, recorded);
  }
  return recorded;
}

export interface RequestRecordInput {
  readonly kind: 'http.request' | 'ws.open';
  readonly caller: RecordedCaller;
  readonly client: ClientFacts;
  readonly resource: string;
  readonly decision: Decision;
  readonly method: string;
  /** The normalised path the decision was made on (no query string). */
  readonly path: string;
  readonly host: string;
}

/** `http.request` / `ws.open`: appended, and durable, before anything goes upstream. */
export function requestEvent(input: RequestRecordInput): AuditEvent {
  const { caller, client } = input;
  return {
    kind: input.kind,
    principal: auditPrincipal(caller.principal),
    resource: input.resource,
    decision: decisionOf(input.decision),
    request_id: client.requestId,
    ...(caller.sessionRef === undefined ? {} : { session_id: caller.sessionRef }),
    data: {
      method: input.method,
      path: input.path,
      host: input.host,
      remote: client.remote,
      user_agent: client.userAgent,
      auth: caller.auth,
      token_id: caller.tokenId,
    },
  };
}

export interface ResponseRecordInput {
  readonly caller: RecordedCaller;
  readonly requestId: string;
  readonly resource: string;
  /** Seq of the `http.request` record. */
  readonly ref: number;
  /** Status sent to the client (502/504 when the upstream failed before answering). */
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly upstreamError: string | undefined;
}

/** `http.response`: the outcome of a forwarded request, pointing at its request record. */
export function responseEvent(input: ResponseRecordInput): AuditEvent {
  return {
    kind: 'http.response',
    principal: auditPrincipal(input.caller.principal),
    resource: input.resource,
    request_id: input.requestId,
    ...(input.caller.sessionRef === undefined ? {} : { session_id: input.caller.sessionRef }),
    ref: input.ref,
    data: {
      status: input.status,
      bytes_in: input.bytesIn,
      bytes_out: input.bytesOut,
      duration_ms: Math.round(input.durationMs),
      upstream_error: input.upstreamError,
    },
  };
}

export interface WsCloseInput {
  readonly caller: RecordedCaller;
  readonly requestId: string;
  readonly resource: string;
  /** Seq of the `ws.open` record. */
  readonly ref: number;
  readonly durationMs: number;
  /** Payload bytes from the client to the upstream. */
  readonly bytesIn: number;
  /** Payload bytes from the upstream to the client. */
  readonly bytesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  /** Close code as received from the side that closed first (1005: none, 1006: no close frame). */
  readonly code: number;
  readonly closedBy: 'client' | 'upstream' | 'gateway';
  readonly upstreamError: string | undefined;
}

/** `ws.close`: the end of a relayed WebSocket session. */
export function wsCloseEvent(input: WsCloseInput): AuditEvent {
  return {
    kind: 'ws.close',
    principal: auditPrincipal(input.caller.principal),
    resource: input.resource,
    request_id: input.requestId,
    ...(input.caller.sessionRef === undefined ? {} : { session_id: input.caller.sessionRef }),
    ref: input.ref,
    data: {
      duration_ms: Math.round(input.durationMs),
      bytes_in: input.bytesIn,
      bytes_out: input.bytesOut,
      messages_in: input.messagesIn,
      messages_out: input.messagesOut,
      code: input.code,
      closed_by: input.closedBy,
      upstream_error: input.upstreamError,
    },
  };
}

/** `auth.login`: a browser login completed at the callback. */
export function loginEvent(principal: Principal, user: string, ref: string, client: ClientFacts): AuditEvent {
  return {
    kind: 'auth.login',
    principal: auditPrincipal(principal),
    request_id: client.requestId,
    session_id: ref,
    data: { method: 'oidc', user, remote: client.remote, user_agent: client.userAgent },
  };
}

/** `auth.logout`: the user ended a session (`reason: logout`). A failed refresh is an `auth.failure` (`method: refresh`). */
export function logoutEvent(principal: Principal, ref: string, reason: string, client: ClientFacts): AuditEvent {
  return {
    kind: 'auth.logout',
    principal: auditPrincipal(principal),
    request_id: client.requestId,
    session_id: ref,
    data: { reason, remote: client.remote, user_agent: client.userAgent },
  };
}

export interface FailureInput {
  /** What failed: the login callback, a bearer token, a session cookie, a session refresh. */
  readonly method: 'oidc' | 'bearer' | 'session' | 'refresh';
  readonly reason: string;
  /** A protocol error code (`invalid_grant`); never a token or a cookie. */
  readonly detail?: string;
  readonly principal?: Principal;
  readonly sessionRef?: string;
  readonly client: ClientFacts;
}

/** `auth.failure`: a login, token or session that was refused, with the reason. */
export function failureEvent(input: FailureInput): AuditEvent {
  return {
    kind: 'auth.failure',
    ...(input.principal === undefined ? {} : { principal: auditPrincipal(input.principal) }),
    request_id: input.client.requestId,
    ...(input.sessionRef === undefined ? {} : { session_id: input.sessionRef }),
    data: {
      method: input.method,
      reason: input.reason,
      detail: input.detail,
      remote: input.client.remote,
      user_agent: input.client.userAgent,
    },
  };
}

/** `token.issued`: a database token handed out on the `/db` page. */
export function tokenIssuedEvent(principal: Principal, tokenId: string, expiresAt: number, ref: string | undefined, client: ClientFacts): AuditEvent {
  return {
    kind: 'token.issued',
    principal: auditPrincipal(principal),
    request_id: client.requestId,
    ...(ref === undefined ? {} : { session_id: ref }),
    data: {
      token_id: tokenId,
      expires_at: new Date(expiresAt).toISOString(),
      issued_via: 'db-page',
      remote: client.remote,
      user_agent: client.userAgent,
    },
  };
}
