import { TollgateError } from '../../../core/index.js';
import { NOTICE_FIELD_CODES, type NoticeFields, type TransactionStatus } from './backend-messages.js';
import {
  CANCEL_KEY_MAX_BYTES,
  CANCEL_KEY_MIN_BYTES,
  PROTOCOL_3_0,
  STARTUP_REQUEST_CODES,
  type ProtocolVersion,
} from './frontend-messages.js';

/**
 * Builders for the messages the gateway itself sends: backend messages to clients and frontend
 * messages to upstreams. PostgreSQL docs, Frontend/Backend Protocol, §55.7 "Message Formats".
 *
 * All of them are ours rather than `pg-protocol`'s `serialize`: it covers only the frontend
 * side, always adds `client_encoding` to a StartupMessage, speaks protocol 3.0 only and knows
 * only 4-byte cancel keys. One writer for both directions keeps the bytes consistent.
 *
 * A string with an embedded NUL cannot be sent as a protocol string (the NUL would end it and
 * the rest would be read as the next field), so the builders refuse one with a
 * `TG_ERR_INTERNAL` error; only the human-readable ErrorResponse and NoticeResponse fields
 * replace a NUL with U+FFFD instead, so that reporting an error can never fail.
 */

function cstring(text: string, what: string): Buffer {
  if (text.includes('\0')) {
    throw new TollgateError('TG_ERR_INTERNAL', `${what} contains a NUL character and cannot be sent`);
  }
  const bytes = Buffer.allocUnsafe(Buffer.byteLength(text) + 1);
  const written = bytes.write(text, 0, 'utf8');
  bytes[written] = 0;
  return bytes;
}

function textCstring(text: string): Buffer {
  return cstring(text.replaceAll('\0', '\uFFFD'), 'text');
}

function int32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeInt32BE(value);
  return bytes;
}

/** `Byte1 type`, `Int32 length` (counting itself and the body), body. */
function tagged(type: string, parts: readonly Buffer[] = []): Buffer {
  let size = 4;
  for (const part of parts) size += part.length;
  const frame = Buffer.allocUnsafe(1 + size);
  frame[0] = type.charCodeAt(0);
  frame.writeInt32BE(size, 1);
  let offset = 5;
  for (const part of parts) offset += part.copy(frame, offset);
  return frame;
}

/** `Int32 length`, body: the startup-phase packets, which have no type byte. */
function untagged(parts: readonly Buffer[]): Buffer {
  let size = 4;
  for (const part of parts) size += part.length;
  const frame = Buffer.allocUnsafe(size);
  frame.writeInt32BE(size, 0);
  let offset = 4;
  for (const part of parts) offset += part.copy(frame, offset);
  return frame;
}

function checkCancelKey(secretKey: Buffer): void {
  if (secretKey.length < CANCEL_KEY_MIN_BYTES || secretKey.length > CANCEL_KEY_MAX_BYTES) {
    throw new TollgateError(
      'TG_ERR_INTERNAL',
      `a cancel key must be ${CANCEL_KEY_MIN_BYTES} to ${CANCEL_KEY_MAX_BYTES} bytes, not ${secretKey.length}`,
    );
  }
}

function versionCode(version: ProtocolVersion): number {
  return ((version.major << 16) | version.minor) >>> 0;
}

// Backend messages, gateway → client.

/** AuthenticationOk: `R`, Int32 0. */
export function encodeAuthenticationOk(): Buffer {
  return tagged('R', [int32(0)]);
}

/** AuthenticationCleartextPassword: `R`, Int32 3. The gateway only asks for it inside TLS. */
export function encodeAuthenticationCleartextPassword(): Buffer {
  return tagged('R', [int32(3)]);
}

/** ParameterStatus: `S`, name, value. */
export function encodeParameterStatus(name: string, value: string): Buffer {
  return tagged('S', [cstring(name, 'ParameterStatus name'), cstring(value, 'ParameterStatus value')]);
}

/** BackendKeyData: `K`, Int32 pid, secret key (exactly 4 bytes for a protocol 3.0 client). */
export function encodeBackendKeyData(pid: number, secretKey: Buffer): Buffer {
  checkCancelKey(secretKey);
  return tagged('K', [int32(pid), secretKey]);
}

/** ReadyForQuery: `Z`, the transaction status byte. */
export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return tagged('Z', [Buffer.from(status, 'latin1')]);
}

/** The fields the gateway sets in an ErrorResponse or NoticeResponse; `V` always copies `S`. */
export type ErrorFields = Omit<NoticeFields, 'severity' | 'severityNonLocalized'> & {
  readonly severity: 'ERROR' | 'FATAL' | 'PANIC';
};
export type NoticeResponseFields = Omit<NoticeFields, 'severity' | 'severityNonLocalized'> & {
  readonly severity: 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
};

function noticeBody(fields: NoticeFields): Buffer[] {
  if (!/^[0-9A-Z]{5}$/.test(fields.code)) {
    throw new TollgateError('TG_ERR_INTERNAL', `"${fields.code}" is not a SQLSTATE code`);
  }
  const parts: Buffer[] = [];
  // §55.8: each field is a type byte and a string; the list ends with a zero byte.
  for (const [typeChar, property] of Object.entries(NOTICE_FIELD_CODES)) {
    const value = fields[property];
    if (value === undefined) continue;
    parts.push(Buffer.from(typeChar, 'latin1'), textCstring(value));
  }
  parts.push(Buffer.from([0]));
  return parts;
}

/** ErrorResponse: `E`, fields S, V, C, M, then whichever of D, H, P, ... are given (§55.8). */
export function encodeErrorResponse(fields: ErrorFields): Buffer {
  return tagged('E', noticeBody({ ...fields, severityNonLocalized: fields.severity }));
}

/** NoticeResponse: `N`, with the same fields as {@link encodeErrorResponse}. */
export function encodeNoticeResponse(fields: NoticeResponseFields): Buffer {
  return tagged('N', noticeBody({ ...fields, severityNonLocalized: fields.severity }));
}

/** CommandComplete: `C`, the command tag (e.g. `SELECT 1`). */
export function encodeCommandComplete(tag: string): Buffer {
  return tagged('C', [cstring(tag, 'command tag')]);
}

/** EmptyQueryResponse: `I`, no body. */
export function encodeEmptyQueryResponse(): Buffer {
  return tagged('I');
}

/** The single byte that answers SSLRequest (§55.2.10 "SSL Session Encryption"): `S` (TLS follows) or `N`. */
export function encodeSSLResponse(accepted: boolean): Buffer {
  return Buffer.from(accepted ? 'S' : 'N', 'latin1');
}

/**
 * The single byte that answers GSSENCRequest (§55.2.11 "GSSAPI Session Encryption"): `G`
 * (GSSAPI encryption follows) or `N`.
 */
export function encodeGSSENCResponse(accepted: boolean): Buffer {
  return Buffer.from(accepted ? 'G' : 'N', 'latin1');
}

/**
 * NegotiateProtocolVersion: `v`, Int32 version the server will speak (major << 16 | minor),
 * Int32 count and the names of the `_pq_.` options it does not support (§55.2.1 "Start-up").
 */
export function encodeNegotiateProtocolVersion(
  version: ProtocolVersion,
  unsupportedOptions: readonly string[],
): Buffer {
  const code = Buffer.allocUnsafe(4);
  code.writeUInt32BE(versionCode(version));
  const names = unsupportedOptions.map((name) => cstring(name, 'protocol option'));
  return tagged('v', [code, int32(unsupportedOptions.length), ...names]);
}

// Frontend messages, gateway → upstream.

/**
 * StartupMessage: Int32 length, Int32 protocol version, name/value strings, a final NUL. The
 * parameters go in the order given; nothing is added.
 */
export function encodeStartupMessage(
  params: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  version: ProtocolVersion = PROTOCOL_3_0,
): Buffer {
  const code = Buffer.allocUnsafe(4);
  code.writeUInt32BE(versionCode(version));
  const parts: Buffer[] = [code];
  const entries = params instanceof Map ? [...params] : Object.entries(params);
  for (const [name, value] of entries) {
    if (name === '') throw new TollgateError('TG_ERR_INTERNAL', 'a startup parameter name cannot be empty');
    parts.push(cstring(name, 'startup parameter name'), cstring(value, `startup parameter "${name}"`));
  }
  parts.push(Buffer.from([0]));
  return untagged(parts);
}

/** SSLRequest: Int32 8, Int32 80877103. */
export function encodeSSLRequest(): Buffer {
  return untagged([int32(STARTUP_REQUEST_CODES.SSLRequest)]);
}

/**
 * CancelRequest: Int32 length, Int32 80877102, Int32 pid, the secret key
 * (§55.2.8 "Canceling Requests in Progress").
 */
export function encodeCancelRequest(pid: number, secretKey: Buffer): Buffer {
  checkCancelKey(secretKey);
  return untagged([int32(STARTUP_REQUEST_CODES.CancelRequest), int32(pid), secretKey]);
}

/** PasswordMessage: `p`, the password (or `md5…` hash) as a string. */
export function encodePasswordMessage(password: string): Buffer {
  return tagged('p', [cstring(password, 'password')]);
}

/** SASLInitialResponse: `p`, mechanism name, Int32 length (-1 for none) and the client-first data. */
export function encodeSASLInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  const parts = [cstring(mechanism, 'SASL mechanism'), int32(data === null ? -1 : data.length)];
  if (data !== null) parts.push(data);
  return tagged('p', parts);
}

/** SASLResponse: `p`, the mechanism's data as the whole body. */
export function encodeSASLResponse(data: Buffer): Buffer {
  return tagged('p', [data]);
}

/** Query: `Q`, the SQL text. */
export function encodeQuery(sql: string): Buffer {
  return tagged('Q', [cstring(sql, 'query')]);
}

/**
 * Parse: `P`, statement name (empty for the unnamed statement), query string, Int16 count and
 * the parameter type OIDs (0 leaves a type unspecified).
 */
export function encodeParse(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  const types = Buffer.allocUnsafe(2 + 4 * paramTypes.length);
  types.writeUInt16BE(paramTypes.length, 0);
  paramTypes.forEach((oid, index) => types.writeUInt32BE(oid, 2 + 4 * index));
  return tagged('P', [cstring(name, 'statement name'), cstring(sql, 'query'), types]);
}

/** Sync: `S`, no body. */
export function encodeSync(): Buffer {
  return tagged('S');
}

/** Flush: `H`, no body; the server sends what it has buffered (§55.2.3 "Extended Query"). */
export function encodeFlush(): Buffer {
  return tagged('H');
}

/** Terminate: `X`, no body. */
export function encodeTerminate(): Buffer {
  return tagged('X');
}
