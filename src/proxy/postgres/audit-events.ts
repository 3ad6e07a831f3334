import { isUtf8 } from 'node:buffer';
import { auditPrincipal, type AuditEvent, type AuditValue } from '../../audit/index.js';
import type { Principal } from '../../core/index.js';
import type { Decision } from '../../policy/index.js';
import type { ClassifiedStatement } from '../../sql/index.js';

/**
 * The audit events of the Postgres gateway (DESIGN.md §2 "Postgres access"). Builders only: the
 * session appends them. Records never hold a token or a password; a database token is named by
 * its id.
 */

/** The facts of one client connection, common to every record of its session. */
export interface SessionFacts {
  /** The gateway's id of the session, the records' `session_id`. */
  readonly sessionId: string;
  readonly principal: Principal;
  readonly resource: string;
  readonly login: string;
  readonly remote: string;
}

/** How the TLS of the client connection was set up, or `null` for a cleartext connection. */
export interface TlsFacts {
  readonly protocol: string;
  readonly cipher: string;
  /** `direct`: PostgreSQL 17's `sslnegotiation=direct`; `request`: after an SSLRequest. */
  readonly negotiation: 'direct' | 'request';
  readonly alpn: string | null;
}

export interface ConnectInput {
  readonly session: SessionFacts;
  readonly auth: 'db-token' | 'oidc';
  readonly tokenId: string | undefined;
  readonly upstreamUser: string;
  readonly database: string;
  readonly tls: TlsFacts | null;
  readonly upstreamTls: boolean;
  /** The upstream backend's process id, to find the session in the database's own logs. */
  readonly upstreamPid: number;
  readonly applicationName: string | undefined;
}

/** `pg.connect`: a session authenticated and connected upstream; durable before the client is told. */
export function connectEvent(input: ConnectInput): AuditEvent {
  const { session } = input;
  return {
    kind: 'pg.connect',
    principal: auditPrincipal(session.principal),
    resource: session.resource,
    session_id: session.sessionId,
    data: {
      login: session.login,
      upstream_user: input.upstreamUser,
      database: input.database,
      remote: session.remote,
      auth: input.auth,
      token_id: input.tokenId,
      tls: input.tls === null ? null : { protocol: input.tls.protocol, cipher: input.tls.cipher, negotiation: input.tls.negotiation, alpn: input.tls.alpn },
      upstream_tls: input.upstreamTls,
      upstream_pid: input.upstreamPid,
      application_name: input.applicationName,
    },
  };
}

export type QueryProtocol = 'simple' | 'extended' | 'fastpath';

export interface QueryInput {
  readonly session: SessionFacts;
  readonly decision: Decision | AuditDecisionLike;
  readonly protocol: QueryProtocol;
  /** The classified statement, or `null` when the text could not be classified. */
  readonly statement: ClassifiedStatement | null;
  /** The text when there is no classified statement (the whole text the parser rejected). */
  readonly text?: string;
  /** Why the text has no classification (`syntax`, `too-complex`, ...). */
  readonly unclassified?: string;
  /** Position and count of the statement in a multi-statement Query. */
  readonly index?: number;
  readonly count?: number;
  readonly statementName?: string;
  readonly portal?: string;
  readonly params?: readonly AuditValue[];
  readonly functionOid?: number;
}

/** A decision that did not come from `decide()` (unparsable SQL, unknown portal, ...). */
export interface AuditDecisionLike {
  readonly effect: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
}

/** `pg.query`: one statement and its decision; an allowed one is durable before it is forwarded. */
export function queryEvent(input: QueryInput): AuditEvent {
  const { session, statement } = input;
  return {
    kind: 'pg.query',
    principal: auditPrincipal(session.principal),
    resource: session.resource,
    decision: { effect: input.decision.effect, rule: input.decision.rule, reason: input.decision.reason },
    session_id: session.sessionId,
    // Keys in canonical order, so that the record encoder has nothing to sort.
    data: {
      class: statement?.class,
      command: statement?.command,
      count: input.count !== undefined && input.count > 1 ? input.count : undefined,
      fingerprint: statement?.fingerprint,
      function_oid: input.functionOid,
      functions: statement?.functions,
      index: input.count !== undefined && input.count > 1 ? input.index : undefined,
      login: session.login,
      params: input.params,
      portal: input.portal,
      protocol: input.protocol,
      statement: statement?.text ?? input.text,
      statement_name: input.statementName,
      tables: statement?.tables,
      unclassified: input.unclassified,
    },
  };
}

export interface ResultInput {
  readonly session: SessionFacts;
  /** Seq of the `pg.query` record. */
  readonly ref: number;
  /** `ok`, `error`, `suspended` (row limit reached), `skipped` (never ran: an earlier error). */
  readonly status: 'ok' | 'error' | 'suspended' | 'skipped';
  readonly commandTag: string | undefined;
  readonly rows: number;
  readonly sqlstate: string | undefined;
  readonly durationMs: number;
  readonly copyBytes: number | undefined;
}

/** `pg.result`: the outcome of a forwarded statement, pointing at its `pg.query` record. */
export function resultEvent(input: ResultInput): AuditEvent {
  const { session } = input;
  return {
    kind: 'pg.result',
    principal: auditPrincipal(session.principal),
    resource: session.resource,
    session_id: session.sessionId,
    ref: input.ref,
    // Keys in canonical order (see queryEvent).
    data: {
      command_tag: input.commandTag,
      copy_bytes: input.copyBytes,
      duration_ms: Math.round(input.durationMs),
      rows: input.rows,
      sqlstate: input.sqlstate,
      status: input.status,
    },
  };
}

export interface DisconnectInput {
  readonly session: SessionFacts;
  /** Seq of the `pg.connect` record. */
  readonly ref: number;
  readonly durationMs: number;
  readonly statements: number;
  readonly denied: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly closedBy: 'client' | 'upstream' | 'gateway';
  readonly reason: string | undefined;
}

/** `pg.disconnect`: the end of a session, with its totals. */
export function disconnectEvent(input: DisconnectInput): AuditEvent {
  const { session } = input;
  return {
    kind: 'pg.disconnect',
    principal: auditPrincipal(session.principal),
    resource: session.resource,
    session_id: session.sessionId,
    ref: input.ref,
    data: {
      login: session.login,
      duration_ms: Math.round(input.durationMs),
      statements: input.statements,
      denied: input.denied,
      bytes_in: input.bytesIn,
      bytes_out: input.bytesOut,
      closed_by: input.closedBy,
      reason: input.reason,
    },
  };
}

export interface AuthFailureInput {
  readonly reason: string;
  /** What the client should hear is in the ErrorResponse; this is the detail for reviewers. */
  readonly detail?: string;
  readonly principal?: Principal;
  readonly user: string | undefined;
  readonly database: string | undefined;
  readonly remote: string;
  readonly tls: boolean;
}

/** `auth.failure`: a Postgres login that was refused. */
export function authFailureEvent(input: AuthFailureInput): AuditEvent {
  return {
    kind: 'auth.failure',
    ...(input.principal === undefined ? {} : { principal: auditPrincipal(input.principal) }),
    ...(input.database === undefined ? {} : { resource: input.database }),
    data: {
      method: 'pg',
      reason: input.reason,
      detail: input.detail,
      user: input.user,
      remote: input.remote,
      tls: input.tls,
    },
  };
}

/** Bind parameter values as recorded: text when the format is text and the bytes are UTF-8, else bytes. */
export function recordedParams(params: readonly (Buffer | null)[], formats: readonly number[]): AuditValue[] {
  const values: AuditValue[] = new Array<AuditValue>(params.length);
  for (let i = 0; i < params.length; i++) {
    const value = params[i];
    if (value === null || value === undefined) {
      values[i] = null;
      continue;
    }
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
    values[i] = format === 0 && isUtf8(value) ? value.toString('utf8') : Uint8Array.from(value);
  }
  return values;
}
