import { sha256 } from '@noble/hashes/sha2.js';
import { TollgateError } from '../core/index.js';
import { bytesToHex, decodeBase64, encodeBase64, hasLoneSurrogate, utf8DecodeStrict, utf8Encode, utf8Length } from './bytes.js';
import { canonicalize, decodeCanonical, encodeCanonical } from './canonical.js';
import type { JsonObject, JsonValue } from './canonical.js';
import { leafHash } from './merkle.js';

/**
 * The audit record model (DESIGN.md §2 "Audit log"). A caller appends an {@link AuditEvent};
 * the log seals it into an {@link AuditRecord} by adding the envelope (`v`, `log_id`, `seq`,
 * `prev`, `time`) and encoding it as canonical JSON (RFC 8785) of at most
 * {@link MAX_RECORD_BYTES}. The record's bytes are the Merkle leaf; `prev` chains each record to
 * the leaf hash of the one before.
 */

export const RECORD_KINDS = [
  'http.request',
  'http.response',
  'ws.open',
  'ws.close',
  'pg.connect',
  'pg.query',
  'pg.result',
  'pg.disconnect',
  'auth.login',
  'auth.logout',
  'auth.failure',
  'token.issued',
  'config.loaded',
  'audit.recovered',
  'gateway.start',
  'gateway.stop',
] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

const KIND_SET: ReadonlySet<string> = new Set(RECORD_KINDS);

export function isRecordKind(value: unknown): value is RecordKind {
  return typeof value === 'string' && KIND_SET.has(value);
}

export const RECORD_VERSION = 1;
/** Upper bound of a record's canonical bytes; longer records have their data truncated. */
export const MAX_RECORD_BYTES = 64 * 1024;
/** How much of a truncated value is kept, in UTF-8 bytes of the kept text. */
export const TRUNCATED_PREFIX_BYTES = 1024;
/** The key of the object that stands for a byte string: `{ "$bytes": "<base64>" }`. */
export const BYTES_MARKER = '$bytes';

export interface AuditPrincipal {
  readonly subject: string;
  readonly email?: string;
  readonly groups: readonly string[];
}

/** The policy decision, shaped as the policy room's `Decision` (`rule` null for default deny). */
export interface AuditDecision {
  readonly effect: 'allow' | 'deny';
  readonly rule: string | null;
  readonly reason: string;
}

/**
 * What callers may put in `data`. Beyond JSON: `bigint` (written as a number when it is a safe
 * integer, else as its decimal string) and `Uint8Array` (written as `{ "$bytes": base64 }`).
 * Object properties that are `undefined` are left out. Floats, unsafe integer numbers, NaN,
 * lone surrogates and other object types are refused.
 */
export type AuditValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly AuditValue[]
  | { readonly [key: string]: AuditValue | undefined };

/** What a caller appends. */
export interface AuditEvent {
  readonly kind: RecordKind;
  readonly principal?: AuditPrincipal;
  /** The configured resource name (`app`, `shop`). */
  readonly resource?: string;
  readonly decision?: AuditDecision;
  readonly request_id?: string;
  readonly session_id?: string;
  /** For an outcome record: the `seq` of the record it completes. */
  readonly ref?: number;
  /** The kind's own fields. */
  readonly data: { readonly [key: string]: AuditValue | undefined };
}

/** A sealed record, as stored and as decoded: the event plus the envelope, data in JSON form. */
export interface AuditRecord extends Omit<AuditEvent, 'data'> {
  readonly v: 1;
  readonly log_id: string;
  /** 0-based position in the log, no gaps. */
  readonly seq: number;
  /** Lowercase hex leaf hash of record `seq − 1`, or {@link genesisPrev} for seq 0. */
  readonly prev: string;
  /** RFC 3339, UTC, milliseconds: `2025-01-31T12:00:00.000Z`. */
  readonly time: string;
  readonly data: JsonObject;
}

export interface SealOptions {
  readonly logId: string;
  readonly seq: number;
  readonly prev: string;
  /** Milliseconds since the Unix epoch. */
  readonly timeMs: number;
  /**
   * RFC 9162 leaf hash, SHA-256(0x00 ‖ entry). Defaults to the portable implementation; a Node
   * caller may pass one built on the native SHA-256, which must give identical results.
   */
  readonly hashLeaf?: (entry: Uint8Array) => Uint8Array;
}

export interface SealedRecord {
  readonly record: AuditRecord;
  /** Canonical JSON, at most {@link MAX_RECORD_BYTES}. */
  readonly bytes: Uint8Array;
  /** RFC 9162 leaf hash of `bytes`; the `prev` of the next record is its hex. */
  readonly leafHash: Uint8Array;
}

/** The replacement of a value cut to fit a record into {@link MAX_RECORD_BYTES}. */
export interface TruncatedValue {
  readonly truncated: true;
  /** The first {@link TRUNCATED_PREFIX_BYTES} (at most) of the value, in the form `encoding` says. */
  readonly prefix: string;
  /** Lowercase hex SHA-256 of the whole value's bytes. */
  readonly sha256: string;
  /** Length of the whole value in bytes. */
  readonly bytes: number;
  /**
   * Absent for a string (prefix and hash are of its UTF-8). `base64`: a byte string (prefix is
   * base64 of its first bytes; hash and length are of the raw bytes). `json`: an array or object
   * (prefix, hash and length are of its canonical JSON text).
   */
  readonly encoding?: 'base64' | 'json';
}

class Invalid extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path}: ${why}`);
  }
}

/**
 * Is `time` exactly what `Date.prototype.toISOString` writes for some instant: RFC 3339, UTC,
 * milliseconds, a real calendar date (`YYYY-MM-DDTHH:MM:SS.mmmZ`). Checked by character, since
 * this runs for every record `audit verify` reads.
 */
function isRecordTime(time: string): boolean {
  if (time.length !== 24 || time[4] !== '-' || time[7] !== '-' || time[10] !== 'T' || time[13] !== ':' || time[16] !== ':' || time[19] !== '.' || time[23] !== 'Z') {
    return false;
  }
  const year = digitsAt(time, 0, 4);
  const month = digitsAt(time, 5, 2);
  const day = digitsAt(time, 8, 2);
  const hour = digitsAt(time, 11, 2);
  const minute = digitsAt(time, 14, 2);
  const second = digitsAt(time, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || digitsAt(time, 20, 3) < 0) {
    return false;
  }
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return day <= days;
}

/** The decimal value of `count` digits of `text` from `start`, or -1 if one is not a digit. */
function digitsAt(text: string, start: number, count: number): number {
  let n = 0;
  for (let i = start; i < start + count; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** 64 lowercase hex digits: a leaf hash as `prev` holds it. */
function isHashHex(text: string): boolean {
  if (text.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * Seals `event` as record `seq` of log `logId`. Throws `TG_ERR_AUDIT_RECORD_INVALID` when the
 * event or the options are outside the model (unknown kind, float, lone surrogate, `ref` not
 * before `seq`, ...): such an event is a bug in the code that built it, never user input, so it
 * fails loudly instead of being logged half-right. Use {@link validateEvent} to check first.
 *
 * When the canonical bytes exceed {@link MAX_RECORD_BYTES}, values inside `data` are cut, the
 * longest first, until the record fits: first strings and byte strings, then (if still too big)
 * whole arrays and objects. Each cut value becomes a {@link TruncatedValue} keeping its first
 * {@link TRUNCATED_PREFIX_BYTES} with the SHA-256 and length of the whole.
 */
export function sealRecord(event: AuditEvent, options: SealOptions): SealedRecord {
  let record: AuditRecord;
  const context = newContext();
  try {
    record = buildRecord(event, options, context);
  } catch (error) {
    if (error instanceof Invalid) {
      throw new TollgateError('TG_ERR_AUDIT_RECORD_INVALID', `audit event ${JSON.stringify(String(event?.kind))}: ${error.message}; fix the code that builds this event`, {
        details: { path: error.path, kind: String(event?.kind) },
      });
    }
    throw error;
  }
  // Every object of the record was built with its keys inserted in canonical order, from checked
  // strings and safe integers, so ECMAScript's own JSON.stringify (whose serialisation RFC 8785
  // adopts) writes the JCS text directly. The exception is a key that looks like an array index,
  // which engines enumerate first: then the general serializer sorts.
  let bytes = utf8Encode(context.indexLikeKey ? canonicalize(record as unknown as JsonValue) : JSON.stringify(record));
  if (bytes.length > MAX_RECORD_BYTES) {
    fitData(record.data as Record<string, JsonValue>, bytes.length, context.rawBytes);
    bytes = encodeCanonical(record as unknown as JsonValue);
    const fitted = bytes.length;
    if (fitted > MAX_RECORD_BYTES) {
      throw new TollgateError(
        'TG_ERR_AUDIT_RECORD_INVALID',
        `audit event "${event.kind}" is ${fitted} bytes even with its data truncated (limit ${MAX_RECORD_BYTES}); its principal, decision or ids are too large`,
        { details: { kind: event.kind, bytes: fitted } },
      );
    }
  }
  return { record, bytes, leafHash: (options.hashLeaf ?? leafHash)(bytes) };
}

/**
 * The canonical JSON text of the record {@link sealRecord} would seal from `event` and `options`,
 * by the writer's fast path ({@link encodeRecordInto}). Returns `null` whenever the event needs
 * sealRecord's full treatment: a byte string or a bigint in `data`, a record over
 * {@link MAX_RECORD_BYTES} (which sealRecord truncates), or anything sealRecord refuses. When it
 * returns text, that text's UTF-8 is exactly sealRecord's `bytes`.
 */
export function recordText(event: AuditEvent, options: SealOptions): string | null {
  const { seq, prev } = options;
  if (!Number.isSafeInteger(seq) || seq < 0 || typeof prev !== 'string' || !isHashHex(prev)) return null;
  const envelope = recordEnvelope(options.logId, options.timeMs);
  if (envelope === null) return null;
  const into = new Uint8Array(MAX_RECORD_BYTES);
  const end = encodeRecordInto(event, envelope, seq, prev, into, 0);
  return end < 0 ? null : utf8DecodeStrict(into.subarray(0, end));
}

/** The envelope fields every record of a batch shares, checked once and encoded once. */
export interface RecordEnvelope {
  /** UTF-8 of `log_id`'s JSON text and the opening of `prev`: `"<log id>","prev":"`. */
  readonly logIdToPrev: Uint8Array;
  /** UTF-8 of the record's last members: `,"time":"<RFC 3339>","v":1}`. */
  readonly timeToEnd: Uint8Array;
}

/** The envelope of records sealed by log `logId` at `timeMs`, or `null` when sealRecord would refuse either. */
export function recordEnvelope(logId: string, timeMs: number): RecordEnvelope | null {
  const logIdToPrev = logIdToPrevOf(logId);
  if (logIdToPrev === null || !Number.isSafeInteger(timeMs) || Math.abs(timeMs) > 8.64e15) return null;
  const second = Math.floor(timeMs / 1000);
  if (lastSecond.second !== second) {
    const time = new Date(second * 1000).toISOString();
    lastSecond = { second, timeToEnd: isRecordTime(time) ? asciiBytes(`,"time":"${time}","v":${RECORD_VERSION}}`) : null };
  }
  const { timeToEnd: template } = lastSecond;
  if (template === null) return null;
  // Only the milliseconds differ within a second: `,"time":"YYYY-MM-DDTHH:MM:SS.` is 29 bytes.
  const timeToEnd = template.slice();
  const ms = timeMs - second * 1000;
  timeToEnd[29] = 0x30 + Math.floor(ms / 100);
  timeToEnd[30] = 0x30 + (Math.floor(ms / 10) % 10);
  timeToEnd[31] = 0x30 + (ms % 10);
  return { logIdToPrev, timeToEnd };
}

/** The envelope's time text of the last second asked for, with `.000`; null when no record may carry it. */
let lastSecond: { readonly second: number; readonly timeToEnd: Uint8Array | null } = { second: Number.NaN, timeToEnd: null };

/**
 * The last log id's envelope text: a store seals every record with one id, and asks for a new
 * envelope every millisecond under load, so the id's escaping and encoding is done once.
 */
let lastLogId: { readonly logId: string; readonly bytes: Uint8Array | null } = { logId: '', bytes: null };

function logIdToPrevOf(logId: string): Uint8Array | null {
  if (typeof logId !== 'string') return null;
  if (lastLogId.logId !== logId) {
    const bytes = logId === '' || hasLoneSurrogate(logId) ? null : utf8Encode(`${JSON.stringify(logId)},"prev":"`);
    lastLogId = { logId, bytes };
  }
  return lastLogId.bytes;
}

/** `text` known to be ASCII (checked by isRecordTime), without a call into the encoder. */
function asciiBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// The fixed text between a record's values, encoded once. Members are in canonical (UTF-16) key
// order, as buildRecord inserts them: data, decision, kind, log_id, prev, principal, ref,
// request_id, resource, seq, session_id, time, v.
const OPEN_DATA = utf8Encode('{"data":');
const DECISION_ALLOW = utf8Encode(',"decision":{"effect":"allow","reason":');
const DECISION_DENY = utf8Encode(',"decision":{"effect":"deny","reason":');
const RULE = utf8Encode(',"rule":');
const RULE_NULL_END = utf8Encode(',"rule":null}');
const PRINCIPAL_EMAIL = utf8Encode(',"principal":{"email":');
const PRINCIPAL_GROUPS = utf8Encode(',"principal":{"groups":[');
const GROUPS = utf8Encode(',"groups":[');
const SUBJECT = utf8Encode('],"subject":');
const REF = utf8Encode(',"ref":');
const REQUEST_ID = utf8Encode(',"request_id":');
const RESOURCE = utf8Encode(',"resource":');
const SEQ = utf8Encode(',"seq":');
const SESSION_ID = utf8Encode(',"session_id":');
const NULL = utf8Encode('null');
const TRUE = utf8Encode('true');
const FALSE = utf8Encode('false');
/** `,"kind":"<kind>","log_id":` for each kind, so that checking the kind also finds its text. */
const KIND_TO_LOG_ID: ReadonlyMap<string, Uint8Array> = new Map(RECORD_KINDS.map((kind) => [kind, utf8Encode(`,"kind":"${kind}","log_id":`)]));

/**
 * Writes the UTF-8 of the canonical record {@link sealRecord} would seal from `event` into
 * `into` from `at`, in one validating pass with no intermediate record, string or buffer: the
 * writer's hot path, which encodes straight into its frame. Returns where the record ends, or
 * -1 whenever the event needs sealRecord's full treatment (see {@link recordText}).
 *
 * `into` must have room for {@link MAX_RECORD_BYTES} from `at`; an event that encodes longer
 * is refused (-1), whatever it wrote past the room being dropped. `seq` must be a safe integer
 * ≥ 0 and `prev` 64 lowercase hex digits (the writer's own counter and the SHA-256 it just
 * computed): they are not checked again.
 */
export function encodeRecordInto(event: AuditEvent, envelope: RecordEnvelope, seq: number, prev: string, into: Uint8Array, at: number): number {
  if (typeof event !== 'object' || event === null) return -1;
  for (const key in event) if (!EVENT_FIELDS.has(key)) return -1;
  const { kind, principal, resource, decision, request_id, session_id, ref, data } = event;
  const kindToLogId = typeof kind === 'string' ? KIND_TO_LOG_ID.get(kind) : undefined;
  if (kindToLogId === undefined || !isPlainObject(data)) return -1;
  let end = writeValue(into, writeBytes(into, at, OPEN_DATA), data, 0);
  if (end < 0) return -1;
  if (decision !== undefined) {
    end = writeDecision(into, end, decision);
    if (end < 0) return -1;
  }
  end = writeBytes(into, writeBytes(into, end, kindToLogId), envelope.logIdToPrev);
  end = writeAscii(into, end, prev);
  into[end++] = 0x22;
  if (principal !== undefined) {
    end = writePrincipal(into, end, principal);
    if (end < 0) return -1;
  }
  if (ref !== undefined) {
    if (!Number.isSafeInteger(ref) || ref < 0 || ref >= seq) return -1;
    end = writeAscii(into, writeBytes(into, end, REF), String(ref));
  }
  if (request_id !== undefined) {
    end = writeString(into, writeBytes(into, end, REQUEST_ID), request_id);
    if (end < 0) return -1;
  }
  if (resource !== undefined) {
    end = writeString(into, writeBytes(into, end, RESOURCE), resource);
    if (end < 0) return -1;
  }
  end = writeAscii(into, writeBytes(into, end, SEQ), String(seq));
  if (session_id !== undefined) {
    end = writeString(into, writeBytes(into, end, SESSION_ID), session_id);
    if (end < 0) return -1;
  }
  end = writeBytes(into, end, envelope.timeToEnd);
  return end - at > MAX_RECORD_BYTES ? -1 : end;
}

/** Up to this many bytes a loop copies faster than a call to `Uint8Array.prototype.set` (measured on Node 20). */
const COPY_LOOP_MAX = 15;

/** Copies `bytes` to `at`; returns the end. Bytes past the end of `into` are dropped, as every writer here drops them. */
function writeBytes(into: Uint8Array, at: number, bytes: Uint8Array): number {
  const n = bytes.length;
  if (n > COPY_LOOP_MAX && at + n <= into.length) {
    into.set(bytes, at);
  } else {
    for (let i = 0; i < n; i++) into[at + i] = bytes[i]!;
  }
  return at + n;
}

/** `text`, known to be ASCII without anything to escape (hex, decimal digits), at `at`; returns the end. */
function writeAscii(into: Uint8Array, at: number, text: string): number {
  const n = text.length;
  for (let i = 0; i < n; i++) into[at + i] = text.charCodeAt(i);
  return at + n;
}

/**
 * Strings at least this long go to the native path ({@link writeStringRest}) without the
 * character loop. One native copy costs about as much as 40 ASCII characters of the loop on
 * Node 20 (a regular expression test, a view, `TextEncoder.encodeInto`, and flattening a
 * concatenated string), measured per record with the shapes of bench/audit/encode.ts; most
 * strings of a record are shorter.
 */
const NATIVE_MIN = 40;
/** After a non-ASCII character the loop writes two to four bytes per character, so the native path pays off sooner. */
const NATIVE_REST_MIN = 16;
/** A character JSON.stringify escapes in a well-formed string (ECMA-262 QuoteJSONString). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;
/** 1 for each ASCII code JSON.stringify writes as it is. */
const PLAIN_ASCII = new Uint8Array(0x80);
for (let c = 0x20; c < 0x80; c++) if (c !== 0x22 && c !== 0x5c) PLAIN_ASCII[c] = 1;
const textEncoder = new TextEncoder();

/**
 * `text` as a JSON string exactly as `JSON.stringify` writes it (ECMA-262 QuoteJSONString, the
 * form RFC 8785 §3.2.2.2 adopts), in UTF-8; -1 for a lone surrogate, which sealRecord refuses.
 * A short string's leading plain ASCII is copied by a tight loop; the rest of it, or all of a
 * long string, goes to {@link writeStringRest}.
 */
function writeString(into: Uint8Array, at: number, text: unknown): number {
  if (typeof text !== 'string') return -1;
  into[at] = 0x22;
  const start = at + 1;
  const n = text.length;
  let i = 0;
  if (n < NATIVE_MIN) {
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80 || PLAIN_ASCII[c] === 0) break;
      into[start + i] = c;
    }
    if (i === n) {
      into[start + n] = 0x22;
      return start + n + 1;
    }
  }
  return writeStringRest(into, start, text, i);
}

/**
 * Writes `text` from its character `from` (the characters before it, plain ASCII, are already
 * at `start`) and the closing quote. When enough is left and the whole string needs no escape
 * and is well-formed, one `TextEncoder.encodeInto` writes it all (its UTF-8 is then exactly
 * what JSON.stringify quotes); otherwise the character loop does.
 */
function writeStringRest(into: Uint8Array, start: number, text: string, from: number): number {
  const n = text.length;
  if (n - from < NATIVE_REST_MIN || NEEDS_ESCAPE.test(text) || hasLoneSurrogate(text)) return writeEscaped(into, start + from, text, from);
  // Every character takes at least one byte, and the closing quote one more: a string that
  // cannot fit runs past the room the record may take, so the record is refused as too long.
  const room = into.length - start;
  if (room <= n) return -1;
  const { read, written } = textEncoder.encodeInto(text, new Uint8Array(into.buffer, into.byteOffset + start, room));
  if (read !== n) return -1;
  // A closing quote that falls past the room is dropped like any write there, and the end
  // returned is then past the room too: the record's size check refuses it.
  into[start + written] = 0x22;
  return start + written + 1;
}

/** The letter of the short escape JSON.stringify writes for each control character (`\n`), or 0 where it writes `\u00XX`. */
const SHORT_ESCAPES = new Uint8Array(0x20);
for (const [code, letter] of [[0x08, 'b'], [0x09, 't'], [0x0a, 'n'], [0x0c, 'f'], [0x0d, 'r']] as const) SHORT_ESCAPES[code] = letter.charCodeAt(0);
const HEX_DIGITS = utf8Encode('0123456789abcdef');

/** The character loop of {@link writeStringRest}: escapes and UTF-8 by hand, from character `from` at `at`, then the closing quote. */
function writeEscaped(into: Uint8Array, at: number, text: string, from: number): number {
  let end = at;
  const n = text.length;
  for (let i = from; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c < 0x80) {
      if (c === 0x22 || c === 0x5c) into[end++] = 0x5c;
      into[end++] = c;
    } else if (c < 0x20) {
      into[end++] = 0x5c;
      const short = SHORT_ESCAPES[c]!;
      if (short !== 0) {
        into[end++] = short;
      } else {
        into[end++] = 0x75;
        into[end++] = 0x30;
        into[end++] = 0x30;
        into[end++] = HEX_DIGITS[c >> 4]!;
        into[end++] = HEX_DIGITS[c & 0xf]!;
      }
    } else if (c < 0x800) {
      into[end++] = 0xc0 | (c >> 6);
      into[end++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      into[end++] = 0xe0 | (c >> 12);
      into[end++] = 0x80 | ((c >> 6) & 0x3f);
      into[end++] = 0x80 | (c & 0x3f);
    } else {
      const d = text.charCodeAt(i + 1);
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return -1;
      const point = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      into[end++] = 0xf0 | (point >> 18);
      into[end++] = 0x80 | ((point >> 12) & 0x3f);
      into[end++] = 0x80 | ((point >> 6) & 0x3f);
      into[end++] = 0x80 | (point & 0x3f);
      i++;
    }
  }
  into[end++] = 0x22;
  return end;
}

function writePrincipal(into: Uint8Array, at: number, value: AuditPrincipal): number {
  if (!isPlainObject(value)) return -1;
  for (const key in value) if (key !== 'subject' && key !== 'email' && key !== 'groups') return -1;
  const { subject, email, groups } = value;
  if (!Array.isArray(groups)) return -1;
  let end: number;
  if (email === undefined) {
    end = writeBytes(into, at, PRINCIPAL_GROUPS);
  } else {
    end = writeString(into, writeBytes(into, at, PRINCIPAL_EMAIL), email);
    if (end < 0) return -1;
    end = writeBytes(into, end, GROUPS);
  }
  for (let i = 0; i < groups.length; i++) {
    if (i > 0) into[end++] = 0x2c;
    end = writeString(into, end, groups[i]);
    if (end < 0) return -1;
  }
  end = writeString(into, writeBytes(into, end, SUBJECT), subject);
  if (end < 0) return -1;
  into[end++] = 0x7d;
  return end;
}

function writeDecision(into: Uint8Array, at: number, value: AuditDecision): number {
  if (!isPlainObject(value)) return -1;
  for (const key in value) if (key !== 'effect' && key !== 'rule' && key !== 'reason') return -1;
  const { effect, rule, reason } = value;
  if (effect !== 'allow' && effect !== 'deny') return -1;
  let end = writeString(into, writeBytes(into, at, effect === 'allow' ? DECISION_ALLOW : DECISION_DENY), reason);
  if (end < 0) return -1;
  if (rule === null) return writeBytes(into, end, RULE_NULL_END);
  end = writeString(into, writeBytes(into, end, RULE), rule);
  if (end < 0) return -1;
  into[end++] = 0x7d;
  return end;
}

/**
 * The canonical UTF-8 of a `data` value under convertValue's rules, or -1 when convertValue
 * would refuse it or change its form (byte strings and bigints are left to it). Object members
 * are written in sorted key order, which is the canonical order for every key, index-like or not.
 */
function writeValue(into: Uint8Array, at: number, value: unknown, depth: number): number {
  if (value === null) return writeBytes(into, at, NULL);
  switch (typeof value) {
    case 'boolean':
      return writeBytes(into, at, value ? TRUE : FALSE);
    case 'string':
      return writeString(into, at, value);
    case 'number':
      // String(-0) is "0", the canonical spelling.
      return Number.isSafeInteger(value) ? writeAscii(into, at, String(value)) : -1;
    case 'object':
      break;
    default:
      return -1;
  }
  if (depth >= MAX_DATA_DEPTH) return -1;
  let end = at;
  if (Array.isArray(value)) {
    into[end++] = 0x5b;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === undefined) return -1;
      if (i > 0) into[end++] = 0x2c;
      end = writeValue(into, end, item, depth + 1);
      if (end < 0) return -1;
    }
    into[end++] = 0x5d;
    return end;
  }
  if (!isPlainObject(value)) return -1;
  const keys = sortedKeys(value);
  into[end++] = 0x7b;
  let first = true;
  for (const key of keys) {
    const item = value[key];
    if (item === undefined) continue;
    if (key === BYTES_MARKER) return -1;
    if (!first) into[end++] = 0x2c;
    end = writeString(into, end, key);
    if (end < 0) return -1;
    into[end++] = 0x3a;
    end = writeValue(into, end, item, depth + 1);
    if (end < 0) return -1;
    first = false;
  }
  into[end++] = 0x7d;
  return end;
}

/** Up to this many keys an insertion sort beats `Array.prototype.sort`, whose setup dominates small arrays. */
const INSERTION_SORT_MAX = 16;

/**
 * The object's own enumerable keys in UTF-16 code unit order (RFC 8785 §3.2.3), the order the
 * default `Array.prototype.sort` gives and JavaScript's `<` on strings compares by. Callers'
 * objects are small and often unsorted (`{ method, path, host }`), so a short insertion sort
 * does most of the work.
 */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value);
  const n = keys.length;
  if (n > INSERTION_SORT_MAX) {
    for (let i = 1; i < n; i++) if (keys[i - 1]! > keys[i]!) return keys.sort();
    return keys;
  }
  for (let i = 1; i < n; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/**
 * Checks an event without sealing it, by the rules {@link sealRecord} throws on (all but those
 * that need the seal options, such as `ref` pointing before `seq`).
 */
export function validateEvent(event: AuditEvent): { readonly ok: true } | { readonly ok: false; readonly path: string; readonly reason: string } {
  try {
    convertEvent(event, newContext());
    return { ok: true };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, path: error.path, reason: error.why };
    throw error;
  }
}

/** State of one conversion: the raw bytes behind each byte-string marker, and whether any key looks like an array index. */
interface ConvertContext {
  readonly rawBytes: WeakMap<object, Uint8Array>;
  indexLikeKey: boolean;
}

function newContext(): ConvertContext {
  return { rawBytes: new WeakMap(), indexLikeKey: false };
}

/** Keys that engines enumerate before all others, in numeric order (ECMA-262 OrdinaryOwnPropertyKeys). */
function isIndexLike(key: string): boolean {
  return /^(?:0|[1-9][0-9]{0,9})$/.test(key) && Number(key) < 2 ** 32 - 1;
}

function buildRecord(event: AuditEvent, options: SealOptions, context: ConvertContext): AuditRecord {
  const { logId, seq, prev, timeMs } = options;
  if (typeof logId !== 'string' || logId === '' || hasLoneSurrogate(logId)) throw new Invalid('log_id', 'must be a non-empty string');
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Invalid('seq', `must be a whole number ≥ 0, not ${seq}`);
  if (typeof prev !== 'string' || !isHashHex(prev)) throw new Invalid('prev', 'must be 64 lowercase hex digits');
  // ±8.64e15 ms is the range of a JavaScript Date; toISOString throws beyond it.
  const time = Number.isSafeInteger(timeMs) && Math.abs(timeMs) <= 8.64e15 ? new Date(timeMs).toISOString() : '';
  if (!isRecordTime(time)) throw new Invalid('time', `${timeMs} is not a time between years 0 and 9999 in whole milliseconds`);
  const converted = convertEvent(event, context);
  if (converted.ref !== undefined && converted.ref >= seq) throw new Invalid('ref', `must point to an earlier record than seq ${seq}`);
  // Keys inserted in canonical (UTF-16) order; see sealRecord.
  const record: Record<string, unknown> = { data: converted.data };
  if (converted.decision !== undefined) record.decision = converted.decision;
  record.kind = converted.kind;
  record.log_id = logId;
  record.prev = prev;
  if (converted.principal !== undefined) record.principal = converted.principal;
  if (converted.ref !== undefined) record.ref = converted.ref;
  if (converted.request_id !== undefined) record.request_id = converted.request_id;
  if (converted.resource !== undefined) record.resource = converted.resource;
  record.seq = seq;
  if (converted.session_id !== undefined) record.session_id = converted.session_id;
  record.time = time;
  record.v = RECORD_VERSION;
  return record as unknown as AuditRecord;
}

type ConvertedEvent = Omit<AuditRecord, 'v' | 'log_id' | 'seq' | 'prev' | 'time'>;

const EVENT_FIELDS: ReadonlySet<string> = new Set(['kind', 'principal', 'resource', 'decision', 'request_id', 'session_id', 'ref', 'data']);

function convertEvent(event: AuditEvent, context: ConvertContext): ConvertedEvent {
  if (typeof event !== 'object' || event === null) throw new Invalid('event', 'must be an object');
  for (const key in event) {
    if (!EVENT_FIELDS.has(key)) throw new Invalid(key, 'is not a field of an audit event (kind-specific fields go in data)');
  }
  if (!isRecordKind(event.kind)) throw new Invalid('kind', `${JSON.stringify(event.kind)} is not one of ${RECORD_KINDS.join(', ')}`);
  const out: { -readonly [K in keyof ConvertedEvent]: ConvertedEvent[K] } = { kind: event.kind, data: {} };
  if (event.principal !== undefined) out.principal = convertPrincipal(event.principal);
  if (event.resource !== undefined) out.resource = text(event.resource, 'resource');
  if (event.decision !== undefined) out.decision = convertDecision(event.decision);
  if (event.request_id !== undefined) out.request_id = text(event.request_id, 'request_id');
  if (event.session_id !== undefined) out.session_id = text(event.session_id, 'session_id');
  if (event.ref !== undefined) {
    if (!Number.isSafeInteger(event.ref) || event.ref < 0) throw new Invalid('ref', 'must be the seq of an earlier record');
    out.ref = event.ref;
  }
  if (!isPlainObject(event.data)) throw new Invalid('data', 'must be a plain object');
  try {
    out.data = convertValue(event.data, 0, context) as JsonObject;
  } catch (error) {
    throw within(error, 'data');
  }
  return out;
}

function text(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new Invalid(path, 'must be a string');
  if (hasLoneSurrogate(value)) throw new Invalid(path, 'holds a lone UTF-16 surrogate');
  return value;
}

function convertPrincipal(value: AuditPrincipal): AuditPrincipal {
  if (!isPlainObject(value)) throw new Invalid('principal', 'must be an object');
  for (const key in value) {
    if (key !== 'subject' && key !== 'email' && key !== 'groups') throw new Invalid(`principal.${key}`, 'is not a principal field');
  }
  if (!Array.isArray(value.groups)) throw new Invalid('principal.groups', 'must be an array of strings');
  const groups = value.groups.map((g, i) => text(g, `principal.groups[${i}]`));
  const subject = text(value.subject, 'principal.subject');
  // Keys in canonical order (see sealRecord).
  return value.email === undefined ? { groups, subject } : { email: text(value.email, 'principal.email'), groups, subject };
}

function convertDecision(value: AuditDecision): AuditDecision {
  if (!isPlainObject(value)) throw new Invalid('decision', 'must be an object');
  for (const key in value) {
    if (key !== 'effect' && key !== 'rule' && key !== 'reason') throw new Invalid(`decision.${key}`, 'is not a decision field');
  }
  if (value.effect !== 'allow' && value.effect !== 'deny') throw new Invalid('decision.effect', 'must be "allow" or "deny"');
  const rule = value.rule === null ? null : text(value.rule, 'decision.rule');
  return { effect: value.effect, reason: text(value.reason, 'decision.reason'), rule };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

const MAX_DATA_DEPTH = 32;

/**
 * Converts one caller value to its JSON form. Paths are only built when something is refused:
 * each level adds its segment to the {@link Invalid} error on the way out, so the common case
 * concatenates no strings.
 */
function convertValue(value: unknown, depth: number, context: ConvertContext): JsonValue {
  if (value === null) return null;
  switch (typeof value) {
    case 'boolean':
      return value;
    case 'string':
      return text(value, '');
    case 'number':
      if (!Number.isSafeInteger(value)) {
        throw new Invalid('', `${value} is not a safe integer (floats are not allowed; pass large integers as bigint)`);
      }
      return value === 0 ? 0 : value;
    case 'bigint':
      // Beyond 2^53−1 a JSON number would be rounded by any JavaScript reader: write digits.
      return value >= -MAX_SAFE_BIGINT && value <= MAX_SAFE_BIGINT ? Number(value) : value.toString();
    case 'object':
      break;
    default:
      throw new Invalid('', `a ${typeof value} cannot be recorded`);
  }
  if (depth >= MAX_DATA_DEPTH) throw new Invalid('', `nesting deeper than ${MAX_DATA_DEPTH}`);
  if (value instanceof Uint8Array) {
    const marker = { [BYTES_MARKER]: encodeBase64(value) };
    context.rawBytes.set(marker, value);
    return marker;
  }
  if (Array.isArray(value)) {
    const out: JsonValue[] = new Array<JsonValue>(value.length);
    for (let i = 0; i < value.length; i++) {
      try {
        if (value[i] === undefined) throw new Invalid('', 'undefined cannot be recorded in an array (use null)');
        out[i] = convertValue(value[i], depth + 1, context);
      } catch (error) {
        throw within(error, `[${i}]`);
      }
    }
    return out;
  }
  if (!isPlainObject(value)) throw new Invalid('', 'only plain objects, arrays and Uint8Array can be recorded');
  const out: Record<string, JsonValue> = {};
  // Sorted insertion: the canonical order JSON.stringify will then follow (see sealRecord).
  for (const key of Object.keys(value).sort()) {
    const item = value[key];
    if (item === undefined) continue;
    try {
      if (key === BYTES_MARKER) throw new Invalid('', `the key "${BYTES_MARKER}" is reserved for byte strings (pass a Uint8Array)`);
      if (hasLoneSurrogate(key)) throw new Invalid('', 'this key holds a lone UTF-16 surrogate');
      if (isIndexLike(key)) context.indexLikeKey = true;
      const converted = convertValue(item, depth + 1, context);
      if (key === '__proto__') Object.defineProperty(out, key, { value: converted, enumerable: true, writable: true, configurable: true });
      else out[key] = converted;
    } catch (error) {
      throw within(error, `.${key}`);
    }
  }
  return out;
}

const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);

/** Adds one path segment to a refusal coming up from a nested value. */
function within(error: unknown, segment: string): unknown {
  return error instanceof Invalid ? new Invalid(segment + error.path, error.why) : error;
}

/** A place in `data` that may be replaced by a {@link TruncatedValue}. */
interface Slot {
  readonly parent: Record<string, JsonValue> | JsonValue[];
  readonly key: string | number;
  readonly value: JsonValue;
  readonly kind: 'string' | 'bytes' | 'container';
  /** Encoded size of the value as it stands in the record now. */
  size: number;
  readonly ancestors: readonly Slot[];
  cut: boolean;
  /** Containers: canonical text of the value before any cut inside it. */
  readonly original?: string;
}

function collectSlots(container: Record<string, JsonValue> | JsonValue[], ancestors: readonly Slot[], rawBytes: WeakMap<object, Uint8Array>, into: Slot[]): void {
  const keys: (string | number)[] = Array.isArray(container) ? container.map((_, i) => i) : Object.keys(container).sort();
  for (const key of keys) {
    const value = (container as Record<string | number, JsonValue>)[key]!;
    if (typeof value === 'string') {
      into.push({ parent: container, key, value, kind: 'string', size: utf8Length(JSON.stringify(value)), ancestors, cut: false });
    } else if (typeof value === 'object' && value !== null) {
      const encoded = canonicalize(value);
      if (rawBytes.has(value)) {
        into.push({ parent: container, key, value, kind: 'bytes', size: encoded.length, ancestors, cut: false });
      } else {
        const slot: Slot = { parent: container, key, value, kind: 'container', size: utf8Length(encoded), ancestors, cut: false, original: encoded };
        into.push(slot);
        collectSlots(value as Record<string, JsonValue> | JsonValue[], [...ancestors, slot], rawBytes, into);
      }
    }
  }
}

function truncationOf(slot: Slot, rawBytes: WeakMap<object, Uint8Array>): TruncatedValue {
  if (slot.kind === 'bytes') {
    const raw = rawBytes.get(slot.value as object)!;
    // Base64 turns 3 bytes into 4 characters: keep as many bytes as fit the prefix budget.
    const keep = Math.floor(TRUNCATED_PREFIX_BYTES / 4) * 3;
    return { truncated: true, prefix: encodeBase64(raw.subarray(0, keep)), sha256: bytesToHex(sha256(raw)), bytes: raw.length, encoding: 'base64' };
  }
  const whole = slot.kind === 'string' ? (slot.value as string) : slot.original!;
  const encoded = utf8Encode(whole);
  const base = { truncated: true as const, prefix: utf8Prefix(whole, TRUNCATED_PREFIX_BYTES), sha256: bytesToHex(sha256(encoded)), bytes: encoded.length };
  return slot.kind === 'string' ? base : { ...base, encoding: 'json' };
}

/** The longest prefix of `value` whose UTF-8 is at most `maxBytes`, never splitting a code point. */
function utf8Prefix(value: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of value) {
    const size = utf8Length(char);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return value.slice(0, end);
}

/**
 * Cuts values inside `data` until the record's size (`size` now) is at most the limit. Sizes
 * are tracked by difference: replacing one value changes the record's encoding by exactly the
 * difference of the two values' encodings, so the record is encoded once here, not per cut.
 */
function fitData(data: Record<string, JsonValue>, size: number, rawBytes: WeakMap<object, Uint8Array>): void {
  const slots: Slot[] = [];
  collectSlots(data, [], rawBytes, slots);
  let total = size;
  const bySize = (a: Slot, b: Slot) => b.size - a.size;
  const leaves = slots.filter((s) => s.kind !== 'container').sort(bySize);
  const containers = slots.filter((s) => s.kind === 'container').sort(bySize);
  for (const slot of [...leaves, ...containers]) {
    if (total <= MAX_RECORD_BYTES) return;
    // A value no longer than the kept prefix cannot shrink (the prefix would be all of it).
    if (slot.size <= TRUNCATED_PREFIX_BYTES || slot.ancestors.some((a) => a.cut)) continue;
    const current = slot.kind === 'container' ? utf8Length(canonicalize(slot.value)) : slot.size;
    const replacement = truncationOf(slot, rawBytes);
    const replacementSize = utf8Length(canonicalize(replacement as unknown as JsonValue));
    if (replacementSize >= current) continue;
    (slot.parent as Record<string | number, JsonValue>)[slot.key] = replacement as unknown as JsonValue;
    slot.cut = true;
    total += replacementSize - current;
  }
}

/** Why bytes are not a valid record; stable strings that `audit verify` prints. */
export type RecordProblem = 'too-large' | 'non-canonical' | 'invalid-record' | 'unknown-kind';

export type ParseRecordResult =
  | { readonly ok: true; readonly record: AuditRecord }
  | { readonly ok: false; readonly reason: RecordProblem; readonly detail: string };

/**
 * Decodes and checks a stored record: canonical JSON (byte-identical to its re-encoding), at most
 * {@link MAX_RECORD_BYTES}, version 1, a known kind, and every field of the model in its place
 * with its type. Unknown fields are refused, since no reader of this version would understand
 * them. The envelope's relation to other records (seq order, prev)
 * is the chain verifier's job.
 */
export function parseRecord(bytes: Uint8Array): ParseRecordResult {
  if (bytes.length > MAX_RECORD_BYTES) return { ok: false, reason: 'too-large', detail: `${bytes.length} bytes, the limit is ${MAX_RECORD_BYTES}` };
  const decoded = decodeCanonical(bytes);
  if (!decoded.ok) return { ok: false, reason: 'non-canonical', detail: `${decoded.reason} (at character ${decoded.at})` };
  const problem = recordShapeProblem(decoded.value);
  if (problem !== null) return { ok: false, reason: problem.reason, detail: problem.detail };
  return { ok: true, record: decoded.value as unknown as AuditRecord };
}

const RECORD_FIELDS = new Set(['v', 'log_id', 'seq', 'prev', 'time', 'kind', 'principal', 'resource', 'decision', 'request_id', 'session_id', 'ref', 'data']);

function recordShapeProblem(value: JsonValue): { reason: RecordProblem; detail: string } | null {
  if (!isObject(value)) return invalidRecord('a record is a JSON object');
  const r = value;
  for (const key in r) if (!RECORD_FIELDS.has(key)) return invalidRecord(`unknown field ${JSON.stringify(key)}`);
  if (r.v !== RECORD_VERSION) return invalidRecord(`v must be ${RECORD_VERSION}`);
  if (typeof r.log_id !== 'string' || r.log_id === '') return invalidRecord('log_id must be a non-empty string');
  if (typeof r.seq !== 'number' || r.seq < 0) return invalidRecord('seq must be a whole number ≥ 0');
  if (typeof r.prev !== 'string' || !isHashHex(r.prev)) return invalidRecord('prev must be 64 lowercase hex digits');
  if (typeof r.time !== 'string' || !isRecordTime(r.time)) return invalidRecord('time must be RFC 3339 UTC with milliseconds');
  if (typeof r.kind !== 'string') return invalidRecord('kind must be a string');
  if (!isRecordKind(r.kind)) return { reason: 'unknown-kind', detail: `kind ${JSON.stringify(r.kind)} is not a known record kind` };
  if (r.principal !== undefined && !isPrincipal(r.principal)) return invalidRecord('principal must be { subject, email?, groups }');
  if (r.decision !== undefined && !isDecision(r.decision)) return invalidRecord('decision must be { effect, rule, reason }');
  if (r.resource !== undefined && typeof r.resource !== 'string') return invalidRecord('resource must be a string');
  if (r.request_id !== undefined && typeof r.request_id !== 'string') return invalidRecord('request_id must be a string');
  if (r.session_id !== undefined && typeof r.session_id !== 'string') return invalidRecord('session_id must be a string');
  if (r.ref !== undefined && (typeof r.ref !== 'number' || r.ref < 0 || r.ref >= r.seq)) return invalidRecord('ref must be the seq of an earlier record');
  if (!isObject(r.data)) return invalidRecord('data must be an object');
  return null;
}

function invalidRecord(detail: string): { reason: RecordProblem; detail: string } {
  return { reason: 'invalid-record', detail };
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPrincipal(value: JsonValue): boolean {
  if (!isObject(value)) return false;
  for (const key in value) if (key !== 'subject' && key !== 'email' && key !== 'groups') return false;
  const { subject, email, groups } = value;
  if (typeof subject !== 'string' || (email !== undefined && typeof email !== 'string') || !Array.isArray(groups)) return false;
  for (const group of groups) if (typeof group !== 'string') return false;
  return true;
}

function isDecision(value: JsonValue): boolean {
  if (!isObject(value)) return false;
  for (const key in value) if (key !== 'effect' && key !== 'rule' && key !== 'reason') return false;
  return (value.effect === 'allow' || value.effect === 'deny') && (value.rule === null || typeof value.rule === 'string') && typeof value.reason === 'string';
}

/** The bytes a `{ "$bytes": base64 }` value stands for; `null` when `value` is not one. */
export function bytesFromValue(value: JsonValue | undefined): Uint8Array | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  const encoded = (value as JsonObject)[BYTES_MARKER];
  if (keys.length !== 1 || typeof encoded !== 'string') return null;
  return decodeBase64(encoded);
}

/** True when `value` is a {@link TruncatedValue} written by {@link sealRecord}. */
export function isTruncatedValue(value: JsonValue | undefined): value is JsonObject & TruncatedValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as JsonObject;
  return v.truncated === true && typeof v.prefix === 'string' && typeof v.sha256 === 'string' && typeof v.bytes === 'number';
}
