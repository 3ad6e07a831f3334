import { CANCEL_KEY_MAX_BYTES, CANCEL_KEY_MIN_BYTES, type ProtocolVersion } from './frontend-messages.js';
import { PayloadCursor, PayloadError } from './payload-cursor.js';
import { describeTypeByte, protocolError, type ProtocolError } from './protocol-error.js';

/**
 * Backend (server → client) messages and their strict decoders, limited to what a proxy tracks.
 * PostgreSQL docs, Frontend/Backend Protocol, §55.7 "Message Formats". Structure is checked
 * strictly (terminators, counts, no trailing bytes); text is decoded leniently (invalid UTF-8
 * becomes U+FFFD) because the server speaks the session's client_encoding and the gateway only
 * logs backend text, it never decides on it.
 */

export interface AuthenticationOk {
  readonly type: 'AuthenticationOk';
  readonly raw: Buffer;
}
export interface AuthenticationKerberosV5 {
  readonly type: 'AuthenticationKerberosV5';
  readonly raw: Buffer;
}
export interface AuthenticationCleartextPassword {
  readonly type: 'AuthenticationCleartextPassword';
  readonly raw: Buffer;
}
export interface AuthenticationMD5Password {
  readonly type: 'AuthenticationMD5Password';
  /** Four bytes, a view into `raw`. */
  readonly salt: Buffer;
  readonly raw: Buffer;
}
export interface AuthenticationGSS {
  readonly type: 'AuthenticationGSS';
  readonly raw: Buffer;
}
export interface AuthenticationGSSContinue {
  readonly type: 'AuthenticationGSSContinue';
  readonly data: Buffer;
  readonly raw: Buffer;
}
export interface AuthenticationSSPI {
  readonly type: 'AuthenticationSSPI';
  readonly raw: Buffer;
}
export interface AuthenticationSASL {
  readonly type: 'AuthenticationSASL';
  /** Mechanisms in the server's order of preference, e.g. `SCRAM-SHA-256-PLUS`, `SCRAM-SHA-256`. */
  readonly mechanisms: readonly string[];
  readonly raw: Buffer;
}
export interface AuthenticationSASLContinue {
  readonly type: 'AuthenticationSASLContinue';
  readonly data: Buffer;
  readonly raw: Buffer;
}
export interface AuthenticationSASLFinal {
  readonly type: 'AuthenticationSASLFinal';
  readonly data: Buffer;
  readonly raw: Buffer;
}

export type AuthenticationRequest =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal;

export interface ParameterStatus {
  readonly type: 'ParameterStatus';
  readonly name: string;
  readonly value: string;
  readonly raw: Buffer;
}

export interface BackendKeyData {
  readonly type: 'BackendKeyData';
  readonly pid: number;
  /** 4 bytes under protocol 3.0 (the session should insist on it), 4 to 256 under 3.2. */
  readonly secretKey: Buffer;
  readonly raw: Buffer;
}

/** `I` idle, `T` in a transaction block, `E` in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

export interface ReadyForQuery {
  readonly type: 'ReadyForQuery';
  readonly status: TransactionStatus;
  readonly raw: Buffer;
}

export interface CommandComplete {
  readonly type: 'CommandComplete';
  /** The tag as sent, e.g. `INSERT 0 5`, `SELECT 3`, `CREATE TABLE`. */
  readonly tag: string;
  /** The command word(s): `INSERT`, `SELECT`, `CREATE TABLE`, ... */
  readonly command: string;
  /** Rows affected or returned, for the tags that carry a count. */
  readonly rows?: number;
  /** The OID field of `INSERT oid rows` (always 0 since PostgreSQL 12). */
  readonly oid?: number;
  readonly raw: Buffer;
}

/**
 * The fields of an ErrorResponse or NoticeResponse (§55.8 "Error and Notice Message Fields").
 * `S`, `C` and `M` are always present; fields of unknown type are skipped, as §55.8 asks.
 */
export interface NoticeFields {
  /** `S`: ERROR, FATAL, PANIC, WARNING, NOTICE, DEBUG, INFO or LOG, possibly localized. */
  readonly severity: string;
  /** `V`: the severity, never localized (PostgreSQL 9.6 and later). */
  readonly severityNonLocalized?: string;
  /** `C`: the SQLSTATE code. */
  readonly code: string;
  /** `M`: the primary message. */
  readonly message: string;
  /** `D` */
  readonly detail?: string;
  /** `H` */
  readonly hint?: string;
  /** `P`: a 1-based character index into the query string. */
  readonly position?: string;
  /** `p` */
  readonly internalPosition?: string;
  /** `q` */
  readonly internalQuery?: string;
  /** `W` */
  readonly where?: string;
  /** `s` */
  readonly schema?: string;
  /** `t` */
  readonly table?: string;
  /** `c` */
  readonly column?: string;
  /** `d` */
  readonly dataType?: string;
  /** `n` */
  readonly constraint?: string;
  /** `F` */
  readonly file?: string;
  /** `L` */
  readonly line?: string;
  /** `R` */
  readonly routine?: string;
}

/** §55.8 field type bytes and the {@link NoticeFields} property each fills, in PostgreSQL's order. */
export const NOTICE_FIELD_CODES = {
  S: 'severity',
  V: 'severityNonLocalized',
  C: 'code',
  M: 'message',
  D: 'detail',
  H: 'hint',
  P: 'position',
  p: 'internalPosition',
  q: 'internalQuery',
  W: 'where',
  s: 'schema',
  t: 'table',
  c: 'column',
  d: 'dataType',
  n: 'constraint',
  F: 'file',
  L: 'line',
  R: 'routine',
} as const satisfies Record<string, keyof NoticeFields>;

export interface ErrorResponse {
  readonly type: 'ErrorResponse';
  readonly fields: NoticeFields;
  readonly raw: Buffer;
}

export interface NoticeResponse {
  readonly type: 'NoticeResponse';
  readonly fields: NoticeFields;
  readonly raw: Buffer;
}

export interface RowDescription {
  readonly type: 'RowDescription';
  readonly fieldCount: number;
  readonly raw: Buffer;
}

/**
 * A result row, counted, never decoded. With `bulk: 'skip'` the reader returns it as soon as
 * its column count arrives and drops its body without buffering it: then `raw` is `null`.
 */
export interface DataRow {
  readonly type: 'DataRow';
  readonly columnCount: number;
  /** The whole frame's size, type byte included. */
  readonly byteLength: number;
  readonly raw: Buffer | null;
}

interface CopyResponseFields {
  /** 0: textual COPY (all columns text); 1: binary. */
  readonly format: number;
  readonly columnFormats: readonly number[];
  readonly raw: Buffer;
}
export interface CopyInResponse extends CopyResponseFields {
  readonly type: 'CopyInResponse';
}
export interface CopyOutResponse extends CopyResponseFields {
  readonly type: 'CopyOutResponse';
}
export interface CopyBothResponse extends CopyResponseFields {
  readonly type: 'CopyBothResponse';
}

export interface NotificationResponse {
  readonly type: 'NotificationResponse';
  readonly pid: number;
  readonly channel: string;
  readonly payload: string;
  readonly raw: Buffer;
}

export interface ParameterDescription {
  readonly type: 'ParameterDescription';
  readonly paramTypes: readonly number[];
  readonly raw: Buffer;
}

export interface NegotiateProtocolVersion {
  readonly type: 'NegotiateProtocolVersion';
  /** The version the server will speak: the newest it supports, not above the one requested. */
  readonly version: ProtocolVersion;
  /** Requested `_pq_.` options the server does not recognize. */
  readonly unsupportedOptions: readonly string[];
  readonly raw: Buffer;
}

/** As {@link DataRow}: with `bulk: 'skip'`, `data` and `raw` are `null`. */
export interface BackendCopyData {
  readonly type: 'CopyData';
  readonly byteLength: number;
  readonly data: Buffer | null;
  readonly raw: Buffer | null;
}

export interface FunctionCallResponse {
  readonly type: 'FunctionCallResponse';
  readonly result: Buffer | null;
  readonly raw: Buffer;
}

interface Bodyless<T extends string> {
  readonly type: T;
  readonly raw: Buffer;
}
export type ParseComplete = Bodyless<'ParseComplete'>;
export type BindComplete = Bodyless<'BindComplete'>;
export type CloseComplete = Bodyless<'CloseComplete'>;
export type NoData = Bodyless<'NoData'>;
export type PortalSuspended = Bodyless<'PortalSuspended'>;
export type EmptyQueryResponse = Bodyless<'EmptyQueryResponse'>;
export type BackendCopyDone = Bodyless<'CopyDone'>;

/**
 * The server's one-byte answer to SSLRequest (§55.2.10 "SSL Session Encryption"): `S` to go on
 * with TLS, `N` to go on in plain text. Only read after {@link BackendReader.expectSslResponse}.
 */
export interface SSLResponse {
  readonly type: 'SSLResponse';
  readonly accepted: boolean;
}

export type BackendMessage =
  | AuthenticationRequest
  | ParameterStatus
  | BackendKeyData
  | ReadyForQuery
  | CommandComplete
  | ErrorResponse
  | NoticeResponse
  | RowDescription
  | DataRow
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | NotificationResponse
  | ParameterDescription
  | NegotiateProtocolVersion
  | BackendCopyData
  | BackendCopyDone
  | FunctionCallResponse
  | ParseComplete
  | BindComplete
  | CloseComplete
  | NoData
  | PortalSuspended
  | EmptyQueryResponse;

/** The type bytes a backend may send (§55.7), with the message each names. */
export const BACKEND_MESSAGE_TYPES = {
  R: 'Authentication',
  S: 'ParameterStatus',
  K: 'BackendKeyData',
  Z: 'ReadyForQuery',
  C: 'CommandComplete',
  E: 'ErrorResponse',
  N: 'NoticeResponse',
  T: 'RowDescription',
  D: 'DataRow',
  G: 'CopyInResponse',
  H: 'CopyOutResponse',
  W: 'CopyBothResponse',
  A: 'NotificationResponse',
  t: 'ParameterDescription',
  v: 'NegotiateProtocolVersion',
  d: 'CopyData',
  c: 'CopyDone',
  V: 'FunctionCallResponse',
  '1': 'ParseComplete',
  '2': 'BindComplete',
  '3': 'CloseComplete',
  n: 'NoData',
  s: 'PortalSuspended',
  I: 'EmptyQueryResponse',
} as const;

const BODYLESS: Readonly<Record<string, Bodyless<string>['type']>> = {
  '1': 'ParseComplete',
  '2': 'BindComplete',
  '3': 'CloseComplete',
  n: 'NoData',
  s: 'PortalSuspended',
  I: 'EmptyQueryResponse',
  c: 'CopyDone',
};

/** Per type byte: 0 unknown, -1 known with a variable length, else its only possible length. */
const TYPE_TABLE = new Int8Array(256);
for (const key of Object.keys(BACKEND_MESSAGE_TYPES)) TYPE_TABLE[key.charCodeAt(0)] = -1;
for (const key of Object.keys(BODYLESS)) TYPE_TABLE[key.charCodeAt(0)] = 4;
TYPE_TABLE['Z'.charCodeAt(0)] = 5;

export function isBackendTypeByte(byte: number): boolean {
  return TYPE_TABLE[byte] !== 0;
}

/** The only declared length a message of this type may have, or `null` when it varies. */
export function fixedBackendLength(typeByte: number): number | null {
  const entry = TYPE_TABLE[typeByte] ?? 0;
  return entry > 0 ? entry : null;
}

const HEADER = 5;

/** Decodes one backend message (`raw` = the whole frame, type byte included). */
export function decodeBackendMessage(raw: Buffer): BackendMessage | ProtocolError {
  const typeChar = String.fromCharCode(raw[0] ?? 0);
  try {
    return decodeTagged(typeChar, raw);
  } catch (error) {
    if (error instanceof PayloadError) return protocolError(error.code, error.message, typeChar);
    throw error;
  }
}

function decodeTagged(typeChar: string, raw: Buffer): BackendMessage | ProtocolError {
  const cursor = new PayloadCursor(raw, HEADER);
  const bodyless = BODYLESS[typeChar];
  if (bodyless !== undefined) {
    cursor.end(bodyless);
    return { type: bodyless, raw } as BackendMessage;
  }
  switch (typeChar) {
    case 'R':
      return decodeAuthentication(cursor, raw);
    case 'S': {
      const name = cursor.cstringLenient('ParameterStatus name');
      const value = cursor.cstringLenient('ParameterStatus value');
      cursor.end('ParameterStatus');
      return { type: 'ParameterStatus', name, value, raw };
    }
    case 'K': {
      const pid = cursor.int32('BackendKeyData process ID');
      const secretKey = cursor.rest();
      if (secretKey.length < CANCEL_KEY_MIN_BYTES || secretKey.length > CANCEL_KEY_MAX_BYTES) {
        throw new PayloadError(
          'malformed-message',
          `BackendKeyData secret key must be ${CANCEL_KEY_MIN_BYTES} to ${CANCEL_KEY_MAX_BYTES} bytes, ` +
            `not ${secretKey.length}`,
        );
      }
      return { type: 'BackendKeyData', pid, secretKey, raw };
    }
    case 'Z': {
      const byte = cursor.uint8('ReadyForQuery status');
      cursor.end('ReadyForQuery');
      if (byte !== 0x49 && byte !== 0x54 && byte !== 0x45) {
        const status = describeTypeByte(byte);
        throw new PayloadError('malformed-message', `ReadyForQuery status must be 'I', 'T' or 'E', not ${status}`);
      }
      return { type: 'ReadyForQuery', status: String.fromCharCode(byte) as TransactionStatus, raw };
    }
    case 'C': {
      const tag = cursor.cstringLenient('CommandComplete tag');
      cursor.end('CommandComplete');
      return { type: 'CommandComplete', ...parseCommandTag(tag), raw };
    }
    case 'E':
    case 'N': {
      const fields = readNoticeFields(cursor, typeChar === 'E' ? 'ErrorResponse' : 'NoticeResponse');
      return typeChar === 'E' ? { type: 'ErrorResponse', fields, raw } : { type: 'NoticeResponse', fields, raw };
    }
    case 'T': {
      const fieldCount = cursor.uint16('RowDescription field count');
      for (let i = 0; i < fieldCount; i++) {
        cursor.skipCstring('RowDescription field name');
        // Table OID, column number, type OID, type size, type modifier, format code.
        cursor.skip(18, 'RowDescription field attributes');
      }
      cursor.end('RowDescription');
      return { type: 'RowDescription', fieldCount, raw };
    }
    case 'D': {
      const columnCount = cursor.uint16('DataRow column count');
      for (let i = 0; i < columnCount; i++) {
        const length = cursor.int32('DataRow column length');
        if (length !== -1) cursor.skip(length, 'DataRow column value');
      }
      cursor.end('DataRow');
      return { type: 'DataRow', columnCount, byteLength: raw.length, raw };
    }
    case 'G':
    case 'H':
    case 'W': {
      const type = typeChar === 'G' ? 'CopyInResponse' : typeChar === 'H' ? 'CopyOutResponse' : 'CopyBothResponse';
      const format = readFormatCode(cursor.uint8(`${type} format`), `${type} format`);
      const count = cursor.uint16(`${type} column count`);
      if (count * 2 > cursor.remaining) {
        throw new PayloadError('malformed-message', `${type} column count ${count} exceeds the message`);
      }
      const columnFormats = new Array<number>(count);
      for (let i = 0; i < count; i++) {
        columnFormats[i] = readFormatCode(cursor.uint16(`${type} column format`), `${type} column format`);
      }
      cursor.end(type);
      return { type, format, columnFormats, raw };
    }
    case 'A': {
      const pid = cursor.int32('NotificationResponse process ID');
      const channel = cursor.cstringLenient('NotificationResponse channel');
      const payload = cursor.cstringLenient('NotificationResponse payload');
      cursor.end('NotificationResponse');
      return { type: 'NotificationResponse', pid, channel, payload, raw };
    }
    case 't': {
      const count = cursor.uint16('ParameterDescription parameter count');
      if (count * 4 > cursor.remaining) {
        throw new PayloadError('malformed-message', `ParameterDescription count ${count} exceeds the message`);
      }
      const paramTypes = new Array<number>(count);
      for (let i = 0; i < count; i++) paramTypes[i] = cursor.uint32('ParameterDescription parameter type');
      cursor.end('ParameterDescription');
      return { type: 'ParameterDescription', paramTypes, raw };
    }
    case 'v': {
      // The Int32 is a whole version (major << 16 | minor), as servers have always sent it.
      const code = cursor.int32('NegotiateProtocolVersion version');
      const count = cursor.int32('NegotiateProtocolVersion option count');
      if (count < 0 || count > cursor.remaining) {
        throw new PayloadError('malformed-message', `NegotiateProtocolVersion count ${count} exceeds the message`);
      }
      const unsupportedOptions = new Array<string>(count);
      for (let i = 0; i < count; i++) unsupportedOptions[i] = cursor.cstringLenient('NegotiateProtocolVersion option');
      cursor.end('NegotiateProtocolVersion');
      const version = { major: code >>> 16, minor: code & 0xffff };
      return { type: 'NegotiateProtocolVersion', version, unsupportedOptions, raw };
    }
    case 'd': {
      const data = cursor.rest();
      return { type: 'CopyData', byteLength: raw.length, data, raw };
    }
    case 'V': {
      const length = cursor.int32('FunctionCallResponse result length');
      const result = length === -1 ? null : cursor.bytes(length, 'FunctionCallResponse result');
      cursor.end('FunctionCallResponse');
      return { type: 'FunctionCallResponse', result, raw };
    }
    default:
      const message = `unknown backend message type ${describeTypeByte(raw[0] ?? 0)}`;
      return protocolError('unknown-message-type', message, typeChar);
  }
}

/** §55.7 Authentication*: an Int32 request code, then what that request carries. */
function decodeAuthentication(cursor: PayloadCursor, raw: Buffer): AuthenticationRequest {
  const code = cursor.int32('Authentication request code');
  switch (code) {
    case 0:
      cursor.end('AuthenticationOk');
      return { type: 'AuthenticationOk', raw };
    case 2:
      cursor.end('AuthenticationKerberosV5');
      return { type: 'AuthenticationKerberosV5', raw };
    case 3:
      cursor.end('AuthenticationCleartextPassword');
      return { type: 'AuthenticationCleartextPassword', raw };
    case 5: {
      const salt = cursor.bytes(4, 'AuthenticationMD5Password salt');
      cursor.end('AuthenticationMD5Password');
      return { type: 'AuthenticationMD5Password', salt, raw };
    }
    case 7:
      cursor.end('AuthenticationGSS');
      return { type: 'AuthenticationGSS', raw };
    case 8:
      return { type: 'AuthenticationGSSContinue', data: cursor.rest(), raw };
    case 9:
      cursor.end('AuthenticationSSPI');
      return { type: 'AuthenticationSSPI', raw };
    case 10: {
      // A list of mechanism names ended by an empty string.
      const mechanisms: string[] = [];
      for (;;) {
        const name = cursor.cstringLenient('AuthenticationSASL mechanism');
        if (name === '') break;
        mechanisms.push(name);
      }
      cursor.end('AuthenticationSASL');
      return { type: 'AuthenticationSASL', mechanisms, raw };
    }
    case 11:
      return { type: 'AuthenticationSASLContinue', data: cursor.rest(), raw };
    case 12:
      return { type: 'AuthenticationSASLFinal', data: cursor.rest(), raw };
    default:
      throw new PayloadError('malformed-message', `unknown authentication request code ${code}`);
  }
}

function readFormatCode(value: number, what: string): number {
  if (value !== 0 && value !== 1) throw new PayloadError('malformed-message', `${what} must be 0 or 1, not ${value}`);
  return value;
}

function readNoticeFields(cursor: PayloadCursor, what: string): NoticeFields {
  const fields: Record<string, string> = {};
  for (;;) {
    const code = cursor.uint8(what);
    if (code === 0) break;
    const value = cursor.cstringLenient(what);
    const name = (NOTICE_FIELD_CODES as Record<string, string>)[String.fromCharCode(code)];
    if (name !== undefined) fields[name] = value;
  }
  cursor.end(what);
  for (const required of ['severity', 'code', 'message'] as const) {
    if (fields[required] === undefined) {
      throw new PayloadError('malformed-message', `${what} lacks its ${required} field`);
    }
  }
  return fields as unknown as NoticeFields;
}

/** Command tags that end in a row count (§55.7 CommandComplete). */
const COUNTED_COMMANDS = new Set(['SELECT', 'UPDATE', 'DELETE', 'MERGE', 'MOVE', 'FETCH', 'COPY']);

/**
 * Splits a CommandComplete tag into its command and counts: `INSERT oid rows`, `SELECT rows`
 * (also sent for CREATE TABLE AS), `UPDATE rows`, `DELETE rows`, `MERGE rows`, `MOVE rows`,
 * `FETCH rows`, `COPY rows`; any other tag is a command word with no count.
 */
export function parseCommandTag(tag: string): { tag: string; command: string; rows?: number; oid?: number } {
  const parts = tag.split(' ');
  if (parts.length === 3 && parts[0] === 'INSERT') {
    const oid = parseCount(parts[1]);
    const rows = parseCount(parts[2]);
    if (oid !== undefined && rows !== undefined) return { tag, command: 'INSERT', rows, oid };
  }
  if (parts.length === 2 && COUNTED_COMMANDS.has(parts[0] ?? '')) {
    const rows = parseCount(parts[1]);
    if (rows !== undefined) return { tag, command: parts[0] as string, rows };
  }
  return { tag, command: tag };
}

function parseCount(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}
