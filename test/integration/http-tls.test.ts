import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, bearerFor, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';

let h: GatewayHarness;
let dir: string;
let ca: string;

beforeAll(async () => {
  // A certificate made for this run only: never committed, valid for 127.0.0.1.
  dir = mkdtempSync(join(tmpdir(), 'tollgate-http-tls-'));
  const certFile = join(dir, 'gateway.crt');
  const keyFile = join(dir, 'gateway.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  ca = readFileSync(certFile, 'utf8');
  h = await startGatewayHarness({ tls: { certFile, keyFile } });
});

afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the gateway behind its own TLS listener', () => {
  it('serves HTTPS, tells the upstream the client used https, and issues assertions for the https origin', async () => {
    expect(h.url).toMatch(/^https:\/\//);
    const token = await bearerFor(h.idp, ALICE);
    const response = await sendRequest(h.url, '/app/secure', { headers: { authorization: `Bearer ${token}` }, ca });
    expect(response.status).toBe(200);
    const seen = h.upstream.byRequestId(String(response.headers['x-request-id']));
    expect(seen?.headers['x-forwarded-proto']).toBe('https');
    const jwksUrl = new URL('/.well-known/tollgate/jwks.json', h.url);
    const jwks = JSON.parse((await sendRequest(h.url, jwksUrl.pathname, { ca })).body) as JSONWebKeySet;
    expect(jwks.keys).toHaveLength(1);
    const { payload } = await jwtVerify(String(seen?.headers['x-tollgate-assertion']), createLocalJWKSet(jwks), { issuer: h.url, audience: 'app' });
    expect(payload.email).toBe('alice@example.com');
  });

  it('sets its cookies with the __Host- prefix and Secure', async () => {
    const response = await sendRequest(h.url, '/_tollgate/login?return_to=/app/', { ca });
    expect(response.status).toBe(302);
    const [cookie = ''] = response.headers['set-cookie'] ?? [];
    expect(cookie).toMatch(/^__Host-tollgate_session_login=v1\./);
    expect(cookie).toMatch(/; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
  });
});
