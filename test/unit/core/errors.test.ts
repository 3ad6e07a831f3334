import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, TollgateError, isTollgateError } from '../../../src/core/index.js';

const readme = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../README.md'), 'utf8');

/** The codes in the README's "Error codes" table, in order. */
function readmeCodes(): string[] {
  const section = readme.split(/^## Error codes$/m)[1]?.split(/^## /m)[0] ?? '';
  return [...section.matchAll(/^\|\s*`(TG_ERR_[A-Z_]+)`\s*\|\s*(.+?)\s*\|$/gm)].map((m) => {
    expect(m[2], `README row for ${m[1]} needs "what to do" text`).not.toBe('');
    return m[1] ?? '';
  });
}

describe('error codes', () => {
  it('the README lists exactly the codes of core/errors.ts, once each', () => {
    const documented = readmeCodes();
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('every code is stable, prefixed and upper snake case', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^TG_ERR_[A-Z]+(?:_[A-Z]+)*$/);
  });

  it('TollgateError carries code, details and cause', () => {
    const cause = new Error('disk full');
    const error = new TollgateError('TG_ERR_AUDIT_UNAVAILABLE', 'audit store unavailable; free disk space', {
      cause,
      details: { dir: '/var/lib/tollgate' },
    });
    expect(error.code).toBe('TG_ERR_AUDIT_UNAVAILABLE');
    expect(error.cause).toBe(cause);
    expect(error.details).toEqual({ dir: '/var/lib/tollgate' });
    expect(Object.isFrozen(error.details)).toBe(true);
    expect(isTollgateError(error, 'TG_ERR_AUDIT_UNAVAILABLE')).toBe(true);
    expect(isTollgateError(error, 'TG_ERR_USAGE')).toBe(false);
    expect(isTollgateError(cause)).toBe(false);
  });
});
