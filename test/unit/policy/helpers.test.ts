import { describe, expect, it } from 'vitest';
import { compilePolicy, decide, explain, grantedLogins, rolesOf } from '../../../src/policy/index.js';
import { http, pgResource, principal, role, spec, sql } from './fixtures.js';

const policy = compilePolicy(
  spec({
    resources: [
      { name: 'app', kind: 'http', logins: [] },
      pgResource('shop', ['reader', 'writer', 'owner']),
      pgResource('ledger', ['viewer', 'clerk']),
    ],
    roles: {
      engineer: role(
        [
          { resource: 'app', methods: ['GET', 'HEAD'], paths: ['/app/**'] },
          { resource: 'shop', logins: ['reader'], statements: ['read'], tables: ['public.*'] },
        ],
        [{ resource: 'shop', functions: ['pg_terminate_backend', 'dblink*'] }],
      ),
      dba: role([{ resource: 'shop', logins: ['owner', 'writer'] }, { resource: 'ledger' }], [{ resource: 'ledger', logins: ['clerk'] }]),
      auditor: role([{ audit: ['view'] }]),
      unused: role([{ resource: 'app' }]),
    },
    grants: [
      { role: 'dba', users: ['Bob@Example.com'], groups: [] },
      { role: 'engineer', users: [], groups: ['engineering', 'oncall'] },
      { role: 'auditor', users: ['sub-bob'], groups: ['security'] },
    ],
  }),
);

const alice = principal(['engineering']);
const bob = principal(['oncall', 'security'], 'bob@example.com', 'sub-bob');

describe('rolesOf', () => {
  it('lists held roles once each, in spec order', () => {
    expect(rolesOf(policy, alice)).toEqual(['engineer']);
    expect(rolesOf(policy, bob)).toEqual(['engineer', 'dba', 'auditor']);
    expect(rolesOf(policy, principal([], 'eve@example.com', 'sub-eve'))).toEqual([]);
  });
});

describe('grantedLogins', () => {
  it('lists the logins held allow rules can use, least privileged first', () => {
    expect(grantedLogins(policy, alice, 'shop')).toEqual(['reader']);
    expect(grantedLogins(policy, bob, 'shop')).toEqual(['reader', 'writer', 'owner']);
    expect(grantedLogins(policy, principal([], 'bob@example.com', 'x'), 'shop')).toEqual(['writer', 'owner']);
  });

  it('leaves out logins an unconditional deny shuts, and answers [] for http, unknown or unheld resources', () => {
    expect(grantedLogins(policy, bob, 'ledger')).toEqual(['viewer']);
    expect(grantedLogins(policy, alice, 'ledger')).toEqual([]);
    expect(grantedLogins(policy, bob, 'app')).toEqual([]);
    expect(grantedLogins(policy, bob, 'nope')).toEqual([]);
  });
});

describe('explain', () => {
  it('names the roles held and the grants they came through', () => {
    const { roles } = explain(policy, bob, http('GET', '/app/'));
    expect(roles).toEqual([
      { role: 'engineer', via: [{ grant: 1, kind: 'group', name: 'oncall' }] },
      { role: 'dba', via: [{ grant: 0, kind: 'user', name: 'Bob@Example.com' }] },
      {
        role: 'auditor',
        via: [
          { grant: 2, kind: 'user', name: 'sub-bob' },
          { grant: 2, kind: 'group', name: 'security' },
        ],
      },
    ]);
  });

  it('traces deny rules then allow rules, with why each matched or not', () => {
    const action = sql('read', ['public.orders', 'hr.salaries'], ['now'], 'reader');
    const explanation = explain(policy, bob, action);
    expect(explanation.decision).toEqual(decide(policy, bob, action));
    expect(explanation.decision.reason).toBe('no-matching-allow');
    expect(explanation.rules).toEqual([
      {
        rule: 'engineer.deny[0]',
        role: 'engineer',
        effect: 'deny',
        matched: false,
        why: ['no function used (now) matches "pg_terminate_backend", "dblink*"'],
      },
      {
        rule: 'engineer.allow[1]',
        role: 'engineer',
        effect: 'allow',
        matched: false,
        why: ['table hr.salaries matches none of "public.*"'],
      },
      {
        rule: 'dba.allow[0]',
        role: 'dba',
        effect: 'allow',
        matched: false,
        why: ['login reader is not one of owner, writer'],
      },
    ]);
  });

  it('says which condition made a rule match', () => {
    const denied = explain(policy, alice, sql('read', ['orders'], ['pg_catalog.pg_terminate_backend']));
    expect(denied.decision.rule).toBe('engineer.deny[0]');
    expect(denied.rules[0]).toMatchObject({
      matched: true,
      why: ['function pg_catalog.pg_terminate_backend matches "pg_terminate_backend"'],
    });
    const allowed = explain(policy, alice, http('get', '/app/x'));
    expect(allowed.decision.rule).toBe('engineer.allow[0]');
    expect(allowed.rules).toEqual([
      {
        rule: 'engineer.allow[0]',
        role: 'engineer',
        effect: 'allow',
        matched: true,
        why: ['method GET is one of GET, HEAD', 'path /app/x matches "/app/**"'],
      },
    ]);
    const open = explain(policy, bob, sql('write', ['x'], [], 'viewer', 'ledger'));
    expect(open.rules.map((r) => [r.rule, r.matched, r.why])).toEqual([
      ['dba.deny[0]', false, ['login viewer is not one of clerk']],
      ['dba.allow[1]', true, ['no conditions: the rule covers everything on ledger']],
    ]);
  });

  it('lists no rules when the decision comes before any rule', () => {
    for (const action of [http('GET', '/', 'nope'), http('GET', '/', 'shop'), sql('read', [], [], 'root')]) {
      const explanation = explain(policy, bob, action);
      expect(explanation.rules).toEqual([]);
      expect(explanation.decision).toEqual(decide(policy, bob, action));
    }
  });

  it('says when a deny rule matched only once letter case or a trailing slash was folded', () => {
    const folding = compilePolicy(
      spec({
        roles: { r: role([{ resource: 'app', paths: ['/app/**'] }], [{ resource: 'app', paths: ['/app/secret', '/app/admin/**'] }]) },
        grants: [{ role: 'r', users: [], groups: ['g'] }],
      }),
    );
    const whyOf = (path: string) => explain(folding, principal(['g']), http('GET', path)).rules[0];
    expect(whyOf('/app/secret')).toMatchObject({ rule: 'r.deny[0]', matched: true, why: ['path /app/secret matches "/app/secret"'] });
    expect(whyOf('/app/secret/')).toMatchObject({
      matched: true,
      why: ['path /app/secret/ matches "/app/secret" only once its trailing "/" is dropped, as deny rules compare paths'],
    });
    expect(whyOf('/app/Secret')).toMatchObject({
      matched: true,
      why: ['path /app/Secret matches "/app/secret" only once letter case is ignored, as deny rules compare paths'],
    });
    expect(whyOf('/app/Secret/')).toMatchObject({
      matched: true,
      why: ['path /app/Secret/ matches "/app/secret" only once letter case is ignored and its trailing "/" is dropped, as deny rules compare paths'],
    });
    expect(whyOf('/app/ADMIN/x/')).toMatchObject({
      matched: true,
      why: ['path /app/ADMIN/x/ matches "/app/admin/**" only once letter case is ignored, as deny rules compare paths'],
    });
    expect(whyOf('/app/public')).toMatchObject({ matched: false, why: ['path /app/public matches none of "/app/secret", "/app/admin/**"'] });
    expect(explain(folding, principal(['g']), http('GET', '/app/Secret')).decision).toEqual({ effect: 'deny', rule: 'r.deny[0]', reason: 'denied-by-rule' });
  });

  it('explains audit permissions', () => {
    const explanation = explain(policy, bob, { kind: 'audit', permission: 'export' });
    expect(explanation.decision.reason).toBe('no-matching-allow');
    expect(explanation.rules).toEqual([
      { rule: 'auditor.allow[0]', role: 'auditor', effect: 'allow', matched: false, why: ['permission export is not one of view'] },
    ]);
  });
});
