import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/index.js';
import { sendRaw, sendRequest, statusLines } from '../helpers/http-client.js';
import { ALICE, MALLORY, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

let h: GatewayHarness;
let alice: string;

beforeAll(async () => {
  h = await startGatewayHarness();
  alice = await bearerFor(h.idp, ALICE);
});

afterAll(async () => {
  await h?.close();
});

function auth(token = alice): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

function recordsFor(requestId: string): AuditRecord[] {
  return h.records().filter((record) => record.request_id === requestId);
}

function requestIdOf(response: { headers: Record<string, unknown> }): string {
  const id = response.headers['x-request-id'];
  if (typeof id !== 'string') throw new Error('response has no x-request-id');
  return id;
}

describe('authentication at the gateway', () => {
  it('sends a browser without a session to login, keeping the original path to return to', async () => {
    const response = await sendRequest(h.url, '/app/orders?page=2', { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe(`/_tollgate/login?return_to=${encodeURIComponent('/app/orders?page=2')}`);
    expect(h.upstream.requests).toHaveLength(0);
  });

  it('answers an API client without credentials with 401 JSON and a Bearer challenge', async () => {
    const response = await sendRequest(h.url, '/app/orders', { headers: { accept: 'application/json' } });
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="tollgate"');
    expect(JSON.parse(response.body)).toMatchObject({ error: 'unauthenticated', request_id: requestIdOf(response) });
  });

  it('answers a path no resource serves with 404 from the gateway', async () => {
    const response = await sendRequest(h.url, '/nothing/here', { headers: auth() });
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'not_found' });
    const bare = await sendRequest(h.url, '/app?x=1', { headers: auth() });
    expect(bare.status).toBe(308);
    expect(bare.headers.location).toBe('/app/?x=1');
  });
});

describe('what the upstream receives', () => {
  it('forwards an allowed request with identity headers and an assertion verifiable against the JWKS', async () => {
    const response = await sendRequest(h.url, '/app/orders/7?limit=5', { headers: { ...auth(), cookie: 'theme=dark; tollgate_session=abc; tollgate_session_login=def; lang=en' } });
    expect(response.status).toBe(200);
    const requestId = requestIdOf(response);
    const seen = h.upstream.byRequestId(requestId);
    expect(seen?.url).toBe('/app/orders/7?limit=5');
    expect(seen?.headers).toMatchObject({ 'x-tollgate-user': 'alice@example.com', 'x-tollgate-groups': 'engineering', cookie: 'theme=dark; lang=en' });
    expect(seen?.headers).not.toHaveProperty('authorization');

    const jwks = createRemoteJWKSet(new URL('/.well-known/tollgate/jwks.json', h.url));
    const { payload, protectedHeader } = await jwtVerify(String(seen?.headers['x-tollgate-assertion']), jwks, { issuer: h.url, audience: 'app', algorithms: ['EdDSA'] });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload).toMatchObject({ sub: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(60);
    expect(payload.jti).toEqual(expect.any(String));
    await expect(jwtVerify(String(seen?.headers['x-tollgate-assertion']), jwks, { issuer: h.url, audience: 'api' })).rejects.toThrow();
  });

  it('never lets spoofed X-Tollgate-* or X-Forwarded-* headers through as sent', async () => {
    const response = await sendRequest(h.url, '/app/whoami', {
      headers: {
        ...auth(),
        'X-Tollgate-User': 'ceo@example.com',
        'X-Tollgate-Groups': 'admins',
        'X-Tollgate-Assertion': 'eyJhbGciOiJub25lIn0.e30.',
        'X-Tollgate-Request-Id': 'forged',
        'X-Forwarded-For': '10.9.9.9',
        'X-Forwarded-Host': 'admin.internal',
        'X-Forwarded-Proto': 'https',
        Forwarded: 'for=10.9.9.9',
        'X-Real-IP': '10.9.9.9',
        Connection: 'keep-alive, X-Tollgate-Nonsense',
      },
    });
    expect(response.status).toBe(200);
    const seen = h.upstream.byRequestId(requestIdOf(response));
    expect(seen).toBeDefined();
    const headers = seen?.headers ?? {};
    expect(headers['x-tollgate-user']).toBe('alice@example.com');
    expect(headers['x-tollgate-groups']).toBe('engineering');
    expect(headers['x-tollgate-assertion']).not.toBe('eyJhbGciOiJub25lIn0.e30.');
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-host']).toBe(new URL(h.url).host);
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers).not.toHaveProperty('forwarded');
    expect(headers).not.toHaveProperty('x-real-ip');
    const rawNames = (seen?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    expect(rawNames.filter((name) => name === 'x-tollgate-user')).toHaveLength(1);
  });

  it('drops the request headers the client names in Connection, and the standard hop-by-hop ones (RFC 9110 §7.6.1)', async () => {
    const response = await sendRequest(h.url, '/app/hops', {
      headers: {
        ...auth(),
        Connection: 'keep-alive, X-Client-Hop, Upgrade-Insecure',
        'X-Client-Hop': 'meant for the gateway only',
        'Upgrade-Insecure': '1',
        'Keep-Alive': 'timeout=5',
        'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
        TE: 'trailers',
        'X-End-To-End': 'kept',
      },
    });
    expect(response.status).toBe(200);
    const names = Object.keys(h.upstream.byRequestId(requestIdOf(response))?.headers ?? {});
    expect(names).toContain('x-end-to-end');
    for (const hop of ['x-client-hop', 'upgrade-insecure', 'keep-alive', 'proxy-authorization', 'te']) expect(names).not.toContain(hop);
  });

  it('strips the prefix and rebases onto the upstream path when the resource says so', async () => {
    const response = await sendRequest(h.url, '/api/v1/things?q=1', { headers: auth() });
    expect(response.status).toBe(200);
    expect(h.upstream.byRequestId(requestIdOf(response))?.url).toBe('/base/v1/things?q=1');
    const [request] = recordsFor(requestIdOf(response));
    expect(request).toMatchObject({ kind: 'http.request', resource: 'api', data: { path: '/base/v1/things' } });
  });

  it('cleans the response: hop-by-hop headers, the upstream request id and planted gateway cookies are dropped', async () => {
    const plain = await sendRequest(h.url, '/app/plain', { headers: auth() });
    expect(plain.headers['x-request-id']).not.toBe('upstream-id');
    expect(plain.headers).not.toHaveProperty('x-upstream-private');
    const cookies = await sendRequest(h.url, '/app/set-cookie', { headers: auth() });
    expect(cookies.headers['set-cookie']).toEqual(['app=1; Path=/', 'theme=dark; Path=/']);
  });
});

describe('decisions and audit records', () => {
  it('denies with 403, the reason and the request id, records the denial, and forwards nothing', async () => {
    const before = h.upstream.requests.length;
    const json = await sendRequest(h.url, '/app/admin/users', { headers: auth() });
    expect(json.status).toBe(403);
    expect(JSON.parse(json.body)).toEqual({ error: 'forbidden', message: expect.any(String), reason: 'denied-by-rule', request_id: requestIdOf(json) });
    const page = await sendRequest(h.url, '/app/admin/users', { headers: { ...auth(), accept: 'text/html' } });
    expect(page.status).toBe(403);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('denied-by-rule');
    expect(page.body).toContain(requestIdOf(page));
    expect(h.upstream.requests.length).toBe(before);
    expect(recordsFor(requestIdOf(json))).toEqual([
      expect.objectContaining({ kind: 'http.request', resource: 'app', decision: { effect: 'deny', rule: 'engineer.deny[0]', reason: 'denied-by-rule' } }),
    ]);
  });

  it('denies a user without a role (default deny)', async () => {
    const response = await sendRequest(h.url, '/app/x', { headers: auth(await bearerFor(h.idp, MALLORY)) });
    expect(response.status).toBe(403);
    expect(JSON.parse(response.body)).toMatchObject({ reason: 'no-matching-allow' });
  });

  it('records request and response for a forwarded request, linked by seq, without the query string', async () => {
    const response = await sendRequest(h.url, '/app/upload?token=secret-value', { method: 'POST', headers: { ...auth(), 'content-type': 'text/plain' }, body: 'x'.repeat(1000) });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ bodyBytes: 1000 });
    const requestId = requestIdOf(response);
    await expect.poll(() => recordsFor(requestId).length).toBe(2);
    const [request, outcome] = recordsFor(requestId);
    expect(request).toMatchObject({
      kind: 'http.request',
      principal: { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] },
      resource: 'app',
      decision: { effect: 'allow', rule: 'engineer.allow[0]', reason: 'allowed-by-rule' },
      data: { method: 'POST', path: '/app/upload', remote: '127.0.0.1', auth: 'bearer', token_id: expect.any(String) },
    });
    expect(outcome).toMatchObject({ kind: 'http.response', ref: request?.seq, data: { status: 200, bytes_in: 1000, bytes_out: response.body.length } });
    expect(JSON.stringify(h.records())).not.toContain('secret-value');
    expect(JSON.stringify(h.records())).not.toContain(alice);
  });

  it('has exactly one durable http.request allow record for every request the upstream received', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => sendRequest(h.url, `/app/burst/${i}`, { headers: auth() })));
    const records = h.records();
    expect(h.upstream.requests.length).toBeGreaterThan(40);
    for (const seen of h.upstream.requests) {
      const requestId = String(seen.headers['x-tollgate-request-id']);
      const matching = records.filter((record) => record.kind === 'http.request' && record.request_id === requestId);
      expect(matching).toHaveLength(1);
      expect(matching[0]?.decision?.effect).toBe('allow');
      expect(matching[0]?.data['path']).toBe(seen.url.split('?')[0]);
    }
  });

  it('answers 502 with the request id when the upstream is down, and records the failure', async () => {
    const response = await sendRequest(h.url, '/down/x', { headers: auth() });
    expect(response.status).toBe(502);
    const requestId = requestIdOf(response);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'upstream_unavailable', request_id: requestId });
    await expect.poll(() => recordsFor(requestId).map((record) => record.kind)).toEqual(['http.request', 'http.response']);
    expect(recordsFor(requestId)[1]?.data).toMatchObject({ status: 502, upstream_error: 'ECONNREFUSED' });
  });
});

describe('Expect: 100-continue', () => {
  it('sends 100 Continue only once the request is allowed and recorded, so a denied body is never sent', async () => {
    const headers = { ...auth(), 'content-type': 'text/plain', 'content-length': '5' };
    const allowed = await sendRequest(h.url, '/app/upload', { method: 'POST', headers, body: 'hello', expectContinue: true });
    expect(allowed).toMatchObject({ status: 200, continued: true });
    expect(JSON.parse(allowed.body)).toMatchObject({ bodyBytes: 5 });
    const denied = await sendRequest(h.url, '/app/admin/upload', { method: 'POST', headers, body: 'hello', expectContinue: true });
    expect(denied).toMatchObject({ status: 403, continued: false });
    expect(denied.headers.connection).toBe('close');
  });
});

describe('path normalisation', () => {
  const attempts = [
    '/app/x/../admin/users',
    '/app/%2e%2e/app/admin/users',
    '/app/x/%2E%2E/admin/users',
    '/app//admin/users',
    '/app/./admin/users',
    '/app/%61dmin/users',
    '/app/admin/../admin/users',
    '/app/admin;x/users',
    '/app/..;/app/admin/users',
    '/app/admin%2fusers',
    '/app/admin%252fusers',
    '/app/%2e%2e%5cadmin',
    '/app/admin\\users',
    '/app/ADMIN/users',
    '/app/admin%00/users',
    '/app/secret',
    '/app/secret/',
    '/app/secret%20',
  ];

  it.each(attempts)('%s is decided on the path the upstream receives', async (target) => {
    const response = await sendRequest(h.url, target, { headers: auth() });
    const requestId = requestIdOf(response);
    const seen = h.upstream.byRequestId(requestId);
    const [record] = recordsFor(requestId);
    if (response.status === 400) {
      expect(seen).toBeUndefined();
      expect(record).toBeUndefined();
      return;
    }
    expect(record?.kind).toBe('http.request');
    if (seen === undefined) {
      expect(response.status).toBe(403);
      expect(record?.decision?.effect).toBe('deny');
      return;
    }
    expect(record?.decision?.effect).toBe('allow');
    expect(seen.url).toBe(record?.data['path']);
    expect(seen.url.toLowerCase().startsWith('/app/admin')).toBe(seen.url.startsWith('/app/ADMIN'));
  });

  it('refuses the ambiguous spellings with 400 and names the problem', async () => {
    const response = await sendRequest(h.url, '/app/..;/app/admin/users', { headers: auth() });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'bad_request', reason: 'path-parameter' });
    expect((await sendRequest(h.url, '/app/admin%2fusers', { headers: auth() })).status).toBe(400);
  });
});

describe('request smuggling', () => {
  const host = (): string => `Host: ${new URL(h.url).host}\r\nAuthorization: Bearer ${alice}\r\n`;

  it.each([
    ['Content-Length with Transfer-Encoding', (): string => `POST /app/a HTTP/1.1\r\n${host()}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /app/smuggled HTTP/1.1\r\n${host()}\r\n`],
    ['duplicate Content-Length', (): string => `POST /app/a HTTP/1.1\r\n${host()}Content-Length: 4\r\nContent-Length: 39\r\n\r\nabcdGET /app/smuggled HTTP/1.1\r\nX: y\r\n\r\n`],
    ['obs-fold', (): string => `GET /app/a HTTP/1.1\r\n${host()}X-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\nGET /app/smuggled HTTP/1.1\r\n${host()}\r\n`],
    ['a Transfer-Encoding other than chunked', (): string => `POST /app/a HTTP/1.1\r\n${host()}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\nGET /app/smuggled HTTP/1.1\r\n${host()}\r\n`],
    ['Transfer-Encoding in HTTP/1.0', (): string => `POST /app/a HTTP/1.0\r\n${host()}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /app/smuggled HTTP/1.1\r\n${host()}\r\n`],
    ['two Host headers', (): string => `GET /app/a HTTP/1.1\r\n${host()}Host: admin.internal\r\n\r\nGET /app/smuggled HTTP/1.1\r\n${host()}\r\n`],
  ])('refuses %s, closes the connection, and forwards nothing', async (_name, payload) => {
    const before = h.upstream.requests.length;
    const { text, closedByServer } = await sendRaw(h.url, payload());
    const statuses = statusLines(text);
    expect(statuses).toHaveLength(1);
    expect([400, 501]).toContain(statuses[0]);
    expect(closedByServer).toBe(true);
    expect(h.upstream.requests.length).toBe(before);
    expect(h.upstream.requests.some((request) => request.url.includes('smuggled'))).toBe(false);
  });

  it('keeps a well-framed keep-alive connection in step: two pipelined requests, two answers', async () => {
    const payload = `POST /app/one HTTP/1.1\r\n${host()}Content-Length: 5\r\n\r\nhelloGET /app/two HTTP/1.1\r\n${host()}Connection: close\r\n\r\n`;
    const { text } = await sendRaw(h.url, payload);
    expect(statusLines(text)).toEqual([200, 200]);
    expect(text).toContain('"url":"/app/one"');
    expect(text).toContain('"url":"/app/two"');
  });

  it('answers oversized headers with 431', async () => {
    const { text } = await sendRaw(h.url, `GET /app/a HTTP/1.1\r\n${host()}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(statusLines(text)).toEqual([431]);
  });
});

describe('behind a trusted proxy', () => {
  let behind: GatewayHarness;

  beforeAll(async () => {
    behind = await startGatewayHarness({ trustedProxies: ['127.0.0.1/32'] });
  });

  afterAll(async () => {
    await behind?.close();
  });

  it('extends X-Forwarded-For, keeps the proxy’s Proto and Host, and records the client it names', async () => {
    const token = await bearerFor(behind.idp, ALICE);
    const response = await sendRequest(behind.url, '/app/behind', {
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'apps.example.com' },
    });
    const requestId = requestIdOf(response);
    expect(behind.upstream.byRequestId(requestId)?.headers).toMatchObject({
      'x-forwarded-for': '198.51.100.7, 127.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'apps.example.com',
    });
    expect(behind.records().find((record) => record.request_id === requestId)?.data).toMatchObject({ remote: '198.51.100.7' });
  });
});
