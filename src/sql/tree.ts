import type { StatementClass } from './types.js';

/**
 * A node of libpg_query's JSON parse tree. A field typed `Node *` in PostgreSQL's parsenodes.h
 * holds a one-key wrapper naming the node type (`{ "RangeVar": { ... } }`); a field typed with
 * a specific struct holds the struct inline. False booleans, zero numbers and empty strings and
 * lists are left out.
 */
export type PgNode = Readonly<Record<string, unknown>>;

/** Node type names start with a capital letter; field names never do. */
const NODE_TYPE_NAME = /^[A-Z]/;

export function isNode(value: unknown): value is PgNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The type and content of a wrapped node, or `null` when `value` is not one. */
export function unwrap(value: unknown): readonly [string, PgNode] | null {
  if (!isNode(value)) return null;
  let type: string | undefined;
  for (const key in value) {
    if (type !== undefined) return null;
    type = key;
  }
  if (type === undefined || !NODE_TYPE_NAME.test(type)) return null;
  const inner = value[type];
  return isNode(inner) ? [type, inner] : null;
}

export function text(node: PgNode, key: string): string | undefined {
  const value = node[key];
  return typeof value === 'string' ? value : undefined;
}

export function flag(node: PgNode, key: string): boolean {
  return node[key] === true;
}

export function list(node: PgNode, key: string): readonly unknown[] {
  const value = node[key];
  return Array.isArray(value) ? value : [];
}

/** The value of a `String` node (`{ "String": { "sval": "x" } }`). */
function stringValue(value: unknown): string | undefined {
  const node = unwrap(value);
  return node !== null && node[0] === 'String' ? text(node[1], 'sval') : undefined;
}

/** The values of a list of `String` nodes (a qualified name), or `null` if any part is not one. */
export function nameParts(values: readonly unknown[]): string[] | null {
  const parts: string[] = [];
  for (const value of values) {
    const part = stringValue(value);
    if (part === undefined) return null;
    parts.push(part);
  }
  return parts;
}

const RANK: Readonly<Record<StatementClass, number>> = { read: 0, write: 1, ddl: 2, admin: 3 };

/** The more powerful of two classes. */
export function strongerClass(a: StatementClass, b: StatementClass): StatementClass {
  return RANK[a] >= RANK[b] ? a : b;
}
