import { describe, expect, it } from 'vitest';
import { bearerTokenFrom, claimAt, groupsFrom, principalFromClaims } from '../../../src/identity/index.js';

const PATHS = { user: 'email', email: 'email', groups: 'groups' };

describe('claimAt', () => {
  const claims = {
    sub: 's',
    realm_access: { roles: ['admin', 'dev'] },
    resource_access: { tollgate: { roles: ['reader'] } },
    'https://example.com/groups': ['namespaced'],
    list: [{ a: 1 }],
  };

  it('walks dotted paths into nested objects', () => {
    expect(claimAt(claims, 'realm_access.roles')).toEqual(['admin', 'dev']);
    expect(claimAt(claims, 'resource_access.tollgate.roles')).toEqual(['reader']);
  });

  it('prefers a top-level claim whose name contains dots', () => {
    expect(claimAt(claims, 'https://example.com/groups')).toEqual(['namespaced']);
  });

  it('is undefined for missing steps, arrays and inherited properties', () => {
    expect(claimAt(claims, 'realm_access.missing')).toBeUndefined();
    expect(claimAt(claims, 'sub.length')).toBeUndefined();
    expect(claimAt(claims, 'list.0')).toBeUndefined();
    expect(claimAt(claims, 'constructor')).toBeUndefined();
    expect(claimAt(claims, '__proto__.toString')).toBeUndefined();
  });
});

describe('groupsFrom', () => {
  it('takes an array of strings, a single string, and ignores the rest', () => {
    expect(groupsFrom(['a', 'b', 'a'])).toEqual(['a', 'b']);
    expect(groupsFrom('solo')).toEqual(['solo']);
    expect(groupsFrom(['a', 3, null, '', { b: 1 }])).toEqual(['a']);
    expect(groupsFrom(undefined)).toEqual([]);
    expect(groupsFrom({ a: 1 })).toEqual([]);
  });
});

describe('principalFromClaims', () => {
  it('maps sub, a lower-cased email and groups', () => {
    expect(principalFromClaims({ sub: 'u1', email: ' Alice@Example.COM ', groups: ['eng'] }, PATHS)).toEqual({
      ok: true,
      principal: { subject: 'u1', email: 'alice@example.com', groups: ['eng'] },
      user: 'alice@example.com',
    });
  });

  it('reads nested groups and a single-string groups claim', () => {
    const nested = principalFromClaims({ sub: 'u1', realm_access: { roles: ['dba'] } }, { ...PATHS, groups: 'realm_access.roles' });
    expect(nested.ok && nested.principal.groups).toEqual(['dba']);
    const single = principalFromClaims({ sub: 'u1', groups: 'security' }, PATHS);
    expect(single.ok && single.principal.groups).toEqual(['security']);
  });

  it('ignores an email the IdP marks unverified', () => {
    const result = principalFromClaims({ sub: 'u1', email: 'ceo@example.com', email_verified: false }, PATHS);
    expect(result).toEqual({ ok: true, principal: { subject: 'u1', groups: [] }, user: 'u1' });
  });

  it('uses a separate user claim, falling back to the email and then the subject', () => {
    const paths = { ...PATHS, user: 'preferred_username' };
    const named = principalFromClaims({ sub: 'u1', email: 'a@example.com', preferred_username: 'alice' }, paths);
    expect(named.ok && named.user).toBe('alice');
    const unnamed = principalFromClaims({ sub: 'u1', email: 'a@example.com' }, paths);
    expect(unnamed.ok && unnamed.user).toBe('a@example.com');
    const bare = principalFromClaims({ sub: 'u1' }, paths);
    expect(bare.ok && bare.user).toBe('u1');
  });

  it('reads the email from a configured path', () => {
    const result = principalFromClaims({ sub: 'u1', upn: 'Bob@Corp.example' }, { user: 'upn', email: 'upn', groups: 'groups' });
    expect(result.ok && result.principal.email).toBe('bob@corp.example');
  });

  it('needs a subject', () => {
    expect(principalFromClaims({ email: 'a@example.com' }, PATHS)).toEqual({ ok: false, reason: 'missing-subject' });
    expect(principalFromClaims({ sub: '' }, PATHS)).toEqual({ ok: false, reason: 'missing-subject' });
    expect(principalFromClaims({ sub: 7 }, PATHS)).toEqual({ ok: false, reason: 'missing-subject' });
  });
});

describe('bearerTokenFrom', () => {
  it('extracts the token of an Authorization: Bearer header (RFC 6750 §2.1)', () => {
    expect(bearerTokenFrom('Bearer abc.def-ghi_jkl')).toBe('abc.def-ghi_jkl');
    expect(bearerTokenFrom('bearer abc==')).toBe('abc==');
  });

  it.each([undefined, '', 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', 'Bearer a,b', 'Bearertoken'])('finds no token in %j', (header) => {
    expect(bearerTokenFrom(header)).toBeUndefined();
  });
});
