import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { psqlCommand } from '../../../src/proxy/http/db-access.js';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-psql-command-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What psql would receive as its one argument when `command` is pasted into a POSIX shell. */
function argumentsFromShell(command: string): string[] {
  const out = execFileSync('sh', ['-c', `psql() { for a in "$@"; do printf '%s\\0' "$a"; done; }; ${command}`], { encoding: 'utf8', cwd: dir });
  return out.split('\0').slice(0, -1);
}

describe('psqlCommand', () => {
  it('keeps the familiar double-quoted form for plain values', () => {
    expect(psqlCommand({ host: 'gw.example.com', port: 6432, dbname: 'shop', user: 'alice@example.com', sslmode: 'require' })).toBe(
      'psql "host=gw.example.com port=6432 dbname=shop user=alice@example.com sslmode=require"',
    );
  });

  it('hands psql exactly its conninfo, never running what an e-mail address holds', () => {
    const marker = join(dir, 'ran');
    const hostile = [`x$(touch ${marker})@example.com`, 'x`touch ' + marker + '`@example.com', "o'brien@example.com", 'a"b@example.com', 'back\\slash@example.com', 'two words@example.com', 'bang!@example.com'];
    for (const user of hostile) {
      const [conninfo, ...rest] = argumentsFromShell(psqlCommand({ host: 'gw.example.com', port: 6432, dbname: 'shop', user, sslmode: 'require' }));
      expect(rest).toEqual([]);
      // libpq's conninfo syntax: the value quoted, `\\` and `\\'` escaped inside.
      const quoted = /^[A-Za-z0-9@._+:-]+$/.test(user) ? user : `'${user.replace(/[\\']/g, (c) => `\\${c}`)}'`;
      expect(conninfo).toBe(`host=gw.example.com port=6432 dbname=shop user=${quoted} sslmode=require`);
    }
    expect(existsSync(marker)).toBe(false);
  });
});
