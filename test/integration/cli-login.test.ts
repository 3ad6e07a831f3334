import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_AUTHORIZE_PATH, CLI_TOKEN_PATH } from '../../src/proxy/http/index.js';
import { launchChromium } from '../helpers/chromium.js';
import { repoRoot, runTollgate } from '../helpers/cli.js';
import { demoRoot, freeDemoPortBase, removeDemoRoot, startDemo, type RunningDemo } from '../helpers/demo.js';
import { readAuditRecords } from '../helpers/http-gateway.js';

/**
 * `tollgate login` and `tollgate psql` against the whole demo (demo IdP, embedded PostgreSQL,
 * the gateway with its TLS Postgres listener), with Debian's chromium, driven by playwright-core,
 * as the user's browser: the loopback flow, the device flow, and the refusals.
 */
const main = join(repoRoot, 'src/cli/main.ts');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const ALICE = { email: 'alice@example.com', password: 'alice' };

/** A `tollgate login` child process whose stderr can be waited on as it arrives. */
interface LoginProcess {
  readonly child: ChildProcess;
  /** Resolves with the first match of `pattern` in stderr so far or to come. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  readonly exited: Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>;
}

function startLogin(args: readonly string[], env: Readonly<Record<string, string>>): LoginProcess {
  const child = spawn(process.execPath, ['--import', tsxLoader, main, 'login', ...args], { cwd: repoRoot, env: { PATH: process.env['PATH'] ?? '', ...env } });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ pattern: RegExp; resolve: (match: RegExpMatchArray) => void }> = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(stderr);
      if (match !== null) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    exited,
    waitFor(pattern) {
      const match = pattern.exec(stderr);
      if (match !== null) return Promise.resolve(match);
      return new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve });
        void exited.then((done) => reject(new Error(`tollgate login exited ${done.code} before printing ${pattern}:\n${done.stderr}`)));
      });
    },
  };
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** A loopback listener that plays the CLI's part: records the query of every answer it gets. */
async function fakeCliListener(): Promise<{ server: Server; redirectUri: string; received: URLSearchParams[] }> {
  const received: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    // The browser also asks for /favicon.ico; only the redirect's path is the answer.
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/cb') received.push(url.searchParams);
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cb`, received };
}

describe('tollgate login and tollgate psql against the demo', () => {
  let root: string;
  let demo: RunningDemo;
  let browser: Browser;
  let web: string;
  /** alice's browser, signed in to the gateway by the first test. */
  let alice: BrowserContext;

  beforeAll(async () => {
    root = demoRoot('tollgate-cli-login-');
    demo = await startDemo(root, await freeDemoPortBase());
    web = demo.stack.urls.web;
    browser = await launchChromium();
    alice = await browser.newContext();
  }, 180_000);

  afterAll(async () => {
    await alice?.close();
    await browser?.close();
    await demo?.close();
    removeDemoRoot(root);
  });

  function homeFor(name: string): { home: string; xdg: string; file: string } {
    const home = join(root, `home-${name}`);
    const xdg = join(home, 'xdg');
    return { home, xdg, file: join(xdg, 'tollgate', 'credentials.json') };
  }

  /** Signs in at the IdP's form when the page is there; a browser already signed in passes through. */
  async function signInIfAsked(page: Page, landing: RegExp): Promise<void> {
    await page.waitForURL((url) => landing.test(url.href) || url.pathname.startsWith('/interaction/'));
    if (!landing.test(page.url())) {
      await page.fill('input[name=login]', ALICE.email);
      await page.fill('input[name=password]', ALICE.password);
      await page.click('form.card button[type=submit]');
      await page.waitForURL(landing);
    }
  }

  it('logs in through the loopback redirect, stores the token 0600, and psql runs with it', async () => {
    const { home, xdg, file } = homeFor('loopback');
    const login = startLogin(['--gateway', web, '--print'], { HOME: home, XDG_CONFIG_HOME: xdg, BROWSER: 'true' });
    const [, url] = await login.waitFor(/If the browser did not open, visit:\s+(\S+)\s/);
    expect(url).toMatch(new RegExp(`^${web}${CLI_AUTHORIZE_PATH}\\?redirect_uri=http%3A%2F%2F127\\.0\\.0\\.1%3A\\d+%2Fcallback&`));

    const page = await alice.newPage();
    await page.goto(url ?? '');
    await signInIfAsked(page, /\/_tollgate\/cli\/authorize\?/);
    expect(await page.locator('h1').textContent()).toBe('Sign in the Tollgate CLI as alice@example.com?');
    await page.click('button[value=approve]');
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
    expect(await page.locator('h1').textContent()).toBe('Signed in');
    await page.close();

    const done = await login.exited;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toContain(`Signed in to ${web} as alice@example.com.`);
    const token = done.stdout.trim();
    expect(token).toMatch(/^tgdb_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

    expect(statSync(join(xdg, 'tollgate')).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { version: number; gateways: Record<string, Record<string, unknown>> };
    expect(stored.version).toBe(1);
    expect(stored.gateways[web]).toEqual({
      gateway: web,
      user: 'alice@example.com',
      token,
      expires_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      postgres: { host: '127.0.0.1', port: demo.stack.ports.postgres, sslmode: 'require' },
      databases: [{ name: 'shop', logins: ['reader'] }],
    });
    expect(Date.parse(String(stored.gateways[web]?.['expires_at']))).toBeGreaterThan(Date.now());

    // The token is a working password on the gateway's Postgres listener.
    const client = new pg.Client({ host: '127.0.0.1', port: demo.stack.ports.postgres, database: 'shop', user: 'alice@example.com', password: token, ssl: { rejectUnauthorized: false } });
    await client.connect();
    let count: string;
    try {
      count = String((await client.query<{ n: string }>('select count(*) as n from customers')).rows[0]?.n);
    } finally {
      await client.end();
    }
    expect(Number(count)).toBeGreaterThan(0);

    // And `tollgate psql` runs the real psql with it.
    const psql = await runTollgate(['psql', 'shop', '--', '-X', '-A', '-t', '-c', 'select count(*) from customers'], { cwd: root, env: { HOME: home, XDG_CONFIG_HOME: xdg } });
    expect(psql.code, psql.stderr).toBe(0);
    expect(psql.stdout.trim()).toBe(count);

    // The issuance is on the record, tied to alice's browser session, and never holds the token.
    const issued = readAuditRecords(demo.gateway.config.audit.dir).filter((record) => record.kind === 'token.issued' && record.data['issued_via'] === 'cli-login');
    expect(issued).toHaveLength(1);
    expect(issued[0]).toMatchObject({ principal: { email: 'alice@example.com' }, session_id: expect.any(String) });
    expect(JSON.stringify(issued[0])).not.toContain(token);
  }, 60_000);

  it('still prints the issued token with --print when it cannot be stored, and leaves a damaged credentials file alone', async () => {
    const { home, xdg, file } = homeFor('damaged');
    mkdirSync(join(xdg, 'tollgate'), { recursive: true, mode: 0o700 });
    writeFileSync(file, '{"version": 1, "gateways": ', { mode: 0o600 });
    const login = startLogin(['--gateway', web, '--print'], { HOME: home, XDG_CONFIG_HOME: xdg, BROWSER: 'true' });
    const [, url] = await login.waitFor(/If the browser did not open, visit:\s+(\S+)\s/);
    const page = await alice.newPage();
    await page.goto(url ?? '');
    await signInIfAsked(page, /\/_tollgate\/cli\/authorize\?/);
    await page.click('button[value=approve]');
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
    await page.close();

    const done = await login.exited;
    expect(done.code).toBe(1);
    expect(done.stdout.trim()).toMatch(/^tgdb_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(done.stderr).toContain(`the token for ${web} was not stored`);
    expect(done.stderr).toContain('the token was printed on stdout all the same');
    expect(readFileSync(file, 'utf8')).toBe('{"version": 1, "gateways": ');
  }, 60_000);

  it('passes psql its exit status through, and gives psql the token in its environment only', async () => {
    const { home, xdg, file } = homeFor('loopback');
    const env = { HOME: home, XDG_CONFIG_HOME: xdg };
    const token = (JSON.parse(readFileSync(file, 'utf8')) as { gateways: Record<string, { token: string }> }).gateways[web]?.token ?? '';
    const failed = await runTollgate(['psql', 'shop', '--', '-X', '-c', 'select * from no_such_table'], { cwd: root, env });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('no_such_table');
    // psql exits 3 when a script stops at an error (ON_ERROR_STOP).
    const script = join(root, 'stop.sql');
    writeFileSync(script, 'select 1;\nselect * from no_such_table;\nselect 2;\n');
    const stopped = await runTollgate(['psql', 'shop', '--', '-X', '-v', 'ON_ERROR_STOP=1', '-f', script], { cwd: root, env });
    expect(stopped.code).toBe(3);

    // psql's own view of itself: its command line (from /proc) and its PGPASSWORD.
    const cmdline = await runTollgate(['psql', 'shop', '--', '-X', '-c', String.raw`\! tr '\0' ' ' < /proc/$PPID/cmdline`], { cwd: root, env });
    expect(cmdline.code, cmdline.stderr).toBe(0);
    expect(cmdline.stdout).toContain(`psql host=127.0.0.1 port=${demo.stack.ports.postgres} dbname=shop user=alice@example.com sslmode=require`);
    expect(cmdline.stdout).not.toContain(token);
    const password = await runTollgate(['psql', 'shop', '--', '-X', '-c', String.raw`\! printenv PGPASSWORD`], { cwd: root, env });
    expect(password.stdout.trim()).toBe(token);
  });

  it('refuses psql without a login, with the command to run', async () => {
    const { home, xdg } = homeFor('nobody');
    const run = await runTollgate(['psql', 'shop'], { cwd: root, env: { HOME: home, XDG_CONFIG_HOME: xdg } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('TG_ERR_LOGIN_REQUIRED');
    expect(run.stderr).toContain('run tollgate login --gateway URL');
  });

  it('logs in with a user code approved in the browser (device flow)', async () => {
    const { home, xdg, file } = homeFor('device');
    const login = startLogin(['--gateway', web, '--no-browser'], { HOME: home, XDG_CONFIG_HOME: xdg });
    const [, verification] = await login.waitFor(/open this address in a browser on any device:\s+(\S+)\s/);
    const [, userCode] = await login.waitFor(/and enter the code\s+([A-Z]{4}-[A-Z]{4})\s/);
    expect(verification).toBe(`${web}/_tollgate/cli/device`);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(verification ?? '');
    await signInIfAsked(page, /\/_tollgate\/cli\/device$/);
    await page.fill('input[name=user_code]', (userCode ?? '').toLowerCase().replace('-', ' '));
    await page.click('button[type=submit]');
    await page.waitForURL(/\/_tollgate\/cli\/device\?user_code=/);
    expect(await page.locator('h1').textContent()).toBe('Sign in the Tollgate CLI as alice@example.com?');
    expect(await page.locator('strong code').textContent()).toBe(userCode);
    await page.click('button[value=approve]');
    await page.waitForURL(/\/_tollgate\/cli\/device\/approve$/);
    expect(await page.locator('h1').textContent()).toBe('The Tollgate CLI is signed in');
    await context.close();

    const done = await login.exited;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toBe('');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { gateways: Record<string, { user: string; token: string }> };
    expect(stored.gateways[web]?.user).toBe('alice@example.com');
    const psql = await runTollgate(['psql', 'shop', '--', '-X', '-A', '-t', '-c', 'select 40 + 2'], { cwd: root, env: { HOME: home, XDG_CONFIG_HOME: xdg } });
    expect(psql.stdout.trim()).toBe('42');
  }, 60_000);

  it('falls back to a user code when no browser opens, and gives up with a clear error at --timeout', async () => {
    const { home, xdg, file } = homeFor('no-browser');
    const login = startLogin(['--gateway', web, '--timeout', '3s'], { HOME: home, XDG_CONFIG_HOME: xdg, BROWSER: 'false' });
    const done = await login.exited;
    expect(done.code).toBe(1);
    expect(done.stderr).toContain('No browser could be opened here; sign in on another device instead.');
    expect(done.stderr).toMatch(/and enter the code\s+[A-Z]{4}-[A-Z]{4}\s/);
    expect(done.stderr).toContain('error TG_ERR_LOGIN_FAILED: the sign-in was not completed in time; run tollgate login again (or raise --timeout)');
    expect(done.stdout).toBe('');
    expect(() => statSync(file)).toThrow();
  });

  it('shows a refusal page, and never redirects, for a redirect_uri off the loopback IP literals', async () => {
    const { challenge } = pkcePair();
    for (const redirectUri of ['http://localhost:4000/callback', 'http://evil.example:4000/callback', 'https://127.0.0.1:4000/callback', 'http://127.0.0.2:4000/callback']) {
      const page = await alice.newPage();
      const query = new URLSearchParams({ redirect_uri: redirectUri, state: 's', code_challenge: challenge, code_challenge_method: 'S256' });
      const response = await page.goto(`${web}${CLI_AUTHORIZE_PATH}?${query}`);
      expect(response?.status(), redirectUri).toBe(400);
      expect(new URL(page.url()).origin).toBe(web);
      expect(await page.locator('h1').textContent()).toBe('Bad sign-in request');
      await page.close();
    }
  });

  it('answers the token and device endpoints with RFC 6749 / RFC 8628 errors', async () => {
    const post = async (path: string, body: string, type: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const response = await fetch(`${web}${path}`, { method: 'POST', body, headers: { 'content-type': type } });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    expect(await post(CLI_TOKEN_PATH, JSON.stringify({ grant_type: 'password' }), 'application/json')).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
    expect(await post(CLI_TOKEN_PATH, 'code=x', 'application/x-www-form-urlencoded')).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(await post(CLI_TOKEN_PATH, `grant_type=authorization_code&pad=${'x'.repeat(20_000)}`, 'application/x-www-form-urlencoded')).toMatchObject({ status: 413, body: { error: 'invalid_request' } });
    expect(await post(CLI_TOKEN_PATH, 'grant_type=authorization_code', 'text/plain')).toMatchObject({ status: 415, body: { error: 'invalid_request' } });

    const device = await post('/_tollgate/cli/device', '{}', 'application/json');
    expect(device).toEqual({
      status: 200,
      body: {
        device_code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
        user_code: expect.stringMatching(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/),
        verification_uri: `${web}/_tollgate/cli/device`,
        verification_uri_complete: `${web}/_tollgate/cli/device?user_code=${String(device.body['user_code'])}`,
        expires_in: 600,
        interval: 5,
      },
    });
    const poll = () => post(CLI_TOKEN_PATH, new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: String(device.body['device_code']) }).toString(), 'application/x-www-form-urlencoded');
    expect(await poll()).toMatchObject({ status: 400, body: { error: 'authorization_pending' } });
    expect(await poll()).toMatchObject({ status: 400, body: { error: 'slow_down' } });
  });

  it('refuses a consent that does not come from the page shown to the same session', async () => {
    const { challenge } = pkcePair();
    const form = { redirect_uri: 'http://127.0.0.1:9/cb', state: 's', code_challenge: challenge, code_challenge_method: 'S256', decision: 'approve' };
    // alice's cookies, but a form token never shown to her.
    const forged = await alice.request.post(`${web}${CLI_AUTHORIZE_PATH}`, { form: { ...form, form_token: `${Date.now()}.${'A'.repeat(43)}` }, maxRedirects: 0 });
    expect(forged.status()).toBe(400);
    expect(forged.headers()['location']).toBeUndefined();
    const crossSite = await alice.request.post(`${web}${CLI_AUTHORIZE_PATH}`, { form, headers: { origin: 'http://evil.example' }, maxRedirects: 0 });
    expect(crossSite.status()).toBe(403);
  });

  /** Approves an authorization request in alice's browser; the code arrives at `listener`. */
  async function approveCode(listener: Awaited<ReturnType<typeof fakeCliListener>>, challenge: string): Promise<string> {
    const page = await alice.newPage();
    const state = randomBytes(8).toString('hex');
    await page.goto(`${web}${CLI_AUTHORIZE_PATH}?${new URLSearchParams({ redirect_uri: listener.redirectUri, state, code_challenge: challenge, code_challenge_method: 'S256' })}`);
    await signInIfAsked(page, /\/_tollgate\/cli\/authorize\?/);
    await page.click('button[value=approve]');
    await page.waitForURL((url) => url.href.startsWith(listener.redirectUri));
    await page.close();
    const answer = listener.received.at(-1);
    expect(answer?.get('state')).toBe(state);
    return answer?.get('code') ?? '';
  }

  async function redeem(code: string, verifier: string, redirectUri: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${web}${CLI_TOKEN_PATH}`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('redeems a code once only, and refuses (and records) a wrong code_verifier', async () => {
    const listener = await fakeCliListener();
    try {
      const first = pkcePair();
      const code = await approveCode(listener, first.challenge);
      const redeemed = await redeem(code, first.verifier, listener.redirectUri);
      expect(redeemed.status).toBe(200);
      expect(redeemed.body['user']).toBe('alice@example.com');
      const reused = await redeem(code, first.verifier, listener.redirectUri);
      expect(reused).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: expect.stringContaining('already used') } });

      const second = pkcePair();
      const other = await approveCode(listener, second.challenge);
      const wrong = await redeem(other, pkcePair().verifier, listener.redirectUri);
      expect(wrong).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'code_verifier does not match the code_challenge' } });
      // A failed attempt uses the code up: the right verifier comes too late.
      expect((await redeem(other, second.verifier, listener.redirectUri)).status).toBe(400);

      const failures = readAuditRecords(demo.gateway.config.audit.dir).filter((record) => record.kind === 'auth.failure' && record.data['method'] === 'cli-login');
      expect(failures.map((record) => record.data['reason'])).toEqual(['code-unknown', 'pkce-mismatch', 'code-unknown']);
      expect(failures[1]).toMatchObject({ principal: { email: 'alice@example.com' } });
    } finally {
      await new Promise<void>((resolve) => listener.server.close(() => resolve()));
    }
  }, 60_000);
});
