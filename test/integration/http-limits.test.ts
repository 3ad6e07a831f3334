import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendRequest, statusLines } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

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
});
