import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger, systemClock, TollgateError } from '../../core/index.js';
import type { Clock, Logger } from '../../core/index.js';
import { bytesToHex } from '../bytes.js';
import { emptyRoot } from '../merkle.js';
import type { CompactRange } from '../merkle.js';
import { genesisPrev } from '../genesis.js';
import { formatCheckpointBody, parseVerifierKey, signNote } from '../note.js';
import type { NoteSigner } from '../note.js';
import { recordEnvelope, sealRecord } from '../record.js';
import type { AuditEvent, RecordEnvelope } from '../record.js';
import { appendHistoryEntry, cutHistory, loadCheckpointFiles, replaceCheckpointFile } from './checkpoint-files.js';
import type { HistoryCut } from './checkpoint-files.js';
import { fastLeafHash, fastLeafHexOfPrefixed } from './fast-hash.js';
import { nodeStoreFs } from './file-io.js';
import type { StoreFile, StoreFs } from './file-io.js';
import { FrameArena, sliceChunks } from './frame.js';
import { MAX_BATCH_BYTES, WRITES_IN_FLIGHT } from './in-flight.js';
import { segmentName, segmentsOf, TEMP_SUFFIX } from './layout.js';
import { acquireDirLock } from './lock.js';
import type { DirLock } from './lock.js';
import { recoverSegments } from './recover.js';
import type { SegmentCut } from './recover.js';
import type {
  AppendOptions,
  AppendResult,
  AuditStore,
  AuditStoreError,
  AuditStoreObserver,
  AuditStoreState,
  AuditStoreStatus,
  Durability,
  FileStoreOptions,
  SignedCheckpointNote,
} from './types.js';

const DEFAULTS = {
  checkpointIntervalMs: 1000,
  durability: 'always' as Durability,
  syncIntervalMs: 100,
  segmentSize: 64 * 1024 * 1024,
  maxRecords: 512,
  maxDelayMs: 2,
  appendTimeoutMs: 2000,
  retryInitialMs: 100,
  retryMaxMs: 5000,
};

interface Settings {
  readonly dir: string;
  readonly logId: string;
  readonly signer: NoteSigner;
  readonly checkpointIntervalMs: number;
  readonly durability: Durability;
  readonly syncIntervalMs: number;
  readonly segmentSize: number;
  readonly maxRecords: number;
  readonly maxDelayMs: number;
  readonly appendTimeoutMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly observer: AuditStoreObserver;
  readonly fs: StoreFs;
}

/** One waiting `append()`. */
interface Pending {
  readonly event: AuditEvent;
  /** See {@link AppendOptions.defer}. */
  readonly defer: boolean;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
  /** `performance.now()` at the call, for the deadline and the latency. */
  readonly at: number;
  settled: boolean;
}

interface Segment {
  readonly path: string;
  readonly firstSeq: number;
  readonly file: StoreFile;
  /** Committed length: bytes of acknowledged records. Writes past it belong to no one yet. */
  bytes: number;
  /** End of the furthest batch write issued to this segment. */
  written: number;
  /** File size as far as the writer knows: past {@link written} lie preallocated zeros. */
  allocated: number;
  /** Cleared when zero-filling failed; set again once a repair proves the disk takes writes. */
  preallocate: boolean;
}

/**
 * Segment space is preallocated in steps of this many bytes of zeros, written and synced outside
 * the hot path, so that a batch's O_DSYNC write overwrites blocks the file system has already
 * allocated and recorded: measured here, such a write costs about half the time and half the
 * kernel CPU of one that extends the file (which also commits the file system journal). A new
 * segment is created with the first step; the next is written in the background once less than a
 * step is left ahead of the writes. The last segment therefore ends in zeros while the store is
 * open; rolls and a clean close cut them (see `classifyTail` for how readers treat them). The
 * step is small because the device flushes a zero-fill's blocks together with the batch writes
 * queued behind it: 4 MiB steps doubled the append latency p99 (9–10 ms against 4 ms at 12,000
 * records/s), 512 KiB steps leave it where it is without preallocation.
 */
const PREALLOCATE_BYTES = 512 * 1024;

/** A zero-fill on its way to disk: batch writes that would reach `start` wait for it. */
interface Extension {
  readonly segment: Segment;
  readonly start: number;
  done: Promise<void>;
}

function positiveInteger(value: number, what: string, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new TollgateError('TG_ERR_INTERNAL', `audit store option ${what} must be a whole number ≥ ${min}, not ${value}`);
  }
  return value;
}

function settingsOf(options: FileStoreOptions): Settings {
  if (options.dir === '') throw new TollgateError('TG_ERR_INTERNAL', 'audit store option dir is empty');
  if (options.logId === '') throw new TollgateError('TG_ERR_INTERNAL', 'audit store option logId is empty');
  const durability = options.durability ?? DEFAULTS.durability;
  if (durability !== 'always' && durability !== 'interval') {
    throw new TollgateError('TG_ERR_INTERNAL', `audit store option durability must be "always" or "interval", not ${String(durability)}`);
  }
  return {
    dir: options.dir,
    logId: options.logId,
    signer: options.signer,
    checkpointIntervalMs: positiveInteger(options.checkpointIntervalMs ?? DEFAULTS.checkpointIntervalMs, 'checkpointIntervalMs'),
    durability,
    syncIntervalMs: positiveInteger(options.syncIntervalMs ?? DEFAULTS.syncIntervalMs, 'syncIntervalMs'),
    segmentSize: positiveInteger(options.segmentSize ?? DEFAULTS.segmentSize, 'segmentSize', 1024),
    maxRecords: positiveInteger(options.groupCommit?.maxRecords ?? DEFAULTS.maxRecords, 'groupCommit.maxRecords'),
    maxDelayMs: positiveInteger(options.groupCommit?.maxDelayMs ?? DEFAULTS.maxDelayMs, 'groupCommit.maxDelayMs', 0),
    appendTimeoutMs: positiveInteger(options.appendTimeoutMs ?? DEFAULTS.appendTimeoutMs, 'appendTimeoutMs'),
    retryInitialMs: positiveInteger(options.retry?.initialMs ?? DEFAULTS.retryInitialMs, 'retry.initialMs'),
    retryMaxMs: positiveInteger(options.retry?.maxMs ?? DEFAULTS.retryMaxMs, 'retry.maxMs'),
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
    observer: options.observer ?? {},
    fs: options.fs ?? nodeStoreFs,
  };
}

function errnoOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

/**
 * Opens the audit log in `options.dir` for writing: takes the directory lock, recovers (see
 * `recoverSegments`), records any cut it made as an `audit.recovered` record, and returns the
 * store once that record is durable.
 *
 * Throws `TG_ERR_AUDIT_LOCKED` when another live process writes the directory and
 * `TG_ERR_AUDIT_TAMPERED` when the log fails verification; in both cases nothing was changed.
 */
export async function openFileStore(options: FileStoreOptions): Promise<AuditStore> {
  const settings = settingsOf(options);
  try {
    return await openStore(settings);
  } catch (error) {
    if (error instanceof TollgateError) throw error;
    throw new TollgateError(
      'TG_ERR_AUDIT_UNAVAILABLE',
      `cannot open the audit directory ${settings.dir} (${errnoOf(error)}: ${describe(error)}); check that it exists or can be created, and that this user may read and write it`,
      { cause: error },
    );
  }
}

async function openStore(settings: Settings): Promise<AuditStore> {
  const { fs, dir } = settings;
  if ((await fs.statPath(dir)) === null) {
    await fs.mkdir(dir);
    await fs.syncDir(dirname(dir));
  }
  const lock = await acquireDirLock(fs, dir);
  try {
    const names = await fs.readDir(dir);
    for (const name of names) {
      if (name.endsWith(TEMP_SUFFIX) && !name.startsWith('lock.')) await fs.unlink(join(dir, name)).catch(ignoreMissing);
    }
    const verifier = parseVerifierKey(settings.signer.verifierKey);
    const files = await loadCheckpointFiles(fs, dir, verifier, settings.logId);
    if (files.reinstalled) settings.logger.info({ dir }, 'audit checkpoint file restored from the checkpoint history (a replacement was interrupted)');
    const log = await recoverSegments(fs, segmentsOf(dir, names), settings.logId, files.latest?.checkpoint ?? null);
    let signed = files.latest;
    let historyEnd = files.historyEnd;
    if (signed === null) {
      if (log.size > 0) throw checkpointMissing(dir, log.size);
      ({ signed, historyEnd } = await startLog(settings, historyEnd));
    }
    let segment: Segment;
    let segmentCount = log.segmentCount;
    if (log.tail === null) {
      segment = await createSegment(fs, dir, 0, settings.durability === 'always', Math.min(PREALLOCATE_BYTES, settings.segmentSize));
      segmentCount = 1;
    } else {
      const file = await fs.openFile(log.tail.path, { syncWrites: settings.durability === 'always' });
      try {
        // The zeros after the last frame, if any, are space an earlier run preallocated.
        const { size } = await file.stat();
        segment = { path: log.tail.path, firstSeq: log.tail.firstSeq, file, bytes: log.tail.bytes, written: log.tail.bytes, allocated: size, preallocate: true };
      } catch (error) {
        await file.close().catch(() => undefined);
        throw error;
      }
    }
    const store = new FileAuditStore(settings, lock, {
      segment,
      segmentCount,
      totalBytes: log.totalBytes,
      size: log.size,
      lastLeafHash: log.lastLeafHash,
      range: log.range,
      checkpoint: signed,
      historyEnd,
    });
    const cuts: (SegmentCut | HistoryCut)[] = [];
    if (files.historyCut !== null) cuts.push(files.historyCut);
    if (log.cut !== null) cuts.push(log.cut);
    try {
      // The record goes where the torn bytes begin; what is left of them is cut once it is durable.
      for (const cut of cuts) {
        settings.logger.warn({ ...cut }, 'audit log: cutting a torn tail left by an interrupted write');
        await store.append({ kind: 'audit.recovered', data: { ...cut } });
      }
      if (cuts.length > 0) await store.trimAfterRecovery(files.historyCut !== null);
    } catch (error) {
      // Nothing is cut without its record: the torn bytes stay for the next open to find.
      await store.abandon();
      throw error;
    }
    return store;
  } catch (error) {
    await lock.release().catch(() => undefined);
    throw error;
  }
}

/**
 * Starts a new log: signs the checkpoint of the empty tree and makes it durable (the history
 * entry, then the `checkpoint` file) before the first segment exists. From then on a directory
 * whose segments hold records always holds a signed checkpoint, so checkpoint files deleted to
 * pass off rewritten records are tampering, for the store and for `audit verify`. A crash before
 * the entry is durable leaves an empty directory or a torn entry (cut on the next open as usual),
 * a crash after it a history without segments: either opens as a new, empty log.
 */
async function startLog(settings: Settings, historyEnd: number): Promise<{ signed: SignedCheckpointNote; historyEnd: number }> {
  const { fs, dir, logId, signer } = settings;
  const checkpoint = { origin: logId, size: 0, rootHash: emptyRoot() };
  const note = signNote(formatCheckpointBody(checkpoint), signer);
  const end = await appendHistoryEntry(fs, dir, historyEnd, note);
  await replaceCheckpointFile(fs, dir, note);
  return { signed: { checkpoint, note }, historyEnd: end };
}

/** Records without any signed checkpoint: {@link startLog} signs one before the first record, so the checkpoint files were removed. */
function checkpointMissing(dir: string, size: number): TollgateError {
  return new TollgateError(
    'TG_ERR_AUDIT_TAMPERED',
    `the audit log fails verification at seq 0: checkpoint-missing: ${dir} holds ${size} records but no signed checkpoint (the files checkpoint and checkpoints are missing or empty), and the store signs one before it writes the first record: they were deleted, or the records were not written by this gateway (or by an earlier Tollgate that stopped within a second of creating the log, before its first checkpoint: no signature ever covered those records). Nothing was changed; check the records against a checkpoint kept elsewhere with "tollgate audit verify --dir ${dir} --key <verifier key> --checkpoint <file>", then move the directory aside (keep it as evidence) and start a new log`,
    { details: { seq: 0, reason: 'checkpoint-missing', records: size } },
  );
}

/**
 * Creates an empty segment atomically: temp file, `zeros` bytes of preallocated space, fsync,
 * rename, fsync of the directory. `syncWrites` opens it with O_DSYNC (durability `always`).
 */
async function createSegment(fs: StoreFs, dir: string, firstSeq: number, syncWrites: boolean, zeros: number): Promise<Segment> {
  const path = join(dir, segmentName(firstSeq));
  const temp = `${path}${TEMP_SUFFIX}`;
  const file = await fs.replaceFile(temp, { syncWrites });
  let allocated = 0;
  try {
    allocated = await preallocate(file, zeros);
    await file.sync();
    await fs.rename(temp, path);
    await fs.syncDir(dir);
  } catch (error) {
    await file.close().catch(() => undefined);
    await fs.unlink(temp).catch(() => undefined);
    throw error;
  }
  return { path, firstSeq, file, bytes: 0, written: 0, allocated, preallocate: allocated > 0 || zeros === 0 };
}

/**
 * Writes `zeros` bytes of zeros at the start of a new, empty file. Best effort: on a disk too full
 * for them, the file is emptied again and the segment goes without (0 is returned); a disk that
 * fails outright fails the sync that follows.
 */
async function preallocate(file: StoreFile, zeros: number): Promise<number> {
  if (zeros === 0) return 0;
  try {
    await file.writev([Buffer.alloc(zeros)], 0);
    return zeros;
  } catch {
    await file.truncate(0);
    return 0;
  }
}

interface InitialState {
  readonly segment: Segment;
  readonly segmentCount: number;
  readonly totalBytes: number;
  readonly size: number;
  readonly lastLeafHash: Uint8Array | null;
  readonly range: CompactRange;
  readonly checkpoint: SignedCheckpointNote | null;
  readonly historyEnd: number;
}

/** Records sealed in order, not yet handed to the disk. */
interface Sealed {
  readonly firstSeq: number;
  readonly items: Pending[];
  /** Hex leaf hash per record. */
  readonly leaves: string[];
  /** Where the batch's frames begin in the arena's byte stream ({@link FrameArena.framed}). */
  readonly start: number;
  /** Per record, where its frame ends in that stream: segment rolls fall between records. */
  readonly ends: number[];
  bytes: number;
  /** A record that is not deferred is here: it goes to disk as soon as the disk is free. */
  urgent: boolean;
  /** `performance.now()` when the first deferred record here was sealed. */
  deferredSince: number | null;
}

/** The batch on its way to disk. */
interface Flush {
  readonly items: readonly Pending[];
  readonly leaves: readonly string[];
  readonly bytes: number;
  readonly firstSeq: number;
  readonly endPrev: string;
  readonly started: number;
  /** Where the batch starts in the segment that holds the committed end (or the batch before). */
  readonly at: number;
  /** It may reach past `segmentSize`, into new segments: such a batch goes to disk alone. */
  readonly rolls: boolean;
  /** Its write has returned, while a batch before it is still on its way: it commits after that one. */
  written: { readonly segment: Segment; readonly end: number } | null;
  /** Refused while in flight (a failure elsewhere, or a passed deadline); never committed. */
  abandoned: boolean;
  /** Settles when the batch's I/O has finished, whatever the outcome. */
  io: Promise<void>;
}

/**
 * Records sealed per event-loop turn (about 0.1 ms of work). A burst larger than this reaches
 * the disk in parts: the first part is written while the next is sealed, and finished I/O and
 * other sockets get their turn in between. With 64 busy writers this settles into two batches
 * of 32 on their way at once, the callers of one sealing their next records while the other
 * syncs; measured here, that beats one group of 64 whose sealing and sync cannot overlap.
 */
const SEAL_CHUNK = 32;

/**
 * The single writer of one audit directory.
 *
 * Group commit as a pipeline. `append()` queues the event. The writer seals queued events in
 * order (seq, prev chain, time), encoding each record's canonical text straight into its frame,
 * up to {@link SEAL_CHUNK} per event-loop turn. A batch goes to disk as one vectored write; with
 * durability `always` the segment is open with O_DSYNC, so that write returns only once the data
 * is on stable storage (POSIX synchronized I/O data integrity, the guarantee of fdatasync) and
 * the batch costs one trip to the I/O thread instead of two. Sealing goes on while batches are
 * on their way, so the CPU work of the next batch overlaps the disk's work; a batch holds at most
 * `maxRecords` records and {@link MAX_BATCH_BYTES} bytes.
 *
 * Up to {@link WRITES_IN_FLIGHT} batch writes are on their way at once, each to its own range
 * after the one before. They may reach the disk in any order, so a batch commits (seq advanced,
 * appends resolved) only once it and every batch before it have returned: an acknowledged
 * record never lies behind one that is not durable. A crash can therefore leave, after the
 * committed records, a gap of preallocated zeros (see {@link PREALLOCATE_BYTES}) where an
 * earlier write did not land and a later batch's frames after it; recovery cuts such a tail
 * (`unfinished-writes`), which never reaches further than the writes in flight can. A batch
 * that starts a new segment goes alone.
 *
 * When sealed records are handed to the disk, if fewer than {@link WRITES_IN_FLIGHT} writes are
 * on their way:
 * - when a batch finishes: what was queued meanwhile is sealed and goes at once (it has already
 *   waited);
 * - otherwise at the end of the event-loop turn that sealed them, so a lone append goes out at
 *   once, and appends made in the same turn (statements parsed from several sockets) share one
 *   sync;
 * - deferred appends (outcome records nobody waits on) do not start a write: they go with the
 *   next record that does, or `maxDelayMs` after the first of them was sealed, so they add no
 *   sync of their own in front of the requests that wait;
 * - at once when the batch is full.
 *
 * Nothing is committed before its sync. A failed write or sync, or a passed deadline, commits
 * nothing more: the batches in flight and everything sealed are refused, and the files are
 * truncated back to the committed end before appends are accepted
 * again, so seqs never skip and no half frame stays behind.
 */
class FileAuditStore implements AuditStore {
  readonly #s: Settings;
  readonly #lock: DirLock;
  #status: AuditStoreStatus = 'ready';
  #closing: Promise<void> | null = null;
  #lastError: AuditStoreError | null = null;

  #queue: Pending[] = [];
  #sealed: Sealed;
  readonly #arena = new FrameArena(fastLeafHexOfPrefixed);
  #envelope: { readonly timeMs: number; readonly envelope: RecordEnvelope | null } = { timeMs: Number.NaN, envelope: null };
  #sealSeq: number;
  #sealPrev: string;
  /** Batches on their way to disk, oldest first; at most {@link WRITES_IN_FLIGHT}. */
  #flushes: Flush[] = [];
  /** I/O of refused batches that has not finished yet; the repair waits for it. */
  readonly #abandonedIo = new Set<Promise<void>>();
  #pumpScheduled = false;
  /**
   * Armed when only deferred records are sealed and the disk is idle. Left to fire when a write
   * takes them first (cheaper than clearing it each time): it then finds nothing due.
   */
  #deferTimer: NodeJS.Timeout | null = null;
  #drained: (() => void)[] = [];
  #watchdog: NodeJS.Timeout | null = null;

  /** The segment holding the committed end. */
  #segment: Segment;
  /** The zero-fill in progress, if any (at most one at a time). */
  #extension: Extension | null = null;
  /** Segments created by the batch in flight (or a refused one), not yet committed, oldest first. */
  #uncommitted: Segment[] = [];
  #segmentCount: number;
  #totalBytes: number;
  #nextSeq: number;
  #lastLeafHex: string;

  /** The tree of the synced records; checkpoints sign it. */
  readonly #range: CompactRange;
  /** Durability `interval`: leaf hashes of acknowledged records not yet synced. */
  #unsynced: Uint8Array[] = [];
  #syncTimer: NodeJS.Timeout | null = null;
  #syncing: Promise<void> | null = null;

  /** The latest checkpoint in the `checkpoint` file: the published one. */
  #checkpoint: SignedCheckpointNote | null;
  /** The latest checkpoint in the history; ahead of {@link #checkpoint} until the file is replaced. */
  #signed: SignedCheckpointNote | null;
  #historyEnd: number;
  #checkpointing: Promise<void> | null = null;
  readonly #checkpointTimer: NodeJS.Timeout;

  #retryTimer: NodeJS.Timeout | null = null;
  #retryDelay: number;
  #repairing: Promise<void> | null = null;

  constructor(settings: Settings, lock: DirLock, initial: InitialState) {
    this.#s = settings;
    this.#lock = lock;
    this.#segment = initial.segment;
    this.#segmentCount = initial.segmentCount;
    this.#totalBytes = initial.totalBytes;
    this.#nextSeq = initial.size;
    this.#lastLeafHex = initial.lastLeafHash === null ? genesisPrev(settings.logId) : bytesToHex(initial.lastLeafHash);
    this.#sealSeq = this.#nextSeq;
    this.#sealPrev = this.#lastLeafHex;
    this.#sealed = this.#emptySealed();
    this.#range = initial.range;
    this.#checkpoint = initial.checkpoint;
    this.#signed = initial.checkpoint;
    this.#historyEnd = initial.historyEnd;
    this.#retryDelay = settings.retryInitialMs;
    this.#checkpointTimer = setInterval(() => void this.#checkpointTick(), settings.checkpointIntervalMs);
    this.#checkpointTimer.unref();
  }

  append(event: AuditEvent, options?: AppendOptions): Promise<AppendResult> {
    if (this.#closing !== null) {
      return Promise.reject(new TollgateError('TG_ERR_AUDIT_CLOSED', 'the audit store is closed; the gateway is shutting down, so the request was refused'));
    }
    if (this.#status !== 'ready') return Promise.reject(this.#unavailable());
    const defer = options?.defer === true;
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ event, defer, resolve, reject, at: performance.now(), settled: false });
      if (this.#watchdog === null) this.#armWatchdog();
      this.#schedulePump();
    });
  }

  state(): AuditStoreState {
    return {
      status: this.#status,
      lastError: this.#lastError,
      size: this.#nextSeq,
      syncedSize: this.#range.size,
      checkpointSize: this.#checkpoint?.checkpoint.size ?? 0,
      segments: this.#segmentCount,
      bytes: this.#totalBytes,
      queued: this.#queue.length + this.#sealed.items.length,
    };
  }

  async checkpointNow(): Promise<SignedCheckpointNote | null> {
    if (this.#status === 'closed') return this.#checkpoint;
    await this.#checkpointOnce();
    return this.#checkpoint;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** After the `audit.recovered` records are durable: cuts the rest of the torn bytes. */
  async trimAfterRecovery(historyCut: boolean): Promise<void> {
    const segment = this.#segment;
    await this.#settleExtension();
    await segment.file.truncate(segment.bytes);
    await segment.file.datasync();
    segment.written = segment.bytes;
    segment.allocated = segment.bytes;
    if (historyCut) await cutHistory(this.#s.fs, this.#s.dir, this.#historyEnd);
  }

  /** Gives up a store whose open failed: releases everything and changes no file. */
  async abandon(): Promise<void> {
    this.#closing ??= Promise.resolve();
    clearInterval(this.#checkpointTimer);
    for (const timer of [this.#retryTimer, this.#syncTimer, this.#watchdog, this.#deferTimer]) if (timer !== null) clearTimeout(timer);
    await this.#settleInflight().catch(() => undefined);
    for (const segment of [this.#segment, ...this.#uncommitted]) await segment.file.close().catch(() => undefined);
    this.#status = 'closed';
    await this.#lock.release();
  }

  // ---- group commit ------------------------------------------------------------------------

  #emptySealed(): Sealed {
    return { firstSeq: this.#sealSeq, items: [], leaves: [], start: this.#arena.framed, ends: [], bytes: 0, urgent: false, deferredSince: null };
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(this.#pump);
  }

  readonly #pump = (): void => {
    this.#pumpScheduled = false;
    if (this.#status !== 'ready') return;
    this.#sealQueued();
    this.#maybeFlush();
    if (this.#queue.length > 0 && !this.#sealedFull()) this.#schedulePump();
    // Every event may have been refused as invalid, leaving nothing to flush.
    this.#wakeIfDrained();
  };

  /** Seals up to one chunk of the queue, as far as the next batch has room. */
  #sealQueued(): void {
    if (this.#queue.length > 0 && !this.#sealedFull()) this.#seal(SEAL_CHUNK);
  }

  /** The next batch has reached `maxRecords` or {@link MAX_BATCH_BYTES}. */
  #sealedFull(): boolean {
    const sealed = this.#sealed;
    return sealed.items.length >= this.#s.maxRecords || this.#arena.framed - sealed.start >= MAX_BATCH_BYTES;
  }

  /**
   * Whether the disk takes another batch now: fewer than {@link WRITES_IN_FLIGHT} are on their
   * way, and neither those nor the next one may start a segment (a roll cuts and syncs the
   * segment it leaves, which must not race a write into it).
   */
  #diskFree(): boolean {
    const flushes = this.#flushes;
    if (flushes.length === 0) return true;
    if (flushes.length >= WRITES_IN_FLIGHT || flushes.some((flush) => flush.rolls)) return false;
    return this.#writeEnd() + this.#sealed.bytes <= this.#s.segmentSize;
  }

  /** Where the next batch starts in the current segment: after the batches on their way. */
  #writeEnd(): number {
    const last = this.#flushes.at(-1);
    return last === undefined ? this.#segment.bytes : last.at + last.bytes;
  }

  /** Hands the sealed records to the disk when the rules in the class comment say so. */
  #maybeFlush(): void {
    const sealed = this.#sealed;
    if (this.#status !== 'ready' || sealed.items.length === 0 || !this.#diskFree()) return;
    const since = sealed.deferredSince;
    if (!sealed.urgent && since !== null && !this.#sealedFull() && this.#closing === null) {
      // A deferred record never waits so long that its append deadline could pass.
      const wait = since + Math.min(this.#s.maxDelayMs, this.#s.appendTimeoutMs / 2) - performance.now();
      if (wait > 0) {
        if (this.#deferTimer === null) {
          this.#deferTimer = setTimeout(this.#onDeferTimer, Math.ceil(wait));
          this.#deferTimer.unref();
        }
        return;
      }
    }
    this.#startFlush();
  }

  readonly #onDeferTimer = (): void => {
    this.#deferTimer = null;
    this.#maybeFlush();
  };

  /** Seals up to `count` queued events after the last sealed one. */
  #seal(count: number): void {
    const { logId, clock } = this.#s;
    const queue = this.#queue;
    const sealed = this.#sealed;
    const arena = this.#arena;
    const timeMs = clock.now();
    // The envelope is checked once per millisecond; seq and prev are the writer's own.
    if (this.#envelope.timeMs !== timeMs) this.#envelope = { timeMs, envelope: recordEnvelope(logId, timeMs) };
    const { envelope } = this.#envelope;
    let taken = 0;
    for (; taken < count && taken < queue.length && !this.#sealedFull(); taken++) {
      const item = queue[taken]!;
      if (item.settled) continue;
      let leafHex = envelope === null ? null : arena.addEvent(item.event, envelope, this.#sealSeq, this.#sealPrev);
      if (leafHex === null) {
        // Byte strings, bigints, records to truncate and invalid events take the full path.
        let record;
        try {
          record = sealRecord(item.event, { logId, seq: this.#sealSeq, prev: this.#sealPrev, timeMs, hashLeaf: fastLeafHash });
        } catch (error) {
          // An event outside the record model is a bug of its caller; it takes no seq.
          item.settled = true;
          item.reject(error);
          continue;
        }
        arena.addBytes(record.bytes);
        leafHex = bytesToHex(record.leafHash);
      }
      sealed.items.push(item);
      sealed.leaves.push(leafHex);
      sealed.ends.push(arena.framed);
      if (!item.defer) sealed.urgent = true;
      else sealed.deferredSince ??= performance.now();
      this.#sealSeq += 1;
      this.#sealPrev = leafHex;
    }
    this.#queue = taken === queue.length ? [] : queue.slice(taken);
    sealed.bytes = arena.framed - sealed.start;
  }

  #startFlush(): void {
    const batch = this.#sealed;
    this.#sealed = this.#emptySealed();
    const at = this.#writeEnd();
    const flush: Flush = {
      items: batch.items,
      leaves: batch.leaves,
      bytes: batch.bytes,
      firstSeq: batch.firstSeq,
      // Nothing is sealed after this batch yet, so the seal cursor is the batch's end.
      endPrev: this.#sealPrev,
      started: performance.now(),
      at,
      rolls: at + batch.bytes > this.#s.segmentSize,
      written: null,
      abandoned: false,
      io: Promise.resolve(),
    };
    this.#flushes.push(flush);
    flush.io = this.#writeFrames(this.#arena.take(), batch.start, batch.ends, flush.firstSeq, at).then(
      (end) => this.#flushDone(flush, end, null),
      (error: unknown) => this.#flushDone(flush, null, error),
    );
  }

  #flushDone(flush: Flush, end: { segment: Segment; end: number } | null, failure: unknown): void {
    if (flush.abandoned) return;
    if (end === null) {
      this.#flushes.splice(this.#flushes.indexOf(flush), 1);
      this.#rejectAll(flush.items, this.#degrade(this.#ioError(failure, 'write the batch')));
      return;
    }
    flush.written = end;
    // Batches commit in log order: one whose write returned first waits for those before it.
    const committed: Flush[] = [];
    for (let first = this.#flushes[0]; first?.written != null; first = this.#flushes[0]) {
      this.#flushes.shift();
      this.#advance(first, first.written.segment, first.written.end);
      committed.push(first);
    }
    if (committed.length === 0) return;
    // The next batch goes to disk before these appends resolve: their callers' work then
    // overlaps its write instead of delaying it. Appends that came while the batch was on its
    // way and are not sealed yet join it.
    if (this.#sealed.items.length === 0) this.#sealQueued();
    this.#maybeFlush();
    for (const done of committed) this.#resolve(done);
    this.#maybeExtend();
    if (this.#queue.length > 0) this.#schedulePump();
    this.#wakeIfDrained();
  }

  /** The batch is on disk (written, with durability `interval`): the committed end moves past it. */
  #advance(flush: Flush, segment: Segment, end: number): void {
    if (segment !== this.#segment) {
      // The batch rolled over to segments it created: they are committed now.
      void this.#segment.file.close().catch(() => undefined);
      for (const done of this.#uncommitted.slice(0, -1)) void done.file.close().catch(() => undefined);
      this.#segmentCount += this.#uncommitted.length;
      this.#uncommitted = [];
      this.#segment = segment;
    }
    segment.bytes = end;
    this.#totalBytes += flush.bytes;
    this.#nextSeq = flush.firstSeq + flush.items.length;
    this.#lastLeafHex = flush.endPrev;
  }

  /** Resolves the appends of a committed batch. */
  #resolve(flush: Flush): void {
    const always = this.#s.durability === 'always';
    const done = performance.now();
    const { observer } = this.#s;
    for (let i = 0; i < flush.items.length; i++) {
      const item = flush.items[i]!;
      const leafHash = Buffer.from(flush.leaves[i]!, 'hex');
      if (always) this.#range.append(leafHash);
      else this.#unsynced.push(leafHash);
      item.settled = true;
      item.resolve({ seq: flush.firstSeq + i, leafHash });
      observer.appended?.(done - item.at);
    }
    if (!always) this.#scheduleSync();
    observer.batch?.({ records: flush.items.length, bytes: flush.bytes, durationMs: done - flush.started });
  }

  #wakeIfDrained(): void {
    if (this.#drained.length === 0) return;
    const idle = this.#flushes.length === 0 && (this.#status !== 'ready' || (this.#queue.length === 0 && this.#sealed.items.length === 0));
    if (!idle) return;
    const waiting = this.#drained;
    this.#drained = [];
    for (const wake of waiting) wake();
  }

  /**
   * Writes the frames after the committed end, rolling to new segments at `segmentSize`: one
   * vectored write per segment touched, and the finished segment cut to its last frame (no
   * preallocated zeros stay in a segment that is no longer the last) and made durable before the
   * next one is created, so the files on disk always hold a prefix of the log. Checks, at the
   * same time as the write, that the segment is still linked in the directory. Commits nothing.
   */
  async #writeFrames(chunks: readonly Buffer[], start: number, ends: readonly number[], firstSeq: number, offset: number): Promise<{ segment: Segment; end: number }> {
    const { fs, dir, segmentSize } = this.#s;
    let segment = this.#segment;
    // `at` in the segment file holds stream offset `from`.
    let at = offset;
    let from = start;
    const end = ends[ends.length - 1] ?? start;
    for (let i = 0; at + end - from > segmentSize && i < ends.length; i++) {
      const frameStart = i === 0 ? start : ends[i - 1]!;
      const offset = at + frameStart - from;
      if (offset === 0 || offset + ends[i]! - frameStart <= segmentSize) continue;
      if (frameStart > from) await this.#writeAt(segment, sliceChunks(chunks, from - start, frameStart - start), at, offset);
      await this.#settleExtension();
      // Bytes past the last frame (preallocated zeros, a torn tail being replaced) must not
      // stay in a segment that is no longer the last.
      await segment.file.truncate(offset);
      await segment.file.datasync();
      segment.allocated = offset;
      segment = await createSegment(fs, dir, firstSeq + i, this.#syncWrites(), this.#preallocation(0));
      this.#uncommitted.push(segment);
      at = 0;
      from = frameStart;
    }
    const last = at + end - from;
    await this.#writeAt(segment, from === start ? chunks : sliceChunks(chunks, from - start, end - start), at, last);
    this.#checkLinked(segment);
    return { segment, end: last };
  }

  /** Writes `chunks` at `[at, end)`, after any zero-fill that covers part of that range. */
  async #writeAt(segment: Segment, chunks: readonly Buffer[], at: number, end: number): Promise<void> {
    for (let extension = this.#extension; extension !== null && extension.segment === segment && end > extension.start; extension = this.#extension) {
      await extension.done;
    }
    segment.written = Math.max(segment.written, end);
    segment.allocated = Math.max(segment.allocated, end);
    await segment.file.writev(chunks, at);
  }

  /** How many bytes of zeros to preallocate at `from` in a segment, at most a step and never past `segmentSize`. */
  #preallocation(from: number): number {
    return Math.max(0, Math.min(PREALLOCATE_BYTES, this.#s.segmentSize - from));
  }

  /**
   * Starts zero-filling the next step of the current segment when less than a step is left ahead
   * of the writes. Runs beside the batches: a batch write only waits for it when it would reach
   * the range being filled, which at a step ahead does not happen unless the disk falls behind.
   */
  #maybeExtend(): void {
    const segment = this.#segment;
    if (this.#extension !== null || this.#uncommitted.length > 0 || !segment.preallocate || this.#status !== 'ready' || this.#closing !== null) return;
    if (segment.allocated - segment.written >= PREALLOCATE_BYTES) return;
    const start = Math.max(segment.allocated, segment.written);
    const bytes = this.#preallocation(start);
    if (bytes === 0) return;
    const extension: Extension = { segment, start, done: Promise.resolve() };
    extension.done = this.#zeroFill(segment, start, bytes).finally(() => {
      if (this.#extension === extension) this.#extension = null;
    });
    this.#extension = extension;
  }

  async #zeroFill(segment: Segment, start: number, bytes: number): Promise<void> {
    try {
      await segment.file.writev([Buffer.alloc(bytes)], start);
      // With O_DSYNC the write is durable already; without it (durability `interval`) the
      // zeros must be on disk before the records overwrite them for the overwrite to be cheap.
      if (!this.#syncWrites()) await segment.file.datasync();
      segment.allocated = Math.max(segment.allocated, start + bytes);
    } catch (error) {
      // Only speed is lost: records are written past the preallocated space, extending the file.
      // The zeros that did land are given back (on a full disk they are the space the checkpoint
      // files need); a failing disk fails the next batch, which degrades the store.
      segment.preallocate = false;
      await segment.file.truncate(start).catch(() => undefined);
      this.#s.logger.warn({ err: error, dir: this.#s.dir }, 'audit log: could not preallocate segment space; writing without it');
    }
  }

  /** Waits until no zero-fill is in progress. */
  async #settleExtension(): Promise<void> {
    while (this.#extension !== null) await this.#extension.done;
  }

  /** Segment writes are synchronous (O_DSYNC) with durability `always`. */
  #syncWrites(): boolean {
    return this.#s.durability === 'always';
  }

  /**
   * A segment whose directory entry is gone (the directory was deleted) takes writes no one will
   * ever read. Checked once the batch's write returned, so a deletion before then is never
   * acknowledged; synchronously, since an fstat costs about a microsecond and a trip to the I/O
   * threads costs the event loop ten or more.
   */
  #checkLinked(segment: Segment): void {
    const identity = segment.file.statSync();
    if (identity.nlink === 0) {
      throw Object.assign(new Error(`segment ${basename(segment.path)} was deleted from the audit directory`), { code: 'ENOENT' });
    }
  }

  // ---- deadlines ---------------------------------------------------------------------------

  #oldest(): Pending | undefined {
    return this.#flushes[0]?.items[0] ?? this.#sealed.items[0] ?? this.#queue[0];
  }

  /**
   * Arms the deadline timer for the oldest waiting append. It is not moved as batches complete
   * (a timer per batch costs more than the batch's own bookkeeping): when it fires early for an
   * append that has since been resolved, it re-arms for the one that is now the oldest.
   */
  #armWatchdog(): void {
    const oldest = this.#oldest();
    if (oldest === undefined) return;
    const wait = Math.max(0, oldest.at + this.#s.appendTimeoutMs - performance.now());
    this.#watchdog = setTimeout(this.#onWatchdog, Math.ceil(wait));
    this.#watchdog.unref();
  }

  readonly #onWatchdog = (): void => {
    this.#watchdog = null;
    const now = performance.now();
    const limit = this.#s.appendTimeoutMs;
    const overdue = (item: Pending | undefined) => item !== undefined && item.at + limit <= now;
    if (overdue(this.#flushes[0]?.items[0])) {
      // The disk has not finished a batch within the deadline. Its appends and everything after
      // them are refused now; the batch is never committed, and its bytes are cut before the
      // store accepts appends again.
      this.#degrade(
        new TollgateError('TG_ERR_AUDIT_UNAVAILABLE', `the audit log did not make a record durable within ${limit} ms (the disk is stalled); the request was refused`),
      );
    } else if (overdue(this.#sealed.items[0]) || overdue(this.#queue[0])) {
      // The disk keeps up but these waited too long (the event loop was blocked): refuse them.
      // Sealed records chain to each other, so all of them go.
      const error = new TollgateError('TG_ERR_AUDIT_UNAVAILABLE', `the audit log did not take the record within ${limit} ms (the gateway is overloaded); the request was refused`);
      if (overdue(this.#sealed.items[0])) this.#dropSealed(error);
      while (overdue(this.#queue[0])) this.#rejectAll([this.#queue.shift()!], error);
      this.#wakeIfDrained();
    }
    this.#armWatchdog();
  };

  /** Refuses every sealed, unwritten record; sealing restarts after the batches in flight, or the committed end. */
  #dropSealed(error: unknown): void {
    this.#rejectAll(this.#sealed.items, error);
    const last = this.#flushes.at(-1);
    this.#sealSeq = last === undefined ? this.#nextSeq : last.firstSeq + last.items.length;
    this.#sealPrev = last === undefined ? this.#lastLeafHex : last.endPrev;
    // Their frames are the arena's untaken ones.
    this.#arena.take();
    this.#sealed = this.#emptySealed();
  }

  // ---- failure and recovery ----------------------------------------------------------------

  #ioError(error: unknown, what: string): TollgateError {
    if (error instanceof TollgateError) return error;
    return new TollgateError(
      'TG_ERR_AUDIT_UNAVAILABLE',
      `the audit log could not ${what} (${errnoOf(error)}: ${describe(error)}); requests are refused until the disk accepts writes again (free space, fix permissions or the mount); the store retries on its own`,
      { cause: error },
    );
  }

  #unavailable(): TollgateError {
    const why = this.#lastError?.message ?? 'the audit store is degraded';
    return new TollgateError('TG_ERR_AUDIT_UNAVAILABLE', why.startsWith('the audit') ? why : `the audit log is unavailable: ${why}`);
  }

  #rejectAll(items: readonly Pending[], error: unknown): void {
    for (const item of items) {
      if (item.settled) continue;
      item.settled = true;
      item.reject(error);
    }
  }

  /** Enters `degraded`: refuses everything queued and schedules the repair. */
  #degrade(error: TollgateError): TollgateError {
    const unavailable = error.code === 'TG_ERR_AUDIT_UNAVAILABLE' ? error : new TollgateError('TG_ERR_AUDIT_UNAVAILABLE', error.message, { cause: error });
    this.#lastError = { code: unavailable.code, message: unavailable.message, atMs: this.#s.clock.now() };
    if (this.#status === 'ready') {
      this.#status = 'degraded';
      this.#s.logger.error({ err: error, dir: this.#s.dir }, 'audit log degraded: appends are refused');
      this.#s.observer.stateChanged?.(this.state());
    }
    this.#rejectAll(this.#queue.splice(0), unavailable);
    // The batches in flight were written after the committed end; the repair cuts them.
    for (const flush of this.#flushes) {
      flush.abandoned = true;
      this.#rejectAll(flush.items, unavailable);
      const io = flush.io;
      this.#abandonedIo.add(io);
      const forget = (): void => void this.#abandonedIo.delete(io);
      void io.then(forget, forget);
    }
    this.#flushes = [];
    this.#dropSealed(unavailable);
    if (this.#closing === null) this.#scheduleRepair();
    this.#wakeIfDrained();
    return unavailable;
  }

  #scheduleRepair(): void {
    if (this.#retryTimer !== null || this.#repairing !== null) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#repairing = this.#repair().finally(() => {
        this.#repairing = null;
        if (this.#status === 'degraded' && this.#closing === null) this.#scheduleRepair();
      });
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  /**
   * Puts the files back to the committed state and proves the disk takes writes again: removes
   * segments a failed batch created, truncates the current segment to its committed length,
   * writes and syncs a probe byte, and truncates it away. Any failure keeps the store degraded
   * and retries with a doubled delay.
   */
  async #repair(): Promise<void> {
    if (this.#status !== 'degraded') return;
    try {
      await this.#settleInflight();
      await this.#restoreCommitted();
      if (this.#closing !== null) return;
      this.#status = 'ready';
      this.#retryDelay = this.#s.retryInitialMs;
      this.#s.logger.info({ dir: this.#s.dir, size: this.#nextSeq }, 'audit log recovered: appends are accepted again');
      this.#s.observer.stateChanged?.(this.state());
    } catch (error) {
      this.#lastError = { code: 'TG_ERR_AUDIT_UNAVAILABLE', message: this.#ioError(error, 'recover').message, atMs: this.#s.clock.now() };
      this.#retryDelay = Math.min(this.#retryDelay * 2, this.#s.retryMaxMs);
      this.#s.logger.warn({ err: error, retryInMs: this.#retryDelay }, 'audit log still unavailable');
    }
  }

  async #settleInflight(): Promise<void> {
    while (this.#flushes.length > 0 || this.#abandonedIo.size > 0) {
      await Promise.allSettled([...this.#flushes.map((flush) => flush.io), ...this.#abandonedIo]);
    }
    while (this.#syncing !== null) await this.#syncing;
    await this.#settleExtension();
  }

  async #restoreCommitted(): Promise<void> {
    const { fs, dir } = this.#s;
    if (this.#uncommitted.length > 0) {
      for (const segment of this.#uncommitted.toReversed()) {
        await segment.file.close().catch(() => undefined);
        await fs.unlink(segment.path).catch(ignoreMissing);
      }
      this.#uncommitted = [];
      await fs.syncDir(dir);
    }
    const segment = this.#segment;
    const [onDisk, open] = await Promise.all([fs.statPath(segment.path), segment.file.stat()]);
    if (onDisk === null || open.nlink === 0 || onDisk.ino !== open.ino || onDisk.dev !== open.dev) {
      throw Object.assign(new Error(`segment ${basename(segment.path)} is no longer in ${dir}; restart the gateway once the directory is back`), { code: 'ENOENT' });
    }
    await segment.file.truncate(segment.bytes);
    segment.written = segment.bytes;
    segment.allocated = segment.bytes;
    await segment.file.writev([Buffer.alloc(1)], segment.bytes);
    await segment.file.datasync();
    await segment.file.truncate(segment.bytes);
    await segment.file.datasync();
    segment.preallocate = true;
    // The sync above covers every acknowledged record (durability `interval`).
    for (const leaf of this.#unsynced) this.#range.append(leaf);
    this.#unsynced = [];
  }

  // ---- durability `interval` ---------------------------------------------------------------

  #scheduleSync(): void {
    if (this.#syncTimer !== null) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = null;
      void this.#syncNow();
    }, this.#s.syncIntervalMs);
    this.#syncTimer.unref();
  }

  #syncNow(): Promise<void> {
    this.#syncing ??= this.#sync().finally(() => {
      this.#syncing = null;
    });
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    if (this.#unsynced.length === 0 || this.#status !== 'ready') return;
    const count = this.#unsynced.length;
    const segment = this.#segment;
    try {
      await segment.file.datasync();
      this.#checkLinked(segment);
    } catch (error) {
      // Acknowledged records may be lost if the machine stops now: that is the documented risk
      // of durability `interval`. Stop acknowledging more until the disk syncs again.
      this.#degrade(this.#ioError(error, 'sync acknowledged records'));
      return;
    }
    for (const leaf of this.#unsynced.splice(0, count)) this.#range.append(leaf);
  }

  // ---- checkpoints -------------------------------------------------------------------------

  async #checkpointTick(): Promise<void> {
    try {
      await this.#checkpointOnce();
    } catch {
      // Reported through lastError and the log by #checkpointOnce.
    }
  }

  #checkpointOnce(): Promise<void> {
    this.#checkpointing ??= this.#signCheckpoint().finally(() => {
      this.#checkpointing = null;
    });
    return this.#checkpointing;
  }

  /**
   * Signs the synced tree when it grew: the history entry first (durable), then the `checkpoint`
   * file is replaced. A failed replacement is retried at the next interval even without new
   * records.
   */
  async #signCheckpoint(): Promise<void> {
    const { fs, dir, logId, signer } = this.#s;
    const size = this.#range.size;
    const started = performance.now();
    try {
      if (size > (this.#signed?.checkpoint.size ?? 0)) {
        const checkpoint = { origin: logId, size, rootHash: this.#range.root() };
        const note = signNote(formatCheckpointBody(checkpoint), signer);
        this.#historyEnd = await appendHistoryEntry(fs, dir, this.#historyEnd, note);
        this.#signed = { checkpoint, note };
      }
      const latest = this.#signed;
      if (latest !== null && latest !== this.#checkpoint) {
        await replaceCheckpointFile(fs, dir, latest.note);
        this.#checkpoint = latest;
        this.#s.observer.checkpoint?.({ size: latest.checkpoint.size, durationMs: performance.now() - started });
      }
    } catch (error) {
      const failure = this.#ioError(error, 'write a signed checkpoint');
      this.#lastError = { code: failure.code, message: failure.message, atMs: this.#s.clock.now() };
      this.#s.logger.error({ err: error, dir }, 'audit checkpoint not written; retrying at the next interval');
      throw failure;
    }
  }

  // ---- close -------------------------------------------------------------------------------

  /** A closed log ends at its last frame: the preallocated zeros are cut. */
  async #trimPreallocated(): Promise<void> {
    const segment = this.#segment;
    if (segment.allocated <= segment.bytes) return;
    try {
      await segment.file.truncate(segment.bytes);
      await segment.file.datasync();
      segment.allocated = segment.bytes;
    } catch (error) {
      // Harmless: readers and the next open take the zeros for the end of the log.
      this.#s.logger.warn({ err: error, dir: this.#s.dir }, 'audit log: could not cut the preallocated space at close');
    }
  }

  async #close(): Promise<void> {
    clearInterval(this.#checkpointTimer);
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (this.#repairing !== null) await this.#repairing;
    // Everything queued before close() is still written.
    while (this.#flushes.length > 0 || (this.#status === 'ready' && (this.#queue.length > 0 || this.#sealed.items.length > 0))) {
      this.#schedulePump();
      await new Promise<void>((wake) => this.#drained.push(wake));
    }
    this.#rejectAll(this.#queue.splice(0), this.#unavailable());
    this.#dropSealed(this.#unavailable());
    await this.#settleInflight();
    if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
    this.#syncTimer = null;
    if (this.#status === 'ready') await this.#syncNow();
    if (this.#status === 'ready') await this.#trimPreallocated();
    if (this.#status === 'degraded') {
      await this.#restoreCommitted().catch((error: unknown) => {
        this.#s.logger.error({ err: error }, 'audit log: could not cut an unfinished batch at close; the next open will');
      });
    }
    if (this.#watchdog !== null) clearTimeout(this.#watchdog);
    this.#watchdog = null;
    if (this.#deferTimer !== null) clearTimeout(this.#deferTimer);
    this.#deferTimer = null;
    while (this.#checkpointing !== null) await this.#checkpointing.catch(() => undefined);
    if (this.#range.size > (this.#signed?.checkpoint.size ?? 0) || this.#signed !== this.#checkpoint) {
      await this.#checkpointOnce().catch(() => undefined);
    }
    for (const segment of [this.#segment, ...this.#uncommitted]) await segment.file.close().catch(() => undefined);
    this.#uncommitted = [];
    this.#status = 'closed';
    this.#s.observer.stateChanged?.(this.state());
    await this.#lock.release();
  }
}
