import { compileFilter, type RecordFilter } from '../audit/index.js';
import { isTollgateError, parseDuration } from '../core/index.js';

/**
 * The filter of the sessions and records pages, read from the URL's query (a GET form, so that
 * every view is a link a reviewer can share). Parse problems are values: the page shows them
 * next to the form instead of failing.
 */

/** The form's fields as typed, for showing the form again. */
export interface FilterFields {
  readonly user: string;
  readonly resource: string;
  readonly effect: string;
  /** Record kinds or families, comma-separated (`pg.query`, `http`). */
  readonly kind: string;
  readonly session: string;
  readonly since: string;
  readonly until: string;
  readonly text: string;
}

export const EMPTY_FIELDS: FilterFields = { user: '', resource: '', effect: '', kind: '', session: '', since: '', until: '', text: '' };

const FIELD_NAMES = Object.keys(EMPTY_FIELDS) as readonly (keyof FilterFields)[];

export interface PageQuery {
  readonly fields: FilterFields;
  readonly filter: RecordFilter;
  readonly cursor: string | undefined;
  readonly limit: number;
}

export type ParsedPageQuery = { readonly ok: true; readonly query: PageQuery } | { readonly ok: false; readonly fields: FilterFields; readonly problems: readonly string[] };

/** Longest value accepted in a field: enough for any email, resource or search text. */
const MAX_FIELD_LENGTH = 512;

/** RFC 3339 date-time with or without a zone (UTC when absent), or a date (UTC midnight). */
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)([Zz]|[+-]\d{2}:\d{2})?)?$/;

/**
 * A time of the form: RFC 3339 (`2025-01-31T12:00:00Z`, the zone defaulting to UTC), a date
 * (`2025-01-31`, from UTC midnight), or a duration ago (`15m`, `2h`, `7d`), as the CLI accepts.
 */
export function parseTime(text: string, now: number): number | null {
  const ago = parseDuration(text);
  if (ago !== null) return now - ago;
  const match = DATE_TIME.exec(text);
  if (match === null) return null;
  const [year, month, day] = (match[1] ?? '').split('-').map(Number) as [number, number, number];
  // Date.parse rolls 2025-02-30 over into March; a date that is not on the calendar is refused.
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) return null;
  const iso = match[2] === undefined ? `${match[1]}T00:00:00Z` : `${match[1]}T${match[2]}${match[3] ?? 'Z'}`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/** Parses the query of a page (`?user=…&effect=deny&cursor=…`). */
export function parsePageQuery(query: string, now: number, limits: { readonly fallback: number; readonly max: number }): ParsedPageQuery {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  const problems: string[] = [];
  const value = (name: string): string => {
    const all = params.getAll(name).map((v) => v.trim()).filter((v) => v !== '');
    const joined = all.join(',');
    if (joined.length > MAX_FIELD_LENGTH) problems.push(`${name} is longer than ${MAX_FIELD_LENGTH} characters`);
    return joined.slice(0, MAX_FIELD_LENGTH);
  };
  const fields: FilterFields = Object.fromEntries(FIELD_NAMES.map((name) => [name, value(name)])) as unknown as FilterFields;

  const filter: { -readonly [K in keyof RecordFilter]: RecordFilter[K] } = {};
  if (fields.user !== '') filter.user = fields.user;
  if (fields.resource !== '') filter.resource = fields.resource;
  if (fields.effect === 'allow' || fields.effect === 'deny') filter.effect = fields.effect;
  else if (fields.effect !== '') problems.push(`effect is allow or deny, not "${fields.effect}"`);
  if (fields.kind !== '') filter.kind = fields.kind.split(',').map((k) => k.trim()).filter((k) => k !== '');
  if (fields.session !== '') filter.sessionId = fields.session;
  for (const name of ['since', 'until'] as const) {
    if (fields[name] === '') continue;
    const time = parseTime(fields[name], now);
    if (time === null) problems.push(`${name === 'since' ? 'From' : 'To'} "${fields[name]}" is neither a time (2025-01-31T12:00:00Z, UTC when no zone is given) nor a duration ago (15m, 2h, 7d)`);
    else filter[name] = time;
  }
  if (fields.text !== '') filter.text = fields.text;

  const limitText = params.get('limit');
  let limit = limits.fallback;
  if (limitText !== null && limitText !== '') {
    limit = /^[1-9][0-9]{0,5}$/.test(limitText) ? Math.min(Number(limitText), limits.max) : Number.NaN;
    if (Number.isNaN(limit)) problems.push(`limit is a whole number from 1 to ${limits.max}`);
  }
  const cursorText = params.get('cursor');
  const cursor = cursorText === null || cursorText === '' ? undefined : cursorText;

  if (problems.length === 0) {
    try {
      compileFilter(filter);
    } catch (error) {
      if (!isTollgateError(error, 'TG_ERR_USAGE')) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) return { ok: false, fields, problems };
  return { ok: true, query: { fields, filter, cursor, limit } };
}

/** `?name=value&…` of the non-empty fields and extras, or `''`. */
export function queryString(fields: Partial<FilterFields>, extra: Readonly<Record<string, string | number | undefined>> = {}): string {
  const params = new URLSearchParams();
  for (const name of FIELD_NAMES) {
    const v = fields[name];
    if (v !== undefined && v !== '') params.set(name, v);
  }
  for (const [name, v] of Object.entries(extra)) if (v !== undefined && v !== '') params.set(name, String(v));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** Whether the filter selects by something other than user, resource and time (what the session listing of the index knows). */
export function needsRecordScan(filter: RecordFilter): boolean {
  return filter.effect !== undefined || filter.text !== undefined || filter.kind !== undefined || filter.sessionId !== undefined;
}
