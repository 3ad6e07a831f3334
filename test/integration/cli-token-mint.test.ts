import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSignerKey } from '../../src/audit/index.js';
import { createDbTokens } from '../../src/identity/index.js';
import { BASE } from '../unit/config/fixtures.js';
import { runTollgate } from '../helpers/cli.js';

let workDir = '';
const keys = generateSignerKey('gw.example.com/audit');
const env = {
  SESSION_KEY: 'session-key-'.padEnd(40, 's'),
  DB_TOKEN_KEY: 'db-token-key-'.padEnd(40, 'd'),
  SHOP_READER_PASSWORD: 'reader-password',
  SHOP_WRITER_PASSWORD: 'writer-password',
  AUDIT_KEY: keys.signerKey,
};

function mint(args: readonly string[]) {
  return runTollgate(['token', 'mint', '--config', 'tollgate.yaml', ...args], { cwd: workDir, env });
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'tollgate-token-mint-'));
  writeFileSync(join(workDir, 'tollgate.yaml'), `${BASE.join('\n')}\n`);
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

describe('tollgate token mint', () => {
  it('prints only the token on stdout and records token.issued first', async () => {
    const run = await mint(['--user', 'Alice@Example.com', '--group', 'engineering', '--ttl', '15m', '--reason', 'incident 4711']);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const token = lines[0] ?? '';
    expect(token).toMatch(/^tgdb_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

    const tokens = createDbTokens({
      publicUrl: 'https://gw.example.com',
      identity: {
        db_tokens: { signing_key: env.DB_TOKEN_KEY, ttl: 3_600_000, max_ttl: 43_200_000 },
      } as Parameters<typeof createDbTokens>[0]['identity'],
    });
    const verified = tokens.verifyDbToken(token);
    expect(verified.ok && verified.principal).toMatchObject({ subject: 'Alice@Example.com', email: 'alice@example.com', groups: ['engineering'] });
    if (!verified.ok) throw new Error('token did not verify');
    expect(verified.expiresAt - verified.issuedAt).toBe(15 * 60_000);

    const query = await runTollgate(['audit', 'query', '--dir', 'audit', '--json'], { cwd: workDir });
    expect(query.code).toBe(0);
    const records = query.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const issued = records.find((r) => r['kind'] === 'token.issued');
    expect(issued).toMatchObject({
      principal: { subject: 'Alice@Example.com', email: 'alice@example.com', groups: ['engineering'] },
      data: { method: 'cli', token_id: verified.tokenId, reason: 'incident 4711' },
    });
    expect(JSON.stringify(records)).not.toContain(token);
  });

  it('refuses a lifetime beyond identity.db_tokens.max_ttl as a usage error, minting nothing', async () => {
    const run = await mint(['--user', 'alice@example.com', '--ttl', '13h']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('--ttl is longer than identity.db_tokens.max_ttl');
  });

  it('rejects a malformed --ttl', async () => {
    const run = await mint(['--user', 'alice@example.com', '--ttl', 'soon']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--ttl: "soon" is not a duration');
  });
});
