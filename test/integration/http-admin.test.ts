import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { METRIC_NAMES, startAdminServer } from '../../src/proxy/http/index.js';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

/**
 * Makes the audit directory unwritable even for root: `chattr +i` on the directory and its files
 * (writes through already open descriptors then fail with EPERM). Where the file system or the
 * capabilities do not allow that, the directory is removed instead, which the store detects as
 * an unlinked segment. Returns how to undo it, or `null` when it cannot be undone.
 */
function makeUnwritable(dir: string): (() => void) | null {
  const paths = [...readdirSync(dir).map((name) => join(dir, name)), dir];
  try {
    execFileSync('chattr', ['+i', ...paths], { stdio: 'ignore' });
    return () => execFileSync('chattr', ['-i', ...paths], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

let h: GatewayHarness;
let auth: Record<string, string>;

beforeAll(async () => {
  h = await startGatewayHarness();
  auth = { authorization: `Bearer ${await bearerFor(h.idp, ALICE)}` };
});

afterAll(async () => {
  await h?.close();
});

describe('admin listener', () => {
  it('answers /healthz and /readyz with each check named', async () => {
    const health = await fetch(`${h.admin.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${h.admin.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: {
        config: { ok: true, detail: h.config.source.file },
        idp: { ok: true, detail: h.idp.issuer },
        audit: { ok: true, detail: 'ready' },
      },
    });
  });

  it('refuses to start on an address already in use, with TG_ERR_LISTEN', async () => {
    const taken = `${h.admin.address.host}:${h.admin.address.port}`;
    await expect(startAdminServer({ listen: taken, registry: new Registry(), readiness: () => [] })).rejects.toMatchObject({ code: 'TG_ERR_LISTEN', details: { listen: taken } });
  });

  it('exposes the gateway metrics in Prometheus format', async () => {
    await sendRequest(h.url, '/app/metrics-probe', { headers: auth });
    await sendRequest(h.url, '/app/admin/x', { headers: auth });
    await sendRequest(h.url, '/app/x', { headers: { authorization: 'Bearer bogus' } });
    const response = await fetch(`${h.admin.url}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    for (const name of Object.values(METRIC_NAMES)) expect(text).toContain(`# TYPE ${name} `);
    expect(text).toMatch(/tollgate_http_requests_total\{resource="app",decision="allow",status="200"\} [1-9]/);
    expect(text).toMatch(/tollgate_http_requests_total\{resource="app",decision="deny",status="403"\} [1-9]/);
    expect(text).toMatch(/tollgate_audit_append_duration_seconds_count\{kind="http.request"\} [1-9]/);
    expect(text).toMatch(/tollgate_auth_failures_total\{method="bearer",reason="malformed"\} 1/);
    expect(text).toMatch(/tollgate_http_open_connections \d/);
  });
});

describe('when the audit log cannot take records', () => {
  it('answers 503 with Retry-After, forwards nothing, reports not ready, and recovers when the disk does', async () => {
    expect((await sendRequest(h.url, '/app/before', { headers: auth })).status).toBe(200);
    const restore = makeUnwritable(h.auditDir);
    try {
      const before = h.upstream.requests.length;
      const refused = await sendRequest(h.url, '/app/during', { headers: auth });
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(JSON.parse(refused.body)).toMatchObject({ error: 'audit_unavailable', request_id: refused.headers['x-request-id'] });
      const page = await sendRequest(h.url, '/app/during', { headers: { ...auth, accept: 'text/html' } });
      expect(page.status).toBe(503);
      expect((await sendRequest(h.url, '/app/upload', { method: 'POST', headers: auth, body: 'x'.repeat(10_000) })).status).toBe(503);
      expect(h.upstream.requests.length).toBe(before);

      const ready = await fetch(`${h.admin.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not-ready', checks: { audit: { ok: false, detail: expect.stringMatching(/^degraded/) } } });
    } finally {
      restore?.();
    }
    if (restore === null) return;
    await expect.poll(async () => (await sendRequest(h.url, '/app/after', { headers: auth })).status, { timeout: 10_000, interval: 100 }).toBe(200);
    const seen = h.upstream.requests.filter((request) => request.url === '/app/after');
    for (const request of seen) {
      expect(h.records().filter((record) => record.kind === 'http.request' && record.request_id === request.headers['x-tollgate-request-id'])).toHaveLength(1);
    }
  });
});

describe('shutdown', () => {
  it('lets in-flight requests finish and records them, then refuses new connections', async () => {
    const slow = sendRequest(h.url, '/app/slow/300', { headers: auth });
    await expect.poll(() => h.upstream.requests.some((request) => request.url === '/app/slow/300')).toBe(true);
    await h.gateway.close();
    const response = await slow;
    expect(response.status).toBe(200);
    expect(response.body).toBe('slow');
    const requestId = String(response.headers['x-request-id']);
    expect(h.records().filter((record) => record.request_id === requestId).map((record) => record.kind)).toEqual(['http.request', 'http.response']);
    await expect(sendRequest(h.url, '/app/x', { headers: auth })).rejects.toThrow(/ECONNREFUSED/);
  });
});
