import { LineCounter, isAlias, isMap, isNode, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Pair, YAMLError } from 'yaml';
import type { KeyPath, PathSegment } from './issues.js';

/** A problem before it is tied to a file: a key path and, when the path cannot place it, a line. */
export interface Problem {
  readonly path: KeyPath;
  readonly message: string;
  readonly line?: number;
}

/** A parsed config file: its plain data and a way back from key paths to source lines. */
export interface YamlSource {
  /** The plain data, or `undefined` when the YAML is too broken to validate further. */
  readonly data: unknown;
  readonly problems: readonly Problem[];
  /**
   * The line of the node at `path`; when the path leads past what the file holds (a missing
   * key), the line of the deepest key that does exist.
   */
  lineOf(path: KeyPath): number;
}

/**
 * Aliases may expand to at most this many nodes; more is the "billion laughs" resource
 * exhaustion pattern, never a real config.
 */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses config text as one YAML 1.2 document (core schema: `yes`/`on` stay strings). Every YAML
 * error and warning becomes a problem; duplicate keys are problems too. Only duplicate keys let
 * validation go on: after any other YAML error the data is guesswork.
 */
export function readYaml(text: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  const lineOf = (path: KeyPath): number => locate(doc, path, lineAt, 'last');

  const problems: Problem[] = [];
  let fatal = false;
  for (const error of [...doc.errors, ...doc.warnings]) {
    const offset = error.pos[0];
    const duplicate = error.code === 'DUPLICATE_KEY';
    // Inside a broken flow collection the recovered nodes are guesswork; name the key holding it.
    const path = pathAt(doc, offset, duplicate);
    if (duplicate) {
      const first = locate(doc, path, lineAt, 'first');
      problems.push({ path, line: lineAt(offset), message: `duplicate key; first at line ${first}` });
      continue;
    }
    fatal = true;
    problems.push({ path, line: lineAt(offset), message: yamlMessage(error, lineText(text, offset)) });
  }
  if (fatal) return { data: undefined, problems, lineOf };
  const oddKeys = nonScalarKeys(doc.contents, []);
  for (const { path, node } of oddKeys) {
    const start = startOf(node);
    problems.push({ path, ...(start === undefined ? {} : { line: lineAt(start) }), message: 'mapping keys must be plain names, not lists, mappings or aliases' });
  }
  if (oddKeys.length > 0) return { data: undefined, problems, lineOf };

  try {
    return { data: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), problems, lineOf };
  } catch (error) {
    problems.push(aliasProblem(doc, lineAt, error));
    return { data: undefined, problems, lineOf };
  }
}

/**
 * A mapping key as a path segment. A collection used as a key (`? [a, b]`) has no name a person
 * would write in a path, and its text could be anything, so it yields `null`.
 */
function keyText(key: unknown): string | null {
  return isScalar(key) ? String(key.value) : null;
}

function deref(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function startOf(node: unknown): number | undefined {
  return isNode(node) ? node.range?.[0] : undefined;
}

/**
 * Walks `path` through the YAML nodes; see {@link YamlSource.lineOf}. Of repeated keys the last
 * one holds the value (as in the parsed data); `'first'` picks the first of the final segment.
 */
function locate(doc: Document, path: KeyPath, lineAt: (offset: number) => number, repeated: 'first' | 'last'): number {
  let node: unknown = doc.contents;
  const rootStart = startOf(node);
  let line = rootStart === undefined ? 1 : lineAt(rootStart);
  for (const [depth, segment] of path.entries()) {
    node = deref(doc, node);
    let next: unknown;
    let anchor: number | undefined;
    if (isMap(node)) {
      const matches = node.items.filter((pair: Pair<unknown, unknown>) => keyText(pair.key) === String(segment));
      const pair = repeated === 'first' && depth === path.length - 1 ? matches[0] : matches.at(-1);
      if (pair === undefined) return line;
      anchor = startOf(pair.key) ?? startOf(pair.value);
      next = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      next = node.items[segment];
      if (next === undefined) return line;
      anchor = startOf(next);
    } else {
      return line;
    }
    if (anchor !== undefined) line = lineAt(anchor);
    node = next;
  }
  return line;
}

/**
 * The key path of the deepest node that covers `offset`, empty when none does; it stops at a
 * flow collection (`[ ]`, `{ }`) unless `intoFlow`.
 */
function pathAt(doc: Document, offset: number, intoFlow: boolean): PathSegment[] {
  const path: PathSegment[] = [];
  const covers = (node: unknown): boolean => {
    const range = isNode(node) ? node.range : undefined;
    return range !== undefined && range !== null && offset >= range[0] && offset < Math.max(range[2], range[0] + 1);
  };
  let node: unknown = doc.contents;
  descend: while (node !== null && node !== undefined) {
    if ((isMap(node) || isSeq(node)) && node.flow === true && !intoFlow) break;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = keyText(pair.key);
        if (covers(pair.key)) {
          if (key !== null) path.push(key);
          return path;
        }
        if (covers(pair.value)) {
          if (key === null) return path;
          path.push(key);
          node = pair.value;
          continue descend;
        }
      }
    } else if (isSeq(node)) {
      for (const [index, item] of node.items.entries()) {
        if (covers(item)) {
          path.push(index);
          node = item;
          continue descend;
        }
      }
    }
    break;
  }
  return path;
}

function lineText(text: string, offset: number): string {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', offset);
  return text.slice(start, end === -1 ? text.length : end);
}

/**
 * Our wording for a YAML error. Messages that could echo source text (which may hold a literal
 * secret) are replaced, and the common trap of a `${…}` reference inside `[ ]` gets a hint.
 */
function yamlMessage(error: YAMLError, line: string): string {
  switch (error.code) {
    case 'MULTIPLE_DOCS':
      return 'the config file must hold a single YAML document; remove the second "---"';
    case 'BAD_DQ_ESCAPE':
      return 'invalid escape sequence in a double-quoted string; use single quotes to keep backslashes as they are';
    case 'MISSING_CHAR':
      if (/closing .?quote/i.test(error.message)) return 'a quoted string is missing its closing quote';
      return flowHint(error.message, line);
    case 'TAB_AS_INDENT':
      return 'tabs are not allowed as indentation; indent with spaces';
    default:
      return flowHint(error.message, line);
  }
}

/** The YAML library's message, lower-cased, with a hint for a bare `${…}` inside `[ ]` or `{ }`. */
function flowHint(message: string, line: string): string {
  const text = message.charAt(0).toLowerCase() + message.slice(1);
  const flowTrap = line.includes('${') && /[[{]/.test(line);
  return flowTrap ? `${text}; inside [ ] or { } put a secret reference in quotes: "\${env:NAME}"` : text;
}

function aliasProblem(doc: Document, lineAt: (offset: number) => number, error: unknown): Problem {
  const aliases: { node: YamlNode; path: PathSegment[] }[] = [];
  collectAliases(doc.contents, [], aliases);
  const dangling = aliases.find(({ node }) => isAlias(node) && node.resolve(doc) === undefined);
  if (dangling !== undefined && isAlias(dangling.node)) {
    const start = startOf(dangling.node);
    return {
      path: dangling.path,
      ...(start === undefined ? {} : { line: lineAt(start) }),
      message: `alias *${dangling.node.source} names no anchor defined above it`,
    };
  }
  const first = aliases[0];
  const start = first === undefined ? undefined : startOf(first.node);
  const tooMany = error instanceof Error && /alias count/i.test(error.message);
  return {
    path: first?.path ?? [],
    ...(start === undefined ? {} : { line: lineAt(start) }),
    message: tooMany
      ? `aliases expand to more than ${MAX_ALIAS_COUNT} nodes; write the values out instead`
      : `the YAML aliases cannot be expanded; write the values out instead`,
  };
}

function collectAliases(node: unknown, path: PathSegment[], into: { node: YamlNode; path: PathSegment[] }[]): void {
  if (isAlias(node)) {
    into.push({ node, path });
  } else if (isMap(node)) {
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (key !== null) collectAliases(pair.value, [...path, key], into);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => collectAliases(item, [...path, index], into));
  }
}

/**
 * Keys that are collections or aliases. They are refused before conversion to plain data, which
 * would turn them into strings of their contents.
 */
function nonScalarKeys(node: unknown, path: PathSegment[]): { path: PathSegment[]; node: unknown }[] {
  const found: { path: PathSegment[]; node: unknown }[] = [];
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (key === null) found.push({ path, node: pair.key ?? pair.value });
      else found.push(...nonScalarKeys(pair.value, [...path, key]));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => found.push(...nonScalarKeys(item, [...path, index])));
  }
  return found;
}
