import { describe, expect, it } from 'vitest';
import { isTollgateError } from '../../../src/core/index.js';
import { compilePolicy, decide, type PolicySpec, type RuleSpec } from '../../../src/policy/index.js';
import { http, httpResource, pgResource, principal, role, spec } from './fixtures.js';

/** The `{ path, message }` problems compilePolicy reports for a spec. */
function problemsOf(input: PolicySpec): { path: string; message: string }[] {
  try {
    compilePolicy(input);
  } catch (error) {
    if (!isTollgateError(error, 'TG_ERR_POLICY_INVALID')) throw error;
    return error.details.problems as { path: string; message: string }[];
  }
  throw new Error('expected TG_ERR_POLICY_INVALID');
}

function ruleProblems(rule: RuleSpec, effect: 'allow' | 'deny' = 'allow'): { path: string; message: string }[] {
  const rules = { allow: effect === 'allow' ? [rule] : [], deny: effect === 'deny' ? [rule] : [] };
  return problemsOf(spec({ roles: { r: rules }, grants: [{ role: 'r', users: [], groups: ['g'] }] }));
}

describe('compilePolicy validation', () => {
  it('rejects a grant of an unknown role, naming it and what to do', () => {
    let thrown: unknown;
    try {
      compilePolicy(spec({ roles: {}, grants: [{ role: 'ghost', users: ['a@example.com'], groups: [] }] }));
    } catch (error) {
      thrown = error;
    }
    expect(isTollgateError(thrown, 'TG_ERR_POLICY_INVALID')).toBe(true);
    expect((thrown as Error).message).toContain('grants[0].role: role "ghost" is not defined under roles');
  });

  it('rejects a grant naming nobody', () => {
    expect(
      problemsOf(spec({ roles: { r: role() }, grants: [{ role: 'r', users: [], groups: [] }] })).map((p) => p.path),
    ).toEqual(['grants[0]']);
  });

  it('rejects an unknown resource in a rule', () => {
    expect(ruleProblems({ resource: 'shopp' })).toEqual([
      { path: 'roles.r.allow[0].resource', message: 'resource "shopp" is not defined under resources' },
    ]);
  });

  it('rejects fields of the wrong resource kind', () => {
    expect(ruleProblems({ resource: 'app', tables: ['*'], logins: ['reader'] }).map((p) => p.path)).toEqual([
      'roles.r.allow[0].logins',
      'roles.r.allow[0].tables',
    ]);
    const onPostgres = ruleProblems({ resource: 'shop', methods: ['GET'], paths: ['/**'] }, 'deny');
    expect(onPostgres.map((p) => p.path)).toEqual(['roles.r.deny[0].methods', 'roles.r.deny[0].paths']);
    expect(onPostgres[0]?.message).toContain('"shop" is a postgres resource');
  });

  it('rejects a login the resource does not have, listing the ones it has', () => {
    expect(ruleProblems({ resource: 'shop', logins: ['reader', 'root'] })).toEqual([
      {
        path: 'roles.r.allow[0].logins[1]',
        message: '"root" is not a login of resource "shop"; it has reader, writer, owner',
      },
    ]);
  });

  it('rejects unknown statement classes, audit permissions, fields and methods', () => {
    expect(ruleProblems({ resource: 'shop', statements: ['read', 'select' as 'read'] })[0]?.path).toBe(
      'roles.r.allow[0].statements[1]',
    );
    expect(ruleProblems({ audit: ['view', 'delete' as 'view'] })[0]?.path).toBe('roles.r.allow[0].audit[1]');
    expect(ruleProblems({ resource: 'app', path: ['/'] } as RuleSpec)[0]?.message).toBe('unknown rule field "path"');
    expect(ruleProblems({ resource: 'app', methods: ['GET X'] })[0]?.path).toBe('roles.r.allow[0].methods[0]');
  });

  it('rejects audit rules with a resource and rules with neither', () => {
    expect(ruleProblems({ audit: ['view'], resource: 'app' })[0]?.path).toBe('roles.r.allow[0].resource');
    expect(ruleProblems({})[0]?.path).toBe('roles.r.allow[0].resource');
  });

  it('rejects empty lists, except tables and functions of allow rules', () => {
    expect(ruleProblems({ resource: 'app', methods: [] })[0]?.path).toBe('roles.r.allow[0].methods');
    expect(ruleProblems({ resource: 'shop', tables: [] }, 'deny')[0]?.path).toBe('roles.r.deny[0].tables');
    expect(ruleProblems({ resource: 'shop', functions: [] }, 'deny')[0]?.path).toBe('roles.r.deny[0].functions');
    expect(() =>
      compilePolicy(spec({ roles: { r: role([{ resource: 'shop', tables: [], functions: [] }]) }, grants: [] })),
    ).not.toThrow();
  });

  it('rejects malformed globs', () => {
    expect(ruleProblems({ resource: 'app', paths: ['/ok/**', 'relative/*'] })[0]?.path).toBe('roles.r.allow[0].paths[1]');
    expect(ruleProblems({ resource: 'shop', tables: ['a.b.c'] })[0]?.message).toContain('more than two parts');
    expect(ruleProblems({ resource: 'shop', functions: ['"open'] })[0]?.path).toBe('roles.r.allow[0].functions[0]');
    expect(ruleProblems({ resource: 'shop', tables: ['a..b'] })[0]?.path).toBe('roles.r.allow[0].tables[0]');
  });

  it('rejects duplicate resources and logins, and logins on http resources', () => {
    const problems = problemsOf({
      resources: [httpResource('app'), httpResource('app'), pgResource('db', ['a', 'a']), { ...httpResource('web'), logins: ['x'] }],
      roles: {},
      grants: [],
    });
    expect(problems.map((p) => p.path)).toEqual(['resources[1].name', 'resources[2].logins', 'resources[3].logins']);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf(
      spec({
        roles: { a: role([{ resource: 'nope' }], [{ resource: 'app', tables: ['x'] }]) },
        grants: [{ role: 'b', users: ['u'], groups: [] }],
      }),
    );
    expect(problems.map((p) => p.path)).toEqual(['roles.a.deny[0].tables', 'roles.a.allow[0].resource', 'grants[0].role']);
  });

  it('keeps its own frozen copy of the spec', () => {
    const rules: RuleSpec[] = [{ resource: 'app', methods: ['GET'] }];
    const input = spec({ roles: { r: { allow: rules, deny: [] } }, grants: [{ role: 'r', users: [], groups: ['g'] }] });
    const policy = compilePolicy(input);
    rules.push({ resource: 'app' });
    expect(decide(policy, principal(['g']), http('POST', '/')).effect).toBe('deny');
    expect(policy.roles).toEqual(['r']);
    expect(Object.isFrozen(policy.resources)).toBe(true);
  });
});
