import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64, leafHash, openCheckpoint, parseVerifierKey, rootFromLeaves } from '../../src/audit/index.js';
import { isProcessAlive } from '../../src/core/index.js';
import { framesOf, recordBytes } from '../helpers/audit-files.js';
import { repoRoot } from '../helpers/cli.js';
import { demoRoot, freeDemoPortBase, removeDemoRoot } from '../helpers/demo.js';
import { TestBrowser } from '../helpers/oidc-idp.js';

/**
 * `tollgate demo` as a person runs it (`npm run demo` runs `node dist/cli/main.js demo`): a real
 * child process in a fresh folder, every URL of its banner asked, the banner's psql command run
 * with real psql, then Ctrl-C (SIGINT to the whole process group, as a terminal sends it): a clean
 * exit, a final signed checkpoint, nothing left running. A second start in the same folder
 * continues the same audit chain.
 */

const MAIN = join(repoRoot, 'dist', 'cli', 'main.js');
const BANNER_END = 'Ctrl-C stops the demo.';
const HTML = { accept: 'text/html' };

interface Ending {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface DemoProcess {
  readonly child: ChildProcess;
  readonly banner: string;
  stderr(): string;
  /** Ctrl-C: SIGINT to the process group; resolves with how the process ended, or rejects after `boundMs`. */
  interrupt(boundMs: number): Promise<Ending>;
}

/** Every demo child this file started and has not seen exit, for cleanup after a failure. */
const running = new Set<ChildProcess>();

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Starts `tollgate demo --port-base N` in `cwd`, in a process group of its own, and waits for its banner. */
function startDemoProcess(cwd: string, portBase: number): Promise<DemoProcess> {
  const child = spawn(process.execPath, [MAIN, 'demo', '--port-base', String(portBase)], {
    cwd,
    env: childEnv(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Ending>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => running.delete(child), () => undefined);
  const interrupt = async (boundMs: number) => {
    if (child.pid === undefined) throw new Error('the demo process has no pid');
    process.kill(-child.pid, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the demo did not exit within ${boundMs} ms of SIGINT; stderr:\n${stderr}`)), boundMs);
    });
    try {
      return await Promise.race([exited, bound]);
    } finally {
      clearTimeout(timer);
    }
  };
  return new Promise((resolve, reject) => {
    const timeout = setTimeout(() => reject(new Error(`no banner within 90 s; stdout:\n${stdout}\nstderr:\n${stderr}`)), 90_000);
    const onData = () => {
      if (!stdout.includes(BANNER_END)) return;
      clearTimeout(timeout);
      child.stdout?.off('data', onData);
      resolve({ child, banner: stdout, stderr: () => stderr, interrupt });
    };
    child.stdout?.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timeout);
      reject(new Error(`the demo exited (${code ?? signal}) before its banner; stdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });
}

/** The value printed after `label` on its banner line. */
function bannerValue(banner: string, label: string): string {
  const line = banner.split('\n').find((candidate) => candidate.trimStart().startsWith(label));
  if (line === undefined) throw new Error(`the banner has no line "${label}":\n${banner}`);
  return line.trimStart().slice(label.length).trim();
}

/**
 * The byte a server answers to an SSLRequest: `S` (TLS follows) or `N` (PostgreSQL docs,
 * "Frontend/Backend Protocol", "SSL Session Encryption").
 */
function sslResponse(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(80877103, 4);
      socket.write(request);
    });
    socket.once('data', (data) => {
      socket.destroy();
      resolve(String.fromCharCode(data[0] ?? 0));
    });
    socket.once('error', reject);
  });
}

function run(file: string, args: readonly string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: { ...childEnv(), ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** Pids of running processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function lastRecord(auditDir: string): { seq: number; kind: string } {
  const frames = framesOf(auditDir);
  const seq = frames.length - 1;
  return { seq, kind: (JSON.parse(recordBytes(auditDir, seq).toString('utf8')) as { kind: string }).kind };
}

describe('tollgate demo as a child process', () => {
  let root: string;
  let portBase: number;
  let demo: DemoProcess;
  let dataDir: string;
  let auditDir: string;
  let postmasterPid: number;
  let firstRunRecords: Buffer[];

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first with "npm run build" (npm test does)`);
    root = demoRoot('tollgate-demo-cli-');
    dataDir = join(root, 'data', 'demo');
    portBase = await freeDemoPortBase();
    expect(existsSync(dataDir)).toBe(false);
    demo = await startDemoProcess(root, portBase);
    auditDir = join(dataDir, 'audit');
  }, 120_000);

  afterAll(async () => {
    // Only after a failure is anything still running: stop what this file started.
    for (const child of running) {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }
    if (postmasterPid !== undefined && isProcessAlive(postmasterPid)) process.kill(postmasterPid, 'SIGQUIT');
    removeDemoRoot(root);
  });

  it('starts from a clean folder into ./data/demo and answers on every URL it prints', async () => {
    expect(existsSync(join(dataDir, 'tollgate.yaml'))).toBe(true);
    expect(bannerValue(demo.banner, 'config in use')).toBe(join(dataDir, 'tollgate.yaml'));
    postmasterPid = Number.parseInt(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
    expect(isProcessAlive(postmasterPid)).toBe(true);

    const printed = new Set([...demo.banner.matchAll(/https?:\/\/[^\s)]+/g)].map((match) => match[0]));
    const checked = new Set<string>();
    const web = `http://127.0.0.1:${portBase}`;
    const idp = bannerValue(demo.banner, 'Demo identity provider');
    const appUrl = bannerValue(demo.banner, 'Sign in and use the app');
    const dbUrl = bannerValue(demo.banner, 'Database token for psql');
    const auditUrl = bannerValue(demo.banner, 'Audit log review');
    const directApp = bannerValue(demo.banner, 'Demo app (upstream, direct)');
    const adminUrls = bannerValue(demo.banner, 'Metrics and health').split(/\s+/);
    expect([appUrl, dbUrl, auditUrl]).toEqual([`${web}/app/`, `${web}/db`, `${web}/audit`]);

    // The IdP's discovery document names it as the issuer.
    const discovery = (await (await fetch(`${idp}/.well-known/openid-configuration`)).json()) as { issuer: string; authorization_endpoint: string };
    expect(discovery.issuer).toBe(idp);
    checked.add(idp);

    // The app through the gateway: a browser without a session goes to the IdP, signs in, lands on the app.
    const alice = new TestBrowser();
    const first = await alice.request(appUrl, { headers: HTML });
    expect(first.status).toBe(302);
    const loginPage = await alice.followFrom(first);
    expect(loginPage.url.origin).toBe(idp);
    expect(loginPage.body).toContain('name="password"');
    const landed = await alice.followFrom(await alice.submitForm(loginPage, { login: 'alice@example.com', password: 'alice' }));
    expect(landed.url.href).toBe(appUrl);
    expect(landed.status).toBe(200);
    expect(landed.body).toContain('alice@example.com');
    checked.add(appUrl);

    // /db: a sign-in first for a stranger; a token for alice.
    expect((await new TestBrowser().request(dbUrl, { headers: HTML })).status).toBe(302);
    const db = await alice.request(dbUrl, { headers: { accept: 'application/json' } });
    expect(db.status).toBe(200);
    const { token, databases } = JSON.parse(db.body) as { token: string; databases: { name: string; logins: string[] }[] };
    expect(databases.map((database) => [database.name, database.logins])).toEqual([['shop', ['reader']]]);
    checked.add(dbUrl);

    // /audit: a sign-in first for a stranger; forbidden to alice, who holds no audit permission.
    expect((await new TestBrowser().request(auditUrl, { headers: HTML })).status).toBe(302);
    expect((await alice.request(auditUrl, { headers: HTML })).status).toBe(403);
    checked.add(auditUrl);

    // The app directly, without the gateway.
    const direct = await fetch(directApp);
    expect(direct.status).toBe(200);
    expect(await direct.text()).toContain('this request did not come through the gateway');
    checked.add(directApp);

    // The admin listener.
    for (const url of adminUrls) {
      const response = await fetch(url);
      expect(response.status, url).toBe(200);
      const body = await response.text();
      if (url.endsWith('/metrics')) expect(body).toMatch(/^# HELP /m);
      if (url.endsWith('/healthz')) expect(JSON.parse(body)).toEqual({ status: 'ok' });
      if (url.endsWith('/readyz')) expect(JSON.parse(body)).toMatchObject({ status: 'ready' });
      checked.add(url);
    }
    expect([...printed].filter((url) => !checked.has(url))).toEqual([]);

    // The gateway's Postgres port answers SSLRequest with TLS; the banner's psql command works
    // with the /db token as the password (in the environment, as psql reads it).
    const gatewayPg = /^127\.0\.0\.1:(\d+), database shop, TLS required$/.exec(bannerValue(demo.banner, 'Postgres (through the gateway)'));
    expect(Number(gatewayPg?.[1])).toBe(portBase + 1);
    expect(await sslResponse(portBase + 1)).toBe('S');
    const psqlLine = demo.banner.split('\n').map((line) => line.trim()).find((line) => line.startsWith('psql '));
    const conninfo = /^psql "([^"]+)"$/.exec(psqlLine ?? '')?.[1];
    expect(conninfo).toBe(`host=127.0.0.1 port=${portBase + 1} dbname=shop user=alice@example.com sslmode=require`);
    const psql = await run('psql', [conninfo ?? '', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT count(*) FROM customers'], { PGPASSWORD: token }, root);
    expect(psql.stderr).toBe('');
    expect(psql.code).toBe(0);
    expect(Number(psql.stdout.trim())).toBeGreaterThanOrEqual(50);
    const denied = await run('psql', [conninfo ?? '', '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'DELETE FROM payments'], { PGPASSWORD: token }, root);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('ERROR');

    // The embedded PostgreSQL upstream is a PostgreSQL server (plain, on loopback).
    const upstream = /^127\.0\.0\.1:(\d+)$/.exec(bannerValue(demo.banner, 'Embedded PostgreSQL (upstream)'));
    expect(Number(upstream?.[1])).toBe(portBase + 5);
    expect(await sslResponse(portBase + 5)).toBe('N');
  });

  it('stops on Ctrl-C with exit code 0, a final signed checkpoint over every record, and nothing left running', async () => {
    expect(await demo.interrupt(30_000)).toEqual({ code: 0, signal: null });
    expect(demo.stderr()).toContain('demo stopped');

    const frames = framesOf(auditDir);
    expect(lastRecord(auditDir).kind).toBe('gateway.stop');
    const verifierKey = readFileSync(join(dataDir, 'secrets', 'audit.pub'), 'utf8').trim();
    const opened = openCheckpoint(readFileSync(join(auditDir, 'checkpoint'), 'utf8'), [parseVerifierKey(verifierKey)], { origin: 'demo.tollgate.local/audit' });
    if (!opened.ok) throw new Error(`the final checkpoint does not verify: ${opened.reason}`);
    expect(opened.checkpoint.size).toBe(frames.length);
    const leaves = frames.map((frame) => leafHash(recordBytes(auditDir, frame.seq)));
    expect(encodeBase64(opened.checkpoint.rootHash)).toBe(encodeBase64(rootFromLeaves(leaves)));

    expect(isProcessAlive(postmasterPid)).toBe(false);
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    expect(processesMentioning(root)).toEqual([]);
    firstRunRecords = frames.map((frame) => Buffer.from(recordBytes(auditDir, frame.seq)));
  }, 60_000);

  // Also pins that Ctrl-C is handled from the moment the banner shows: it used to be installed
  // just after it, and a SIGINT right then killed the process with no final checkpoint.
  it('starts again in the same folder, stops on a Ctrl-C right at its banner, and continues the same audit chain', async () => {
    const again = await startDemoProcess(root, portBase);
    demo = again;
    const restartedPostmaster = Number.parseInt(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
    expect(restartedPostmaster).not.toBe(postmasterPid);
    postmasterPid = restartedPostmaster;
    expect(await again.interrupt(30_000)).toEqual({ code: 0, signal: null });
    expect(isProcessAlive(postmasterPid)).toBe(false);

    const frames = framesOf(auditDir);
    const before = firstRunRecords.length;
    expect(frames.length).toBeGreaterThan(before);
    for (let seq = 0; seq < before; seq++) expect(recordBytes(auditDir, seq).equals(firstRunRecords[seq] ?? Buffer.alloc(0)), `record ${seq}`).toBe(true);
    const resumed = JSON.parse(recordBytes(auditDir, before).toString('utf8')) as { seq: number; kind: string };
    expect(resumed).toMatchObject({ seq: before, kind: 'gateway.start' });
    expect(lastRecord(auditDir).kind).toBe('gateway.stop');

    // The banner's own verify command, with `tollgate` being this build.
    const verifyLine = bannerValue(again.banner, 'verify the log');
    const args = /^tollgate (audit verify --dir \S+ --key \S+)$/.exec(verifyLine)?.[1]?.split(' ');
    expect(args).toEqual(['audit', 'verify', '--dir', auditDir, '--key', join(dataDir, 'secrets', 'audit.pub')]);
    const verified = await run(process.execPath, [MAIN, ...(args ?? [])], {}, root);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(new RegExp(`^ok: ${frames.length} records of log demo\\.tollgate\\.local/audit, root \\S+, checkpoint signed by demo\\.tollgate\\.local/audit\\+[0-9a-f]{8}\\n$`));
  }, 120_000);
});
