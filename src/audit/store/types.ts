import type { Clock, ErrorCode, Logger } from '../../core/index.js';
import type { Checkpoint, NoteSigner } from '../note.js';
import type { AuditEvent } from '../record.js';
import type { StoreFs } from './file-io.js';

/** `ready`: appends become durable. `degraded`: appends are refused until a retry succeeds. */
export type AuditStoreStatus = 'ready' | 'degraded' | 'closed';

export interface AuditStoreError {
  readonly code: ErrorCode;
  readonly message: string;
  /** Clock time of the failure, milliseconds since the Unix epoch. */
  readonly atMs: number;
}

/** What `/readyz` and the metrics report. */
export interface AuditStoreState {
  readonly status: AuditStoreStatus;
  /** The most recent failure (it stays after the store recovered, for the operator to see). */
  readonly lastError: AuditStoreError | null;
  /** Records acknowledged to appenders; the seq the next record gets. */
  readonly size: number;
  /** Records known to be on disk (equal to `size` with durability `always`). */
  readonly syncedSize: number;
  /** Size of the latest published checkpoint, the one in the `checkpoint` file (0 before the first). */
  readonly checkpointSize: number;
  readonly segments: number;
  /** Bytes of all segments. */
  readonly bytes: number;
  /** Appends waiting for the writer. */
  readonly queued: number;
}

export interface AppendResult {
  readonly seq: number;
  /** RFC 9162 leaf hash of the record; its hex is the next record's `prev`. */
  readonly leafHash: Uint8Array;
}

export interface SignedCheckpointNote {
  readonly checkpoint: Checkpoint;
  /** The C2SP signed note, as written to the `checkpoint` file. */
  readonly note: string;
}

/**
 * Plain callbacks for metrics and tests; each is called synchronously and must not throw.
 * (The gateway maps them onto prom-client.)
 */
export interface AuditStoreObserver {
  /** One durable append: milliseconds from `append()` to its resolution. */
  appended?(latencyMs: number): void;
  /** One batch written (and synced with durability `always`). */
  batch?(info: { readonly records: number; readonly bytes: number; readonly durationMs: number }): void;
  checkpoint?(info: { readonly size: number; readonly durationMs: number }): void;
  stateChanged?(state: AuditStoreState): void;
}

export interface AppendOptions {
  /**
   * Nothing waits on this record before going on (an outcome such as `pg.result`, whose request
   * was already answered). It does not start a write of its own: it goes to disk with the next
   * record that does, or `groupCommit.maxDelayMs` after it was sealed at the latest. It keeps
   * its place in the log, and the append still resolves only once the record is durable.
   */
  readonly defer?: boolean;
}

/** The audit log as the proxies and the CLI see it. */
export interface AuditStore {
  /**
   * Seals `event` as the next record and resolves once it is durable, with its seq. Rejects with
   * `TG_ERR_AUDIT_UNAVAILABLE` when it cannot be made durable within the append deadline (the
   * caller must then refuse the request), `TG_ERR_AUDIT_RECORD_INVALID` for an event outside the
   * record model, `TG_ERR_AUDIT_CLOSED` after `close()`.
   */
  append(event: AuditEvent, options?: AppendOptions): Promise<AppendResult>;
  state(): AuditStoreState;
  /** Signs a checkpoint now when there are records past the latest; returns the latest. */
  checkpointNow(): Promise<SignedCheckpointNote | null>;
  /** Writes what is queued, signs a final checkpoint when records are unsigned, releases the directory. */
  close(): Promise<void>;
}

export type Durability = 'always' | 'interval';

export interface FileStoreOptions {
  /** The audit directory; created when missing. */
  readonly dir: string;
  /** The log's identity: each record's `log_id` and the checkpoint origin line. */
  readonly logId: string;
  /** Parsed signer key (`parseSignerKey`). */
  readonly signer: NoteSigner;
  /** Default 1000. */
  readonly checkpointIntervalMs?: number;
  /** Default `always`: an append resolves after fdatasync. `interval`: after the write, synced within `syncIntervalMs`. */
  readonly durability?: Durability;
  /** Default 100; only with durability `interval`. */
  readonly syncIntervalMs?: number;
  /** Default 64 MiB. */
  readonly segmentSize?: number;
  /**
   * Defaults 512 records, 2 ms. `maxRecords` bounds one write; `maxDelayMs` is how long a
   * deferred append (see {@link AppendOptions}) may wait for a record that starts a write.
   */
  readonly groupCommit?: { readonly maxRecords?: number; readonly maxDelayMs?: number };
  /** Default 2000. */
  readonly appendTimeoutMs?: number;
  /** Backoff of the retries while degraded; defaults 100 ms doubling to 5000 ms. */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly observer?: AuditStoreObserver;
  /** The file-operation boundary; tests inject faults here. Default: the real file system. */
  readonly fs?: StoreFs;
}
