/**
 * Driving the bench's processes, shared by `run.ts` and `profile.ts`: the servers of
 * `servers.ts` (one child process each, spoken to over IPC) and the open-loop generator of
 * `open-loop.ts` (a child process whose last stdout line is its JSON result).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CONNECTIONS = 64;
export const PATH = '/app/orders/42?limit=50';

export interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  /** A logged-in session's cookie, for the Tollgate modes. */
  readonly cookie?: string;
}

export interface OpenLoopResult {
  readonly ok: number;
  readonly errors: number;
  readonly rate: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly dueP99Ms: number;
  readonly wakeLagP99Ms: number;
  readonly cpuMsPerSecond: number;
  readonly processCpuMs: number;
}

/** Starts one `servers.ts` mode and waits for its address. */
export function start(mode: string, upstream?: string): Promise<Started> {
  const child = fork(fileURLToPath(new URL('./servers.ts', import.meta.url)), [mode], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (message: { url: string; cookie?: string }) => resolve({ child, ...message }));
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
    child.send({ upstream });
  });
}

/** Sends `message` to a server and resolves with its reply: the first message that carries `key`. */
export function ask<T extends object>(started: Started, message: object, key: keyof T & string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (reply: Record<string, unknown>): void => {
      if (!(key in reply)) return;
      started.child.off('message', onMessage);
      resolve(reply as T);
    };
    started.child.on('message', onMessage);
    started.child.send(message);
  });
}

export async function stop(started: Started): Promise<void> {
  const exited = new Promise<void>((resolve) => started.child.once('exit', () => resolve()));
  started.child.send({ close: true });
  const timer = setTimeout(() => started.child.kill(), 10_000);
  await exited;
  clearTimeout(timer);
}

/** One open-loop run at `rate` req/s; failed requests make the figures meaningless, so they throw. */
export function openLoop(name: string, target: Started, rate: number, seconds: number): OpenLoopResult {
  const script = fileURLToPath(new URL('./open-loop.ts', import.meta.url));
  const args = ['--import', 'tsx', script, `${target.url}${PATH}`, String(Math.round(rate)), String(seconds), String(CONNECTIONS), ...(target.cookie === undefined ? [] : [target.cookie])];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8' });
  const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as OpenLoopResult;
  if (result.errors > 0) throw new Error(`${name}: ${result.errors} failed requests at ${Math.round(rate)} req/s; the numbers would be meaningless`);
  return result;
}
