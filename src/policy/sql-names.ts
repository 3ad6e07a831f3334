/**
 * Table and function names of SQL statements, and the globs of SQL rules that match them.
 *
 * A name is `[catalog.][schema.]name` where each part is either a bare identifier or a
 * double-quoted one (`""` inside quotes stands for one `"`), as PostgreSQL writes them
 * (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS).
 */

/** A table or function name from a classified statement, split and case-folded once. */
export interface SqlName {
  /** The text as the `sql` room gave it; shown by `explain`. */
  readonly text: string;
  /** `null` for a bare function name, whose schema is only known at run time. */
  readonly schema: string | null;
  readonly name: string;
  readonly schemaFolded: string | null;
  readonly nameFolded: string;
  /** `false` when the text could not be split; see {@link SqlGlob}. */
  readonly valid: boolean;
}

/** Splits a dotted name into parts; `null` when malformed. Each part records if it was quoted. */
function splitParts(text: string): { value: string; quoted: boolean }[] | null {
  const parts: { value: string; quoted: boolean }[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close < 0) return null;
        value += text.slice(i, close);
        if (text[close + 1] === '"') {
          value += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
      if (value === '') return null;
      parts.push({ value, quoted: true });
    } else {
      let end = text.indexOf('.', i);
      if (end < 0) end = text.length;
      const value = text.slice(i, end);
      if (value === '' || value.includes('"')) return null;
      parts.push({ value, quoted: false });
      i = end;
    }
    if (i === text.length) return parts;
    if (text[i] !== '.') return null;
    i++;
  }
}

/**
 * Parses a table or function name from the `sql` room. A bare table name resolves to
 * `defaultSchema` (`public`); a bare function name keeps `schema: null`.
 */
export function parseSqlName(text: string, defaultSchema: string | null): SqlName {
  const parts = splitParts(text);
  if (parts === null || parts.length > 3) {
    return { text, schema: null, name: text, schemaFolded: null, nameFolded: text.toLowerCase(), valid: false };
  }
  const name = (parts[parts.length - 1] as { value: string }).value;
  const schema = parts.length >= 2 ? (parts[parts.length - 2] as { value: string }).value : defaultSchema;
  return {
    text,
    schema,
    name,
    schemaFolded: schema === null ? null : schema.toLowerCase(),
    nameFolded: name.toLowerCase(),
    valid: true,
  };
}

const PART_KIND = { any: 0, exact: 1, folded: 2, pattern: 3 } as const;
type PartKind = (typeof PART_KIND)[keyof typeof PART_KIND];

/** One part of a SQL glob: a bare part compares case-insensitively, a quoted one exactly. */
class GlobPart {
  readonly #kind: PartKind;
  readonly #value: string;
  readonly #pattern: RegExp | null;

  constructor(value: string, quoted: boolean) {
    this.#pattern = null;
    if (/^\*+$/.test(value)) {
      this.#kind = PART_KIND.any;
      this.#value = '';
    } else if (!value.includes('*')) {
      this.#kind = quoted ? PART_KIND.exact : PART_KIND.folded;
      this.#value = quoted ? value : value.toLowerCase();
    } else {
      this.#kind = PART_KIND.pattern;
      this.#value = '';
      const body = value
        .split(/\*+/)
        .map((piece) => piece.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&'))
        .join('[\\s\\S]*');
      this.#pattern = new RegExp(`^${body}$`, quoted ? '' : 'i');
    }
  }

  get matchesAny(): boolean {
    return this.#kind === PART_KIND.any;
  }

  test(value: string, folded: string): boolean {
    switch (this.#kind) {
      case PART_KIND.any:
        return true;
      case PART_KIND.exact:
        return value === this.#value;
      case PART_KIND.folded:
        return folded === this.#value;
      default:
        return (this.#pattern as RegExp).test(value);
    }
  }
}

/**
 * A compiled table or function glob: `name` or `schema.name`, each part bare or double-quoted,
 * `*` matching any run of characters within the part (never across the dot between parts).
 *
 * A name the `sql` room gave in a form that cannot be split (never expected) is treated as the
 * worst case: no allow glob matches it and every deny glob does.
 */
export class SqlGlob {
  /** The glob as written in the config. */
  readonly source: string;
  readonly #schema: GlobPart | null;
  readonly #name: GlobPart;

  constructor(source: string, schema: GlobPart | null, name: GlobPart) {
    this.source = source;
    this.#schema = schema;
    this.#name = name;
  }

  /**
   * Allow-side match. A glob without a schema matches the name in any schema. A bare function
   * name (schema unknown until PostgreSQL resolves it through `search_path`) is matched by a
   * schema-qualified glob only when its schema part is `*`.
   */
  allows(name: SqlName): boolean {
    if (!name.valid || !this.#name.test(name.name, name.nameFolded)) return false;
    if (this.#schema === null) return true;
    if (name.schema === null) return this.#schema.matchesAny;
    return this.#schema.test(name.schema, name.schemaFolded as string);
  }

  /**
   * Deny-side match. Same as {@link allows}, except that a bare function name is matched by a
   * schema-qualified glob whenever the name part matches, since it may resolve to that schema.
   */
  denies(name: SqlName): boolean {
    if (!name.valid) return true;
    if (!this.#name.test(name.name, name.nameFolded)) return false;
    if (this.#schema === null || name.schema === null) return true;
    return this.#schema.test(name.schema, name.schemaFolded as string);
  }
}

/** Compiles a table or function glob, or returns the reason it is invalid. */
export function compileSqlGlob(source: string): SqlGlob | string {
  const parts = splitParts(source);
  if (parts === null) {
    return `"${source}" is not a valid name glob: write name or schema.name, each part bare or "double-quoted"`;
  }
  if (parts.length > 2) return `"${source}" has more than two parts: write name or schema.name`;
  const name = parts[parts.length - 1] as { value: string; quoted: boolean };
  const schema = parts.length === 2 ? (parts[0] as { value: string; quoted: boolean }) : null;
  return new SqlGlob(
    source,
    schema === null ? null : new GlobPart(schema.value, schema.quoted),
    new GlobPart(name.value, name.quoted),
  );
}
