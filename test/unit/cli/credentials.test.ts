import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectionString } from '../../../src/cli/commands/psql.js';
import { credentialsDir, credentialsFile, normalizeGatewayUrl, pickLogin, readStoredLogins, storeLogin, type StoredLogin } from '../../../src/cli/credentials.js';
import { openBrowser } from '../../../src/cli/login-flows.js';
import { isTollgateError } from '../../../src/core/index.js';

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
