import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/core/index.js';
import {
  compilePolicy,
  decide,
  explain,
  rolesOf,
  type Action,
  type PolicySpec,
  type RuleSpec,
} from '../../../src/policy/index.js';
import { httpResource, pgResource } from './fixtures.js';

const segment = fc.constantFrom('app', 'api', 'v1', 'x', 'Admin', 'a%2Fb', '~u');
const requestPath = fc.array(segment, { maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const pathGlob = fc
  .array(fc.constantFrom('app', 'api', 'v1', 'x', '*', '**', 'a*', 'Admin'), { maxLength: 4 })
  .map((parts) => `/${parts.join('/')}`);
const method = fc.constantFrom('GET', 'POST', 'DELETE', 'head');
const table = fc.constantFrom('orders', 'public.orders', 'hr.salaries', 'public.Items', '"x.y".z', 'sales.orders_2024');
const tableGlob = fc.constantFrom('*', 'orders', 'public.*', 'hr.*', '"Items"', 'PUBLIC.items', 'order*', '*.*');
const fn = fc.constantFrom('now', 'pg_catalog.pg_terminate_backend', 'dblink_exec', 'public.lower', 'lo_import');
const fnGlob = fc.constantFrom('now', 'pg_terminate_backend', 'dblink*', 'pg_catalog.*', 'lo_*', '*.lower');
const login = fc.constantFrom('reader', 'writer');
const statementClass = fc.constantFrom('read', 'write', 'ddl', 'admin' as const);

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const someOf = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: 1, maxLength: 3 });

const httpRule: fc.Arbitrary<RuleSpec> = fc.record(
  { resource: fc.constant('app'), methods: optional(someOf(method)), paths: optional(someOf(pathGlob)) },
  { requiredKeys: ['resource'] },
);
const sqlRule: fc.Arbitrary<RuleSpec> = fc.record(
  {
    resource: fc.constant('shop'),
    logins: optional(someOf(login)),
    statements: optional(someOf(statementClass)),
    tables: optional(someOf(tableGlob)),
    functions: optional(someOf(fnGlob)),
  },
  { requiredKeys: ['resource'] },
);
const auditRule: fc.Arbitrary<RuleSpec> = fc.record({ audit: someOf(fc.constantFrom('view', 'export' as const)) });
const rule = fc.oneof(httpRule, sqlRule, auditRule);

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant('http' as const), resource: fc.constant('app'), method, path: requestPath }),
  fc.record({
    kind: fc.constant('sql' as const),
    resource: fc.constant('shop'),
    login,
    statement: fc.record({
      class: statementClass,
      tables: fc.array(table, { maxLength: 3 }),
      functions: fc.array(fn, { maxLength: 2 }),
    }),
  }),
  fc.record({ kind: fc.constant('audit' as const), permission: fc.constantFrom('view', 'export' as const) }),
);

const roleNames = ['r0', 'r1', 'r2', 'r3'];
const roles = fc.tuple(
  ...roleNames.map(() =>
    fc.record({ allow: fc.array(rule, { maxLength: 4 }), deny: fc.array(rule, { maxLength: 2 }) }),
  ),
);
const groups = fc.subarray(['g0', 'g1', 'g2', 'g3']);

function specOf(roleSpecs: readonly { allow: RuleSpec[]; deny: RuleSpec[] }[]): PolicySpec {
  return {
    resources: [httpResource('app'), pgResource('shop', ['reader', 'writer'])],
    roles: Object.fromEntries(roleNames.map((name, i) => [name, roleSpecs[i] as { allow: RuleSpec[]; deny: RuleSpec[] }])),
    grants: roleNames.map((name, i) => ({ role: name, users: [], groups: [`g${i}`] })),
  };
}

describe('policy properties', () => {
  it('a matching deny rule always wins over any allow, in any role', () => {
    fc.assert(
      fc.property(roles, groups, action, rule, fc.nat({ max: 3 }), (roleSpecs, held, act, denyRule, denyRole) => {
        const principal: Principal = { subject: 's', groups: [...new Set([...held, `g${denyRole}`])] };
        const alone = compilePolicy(
          specOf(roleNames.map((_, i) => ({ allow: [], deny: i === denyRole ? [denyRule] : [] }))),
        );
        fc.pre(decide(alone, principal, act).reason === 'denied-by-rule');
        // Every role also allows everything, so only deny precedence can explain a deny.
        const permissive = roleSpecs.map((r, i) => ({
          allow: [{ resource: 'app' }, { resource: 'shop' }, { audit: ['view', 'export'] as const }, ...r.allow],
          deny: i === denyRole ? [...r.deny, denyRule] : r.deny,
        }));
        const decision = decide(compilePolicy(specOf(permissive)), principal, act);
        expect(decision.effect).toBe('deny');
        expect(decision.reason).toBe('denied-by-rule');
        expect(decision.rule).toMatch(/^r\d\.deny\[\d\]$/);
      }),
      { numRuns: 300 },
    );
  });

  it('decide, explain and rolesOf agree', () => {
    fc.assert(
      fc.property(roles, groups, action, (roleSpecs, held, act) => {
        const principal: Principal = { subject: 's', groups: held };
        const policy = compilePolicy(specOf(roleSpecs));
        const decision = decide(policy, principal, act);
        const explanation = explain(policy, principal, act);
        expect(explanation.decision).toEqual(decision);
        expect(explanation.roles.map((r) => r.role)).toEqual(rolesOf(policy, principal));
        const firstDeny = explanation.rules.find((t) => t.effect === 'deny' && t.matched);
        const firstAllow = explanation.rules.find((t) => t.effect === 'allow' && t.matched);
        expect(decision.rule).toBe(firstDeny?.rule ?? firstAllow?.rule ?? null);
        expect(decision.effect).toBe(firstDeny === undefined && firstAllow !== undefined ? 'allow' : 'deny');
      }),
      { numRuns: 400 },
    );
  });
});
