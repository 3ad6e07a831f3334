import { once } from 'node:events';

/**
 * What a command may touch of the outside world. Commands receive it instead of reaching for
 * `process`, so tests can run them in-process and read exactly what they printed.
 */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /**
   * Resolves once stdout can take more text, so that a command streaming a large output (an
   * audit export) waits for a slow reader instead of buffering everything. Absent: at once.
   */
  readonly drain?: () => Promise<void>;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    drain: () => (process.stdout.writableNeedDrain ? once(process.stdout, 'drain').then(() => undefined) : Promise.resolve()),
  };
}

/** Exit codes of every `tollgate` command (DESIGN.md §3). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * Thrown by an action to end the command with a code after it has printed what it had to say.
 * The program catches it; nothing else does.
 */
export class CommandExit extends Error {
  /**
   * One of {@link EXIT} for Tollgate's own outcomes; a command that runs another program for the
   * user (`tollgate psql`) passes that program's status through unchanged.
   */
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
