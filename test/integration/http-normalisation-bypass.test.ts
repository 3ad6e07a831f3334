/**
 * Regression tests for four ways a request once reached the upstream in a form the policy never
 * decided on: underscore spellings of identity and forwarding headers, method and URL override
 * headers, overlong UTF-8 escapes, and paths an upstream treats as a denied path (letter case,
 * trailing slash, trailing dot or space). The default harness policy lets engineers use `/app/**`
 * and denies `/app/admin/**` and `/app/secret`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { AuditRecord } from '../../src/audit/index.js';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

let h: GatewayHarness;
let alice: string;

beforeAll(async () => {
  h = await startGatewayHarness();
  alice = await bearerFor(h.idp, ALICE);
});

afterAll(async () => {
  await h?.close();
});

function auth(): Record<string, string> {
  return { authorization: `Bearer ${alice}` };
}

function requestIdOf(response: { headers: Record<string, unknown> }): string {
  const id = response.headers['x-request-id'];
  if (typeof id !== 'string') throw new Error('response has no x-request-id');
  return id;
}

function recordsFor(requestId: string): AuditRecord[] {
  return h.records().filter((record) => record.request_id === requestId);
}

/** Header names as the upstream received them on the wire, lower-cased. */
function rawNamesSeen(requestId: string): string[] {
  const seen = h.upstream.byRequestId(requestId);
  if (seen === undefined) throw new Error(`the upstream never received ${requestId}`);
  return seen.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
}

describe('identity and forwarding headers spelled with underscores', () => {
  it('never reach the upstream, so an app reading HTTP_X_TOLLGATE_USER sees the gateway’s value', async () => {
    const response = await sendRequest(h.url, '/app/whoami', {
      headers: {
        ...auth(),
        x_tollgate_user: 'ceo@example.com',
        X_Tollgate_Groups: 'admins',
        'X-Tollgate_Assertion': 'eyJhbGciOiJub25lIn0.e30.',
        x_forwarded_for: '10.1.1.1',
        X_Forwarded_Host: 'admin.internal',
        x_real_ip: '10.1.1.1',
        'x.tollgate.user': 'ceo@example.com',
        'X-Custom-Header': 'kept',
      },
    });
    expect(response.status).toBe(200);
    const requestId = requestIdOf(response);
    const names = rawNamesSeen(requestId);
    expect(names.filter((name) => /[^a-z0-9-]/.test(name))).toEqual([]);
    expect(names.filter((name) => name.replace(/[^a-z0-9]/g, '_') === 'x_tollgate_user')).toEqual(['x-tollgate-user']);
    const seen = h.upstream.byRequestId(requestId);
    expect(seen?.headers).toMatchObject({ 'x-tollgate-user': 'alice@example.com', 'x-tollgate-groups': 'engineering', 'x-forwarded-for': '127.0.0.1', 'x-custom-header': 'kept' });
    expect(JSON.stringify(seen?.rawHeaders)).not.toMatch(/ceo@example\.com|admins|10\.1\.1\.1|admin\.internal/);
    expect(recordsFor(requestId)[0]).toMatchObject({ kind: 'http.request', principal: { email: 'alice@example.com' }, decision: { effect: 'allow' } });
  });
});

describe('method and URL override headers', () => {
  it('are dropped, so the upstream runs the method and path the policy allowed', async () => {
    const response = await sendRequest(h.url, '/app/public', {
      method: 'POST',
      headers: {
        ...auth(),
        'X-Original-URL': '/app/admin/x',
        'X-Rewrite-URL': '/app/secret',
        'X-Original-URI': '/app/secret',
        'X-HTTP-Method-Override': 'DELETE',
        'X-HTTP-Method': 'DELETE',
        'X-Method-Override': 'DELETE',
        'X-Original-Method': 'DELETE',
        'content-type': 'text/plain',
      },
      body: 'x',
    });
    expect(response.status).toBe(200);
    const requestId = requestIdOf(response);
    const seen = h.upstream.byRequestId(requestId);
    expect(seen).toMatchObject({ method: 'POST', url: '/app/public' });
    expect(rawNamesSeen(requestId).filter((name) => /original|rewrite|method/.test(name))).toEqual([]);
    expect(JSON.stringify(seen?.rawHeaders)).not.toMatch(/admin|secret|DELETE/);
    expect(recordsFor(requestId)[0]).toMatchObject({ kind: 'http.request', decision: { effect: 'allow' }, data: { method: 'POST', path: '/app/public' } });
  });
});

describe('paths an upstream could read as a denied path', () => {
  it.each([
    ['/app/%C0%AE%C0%AE/secret', 'invalid-utf8'],
    ['/app/%c0%af..%c0%afadmin/x', 'invalid-utf8'],
    ['/app/x/%e0%80%ae%e0%80%ae/secret', 'invalid-utf8'],
    ['/app/secret.', 'ambiguous-segment'],
    ['/app/admin./x', 'ambiguous-segment'],
    ['/app/admin%2e/x', 'ambiguous-segment'],
    ['/app/admin%20/x', 'ambiguous-segment'],
    ['/app/secret%20', 'ambiguous-segment'],
    ['/app/admin%09/x', 'control-character'],
  ])('%s is refused with 400 (%s), recorded nowhere and never forwarded', async (target, reason) => {
    const before = h.upstream.requests.length;
    const response = await sendRequest(h.url, target, { headers: auth() });
    expect(response.status).toBe(400);
    const requestId = requestIdOf(response);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'bad_request', reason, request_id: requestId });
    expect(h.upstream.requests.length).toBe(before);
    expect(recordsFor(requestId)).toEqual([]);
  });

  it.each(['/app/secret/', '/app/Secret', '/app/SECRET/', '/app/ADMIN/x', '/app/Admin', '/app/admin/', '/app/aDmIn/x/'])(
    '%s is denied by the deny rule for /app/secret or /app/admin/** and never forwarded',
    async (target) => {
      const before = h.upstream.requests.length;
      const response = await sendRequest(h.url, target, { headers: auth() });
      expect(response.status).toBe(403);
      const requestId = requestIdOf(response);
      expect(JSON.parse(response.body)).toMatchObject({ error: 'forbidden', reason: 'denied-by-rule' });
      expect(h.upstream.requests.length).toBe(before);
      expect(recordsFor(requestId)).toEqual([
        expect.objectContaining({ kind: 'http.request', decision: { effect: 'deny', rule: 'engineer.deny[0]', reason: 'denied-by-rule' }, data: expect.objectContaining({ path: target }) }),
      ]);
    },
  );

  it('still forwards the neighbours of denied paths, as sent', async () => {
    for (const target of ['/app/secrets', '/app/secret.txt', '/app/administrator', '/app/a.b/c', '/app/a%20b']) {
      const response = await sendRequest(h.url, target, { headers: auth() });
      expect(response.status, target).toBe(200);
      expect(h.upstream.byRequestId(requestIdOf(response))?.url).toBe(target);
    }
  });
});

/** Opens a WebSocket through the gateway; resolves once open, or with the refusal. */
function openSocket(path: string, headers: Record<string, string>): Promise<{ socket: WebSocket } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${h.url.replace('http:', 'ws:')}${path}`, { headers });
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    socket.once('error', reject);
  });
}

describe('WebSocket upgrades', () => {
  it('drop underscore and override headers from the handshake the upstream receives', async () => {
    const opened = await openSocket('/app/live', { ...auth(), x_tollgate_user: 'ceo@example.com', 'X-Original-URL': '/app/admin/x', 'X-HTTP-Method-Override': 'DELETE' });
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    const closed = new Promise((resolve) => opened.socket.once('close', resolve));
    opened.socket.close();
    await closed;
    const handshake = h.upstream.handshakes.at(-1);
    expect(handshake?.headers['x-tollgate-user']).toBe('alice@example.com');
    expect(Object.keys(handshake?.headers ?? {}).filter((name) => name.includes('_') || /original|override/.test(name))).toEqual([]);
  });

  it.each([
    ['/app/ADMIN/live', 403, 'denied-by-rule'],
    ['/app/admin%2e/live', 400, 'ambiguous-segment'],
    ['/app/%C0%AE%C0%AE/secret', 400, 'invalid-utf8'],
  ])('refuse %s with %i (%s) and never reach the upstream', async (path, status, reason) => {
    const before = h.upstream.handshakes.length;
    const refused = await openSocket(path, auth());
    expect(refused).toMatchObject({ status });
    expect(JSON.parse((refused as { body: string }).body)).toMatchObject({ reason });
    expect(h.upstream.handshakes.length).toBe(before);
  });
});
