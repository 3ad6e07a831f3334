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
} from './types.js';
