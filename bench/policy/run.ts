/**
 * Policy decision throughput on one core: a generated policy of 1,000 roles and 10,000 rules over
 * 200 resources, principals holding a few roles through groups, and a mix of HTTP and SQL
 * actions. Prints a markdown table; target ≥ 1,000,000 decisions/s.
 *
 * Principals are deep-frozen, as the identity room hands them out, so policy memoises their
 * roles; the last row uses unfrozen copies, so every decision gathers the roles afresh.
 *
 * The machine is shared, so the rate that counts is decisions per CPU-second of this process
 * (what one core delivers); the wall-clock rate is printed beside it.
 *
 *   node --import tsx bench/policy/run.ts
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { deepFreeze, type Principal } from '../../src/core/index.js';
import {
  compilePolicy,
  decide,
  type Action,
  type GrantSpec,
  type PolicySpec,
  type ResourceRef,
  type RoleSpec,
  type RuleSpec,
  type StatementClass,
} from '../../src/policy/index.js';

const ROLES = 1_000;
const RULES_PER_ROLE = 10;
const HTTP_RESOURCES = 120;
const PG_RESOURCES = 80;
const GROUPS = 300;
const PRINCIPALS = 2_000;
const SAMPLES = 1 << 16;
const WARMUP = 1_000_000;
const MEASURED = 3_000_000;
const REPEATS = 3;
const TARGET = 1_000_000;

/** mulberry32: a small seeded generator, so every run decides the same actions. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = seeded(20_261_101);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const chance = (p: number): boolean => random() < p;

const HTTP_ALLOWS: readonly Omit<RuleSpec, 'resource'>[] = [
  { methods: ['GET', 'HEAD'], paths: ['/api/v1/orders/**', '/static/**'] },
  { methods: ['GET', 'POST', 'PUT'], paths: ['/api/*/items/*', '/api/*/items'] },
  { methods: ['GET'], paths: ['/reports/*.csv', '/reports/*/summary'] },
  { paths: ['/**'] },
  { methods: ['GET', 'HEAD'], paths: ['/docs/**', '/health'] },
  { methods: ['GET', 'POST'], paths: ['/api/v2/**'] },
];
const HTTP_DENIES: readonly Omit<RuleSpec, 'resource'>[] = [
  { paths: ['/admin/**'] },
  { methods: ['DELETE'] },
  { paths: ['/api/*/users/*/tokens', '/api/**/export'] },
];
const SQL_ALLOWS: readonly Omit<RuleSpec, 'resource'>[] = [
  { logins: ['reader'], statements: ['read'], tables: ['public.*', 'sales.orders_*'] },
  { logins: ['writer'], statements: ['read', 'write'], tables: ['public.orders', 'public.items', 'inventory.*'] },
  { logins: ['reader'], statements: ['read'] },
  {
    logins: ['reader', 'writer'],
    statements: ['read'],
    tables: ['*.*'],
    functions: ['now', 'lower', 'count', 'pg_catalog.*'],
  },
];
const SQL_DENIES: readonly Omit<RuleSpec, 'resource'>[] = [
  { functions: ['pg_terminate_backend', 'dblink*', 'lo_*'] },
  { tables: ['hr.*', '"Secrets".*'] },
  { statements: ['ddl', 'admin'] },
];

function buildSpec(): { spec: PolicySpec; rolesByGroup: string[][]; resourcesOfRole: string[][] } {
  const resources: ResourceRef[] = [];
  for (let i = 0; i < HTTP_RESOURCES; i++) resources.push({ name: `svc-${i}`, kind: 'http', logins: [] });
  for (let i = 0; i < PG_RESOURCES; i++) {
    resources.push({ name: `db-${i}`, kind: 'postgres', logins: ['reader', 'writer', 'owner'] });
  }
  const roles: Record<string, RoleSpec> = {};
  const resourcesOfRole: string[][] = [];
  for (let r = 0; r < ROLES; r++) {
    const touched = Array.from({ length: 4 }, () => pick(resources));
    const allow: RuleSpec[] = [];
    const deny: RuleSpec[] = [];
    for (let k = 0; k < RULES_PER_ROLE; k++) {
      const resource = touched[k % touched.length] as ResourceRef;
      const isDeny = k >= RULES_PER_ROLE - 2;
      const shapes =
        resource.kind === 'http' ? (isDeny ? HTTP_DENIES : HTTP_ALLOWS) : isDeny ? SQL_DENIES : SQL_ALLOWS;
      (isDeny ? deny : allow).push({ resource: resource.name, ...pick(shapes) });
    }
    roles[`role-${r}`] = { description: `generated role ${r}`, allow, deny };
    resourcesOfRole.push(touched.map((resource) => resource.name));
  }
  const grants: GrantSpec[] = [];
  const rolesByGroup: string[][] = Array.from({ length: GROUPS }, () => []);
  for (let r = 0; r < ROLES; r++) {
    const group = r % GROUPS;
    (rolesByGroup[group] as string[]).push(`role-${r}`);
    grants.push({ role: `role-${r}`, users: chance(0.1) ? [`user-${r}@example.com`] : [], groups: [`group-${group}`] });
  }
  return { spec: { resources, roles, grants }, rolesByGroup, resourcesOfRole };
}

const METHODS = ['GET', 'GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'HEAD'];
const PATHS = [
  () => `/api/v1/orders/${Math.floor(random() * 1e6)}`,
  () => `/api/v2/items/${Math.floor(random() * 1e4)}`,
  () => '/api/v1/items',
  () => `/static/js/chunk-${Math.floor(random() * 100)}.js`,
  () => `/reports/${2000 + Math.floor(random() * 30)}.csv`,
  () => '/admin/users',
  () => `/api/v1/users/${Math.floor(random() * 1e4)}/tokens`,
  () => '/docs/getting-started/install',
  () => '/health',
];
const TABLES = ['orders', 'public.items', 'sales.orders_2024', 'inventory.stock', 'public.customers', 'hr.salaries'];
const FUNCTIONS = ['now', 'lower', 'count', 'pg_catalog.pg_terminate_backend', 'dblink_exec'];
const CLASSES: StatementClass[] = ['read', 'read', 'read', 'read', 'read', 'read', 'read', 'write', 'write', 'ddl'];

function buildSamples(
  spec: PolicySpec,
  rolesByGroup: string[][],
  resourcesOfRole: string[][],
  kind: 'http' | 'sql' | 'mixed',
  frozen: boolean,
): { principals: Principal[]; actions: Action[] } {
  const kinds = new Map(spec.resources.map((resource) => [resource.name, resource.kind]));
  const people: { principal: Principal; http: string[]; pg: string[] }[] = [];
  for (let p = 0; p < PRINCIPALS; p++) {
    const groups = Array.from({ length: 2 + Math.floor(random() * 2) }, () => Math.floor(random() * GROUPS));
    const reachable = groups.flatMap((g) =>
      (rolesByGroup[g] as string[]).flatMap((role) => resourcesOfRole[Number(role.slice('role-'.length))] ?? []),
    );
    const principal = { subject: `sub-${p}`, email: `user-${p}@example.com`, groups: groups.map((g) => `group-${g}`) };
    people.push({
      principal: frozen ? deepFreeze(principal) : principal,
      http: reachable.filter((name) => kinds.get(name) === 'http'),
      pg: reachable.filter((name) => kinds.get(name) === 'postgres'),
    });
  }
  const principals: Principal[] = [];
  const actions: Action[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const person = pick(people);
    const wantsSql = kind === 'sql' || (kind === 'mixed' && chance(0.4));
    const own = wantsSql ? person.pg : person.http;
    const anyResource = wantsSql
      ? `db-${Math.floor(random() * PG_RESOURCES)}`
      : `svc-${Math.floor(random() * HTTP_RESOURCES)}`;
    const resource = own.length > 0 && chance(0.85) ? pick(own) : anyResource;
    principals.push(person.principal);
    if (wantsSql) {
      const tables = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(TABLES));
      const functions = chance(0.3) ? [pick(FUNCTIONS)] : [];
      actions.push({
        kind: 'sql',
        resource,
        login: pick(['reader', 'reader', 'reader', 'writer']),
        statement: { class: pick(CLASSES), tables, functions },
      });
    } else {
      actions.push({ kind: 'http', resource, method: pick(METHODS), path: pick(PATHS)() });
    }
  }
  return { principals, actions };
}

interface Measurement {
  /** Wall-clock seconds. */
  readonly wall: number;
  /** CPU seconds of this process. */
  readonly cpu: number;
  readonly allowed: number;
}

function run(
  policy: ReturnType<typeof compilePolicy>,
  principals: Principal[],
  actions: Action[],
  count: number,
): Measurement {
  const mask = SAMPLES - 1;
  let allowed = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const j = i & mask;
    if (decide(policy, principals[j] as Principal, actions[j] as Action).effect === 'allow') allowed++;
  }
  const wall = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return { wall, cpu: (cpu.user + cpu.system) / 1e6, allowed };
}

const { spec, rolesByGroup, resourcesOfRole } = buildSpec();
const compileStart = performance.now();
const policy = compilePolicy(spec);
const compileMs = performance.now() - compileStart;
const ruleCount = Object.values(spec.roles).reduce((sum, role) => sum + role.allow.length + role.deny.length, 0);

const WORKLOADS = [
  { label: 'http', kind: 'http', frozen: true },
  { label: 'sql', kind: 'sql', frozen: true },
  { label: 'mixed (60% http, 40% sql)', kind: 'mixed', frozen: true },
  { label: 'mixed, principals not frozen', kind: 'mixed', frozen: false },
] as const;

const rows: string[] = [];
let worst = Number.POSITIVE_INFINITY;
for (const workload of WORKLOADS) {
  const { principals, actions } = buildSamples(spec, rolesByGroup, resourcesOfRole, workload.kind, workload.frozen);
  run(policy, principals, actions, WARMUP);
  const results = Array.from({ length: REPEATS }, () => run(policy, principals, actions, MEASURED));
  results.sort((a, b) => a.cpu - b.cpu);
  const median = results[Math.floor(REPEATS / 2)] as Measurement;
  const rate = MEASURED / median.cpu;
  worst = Math.min(worst, rate);
  const cells = [
    workload.label,
    MEASURED.toLocaleString('en-US'),
    median.cpu.toFixed(3),
    Math.round(rate).toLocaleString('en-US'),
    Math.round(MEASURED / median.wall).toLocaleString('en-US'),
    `${((100 * median.allowed) / MEASURED).toFixed(1)}%`,
  ];
  rows.push(`| ${cells.join(' | ')} |`);
}

console.log(
  `Policy: ${ROLES.toLocaleString('en-US')} roles, ${ruleCount.toLocaleString('en-US')} rules, ` +
    `${spec.resources.length} resources (${HTTP_RESOURCES} http, ${PG_RESOURCES} postgres), ` +
    `${GROUPS} groups; compiled in ${compileMs.toFixed(1)} ms. Node ${process.version}, one core.\n`,
);
const HEADER = ['actions', 'decisions', 'CPU seconds (median of 3)', 'decisions per CPU-second', 'per wall-second', 'allowed'];
console.log(`| ${HEADER.join(' | ')} |`);
console.log('|---|---:|---:|---:|---:|---:|');
for (const row of rows) console.log(row);
console.log(
  `\nTarget ≥ ${TARGET.toLocaleString('en-US')} decisions per CPU-second: ${worst >= TARGET ? 'met' : 'NOT met'} ` +
    `(slowest workload ${Math.round(worst).toLocaleString('en-US')}). ` +
    `Load average at the end: ${loadavg().map((load) => load.toFixed(2)).join(', ')}.`,
);
