import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The CLI runs from source through tsx's loader, so tests need no build step and cannot run
// against a stale dist/.
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const main = join(repoRoot, 'src/cli/main.ts');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `tollgate ARGS` in `cwd` with only the variables node needs plus `env`: nothing leaks in
 * from the outer shell.
 */
export function runTollgate(args: readonly string[], options: { cwd: string; env?: Readonly<Record<string, string>> }): Promise<CliRun> {
  const base: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) base[name] = value;
  }
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      ['--import', tsxLoader, main, ...args],
      { cwd: options.cwd, env: { ...base, ...options.env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

/** Values for every variable `config/tollgate.example.yaml` references; long enough for key checks. */
export const EXAMPLE_ENV: Readonly<Record<string, string>> = Object.fromEntries(
  [
    'TOLLGATE_HTTP_TLS_CERT',
    'TOLLGATE_HTTP_TLS_KEY',
    'TOLLGATE_PG_TLS_CERT',
    'TOLLGATE_PG_TLS_KEY',
    'TOLLGATE_OIDC_CLIENT_SECRET',
    'TOLLGATE_SESSION_KEY',
    'TOLLGATE_DB_TOKEN_KEY',
    'TOLLGATE_AUDIT_SIGNING_KEY',
    'SHOP_DB_CA',
    'SHOP_READER_PASSWORD',
    'SHOP_WRITER_PASSWORD',
  ].map((name) => [name, `${name.toLowerCase()}-value-`.padEnd(40, 'z')]),
);
