import { parentPort } from 'node:worker_threads';
import { verifyChunk } from './verify-chunk.js';
import type { ChunkFailure } from './verify-chunk.js';
import type { ChainVerifierState } from './verify-chain.js';

/**
 * Worker thread of `audit verify`: checks chunks of records posted by the reading thread (see
 * `verify-log`). A chunk arrives as one transferred buffer with the records' positions in it, so
 * nothing is copied between threads.
 */

/** A chunk as posted to the worker. */
export interface WorkerChunk {
  readonly id: number;
  readonly logId: string;
  readonly resume: ChainVerifierState | null;
  readonly buffer: ArrayBuffer;
  readonly starts: Uint32Array;
  readonly lengths: Uint32Array;
  readonly leaves: Uint8Array;
}

export interface WorkerReply {
  readonly id: number;
  readonly failure: ChunkFailure | null;
  /** A bug in the checks; the reading thread rethrows it. */
  readonly error?: string;
}

const port = parentPort;
if (port !== null) {
  port.on('message', (chunk: WorkerChunk) => {
    let reply: WorkerReply;
    try {
      const records: Uint8Array[] = new Array<Uint8Array>(chunk.starts.length);
      for (let i = 0; i < records.length; i++) records[i] = new Uint8Array(chunk.buffer, chunk.starts[i]!, chunk.lengths[i]!);
      reply = { id: chunk.id, failure: verifyChunk({ logId: chunk.logId, resume: chunk.resume, records, leaves: chunk.leaves }) };
    } catch (error) {
      reply = { id: chunk.id, failure: null, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
    port.postMessage(reply);
  });
}
