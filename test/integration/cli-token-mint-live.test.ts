/**
 * `tollgate token mint` against a running `tollgate serve` (real child processes): the gateway
 * holds the audit log, so the CLI has the gateway record `token.issued` through its admin
 * listener and prints the token only once that record is durable.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbTokens } from '../../src/identity/index.js';
import { MINT_RECORD_PATH, MINT_RECORD_PROOF_HEADER } from '../../src/proxy/http/index.js';
import { runTollgate } from '../helpers/cli.js';
import { ALICE, CLIENT_SECRET, freePort } from '../helpers/http-gateway.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { auditYaml, engineersYaml, httpResourceYaml, identityYaml, serveEnv, serverYaml, startServeProcess } from '../helpers/serve-process.js';


let idp: TestIdp;
let root: string;
const env = serveEnv('live-mint');
const tokens = new DbTokens({ signingKey: env.DB_TOKEN_KEY, ttlMs: 3_600_000, maxTtlMs: 43_200_000 }, { now: () => Date.now() });

function configText(adminPort: number): string {
  return (
    serverYaml({ admin: `127.0.0.1:${adminPort}` }) +
    identityYaml(idp.issuer) +
    'resources:\n' +
    httpResourceYaml('app', 'http://127.0.0.1:1') +
    engineersYaml(['app']) +
    auditYaml('test.tollgate/live-mint', '  append_timeout: 1s\n')
  );
}

/** A `tollgate serve` child in its own directory, with `tollgate.yaml` there. */
interface Served {
  readonly dir: string;
  readonly adminUrl: string;
  stop(): Promise<number | null>;
}

async function serve(name: string): Promise<Served> {
  const dir = join(root, name);
  mkdirSync(dir);
  const adminPort = await freePort();
  writeFileSync(join(dir, 'tollgate.yaml'), configText(adminPort));
  const gateway = await startServeProcess(dir, env);
  const stop = (): Promise<number | null> => gateway.stop();
  served.push(stop);
  return { dir, adminUrl: `http://127.0.0.1:${adminPort}`, stop };
}

const served: (() => Promise<number | null>)[] = [];

function mint(dir: string, args: readonly string[] = [], extraEnv: Record<string, string> = {}) {
  return runTollgate(['token', 'mint', '--config', 'tollgate.yaml', '--user', 'alice@example.com', '--group', 'engineering', ...args], {
    cwd: dir,
    env: { ...env, ...extraEnv },
  });
}

async function tokenIssuedRecords(dir: string): Promise<Record<string, unknown>[]> {
  const query = await runTollgate(['audit', 'query', '--dir', 'audit', '--json'], { cwd: dir });
  expect(query.code, query.stderr).toBe(0);
  return query.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => record['kind'] === 'token.issued');
}

/** Posts a record request as the CLI does, proved with the gateway's own key. */
function postRecord(adminUrl: string, request: unknown): Promise<Response> {
  const body = JSON.stringify(request);
  return fetch(`${adminUrl}${MINT_RECORD_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', [MINT_RECORD_PROOF_HEADER]: tokens.proveKeyHolder(body) }, body });
}

beforeAll(async () => {
  idp = await startOidcIdp({ clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1:8080/_tollgate/callback'] }], users: [ALICE] });
  root = mkdtempSync(join(tmpdir(), 'tollgate-live-mint-'));
}, 60_000);

afterAll(async () => {
  for (const stop of served.splice(0)) await stop();
  await idp?.close();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

describe('tollgate token mint while tollgate serve runs', () => {
  let gateway: Served;
  let minted = '';

  beforeAll(async () => {
    gateway = await serve('running');
  }, 60_000);

  it('has the gateway record token.issued, then prints the token alone on stdout', async () => {
    const run = await mint(gateway.dir, ['--ttl', '15m', '--reason', 'nightly export job']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^tgdb_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    minted = run.stdout.trim();
    const verified = tokens.verifyDbToken(minted);
    expect(verified.ok && verified.principal).toEqual({ subject: 'alice@example.com', email: 'alice@example.com', groups: ['engineering'] });
    expect(run.stderr).toMatch(/recorded by the running gateway as audit seq \d+/);
  });

  it('refuses to record the same token again, or a token signed with another key', async () => {
    const verified = tokens.verifyDbToken(minted);
    if (!verified.ok) throw new Error(verified.reason);
    const facts = {
      token_id: verified.tokenId,
      principal: verified.principal,
      issued_at: new Date(verified.issuedAt).toISOString(),
      expires_at: new Date(verified.expiresAt).toISOString(),
    };
    const replay = await postRecord(gateway.adminUrl, { ...facts, minted_by: { os_user: 'x', host: 'y', pid: 1 } });
    expect(replay.status).toBe(403);
    expect(await replay.json()).toMatchObject({ error: 'replayed' });

    const run = await mint(gateway.dir, [], { DB_TOKEN_KEY: 'some-other-db-token-key-0123456789abcdef' });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('TG_ERR_MINT_REFUSED');
    expect(run.stderr).toContain("identity.db_tokens.signing_key differs from the running gateway's");
  });

  it("refuses, printing nothing, when another gateway answers on the config's admin address", async () => {
    // Same key and log id, another process: its record would be in its own log, not this one.
    const second = await serve('second');
    const elsewhere = join(gateway.dir, 'pointing-at-second');
    mkdirSync(elsewhere);
    const port = Number(new URL(second.adminUrl).port);
    writeFileSync(join(elsewhere, 'tollgate.yaml'), configText(port).replace('dir: ./audit', `dir: ${join(gateway.dir, 'audit')}`));
    const run = await mint(elsewhere);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('TG_ERR_MINT_REFUSED');
    expect(run.stderr).toContain(`is not the one holding ${join(gateway.dir, 'audit')}`);
    await second.stop();
  });

  it('sends the admin listener the token\'s facts with a key-holder proof, never the token', async () => {
    // A stand-in listener on the config's admin address, while the real gateway holds the log.
    const seen: { proof: string | undefined; body: string }[] = [];
    const capture = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const proof = req.headers[MINT_RECORD_PROOF_HEADER];
        seen.push({ proof: typeof proof === 'string' ? proof : undefined, body });
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"busy","message":"stand-in"}');
      });
    });
    await new Promise<void>((resolve) => capture.listen(0, '127.0.0.1', resolve));
    try {
      const elsewhere = join(gateway.dir, 'capturing');
      mkdirSync(elsewhere);
      writeFileSync(join(elsewhere, 'tollgate.yaml'), configText((capture.address() as AddressInfo).port).replace('dir: ./audit', `dir: ${join(gateway.dir, 'audit')}`));
      const run = await mint(elsewhere, ['--reason', 'captured']);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
    } finally {
      await new Promise((resolve) => capture.close(resolve));
    }
    expect(seen).toHaveLength(1);
    const [request] = seen;
    expect(request?.body).not.toContain('tgdb_');
    expect(JSON.parse(request?.body ?? '{}')).toMatchObject({ principal: { subject: 'alice@example.com', groups: ['engineering'] }, reason: 'captured' });
    expect(tokens.verifyKeyHolder(request?.body ?? '', request?.proof ?? '')).toBe(true);
  });

  it('fails with TG_ERR_AUDIT_LOCKED naming what it tried when the admin listener is not where the config says', async () => {
    const elsewhere = join(gateway.dir, 'elsewhere');
    mkdirSync(elsewhere);
    const port = await freePort();
    writeFileSync(join(elsewhere, 'tollgate.yaml'), configText(port).replace('dir: ./audit', `dir: ${join(gateway.dir, 'audit')}`));
    const run = await mint(elsewhere);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('TG_ERR_AUDIT_LOCKED');
    expect(run.stderr).toContain(`http://127.0.0.1:${port}${MINT_RECORD_PATH} did not answer (ECONNREFUSED)`);
    expect(run.stderr).toContain('make server.admin.listen in this config its admin address');
  });

  it('leaves exactly one token.issued for the minted token in the log once the gateway has stopped', async () => {
    expect(await gateway.stop()).toBe(0);
    const verified = tokens.verifyDbToken(minted);
    if (!verified.ok) throw new Error(verified.reason);
    const records = await tokenIssuedRecords(gateway.dir);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      principal: { subject: 'alice@example.com', email: 'alice@example.com', groups: ['engineering'] },
      data: {
        method: 'cli',
        via: 'admin-listener',
        remote: '127.0.0.1',
        token_id: verified.tokenId,
        reason: 'nightly export job',
        issued_at: new Date(verified.issuedAt).toISOString(),
        expires_at: new Date(verified.expiresAt).toISOString(),
        minted_by: { pid: expect.any(Number), host: expect.any(String), os_user: expect.any(String) },
      },
    });
  });

  it('still mints offline, appending token.issued itself, once the gateway has stopped, several at once', async () => {
    // Each offline mint holds the audit log for a moment; the others wait for it rather than fail.
    const runs = await Promise.all([mint(gateway.dir, ['--reason', 'offline']), mint(gateway.dir, ['--reason', 'offline too']), mint(gateway.dir, ['--reason', 'offline three'])]);
    for (const other of runs) expect(other.code, other.stderr).toBe(0);
    const run = runs[0]!;
    const verified = tokens.verifyDbToken(run.stdout.trim());
    if (!verified.ok) throw new Error(verified.reason);
    const records = await tokenIssuedRecords(gateway.dir);
    expect(records).toHaveLength(4);
    const offline = records.find((record) => (record['data'] as Record<string, unknown>)['token_id'] === verified.tokenId);
    expect(offline).toMatchObject({ data: { method: 'cli', reason: 'offline' } });
    expect((offline?.['data'] as Record<string, unknown>)['via']).toBeUndefined();
  });
});

describe('tollgate token mint while the running gateway cannot write its audit log', () => {
  it('prints no token and exits non-zero with TG_ERR_AUDIT_UNAVAILABLE', async () => {
    const gateway = await serve('failing');
    const auditDir = join(gateway.dir, 'audit');
    // The segments only: the lock file and the directory stay as they are, so the CLI still finds
    // the gateway's lock, and the gateway's writes through its open descriptors fail with EPERM.
    const segments = readdirSync(auditDir).filter((name) => name.endsWith('.seg')).map((name) => join(auditDir, name));
    let restore: (() => void) | null = null;
    try {
      execFileSync('chattr', ['+i', ...segments], { stdio: 'ignore' });
      restore = () => execFileSync('chattr', ['-i', ...segments], { stdio: 'ignore' });
    } catch {
      // Without chattr support, an unlinked segment is detected by the store the same way.
      for (const segment of segments) rmSync(segment);
    }
    try {
      const run = await mint(gateway.dir);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('TG_ERR_AUDIT_UNAVAILABLE');
      expect(run.stderr).toContain('no token was printed');
    } finally {
      restore?.();
    }
    await gateway.stop();
  }, 60_000);
});
