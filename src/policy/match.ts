import type { Principal } from '../core/index.js';
import {
  METHOD_BITS,
  type AuditRule,
  type HttpRule,
  type NameCache,
  type PolicyIndex,
  type RoleRules,
  type RuleBucket,
  type SqlRule,
} from './compile.js';
import type { PathGlob } from './path-glob.js';
import type { SqlGlob, SqlName } from './sql-names.js';
import type { AuditPermission } from './types.js';

/** Index of the first glob that matches the path, or -1. */
export function firstPathMatch(globs: readonly PathGlob[], path: string): number {
  for (let i = 0; i < globs.length; i++) {
    if ((globs[i] as PathGlob).test(path)) return i;
  }
  return -1;
}

/**
 * Index of the first glob that matches the path as deny rules compare paths (letter case and one
 * trailing `/` folded, see `PathGlob.testFolded`), or -1.
 */
export function firstFoldedPathMatch(globs: readonly PathGlob[], path: string): number {
  for (let i = 0; i < globs.length; i++) {
    if ((globs[i] as PathGlob).testFolded(path)) return i;
  }
  return -1;
}

/**
 * An HTTP rule matches when the method is listed and the path matches one of the globs; an
 * omitted field matches anything. A deny rule's globs also match the path with letter case and
 * one trailing `/` folded, so that no spelling an upstream serves as a denied path slips past;
 * an allow rule's match exactly. `methodBit` is the method's bit in `METHOD_BITS` (0 for an
 * extension method, then compared through `upperMethod`).
 */
export function httpRuleMatches(rule: HttpRule, methodBit: number, upperMethod: string, path: string): boolean {
  if (rule.methods !== null) {
    if (methodBit !== 0) {
      if ((rule.methodMask & methodBit) === 0) return false;
    } else if (rule.otherMethods === null || !rule.otherMethods.has(upperMethod)) {
      return false;
    }
  }
  if (rule.paths === null) return true;
  return (rule.effect === 'deny' ? firstFoldedPathMatch(rule.paths, path) : firstPathMatch(rule.paths, path)) >= 0;
}

/** The bit of an HTTP method in `METHOD_BITS`, upper-casing it only when needed; 0 when none. */
export function methodBitOf(method: string): number {
  return METHOD_BITS.get(method) ?? METHOD_BITS.get(method.toUpperCase()) ?? 0;
}

/** Index of the first glob that allows the name, as if in `schema` (allow-side semantics), or -1. */
function firstAllowingGlob(globs: readonly SqlGlob[], name: SqlName, schema: string | null): number {
  for (let i = 0; i < globs.length; i++) {
    if ((globs[i] as SqlGlob).allows(name, schema)) return i;
  }
  return -1;
}

/**
 * Whether some glob allows the name. A bare table name must be allowed in every schema it may
 * resolve to (`public`, and `pg_catalog` too for a `pg_` name), by one glob or several.
 */
function nameAllowed(globs: readonly SqlGlob[], name: SqlName): boolean {
  const schemas = name.allowSchemas;
  if (schemas.length === 0) return firstAllowingGlob(globs, name, name.schema) >= 0;
  for (let i = 0; i < schemas.length; i++) {
    if (firstAllowingGlob(globs, name, schemas[i] as string) < 0) return false;
  }
  return true;
}

/** Index of the first glob that denies the name (deny-side semantics), or -1. */
export function firstDenyingGlob(globs: readonly SqlGlob[], name: SqlName): number {
  for (let i = 0; i < globs.length; i++) {
    if ((globs[i] as SqlGlob).denies(name)) return i;
  }
  return -1;
}

/** Index of the first of `count` names that no glob allows, or -1 when every one is allowed. */
export function firstUnallowedName(globs: readonly SqlGlob[], names: readonly SqlName[], count: number): number {
  for (let i = 0; i < count; i++) {
    if (!nameAllowed(globs, names[i] as SqlName)) return i;
  }
  return -1;
}

/** Index of the first of `count` names that some glob denies, or -1. */
export function firstDeniedName(globs: readonly SqlGlob[], names: readonly SqlName[], count: number): number {
  for (let i = 0; i < count; i++) {
    if (firstDenyingGlob(globs, names[i] as SqlName) >= 0) return i;
  }
  return -1;
}

/**
 * Index of the first of `count` possible function names that some glob denies (see
 * {@link SqlGlob.deniesPossibleFunction}: only globs without a schema part, or with `*` there), or -1.
 */
export function firstDeniedPossibleName(globs: readonly SqlGlob[], names: readonly SqlName[], count: number): number {
  for (let i = 0; i < count; i++) {
    const name = names[i] as SqlName;
    for (let j = 0; j < globs.length; j++) {
      if ((globs[j] as SqlGlob).deniesPossibleFunction(name)) return i;
    }
  }
  return -1;
}

/** The facts of one statement as SQL rules see them: bits and resolved names. */
export interface StatementView {
  /** The login's bit in the resource's `loginBits`. */
  readonly loginBit: number;
  /** The class's bit in `STATEMENT_BITS` (0 for an unknown class, which no `statements` list matches). */
  readonly classBit: number;
  readonly tables: readonly SqlName[];
  readonly tableCount: number;
  readonly functions: readonly SqlName[];
  readonly functionCount: number;
  /** The statement's `possibleFunctions`, which only deny rules read. */
  readonly possibleFunctions: readonly SqlName[];
  readonly possibleFunctionCount: number;
}

/**
 * A SQL rule matches when the login and the statement class are listed (or the field is
 * omitted), and then:
 * - allow rule: **every** table touched matches some `tables` glob and **every** function called
 *   matches some `functions` glob;
 * - deny rule: **some** table matches a `tables` glob, and **some** function matches a
 *   `functions` glob, or some possible function (a name attribute notation may call, `o.f` for
 *   `f(o)`) matches one whose schema part is absent or `*`.
 * An omitted `tables` or `functions` field matches anything, so a deny rule with only `resource`
 * denies every statement on it.
 */
export function sqlRuleMatches(rule: SqlRule, view: StatementView): boolean {
  if (rule.logins !== null && (rule.loginMask & view.loginBit) === 0) return false;
  if (rule.statements !== null && (rule.statementMask & view.classBit) === 0) return false;
  if (rule.effect === 'allow') {
    if (rule.tables !== null && firstUnallowedName(rule.tables, view.tables, view.tableCount) >= 0) return false;
    return rule.functions === null || firstUnallowedName(rule.functions, view.functions, view.functionCount) < 0;
  }
  if (rule.tables !== null && firstDeniedName(rule.tables, view.tables, view.tableCount) < 0) return false;
  return (
    rule.functions === null ||
    firstDeniedName(rule.functions, view.functions, view.functionCount) >= 0 ||
    firstDeniedPossibleName(rule.functions, view.possibleFunctions, view.possibleFunctionCount) >= 0
  );
}

/** Resolves names through the cache into `out`; returns how many. */
export function resolveNames(cache: NameCache, texts: readonly string[], out: SqlName[]): number {
  for (let i = 0; i < texts.length; i++) out[i] = cache.get(texts[i] as string);
  return texts.length;
}

/** An audit rule matches when it lists the permission. */
export function auditRuleMatches(rule: AuditRule, permission: AuditPermission): boolean {
  return rule.permissions.has(permission);
}

function addRoles(ix: PolicyIndex, roles: readonly number[] | undefined, count: number, epoch: number): number {
  if (roles === undefined) return count;
  const { held, mark } = ix.scratch;
  for (let i = 0; i < roles.length; i++) {
    const role = roles[i] as number;
    if (mark[role] !== epoch) {
      mark[role] = epoch;
      held[count++] = role;
    }
  }
  return count;
}

/**
 * Collects the roles the principal holds into `scratch.heldIds` (ascending, so in spec order) and
 * marks them in `scratch.mark`; returns how many. Grants by user match the principal's email
 * case-insensitively or its subject exactly; grants by group match group names exactly. The
 * result is memoised for frozen principals (the identity room hands out deep-frozen ones).
 */
export function gatherHeldRoles(ix: PolicyIndex, who: Principal): number {
  const scratch = ix.scratch;
  const epoch = scratch.nextEpoch();
  const memoisable = Object.isFrozen(who) && Object.isFrozen(who.groups);
  if (memoisable) {
    const known = ix.heldByPrincipal.get(who);
    if (known !== undefined) {
      const mark = scratch.mark;
      for (let i = 0; i < known.length; i++) mark[known[i] as number] = epoch;
      scratch.heldIds = known;
      return known.length;
    }
  }
  let count = 0;
  if (who.email !== undefined) count = addRoles(ix, ix.rolesByEmail.get(who.email.toLowerCase()), count, epoch);
  count = addRoles(ix, ix.rolesBySubject.get(who.subject), count, epoch);
  const groups = who.groups;
  for (let i = 0; i < groups.length; i++) {
    count = addRoles(ix, ix.rolesByGroup.get(groups[i] as string), count, epoch);
  }
  const held = scratch.held;
  for (let i = 1; i < count; i++) {
    const role = held[i] as number;
    let j = i - 1;
    while (j >= 0 && (held[j] as number) > role) {
      held[j + 1] = held[j] as number;
      j--;
    }
    held[j + 1] = role;
  }
  if (memoisable) {
    scratch.heldIds = held.slice(0, count);
    ix.heldByPrincipal.set(who, scratch.heldIds);
  } else {
    scratch.heldIds = held;
  }
  return count;
}

/**
 * Selects, into `scratch.selected`, the rules of the bucket that belong to roles the principal
 * holds, in spec order; returns how many role entries were selected. Scans the bucket's packed
 * role ids against the held marks, or looks the held roles up when the bucket has many more roles
 * than the principal holds.
 */
export function selectRoleRules<R>(ix: PolicyIndex, bucket: RuleBucket<R>, who: Principal): number {
  const entries = bucket.entries;
  if (entries.length === 0) return 0;
  const heldCount = gatherHeldRoles(ix, who);
  const { heldIds, mark, epoch, selected } = ix.scratch;
  const roleIds = bucket.roleIds;
  let count = 0;
  if (roleIds.length <= 8 * heldCount + 16) {
    for (let i = 0; i < roleIds.length; i++) {
      if (mark[roleIds[i] as number] === epoch) selected[count++] = entries[i] as RoleRules<R>;
    }
  } else {
    for (let i = 0; i < heldCount; i++) {
      const entry = bucket.byRole.get(heldIds[i] as number);
      if (entry !== undefined) selected[count++] = entry;
    }
  }
  return count;
}
