import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectionString } from '../../../src/cli/commands/psql.js';
import { credentialsDir, credentialsFile, normalizeGatewayUrl, pickLogin, readStoredLogins, storeLogin, type StoredLogin } from '../../../src/cli/credentials.js';
import { openBrowser } from '../../../src/cli/login-flows.js';
import { isTollgateError } from '../../../src/core/index.js';
import { startCredentialsChild, type CredentialsChild } from '../../helpers/credentials-child.js';

const FUTURE = '2999-01-01T00:00:00.000Z';

function login(gateway: string, overrides: Partial<StoredLogin> = {}): StoredLogin {
  return {
    gateway,
    user: 'alice@example.com',
    token: `tgdb_token-for-${gateway}`,
    expires_at: FUTURE,
    postgres: { host: 'gw.example.com', port: 6432, sslmode: 'require' },
    databases: [{ name: 'shop', logins: ['reader'] }],
    ...overrides,
  };
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return isTollgateError(error) ? error.code : 'not a TollgateError';
  }
  return undefined;
}

describe('credentials location', () => {
  it('follows XDG_CONFIG_HOME, and ignores it when it is empty or relative', () => {
    expect(credentialsDir({ XDG_CONFIG_HOME: '/x/config', HOME: '/home/a' })).toBe('/x/config/tollgate');
    expect(credentialsDir({ XDG_CONFIG_HOME: '', HOME: '/home/a' })).toBe('/home/a/.config/tollgate');
    expect(credentialsDir({ XDG_CONFIG_HOME: 'relative/config', HOME: '/home/a' })).toBe('/home/a/.config/tollgate');
    expect(credentialsFile({ HOME: '/home/a' })).toBe('/home/a/.config/tollgate/credentials.json');
  });

  it('keys logins by the gateway origin', () => {
    expect(normalizeGatewayUrl('https://GW.example.com/some/path?q=1')).toBe('https://gw.example.com');
    expect(normalizeGatewayUrl('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080');
    expect(codeOf(() => normalizeGatewayUrl('ftp://gw.example.com'))).toBe('TG_ERR_USAGE');
    expect(codeOf(() => normalizeGatewayUrl('gw.example.com'))).toBe('TG_ERR_USAGE');
  });
});

describe('storeLogin', () => {
  let root: string;
  let dir: string;
  let file: string;
  let umask: number;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tollgate-credentials-'));
    dir = join(root, 'config', 'tollgate');
    file = join(dir, 'credentials.json');
    // A permissive umask must not make the file or the folder readable by others.
    umask = process.umask(0);
  });

  afterEach(() => {
    process.umask(umask);
    rmSync(root, { recursive: true, force: true });
  });

  it('writes a 0600 file in a 0700 folder, whatever the umask', async () => {
    await storeLogin(file, dir, login('https://a.example'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ version: 1, gateways: { 'https://a.example': login('https://a.example') } });
  });

  it('narrows a folder that already existed with a wider mode', async () => {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    await storeLogin(file, dir, login('https://a.example'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('keeps the logins of other gateways, replaces the same gateway, and leaves no temporary file', async () => {
    await storeLogin(file, dir, login('https://a.example'));
    await storeLogin(file, dir, login('https://b.example'));
    await storeLogin(file, dir, login('https://a.example', { token: 'tgdb_newer' }));
    const logins = await readStoredLogins(file);
    expect(Object.keys(logins).sort()).toEqual(['https://a.example', 'https://b.example']);
    expect(logins['https://a.example']?.token).toBe('tgdb_newer');
    expect(readdirSync(dir)).toEqual(['credentials.json']);
  });

  it('reads no logins from a missing file, and refuses a damaged one with what to do', async () => {
    expect(await readStoredLogins(file)).toEqual({});
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, '{"version":1,"gateways":');
    await expect(readStoredLogins(file)).rejects.toMatchObject({ code: 'TG_ERR_LOGIN_REQUIRED', message: expect.stringContaining('delete it and run tollgate login again') });
    writeFileSync(file, '{"version":2,"gateways":{}}');
    await expect(readStoredLogins(file)).rejects.toMatchObject({ code: 'TG_ERR_LOGIN_REQUIRED' });
  });
});

describe('storeLogin with other writers', () => {
  let root: string;
  let dir: string;
  let file: string;
  let lockPath: string;
  let umask: number;
  const children: CredentialsChild[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tollgate-credentials-lock-'));
    dir = join(root, 'config', 'tollgate');
    file = join(dir, 'credentials.json');
    lockPath = `${file}.lock`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    umask = process.umask(0);
  });

  afterEach(async () => {
    process.umask(umask);
    for (const child of children.splice(0)) {
      child.process.stdin.end();
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill();
      await child.exited;
    }
    rmSync(root, { recursive: true, force: true });
  });

  function start(args: readonly string[]): CredentialsChild {
    const child = startCredentialsChild(args);
    children.push(child);
    return child;
  }

  /** Writes a lock file as another process would have left it. */
  function leaveLock(holder: { pid: number; host?: string; created?: string }): string {
    const content = { pid: holder.pid, host: holder.host ?? hostname(), created: holder.created ?? new Date().toISOString(), nonce: randomBytes(12).toString('hex') };
    writeFileSync(lockPath, `${JSON.stringify(content)}\n`, { mode: 0o600 });
    return content.nonce;
  }

  async function exitedPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    return child.pid as number;
  }

  /** Starts `count` processes that each store one login, releases them at the same moment, and waits for them. */
  async function storeFromProcesses(count: number): Promise<string[]> {
    const gateways = Array.from({ length: count }, (_, index) => `https://gw${index}.example`);
    const started = gateways.map((gateway) => start(['store', file, dir, gateway]));
    expect(await Promise.all(started.map((child) => child.line()))).toEqual(gateways.map(() => 'ready'));
    for (const child of started) child.process.stdin.write('go\n');
    const results = await Promise.all(started.map((child) => child.exited));
    expect(results).toEqual(gateways.map(() => ({ code: 0, stderr: '' })));
    return gateways;
  }

  async function expectAllStored(gateways: readonly string[]): Promise<void> {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { version: number; gateways: Record<string, StoredLogin> };
    expect(stored.version).toBe(1);
    expect(Object.keys(stored.gateways).sort()).toEqual([...gateways].sort());
    for (const gateway of gateways) expect(stored.gateways[gateway]?.token).toBe(`tgdb_token-for-${gateway}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // No lock, claim or temporary file is left behind.
    expect(readdirSync(dir)).toEqual(['credentials.json']);
  }

  it('keeps every login when 8 processes store one at the same moment', async () => {
    await expectAllStored(await storeFromProcesses(8));
  }, 120_000);

  it('takes over a lock left by a process that exited, once, when 8 processes wait on it at the same moment', async () => {
    leaveLock({ pid: await exitedPid() });
    await expectAllStored(await storeFromProcesses(8));
  }, 120_000);

  it('keeps every login when one process stores several at once', async () => {
    const gateways = Array.from({ length: 8 }, (_, index) => `https://gw${index}.example`);
    await Promise.all(gateways.map((gateway) => storeLogin(file, dir, { ...login(gateway), token: `tgdb_token-for-${gateway}` })));
    await expectAllStored(gateways);
  });

  it('takes over a lock older than the bound even when its pid is alive, and a leftover carrying our own pid', async () => {
    leaveLock({ pid: process.ppid, created: new Date(Date.now() - 60_000).toISOString() });
    await storeLogin(file, dir, login('https://a.example'), { waitMs: 200 });
    leaveLock({ pid: process.pid });
    await storeLogin(file, dir, login('https://b.example'), { waitMs: 200 });
    expect(Object.keys(await readStoredLogins(file)).sort()).toEqual(['https://a.example', 'https://b.example']);
    expect(readdirSync(dir)).toEqual(['credentials.json']);
  });

  it('waits for a lock held by a live process, and gives up after the bound naming the lock file', async () => {
    await storeLogin(file, dir, login('https://a.example'));
    const before = readFileSync(file, 'utf8');
    const holder = start(['hold', lockPath]);
    expect(await holder.line()).toBe('held');

    const refused = await storeLogin(file, dir, login('https://b.example'), { waitMs: 300 }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(isTollgateError(refused, 'TG_ERR_CREDENTIALS_LOCKED')).toBe(true);
    expect((refused as Error).message).toContain(`${lockPath} is held by process ${holder.process.pid} on ${hostname()}`);
    expect((refused as Error).message).toContain(`if no tollgate login is running, delete ${lockPath}`);
    expect(readFileSync(file, 'utf8')).toBe(before);

    let settled = false;
    const waiting = storeLogin(file, dir, login('https://b.example'), { waitMs: 60_000 }).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    holder.process.stdin.end();
    expect(await holder.exited).toEqual({ code: 0, stderr: '' });
    await waiting;
    expect(Object.keys(await readStoredLogins(file)).sort()).toEqual(['https://a.example', 'https://b.example']);
    expect(readdirSync(dir)).toEqual(['credentials.json']);
  });

  it('does not trust the pid of a lock written on another host until it is older than the bound', async () => {
    const pid = await exitedPid();
    leaveLock({ pid, host: 'elsewhere.example' });
    await expect(storeLogin(file, dir, login('https://a.example'), { waitMs: 200 })).rejects.toMatchObject({
      code: 'TG_ERR_CREDENTIALS_LOCKED',
      message: expect.stringContaining(`process ${pid} on elsewhere.example`),
    });
    leaveLock({ pid, host: 'elsewhere.example', created: new Date(Date.now() - 60_000).toISOString() });
    await storeLogin(file, dir, login('https://a.example'), { waitMs: 200 });
    expect(Object.keys(await readStoredLogins(file))).toEqual(['https://a.example']);
  });

  it('waits, and then fails, instead of spinning on a stale lock whose removal another process claimed', async () => {
    const nonce = leaveLock({ pid: await exitedPid() });
    // The claim of a remover that died between claiming the lock and removing it.
    writeFileSync(`${lockPath}.${nonce}.claim`, '');
    await expect(storeLogin(file, dir, login('https://a.example'), { waitMs: 200 })).rejects.toMatchObject({ code: 'TG_ERR_CREDENTIALS_LOCKED' });
    expect(existsSync(file)).toBe(false);
  });

  it('treats an unreadable lock as held until its mtime is older than the bound', async () => {
    writeFileSync(lockPath, '');
    await expect(storeLogin(file, dir, login('https://a.example'), { waitMs: 200 })).rejects.toMatchObject({
      code: 'TG_ERR_CREDENTIALS_LOCKED',
      message: expect.stringContaining(`${lockPath} is held by another process`),
    });
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath, old, old);
    await storeLogin(file, dir, login('https://a.example'), { waitMs: 200 });
    expect(readdirSync(dir)).toEqual(['credentials.json']);
  });

  it('leaves a damaged credentials file as it is and refuses to store over it', async () => {
    for (const damaged of ['{"version":1,"gateways":', '{"version":2,"gateways":{}}']) {
      writeFileSync(file, damaged, { mode: 0o600 });
      await expect(storeLogin(file, dir, login('https://a.example'))).rejects.toMatchObject({
        code: 'TG_ERR_LOGIN_REQUIRED',
        message: expect.stringMatching(/^the token for https:\/\/a\.example was not stored: .* delete it and run tollgate login again$/),
      });
      expect(readFileSync(file, 'utf8')).toBe(damaged);
      expect(readdirSync(dir)).toEqual(['credentials.json']);
    }
    rmSync(file);
    mkdirSync(file);
    await expect(storeLogin(file, dir, login('https://a.example'))).rejects.toMatchObject({ code: 'TG_ERR_LOGIN_REQUIRED', message: expect.stringContaining(`cannot read ${file} (EISDIR)`) });
    expect(statSync(file).isDirectory()).toBe(true);
  });
});

describe('pickLogin', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('takes the named gateway, or the only one', () => {
    const logins = { 'https://a.example': login('https://a.example'), 'https://b.example': login('https://b.example') };
    expect(pickLogin(logins, 'https://b.example', now).gateway).toBe('https://b.example');
    expect(pickLogin({ 'https://a.example': login('https://a.example') }, undefined, now).gateway).toBe('https://a.example');
    expect(codeOf(() => pickLogin(logins, undefined, now))).toBe('TG_ERR_USAGE');
  });

  it('asks for a login when there is none, or it expired', () => {
    expect(codeOf(() => pickLogin({}, undefined, now))).toBe('TG_ERR_LOGIN_REQUIRED');
    expect(codeOf(() => pickLogin({ 'https://a.example': login('https://a.example') }, 'https://c.example', now))).toBe('TG_ERR_LOGIN_REQUIRED');
    const expired = { 'https://a.example': login('https://a.example', { expires_at: '2029-12-31T23:59:59.000Z' }) };
    expect(() => pickLogin(expired, undefined, now)).toThrow('run tollgate login --gateway https://a.example');
  });
});

describe('connectionString', () => {
  it('names host, port, database, user and sslmode, quoting what libpq would split', () => {
    expect(connectionString(login('https://a.example'), 'shop')).toBe('host=gw.example.com port=6432 dbname=shop user=alice@example.com sslmode=require');
    expect(connectionString(login('https://a.example', { user: "o'brien x" }), 'a\\b')).toBe(
      "host=gw.example.com port=6432 dbname='a\\\\b' user='o\\'brien x' sslmode=require",
    );
  });
});

describe('openBrowser', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tollgate-opener-'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  function recordingOpener(): { path: string; seen: () => string } {
    const path = join(root, 'opener.sh');
    const out = join(root, 'opened.txt');
    writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "$@" > '${out}'\n`, { mode: 0o755 });
    return { path, seen: () => readFileSync(out, 'utf8') };
  }

  it('runs $BROWSER with the URL appended, or in place of %s', async () => {
    const opener = recordingOpener();
    const url = 'http://gw.example/_tollgate/cli/authorize?a=1&b=$(id)';
    expect(await openBrowser(url, { BROWSER: opener.path })).toBe(true);
    expect(opener.seen()).toBe(`${url}\n`);
    expect(await openBrowser(url, { BROWSER: `${opener.path} --new-tab %s --x` })).toBe(true);
    expect(opener.seen()).toBe(`--new-tab\n${url}\n--x\n`);
  });

  it('tries each $BROWSER entry in turn, and reports when none worked', async () => {
    expect(await openBrowser('http://gw.example/', { BROWSER: 'false' })).toBe(false);
    expect(await openBrowser('http://gw.example/', { BROWSER: `${join(root, 'missing')}:false` })).toBe(false);
    expect(await openBrowser('http://gw.example/', { BROWSER: 'false:true' })).toBe(true);
  });
});
