import { PayloadCursor, PayloadError } from './payload-cursor.js';
import { describeTypeByte, protocolError, type ProtocolError } from './protocol-error.js';

/**
 * Frontend (client → server) messages and their strict decoders.
 * PostgreSQL docs, Frontend/Backend Protocol, §55.7 "Message Formats". Every decoded message
 * keeps `raw`, the whole frame as received (type byte and length included), so the proxy can
 * forward it unmodified without re-encoding.
 */

/** A protocol version as carried in a StartupMessage: major in the high 16 bits, minor in the low. */
export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

export const PROTOCOL_3_0: ProtocolVersion = Object.freeze({ major: 3, minor: 0 });
/** Protocol 3.2 (PostgreSQL 18): variable-length cancel keys. 3.1 was never used. */
export const PROTOCOL_3_2: ProtocolVersion = Object.freeze({ major: 3, minor: 2 });

/** The request codes that take the place of a protocol version in untagged packets (§55.7). */
export const STARTUP_REQUEST_CODES = {
  CancelRequest: 80877102,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
} as const;

/** Cancel keys are 4 to 256 bytes; 3.0 connections always use 4 (§55.7 BackendKeyData). */
export const CANCEL_KEY_MIN_BYTES = 4;
export const CANCEL_KEY_MAX_BYTES = 256;

export interface StartupMessage {
  readonly type: 'StartupMessage';
  readonly protocolVersion: ProtocolVersion;
  /** Parameters in the order sent; keys are unique (a repeated key is malformed). */
  readonly params: ReadonlyMap<string, string>;
  readonly raw: Buffer;
}

export interface SSLRequest {
  readonly type: 'SSLRequest';
  readonly raw: Buffer;
}

export interface GSSENCRequest {
  readonly type: 'GSSENCRequest';
  readonly raw: Buffer;
}

export interface CancelRequest {
  readonly type: 'CancelRequest';
  readonly pid: number;
  /** 4 bytes under protocol 3.0, up to 256 under 3.2. */
  readonly secretKey: Buffer;
  readonly raw: Buffer;
}

/** The untagged packets a client may open a connection with. */
export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

export interface Query {
  readonly type: 'Query';
  readonly sql: string;
  readonly raw: Buffer;
}

export interface Parse {
  readonly type: 'Parse';
  /** Prepared statement name; empty for the unnamed statement. */
  readonly name: string;
  readonly sql: string;
  /** Parameter type OIDs; 0 leaves a type unspecified. */
  readonly paramTypes: readonly number[];
  readonly raw: Buffer;
}

export interface Bind {
  readonly type: 'Bind';
  readonly portal: string;
  readonly statement: string;
  /** 0 (text) or 1 (binary): none means all text, one applies to all, else one per parameter. */
  readonly paramFormats: readonly number[];
  /** Parameter values as views into `raw`; `null` is SQL NULL. */
  readonly params: readonly (Buffer | null)[];
  readonly resultFormats: readonly number[];
  readonly raw: Buffer;
}

export interface Execute {
  readonly type: 'Execute';
  readonly portal: string;
  /** Row limit; 0 (or negative) means no limit. */
  readonly maxRows: number;
  readonly raw: Buffer;
}

export interface Describe {
  readonly type: 'Describe';
  readonly target: 'statement' | 'portal';
  readonly name: string;
  readonly raw: Buffer;
}

export interface Close {
  readonly type: 'Close';
  readonly target: 'statement' | 'portal';
  readonly name: string;
  readonly raw: Buffer;
}

export interface Flush {
  readonly type: 'Flush';
  readonly raw: Buffer;
}

export interface Sync {
  readonly type: 'Sync';
  readonly raw: Buffer;
}

export interface Terminate {
  readonly type: 'Terminate';
  readonly raw: Buffer;
}

export interface CopyData {
  readonly type: 'CopyData';
  /** A view into `raw`. */
  readonly data: Buffer;
  readonly raw: Buffer;
}

export interface CopyDone {
  readonly type: 'CopyDone';
  readonly raw: Buffer;
}

export interface CopyFail {
  readonly type: 'CopyFail';
  readonly message: string;
  readonly raw: Buffer;
}

export interface FunctionCall {
  readonly type: 'FunctionCall';
  readonly functionOid: number;
  readonly argFormats: readonly number[];
  readonly args: readonly (Buffer | null)[];
  readonly resultFormat: number;
  readonly raw: Buffer;
}

/**
 * Type `p`: PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse. Which one it is
 * depends on the authentication request the server sent last, so the reader leaves `payload`
 * undecoded; the session decodes it with {@link decodePasswordMessage},
 * {@link decodeSASLInitialResponse}, {@link decodeSASLResponse} or {@link decodeGSSResponse}.
 */
export interface AuthenticationResponse {
  readonly type: 'AuthenticationResponse';
  /** The body after the length word, as a view into `raw`. */
  readonly payload: Buffer;
  readonly raw: Buffer;
}

export type TaggedFrontendMessage =
  | Query
  | Parse
  | Bind
  | Execute
  | Describe
  | Close
  | Flush
  | Sync
  | Terminate
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall
  | AuthenticationResponse;

export type FrontendMessage = StartupPacket | TaggedFrontendMessage;

/** The type bytes a frontend may send after the startup phase (§55.7), with the message each names. */
export const FRONTEND_MESSAGE_TYPES = {
  Q: 'Query',
  P: 'Parse',
  B: 'Bind',
  E: 'Execute',
  D: 'Describe',
  C: 'Close',
  H: 'Flush',
  S: 'Sync',
  X: 'Terminate',
  F: 'FunctionCall',
  p: 'AuthenticationResponse',
  d: 'CopyData',
  c: 'CopyDone',
  f: 'CopyFail',
} as const satisfies Record<string, TaggedFrontendMessage['type']>;

/**
 * Per type byte: 0 unknown, -1 known with a variable length, else the only declared length the
 * type may have (4 for bodyless messages), so a wrong one is rejected before any buffering.
 */
const TYPE_TABLE = new Int8Array(256);
for (const key of Object.keys(FRONTEND_MESSAGE_TYPES)) TYPE_TABLE[key.charCodeAt(0)] = -1;
for (const key of ['H', 'S', 'X', 'c']) TYPE_TABLE[key.charCodeAt(0)] = 4;

export function isFrontendTypeByte(byte: number): boolean {
  return TYPE_TABLE[byte] !== 0;
}

/** The only declared length a message of this type may have, or `null` when it varies. */
export function fixedFrontendLength(typeByte: number): number | null {
  const entry = TYPE_TABLE[typeByte] ?? 0;
  return entry > 0 ? entry : null;
}

const HEADER = 5;

/**
 * Decodes one untagged startup-phase packet (`raw` = the whole packet, length word included).
 * §55.7 StartupMessage, SSLRequest, GSSENCRequest, CancelRequest. Whether `user` is present is
 * the session's concern, not the decoder's.
 */
export function decodeStartupPacket(raw: Buffer): StartupPacket | ProtocolError {
  if (raw.length < 8) return protocolError('invalid-length', `startup packet of ${raw.length} bytes is too short`);
  const code = raw.readInt32BE(4);
  switch (code) {
    case STARTUP_REQUEST_CODES.SSLRequest:
    case STARTUP_REQUEST_CODES.GSSENCRequest: {
      const type = code === STARTUP_REQUEST_CODES.SSLRequest ? 'SSLRequest' : 'GSSENCRequest';
      if (raw.length !== 8) return protocolError('malformed-startup', `${type} must be 8 bytes, not ${raw.length}`);
      return { type, raw };
    }
    case STARTUP_REQUEST_CODES.CancelRequest: {
      const keyLength = raw.length - 12;
      if (keyLength < CANCEL_KEY_MIN_BYTES || keyLength > CANCEL_KEY_MAX_BYTES) {
        return protocolError(
          'malformed-startup',
          `CancelRequest secret key must be ${CANCEL_KEY_MIN_BYTES} to ${CANCEL_KEY_MAX_BYTES} bytes, not ${keyLength}`,
        );
      }
      return { type: 'CancelRequest', pid: raw.readInt32BE(8), secretKey: raw.subarray(12), raw };
    }
    default:
      return decodeStartupMessage(raw, code);
  }
}

function decodeStartupMessage(raw: Buffer, code: number): StartupMessage | ProtocolError {
  const protocolVersion = { major: code >>> 16, minor: code & 0xffff };
  // §55.2.1 "Start-up": a server rejects an unsupported major version; a newer minor version is
  // negotiated down with NegotiateProtocolVersion, which is the session's call.
  if (protocolVersion.major !== 3) {
    return protocolError(
      'unsupported-protocol-version',
      `unsupported frontend protocol ${protocolVersion.major}.${protocolVersion.minor}: ` +
        'the gateway supports 3.0 to 3.2',
    );
  }
  const params = new Map<string, string>();
  const cursor = new PayloadCursor(raw, 8);
  try {
    // Name/value pairs, each a NUL-terminated string, ended by one extra NUL that must be the
    // packet's last byte.
    for (;;) {
      const name = cursor.cstring('startup parameter name');
      if (name === '') break;
      const value = cursor.cstring(`value of startup parameter "${name}"`);
      if (params.has(name)) {
        return protocolError('malformed-startup', `startup parameter "${name}" is given twice`);
      }
      params.set(name, value);
    }
    cursor.end('StartupMessage');
  } catch (error) {
    if (error instanceof PayloadError) {
      return protocolError(error.code === 'invalid-encoding' ? 'invalid-encoding' : 'malformed-startup', error.message);
    }
    throw error;
  }
  return { type: 'StartupMessage', protocolVersion, params, raw };
}

/** Decodes one tagged frontend message (`raw` = the whole frame, type byte included). */
export function decodeFrontendMessage(raw: Buffer): TaggedFrontendMessage | ProtocolError {
  const typeChar = String.fromCharCode(raw[0] ?? 0);
  try {
    return decodeTagged(typeChar, raw);
  } catch (error) {
    if (error instanceof PayloadError) return protocolError(error.code, error.message, typeChar);
    throw error;
  }
}

function decodeTagged(typeChar: string, raw: Buffer): TaggedFrontendMessage | ProtocolError {
  const cursor = new PayloadCursor(raw, HEADER);
  switch (typeChar) {
    case 'Q': {
      const sql = cursor.cstring('Query string');
      cursor.end('Query');
      return { type: 'Query', sql, raw };
    }
    case 'P': {
      const name = cursor.cstring('Parse statement name');
      const sql = cursor.cstring('Parse query string');
      const count = cursor.uint16('Parse parameter type count');
      if (count * 4 > cursor.remaining) {
        throw new PayloadError('malformed-message', `Parse parameter type count ${count} exceeds the message`);
      }
      const paramTypes = new Array<number>(count);
      for (let i = 0; i < count; i++) paramTypes[i] = cursor.uint32('Parse parameter type');
      cursor.end('Parse');
      return { type: 'Parse', name, sql, paramTypes, raw };
    }
    case 'B': {
      const portal = cursor.cstring('Bind portal name');
      const statement = cursor.cstring('Bind statement name');
      const paramFormats = readInt16List(cursor, 'Bind parameter format count', 'Bind parameter format');
      const params = readValueList(cursor, 'Bind parameter count', 'Bind parameter');
      const resultFormats = readInt16List(cursor, 'Bind result format count', 'Bind result format');
      cursor.end('Bind');
      return { type: 'Bind', portal, statement, paramFormats, params, resultFormats, raw };
    }
    case 'E': {
      const portal = cursor.cstring('Execute portal name');
      const maxRows = cursor.int32('Execute row limit');
      cursor.end('Execute');
      return { type: 'Execute', portal, maxRows, raw };
    }
    case 'D':
    case 'C': {
      const type = typeChar === 'D' ? 'Describe' : 'Close';
      const target = describeTarget(cursor.uint8(type), type);
      const name = cursor.cstring(type === 'Describe' ? 'Describe name' : 'Close name');
      cursor.end(type);
      return { type, target, name, raw };
    }
    case 'H':
      cursor.end('Flush');
      return { type: 'Flush', raw };
    case 'S':
      cursor.end('Sync');
      return { type: 'Sync', raw };
    case 'X':
      cursor.end('Terminate');
      return { type: 'Terminate', raw };
    case 'c':
      cursor.end('CopyDone');
      return { type: 'CopyDone', raw };
    case 'd':
      return { type: 'CopyData', data: cursor.rest(), raw };
    case 'f': {
      const message = cursor.cstring('CopyFail message');
      cursor.end('CopyFail');
      return { type: 'CopyFail', message, raw };
    }
    case 'F': {
      const functionOid = cursor.uint32('FunctionCall function OID');
      const argFormats = readInt16List(cursor, 'FunctionCall argument format count', 'FunctionCall argument format');
      const args = readValueList(cursor, 'FunctionCall argument count', 'FunctionCall argument');
      const resultFormat = cursor.int16('FunctionCall result format');
      cursor.end('FunctionCall');
      return { type: 'FunctionCall', functionOid, argFormats, args, resultFormat, raw };
    }
    case 'p':
      return { type: 'AuthenticationResponse', payload: cursor.rest(), raw };
    default:
      const message = `unknown frontend message type ${describeTypeByte(raw[0] ?? 0)}`;
      return protocolError('unknown-message-type', message, typeChar);
  }
}

function describeTarget(byte: number, type: string): 'statement' | 'portal' {
  if (byte === 0x53) return 'statement';
  if (byte === 0x50) return 'portal';
  throw new PayloadError('malformed-message', `${type} target must be 'S' or 'P', not ${describeTypeByte(byte)}`);
}

function readInt16List(cursor: PayloadCursor, countWhat: string, what: string): number[] {
  const count = cursor.uint16(countWhat);
  // Each entry takes two bytes: a count the rest of the body cannot hold is rejected before
  // an array of that size is allocated.
  if (count * 2 > cursor.remaining) {
    throw new PayloadError('malformed-message', `${countWhat} ${count} exceeds the message`);
  }
  const list = new Array<number>(count);
  for (let i = 0; i < count; i++) list[i] = cursor.int16(what);
  return list;
}

/** A count, then per entry an Int32 length (-1 for NULL) and that many bytes (§55.7 Bind). */
function readValueList(cursor: PayloadCursor, countWhat: string, what: string): (Buffer | null)[] {
  const count = cursor.uint16(countWhat);
  if (count * 4 > cursor.remaining) {
    throw new PayloadError('malformed-message', `${countWhat} ${count} exceeds the message`);
  }
  const values = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i++) {
    const length = cursor.int32(what);
    if (length === -1) values[i] = null;
    else if (length < 0) throw new PayloadError('malformed-message', `${what} ${i + 1} has length ${length}`);
    else values[i] = cursor.bytes(length, what);
  }
  return values;
}

function decodeAuthPayload<T>(payload: Buffer, what: string, read: (cursor: PayloadCursor) => T): T | ProtocolError {
  try {
    return read(new PayloadCursor(payload));
  } catch (error) {
    if (error instanceof PayloadError) return protocolError(error.code, `${what}: ${error.message}`, 'p');
    throw error;
  }
}

/** PasswordMessage: the password (or MD5 hash) as one NUL-terminated string (§55.7). */
export function decodePasswordMessage(payload: Buffer): { readonly password: string } | ProtocolError {
  return decodeAuthPayload(payload, 'PasswordMessage', (cursor) => {
    const password = cursor.cstring('password');
    cursor.end('PasswordMessage');
    return { password };
  });
}

/** SASLInitialResponse: mechanism name, then Int32 length (-1: no initial response) and data (§55.7). */
export function decodeSASLInitialResponse(
  payload: Buffer,
): { readonly mechanism: string; readonly data: Buffer | null } | ProtocolError {
  return decodeAuthPayload(payload, 'SASLInitialResponse', (cursor) => {
    const mechanism = cursor.cstring('SASL mechanism');
    const length = cursor.int32('SASL initial response length');
    const data = length === -1 ? null : cursor.bytes(length, 'SASL initial response');
    cursor.end('SASLInitialResponse');
    return { mechanism, data };
  });
}

/** SASLResponse: the mechanism's data, the whole body (§55.7). */
export function decodeSASLResponse(payload: Buffer): { readonly data: Buffer } {
  return { data: payload };
}

/** GSSResponse: GSSAPI or SSPI data, the whole body (§55.7). */
export function decodeGSSResponse(payload: Buffer): { readonly data: Buffer } {
  return { data: payload };
}

/** The format (0 text, 1 binary) that applies to Bind parameter `index` (§55.7 Bind). */
export function bindParamFormat(bind: Pick<Bind, 'paramFormats'>, index: number): number | undefined {
  const formats = bind.paramFormats;
  if (formats.length === 0) return 0;
  if (formats.length === 1) return formats[0];
  return formats[index];
}
