import type { IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { WebSocketRelay, type RelayOutcome } from '../../../src/proxy/http/websocket.js';

let upstream: WebSocketServer;
let upstreamUrl: string;
const upstreamSessions: WebSocket[] = [];
let listener: Server;
const accepted: Socket[] = [];
const clients: Socket[] = [];

beforeAll(async () => {
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => upstream.once('listening', () => resolve()));
  upstreamUrl = `ws://127.0.0.1:${(upstream.address() as AddressInfo).port}/live`;
  upstream.on('connection', (session) => upstreamSessions.push(session));
  // Half-open like the gateway's HTTP listener: ending our side leaves the socket open until the peer ends.
  listener = createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const socket of [...clients, ...accepted]) socket.destroy();
  for (const session of upstreamSessions) session.terminate();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  await new Promise<void>((resolve) => listener.close(() => resolve()));
});

/** The gateway's side of a fresh client connection. */
async function clientSocket(): Promise<Socket> {
  const count = accepted.length;
  // Half-open too: the client does not answer our end of the connection with its own.
  const client = connect({ port: (listener.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => undefined);
  clients.push(client);
  await expect.poll(() => accepted.length).toBe(count + 1);
  const socket = accepted[count];
  if (socket === undefined) throw new Error('no connection accepted');
  socket.on('error', () => undefined);
  return socket;
}

const HANDSHAKE = {
  method: 'GET',
  headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
} as unknown as IncomingMessage;

/** Relays `socket` to the test upstream and resolves with the outcome the relay reports. */
function relay(socket: Socket, after: () => void = () => undefined): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    new WebSocketRelay(1024).relay({
      req: HANDSHAKE,
      socket,
      head: Buffer.alloc(0),
      url: upstreamUrl,
      protocols: [],
      headers: {},
      connectTimeoutMs: 2_000,
      maxPayload: 1024,
      setCookies: [],
      onUpstreamFailure: () => undefined,
      onOpen: () => undefined,
      onDone: resolve,
    });
    after();
  });
}

describe('WebSocketRelay when the client is already gone', () => {
  it('reports a client that closed while its upgrade was being decided, without contacting the upstream', async () => {
    const socket = await clientSocket();
    socket.destroy();
    await new Promise((resolve) => socket.once('close', resolve));
    const sessions = upstreamSessions.length;
    expect(await relay(socket)).toMatchObject({ opened: false, closedBy: 'client', error: 'client-closed' });
    expect(upstreamSessions.length).toBe(sessions);
  });

  it('reports a client socket that can no longer be written to when the upstream opens, and closes that upstream session', async () => {
    const socket = await clientSocket();
    const sessions = upstreamSessions.length;
    const outcome = await relay(socket, () => socket.end());
    expect(outcome).toMatchObject({ opened: false, closedBy: 'client', error: 'client-closed' });
    expect(upstreamSessions.length).toBe(sessions + 1);
    const session = upstreamSessions[sessions];
    await expect.poll(() => session?.readyState).toBe(3);
  });
});
