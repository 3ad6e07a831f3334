import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { createChainVerifier, generateSignerKey, openFileStore, parseSignerKey, parseVerifierKey } from '../../src/audit/index.js';
import type { AuditRecord, AuditStore, FileStoreOptions, NoteSigner, NoteVerifier, StoreFile, StoreFs } from '../../src/audit/index.js';
import { nodeStoreFs } from '../../src/audit/store/file-io.js';

export const TEST_LOG_ID = 'test.example/audit';

export function tempAuditDir(): string {
  return mkdtempSync(join(tmpdir(), 'tollgate-audit-test-'));
}

export interface TestKeys {
  readonly signerKey: string;
  readonly verifierKey: string;
  readonly signer: NoteSigner;
  readonly verifier: NoteVerifier;
}

export function testKeys(name = 'test.example'): TestKeys {
  const { signerKey, verifierKey } = generateSignerKey(name);
  return { signerKey, verifierKey, signer: parseSignerKey(signerKey), verifier: parseVerifierKey(verifierKey) };
}

/** A frame built independently of the store: u32be length ‖ bytes ‖ u32be crc32. */
/** The audit directories and stores of one test file: `cleanup()` (in `afterEach`) closes and removes them. */
export interface StoreFixture {
  /** A new, empty temp directory. */
  newDir(): string;
  /** Opens the test log in `dir` with the file's defaults, then `options`. */
  open(dir: string, options?: Partial<FileStoreOptions>): Promise<AuditStore>;
  cleanup(): Promise<void>;
}

export function storeFixture(keys: TestKeys, defaults: Partial<FileStoreOptions> = {}): StoreFixture {
  const dirs: string[] = [];
  const stores: AuditStore[] = [];
  return {
    newDir: () => {
      const dir = tempAuditDir();
      dirs.push(dir);
      return dir;
    },
    open: async (dir, options = {}) => {
      const store = await openFileStore({ dir, logId: TEST_LOG_ID, signer: keys.signer, ...defaults, ...options });
      stores.push(store);
      return store;
    },
    cleanup: async () => {
      await Promise.all(stores.splice(0).map((store) => store.close()));
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function frameOf(record: Uint8Array): Buffer {
  const frame = Buffer.alloc(record.length + 8);
  frame.writeUInt32BE(record.length, 0);
  frame.set(record, 4);
  frame.writeUInt32BE(crc32(record) >>> 0, 4 + record.length);
  return frame;
}

export interface FrameLocation {
  readonly segment: string;
  readonly offset: number;
  readonly length: number;
}

export interface ReadLog {
  readonly records: AuditRecord[];
  readonly frames: FrameLocation[];
  readonly segments: string[];
}

/**
 * Reads a closed log with its own frame parser and checks it with the pure chain verifier:
 * every byte must belong to a whole frame, every CRC must match, the chain must hold.
 */
function isZero(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === 0);
}

export function readLog(dir: string, logId = TEST_LOG_ID): ReadLog {
  const segments = readdirSync(dir)
    .filter((name) => /^\d{20}\.seg$/.test(name))
    .sort();
  const verifier = createChainVerifier({ logId });
  const records: AuditRecord[] = [];
  const frames: FrameLocation[] = [];
  for (const segment of segments) {
    const bytes = readFileSync(join(dir, segment));
    if (Number(segment.slice(0, 20)) !== records.length) throw new Error(`${segment} does not start at seq ${records.length}`);
    let at = 0;
    while (at < bytes.length) {
      // Zeros to the end are space the writer preallocated: the end of the log.
      if (isZero(bytes.subarray(at))) break;
      if (bytes.length - at < 8) throw new Error(`${segment}: ${bytes.length - at} stray bytes at ${at}`);
      const length = bytes.readUInt32BE(at);
      if (at + 8 + length > bytes.length) throw new Error(`${segment}: frame at ${at} runs past the end`);
      const record = bytes.subarray(at + 4, at + 4 + length);
      if ((crc32(record) >>> 0) !== bytes.readUInt32BE(at + 4 + length)) throw new Error(`${segment}: CRC mismatch at ${at}`);
      const step = verifier.push(record);
      if (!step.ok) throw new Error(`seq ${step.seq}: ${step.reason}: ${step.detail}`);
      records.push(step.record);
      frames.push({ segment, offset: at, length: length + 8 });
      at += length + 8;
    }
  }
  return { records, frames, segments };
}

/**
 * Cuts the preallocated zeros after the last frame of the last segment, as a clean close does
 * (and as a log written without preallocation looks); returns the segment's new size.
 */
export function trimPreallocated(dir: string): number {
  const { frames, segments } = readLog(dir);
  const last = segments.at(-1);
  if (last === undefined) return 0;
  const end = frames.filter((frame) => frame.segment === last).reduce((at, frame) => Math.max(at, frame.offset + frame.length), 0);
  truncateSync(join(dir, last), end);
  return end;
}

/** Where the last frame of segment `name` ends: where a write that was interrupted left its bytes. */
export function logEnd(dir: string, name: string): number {
  return readLog(dir).frames.filter((frame) => frame.segment === name).reduce((at, frame) => Math.max(at, frame.offset + frame.length), 0);
}

/** Copies an audit directory as it is now: the files a `kill -9` at this instant would leave. */
export function snapshotDir(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export type FaultOp = 'writev' | 'datasync' | 'truncate' | 'stat' | 'createFile' | 'replaceFile' | 'rename' | 'syncDir';

interface Stall {
  readonly promise: Promise<void>;
  readonly release: () => void;
}

/**
 * The real file system behind the store's file boundary, with faults a test switches on and off:
 * an errno per operation (optionally only for files whose name matches), a short write that
 * lands part of the bytes before failing, and stalled segment writes.
 */
export class FaultyFs {
  readonly fs: StoreFs;
  /** Every operation, in order; `zeros` marks a write of nothing but zeros (preallocation). */
  readonly calls: { op: FaultOp | 'read'; path: string; zeros?: boolean }[] = [];
  /** Files opened with synchronous writes (O_DSYNC). */
  readonly syncWriteOpens: string[] = [];
  #faults = new Map<FaultOp, { code: string; match: RegExp }>();
  #shortWrite: { code: string; match: RegExp } | null = null;
  #stall: Stall | null = null;

  constructor(base: StoreFs = nodeStoreFs) {
    // A handle opened on `x.tmp` is renamed to `x` once prepared: faults and counts go by `x`.
    const wrapFile = (opened: string, file: StoreFile, path = opened.replace(/\.tmp$/, '')): StoreFile => ({
      writev: async (chunks, position) => {
        this.#record('writev', path, chunks.every((chunk) => chunk.every((byte) => byte === 0)));
        const stall = this.#stall;
        if (stall !== null && /\.seg$/.test(path)) await stall.promise;
        const short = this.#shortWrite;
        if (short !== null && short.match.test(path)) {
          const whole = Buffer.concat(chunks);
          await file.writev([whole.subarray(0, Math.max(1, Math.floor(whole.length / 2)))], position);
          throw errno(short.code, 'writev', path);
        }
        return file.writev(chunks, position);
      },
      read: (into, offset, length, position) => file.read(into, offset, length, position),
      datasync: async () => {
        this.#record('datasync', path);
        return file.datasync();
      },
      sync: async () => {
        this.#record('datasync', path);
        return file.sync();
      },
      truncate: async (length) => {
        this.#record('truncate', path);
        return file.truncate(length);
      },
      stat: async () => {
        this.#record('stat', path);
        return file.stat();
      },
      statSync: () => {
        this.#record('stat', path);
        return file.statSync();
      },
      close: () => file.close(),
    });
    this.fs = {
      openFile: async (path, options) => {
        if (options?.syncWrites === true) this.syncWriteOpens.push(path);
        return wrapFile(path, await base.openFile(path, options));
      },
      openReadOnly: async (path) => wrapFile(path, await base.openReadOnly(path)),
      createFile: async (path) => {
        this.#record('createFile', path.replace(/\.tmp$/, ''));
        return wrapFile(path, await base.createFile(path));
      },
      replaceFile: async (path, options) => {
        this.#record('replaceFile', path.replace(/\.tmp$/, ''));
        if (options?.syncWrites === true) this.syncWriteOpens.push(path.replace(/\.tmp$/, ''));
        return wrapFile(path, await base.replaceFile(path, options));
      },
      readFile: (path) => base.readFile(path),
      readDir: (dir) => base.readDir(dir),
      rename: async (from, to) => {
        this.#record('rename', to);
        return base.rename(from, to);
      },
      link: (from, to) => base.link(from, to),
      unlink: (path) => base.unlink(path),
      mkdir: (dir) => base.mkdir(dir),
      syncDir: async (dir) => {
        this.#record('syncDir', dir);
        return base.syncDir(dir);
      },
      statPath: (path) => base.statPath(path),
    };
  }

  /** Makes `op` fail with `code` on files whose path matches (default: all). */
  fail(op: FaultOp, code: string, match = /./): void {
    this.#faults.set(op, { code, match });
  }

  /** Makes segment writes land half their bytes, then fail with `code`. */
  failWithShortWrite(code: string, match = /\.seg$/): void {
    this.#shortWrite = { code, match };
  }

  /** Makes every segment write (which syncs, with durability `always`) wait until the returned function is called. */
  stallSegmentWrites(): () => void {
    let release = () => undefined as void;
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#stall = { promise, release };
    return () => {
      this.#stall = null;
      release();
    };
  }

  clear(): void {
    this.#faults.clear();
    this.#shortWrite = null;
  }

  #record(op: FaultOp, path: string, zeros?: boolean): void {
    this.calls.push(zeros === undefined ? { op, path } : { op, path, zeros });
    const fault = this.#faults.get(op);
    if (fault !== undefined && fault.match.test(path)) throw errno(fault.code, op, path);
  }
}

function errno(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, ${op} '${path}'`), { code });
}
