import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppendResult, StoreFile, StoreFs } from '../../../src/audit/index.js';
import { nodeStoreFs } from '../../../src/audit/store/file-io.js';
import { isTollgateError } from '../../../src/core/index.js';
import { sampleEvent } from '../../helpers/audit-records.js';
import { readLog, snapshotDir, storeFixture, testKeys, waitFor } from '../../helpers/audit-store.js';

const keys = testKeys();
const fixture = storeFixture(keys, { checkpointIntervalMs: 60_000 });
const { newDir, open } = fixture;

afterEach(() => fixture.cleanup());

/** A batch write to a segment, held until the test lets it go on (or fail). */
interface HeldWrite {
  readonly bytes: number;
  release(): void;
  fail(code: string): void;
}

/**
 * The real file system, except that while `holding` is set, every batch write to a segment (a
 * write that is not all zeros: preallocation goes on) waits in `held` until released. Released
 * writes reach the disk at once, in the order the test chooses.
 */
class GatedFs {
  holding = false;
  readonly held: HeldWrite[] = [];
  readonly fs: StoreFs;

  constructor() {
    const gate = (path: string, file: StoreFile): StoreFile => ({
      ...file,
      read: (into, offset, length, position) => file.read(into, offset, length, position),
      datasync: () => file.datasync(),
      sync: () => file.sync(),
      truncate: (length) => file.truncate(length),
      stat: () => file.stat(),
      statSync: () => file.statSync(),
      close: () => file.close(),
      writev: (chunks, position) => {
        const zeros = chunks.every((chunk) => chunk.every((byte) => byte === 0));
        if (!this.holding || zeros || !path.endsWith('.seg')) return file.writev(chunks, position);
        return new Promise<void>((resolve, reject) => {
          this.held.push({
            bytes: chunks.reduce((sum, chunk) => sum + chunk.length, 0),
            release: () => file.writev(chunks, position).then(resolve, reject),
            fail: (code) => reject(Object.assign(new Error(`${code}: injected`), { code })),
          });
        });
      },
    });
    this.fs = {
      ...nodeStoreFs,
      openFile: async (path, options) => gate(path, await nodeStoreFs.openFile(path, options)),
      replaceFile: async (path, options) => gate(path.replace(/\.tmp$/, ''), await nodeStoreFs.replaceFile(path, options)),
    };
  }
}

/** Lets the event loop run until the store had every chance to act. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function track(promise: Promise<AppendResult>): { result: AppendResult | null; error: unknown } {
  const state: { result: AppendResult | null; error: unknown } = { result: null, error: null };
  promise.then(
    (result) => (state.result = result),
    (error: unknown) => (state.error = error),
  );
  return state;
}

describe('file store: two batch writes on their way at once', () => {
  it('starts a second write while the first syncs, and resolves in log order whichever returns first', async () => {
    const dir = newDir();
    const gated = new GatedFs();
    const store = await open(dir, { fs: gated.fs });
    await store.append(sampleEvent(0));
    gated.holding = true;

    const first = track(store.append(sampleEvent(1)));
    await waitFor(() => gated.held.length === 1, 'the first batch write');
    const second = track(store.append(sampleEvent(2)));
    await waitFor(() => gated.held.length === 2, 'the second batch write, before the first returned');
    const third = track(store.append(sampleEvent(3)));
    await settle();
    // Two writes are on their way: the third record waits for one of them to finish.
    expect(gated.held).toHaveLength(2);

    // The later write returns first: nothing resolves before the earlier one is durable too.
    gated.held[1]!.release();
    await settle();
    expect([first.result, second.result, third.result]).toEqual([null, null, null]);
    expect(store.state().size).toBe(1);

    gated.held[0]!.release();
    await waitFor(() => second.result !== null, 'both batches to commit');
    expect(first.result!.seq).toBe(1);
    expect(second.result!.seq).toBe(2);
    await waitFor(() => gated.held.length === 3, 'the third batch write');
    gated.holding = false;
    gated.held[2]!.release();
    await waitFor(() => third.result !== null, 'the third batch');
    expect(third.result!.seq).toBe(3);

    await store.close();
    expect(readLog(dir).records.map((r) => r.request_id)).toEqual(['r-0', 'r-1', 'r-2', 'r-3']);
  });

  it('refuses the later batch too when the earlier write fails, even if the later one landed, and continues without a gap', async () => {
    const dir = newDir();
    const gated = new GatedFs();
    const store = await open(dir, { fs: gated.fs, retry: { initialMs: 10, maxMs: 50 } });
    for (let i = 0; i < 3; i++) await store.append(sampleEvent(i));
    gated.holding = true;
    const first = track(store.append(sampleEvent(100)));
    await waitFor(() => gated.held.length === 1, 'the first batch write');
    const second = track(store.append(sampleEvent(101)));
    await waitFor(() => gated.held.length === 2, 'the second batch write');

    gated.held[1]!.release();
    gated.held[0]!.fail('EIO');
    await waitFor(() => first.error !== null && second.error !== null, 'both batches to be refused');
    expect(isTollgateError(first.error, 'TG_ERR_AUDIT_UNAVAILABLE')).toBe(true);
    expect(isTollgateError(second.error, 'TG_ERR_AUDIT_UNAVAILABLE')).toBe(true);
    expect([first.result, second.result]).toEqual([null, null]);

    gated.holding = false;
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    const next = await store.append(sampleEvent(300));
    expect(next.seq).toBe(3);
    await store.close();
    // The landed later batch was cut with the failed one: no record the callers were refused is in the log.
    expect(readLog(dir).records.map((r) => r.request_id)).toEqual(['r-0', 'r-1', 'r-2', 'r-300']);
  });

  it('after a crash with the later batch on disk and the earlier not, cuts both and records what it cut', async () => {
    const dir = newDir();
    const gated = new GatedFs();
    const store = await open(dir, { fs: gated.fs });
    for (let i = 0; i < 5; i++) await store.append(sampleEvent(i));
    await store.checkpointNow();
    for (let i = 5; i < 8; i++) await store.append(sampleEvent(i));
    gated.holding = true;
    track(store.append(sampleEvent(8)));
    await waitFor(() => gated.held.length === 1, 'the earlier batch write');
    const later = Promise.all([store.append(sampleEvent(9)), store.append(sampleEvent(10))]);
    await waitFor(() => gated.held.length === 2, 'the later batch write');
    gated.held[1]!.release();
    await settle();
    await new Promise((resolve) => setTimeout(resolve, 20));

    // The files as a kill -9 now leaves them: a gap of zeros where record 8 should be, then 9 and 10.
    const image = join(newDir(), 'image');
    snapshotDir(dir, image);
    gated.held[0]!.release();
    await later;

    const segment = readFileSync(join(image, '00000000000000000000.seg'));
    const reopened = await open(image);
    expect(reopened.state().size).toBe(9);
    await reopened.close();
    const { records, frames } = readLog(image);
    expect(records.map((r) => r.request_id).slice(0, 8)).toEqual(Array.from({ length: 8 }, (_, i) => `r-${i}`));
    const gapStart = frames[8]!.offset;
    expect(segment.subarray(gapStart, gapStart + 4).every((byte) => byte === 0)).toBe(true);
    expect(records[8]).toMatchObject({
      seq: 8,
      kind: 'audit.recovered',
      data: { file: '00000000000000000000.seg', offset: gapStart, reason: 'unfinished-writes', seq: 8, frames: 2 },
    });
    expect(records).toHaveLength(9);
  });
});
