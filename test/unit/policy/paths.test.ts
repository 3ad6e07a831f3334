import { describe, expect, it } from 'vitest';
import { compilePolicy, decide, normalizePathEncoding } from '../../../src/policy/index.js';
import { http, principal, role, spec } from './fixtures.js';

/** Whether a single allow rule with this one path glob allows `GET path`. */
function matches(glob: string, path: string): boolean {
  const policy = compilePolicy(
    spec({ roles: { r: role([{ resource: 'app', paths: [glob] }]) }, grants: [{ role: 'r', users: [], groups: ['g'] }] }),
  );
  return decide(policy, principal(['g']), http('GET', path)).effect === 'allow';
}

describe('path globs', () => {
  it('matches a glob without wildcards exactly, trailing slash included', () => {
    expect(matches('/app/home', '/app/home')).toBe(true);
    expect(matches('/app/home', '/app/home/')).toBe(false);
    expect(matches('/app/home/', '/app/home')).toBe(false);
    expect(matches('/app/home/', '/app/home/')).toBe(true);
    expect(matches('/', '/')).toBe(true);
    expect(matches('/', '/x')).toBe(false);
  });

  it('lets * match within one segment only, possibly empty', () => {
    expect(matches('/app/*', '/app/x')).toBe(true);
    expect(matches('/app/*', '/app/')).toBe(true);
    expect(matches('/app/*', '/app')).toBe(false);
    expect(matches('/app/*', '/app/x/y')).toBe(false);
    expect(matches('/app/*', '/app/x/')).toBe(false);
    expect(matches('/app/*/edit', '/app/42/edit')).toBe(true);
    expect(matches('/app/*/edit', '/app/4/2/edit')).toBe(false);
    expect(matches('/files/*.pdf', '/files/report.pdf')).toBe(true);
    expect(matches('/files/*.pdf', '/files/a/report.pdf')).toBe(false);
    expect(matches('/v*/items', '/v2/items')).toBe(true);
  });

  it('lets ** match any number of segments, including none', () => {
    expect(matches('/app/**', '/app')).toBe(true);
    expect(matches('/app/**', '/app/')).toBe(true);
    expect(matches('/app/**', '/app/a')).toBe(true);
    expect(matches('/app/**', '/app/a/b/c/')).toBe(true);
    expect(matches('/app/**', '/apple')).toBe(false);
    expect(matches('/app/**', '/ap')).toBe(false);
    expect(matches('/**', '/')).toBe(true);
    expect(matches('/**', '/anything/at/all')).toBe(true);
    expect(matches('/a/**/z', '/a/z')).toBe(true);
    expect(matches('/a/**/z', '/a/b/c/z')).toBe(true);
    expect(matches('/a/**/z', '/a/bz')).toBe(false);
    expect(matches('/a/**/z', '/a/b/z/x')).toBe(false);
    expect(matches('/**/*.js', '/static/js/app.js')).toBe(true);
    expect(matches('/**/*.js', '/app.js')).toBe(true);
    expect(matches('/**/*.js', '/app.json')).toBe(false);
  });

  it('treats ** inside a segment as *', () => {
    expect(matches('/a/**.js', '/a/x.js')).toBe(true);
    expect(matches('/a/**.js', '/a/b/x.js')).toBe(false);
  });

  it('is case-sensitive', () => {
    expect(matches('/App/**', '/app/x')).toBe(false);
    expect(matches('/app/Home', '/app/home')).toBe(false);
    expect(matches('/app/Home', '/app/Home')).toBe(true);
  });

  it('normalises the glob like a request path: unreserved escapes decoded, others upper-cased', () => {
    expect(matches('/app/%7euser/**', '/app/~user/x')).toBe(true);
    expect(matches('/app/%41bc', '/app/Abc')).toBe(true);
    expect(matches('/app/a%2fb', '/app/a%2Fb')).toBe(true);
    expect(matches('/app/a b', '/app/a%20b')).toBe(true);
    expect(matches('/docs/café', '/docs/caf%C3%A9')).toBe(true);
    expect(matches('/docs/caf%c3%a9', '/docs/caf%C3%A9')).toBe(true);
  });

  it('never lets an encoded slash match a slash in the glob', () => {
    expect(matches('/app/a/b', '/app/a%2Fb')).toBe(false);
    expect(matches('/app/a/**', '/app/a%2Fb')).toBe(false);
    expect(matches('/app/*/b', '/app/a%2Fb')).toBe(false);
    // An encoded slash is data within a segment, so a one-segment wildcard covers it.
    expect(matches('/app/*', '/app/a%2Fb')).toBe(true);
    expect(matches('/app/a%2Fb', '/app/a/b')).toBe(false);
  });

  it('rejects globs a request path can never match or that use other glob syntax', () => {
    for (const bad of ['app/**', '/app/?', '/app/{a,b}', '/app/[ab]', '/app/#x', '/app/%zz', '/app/../admin', '/app/%2e%2E/x']) {
      expect(() => matches(bad, '/'), bad).toThrow(/TG_ERR|path glob/);
    }
  });
});

/** Whether a single deny rule with this one path glob denies `GET path` (an allow-all role beside it). */
function denies(glob: string, path: string): boolean {
  const policy = compilePolicy(
    spec({ roles: { r: role([{ resource: 'app' }], [{ resource: 'app', paths: [glob] }]) }, grants: [{ role: 'r', users: [], groups: ['g'] }] }),
  );
  return decide(policy, principal(['g']), http('GET', path)).reason === 'denied-by-rule';
}

describe('deny rules: letter case and one trailing slash folded', () => {
  it('denies the spellings an upstream that ignores case or a trailing slash serves as the same path', () => {
    for (const path of ['/app/secret', '/app/secret/', '/app/Secret', '/app/SECRET/', '/APP/secret']) {
      expect(denies('/app/secret', path), path).toBe(true);
    }
    for (const path of ['/app/admin/x', '/app/ADMIN/x', '/app/Admin', '/app/admin/', '/app/aDmIn/x/y/']) {
      expect(denies('/app/admin/**', path), path).toBe(true);
    }
    for (const path of ['/app/42/EDIT', '/app/42/edit/', '/APP/x/Edit/']) {
      expect(denies('/app/*/edit', path), path).toBe(true);
    }
    expect(denies('/app/Reports/**', '/app/reports/q1')).toBe(true);
    expect(denies('/docs/caf%c3%a9', '/DOCS/caf%C3%A9/')).toBe(true);
  });

  it('folds nothing else: other paths, two trailing slashes and encoded slashes still differ', () => {
    expect(denies('/app/secret', '/app/secrets')).toBe(false);
    expect(denies('/app/secret', '/app/secret/x')).toBe(false);
    expect(denies('/app/secret', '/app/secret//')).toBe(false);
    expect(denies('/app/secret', '/app/secre')).toBe(false);
    expect(denies('/app/admin/**', '/app/administrator')).toBe(false);
    expect(denies('/app/admin/**', '/app/ADMINISTRATOR/x')).toBe(false);
    expect(denies('/app/*/edit', '/app/4/2/edit')).toBe(false);
    expect(denies('/app/a/b', '/app/A%2Fb')).toBe(false);
    expect(denies('/', '/x')).toBe(false);
    expect(denies('/', '/')).toBe(true);
  });

  it('keeps allow rules exact: a case or slash variant is a default deny, never an allow', () => {
    expect(matches('/app/home', '/app/Home')).toBe(false);
    expect(matches('/app/home', '/app/home/')).toBe(false);
    expect(matches('/app/*/edit', '/app/1/EDIT')).toBe(false);
  });
});

describe('normalizePathEncoding', () => {
  it('returns an already normal path unchanged', () => {
    expect(normalizePathEncoding('/app/a-b_c.d~e/!$&\'()*+,;=:@')).toBe('/app/a-b_c.d~e/!$&\'()*+,;=:@');
  });

  it('decodes unreserved escapes and upper-cases the others', () => {
    expect(normalizePathEncoding('/%61%2d%7E/%2f%3a%c3%a9')).toBe('/a-~/%2F%3A%C3%A9');
  });

  it('encodes characters that may not appear raw in a path', () => {
    expect(normalizePathEncoding('/a b/"x"/é')).toBe('/a%20b/%22x%22/%C3%A9');
    expect(normalizePathEncoding('/😀')).toBe('/%F0%9F%98%80');
  });

  it('returns null for malformed escapes and lone surrogates', () => {
    expect(normalizePathEncoding('/a%2')).toBeNull();
    expect(normalizePathEncoding('/a%zz')).toBeNull();
    expect(normalizePathEncoding('/a\ud800')).toBeNull();
  });
});
