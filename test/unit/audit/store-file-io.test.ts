import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeStoreFs } from '../../../src/audit/store/file-io.js';
import type { StoreFile } from '../../../src/audit/index.js';
import { tempAuditDir } from '../../helpers/audit-store.js';

const O_DSYNC = 0o10000;
const dirs: string[] = [];
const files: StoreFile[] = [];

afterEach(async () => {
  await Promise.all(files.splice(0).map((file) => file.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The open flags the kernel holds for this process's descriptor of `path` (Linux /proc). */
function kernelFlags(path: string): number {
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== path) continue;
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (flags) return Number.parseInt(flags[1]!, 8);
  }
  throw new Error(`no descriptor of ${path} is open`);
}

describe('the store file boundary on the real file system', () => {
  it('opens segments with O_DSYNC when writes must be synchronous, and without it otherwise', async () => {
    const dir = tempAuditDir();
    dirs.push(dir);
    const synced = join(dir, 'synced.seg');
    const plain = join(dir, 'plain.seg');
    files.push(await nodeStoreFs.replaceFile(synced, { syncWrites: true }));
    files.push(await nodeStoreFs.replaceFile(plain));
    expect(kernelFlags(synced) & O_DSYNC).toBe(O_DSYNC);
    expect(kernelFlags(plain) & O_DSYNC).toBe(0);
    const reopened = await nodeStoreFs.openFile(plain, { syncWrites: true });
    files.push(reopened);
    await reopened.writev([Buffer.from('abc'), Buffer.from('def')], 0);
    expect(readFileSync(plain, 'utf8')).toBe('abcdef');
  });

  it('writes every chunk of a vectored write at the given position', async () => {
    const dir = tempAuditDir();
    dirs.push(dir);
    const path = join(dir, 'x.seg');
    const file = await nodeStoreFs.replaceFile(path);
    files.push(file);
    await file.writev([Buffer.from('0123456789')], 0);
    await file.writev([Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cd')], 3);
    expect(readFileSync(path, 'utf8')).toBe('012abcd789');
    expect((await file.stat()).size).toBe(10);
    await file.truncate(4);
    expect(readFileSync(path, 'utf8')).toBe('012a');
  });
});
