import { describe, expect, it } from 'vitest';
import { genesisPrev, RECORD_KINDS, sealRecord, toOcsf } from '../../../src/audit/index.js';
import type { AuditEvent, AuditRecord, RecordKind } from '../../../src/audit/index.js';

const LOG = 'gw.example.com/audit';
const TIME = Date.UTC(2025, 0, 31, 12, 0, 0, 250);
const alice = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering', 'oncall'] };
const allow = { effect: 'allow', rule: 'engineer.allow[0]', reason: 'request-allowed' } as const;
const deny = { effect: 'deny', rule: null, reason: 'no-matching-allow' } as const;

function sealed(event: AuditEvent, seq = 7): AuditRecord {
  return sealRecord(event, { logId: LOG, seq, prev: genesisPrev(LOG), timeMs: TIME }).record;
}

/** A representative event of every kind. */
const EXAMPLES: Record<RecordKind, AuditEvent> = {
  'http.request': { kind: 'http.request', principal: alice, resource: 'app', decision: allow, request_id: 'r1', session_id: 's1', data: { method: 'GET', path: '/orders', host: 'app.example.com', remote: '10.0.0.7', user_agent: 'curl/8' } },
  'http.response': { kind: 'http.response', principal: alice, resource: 'app', request_id: 'r1', ref: 3, data: { status: 200, bytes_in: 0, bytes_out: 512, duration_ms: 12 } },
  'ws.open': { kind: 'ws.open', principal: alice, resource: 'app', decision: allow, request_id: 'r2', data: { method: 'GET', path: '/live', remote: '10.0.0.7' } },
  'ws.close': { kind: 'ws.close', principal: alice, resource: 'app', request_id: 'r2', ref: 3, data: { code: 1000, closed_by: 'client', duration_ms: 900 } },
  'pg.connect': { kind: 'pg.connect', principal: alice, resource: 'shop', decision: allow, session_id: 'pg-1', data: { login: 'reader', remote: '10.0.0.8:51234', tls: true } },
  'pg.query': { kind: 'pg.query', principal: alice, resource: 'shop', decision: allow, session_id: 'pg-1', data: { sql: 'select * from orders', class: 'read', tables: ['public.orders'], fingerprint: 'abc' } },
  'pg.result': { kind: 'pg.result', principal: alice, resource: 'shop', session_id: 'pg-1', ref: 5, data: { command_tag: 'SELECT 3', rows: 3, duration_ms: 2 } },
  'pg.disconnect': { kind: 'pg.disconnect', principal: alice, resource: 'shop', session_id: 'pg-1', data: { statements: 4 } },
  'auth.login': { kind: 'auth.login', principal: alice, session_id: 's1', data: { method: 'oidc', remote: '10.0.0.7' } },
  'auth.logout': { kind: 'auth.logout', principal: alice, session_id: 's1', data: { reason: 'logout', remote: '10.0.0.7' } },
  'auth.failure': { kind: 'auth.failure', data: { method: 'bearer', reason: 'token-expired', remote: '2001:db8::1' } },
  'token.issued': { kind: 'token.issued', principal: alice, data: { token_id: 't1', expires_at: '2025-01-31T13:00:00.000Z' } },
  'config.loaded': { kind: 'config.loaded', data: { file: 'tollgate.yaml' } },
  'audit.recovered': { kind: 'audit.recovered', data: { file: '00000000000000000000.seg', bytes: 12 } },
  'gateway.start': { kind: 'gateway.start', data: { version: '0.1.0' } },
  'gateway.stop': { kind: 'gateway.stop', data: {} },
};

const CLASS_OF: Record<RecordKind, number> = {
  'http.request': 6003,
  'http.response': 6003,
  'ws.open': 6003,
  'ws.close': 6003,
  'pg.connect': 6005,
  'pg.query': 6005,
  'pg.result': 6005,
  'pg.disconnect': 6005,
  'auth.login': 3002,
  'auth.logout': 3002,
  'auth.failure': 3002,
  'token.issued': 3002,
  'config.loaded': 6002,
  'audit.recovered': 6002,
  'gateway.start': 6002,
  'gateway.stop': 6002,
};

/** Attributes OCSF 1.8.0 requires of each class, beyond the base event's. */
const REQUIRED: Record<number, readonly string[]> = {
  6003: ['actor', 'api', 'src_endpoint'],
  6005: ['actor', 'src_endpoint'],
  3002: ['user'],
  6002: ['app'],
};

type Event = Record<string, any>;

describe('toOcsf', () => {
  it('covers every record kind with the base event and class requirements of OCSF 1.8.0', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual([...RECORD_KINDS].sort());
    for (const kind of RECORD_KINDS) {
      const record = sealed(EXAMPLES[kind]);
      const event = toOcsf(record, { productVersion: '0.1.0' }) as Event;
      const classUid = CLASS_OF[kind];
      expect(event.class_uid, kind).toBe(classUid);
      expect(event.category_uid, kind).toBe(Math.floor(classUid / 1000));
      expect(Number.isInteger(event.activity_id), kind).toBe(true);
      expect(event.type_uid, kind).toBe(classUid * 100 + event.activity_id);
      expect(event.time, kind).toBe(TIME);
      expect([1, 3], kind).toContain(event.severity_id);
      expect(event.metadata, kind).toMatchObject({ version: '1.8.0', product: { name: 'Tollgate', version: '0.1.0' }, uid: `${LOG}/7`, sequence: 7 });
      for (const attribute of REQUIRED[classUid]!) expect(event[attribute], `${kind}.${attribute}`).toBeDefined();
      if (classUid === 6005) expect(event.database ?? event.table, kind).toBeDefined();
      if (classUid === 6003) expect(typeof event.api.operation, kind).toBe('string');
      // Absent facts are absent attributes: the event survives a JSON round trip unchanged.
      expect(JSON.parse(JSON.stringify(event)), kind).toEqual(event);
      expect(event.unmapped.kind, kind).toBe(kind);
    }
  });

  it('maps an allowed GET to API Activity: Read, with the request, the user, the client and the rule', () => {
    const event = toOcsf(sealed(EXAMPLES['http.request'])) as Event;
    expect(event).toMatchObject({
      activity_id: 2,
      activity_name: 'Read',
      type_uid: 600302,
      severity_id: 1,
      status_id: 1,
      action_id: 1,
      disposition_id: 1,
      policy: { name: 'engineer.allow[0]', desc: 'request-allowed' },
      api: { operation: 'GET /orders', request: { uid: 'r1' }, service: { name: 'app' } },
      http_request: { http_method: 'GET', url: { path: '/orders', hostname: 'app.example.com' }, user_agent: 'curl/8', uid: 'r1' },
      src_endpoint: { ip: '10.0.0.7' },
      dst_endpoint: { svc_name: 'app' },
      actor: {
        user: { uid: 'sub-alice', name: 'alice@example.com', email_addr: 'alice@example.com', groups: [{ name: 'engineering' }, { name: 'oncall' }], type_id: 1 },
        session: { uid: 's1' },
        authorizations: [{ decision: 'Allowed', policy: { name: 'engineer.allow[0]' } }],
      },
      metadata: { profiles: ['security_control'], correlation_uid: 'r1', original_time: '2025-01-31T12:00:00.250Z' },
    });
  });

  it('maps a denied POST by default deny to Create, Denied and Blocked, as a failure worth a look', () => {
    const event = toOcsf(sealed({ ...EXAMPLES['http.request'], decision: deny, data: { method: 'post', path: '/orders' } })) as Event;
    expect(event).toMatchObject({ activity_id: 1, type_uid: 600301, action_id: 2, action: 'Denied', disposition_id: 2, status_id: 2, status_detail: 'no-matching-allow', severity_id: 3 });
    expect(event.policy).toEqual({ name: 'default deny', desc: 'no-matching-allow', is_applied: true });
    expect(event.src_endpoint).toEqual({ name: 'unknown' });
  });

  it('maps HTTP methods to API activities and a response to its status', () => {
    const activity = (method: string) => (toOcsf(sealed({ ...EXAMPLES['http.request'], data: { method, path: '/' } })) as Event).activity_id;
    expect(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND'].map(activity)).toEqual([2, 2, 1, 3, 3, 4, 99]);
    const failed = toOcsf(sealed({ ...EXAMPLES['http.response'], data: { status: 503, bytes_out: 0, duration_ms: 2000, upstream_error: 'timeout' } })) as Event;
    expect(failed).toMatchObject({ status_id: 2, status_code: '503', http_response: { code: 503 }, api: { operation: 'response', response: { code: 503, error: 'timeout' } }, duration: 2000 });
  });

  it('maps SQL to Datastore Activity by statement class, with the query, table and database', () => {
    const query = toOcsf(sealed(EXAMPLES['pg.query'])) as Event;
    expect(query).toMatchObject({
      class_name: 'Datastore Activity',
      activity_id: 4,
      type_uid: 600504,
      query_info: { query_string: 'select * from orders', uid: 'abc' },
      table: { name: 'public.orders' },
      database: { name: 'shop', type_id: 1 },
      type_id: 1,
    });
    const classOf = (cls: string) => (toOcsf(sealed({ ...EXAMPLES['pg.query'], data: { sql: 'x', class: cls } })) as Event).activity_id;
    expect(['read', 'write', 'ddl', 'admin'].map(classOf)).toEqual([4, 5, 99, 99]);
    expect((toOcsf(sealed(EXAMPLES['pg.connect'])) as Event)).toMatchObject({ activity_id: 3, activity_name: 'Connect', src_endpoint: { ip: '10.0.0.8', port: 51234 } });
  });

  it('maps logins, logouts, failures and token issuance to Authentication', () => {
    expect(toOcsf(sealed(EXAMPLES['auth.login']))).toMatchObject({ activity_id: 1, type_uid: 300201, status_id: 1, auth_protocol_id: 4, user: { email_addr: 'alice@example.com' }, session: { uid: 's1' } });
    expect(toOcsf(sealed(EXAMPLES['auth.logout']))).toMatchObject({ activity_id: 2, type_uid: 300202 });
    expect(toOcsf(sealed(EXAMPLES['auth.failure']))).toMatchObject({
      activity_id: 1,
      status_id: 2,
      status_detail: 'token-expired',
      severity_id: 3,
      user: { name: 'unknown' },
      src_endpoint: { ip: '2001:db8::1' },
    });
    expect(toOcsf(sealed(EXAMPLES['token.issued']))).toMatchObject({ activity_id: 99, type_uid: 300299, activity_name: 'Token Issued' });
  });

  it('is pure: the same record gives the same event', () => {
    const record = sealed(EXAMPLES['pg.query']);
    expect(toOcsf(record)).toEqual(toOcsf(record));
    expect(toOcsf(record)).not.toBe(toOcsf(record));
  });
});
