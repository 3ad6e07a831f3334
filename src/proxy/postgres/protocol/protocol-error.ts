/**
 * Protocol violations are values, not exceptions: the session turns one into an `ErrorResponse`
 * (SQLSTATE `08P01`, see `sqlstate.ts`) and closes the connection, as PostgreSQL itself does
 * for a malformed message (PostgreSQL docs, §55.2 "Message Flow": a protocol violation ends the
 * session with FATAL).
 */
export const PROTOCOL_ERROR_CODES = {
  /** A declared length exceeds the reader's bound (`maxStartupBytes` or `maxMessageBytes`). */
  'message-too-large': 'The declared message length exceeds the configured maximum.',
  /** A declared length is below the smallest possible value (4, or 8 for startup packets). */
  'invalid-length': 'The declared message length is impossible for this message.',
  /** The type byte names no message this side of the protocol may send. */
  'unknown-message-type': 'The message type byte is not one the peer may send.',
  /** An untagged startup packet is malformed (parameters, terminator, cancel key). */
  'malformed-startup': 'The startup packet is malformed.',
  /** A startup packet asks for a major protocol version other than 3. */
  'unsupported-protocol-version': 'The requested protocol version is not supported.',
  /** A tagged message body does not match its format (strings, counts, trailing bytes). */
  'malformed-message': 'The message body does not match its documented format.',
  /** A text field is not valid UTF-8. */
  'invalid-encoding': 'A text field is not valid UTF-8.',
} as const;

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERROR_CODES;

/** A protocol violation found while framing or decoding; the reader that found it stops. */
export interface ProtocolError {
  readonly type: 'ProtocolError';
  readonly code: ProtocolErrorCode;
  /** What was wrong, fit to be sent to the peer in an `ErrorResponse` `M` field. */
  readonly message: string;
  /** The type byte of the offending tagged message, when there was one. */
  readonly messageType?: string;
}

export function protocolError(code: ProtocolErrorCode, message: string, messageType?: string): ProtocolError {
  return messageType === undefined
    ? { type: 'ProtocolError', code, message }
    : { type: 'ProtocolError', code, message, messageType };
}

/** A type byte for messages: the character when printable, else its hex value. */
export function describeTypeByte(byte: number): string {
  return byte >= 0x21 && byte <= 0x7e ? `'${String.fromCharCode(byte)}'` : `0x${byte.toString(16).padStart(2, '0')}`;
}

export function isProtocolError(value: { readonly type: string }): value is ProtocolError {
  return value.type === 'ProtocolError';
}
