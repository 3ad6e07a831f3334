import { dirname, isAbsolute, join } from 'node:path';
import { formatPath, type KeyPath, type PathSegment } from './issues.js';
import type { Problem } from './yaml-source.js';

/** Environment variables as the caller sees them; the config room never reads `process.env`. */
export type SecretEnv = Readonly<Record<string, string | undefined>>;

/**
 * Reads a whole file as UTF-8 text; throws (with a Node `code` such as `ENOENT`) when it cannot.
 * Injected by the caller, so that only `cli` touches the file system.
 */
export type ReadTextFile = (path: string) => string;

/**
 * The keys that hold secrets, the only places where `${env:…}` and `${file:…}` are resolved.
 * `*` stands for any list index.
 */
const SECRET_PATHS: readonly (readonly string[])[] = [
  ['server', 'http', 'tls', 'cert'],
  ['server', 'http', 'tls', 'key'],
  ['server', 'postgres', 'tls', 'cert'],
  ['server', 'postgres', 'tls', 'key'],
  ['identity', 'client_secret'],
  ['identity', 'session', 'keys', '*'],
  ['identity', 'db_tokens', 'signing_key'],
  ['resources', '*', 'upstream', 'ca'],
  ['resources', '*', 'logins', '*', 'password'],
  ['audit', 'signing_key'],
];

const ENV_REFERENCE = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;
const FILE_REFERENCE = /^\$\{file:([^}]+)\}$/;
const REFERENCE_LIKE = /\$\{/;

export interface ResolvedSecrets {
  /** A copy of the data with every secret reference replaced by its value. */
  readonly data: unknown;
  readonly problems: readonly Problem[];
  /**
   * Formatted paths already reported here (an unresolved reference, a reference outside a
   * secret key); schema complaints about the same keys would only repeat them.
   */
  readonly reported: ReadonlySet<string>;
}

interface SecretContext {
  readonly file: string;
  readonly env: SecretEnv;
  readonly readFile: ReadTextFile;
}

/**
 * Resolves `${env:NAME}` and `${file:PATH}` in the secret keys of parsed config data. PATH is
 * relative to the config file's directory. A problem names the reference, never the value.
 */
export function resolveSecrets(data: unknown, context: SecretContext): ResolvedSecrets {
  const problems: Problem[] = [];
  const reported = new Set<string>();
  const report = (path: KeyPath, message: string): void => {
    problems.push({ path, message });
    reported.add(formatPath(path));
  };

  const visit = (value: unknown, path: PathSegment[]): unknown => {
    if (Array.isArray(value)) return value.map((item, index) => visit(item, [...path, index]));
    if (value !== null && typeof value === 'object') {
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        Object.defineProperty(copy, key, { value: visit(item, [...path, key]), enumerable: true, writable: true, configurable: true });
      }
      return copy;
    }
    if (typeof value !== 'string') return value;
    if (isSecretPath(path)) {
      const outcome = resolveReference(value, context);
      if (outcome.ok) return outcome.value;
      report(path, outcome.message);
      return value;
    }
    if ((ENV_REFERENCE.test(value) || FILE_REFERENCE.test(value)) && !holdsSecrets(path)) {
      report(path, 'secret references are resolved only in secret keys (passwords, keys, certificates); write the value itself here');
    }
    return value;
  };

  return { data: visit(data, []), problems, reported };
}

function isSecretPath(path: KeyPath): boolean {
  return SECRET_PATHS.some(
    (pattern) =>
      pattern.length === path.length &&
      pattern.every((part, index) => (part === '*' ? typeof path[index] === 'number' : part === path[index])),
  );
}

/** Whether secret keys lie below `path` (a list of keys written as one string is a type error, reported by the schema). */
function holdsSecrets(path: KeyPath): boolean {
  return SECRET_PATHS.some(
    (pattern) =>
      pattern.length > path.length &&
      path.every((part, index) => (pattern[index] === '*' ? typeof part === 'number' : pattern[index] === part)),
  );
}

type Resolution = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly message: string };

function resolveReference(text: string, context: SecretContext): Resolution {
  const env = ENV_REFERENCE.exec(text);
  if (env) {
    const value = context.env[env[1] ?? ''];
    if (value === undefined) return { ok: false, message: `${text} is not set` };
    if (value === '') return { ok: false, message: `${text} is set but empty` };
    return { ok: true, value };
  }
  const file = FILE_REFERENCE.exec(text);
  if (file) return readSecretFile(text, file[1] ?? '', context);
  if (REFERENCE_LIKE.test(text)) {
    return { ok: false, message: 'holds "${" but is not a whole ${env:NAME} or ${file:PATH} reference' };
  }
  return { ok: true, value: text };
}

function readSecretFile(reference: string, relative: string, context: SecretContext): Resolution {
  const target = isAbsolute(relative) ? relative : join(dirname(context.file), relative);
  let text: string;
  try {
    text = context.readFile(target);
  } catch (error) {
    return { ok: false, message: `${reference} cannot be read: ${readFailure(error)} (${target})` };
  }
  // A key or password file usually ends with a newline that is not part of the secret; PEM
  // text keeps its final newline, as PEM parsers expect whole lines.
  const trimmed = text.replace(/(?:\r?\n)+$/, '');
  if (trimmed === '') return { ok: false, message: `${reference} is empty (${target})` };
  return { ok: true, value: trimmed.includes('\n') ? text : trimmed };
}

function readFailure(error: unknown): string {
  const code = error !== null && typeof error === 'object' && 'code' in error ? String(error.code) : '';
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return code === '' ? 'read failed' : `read failed with ${code}`;
  }
}
