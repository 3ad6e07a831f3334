import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startReloadTriggers, type ReloadOutcome, type ReloadTrigger } from '../../../src/cli/reload.js';
import { silentLogger } from '../../../src/core/index.js';

const UNCHANGED: ReloadOutcome = { ok: true, changed: [], sha256: '0'.repeat(64), seq: null };

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('startReloadTriggers', () => {
  let dir: string;
  let file: string;
  let calls: ReloadTrigger[];
  let outcomes: ReloadOutcome[];
  let triggers: { close(): void } | null;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-triggers-'));
    file = join(dir, 'tollgate.yaml');
    writeFileSync(file, 'first: 1\n');
    calls = [];
    outcomes = [];
    triggers = null;
  });

  afterEach(() => {
    triggers?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (watchFile: string | null): void => {
    triggers = startReloadTriggers({
      reload: (trigger) => {
        calls.push(trigger);
        return Promise.resolve(UNCHANGED);
      },
      logger: silentLogger,
      watchFile,
      debounceMs: 200,
      onOutcome: (outcome) => outcomes.push(outcome),
    });
  };

  it('reloads once after an editor-style burst of writes and a rename over the file', async () => {
    start(file);
    writeFileSync(`${file}.swp`, 'x');
    writeFileSync(`${file}.tmp`, 'second: 2\n');
    renameSync(`${file}.tmp`, file);
    writeFileSync(file, 'third: 3\n');
    await until(() => calls.length > 0);
    await until(() => outcomes.length > 0);
    expect(calls).toEqual(['file-change']);
    expect(outcomes).toEqual([UNCHANGED]);
  });

  it('ignores other files in the directory', async () => {
    start(file);
    writeFileSync(join(dir, 'notes.txt'), 'not the config');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(calls).toEqual([]);
    writeFileSync(file, 'changed: true\n');
    await until(() => calls.length > 0);
    expect(calls).toEqual(['file-change']);
  });

  it('reloads on SIGHUP, and gives the signal back on close', async () => {
    const before = process.listenerCount('SIGHUP');
    start(null);
    expect(process.listenerCount('SIGHUP')).toBe(before + 1);
    process.kill(process.pid, 'SIGHUP');
    await until(() => calls.length > 0);
    expect(calls).toEqual(['SIGHUP']);
    triggers?.close();
    triggers = null;
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });
});
