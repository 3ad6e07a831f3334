import { describe, expect, it } from 'vitest';
import { loadSqlClassifier } from '../../../src/sql/index.js';
import type { ClassifyResult } from '../../../src/sql/index.js';

/** `SELECT 1+1+...+1`: one level of parse-tree nesting per `+`, without deep parser state. */
const chain = (terms: number): string => `SELECT ${'1+'.repeat(terms)}1`;
const nestedSelects = (levels: number): string => `SELECT ${'(SELECT '.repeat(levels)}1${')'.repeat(levels)}`;

function kindOf(result: ClassifyResult): string {
  return result.ok ? 'ok' : result.error.kind;
}

describe('pathological nesting', () => {
  it('is followed up to maxDepth and beyond it is a too-complex error value', async () => {
    const classifier = await loadSqlClassifier({ maxDepth: 60 });
    expect(kindOf(classifier.classify(nestedSelects(3)))).toBe('ok');
    const result = classifier.classify(nestedSelects(40));
    expect(result).toEqual({
      ok: false,
      error: { kind: 'too-complex', message: 'The SQL text nests deeper than 60 levels; split it or simplify its nesting.' },
    });
  });

  it('is refused at the default depth long before the JavaScript stack would be at risk', async () => {
    const classifier = await loadSqlClassifier();
    expect(kindOf(classifier.classify(chain(1_000)))).toBe('ok');
    expect(kindOf(classifier.classify(chain(4_000)))).toBe('too-complex');
  });

  it('that exhausts the WebAssembly parser is an error value, and the parser is replaced', async () => {
    const classifier = await loadSqlClassifier({ cacheSize: 0 });
    const crash = classifier.classify(chain(50_000));
    expect(crash.ok).toBe(false);
    expect(!crash.ok && crash.error.kind).toBe('too-complex');
    expect(!crash.ok && crash.error.message).toMatch(/exhausted the parser/);
    // The spare took over at once.
    expect(classifier.classify('SELECT * FROM t')).toMatchObject({ ok: true, statements: [{ tables: ['t'] }] });
  });

  it('never wears the parser out: far more failures than one instance survives', async () => {
    const classifier = await loadSqlClassifier({ cacheSize: 0 });
    for (let i = 0; i < 40; i++) {
      expect(kindOf(classifier.classify(chain(30_000 + i)))).toBe('too-complex');
      await classifier.ready();
    }
    expect(classifier.classify("SELECT name FROM users WHERE id = 7 FOR UPDATE")).toMatchObject({
      ok: true,
      statements: [{ class: 'write', tables: ['users'], text: 'SELECT name FROM users WHERE id = 7 FOR UPDATE' }],
    });
  });

  it('answers parser-unavailable while no intact parser is loaded, and recovers', async () => {
    const classifier = await loadSqlClassifier({ cacheSize: 0 });
    await classifier.ready();
    // Two failures in a row, with no chance for a spare to load in between.
    expect(kindOf(classifier.classify(chain(40_000)))).toBe('too-complex');
    expect(kindOf(classifier.classify(chain(40_001)))).toBe('too-complex');
    expect(classifier.classify('SELECT 1')).toEqual({
      ok: false,
      error: { kind: 'parser-unavailable', message: 'The SQL parser is reloading after a failure; send the statement again.' },
    });
    await classifier.ready();
    expect(kindOf(classifier.classify('SELECT 1'))).toBe('ok');
  });

  it('caches a text that exhausted the parser, so repeating it costs no further instance', async () => {
    const classifier = await loadSqlClassifier();
    await classifier.ready();
    const first = classifier.classify(chain(45_000));
    expect(kindOf(first)).toBe('too-complex');
    await classifier.ready();
    expect(classifier.classify(chain(45_000))).toBe(first);
    // Had the repeat reached the parser, it would have used up the spare, and this second,
    // different failure would leave no parser for the next statement.
    expect(kindOf(classifier.classify(chain(45_001)))).toBe('too-complex');
    expect(kindOf(classifier.classify('SELECT 1'))).toBe('ok');
  });
});
