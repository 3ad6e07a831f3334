import { TollgateError } from '../core/index.js';
import { isRecordKind, RECORD_KINDS } from './record.js';
import type { AuditRecord, RecordKind } from './record.js';

/**
 * What `audit query`, `audit export` and the review pages select records by. Every field is
 * optional; a record matches when it matches all the given ones.
 */
export interface RecordFilter {
  /** The principal's email (any case) or subject (exact). */
  readonly user?: string;
  /** The configured resource name, exactly. */
  readonly resource?: string;
  readonly effect?: 'allow' | 'deny';
  /**
   * Record kinds: exact kinds (`http.request`) or families (`http`, `pg`, `auth`: every kind
   * that starts with the family and a dot).
   */
  readonly kind?: string | readonly string[];
  /** The record's `session_id`, exactly. */
  readonly sessionId?: string;
  /** Records at or after this time, in milliseconds since the Unix epoch. */
  readonly since?: number;
  /** Records before this time, in milliseconds since the Unix epoch. */
  readonly until?: number;
  /** Text anywhere in the record's JSON, compared without regard to case. */
  readonly text?: string;
}

/** A filter checked and prepared for matching many records. */
export interface CompiledFilter {
  readonly filter: RecordFilter;
  readonly userLower: string | null;
  /** The kinds the filter admits, or null for all. */
  readonly kinds: ReadonlySet<RecordKind> | null;
  readonly textLower: string | null;
}

/** Checks a filter; throws `TG_ERR_USAGE` naming what is wrong (an unknown kind, since after until). */
export function compileFilter(filter: RecordFilter): CompiledFilter {
  let kinds: Set<RecordKind> | null = null;
  if (filter.kind !== undefined) {
    kinds = new Set();
    for (const wanted of typeof filter.kind === 'string' ? [filter.kind] : filter.kind) {
      const family = RECORD_KINDS.filter((kind) => kind === wanted || kind.startsWith(`${wanted}.`));
      if (family.length === 0) {
        throw new TollgateError('TG_ERR_USAGE', `unknown record kind "${wanted}"; kinds are ${RECORD_KINDS.join(', ')}, or a family such as http, pg or auth`);
      }
      for (const kind of family) kinds.add(kind);
    }
  }
  if (filter.effect !== undefined && filter.effect !== 'allow' && filter.effect !== 'deny') {
    throw new TollgateError('TG_ERR_USAGE', `effect must be allow or deny, not "${String(filter.effect)}"`);
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) {
    throw new TollgateError('TG_ERR_USAGE', 'the start of the time range (since) must be before its end (until)');
  }
  return {
    filter,
    userLower: filter.user === undefined ? null : filter.user.toLowerCase(),
    kinds,
    textLower: filter.text === undefined || filter.text === '' ? null : filter.text.toLowerCase(),
  };
}

/** Whether the principal is the user the filter names. */
export function isUser(compiled: CompiledFilter, subject: string | undefined, email: string | undefined): boolean {
  const { filter, userLower } = compiled;
  if (filter.user === undefined) return true;
  return subject === filter.user || (email !== undefined && email.toLowerCase() === userLower);
}

/**
 * Whether a decoded record matches. `json` is the record's JSON text, needed only when the filter
 * has `text`.
 */
export function matchesRecord(compiled: CompiledFilter, record: AuditRecord, json?: string): boolean {
  const { filter } = compiled;
  if (!isUser(compiled, record.principal?.subject, record.principal?.email)) return false;
  if (filter.resource !== undefined && record.resource !== filter.resource) return false;
  if (filter.effect !== undefined && record.decision?.effect !== filter.effect) return false;
  if (compiled.kinds !== null && !(isRecordKind(record.kind) && compiled.kinds.has(record.kind))) return false;
  if (filter.sessionId !== undefined && record.session_id !== filter.sessionId) return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const time = Date.parse(record.time);
    if (filter.since !== undefined && time < filter.since) return false;
    if (filter.until !== undefined && time >= filter.until) return false;
  }
  if (compiled.textLower !== null) {
    const text = json ?? JSON.stringify(record);
    if (!text.toLowerCase().includes(compiled.textLower)) return false;
  }
  return true;
}
