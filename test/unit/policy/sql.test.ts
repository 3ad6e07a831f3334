import { describe, expect, it } from 'vitest';
import { compilePolicy, decide, type RuleSpec } from '../../../src/policy/index.js';
import { principal, role, spec, sql } from './fixtures.js';

const who = principal(['g']);

function policyWith(allow: readonly RuleSpec[], deny: readonly RuleSpec[] = []) {
  return compilePolicy(spec({ roles: { r: role(allow, deny) }, grants: [{ role: 'r', users: [], groups: ['g'] }] }));
}

/** Whether an allow rule with these table globs allows a read touching these tables. */
function tablesAllowed(globs: readonly string[], tables: readonly string[]): boolean {
  return decide(policyWith([{ resource: 'shop', tables: globs }]), who, sql('read', tables)).effect === 'allow';
}

describe('table globs', () => {
  it('treats a bare table name from the SQL as public.<name>', () => {
    expect(tablesAllowed(['public.orders'], ['orders'])).toBe(true);
    expect(tablesAllowed(['public.*'], ['orders'])).toBe(true);
    expect(tablesAllowed(['sales.*'], ['orders'])).toBe(false);
  });

  it('matches a glob without a dot against the table name in any schema', () => {
    expect(tablesAllowed(['orders'], ['sales.orders'])).toBe(true);
    expect(tablesAllowed(['orders'], ['orders'])).toBe(true);
    expect(tablesAllowed(['order*'], ['archive.orders_2024'])).toBe(true);
    expect(tablesAllowed(['orders'], ['sales.orders_old'])).toBe(false);
  });

  it('never lets * cross the dot; *.* and ** mean any table', () => {
    expect(tablesAllowed(['public*'], ['public.orders'])).toBe(false);
    expect(tablesAllowed(['*'], ['hr.salaries'])).toBe(true);
    expect(tablesAllowed(['*.*'], ['hr.salaries', 'orders', '"Odd.Schema"."T"'])).toBe(true);
    expect(tablesAllowed(['**'], ['hr.salaries', 'orders'])).toBe(true);
    expect(tablesAllowed(['public.o*s'], ['public.orders'])).toBe(true);
    expect(tablesAllowed(['public.o*s'], ['public.order'])).toBe(false);
  });

  it('compares bare glob parts case-insensitively and quoted ones exactly', () => {
    expect(tablesAllowed(['Public.Orders'], ['public.orders'])).toBe(true);
    expect(tablesAllowed(['public.orders'], ['public.Orders'])).toBe(true);
    expect(tablesAllowed(['public."Orders"'], ['public.Orders'])).toBe(true);
    expect(tablesAllowed(['public."Orders"'], ['public.orders'])).toBe(false);
    expect(tablesAllowed(['"Sales".*'], ['sales.orders'])).toBe(false);
    expect(tablesAllowed(['"Sales".*'], ['Sales.orders'])).toBe(true);
    expect(tablesAllowed(['"Sal*"'], ['x.Sales'])).toBe(true);
    expect(tablesAllowed(['"Sal*"'], ['x.sales'])).toBe(false);
  });

  it('reads quoted parts of table names, dots and doubled quotes included', () => {
    expect(tablesAllowed(['"my.schema".t'], ['"my.schema".t'])).toBe(true);
    expect(tablesAllowed(['"my.schema".t'], ['my.schema.t'])).toBe(false);
    expect(tablesAllowed(['public."a""b"'], ['"a""b"'])).toBe(true);
    expect(tablesAllowed(['public.orders'], ['shop.public.orders'])).toBe(true);
  });

  it('requires every table to match for an allow rule', () => {
    expect(tablesAllowed(['public.*'], ['orders', 'public.items'])).toBe(true);
    expect(tablesAllowed(['public.*'], ['orders', 'hr.salaries'])).toBe(false);
    expect(tablesAllowed(['public.*', 'hr.salaries'], ['orders', 'hr.salaries'])).toBe(true);
    expect(tablesAllowed(['public.*'], [])).toBe(true);
  });

  it('treats a table name it cannot split as matched by no allow glob and by every deny glob', () => {
    expect(tablesAllowed(['*'], ['"unterminated'])).toBe(false);
    const policy = policyWith([{ resource: 'shop' }], [{ resource: 'shop', tables: ['nothing_like_it'] }]);
    expect(decide(policy, who, sql('read', ['a..b'])).rule).toBe('r.deny[0]');
  });

  it('lets an allow rule with tables: [] allow only statements that touch no table', () => {
    const policy = policyWith([{ resource: 'shop', tables: [] }]);
    expect(decide(policy, who, sql('read', [])).effect).toBe('allow');
    expect(decide(policy, who, sql('read', ['orders'])).effect).toBe('deny');
  });

  it('denies when any table matches a deny rule', () => {
    const policy = policyWith([{ resource: 'shop' }], [{ resource: 'shop', tables: ['hr.*', 'secrets'] }]);
    expect(decide(policy, who, sql('read', ['orders', 'hr.salaries'])).rule).toBe('r.deny[0]');
    expect(decide(policy, who, sql('read', ['vault.secrets'])).rule).toBe('r.deny[0]');
    expect(decide(policy, who, sql('read', ['orders'])).rule).toBe('r.allow[0]');
    expect(decide(policy, who, sql('read', [])).rule).toBe('r.allow[0]');
  });
});

describe('function globs', () => {
  const policy = policyWith(
    [{ resource: 'shop' }],
    [{ resource: 'shop', functions: ['pg_terminate_backend', 'dblink*', 'admin.reset_*'] }],
  );
  const withFunctions = (functions: readonly string[]) => decide(policy, who, sql('read', ['orders'], functions));

  it('matches a glob without a dot against the last name part, in any schema, case-insensitively', () => {
    expect(withFunctions(['pg_terminate_backend']).rule).toBe('r.deny[0]');
    expect(withFunctions(['pg_catalog.pg_terminate_backend']).rule).toBe('r.deny[0]');
    expect(withFunctions(['PG_Catalog.PG_TERMINATE_BACKEND']).rule).toBe('r.deny[0]');
    expect(withFunctions(['public.dblink_connect']).rule).toBe('r.deny[0]');
    expect(withFunctions(['now', 'lower']).effect).toBe('allow');
  });

  it('denies on any one function', () => {
    expect(withFunctions(['now', 'dblink']).rule).toBe('r.deny[0]');
  });

  it('matches a schema-qualified deny glob against a bare function, whose schema is not known', () => {
    expect(withFunctions(['reset_stats']).rule).toBe('r.deny[0]');
    expect(withFunctions(['admin.reset_stats']).rule).toBe('r.deny[0]');
    expect(withFunctions(['other.reset_stats']).effect).toBe('allow');
  });

  it('requires every function to match for an allow rule; a bare function passes only a *-schema glob', () => {
    const allowing = policyWith([{ resource: 'shop', functions: ['lower', 'pg_catalog.count', '*.now'] }]);
    const verdict = (functions: readonly string[]) => decide(allowing, who, sql('read', [], functions)).effect;
    expect(verdict(['lower', 'public.lower'])).toBe('allow');
    expect(verdict(['pg_catalog.count'])).toBe('allow');
    expect(verdict(['count'])).toBe('deny');
    expect(verdict(['now', 'app.now'])).toBe('allow');
    expect(verdict(['lower', 'upper'])).toBe('deny');
    expect(verdict([])).toBe('allow');
  });

  it('lets an allow rule with functions: [] allow only statements that call no function', () => {
    const none = policyWith([{ resource: 'shop', functions: [] }]);
    expect(decide(none, who, sql('read', ['orders'])).effect).toBe('allow');
    expect(decide(none, who, sql('read', ['orders'], ['now'])).effect).toBe('deny');
  });

  it('needs both a table and a function to match when a deny rule has both', () => {
    const both = policyWith([{ resource: 'shop' }], [{ resource: 'shop', tables: ['hr.*'], functions: ['lo_*'] }]);
    expect(decide(both, who, sql('read', ['hr.files'], ['lo_export'])).effect).toBe('deny');
    expect(decide(both, who, sql('read', ['hr.files'], ['now'])).effect).toBe('allow');
    expect(decide(both, who, sql('read', ['orders'], ['lo_export'])).effect).toBe('allow');
  });
});

describe('statement classes and logins', () => {
  const policy = policyWith(
    [
      { resource: 'shop', logins: ['reader'], statements: ['read'], tables: ['public.*'] },
      { resource: 'shop', logins: ['writer'], statements: ['read', 'write'] },
    ],
    [{ resource: 'shop', logins: ['owner'] }, { resource: 'shop', statements: ['ddl', 'admin'] }],
  );

  it('allows only the listed statement classes with the listed logins', () => {
    expect(decide(policy, who, sql('read', ['orders'], [], 'reader')).rule).toBe('r.allow[0]');
    expect(decide(policy, who, sql('write', ['orders'], [], 'reader')).reason).toBe('no-matching-allow');
    expect(decide(policy, who, sql('write', ['orders'], [], 'writer')).rule).toBe('r.allow[1]');
    expect(decide(policy, who, sql('read', ['hr.x'], [], 'writer')).rule).toBe('r.allow[1]');
    expect(decide(policy, who, sql('read', ['hr.x'], [], 'reader')).effect).toBe('deny');
  });

  it('denies by login and by statement class', () => {
    expect(decide(policy, who, sql('read', ['orders'], [], 'owner')).rule).toBe('r.deny[0]');
    expect(decide(policy, who, sql('ddl', ['orders'], [], 'writer')).rule).toBe('r.deny[1]');
    expect(decide(policy, who, sql('admin', [], [], 'reader')).rule).toBe('r.deny[1]');
  });

  it('denies everything on a resource with a deny rule that names only the resource', () => {
    const shut = policyWith([{ resource: 'shop' }], [{ resource: 'shop' }]);
    expect(decide(shut, who, sql('read', [], [], 'reader')).rule).toBe('r.deny[0]');
    expect(decide(shut, who, sql('write', ['orders'], ['now'], 'writer')).rule).toBe('r.deny[0]');
  });
});
