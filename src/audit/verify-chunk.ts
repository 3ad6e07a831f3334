import { TollgateError } from '../core/index.js';
import { HASH_SIZE } from './merkle.js';
import { createChainVerifier } from './verify-chain.js';
import type { ChainProblem, ChainVerifierState } from './verify-chain.js';

/**
 * One chunk of consecutive records for the chain checks of `audit verify`: canonical bytes,
 * record shape, `log_id`, seq continuity and `prev` links, by the pure chain verifier. Chunks
 * are independent (each resumes from the state the log had before its first record), so they can
 * be checked in any thread and in any order; the Merkle roots are the reading thread's job.
 */
export interface ChunkJob {
  readonly logId: string;
  /** The chain state before the chunk's first record; null at seq 0. */
  readonly resume: ChainVerifierState | null;
  readonly records: readonly Uint8Array[];
  /** RFC 9162 leaf hash of each record, already computed by the reading thread: 32 bytes each. */
  readonly leaves: Uint8Array;
}

export interface ChunkFailure {
  /** Index of the bad record in the chunk. */
  readonly index: number;
  readonly seq: number;
  readonly reason: ChainProblem;
  readonly detail: string;
}

// The chunk verifier's own Merkle tree is never read (roots are checked by the thread that reads
// the segments, over every leaf), so its node hash is a constant instead of a SHA-256.
const UNUSED_NODE = new Uint8Array(HASH_SIZE);
const unusedNodeHash = (): Uint8Array => UNUSED_NODE;

/** Checks a chunk; returns its first failure, or null when every record is good. */
export function verifyChunk(job: ChunkJob): ChunkFailure | null {
  const { records, leaves } = job;
  if (leaves.length !== records.length * HASH_SIZE) throw new TollgateError('TG_ERR_INTERNAL', 'a verify chunk needs one leaf hash per record');
  let index = 0;
  const verifier = createChainVerifier<number>({
    logId: job.logId,
    ...(job.resume === null ? {} : { resume: job.resume }),
    // The leaf hash of the record being pushed, computed once by the reading thread.
    hashLeaf: (entry) => {
      if (entry !== records[index]) throw new TollgateError('TG_ERR_INTERNAL', 'the chain verifier hashed a record other than the one pushed');
      return leaves.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
    },
    hashNode: unusedNodeHash,
  });
  for (; index < records.length; index++) {
    const step = verifier.push(records[index]!, index);
    if (!step.ok) return { index, seq: step.seq, reason: step.reason, detail: step.detail };
  }
  return null;
}
