import type { JsonObject, JsonValue } from './canonical.js';
import type { AuditRecord } from './record.js';

/**
 * Maps audit records to OCSF 1.8.0 events (https://schema.ocsf.io/1.8.0/) for
 * `audit export --format ocsf`, one event per record:
 *
 * - `http.*`, `ws.*`: API Activity (class 6003, category 6 Application Activity);
 * - `pg.*`: Datastore Activity (class 6005, category 6);
 * - `auth.*`, `token.issued`: Authentication (class 3002, category 3 Identity & Access Management);
 * - `gateway.*`, `config.loaded`, `audit.recovered`: Application Lifecycle (class 6002).
 *
 * Every event carries the base event's required attributes (`activity_id`, `category_uid`,
 * `class_uid`, `type_uid` = class_uid × 100 + activity_id, `time`, `severity_id`, `metadata`
 * with `product` and `version`) and its class's required ones (API Activity: `actor`, `api`,
 * `src_endpoint`; Datastore Activity: `actor`, `src_endpoint` and one of `database`/`table`;
 * Authentication: `user`; Application Lifecycle: `app`). Decisions use the Security Control
 * profile (`action_id` 1 Allowed / 2 Denied, `disposition_id` 1 Allowed / 2 Blocked, the rule as
 * `policy`). The record's own fields that have no OCSF attribute are kept under `unmapped`, and
 * `metadata.uid` (`<log_id>/<seq>`) leads back to the record.
 */

export const OCSF_VERSION = '1.8.0';

export interface OcsfOptions {
  /** `metadata.product.version`: the Tollgate version that exports. */
  readonly productVersion?: string;
}

type Mutable = Record<string, JsonValue>;

const SEVERITY_INFORMATIONAL = 1;
const SEVERITY_MEDIUM = 3;
const STATUS_SUCCESS = 1;
const STATUS_FAILURE = 2;
/** OCSF's enum value for "Other": a value the enum does not list. */
const OTHER = 99;
const ACTIVITY_UNKNOWN = 0;

interface ClassInfo {
  readonly uid: number;
  readonly name: string;
  readonly categoryUid: number;
  readonly categoryName: string;
}

const API_ACTIVITY: ClassInfo = { uid: 6003, name: 'API Activity', categoryUid: 6, categoryName: 'Application Activity' };
const DATASTORE_ACTIVITY: ClassInfo = { uid: 6005, name: 'Datastore Activity', categoryUid: 6, categoryName: 'Application Activity' };
const AUTHENTICATION: ClassInfo = { uid: 3002, name: 'Authentication', categoryUid: 3, categoryName: 'Identity & Access Management' };
const APPLICATION_LIFECYCLE: ClassInfo = { uid: 6002, name: 'Application Lifecycle', categoryUid: 6, categoryName: 'Application Activity' };

/** API Activity activity_id by HTTP method (1 Create, 2 Read, 3 Update, 4 Delete). */
const API_ACTIVITY_BY_METHOD: Readonly<Record<string, readonly [number, string]>> = {
  POST: [1, 'Create'],
  PUT: [3, 'Update'],
  PATCH: [3, 'Update'],
  DELETE: [4, 'Delete'],
  GET: [2, 'Read'],
  HEAD: [2, 'Read'],
  OPTIONS: [2, 'Read'],
};

/** Datastore Activity activity_id by statement class (4 Query, 5 Write). */
const DATASTORE_ACTIVITY_BY_CLASS: Readonly<Record<string, readonly [number, string]>> = {
  read: [4, 'Query'],
  write: [5, 'Write'],
};

function text(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function integer(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

/** Drops undefined values, so that absent facts are absent attributes (OCSF: omit, never null). */
function compact(fields: Record<string, JsonValue | undefined>): Mutable {
  const out: Mutable = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return out;
}

function userOf(record: AuditRecord): Mutable {
  const principal = record.principal;
  if (principal === undefined) return { name: text(record.data.user) ?? 'unknown', type_id: 0 };
  return compact({
    uid: principal.subject,
    name: principal.email ?? principal.subject,
    email_addr: principal.email,
    groups: principal.groups.length === 0 ? undefined : principal.groups.map((name) => ({ name })),
    type_id: 1,
    type: 'User',
  });
}

function actorOf(record: AuditRecord): Mutable {
  return compact({
    user: userOf(record),
    session: record.session_id === undefined ? undefined : { uid: record.session_id },
    app_name: 'Tollgate',
    authorizations:
      record.decision === undefined ? undefined : [compact({ decision: record.decision.effect === 'allow' ? 'Allowed' : 'Denied', policy: policyOf(record) })],
  });
}

function policyOf(record: AuditRecord): Mutable | undefined {
  const decision = record.decision;
  if (decision === undefined) return undefined;
  return compact({ name: decision.rule ?? 'default deny', desc: decision.reason, is_applied: true });
}

/**
 * The client (`src_endpoint`, required by API and Datastore Activity): its IP address, with the
 * port when the record gives `a.b.c.d:port`; any other text as a name; `unknown` when absent.
 */
function srcEndpointOf(record: AuditRecord): Mutable {
  const remote = text(record.data.remote) ?? text(record.data.client_addr);
  if (remote === undefined) return { name: 'unknown' };
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(remote);
  if (v4 !== null) return compact({ ip: v4[1], port: v4[2] === undefined ? undefined : Number(v4[2]) });
  const v6 = remote.replace(/^\[(.*)\]$/, '$1');
  return v6.includes(':') && /^[0-9a-fA-F:.]+$/.test(v6) ? { ip: v6 } : { name: remote };
}

/** The Security Control profile's outcome attributes, and status, from the decision. */
function outcomeOf(record: AuditRecord): Mutable {
  const decision = record.decision;
  if (decision === undefined) return {};
  const allowed = decision.effect === 'allow';
  return compact({
    action_id: allowed ? 1 : 2,
    action: allowed ? 'Allowed' : 'Denied',
    disposition_id: allowed ? 1 : 2,
    disposition: allowed ? 'Allowed' : 'Blocked',
    policy: policyOf(record),
    status_id: allowed ? STATUS_SUCCESS : STATUS_FAILURE,
    status: allowed ? 'Success' : 'Failure',
    status_detail: decision.reason,
  });
}

function unmappedOf(record: AuditRecord): Mutable {
  return compact({ kind: record.kind, ref: record.ref, request_id: record.request_id, resource: record.resource, data: record.data });
}

function envelope(record: AuditRecord, cls: ClassInfo, activity: readonly [number, string], options: OcsfOptions, severity: number): Mutable {
  const [activityId, activityName] = activity;
  const decision = record.decision;
  // A denial is worth a reviewer's look; everything that went through is informational.
  const severityId = decision?.effect === 'deny' ? SEVERITY_MEDIUM : severity;
  return compact({
    activity_id: activityId,
    activity_name: activityName,
    category_uid: cls.categoryUid,
    category_name: cls.categoryName,
    class_uid: cls.uid,
    class_name: cls.name,
    type_uid: cls.uid * 100 + activityId,
    type_name: `${cls.name}: ${activityName}`,
    time: Date.parse(record.time),
    severity_id: severityId,
    severity: severityId === SEVERITY_MEDIUM ? 'Medium' : 'Informational',
    metadata: compact({
      version: OCSF_VERSION,
      product: compact({ name: 'Tollgate', vendor_name: 'Tollgate', version: options.productVersion }),
      uid: `${record.log_id}/${record.seq}`,
      log_name: record.log_id,
      sequence: record.seq,
      original_time: record.time,
      correlation_uid: record.request_id ?? record.session_id,
      profiles: decision === undefined ? undefined : ['security_control'],
    }),
  });
}

function apiActivity(record: AuditRecord, options: OcsfOptions): Mutable {
  const data = record.data;
  const method = text(data.method)?.toUpperCase();
  const path = text(data.path);
  const status = integer(data.status);
  let activity: readonly [number, string];
  if (record.kind === 'http.request') activity = (method === undefined ? undefined : API_ACTIVITY_BY_METHOD[method]) ?? [OTHER, 'Other'];
  else if (record.kind === 'ws.open') activity = [OTHER, 'WebSocket Open'];
  else if (record.kind === 'ws.close') activity = [OTHER, 'WebSocket Close'];
  else activity = [ACTIVITY_UNKNOWN, 'Unknown'];
  const operation = record.kind === 'http.response' ? 'response' : record.kind === 'ws.close' ? 'websocket close' : [method, path].filter(Boolean).join(' ') || record.kind;
  const failed = status !== undefined && status >= 400;
  return {
    ...envelope(record, API_ACTIVITY, activity, options, SEVERITY_INFORMATIONAL),
    ...(status === undefined ? {} : { status_id: failed ? STATUS_FAILURE : STATUS_SUCCESS, status: failed ? 'Failure' : 'Success', status_code: String(status) }),
    ...outcomeOf(record),
    actor: actorOf(record),
    api: compact({
      operation,
      request: record.request_id === undefined ? undefined : { uid: record.request_id },
      response: status === undefined ? undefined : compact({ code: status, error: text(data.upstream_error) }),
      service: record.resource === undefined ? undefined : { name: record.resource },
    }),
    src_endpoint: srcEndpointOf(record),
    ...(record.resource === undefined ? {} : { dst_endpoint: { svc_name: record.resource } }),
    ...(method === undefined && path === undefined
      ? {}
      : {
          http_request: compact({
            http_method: method,
            url: compact({ path, hostname: text(data.host) }),
            user_agent: text(data.user_agent),
            uid: record.request_id,
          }),
        }),
    ...(status === undefined ? {} : { http_response: compact({ code: status, length: integer(data.bytes_out) }) }),
    ...(integer(data.duration_ms) === undefined ? {} : { duration: integer(data.duration_ms)! }),
    message: messageOf(record, operation),
    unmapped: unmappedOf(record),
  };
}

function datastoreActivity(record: AuditRecord, options: OcsfOptions): Mutable {
  const data = record.data;
  let activity: readonly [number, string];
  if (record.kind === 'pg.connect') activity = [3, 'Connect'];
  else if (record.kind === 'pg.query') activity = DATASTORE_ACTIVITY_BY_CLASS[text(data.class) ?? ''] ?? [OTHER, text(data.class) ?? 'Other'];
  else if (record.kind === 'pg.disconnect') activity = [OTHER, 'Disconnect'];
  else activity = [OTHER, 'Result'];
  const sql = text(data.sql) ?? text(data.text) ?? text(data.statement) ?? text(data.query);
  const tables = Array.isArray(data.tables) ? data.tables.filter((t): t is string => typeof t === 'string') : [];
  const sqlstate = text(data.sqlstate);
  return {
    ...envelope(record, DATASTORE_ACTIVITY, activity, options, SEVERITY_INFORMATIONAL),
    ...(sqlstate === undefined ? {} : { status_id: STATUS_FAILURE, status: 'Failure', status_code: sqlstate }),
    ...outcomeOf(record),
    actor: actorOf(record),
    src_endpoint: srcEndpointOf(record),
    database: compact({ name: text(data.database) ?? record.resource ?? 'unknown', type_id: 1, type: 'Relational', uid: record.resource }),
    ...(tables[0] === undefined ? {} : { table: { name: tables[0] } }),
    type_id: 1,
    type: 'Database',
    ...(record.resource === undefined ? {} : { dst_endpoint: { svc_name: record.resource } }),
    ...(sql === undefined ? {} : { query_info: compact({ query_string: sql, uid: text(data.fingerprint), name: text(data.statement_name) }) }),
    ...(integer(data.duration_ms) === undefined ? {} : { duration: integer(data.duration_ms)! }),
    message: messageOf(record, sql === undefined ? activity[1].toLowerCase() : `${activity[1].toLowerCase()} ${sql.length > 120 ? `${sql.slice(0, 117)}...` : sql}`),
    unmapped: unmappedOf(record),
  };
}

function authentication(record: AuditRecord, options: OcsfOptions): Mutable {
  const data = record.data;
  const failed = record.kind === 'auth.failure';
  let activity: readonly [number, string];
  if (record.kind === 'auth.logout') activity = [2, 'Logoff'];
  else if (record.kind === 'token.issued') activity = [OTHER, 'Token Issued'];
  else activity = [1, 'Logon'];
  const method = text(data.method);
  return {
    ...envelope(record, AUTHENTICATION, activity, options, failed ? SEVERITY_MEDIUM : SEVERITY_INFORMATIONAL),
    status_id: failed ? STATUS_FAILURE : STATUS_SUCCESS,
    status: failed ? 'Failure' : 'Success',
    ...(failed && text(data.reason) !== undefined ? { status_detail: text(data.reason)! } : {}),
    user: userOf(record),
    actor: actorOf(record),
    src_endpoint: srcEndpointOf(record),
    service: { name: 'Tollgate' },
    ...(method === 'oidc' ? { auth_protocol_id: 4, auth_protocol: 'OpenID' } : { auth_protocol_id: OTHER, auth_protocol: method ?? 'Other' }),
    is_remote: true,
    ...(record.session_id === undefined ? {} : { session: { uid: record.session_id } }),
    message: messageOf(record, activity[1].toLowerCase()),
    unmapped: unmappedOf(record),
  };
}

function lifecycle(record: AuditRecord, options: OcsfOptions): Mutable {
  const activity: readonly [number, string] =
    record.kind === 'gateway.start' ? [3, 'Start'] : record.kind === 'gateway.stop' ? [4, 'Stop'] : record.kind === 'config.loaded' ? [8, 'Update'] : [OTHER, 'Recovered'];
  return {
    ...envelope(record, APPLICATION_LIFECYCLE, activity, options, record.kind === 'audit.recovered' ? SEVERITY_MEDIUM : SEVERITY_INFORMATIONAL),
    status_id: STATUS_SUCCESS,
    status: 'Success',
    app: compact({ name: 'Tollgate', vendor_name: 'Tollgate', version: options.productVersion }),
    message: messageOf(record, record.kind),
    unmapped: unmappedOf(record),
  };
}

function messageOf(record: AuditRecord, what: string): string {
  const who = record.principal?.email ?? record.principal?.subject ?? 'unknown user';
  const where = record.resource === undefined ? '' : ` on ${record.resource}`;
  const decision = record.decision === undefined ? '' : `: ${record.decision.effect} (${record.decision.rule ?? 'default deny'}, ${record.decision.reason})`;
  return `${who} ${what}${where}${decision}`;
}

/** The OCSF 1.8.0 event for one audit record. Pure: same record, same event. */
export function toOcsf(record: AuditRecord, options: OcsfOptions = {}): JsonObject {
  switch (record.kind) {
    case 'http.request':
    case 'http.response':
    case 'ws.open':
    case 'ws.close':
      return apiActivity(record, options);
    case 'pg.connect':
    case 'pg.query':
    case 'pg.result':
    case 'pg.disconnect':
      return datastoreActivity(record, options);
    case 'auth.login':
    case 'auth.logout':
    case 'auth.failure':
    case 'token.issued':
      return authentication(record, options);
    case 'config.loaded':
    case 'audit.recovered':
    case 'gateway.start':
    case 'gateway.stop':
      return lifecycle(record, options);
  }
}
