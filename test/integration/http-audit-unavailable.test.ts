import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { TollgateError } from '../../src/core/index.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';
import { TestBrowser } from '../helpers/oidc-idp.js';

/**
 * The audit store refuses records of the kinds in `refused`, as a store that cannot make them
 * durable does (its append rejects); every other record is written to the real file store.
 */
const refused = new Set<string>();
let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness({
    onAppend: (event) => {
      if (refused.has(event.kind)) throw new TollgateError('TG_ERR_AUDIT_UNAVAILABLE', `${event.kind} refused for the test`);
    },
  });
});

afterEach(() => {
  refused.clear();
});

afterAll(async () => {
  await h?.close();
});

/** Tries a WebSocket upgrade; resolves with the refusal's status, headers and body (or throws if it opened). */
function refusedUpgrade(path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${h.url.replace('http:', 'ws:')}${path}`, { headers });
    socket.once('open', () => {
      socket.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    socket.once('error', reject);
  });
}

describe('when the audit log refuses records', () => {
  it('issues no session when auth.login cannot be recorded: 503 with Retry-After, and the browser is still signed out', async () => {
    const browser = new TestBrowser();
    const atIdp = await browser.follow(`${h.url}/_tollgate/login?return_to=/app/x`, { stopWhen: (url) => url.origin === h.idp.issuer });
    if (atIdp.stoppedAt === undefined) throw new Error(`no redirect to the IdP: ${atIdp.status}`);
    const callback = await h.idp.login(atIdp.stoppedAt, ALICE, browser);
    refused.add('auth.login');
    const answer = await browser.request(callback, { headers: { accept: 'text/html' } });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(answer.body).toContain(answer.headers.get('x-request-id'));
    expect(answer.headers.getSetCookie().filter((cookie) => cookie.startsWith('tollgate_session='))).toEqual([]);
    expect(browser.cookie(h.url, 'tollgate_session')).toBeUndefined();
    refused.clear();

    const after = await browser.request(`${h.url}/app/x`, { headers: { accept: 'text/html' } });
    expect(after.status).toBe(302);
    expect(after.headers.get('location')).toMatch(/^\/_tollgate\/login\?/);
    expect(h.records().filter((record) => record.kind === 'auth.login')).toEqual([]);
  });

  it('refuses a WebSocket upgrade whose ws.open cannot be recorded: 503 with Retry-After, the upstream never contacted', async () => {
    const token = await bearerFor(h.idp, ALICE);
    refused.add('ws.open');
    const handshakes = h.upstream.handshakes.length;
    const answer = await refusedUpgrade('/app/live', { authorization: `Bearer ${token}` });
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('5');
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'audit_unavailable', request_id: answer.headers['x-request-id'] });
    expect(h.upstream.handshakes.length).toBe(handshakes);
    expect(h.records().filter((record) => record.request_id === answer.headers['x-request-id'])).toEqual([]);
  });

  it('refuses a WebSocket upgrade with a bad bearer token whose auth.failure cannot be recorded: 503, not 401', async () => {
    refused.add('auth.failure');
    const handshakes = h.upstream.handshakes.length;
    const answer = await refusedUpgrade('/app/live', { authorization: 'Bearer not.a.token' });
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('5');
    expect(h.upstream.handshakes.length).toBe(handshakes);
  });
});
