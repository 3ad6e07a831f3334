import { join } from 'node:path';
import { TollgateError } from '../core/index.js';
import { utf8DecodeStrict } from './bytes.js';
import { inclusionProofRanges, ProofBuilder, verifyInclusion } from './merkle.js';
import { openCheckpoint, parseCheckpointBody } from './note.js';
import type { Checkpoint, NoteVerifier } from './note.js';
import { formatProof } from './proof.js';
import { parseRecord } from './record.js';
import type { AuditRecord } from './record.js';
import { frameLeafHash, listSegments, readFrames } from './segment-reader.js';
import { nodeStoreFs } from './store/file-io.js';
import type { StoreFs } from './store/file-io.js';
import { CHECKPOINT_FILE } from './store/layout.js';

export interface ProveOptions {
  readonly dir: string;
  /** The record to prove. */
  readonly seq: number;
  /** When given, the checkpoint must carry a valid signature by one of these keys. */
  readonly verifiers?: readonly NoteVerifier[];
  /** A signed checkpoint to prove against; default: the directory's latest (`checkpoint`). */
  readonly checkpoint?: string;
  /**
   * The log's id: the checkpoint (its origin) and the record must be this log's. Without it, a
   * directory holding another log signed with the same key would prove its own records.
   */
  readonly logId?: string;
  readonly fs?: StoreFs;
}

export interface InclusionProof {
  /** The C2SP tlog-proof (https://c2sp.org/tlog-proof), with the record's bytes as `extra`. */
  readonly text: string;
  readonly seq: number;
  readonly record: AuditRecord;
  readonly checkpoint: Checkpoint;
}

/**
 * `tollgate audit prove`: an inclusion proof of record `seq` in the tree a signed checkpoint
 * signs (RFC 9162 §2.1.3), as a C2SP tlog-proof that anyone can check offline with the log's
 * verifier key (`verifyProofBundle`, or the review page in the browser).
 *
 * The proof's hashes are computed from the segments by streaming every record the checkpoint
 * covers through a {@link ProofBuilder}: memory stays O(log size), time is one pass. The proof
 * is checked against the signed root before it is returned, so a log whose records no longer
 * match its checkpoint yields `TG_ERR_AUDIT_TAMPERED`, never a proof that fails for its reader.
 *
 * Throws `TG_ERR_AUDIT_NOT_SIGNED` when no signed checkpoint covers the record yet.
 */
export async function proveInclusion(options: ProveOptions): Promise<InclusionProof> {
  const fs = options.fs ?? nodeStoreFs;
  const { dir, seq } = options;
  if (!Number.isSafeInteger(seq) || seq < 0) throw new TollgateError('TG_ERR_USAGE', `--seq must be a record's seq (a whole number ≥ 0), not ${seq}`);
  if ((await fs.statPath(dir)) === null) throw new TollgateError('TG_ERR_USAGE', `there is no audit directory at ${dir}; pass the audit.dir of the gateway`);
  const note = options.checkpoint ?? (await readLatestCheckpoint(fs, dir));
  const checkpoint = openOrParse(note, options.verifiers, options.checkpoint === undefined);
  if (options.logId !== undefined && checkpoint.origin !== options.logId) {
    const which = options.checkpoint === undefined ? `the ${CHECKPOINT_FILE} file of ${dir}` : 'the given checkpoint';
    throw new TollgateError(
      options.checkpoint === undefined ? 'TG_ERR_AUDIT_TAMPERED' : 'TG_ERR_USAGE',
      `${which} is a checkpoint of ${JSON.stringify(checkpoint.origin)}, not of ${JSON.stringify(options.logId)}: it belongs to another log; check --dir and --log-id`,
    );
  }
  if (seq >= checkpoint.size) {
    throw new TollgateError(
      'TG_ERR_AUDIT_NOT_SIGNED',
      `seq ${seq} is not covered by the checkpoint (it signs the first ${checkpoint.size} records); the gateway signs a new checkpoint every audit.checkpoint_interval while records arrive, so retry shortly`,
    );
  }
  const builder = new ProofBuilder(inclusionProofRanges(seq, checkpoint.size));
  let recordBytes: Uint8Array | null = null;
  let leaf: Uint8Array | null = null;
  let next = 0;
  const segments = await listSegments(fs, dir);
  for (let s = 0; s < segments.length && next < checkpoint.size; s++) {
    const segment = segments[s]!;
    if (segment.firstSeq !== next) throw tampered(next, `segment ${segment.name} does not start at seq ${next}`);
    for await (const item of readFrames(fs, segment, { last: s === segments.length - 1 })) {
      if (item.type === 'end') {
        if (item.damage !== null && next < checkpoint.size) throw tampered(next, `the frame at ${segment.name} byte ${item.damage.offset} is damaged (${item.damage.problem})`);
        break;
      }
      for (const record of item.records) {
        if (next === checkpoint.size) break;
        if (next === seq) recordBytes = record.slice();
        const hash = frameLeafHash(record);
        if (next === seq) leaf = hash;
        builder.push(hash);
        next += 1;
      }
      if (next === checkpoint.size) break;
    }
  }
  if (next < checkpoint.size || recordBytes === null || leaf === null) {
    throw tampered(next, `the log holds ${next} records but the checkpoint covers ${checkpoint.size}: records were removed`);
  }
  const proof = builder.proof();
  if (!verifyInclusion(leaf, seq, checkpoint.size, proof, checkpoint.rootHash)) {
    throw tampered(seq, `the first ${checkpoint.size} records do not hash to the root the checkpoint signs`);
  }
  const parsed = parseRecord(recordBytes);
  if (!parsed.ok) throw tampered(seq, `the record is not a valid record (${parsed.reason}: ${parsed.detail})`);
  if (parsed.record.seq !== seq) throw tampered(seq, `the record at position ${seq} says seq ${parsed.record.seq}`);
  if (parsed.record.log_id !== checkpoint.origin) throw tampered(seq, `the record belongs to log ${JSON.stringify(parsed.record.log_id)}, not to ${JSON.stringify(checkpoint.origin)}`);
  const text = formatProof({ index: seq, extra: recordBytes, proof, checkpoint: note, leafHash: leaf });
  return { text, seq, record: parsed.record, checkpoint };
}

function tampered(seq: number, detail: string): TollgateError {
  return new TollgateError('TG_ERR_AUDIT_TAMPERED', `no proof was made: ${detail} (seq ${seq}); run "tollgate audit verify" for the full report`, { details: { seq } });
}

async function readLatestCheckpoint(fs: StoreFs, dir: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(join(dir, CHECKPOINT_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new TollgateError('TG_ERR_AUDIT_NOT_SIGNED', `the audit log in ${dir} has no signed checkpoint yet; the gateway signs one within audit.checkpoint_interval of its first records, and on shutdown`);
  }
  const text = utf8DecodeStrict(bytes);
  if (text === null) throw new TollgateError('TG_ERR_AUDIT_TAMPERED', `the ${CHECKPOINT_FILE} file of ${dir} is not valid UTF-8; run "tollgate audit verify"`);
  return text;
}

/** The checkpoint a note signs: authenticated with `verifiers` when given, else only parsed. */
function openOrParse(note: string, verifiers: readonly NoteVerifier[] | undefined, fromDir: boolean): Checkpoint {
  if (verifiers !== undefined && verifiers.length > 0) {
    const opened = openCheckpoint(note, verifiers);
    if (!opened.ok) throw new TollgateError('TG_ERR_AUDIT_TAMPERED', `the checkpoint does not verify with the given key (${opened.reason}: ${opened.detail})`);
    return opened.checkpoint;
  }
  const split = note.lastIndexOf('\n\n');
  const parsed = split < 0 ? null : parseCheckpointBody(note.slice(0, split + 1));
  if (parsed === null || !parsed.ok) {
    const why = `is not a signed checkpoint note${parsed === null ? '' : ` (${parsed.reason})`}`;
    if (fromDir) throw new TollgateError('TG_ERR_AUDIT_TAMPERED', `the ${CHECKPOINT_FILE} file ${why}; run "tollgate audit verify"`);
    throw new TollgateError('TG_ERR_USAGE', `the given checkpoint ${why}`);
  }
  return parsed.checkpoint;
}
