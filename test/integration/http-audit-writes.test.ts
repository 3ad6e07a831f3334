import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendOptions } from '../../src/audit/index.js';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

const appends: { kind: string; requestId: string | undefined; defer: boolean }[] = [];
let h: GatewayHarness;
let alice: string;

beforeAll(async () => {
  h = await startGatewayHarness({
    onAppend: (event, options: AppendOptions | undefined) => appends.push({ kind: event.kind, requestId: event.request_id, defer: options?.defer === true }),
  });
  alice = await bearerFor(h.idp, ALICE);
});

afterAll(async () => {
  await h?.close();
});

describe('audit writes per forwarded request', () => {
  it('waits for a durable http.request only: http.response is deferred to ride with the next write', async () => {
    const response = await sendRequest(h.url, '/app/orders/1', { headers: { authorization: `Bearer ${alice}` } });
    expect(response.status).toBe(200);
    const requestId = String(response.headers['x-request-id']);
    await expect.poll(() => h.records().filter((record) => record.request_id === requestId).map((record) => record.kind)).toEqual(['http.request', 'http.response']);
    expect(appends.filter((append) => append.requestId === requestId)).toEqual([
      { kind: 'http.request', requestId, defer: false },
      { kind: 'http.response', requestId, defer: true },
    ]);
  });

  it('still waits for a durable record before answering a denied request', async () => {
    const response = await sendRequest(h.url, '/app/admin/users', { headers: { authorization: `Bearer ${alice}` } });
    expect(response.status).toBe(403);
    const requestId = String(response.headers['x-request-id']);
    expect(appends.filter((append) => append.requestId === requestId)).toEqual([{ kind: 'http.request', requestId, defer: false }]);
    expect(h.records().filter((record) => record.request_id === requestId).map((record) => record.kind)).toEqual(['http.request']);
  });
});
