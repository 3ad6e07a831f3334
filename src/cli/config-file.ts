import { createHash } from 'node:crypto';
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
  return readConfigSource(file, io).result;
}

/** A config file read once: the validation result and the SHA-256 of the very bytes validated. */
export interface ConfigFileRead {
  readonly result: LoadConfigResult;
  /** Lower-case hex; recorded in `config.loaded` so the audit log names the exact file in force. */
  readonly sha256: string;
}

/**
 * {@link readConfigFile} with the file's hash, for `serve` and reloads.
 *
 * @throws TollgateError `TG_ERR_CONFIG_NOT_FOUND` when the file itself cannot be read.
 */
export function readConfigSource(file: string, io: CliIo): ConfigFileRead {
  const absolute = resolve(io.cwd, file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(absolute);
  } catch (error) {
    throw new TollgateError('TG_ERR_CONFIG_NOT_FOUND', `cannot read config file ${file}: ${readFailure(error)}; pass an existing file with --config`, {
      cause: error,
      details: { file: absolute },
    });
  }
  const result = loadConfig({
    file: absolute,
    label: file,
    text: bytes.toString('utf8'),
    env: io.env,
    readFile: (path) => readFileSync(path, 'utf8'),
    checkPolicy: policyProblems,
  });
  return { result, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Like {@link readConfigFile}, for commands that need a valid config: prints every issue to
 * stderr and fails with `TG_ERR_CONFIG_INVALID` when there are any.
 */
export function loadValidConfig(file: string, io: CliIo): TollgateConfig {
  return loadValidConfigSource(file, io).config;
}

/** {@link loadValidConfig} with the SHA-256 of the file's bytes (see {@link readConfigSource}). */
export function loadValidConfigSource(file: string, io: CliIo): { readonly config: TollgateConfig; readonly sha256: string } {
  const { result, sha256 } = readConfigSource(file, io);
  if (result.ok) return { config: result.config, sha256 };
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
