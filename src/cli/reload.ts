import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { AuditStore } from '../audit/index.js';
import { formatIssue, type TollgateConfig } from '../config/index.js';
import type { Logger } from '../core/index.js';
import { compilePolicy, type CompiledPolicy } from '../policy/index.js';
import { readConfigSource, type ConfigFileRead } from './config-file.js';
import type { CliIo } from './io.js';
import { onReloadSignal } from './signals.js';

/** Where a running gateway's config file is read again on each reload. */
export interface ConfigFileReader {
  /** The path as the admin gave it; messages name the file so. */
  readonly label: string;
  /** The absolute path; `--watch-config` watches its directory. */
  readonly file: string;
  /** @throws TollgateError `TG_ERR_CONFIG_NOT_FOUND` when the file cannot be read. */
  read(): ConfigFileRead;
}

/** Reads `file` (relative to `io.cwd`) with `io.env` for its `${env:…}` references. */
export function configFileReader(file: string, io: CliIo): ConfigFileReader {
  return { label: file, file: resolve(io.cwd, file), read: () => readConfigSource(file, io) };
}

/** SHA-256 (lower-case hex) of config text as written to disk in UTF-8. */
export function configTextSha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The config sections a reload puts in force while connections stay open. */
export const LIVE_SECTIONS = ['resources', 'roles', 'grants'] as const;
export type LiveSection = (typeof LIVE_SECTIONS)[number];

/**
 * Sections only a restart applies: listeners and TLS, the IdP and session keys, the audit store,
 * the log level. A reload that changes any of them is refused whole.
 */
export const RESTART_SECTIONS = ['server', 'identity', 'audit', 'logging'] as const;

/** What set a reload off, for its log line. */
export type ReloadTrigger = 'SIGHUP' | 'file-change' | 'call';

/** Why a reload was refused; the old config stays in force in every case. */
export type ReloadRefusal = 'unreadable' | 'invalid' | 'restart-required' | 'audit-unavailable' | 'stopping';

export type ReloadOutcome =
  | {
      readonly ok: true;
      /** The live sections that differ from the config in force before; empty when none did. */
      readonly changed: readonly LiveSection[];
      /** SHA-256 of the file now in force. */
      readonly sha256: string;
      /** Seq of the `config.loaded` record; `null` when the file was unchanged and nothing was recorded. */
      readonly seq: number | null;
    }
  | {
      readonly ok: false;
      readonly refusal: ReloadRefusal;
      /** One line each: `file:line key.path: message` for an invalid file. */
      readonly errors: readonly string[];
    };

export interface ConfigReloaderOptions {
  readonly reader: ConfigFileReader;
  /** The config in force at start. */
  readonly config: TollgateConfig;
  /** SHA-256 of the bytes `config` was read from. */
  readonly sha256: string;
  /** Where `config.loaded` is recorded; a reload that cannot be recorded is refused. */
  readonly audit: Pick<AuditStore, 'append'>;
  /**
   * Puts a validated config and its compiled policy in force. Synchronous, so that every request
   * and statement is decided wholly by the old config or wholly by the new one.
   */
  readonly apply: (config: TollgateConfig, policy: CompiledPolicy) => void;
  readonly logger: Logger;
}

/**
 * Reloads the config file of a running gateway (DESIGN.md §3 "The config file"): read and
 * validate the whole file, refuse it whole when it is invalid or changes what only a restart can
 * apply, record `config.loaded` durably, and only then put the new policy and resources in
 * force. Reloads run one at a time, in the order asked for.
 */
export class ConfigReloader {
  readonly #options: ConfigReloaderOptions;
  readonly #logger: Logger;
  #config: TollgateConfig;
  #sha256: string;
  #queue: Promise<unknown> = Promise.resolve();
  #stopping = false;

  constructor(options: ConfigReloaderOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'config-reload' });
    this.#config = options.config;
    this.#sha256 = options.sha256;
  }

  /** The config in force. */
  get config(): TollgateConfig {
    return this.#config;
  }

  reload(trigger: ReloadTrigger = 'call'): Promise<ReloadOutcome> {
    const outcome = this.#queue.then(() => this.#reload(trigger));
    this.#queue = outcome.catch(() => undefined);
    return outcome;
  }

  /** Refuses reloads from now on and waits for the one running, if any. */
  async close(): Promise<void> {
    this.#stopping = true;
    await this.#queue;
  }

  async #reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const { reader } = this.#options;
    if (this.#stopping) return this.#refuse(trigger, 'stopping', ['the gateway is stopping']);
    let read: ConfigFileRead;
    try {
      read = reader.read();
    } catch (error) {
      return this.#refuse(trigger, 'unreadable', [error instanceof Error ? error.message : String(error)]);
    }
    if (!read.result.ok) return this.#refuse(trigger, 'invalid', read.result.errors.map(formatIssue));
    const next = read.result.config;
    const restart = RESTART_SECTIONS.flatMap((section) => changedKeys(section, this.#config[section], next[section]));
    if (restart.length > 0) {
      return this.#refuse(trigger, 'restart-required', [
        `${reader.label}: ${restart.join(', ')} changed; restart to apply (the reload was refused whole, nothing was applied)`,
      ]);
    }
    const changed = LIVE_SECTIONS.filter((section) => changedKeys(section, this.#config[section], next[section]).length > 0);
    if (changed.length === 0 && read.sha256 === this.#sha256) {
      this.#logger.info({ trigger, file: reader.label, sha256: read.sha256 }, 'config unchanged; nothing to reload');
      return { ok: true, changed, sha256: read.sha256, seq: null };
    }
    // The loader already compiled this policy to check it, so this cannot fail on the file's account.
    const policy = compilePolicy(next.policy);
    let seq: number;
    try {
      const appended = await this.#options.audit.append({
        kind: 'config.loaded',
        data: {
          file: next.source.file,
          sha256: read.sha256,
          reload: true,
          changed: [...changed],
          resources: next.resources.map((resource) => resource.name),
          roles: Object.keys(next.roles),
          grants: next.grants.length,
        },
      });
      seq = appended.seq;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return this.#refuse(trigger, 'audit-unavailable', [`the config.loaded record could not be written (${reason}); fix the audit log, then reload again`]);
    }
    this.#options.apply(next, policy);
    this.#config = next;
    this.#sha256 = read.sha256;
    this.#logger.info({ trigger, file: reader.label, sha256: read.sha256, seq, changed }, `config reloaded (${changed.length === 0 ? 'no policy change' : `${changed.join(', ')} changed`})`);
    return { ok: true, changed, sha256: read.sha256, seq };
  }

  #refuse(trigger: ReloadTrigger, refusal: ReloadRefusal, errors: readonly string[]): ReloadOutcome {
    this.#logger.error({ trigger, file: this.#options.reader.label, refusal, errors }, `config reload refused (${refusal}): ${errors.join('; ')}; the old config stays in force`);
    return { ok: false, refusal, errors };
  }
}

/**
 * The key paths under `path` where `before` and `after` differ (`server.http.listen`,
 * `identity.session.keys[0]`), for validated configs: plain objects, arrays and scalars. A list
 * whose length changed is named as a whole.
 */
export function changedKeys(path: string, before: unknown, after: unknown): string[] {
  if (Object.is(before, after)) return [];
  if (Array.isArray(before) && Array.isArray(after)) {
    if (before.length !== after.length) return [path];
    return before.flatMap((item: unknown, i) => changedKeys(`${path}[${i}]`, item, after[i]));
  }
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((key) => changedKeys(`${path}.${key}`, before[key], after[key]));
  }
  return [path];
}

function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface ReloadTriggerOptions {
  readonly reload: (trigger: ReloadTrigger) => Promise<ReloadOutcome>;
  readonly logger: Logger;
  /** The config file to watch (its directory is watched), or `null` for SIGHUP only. */
  readonly watchFile: string | null;
  /** Quiet time after the last change before reloading; default {@link WATCH_DEBOUNCE_MS}. */
  readonly debounceMs?: number;
  /** Also told each outcome, e.g. to print it where the operator looks (the demo). */
  readonly onOutcome?: (outcome: ReloadOutcome) => void;
}

/**
 * Editors save in bursts (write a temporary file, rename it over the original, touch it again);
 * one reload after the burst settles reads the finished file.
 */
export const WATCH_DEBOUNCE_MS = 300;

/**
 * Reloads on every SIGHUP and, with `watchFile`, when the file changes. The directory is
 * watched rather than the file, since editors and config management replace a file by renaming
 * a new one over it, which ends a watch on the old file. Close it before the gateway.
 */
export function startReloadTriggers(options: ReloadTriggerOptions): { close(): void } {
  const logger = options.logger.child({ component: 'config-reload' });
  const run = (trigger: ReloadTrigger): void => {
    options.reload(trigger).then(
      (outcome) => options.onOutcome?.(outcome),
      (error: unknown) => logger.error({ err: error, trigger }, 'config reload failed unexpectedly; the old config stays in force'),
    );
  };
  const stopSignal = onReloadSignal(() => run('SIGHUP'));
  if (options.watchFile === null) return { close: stopSignal };

  const name = basename(options.watchFile);
  const dir = dirname(options.watchFile);
  const debounceMs = options.debounceMs ?? WATCH_DEBOUNCE_MS;
  let timer: NodeJS.Timeout | null = null;
  const watcher = watch(dir, { persistent: false }, (_event, changed) => {
    // Linux names the entry that changed; a platform that cannot (null) may mean ours.
    if (changed !== null && changed !== name) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      run('file-change');
    }, debounceMs);
  });
  watcher.on('error', (error) => logger.warn({ err: error, dir }, 'watching the config directory failed; reload with SIGHUP'));
  logger.info({ dir, file: name, debounceMs }, 'watching the config file for changes');
  return {
    close() {
      stopSignal();
      if (timer !== null) clearTimeout(timer);
      watcher.close();
    },
  };
}

/** One line for an operator's terminal: what the reload did, or why nothing changed. */
export function describeReloadOutcome(outcome: ReloadOutcome): string {
  if (!outcome.ok) return `config reload refused (${outcome.refusal}); the old config stays in force:\n${outcome.errors.map((error) => `  ${error}`).join('\n')}`;
  if (outcome.seq === null) return 'config unchanged; nothing to reload';
  return `config reloaded (${outcome.changed.length === 0 ? 'no policy change' : `${outcome.changed.join(', ')} changed`}), recorded as audit seq ${outcome.seq}`;
}
