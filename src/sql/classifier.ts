import { LRUCache } from 'lru-cache';
import { deepFreeze, TollgateError } from '../core/index.js';
import { ParserEngine } from './engine.js';
import type { EngineOutcome } from './engine.js';
import { lexSql } from './lexer.js';
import type { LexedText } from './lexer.js';
import { classOfNode, commandOfNode } from './rules.js';
import { boundsOf, byteStarts, constantsAreValues, statementText } from './template.js';
import type { StatementBounds } from './template.js';
import { SourceText, textProblem } from './text.js';
import { flag, strongerClass, text, unwrap } from './tree.js';
import type { PgNode } from './tree.js';
import type {
  ClassifiedStatement,
  ClassifyContext,
  ClassifyError,
  ClassifyResult,
  PreparedStatementFacts,
  PreparedStatementOp,
  SqlClassifier,
  SqlClassifierOptions,
  StatementClass,
} from './types.js';
import { walkStatement } from './walk.js';

const DEFAULTS = { cacheSize: 10_000, cacheMaxChars: 32_000_000, maxDepth: 5_000 } as const;
/** What an entry costs the cache beyond its characters (objects, arrays, strings' headers). */
const ENTRY_OVERHEAD = 256;

/** A statement before the facts of the prepared statement it may EXECUTE are known. */
interface Analysis {
  readonly text: string;
  readonly command: string;
  readonly class: StatementClass;
  readonly tables: readonly string[];
  readonly functions: readonly string[];
  readonly possibleFunctions: readonly string[];
  readonly fingerprint: string;
  readonly prepare: string | null;
  readonly execute: string | null;
  /** A name, or `null` for all of them (`DEALLOCATE ALL`, `DISCARD ALL`); `undefined` for none. */
  readonly deallocate: string | null | undefined;
  /** The cursor a `FETCH`/`MOVE` reads. */
  readonly cursor: string | null;
}

interface CacheEntry {
  /** The result when the caller knows no prepared statements. */
  readonly result: ClassifyResult;
  /** Set when an EXECUTE in the text depends on the caller's prepared statements. */
  readonly analyses: readonly Analysis[] | null;
}

/**
 * The classification of every text with one lexer key (texts that differ only in constant
 * values): each statement's analysis, less its text, which is cut from each text by its bounds.
 */
interface Template {
  readonly statements: readonly { readonly bounds: StatementBounds; readonly analysis: Analysis }[];
  /** An EXECUTE in the text depends on the caller's prepared statements. */
  readonly usesContext: boolean;
}

interface Computed {
  readonly entry: CacheEntry;
  readonly cacheable: boolean;
  /** The parser's statements and their analyses, when the text parsed. */
  readonly parsed?: { readonly stmts: readonly { stmt_location?: number; stmt_len?: number }[]; readonly tree: unknown; readonly analyses: readonly Analysis[] };
}

let sharedEngine: Promise<ParserEngine> | null = null;

/** The one parser engine of the process, loaded on first use; a failed load is retried next time. */
function loadEngine(): Promise<ParserEngine> {
  sharedEngine ??= ParserEngine.load().catch((error: unknown) => {
    sharedEngine = null;
    throw error;
  });
  return sharedEngine;
}

/**
 * Loads PostgreSQL's parser (once per process) and returns a classifier with its own cache.
 * Rejects with `TG_ERR_SQL_PARSER_UNAVAILABLE` when the WebAssembly parser cannot be loaded.
 */
export async function loadSqlClassifier(options: SqlClassifierOptions = {}): Promise<SqlClassifier> {
  const settings = {
    cacheSize: checkCount('cacheSize', options.cacheSize ?? DEFAULTS.cacheSize, 0),
    cacheMaxChars: checkCount('cacheMaxChars', options.cacheMaxChars ?? DEFAULTS.cacheMaxChars, 1),
    maxDepth: checkCount('maxDepth', options.maxDepth ?? DEFAULTS.maxDepth, 1),
  };
  return new Classifier(await loadEngine(), settings);
}

function checkCount(name: string, value: number, least: number): number {
  if (!Number.isSafeInteger(value) || value < least) {
    throw new TollgateError('TG_ERR_INTERNAL', `SQL classifier option ${name} must be an integer of at least ${least}, got ${value}.`);
  }
  return value;
}

class Classifier implements SqlClassifier {
  readonly #engine: ParserEngine;
  readonly #maxDepth: number;
  readonly #cache: LRUCache<string, CacheEntry> | null;
  /** Classifications by lexer key, for texts that differ from one seen only in their constants. */
  readonly #templates: LRUCache<string, Template> | null;

  constructor(engine: ParserEngine, settings: { cacheSize: number; cacheMaxChars: number; maxDepth: number }) {
    this.#engine = engine;
    this.#maxDepth = settings.maxDepth;
    this.#cache =
      settings.cacheSize === 0
        ? null
        : new LRUCache<string, CacheEntry>({
            max: settings.cacheSize,
            maxSize: settings.cacheMaxChars,
            sizeCalculation: (entry, key) => entrySize(key, entry),
          });
    this.#templates =
      settings.cacheSize === 0
        ? null
        : new LRUCache<string, Template>({
            max: settings.cacheSize,
            maxSize: settings.cacheMaxChars,
            sizeCalculation: (template, key) => key.length + ENTRY_OVERHEAD * (1 + template.statements.length),
          });
  }

  get cachedTexts(): number {
    return this.#cache?.size ?? 0;
  }

  get cachedTemplates(): number {
    return this.#templates?.size ?? 0;
  }

  ready(): Promise<void> {
    return this.#engine.ready();
  }

  classify(sql: string, context?: ClassifyContext): ClassifyResult {
    let entry = this.#cache?.get(sql);
    if (entry === undefined) {
      const computed = this.#uncached(sql);
      if (computed.cacheable) this.#cache?.set(sql, computed.entry);
      entry = computed.entry;
    }
    if (entry.analyses === null || context?.prepared === undefined || context.prepared.size === 0) return entry.result;
    return finish(entry.analyses, context.prepared).result;
  }

  /**
   * A text not in the cache: from the template of its lexer key when there is one, else parsed
   * in full (and its template kept when its constants are plain values).
   */
  #uncached(sql: string): Computed {
    const templates = this.#templates;
    const lexed = templates === null ? null : lexSql(sql);
    if (templates === null || lexed === null) return this.#compute(sql);
    const template = templates.get(lexed.key);
    if (template !== undefined) return { entry: instantiate(template, sql, lexed), cacheable: true };
    const computed = this.#compute(sql);
    if (computed.parsed !== undefined) {
      const made = templateOf(sql, lexed, computed.parsed, computed.entry.analyses !== null);
      if (made !== null) templates.set(lexed.key, made);
    }
    return computed;
  }

  #compute(sql: string): Computed {
    const problem = textProblem(sql);
    if (problem !== null) return failure({ kind: 'invalid-text', message: problem }, true);
    if (sql.length === 0) return { entry: { result: deepFreeze({ ok: true, statements: [] }), analyses: null }, cacheable: true };

    const source = new SourceText(sql);
    const parsed = this.#engine.parse(sql);
    if (parsed.kind !== 'value') return engineFailure(parsed, source);

    const analyses: Analysis[] = [];
    for (const raw of parsed.value.stmts ?? []) {
      // libpg_query leaves out stmt_location when it is 0, and stmt_len for a last statement
      // that has no `;` after it (it runs to the end of the text).
      const statementText = source.statement(raw.stmt_location ?? 0, raw.stmt_len);
      const facts = walkStatement(raw.stmt, this.#maxDepth);
      if (facts === null) {
        return failure({ kind: 'too-complex', message: tooComplexMessage(`nests deeper than ${this.#maxDepth} levels`) }, true);
      }
      const fingerprint = this.#engine.fingerprint(statementText);
      if (fingerprint.kind !== 'value') return engineFailure(fingerprint, source);

      // The parser always wraps a statement; anything else gets the rules of an unknown type.
      const [type, node] = unwrap(raw.stmt) ?? ['UnrecognizedNode', {}];
      analyses.push({
        text: statementText,
        command: commandOfNode(type, node),
        class: strongerClass(classOfNode(type, node), facts.effect),
        tables: [...facts.tables].sort(),
        functions: [...facts.functions].sort(),
        possibleFunctions: [...facts.possibleFunctions].sort(),
        fingerprint: fingerprint.value,
        prepare: type === 'PrepareStmt' ? (text(node, 'name') ?? '') : null,
        execute: facts.executes[0] ?? null,
        deallocate: deallocated(type, node),
        cursor: type === 'FetchStmt' ? (text(node, 'portalname') ?? null) : null,
      });
    }
    const finished = finish(analyses, undefined);
    return {
      entry: { result: finished.result, analyses: finished.usedContext ? analyses : null },
      cacheable: true,
      parsed: { stmts: parsed.value.stmts ?? [], tree: parsed.value, analyses },
    };
  }
}

/**
 * The template of a parsed text, or `null` when its classification may not be shared: a constant
 * that is not a plain value, or statement bounds that do not fall on its tokens (checked by
 * cutting each statement's text the way a template would and comparing).
 */
function templateOf(sql: string, lexed: LexedText, parsed: NonNullable<Computed['parsed']>, usesContext: boolean): Template | null {
  const bytes = byteStarts(sql, lexed.starts);
  if (!constantsAreValues(lexed, bytes, parsed.tree)) return null;
  const statements: { bounds: StatementBounds; analysis: Analysis }[] = [];
  for (let i = 0; i < parsed.stmts.length; i++) {
    const raw = parsed.stmts[i] as { stmt_location?: number; stmt_len?: number };
    const analysis = parsed.analyses[i] as Analysis;
    const bounds = boundsOf(lexed, bytes, raw.stmt_location ?? 0, raw.stmt_len);
    if (bounds === null || statementText(sql, lexed.starts, bounds) !== analysis.text) return null;
    // The text is each text's own; the template keeps none.
    statements.push({ bounds, analysis: { ...analysis, text: '' } });
  }
  return { statements, usesContext };
}

/** The cache entry of a text with the same key as `template`'s: its analyses, with its own statement texts. */
function instantiate(template: Template, sql: string, lexed: LexedText): CacheEntry {
  const analyses = template.statements.map(({ bounds, analysis }): Analysis => ({ ...analysis, text: statementText(sql, lexed.starts, bounds) }));
  return { result: finish(analyses, undefined).result, analyses: template.usesContext ? analyses : null };
}

/** What a statement deallocates, if anything. */
function deallocated(type: string, node: PgNode): string | null | undefined {
  if (type === 'DeallocateStmt') return flag(node, 'isall') ? null : (text(node, 'name') ?? '');
  if (type === 'DiscardStmt' && text(node, 'target') === 'DISCARD_ALL') return null;
  return undefined;
}

/**
 * Resolves each EXECUTE against the prepared statements known at that point: those PREPAREd
 * earlier in the same text first, then the caller's (unless the text deallocated them before).
 * An EXECUTE of an unknown statement is `admin`: its contents cannot be seen.
 */
function finish(
  analyses: readonly Analysis[],
  known: ReadonlyMap<string, PreparedStatementFacts> | undefined,
): { result: ClassifyResult; usedContext: boolean } {
  const local = new Map<string, PreparedStatementFacts | null>();
  let allDeallocated = false;
  let usedContext = false;
  const statements = analyses.map((analysis): ClassifiedStatement => {
    let statement: ClassifiedStatement = {
      text: analysis.text,
      command: analysis.command,
      class: analysis.class,
      tables: analysis.tables,
      functions: analysis.functions,
      possibleFunctions: analysis.possibleFunctions,
      fingerprint: analysis.fingerprint,
      prepared: preparedOp(analysis, false),
      ...(analysis.cursor === null ? {} : { cursor: analysis.cursor }),
    };
    if (analysis.execute !== null) {
      const name = analysis.execute;
      let facts: PreparedStatementFacts | null | undefined = local.get(name);
      if (!local.has(name) && !allDeallocated) {
        usedContext = true;
        facts = known?.get(name);
      }
      statement =
        facts === null || facts === undefined
          ? { ...statement, class: 'admin' }
          : {
              ...statement,
              class: strongerClass(statement.class, facts.class),
              tables: mergeSorted(statement.tables, facts.tables),
              functions: mergeSorted(statement.functions, facts.functions),
              possibleFunctions: mergeSorted(analysis.possibleFunctions, facts.possibleFunctions ?? []),
              prepared: preparedOp(analysis, true),
            };
    }
    if (analysis.prepare !== null) local.set(analysis.prepare, statement);
    if (analysis.deallocate === null) {
      local.clear();
      allDeallocated = true;
    } else if (analysis.deallocate !== undefined) {
      local.set(analysis.deallocate, null);
    }
    return statement;
  });
  return { result: deepFreeze({ ok: true, statements }), usedContext };
}

function preparedOp(analysis: Analysis, known: boolean): PreparedStatementOp | null {
  if (analysis.prepare !== null) return { op: 'prepare', name: analysis.prepare };
  if (analysis.execute !== null) return { op: 'execute', name: analysis.execute, known };
  if (analysis.deallocate !== undefined) return { op: 'deallocate', name: analysis.deallocate };
  return null;
}

function mergeSorted(a: readonly string[], b: readonly string[]): readonly string[] {
  return b.length === 0 ? a : [...new Set([...a, ...b])].sort();
}

function failure(error: ClassifyError, cacheable: boolean): Computed {
  return { entry: { result: deepFreeze({ ok: false, error }), analyses: null }, cacheable };
}

function engineFailure(
  outcome: Exclude<EngineOutcome<unknown>, { kind: 'value' }>,
  source: SourceText,
): Computed {
  switch (outcome.kind) {
    case 'rejected':
      return failure(
        outcome.cursor > 0
          ? { kind: 'syntax', message: outcome.message, position: source.indexOfCharacter(outcome.cursor) }
          : { kind: 'syntax', message: outcome.message },
        true,
      );
    // The same text would fail the same way (and cost another parser instance), so it is cached.
    case 'crashed':
      return failure({ kind: 'too-complex', message: tooComplexMessage(`exhausted the parser (${outcome.message})`) }, true);
    case 'unavailable':
      return failure(
        { kind: 'parser-unavailable', message: 'The SQL parser is reloading after a failure; send the statement again.' },
        false,
      );
  }
}

function tooComplexMessage(why: string): string {
  return `The SQL text ${why}; split it or simplify its nesting.`;
}

function entrySize(key: string, entry: CacheEntry): number {
  const statements = entry.result.ok ? entry.result.statements : [];
  return statements.reduce((size, statement) => size + statement.text.length + ENTRY_OVERHEAD, key.length + ENTRY_OVERHEAD);
}
