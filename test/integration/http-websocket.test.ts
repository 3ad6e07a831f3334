import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

let h: GatewayHarness;
let token: string;

beforeAll(async () => {
  h = await startGatewayHarness();
  token = await bearerFor(h.idp, ALICE);
});

afterAll(async () => {
  await h?.close();
});

function wsUrl(path: string): string {
  return `${h.url.replace('http:', 'ws:')}${path}`;
}

/** Opens a WebSocket through the gateway; resolves once open, or with the refusal status. */
function open(path: string, headers: Record<string, string>, protocols: string[] = []): Promise<{ socket: WebSocket } | { status: number; requestId: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl(path), protocols, { headers });
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, requestId: res.headers['x-request-id'] as string | undefined, body }));
    });
    socket.once('error', reject);
  });
}

function nextMessage(socket: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => socket.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

describe('WebSocket relaying', () => {
  it('authenticates, decides and records ws.open before relaying frames both ways, then records ws.close', async () => {
    const opened = await open('/app/live?room=1', { authorization: `Bearer ${token}` }, ['chat.v2', 'chat.v1']);
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    const { socket } = opened;
    expect(socket.protocol).toBe('chat.v2');

    const handshake = h.upstream.handshakes.at(-1);
    expect(handshake?.url).toBe('/app/live?room=1');
    expect(handshake?.headers['x-tollgate-user']).toBe('alice@example.com');
    expect(handshake?.headers.authorization).toBeUndefined();
    const requestId = String(handshake?.headers['x-tollgate-request-id']);
    const openRecord = h.records().find((record) => record.request_id === requestId);
    expect(openRecord).toMatchObject({ kind: 'ws.open', resource: 'app', decision: { effect: 'allow' }, data: { method: 'GET', path: '/app/live' } });

    socket.send('hello');
    expect(await nextMessage(socket)).toEqual({ data: Buffer.from('hello'), isBinary: false });
    const blob = randomBytes(1024 * 1024);
    socket.send(blob);
    const echoed = await nextMessage(socket);
    expect(echoed.isBinary).toBe(true);
    expect(echoed.data.equals(blob)).toBe(true);

    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.close(4001, 'bye');
    expect(await closed).toBe(4001);
    await expect.poll(() => h.records().find((record) => record.kind === 'ws.close' && record.request_id === requestId)).toMatchObject({
      ref: openRecord?.seq,
      data: { bytes_in: 5 + blob.length, bytes_out: 5 + blob.length, messages_in: 2, messages_out: 2, code: 4001, closed_by: 'client' },
    });
  });

  it('refuses a denied upgrade with 403, records the denial, and never contacts the upstream', async () => {
    const before = h.upstream.handshakes.length;
    const refused = await open('/app/admin/live', { authorization: `Bearer ${token}` });
    expect(refused).toMatchObject({ status: 403 });
    if ('socket' in refused) return;
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'forbidden', reason: 'denied-by-rule', request_id: refused.requestId });
    expect(h.upstream.handshakes.length).toBe(before);
    expect(h.records().find((record) => record.request_id === refused.requestId)).toMatchObject({ kind: 'ws.open', decision: { effect: 'deny' } });
  });

  it('refuses an unauthenticated upgrade with 401 and an unknown path with 404', async () => {
    expect(await open('/app/live', {})).toMatchObject({ status: 401 });
    expect(await open('/elsewhere/live', { authorization: `Bearer ${token}` })).toMatchObject({ status: 404 });
    expect(await open('/down/live', { authorization: `Bearer ${token}` })).toMatchObject({ status: 502 });
  });

  it('works with a browser session cookie', async () => {
    const { browser } = await h.login(ALICE);
    const opened = await open('/app/live', { cookie: browser.cookieHeader(h.url) });
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    opened.socket.send('ping');
    expect((await nextMessage(opened.socket)).data.toString()).toBe('ping');
    expect(h.upstream.handshakes.at(-1)?.headers.cookie ?? '').not.toMatch(/tollgate_session/);
    opened.socket.close();
  });
});

describe('WebSocket sessions at shutdown', () => {
  it('closes relayed sessions with 1001 and records who closed them', async () => {
    const opened = await open('/app/live', { authorization: `Bearer ${token}` });
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    const requestId = String(h.upstream.handshakes.at(-1)?.headers['x-tollgate-request-id']);
    const closed = new Promise<number>((resolve) => opened.socket.once('close', (code) => resolve(code)));
    await h.gateway.close();
    expect(await closed).toBe(1001);
    expect(h.records().find((record) => record.kind === 'ws.close' && record.request_id === requestId)).toMatchObject({ data: { code: 1001, closed_by: 'gateway' } });
  });
});
