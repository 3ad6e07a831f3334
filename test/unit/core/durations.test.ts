import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize, requireDuration } from '../../../src/core/index.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['0s', 0],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '15', '1.5h', '-1s', '1 h', '1w', 'ms', '1h 30m'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });

  it('requireDuration names the flag in its usage error', () => {
    expect(() => requireDuration('soon', '--ttl')).toThrow(/--ttl: "soon" is not a duration/);
  });
});

describe('parseSize', () => {
  it.each([
    ['64MiB', 64 * 1024 * 1024],
    ['16KiB', 16 * 1024],
    ['1GiB', 1024 ** 3],
    ['4096', 4096],
    ['10B', 10],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', '1.5MiB', '64MB', '-1', 'MiB'])('rejects %j', (text) => {
    expect(parseSize(text)).toBeNull();
  });
});
