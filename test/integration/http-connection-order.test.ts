import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import type { AuditRecord } from '../../src/audit/index.js';
import { sendRequest, statusLines } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

let h: GatewayHarness;
let token: string;
const sockets: Socket[] = [];
const webSockets: WebSocket[] = [];

beforeAll(async () => {
  h = await startGatewayHarness({ limits: { max_concurrent_requests: '2' } });
  token = await bearerFor(h.idp, ALICE);
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  for (const socket of webSockets) socket.terminate();
  await h?.close();
});

/** A raw connection to the gateway that collects what comes back until the gateway closes it. */
function rawConnection(): { readonly socket: Socket; text(): string; readonly closed: Promise<void> } {
  const socket = connect(Number(new URL(h.url).port), '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, text: () => text, closed };
}

function upgradeRequest(path: string): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`
  );
}

/** Opens a WebSocket through the gateway; resolves once open, or with the refusal. */
function openWebSocket(path: string): Promise<{ socket: WebSocket } | { status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${h.url.replace('http:', 'ws:')}${path}`, { headers: { authorization: `Bearer ${token}` } });
    webSockets.push(socket);
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    socket.once('error', reject);
  });
}

function handshakesTo(path: string): number {
  return h.upstream.handshakes.filter((handshake) => handshake.url === path).length;
}

async function overloadedRefusals(): Promise<number> {
  const metric = await h.registry.getSingleMetric('tollgate_http_requests_total')?.get();
  return metric?.values.find((value) => value.labels['resource'] === '-' && value.labels['decision'] === 'none' && String(value.labels['status']) === '503')?.value ?? 0;
}

async function relayedSessions(): Promise<number> {
  const metric = await h.registry.getSingleMetric('tollgate_websocket_sessions')?.get();
  return metric?.values.find((value) => value.labels['resource'] === 'app')?.value ?? 0;
}

function recordsFor(requestId: string): AuditRecord[] {
  return h.records().filter((record) => record.request_id === requestId);
}

describe('WebSocket sessions and max_concurrent_requests', () => {
  it('refuses upgrades beyond the limit with 503 and Retry-After before contacting the upstream, and frees the slot when a session closes', async () => {
    const path = '/app/ws-limit';
    const held = await Promise.all([openWebSocket(path), openWebSocket(path)]);
    const sessions = held.map((opened) => {
      if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
      return opened.socket;
    });
    const refusalsBefore = await overloadedRefusals();
    const recordsBefore = h.records().length;

    for (let i = 0; i < 4; i++) {
      const refused = await openWebSocket(path);
      if ('socket' in refused) throw new Error('an upgrade beyond max_concurrent_requests was relayed');
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(JSON.parse(refused.body)).toMatchObject({ error: 'overloaded', request_id: refused.headers['x-request-id'] });
    }
    expect(handshakesTo(path)).toBe(2);
    // Refused before authentication: nothing was decided, so nothing was recorded.
    expect(h.records().length).toBe(recordsBefore);
    expect(await overloadedRefusals()).toBe(refusalsBefore + 4);

    // The sessions hold the slots that plain requests share.
    const request = await sendRequest(h.url, '/app/x', { headers: { authorization: `Bearer ${token}` } });
    expect(request.status).toBe(503);
    expect(JSON.parse(request.body)).toMatchObject({ error: 'overloaded' });

    sessions[0]?.close(1000);
    // The session gives its slot back as it ends, when the relayed-sessions gauge drops.
    await expect.poll(() => relayedSessions(), { timeout: 10_000 }).toBe(1);
    const again = await openWebSocket(path);
    expect('socket' in again).toBe(true);
    expect(handshakesTo(path)).toBe(3);
    for (const socket of [...sessions, 'socket' in again ? again.socket : null]) socket?.close(1000);
    // The next tests need the slots back.
    await expect.poll(() => relayedSessions(), { timeout: 10_000 }).toBe(0);
  });

  it('refuses an upgrade with 503 while plain requests hold every slot', async () => {
    const path = '/app/ws-behind-requests';
    const slow = [sendRequest(h.url, '/app/slow/3000', { headers: { authorization: `Bearer ${token}` } }), sendRequest(h.url, '/app/slow/3000', { headers: { authorization: `Bearer ${token}` } })];
    await expect.poll(() => h.upstream.requests.filter((request) => request.url === '/app/slow/3000').length, { timeout: 10_000 }).toBe(2);
    const refused = await openWebSocket(path);
    expect(refused).toMatchObject({ status: 503 });
    expect(handshakesTo(path)).toBe(0);
    expect((await Promise.all(slow)).map((response) => response.status)).toEqual([200, 200]);
  });
});

describe('an upgrade pipelined behind a request', () => {
  it('is refused with 400 after the earlier response, never answered with 101 out of order', async () => {
    const path = '/app/ws-pipelined';
    const connection = rawConnection();
    connection.socket.write(`GET /app/slow/300 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n${upgradeRequest(path)}`);
    // Two answers, whatever they are: a 101 out of order would leave the connection open.
    await expect.poll(() => statusLines(connection.text()).length, { timeout: 10_000 }).toBe(2);
    expect(statusLines(connection.text())).toEqual([200, 400]);
    await connection.closed;
    expect(connection.text()).not.toContain('101 Switching Protocols');
    expect(connection.text().split('HTTP/1.1 400')[1]).toContain('"reason":"pipelined-upgrade"');
    expect(handshakesTo(path)).toBe(0);
  });
});

describe('a parse error behind a pending response', () => {
  it('lets the recorded 403 of a denied Expect: 100-continue request arrive whole before the connection closes', async () => {
    const connection = rawConnection();
    connection.socket.write(
      `POST /app/admin/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nExpect: 100-continue\r\nContent-Type: text/plain\r\n` +
        `Content-Length: 40\r\n\r\n${'a'.repeat(40)}${'\u0001'.repeat(10)}`,
    );
    await connection.closed;
    const text = connection.text();
    // Node closes a connection whose 100-continue was never sent after the response, so the 400
    // may not follow; it must never come first or inside the 403.
    expect([[403], [403, 400]]).toContainEqual(statusLines(text));
    const requestId = /x-request-id: (\S+)/i.exec(text)?.[1] ?? '';
    expect(recordsFor(requestId)).toMatchObject([{ kind: 'http.request', decision: { effect: 'deny' }, data: { method: 'POST', path: '/app/admin/upload' } }]);
    expect(JSON.parse(bodyOfFirstResponse(text) ?? '')).toMatchObject({ error: 'forbidden', request_id: requestId });
  });

  it('answers a malformed request pipelined behind a slow one with 400 after the first response, then closes', async () => {
    const connection = rawConnection();
    connection.socket.write(`GET /app/slow/300 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n${'\u0001'.repeat(10)}\r\n\r\n`);
    await connection.closed;
    const text = connection.text();
    expect(statusLines(text)).toEqual([200, 400]);
    expect(bodyOfFirstResponse(text)).toBe('slow');
  });
});

/** The body of the first response in `text`, framed by its Content-Length or chunked coding; `null` when cut short. */
function bodyOfFirstResponse(text: string): string | null {
  const headEnd = text.indexOf('\r\n\r\n') + 4;
  const head = text.slice(0, headEnd);
  const length = /content-length: (\d+)/i.exec(head)?.[1];
  if (length !== undefined) return headEnd + Number(length) <= text.length ? text.slice(headEnd, headEnd + Number(length)) : null;
  let body = '';
  for (let at = headEnd; ; ) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd === -1) return null;
    const size = Number.parseInt(text.slice(at, lineEnd), 16);
    if (size === 0) return text.startsWith('\r\n', lineEnd + 2) ? body : null;
    body += text.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

describe('pipelined requests of a client that goes away', () => {
  async function inFlight(): Promise<number> {
    const metric = await h.registry.getSingleMetric('tollgate_http_in_flight_requests')?.get();
    return metric?.values[0]?.value ?? -1;
  }

  it('give their slots of max_concurrent_requests back, also those queued behind an unanswered one', async () => {
    await vi.waitFor(async () => expect(await inFlight()).toBe(0), { timeout: 10_000, interval: 50 });
    for (let round = 0; round < 3; round++) {
      const connection = rawConnection();
      const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`;
      connection.socket.write(get('/app/slow/400') + get('/app/hello') + get('/app/hello'));
      await vi.waitFor(async () => expect(await inFlight()).toBeGreaterThan(0), { timeout: 10_000, interval: 10 });
      connection.socket.resetAndDestroy();
      await connection.closed;
    }
    await vi.waitFor(async () => expect(await inFlight()).toBe(0), { timeout: 10_000, interval: 50 });
    // Both slots are free again: two requests at once are both served.
    const answers = await Promise.all([1, 2].map(() => fetch(`${h.url}/app/slow/100`, { headers: { authorization: `Bearer ${token}` } })));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
  });
});

describe('a refused upgrade on a client that never closes', () => {
  let lingering: GatewayHarness;

  beforeAll(async () => {
    lingering = await startGatewayHarness({ limits: { idle_timeout: '1s' } });
  });

  afterAll(async () => {
    await lingering?.close();
  });

  /**
   * Sends `request` on a connection that keeps its side open, waits for the gateway's answer and
   * end, then for the gateway to let go: once it has, a byte sent on the connection is answered
   * with a reset; while the gateway holds it, the byte is just buffered. Resolves with the status
   * codes answered.
   */
  async function answeredThenReleased(request: string): Promise<number[]> {
    const socket = connect({ port: Number(new URL(lingering.url).port), host: '127.0.0.1', allowHalfOpen: true });
    sockets.push(socket);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(request);
    await ended;
    const poke = setInterval(() => socket.write('x'), 200);
    try {
      await closed;
    } finally {
      clearInterval(poke);
    }
    return statusLines(text);
  }

  it('is closed by the gateway once the client had the idle timeout to read the answer', async () => {
    // No credentials: refused with 401 before anything is recorded or relayed.
    const upgrade = 'GET /app/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    expect(await answeredThenReleased(upgrade)).toEqual([401]);
  });

  it('closes a malformed request\'s connection the same way', async () => {
    expect(await answeredThenReleased('GET /app/x HTTP/1.1\r\nHost: 127.0.0.1\r\nbad header line\r\n\r\n')).toEqual([400]);
  });
});
