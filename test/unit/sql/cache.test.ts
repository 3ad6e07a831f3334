import { describe, expect, it } from 'vitest';
import { isTollgateError } from '../../../src/core/index.js';
import { loadSqlClassifier } from '../../../src/sql/index.js';

describe('the classification cache', () => {
  it('returns the very same, frozen result for the same text', async () => {
    const classifier = await loadSqlClassifier();
    const first = classifier.classify('SELECT * FROM orders WHERE id = 1');
    const again = classifier.classify('SELECT * FROM orders WHERE id = 1');
    expect(again).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    if (!first.ok) throw new Error(first.error.message);
    expect(Object.isFrozen(first.statements[0]?.tables)).toBe(true);
    expect(classifier.cachedTexts).toBe(1);
  });

  it('keys by exact text', async () => {
    const classifier = await loadSqlClassifier();
    const a = classifier.classify('SELECT 1');
    const b = classifier.classify('SELECT 1 ');
    expect(b).not.toBe(a);
    expect(classifier.cachedTexts).toBe(2);
  });

  it('caches rejections too', async () => {
    const classifier = await loadSqlClassifier();
    const first = classifier.classify('SELEC 1');
    expect(first.ok).toBe(false);
    expect(classifier.classify('SELEC 1')).toBe(first);
  });

  it('holds at most cacheSize texts and evicts the least recently used', async () => {
    const classifier = await loadSqlClassifier({ cacheSize: 3 });
    const one = classifier.classify('SELECT 1');
    const two = classifier.classify('SELECT 2');
    classifier.classify('SELECT 3');
    expect(classifier.classify('SELECT 1')).toBe(one);
    classifier.classify('SELECT 4');
    expect(classifier.cachedTexts).toBe(3);
    expect(classifier.classify('SELECT 1')).toBe(one);
    const twoAgain = classifier.classify('SELECT 2');
    expect(twoAgain).not.toBe(two);
    expect(twoAgain).toEqual(two);
    for (let i = 0; i < 50; i++) classifier.classify(`SELECT ${i} + 100`);
    expect(classifier.cachedTexts).toBe(3);
  });

  it('does not cache when cacheSize is 0', async () => {
    const classifier = await loadSqlClassifier({ cacheSize: 0 });
    const first = classifier.classify('SELECT * FROM t');
    const again = classifier.classify('SELECT * FROM t');
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
    expect(classifier.cachedTexts).toBe(0);
  });

  it('bounds the characters it holds and never caches a text larger than the bound', async () => {
    const classifier = await loadSqlClassifier({ cacheSize: 100, cacheMaxChars: 2_000 });
    const big = `SELECT ${'1, '.repeat(1_000)}1`;
    const first = classifier.classify(big);
    expect(first.ok).toBe(true);
    expect(classifier.classify(big)).not.toBe(first);
    expect(classifier.cachedTexts).toBe(0);
    for (let i = 0; i < 100; i++) classifier.classify(`SELECT ${'x, '.repeat(20)}${i}`);
    expect(classifier.cachedTexts).toBeGreaterThan(0);
    expect(classifier.cachedTexts).toBeLessThan(100);
  });

  it('refuses options that are not counts', async () => {
    for (const options of [{ cacheSize: -1 }, { cacheSize: 1.5 }, { cacheMaxChars: 0 }, { maxDepth: 0 }]) {
      const error: unknown = await loadSqlClassifier(options).catch((thrown: unknown) => thrown);
      expect(isTollgateError(error, 'TG_ERR_INTERNAL')).toBe(true);
    }
  });
});
