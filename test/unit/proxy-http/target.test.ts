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
    ['/app/..%2e/x', '/app/.../x'],
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
  ])('refuses %s (%s)', (target, problem) => {
    expect(problemOf(target)).toBe(problem);
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
