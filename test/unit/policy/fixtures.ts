import type { Principal } from '../../../src/core/index.js';
import type { Action, PolicySpec, ResourceRef, RoleSpec, RuleSpec, StatementClass } from '../../../src/policy/index.js';

export function httpResource(name: string): ResourceRef {
  return { name, kind: 'http', logins: [] };
}

export function pgResource(name: string, logins: readonly string[] = ['reader', 'writer', 'owner']): ResourceRef {
  return { name, kind: 'postgres', logins };
}

export function role(allow: readonly RuleSpec[] = [], deny: readonly RuleSpec[] = []): RoleSpec {
  return { allow, deny };
}

/** A spec with the demo's two resources unless others are given. */
export function spec(parts: Partial<PolicySpec> & Pick<PolicySpec, 'roles' | 'grants'>): PolicySpec {
  return { resources: [httpResource('app'), pgResource('shop')], ...parts };
}

export function principal(groups: readonly string[] = [], email = 'alice@example.com', subject = 'sub-alice'): Principal {
  return { subject, email, groups };
}

export function http(method: string, path: string, resource = 'app'): Action {
  return { kind: 'http', resource, method, path };
}

export function sql(
  statementClass: StatementClass,
  tables: readonly string[] = [],
  functions: readonly string[] = [],
  login = 'reader',
  resource = 'shop',
): Action {
  return { kind: 'sql', resource, login, statement: { class: statementClass, tables, functions } };
}
