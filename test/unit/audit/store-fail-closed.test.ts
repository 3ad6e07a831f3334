import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppendResult, AuditStore } from '../../../src/audit/index.js';
import { isTollgateError } from '../../../src/core/index.js';
import { sampleEvent } from '../../helpers/audit-records.js';
import { FaultyFs, readLog, storeFixture, testKeys, waitFor } from '../../helpers/audit-store.js';
import type { FaultOp } from '../../helpers/audit-store.js';

const keys = testKeys();
const fixture = storeFixture(keys, { retry: { initialMs: 5, maxMs: 20 } });
const { newDir, open } = fixture;
const cleanups: (() => void)[] = [];

afterEach(async () => {
  await fixture.cleanup();
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function appendAll(store: AuditStore, from: number, count: number): Promise<PromiseSettledResult<AppendResult>[]> {
  return Promise.allSettled(Array.from({ length: count }, (_, i) => store.append(sampleEvent(from + i))));
}

function expectAllUnavailable(outcomes: readonly PromiseSettledResult<AppendResult>[]): void {
  expect(outcomes.filter((o) => o.status === 'fulfilled')).toEqual([]);
  for (const outcome of outcomes) {
    expect(outcome.status === 'rejected' && isTollgateError(outcome.reason, 'TG_ERR_AUDIT_UNAVAILABLE')).toBe(true);
  }
}

/** After a fault: the log holds the records before it, then the ones after recovery, no gap and no stray byte. */
async function expectContinuedChain(dir: string, store: AuditStore, before: number, marker: number): Promise<void> {
  const next = await store.append(sampleEvent(marker));
  expect(next.seq).toBe(before);
  await store.close();
  const { records } = readLog(dir);
  expect(records).toHaveLength(before + 1);
  expect(records.map((r) => r.request_id)).toEqual([...Array.from({ length: before }, (_, i) => `r-${i}`), `r-${marker}`]);
}

describe('file store fails closed', () => {
  it.each([
    ['writev', 'ENOSPC'],
    ['writev', 'EROFS'],
    ['writev', 'EACCES'],
    ['writev', 'EIO'],
    ['stat', 'EIO'],
  ] as [FaultOp, string][])('refuses every append of a batch whose %s fails with %s, then recovers without a gap', async (op, code) => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs });
    for (let i = 0; i < 3; i++) await store.append(sampleEvent(i));

    faulty.fail(op, code, /\.seg$/);
    expectAllUnavailable(await appendAll(store, 100, 40));
    expect(store.state()).toMatchObject({ status: 'degraded', size: 3 });
    expect(store.state().lastError).toMatchObject({ code: 'TG_ERR_AUDIT_UNAVAILABLE' });
    expect(store.state().lastError!.message).toContain(code);
    // While degraded, appends are refused at once, and the retries keep failing.
    expectAllUnavailable(await appendAll(store, 200, 5));
    const attempts = faulty.calls.length;
    await waitFor(() => faulty.calls.length > attempts + 4, 'retries of the repair');
    expect(store.state().status).toBe('degraded');

    faulty.clear();
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    await expectContinuedChain(dir, store, 3, 300);
  });

  it('cuts the half frame a short write left before accepting appends again', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs });
    for (let i = 0; i < 4; i++) await store.append(sampleEvent(i));
    faulty.failWithShortWrite('ENOSPC');
    expectAllUnavailable(await appendAll(store, 100, 10));
    faulty.clear();
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    await expectContinuedChain(dir, store, 4, 300);
  });

  it('stays degraded while the repair itself fails', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs });
    await store.append(sampleEvent(0));
    faulty.fail('writev', 'ENOSPC', /\.seg$/);
    faulty.fail('truncate', 'EIO', /\.seg$/);
    expectAllUnavailable(await appendAll(store, 100, 3));
    const truncations = () => faulty.calls.filter((c) => c.op === 'truncate').length;
    await waitFor(() => truncations() >= 3, 'repeated repair attempts');
    expect(store.state().status).toBe('degraded');
    expect(store.state().lastError!.message).toContain('EIO');
    faulty.clear();
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    await expectContinuedChain(dir, store, 1, 300);
  });

  it('refuses a batch that is still syncing when the append deadline passes, and cuts it afterwards', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs, appendTimeoutMs: 150 });
    for (let i = 0; i < 2; i++) await store.append(sampleEvent(i));
    const release = faulty.stallSegmentWrites();
    const stalled = appendAll(store, 100, 5);
    const outcomes = await stalled;
    expectAllUnavailable(outcomes);
    expect((outcomes[0] as PromiseRejectedResult).reason.message).toContain('150 ms');
    expect(store.state().status).toBe('degraded');
    release();
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    await expectContinuedChain(dir, store, 2, 300);
  });

  it('refuses a batch whose segment roll fails, and removes the half-made segment', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs, segmentSize: 2048 });
    let count = 0;
    while (store.state().bytes + 800 < 2048) await store.append(sampleEvent(count++));
    faulty.fail('writev', 'ENOSPC', /0[1-9]\d*\.seg$/);
    expectAllUnavailable(await appendAll(store, 100, 8));
    faulty.clear();
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    expect(readdirSync(dir).filter((n) => n.endsWith('.seg'))).toEqual(['00000000000000000000.seg']);
    await expectContinuedChain(dir, store, count, 300);
  });

  it('stops acknowledging when the audit directory is deleted, and stays degraded', async () => {
    const dir = newDir();
    const store = await open(dir);
    await store.append(sampleEvent(0));
    rmSync(dir, { recursive: true, force: true });
    expectAllUnavailable(await appendAll(store, 100, 5));
    expect(store.state().status).toBe('degraded');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(store.state().status).toBe('degraded');
    expect(store.state().lastError!.message).toMatch(/no longer in|deleted/);
    await store.close();
    expect(store.state().status).toBe('closed');
  });

  it('refuses to open a directory it cannot create, saying which', async () => {
    const parent = newDir();
    writeFileSync(join(parent, 'file'), 'not a directory');
    const dir = join(parent, 'file', 'audit');
    await expect(open(dir)).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_UNAVAILABLE', message: expect.stringContaining(dir) });
  });

  it('with durability interval, stops acknowledging once a periodic sync fails', async () => {
    const dir = newDir();
    const faulty = new FaultyFs();
    const store = await open(dir, { fs: faulty.fs, durability: 'interval', syncIntervalMs: 10 });
    await store.append(sampleEvent(0));
    await waitFor(() => store.state().syncedSize === 1, 'the first sync');
    faulty.fail('datasync', 'EIO', /\.seg$/);
    await store.append(sampleEvent(1));
    await waitFor(() => store.state().status === 'degraded', 'the failed sync');
    await expect(store.append(sampleEvent(2))).rejects.toMatchObject({ code: 'TG_ERR_AUDIT_UNAVAILABLE' });
    faulty.clear();
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    expect(store.state().syncedSize).toBe(2);
  });
});

/** A small tmpfs gives a real full disk; it needs root and mount(8), which the CI machine has. */
function tmpfsAvailable(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'tollgate-tmpfs-probe-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status !== 0) return false;
    return spawnSync('umount', [probe]).status === 0;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

describe.runIf(tmpfsAvailable())('file store on a really full disk', () => {
  it('refuses appends with ENOSPC from the kernel and continues the chain once space is freed', async () => {
    const mountpoint = mkdtempSync(join(tmpdir(), 'tollgate-tmpfs-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mountpoint]).status).toBe(0);
    cleanups.push(() => {
      spawnSync('umount', ['-l', mountpoint]);
      rmSync(mountpoint, { recursive: true, force: true });
    });
    const dir = join(mountpoint, 'audit');
    mkdirSync(dir);
    const store = await open(dir);
    for (let i = 0; i < 3; i++) await store.append(sampleEvent(i));
    const filler = join(mountpoint, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(1024 * 1024));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    // The segment's last page may still take a few records; the disk is full after that.
    let accepted = 3;
    let refusal: unknown = null;
    while (refusal === null && accepted < 100) {
      try {
        await store.append(sampleEvent(accepted));
        accepted += 1;
      } catch (error) {
        refusal = error;
      }
    }
    expect(isTollgateError(refusal, 'TG_ERR_AUDIT_UNAVAILABLE')).toBe(true);
    expect((refusal as Error).message).toContain('ENOSPC');
    expect(store.state().status).toBe('degraded');
    unlinkSync(filler);
    await waitFor(() => store.state().status === 'ready', 'the store to recover');
    await expectContinuedChain(dir, store, accepted, 300);
  });
});
