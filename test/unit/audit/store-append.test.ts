import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { bytesToHex, genesisPrev, leafHash, sealRecord } from '../../../src/audit/index.js';
import { manualClock } from '../../../src/core/index.js';
import { sampleEvent } from '../../helpers/audit-records.js';
import { FaultyFs, readLog, storeFixture, TEST_LOG_ID, testKeys } from '../../helpers/audit-store.js';

const keys = testKeys();
const fixture = storeFixture(keys);
const { newDir, open } = fixture;

afterEach(() => fixture.cleanup());

describe('file store appends', () => {
  it('resolves appends with consecutive seqs from 0 and chains each record to the previous leaf hash', async () => {
    const dir = newDir();
    const clock = manualClock(Date.UTC(2025, 5, 1, 12, 0, 0));
    const store = await open(dir, { clock });
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await store.append(sampleEvent(i)));
    expect(results.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    await store.close();

    const { records } = readLog(dir);
    expect(records.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(records[0]!.prev).toBe(genesisPrev(TEST_LOG_ID));
    for (let i = 1; i < records.length; i++) expect(records[i]!.prev).toBe(bytesToHex(results[i - 1]!.leafHash));
    expect(records.every((r) => r.log_id === TEST_LOG_ID && r.time === '2025-06-01T12:00:00.000Z')).toBe(true);
    expect(records.map((r) => r.request_id)).toEqual(['r-0', 'r-1', 'r-2', 'r-3', 'r-4']);
  });

  it('returns the RFC 9162 leaf hash of the stored record bytes', async () => {
    const dir = newDir();
    const store = await open(dir);
    const { leafHash: returned } = await store.append(sampleEvent(7));
    await store.close();
    const { frames } = readLog(dir);
    const { readFileSync } = await import('node:fs');
    const segment = readFileSync(join(dir, frames[0]!.segment));
    const recordBytes = segment.subarray(4, frames[0]!.length - 4);
    expect(bytesToHex(returned)).toBe(bytesToHex(leafHash(recordBytes)));
  });

  it('stores exactly the bytes sealRecord makes, on the fast path and the full one alike', async () => {
    const dir = newDir();
    const timeMs = Date.UTC(2025, 5, 1, 12, 0, 0);
    const store = await open(dir, { clock: manualClock(timeMs) });
    // sampleEvent alternates events the writer encodes directly with ones holding bigints, which take sealRecord's path.
    const results = await Promise.all(Array.from({ length: 9 }, (_, i) => store.append(sampleEvent(i))));
    await store.close();

    const { frames } = readLog(dir);
    let prev = genesisPrev(TEST_LOG_ID);
    for (let seq = 0; seq < 9; seq++) {
      const expected = sealRecord(sampleEvent(seq), { logId: TEST_LOG_ID, seq, prev, timeMs });
      const frame = frames[seq]!;
      const stored = readFileSync(join(dir, frame.segment)).subarray(frame.offset + 4, frame.offset + frame.length - 4);
      expect(Buffer.from(stored).equals(Buffer.from(expected.bytes))).toBe(true);
      expect(bytesToHex(results[seq]!.leafHash)).toBe(bytesToHex(expected.leafHash));
      prev = bytesToHex(expected.leafHash);
    }
  });

  it('writes a deferred append with the next append that is not deferred, in call order', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const batches: number[] = [];
    const store = await open(dir, { fs: faulty.fs, groupCommit: { maxDelayMs: 60_000 }, observer: { batch: ({ records }) => batches.push(records) } });
    const segmentWrites = () => faulty.calls.filter((c) => c.op === 'writev' && c.path.endsWith('.seg') && c.zeros !== true).length;
    let deferredDone = false;
    const deferred = store.append(sampleEvent(0), { defer: true }).then((result) => {
      deferredDone = true;
      return result;
    });
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    // Sealed, but nothing started a write for it.
    expect(segmentWrites()).toBe(0);
    expect(deferredDone).toBe(false);
    const urgent = await store.append(sampleEvent(1));
    expect((await deferred).seq).toBe(0);
    expect(urgent.seq).toBe(1);
    expect(batches).toEqual([2]);
    expect(segmentWrites()).toBe(1);
    await store.close();
    expect(readLog(dir).records.map((r) => r.request_id)).toEqual(['r-0', 'r-1']);
  });

  it('writes deferred appends on their own once maxDelayMs has passed', async () => {
    const dir = newDir();
    const batches: number[] = [];
    const store = await open(dir, { groupCommit: { maxDelayMs: 5 }, observer: { batch: ({ records }) => batches.push(records) } });
    const results = await Promise.all([0, 1, 2].map((i) => store.append(sampleEvent(i), { defer: true })));
    expect(results.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(3);
    expect(store.state()).toMatchObject({ size: 3, syncedSize: 3, queued: 0 });
  });

  it('writes deferred appends at once when the store closes', async () => {
    const dir = newDir();
    const store = await open(dir, { groupCommit: { maxDelayMs: 60_000 } });
    const deferred = store.append(sampleEvent(0), { defer: true });
    // Sealed by now, and waiting for a write another record would start.
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(store.state()).toMatchObject({ size: 0, queued: 1 });
    await store.close();
    expect((await deferred).seq).toBe(0);
    expect(readLog(dir).records).toHaveLength(1);
  });

  it('rolls to a new segment named by its first seq when the next frame would pass segmentSize', async () => {
    const dir = newDir();
    const store = await open(dir, { segmentSize: 2048 });
    for (let i = 0; i < 40; i++) await store.append(sampleEvent(i));
    const state = store.state();
    await store.close();

    const { frames, segments, records } = readLog(dir);
    expect(records).toHaveLength(40);
    expect(segments.length).toBeGreaterThan(3);
    expect(state.segments).toBe(segments.length);
    for (const segment of segments) {
      expect(statSync(join(dir, segment)).size).toBeLessThanOrEqual(2048);
      const first = frames.findIndex((f) => f.segment === segment);
      expect(segment).toBe(`${String(first).padStart(20, '0')}.seg`);
    }
    expect(state.bytes).toBe(segments.reduce((sum, s) => sum + statSync(join(dir, s)).size, 0));
  });

  it('splits one large batch across segments and keeps every frame whole', async () => {
    const dir = newDir();
    const store = await open(dir, { segmentSize: 1024, groupCommit: { maxRecords: 512, maxDelayMs: 50 } });
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => store.append(sampleEvent(i))));
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    await store.close();
    const { records, segments } = readLog(dir);
    expect(records).toHaveLength(60);
    expect(segments.length).toBeGreaterThan(10);
  });

  it('continues the chain after a reopen', async () => {
    const dir = newDir();
    const first = await open(dir, { segmentSize: 4096 });
    for (let i = 0; i < 12; i++) await first.append(sampleEvent(i));
    await first.close();

    const second = await open(dir, { segmentSize: 4096 });
    expect(second.state().size).toBe(12);
    const next = await second.append(sampleEvent(12));
    expect(next.seq).toBe(12);
    await second.close();
    const { records } = readLog(dir);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i));
  });

  it('resolves hundreds of concurrent appends, each durable and in one order without gaps', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const batches: number[] = [];
    const store = await open(dir, { fs: faulty.fs, observer: { batch: ({ records }) => batches.push(records) } });
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => store.append(sampleEvent(i))));
    const seqs = results.map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => i));
    // Each append resolved with the seq of the record it asked for.
    await store.close();
    const { records } = readLog(dir);
    for (let i = 0; i < 500; i++) expect(records[results[i]!.seq]!.request_id).toBe(`r-${i}`);
    // Appends share batches, and each batch is one vectored write to a segment whose writes
    // are synchronous (O_DSYNC), so nothing resolves before its write reached the disk.
    expect(batches.reduce((a, b) => a + b, 0)).toBe(500);
    expect(batches.length).toBeLessThan(500);
    // Preallocation writes zeros ahead of the records; those are not batches.
    const segmentWrites = faulty.calls.filter((c) => c.op === 'writev' && c.path.endsWith('.seg') && c.zeros !== true).length;
    expect(segmentWrites).toBe(batches.length);
    expect(faulty.syncWriteOpens).toEqual([join(dir, '00000000000000000000.seg')]);
  });

  it('never puts more than maxRecords in a batch', async () => {
    const dir = newDir();
    const batches: number[] = [];
    const store = await open(dir, { groupCommit: { maxRecords: 8, maxDelayMs: 2 }, observer: { batch: ({ records }) => batches.push(records) } });
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.append(sampleEvent(i))));
    expect(Math.max(...batches)).toBeLessThanOrEqual(8);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(100);
  });

  it('refuses an event outside the record model without using a seq', async () => {
    const dir = newDir();
    const store = await open(dir);
    const bad = store.append({ kind: 'http.request', data: { ratio: 0.5 } });
    const good = store.append(sampleEvent(1));
    await expect(bad).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_RECORD_INVALID' });
    expect((await good).seq).toBe(0);
  });

  it('closes while the only queued events are invalid ones', async () => {
    const dir = newDir();
    const store = await open(dir);
    // The rejection is observed before close() runs, so it is never an unhandled one.
    const bad = expect(store.append({ kind: 'http.request', data: { ratio: 0.5 } })).rejects.toMatchObject({
      code: 'TG_ERR_AUDIT_RECORD_INVALID',
    });
    await store.close();
    await bad;
  });

  it('reports its state for readiness and metrics', async () => {
    const dir = newDir();
    const store = await open(dir);
    await store.append(sampleEvent(0));
    await store.append(sampleEvent(1));
    expect(store.state()).toMatchObject({ status: 'ready', lastError: null, size: 2, syncedSize: 2, checkpointSize: 0, segments: 1, queued: 0 });
    await store.close();
    expect(store.state().status).toBe('closed');
    await expect(store.append(sampleEvent(2))).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_CLOSED' });
  });

  it('writes what was queued before close()', async () => {
    const dir = newDir();
    const store = await open(dir);
    const pending = Array.from({ length: 50 }, (_, i) => store.append(sampleEvent(i)));
    const closing = store.close();
    const results = await Promise.all(pending);
    await closing;
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(readLog(dir).records).toHaveLength(50);
  });

  it('with durability interval, resolves after the write and syncs within syncIntervalMs', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs, durability: 'interval', syncIntervalMs: 20 });
    const result = await store.append(sampleEvent(0));
    expect(result.seq).toBe(0);
    expect(store.state().size).toBe(1);
    const { waitFor } = await import('../../helpers/audit-store.js');
    await waitFor(() => store.state().syncedSize === 1, 'the interval sync');
    expect(faulty.calls.some((c) => c.op === 'datasync' && c.path.endsWith('.seg'))).toBe(true);
    expect(faulty.syncWriteOpens).toEqual([]);
    await store.close();
    expect(readLog(dir).records).toHaveLength(1);
  });

  it('creates the audit directory and leaves no temp files behind', async () => {
    const parent = newDir();
    const dir = join(parent, 'nested', 'audit');
    const store = await open(dir, { segmentSize: 1024 });
    for (let i = 0; i < 10; i++) await store.append(sampleEvent(i));
    await store.close();
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(dir)).not.toContain('lock');
  });
});
