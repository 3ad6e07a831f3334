import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../../src/core/index.js';

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
    // pid 1 always exists; for a non-root user signalling it fails with EPERM.
    expect(isProcessAlive(1)).toBe(true);
  });
});
