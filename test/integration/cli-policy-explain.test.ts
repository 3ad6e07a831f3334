import { describe, expect, it } from 'vitest';
import { EXAMPLE_ENV, repoRoot, runTollgate } from '../helpers/cli.js';

const CONFIG = 'config/tollgate.example.yaml';

function explain(args: readonly string[]) {
  return runTollgate(['policy', 'explain', '--config', CONFIG, ...args], { cwd: repoRoot, env: EXAMPLE_ENV });
}

/** The `decision:` line of an explanation (the last one for multi-statement texts). */
function decisionLines(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.startsWith('decision: '));
}

describe('tollgate policy explain on the example config', () => {
  // One HTTP and one SQL action per role, each with the rule that decides it.
  const cases = [
    {
      who: ['--user', 'alice@example.com', '--group', 'engineering'],
      http: ['POST https://app.example.com/app/orders/7', 'decision: allow by engineer.allow[0] (allowed-by-rule)', 0],
      sql: ['select name from customers', 'decision: allow by engineer.allow[1] (allowed-by-rule)', 0],
    },
    {
      who: ['--user', 'bob@example.com', '--group', 'dba'],
      http: ['GET https://app.example.com/app/', 'decision: deny by no rule (default deny) (no-matching-allow)', 1],
      sql: ['drop table orders', 'decision: deny by dba.deny[0] (denied-by-rule)', 1],
    },
    {
      who: ['--user', 'carol@example.com', '--group', 'security'],
      http: ['GET https://app.example.com/app/reports', 'decision: allow by security.allow[1] (allowed-by-rule)', 0],
      sql: ['select 1', 'decision: deny by no rule (default deny) (no-matching-allow)', 1],
    },
    {
      who: ['--user', 'dave@example.com', '--group', 'oncall'],
      http: ['GET https://app.example.com/app/', 'decision: deny by no rule (default deny) (no-matching-allow)', 1],
      sql: ['select * from payments', 'decision: deny by oncall.deny[0] (denied-by-rule)', 1],
    },
  ] as const;

  for (const { who, http, sql } of cases) {
    it(`${who[1]}: HTTP ${http[0]}`, async () => {
      const run = await explain([...who, '--http', http[0]]);
      expect(decisionLines(run.stdout)).toEqual([http[1]]);
      expect(run.code).toBe(http[2]);
    });

    it(`${who[1]}: SQL ${sql[0]}`, async () => {
      const run = await explain([...who, '--sql', sql[0], '--resource', 'shop']);
      expect(decisionLines(run.stdout)).toEqual([sql[1]]);
      expect(run.code).toBe(sql[2]);
    });
  }

  it('denies a function called in attribute notation, as the gateway does', async () => {
    const run = await explain(['--user', 'alice@example.com', '--group', 'engineering', '--sql', 'select c.pg_read_file from customers c', '--resource', 'shop']);
    expect(decisionLines(run.stdout)).toEqual(['decision: deny by engineer.deny[0] (denied-by-rule)']);
    expect(run.code).toBe(1);
  });

  it('shows the roles held and every rule considered, with why', async () => {
    const run = await explain(['--user', 'alice@example.com', '--group', 'engineering', '--sql', 'delete from orders', '--resource', 'shop']);
    expect(run.stdout).toContain('roles: engineer (via group engineering)');
    expect(run.stdout).toContain('class: write; tables: orders');
    expect(run.stdout).toContain('not matched engineer.allow[1]: statement class write is not one of read');
    expect(run.code).toBe(1);
  });

  it('denies a whole multi-statement text when one statement is denied', async () => {
    const run = await explain(['--user', 'alice@example.com', '--group', 'engineering', '--sql', 'select 1; delete from orders', '--resource', 'shop']);
    expect(decisionLines(run.stdout)).toEqual([
      'decision: allow by engineer.allow[1] (allowed-by-rule)',
      'decision: deny by no rule (default deny) (no-matching-allow)',
    ]);
    expect(run.stdout).toContain('the whole text is denied');
    expect(run.code).toBe(1);
  });

  it('denies SQL the parser rejects', async () => {
    const run = await explain(['--user', 'alice@example.com', '--group', 'engineering', '--sql', 'selec 1', '--resource', 'shop']);
    expect(run.stdout).toMatch(/decision: deny \(the PostgreSQL parser rejects the text: syntax error at or near "selec"\)/);
    expect(run.code).toBe(1);
  });

  it('reports an unmatched host or path as a 404', async () => {
    const run = await explain(['--user', 'alice@example.com', '--http', 'GET https://other.example.com/x']);
    expect(run.stdout).toContain('other.example.com/x\ndecision: no resource matches; the gateway answers 404');
    expect(run.code).toBe(1);
  });

  it('explains the path the upstream receives, after normalisation and prefix stripping', async () => {
    const run = await explain(['--user', 'alice@example.com', '--group', 'engineering', '--http', 'GET https://app.example.com/app/x/../orders']);
    expect(run.stdout).toContain('action: http GET /orders on resource app');
    expect(run.code).toBe(0);
  });

  it('reports a request target the gateway refuses', async () => {
    const run = await explain(['--user', 'alice@example.com', '--http', 'GET https://app.example.com/app/..;/admin']);
    expect(run.stdout).toContain('the gateway refuses this request target with 400 (path-parameter)');
    expect(run.code).toBe(1);
  });

  it.each([
    [['--user', 'a@example.com'], 'give exactly one of --http'],
    [['--user', 'a@example.com', '--http', 'GET /', '--sql', 'select 1'], 'give exactly one of --http'],
    [['--user', 'a@example.com', '--sql', 'select 1'], '--sql needs --resource'],
    [['--user', 'a@example.com', '--http', 'nonsense'], 'expected "METHOD URL"'],
    [['--user', 'a@example.com', '--sql', 'select 1', '--resource', 'app'], 'no postgres resource of that name'],
  ])('usage error %j exits 2', async (args, message) => {
    const run = await explain(args);
    expect(run.stderr).toContain(message);
    expect(run.code).toBe(2);
  });

  it('has --help', async () => {
    const run = await runTollgate(['policy', 'explain', '--help'], { cwd: repoRoot });
    expect(run.stdout).toContain('--http <request>');
    expect(run.code).toBe(0);
  });
});
