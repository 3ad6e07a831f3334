import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_ENV, repoRoot as root, runTollgate, type CliRun } from '../helpers/cli.js';

let workDir = '';

function tollgate(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliRun> {
  return runTollgate(args, { cwd: workDir, env });
}

const BROKEN = [
  'server:',
  '  public_url: https://gw.example.com',
  '  http:',
  '    listn: 127.0.0.1:8080',
  'identity:',
  '  issuer: https://idp.example.com',
  '  client_id: tollgate',
  '  session:',
  '    keys: ["${env:SESSION_KEY}"]',
  'resources:',
  '  - name: shop',
  '    kind: postgres',
  '    upstream: {host: db.internal, port: "5432", database: shop}',
  '    logins:',
  '      - {name: reader, user: shop_reader, password: "${env:SHOP_READER_PASSWORD}"}',
  'audit:',
  '  dir: audit',
  '  log_id: gw.example.com/audit',
  '  signing_key: ${env:AUDIT_KEY}',
  '',
].join('\n');

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'tollgate-config-check-'));
  copyFileSync(join(root, 'config/tollgate.example.yaml'), join(workDir, 'tollgate.yaml'));
  writeFileSync(join(workDir, 'broken.yaml'), BROKEN);
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

describe('tollgate config check', () => {
  it('exits 0 and prints a summary for the example config with its variables set', async () => {
    const run = await tollgate(['config', 'check', '--config', 'tollgate.yaml'], EXAMPLE_ENV);
    expect(run).toEqual({ code: 0, stdout: 'ok: tollgate.yaml (2 resources, 4 roles, 4 grants)\n', stderr: '' });
  });

  it('exits 1 and prints every error with its line, then the count, never a secret value', async () => {
    const env = { SESSION_KEY: 'short-session-VALUE', AUDIT_KEY: 'audit-key-VALUE' };
    const run = await tollgate(['config', 'check', '--config', 'broken.yaml'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      [
        'broken.yaml:4 server.http.listn: unknown key "listn"; did you mean "listen"?',
        'broken.yaml:5 identity.db_tokens.signing_key: is required when a postgres resource exists: database tokens are signed with it',
        'broken.yaml:9 identity.session.keys[0]: is 19 bytes; at least 32 are required (generate one with: openssl rand -base64 32)',
        'broken.yaml:13 resources[0].upstream.port: expected a number, got a string',
        'broken.yaml:15 resources[0].logins[0].password: ${env:SHOP_READER_PASSWORD} is not set',
        '5 errors',
        '',
      ].join('\n'),
    );
    expect(run.stderr).not.toContain('short-session-VALUE');
  });

  it('exits 1 with a clear error when the file does not exist', async () => {
    const run = await tollgate(['config', 'check', '--config', 'missing.yaml']);
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error TG_ERR_CONFIG_NOT_FOUND: cannot read config file missing.yaml: no such file; pass an existing file with --config\n',
    });
  });

  it('exits 2 when --config is missing', async () => {
    const run = await tollgate(['config', 'check']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("required option '--config <file>' not specified");
  });

  it('prints help for the group and the subcommand', async () => {
    const group = await tollgate(['config', '--help']);
    expect(group.code).toBe(0);
    expect(group.stdout).toContain('Usage: tollgate config');
    expect(group.stdout).toMatch(/check \[options\]/);
    const check = await tollgate(['config', 'check', '--help']);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('Usage: tollgate config check [options]');
    expect(check.stdout).toContain('--config <file>');
  });
});
