import { encodeErrorResponse, SQLSTATE, type SqlState } from './protocol/index.js';

/**
 * The ErrorResponse messages the gateway itself sends (PostgreSQL docs §55.8 "Error and Notice
 * Message Fields"). Every message starts with `tollgate:` so that a person reading a client's
 * output knows the gateway, not the database, refused.
 */

export interface ClientError {
  readonly code: SqlState;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

/** A FATAL error: the gateway closes the connection after sending it. */
export function fatalResponse(error: ClientError): Buffer {
  return encodeErrorResponse({ severity: 'FATAL', ...withPrefix(error) });
}

/** An ERROR: the statement is refused and the session goes on. */
export function errorResponse(error: ClientError): Buffer {
  return encodeErrorResponse({ severity: 'ERROR', ...withPrefix(error) });
}

function withPrefix(error: ClientError): ClientError {
  return error.message.startsWith('tollgate:') ? error : { ...error, message: `tollgate: ${error.message}` };
}

export function protocolViolation(message: string): Buffer {
  return fatalResponse({ code: SQLSTATE.protocol_violation, message: `protocol violation: ${message}` });
}
