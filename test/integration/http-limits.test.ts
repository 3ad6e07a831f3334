import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendRequest, statusLines } from '../helpers/http-client.js';
import { ALICE, DEFAULT_POLICY_YAML, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';
import type { AuditRecord } from '../../src/audit/index.js';

let h: GatewayHarness;
let auth: Record<string, string>;
let blackhole: Blackhole;

/**
 * A listener in a process that never accepts (its event loop is blocked): once the kernel's
 * accept queue for it is full, further connection attempts get no answer at all, as with an
 * upstream host that has gone silent.
 */
interface Blackhole {
  readonly port: number;
  close(): void;
}

async function startBlackhole(): Promise<Blackhole> {
  const script = `const s = require('node:net').createServer();
s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  // A write to a pipe is synchronous on Linux: the port is out before the loop blocks for good.
  process.stdout.write(s.address().port + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`blackhole listener exited with ${code}`)));
  });
  // Fill the accept queue (the kernel completes these handshakes itself); the attempts after it stay unanswered.
  const fillers: Socket[] = [];
  const queued: Promise<void>[] = [];
  for (let i = 0; i < 4; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    if (i < 2) queued.push(new Promise((resolve) => socket.once('connect', () => resolve())));
    fillers.push(socket);
  }
  await Promise.all(queued);
  return {
    port,
    close() {
      for (const socket of fillers) socket.destroy();
      child.kill('SIGKILL');
    },
  };
}

beforeAll(async () => {
  blackhole = await startBlackhole();
  h = await startGatewayHarness({
    limits: { max_concurrent_requests: '2', headers_timeout: '1s', idle_timeout: '2s', upstream_connect_timeout: '1s' },
    extraResourcesYaml: `  - name: silent
    kind: http
    upstream: http://127.0.0.1:${blackhole.port}
    match:
      path_prefix: /silent/
`,
    policyYaml: DEFAULT_POLICY_YAML.replace('      - resource: down\n', '      - resource: down\n      - resource: silent\n'),
  });
  auth = { authorization: `Bearer ${await bearerFor(h.idp, ALICE)}` };
});

afterAll(async () => {
  await h?.close();
  blackhole?.close();
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
    const outcome = await timedOut('/app/slow/6000');
    expect(outcome).toMatchObject({ status: 504, upstream_error: 'UND_ERR_HEADERS_TIMEOUT' });
    // The outcome's duration covers the wait: at least idle_timeout (2 s).
    expect(Number(outcome['duration_ms'])).toBeGreaterThanOrEqual(1_900);
  });

  it('answers 504 when the upstream does not accept the connection within upstream_connect_timeout', async () => {
    expect(await timedOut('/silent/x')).toMatchObject({ status: 504, upstream_error: 'UND_ERR_CONNECT_TIMEOUT' });
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

describe('idle_timeout with pipelined requests', () => {
  it('still closes a connection whose client stops reading while a pipelined request waits on a slow upstream', async () => {
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    const big = `/app/bytes/${512 * 1024 * 1024}`;
    const request = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${auth['authorization']}\r\n\r\n`;
    socket.pause();
    socket.write(request(big));
    await expect.poll(() => h.upstream.requests.some((seen) => seen.url === big)).toBe(true);
    // Once the download has filled the socket's buffers (its last activity), a second request on
    // the same connection waits on a slow upstream when the connection's idle timer runs out.
    await new Promise((resolve) => setTimeout(resolve, 500));
    socket.write(request('/app/slow/60000'));
    const requestId = String(h.upstream.requests.find((seen) => seen.url === big)?.headers['x-tollgate-request-id']);
    await expect.poll(() => recordsFor(requestId).map((record) => record.kind), { timeout: 15_000 }).toEqual(['http.request', 'http.response']);
    expect(recordsFor(requestId)[1]?.data).toMatchObject({ status: 200, upstream_error: 'client-closed' });
    socket.destroy();
  }, 30_000);
});

/** Asks for `path`, expects the gateway's 504 with its request id, and returns the data of the `http.response` that follows the request's record. */
async function timedOut(path: string): Promise<Record<string, unknown>> {
  const response = await sendRequest(h.url, path, { headers: auth });
  expect(response.status).toBe(504);
  const requestId = String(response.headers['x-request-id']);
  expect(JSON.parse(response.body)).toMatchObject({ error: 'upstream_timeout', request_id: requestId });
  await expect.poll(() => recordsFor(requestId).map((record) => record.kind)).toEqual(['http.request', 'http.response']);
  return recordsFor(requestId)[1]?.data ?? {};
}

function recordsFor(requestId: string): AuditRecord[] {
  return h.records().filter((record) => record.request_id === requestId);
}
