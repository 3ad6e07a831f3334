import { join } from 'node:path';
import { TollgateError } from '../../core/index.js';
import { openCheckpoint } from '../note.js';
import type { Checkpoint, NoteVerifier } from '../note.js';
import type { StoreFs } from './file-io.js';
import { CHECKPOINT_FILE, CHECKPOINT_HISTORY_FILE, TEMP_SUFFIX } from './layout.js';

/**
 * The two checkpoint files of an audit directory.
 *
 * `checkpoint` holds the latest signed checkpoint note (C2SP tlog-checkpoint in a C2SP signed
 * note), exactly as published. It is replaced atomically: temp file, fsync, rename, fsync of the
 * directory.
 *
 * `checkpoints` is the append-only history: every signed note, each preceded by the byte 0x1E
 * (ASCII RS, the separator of RFC 7464 text sequences). A signed note may contain no control
 * character other than newline (signed-note "Format"), so RS never occurs inside a note and the
 * file splits unambiguously, from either end: `tr '\036' '\n'` shows it as text, and the newest
 * note is found by reading the file's tail, however long the history grows.
 *
 * A new note goes to the history first (write, fdatasync) and only then replaces `checkpoint`,
 * so `checkpoint` is always the history's last note, or the one before it after a crash between
 * the two steps.
 */
export const HISTORY_SEPARATOR = 0x1e;
/** Notes are a few hundred bytes; the tail read must hold the last two. */
const HISTORY_TAIL_BYTES = 256 * 1024;

export interface SignedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The signed note, verbatim. */
  readonly note: string;
}

/** A torn entry at the end of the history, to be cut. */
export interface HistoryCut {
  readonly file: string;
  readonly offset: number;
  readonly bytes: number;
  readonly reason: 'incomplete-checkpoint';
}

export interface CheckpointFilesState {
  /** The newest signed checkpoint, or null when the log was never signed. */
  readonly latest: SignedCheckpoint | null;
  /** Where the next history entry goes. */
  readonly historyEnd: number;
  readonly historyCut: HistoryCut | null;
  /** `checkpoint` is missing or older than the history's last note and was rewritten. */
  readonly reinstalled: boolean;
}

function tampered(message: string, details: Record<string, unknown> = {}): TollgateError {
  return new TollgateError('TG_ERR_AUDIT_TAMPERED', message, { details });
}

const KEY_HINT = 'if the signing key or log id was changed, move the audit directory aside and start a new log';

async function readOptional(fs: StoreFs, path: string): Promise<Uint8Array | null> {
  try {
    return await fs.readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function openSigned(note: Uint8Array, verifier: NoteVerifier, logId: string): SignedCheckpoint | { problem: string; malformed: boolean } {
  const opened = openCheckpoint(note, [verifier], { origin: logId });
  if (!opened.ok) return { problem: `${opened.reason}: ${opened.detail}`, malformed: opened.reason === 'malformed' };
  return { checkpoint: opened.checkpoint, note: Buffer.from(note).toString('utf8') };
}

/**
 * Reads both checkpoint files, finds a torn last history entry (a crash while appending it; the
 * caller records it, then cuts it with {@link cutHistory}), and finishes an interrupted
 * replacement of `checkpoint`. Throws `TG_ERR_AUDIT_TAMPERED` for
 * anything a crash cannot explain: a note that does not verify with the log's key, a history
 * that lacks the note `checkpoint` holds, or damage before the last entry.
 */
export async function loadCheckpointFiles(fs: StoreFs, dir: string, verifier: NoteVerifier, logId: string): Promise<CheckpointFilesState> {
  const historyPath = join(dir, CHECKPOINT_HISTORY_FILE);
  const checkpointPath = join(dir, CHECKPOINT_FILE);
  const history = await readHistoryTail(fs, historyPath, verifier, logId);
  const fileBytes = await readOptional(fs, checkpointPath);

  let reinstalled = false;
  if (fileBytes === null) {
    if (history.latest !== null) {
      await replaceCheckpointFile(fs, dir, history.latest.note);
      reinstalled = true;
    }
  } else {
    const current = openSigned(fileBytes, verifier, logId);
    if ('problem' in current) {
      throw tampered(`the checkpoint file ${checkpointPath} does not verify with the log's signing key and log id (${current.problem}); ${KEY_HINT}`, {
        file: checkpointPath,
      });
    }
    const last = history.latest;
    if (last === null) {
      throw tampered(`the checkpoint history ${historyPath} is missing or empty although ${checkpointPath} holds a signed checkpoint of size ${current.checkpoint.size}`, {
        file: historyPath,
      });
    }
    if (current.note !== last.note) {
      if (current.checkpoint.size >= last.checkpoint.size) {
        throw tampered(`the checkpoint file (size ${current.checkpoint.size}) is not the last entry of the checkpoint history (size ${last.checkpoint.size}): entries were removed from ${historyPath}`, {
          file: historyPath,
        });
      }
      await replaceCheckpointFile(fs, dir, last.note);
      reinstalled = true;
    }
  }
  return { latest: history.latest, historyEnd: history.end, historyCut: history.cut, reinstalled };
}

async function readHistoryTail(
  fs: StoreFs,
  path: string,
  verifier: NoteVerifier,
  logId: string,
): Promise<{ latest: SignedCheckpoint | null; end: number; cut: HistoryCut | null }> {
  const identity = await fs.statPath(path);
  if (identity === null || identity.size === 0) return { latest: null, end: 0, cut: null };
  const size = identity.size;
  const windowBytes = Math.min(size, HISTORY_TAIL_BYTES);
  const start = size - windowBytes;
  const tail = new Uint8Array(windowBytes);
  const file = await fs.openReadOnly(path);
  try {
    let filled = 0;
    while (filled < windowBytes) {
      const n = await file.read(tail, filled, windowBytes - filled, start + filled);
      if (n === 0) break;
      filled += n;
    }
    if (filled !== windowBytes) throw tampered(`the checkpoint history ${path} changed while it was read`, { file: path });
  } finally {
    await file.close();
  }
  if (start === 0 && tail[0] !== HISTORY_SEPARATOR) {
    throw tampered(`the checkpoint history ${path} does not start with an entry separator (byte 0x1E)`, { file: path, offset: 0 });
  }
  const last = tail.lastIndexOf(HISTORY_SEPARATOR);
  if (last < 0) throw tampered(`the last ${windowBytes} bytes of the checkpoint history ${path} hold no entry separator`, { file: path });
  const entry = openSigned(tail.subarray(last + 1), verifier, logId);
  if (!('problem' in entry)) {
    checkFollows(tail, last, start, entry, verifier, logId, path);
    return { latest: entry, end: size, cut: null };
  }
  if (!entry.malformed) {
    throw tampered(`the last entry of the checkpoint history ${path} does not verify with the log's signing key and log id (${entry.problem}); ${KEY_HINT}`, {
      file: path,
      offset: start + last,
    });
  }
  // A malformed last entry is what a crash in the middle of appending it leaves behind; it was
  // never installed as `checkpoint`, so the entry before it is the latest.
  const cut: HistoryCut = { file: CHECKPOINT_HISTORY_FILE, offset: start + last, bytes: size - (start + last), reason: 'incomplete-checkpoint' };
  const previous = last === 0 ? -1 : tail.lastIndexOf(HISTORY_SEPARATOR, last - 1);
  let latest: SignedCheckpoint | null = null;
  if (previous >= 0) {
    const before = openSigned(tail.subarray(previous + 1, last), verifier, logId);
    if ('problem' in before) {
      throw tampered(`an entry of the checkpoint history ${path} does not verify with the log's signing key and log id (${before.problem}); ${KEY_HINT}`, {
        file: path,
        offset: start + previous,
      });
    }
    checkFollows(tail, previous, start, before, verifier, logId, path);
    latest = before;
  } else if (start > 0) {
    throw tampered(`the checkpoint history ${path} holds a damaged entry of more than ${windowBytes} bytes`, { file: path });
  }
  return { latest, end: cut.offset, cut };
}

/**
 * Refuses a latest history entry (at `at` of `tail`) that does not follow the entry before it:
 * the store appends only checkpoints of a larger tree, so a smaller or conflicting one is a stale
 * note appended by someone else, to have the store sign over records rewritten after it.
 */
function checkFollows(tail: Uint8Array, at: number, start: number, latest: SignedCheckpoint, verifier: NoteVerifier, logId: string, path: string): void {
  if (at === 0) return;
  const previous = tail.lastIndexOf(HISTORY_SEPARATOR, at - 1);
  // The window holds far more than two notes; an entry before a window start is out of reach.
  if (previous < 0) return;
  const before = openSigned(tail.subarray(previous + 1, at), verifier, logId);
  if ('problem' in before) {
    throw tampered(`an entry of the checkpoint history ${path} does not verify with the log's signing key and log id (${before.problem}); ${KEY_HINT}`, {
      file: path,
      offset: start + previous,
    });
  }
  const [size, earlier] = [latest.checkpoint.size, before.checkpoint.size];
  if (size < earlier || (size === earlier && latest.note !== before.note)) {
    const what = size < earlier ? 'smaller than' : 'for the same size as, with another root than,';
    throw tampered(
      `the last entry of the checkpoint history ${path} (size ${size}) is ${what} the entry before it (size ${earlier}): an old checkpoint was appended to the history. Nothing was changed; run "tollgate audit verify" on the directory for the full report, then move the directory aside and start a new log`,
      { file: path, offset: start + at, size, previousSize: earlier },
    );
  }
}

/** Cuts the history back to `length` bytes (after a torn last entry was recorded). */
export async function cutHistory(fs: StoreFs, dir: string, length: number): Promise<void> {
  const file = await fs.openFile(join(dir, CHECKPOINT_HISTORY_FILE));
  try {
    await file.truncate(length);
    await file.datasync();
  } finally {
    await file.close();
  }
}

/** Appends one note to the history at `offset` (its current end) and makes it durable. */
export async function appendHistoryEntry(fs: StoreFs, dir: string, offset: number, note: string): Promise<number> {
  const entry = Buffer.concat([Buffer.of(HISTORY_SEPARATOR), Buffer.from(note, 'utf8')]);
  const path = join(dir, CHECKPOINT_HISTORY_FILE);
  let file;
  try {
    file = await fs.openFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    file = await fs.createFile(path);
    await fs.syncDir(dir);
  }
  try {
    // Whatever a failed earlier attempt left past `offset` is cut first, so a partial entry is
    // never followed by a whole one.
    await file.truncate(offset);
    await file.writev([entry], offset);
    await file.datasync();
  } finally {
    await file.close();
  }
  return offset + entry.length;
}

/** Replaces `checkpoint` atomically: temp file, fsync, rename, fsync of the directory. */
export async function replaceCheckpointFile(fs: StoreFs, dir: string, note: string): Promise<void> {
  const path = join(dir, CHECKPOINT_FILE);
  const temp = `${path}${TEMP_SUFFIX}`;
  const file = await fs.replaceFile(temp);
  try {
    await file.writev([Buffer.from(note, 'utf8')], 0);
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(temp, path);
  await fs.syncDir(dir);
}
