import { describe, expect, it } from 'vitest';
import { bytesToHex, canonicalize, createChainVerifier, encodeCanonical, leafHash, rootFromLeaves, sealRecord } from '../../../src/audit/index.js';
import type { ChainFailure, JsonValue, SealedRecord } from '../../../src/audit/index.js';
import { sampleEvent, sealChain } from '../../helpers/audit-records.js';

const LOG = 'tollgate.example.com/audit';

/** Feeds `records` in order; returns the first failure, or null. */
function feed(records: readonly Uint8Array[], logId = LOG) {
  const verifier = createChainVerifier<number>({ logId });
  for (let i = 0; i < records.length; i++) {
    const step = verifier.push(records[i]!, i);
    if (!step.ok) return { verifier, failure: step };
  }
  return { verifier, failure: null };
}

/** Re-encodes record bytes after changing the decoded object (still canonical). */
function edit(sealed: SealedRecord, change: (record: Record<string, JsonValue>) => void): Uint8Array {
  const record = JSON.parse(JSON.stringify(sealed.record)) as Record<string, JsonValue>;
  change(record);
  return encodeCanonical(record);
}

describe('createChainVerifier', () => {
  const log = sealChain(LOG, 12);
  const bytes = log.map((r) => r.bytes);

  it('accepts a well-formed log and tracks its Merkle root at every size', () => {
    const verifier = createChainVerifier({ logId: LOG });
    expect(verifier.rootAt(0)).toEqual(rootFromLeaves([]));
    log.forEach((sealed, i) => {
      const step = verifier.push(sealed.bytes);
      expect(step).toMatchObject({ ok: true, seq: i, record: sealed.record });
      expect(step.ok && step.leafHash).toEqual(sealed.leafHash);
      expect(verifier.rootAt(i + 1)).toEqual(rootFromLeaves(log.slice(0, i + 1).map((r) => r.leafHash)));
      expect(verifier.rootAt(i)).toBeNull();
    });
    expect(verifier.size).toBe(12);
    expect(verifier.failure).toBeNull();
  });

  it('compares checkpoints when it reaches their size', () => {
    const verifier = createChainVerifier({ logId: LOG });
    bytes.slice(0, 5).forEach((b) => verifier.push(b));
    const root = rootFromLeaves(log.slice(0, 5).map((r) => r.leafHash));
    expect(verifier.checkCheckpoint({ size: 5, rootHash: root })).toEqual({ ok: true });
    expect(() => verifier.checkCheckpoint({ size: 4, rootHash: root })).toThrow(expect.objectContaining({ code: 'TG_ERR_INTERNAL' }));
    const other = rootFromLeaves(log.slice(1, 6).map((r) => r.leafHash));
    expect(verifier.checkCheckpoint({ size: 5, rootHash: other })).toMatchObject({ ok: false, seq: 4, reason: 'checkpoint-mismatch' });
  });

  it('reports a non-canonical record at its seq, with the caller position', () => {
    const spaced = new TextEncoder().encode(new TextDecoder().decode(bytes[3]).replace('"kind":', '"kind": '));
    const { failure } = feed([...bytes.slice(0, 3), spaced, ...bytes.slice(4)]);
    expect(failure).toMatchObject({ ok: false, seq: 3, reason: 'non-canonical', position: 3 });
    expect(failure?.detail).toContain('whitespace');
  });

  it('reports a changed record where the chain breaks: the next record', () => {
    const changed = edit(log[5]!, (r) => {
      r.resource = 'other';
    });
    const { failure } = feed([...bytes.slice(0, 5), changed, ...bytes.slice(6)]);
    expect(failure).toMatchObject({ seq: 6, reason: 'prev-mismatch' });
    expect(failure?.detail).toContain('seq 5');
  });

  it('reports a deleted record as a gap at the missing seq', () => {
    expect(feed([...bytes.slice(0, 5), ...bytes.slice(6)]).failure).toMatchObject({ seq: 5, reason: 'seq-gap' });
  });

  it('reports a repeated record as a duplicate', () => {
    expect(feed([...bytes.slice(0, 5), bytes[4]!, ...bytes.slice(5)]).failure).toMatchObject({ seq: 5, reason: 'seq-duplicate' });
  });

  it('reports two swapped records at the first of them', () => {
    expect(feed([...bytes.slice(0, 7), bytes[8]!, bytes[7]!, ...bytes.slice(9)]).failure).toMatchObject({ seq: 7, reason: 'seq-gap' });
  });

  it('reports a record of another log', () => {
    const other = sealChain('other.example.com/audit', 12);
    expect(feed([...bytes.slice(0, 4), other[4]!.bytes, ...bytes.slice(5)]).failure).toMatchObject({ seq: 4, reason: 'wrong-log-id' });
  });

  it('reports a log that does not start at this log’s genesis value', () => {
    const forged = sealRecord(sampleEvent(0), { logId: LOG, seq: 0, prev: '0'.repeat(64), timeMs: 0 });
    const { failure } = feed([forged.bytes]);
    expect(failure).toMatchObject({ seq: 0, reason: 'prev-mismatch' });
    expect(failure?.detail).toContain('genesis');
  });

  it('reports a record of an unknown kind', () => {
    const unknown = edit(log[2]!, (r) => {
      r.kind = 'pg.telepathy';
    });
    expect(feed([...bytes.slice(0, 2), unknown]).failure).toMatchObject({ seq: 2, reason: 'unknown-kind' });
  });

  it('reports invalid records and bytes that are not records', () => {
    const noData = edit(log[1]!, (r) => {
      delete r.data;
    });
    expect(feed([bytes[0]!, noData]).failure).toMatchObject({ seq: 1, reason: 'invalid-record' });
    expect(feed([bytes[0]!, new Uint8Array([0xff])]).failure).toMatchObject({ seq: 1, reason: 'non-canonical' });
  });

  it('stops at the first failure and returns it for every later push', () => {
    const { verifier, failure } = feed([...bytes.slice(0, 5), ...bytes.slice(6)]);
    expect(verifier.failure).toBe(failure);
    expect(verifier.push(bytes[5]!, 99)).toBe(failure);
    expect(verifier.size).toBe(5);
    expect(verifier.checkCheckpoint({ size: 5, rootHash: new Uint8Array(32) })).toBe(failure);
  });

  it('resumes from a saved state with the same results as a full run', () => {
    const first = createChainVerifier({ logId: LOG });
    bytes.slice(0, 7).forEach((b) => first.push(b));
    const state = JSON.parse(JSON.stringify(first.state())) as ReturnType<typeof first.state>;
    expect(state.lastLeafHash).toBe(bytesToHex(log[6]!.leafHash));
    const resumed = createChainVerifier({ logId: LOG, resume: state });
    bytes.slice(7).forEach((b) => expect(resumed.push(b).ok).toBe(true));
    expect(resumed.rootAt(12)).toEqual(rootFromLeaves(log.map((r) => r.leafHash)));
    const broken = createChainVerifier({ logId: LOG, resume: state });
    expect(broken.push(bytes[8]!)).toMatchObject({ seq: 7, reason: 'seq-gap' });
  });

  it('refuses an inconsistent saved state', () => {
    const verifier = createChainVerifier({ logId: LOG });
    bytes.slice(0, 3).forEach((b) => verifier.push(b));
    const state = verifier.state();
    expect(() => createChainVerifier({ logId: LOG, resume: { ...state, size: 4 } })).toThrow(expect.objectContaining({ code: 'TG_ERR_AUDIT_TAMPERED' }));
    expect(() => createChainVerifier({ logId: LOG, resume: { ...state, lastLeafHash: null } })).toThrow(expect.objectContaining({ code: 'TG_ERR_AUDIT_TAMPERED' }));
  });

  it('keeps the leaf hash of exactly the bytes it was given', () => {
    const verifier = createChainVerifier({ logId: LOG });
    const step = verifier.push(bytes[0]!);
    if (!step.ok) throw new Error(step.detail);
    expect(step.leafHash).toEqual(leafHash(bytes[0]!));
    expect(canonicalize(step.record as unknown as JsonValue)).toBe(new TextDecoder().decode(bytes[0]));
  });

  it('types failures with the caller position', () => {
    const verifier = createChainVerifier<{ segment: string; offset: number }>({ logId: LOG });
    const failure = verifier.push(bytes[1]!, { segment: '000001.seg', offset: 0 }) as ChainFailure<{ segment: string; offset: number }>;
    expect(failure.position).toEqual({ segment: '000001.seg', offset: 0 });
  });
});
