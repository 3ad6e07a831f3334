import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateSignerKey } from '../../src/audit/index.js';
import { repoRoot } from './cli.js';
import { CLIENT_SECRET } from './http-gateway.js';

/** One line of the gateway's JSON log (a plain text line becomes `{ msg }`). */
export interface LogLine {
  readonly [key: string]: unknown;
  readonly msg?: string;
}

/** `tollgate serve` as a real child process, with its log collected line by line. */
export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every log line so far, in order: pass `logs.length` to {@link waitForLog} to wait for a new one. */
  readonly logs: LogLine[];
  /** The HTTP listener's URL, from the `tollgate serving URL` line. */
  readonly httpBase: string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  /** The first line from index `from` on that matches; fails after 20 s, showing what was logged. */
  waitForLog(from: number, match: (line: LogLine) => boolean): Promise<LogLine>;
  /** SIGTERM (drain, final checkpoint) unless it already exited; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `tollgate serve --config tollgate.yaml` from the sources in `cwd` with exactly `env`
 * (plus PATH and HOME), and waits until it says it is serving.
 */
export async function startServeProcess(cwd: string, env: Readonly<Record<string, string>>): Promise<ServeProcess> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = spawn(process.execPath, ['--import', tsx, join(repoRoot, 'src/cli/main.ts'), 'serve', '--config', 'tollgate.yaml'], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: LogLine[] = [];
  let pending = '';
  child.stderr.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  child.stdout.resume();
  const waitForLog = async (from: number, match: (line: LogLine) => boolean): Promise<LogLine> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const found = logs.slice(from).find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw new Error(`no matching log line; the gateway logged:\n${logs.slice(from).map((line) => JSON.stringify(line)).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  try {
    const serving = await waitForLog(0, (line) => line.msg?.startsWith('tollgate serving ') === true);
    const httpBase = /tollgate serving (\S+)/.exec(serving.msg ?? '')?.[1] ?? '';
    return { child, logs, httpBase, exited, waitForLog, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The `server:` section of a config for a serve test: the public URL the test IdP knows, the HTTP
 * and admin listeners on free ports unless a test needs a fixed one (parallel test files must never
 * contend for a default port).
 */
export function serverYaml(options: { readonly publicUrl?: string; readonly listen?: string; readonly admin?: string } = {}): string {
  return `server:
  public_url: ${options.publicUrl ?? 'http://127.0.0.1:8080'}
  http:
    listen: ${options.listen ?? '127.0.0.1:0'}
  admin:
    listen: ${options.admin ?? '127.0.0.1:0'}
`;
}

/** One `resources:` entry: an HTTP resource `name` at `upstream`, matched by the prefix `/<name>/`. */
export function httpResourceYaml(name: string, upstream: string): string {
  return `  - name: ${name}
    kind: http
    upstream: ${upstream}
    match:
      path_prefix: /${name}/
`;
}

/** Roles and grants: group `engineering` may use `resources`, nothing else. */
export function engineersYaml(resources: readonly string[]): string {
  return `roles:
  engineer:
    allow:
${resources.map((resource) => `      - resource: ${resource}\n`).join('')}grants:
  - role: engineer
    groups: [engineering]
`;
}

/** The `audit:` section: `./audit` beside the config, signed with `AUDIT_KEY`, plus `extra` lines. */
export function auditYaml(logId: string, extra = ''): string {
  return `audit:
  dir: ./audit
  log_id: ${logId}
  signing_key: \${env:AUDIT_KEY}
${extra}`;
}

/**
 * The `identity:` section of a config for a gateway in front of the test IdP at `issuer`, its
 * secrets taken from the environment (`CLIENT_SECRET`, `SESSION_KEY`, `DB_TOKEN_KEY`), as the
 * serve processes of these tests get them.
 */
export function identityYaml(issuer: string): string {
  return `identity:
  issuer: ${issuer}
  client_id: tollgate
  client_secret: \${env:CLIENT_SECRET}
  session:
    keys: ["\${env:SESSION_KEY}"]
  db_tokens:
    signing_key: \${env:DB_TOKEN_KEY}
`;
}

/** The secrets {@link identityYaml} and `audit.signing_key: \${env:AUDIT_KEY}` read. */
// A type, not an interface: it must pass where a plain environment record is wanted.
export type ServeEnv = {
  readonly CLIENT_SECRET: string;
  readonly SESSION_KEY: string;
  readonly DB_TOKEN_KEY: string;
  readonly AUDIT_KEY: string;
};

/** {@link ServeEnv} with keys of this test's own (`name` tells them apart) and a fresh audit key. */
export function serveEnv(name: string): ServeEnv {
  return {
    CLIENT_SECRET,
    SESSION_KEY: `${name}-session-key-0123456789abcdef`,
    DB_TOKEN_KEY: `${name}-db-token-key-0123456789abcdef`,
    AUDIT_KEY: generateSignerKey('test.tollgate').signerKey,
  };
}
