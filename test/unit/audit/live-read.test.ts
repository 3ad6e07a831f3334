import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openFileStore, verifyLog } from '../../../src/audit/index.js';
import type { AuditStore } from '../../../src/audit/index.js';
import { sampleEvent } from '../../helpers/audit-records.js';
import { TEST_LOG_ID, tempAuditDir, testKeys } from '../../helpers/audit-store.js';

const keys = testKeys();
const dirs: string[] = [];
const stores: AuditStore[] = [];

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('reading a log while the gateway writes it', () => {
  // Batches land in preallocated zeros while the reader looks: a reader that takes a half-copied
  // batch for zeros between frames would report tampering on a healthy log (the review pages'
  // chain banner runs exactly this verification on the live directory).
  it('verifies a log that is being appended to, every time', async () => {
    const dir = tempAuditDir();
    dirs.push(dir);
    const store = await openFileStore({ dir, logId: TEST_LOG_ID, signer: keys.signer, checkpointIntervalMs: 50 });
    stores.push(store);
    let writing = true;
    let next = 0;
    const writers = Array.from({ length: 8 }, async () => {
      while (writing) {
        await store.append(sampleEvent(next++));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    const failures: string[] = [];
    let largest = 0;
    try {
      for (let run = 0; run < 60; run++) {
        const result = await verifyLog({ dir, verifiers: [keys.verifier], logId: TEST_LOG_ID });
        if (result.ok) largest = Math.max(largest, result.size);
        else failures.push(`${result.reason} at seq ${result.seq}: ${result.message}`);
      }
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    expect(failures).toEqual([]);
    expect(largest).toBeGreaterThan(0);
  });
});
