import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createChainVerifier,
  encodeBase64,
  encodeCanonical,
  exportLog,
  openCheckpoint,
  parseCheckpointBody,
  verifyLog,
  type AuditIndex,
  type ChainFailure,
  type ChainVerifier,
  type Checkpoint,
  type JsonValue,
  type NoteVerifier,
} from '../audit/index.js';
import { isTollgateError, systemClock, type Clock, type Logger } from '../core/index.js';
import { readCheckpointNote } from './checkpoint-file.js';

/**
 * The chain status every review page shows: the audit log verified in the background, never per
 * request, and the latest result kept for the banner.
 *
 * Two checks run, each in turn on one timer:
 *
 * - **Incremental**, on every new signed checkpoint: the checkpoint's signature and origin, then
 *   the records it adds to the last verified one, through a resumable chain verifier (seq, `prev`
 *   links, canonical form, RFC 9162 root compared with the signed root). The first run reads the
 *   log from seq 0 (streaming, through `exportLog`); later runs read only the new records
 *   (through the query index), so a busy log is re-verified within a second of each checkpoint.
 * - **Full**, with `verifyLog` (what `tollgate audit verify` runs: framing, CRC, every record,
 *   every checkpoint of the history): at start, and again whenever a file of the audit directory
 *   changed (size, inode, or change time, which an edit cannot hide), but at most once per
 *   `fullMinIntervalMs` and within a CPU budget (`fullDutyCycle`). This is what catches a record
 *   altered after the incremental check had passed it.
 *
 * A failure is kept until the process restarts: a tampered log never turns green again on its
 * own. When the incremental check fails, a full run is made at once to name the problem exactly.
 */

export interface VerifiedCheckpointInfo {
  readonly size: number;
  /** Base64 of the RFC 9162 root hash, as in the checkpoint note. */
  readonly root: string;
  /** `name+keyid` of the key(s) that signed it. */
  readonly signer: string;
  /** When the checkpoint file was written (RFC 3339), if known. */
  readonly signedAt: string | null;
}

export interface ChainFailureInfo {
  /** The first bad seq (for a checkpoint: the last seq it covers). */
  readonly seq: number;
  readonly reason: string;
  readonly message: string;
}

export interface FullCheckInfo {
  readonly at: string;
  readonly records: number;
  readonly checkpoints: number;
  readonly durationMs: number;
}

export interface ChainStatus {
  /**
   * `pending`: not checked yet. `unsigned`: no signed checkpoint yet. `verified`. `failed`: the
   * log fails verification. `error`: the check could not run (see `error`).
   */
  readonly state: 'pending' | 'unsigned' | 'verified' | 'failed' | 'error';
  readonly verified: VerifiedCheckpointInfo | null;
  readonly failure: ChainFailureInfo | null;
  readonly error: string | null;
  /** When a check last completed. */
  readonly checkedAt: string | null;
  readonly fullCheck: FullCheckInfo | null;
}

export interface ChainMonitorOptions {
  readonly dir: string;
  readonly logId: string;
  readonly verifiers: readonly NoteVerifier[];
  readonly index: AuditIndex;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How often to look for a new checkpoint and changed files; default 1000 ms. */
  readonly pollMs?: number;
  /** Least time between two full verifications; default 1000 ms. */
  readonly fullMinIntervalMs?: number;
  /** Largest share of one core full verifications may take over time; default 0.1. */
  readonly fullDutyCycle?: number;
}

/** Records read per step of the incremental check; the event loop is yielded between steps. */
const STEP_RECORDS = 2_000;

const nativeLeafHash = (entry: Uint8Array): Uint8Array => createHash('sha256').update(Uint8Array.of(0x00)).update(entry).digest();
const nativeNodeHash = (left: Uint8Array, right: Uint8Array): Uint8Array => createHash('sha256').update(Uint8Array.of(0x01)).update(left).update(right).digest();

function keyLabel(verifier: { readonly name: string; readonly keyId: number }): string {
  return `${verifier.name}+${verifier.keyId.toString(16).padStart(8, '0')}`;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Thrown inside a check when the monitor closes; never escapes it. */
class Closed extends Error {}

export class ChainMonitor {
  readonly #o: ChainMonitorOptions;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #pollMs: number;
  readonly #fullMinIntervalMs: number;
  readonly #fullDutyCycle: number;
  #chain: ChainVerifier | null = null;
  #lastNote: string | null = null;
  #verified: VerifiedCheckpointInfo | null = null;
  #failure: ChainFailureInfo | null = null;
  #error: string | null = null;
  #unsigned = false;
  #checkedAt: number | null = null;
  #full: FullCheckInfo | null = null;
  #fullFingerprint: string | null = null;
  #nextFullAt = 0;
  #fullNow = false;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(options: ChainMonitorOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#pollMs = options.pollMs ?? 1_000;
    this.#fullMinIntervalMs = options.fullMinIntervalMs ?? 1_000;
    this.#fullDutyCycle = options.fullDutyCycle ?? 0.1;
  }

  /** Starts checking in the background. */
  start(): void {
    this.#schedule(0);
  }

  status(): ChainStatus {
    const state = this.#failure !== null ? 'failed' : this.#verified !== null ? 'verified' : this.#error !== null ? 'error' : this.#unsigned ? 'unsigned' : 'pending';
    return {
      state,
      verified: this.#verified,
      failure: this.#failure,
      error: this.#error,
      checkedAt: this.#checkedAt === null ? null : new Date(this.#checkedAt).toISOString(),
      fullCheck: this.#full,
    };
  }

  /** Stops the timer and waits for a check in progress to stop. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#tick().finally(() => {
        this.#running = null;
        this.#schedule(this.#pollMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      // The full check first: at start it gives a status within its own run time, before the
      // first incremental pass (which reads the whole log once) completes.
      await this.#fullWhenDue();
      await this.#incremental();
      this.#error = null;
    } catch (error) {
      if (error instanceof Closed) return;
      this.#error = error instanceof Error ? error.message : String(error);
      this.#logger?.warn({ err: error }, 'audit chain check could not run');
    }
  }

  #check(): void {
    if (this.#closed) throw new Closed();
  }

  #fail(failure: ChainFailureInfo, source: string): void {
    // The first bad position wins; a full run may name an earlier one than the incremental did.
    if (this.#failure !== null && this.#failure.seq <= failure.seq) return;
    this.#failure = failure;
    this.#logger?.error({ seq: failure.seq, reason: failure.reason, source }, 'the audit log fails verification');
  }

  // ---- incremental ---------------------------------------------------------------------------

  async #incremental(): Promise<void> {
    if (this.#failure !== null) return;
    const note = await readCheckpointNote(this.#o.dir);
    if (note === null) {
      this.#unsigned = true;
      return;
    }
    this.#unsigned = false;
    if (note.text === this.#lastNote) return;
    const { verifiers, logId } = this.#o;
    const opened = openCheckpoint(note.text, verifiers, { origin: logId });
    if (!opened.ok) {
      const split = note.text.lastIndexOf('\n\n');
      const body = split < 0 ? null : parseCheckpointBody(note.text.slice(0, split + 1));
      const covered = body !== null && body.ok ? Math.max(body.checkpoint.size - 1, 0) : (this.#verified?.size ?? 0);
      this.#fail({ seq: covered, reason: `checkpoint-${opened.reason}`, message: `the latest checkpoint does not verify with the log's verifier key: ${opened.detail}` }, 'incremental');
      this.#fullNow = true;
      return;
    }
    const checkpoint = opened.checkpoint;
    const verifiedSize = this.#chain?.size ?? 0;
    if (checkpoint.size < verifiedSize) {
      this.#fail(
        { seq: Math.max(checkpoint.size - 1, 0), reason: 'checkpoint-order', message: `the latest checkpoint covers ${checkpoint.size} records, fewer than the ${verifiedSize} already verified: the log went back` },
        'incremental',
      );
      this.#fullNow = true;
      return;
    }
    const failure = this.#chain === null ? await this.#firstPass(checkpoint.size) : await this.#catchUp(this.#chain, checkpoint.size);
    const chain = this.#chain;
    if (failure === null && chain !== null) {
      const root = chain.checkCheckpoint(checkpoint);
      if (root.ok) {
        this.#lastNote = note.text;
        this.#verified = this.#infoOf(checkpoint, opened.verified.map((sig) => keyLabel(sig)).join(', '), note.mtimeMs);
        this.#checkedAt = this.#clock.now();
        return;
      }
      this.#fail({ seq: root.seq, reason: root.reason, message: root.detail }, 'incremental');
    } else if (failure !== null) {
      this.#fail(failure, 'incremental');
    }
    this.#fullNow = true;
  }

  #infoOf(checkpoint: Checkpoint, signer: string, mtimeMs: number | null): VerifiedCheckpointInfo {
    return {
      size: checkpoint.size,
      root: encodeBase64(checkpoint.rootHash),
      signer,
      signedAt: mtimeMs === null ? null : new Date(mtimeMs).toISOString(),
    };
  }

  #newChain(): ChainVerifier {
    return createChainVerifier({ logId: this.#o.logId, hashLeaf: nativeLeafHash, hashNode: nativeNodeHash });
  }

  /** Reads the log from seq 0 up to `size` records, streaming. */
  async #firstPass(size: number): Promise<ChainFailureInfo | null> {
    const chain = this.#newChain();
    const encoder = new TextEncoder();
    let pushed = 0;
    if (size > 0) {
      try {
        outer: for await (const text of exportLog({ dir: this.#o.dir, format: 'jsonl' })) {
          for (let at = 0; at < text.length; ) {
            const end = text.indexOf('\n', at);
            if (end < 0) break;
            const step = chain.push(encoder.encode(text.slice(at, end)));
            if (!step.ok) return failureOf(step);
            at = end + 1;
            pushed += 1;
            if (pushed === size) break outer;
            if (pushed % STEP_RECORDS === 0) {
              await yieldToEventLoop();
              this.#check();
            }
          }
        }
      } catch (error) {
        if (!isTollgateError(error, 'TG_ERR_AUDIT_TAMPERED')) throw error;
        const seq = typeof error.details['seq'] === 'number' ? error.details['seq'] : pushed;
        return { seq, reason: 'unreadable-record', message: error.message };
      }
    }
    if (chain.size < size) {
      return { seq: chain.size, reason: 'truncated', message: `the log holds ${chain.size} records but the latest checkpoint covers ${size}: records from seq ${chain.size} on were removed` };
    }
    this.#chain = chain;
    return null;
  }

  /** Reads records `chain.size` up to `size` through the query index, oldest first. */
  async #catchUp(chain: ChainVerifier, size: number): Promise<ChainFailureInfo | null> {
    while (chain.size < size) {
      const from = chain.size;
      const to = Math.min(size, from + STEP_RECORDS);
      const page = await this.#o.index.query({ cursor: String(to), limit: to - from });
      const hits = [...page.records].reverse();
      for (let i = 0; i < to - from; i++) {
        const hit = hits[i];
        if (hit === undefined || hit.seq !== from + i) {
          return { seq: from + i, reason: 'unreadable-record', message: `record ${from + i} could not be read from the log: it is missing or damaged` };
        }
        // The index hands out decoded records, which were canonical (RFC 8785) when read: their
        // canonical encoding is the stored bytes again.
        const step = chain.push(encodeCanonical(hit.record as unknown as JsonValue));
        if (!step.ok) return failureOf(step);
      }
      await yieldToEventLoop();
      this.#check();
    }
    return null;
  }

  // ---- full ----------------------------------------------------------------------------------

  /** Names, inodes, sizes and change times of the audit directory's files. */
  async #fingerprint(): Promise<string> {
    const entries = await readdir(this.#o.dir, { withFileTypes: true });
    const parts: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile() || entry.name === 'lock' || entry.name.endsWith('.tmp')) continue;
      try {
        const info = await stat(join(this.#o.dir, entry.name));
        parts.push(`${entry.name}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return parts.sort().join('\n');
  }

  async #fullWhenDue(): Promise<void> {
    const now = this.#clock.now();
    if (!this.#fullNow && now < this.#nextFullAt) return;
    const fingerprint = await this.#fingerprint();
    if (!this.#fullNow && fingerprint === this.#fullFingerprint) return;
    this.#fullNow = false;
    const started = performance.now();
    let result;
    try {
      result = await verifyLog({ dir: this.#o.dir, verifiers: this.#o.verifiers, logId: this.#o.logId, workers: 1 });
    } catch (error) {
      // A directory without any record or checkpoint yet is not a failure.
      if (isTollgateError(error, 'TG_ERR_USAGE')) {
        this.#fullFingerprint = fingerprint;
        return;
      }
      throw error;
    }
    this.#check();
    const durationMs = performance.now() - started;
    const end = this.#clock.now();
    this.#fullFingerprint = fingerprint;
    this.#nextFullAt = end + Math.max(this.#fullMinIntervalMs, (durationMs * (1 - this.#fullDutyCycle)) / this.#fullDutyCycle);
    this.#checkedAt = end;
    if (!result.ok) {
      this.#fail({ seq: result.seq, reason: result.reason, message: result.message }, 'full');
      return;
    }
    this.#full = { at: new Date(end).toISOString(), records: result.size, checkpoints: result.checkpointsChecked, durationMs: Math.round(durationMs) };
    const latest = result.checkpoint;
    if (latest !== null && (this.#verified === null || latest.size > this.#verified.size)) {
      this.#verified = {
        size: latest.size,
        root: encodeBase64(latest.rootHash),
        signer: latest.signers.join(', '),
        signedAt: null,
      };
    }
  }
}

function failureOf(failure: ChainFailure): ChainFailureInfo {
  return { seq: failure.seq, reason: failure.reason, message: failure.detail };
}
