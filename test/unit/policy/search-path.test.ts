/**
 * Bare table names and the search path: PostgreSQL looks in `pg_temp` and `pg_catalog` before the
 * login's `"$user", public`, so an unqualified `pg_roles` is `pg_catalog.pg_roles`. And names
 * attribute notation may call (`o.audit_touch` runs `audit_touch(o)`), which only deny rules read.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy, decide, explain, type Action, type RuleSpec } from '../../../src/policy/index.js';
import { principal, role, spec, sql } from './fixtures.js';

const who = principal(['g']);

function policyWith(allow: readonly RuleSpec[], deny: readonly RuleSpec[] = []) {
  return compilePolicy(spec({ roles: { r: role(allow, deny) }, grants: [{ role: 'r', users: [], groups: ['g'] }] }));
}

function withPossible(tables: readonly string[], functions: readonly string[], possibleFunctions: readonly string[]): Action {
  return { kind: 'sql', resource: 'shop', login: 'reader', statement: { class: 'read', tables, functions, possibleFunctions } };
}

describe('deny globs and bare table names', () => {
  const policy = policyWith([{ resource: 'shop' }], [{ resource: 'shop', tables: ['pg_catalog.*', 'secret.*'] }]);
  const rule = (tables: readonly string[]) => decide(policy, who, sql('read', tables)).rule;

  it('denies a bare pg_ name under a pg_catalog deny, since pg_catalog is searched first', () => {
    expect(rule(['pg_roles'])).toBe('r.deny[0]');
    expect(rule(['pg_catalog.pg_roles'])).toBe('r.deny[0]');
    expect(rule(['PG_AUTHID'])).toBe('r.deny[0]');
  });

  it('does not deny bare names no schema of the search path can hold under that deny', () => {
    expect(rule(['orders'])).toBe('r.allow[0]');
    expect(rule(['keys'])).toBe('r.allow[0]');
    expect(rule(['"pg_roles"'])).toBe('r.deny[0]');
    expect(rule(['sales.pg_roles'])).toBe('r.allow[0]');
  });

  it('denies a bare name under a public or pg_temp deny, and under any-schema globs', () => {
    const strict = policyWith(
      [{ resource: 'shop' }],
      [
        { resource: 'shop', tables: ['public.orders'] },
        { resource: 'shop', tables: ['pg_temp.scratch'] },
        { resource: 'shop', tables: ['*.payments'] },
        { resource: 'shop', tables: ['pg_*.x*'] },
      ],
    );
    const verdict = (tables: readonly string[]) => decide(strict, who, sql('read', tables)).rule;
    expect(verdict(['orders'])).toBe('r.deny[0]');
    expect(verdict(['scratch'])).toBe('r.deny[1]');
    expect(verdict(['payments'])).toBe('r.deny[2]');
    expect(verdict(['xs'])).toBe('r.deny[3]');
    expect(verdict(['sales.orders'])).toBe('r.allow[0]');
  });

  it('tells explain which glob denied a bare name', () => {
    const explained = explain(policy, who, sql('read', ['pg_roles']));
    expect(explained.decision.rule).toBe('r.deny[0]');
    expect(explained.rules[0]?.why).toEqual(['table pg_roles matches "pg_catalog.*"']);
  });
});

describe('allow globs and bare table names', () => {
  const allowed = (globs: readonly string[], tables: readonly string[]) =>
    decide(policyWith([{ resource: 'shop', tables: globs }]), who, sql('read', tables)).effect === 'allow';

  it('counts a bare name as public.<name>; a temporary table of the same name is the session\'s own', () => {
    expect(allowed(['public.*'], ['orders'])).toBe(true);
    expect(allowed(['public.orders'], ['orders'])).toBe(true);
    expect(allowed(['sales.*'], ['orders'])).toBe(false);
  });

  it('needs a bare pg_ name allowed in pg_catalog and in public, by one glob or several', () => {
    expect(allowed(['public.*'], ['pg_roles'])).toBe(false);
    expect(allowed(['pg_catalog.*'], ['pg_roles'])).toBe(false);
    expect(allowed(['public.*', 'pg_catalog.*'], ['pg_roles'])).toBe(true);
    expect(allowed(['pg_roles'], ['pg_roles'])).toBe(true);
    expect(allowed(['*.pg_*'], ['pg_roles'])).toBe(true);
    expect(allowed(['pg_catalog.*'], ['pg_catalog.pg_roles'])).toBe(true);
  });

  it('says which bare name an allow rule failed on', () => {
    const explained = explain(policyWith([{ resource: 'shop', tables: ['public.*'] }]), who, sql('read', ['orders', 'pg_roles']));
    expect(explained.decision.effect).toBe('deny');
    expect(explained.rules[0]?.why).toEqual(['table pg_roles matches none of "public.*"']);
  });
});

describe('possible functions (attribute notation)', () => {
  const policy = policyWith(
    [{ resource: 'shop', functions: ['lower'] }],
    [{ resource: 'shop', functions: ['audit_touch', 'admin.reset_*'] }],
  );

  it('are denied by function deny globs without a schema part', () => {
    expect(decide(policy, who, withPossible(['orders'], [], ['audit_touch'])).rule).toBe('r.deny[0]');
    expect(decide(policy, who, withPossible(['orders'], [], ['id', 'AUDIT_TOUCH'])).rule).toBe('r.deny[0]');
    expect(explain(policy, who, withPossible(['orders'], [], ['audit_touch'])).rules[0]?.why).toEqual(['function audit_touch matches "audit_touch"']);
  });

  it('are not denied by schema-qualified deny globs, whose schema they cannot be known to be in', () => {
    const qualified = policyWith([{ resource: 'shop' }], [{ resource: 'shop', functions: ['pg_catalog.*', 'admin.reset_*'] }]);
    expect(decide(qualified, who, withPossible(['orders'], [], ['id'])).rule).toBe('r.allow[0]');
    expect(decide(qualified, who, withPossible(['orders'], [], ['reset_stats', 'pg_terminate_backend'])).rule).toBe('r.allow[0]');
    const trace = explain(qualified, who, withPossible(['orders'], [], ['id'])).rules[0];
    expect(trace?.matched).toBe(false);
    expect(trace?.why).toEqual(['no function used (id) matches "pg_catalog.*", "admin.reset_*"']);
    expect(decide(qualified, who, withPossible(['orders'], ['pg_catalog.pg_sleep'], ['id'])).rule).toBe('r.deny[0]');
    expect(decide(qualified, who, withPossible(['orders'], ['reset_stats'], [])).rule).toBe('r.deny[0]');
  });

  it('are denied by a schema-qualified deny glob whose schema part is *', () => {
    const anySchema = policyWith([{ resource: 'shop' }], [{ resource: 'shop', functions: ['*.audit_*'] }]);
    expect(decide(anySchema, who, withPossible(['orders'], [], ['id', 'audit_touch'])).rule).toBe('r.deny[0]');
    expect(explain(anySchema, who, withPossible(['orders'], [], ['audit_touch'])).rules[0]?.why).toEqual(['function audit_touch matches "*.audit_*"']);
    expect(decide(anySchema, who, withPossible(['orders'], [], ['id'])).rule).toBe('r.allow[0]');
  });

  it('are never required by allow rules: plain columns stay allowed', () => {
    expect(decide(policy, who, withPossible(['orders'], ['lower'], ['id', 'total'])).rule).toBe('r.allow[0]');
    expect(decide(policy, who, withPossible(['orders'], [], [])).rule).toBe('r.allow[0]');
  });

  it('count as none when absent (facts built by hand, a prepared statement\'s)', () => {
    expect(decide(policy, who, sql('read', ['orders'])).rule).toBe('r.allow[0]');
  });
});
