import { Worker } from 'node:worker_threads';
import { TollgateError } from '../core/index.js';
import { verifyChunk } from './verify-chunk.js';
import type { ChunkFailure, ChunkJob } from './verify-chunk.js';
import type { WorkerChunk, WorkerReply } from './verify-worker.js';

/**
 * Where `audit verify` sends its chunks of records: checked in this thread, or spread over worker
 * threads while this thread reads and hashes the next chunks. Either way the results are the
 * same, because chunks are independent (see `verify-chunk`).
 */
export interface ChunkChecker {
  /** Resolves when another chunk may be submitted (bounds the chunks in memory). */
  slot(): Promise<void>;
  /**
   * Checks a chunk. With workers the records must be views into one buffer owned by the chunk;
   * that buffer is transferred and unusable afterwards.
   */
  check(job: ChunkJob): Promise<ChunkFailure | null>;
  close(): Promise<void>;
}

/** Checks each chunk synchronously in this thread. */
export function localChecker(): ChunkChecker {
  return {
    slot: () => Promise.resolve(),
    check: (job) => Promise.resolve(verifyChunk(job)),
    close: () => Promise.resolve(),
  };
}

/** Chunks a worker may hold: one being checked, one waiting, so it never idles. */
const CHUNKS_PER_WORKER = 2;

interface Pending {
  readonly resolve: (failure: ChunkFailure | null) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The worker's module is this one's sibling. From `dist/` it is plain JavaScript. When this
 * module itself runs as TypeScript (from `src/`, in tests and benchmarks, under tsx), the worker
 * has to load TypeScript too, and on Node 20 a worker does not inherit the loader hooks of its
 * parent: it registers tsx's hooks itself before importing the module.
 */
function startWorker(): Worker {
  const options = {
    // The worker needs none of the parent's node flags, and some (--input-type, --eval) would stop it.
    execArgv: [],
    // What a worker allocates (decoded records) dies young: a small young generation keeps its
    // heap small (measured: about 60 MiB less peak RSS with two workers) at no measurable cost.
    resourceLimits: { maxYoungGenerationSizeMb: 8 },
  };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./verify-worker.js', import.meta.url), options);
  const worker = JSON.stringify(new URL('./verify-worker.ts', import.meta.url).href);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return new Worker(`import(${tsx}).then((tsx) => { tsx.register(); return import(${worker}); });`, { ...options, eval: true });
}

/** Spreads chunks over `count` worker threads running `verify-worker`. */
export function workerChecker(count: number): ChunkChecker {
  const workers: { worker: Worker; load: number }[] = [];
  const pending = new Map<number, Pending>();
  const waiters: (() => void)[] = [];
  let nextId = 0;
  let broken: TollgateError | null = null;

  const fail = (error: TollgateError): void => {
    broken ??= error;
    for (const entry of pending.values()) entry.reject(broken);
    pending.clear();
    for (const wake of waiters.splice(0)) wake();
  };

  for (let i = 0; i < count; i++) {
    const worker = startWorker();
    const entry = { worker, load: 0 };
    worker.on('message', (reply: WorkerReply) => {
      entry.load -= 1;
      const waiting = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.error !== undefined) fail(new TollgateError('TG_ERR_INTERNAL', `an audit verify worker failed: ${reply.error}`));
      else waiting?.resolve(reply.failure);
      waiters.shift()?.();
    });
    worker.on('error', (error) => fail(new TollgateError('TG_ERR_INTERNAL', `an audit verify worker stopped: ${error.message}`, { cause: error })));
    workers.push(entry);
  }

  const hasRoom = () => workers.some((w) => w.load < CHUNKS_PER_WORKER);

  return {
    async slot() {
      while (broken === null && !hasRoom()) await new Promise<void>((wake) => waiters.push(wake));
      if (broken !== null) throw broken;
    },
    check(job) {
      if (broken !== null) return Promise.reject(broken);
      const target = workers.reduce((best, w) => (w.load < best.load ? w : best));
      const first = job.records[0];
      const buffer = first === undefined ? new ArrayBuffer(0) : (first.buffer as ArrayBuffer);
      const starts = new Uint32Array(job.records.length);
      const lengths = new Uint32Array(job.records.length);
      for (let i = 0; i < job.records.length; i++) {
        const record = job.records[i]!;
        if (record.buffer !== buffer) throw new TollgateError('TG_ERR_INTERNAL', 'the records of a verify chunk must share one buffer');
        starts[i] = record.byteOffset;
        lengths[i] = record.length;
      }
      const id = nextId++;
      const message: WorkerChunk = { id, logId: job.logId, resume: job.resume, buffer, starts, lengths, leaves: job.leaves };
      target.load += 1;
      return new Promise<ChunkFailure | null>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        target.worker.postMessage(message, [buffer, starts.buffer, lengths.buffer, job.leaves.buffer as ArrayBuffer]);
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
