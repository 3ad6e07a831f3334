/**
 * `tollgate serve` stopped with SIGTERM while a request is on its way (real child process, real
 * upstream, bearer token from a real IdP): new connections are refused at once, the request in
 * flight is still answered when its upstream answers afterwards, the process exits 0, and the log it leaves verifies with a final checkpoint that
 * covers every record, the `gateway.stop` record included.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSignerKey } from '../../src/audit/index.js';
import { runTollgate } from '../helpers/cli.js';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, CLIENT_SECRET, bearerFor, readAuditRecords } from '../helpers/http-gateway.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { auditYaml, engineersYaml, httpResourceYaml, identityYaml, serveEnv, serverYaml, startServeProcess, type ServeProcess } from '../helpers/serve-process.js';

/** Answers the held `/app/slow` request: called once the gateway is stopping. */
let release: () => void = () => undefined;

let idp: TestIdp;
let upstream: Server;
let dir: string;
let gateway: ServeProcess | undefined;
const seen: string[] = [];
const keys = generateSignerKey('test.tollgate');
const env = { ...serveEnv('serve-drain'), AUDIT_KEY: keys.signerKey };

beforeAll(async () => {
  idp = await startOidcIdp({ clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1:8080/_tollgate/callback'] }], users: [ALICE] });
  upstream = createServer((req, res) => {
    seen.push(req.url ?? '');
    const answer = (): void => void res.writeHead(200, { 'content-type': 'text/plain' }).end(`answered ${req.url ?? ''}`);
    if (req.url === '/app/slow') release = answer;
    else answer();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  dir = mkdtempSync(join(tmpdir(), 'tollgate-serve-drain-'));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  writeFileSync(
    join(dir, 'tollgate.yaml'),
    serverYaml() + identityYaml(idp.issuer) + 'resources:\n' + httpResourceYaml('app', upstreamUrl) + engineersYaml(['app']) + auditYaml('test.tollgate/serve-drain'),
  );
  gateway = await startServeProcess(dir, env);
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => (upstream === undefined ? resolve() : upstream.close(() => resolve())));
  await idp?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('tollgate serve on SIGTERM', () => {
  it('answers the request in flight, then exits 0 with a final checkpoint over every record', async () => {
    const served = gateway!;
    const headers = { authorization: `Bearer ${await bearerFor(idp, ALICE)}` };
    expect((await sendRequest(served.httpBase, '/app/fast', { headers })).status).toBe(200);

    const inFlight = sendRequest(served.httpBase, '/app/slow', { headers });
    await expect.poll(() => seen.includes('/app/slow')).toBe(true);
    const stopped = served.stop();
    // Stopping: no new connections, while the request in flight still waits for its answer.
    await expect
      .poll(() => sendRequest(served.httpBase, '/app/fast', { headers }).then(() => 'accepted', (error: Error) => error.message), { timeout: 10_000 })
      .toMatch(/ECONNREFUSED/);
    release();
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.body).toBe('answered /app/slow');
    expect(await stopped).toBe(0);

    const audit = join(dir, 'audit');
    const records = readAuditRecords(audit);
    const slow = records.find((record) => record.kind === 'http.request' && record.data['path'] === '/app/slow');
    expect(records.filter((record) => record.request_id === slow?.request_id).map((record) => record.kind)).toEqual(['http.request', 'http.response']);
    expect(records.at(-1)?.kind).toBe('gateway.stop');
    // C2SP checkpoint body: origin, then the tree size.
    const size = Number(readFileSync(join(audit, 'checkpoint'), 'utf8').split('\n')[1]);
    expect(size).toBe(records.length);
    const verify = await runTollgate(['audit', 'verify', '--dir', audit, '--key', keys.verifierKey], { cwd: dir, env });
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
  }, 60_000);
});
