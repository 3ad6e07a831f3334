import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatIssue, loadConfig, type LoadConfigResult, type PolicyProblem, type TollgateConfig } from '../config/index.js';
import { TollgateError, isTollgateError } from '../core/index.js';
import { compilePolicy, type PolicySpec } from '../policy/index.js';
import type { CliIo } from './io.js';

/**
 * Reads and validates the config file named on the command line: the one place where a config's
 * file, the files its `${file:…}` references name, and the environment are read. Issues name the
 * file as the user typed it; relative paths inside it resolve against its directory.
 *
 * @throws TollgateError `TG_ERR_CONFIG_NOT_FOUND` when the file itself cannot be read.
 */
export function readConfigFile(file: string, io: CliIo): LoadConfigResult {
  const absolute = resolve(io.cwd, file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new TollgateError('TG_ERR_CONFIG_NOT_FOUND', `cannot read config file ${file}: ${readFailure(error)}; pass an existing file with --config`, {
      cause: error,
      details: { file: absolute },
    });
  }
  return loadConfig({
    file: absolute,
    label: file,
    text,
    env: io.env,
    readFile: (path) => readFileSync(path, 'utf8'),
    checkPolicy: policyProblems,
  });
}

/**
 * Like {@link readConfigFile}, for commands that need a valid config: prints every issue to
 * stderr and fails with `TG_ERR_CONFIG_INVALID` when there are any.
 */
export function loadValidConfig(file: string, io: CliIo): TollgateConfig {
  const result = readConfigFile(file, io);
  if (result.ok) return result.config;
  for (const issue of result.errors) io.stderr(`${formatIssue(issue)}\n`);
  throw new TollgateError('TG_ERR_CONFIG_INVALID', `${file} is not valid; run tollgate config check --config ${file}`);
}

/** What `compilePolicy` would refuse at startup, as problems instead of a throw. */
function policyProblems(spec: PolicySpec): readonly PolicyProblem[] {
  try {
    compilePolicy(spec);
    return [];
  } catch (error) {
    if (!isTollgateError(error, 'TG_ERR_POLICY_INVALID')) throw error;
    const problems = error.details['problems'];
    return Array.isArray(problems) ? (problems as PolicyProblem[]) : [{ path: '', message: error.message }];
  }
}

function readFailure(error: unknown): string {
  const code = error !== null && typeof error === 'object' && 'code' in error ? String(error.code) : '';
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return error instanceof Error ? error.message : String(error);
}
