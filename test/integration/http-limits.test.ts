import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendRequest, statusLines } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';
import type { AuditRecord } from '../../src/audit/index.js';

let h: GatewayHarness;
let auth: Record<string, string>;

beforeAll(async () => {
  h = await startGatewayHarness({ limits: { max_concurrent_requests: '2', headers_timeout: '1s', idle_timeout: '2s' } });
  auth = { authorization: `Bearer ${await bearerFor(h.idp, ALICE)}` };
});

afterAll(async () => {
  await h?.close();
});

describe('listener limits', () => {
  it('answers 503 with Retry-After beyond max_concurrent_requests, and serves again once requests finish', async () => {
    const slow = [sendRequest(h.url, '/app/slow/400', { headers: auth }), sendRequest(h.url, '/app/slow/400', { headers: auth })];
    await expect.poll(() => h.upstream.requests.filter((request) => request.url === '/app/slow/400').length).toBe(2);
    const refused = await sendRequest(h.url, '/app/x', { headers: auth });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'overloaded' });
    expect((await Promise.all(slow)).map((response) => response.status)).toEqual([200, 200]);
    expect((await sendRequest(h.url, '/app/x', { headers: auth })).status).toBe(200);
  });

  it('closes a connection whose headers do not arrive within headers_timeout', async () => {
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(`GET /app/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `);
    await closed;
    expect(statusLines(text)).toEqual([408]);
    expect(h.upstream.requests.some((request) => request.headers['x-slow'] !== undefined)).toBe(false);
  });

  it('answers 504 when the upstream sends no response within idle_timeout, and records why', async () => {
    const response = await sendRequest(h.url, '/app/slow/6000', { headers: auth });
    expect(response.status).toBe(504);
    const requestId = String(response.headers['x-request-id']);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'upstream_timeout', request_id: requestId });
    await expect.poll(() => recordsFor(requestId).map((record) => record.kind)).toEqual(['http.request', 'http.response']);
    expect(recordsFor(requestId)[1]?.data).toMatchObject({ status: 504, upstream_error: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  it('breaks the client connection when the upstream stalls mid-body beyond idle_timeout, and records the bytes sent', async () => {
    await expect(sendRequest(h.url, '/app/stall-body/6000', { headers: auth })).rejects.toThrow();
    const seen = h.upstream.requests.find((request) => request.url === '/app/stall-body/6000');
    const requestId = String(seen?.headers['x-tollgate-request-id']);
    await expect.poll(() => recordsFor(requestId).map((record) => record.kind)).toEqual(['http.request', 'http.response']);
    expect(recordsFor(requestId)[1]?.data).toMatchObject({ status: 200, bytes_out: 10, upstream_error: 'UND_ERR_BODY_TIMEOUT' });
  });
});

describe('idle_timeout for a quiet client', () => {
  it('closes the connection of a client that stops sending its request body, without blaming the upstream', async () => {
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(`POST /app/upload-stall HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${auth['authorization']}\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
    await closed;
    // No 504: the upstream was waiting for this client's body, not the other way round.
    expect(text).toBe('');
    const requestOf = (): AuditRecord | undefined => h.records().find((record) => record.kind === 'http.request' && record.data['path'] === '/app/upload-stall');
    await expect.poll(() => recordsFor(requestOf()?.request_id ?? '').map((record) => record.kind)).toEqual(['http.request', 'http.response']);
    expect(recordsFor(requestOf()?.request_id ?? '')[1]?.data).toMatchObject({ status: 0, bytes_in: 10, bytes_out: 0, upstream_error: 'client-closed' });
  });

  it('closes the connection of a client that stops reading its response, and records what was sent', async () => {
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(`GET /app/bytes/${512 * 1024 * 1024} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${auth['authorization']}\r\n\r\n`);
    // Not read: the socket buffers fill and the gateway waits on the client, not the upstream.
    socket.pause();
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    await expect.poll(() => h.upstream.requests.some((request) => request.url === `/app/bytes/${512 * 1024 * 1024}`)).toBe(true);
    const seen = h.upstream.requests.find((request) => request.url === `/app/bytes/${512 * 1024 * 1024}`);
    const requestId = String(seen?.headers['x-tollgate-request-id']);
    await expect.poll(() => recordsFor(requestId).map((record) => record.kind), { timeout: 10_000 }).toEqual(['http.request', 'http.response']);
    const outcome = recordsFor(requestId)[1]?.data ?? {};
    expect(outcome).toMatchObject({ status: 200, upstream_error: 'client-closed' });
    // What the gateway had written before it gave up is still in the client's buffers, then the end.
    socket.resume();
    await closed;
    expect(received).toBeLessThan(512 * 1024 * 1024);
    expect(Number(outcome['bytes_out'])).toBeLessThan(512 * 1024 * 1024);
  });
});

function recordsFor(requestId: string): AuditRecord[] {
  return h.records().filter((record) => record.request_id === requestId);
}
