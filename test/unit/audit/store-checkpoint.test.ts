import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CompactRange, leafHash, openCheckpoint } from '../../../src/audit/index.js';
import type { Checkpoint } from '../../../src/audit/index.js';
import { sampleEvent } from '../../helpers/audit-records.js';
import { FaultyFs, readLog, snapshotDir, storeFixture, TEST_LOG_ID, testKeys, waitFor } from '../../helpers/audit-store.js';

const keys = testKeys();
const fixture = storeFixture(keys);
const { newDir, open } = fixture;

afterEach(() => fixture.cleanup());

function verified(note: string): Checkpoint {
  const opened = openCheckpoint(note, [keys.verifier], { origin: TEST_LOG_ID });
  if (!opened.ok) throw new Error(`checkpoint does not verify: ${opened.reason} ${opened.detail}`);
  return opened.checkpoint;
}

/** The notes of the `checkpoints` history: each entry is 0x1E followed by one signed note. */
function history(dir: string): string[] {
  const text = readFileSync(join(dir, 'checkpoints'), 'utf8');
  expect(text.startsWith('\u001e')).toBe(true);
  return text.slice(1).split('\u001e');
}

/** The root of the first `size` records on disk, recomputed from their bytes. */
function rootOfLog(dir: string, size: number): string {
  const { frames } = readLog(dir);
  const range = new CompactRange();
  for (const frame of frames.slice(0, size)) {
    const segment = readFileSync(join(dir, frame.segment));
    range.append(leafHash(segment.subarray(frame.offset + 4, frame.offset + frame.length - 4)));
  }
  return Buffer.from(range.root()).toString('hex');
}

describe('file store checkpoints', () => {
  it('signs a checkpoint at the interval when there are new records, verifiable with the verifier key', async () => {
    const dir = newDir();
    const store = await open(dir, { checkpointIntervalMs: 20 });
    for (let i = 0; i < 7; i++) await store.append(sampleEvent(i));
    await waitFor(() => store.state().checkpointSize === 7, 'the interval checkpoint');
    const checkpoint = verified(readFileSync(join(dir, 'checkpoint'), 'utf8'));
    expect(checkpoint.origin).toBe(TEST_LOG_ID);
    expect(checkpoint.size).toBe(7);
    expect(Buffer.from(checkpoint.rootHash).toString('hex')).toBe(rootOfLog(dir, 7));
    // Under load the interval may also have fired between appends: every entry verifies, sizes
    // grow, and the last one is the published checkpoint.
    const notes = history(dir);
    expect(notes.at(-1)).toBe(readFileSync(join(dir, 'checkpoint'), 'utf8'));
    const sizes = notes.map((n) => verified(n).size);
    expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
    expect(new Set(sizes).size).toBe(sizes.length);
  });

  it('does not sign again while no record was added', async () => {
    const dir = newDir();
    const store = await open(dir, { checkpointIntervalMs: 10 });
    await store.append(sampleEvent(0));
    await waitFor(() => store.state().checkpointSize === 1, 'the first checkpoint');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(history(dir)).toHaveLength(2);
    await store.append(sampleEvent(1));
    await waitFor(() => store.state().checkpointSize === 2, 'the second checkpoint');
    const notes = history(dir);
    // The empty tree, signed when the log was created, then one per growth.
    expect(notes.map((n) => verified(n).size)).toEqual([0, 1, 2]);
  });

  it('signs a final checkpoint at close and appends it to the history', async () => {
    const dir = newDir();
    const store = await open(dir, { checkpointIntervalMs: 60_000 });
    for (let i = 0; i < 3; i++) await store.append(sampleEvent(i));
    const early = await store.checkpointNow();
    expect(early?.checkpoint.size).toBe(3);
    for (let i = 3; i < 10; i++) await store.append(sampleEvent(i));
    await store.close();
    const notes = history(dir);
    expect(notes.map((n) => verified(n).size)).toEqual([0, 3, 10]);
    expect(readFileSync(join(dir, 'checkpoint'), 'utf8')).toBe(notes[2]);
    expect(Buffer.from(verified(notes[2]!).rootHash).toString('hex')).toBe(rootOfLog(dir, 10));
    expect(Buffer.from(verified(notes[1]!).rootHash).toString('hex')).toBe(rootOfLog(dir, 3));
  });

  it('closing a store with nothing new signs nothing after the checkpoint of the empty log', async () => {
    const dir = newDir();
    const store = await open(dir);
    const empty = readFileSync(join(dir, 'checkpoint'), 'utf8');
    expect(verified(empty).size).toBe(0);
    await store.close();
    expect(history(dir)).toEqual([empty]);
    expect(readFileSync(join(dir, 'checkpoint'), 'utf8')).toBe(empty);
    const again = await open(dir);
    await again.close();
    expect(history(dir)).toEqual([empty]);
  });

  it('replaces the checkpoint file through a synced temp file and rename, leaving no temp file', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs, checkpointIntervalMs: 60_000 });
    await store.append(sampleEvent(0));
    await store.checkpointNow();
    await store.append(sampleEvent(1));
    const mark = faulty.calls.length;
    await store.checkpointNow();
    const calls = faulty.calls.slice(mark);
    const history = calls.filter((c) => c.path.endsWith('/checkpoints')).map((c) => c.op);
    const replace = calls.filter((c) => c.path.endsWith('/checkpoint') || c.path === dir).map((c) => c.op);
    expect(history).toEqual(['truncate', 'writev', 'datasync']);
    expect(replace).toEqual(['replaceFile', 'writev', 'datasync', 'rename', 'syncDir']);
    // The history entry is durable before the checkpoint file changes.
    expect(calls.findIndex((c) => c.path.endsWith('/checkpoints') && c.op === 'datasync')).toBeLessThan(calls.findIndex((c) => c.op === 'replaceFile'));
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('keeps the previous checkpoint intact when the replacement fails, and reports the failure', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs, checkpointIntervalMs: 60_000 });
    await store.append(sampleEvent(0));
    await store.checkpointNow();
    const before = readFileSync(join(dir, 'checkpoint'), 'utf8');
    await store.append(sampleEvent(1));
    faulty.fail('rename', 'EIO', /\/checkpoint$/);
    await expect(store.checkpointNow()).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_UNAVAILABLE' });
    expect(readFileSync(join(dir, 'checkpoint'), 'utf8')).toBe(before);
    expect(store.state().lastError?.message).toContain('EIO');
    faulty.clear();
    await store.checkpointNow();
    expect(verified(readFileSync(join(dir, 'checkpoint'), 'utf8')).size).toBe(2);
  });

  it('restores the checkpoint file from the history when a crash came between the two', async () => {
    const dir = newDir();
    const store = await open(dir, { checkpointIntervalMs: 60_000 });
    await store.append(sampleEvent(0));
    await store.checkpointNow();
    const first = readFileSync(join(dir, 'checkpoint'), 'utf8');
    await store.append(sampleEvent(1));
    await store.close();
    // As if the process died after the history append but before the rename.
    writeFileSync(join(dir, 'checkpoint'), first);
    writeFileSync(join(dir, 'checkpoint.tmp'), 'half a note');
    const again = await open(dir);
    expect(again.state().checkpointSize).toBe(2);
    expect(verified(readFileSync(join(dir, 'checkpoint'), 'utf8')).size).toBe(2);
    expect(existsSync(join(dir, 'checkpoint.tmp'))).toBe(false);
  });

  it('signs only what a crash image of the directory holds', async () => {
    const dir = newDir();
    const image = join(newDir(), 'image');
    const store = await open(dir, { checkpointIntervalMs: 10 });
    for (let i = 0; i < 20; i++) await store.append(sampleEvent(i));
    await waitFor(() => store.state().checkpointSize === 20, 'the checkpoint');
    snapshotDir(dir, image);
    const reopened = await open(image);
    expect(reopened.state()).toMatchObject({ size: 20, checkpointSize: 20 });
  });
});
