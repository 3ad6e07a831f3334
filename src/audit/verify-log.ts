import { createPublicKey, verify as verifySignature } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { TollgateError } from '../core/index.js';
import { bytesToHex, equalBytes, utf8DecodeStrict } from './bytes.js';
import { readHistory } from './checkpoint-history.js';
import type { HistoryEntry } from './checkpoint-history.js';
import { CompactRange, emptyRoot, HASH_SIZE } from './merkle.js';
import { openCheckpoint, parseCheckpointBody } from './note.js';
import type { Checkpoint, NoteVerifier } from './note.js';
import { frameLeafHash, listSegments, readFrames } from './segment-reader.js';
import type { LogSegment } from './segment-reader.js';
import { fastNodeHash } from './store/fast-hash.js';
import { nodeStoreFs } from './store/file-io.js';
import type { StoreFs } from './store/file-io.js';
import { CHECKPOINT_FILE, CHECKPOINT_HISTORY_FILE } from './store/layout.js';
import type { TornTailReason } from './store/recover.js';
import type { ChainProblem, ChainVerifierState } from './verify-chain.js';
import type { ChunkFailure } from './verify-chunk.js';
import { localChecker, workerChecker } from './verify-pool.js';
import type { ChunkChecker } from './verify-pool.js';

/**
 * `tollgate audit verify`: checks a whole audit directory, streaming, in memory that does not
 * grow with the log (one read chunk per thread, a Merkle right edge, one checkpoint at a time).
 *
 * What is checked, in log order, stopping at the first problem:
 * - each segment's name (its first seq) follows the one before;
 * - every frame: declared length and CRC-32;
 * - every record: canonical JSON, the record model, `log_id`, seq continuity, the `prev` link
 *   (the pure chain verifier, optionally in worker threads);
 * - every stored checkpoint (the `checkpoints` history and the `checkpoint` file) and the
 *   external one: its signature by one of the given keys (C2SP signed-note), its origin (the log
 *   id), that no two checkpoints for one size disagree, and that the RFC 9162 root of the first
 *   `size` records is the root it signs;
 * - that the log holds at least as many records as every checkpoint covers, which is how a
 *   removed tail is caught. A tail removed together with its checkpoints is caught only with a
 *   checkpoint kept elsewhere (`externalCheckpoint`);
 * - that a log with records holds a stored checkpoint: the store signs the empty tree before it
 *   writes the first record, so records without any checkpoint mean the checkpoint files were
 *   deleted (to pass off a log rewritten from seq 0). A history cut back to an earlier entry,
 *   with the records after it rewritten, is caught only with a checkpoint kept elsewhere.
 *
 * A torn end of the last segment after every checkpoint (an unfinished or interrupted write,
 * which the store cuts when it next opens) is reported, not failed.
 */

/**
 * Why a log fails verification: the chain verifier's problems (see `verify-chain`), plus
 * `bad-frame-length` (a frame header declares an impossible length), `bad-crc` (a frame's bytes
 * do not match its CRC-32), `incomplete-frame` (a segment other than the last ends inside a
 * frame), `truncated` (a checkpoint covers more records than the log holds),
 * `checkpoint-malformed`, `checkpoint-bad-signature` (a given key's signature does not verify),
 * `checkpoint-unknown-key` (no signature by any given key), `checkpoint-wrong-origin` (a
 * checkpoint of another log), `checkpoint-conflict` (two signed checkpoints for one size with
 * different roots: the log was forked), `checkpoint-order` (the history goes back in size) and
 * `checkpoint-missing` (records, but no stored checkpoint at all).
 */
export type VerifyProblem =
  | ChainProblem
  | 'bad-frame-length'
  | 'bad-crc'
  | 'incomplete-frame'
  | 'truncated'
  | 'checkpoint-malformed'
  | 'checkpoint-bad-signature'
  | 'checkpoint-unknown-key'
  | 'checkpoint-wrong-origin'
  | 'checkpoint-conflict'
  | 'checkpoint-order'
  | 'checkpoint-missing';

export interface VerifyLogOptions {
  readonly dir: string;
  /**
   * Keys trusted to sign this log's checkpoints (`parseVerifierKey`). Empty: signatures are not
   * checked (roots and everything else still are), and the result says so.
   */
  readonly verifiers: readonly NoteVerifier[];
  /** A signed checkpoint saved elsewhere; the log must still contain its tree. */
  readonly externalCheckpoint?: string | Uint8Array;
  /**
   * The log's id, which every record and checkpoint must carry; default: the origin of the
   * `checkpoint` file, else the first record's `log_id`. Give it to tell this log from another
   * one signed with the same key.
   */
  readonly logId?: string;
  /**
   * Worker threads for the record checks, used when the log is larger than a few chunks.
   * Default 0: everything in this thread.
   */
  readonly workers?: number;
  readonly fs?: StoreFs;
  /** Read size, and the unit of work of a worker thread. Default 1 MiB. */
  readonly chunkBytes?: number;
}

export interface VerifiedCheckpoint {
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** `name+keyid` of each given key that signed it; empty when signatures were not checked. */
  readonly signers: readonly string[];
}

export interface TornTail {
  readonly segment: string;
  readonly offset: number;
  readonly bytes: number;
  readonly reason: TornTailReason;
}

export interface LogVerified {
  readonly ok: true;
  /** Records in the log. */
  readonly size: number;
  /** RFC 9162 root of all records. */
  readonly root: Uint8Array;
  readonly logId: string | null;
  /** `name+keyid` of the key(s) that signed the latest stored checkpoint; null when unchecked or none. */
  readonly signer: string | null;
  /** The latest stored checkpoint, or null when the log was never signed. */
  readonly checkpoint: VerifiedCheckpoint | null;
  /** Stored checkpoints checked (history entries and the `checkpoint` file). */
  readonly checkpointsChecked: number;
  readonly signaturesChecked: boolean;
  /** The external checkpoint, checked. */
  readonly external: VerifiedCheckpoint | null;
  /** An unfinished write at the end of the last segment, after every checkpoint. */
  readonly tornTail: TornTail | null;
  /** The last history entry is incomplete (a crash while appending it; the store cuts it). */
  readonly historyTornAt: number | null;
}

export interface LogVerifyFailure {
  readonly ok: false;
  /** The first bad position: the seq a bad record has (or should have), or the last seq a bad checkpoint covers. */
  readonly seq: number;
  readonly reason: VerifyProblem;
  /** What is wrong, for people. */
  readonly message: string;
  /** Where, when the problem is in a segment. */
  readonly segment?: string;
  readonly offset?: number;
}

export type VerifyLogResult = LogVerified | LogVerifyFailure;

/**
 * A chunk of about 1,800 records: small enough that the chunks in flight to the workers (two per
 * worker) stay a few MiB, large enough that handing one over costs nothing measurable.
 */
const VERIFY_CHUNK_BYTES = 1024 * 1024;

/** Verifies the audit log in `options.dir`. Throws `TG_ERR_USAGE` when there is no log there. */
export async function verifyLog(options: VerifyLogOptions): Promise<VerifyLogResult> {
  const fs = options.fs ?? nodeStoreFs;
  const { dir } = options;
  const dirIdentity = await fs.statPath(dir);
  if (dirIdentity === null) throw new TollgateError('TG_ERR_USAGE', `there is no audit directory at ${dir}; pass the audit.dir of the gateway`);
  // Checkpoints are looked at before the segments are listed: a live gateway only signs records
  // that are already in its segments, so every checkpoint seen here covers records read below.
  const historyPath = join(dir, CHECKPOINT_HISTORY_FILE);
  const historySize = (await fs.statPath(historyPath))?.size ?? 0;
  const checkpointFile = await readOptional(fs, join(dir, CHECKPOINT_FILE));
  const segments = await listSegments(fs, dir);
  if (segments.length === 0 && historySize === 0 && checkpointFile === null) {
    throw new TollgateError('TG_ERR_USAGE', `${dir} holds no audit log (no segment files, no checkpoints); pass the audit.dir of the gateway`);
  }
  let external: Candidate | null = null;
  if (options.externalCheckpoint !== undefined) {
    const parsed = parseNote(options.externalCheckpoint);
    if (typeof parsed === 'string') throw new TollgateError('TG_ERR_USAGE', `the external checkpoint is not a signed checkpoint note: ${parsed}`);
    external = { source: 'the external checkpoint', note: options.externalCheckpoint, checkpoint: parsed, stored: false };
  }
  const fileCandidate = checkpointFile === null ? null : fileCandidateOf(checkpointFile);
  const logId = options.logId ?? originOf(fileCandidate) ?? (await firstLogId(fs, segments));
  const workers = options.workers ?? 0;
  const chunkBytes = options.chunkBytes ?? VERIFY_CHUNK_BYTES;
  const totalBytes = await segmentBytes(fs, segments);
  // Workers pay off once there is more than a few chunks' work; their start-up costs tens of ms.
  const useWorkers = workers > 0 && totalBytes > 4 * chunkBytes;
  const checker = useWorkers ? workerChecker(workers) : localChecker();
  // A verification that stops early leaves the history half read: returning the generator runs
  // its finally block, which closes the file.
  const history = readHistory(fs, historyPath, historySize);
  try {
    const run = new Verification({
      fs,
      logId,
      verifiers: options.verifiers.map(nativeVerifier),
      checker,
      fresh: useWorkers,
      history,
      extras: [fileCandidate, external].filter((c): c is Candidate => c !== null),
      chunkBytes,
      // A gateway creating the log writes its first checkpoint before its first segment; one
      // that did so after the history was looked at is a new log, not a deleted checkpoint.
      historyGrew: async () => ((await fs.statPath(historyPath))?.size ?? 0) > historySize,
    });
    return await run.verify(segments);
  } finally {
    await history.return(undefined);
    await checker.close();
  }
}

interface Candidate {
  /** Where the checkpoint comes from, for messages. */
  readonly source: string;
  readonly note: string | Uint8Array;
  /** Parsed but not yet authenticated; a string when the note is malformed. */
  readonly checkpoint: Checkpoint | string;
  /** From the audit directory (history or `checkpoint` file), as opposed to the external one. */
  readonly stored: boolean;
}

function fileCandidateOf(note: Uint8Array): Candidate {
  return { source: `the ${CHECKPOINT_FILE} file`, note, checkpoint: parseNote(note), stored: true };
}

function originOf(candidate: Candidate | null): string | null {
  return candidate !== null && typeof candidate.checkpoint !== 'string' ? candidate.checkpoint.origin : null;
}

/** The checkpoint a signed note carries, without checking its signatures; a string saying why not. */
function parseNote(note: string | Uint8Array): Checkpoint | string {
  const text = typeof note === 'string' ? note : utf8DecodeStrict(note);
  if (text === null) return 'not valid UTF-8';
  const split = text.lastIndexOf('\n\n');
  if (split < 0) return 'no blank line separates the text from the signatures';
  const parsed = parseCheckpointBody(text.slice(0, split + 1));
  return parsed.ok ? parsed.checkpoint : parsed.reason;
}

async function readOptional(fs: StoreFs, path: string): Promise<Uint8Array | null> {
  try {
    return await fs.readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

async function segmentBytes(fs: StoreFs, segments: readonly LogSegment[]): Promise<number> {
  let total = 0;
  for (const segment of segments) total += (await fs.statPath(segment.path))?.size ?? 0;
  return total;
}

/** The `log_id` of the first record, read leniently (the chain checks judge the record itself). */
async function firstLogId(fs: StoreFs, segments: readonly LogSegment[]): Promise<string> {
  const first = segments[0];
  if (first === undefined) return '';
  for await (const item of readFrames(fs, first, { last: segments.length === 1, chunkBytes: 0 })) {
    if (item.type !== 'frames') return '';
    try {
      const value = JSON.parse(Buffer.from(item.records[0]!).toString('utf8')) as { log_id?: unknown };
      return typeof value.log_id === 'string' ? value.log_id : '';
    } catch {
      return '';
    }
  }
  return '';
}

/**
 * The same key, verifying with the platform's Ed25519 (OpenSSL), which is an order of magnitude
 * faster than the portable implementation: a long-running gateway signs a checkpoint every
 * second, and verify checks every one. OpenSSL verifies RFC 8032 strictly (canonical `S`, `R`
 * compared by its encoding), and the public key itself was validated when it was parsed.
 */
function nativeVerifier(verifier: NoteVerifier): NoteVerifier {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(verifier.publicKey).toString('base64url') }, format: 'jwk' });
  } catch {
    return verifier;
  }
  return {
    name: verifier.name,
    keyId: verifier.keyId,
    publicKey: verifier.publicKey,
    verify: (message, signature) => signature.length === 64 && verifySignature(null, message, key, signature),
  };
}

interface VerificationSetup {
  readonly fs: StoreFs;
  readonly logId: string;
  readonly verifiers: readonly NoteVerifier[];
  readonly checker: ChunkChecker;
  readonly fresh: boolean;
  readonly history: AsyncGenerator<HistoryEntry>;
  readonly extras: readonly Candidate[];
  readonly chunkBytes: number;
  /** Whether the history file is longer now than when it was first looked at. */
  readonly historyGrew: () => Promise<boolean>;
}

type HistoryItem = { readonly candidate: Candidate } | { readonly failure: string; readonly offset: number };

function keyLabel(name: string, keyId: number): string {
  return `${name}+${keyId.toString(16).padStart(8, '0')}`;
}

const CHECKPOINT_REASONS = {
  malformed: 'checkpoint-malformed',
  'bad-checkpoint': 'checkpoint-malformed',
  'invalid-signature': 'checkpoint-bad-signature',
  'ambiguous-key': 'checkpoint-bad-signature',
  unverified: 'checkpoint-unknown-key',
  'wrong-origin': 'checkpoint-wrong-origin',
} as const satisfies Record<string, VerifyProblem>;

/** One run of {@link verifyLog}. */
class Verification {
  readonly #s: VerificationSetup;
  readonly #range = new CompactRange(fastNodeHash);
  #lastLeaf: Uint8Array | null = null;
  /** Checkpoints from the `checkpoint` file and outside, by size. */
  readonly #extras: Candidate[];
  #historyNext: HistoryItem | null | undefined = undefined;
  #historyTornAt: number | null = null;
  /** Size of the last history entry taken, to see the history go back. */
  #historySize = -1;
  #latest: VerifiedCheckpoint | null = null;
  #external: VerifiedCheckpoint | null = null;
  #tornTail: TornTail | null = null;
  #checked = 0;
  /** The size at which the next checkpoint is due (Infinity when none is known). */
  #nextDue = 0;
  readonly #chunks: Promise<LogVerifyFailure | null>[] = [];

  constructor(setup: VerificationSetup) {
    this.#s = setup;
    this.#extras = [...setup.extras].sort((a, b) => sizeOf(a) - sizeOf(b));
  }

  async verify(segments: readonly LogSegment[]): Promise<VerifyLogResult> {
    let failure = await this.#readRecords(segments);
    const size = this.#range.size;
    if (failure === null) failure = await this.#checkRemaining(size);
    if (failure === null && size > 0 && this.#latest === null && !(await this.#s.historyGrew())) failure = this.#missingCheckpoint(size);
    const chunkFailure = await this.#firstChunkFailure();
    // A record problem comes first at the same seq: a sequential check meets the record before
    // the checkpoint that ends on it.
    if (chunkFailure !== null && (failure === null || chunkFailure.seq <= failure.seq)) return chunkFailure;
    if (failure !== null) return failure;
    return {
      ok: true,
      size,
      root: size === 0 ? emptyRoot() : this.#range.root(),
      logId: this.#s.logId === '' ? null : this.#s.logId,
      signer: this.#latest === null || this.#latest.signers.length === 0 ? null : this.#latest.signers.join(', '),
      checkpoint: this.#latest,
      checkpointsChecked: this.#checked,
      signaturesChecked: this.#s.verifiers.length > 0,
      external: this.#external,
      tornTail: this.#tornTail,
      historyTornAt: this.#historyTornAt,
    };
  }

  async #readRecords(segments: readonly LogSegment[]): Promise<LogVerifyFailure | null> {
    const { fs, checker } = this.#s;
    let failure = await this.#checkpointsAt(0);
    if (failure !== null) return failure;
    for (let s = 0; s < segments.length; s++) {
      const segment = segments[s]!;
      const last = s === segments.length - 1;
      const expected = this.#range.size;
      if (segment.firstSeq !== expected) {
        const reason = segment.firstSeq > expected ? 'seq-gap' : 'seq-duplicate';
        const before = expected === 0 ? 'the log starts at seq 0 and no segment before it holds that record' : `the segments before it end at seq ${expected - 1}`;
        const detail = `segment ${segment.name} starts at seq ${segment.firstSeq}, but ${before}: ${reason === 'seq-gap' ? 'records or segments are missing' : 'segments overlap'}`;
        return { ok: false, seq: expected, reason, message: detail, segment: segment.name, offset: 0 };
      }
      const reader = readFrames(fs, segment, { last, freshBuffers: this.#s.fresh, chunkBytes: this.#s.chunkBytes });
      for await (const item of reader) {
        if (item.type === 'end') {
          const damage = item.damage;
          if (damage === null) break;
          const seq = this.#range.size;
          if (last && damage.torn !== null) {
            this.#tornTail = { segment: segment.name, offset: damage.offset, bytes: damage.tornBytes, reason: damage.torn };
            break;
          }
          const where = `${segment.name} byte ${damage.offset}`;
          if (damage.problem === 'bad-length') {
            return { ok: false, seq, reason: 'bad-frame-length', message: `the frame at ${where} declares ${damage.declaredLength} bytes, which no record has`, segment: segment.name, offset: damage.offset };
          }
          if (damage.problem === 'bad-crc') {
            return { ok: false, seq, reason: 'bad-crc', message: `the frame at ${where} does not match its CRC-32: the record's bytes were changed`, segment: segment.name, offset: damage.offset };
          }
          return {
            ok: false,
            seq,
            reason: 'incomplete-frame',
            message: `segment ${segment.name} ends inside a frame (byte ${damage.offset}), but it is not the last segment: bytes were cut from it`,
            segment: segment.name,
            offset: damage.offset,
          };
        }
        const resume = this.#state();
        const { records, offsets } = item;
        const leaves = new Uint8Array(records.length * HASH_SIZE);
        let count = 0;
        while (count < records.length) {
          const leaf = frameLeafHash(records[count]!);
          leaves.set(leaf, count * HASH_SIZE);
          this.#range.append(leaf);
          this.#lastLeaf = leaf;
          count += 1;
          if (this.#range.size === this.#nextDue) {
            failure = await this.#checkpointsAt(this.#range.size);
            if (failure !== null) break;
          }
        }
        await checker.slot();
        const name = segment.name;
        const job = { logId: this.#s.logId, resume, records: records.slice(0, count), leaves: leaves.subarray(0, count * HASH_SIZE) };
        const checked = checker.check(job).then((found) => (found === null ? null : chunkFailure(found, name, offsets)));
        // Awaited (and any error raised) in verify(); until then a rejection is not "unhandled".
        checked.catch(() => undefined);
        this.#chunks.push(checked);
        if (failure !== null) return failure;
      }
    }
    return null;
  }

  /** After the last record: checkpoints beyond the log's size mean records were removed. */
  async #checkRemaining(size: number): Promise<LogVerifyFailure | null> {
    const next = await this.#peekHistory();
    if (next !== null && 'failure' in next) return this.#historyFailure(next, size);
    const rest = [...this.#extras];
    if (next !== null && 'candidate' in next) rest.push(next.candidate);
    rest.sort((a, b) => sizeOf(a) - sizeOf(b));
    for (const candidate of rest) {
      const problem = this.#authenticate(candidate, size);
      if (isSigners(problem)) {
        const covered = (candidate.checkpoint as Checkpoint).size;
        const torn = this.#tornTail === null ? '' : ` (the last segment ends with ${this.#tornTail.bytes} bytes of unfinished writes, ${this.#tornTail.reason})`;
        return {
          ok: false,
          seq: size,
          reason: 'truncated',
          message: `the log holds ${size} records but ${candidate.source} (signed${this.#signedBy(problem)}) covers ${covered}: records from seq ${size} on were removed${torn}`,
        };
      }
      return problem;
    }
    return null;
  }

  #missingCheckpoint(size: number): LogVerifyFailure {
    const torn = this.#historyTornAt === null ? 'the files checkpoint and checkpoints are missing or empty' : 'the checkpoint history holds only an incomplete entry';
    return {
      ok: false,
      seq: 0,
      reason: 'checkpoint-missing',
      message: `the log holds ${size} records but no signed checkpoint (${torn}), although the gateway signs one before it writes the first record: the checkpoint files were deleted, or the records were not written by the gateway; check them against a checkpoint kept elsewhere (--checkpoint)`,
    };
  }

  #signedBy(signers: readonly string[]): string {
    return signers.length === 0 ? ', signature not checked' : ` by ${signers.join(', ')}`;
  }

  #state(): ChainVerifierState | null {
    const size = this.#range.size;
    if (size === 0 || this.#lastLeaf === null) return null;
    return { size, lastLeafHash: bytesToHex(this.#lastLeaf), range: this.#range.toJSON() };
  }

  async #firstChunkFailure(): Promise<LogVerifyFailure | null> {
    let first: LogVerifyFailure | null = null;
    for (const found of await Promise.all(this.#chunks)) {
      if (found !== null && (first === null || found.seq < first.seq)) first = found;
    }
    return first;
  }

  // ---- checkpoints -------------------------------------------------------------------------

  /** The next history entry, read ahead by one. */
  async #peekHistory(): Promise<HistoryItem | null> {
    while (this.#historyNext === undefined) {
      const step = await this.#s.history.next();
      if (step.done === true) {
        this.#historyNext = null;
        break;
      }
      const entry = step.value;
      const checkpoint = entry.malformed ? 'the entry does not start with the separator byte 0x1E, or is far too long' : parseNote(entry.note);
      if (typeof checkpoint === 'string') {
        // A damaged last entry is what a crash while appending it leaves; the store cuts it.
        if (entry.last) {
          this.#historyTornAt = entry.offset;
          continue;
        }
        this.#historyNext = { failure: checkpoint, offset: entry.offset };
        break;
      }
      this.#historyNext = { candidate: { source: `the checkpoint history entry at byte ${entry.offset}`, note: entry.note, checkpoint, stored: true } };
    }
    return this.#historyNext;
  }

  #historyFailure(item: { failure: string; offset: number }, size: number): LogVerifyFailure {
    return { ok: false, seq: size, reason: 'checkpoint-malformed', message: `the checkpoint history entry at byte ${item.offset} is not a signed checkpoint: ${item.failure}` };
  }

  async #computeNextDue(): Promise<void> {
    const next = await this.#peekHistory();
    let due = this.#extras.length > 0 ? sizeOf(this.#extras[0]!) : Infinity;
    if (next !== null) due = 'candidate' in next ? Math.min(due, sizeOf(next.candidate)) : this.#range.size;
    this.#nextDue = due;
  }

  /** Checks every checkpoint of size `size`, now that exactly `size` records have been read. */
  async #checkpointsAt(size: number): Promise<LogVerifyFailure | null> {
    const due: Candidate[] = [];
    while (this.#extras.length > 0 && sizeOf(this.#extras[0]!) <= size) due.push(this.#extras.shift()!);
    for (;;) {
      const next = await this.#peekHistory();
      if (next === null) break;
      if ('failure' in next) return this.#historyFailure(next, size);
      const entrySize = sizeOf(next.candidate);
      if (entrySize > size) break;
      this.#historyNext = undefined;
      if (entrySize < this.#historySize) {
        return {
          ok: false,
          seq: Math.max(entrySize - 1, 0),
          reason: 'checkpoint-order',
          message: `${next.candidate.source} is for size ${entrySize}, after an entry for size ${this.#historySize}: checkpoint history entries only ever grow`,
        };
      }
      this.#historySize = entrySize;
      due.push(next.candidate);
    }
    if (due.length > 0) {
      const failure = this.#checkDue(due, size);
      if (failure !== null) return failure;
    }
    await this.#computeNextDue();
    return null;
  }

  #checkDue(due: readonly Candidate[], size: number): LogVerifyFailure | null {
    const seq = Math.max(size - 1, 0);
    const signers: (readonly string[])[] = [];
    for (const candidate of due) {
      const problem = this.#authenticate(candidate, seq);
      if (!isSigners(problem)) return problem;
      signers.push(problem);
    }
    const first = due[0]!.checkpoint as Checkpoint;
    for (const candidate of due.slice(1)) {
      if (!equalBytes((candidate.checkpoint as Checkpoint).rootHash, first.rootHash)) {
        return {
          ok: false,
          seq,
          reason: 'checkpoint-conflict',
          message: `${due[0]!.source} and ${candidate.source} are both for size ${size} but sign different roots: the log was forked or its key misused`,
        };
      }
    }
    const root = size === 0 ? emptyRoot() : this.#range.root();
    if (!equalBytes(root, first.rootHash)) {
      return {
        ok: false,
        seq,
        reason: 'checkpoint-mismatch',
        message: `the first ${size} records do not hash to the root that ${due[0]!.source} signs: records before seq ${size} were altered`,
      };
    }
    due.forEach((candidate, i) => {
      const verified: VerifiedCheckpoint = { size, rootHash: first.rootHash, signers: signers[i]! };
      if (candidate.stored) {
        this.#checked += 1;
        if (this.#latest === null || size >= this.#latest.size) this.#latest = verified;
      } else {
        this.#external = verified;
      }
    });
    return null;
  }

  /**
   * The signatures (by the given keys) and origin of a checkpoint: the names of the keys that
   * signed it (empty when no key was given), or the failure to report at `seq`.
   */
  #authenticate(candidate: Candidate, seq: number): readonly string[] | LogVerifyFailure {
    const { checkpoint } = candidate;
    if (typeof checkpoint === 'string') {
      return { ok: false, seq, reason: 'checkpoint-malformed', message: `${candidate.source} is not a signed checkpoint: ${checkpoint}` };
    }
    let signers: string[] = [];
    if (this.#s.verifiers.length > 0) {
      const opened = openCheckpoint(candidate.note, this.#s.verifiers);
      if (!opened.ok) {
        const what =
          opened.reason === 'unverified'
            ? `is not signed by ${this.#s.verifiers.map((v) => keyLabel(v.name, v.keyId)).join(' or ')}${signatureNames(candidate.note)}`
            : `fails its signature check (${opened.detail})`;
        return { ok: false, seq, reason: CHECKPOINT_REASONS[opened.reason], message: `${candidate.source} (size ${checkpoint.size}) ${what}` };
      }
      signers = opened.verified.map((s) => keyLabel(s.name, s.keyId));
    }
    if (this.#s.logId !== '' && checkpoint.origin !== this.#s.logId) {
      return {
        ok: false,
        seq,
        reason: 'checkpoint-wrong-origin',
        message: `${candidate.source} is a checkpoint of ${JSON.stringify(checkpoint.origin)}, not of this log (${JSON.stringify(this.#s.logId)})`,
      };
    }
    return signers;
  }
}

function sizeOf(candidate: Candidate): number {
  return typeof candidate.checkpoint === 'string' ? -1 : candidate.checkpoint.size;
}

/** ` (it is signed by X)` naming the keys a note's signature lines claim, for the message. */
function signatureNames(note: string | Uint8Array): string {
  const text = typeof note === 'string' ? note : (utf8DecodeStrict(note) ?? '');
  const names = [...text.matchAll(/^\u2014 (\S+) /gm)].map((m) => m[1]);
  return names.length === 0 ? '' : ` (its signature lines name ${names.join(', ')})`;
}

function isSigners(value: readonly string[] | LogVerifyFailure): value is readonly string[] {
  return Array.isArray(value);
}

function chunkFailure(found: ChunkFailure, segment: string, offsets: readonly number[]): LogVerifyFailure {
  const offset = offsets[found.index]!;
  const base = { ok: false as const, seq: found.seq, reason: found.reason, segment, offset };
  const note =
    found.reason === 'prev-mismatch' && found.seq > 0
      ? `; record ${found.seq - 1} was altered, or this record's prev was (the records before seq ${found.seq} still chain)`
      : '';
  return { ...base, message: `${found.detail}${note} (${segment} byte ${offset})` };
}
