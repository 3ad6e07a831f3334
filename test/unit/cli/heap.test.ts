import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, heapGrowingFlag } from '../../../src/cli/heap.js';

describe('heapGrowingFlag', () => {
  it('asks for the gateway heap growth when the command line chose none', () => {
    expect(heapGrowingFlag([])).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    expect(heapGrowingFlag(['--enable-source-maps', '--max-old-space-size=512'])).toBe('--heap-growing-percent=300');
  });

  it("leaves the operator's own value in force, in either spelling", () => {
    expect(heapGrowingFlag(['--heap-growing-percent=50'])).toBeNull();
    expect(heapGrowingFlag(['--heap_growing_percent=50'])).toBeNull();
    expect(heapGrowingFlag(['--heap-growing-percent', '50'])).toBeNull();
  });

  it('does not mistake a look-alike flag for it', () => {
    expect(heapGrowingFlag(['--heap-growing-percentage=50'])).not.toBeNull();
  });

  it('is a flag this Node accepts', () => {
    // V8 rejects unknown flags on the command line with "bad option"; a renamed flag would fail here.
    const run = spawnSync(process.execPath, [heapGrowingFlag([]) ?? '', '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('ok');
  });
});
