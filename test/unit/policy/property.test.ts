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

  it('a deny that matches a path also matches it in other letter case and with one more trailing slash', () => {
    const lettersAndSlash = fc
      .array(fc.constantFrom('app', 'Admin', 'x', 'v1', 'a%2Fb', '~u', 'Q'), { minLength: 1, maxLength: 4 })
      .chain((parts) => fc.tuple(fc.constant(`/${parts.join('/')}`), fc.boolean()))
      .map(([path, slash]) => (slash ? `${path}/` : path));
    const randomCase = (path: string, flips: readonly boolean[]): string =>
      Array.from(path, (ch, i) => (flips[i % flips.length] === true ? ch.toUpperCase() : ch.toLowerCase())).join('');
    fc.assert(
      fc.property(
        someOf(pathGlob),
        optional(someOf(method)),
        method,
        lettersAndSlash,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        (paths, methods, verb, path, flips) => {
          const denyRule: RuleSpec = { resource: 'app', paths, ...(methods === undefined ? {} : { methods }) };
          const policy = compilePolicy(specOf([{ allow: [{ resource: 'app' }], deny: [denyRule] }, { allow: [], deny: [] }, { allow: [], deny: [] }, { allow: [], deny: [] }]));
          const principal: Principal = { subject: 's', groups: ['g0'] };
          const at = (p: string) => decide(policy, principal, { kind: 'http', resource: 'app', method: verb, path: p });
          fc.pre(at(path).effect === 'deny');
          const unslashed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
          for (const variant of [path.toUpperCase(), path.toLowerCase(), randomCase(path, flips), `${unslashed}/`, `${unslashed.toUpperCase()}/`]) {
            expect(at(variant), variant).toEqual(at(path));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('folding only ever adds denials: what a policy denies without it, it denies with it', () => {
    fc.assert(
      fc.property(roles, groups, requestPath, method, fc.boolean(), (roleSpecs, held, path, verb, slash) => {
        const principal: Principal = { subject: 's', groups: held };
        const policy = compilePolicy(specOf(roleSpecs));
        // The same policy with every deny rule's glob spelled in upper case: folding makes it deny
        // at least everything the original denies by rule.
        const upper = compilePolicy(
          specOf(roleSpecs.map((r) => ({ allow: r.allow, deny: r.deny.map((d) => (d.paths === undefined ? d : { ...d, paths: d.paths.map((g) => g.toUpperCase()) })) }))),
        );
        const act: Action = { kind: 'http', resource: 'app', method: verb, path: slash ? `${path}/` : path };
        const decision = decide(policy, principal, act);
        if (decision.reason === 'denied-by-rule') expect(decide(upper, principal, act).reason).toBe('denied-by-rule');
        if (decide(upper, principal, act).effect === 'allow') expect(decision.effect).toBe('allow');
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
