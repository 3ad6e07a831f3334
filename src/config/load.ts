import { dirname, isAbsolute, join, normalize } from 'node:path';
import { TollgateError, deepFreeze } from '../core/index.js';
import type { PolicySpec } from '../policy/index.js';
import { checkRelations } from './checks.js';
import { formatIssue, formatPath, parsePath, sortIssues, type ConfigIssue } from './issues.js';
import { validateShape, type ConfigShape } from './schema.js';
import { resolveSecrets, type ReadTextFile, type SecretEnv } from './secrets.js';
import type { TollgateConfig } from './types.js';
import { readYaml, type Problem } from './yaml-source.js';

export interface LoadConfigInput {
  /**
   * The config file's path. `audit.dir` and `${file:…}` paths are resolved against its
   * directory, so pass an absolute path (or one relative to the process's working directory).
   */
  readonly file: string;
  /** The file's text. */
  readonly text: string;
  /** The environment that `${env:NAME}` reads. */
  readonly env: SecretEnv;
  /** Reads the files that `${file:PATH}` names. */
  readonly readFile: ReadTextFile;
  /** How issues name the file (for example the path as the user typed it); defaults to `file`. */
  readonly label?: string;
  /**
   * A last check of the derived policy by the room that will run it (the caller wires
   * `compilePolicy`, which this room may not import), so that what it would refuse at startup
   * is reported here with lines. Paths are key paths into the config (`roles.a.allow[0].paths[1]`).
   */
  readonly checkPolicy?: (policy: PolicySpec) => readonly PolicyProblem[];
}

/** A problem found by {@link LoadConfigInput.checkPolicy}. */
export interface PolicyProblem {
  readonly path: string;
  readonly message: string;
}

export type LoadConfigResult =
  | { readonly ok: true; readonly config: TollgateConfig }
  | { readonly ok: false; readonly errors: readonly ConfigIssue[] };

/**
 * Parses, resolves and validates a config file, reporting every problem at once, sorted by line.
 * Nothing is half-applied: either the whole config is valid and returned deep-frozen, or only the
 * issues are returned. Messages never contain secret values.
 */
export function loadConfig(input: LoadConfigInput): LoadConfigResult {
  const label = input.label ?? input.file;
  const source = readYaml(input.text);
  const toIssue = (problem: Problem): ConfigIssue => ({
    file: label,
    line: problem.line ?? source.lineOf(problem.path),
    path: formatPath(problem.path),
    message: problem.message,
  });
  const fail = (problems: readonly Problem[]): LoadConfigResult => ({ ok: false, errors: sortIssues(problems.map(toIssue)) });

  if (source.data === undefined) return fail(source.problems);
  const secrets = resolveSecrets(source.data, { file: input.file, env: input.env, readFile: input.readFile });
  const shape = validateShape(secrets.data);
  const problems = [
    ...source.problems,
    ...secrets.problems,
    ...(shape.ok ? [] : shape.problems.filter((problem) => !isUnder(formatPath(problem.path), secrets.reported))),
    ...checkRelations(secrets.data, source.lineOf),
  ];
  if (!shape.ok || problems.length > 0) return fail(problems);
  const config = buildConfig(shape.value, input.file);
  const policyProblems = input.checkPolicy?.(config.policy) ?? [];
  if (policyProblems.length > 0) return fail(policyProblems.map(({ path, message }) => ({ path: parsePath(path), message })));
  return { ok: true, config };
}

/**
 * {@link loadConfig} for startup paths that cannot go on without a config: throws
 * `TG_ERR_CONFIG_INVALID` with every issue in `details.issues` and one line per issue in the message.
 */
export function loadConfigOrThrow(input: LoadConfigInput): TollgateConfig {
  const result = loadConfig(input);
  if (result.ok) return result.config;
  const label = input.label ?? input.file;
  const count = result.errors.length;
  throw new TollgateError(
    'TG_ERR_CONFIG_INVALID',
    `${label} has ${count} ${count === 1 ? 'error' : 'errors'}; fix ${count === 1 ? 'it' : 'them'} and check again with: tollgate config check --config ${label}\n` +
      result.errors.map(formatIssue).join('\n'),
    { details: { issues: result.errors } },
  );
}

/** Whether `path` is one of `roots` or lies inside one of them. */
function isUnder(path: string, roots: ReadonlySet<string>): boolean {
  for (const root of roots) {
    if (path === root || path.startsWith(`${root}.`) || path.startsWith(`${root}[`)) return true;
  }
  return false;
}

function buildConfig(shape: ConfigShape, file: string): TollgateConfig {
  const { identity, audit, resources, roles, grants } = shape;
  const policy: PolicySpec = {
    resources: resources.map((resource) => ({
      name: resource.name,
      kind: resource.kind,
      logins: resource.kind === 'postgres' ? resource.logins.map((login) => login.name) : [],
    })),
    roles,
    grants,
  };
  const config: TollgateConfig = {
    source: { file },
    server: shape.server,
    identity: { ...identity, bearer: { ...identity.bearer, audiences: identity.bearer.audiences ?? [identity.client_id] } },
    resources,
    roles,
    grants,
    audit: { ...audit, dir: isAbsolute(audit.dir) ? normalize(audit.dir) : join(dirname(file), audit.dir) },
    logging: shape.logging,
    policy,
  };
  return deepFreeze(config);
}
