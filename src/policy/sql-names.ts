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
  /** `null` for a bare name, whose schema PostgreSQL finds through the search path at run time. */
  readonly schema: string | null;
  readonly name: string;
  readonly schemaFolded: string | null;
  readonly nameFolded: string;
  /**
   * For a bare table name, every schema PostgreSQL may find it in (see {@link BARE_TABLE_SCHEMAS});
   * deny globs are tried against each. Empty for a qualified name and for a bare function name,
   * which a deny glob matches in any schema.
   */
  readonly searchSchemas: readonly string[];
  /** For a bare table name, the schemas an allow rule must cover: {@link searchSchemas} but `pg_temp`. */
  readonly allowSchemas: readonly string[];
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
 * Where PostgreSQL looks for a bare table name. The gateway pins `search_path` (changing it, by
 * `SET`, `set_config` or a write to `pg_settings`, is an `admin` statement, and a client may not
 * send it at startup), so a session searches the login's default path, `"$user", public`, with
 * the two schemas PostgreSQL always puts before it: the session's temporary schema (`pg_temp`)
 * and `pg_catalog`. Every relation in `pg_catalog` has a name that starts with `pg_`, so other
 * names cannot be found there (compared in any letter case, which only ever counts more names).
 * `"$user"` (a schema named after the upstream login's role) is left to the deployment: no such
 * schema should exist.
 * https://www.postgresql.org/docs/current/ddl-schemas.html#DDL-SCHEMAS-PATH
 */
const BARE_TABLE_SCHEMAS = {
  catalog: { search: ['pg_temp', 'pg_catalog', 'public'], allow: ['pg_catalog', 'public'] },
  other: { search: ['pg_temp', 'public'], allow: ['public'] },
} as const;

const NO_SCHEMAS: readonly string[] = [];

/**
 * Parses a table or function name from the `sql` room. A bare name keeps `schema: null`; a bare
 * table name also gets the schemas the search path may find it in.
 */
export function parseSqlName(text: string, kind: 'table' | 'function'): SqlName {
  const parts = splitParts(text);
  if (parts === null || parts.length > 3) {
    return {
      text,
      schema: null,
      name: text,
      schemaFolded: null,
      nameFolded: text.toLowerCase(),
      valid: false,
      searchSchemas: NO_SCHEMAS,
      allowSchemas: NO_SCHEMAS,
    };
  }
  const name = (parts[parts.length - 1] as { value: string }).value;
  const schema = parts.length >= 2 ? (parts[parts.length - 2] as { value: string }).value : null;
  const bare =
    schema === null && kind === 'table' ? BARE_TABLE_SCHEMAS[name.toLowerCase().startsWith('pg_') ? 'catalog' : 'other'] : null;
  return {
    text,
    schema,
    name,
    schemaFolded: schema === null ? null : schema.toLowerCase(),
    nameFolded: name.toLowerCase(),
    valid: true,
    searchSchemas: bare?.search ?? NO_SCHEMAS,
    allowSchemas: bare?.allow ?? NO_SCHEMAS,
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
   * Allow-side match, of the name as if it were in `schema` (lower-case; default: its own). A glob
   * without a schema matches the name in any schema. A bare name with no `schema` given (a
   * function's, unknown until PostgreSQL resolves it through `search_path`) is matched by a
   * schema-qualified glob only when its schema part is `*`. A bare table name is allowed when
   * each of its {@link SqlName.allowSchemas} is: see `firstUnallowedName`.
   */
  allows(name: SqlName, schema: string | null = name.schema): boolean {
    if (!name.valid || !this.#name.test(name.name, name.nameFolded)) return false;
    if (this.#schema === null) return true;
    if (schema === null) return this.#schema.matchesAny;
    return this.#schema.test(schema, schema === name.schema ? (name.schemaFolded as string) : schema);
  }

  /**
   * Deny-side match: any schema the name may be in. A bare table name is matched by a
   * schema-qualified glob when the glob's schema part matches one of its
   * {@link SqlName.searchSchemas}; a bare function name whenever the name part matches.
   */
  denies(name: SqlName): boolean {
    if (!name.valid) return true;
    if (!this.#name.test(name.name, name.nameFolded)) return false;
    if (this.#schema === null) return true;
    if (name.schema !== null) return this.#schema.test(name.schema, name.schemaFolded as string);
    const schemas = name.searchSchemas;
    if (schemas.length === 0) return true;
    for (let i = 0; i < schemas.length; i++) {
      const schema = schemas[i] as string;
      if (this.#schema.test(schema, schema)) return true;
    }
    return false;
  }

  /**
   * Deny-side match of a name attribute notation may call (`o.f` runs `f(o)`): PostgreSQL finds
   * that function through the search path like a bare call, but nothing in the statement says
   * which schema (`o.id` is a plain column nearly always), so only a glob whose schema part is
   * absent or `*` matches it; `pg_catalog.*` must not deny every qualified column reference.
   */
  deniesPossibleFunction(name: SqlName): boolean {
    return (this.#schema === null || this.#schema.matchesAny) && this.denies(name);
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
