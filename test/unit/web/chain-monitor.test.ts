import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBase64, generateSignerKey, openAuditIndex, parseCheckpointBody, parseVerifierKey, type AuditIndex } from '../../../src/audit/index.js';
import { ChainMonitor, type ChainMonitorOptions } from '../../../src/web/chain-monitor.js';
import { buildLog, cutAt, editRecord, type BuiltLog } from '../../helpers/audit-files.js';

/** The size and base64 root of the directory's latest checkpoint. */
function latestCheckpoint(dir: string): { size: number; root: string } {
  const note = readFileSync(join(dir, 'checkpoint'), 'utf8');
  const parsed = parseCheckpointBody(note.slice(0, note.lastIndexOf('\n\n') + 1));
  if (!parsed.ok) throw new Error(parsed.reason);
  return { size: parsed.checkpoint.size, root: encodeBase64(parsed.checkpoint.rootHash) };
}

describe('chain monitor', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function watch(log: { dir: string; logId: string; verifierKey: string }, options: Partial<ChainMonitorOptions> = {}): Promise<ChainMonitor> {
    const index: AuditIndex = await openAuditIndex({ dir: log.dir });
    const monitor = new ChainMonitor({ dir: log.dir, logId: log.logId, verifiers: [parseVerifierKey(log.verifierKey)], index, pollMs: 20, fullMinIntervalMs: 20, ...options });
    cleanup.push(async () => {
      await monitor.close();
      await index.close();
    });
    monitor.start();
    return monitor;
  }

  async function built(records: number, checkpointsAt: readonly number[]): Promise<BuiltLog> {
    const log = await buildLog({ records, checkpointsAt });
    cleanup.push(async () => rmSync(log.dir, { recursive: true, force: true }));
    return log;
  }

  it('verifies the log up to its latest checkpoint, with root, signer and full check', async () => {
    const log = await built(40, [10, 25]);
    const monitor = await watch(log);
    await expect.poll(() => monitor.status().verified?.signedAt ?? null).not.toBeNull();
    const status = monitor.status();
    expect(status).toMatchObject({ state: 'verified', failure: null, verified: { ...latestCheckpoint(log.dir), signer: `${log.logId}+${log.verifierKey.split('+')[1]}` } });
    expect(status.verified?.size).toBe(40);
    await expect.poll(() => monitor.status().fullCheck?.records).toBe(40);
    expect(monitor.status().fullCheck?.checkpoints).toBeGreaterThanOrEqual(3);
  });

  it('follows new checkpoints incrementally, reading only the new records', async () => {
    const log = await built(30, [10]);
    // Full checks only at start: what comes after is the incremental check's work alone.
    const monitor = await watch(log, { fullMinIntervalMs: 3_600_000 });
    await expect.poll(() => monitor.status().verified?.size).toBe(30);
    await buildLog({ dir: log.dir, signerKey: log.signerKey, logId: log.logId, records: 25, checkpointsAt: [10], startMs: Date.UTC(2025, 0, 2) });
    await expect.poll(() => monitor.status().verified?.size).toBe(55);
    expect(monitor.status()).toMatchObject({ state: 'verified', verified: latestCheckpoint(log.dir) });
    expect(monitor.status().fullCheck?.records).toBe(30);
  });

  it('turns failed, naming the first bad seq, when a verified record is altered', async () => {
    const log = await built(40, [20]);
    const monitor = await watch(log);
    await expect.poll(() => monitor.status().state).toBe('verified');
    editRecord(log.dir, 12, (json) => json.replace('"r-12"', '"r-99"'));
    await expect.poll(() => monitor.status().state).toBe('failed');
    expect(monitor.status().failure).toMatchObject({ seq: 13, reason: 'prev-mismatch', message: expect.stringContaining('record 12 was altered') });
    // A failure stays: the log never turns green again on its own.
    editRecord(log.dir, 12, (json) => json.replace('"r-99"', '"r-12"'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(monitor.status().state).toBe('failed');
  });

  it('names removed records after a checkpoint', async () => {
    const log = await built(40, []);
    const monitor = await watch(log);
    await expect.poll(() => monitor.status().state).toBe('verified');
    cutAt(log.dir, 30);
    await expect.poll(() => monitor.status().failure?.reason).toBe('truncated');
    expect(monitor.status().failure?.seq).toBe(30);
  });

  it('fails a log signed by another key than the one it was given', async () => {
    const log = await built(20, [10]);
    const other = generateSignerKey(log.logId).verifierKey;
    const monitor = await watch({ ...log, verifierKey: other });
    await expect.poll(() => monitor.status().state).toBe('failed');
    expect(monitor.status().failure?.reason).toMatch(/^checkpoint-/);
    // The first checkpoint is the empty log's, signed when the log was created.
    expect(monitor.status().failure?.seq).toBe(0);
  });

  it('says so while the log has no checkpoint yet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-web-empty-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const monitor = await watch({ dir, logId: 'empty.example/audit', verifierKey: generateSignerKey('empty.example/audit').verifierKey });
    await expect.poll(() => monitor.status().state).toBe('unsigned');
    expect(monitor.status()).toMatchObject({ verified: null, failure: null, error: null });
  });
});
