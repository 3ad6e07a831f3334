export { STATEMENT_CLASSES, AUDIT_PERMISSIONS, DECISION_REASONS } from './types.js';
export type {
  StatementClass,
  AuditPermission,
  ResourceKind,
  ResourceRef,
  RuleSpec,
  RoleSpec,
  GrantSpec,
  PolicySpec,
  StatementFacts,
  Action,
  DecisionReason,
  Decision,
  GrantVia,
  HeldRole,
  RuleTrace,
  Explanation,
} from './types.js';
export { compilePolicy } from './compile.js';
export type { CompiledPolicy } from './compile.js';
export { LivePolicy, policySource } from './live.js';
export type { PolicySource } from './live.js';
export { decide, rolesOf, grantedLogins } from './decide.js';
export { explain } from './explain.js';
export { normalizePathEncoding } from './path-glob.js';
