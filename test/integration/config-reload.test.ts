/**
 * `tollgate serve` as a real child process in front of a real PostgreSQL, a real IdP and a real
 * upstream, reloaded with SIGHUP while a psql-like session and an HTTP keep-alive connection stay
 * open: revoked grants deny their next statement and request, broken or restart-only edits leave
 * the old config in force, and each applied reload is on the audit record.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request, type ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../src/config/index.js';
import { createDbTokens } from '../../src/identity/index.js';
import { ALICE, CLIENT_SECRET, TestUpstream, bearerFor, readAuditRecords } from '../helpers/http-gateway.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { LOGIN_PASSWORDS, startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { httpResourceYaml, identityYaml, serveEnv, startServeProcess, type LogLine, type ServeProcess } from '../helpers/serve-process.js';

const ORDERS = 'SELECT id FROM public.orders ORDER BY id';

interface Edit {
  readonly grant?: boolean;
  readonly statements?: string;
  readonly httpListen?: string;
  readonly appUpstream?: string;
}


let postgresServer: TestPostgres;
let idp: TestIdp;
let upstream: TestUpstream;
let moved: TestUpstream;
let dir: string;
let auditDir: string;
let configFile: string;
let env: Record<string, string>;
let gateway: ServeProcess;
let pgPort: number;
let psqlSession: pg.Client;
let agent: Agent;
let bearer: string;

function configText(edit: Edit = {}): string {
  return `
server:
  public_url: http://127.0.0.1:8080
  http:
    listen: ${edit.httpListen ?? '127.0.0.1:0'}
  postgres:
    listen: 127.0.0.1:0
    allow_cleartext_on_loopback: true
  admin:
    listen: 127.0.0.1:0
${identityYaml(idp.issuer)}resources:
${httpResourceYaml('app', edit.appUpstream ?? upstream.origin)}  - name: shop
    kind: postgres
    upstream:
      host: 127.0.0.1
      port: ${postgresServer.port}
      database: shop
      tls: disable
    logins:
      - name: reader
        user: shop_reader
        password: \${env:READER_PASSWORD}
roles:
  engineer:
    allow:
      - resource: app
        methods: [GET]
        paths: ["/app/**"]
      - resource: shop
        logins: [reader]
        statements: [${edit.statements ?? 'read'}]
grants:
${edit.grant === false ? '  []' : '  - role: engineer\n    groups: [engineering]'}
audit:
  dir: ${auditDir}
  log_id: test.tollgate/reload
  signing_key: \${env:AUDIT_KEY}
`;
}

/** Replaces the config file the way editors and config management do: a new file renamed over it. */
function writeConfig(edit: Edit = {}): string {
  const text = configText(edit);
  writeFileSync(`${configFile}.new`, text);
  renameSync(`${configFile}.new`, configFile);
  return createHash('sha256').update(text).digest('hex');
}

/** Sends SIGHUP and waits for the reload's one outcome line. */
async function sighup(): Promise<LogLine> {
  const from = gateway.logs.length;
  gateway.child.kill('SIGHUP');
  return gateway.waitForLog(from, (line) => line['component'] === 'config-reload' && line['trigger'] === 'SIGHUP');
}

/** GET on the one keep-alive connection of `agent`: the status and the socket it went over. */
function getApp(path: string): Promise<{ status: number; socket: Socket; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(`${gateway.httpBase}${path}`, { agent, headers: { authorization: `Bearer ${bearer}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket as Socket, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function sqlState(run: Promise<unknown>): Promise<string> {
  try {
    await run;
    return 'ok';
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
}

beforeAll(async () => {
  postgresServer = await startTestPostgres();
  idp = await startOidcIdp({ clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1:8080/_tollgate/callback'] }], users: [ALICE] });
  upstream = new TestUpstream();
  await upstream.listen();
  moved = new TestUpstream();
  await moved.listen();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-it-'));
  auditDir = join(dir, 'audit');
  configFile = join(dir, 'tollgate.yaml');
  env = { ...serveEnv('reload'), READER_PASSWORD: LOGIN_PASSWORDS.shop_reader };
  writeConfig();

  gateway = await startServeProcess(dir, env);
  const pgListening = await gateway.waitForLog(0, (line) => line.msg === 'postgres gateway listening');
  pgPort = Number(String(pgListening['listen']).split(':').at(-1));

  const config = loadConfigOrThrow({ file: configFile, text: configText(), env, readFile: (path) => readFileSync(path, 'utf8') });
  const issued = createDbTokens({ publicUrl: config.server.public_url, identity: config.identity }).issueDbToken({ subject: 'sub-alice', email: ALICE.email, groups: ['engineering'] });
  if (!issued.ok) throw new Error(`token not issued: ${issued.reason}`);
  psqlSession = new pg.Client({ host: '127.0.0.1', port: pgPort, user: ALICE.email, database: 'shop', password: issued.token });
  await psqlSession.connect();
  agent = new Agent({ keepAlive: true, maxSockets: 1 });
  bearer = await bearerFor(idp, ALICE);
}, 120_000);

afterAll(async () => {
  await psqlSession?.end().catch(() => undefined);
  agent?.destroy();
  await gateway?.stop();
  await upstream?.close();
  await moved?.close();
  await idp?.close();
  await postgresServer?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('tollgate serve: config reload with SIGHUP', () => {
  let firstSocket: Socket;

  it('serves the open session and keep-alive connection under the config it started with', async () => {
    const rows = await psqlSession.query(ORDERS);
    expect(rows.rows.map((row: { id: number }) => row.id)).toEqual([1, 2, 3]);
    const prepared = await psqlSession.query({ name: 'orders', text: ORDERS });
    expect(prepared.rowCount).toBe(3);
    const first = await getApp('/app/hello');
    expect(first.status).toBe(200);
    firstSocket = first.socket;
  });

  it('denies the next statement of the open session after a revoked grant, and keeps the session', async () => {
    const sha256 = writeConfig({ grant: false });
    const outcome = await sighup();
    expect(outcome).toMatchObject({ msg: 'config reloaded (grants changed)', sha256 });

    expect(await sqlState(psqlSession.query(ORDERS))).toBe('42501');
    // The statement prepared while the grant held is decided again, not by its old decision.
    expect(await sqlState(psqlSession.query({ name: 'orders', text: ORDERS }))).toBe('42501');
    // A denial is an ErrorResponse in a live session: the same connection answers again.
    expect(await sqlState(psqlSession.query('SELECT 1'))).toBe('42501');
  });

  it('decides the next request on the open keep-alive connection with the new policy', async () => {
    const after = await getApp('/app/hello');
    expect(after.status).toBe(403);
    expect(after.reused).toBe(true);
    expect(after.socket).toBe(firstSocket);
  });

  it('keeps the old config in force when the file is broken, and logs the error with file:line', async () => {
    writeConfig({ grant: true, statements: 'reed' });
    const outcome = await sighup();
    expect(outcome['refusal']).toBe('invalid');
    expect(outcome['errors']).toEqual([expect.stringMatching(/^tollgate\.yaml:\d+ roles\.engineer\.allow\[1\]\.statements\[0\]: /)]);
    expect(outcome.msg).toContain('the old config stays in force');
    expect(await sqlState(psqlSession.query(ORDERS))).toBe('42501');
  });

  it('refuses a change to server.http.listen whole, naming the key', async () => {
    writeConfig({ grant: true, httpListen: '127.0.0.1:1' });
    const outcome = await sighup();
    expect(outcome['refusal']).toBe('restart-required');
    expect(outcome['errors']).toEqual([expect.stringContaining('server.http.listen changed; restart to apply')]);
    // The grant in the same edit was not applied either.
    expect(await sqlState(psqlSession.query(ORDERS))).toBe('42501');
    expect((await getApp('/app/hello')).status).toBe(403);
  });

  it('allows the same session and connection again once the grant is back', async () => {
    const sha256 = writeConfig({ grant: true });
    const outcome = await sighup();
    expect(outcome).toMatchObject({ msg: 'config reloaded (grants changed)', sha256 });
    expect((await psqlSession.query(ORDERS)).rowCount).toBe(3);
    expect((await psqlSession.query({ name: 'orders', text: ORDERS })).rowCount).toBe(3);
    const again = await getApp('/app/hello');
    expect(again).toMatchObject({ status: 200, reused: true });
    expect(again.socket).toBe(firstSocket);
  });

  it('sends the next request on the same client connection to an upstream the reload moved', async () => {
    const before = upstream.requests.length;
    writeConfig({ grant: true, appUpstream: moved.origin });
    expect(await sighup()).toMatchObject({ msg: 'config reloaded (resources changed)' });
    const next = await getApp('/app/moved');
    expect(next).toMatchObject({ status: 200, reused: true });
    expect(next.socket).toBe(firstSocket);
    expect(moved.requests.map((req) => req.url)).toEqual(['/app/moved']);
    expect(upstream.requests).toHaveLength(before);
    // The open Postgres session is untouched by a change to another resource.
    expect((await psqlSession.query(ORDERS)).rowCount).toBe(3);
  });

  it('records config.loaded for the start and each applied reload, before the decisions it changed', async () => {
    const records = readAuditRecords(auditDir);
    const loaded = records.filter((record) => record.kind === 'config.loaded');
    expect(loaded.map((record) => [record.data['reload'], record.data['changed'] ?? null])).toEqual([
      [false, null],
      [true, ['grants']],
      [true, ['grants']],
      [true, ['resources']],
    ]);
    expect(loaded.every((record) => typeof record.data['sha256'] === 'string' && /^[0-9a-f]{64}$/.test(record.data['sha256']))).toBe(true);
    const revoked = loaded[1]!.seq;
    const firstDenial = records.find((record) => record.kind === 'pg.query' && record.decision?.effect === 'deny');
    expect(firstDenial?.seq).toBeGreaterThan(revoked);
    // One session all along: no second pg.connect, no pg.disconnect yet.
    expect(records.filter((record) => record.kind === 'pg.connect')).toHaveLength(1);
    expect(records.filter((record) => record.kind === 'pg.disconnect')).toHaveLength(0);
  });

  it('still stops cleanly on SIGTERM', async () => {
    await psqlSession.end();
    expect(await gateway.stop()).toBe(0);
  });
});
