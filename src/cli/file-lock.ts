import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { TollgateError, isProcessAlive } from '../core/index.js';

/**
 * A lock file that serialises a read-modify-write of one file across processes (several
 * `tollgate login` runs at once), for files Tollgate replaces by rename. Node has no portable
 * kernel lock (flock) without a native module, so the lock is a file created with O_EXCL
 * (`open(..., 'wx')`), which only one process can create, and which also works on NFS home
 * folders (NFSv3 and later honour O_EXCL).
 *
 * The lock holds `{ pid, host, created, nonce }`. A lock is stale, and is taken over, when its
 * process is gone (same host, pid not alive) or when it is older than `staleMs`, whatever its pid
 * says (a reused pid, or a holder on another host whose pid cannot be checked from here). A lock
 * whose content cannot be parsed (an O_EXCL create not yet followed by its write, or a power loss
 * between the two) ages by its mtime.
 *
 * Removal is the one delicate step: two waiters that both judged the same lock stale must not
 * both remove "the lock", or the second would remove the fresh lock a third process took in
 * between. So every removal, by a taker-over or by the owner releasing, first creates a claim
 * file named after that lock instance (`<lock>.<id>.claim`, O_EXCL again, so one claimant per
 * instance), then checks the lock path still holds that instance, and only then unlinks it. While
 * the claim stands, nothing else can remove or replace that instance, so the unlink removes
 * exactly the lock that was judged stale.
 */

export const LOCK_WAIT_MS = 5_000;
export const LOCK_STALE_MS = 30_000;

export interface FileLockOptions {
  /** How long to wait for a lock held by a live process before failing; default 5 s. */
  readonly waitMs?: number;
  /** Age after which a lock is stale even when its pid looks alive; default 30 s. */
  readonly staleMs?: number;
}

const holderSchema = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  created: z.iso.datetime({ offset: true }),
  // Hex only: the nonce names the claim file.
  nonce: z.string().regex(/^[0-9a-f]{24}$/),
});

type Holder = z.infer<typeof holderSchema>;

/** One lock file as found on disk: `id` tells this instance apart from any later one. */
interface LockInstance {
  readonly id: string;
  readonly holder: Holder | null;
  readonly ageMs: number;
}

/** Nonces of the locks this process holds, so that a lock left by an earlier process with our pid reads as stale. */
const heldHere = new Set<string>();

/**
 * Runs `work` while holding the lock file `lockPath` (whose folder must exist), and removes the
 * lock afterwards, whether `work` succeeded or threw. Waits up to `waitMs` (randomised
 * exponential back-off) for a live holder; then throws `TG_ERR_CREDENTIALS_LOCKED` naming the
 * lock file.
 */
export async function withFileLock<T>(lockPath: string, work: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const nonce = await acquire(lockPath, options.waitMs ?? LOCK_WAIT_MS, options.staleMs ?? LOCK_STALE_MS);
  try {
    return await work();
  } finally {
    heldHere.delete(nonce);
    await removeInstance(lockPath, nonce);
  }
}

async function acquire(lockPath: string, waitMs: number, staleMs: number): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt += 1) {
    const nonce = await tryCreate(lockPath);
    if (nonce !== null) return nonce;
    // Null when the lock went between our create and our read (released): the short first
    // back-off steps retry it almost at once.
    const found = await readInstance(lockPath);
    // A stale lock we removed ourselves: try again at once. One whose claim someone else holds
    // is being removed by them (or their claim outlived them): wait like for a live holder.
    if (found !== null && isStale(found, staleMs) && (await removeInstance(lockPath, found.id))) continue;
    const left = deadline - Date.now();
    if (left <= 0) throw lockedError(lockPath, found?.holder ?? null);
    // Full jitter over an exponential cap (2 ms doubling to 100 ms): waiters that collided once
    // spread out instead of colliding again in step.
    await sleep(Math.min(left, 1 + Math.random() * Math.min(100, 2 ** (attempt + 1))));
  }
}

/** Creates the lock with this process as holder; null when a lock is already there. */
async function tryCreate(lockPath: string): Promise<string | null> {
  const holder: Holder = { pid: process.pid, host: hostname(), created: new Date().toISOString(), nonce: randomBytes(12).toString('hex') };
  let handle: FileHandle;
  try {
    handle = await open(lockPath, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw error;
  }
  // Marked as ours before its content is visible: from here on the lock is held.
  heldHere.add(holder.nonce);
  try {
    await handle.writeFile(`${JSON.stringify(holder)}\n`, 'utf8');
  } catch (error) {
    heldHere.delete(holder.nonce);
    await handle.close();
    await unlink(lockPath).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return holder.nonce;
}

async function readInstance(lockPath: string): Promise<LockInstance | null> {
  let text: string;
  let mtimeMs: number;
  let ino: number;
  try {
    const handle = await open(lockPath, 'r');
    try {
      const info = await handle.stat();
      text = await handle.readFile('utf8');
      mtimeMs = info.mtimeMs;
      ino = info.ino;
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let holder: Holder | null = null;
  try {
    const parsed = holderSchema.safeParse(JSON.parse(text));
    if (parsed.success) holder = parsed.data;
  } catch {
    holder = null;
  }
  if (holder !== null) return { id: holder.nonce, holder, ageMs: Date.now() - Date.parse(holder.created) };
  // No nonce to go by: the inode and mtime tell this unreadable lock apart from a later one.
  return { id: `x${ino}-${Math.trunc(mtimeMs)}`, holder: null, ageMs: Date.now() - mtimeMs };
}

function isStale(found: LockInstance, staleMs: number): boolean {
  if (found.ageMs > staleMs) return true;
  const holder = found.holder;
  // A pid means something only on the host that wrote it.
  if (holder === null || holder.host !== hostname()) return false;
  // Our own pid on a lock we do not hold is a leftover of an earlier process that had the same
  // pid (common in containers).
  if (holder.pid === process.pid) return !heldHere.has(holder.nonce);
  return !isProcessAlive(holder.pid);
}

/**
 * Removes the lock at `lockPath` if, and only if, it is still the instance `id`. Returns false,
 * doing nothing, when another process holds the claim on that instance (it is removing it).
 */
async function removeInstance(lockPath: string, id: string): Promise<boolean> {
  const claim = `${lockPath}.${id}.claim`;
  try {
    await (await open(claim, 'wx', 0o600)).close();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    const current = await readInstance(lockPath);
    if (current?.id === id) await unlink(lockPath).catch(ignoreMissing);
  } finally {
    await unlink(claim).catch(ignoreMissing);
  }
  return true;
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

function lockedError(lockPath: string, holder: Holder | null): TollgateError {
  const who = holder === null ? 'another process' : `process ${holder.pid} on ${holder.host} (since ${holder.created})`;
  return new TollgateError(
    'TG_ERR_CREDENTIALS_LOCKED',
    `${lockPath} is held by ${who}: another tollgate login is storing a token. Run tollgate login again once it is done; if no tollgate login is running, delete ${lockPath}`,
    { details: { path: lockPath, pid: holder?.pid ?? null } },
  );
}
