import type { Principal } from '../core/index.js';
import {
  policyIndex,
  type AuditRule,
  type CompiledPolicy,
  type HttpRule,
  type PolicyIndex,
  type RoleRules,
  type RuleBucket,
  type SqlRule,
} from './compile.js';
import { decide } from './decide.js';
import {
  firstDeniedName,
  firstDeniedPossibleName,
  firstDenyingGlob,
  firstFoldedPathMatch,
  firstPathMatch,
  firstUnallowedName,
  selectRoleRules,
} from './match.js';
import type { PathGlob } from './path-glob.js';
import type { SqlGlob, SqlName } from './sql-names.js';
import type { Action, Explanation, GrantVia, HeldRole, RuleTrace, StatementFacts } from './types.js';

interface Clause {
  readonly ok: boolean;
  readonly text: string;
}

function globList(globs: readonly (PathGlob | SqlGlob)[]): string {
  return globs.map((glob) => JSON.stringify(glob.source)).join(', ');
}

function listed(what: string, value: string, set: ReadonlySet<string>): Clause {
  const ok = set.has(value);
  return { ok, text: `${what} ${value} is ${ok ? '' : 'not '}one of ${[...set].join(', ')}` };
}

/** What a deny rule's glob needed folded to match the path, in words. */
function foldingNeeded(glob: PathGlob, path: string): string {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (trimmed !== path && glob.test(trimmed)) return 'its trailing "/" is dropped';
  if (glob.testIgnoringCase(path)) return 'letter case is ignored';
  return 'letter case is ignored and its trailing "/" is dropped';
}

function httpClauses(rule: HttpRule, method: string, path: string): Clause[] {
  const clauses: Clause[] = [];
  if (rule.methods !== null) clauses.push(listed('method', method, rule.methods));
  if (rule.paths !== null) {
    const index = firstPathMatch(rule.paths, path);
    const folded = index < 0 && rule.effect === 'deny' ? firstFoldedPathMatch(rule.paths, path) : -1;
    if (index >= 0) {
      clauses.push({ ok: true, text: `path ${path} matches ${JSON.stringify(rule.paths[index]?.source)}` });
    } else if (folded >= 0) {
      const glob = rule.paths[folded] as PathGlob;
      const how = foldingNeeded(glob, path);
      clauses.push({ ok: true, text: `path ${path} matches ${JSON.stringify(glob.source)} only once ${how}, as deny rules compare paths` });
    } else {
      clauses.push({ ok: false, text: `path ${path} matches none of ${globList(rule.paths)}` });
    }
  }
  return clauses;
}

/**
 * The `tables` or `functions` condition of a SQL rule, in words. `possible` are the names
 * attribute notation may call, which a deny rule reads as `sqlRuleMatches` does.
 */
function namesClause(
  ix: PolicyIndex,
  rule: SqlRule,
  kind: 'table' | 'function',
  globs: readonly SqlGlob[],
  texts: readonly string[],
  possible: readonly string[] = [],
): Clause {
  const cache = kind === 'table' ? ix.tableNames : ix.functionNames;
  const names = texts.map((text) => cache.get(text));
  const plural = `${kind}s`;
  if (rule.effect === 'allow') {
    const index = firstUnallowedName(globs, names, names.length);
    if (index >= 0) return { ok: false, text: `${kind} ${texts[index]} matches none of ${globList(globs)}` };
    if (texts.length === 0) return { ok: true, text: `the statement uses no ${plural}` };
    return { ok: true, text: `every ${kind} (${texts.join(', ')}) matches one of ${globList(globs)}` };
  }
  const index = firstDeniedName(globs, names, names.length);
  if (index >= 0) {
    const glob = globs[firstDenyingGlob(globs, names[index] as SqlName)] as SqlGlob;
    return { ok: true, text: `${kind} ${texts[index]} matches ${JSON.stringify(glob.source)}` };
  }
  const possibleNames = possible.map((text) => cache.get(text));
  const possibleIndex = firstDeniedPossibleName(globs, possibleNames, possibleNames.length);
  if (possibleIndex >= 0) {
    const name = possibleNames[possibleIndex] as SqlName;
    const glob = globs.find((candidate) => candidate.deniesPossibleFunction(name)) as SqlGlob;
    return { ok: true, text: `${kind} ${possible[possibleIndex]} matches ${JSON.stringify(glob.source)}` };
  }
  const used = [...texts, ...possible].join(', ') || 'none';
  return { ok: false, text: `no ${kind} used (${used}) matches ${globList(globs)}` };
}

function sqlClauses(ix: PolicyIndex, rule: SqlRule, login: string, statement: StatementFacts): Clause[] {
  const clauses: Clause[] = [];
  if (rule.logins !== null) clauses.push(listed('login', login, rule.logins));
  if (rule.statements !== null) clauses.push(listed('statement class', statement.class, rule.statements));
  if (rule.tables !== null) clauses.push(namesClause(ix, rule, 'table', rule.tables, statement.tables));
  if (rule.functions !== null) {
    // A deny rule also reads the names attribute notation may call (see `sqlRuleMatches`).
    const possible = rule.effect === 'deny' ? (statement.possibleFunctions ?? []) : [];
    clauses.push(namesClause(ix, rule, 'function', rule.functions, statement.functions, possible));
  }
  return clauses;
}

function trace(rule: HttpRule | SqlRule | AuditRule, clauses: Clause[], resource: string): RuleTrace {
  const failed = clauses.filter((clause) => !clause.ok);
  const matched = failed.length === 0;
  let why = (matched ? clauses : failed).map((clause) => clause.text);
  if (clauses.length === 0) why = [`no conditions: the rule covers everything on ${resource}`];
  return { rule: rule.id, role: rule.role, effect: rule.effect, matched, why };
}

/** Deny rules of the selected roles first, then allow rules: the order `decide` tries them. */
function traceBucket<R extends HttpRule | SqlRule | AuditRule>(
  ix: PolicyIndex,
  bucket: RuleBucket<R>,
  principal: Principal,
  describe: (rule: R) => Clause[],
  resource: string,
): RuleTrace[] {
  const count = selectRoleRules(ix, bucket, principal);
  const selected = (ix.scratch.selected as RoleRules<R>[]).slice(0, count);
  const traces: RuleTrace[] = [];
  for (const effect of ['deny', 'allow'] as const) {
    for (const roleRules of selected) {
      for (const rule of roleRules[effect]) traces.push(trace(rule, describe(rule), resource));
    }
  }
  return traces;
}

function heldRoles(ix: PolicyIndex, principal: Principal): HeldRole[] {
  const email = principal.email?.toLowerCase();
  const via = new Map<string, GrantVia[]>();
  const add = (role: string, entry: GrantVia): void => {
    const list = via.get(role);
    if (list === undefined) via.set(role, [entry]);
    else list.push(entry);
  };
  ix.spec.grants.forEach((grant, index) => {
    for (const user of grant.users) {
      if (user === principal.subject || (email !== undefined && user.toLowerCase() === email)) {
        add(grant.role, { grant: index, kind: 'user', name: user });
      }
    }
    for (const group of grant.groups) {
      if (principal.groups.includes(group)) add(grant.role, { grant: index, kind: 'group', name: group });
    }
  });
  return ix.roles.flatMap((role) => {
    const list = via.get(role);
    return list === undefined ? [] : [{ role, via: list }];
  });
}

function traceRules(ix: PolicyIndex, principal: Principal, action: Action): RuleTrace[] {
  if (action.kind === 'audit') {
    const permission = action.permission;
    return traceBucket(ix, ix.audit, principal, (rule) => [listed('permission', permission, rule.permissions)], 'the audit log');
  }
  const entry = ix.resources.get(action.resource);
  if (entry === undefined) return [];
  if (action.kind === 'http') {
    if (entry.kind !== 'http') return [];
    const method = action.method.toUpperCase();
    return traceBucket(ix, entry.rules, principal, (rule) => httpClauses(rule, method, action.path), action.resource);
  }
  if (entry.kind !== 'postgres' || !entry.loginBits.has(action.login)) return [];
  return traceBucket(
    ix,
    entry.rules,
    principal,
    (rule) => sqlClauses(ix, rule, action.login, action.statement),
    action.resource,
  );
}

/**
 * Explains a decision: the decision itself (exactly what `decide` returns), the roles the
 * principal holds and through which grants, and every rule of those roles on the action's
 * resource with whether it matched and why. Empty `rules` means the decision came before any
 * rule (unknown resource, wrong kind, unknown login) or that no held role has rules there.
 * For `tollgate policy explain`; not for the request path, since it allocates freely.
 */
export function explain(policy: CompiledPolicy, principal: Principal, action: Action): Explanation {
  const ix = policyIndex(policy);
  return {
    decision: decide(policy, principal, action),
    roles: heldRoles(ix, principal),
    rules: traceRules(ix, principal, action),
  };
}
