import { openSync, writeSync } from 'node:fs';
import { openFileStore, parseSignerKey } from '../../src/audit/index.js';

/**
 * The victim of the crash test: appends from many concurrent writers (half of them deferred)
 * and reports `seq id` for each append once it resolved (durable), until it is killed. It
 * prints `ready <size>` on stdout once the log is open.
 *
 *   node --import tsx test/helpers/audit-append-child.ts <dir> <signer key> <log id> <acks file>
 *
 * Acknowledgements go to a file with synchronous writes: a line is there only after its append
 * resolved, a write to a regular file never blocks the way a full stdout pipe does, and the
 * kernel keeps what was written when SIGKILL lands.
 */
const [dir, signerKey, logId, acksPath] = process.argv.slice(2);
if (dir === undefined || signerKey === undefined || logId === undefined || acksPath === undefined) {
  process.stderr.write('usage: audit-append-child.ts <dir> <signer key> <log id> <acks file>\n');
  process.exit(2);
}
const acks = openSync(acksPath, 'a');

const WRITERS = 32;

try {
  const store = await openFileStore({ dir, logId, signer: parseSignerKey(signerKey), segmentSize: 32 * 1024, checkpointIntervalMs: 50 });
  writeSync(1, `ready ${store.state().size}\n`);
  let next = 0;
  // Half the writers append deferred records (outcomes nobody waits on), which ride in the
  // batches the others start: an acknowledged deferred record must survive the kill too.
  const writer = async (index: number): Promise<never> => {
    const options = { defer: index % 2 === 1 };
    for (;;) {
      const id = `${process.pid}-${next++}`;
      const { seq } = await store.append({ kind: 'http.request', request_id: id, resource: 'app', data: { method: 'POST', path: `/app/orders/${id}` } }, options);
      writeSync(acks, `${seq} ${id}\n`);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, index) => writer(index)));
} catch (error) {
  process.stderr.write(`${String((error as Error).stack ?? error)}\n`);
  process.exit(1);
}
