import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { openFileStore, parseSignerKey, parseVerifierKey, verifyLog } from '../../src/audit/index.js';
import { loadConfig, type PostgresResourceConfig, type TollgateConfig } from '../../src/config/index.js';
import { compilePolicy, decide } from '../../src/policy/index.js';
import { JWKS_PATH } from '../../src/proxy/http/index.js';
import {
  DEMO_PORT_COUNT,
  DEMO_SECRET_FILES,
  SHOP_TABLES,
  demoPorts,
  findBusyPorts,
  runningPostmasterPid,
  startDemoStack,
  type DemoStack,
} from '../../src/demo/index.js';
import { TestBrowser } from '../helpers/oidc-idp.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const templateFile = join(repoRoot, 'config', 'demo.yaml');

/** A base N where N..N+5 are all free on 127.0.0.1 right now. */
async function freePortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    if ((await findBusyPorts(demoPorts(base))).length === 0) return base;
  }
  throw new Error(`no ${DEMO_PORT_COUNT} consecutive free ports found`);
}

function shopLogin(config: TollgateConfig, name: 'reader' | 'writer'): { user: string; password: string; port: number } {
  const shop = config.resources.find((resource): resource is PostgresResourceConfig => resource.name === 'shop' && resource.kind === 'postgres');
  const login = shop?.logins.find((candidate) => candidate.name === name);
  if (shop === undefined || login === undefined) throw new Error(`no shop login ${name}`);
  return { user: login.user, password: login.password, port: shop.upstream.port };
}

async function withClient<T>(config: TollgateConfig, name: 'reader' | 'writer', work: (client: pg.Client) => Promise<T>): Promise<T> {
  const login = shopLogin(config, name);
  const client = new pg.Client({ host: '127.0.0.1', port: login.port, database: 'shop', user: login.user, password: login.password });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function sqlState(run: Promise<unknown>): Promise<string | undefined> {
  try {
    await run;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function readSecret(dataDir: string, name: keyof typeof DEMO_SECRET_FILES): string {
  return readFileSync(join(dataDir, 'secrets', DEMO_SECRET_FILES[name]), 'utf8');
}

async function tableCounts(config: TollgateConfig): Promise<Record<string, number>> {
  return withClient(config, 'reader', async (client) => {
    const counts: Record<string, number> = {};
    for (const table of SHOP_TABLES) counts[table] = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n);
    return counts;
  });
}

describe('the demo stack', () => {
  let root: string;
  let dataDir: string;
  let portBase: number;
  let stack: DemoStack;
  let insertedOrderId: number;
  let idpKid: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tollgate-demo-'));
    // Under root PostgreSQL runs as the `postgres` user, which must be able to enter the folder.
    chmodSync(root, 0o755);
    dataDir = join(root, 'data', 'demo');
    portBase = await freePortBase();
    stack = await startDemoStack({ dataDir, portBase });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it('lays its ports out from the base: web, postgres, admin, IdP, app, database', () => {
    expect(stack.ports).toEqual({ web: portBase, postgres: portBase + 1, admin: portBase + 2, idp: portBase + 3, app: portBase + 4, database: portBase + 5 });
    expect(stack.urls.web).toBe(`http://127.0.0.1:${portBase}`);
    expect(stack.urls.idp).toBe(`http://127.0.0.1:${portBase + 3}`);
    expect(stack.psqlCommand).toBe(`psql "host=127.0.0.1 port=${portBase + 1} dbname=shop user=alice@example.com sslmode=require"`);
    expect(stack.users.map((user) => [user.email, user.password, user.groups])).toEqual([
      ['alice@example.com', 'alice', ['engineering']],
      ['bob@example.com', 'bob', ['dba']],
      ['carol@example.com', 'carol', ['security']],
    ]);
  });

  it('keeps its secrets in 0600 files under a 0700 folder', () => {
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).toBe(0o700);
    for (const file of Object.values(DEMO_SECRET_FILES)) {
      expect(statSync(join(dataDir, 'secrets', file)).mode & 0o777, file).toBe(0o600);
    }
    expect(readSecret(dataDir, 'postgresTlsCert')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(parseSignerKey(readSecret(dataDir, 'auditSigningKey').trim()).verifierKey).toBe(readSecret(dataDir, 'auditVerifierKey').trim());
  });

  it('runs an IdP whose discovery answers and whose login page lists the demo users', async () => {
    const discovery = (await (await fetch(`${stack.urls.idp}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery['issuer']).toBe(stack.urls.idp);
    expect(discovery['scopes_supported']).toEqual(expect.arrayContaining(['openid', 'email', 'profile', 'groups']));
    expect(discovery['code_challenge_methods_supported']).toEqual(['S256']);
    expect(discovery['grant_types_supported']).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
    expect(typeof discovery['end_session_endpoint']).toBe('string');

    const { verifier, challenge } = pkcePair();
    const redirectUri = `${stack.urls.web}/_tollgate/callback`;
    const authorize = new URL(String(discovery['authorization_endpoint']));
    for (const [key, value] of Object.entries({
      client_id: stack.config.identity.client_id,
      response_type: 'code',
      scope: 'openid email profile groups',
      redirect_uri: redirectUri,
      state: 'state-1',
      nonce: 'nonce-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    })) {
      authorize.searchParams.set(key, value);
    }
    const browser = new TestBrowser();
    const offIdp = (url: URL) => url.origin !== stack.urls.idp;
    const loginPage = await browser.follow(authorize, { stopWhen: offIdp });
    expect(loginPage.status).toBe(200);
    expect(loginPage.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(loginPage.body).toContain('<label for="login">');
    expect(loginPage.body).toContain('<label for="password">');
    for (const user of stack.users) expect(loginPage.body).toContain(user.email);

    const refused = await browser.submitForm(loginPage, { login: 'alice', password: 'wrong' });
    expect(refused.status).toBe(401);
    expect(refused.body).toContain('role="alert"');

    const signedIn = await browser.followFrom(await browser.submitForm(loginPage, { login: 'alice', password: 'alice' }), { stopWhen: offIdp });
    const callback = signedIn.stoppedAt;
    expect(callback?.origin + (callback?.pathname ?? '')).toBe(redirectUri);
    const code = callback?.searchParams.get('code');
    expect(code).toBeTruthy();

    const basic = `Basic ${Buffer.from(`${stack.config.identity.client_id}:${stack.config.identity.client_secret ?? ''}`).toString('base64')}`;
    const tokenResponse = await fetch(String(discovery['token_endpoint']), {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: code ?? '', redirect_uri: redirectUri, code_verifier: verifier }),
    });
    expect(tokenResponse.status).toBe(200);
    const tokens = (await tokenResponse.json()) as { id_token: string; refresh_token?: string };
    const jwks = createRemoteJWKSet(new URL(String(discovery['jwks_uri'])));
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token, jwks, { issuer: stack.urls.idp, audience: stack.config.identity.client_id });
    expect(payload).toMatchObject({ email: 'alice@example.com', email_verified: true, groups: ['engineering'], nonce: 'nonce-1' });
    idpKid = protectedHeader.kid ?? '';
    expect(idpKid).not.toBe('');

    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await fetch(String(discovery['token_endpoint']), {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' }),
    });
    expect(refreshed.status).toBe(200);

    // RP-initiated logout: a confirmation page, then back to the registered post-logout URI.
    const endSession = new URL(String(discovery['end_session_endpoint']));
    endSession.searchParams.set('id_token_hint', tokens.id_token);
    endSession.searchParams.set('post_logout_redirect_uri', `${stack.urls.web}/`);
    const confirm = await browser.follow(endSession, { stopWhen: offIdp });
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Sign out?');
    const signedOut = await browser.followFrom(await browser.submitForm(confirm, { logout: 'yes' }), { stopWhen: offIdp });
    expect(signedOut.stoppedAt?.href).toBe(`${stack.urls.web}/`);
    // The IdP session is gone: a new authorization request asks for the password again.
    const again = await browser.follow(authorize, { stopWhen: offIdp });
    expect(again.body).toContain('name="password"');
  });

  it('seeds the shop database with related tables of realistic size', async () => {
    const counts = await tableCounts(stack.config);
    expect(counts['customers']).toBeGreaterThanOrEqual(50);
    expect(counts['orders']).toBeGreaterThanOrEqual(200);
    expect(counts['order_items']).toBeGreaterThan(counts['orders'] ?? 0);
    expect(counts['payments']).toBeGreaterThanOrEqual(150);
    await withClient(stack.config, 'reader', async (client) => {
      const foreignKeys = await client.query("SELECT count(*)::int AS n FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace");
      expect(foreignKeys.rows[0].n).toBeGreaterThanOrEqual(4);
      const mismatched = await client.query(
        'SELECT count(*)::int AS n FROM orders o WHERE o.total <> (SELECT sum(i.quantity * i.unit_price) FROM order_items i WHERE i.order_id = o.id)',
      );
      expect(mismatched.rows[0].n).toBe(0);
    });
  });

  it('gives shop_reader SELECT only', async () => {
    await withClient(stack.config, 'reader', async (client) => {
      expect((await client.query('SELECT id FROM customers ORDER BY id LIMIT 1')).rows).toEqual([{ id: '1' }]);
      expect(await sqlState(client.query("INSERT INTO customers (full_name, email, country, city, created_at) VALUES ('X', 'x@example.net', 'DE', 'Berlin', now())"))).toBe('42501');
      expect(await sqlState(client.query('UPDATE orders SET status = status'))).toBe('42501');
      expect(await sqlState(client.query('CREATE TABLE scratch (id int)'))).toBe('42501');
    });
  });

  it('gives shop_writer reads and writes but no DDL', async () => {
    await withClient(stack.config, 'writer', async (client) => {
      const inserted = await client.query<{ id: string }>("INSERT INTO orders (customer_id, status, total, ordered_at) VALUES (1, 'pending', 0, now()) RETURNING id");
      insertedOrderId = Number(inserted.rows[0]?.id);
      expect(insertedOrderId).toBeGreaterThan(200);
      expect(await sqlState(client.query('CREATE TABLE scratch (id int)'))).toBe('42501');
      expect(await sqlState(client.query('DROP TABLE payments'))).toBe('42501');
      expect(await sqlState(client.query('ALTER TABLE orders ADD COLUMN note text'))).toBe('42501');
      expect(await sqlState(client.query('TRUNCATE order_items'))).toBe('42501');
    });
  });

  describe('the demo app', () => {
    let jwksServer: Server;
    let signingKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

    beforeAll(async () => {
      // Stands in for the gateway at the public URL: publishes the JWKS the app verifies against.
      const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      signingKey = pair.privateKey;
      const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'test-gateway', alg: 'EdDSA', use: 'sig' };
      jwksServer = createServer((req, res) => {
        if (req.url === JWKS_PATH) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
        else res.writeHead(404).end();
      });
      await new Promise<void>((done) => jwksServer.listen(stack.ports.web, '127.0.0.1', done));
    });

    afterAll(async () => {
      await new Promise<void>((done) => jwksServer.close(() => done()));
    });

    const assertion = (audience: string, key = signingKey) =>
      new SignJWT({ email: 'alice@example.com', groups: ['engineering'] })
        .setProtectedHeader({ alg: 'EdDSA', kid: 'test-gateway' })
        .setIssuer(stack.urls.web)
        .setAudience(audience)
        .setSubject('demo-alice')
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(key);

    it('shows who the gateway says the visitor is, and whether the assertion verifies', async () => {
      const direct = await fetch(stack.urls.app);
      expect(direct.status).toBe(200);
      expect(direct.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(await direct.text()).toContain('this request did not come through the gateway');

      const headers = { 'x-tollgate-user': 'alice@example.com', 'x-tollgate-groups': 'engineering' };
      const page = await (await fetch(stack.urls.app, { headers: { ...headers, 'x-tollgate-assertion': await assertion('app') } })).text();
      expect(page).toContain('<code>alice@example.com</code>');
      expect(page).toContain('Verified');

      const whoami = async (token: string) =>
        (await (await fetch(`${stack.urls.app}api/whoami`, { headers: { ...headers, 'x-tollgate-assertion': token } })).json()) as { user: string; assertion: { status: string } };
      expect(await whoami(await assertion('app'))).toMatchObject({ user: 'alice@example.com', assertion: { status: 'verified' } });
      expect((await whoami(await assertion('shop'))).assertion.status).toBe('invalid');
      const forger = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      expect((await whoami(await assertion('app', forger.privateKey))).assertion.status).toBe('invalid');
    });

    it('serves a JSON orders API with GET and POST', async () => {
      const listed = (await (await fetch(`${stack.urls.app}api/orders`)).json()) as { orders: { item: string }[] };
      expect(Array.isArray(listed.orders)).toBe(true);
      const created = await fetch(`${stack.urls.app}api/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-tollgate-user': 'alice@example.com' },
        body: JSON.stringify({ item: 'Fountain pen', quantity: 2 }),
      });
      expect(created.status).toBe(201);
      expect(((await created.json()) as { order: unknown }).order).toMatchObject({ item: 'Fountain pen', quantity: 2, createdBy: 'alice@example.com' });
      const after = (await (await fetch(`${stack.urls.app}api/orders`)).json()) as { orders: { item: string }[] };
      expect(after.orders.at(-1)?.item).toBe('Fountain pen');

      const invalid = await fetch(`${stack.urls.app}api/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"quantity":0}' });
      expect(invalid.status).toBe(400);
      const wrongType = await fetch(`${stack.urls.app}api/orders`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
      expect(wrongType.status).toBe(415);
    });

    it('echoes WebSocket messages at /app/ws', async () => {
      const socket = new WebSocket(`ws://127.0.0.1:${stack.ports.app}/app/ws`);
      await new Promise<void>((done, fail) => {
        socket.once('open', () => done());
        socket.once('error', fail);
      });
      const echoed = new Promise<string>((done) => socket.once('message', (data, isBinary) => done(`${isBinary ? 'binary' : 'text'}:${String(data)}`)));
      socket.send('hello through the gateway');
      expect(await echoed).toBe('text:hello through the gateway');
      socket.close();

      const elsewhere = new WebSocket(`ws://127.0.0.1:${stack.ports.app}/app/other`);
      const refused = await new Promise<string>((done) => {
        elsewhere.once('unexpected-response', (_req, res) => done(String(res.statusCode)));
        elsewhere.once('error', (error) => done(error.message));
      });
      expect(refused).toContain('404');
    });
  });

  it('writes a config that validates, with this run\'s ports and data dir', () => {
    const { config } = stack;
    expect(stack.configFile).toBe(join(dataDir, 'tollgate.yaml'));
    expect(readFileSync(stack.configFile, 'utf8')).toBe(stack.configText);
    expect(config.server.http.listen).toBe(`127.0.0.1:${portBase}`);
    expect(config.server.postgres?.listen).toBe(`127.0.0.1:${portBase + 1}`);
    expect(config.server.postgres?.tls?.cert).toBe(readSecret(dataDir, 'postgresTlsCert'));
    expect(config.server.postgres?.allow_cleartext_on_loopback).toBe(false);
    expect(config.server.admin.listen).toBe(`127.0.0.1:${portBase + 2}`);
    expect(config.identity.issuer).toBe(`http://127.0.0.1:${portBase + 3}`);
    expect(config.resources.find((resource) => resource.name === 'app')).toMatchObject({ upstream: `http://127.0.0.1:${portBase + 4}`, strip_prefix: false });
    expect(shopLogin(config, 'reader')).toMatchObject({ user: 'shop_reader', port: portBase + 5, password: readSecret(dataDir, 'shopReaderPassword').trim() });
    expect(config.audit.dir).toBe(join(dataDir, 'audit'));
    expect(config.audit.signing_key).toBe(readSecret(dataDir, 'auditSigningKey').trim());
    // No secret value is written into the config file itself.
    expect(stack.configText).not.toContain(readSecret(dataDir, 'sessionKey').trim());

    const again = loadConfig({ file: stack.configFile, text: stack.configText, env: {}, readFile: (path) => readFileSync(path, 'utf8'), checkPolicy: () => [] });
    expect(again.ok ? [] : again.errors).toEqual([]);
  });

  it('ships config/demo.yaml as a valid config for the default data dir', () => {
    const templateData = resolve(dirname(templateFile), '../data/demo');
    const result = loadConfig({
      file: templateFile,
      text: readFileSync(templateFile, 'utf8'),
      env: {},
      // The files the first start creates under ./data/demo, taken from this run's data dir.
      readFile: (path) => readFileSync(join(dataDir, relative(templateData, path)), 'utf8'),
    });
    expect(result.ok ? [] : result.errors).toEqual([]);
    if (!result.ok) return;
    expect(result.config.server.http.listen).toBe('127.0.0.1:8080');
    expect(result.config.server.postgres?.listen).toBe('127.0.0.1:6432');
    expect(result.config.server.admin.listen).toBe('127.0.0.1:9090');
    expect(result.config.identity.issuer).toBe('http://127.0.0.1:9091');
  });

  it('grants what DESIGN.md says each demo user may do', () => {
    const policy = compilePolicy(stack.config.policy);
    const alice = { subject: 'demo-alice', email: 'alice@example.com', groups: ['engineering'] };
    const bob = { subject: 'demo-bob', email: 'bob@example.com', groups: ['dba'] };
    const carol = { subject: 'demo-carol', email: 'carol@example.com', groups: ['security'] };
    const http = (method: string) => ({ kind: 'http' as const, resource: 'app', method, path: '/app/api/orders' });
    const sql = (login: string, statementClass: 'read' | 'write' | 'ddl') => ({
      kind: 'sql' as const,
      resource: 'shop',
      login,
      statement: { class: statementClass, tables: ['public.orders'], functions: [] },
    });
    const audit = { kind: 'audit' as const, permission: 'view' as const };
    expect(decide(policy, alice, http('POST')).effect).toBe('allow');
    expect(decide(policy, alice, sql('reader', 'read')).effect).toBe('allow');
    expect(decide(policy, alice, sql('reader', 'write')).effect).toBe('deny');
    expect(decide(policy, alice, audit).effect).toBe('deny');
    expect(decide(policy, bob, sql('writer', 'write')).effect).toBe('allow');
    expect(decide(policy, bob, sql('writer', 'ddl')).effect).toBe('deny');
    expect(decide(policy, bob, http('GET')).effect).toBe('deny');
    expect(decide(policy, carol, audit).effect).toBe('allow');
    expect(decide(policy, carol, http('GET')).effect).toBe('allow');
    expect(decide(policy, carol, http('POST')).effect).toBe('deny');
    expect(decide(policy, carol, sql('reader', 'read')).effect).toBe('deny');
  });

  it('refuses a second demo on the same ports and data dir before starting anything', async () => {
    const refused = await startDemoStack({ dataDir, portBase }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ code: 'TG_ERR_DEMO_START' });
    const message = (refused as Error).message;
    for (const port of [stack.ports.idp, stack.ports.app, stack.ports.database]) expect(message).toContain(String(port));
    expect(message).toContain(`pid ${runningPostmasterPid(dataDir)}`);
    // The running demo is untouched.
    expect((await fetch(`${stack.urls.idp}/.well-known/openid-configuration`)).status).toBe(200);
  });

  it('stops everything on close, and a second start reuses keys, database and audit chain', async () => {
    const auditOptions = (config: TollgateConfig) => ({ dir: config.audit.dir, logId: config.audit.log_id, signer: parseSignerKey(config.audit.signing_key) });
    const firstStore = await openFileStore(auditOptions(stack.config));
    await firstStore.append({ kind: 'gateway.start', data: { pid: process.pid, node: process.version } });
    await firstStore.close();
    const countsBefore = await tableCounts(stack.config);
    const secretsBefore = Object.fromEntries(Object.keys(DEMO_SECRET_FILES).map((name) => [name, readSecret(dataDir, name as keyof typeof DEMO_SECRET_FILES)]));
    const firstConfig = stack.config;

    await stack.close();
    expect(await findBusyPorts(stack.ports)).toEqual([]);
    expect(runningPostmasterPid(dataDir)).toBeNull();

    stack = await startDemoStack({ dataDir, portBase });
    const secretsAfter = Object.fromEntries(Object.keys(DEMO_SECRET_FILES).map((name) => [name, readSecret(dataDir, name as keyof typeof DEMO_SECRET_FILES)]));
    expect(secretsAfter).toEqual(secretsBefore);
    expect(stack.config.identity.session.keys).toEqual(firstConfig.identity.session.keys);
    expect(stack.config.identity.client_secret).toBe(firstConfig.identity.client_secret);

    const jwks = (await (await fetch(`${stack.urls.idp}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toContain(idpKid);
    expect(await tableCounts(stack.config)).toEqual(countsBefore);
    await withClient(stack.config, 'reader', async (client) => {
      expect((await client.query('SELECT status FROM orders WHERE id = $1', [insertedOrderId])).rows).toEqual([{ status: 'pending' }]);
    });

    const secondStore = await openFileStore(auditOptions(stack.config));
    expect((await secondStore.append({ kind: 'gateway.start', data: { pid: process.pid, node: process.version } })).seq).toBe(1);
    await secondStore.close();
    const verified = await verifyLog({ dir: stack.config.audit.dir, verifiers: [parseVerifierKey(readSecret(dataDir, 'auditVerifierKey').trim())] });
    expect(verified).toMatchObject({ ok: true, size: 2, signaturesChecked: true });

    await stack.close();
    expect(await findBusyPorts(stack.ports)).toEqual([]);
  }, 120_000);
});
