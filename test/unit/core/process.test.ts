import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../../src/core/index.js';
import { repoRoot } from '../../helpers/cli.js';

describe('isProcessAlive', () => {
  it('is true for a running process and false once it has exited and been reaped', async () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    const pid = child.pid ?? 0;
    expect(isProcessAlive(pid)).toBe(true);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(isProcessAlive(pid)).toBe(false);
  });

  it('counts a process of another user (EPERM) as alive', () => {
    // pid 1 belongs to root: signalling it as any other user fails with EPERM, the path under
    // test. Run as root (CI is), the check runs in a child with another uid.
    const module = pathToFileURL(join(repoRoot, 'src/core/process.ts')).href;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const script =
      `import(${JSON.stringify(module)}).then((m) => { let code = 'none'; try { process.kill(1, 0); } catch (e) { code = e.code; } ` +
      'process.stdout.write(JSON.stringify({ code, alive: m.isProcessAlive(1) })); })';
    const asOther = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const run = spawnSync(process.execPath, ['--import', tsx, '-e', script], { ...asOther, cwd: tmpdir(), env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ code: 'EPERM', alive: true });
  });
});
