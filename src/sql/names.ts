/**
 * An identifier that reads the same bare: what PostgreSQL's lexer keeps as is after folding an
 * unquoted name (ASCII lower-case letters, digits, `_`, `$`; not starting with a digit or `$`).
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS
 */
const PLAIN_IDENTIFIER = /^[a-z_][a-z0-9_$]*$/;

/**
 * Writes a parsed (already folded) identifier back as SQL: bare when plain, else double-quoted.
 * So `Orders` (which only a quoted name can produce) stays distinct from `orders`, and a dot
 * inside a name cannot be mistaken for a schema separator.
 */
function quoteIdentifier(identifier: string): string {
  return PLAIN_IDENTIFIER.test(identifier) ? identifier : `"${identifier.replaceAll('"', '""')}"`;
}

/** Writes a possibly qualified name, `[catalog.][schema.]name`. */
export function qualifiedName(parts: readonly string[]): string {
  return parts.map(quoteIdentifier).join('.');
}
