/**
 * The statement classes, in order of growing power. The literals are the same as policy's
 * `StatementClass` (a type test keeps the two assignable both ways); `sql` may not import policy.
 */
export const STATEMENT_CLASSES = ['read', 'write', 'ddl', 'admin'] as const;
export type StatementClass = (typeof STATEMENT_CLASSES)[number];

/**
 * What a statement does to the session's SQL-level prepared statements (`PREPARE`, `EXECUTE`,
 * `DEALLOCATE`), so that a proxy can track them. Names are as PostgreSQL folds them.
 * `DISCARD ALL` and `DEALLOCATE ALL` are `{ op: 'deallocate', name: null }`.
 */
export type PreparedStatementOp =
  | { readonly op: 'prepare'; readonly name: string }
  /** `known` is false when the statement's facts were not available, so the class is `admin`. */
  | { readonly op: 'execute'; readonly name: string; readonly known: boolean }
  | { readonly op: 'deallocate'; readonly name: string | null };

/**
 * One statement of a SQL text, as PostgreSQL's own parser sees it.
 *
 * Names in `tables` and `functions` are written as PostgreSQL would print them: each part bare
 * when it is a plain lower-case identifier, double-quoted otherwise (`"Order Items"`, with `""`
 * for a quote inside); schema- (or catalog-) qualified only when the SQL qualified them. Both
 * lists are sorted and free of duplicates.
 */
export interface ClassifiedStatement {
  /**
   * The statement's own slice of the text: from its first token (PostgreSQL 18 skips leading
   * whitespace and comments) to the end of its last token before the `;`; the last statement
   * of a text without a final `;` runs to the end of the text (trailing comments included).
   * Trailing whitespace is removed.
   */
  readonly text: string;
  /** PostgreSQL's command tag: `SELECT`, `INSERT`, `CREATE TABLE`, `SET`, `COPY`, ... */
  readonly command: string;
  readonly class: StatementClass;
  /** Relations read, written or defined: tables, views, materialized views, sequences. */
  readonly tables: readonly string[];
  /** Every function called anywhere in the statement, including `CALL`'s procedure. */
  readonly functions: readonly string[];
  /**
   * Names that may be functions called by attribute notation, bare: every part after the first of
   * a qualified column reference (`o.total`, `s.t.c`) and every field selection (`(o).f`).
   * PostgreSQL runs `o.f` as `f(o)` when the row has no column `f`, with no call in the syntax.
   * Most are plain columns, so only deny rules should read them (a deny may only deny more).
   * The classifier always sets it (sorted, no duplicates); optional so that facts built by hand
   * (a prepared statement's, a test's) may leave it out, which counts as none.
   */
  readonly possibleFunctions?: readonly string[];
  /**
   * libpg_query's fingerprint of the statement (16 hex digits): a hash of the parse tree with
   * literal values, locations, whitespace and comments left out, so that statements differing
   * only in their constants share it.
   */
  readonly fingerprint: string;
  readonly prepared: PreparedStatementOp | null;
  /**
   * The cursor (portal) a `FETCH` or `MOVE` reads, as PostgreSQL's parser resolved its name
   * (lower-cased unless quoted, cut to 63 bytes); absent for every other statement.
   */
  readonly cursor?: string;
}

/**
 * Why a text has no classification:
 * - `syntax`: the PostgreSQL parser rejected it (the message is the parser's own);
 * - `too-complex`: it nests deeper than the classifier or the parser can follow;
 * - `invalid-text`: it contains a NUL character or an unpaired UTF-16 surrogate, which cannot
 *   reach PostgreSQL intact;
 * - `parser-unavailable`: the parser is reloading after a failure; the same text may succeed
 *   a moment later (see {@link SqlClassifier.ready}).
 */
export type ClassifyErrorKind = 'syntax' | 'too-complex' | 'invalid-text' | 'parser-unavailable';

export interface ClassifyError {
  readonly kind: ClassifyErrorKind;
  readonly message: string;
  /**
   * 0-based index (UTF-16 code units, as JavaScript strings count) of the character the parser
   * points at. Absent when there is none; libpg_query reports "no position" and "the first
   * character" alike, so an error at the very first character has none either.
   */
  readonly position?: number;
}

export type ClassifyResult =
  | { readonly ok: true; readonly statements: readonly ClassifiedStatement[] }
  | { readonly ok: false; readonly error: ClassifyError };

/** The facts of a prepared statement that an `EXECUTE` of it inherits. */
export interface PreparedStatementFacts {
  readonly class: StatementClass;
  readonly tables: readonly string[];
  readonly functions: readonly string[];
  /** As in {@link ClassifiedStatement}; absent counts as none. */
  readonly possibleFunctions?: readonly string[];
}

/**
 * What the caller knows about the session a text runs in. Today only the SQL-level prepared
 * statements it holds, by name as PostgreSQL folds it: a {@link ClassifiedStatement} with
 * `prepared.op === 'prepare'` can be stored as is once PostgreSQL accepted it.
 */
export interface ClassifyContext {
  readonly prepared?: ReadonlyMap<string, PreparedStatementFacts>;
}

export interface SqlClassifierOptions {
  /** Texts whose results are kept (LRU), and as many templates. `0` turns the cache off. Default 10,000. */
  readonly cacheSize?: number;
  /**
   * Upper bound on the characters of SQL the cache holds (each entry counts its text and its
   * statements' texts), and on those of template keys. An entry larger than this is never
   * cached. Default 32,000,000.
   */
  readonly cacheMaxChars?: number;
  /** Deepest parse-tree nesting the classifier follows before it answers `too-complex`. Default 5,000. */
  readonly maxDepth?: number;
}

export interface SqlClassifier {
  /**
   * Splits `text` into statements and classifies each. Synchronous, and a pure function of
   * `text` and `context`: results (deep-frozen) are cached by exact text, so the same text
   * returns the very same result object unless `context` changes an `EXECUTE`'s facts.
   *
   * A text that differs from one classified before only in the values of its constants
   * (`WHERE id = 42` after `WHERE id = 7`) is classified without a parse, from that text's
   * template: constants never change a statement's command, class, tables, functions or
   * fingerprint when they are plain values, and a text whose constants are anything else (or
   * that the lexer is not sure of) is parsed in full.
   */
  classify(text: string, context?: ClassifyContext): ClassifyResult;
  /** Resolves when the parser and its spare instance are loaded (again, after a parser failure). */
  ready(): Promise<void>;
  /** How many texts the cache holds now. */
  readonly cachedTexts: number;
  /** How many templates (classifications shared by texts differing only in constants) the cache holds now. */
  readonly cachedTemplates: number;
}
