import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { storeLogin } from '../../src/cli/credentials.js';
import { withFileLock } from '../../src/cli/file-lock.js';
import { isTollgateError } from '../../src/core/index.js';

/**
 * A second (third, ...) process for the credentials lock tests, run as
 *
 *   node --import tsx test/helpers/credentials-child.ts store <file> <dir> <gateway>
 *     prints `ready`, waits for a line on stdin (the start signal shared by all children), stores
 *     a login for <gateway>, and exits 0, or prints `error <code> <message>` and exits 1.
 *   node --import tsx test/helpers/credentials-child.ts hold <lock file>
 *     takes the lock, prints `held`, and keeps it until its stdin closes.
 */

const HELPER = fileURLToPath(import.meta.url);

/** A started helper; `line()` resolves with the next line it prints. */
export interface CredentialsChild {
  readonly process: ChildProcessWithoutNullStreams;
  line(): Promise<string>;
  /** Resolves with the exit code and everything printed on stderr. */
  readonly exited: Promise<{ code: number | null; stderr: string }>;
}

export function startCredentialsChild(args: readonly string[]): CredentialsChild {
  const child = spawn(process.execPath, ['--import', 'tsx', HELPER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiting: Array<(line: string) => void> = [];
  const lines: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (let end = stdout.indexOf('\n'); end >= 0; end = stdout.indexOf('\n')) {
      const line = stdout.slice(0, end);
      stdout = stdout.slice(end + 1);
      const next = waiting.shift();
      if (next === undefined) lines.push(line);
      else next(line);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      // A child that dies before printing what a test waits for must fail the test, not hang it.
      for (const next of waiting.splice(0)) next(`exited ${code}: ${stderr}`);
      resolve({ code, stderr });
    });
  });
  return {
    process: child,
    exited,
    line: () => {
      const ready = lines.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      if (child.exitCode !== null) return Promise.resolve(`exited ${child.exitCode}: ${stderr}`);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

async function main(args: readonly string[]): Promise<void> {
  const [mode, ...rest] = args;
  if (mode === 'store') {
    const [file, dir, gateway] = rest;
    if (file === undefined || dir === undefined || gateway === undefined) throw new Error('usage: store <file> <dir> <gateway>');
    process.stdout.write('ready\n');
    await once(process.stdin, 'data');
    process.stdin.destroy();
    await storeLogin(file, dir, {
      gateway,
      user: 'alice@example.com',
      token: `tgdb_token-for-${gateway}`,
      expires_at: '2999-01-01T00:00:00.000Z',
      postgres: { host: 'gw.example.com', port: 6432, sslmode: 'require' },
      databases: [{ name: 'shop', logins: ['reader'] }],
    });
    return;
  }
  if (mode === 'hold') {
    const [lockPath] = rest;
    if (lockPath === undefined) throw new Error('usage: hold <lock file>');
    await withFileLock(lockPath, async () => {
      process.stdout.write('held\n');
      process.stdin.resume();
      await once(process.stdin, 'end');
    });
    return;
  }
  throw new Error(`unknown mode ${String(mode)}`);
}

if (process.argv[1] === HELPER) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(isTollgateError(error) ? `error ${error.code} ${error.message}\n` : `error ${String((error as Error).stack ?? error)}\n`);
    process.exitCode = 1;
  }
}
