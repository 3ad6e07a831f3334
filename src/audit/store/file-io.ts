import { constants, fstatSync } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/**
 * The file operations of the audit store, as one small interface. Every byte the store writes and
 * every sync it relies on goes through here, so a test can make any of them fail (ENOSPC, EIO,
 * EROFS) or stall, and check that the store fails closed.
 */
export interface StoreFile {
  /** Writes all of `chunks` at `position` (one vectored write; short writes are continued). */
  writev(chunks: readonly Uint8Array[], position: number): Promise<void>;
  /** Reads up to `length` bytes into `into[offset…]` from `position`; returns how many were read. */
  read(into: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<FileIdentity>;
  /**
   * {@link stat} on the calling thread: for the writer's per-batch check, where a trip to the I/O
   * threads costs the event loop more than the system call itself.
   */
  statSync(): FileIdentity;
  close(): Promise<void>;
}

export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  /** 0 once the file has been unlinked (for instance when its directory was deleted). */
  readonly nlink: number;
}

export interface OpenOptions {
  /**
   * O_DSYNC: every write returns only once its data (and the size needed to read it back) is on
   * stable storage, as if each were followed by fdatasync (POSIX synchronized I/O data integrity
   * completion).
   */
  readonly syncWrites?: boolean;
}

export interface StoreFs {
  /** Opens an existing file for reading and positional writing. */
  openFile(path: string, options?: OpenOptions): Promise<StoreFile>;
  /** Opens an existing file read-only. */
  openReadOnly(path: string): Promise<StoreFile>;
  /** Creates a new file, failing with EEXIST when it exists. */
  createFile(path: string): Promise<StoreFile>;
  /** Creates or empties a file. */
  replaceFile(path: string, options?: OpenOptions): Promise<StoreFile>;
  readFile(path: string): Promise<Uint8Array>;
  readDir(dir: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  /** A second name for an existing file; fails with EEXIST when `newPath` exists. */
  link(existingPath: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(dir: string): Promise<void>;
  /** fsync on the directory itself, so that a create, rename or unlink in it is durable. */
  syncDir(dir: string): Promise<void>;
  /** Identity of the file at `path`, or null when nothing is there. */
  statPath(path: string): Promise<FileIdentity | null>;
}

class NodeStoreFile implements StoreFile {
  readonly #handle: FileHandle;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  async writev(chunks: readonly Uint8Array[], position: number): Promise<void> {
    let pending = chunks.filter((chunk) => chunk.length > 0);
    let at = position;
    while (pending.length > 0) {
      // A regular file may take fewer bytes than asked (a disk filling up); continue with the
      // rest so that the next call reports the real error.
      const { bytesWritten } = await this.#handle.writev(pending as Uint8Array[], at);
      if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      at += bytesWritten;
      pending = dropWritten(pending, bytesWritten);
    }
  }

  async read(into: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.#handle.read(into, offset, length, position);
    return bytesRead;
  }

  datasync(): Promise<void> {
    return this.#handle.datasync();
  }

  sync(): Promise<void> {
    return this.#handle.sync();
  }

  truncate(length: number): Promise<void> {
    return this.#handle.truncate(length);
  }

  async stat(): Promise<FileIdentity> {
    const s = await this.#handle.stat();
    return { dev: s.dev, ino: s.ino, size: s.size, nlink: s.nlink };
  }

  statSync(): FileIdentity {
    const s = fstatSync(this.#handle.fd);
    return { dev: s.dev, ino: s.ino, size: s.size, nlink: s.nlink };
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}

function dropWritten(chunks: readonly Uint8Array[], written: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = written;
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
    skip = 0;
  }
  return rest;
}

function dsync(options: OpenOptions | undefined): number {
  return options?.syncWrites === true ? constants.O_DSYNC : 0;
}

/** The real file system. */
export const nodeStoreFs: StoreFs = {
  openFile: async (path, options) => new NodeStoreFile(await open(path, constants.O_RDWR | dsync(options))),
  openReadOnly: async (path) => new NodeStoreFile(await open(path, constants.O_RDONLY)),
  createFile: async (path) => new NodeStoreFile(await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600)),
  replaceFile: async (path, options) => new NodeStoreFile(await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | dsync(options), 0o600)),
  readFile: async (path) => readFile(path),
  readDir: (dir) => readdir(dir),
  rename: (from, to) => rename(from, to),
  link: (existingPath, newPath) => link(existingPath, newPath),
  unlink: (path) => unlink(path),
  mkdir: async (dir) => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  },
  syncDir: async (dir) => {
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  statPath: async (path) => {
    try {
      const s = await stat(path);
      return { dev: s.dev, ino: s.ino, size: s.size, nlink: s.nlink };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  },
};
