import type { Principal } from '../core/index.js';
import {
  STATEMENT_BITS,
  policyIndex,
  type AuditRule,
  type CompiledPolicy,
  type HttpRule,
  type RoleRules,
  type SqlRule,
} from './compile.js';
import {
  auditRuleMatches,
  gatherHeldRoles,
  httpRuleMatches,
  methodBitOf,
  resolveNames,
  selectRoleRules,
  sqlRuleMatches,
} from './match.js';
import type { Action, Decision } from './types.js';

function fixed(reason: Decision['reason']): Decision {
  return Object.freeze({ effect: 'deny', rule: null, reason });
}

const UNKNOWN_RESOURCE = fixed('unknown-resource');
const WRONG_RESOURCE_KIND = fixed('wrong-resource-kind');
const UNKNOWN_LOGIN = fixed('unknown-login');
const NO_MATCHING_ALLOW = fixed('no-matching-allow');
const NO_NAMES: readonly string[] = [];

/**
 * Decides one action for one principal. Pure: the same policy, principal and action always give
 * the same decision; the only state touched is the compiled policy's own working memory and
 * memo, which never change an outcome. Allocates nothing on the hot path.
 *
 * Order: an unknown resource denies (`unknown-resource`); an HTTP action on a postgres resource
 * or a SQL action on an http one denies (`wrong-resource-kind`); a SQL action with a login the
 * resource does not have denies (`unknown-login`). Then only the rules of the roles the principal
 * holds on that resource are consulted: any matching deny rule denies (`denied-by-rule`), even
 * when another role allows; else a matching allow rule allows (`allowed-by-rule`); else the
 * default is deny (`no-matching-allow`). When several rules match, the one reported is the first
 * in spec order (roles as declared, then rule index).
 *
 * The returned decision objects are frozen and shared; they carry the rule id
 * (`"engineer.allow[0]"`) or `null` when no rule decided.
 */
export function decide(policy: CompiledPolicy, principal: Principal, action: Action): Decision {
  const ix = policyIndex(policy);
  if (action.kind === 'audit') {
    const count = selectRoleRules(ix, ix.audit, principal);
    const selected = ix.scratch.selected as RoleRules<AuditRule>[];
    for (let i = 0; i < count; i++) {
      for (const rule of (selected[i] as RoleRules<AuditRule>).deny) {
        if (auditRuleMatches(rule, action.permission)) return rule.decision;
      }
    }
    for (let i = 0; i < count; i++) {
      for (const rule of (selected[i] as RoleRules<AuditRule>).allow) {
        if (auditRuleMatches(rule, action.permission)) return rule.decision;
      }
    }
    return NO_MATCHING_ALLOW;
  }

  const entry = ix.resources.get(action.resource);
  if (entry === undefined) return UNKNOWN_RESOURCE;

  if (action.kind === 'http') {
    if (entry.kind !== 'http') return WRONG_RESOURCE_KIND;
    const count = selectRoleRules(ix, entry.rules, principal);
    if (count === 0) return NO_MATCHING_ALLOW;
    const methodBit = methodBitOf(action.method);
    const upperMethod = methodBit === 0 ? action.method.toUpperCase() : action.method;
    const path = action.path;
    const selected = ix.scratch.selected as RoleRules<HttpRule>[];
    for (let i = 0; i < count; i++) {
      const rules = (selected[i] as RoleRules<HttpRule>).deny;
      for (let j = 0; j < rules.length; j++) {
        const rule = rules[j] as HttpRule;
        if (httpRuleMatches(rule, methodBit, upperMethod, path)) return rule.decision;
      }
    }
    for (let i = 0; i < count; i++) {
      const rules = (selected[i] as RoleRules<HttpRule>).allow;
      for (let j = 0; j < rules.length; j++) {
        const rule = rules[j] as HttpRule;
        if (httpRuleMatches(rule, methodBit, upperMethod, path)) return rule.decision;
      }
    }
    return NO_MATCHING_ALLOW;
  }

  if (entry.kind !== 'postgres') return WRONG_RESOURCE_KIND;
  const loginBit = entry.loginBits.get(action.login);
  if (loginBit === undefined) return UNKNOWN_LOGIN;
  const count = selectRoleRules(ix, entry.rules, principal);
  if (count === 0) return NO_MATCHING_ALLOW;
  const view = ix.scratch.statement;
  const statement = action.statement;
  view.loginBit = loginBit;
  view.classBit = STATEMENT_BITS.get(statement.class) ?? 0;
  view.tableCount = resolveNames(ix.tableNames, statement.tables, view.tables);
  view.functionCount = resolveNames(ix.functionNames, statement.functions, view.functions);
  view.possibleFunctionCount = resolveNames(ix.functionNames, statement.possibleFunctions ?? NO_NAMES, view.possibleFunctions);
  const selected = ix.scratch.selected as RoleRules<SqlRule>[];
  for (let i = 0; i < count; i++) {
    const rules = (selected[i] as RoleRules<SqlRule>).deny;
    for (let j = 0; j < rules.length; j++) {
      const rule = rules[j] as SqlRule;
      if (sqlRuleMatches(rule, view)) return rule.decision;
    }
  }
  for (let i = 0; i < count; i++) {
    const rules = (selected[i] as RoleRules<SqlRule>).allow;
    for (let j = 0; j < rules.length; j++) {
      const rule = rules[j] as SqlRule;
      if (sqlRuleMatches(rule, view)) return rule.decision;
    }
  }
  return NO_MATCHING_ALLOW;
}

/** The names of the roles the principal holds, in the order the spec declares them. */
export function rolesOf(policy: CompiledPolicy, principal: Principal): string[] {
  const ix = policyIndex(policy);
  const count = gatherHeldRoles(ix, principal);
  return Array.from(ix.scratch.heldIds.subarray(0, count), (role) => ix.roles[role] as string);
}

/**
 * The upstream logins of a postgres resource that the principal may use: those some held allow
 * rule names (all of them when the rule omits `logins`), minus those an unconditional deny rule
 * (one with no `statements`, `tables` or `functions`) shuts entirely. Least privileged first, in
 * the resource's order, so the Postgres proxy can pick the first. Empty for an unknown or http
 * resource.
 */
export function grantedLogins(policy: CompiledPolicy, principal: Principal, resource: string): string[] {
  const ix = policyIndex(policy);
  const entry = ix.resources.get(resource);
  if (entry?.kind !== 'postgres') return [];
  const count = selectRoleRules(ix, entry.rules, principal);
  const selected = (ix.scratch.selected as RoleRules<SqlRule>[]).slice(0, count);
  const usable = new Set<string>();
  const shut = new Set<string>();
  for (const roleRules of selected) {
    for (const rule of roleRules.allow) {
      for (const login of rule.logins ?? entry.ref.logins) usable.add(login);
    }
    for (const rule of roleRules.deny) {
      if (rule.statements === null && rule.tables === null && rule.functions === null) {
        for (const login of rule.logins ?? entry.ref.logins) shut.add(login);
      }
    }
  }
  return entry.ref.logins.filter((login) => usable.has(login) && !shut.has(login));
}
