import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeBase64,
  encodeBase64,
  generateSignerKey,
  parseCheckpointBody,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  verifyLog,
} from '../../src/audit/index.js';
import type { VerifyLogOptions, VerifyLogResult } from '../../src/audit/index.js';
import {
  buildLog,
  checkpointNote,
  cutAt,
  editRecord,
  frameAtSeq,
  frameOf,
  framesOf,
  historyNotes,
  recordBytes,
  replaceFrame,
  segmentPaths,
  writeHistory,
} from '../helpers/audit-files.js';
import type { BuiltLog } from '../helpers/audit-files.js';
import { sampleEvent, sealChain } from '../helpers/audit-records.js';

// The tamper matrix of `audit verify`: a real log written by the file store (40 records in
// segments of ~9, checkpoints signed at 16, 32 and, on close, 40), copied for each case and
// damaged with byte edits. Each case names the exact seq and reason verify must report.

let base: BuiltLog;
let other: BuiltLog;
const scratch: string[] = [];

beforeAll(async () => {
  base = await buildLog({ logId: 'alpha.example/audit', records: 40, checkpointsAt: [16, 32] });
  // Same events, a log id of the same length: its segments split at the same seqs.
  other = await buildLog({ logId: 'omega.example/audit', records: 40, checkpointsAt: [16, 32] });
});

afterAll(() => {
  for (const dir of [base.dir, other.dir, ...scratch]) rmSync(dir, { recursive: true, force: true });
});

/** A private copy of the base log to damage. */
function copyOf(log: BuiltLog = base): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tamper-'));
  scratch.push(dir);
  cpSync(log.dir, dir, { recursive: true });
  return dir;
}

function verify(dir: string, extra: Partial<VerifyLogOptions> = {}): Promise<VerifyLogResult> {
  return verifyLog({ dir, verifiers: [parseVerifierKey(base.verifierKey)], ...extra });
}

/** The first seq ≥ `from` whose frame shares a segment with the next one. */
function pairInOneSegment(dir: string, from: number): number {
  const frames = framesOf(dir);
  for (let seq = from; seq + 1 < frames.length; seq++) if (frames[seq]!.path === frames[seq + 1]!.path) return seq;
  throw new Error('no two neighbouring records share a segment');
}

/** A seq of an `http.request` record (sampleEvent: every third, from 0) in a segment other than the first and last. */
function middleRequest(dir: string): number {
  const frames = framesOf(dir);
  const paths = segmentPaths(dir);
  return frames.find((f) => f.seq % 3 === 0 && f.seq >= 10 && f.path !== paths[0] && f.path !== paths.at(-1) && frames[f.seq + 1]?.path === f.path)!.seq;
}

function failure(result: VerifyLogResult): { seq: number; reason: string } {
  if (result.ok) throw new Error(`expected a failure, verify said ok (${result.size} records)`);
  return { seq: result.seq, reason: result.reason };
}

describe('audit verify on an intact log', () => {
  it('accepts it, with its size, root and the signer of the latest checkpoint', async () => {
    const result = await verify(base.dir);
    expect(result).toMatchObject({ ok: true, size: 40, logId: 'alpha.example/audit', signaturesChecked: true, tornTail: null });
    if (!result.ok) return;
    const latest = parseCheckpointBody(checkpointNote(base.dir).split('\n\n')[0]! + '\n');
    expect(latest.ok && encodeBase64(result.root)).toBe(latest.ok && encodeBase64(latest.checkpoint.rootHash));
    expect(result.signer).toBe(`${parseVerifierKey(base.verifierKey).name}+${parseVerifierKey(base.verifierKey).keyId.toString(16).padStart(8, '0')}`);
    // History (0, 16, 32, 40) and the checkpoint file (40).
    expect(result.checkpointsChecked).toBe(5);
  });

  it('without a key checks everything but who signed, and says so', async () => {
    const result = await verifyLog({ dir: base.dir, verifiers: [] });
    expect(result).toMatchObject({ ok: true, size: 40, signaturesChecked: false, signer: null });
  });

  it('reports an unfinished write after the last checkpoint as a torn tail, not as tampering', async () => {
    const dir = copyOf();
    const last = segmentPaths(dir).at(-1)!;
    writeFileSync(last, Buffer.concat([readFileSync(last), frameOf(recordBytes(dir, 39)).subarray(0, 30)]));
    const result = await verify(dir);
    expect(result).toMatchObject({ ok: true, size: 40, tornTail: { segment: basename(last), bytes: 30, reason: 'incomplete-frame' } });
  });
});

describe('audit verify: the tamper matrix', () => {
  it('a flipped byte in a record: bad-crc at its seq', async () => {
    const dir = copyOf();
    const frame = frameAtSeq(dir, 12);
    const bytes = readFileSync(frame.path);
    bytes[frame.offset + 4 + 20]! ^= 0x01;
    writeFileSync(frame.path, bytes);
    expect(failure(await verify(dir))).toEqual({ seq: 12, reason: 'bad-crc' });
  });

  it('a record deleted: seq-gap where it was', async () => {
    const dir = copyOf();
    replaceFrame(dir, 12);
    expect(failure(await verify(dir))).toEqual({ seq: 12, reason: 'seq-gap' });
  });

  it('two records swapped: seq-gap at the first of them', async () => {
    const dir = copyOf();
    const seq = pairInOneSegment(dir, 12);
    const first = frameOf(recordBytes(dir, seq));
    const second = frameOf(recordBytes(dir, seq + 1));
    replaceFrame(dir, seq + 1, first);
    replaceFrame(dir, seq, second);
    expect(failure(await verify(dir))).toEqual({ seq, reason: 'seq-gap' });
  });

  it('a record inserted (a copy of the one before): seq-duplicate at the inserted place', async () => {
    const dir = copyOf();
    const copy = frameOf(recordBytes(dir, 12));
    replaceFrame(dir, 12, copy, copy);
    expect(failure(await verify(dir))).toEqual({ seq: 13, reason: 'seq-duplicate' });
  });

  it('a forged record inserted with a correct seq and prev: the real record after it is then a duplicate', async () => {
    const dir = copyOf();
    const seq = 12;
    // The forger chains the new record to record 12 and renumbers nothing else.
    const forged = JSON.parse(recordBytes(dir, seq + 1).toString('utf8')) as Record<string, unknown>;
    const realNext = frameOf(recordBytes(dir, seq + 1));
    forged.request_id = 'forged';
    const canonical = JSON.stringify(Object.fromEntries(Object.entries(forged).sort(([a], [b]) => (a < b ? -1 : 1))));
    replaceFrame(dir, seq + 1, frameOf(Buffer.from(canonical)), realNext);
    expect(failure(await verify(dir))).toEqual({ seq: seq + 2, reason: 'seq-duplicate' });
  });

  it('changed content behind a recomputed CRC: prev-mismatch at the next record', async () => {
    const dir = copyOf();
    const seq = middleRequest(dir);
    editRecord(dir, seq, (json) => json.replace('"method":"GET"', '"method":"PUT"'));
    const result = await verify(dir);
    expect(failure(result)).toEqual({ seq: seq + 1, reason: 'prev-mismatch' });
    expect(!result.ok && result.message).toContain(`record ${seq} was altered`);
  });

  it('the last record changed behind a recomputed CRC: the signed root catches it at its seq', async () => {
    const dir = copyOf();
    editRecord(dir, 39, (json) => json.replace('"method":"GET"', '"method":"PUT"'));
    expect(failure(await verify(dir))).toEqual({ seq: 39, reason: 'checkpoint-mismatch' });
  });

  it.each([
    ['whitespace', (json: string) => json.replace('"kind":', '"kind": ')],
    ['key order', (json: string) => `{"v":1,${json.slice(1).replace(/,"v":1}$/, '}')}`],
    ['a duplicate key', (json: string) => json.replace(/,"v":1}$/, ',"v":1,"v":1}')],
    ['1.0 for 1', (json: string) => json.replace(/,"v":1}$/, ',"v":1.0}')],
  ])('a non-canonical record (%s) behind a recomputed CRC: non-canonical at its seq', async (_, edit) => {
    const dir = copyOf();
    const before = recordBytes(dir, 12).toString('utf8');
    expect(edit(before)).not.toBe(before);
    editRecord(dir, 12, edit);
    expect(failure(await verify(dir))).toEqual({ seq: 12, reason: 'non-canonical' });
  });

  it('a frame header declaring an impossible length: bad-frame-length at its seq', async () => {
    const dir = copyOf();
    const frame = frameAtSeq(dir, 12);
    const bytes = readFileSync(frame.path);
    bytes.writeUInt32BE(1 << 20, frame.offset);
    writeFileSync(frame.path, bytes);
    expect(failure(await verify(dir))).toEqual({ seq: 12, reason: 'bad-frame-length' });
  });

  it('a segment spliced from another log: wrong-log-id at its first seq', async () => {
    const dir = copyOf();
    const ours = segmentPaths(dir);
    const theirs = segmentPaths(other.dir);
    expect(theirs.map((p) => basename(p))).toEqual(ours.map((p) => basename(p)));
    writeFileSync(ours[2]!, readFileSync(theirs[2]!));
    const firstSeq = Number(basename(ours[2]!).slice(0, 20));
    expect(failure(await verify(dir))).toEqual({ seq: firstSeq, reason: 'wrong-log-id' });
  });

  it('a segment renamed out of place: seq-gap at the seq it should start with', async () => {
    const dir = copyOf();
    const path = segmentPaths(dir)[2]!;
    const firstSeq = Number(basename(path).slice(0, 20));
    renameSync(path, join(dir, `${String(firstSeq + 1).padStart(20, '0')}.seg`));
    expect(failure(await verify(dir))).toEqual({ seq: firstSeq, reason: 'seq-gap' });
  });

  it('truncation below the signed size, at a frame boundary: truncated at the first missing seq', async () => {
    const dir = copyOf();
    cutAt(dir, 36);
    expect(failure(await verify(dir))).toEqual({ seq: 36, reason: 'truncated' });
  });

  it('truncation below the signed size, inside a frame: truncated at the cut record', async () => {
    const dir = copyOf();
    cutAt(dir, 37, 10);
    expect(failure(await verify(dir))).toEqual({ seq: 37, reason: 'truncated' });
  });

  it('a cut-off tail with its checkpoints deleted passes alone, and is caught with the checkpoint saved elsewhere', async () => {
    const dir = copyOf();
    const saved = checkpointNote(dir);
    cutAt(dir, 32);
    const notes = historyNotes(dir).slice(0, 2);
    writeHistory(dir, notes);
    writeFileSync(join(dir, 'checkpoint'), notes[1]!);
    expect(await verify(dir)).toMatchObject({ ok: true, size: 32 });
    const result = await verify(dir, { externalCheckpoint: saved });
    expect(failure(result)).toEqual({ seq: 32, reason: 'truncated' });
    expect(!result.ok && result.message).toContain('the external checkpoint');
  });

  it('an external checkpoint the log still contains is confirmed', async () => {
    const dir = copyOf();
    const saved = historyNotes(dir)[2]!;
    expect(await verify(dir, { externalCheckpoint: saved })).toMatchObject({ ok: true, size: 40, external: { size: 32 } });
  });

  it("an external checkpoint of another log: checkpoint-wrong-origin at the last seq it covers", async () => {
    const dir = copyOf();
    const foreign = historyNotes(other.dir)[1]!;
    const result = await verifyLog({ dir, verifiers: [parseVerifierKey(base.verifierKey), parseVerifierKey(other.verifierKey)], externalCheckpoint: foreign });
    expect(failure(result)).toEqual({ seq: 15, reason: 'checkpoint-wrong-origin' });
  });

  it('an external checkpoint, validly signed, of a forked tree: checkpoint-mismatch', async () => {
    const dir = copyOf();
    const forked = signCheckpoint({ origin: base.logId, size: 30, rootHash: new Uint8Array(32).fill(7) }, parseSignerKey(base.signerKey));
    expect(failure(await verify(dir, { externalCheckpoint: forked }))).toEqual({ seq: 29, reason: 'checkpoint-mismatch' });
  });

  it('a checkpoint signed by another key: checkpoint-unknown-key at the last seq it covers', async () => {
    const dir = copyOf();
    const body = parseCheckpointBody(checkpointNote(dir).split('\n\n')[0]! + '\n');
    if (!body.ok) throw new Error(body.reason);
    const impostor = parseSignerKey(generateSignerKey(base.logId).signerKey);
    writeFileSync(join(dir, 'checkpoint'), signCheckpoint(body.checkpoint, impostor));
    expect(failure(await verify(dir))).toEqual({ seq: 39, reason: 'checkpoint-unknown-key' });
  });

  it('a bad signature: checkpoint-bad-signature at the last seq it covers', async () => {
    const dir = copyOf();
    const note = checkpointNote(dir);
    const line = note.trimEnd().split('\n').at(-1)!;
    const [dash, name, signature] = line.split(' ') as [string, string, string];
    const raw = decodeBase64(signature)!;
    raw[10]! ^= 0x01;
    writeFileSync(join(dir, 'checkpoint'), note.replace(line, `${dash} ${name} ${encodeBase64(raw)}`));
    expect(failure(await verify(dir))).toEqual({ seq: 39, reason: 'checkpoint-bad-signature' });
  });

  it('two signed checkpoints for one size with different roots: checkpoint-conflict', async () => {
    const dir = copyOf();
    const fork = signCheckpoint({ origin: base.logId, size: 40, rootHash: new Uint8Array(32).fill(9) }, parseSignerKey(base.signerKey));
    writeHistory(dir, [...historyNotes(dir), fork]);
    expect(failure(await verify(dir))).toEqual({ seq: 39, reason: 'checkpoint-conflict' });
  });

  it('a checkpoint history that goes back in size: checkpoint-order', async () => {
    const dir = copyOf();
    const [empty, first, second, third] = historyNotes(dir) as [string, string, string, string];
    writeHistory(dir, [empty, first, third, second]);
    expect(failure(await verify(dir))).toEqual({ seq: 31, reason: 'checkpoint-order' });
  });
});

describe('audit verify: checkpoint files, torn tails and segment names', () => {
  it('the checkpoint files deleted and the whole log rewritten from seq 0: checkpoint-missing at seq 0', async () => {
    const dir = copyOf();
    rmSync(join(dir, 'checkpoint'));
    rmSync(join(dir, 'checkpoints'));
    for (const path of segmentPaths(dir)) rmSync(path);
    const forged = sealChain(base.logId, 40, (i) => ({ ...sampleEvent(i), decision: { effect: 'allow', rule: 'forged', reason: 'forged' } }));
    writeFileSync(join(dir, '00000000000000000000.seg'), Buffer.concat(forged.map((record) => frameOf(record.bytes))));
    const result = await verify(dir);
    expect(failure(result)).toEqual({ seq: 0, reason: 'checkpoint-missing' });
    expect(!result.ok && result.message).toContain('40 records but no signed checkpoint');
  });

  it('a log with no records and its first checkpoint verifies', async () => {
    const empty = await buildLog({ records: 0 });
    scratch.push(empty.dir);
    expect(await verifyLog({ dir: empty.dir, verifiers: [parseVerifierKey(empty.verifierKey)] })).toMatchObject({ ok: true, size: 0, checkpoint: { size: 0 } });
  });

  it('a flipped byte in the last record, after the last checkpoint: bad-crc, not an unfinished write', async () => {
    const dir = copyOf();
    // As the files stand while records after the checkpoint of 32 wait for the next one.
    const notes = historyNotes(dir).slice(0, -1);
    writeHistory(dir, notes);
    writeFileSync(join(dir, 'checkpoint'), notes.at(-1)!);
    const frame = frameAtSeq(dir, 39);
    const bytes = readFileSync(frame.path);
    bytes[frame.offset + 4 + 20]! ^= 0x01;
    writeFileSync(frame.path, bytes);
    expect(failure(await verify(dir))).toEqual({ seq: 39, reason: 'bad-crc' });
  });

  it('the first segment renamed: seq-gap at seq 0, saying that the log starts there', async () => {
    const dir = copyOf();
    const first = segmentPaths(dir)[0]!;
    renameSync(first, join(dir, '00000000000000000001.seg'));
    const result = await verify(dir);
    expect(failure(result)).toEqual({ seq: 0, reason: 'seq-gap' });
    expect(!result.ok && result.message).toContain('the log starts at seq 0');
    expect(!result.ok && result.message).not.toContain('seq -1');
  });
});

describe('audit verify in worker threads', () => {
  let large: BuiltLog;
  beforeAll(async () => {
    large = await buildLog({ logId: 'large.example/audit', records: 900, checkpointsAt: [300, 600], segmentSize: 96 * 1024 });
  });
  afterAll(() => rmSync(large.dir, { recursive: true, force: true }));

  const damages: [string, (dir: string) => void][] = [
    ['intact', () => undefined],
    ['a flipped byte', (dir) => editRecord(dir, 500, (json) => json.replace('"auth.login"', '"auth.logon"'))],
    ['changed content', (dir) => editRecord(dir, 602, (json) => json.replace('"method":"oidc"', '"method":"OIDC"'))],
    ['a non-canonical record', (dir) => editRecord(dir, 250, (json) => json.replace('"kind":', '"kind" :'))],
    ['a record deleted', (dir) => replaceFrame(dir, 777)],
    ['the last signed record changed', (dir) => editRecord(dir, 599, (json) => json.replace('"method":"oidc"', '"method":"OIDC"'))],
  ];

  it.each(damages)('gives the same answer as one thread (%s)', async (_, damage) => {
    const dir = copyOf(large);
    damage(dir);
    const options = { dir, verifiers: [parseVerifierKey(large.verifierKey)], chunkBytes: 70_000 };
    const single = await verifyLog({ ...options, workers: 0 });
    const parallel = await verifyLog({ ...options, workers: 2 });
    expect(parallel).toEqual(single);
  });
});
