import type { Principal } from '../core/index.js';

/** The statement classes of the `sql` room, in order of growing power. */
export const STATEMENT_CLASSES = ['read', 'write', 'ddl', 'admin'] as const;
export type StatementClass = (typeof STATEMENT_CLASSES)[number];

/** What a reviewer may do with the audit log through `/audit`. */
export const AUDIT_PERMISSIONS = ['view', 'export'] as const;
export type AuditPermission = (typeof AUDIT_PERMISSIONS)[number];

export type ResourceKind = 'http' | 'postgres';

/** What policy needs to know of a configured resource. */
export interface ResourceRef {
  readonly name: string;
  readonly kind: ResourceKind;
  /** Postgres only: the upstream login names, least privileged first (the config's order). */
  readonly logins: readonly string[];
}

/**
 * One rule of a role, as written in the config's `roles.<name>.allow` / `.deny` lists. A field
 * left out matches anything. HTTP rules use `methods` and `paths`; SQL rules use `logins`,
 * `statements`, `tables` and `functions`; audit rules use `audit` and no `resource`.
 */
export interface RuleSpec {
  readonly resource?: string;
  readonly methods?: readonly string[];
  readonly paths?: readonly string[];
  readonly logins?: readonly string[];
  readonly statements?: readonly StatementClass[];
  readonly tables?: readonly string[];
  readonly functions?: readonly string[];
  readonly audit?: readonly AuditPermission[];
}

export interface RoleSpec {
  readonly description?: string;
  readonly allow: readonly RuleSpec[];
  readonly deny: readonly RuleSpec[];
}

/** Who holds a role: users by email or subject, and IdP groups. */
export interface GrantSpec {
  readonly role: string;
  readonly users: readonly string[];
  readonly groups: readonly string[];
}

/** The input of {@link compilePolicy}: exactly what the config's policy sections hold. */
export interface PolicySpec {
  readonly resources: readonly ResourceRef[];
  readonly roles: Readonly<Record<string, RoleSpec>>;
  readonly grants: readonly GrantSpec[];
}

/** A statement as the `sql` room classifies it, reduced to what policy decides on. */
export interface StatementFacts {
  readonly class: StatementClass;
  /**
   * Schema-qualified when written so (`public.orders`), else bare (`orders`, found through the
   * search path); lower-case unless quoted.
   */
  readonly tables: readonly string[];
  /** Schema-qualified when written so (`pg_catalog.pg_terminate_backend`), else bare. */
  readonly functions: readonly string[];
  /**
   * Names attribute notation may call as functions (`o.f` runs `f(o)` when `o` has no column
   * `f`); only deny rules read them. Absent counts as none.
   */
  readonly possibleFunctions?: readonly string[];
}

export type Action =
  | { readonly kind: 'http'; readonly resource: string; readonly method: string; readonly path: string }
  | { readonly kind: 'sql'; readonly resource: string; readonly login: string; readonly statement: StatementFacts }
  | { readonly kind: 'audit'; readonly permission: AuditPermission };

/** Stable, kebab-case reasons; they are written into audit records, so never rename one. */
export const DECISION_REASONS = [
  'allowed-by-rule',
  'denied-by-rule',
  'no-matching-allow',
  'unknown-resource',
  'wrong-resource-kind',
  'unknown-login',
] as const;
export type DecisionReason = (typeof DECISION_REASONS)[number];

/**
 * The outcome of `decide()`. `rule` names the role and rule (`engineer.allow[0]`) or is `null`
 * when no rule decided (default deny).
 */
export interface Decision {
  readonly effect: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: DecisionReason;
}

export type { Principal };

/** How a principal came to hold a role: grant number `grant` names them as a user or a group. */
export interface GrantVia {
  /** Index into the spec's `grants` list. */
  readonly grant: number;
  readonly kind: 'user' | 'group';
  /** The grant's user entry (matched by email or subject) or group name that matched. */
  readonly name: string;
}

export interface HeldRole {
  readonly role: string;
  readonly via: readonly GrantVia[];
}

/** One rule `explain()` looked at, whether it matched the action, and why (or why not). */
export interface RuleTrace {
  /** `"<role>.allow[<i>]"` or `"<role>.deny[<i>]"`, as in {@link Decision.rule}. */
  readonly rule: string;
  readonly role: string;
  readonly effect: 'allow' | 'deny';
  readonly matched: boolean;
  /** One sentence per condition: those that held when matched, those that failed otherwise. */
  readonly why: readonly string[];
}

/** What `tollgate policy explain` prints: the decision and the reasoning behind it. */
export interface Explanation {
  readonly decision: Decision;
  /** The roles the principal holds, in the order the spec declares them. */
  readonly roles: readonly HeldRole[];
  /** Deny rules first, then allow rules, of the held roles on the action's resource (or audit). */
  readonly rules: readonly RuleTrace[];
}
