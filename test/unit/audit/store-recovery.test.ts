import { spawnSync } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openFileStore } from '../../../src/audit/index.js';
import type { FileStoreOptions } from '../../../src/audit/index.js';
import { isTollgateError } from '../../../src/core/index.js';
import { sampleEvent } from '../../helpers/audit-records.js';
import { FaultyFs, frameOf, logEnd, readLog, snapshotDir, storeFixture, TEST_LOG_ID, testKeys, trimPreallocated } from '../../helpers/audit-store.js';
import type { FrameLocation } from '../../helpers/audit-store.js';

const keys = testKeys();
const FIRST = '00000000000000000000.seg';
const fixture = storeFixture(keys, { checkpointIntervalMs: 60_000 });
const { newDir, open } = fixture;

afterEach(() => fixture.cleanup());

/** A closed log of `count` records, all covered by its final signed checkpoint. */
async function closedLog(count: number, options: Partial<FileStoreOptions> = {}): Promise<string> {
  const dir = newDir();
  const store = await open(dir, options);
  for (let i = 0; i < count; i++) await store.append(sampleEvent(i));
  await store.close();
  return dir;
}

/** The files a crash leaves: `signed` records under a checkpoint, then `unsigned` durable ones. */
async function crashImage(signed: number, unsigned: number): Promise<string> {
  const dir = newDir();
  const store = await open(dir);
  for (let i = 0; i < signed; i++) await store.append(sampleEvent(i));
  await store.checkpointNow();
  for (let i = signed; i < signed + unsigned; i++) await store.append(sampleEvent(i));
  const image = join(newDir(), 'image');
  snapshotDir(dir, image);
  return image;
}

function contents(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((name) => name !== 'lock')
      .sort()
      .map((name) => [name, readFileSync(join(dir, name)).toString('base64')]),
  );
}

async function expectTampered(dir: string, seq: number, reason: string): Promise<void> {
  const before = contents(dir);
  const error = await open(dir).then(
    () => null,
    (e: unknown) => e,
  );
  expect(isTollgateError(error, 'TG_ERR_AUDIT_TAMPERED')).toBe(true);
  expect((error as { details: Record<string, unknown> }).details).toMatchObject({ seq, reason });
  expect((error as Error).message).toContain(`seq ${seq}`);
  // Never repaired silently: not one byte of the log changed, and the lock was released.
  expect(contents(dir)).toEqual(before);
  expect(readdirSync(dir)).not.toContain('lock');
}

function flipRecordByte(dir: string, seq: number): void {
  const frame = readLog(dir).frames[seq]!;
  const path = join(dir, frame.segment);
  const bytes = readFileSync(path);
  bytes[frame.offset + 10]! ^= 0x01;
  writeFileSync(path, bytes);
}

/** Zeros over one whole frame, as a write that never landed leaves it in preallocated space. */
function zeroFrame(dir: string, frame: FrameLocation): void {
  const path = join(dir, frame.segment);
  const bytes = readFileSync(path);
  bytes.fill(0, frame.offset, frame.offset + frame.length);
  writeFileSync(path, bytes);
}

/**
 * The files a crash leaves between an `audit.recovered` record and its cut: a log of 8 records
 * ending in a long unfinished frame (`torn` bytes at `end`), with the record the next open
 * writes (`recorded` bytes) already over the start of that frame and the rest not cut yet.
 */
async function cutInterruptedImage(): Promise<{ image: string; end: number; torn: number; recorded: number }> {
  const dir = await crashImage(5, 3);
  const end = trimPreallocated(dir);
  // A write that left a long unfinished frame: its header and 1,000 bytes of record text.
  const torn = Buffer.concat([Buffer.from([0x00, 0x00, 0x05, 0xdc]), Buffer.from(`{"data":{"pad":"${'t'.repeat(990)}`)]);
  appendFileSync(join(dir, FIRST), torn);
  const image = join(newDir(), 'image');
  snapshotDir(dir, image);
  const store = await open(dir);
  await store.close();
  const recovered = readLog(dir).frames[8]!;
  expect(recovered).toMatchObject({ offset: end });
  expect(recovered.length).toBeLessThan(torn.length);
  const bytes = readFileSync(join(image, FIRST));
  readFileSync(join(dir, FIRST)).copy(bytes, end, end, end + recovered.length);
  writeFileSync(join(image, FIRST), bytes);
  return { image, end, torn: torn.length, recorded: recovered.length };
}

describe('file store recovery: torn tails are cut and recorded', () => {
  it('cuts an incomplete last frame and appends audit.recovered saying what was cut', async () => {
    const dir = await crashImage(5, 3);
    const end = trimPreallocated(dir);
    appendFileSync(join(dir, FIRST), Buffer.from([0x00, 0x00, 0x01, 0x00, 0x7b, 0x22, 0x64]));
    const store = await open(dir);
    expect(store.state()).toMatchObject({ status: 'ready', size: 9, checkpointSize: 5 });
    await store.close();

    const { records } = readLog(dir);
    expect(records.map((r) => r.request_id ?? r.kind)).toEqual(['r-0', 'r-1', 'r-2', 'r-3', 'r-4', 'r-5', 'r-6', 'r-7', 'audit.recovered']);
    expect(records[8]).toMatchObject({ seq: 8, kind: 'audit.recovered', data: { file: FIRST, offset: end, bytes: 7, reason: 'incomplete-frame', seq: 8 } });
    expect(Object.keys(records[8]!.data).sort()).toEqual(['bytes', 'file', 'offset', 'reason', 'seq']);
  });

  it('cuts a gap of zeros beyond the signed size with the frames after it, as batch writes in flight leave, and says how many', async () => {
    const dir = await crashImage(3, 4);
    const { frames } = readLog(dir);
    const gap = frames[5]!;
    const end = frames[6]!.offset + frames[6]!.length;
    zeroFrame(dir, gap);
    const store = await open(dir);
    expect(store.state()).toMatchObject({ status: 'ready', size: 6, checkpointSize: 3 });
    await store.close();
    const { records } = readLog(dir);
    expect(records.map((r) => r.request_id ?? r.kind)).toEqual(['r-0', 'r-1', 'r-2', 'r-3', 'r-4', 'audit.recovered']);
    expect(records[5]).toMatchObject({ kind: 'audit.recovered', data: { file: FIRST, offset: gap.offset, bytes: end - gap.offset, reason: 'unfinished-writes', seq: 5, frames: 1 } });
  });

  it('after a crash between the audit.recovered record and its cut, cuts the rest and records that too', async () => {
    const { image, end, torn, recorded } = await cutInterruptedImage();
    const reopened = await open(image);
    expect(reopened.state()).toMatchObject({ status: 'ready', size: 10 });
    await reopened.close();
    const { records } = readLog(image);
    expect(records[8]).toMatchObject({ kind: 'audit.recovered', data: { offset: end, bytes: torn, reason: 'incomplete-frame', seq: 8 } });
    expect(records[9]).toMatchObject({
      kind: 'audit.recovered',
      data: { file: FIRST, offset: end + recorded, bytes: torn - recorded, reason: 'cut-interrupted', seq: 9 },
    });
  });

  it('refuses bytes after an audit.recovered record that reach past the cut it announced', async () => {
    const { image } = await cutInterruptedImage();
    appendFileSync(join(image, FIRST), Buffer.from('and more that no cut announced'));
    await expectTampered(image, 9, 'invalid-record');
  });

  it('cuts a torn frame followed by preallocated zeros, counting only the torn bytes', async () => {
    const dir = await crashImage(5, 3);
    const end = logEnd(dir, FIRST);
    expect(statSync(join(dir, FIRST)).size).toBeGreaterThan(end);
    // A write interrupted inside a frame: what landed ends at a sector boundary, the rest is zeros.
    const boundary = Math.ceil((end + 16) / 512) * 512;
    const next = frameOf(Buffer.from(`{"data":{"pad":"${'t'.repeat(boundary - end + 100)}"}}`));
    const bytes = readFileSync(join(dir, FIRST));
    next.subarray(0, boundary - end).copy(bytes, end);
    writeFileSync(join(dir, FIRST), bytes);
    const store = await open(dir);
    expect(store.state()).toMatchObject({ status: 'ready', size: 9 });
    await store.close();
    expect(readLog(dir).records[8]).toMatchObject({ kind: 'audit.recovered', data: { file: FIRST, offset: end, bytes: next.length, reason: 'crc-mismatch', seq: 8 } });
    // A clean close leaves no zeros behind.
    expect(statSync(join(dir, FIRST)).size).toBe(logEnd(dir, FIRST));
  });

  it('takes zeros after the last frame for preallocated space: nothing is cut or recorded, and the next record goes there', async () => {
    const dir = await crashImage(2, 1);
    const end = logEnd(dir, FIRST);
    expect(statSync(join(dir, FIRST)).size).toBeGreaterThan(end);
    const store = await open(dir);
    expect(store.state()).toMatchObject({ size: 3, bytes: end });
    await store.append(sampleEvent(3));
    await store.close();
    const { records, frames } = readLog(dir);
    expect(records.map((r) => r.request_id)).toEqual(['r-0', 'r-1', 'r-2', 'r-3']);
    expect(frames[3]!.offset).toBe(end);
  });

  it('cuts a torn frame that is all a new segment holds, and continues in that segment', async () => {
    const dir = await crashImage(4, 0);
    // A roll cuts the old segment to its last frame before it creates the new one.
    trimPreallocated(dir);
    const name = '00000000000000000004.seg';
    writeFileSync(join(dir, name), Buffer.from([0x00, 0x00]));
    const store = await open(dir);
    expect((await store.append(sampleEvent(99))).seq).toBe(5);
    await store.close();
    const { records, frames } = readLog(dir);
    expect(records[4]).toMatchObject({ kind: 'audit.recovered', data: { file: name, offset: 0, bytes: 2, reason: 'incomplete-frame', seq: 4 } });
    expect(frames[4]!.segment).toBe(name);
  });

  it('moves on to a new segment when the record of the cut does not fit, leaving no torn byte behind', async () => {
    const dir = newDir();
    const store = await open(dir, { segmentSize: 2048 });
    let count = 0;
    while (store.state().bytes + 400 < 2048) await store.append(sampleEvent(count++));
    await store.checkpointNow();
    const image = join(newDir(), 'image');
    snapshotDir(dir, image);
    const last = readLog(image).segments.at(-1)!;
    // A frame declaring 1 KiB, cut short by the end of the file at segmentSize.
    const end = trimPreallocated(image);
    appendFileSync(join(image, last), Buffer.concat([Buffer.from([0x00, 0x00, 0x04, 0x00]), Buffer.alloc(2048 - end - 4, 0x7b)]));
    const reopened = await open(image, { segmentSize: 2048 });
    await reopened.close();
    const { records, segments } = readLog(image);
    expect(records[count]).toMatchObject({ kind: 'audit.recovered', data: { reason: 'incomplete-frame', bytes: 2048 - end, seq: count } });
    expect(segments.at(-1)).toBe(`${String(count).padStart(20, '0')}.seg`);
  });

  it('leaves the torn bytes in place when the record of the cut cannot be written', async () => {
    const dir = await crashImage(3, 1);
    trimPreallocated(dir);
    const torn = Buffer.from([0x00, 0x00, 0x02]);
    appendFileSync(join(dir, FIRST), torn);
    const sizeBefore = statSync(join(dir, FIRST)).size;
    const faulty = new FaultyFs();
    faulty.fail('writev', 'ENOSPC', /\.seg$/);
    await expect(open(dir, { fs: faulty.fs })).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_UNAVAILABLE' });
    expect(statSync(join(dir, FIRST)).size).toBe(sizeBefore);
    expect(readdirSync(dir)).not.toContain('lock');
    const store = await open(dir);
    await store.close();
    expect(readLog(dir).records[4]).toMatchObject({ kind: 'audit.recovered', data: { bytes: torn.length, reason: 'incomplete-frame', seq: 4 } });
  });

  it('cuts a torn last entry of the checkpoint history and records it', async () => {
    const dir = await closedLog(3);
    const end = statSync(join(dir, 'checkpoints')).size;
    const torn = '\u001etest.example/audit\n4\n';
    appendFileSync(join(dir, 'checkpoints'), torn);
    const store = await open(dir);
    expect(store.state().checkpointSize).toBe(3);
    await store.close();
    const { records } = readLog(dir);
    expect(records[3]).toMatchObject({ kind: 'audit.recovered', data: { file: 'checkpoints', offset: end, bytes: Buffer.byteLength(torn), reason: 'incomplete-checkpoint' } });
  });

  it('opens a clean log without recording anything', async () => {
    const dir = await closedLog(6);
    const store = await open(dir);
    expect(store.state().size).toBe(6);
    await store.close();
    expect(readLog(dir).records.every((r) => r.kind !== 'audit.recovered')).toBe(true);
  });
});

describe('file store recovery: other damage is tampering', () => {
  it('refuses a last frame with one flipped byte after the checkpoint, followed by preallocated zeros: not an unfinished write', async () => {
    const dir = await crashImage(5, 3);
    flipRecordByte(dir, 7);
    await expectTampered(dir, 7, 'invalid-record');
  });

  it('refuses a last frame with one flipped byte after the checkpoint at the end of the file', async () => {
    const dir = await crashImage(5, 3);
    trimPreallocated(dir);
    flipRecordByte(dir, 7);
    await expectTampered(dir, 7, 'invalid-record');
  });

  it('refuses a last frame torn inside a sector, which no interrupted write leaves', async () => {
    const dir = await crashImage(5, 3);
    const last = readLog(dir).frames[7]!;
    const path = join(dir, FIRST);
    const bytes = readFileSync(path);
    // Zeros to the frame's end from just after the last sector boundary in it, not from one.
    const to = last.offset + last.length;
    const from = Math.max(Math.floor((to - 1) / 512) * 512 + 1, last.offset + 12);
    expect(from).toBeLessThan(to - 2);
    bytes.fill(0, from, to);
    writeFileSync(path, bytes);
    await expectTampered(dir, 7, 'invalid-record');
  });

  it('refuses records without any checkpoint files: the store signs one before the first record', async () => {
    const dir = await closedLog(3);
    unlinkSync(join(dir, 'checkpoint'));
    unlinkSync(join(dir, 'checkpoints'));
    await expectTampered(dir, 0, 'checkpoint-missing');
    const error = await open(dir).then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as Error).message).toContain('--checkpoint');
  });

  it('refuses a stale checkpoint appended to the history, rather than signing over the records after it', async () => {
    const dir = newDir();
    const store = await open(dir);
    for (let i = 0; i < 3; i++) await store.append(sampleEvent(i));
    const stale = await store.checkpointNow();
    for (let i = 3; i < 6; i++) await store.append(sampleEvent(i));
    await store.close();
    appendFileSync(join(dir, 'checkpoints'), `\u001e${stale!.note}`);
    writeFileSync(join(dir, 'checkpoint'), stale!.note);
    // The records after the stale checkpoint rewritten, chained from record 2.
    const bytes = readFileSync(join(dir, FIRST));
    const tail = readLog(dir).frames[3]!.offset;
    writeFileSync(join(dir, FIRST), bytes.subarray(0, tail));
    const before = contents(dir);
    const error = await open(dir).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTollgateError(error, 'TG_ERR_AUDIT_TAMPERED')).toBe(true);
    expect((error as Error).message).toContain('(size 3) is smaller than the entry before it (size 6)');
    expect(contents(dir)).toEqual(before);
  });

  it('names the seq of a zeroed frame with more records after it than batch writes in flight can leave', async () => {
    const dir = newDir();
    const store = await open(dir);
    for (let i = 0; i < 3; i++) await store.append(sampleEvent(i));
    await store.checkpointNow();
    // Past UNFINISHED_TAIL_MAX_BYTES (two batches of 1 MiB, a largest frame each) of frames.
    const pad = 'p'.repeat(2000);
    for (let i = 3; i < 1300; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, k) => store.append({ ...sampleEvent(i + k), data: { pad } })));
    }
    const image = join(newDir(), 'image');
    snapshotDir(dir, image);
    zeroFrame(image, readLog(image).frames[5]!);
    await expectTampered(image, 5, 'invalid-record');
  });

  it('names the seq of a zeroed frame followed by a frame with altered bytes', async () => {
    const dir = await crashImage(3, 4);
    const frame = readLog(dir).frames[5]!;
    flipRecordByte(dir, 6);
    zeroFrame(dir, frame);
    await expectTampered(dir, 5, 'invalid-record');
  });

  it('refuses records zeroed up to the preallocated space when the signed checkpoint covers them', async () => {
    const dir = await crashImage(6, 0);
    const frame = readLog(dir).frames[4]!;
    const bytes = readFileSync(join(dir, FIRST));
    bytes.fill(0, frame.offset);
    writeFileSync(join(dir, FIRST), bytes);
    await expectTampered(dir, 4, 'seq-gap');
  });

  it('refuses zeros at the end of a segment that is not the last', async () => {
    const dir = newDir();
    const store = await open(dir, { segmentSize: 2048 });
    let count = 0;
    while (store.state().segments < 2) await store.append(sampleEvent(count++));
    await store.close();
    const first = readLog(dir).segments[0]!;
    const frames = readLog(dir).frames.filter((f) => f.segment === first);
    appendFileSync(join(dir, first), Buffer.alloc(64));
    await expectTampered(dir, frames.length, 'invalid-record');
  });

  it('names the seq of a CRC-damaged record in the middle of the log', async () => {
    const dir = await closedLog(10);
    flipRecordByte(dir, 4);
    await expectTampered(dir, 4, 'invalid-record');
  });

  it('names the seq of a CRC-damaged record after the checkpoint that is not the last frame', async () => {
    const dir = await crashImage(5, 3);
    flipRecordByte(dir, 6);
    await expectTampered(dir, 6, 'invalid-record');
  });

  it('refuses a CRC-damaged last frame that the signed checkpoint covers', async () => {
    const dir = await closedLog(6);
    flipRecordByte(dir, 5);
    await expectTampered(dir, 5, 'invalid-record');
  });

  it('finds a record rewritten with a valid CRC through the signed root and names where the chain breaks', async () => {
    const dir = await closedLog(10);
    const frame = readLog(dir).frames[3]!;
    const path = join(dir, frame.segment);
    const bytes = readFileSync(path);
    const record = Buffer.from(bytes.subarray(frame.offset + 4, frame.offset + frame.length - 4).toString('utf8').replace('"r-3"', '"r-9"'));
    frameOf(record).copy(bytes, frame.offset);
    writeFileSync(path, bytes);
    await expectTampered(dir, 4, 'prev-mismatch');
  });

  it('refuses a log truncated at a frame boundary below the signed size', async () => {
    const dir = await closedLog(10);
    truncateSync(join(dir, FIRST), readLog(dir).frames[8]!.offset);
    await expectTampered(dir, 8, 'seq-gap');
  });

  it('refuses a log truncated inside a frame the checkpoint covers', async () => {
    const dir = await closedLog(10);
    const frame = readLog(dir).frames[9]!;
    truncateSync(join(dir, FIRST), frame.offset + 5);
    await expectTampered(dir, 9, 'invalid-record');
  });

  it('refuses a log whose last segment was deleted', async () => {
    const dir = await closedLog(30, { segmentSize: 2048 });
    const segments = readLog(dir).segments;
    unlinkSync(join(dir, segments.at(-1)!));
    const firstMissing = Number(segments.at(-1)!.slice(0, 20));
    await expectTampered(dir, firstMissing, 'seq-gap');
  });

  it('refuses a log with a segment missing in the middle', async () => {
    const dir = await closedLog(30, { segmentSize: 2048 });
    const segments = readLog(dir).segments;
    unlinkSync(join(dir, segments[1]!));
    await expectTampered(dir, Number(segments[1]!.slice(0, 20)), 'seq-gap');
  });

  it('refuses a checkpoint signed by another key', async () => {
    const dir = await closedLog(3);
    const other = testKeys();
    const error = await openFileStore({ dir, logId: TEST_LOG_ID, signer: other.signer }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTollgateError(error, 'TG_ERR_AUDIT_TAMPERED')).toBe(true);
    expect((error as Error).message).toContain('signing key');
  });

  it('refuses a checkpoint history that lost its entries', async () => {
    const dir = await closedLog(3);
    unlinkSync(join(dir, 'checkpoints'));
    const error = await open(dir).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTollgateError(error, 'TG_ERR_AUDIT_TAMPERED')).toBe(true);
  });

  it('refuses a log opened under another log id', async () => {
    const dir = await closedLog(3);
    const error = await openFileStore({ dir, logId: 'other.example/audit', signer: keys.signer }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTollgateError(error, 'TG_ERR_AUDIT_TAMPERED')).toBe(true);
  });
});

describe('file store: a new log is signed before its first record', () => {
  it('signs the empty tree, durably, before the first segment exists', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs });
    const history = faulty.calls.findIndex((c) => c.path.endsWith('/checkpoints') && c.op === 'datasync');
    const published = faulty.calls.findIndex((c) => c.path.endsWith('/checkpoint') && c.op === 'rename');
    const segment = faulty.calls.findIndex((c) => c.path.endsWith('.seg'));
    expect(history).toBeGreaterThanOrEqual(0);
    expect(history).toBeLessThan(published);
    expect(published).toBeLessThan(segment);
    expect(store.state().checkpointSize).toBe(0);
    const note = readFileSync(join(dir, 'checkpoint'), 'utf8');
    expect(readFileSync(join(dir, 'checkpoints'), 'utf8')).toBe(`\u001e${note}`);
    expect(note.startsWith(`${TEST_LOG_ID}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n`)).toBe(true);
  });

  it('opens a log whose creation stopped after the first checkpoint and before the first segment, as a new log', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    faulty.fail('replaceFile', 'EIO', /\.seg$/);
    await expect(open(dir, { fs: faulty.fs })).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_UNAVAILABLE' });
    expect(readdirSync(dir).sort()).toEqual(['checkpoint', 'checkpoints']);
    const store = await open(dir);
    expect(store.state()).toMatchObject({ size: 0, checkpointSize: 0 });
    await store.append(sampleEvent(0));
    await store.close();
    expect(readLog(dir).records.map((r) => r.request_id)).toEqual(['r-0']);
    expect(readFileSync(join(dir, 'checkpoints'), 'utf8').split('\u001e')).toHaveLength(3);
  });

  it('opens a directory whose first checkpoint entry is torn and holds no record, and signs it again', async () => {
    const dir = newDir();
    writeFileSync(join(dir, 'checkpoints'), `\u001e${TEST_LOG_ID}\n0\n`);
    const store = await open(dir);
    expect(store.state()).toMatchObject({ size: 1, checkpointSize: 0 });
    await store.close();
    expect(readLog(dir).records[0]).toMatchObject({ kind: 'audit.recovered', data: { file: 'checkpoints', offset: 0, reason: 'incomplete-checkpoint' } });
  });
});

describe('file store lock', () => {
  it('refuses a second writer of the same directory', async () => {
    const dir = newDir();
    await open(dir);
    const error = await openFileStore({ dir, logId: TEST_LOG_ID, signer: keys.signer }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTollgateError(error, 'TG_ERR_AUDIT_LOCKED')).toBe(true);
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
  });

  it('refuses a directory locked by another live process', async () => {
    const dir = newDir();
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`);
    await expect(open(dir)).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_LOCKED', details: { pid: process.ppid } });
  });

  it('takes over a lock whose process is gone', async () => {
    const dir = newDir();
    const exited = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
    writeFileSync(join(dir, 'lock'), `${exited.pid}\n`);
    const store = await open(dir);
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
    await store.close();
    expect(readdirSync(dir)).not.toContain('lock');
  });

  it('releases the lock when the open fails', async () => {
    const dir = await closedLog(4);
    flipRecordByte(dir, 1);
    await expect(open(dir)).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_TAMPERED' });
    expect(readdirSync(dir)).not.toContain('lock');
  });
});
