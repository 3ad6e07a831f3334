/**
 * `tollgate serve` as a child process, started while its IdP's port refuses connections: it
 * keeps running, is not ready, and turns ready once the IdP listens there.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTollgate } from '../helpers/cli.js';
import { ALICE, CLIENT_SECRET, TestUpstream, freePort } from '../helpers/http-gateway.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { auditYaml, engineersYaml, httpResourceYaml, identityYaml, serveEnv, serverYaml, startServeProcess, type ServeProcess } from '../helpers/serve-process.js';

let dir: string | undefined;
let wrongDir: string | undefined;
let upstream: TestUpstream | undefined;
let idp: TestIdp | undefined;
let served: ServeProcess | undefined;

afterAll(async () => {
  await served?.stop();
  await idp?.close();
  await upstream?.close();
  for (const path of [dir, wrongDir]) if (path !== undefined) rmSync(path, { recursive: true, force: true });
});

async function readyStatus(adminUrl: string): Promise<number> {
  return (await fetch(`${adminUrl}/readyz`)).status;
}

describe('tollgate serve with an IdP that is down at start', () => {
  it('starts, stays up while not ready, and turns ready once the IdP listens', async () => {
    const idpPort = await freePort();
    const issuer = `http://127.0.0.1:${idpPort}`;
    upstream = new TestUpstream();
    await upstream.listen();
    dir = mkdtempSync(join(tmpdir(), 'tollgate-serve-idp-'));
    writeFileSync(
      join(dir, 'tollgate.yaml'),
      serverYaml() + identityYaml(issuer) + 'resources:\n' + httpResourceYaml('app', upstream.origin) + engineersYaml(['app']) + auditYaml('test.tollgate/serve-idp'),
    );
    served = await startServeProcess(dir, { ...serveEnv('serve-idp'), CLIENT_SECRET });
    const serving = served.logs.find((line) => line.msg?.startsWith('tollgate serving ') === true);
    const adminUrl = /\(admin (\S+)\)/.exec(serving?.msg ?? '')?.[1] ?? '';
    expect(adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await readyStatus(adminUrl)).toBe(503);
    const warned = served.logs.find((line) => line.level === 40 && typeof line.msg === 'string' && line.msg.includes('not discovered'));
    expect(warned).toMatchObject({ issuer, error: expect.stringMatching(/ECONNREFUSED/) });

    const from = served.logs.length;
    idp = await startOidcIdp({ clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1:8080/_tollgate/callback'] }], users: [ALICE], port: idpPort });
    await served.waitForLog(from, (line) => line.msg?.startsWith('OIDC issuer discovered') === true);
    expect(await readyStatus(adminUrl)).toBe(200);
    expect(served.child.exitCode).toBeNull();
    expect(await served.stop()).toBe(0);
  }, 60_000);

  it('exits 1 with TG_ERR_IDENTITY_DISCOVERY at once when identity.issuer names a path the IdP does not serve', async () => {
    idp ??= await startOidcIdp({ clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1:8080/_tollgate/callback'] }], users: [ALICE] });
    wrongDir = mkdtempSync(join(tmpdir(), 'tollgate-serve-idp-typo-'));
    writeFileSync(
      join(wrongDir, 'tollgate.yaml'),
      serverYaml() + identityYaml(`${idp.issuer}/realms/typo`) + 'resources:\n' + httpResourceYaml('app', 'http://127.0.0.1:9') + engineersYaml(['app']) + auditYaml('test.tollgate/serve-idp-typo'),
    );
    const run = await runTollgate(['serve', '--config', 'tollgate.yaml'], { cwd: wrongDir, env: { ...serveEnv('serve-idp-typo'), CLIENT_SECRET } });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/TG_ERR_IDENTITY_DISCOVERY/);
    expect(run.stderr).toMatch(/HTTP 404/);
  }, 60_000);
});
