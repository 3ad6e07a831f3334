import { TollgateError } from '../core/index.js';
import { bytesToHex, equalBytes, hexToBytesStrict } from './bytes.js';
import { genesisPrev } from './genesis.js';
import { CompactRange, HASH_SIZE, leafHash, nodeHash } from './merkle.js';
import type { CompactRangeJSON, NodeHasher } from './merkle.js';
import { parseRecord } from './record.js';
import type { AuditRecord, RecordProblem } from './record.js';

/**
 * Why a log fails verification at some record; stable strings that `audit verify` prints.
 * Record problems (`non-canonical`, `invalid-record`, `unknown-kind`, `too-large`) plus:
 * `wrong-log-id`, `seq-gap` (a record is missing), `seq-duplicate` (a seq repeats or goes back),
 * `prev-mismatch` (the chain is broken), `checkpoint-mismatch` (the records do not hash to the
 * signed root).
 */
export type ChainProblem = RecordProblem | 'wrong-log-id' | 'seq-gap' | 'seq-duplicate' | 'prev-mismatch' | 'checkpoint-mismatch';

export interface ChainFailure<P = unknown> {
  readonly ok: false;
  /**
   * The first bad position of the log: for a record problem, the seq the record should have
   * had (its 0-based place in the log); for a checkpoint, the last seq it covers.
   */
  readonly seq: number;
  readonly reason: ChainProblem;
  readonly detail: string;
  /** Whatever the caller passed with the bad record (segment and offset, say). */
  readonly position?: P;
}

export interface ChainStep {
  readonly ok: true;
  readonly seq: number;
  readonly record: AuditRecord;
  readonly leafHash: Uint8Array;
}

/** Everything needed to resume verification after `size` records, without re-reading them. */
export interface ChainVerifierState {
  readonly size: number;
  /** Lowercase hex leaf hash of record `size − 1`; `null` when size is 0. */
  readonly lastLeafHash: string | null;
  readonly range: CompactRangeJSON;
}

export interface ChainVerifier<P = unknown> {
  /** Records accepted so far (the seq the next record must have). */
  readonly size: number;
  /** The first failure, once there is one; every later push returns it again. */
  readonly failure: ChainFailure<P> | null;
  /** Checks the next record's bytes against the chain so far. */
  push(recordBytes: Uint8Array, position?: P): ChainStep | ChainFailure<P>;
  /** The Merkle root of the first `size` records, available exactly when {@link size} is `size`. */
  rootAt(size: number): Uint8Array | null;
  /**
   * Compares a checkpoint's root with the records' root; feed each checkpoint when the verifier
   * has just reached its size (throws `TG_ERR_INTERNAL` otherwise, since that is a caller bug).
   */
  checkCheckpoint(checkpoint: { readonly size: number; readonly rootHash: Uint8Array }): { readonly ok: true } | ChainFailure<P>;
  /** A snapshot to resume from; see {@link createChainVerifier}. */
  state(): ChainVerifierState;
}

export interface ChainVerifierOptions {
  readonly logId: string;
  /** Start after a prefix already verified: a state from {@link ChainVerifier.state}. */
  readonly resume?: ChainVerifierState;
  /**
   * RFC 9162 leaf hash, SHA-256(0x00 ‖ entry). Defaults to the portable implementation; a Node
   * caller may pass one built on the native SHA-256, which must give identical results.
   */
  readonly hashLeaf?: (entry: Uint8Array) => Uint8Array;
  /** RFC 9162 node hash for the tree, likewise. */
  readonly hashNode?: NodeHasher;
}

/**
 * A streaming verifier of one audit log's records, fed in order. It keeps only the previous
 * leaf hash and a {@link CompactRange}, so its memory stays flat however long the log is. It
 * stops at the first failure and names the seq where the log went wrong.
 */
export function createChainVerifier<P = unknown>(options: ChainVerifierOptions): ChainVerifier<P> {
  const { logId, hashLeaf = leafHash, hashNode = nodeHash } = options;
  const genesis = genesisPrev(logId);
  let range = new CompactRange(hashNode);
  let expectedPrev = genesis;
  if (options.resume !== undefined) {
    const { size, lastLeafHash, range: saved } = options.resume;
    range = CompactRange.fromJSON(saved, hashNode);
    const last = lastLeafHash === null ? null : hexToBytesStrict(lastLeafHash, HASH_SIZE);
    if (range.size !== size || (size === 0) !== (lastLeafHash === null) || (lastLeafHash !== null && last === null)) {
      throw new TollgateError('TG_ERR_AUDIT_TAMPERED', 'the saved verification state is inconsistent; verify the log from its start');
    }
    expectedPrev = lastLeafHash ?? genesis;
  }
  let failure: ChainFailure<P> | null = null;

  const fail = (seq: number, reason: ChainProblem, detail: string, position: P | undefined): ChainFailure<P> => {
    failure = position === undefined ? { ok: false, seq, reason, detail } : { ok: false, seq, reason, detail, position };
    return failure;
  };

  return {
    get size() {
      return range.size;
    },
    get failure() {
      return failure;
    },
    push(recordBytes, position) {
      if (failure !== null) return failure;
      const expected = range.size;
      const parsed = parseRecord(recordBytes);
      if (!parsed.ok) return fail(expected, parsed.reason, parsed.detail, position);
      const { record } = parsed;
      if (record.log_id !== logId) return fail(expected, 'wrong-log-id', `the record belongs to log ${JSON.stringify(record.log_id)}, not ${JSON.stringify(logId)}`, position);
      if (record.seq > expected) return fail(expected, 'seq-gap', `expected seq ${expected}, found ${record.seq}: records are missing`, position);
      if (record.seq < expected) return fail(expected, 'seq-duplicate', `expected seq ${expected}, found ${record.seq} again`, position);
      if (record.prev !== expectedPrev) {
        const what = expected === 0 ? 'the genesis value of this log' : `the leaf hash of seq ${expected - 1}`;
        return fail(expected, 'prev-mismatch', `prev is ${record.prev}, not ${what} (${expectedPrev})`, position);
      }
      const leaf = hashLeaf(recordBytes);
      range.append(leaf);
      expectedPrev = bytesToHex(leaf);
      return { ok: true, seq: expected, record, leafHash: leaf };
    },
    rootAt(size) {
      return size === range.size ? range.root() : null;
    },
    checkCheckpoint(checkpoint) {
      if (failure !== null) return failure;
      if (checkpoint.size !== range.size) {
        throw new TollgateError('TG_ERR_INTERNAL', `a checkpoint of size ${checkpoint.size} was checked at size ${range.size}; feed checkpoints in order`);
      }
      if (equalBytes(range.root(), checkpoint.rootHash)) return { ok: true };
      const last = Math.max(checkpoint.size - 1, 0);
      return fail(last, 'checkpoint-mismatch', `the first ${checkpoint.size} records do not hash to the root the checkpoint signs: records before seq ${checkpoint.size} were altered`, undefined);
    },
    state() {
      return { size: range.size, lastLeafHash: range.size === 0 ? null : expectedPrev, range: range.toJSON() };
    },
  };
}
