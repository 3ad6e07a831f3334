import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The latest signed checkpoint of an audit directory is its `checkpoint` file (DESIGN.md §2
 * "Audit log"), replaced atomically by the store; the audit room reads it under this name too.
 */
const CHECKPOINT_FILE = 'checkpoint';

export interface CheckpointNote {
  /** The signed note, verbatim. */
  readonly text: string;
  /** When the file was written. */
  readonly mtimeMs: number;
}

/** The latest signed checkpoint note, or null before the first one. */
export async function readCheckpointNote(dir: string): Promise<CheckpointNote | null> {
  const path = join(dir, CHECKPOINT_FILE);
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: info.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
