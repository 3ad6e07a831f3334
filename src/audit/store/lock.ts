import { join } from 'node:path';
import { TollgateError, isProcessAlive } from '../../core/index.js';
import type { StoreFs } from './file-io.js';

export const LOCK_FILE = 'lock';

/** Lock files held by this process, so that a stale lock carrying our own (reused) pid is told apart. */
const heldHere = new Set<string>();

export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes the audit directory's lock: a file named `lock` holding the owner's pid and a newline.
 * It is published with `link()` from a private temp file, so the lock appears atomically with its
 * content (never empty). A lock whose pid is not a live process is stale and taken over.
 *
 * Known limit: two processes that find the same stale lock at the same instant can both take it
 * over (unlink, then link); a real kernel lock (flock) is not reachable from Node without a
 * native module. Starting two gateways on one directory at the same moment after a crash is the
 * only way to hit it.
 */
export async function acquireDirLock(fs: StoreFs, dir: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  if (heldHere.has(path)) throw lockedError(path, process.pid);
  const temp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
  const file = await fs.replaceFile(temp);
  try {
    await file.writev([Buffer.from(`${process.pid}\n`)], 0);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await fs.link(temp, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      }
      const owner = await readOwner(fs, path);
      if (owner !== null && isAlive(owner)) throw lockedError(path, owner);
      await fs.unlink(path).catch(ignoreMissing);
    }
  } catch (error) {
    if (error instanceof TollgateError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw lockedError(path, await readOwner(fs, path));
    throw error;
  } finally {
    await fs.unlink(temp).catch(ignoreMissing);
  }
  await fs.syncDir(dir);
  heldHere.add(path);
  return {
    path,
    async release() {
      if (!heldHere.delete(path)) return;
      await fs.unlink(path).catch(ignoreMissing);
      await fs.syncDir(dir).catch(() => undefined);
    },
  };
}

async function readOwner(fs: StoreFs, path: string): Promise<number | null> {
  try {
    const text = Buffer.from(await fs.readFile(path)).toString('utf8');
    return /^\d+\n$/.test(text) ? Number.parseInt(text, 10) : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function isAlive(pid: number): boolean {
  // Our own pid in a lock we do not hold is a leftover of an earlier run that had the same pid
  // (common in containers, where the gateway is often pid 1).
  return pid !== process.pid && isProcessAlive(pid);
}

function lockedError(path: string, owner: number | null): TollgateError {
  const who = owner === null ? 'another process' : `process ${owner}`;
  return new TollgateError(
    'TG_ERR_AUDIT_LOCKED',
    `the audit directory is in use by ${who} (lock file ${path}); stop that process, or point this one at another audit directory`,
    { details: { path, pid: owner } },
  );
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
