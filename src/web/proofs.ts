import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { proveInclusion, type NoteVerifier } from '../audit/index.js';
import { TollgateError } from '../core/index.js';
import { readCheckpointNote } from './checkpoint-file.js';

/**
 * Inclusion proofs for `/audit/proof/<seq>`: `proveInclusion` (what `tollgate audit prove`
 * prints, a C2SP tlog-proof with the record's bytes) against the latest signed checkpoint.
 * Making a proof reads every record the checkpoint covers, so proofs are cached per record and
 * checkpoint, a proof asked for twice at once is made once, and only a few are made at a time.
 */

export interface ProofServiceOptions {
  readonly dir: string;
  readonly verifiers: readonly NoteVerifier[];
  /** Proofs made at the same time; default 2. */
  readonly concurrency?: number;
  /** Proofs waiting beyond the running ones before new requests are refused; default 32. */
  readonly queue?: number;
}

export class ProofService {
  readonly #dir: string;
  readonly #verifiers: readonly NoteVerifier[];
  readonly #concurrency: number;
  readonly #queueLimit: number;
  readonly #cache = new LRUCache<string, string>({ max: 256 });
  readonly #inFlight = new Map<string, Promise<string>>();
  readonly #waiting: (() => void)[] = [];
  #running = 0;

  constructor(options: ProofServiceOptions) {
    this.#dir = options.dir;
    this.#verifiers = options.verifiers;
    this.#concurrency = options.concurrency ?? 2;
    this.#queueLimit = options.queue ?? 32;
  }

  /**
   * The tlog-proof of record `seq`. Throws `TG_ERR_AUDIT_NOT_SIGNED` when no checkpoint covers
   * it yet, `TG_ERR_AUDIT_TAMPERED` when the log no longer matches its checkpoint,
   * `TG_ERR_AUDIT_UNAVAILABLE` when too many proofs are waiting.
   */
  async prove(seq: number): Promise<string> {
    const note = await readCheckpointNote(this.#dir);
    if (note === null) {
      throw new TollgateError('TG_ERR_AUDIT_NOT_SIGNED', 'the audit log has no signed checkpoint yet; the gateway signs one within its checkpoint interval once records arrive');
    }
    const key = `${seq}@${createHash('sha256').update(note.text).digest('base64url')}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#make(seq, note.text).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    const text = await pending;
    this.#cache.set(key, text);
    return text;
  }

  async #make(seq: number, checkpoint: string): Promise<string> {
    await this.#acquire();
    try {
      const proof = await proveInclusion({ dir: this.#dir, seq, verifiers: this.#verifiers, checkpoint });
      return proof.text;
    } finally {
      this.#release();
    }
  }

  async #acquire(): Promise<void> {
    if (this.#running < this.#concurrency) {
      this.#running += 1;
      return;
    }
    if (this.#waiting.length >= this.#queueLimit) {
      throw new TollgateError('TG_ERR_AUDIT_UNAVAILABLE', 'too many inclusion proofs are being made right now; try again in a few seconds');
    }
    // The slot is handed over by the proof that finishes: `#running` stays as it is.
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next === undefined) this.#running -= 1;
    else next();
  }
}
