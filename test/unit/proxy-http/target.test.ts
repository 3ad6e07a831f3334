import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeRequestTarget } from '../../../src/proxy/http/index.js';

function pathOf(target: string): string {
  const result = normalizeRequestTarget(target);
  if (!result.ok) throw new Error(`refused ${target}: ${result.problem}`);
  return result.path;
}

function problemOf(target: string): string | null {
  const result = normalizeRequestTarget(target);
  return result.ok ? null : result.problem;
}

describe('normalizeRequestTarget', () => {
  it('keeps plain paths and the query untouched', () => {
    expect(normalizeRequestTarget('/app/orders/42?limit=50&x=%2F')).toEqual({ ok: true, path: '/app/orders/42', query: '?limit=50&x=%2F' });
    expect(normalizeRequestTarget('/')).toEqual({ ok: true, path: '/', query: '' });
    expect(normalizeRequestTarget('/a?')).toEqual({ ok: true, path: '/a', query: '?' });
  });

  it.each([
    ['/app/../admin', '/admin'],
    ['/app/./x', '/app/x'],
    ['/app/x/..', '/app/'],
    ['/app/x/.', '/app/x/'],
    ['/app//admin', '/app/admin'],
    ['//app///x//', '/app/x/'],
    ['/app/%2e%2e/admin', '/admin'],
    ['/app/%2E%2E/admin', '/admin'],
    ['/app/.%2e/admin', '/admin'],
    ['/app/%2e/x', '/app/x'],
    ['/app/%61dmin', '/app/admin'],
    ['/app/a%2db', '/app/a-b'],
    ['/app/%7euser', '/app/~user'],
    ['/app/caf%c3%a9', '/app/caf%C3%A9'],
    ['/app/%3a', '/app/%3A'],
    ['/.well-known/x', '/.well-known/x'],
    ['/app/%2e%2e/%2e%2e/%2e%2e/x', null],
  ])('normalises %s to %s', (target, expected) => {
    if (expected === null) expect(problemOf(target)).toBe('above-root');
    else expect(pathOf(target)).toBe(expected);
  });

  it('keeps letter case of the path: paths are case-sensitive, the upstream sees what was decided', () => {
    expect(pathOf('/APP/Admin')).toBe('/APP/Admin');
  });

  it.each([
    ['http://evil.example/app/', 'not-origin-form'],
    ['*', 'not-origin-form'],
    ['example.com:443', 'not-origin-form'],
    ['/app/x#frag', 'fragment'],
    ['/app/%zz', 'malformed-escape'],
    ['/app/%2', 'malformed-escape'],
    ['/app/a\\..\\admin', 'backslash'],
    ['/app/%5c..%5cadmin', 'backslash'],
    ['/app/admin%2Fx', 'encoded-slash'],
    ['/app/..%2fadmin', 'encoded-slash'],
    ['/app/x%00.html', 'control-character'],
    ['/app/x%0d%0aSet-Cookie:a', 'control-character'],
    ['/app/%7F', 'control-character'],
    ['/app/%252e%252e/admin', 'double-encoding'],
    ['/app/%252F', 'double-encoding'],
    ['/app/..;/admin', 'path-parameter'],
    ['/app/admin;jsessionid=1', 'path-parameter'],
    ['/app/admin%3bx', 'path-parameter'],
    ['/..', 'above-root'],
    ['/app/../../etc/passwd', 'above-root'],
    ['/app/caf\u00e9', 'invalid-character'],
    ['/app/%C0%AE%C0%AE/secret', 'invalid-utf8'],
    ['/app/%c0%af..%c0%afadmin/x', 'invalid-utf8'],
    ['/app/%e0%80%ae', 'invalid-utf8'],
    ['/app/%f0%80%80%af', 'invalid-utf8'],
    ['/app/%c1%bf', 'invalid-utf8'],
    ['/app/%ed%a0%80', 'invalid-utf8'],
    ['/app/%f4%90%80%80', 'invalid-utf8'],
    ['/app/%f5%80%80%80', 'invalid-utf8'],
    ['/app/%ff', 'invalid-utf8'],
    ['/app/%80', 'invalid-utf8'],
    ['/app/%c3', 'invalid-utf8'],
    ['/app/%c3/x', 'invalid-utf8'],
    ['/app/%c3a', 'invalid-utf8'],
    ['/app/%e2%82', 'invalid-utf8'],
    ['/app/%c3%a9%a9', 'invalid-utf8'],
    ['/app/secret.', 'ambiguous-segment'],
    ['/app/admin./x', 'ambiguous-segment'],
    ['/app/admin%2e/x', 'ambiguous-segment'],
    ['/app/admin%2E', 'ambiguous-segment'],
    ['/app/admin%20/x', 'ambiguous-segment'],
    ['/app/secret%20', 'ambiguous-segment'],
    ['/app/secret%20%20', 'ambiguous-segment'],
    ['/app/secret.%20', 'ambiguous-segment'],
    ['/app/secret%20.', 'ambiguous-segment'],
    ['/app/..%2e/x', 'ambiguous-segment'],
    ['/app/x/.../', 'ambiguous-segment'],
    ['/app/admin%09/x', 'control-character'],
  ])('refuses %s (%s)', (target, problem) => {
    expect(problemOf(target)).toBe(problem);
  });

  it('accepts well-formed UTF-8 escapes of every length, and dots and spaces inside a segment', () => {
    expect(pathOf('/app/caf%C3%A9')).toBe('/app/caf%C3%A9');
    expect(pathOf('/app/%c2%80%df%bf')).toBe('/app/%C2%80%DF%BF');
    expect(pathOf('/app/%e2%82%ac%ef%bf%bf%e0%a0%80')).toBe('/app/%E2%82%AC%EF%BF%BF%E0%A0%80');
    expect(pathOf('/app/%ed%9f%bf%ee%80%80')).toBe('/app/%ED%9F%BF%EE%80%80');
    expect(pathOf('/app/%f0%9f%98%80%f4%8f%bf%bf/x')).toBe('/app/%F0%9F%98%80%F4%8F%BF%BF/x');
    expect(pathOf('/app/report.pdf')).toBe('/app/report.pdf');
    expect(pathOf('/app/.hidden/a.b.c')).toBe('/app/.hidden/a.b.c');
    expect(pathOf('/app/a%20b/%20x')).toBe('/app/a%20b/%20x');
    expect(pathOf('/app/x/./y/../')).toBe('/app/x/');
  });

  it('agrees with the WHATWG decoder on which escaped byte sequences are UTF-8', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    // Letters and bytes above 0x7F only, so that no other problem (controls, `%2F`) comes first.
    const byte = fc.oneof(fc.constant(0x41), fc.integer({ min: 0x80, max: 0xff }));
    fc.assert(
      fc.property(fc.array(byte, { minLength: 1, maxLength: 6 }), (list) => {
        const bytes = Uint8Array.from(list);
        const escaped = list.map((value) => `%${value.toString(16)}`).join('');
        const problem = problemOf(`/app/a${escaped}b/c`);
        let utf8 = true;
        try {
          decoder.decode(bytes);
        } catch {
          utf8 = false;
        }
        if (!utf8) expect(problem).toBe('invalid-utf8');
        else expect(problem).not.toBe('invalid-utf8');
      }),
      { numRuns: 2000 },
    );
  });

  it('allows a literal percent sign that is not a double encoding', () => {
    expect(pathOf('/app/100%25')).toBe('/app/100%25');
    expect(pathOf('/app/%25zz')).toBe('/app/%25zz');
  });

  it('is idempotent: a normalised path normalises to itself', () => {
    const segment = fc.stringMatching(/^(?:[A-Za-z0-9._~-]|%(?:2[eE]|41|7[eE]|3[aA]|[cC]3%[aA]9)){0,6}$/);
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), fc.boolean(), (segments, slash) => {
        const result = normalizeRequestTarget(`/${segments.join('/')}${slash ? '/' : ''}`);
        if (!result.ok) return;
        expect(normalizeRequestTarget(result.path)).toEqual({ ok: true, path: result.path, query: '' });
        expect(result.path).not.toMatch(/\/\.\.?(?:\/|$)|\/\//);
      }),
    );
  });
});
