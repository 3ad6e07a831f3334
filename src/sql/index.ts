/**
 * The `sql` room: classifies SQL text with PostgreSQL's own parser (libpg_query as WebAssembly)
 * into statements, each with its command, class (`read`, `write`, `ddl`, `admin`), the tables and
 * functions it touches, and a fingerprint.
 */
export { loadSqlClassifier } from './classifier.js';
export { STATEMENT_CLASSES } from './types.js';
export { isHarmlessSetting } from './rules.js';
export type {
  ClassifiedStatement,
  ClassifyContext,
  ClassifyError,
  ClassifyErrorKind,
  ClassifyResult,
  PreparedStatementFacts,
  PreparedStatementOp,
  SqlClassifier,
  SqlClassifierOptions,
  StatementClass,
} from './types.js';
