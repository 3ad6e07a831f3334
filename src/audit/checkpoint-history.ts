import { HISTORY_SEPARATOR } from './store/checkpoint-files.js';
import type { StoreFs } from './store/file-io.js';

/**
 * Reads the `checkpoints` history of an audit directory front to back (the store reads only its
 * tail): every entry is the byte 0x1E followed by one signed note, and a note never contains that
 * byte (see the store's `checkpoint-files`). Memory stays at one read buffer plus one entry,
 * however long the history is.
 */

export interface HistoryEntry {
  /** File offset of the entry's separator (or 0 for bytes before the first separator). */
  readonly offset: number;
  /** The note's bytes, without the separator. */
  readonly note: Uint8Array;
  /** No entry follows this one (within the bytes read). */
  readonly last: boolean;
  /** The bytes did not start with a separator, or the entry exceeds {@link MAX_HISTORY_ENTRY_BYTES}. */
  readonly malformed: boolean;
}

/** A signed checkpoint note is a few hundred bytes; anything far larger is not one. */
export const MAX_HISTORY_ENTRY_BYTES = 64 * 1024;
const READ_BYTES = 256 * 1024;

/**
 * Yields the entries of the history file at `path`, reading at most its first `size` bytes (the
 * size observed before the segments were listed, so that a live gateway's newer checkpoints are
 * not compared against records that were not read).
 */
export async function* readHistory(fs: StoreFs, path: string, size: number): AsyncGenerator<HistoryEntry> {
  if (size === 0) return;
  const file = await fs.openReadOnly(path);
  try {
    const buffer = new Uint8Array(READ_BYTES);
    // The entry being assembled. The bytes before the first separator form an entry too, which is
    // dropped when empty (the normal case) and malformed otherwise.
    let current = new PendingEntry(0, false);
    let held: HistoryEntry | null = null;
    let position = 0;
    while (position < size) {
      const n = await file.read(buffer, 0, Math.min(buffer.length, size - position), position);
      if (n === 0) break;
      const bytes = buffer.subarray(0, n);
      let from = 0;
      for (let separator = bytes.indexOf(HISTORY_SEPARATOR); separator >= 0; separator = bytes.indexOf(HISTORY_SEPARATOR, from)) {
        current.add(bytes.subarray(from, separator));
        if (current.separated || current.bytes > 0) {
          if (held !== null) yield held;
          held = current.entry();
        }
        current = new PendingEntry(position + separator, true);
        from = separator + 1;
      }
      current.add(bytes.subarray(from));
      position += n;
    }
    if (current.separated || current.bytes > 0) {
      if (held !== null) yield held;
      held = current.entry();
    }
    if (held !== null) yield { ...held, last: true };
  } finally {
    await file.close();
  }
}

class PendingEntry {
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #oversized = false;

  constructor(
    readonly offset: number,
    readonly separated: boolean,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  add(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#bytes += bytes.length;
    if (this.#bytes > MAX_HISTORY_ENTRY_BYTES) {
      this.#oversized = true;
      this.#parts = [];
      return;
    }
    this.#parts.push(bytes.slice());
  }

  entry(): HistoryEntry {
    const note = new Uint8Array(this.#oversized ? 0 : this.#bytes);
    let at = 0;
    for (const part of this.#parts) {
      note.set(part, at);
      at += part.length;
    }
    return { offset: this.offset, note, last: false, malformed: !this.separated || this.#oversized };
  }
}
