import { TollgateError } from '../core/index.js';
import { decodeBase64, encodeBase64 } from './bytes.js';
import { HASH_SIZE, leafHash as hashLeaf, verifyInclusion } from './merkle.js';
import { openCheckpoint, parseCheckpointBody } from './note.js';
import type { Checkpoint, NoteProblem, NoteVerifier } from './note.js';
import { parseRecord } from './record.js';
import type { AuditRecord } from './record.js';

/**
 * C2SP tlog-proof (https://c2sp.org/tlog-proof): an offline-verifiable proof that one record is
 * in the log, made of the record's index, its RFC 9162 inclusion proof and a signed checkpoint.
 * This is what `tollgate audit prove` prints and what the review page verifies in the browser.
 * Tollgate puts the record's canonical bytes in the `extra` line, so that a proof file alone is
 * enough to check the record; the inclusion proof authenticates those bytes.
 */

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

export interface ProofBundle {
  /** The 0-based index of the entry: the record's `seq`. */
  readonly index: number;
  /** Opaque extra data; Tollgate writes the record's canonical bytes here. */
  readonly extra?: Uint8Array;
  /** Inclusion proof hashes, the leaf's sibling first (RFC 9162 §2.1.3). */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, verbatim. */
  readonly checkpoint: string;
}

export interface FormatProofInput extends ProofBundle {
  /**
   * When given, the proof is checked against the checkpoint's root before it is written, so a
   * store bug can never hand out a proof that fails for the reader.
   */
  readonly leafHash?: Uint8Array;
}

export type ParseProofResult = { readonly ok: true; readonly bundle: ProofBundle } | { readonly ok: false; readonly reason: string };

/** tlog-proof "Format": header, optional `extra`, `index`, proof hashes, blank line, checkpoint. */
export function formatProof(input: FormatProofInput): string {
  const { index, extra, proof, checkpoint, leafHash } = input;
  if (!Number.isSafeInteger(index) || index < 0) throw new TollgateError('TG_ERR_INTERNAL', `a proof index is a whole number, not ${index}`);
  if (proof.some((h) => h.length !== HASH_SIZE)) throw new TollgateError('TG_ERR_INTERNAL', `proof hashes have ${HASH_SIZE} bytes`);
  if (!checkpoint.endsWith('\n')) throw new TollgateError('TG_ERR_INTERNAL', 'a signed checkpoint ends with a newline');
  if (leafHash !== undefined) {
    const parsed = parseCheckpointBody(checkpoint.slice(0, checkpoint.lastIndexOf('\n\n') + 1));
    if (!parsed.ok || !verifyInclusion(leafHash, index, parsed.checkpoint.size, proof, parsed.checkpoint.rootHash)) {
      throw new TollgateError('TG_ERR_INTERNAL', `the inclusion proof of entry ${index} does not lead to the checkpoint's root`);
    }
  }
  const lines = [TLOG_PROOF_HEADER];
  if (extra !== undefined) lines.push(`extra ${encodeBase64(extra)}`);
  lines.push(`index ${index}`);
  for (const hash of proof) lines.push(encodeBase64(hash));
  return `${lines.join('\n')}\n\n${checkpoint}`;
}

/** Parses a tlog-proof strictly; the checkpoint is returned as text, unverified. */
export function parseProof(text: string): ParseProofResult {
  const fail = (reason: string) => ({ ok: false as const, reason });
  let pos = 0;
  const nextLine = (): string | null => {
    const end = text.indexOf('\n', pos);
    if (end < 0) return null;
    const line = text.slice(pos, end);
    pos = end + 1;
    return line;
  };
  if (nextLine() !== TLOG_PROOF_HEADER) return fail(`the first line must be ${TLOG_PROOF_HEADER}`);
  let line = nextLine();
  let extra: Uint8Array | undefined;
  if (line?.startsWith('extra ')) {
    const decoded = decodeBase64(line.slice('extra '.length));
    if (decoded === null) return fail('the extra line is not base64');
    extra = decoded;
    line = nextLine();
  }
  const indexText = line?.startsWith('index ') ? line.slice('index '.length) : null;
  if (indexText === null || !/^(0|[1-9][0-9]{0,15})$/.test(indexText) || !Number.isSafeInteger(Number(indexText))) {
    return fail('expected "index <decimal>" after the header');
  }
  const proof: Uint8Array[] = [];
  for (;;) {
    line = nextLine();
    if (line === null) return fail('the proof hashes must be followed by a blank line and the checkpoint');
    if (line === '') break;
    const hash = decodeBase64(line);
    if (hash === null || hash.length !== HASH_SIZE) return fail(`proof line ${proof.length + 1} is not base64 of a SHA-256 hash`);
    proof.push(hash);
  }
  const checkpoint = text.slice(pos);
  if (checkpoint === '' || !checkpoint.endsWith('\n')) return fail('the checkpoint is missing or does not end with a newline');
  const bundle: ProofBundle = extra === undefined ? { index: Number(indexText), proof, checkpoint } : { index: Number(indexText), extra, proof, checkpoint };
  return { ok: true, bundle };
}

/**
 * Why a proof does not hold. `malformed-proof`: not a tlog-proof. The note problems and
 * `bad-checkpoint`/`wrong-origin`: the checkpoint is not signed by a trusted key or not this
 * log's. `no-record`: no record given and none in `extra`. `not-included`: the proof does not
 * lead from the record to the signed root. `invalid-record`: the bytes are not a valid record,
 * or their `seq` is not the proof's index.
 */
export type ProofProblem = 'malformed-proof' | NoteProblem | 'bad-checkpoint' | 'wrong-origin' | 'no-record' | 'not-included' | 'invalid-record';

export type VerifyProofResult =
  | { readonly ok: true; readonly index: number; readonly record: AuditRecord; readonly leafHash: Uint8Array; readonly checkpoint: Checkpoint }
  | { readonly ok: false; readonly reason: ProofProblem; readonly detail: string };

/**
 * Verifies a tlog-proof for a record: the checkpoint's signature by one of `verifiers` (and its
 * origin, when given), then the inclusion of SHA-256(0x00 ‖ record) at `index` under the signed
 * root (RFC 9162 §2.1.3.2), then that the record is a valid record whose `seq` is that index.
 * Without `recordBytes`, the record is taken from the proof's `extra` line.
 */
export function verifyProofBundle(
  text: string,
  verifiers: readonly NoteVerifier[],
  recordBytes?: Uint8Array,
  options: { readonly origin?: string } = {},
): VerifyProofResult {
  const parsed = parseProof(text);
  if (!parsed.ok) return { ok: false, reason: 'malformed-proof', detail: parsed.reason };
  const { index, extra, proof, checkpoint } = parsed.bundle;
  const opened = openCheckpoint(checkpoint, verifiers, options);
  if (!opened.ok) return opened;
  const bytes = recordBytes ?? extra;
  if (bytes === undefined) return { ok: false, reason: 'no-record', detail: 'give the record bytes, or a proof that carries them in its extra line' };
  const leaf = hashLeaf(bytes);
  const { size, rootHash } = opened.checkpoint;
  if (!verifyInclusion(leaf, index, size, proof, rootHash)) {
    return { ok: false, reason: 'not-included', detail: `the record is not entry ${index} of the tree of size ${size} that the checkpoint signs` };
  }
  const record = parseRecord(bytes);
  if (!record.ok) return { ok: false, reason: 'invalid-record', detail: `${record.reason}: ${record.detail}` };
  if (record.record.seq !== index) return { ok: false, reason: 'invalid-record', detail: `the record says seq ${record.record.seq}, the proof index ${index}` };
  return { ok: true, index, record: record.record, leafHash: leaf, checkpoint: opened.checkpoint };
}
