import { qualifiedName } from './names.js';
import { classOfCall, explainRuns, isCatalogRelation, RELATION_OBJECT_TYPES } from './rules.js';
import { isNode, list, nameParts, strongerClass, text, unwrap } from './tree.js';
import type { PgNode } from './tree.js';
import type { StatementClass } from './types.js';

/** What the walk of one statement's tree found. */
export interface TreeFacts {
  readonly tables: ReadonlySet<string>;
  readonly functions: ReadonlySet<string>;
  /** Names that attribute notation may call as functions (`ClassifiedStatement.possibleFunctions`). */
  readonly possibleFunctions: ReadonlySet<string>;
  /** The least class the statement's contents imply (writes in CTEs, locking clauses, calls). */
  readonly effect: StatementClass;
  /** Names of prepared statements the statement runs (`EXECUTE`, also inside EXPLAIN ANALYZE). */
  readonly executes: readonly string[];
}

/** Statements that change rows wherever they appear (top level, CTE, COPY, EXPLAIN ANALYZE). */
const DATA_CHANGES: ReadonlySet<string> = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

const NO_CTES: ReadonlySet<string> = new Set();

interface Frame {
  readonly value: unknown;
  /** The node type when `value` is the content of a wrapped node. */
  readonly type: string | undefined;
  /** Names of the common table expressions visible here; a bare name among them is no table. */
  readonly ctes: ReadonlySet<string>;
  /** False inside the statement of a plain EXPLAIN, which is planned but not run. */
  readonly runs: boolean;
  readonly depth: number;
}

/**
 * Visits every node of one statement's parse tree, so that no nesting (subqueries, CTEs, joins,
 * `WHERE EXISTS`, `INSERT ... SELECT`, MERGE sources, function arguments) hides a table or a
 * call. Iterative, with an explicit stack: a deep tree cannot exhaust the JavaScript stack, and
 * one deeper than `maxDepth` ends the walk with `null`.
 *
 * Tables are RangeVar nodes (found by shape, since typed fields hold them unwrapped), plus the
 * relations that `DROP` and `COMMENT ON` name as plain lists; functions are FuncCall nodes, and
 * possible functions the later parts of qualified column references and field selections.
 */
export function walkStatement(statement: unknown, maxDepth: number): TreeFacts | null {
  const tables = new Set<string>();
  const functions = new Set<string>();
  const possibleFunctions = new Set<string>();
  const executes: string[] = [];
  let effect: StatementClass = 'read';
  const stack: Frame[] = [{ value: statement, type: undefined, ctes: NO_CTES, runs: true, depth: 0 }];

  const push = (value: unknown, type: string | undefined, ctes: ReadonlySet<string>, runs: boolean, depth: number): void => {
    if (typeof value === 'object' && value !== null) stack.push({ value, type, ctes, runs, depth });
  };

  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    const { value, ctes, runs, depth } = frame;
    if (depth > maxDepth) return null;
    if (Array.isArray(value)) {
      for (const item of value) push(item, undefined, ctes, runs, depth + 1);
      continue;
    }
    if (!isNode(value)) continue;

    const wrapped = unwrap(value);
    if (wrapped !== null) {
      const [type, node] = wrapped;
      if (runs) {
        if (DATA_CHANGES.has(type) || type === 'LockingClause') effect = strongerClass(effect, 'write');
        if (type === 'ExecuteStmt') executes.push(text(node, 'name') ?? '');
        if (writesCatalog(type, node)) effect = 'admin';
      }
      if (type === 'ColumnRef') addNames(possibleFunctions, list(node, 'fields'), 1);
      else if (type === 'A_Indirection') addNames(possibleFunctions, list(node, 'indirection'), 0);
      for (const parts of namedRelations(type, node)) tables.add(qualifiedName(parts));
      push(node, type, ctes, runs, depth + 1);
      continue;
    }

    const table = rangeVarParts(value);
    if (table !== null && !(table.length === 1 && ctes.has(table[0] as string))) tables.add(qualifiedName(table));
    const call = funcCallParts(value);
    if (call !== null) {
      functions.add(qualifiedName(call));
      if (runs) effect = strongerClass(effect, classOfCall(call[call.length - 1] as string, list(value, 'args')));
    }

    let inner = ctes;
    const withClause = value['withClause'];
    if (isNode(withClause)) {
      // A CTE sees the ones before it, or with RECURSIVE all of them; the rest of the statement
      // sees all. https://www.postgresql.org/docs/current/queries-with.html
      const entries = list(withClause, 'ctes');
      const names = entries.map((entry) => cteName(entry));
      const recursive = withClause['recursive'] === true;
      inner = union(ctes, names);
      entries.forEach((entry, index) => {
        push(entry, undefined, recursive ? inner : union(ctes, names.slice(0, index)), runs, depth + 1);
      });
    }
    const plainExplain = frame.type === 'ExplainStmt' && !explainRuns(value);
    for (const key in value) {
      const child = value[key];
      if (key === 'withClause' || typeof child !== 'object' || child === null) continue;
      // The target of INSERT/UPDATE/DELETE/MERGE and of SELECT INTO is always a table, even
      // when a CTE of the same name is in scope.
      const target =
        (key === 'relation' && frame.type !== undefined && DATA_CHANGES.has(frame.type)) ||
        (key === 'intoClause' && frame.type === 'SelectStmt');
      push(child, undefined, target ? NO_CTES : inner, runs && !(plainExplain && key === 'query'), depth + 1);
    }
  }
  return { tables, functions, possibleFunctions, effect, executes };
}

/**
 * Whether the statement node writes rows into a catalog relation (see {@link isCatalogRelation}):
 * the target of INSERT/UPDATE/DELETE/MERGE, wherever the statement sits, or of `COPY ... FROM`.
 */
function writesCatalog(type: string, node: PgNode): boolean {
  if (!DATA_CHANGES.has(type) && !(type === 'CopyStmt' && node['is_from'] === true)) return false;
  const relation = node['relation'];
  const parts = isNode(relation) ? rangeVarParts(relation) : null;
  return parts !== null && isCatalogRelation(parts);
}

/**
 * Adds the `String` items of `items` from index `from` on. In `o.f` (a ColumnRef's fields) and
 * `(expr).f` (an A_Indirection's field selections) PostgreSQL calls a one-argument function `f`
 * when the row has no column `f`, and `o.f.g` may be `g(f(o))`: every part but the first may be a
 * call. https://www.postgresql.org/docs/current/xfunc-sql.html#XFUNC-SQL-COMPOSITE-FUNCTIONS
 */
function addNames(into: Set<string>, items: readonly unknown[], from: number): void {
  for (let i = from; i < items.length; i++) {
    const item = unwrap(items[i]);
    if (item === null || item[0] !== 'String') continue;
    const name = text(item[1], 'sval');
    if (name !== undefined) into.add(qualifiedName([name]));
  }
}

/** The name parts of a RangeVar (`catalogname`, `schemaname`, `relname`; only RangeVar has
 * `relpersistence`), or `null` when `node` is not one. */
function rangeVarParts(node: PgNode): string[] | null {
  const relname = text(node, 'relname');
  if (relname === undefined || typeof node['relpersistence'] !== 'string') return null;
  const parts = [text(node, 'catalogname'), text(node, 'schemaname'), relname];
  return parts.filter((part): part is string => part !== undefined);
}

/** The name parts of a FuncCall (a `funcname` list plus a `funcformat`), or `null`. */
function funcCallParts(node: PgNode): string[] | null {
  if (!Array.isArray(node['funcname']) || typeof node['funcformat'] !== 'string') return null;
  const parts = nameParts(node['funcname']);
  return parts === null || parts.length === 0 ? null : parts;
}

/** Relations named as plain name lists: `DROP TABLE a, s.b`, `COMMENT ON TABLE`/`COLUMN`. */
function namedRelations(type: string, node: PgNode): string[][] {
  if (type === 'DropStmt') {
    if (!RELATION_OBJECT_TYPES.has(text(node, 'removeType') ?? '')) return [];
    return list(node, 'objects').flatMap((object) => {
      const parts = listParts(object);
      return parts === null ? [] : [parts];
    });
  }
  if (type === 'CommentStmt' || type === 'SecLabelStmt') {
    const objectType = text(node, 'objtype') ?? '';
    const parts = listParts(node['object']);
    if (parts === null) return [];
    if (RELATION_OBJECT_TYPES.has(objectType)) return [parts];
    if (objectType === 'OBJECT_COLUMN' && parts.length > 1) return [parts.slice(0, -1)];
  }
  return [];
}

/** The parts of a `{ "List": { "items": [String...] } }` name. */
function listParts(value: unknown): string[] | null {
  const wrapped = unwrap(value);
  if (wrapped === null || wrapped[0] !== 'List') return null;
  const parts = nameParts(list(wrapped[1], 'items'));
  return parts === null || parts.length === 0 ? null : parts;
}

function cteName(entry: unknown): string {
  const wrapped = unwrap(entry);
  return wrapped === null ? '' : (text(wrapped[1], 'ctename') ?? '');
}

function union(base: ReadonlySet<string>, names: readonly string[]): ReadonlySet<string> {
  if (names.length === 0) return base;
  return new Set([...base, ...names]);
}
