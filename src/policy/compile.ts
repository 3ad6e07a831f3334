import { TollgateError, deepFreeze, type Principal } from '../core/index.js';
import { compilePathGlob, type PathGlob } from './path-glob.js';
import { compileSqlGlob, parseSqlName, type SqlGlob, type SqlName } from './sql-names.js';
import {
  AUDIT_PERMISSIONS,
  STATEMENT_CLASSES,
  type AuditPermission,
  type Decision,
  type PolicySpec,
  type ResourceRef,
  type RuleSpec,
  type StatementClass,
} from './types.js';

interface CompiledRuleBase {
  /** `"<role>.allow[<i>]"` or `"<role>.deny[<i>]"`. */
  readonly id: string;
  readonly role: string;
  readonly effect: 'allow' | 'deny';
  /** The decision this rule makes, built once so that deciding allocates nothing. */
  readonly decision: Decision;
}

export interface HttpRule extends CompiledRuleBase {
  /** Upper-case methods, or `null` for any. */
  readonly methods: ReadonlySet<string> | null;
  /** The listed methods that have a bit in {@link METHOD_BITS}, as a mask. */
  readonly methodMask: number;
  /** The listed methods without a bit (extension methods), or `null` when none. */
  readonly otherMethods: ReadonlySet<string> | null;
  readonly paths: readonly PathGlob[] | null;
}

export interface SqlRule extends CompiledRuleBase {
  readonly logins: ReadonlySet<string> | null;
  /** Bit `i` set when the rule lists the resource's login number `i`. */
  readonly loginMask: number;
  readonly statements: ReadonlySet<StatementClass> | null;
  /** Bit `i` set when the rule lists `STATEMENT_CLASSES[i]`. */
  readonly statementMask: number;
  readonly tables: readonly SqlGlob[] | null;
  readonly functions: readonly SqlGlob[] | null;
}

export interface AuditRule extends CompiledRuleBase {
  readonly permissions: ReadonlySet<AuditPermission>;
}

/** The rules one role has on one resource (or on the audit pages), deny and allow apart. */
export interface RoleRules<R> {
  readonly roleIndex: number;
  readonly deny: readonly R[];
  readonly allow: readonly R[];
}

/** Rules of one resource, indexed by role so that a decision consults only held roles. */
export interface RuleBucket<R> {
  /** Ascending role index, i.e. the spec's role order. */
  readonly entries: readonly RoleRules<R>[];
  /** `entries[i].roleIndex`, packed so that scanning it touches one small block of memory. */
  readonly roleIds: Int32Array;
  readonly byRole: ReadonlyMap<number, RoleRules<R>>;
}

/**
 * Bits for the methods of RFC 9110 §9 and PATCH (RFC 5789), so that a rule's method check is one
 * mask test; other (extension) methods go through a set.
 */
export const METHOD_BITS: ReadonlyMap<string, number> = new Map(
  ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'].map((method, i) => [method, 1 << i]),
);

/** Statement class to its bit, from its position in `STATEMENT_CLASSES`. */
export const STATEMENT_BITS: ReadonlyMap<string, number> = new Map(
  STATEMENT_CLASSES.map((statementClass, i) => [statementClass, 1 << i]),
);

/** Login masks are 31-bit integers; no real resource comes near this many upstream logins. */
const MAX_LOGINS = 30;

export type ResourceEntry =
  | { readonly ref: ResourceRef; readonly kind: 'http'; readonly rules: RuleBucket<HttpRule> }
  | {
      readonly ref: ResourceRef;
      readonly kind: 'postgres';
      /** Login name to its bit, from its position in the resource's `logins`. */
      readonly loginBits: ReadonlyMap<string, number>;
      readonly rules: RuleBucket<SqlRule>;
    };

/** Parsed table or function names by their text; bounded, since statements bring new names. */
export class NameCache {
  static readonly #limit = 8192;
  readonly #names = new Map<string, SqlName>();
  readonly #kind: 'table' | 'function';

  constructor(kind: 'table' | 'function') {
    this.#kind = kind;
  }

  get(text: string): SqlName {
    let name = this.#names.get(text);
    if (name === undefined) {
      if (this.#names.size >= NameCache.#limit) this.#names.clear();
      name = parseSqlName(text, this.#kind);
      this.#names.set(text, name);
    }
    return name;
  }
}

/**
 * Working memory of `decide()`, reused across calls so the hot path allocates nothing. Deciding
 * is synchronous and never re-entered, so one set per compiled policy is enough.
 */
export class Scratch {
  /** Buffer for the role indices of a principal whose roles are not memoised. */
  readonly held: Int32Array;
  /** The current principal's role indices, ascending: `held` or a memoised array. */
  heldIds: Int32Array;
  /** `mark[role] === epoch` when the current principal holds that role. */
  readonly mark: Uint32Array;
  epoch = 0;
  /** Role rules selected for the current decision. */
  readonly selected: RoleRules<unknown>[] = [];
  /** The current statement as SQL rules see it; names resolved once per decision. */
  readonly statement = {
    loginBit: 0,
    classBit: 0,
    tables: [] as SqlName[],
    tableCount: 0,
    functions: [] as SqlName[],
    functionCount: 0,
    possibleFunctions: [] as SqlName[],
    possibleFunctionCount: 0,
  };

  constructor(roleCount: number) {
    this.held = new Int32Array(roleCount);
    this.heldIds = this.held;
    this.mark = new Uint32Array(roleCount);
  }

  /** Starts a new decision: forgets the previous principal's roles in O(1). */
  nextEpoch(): number {
    if (this.epoch === 0xffffffff) {
      this.mark.fill(0);
      this.epoch = 0;
    }
    return ++this.epoch;
  }
}

/** Everything `compilePolicy` derives from a spec; internal to the policy room. */
export interface PolicyIndex {
  readonly spec: PolicySpec;
  /** Role names in spec order; a role's index is its position here. */
  readonly roles: readonly string[];
  readonly resources: ReadonlyMap<string, ResourceEntry>;
  readonly audit: RuleBucket<AuditRule>;
  /** Grant user entries, lower-cased, to role indices (matched against the principal's email). */
  readonly rolesByEmail: ReadonlyMap<string, readonly number[]>;
  /** Grant user entries as written to role indices (matched against the principal's subject). */
  readonly rolesBySubject: ReadonlyMap<string, readonly number[]>;
  readonly rolesByGroup: ReadonlyMap<string, readonly number[]>;
  /**
   * Role indices of frozen principals, ascending. Only frozen ones: their email, subject and
   * groups cannot change, so the memo cannot go stale, and it dies with the principal.
   */
  readonly heldByPrincipal: WeakMap<Principal, Int32Array>;
  readonly tableNames: NameCache;
  readonly functionNames: NameCache;
  readonly scratch: Scratch;
}

let readIndex!: (policy: CompiledPolicy) => PolicyIndex;

/**
 * A policy compiled by {@link compilePolicy}: immutable, and safe to share between every
 * request of a config generation. Pass it to `decide`, `explain`, `rolesOf` and `grantedLogins`.
 */
export class CompiledPolicy {
  /** Role names in the order the spec declares them. */
  readonly roles: readonly string[];
  readonly resources: readonly ResourceRef[];
  readonly #index: PolicyIndex;

  static {
    // The room's functions read the index; nothing outside the room can.
    readIndex = (policy) => policy.#index;
  }

  constructor(index: PolicyIndex) {
    this.#index = index;
    this.roles = index.roles;
    this.resources = index.spec.resources;
  }
}

/** The compiled index of a policy; for the modules of this room only. */
export function policyIndex(policy: CompiledPolicy): PolicyIndex {
  return readIndex(policy);
}

interface Problem {
  readonly path: string;
  readonly message: string;
}

const RULE_FIELDS = new Set(['resource', 'methods', 'paths', 'logins', 'statements', 'tables', 'functions', 'audit']);
const HTTP_FIELDS = ['methods', 'paths'] as const;
const SQL_FIELDS = ['logins', 'statements', 'tables', 'functions'] as const;
/** RFC 9110 §5.6.2 `token`, the syntax of a method name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

class Compiler {
  readonly problems: Problem[] = [];
  readonly #resources = new Map<string, ResourceRef>();
  readonly #roleIndex = new Map<string, number>();

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** Checks a list of non-empty strings; `null` (with a problem) when it is not one. */
  strings(value: unknown, path: string, allowEmpty: boolean): readonly string[] | null {
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item === '')) {
      this.problem(path, 'must be a list of non-empty strings');
      return null;
    }
    if (value.length === 0 && !allowEmpty) {
      this.problem(path, 'must not be empty; leave the field out to match anything');
      return null;
    }
    return value as string[];
  }

  resources(spec: PolicySpec): Map<string, ResourceEntry> {
    const entries = new Map<string, ResourceEntry>();
    if (!Array.isArray(spec.resources)) {
      this.problem('resources', 'must be a list');
      return entries;
    }
    spec.resources.forEach((ref, i) => {
      const path = `resources[${i}]`;
      if (typeof ref.name !== 'string' || ref.name === '') {
        this.problem(`${path}.name`, 'must be a non-empty string');
        return;
      }
      if (this.#resources.has(ref.name)) {
        this.problem(`${path}.name`, `resource "${ref.name}" is defined twice; resource names must be unique`);
        return;
      }
      this.#resources.set(ref.name, ref);
      const logins = this.strings(ref.logins, `${path}.logins`, ref.kind !== 'postgres') ?? [];
      if (ref.kind === 'http') {
        if (logins.length > 0) this.problem(`${path}.logins`, 'an http resource has no logins');
        entries.set(ref.name, { ref, kind: 'http', rules: emptyBucket() });
      } else if (ref.kind === 'postgres') {
        if (new Set(logins).size !== logins.length) this.problem(`${path}.logins`, 'login names must be unique');
        if (logins.length > MAX_LOGINS) this.problem(`${path}.logins`, `a resource has at most ${MAX_LOGINS} logins`);
        const loginBits = new Map(logins.map((login, bit) => [login, 1 << bit]));
        entries.set(ref.name, { ref, kind: 'postgres', loginBits, rules: emptyBucket() });
      } else {
        this.problem(`${path}.kind`, `must be "http" or "postgres", not ${JSON.stringify(ref.kind)}`);
      }
    });
    return entries;
  }

  roles(spec: PolicySpec): string[] {
    const names = Object.keys(spec.roles ?? {});
    names.forEach((name, index) => {
      if (name === '') this.problem('roles', 'a role name must not be empty');
      this.#roleIndex.set(name, index);
    });
    return names;
  }

  roleIndexOf(name: string): number | undefined {
    return this.#roleIndex.get(name);
  }

  /** Checks and compiles one rule of a role; `null` when it has problems. */
  rule(rule: RuleSpec, path: string, base: CompiledRuleBase): HttpRule | SqlRule | AuditRule | null {
    if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) {
      this.problem(path, 'a rule is a mapping of fields (resource, methods, paths, ...)');
      return null;
    }
    const before = this.problems.length;
    for (const key of Object.keys(rule)) {
      if (!RULE_FIELDS.has(key)) this.problem(`${path}.${key}`, `unknown rule field "${key}"`);
    }
    const present = (field: keyof RuleSpec): boolean => rule[field] !== undefined;

    if (present('audit')) {
      for (const field of ['resource', ...HTTP_FIELDS, ...SQL_FIELDS] as const) {
        if (present(field)) {
          this.problem(`${path}.${field}`, 'an audit rule has only the "audit" field; write resource rules separately');
        }
      }
      const permissions = this.strings(rule.audit, `${path}.audit`, false) ?? [];
      permissions.forEach((permission, i) => {
        if (!(AUDIT_PERMISSIONS as readonly string[]).includes(permission)) {
          const use = AUDIT_PERMISSIONS.join(' or ');
          this.problem(`${path}.audit[${i}]`, `"${permission}" is not an audit permission; use ${use}`);
        }
      });
      if (this.problems.length > before) return null;
      return {
        id: base.id,
        role: base.role,
        effect: base.effect,
        decision: base.decision,
        permissions: new Set(permissions as AuditPermission[]),
      };
    }

    if (typeof rule.resource !== 'string') {
      this.problem(`${path}.resource`, 'a rule names a resource (or is an audit rule: audit: [view, export])');
      return null;
    }
    const resource = this.#resources.get(rule.resource);
    if (resource === undefined) {
      this.problem(`${path}.resource`, `resource "${rule.resource}" is not defined under resources`);
      return null;
    }

    if (resource.kind === 'http') {
      for (const field of SQL_FIELDS) {
        if (present(field)) {
          const why = `"${field}" applies to postgres resources, and "${resource.name}" is an http resource`;
          this.problem(`${path}.${field}`, why);
        }
      }
      const methods = present('methods') ? this.methods(rule.methods, `${path}.methods`) : null;
      const paths = present('paths') ? this.pathGlobs(rule.paths, `${path}.paths`) : null;
      if (this.problems.length > before) return null;
      let methodMask = 0;
      const otherMethods = new Set<string>();
      for (const method of methods ?? []) {
        const bit = METHOD_BITS.get(method);
        if (bit === undefined) otherMethods.add(method);
        else methodMask |= bit;
      }
      return {
        id: base.id,
        role: base.role,
        effect: base.effect,
        decision: base.decision,
        methods,
        methodMask,
        otherMethods: otherMethods.size > 0 ? otherMethods : null,
        paths,
      };
    }

    for (const field of HTTP_FIELDS) {
      if (present(field)) {
        const why = `"${field}" applies to http resources, and "${resource.name}" is a postgres resource`;
        this.problem(`${path}.${field}`, why);
      }
    }
    // An allow rule with `tables: []` allows only statements that touch no table; a deny rule
    // with an empty list would never match, which is never what its author meant.
    const allowEmpty = base.effect === 'allow';
    const logins = present('logins') ? this.logins(rule.logins, `${path}.logins`, resource) : null;
    const statements = present('statements') ? this.statements(rule.statements, `${path}.statements`) : null;
    const tables = present('tables') ? this.sqlGlobs(rule.tables, `${path}.tables`, allowEmpty) : null;
    const functions = present('functions') ? this.sqlGlobs(rule.functions, `${path}.functions`, allowEmpty) : null;
    if (this.problems.length > before) return null;
    let loginMask = 0;
    for (const login of logins ?? []) loginMask |= 1 << resource.logins.indexOf(login);
    let statementMask = 0;
    for (const statementClass of statements ?? []) statementMask |= STATEMENT_BITS.get(statementClass) ?? 0;
    return {
      id: base.id,
      role: base.role,
      effect: base.effect,
      decision: base.decision,
      logins,
      loginMask,
      statements,
      statementMask,
      tables,
      functions,
    };
  }

  methods(value: unknown, path: string): ReadonlySet<string> | null {
    const methods = this.strings(value, path, false);
    if (methods === null) return null;
    methods.forEach((method, i) => {
      if (!TOKEN.test(method)) this.problem(`${path}[${i}]`, `"${method}" is not an HTTP method name`);
    });
    return new Set(methods.map((method) => method.toUpperCase()));
  }

  pathGlobs(value: unknown, path: string): PathGlob[] | null {
    const sources = this.strings(value, path, false);
    if (sources === null) return null;
    const globs: PathGlob[] = [];
    sources.forEach((source, i) => {
      const glob = compilePathGlob(source);
      if (typeof glob === 'string') this.problem(`${path}[${i}]`, glob);
      else globs.push(glob);
    });
    return globs;
  }

  logins(value: unknown, path: string, resource: ResourceRef): ReadonlySet<string> | null {
    const logins = this.strings(value, path, false);
    if (logins === null) return null;
    logins.forEach((login, i) => {
      if (!resource.logins.includes(login)) {
        this.problem(
          `${path}[${i}]`,
          `"${login}" is not a login of resource "${resource.name}"; it has ${resource.logins.join(', ')}`,
        );
      }
    });
    return new Set(logins);
  }

  statements(value: unknown, path: string): ReadonlySet<StatementClass> | null {
    const classes = this.strings(value, path, false);
    if (classes === null) return null;
    classes.forEach((statementClass, i) => {
      if (!(STATEMENT_CLASSES as readonly string[]).includes(statementClass)) {
        const use = STATEMENT_CLASSES.join(', ');
        this.problem(`${path}[${i}]`, `"${statementClass}" is not a statement class; use ${use}`);
      }
    });
    return new Set(classes as StatementClass[]);
  }

  sqlGlobs(value: unknown, path: string, allowEmpty: boolean): SqlGlob[] | null {
    const sources = this.strings(value, path, allowEmpty);
    if (sources === null) return null;
    const globs: SqlGlob[] = [];
    sources.forEach((source, i) => {
      const glob = compileSqlGlob(source);
      if (typeof glob === 'string') this.problem(`${path}[${i}]`, glob);
      else globs.push(glob);
    });
    return globs;
  }
}

function emptyBucket<R>(): RuleBucket<R> {
  return { entries: [], roleIds: new Int32Array(0), byRole: new Map() };
}

/** Packs the bucket's role ids once all its rules are in. */
function sealBucket<R>(bucket: RuleBucket<R>): void {
  (bucket as { roleIds: Int32Array }).roleIds = Int32Array.from(bucket.entries, (entry) => entry.roleIndex);
}

/** Adds a role's rules to a bucket; roles arrive in ascending index order. */
function addToBucket<R>(bucket: RuleBucket<R>, roleIndex: number, rule: R, effect: 'allow' | 'deny'): void {
  let entry = bucket.byRole.get(roleIndex) as { roleIndex: number; deny: R[]; allow: R[] } | undefined;
  if (entry === undefined) {
    entry = { roleIndex, deny: [], allow: [] };
    (bucket.entries as RoleRules<R>[]).push(entry);
    (bucket.byRole as Map<number, RoleRules<R>>).set(roleIndex, entry);
  }
  entry[effect].push(rule);
}

function addGrant(map: Map<string, number[]>, key: string, roleIndex: number): void {
  const roles = map.get(key);
  if (roles === undefined) map.set(key, [roleIndex]);
  else if (!roles.includes(roleIndex)) roles.push(roleIndex);
}

/**
 * Compiles roles and grants once per config generation: checks every reference, compiles every
 * glob to a matcher, and indexes the rules by resource and role so that a decision only looks at
 * the rules of the roles the principal holds on the resource at hand.
 *
 * The config room reports these problems with file and line first; this is the last guard, for
 * specs built in code. Throws `TG_ERR_POLICY_INVALID` listing every problem (also in
 * `details.problems` as `{ path, message }`).
 */
export function compilePolicy(input: PolicySpec): CompiledPolicy {
  // A private frozen copy: the compiled index and `explain` must never disagree with the spec.
  const spec = deepFreeze(structuredClone(input));
  const compiler = new Compiler();
  const resources = compiler.resources(spec);
  const roles = compiler.roles(spec);
  const audit = emptyBucket<AuditRule>();

  roles.forEach((role, roleIndex) => {
    const roleSpec = spec.roles[role];
    for (const effect of ['deny', 'allow'] as const) {
      const rules: unknown = roleSpec?.[effect];
      if (!Array.isArray(rules)) {
        compiler.problem(`roles.${role}.${effect}`, 'must be a list of rules');
        continue;
      }
      (rules as RuleSpec[]).forEach((ruleSpec, i) => {
        const id = `${role}.${effect}[${i}]`;
        const decision: Decision = Object.freeze({
          effect,
          rule: id,
          reason: effect === 'allow' ? 'allowed-by-rule' : 'denied-by-rule',
        });
        const rule = compiler.rule(ruleSpec, `roles.${id}`, { id, role, effect, decision });
        if (rule === null) return;
        if ('permissions' in rule) {
          addToBucket(audit, roleIndex, rule, effect);
          return;
        }
        const entry = resources.get(ruleSpec.resource as string);
        if (entry?.kind === 'http') addToBucket(entry.rules, roleIndex, rule as HttpRule, effect);
        else if (entry?.kind === 'postgres') addToBucket(entry.rules, roleIndex, rule as SqlRule, effect);
      });
    }
  });

  const rolesByEmail = new Map<string, number[]>();
  const rolesBySubject = new Map<string, number[]>();
  const rolesByGroup = new Map<string, number[]>();
  if (!Array.isArray(spec.grants)) compiler.problem('grants', 'must be a list');
  (Array.isArray(spec.grants) ? spec.grants : []).forEach((grant, i) => {
    const path = `grants[${i}]`;
    const roleIndex = compiler.roleIndexOf(grant.role);
    if (roleIndex === undefined) {
      compiler.problem(`${path}.role`, `role "${String(grant.role)}" is not defined under roles`);
    }
    const users = compiler.strings(grant.users, `${path}.users`, true) ?? [];
    const groups = compiler.strings(grant.groups, `${path}.groups`, true) ?? [];
    if (users.length === 0 && groups.length === 0) {
      compiler.problem(path, 'a grant names at least one user or group');
    }
    if (roleIndex === undefined) return;
    for (const user of users) {
      addGrant(rolesByEmail, user.toLowerCase(), roleIndex);
      addGrant(rolesBySubject, user, roleIndex);
    }
    for (const group of groups) addGrant(rolesByGroup, group, roleIndex);
  });

  if (compiler.problems.length > 0) {
    const lines = compiler.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
    throw new TollgateError(
      'TG_ERR_POLICY_INVALID',
      `the policy has ${compiler.problems.length} problem(s); ` +
        `fix them in the config's resources, roles and grants:\n${lines}`,
      { details: { problems: compiler.problems } },
    );
  }

  for (const entry of resources.values()) sealBucket<HttpRule | SqlRule>(entry.rules);
  sealBucket(audit);
  return new CompiledPolicy({
    spec,
    roles,
    resources,
    audit,
    rolesByEmail,
    rolesBySubject,
    rolesByGroup,
    heldByPrincipal: new WeakMap(),
    tableNames: new NameCache('table'),
    functionNames: new NameCache('function'),
    scratch: new Scratch(roles.length),
  });
}
