import { describe, expect, it } from 'vitest';
import { DECISION_REASONS, compilePolicy, decide } from '../../../src/policy/index.js';
import { http, principal, role, spec, sql } from './fixtures.js';

describe('decide: precedence and defaults', () => {
  const policy = compilePolicy(
    spec({
      roles: {
        engineer: role([{ resource: 'app' }, { resource: 'shop' }]),
        contractor: role([], [{ resource: 'app', paths: ['/app/admin/**'] }, { resource: 'shop', statements: ['write'] }]),
        nobody: role(),
      },
      grants: [
        { role: 'engineer', users: [], groups: ['engineering'] },
        { role: 'contractor', users: [], groups: ['contractors'] },
        { role: 'nobody', users: ['nobody@example.com'], groups: [] },
      ],
    }),
  );

  it('allows through a matching allow rule and names it', () => {
    expect(decide(policy, principal(['engineering']), http('GET', '/app/admin/x'))).toEqual({
      effect: 'allow',
      rule: 'engineer.allow[0]',
      reason: 'allowed-by-rule',
    });
  });

  it('lets a deny in another role beat an allow', () => {
    const both = principal(['engineering', 'contractors']);
    expect(decide(policy, both, http('GET', '/app/admin/x'))).toEqual({
      effect: 'deny',
      rule: 'contractor.deny[0]',
      reason: 'denied-by-rule',
    });
    expect(decide(policy, both, sql('write', ['orders']))).toEqual({
      effect: 'deny',
      rule: 'contractor.deny[1]',
      reason: 'denied-by-rule',
    });
    expect(decide(policy, both, http('GET', '/app/home')).effect).toBe('allow');
    expect(decide(policy, both, sql('read', ['orders'])).effect).toBe('allow');
  });

  it('denies by default: no roles, a role without rules, a deny-only role', () => {
    const noMatch = { effect: 'deny', rule: null, reason: 'no-matching-allow' };
    expect(decide(policy, principal(['strangers']), http('GET', '/app/'))).toEqual(noMatch);
    expect(decide(policy, principal([], 'nobody@example.com'), http('GET', '/app/'))).toEqual(noMatch);
    expect(decide(policy, principal(['contractors']), http('GET', '/app/home'))).toEqual(noMatch);
    expect(decide(policy, principal(['contractors']), { kind: 'audit', permission: 'view' })).toEqual(noMatch);
  });

  it('denies an unknown resource, a wrong resource kind and an unknown login before any rule', () => {
    const who = principal(['engineering']);
    expect(decide(policy, who, http('GET', '/', 'nope'))).toEqual({ effect: 'deny', rule: null, reason: 'unknown-resource' });
    expect(decide(policy, who, sql('read', [], [], 'reader', 'nope')).reason).toBe('unknown-resource');
    expect(decide(policy, who, http('GET', '/', 'shop'))).toEqual({ effect: 'deny', rule: null, reason: 'wrong-resource-kind' });
    expect(decide(policy, who, sql('read', [], [], 'reader', 'app')).reason).toBe('wrong-resource-kind');
    expect(decide(policy, who, sql('read', [], [], 'superuser'))).toEqual({ effect: 'deny', rule: null, reason: 'unknown-login' });
  });

  it('reports the first matching rule in spec order, whatever the order of the principal groups', () => {
    const ordered = compilePolicy(
      spec({
        roles: {
          first: role([{ resource: 'app', methods: ['GET'] }, { resource: 'app' }]),
          second: role([{ resource: 'app' }]),
        },
        grants: [
          { role: 'second', users: [], groups: ['b'] },
          { role: 'first', users: [], groups: ['a'] },
        ],
      }),
    );
    expect(decide(ordered, principal(['b', 'a']), http('GET', '/')).rule).toBe('first.allow[0]');
    expect(decide(ordered, principal(['a', 'b']), http('POST', '/')).rule).toBe('first.allow[1]');
    expect(decide(ordered, principal(['b']), http('POST', '/')).rule).toBe('second.allow[0]');
  });

  it('only ever returns reasons from DECISION_REASONS, as frozen values', () => {
    const decisions = [
      decide(policy, principal(['engineering']), http('GET', '/')),
      decide(policy, principal(['contractors', 'engineering']), http('GET', '/app/admin/')),
      decide(policy, principal([]), http('GET', '/')),
      decide(policy, principal([]), http('GET', '/', 'x')),
      decide(policy, principal([]), http('GET', '/', 'shop')),
      decide(policy, principal([]), sql('read', [], [], 'x')),
    ];
    for (const decision of decisions) {
      expect(DECISION_REASONS).toContain(decision.reason);
      expect(Object.isFrozen(decision)).toBe(true);
    }
  });
});

describe('decide: grants', () => {
  const policy = compilePolicy(
    spec({
      roles: { viewer: role([{ resource: 'app' }]) },
      grants: [{ role: 'viewer', users: ['Alice@Example.COM', 'robot-7f3a'], groups: ['Engineering'] }],
    }),
  );
  const get = http('GET', '/');

  it('matches a user grant against the email case-insensitively', () => {
    expect(decide(policy, principal([], 'alice@example.com'), get).effect).toBe('allow');
    expect(decide(policy, principal([], 'ALICE@example.com'), get).effect).toBe('allow');
    expect(decide(policy, principal([], 'mallory@example.com'), get).effect).toBe('deny');
  });

  it('matches a user grant against the subject exactly', () => {
    expect(decide(policy, { subject: 'robot-7f3a', groups: [] }, get).effect).toBe('allow');
    expect(decide(policy, { subject: 'ROBOT-7F3A', groups: [] }, get).effect).toBe('deny');
    expect(decide(policy, { subject: 'robot-7f3', groups: [] }, get).effect).toBe('deny');
  });

  it('matches group grants exactly', () => {
    expect(decide(policy, principal(['Engineering'], 'x@example.com'), get).effect).toBe('allow');
    expect(decide(policy, principal(['engineering'], 'x@example.com'), get).effect).toBe('deny');
    expect(decide(policy, principal(['Engineering-ops'], 'x@example.com'), get).effect).toBe('deny');
  });
});

describe('decide: http methods', () => {
  const policy = compilePolicy(
    spec({
      roles: { reader: role([{ resource: 'app', methods: ['get', 'HEAD'] }]) },
      grants: [{ role: 'reader', users: [], groups: ['g'] }],
    }),
  );

  it('compares methods upper-case on both sides', () => {
    expect(decide(policy, principal(['g']), http('GET', '/')).effect).toBe('allow');
    expect(decide(policy, principal(['g']), http('get', '/')).effect).toBe('allow');
    expect(decide(policy, principal(['g']), http('head', '/')).effect).toBe('allow');
    expect(decide(policy, principal(['g']), http('POST', '/')).effect).toBe('deny');
  });

  it('matches extension methods too, upper-case', () => {
    const purge = compilePolicy(
      spec({ roles: { r: role([{ resource: 'app', methods: ['purge', 'GET'] }]) }, grants: [{ role: 'r', users: [], groups: ['g'] }] }),
    );
    expect(decide(purge, principal(['g']), http('PURGE', '/')).effect).toBe('allow');
    expect(decide(purge, principal(['g']), http('Purge', '/')).effect).toBe('allow');
    expect(decide(purge, principal(['g']), http('PROPFIND', '/')).effect).toBe('deny');
    expect(decide(purge, principal(['g']), http('POST', '/')).effect).toBe('deny');
    expect(decide(policy, principal(['g']), http('PURGE', '/')).effect).toBe('deny');
  });
});

describe('decide: audit permissions', () => {
  const policy = compilePolicy(
    spec({
      roles: {
        auditor: role([{ audit: ['view', 'export'] }]),
        reviewer: role([{ audit: ['view'] }]),
        restricted: role([], [{ audit: ['export'] }]),
      },
      grants: [
        { role: 'auditor', users: [], groups: ['security'] },
        { role: 'reviewer', users: [], groups: ['review'] },
        { role: 'restricted', users: [], groups: ['temps'] },
      ],
    }),
  );

  it('allows exactly the permissions an allow rule lists', () => {
    expect(decide(policy, principal(['security']), { kind: 'audit', permission: 'export' })).toEqual({
      effect: 'allow',
      rule: 'auditor.allow[0]',
      reason: 'allowed-by-rule',
    });
    expect(decide(policy, principal(['review']), { kind: 'audit', permission: 'view' }).rule).toBe('reviewer.allow[0]');
    expect(decide(policy, principal(['review']), { kind: 'audit', permission: 'export' }).reason).toBe('no-matching-allow');
  });

  it('lets an audit deny rule beat an audit allow', () => {
    expect(decide(policy, principal(['security', 'temps']), { kind: 'audit', permission: 'export' }).rule).toBe(
      'restricted.deny[0]',
    );
    expect(decide(policy, principal(['security', 'temps']), { kind: 'audit', permission: 'view' }).effect).toBe('allow');
  });

  it('does not let resource rules grant audit permissions', () => {
    const resourceOnly = compilePolicy(
      spec({ roles: { all: role([{ resource: 'app' }, { resource: 'shop' }]) }, grants: [{ role: 'all', users: [], groups: ['g'] }] }),
    );
    expect(decide(resourceOnly, principal(['g']), { kind: 'audit', permission: 'view' }).effect).toBe('deny');
  });
});

describe('decide: principals seen again', () => {
  const policy = compilePolicy(
    spec({
      roles: { viewer: role([{ resource: 'app' }]), blocked: role([], [{ resource: 'app' }]) },
      grants: [
        { role: 'viewer', users: [], groups: ['viewers'] },
        { role: 'blocked', users: [], groups: ['blocked'] },
      ],
    }),
  );

  it('honours a change to a principal that is not frozen', () => {
    const groups = ['viewers'];
    const who = { subject: 's', groups };
    expect(decide(policy, who, http('GET', '/')).effect).toBe('allow');
    groups.push('blocked');
    expect(decide(policy, who, http('GET', '/')).rule).toBe('blocked.deny[0]');
    groups.length = 0;
    expect(decide(policy, who, http('GET', '/')).reason).toBe('no-matching-allow');
  });

  it('decides a frozen principal the same every time, and per policy', () => {
    const who = Object.freeze({ subject: 's', groups: Object.freeze(['blocked', 'viewers']) });
    const other = compilePolicy(
      spec({ roles: { viewer: role([{ resource: 'app' }]) }, grants: [{ role: 'viewer', users: [], groups: ['viewers'] }] }),
    );
    for (let i = 0; i < 3; i++) {
      expect(decide(policy, who, http('GET', '/')).rule).toBe('blocked.deny[0]');
      expect(decide(other, who, http('GET', '/')).rule).toBe('viewer.allow[0]');
      expect(decide(policy, principal(['viewers']), http('GET', '/')).rule).toBe('viewer.allow[0]');
    }
  });
});
