import { createRequire } from 'node:module';
import type * as PgQuery from 'libpg-query';
import { TollgateError } from '../core/index.js';

type PgQueryModule = typeof PgQuery;
type ParseTree = PgQuery.ParseResult;

/** The outcome of one call into the parser: a value, the parser's own rejection, or no answer. */
export type EngineOutcome<T> =
  | { readonly kind: 'value'; readonly value: T }
  /** PostgreSQL's parser rejected the text; `cursor` is its 0-based character position (0: none). */
  | { readonly kind: 'rejected'; readonly message: string; readonly cursor: number }
  /** The WebAssembly instance failed (stack exhausted, trap); it was discarded. */
  | { readonly kind: 'crashed'; readonly message: string }
  /** No intact instance is loaded right now; one is being loaded. */
  | { readonly kind: 'unavailable' };

/**
 * Loads one more, independent instance of the parser. Every evaluation of the package's CommonJS
 * entry instantiates its own WebAssembly module, so the entry is loaded past the require cache,
 * and then taken out of it again. A require function of its own per instance matters too: the
 * module that a require function loads for is the one whose `children` list keeps every loaded
 * instance alive, so it must be as short-lived as the instance.
 */
async function instantiate(): Promise<PgQueryModule> {
  const load = createRequire(import.meta.url);
  const entry = load.resolve('libpg-query');
  delete load.cache[entry];
  const module = load(entry) as PgQueryModule;
  delete load.cache[entry];
  await module.loadModule();
  return module;
}

/**
 * The PostgreSQL parser (libpg_query compiled to WebAssembly) behind a synchronous interface
 * that survives the parser's failures.
 *
 * A deeply nested text can exhaust the native stack inside the WebAssembly code. The trap unwinds
 * past the C code's own cleanup, leaving the instance's shadow stack and heap inconsistent;
 * measured: a few dozen such traps later the instance corrupts its memory and fails every call.
 * So an instance that ever throws anything but the parser's own error is discarded at once and
 * a warm spare takes its place, while another spare loads in the background. Only if failures
 * come faster than spares load is the answer `unavailable` for a moment.
 */
export class ParserEngine {
  #active: PgQueryModule | null;
  #spare: PgQueryModule | null;
  #loading: Promise<void> | null = null;
  #lastLoadError: unknown = null;

  private constructor(active: PgQueryModule, spare: PgQueryModule) {
    this.#active = active;
    this.#spare = spare;
  }

  /** Loads the active instance and its spare. */
  static async load(): Promise<ParserEngine> {
    try {
      const [active, spare] = await Promise.all([instantiate(), instantiate()]);
      return new ParserEngine(active, spare);
    } catch (error) {
      throw unavailableError(error);
    }
  }

  /** Parses `text` (not empty) into libpg_query's JSON parse tree. */
  parse(text: string): EngineOutcome<ParseTree> {
    return this.#call((module) => module.parseSync(text));
  }

  /** libpg_query's fingerprint of `text`, which must parse. */
  fingerprint(text: string): EngineOutcome<string> {
    return this.#call((module) => module.fingerprintSync(text));
  }

  /** Resolves once both the active instance and a spare are loaded. */
  async ready(): Promise<void> {
    while (this.#active === null || this.#spare === null) {
      await this.#replenish();
      if (this.#lastLoadError !== null) throw unavailableError(this.#lastLoadError);
    }
  }

  #call<T>(run: (module: PgQueryModule) => T): EngineOutcome<T> {
    const module = this.#active;
    if (module === null) {
      void this.#replenish();
      return { kind: 'unavailable' };
    }
    try {
      return { kind: 'value', value: run(module) };
    } catch (error) {
      if (error instanceof module.SqlError) {
        return { kind: 'rejected', message: error.message, cursor: error.sqlDetails?.cursorPosition ?? 0 };
      }
      // fingerprintSync reports a text it cannot parse as a plain Error, thrown by its JavaScript
      // wrapper after the C code returned normally: the instance is intact.
      if (error instanceof Error && Object.getPrototypeOf(error) === Error.prototype) {
        return { kind: 'rejected', message: error.message, cursor: 0 };
      }
      this.#active = this.#spare;
      this.#spare = null;
      void this.#replenish();
      return { kind: 'crashed', message: error instanceof Error ? error.message : String(error) };
    }
  }

  /** Loads instances until there is an active one and a spare; one loader at a time. */
  #replenish(): Promise<void> {
    this.#loading ??= (async () => {
      try {
        while (this.#active === null || this.#spare === null) {
          const module = await instantiate();
          if (this.#active === null) this.#active = module;
          else this.#spare = module;
        }
        this.#lastLoadError = null;
      } catch (error) {
        this.#lastLoadError = error;
      } finally {
        this.#loading = null;
      }
    })();
    return this.#loading;
  }
}

function unavailableError(cause: unknown): TollgateError {
  return new TollgateError(
    'TG_ERR_SQL_PARSER_UNAVAILABLE',
    'The PostgreSQL parser (libpg-query, WebAssembly) could not be loaded. Reinstall dependencies with `npm ci` and make sure the process may allocate WebAssembly memory.',
    { cause },
  );
}
