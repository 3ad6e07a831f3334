/**
 * The PostgreSQL wire-protocol layer of the Postgres proxy: framing readers for both directions,
 * message decoders and builders, the SCRAM-SHA-256 client and the SQLSTATE codes. Pure code,
 * no sockets. This is the surface the proxy's session code imports inside the room; it is not
 * the room's boundary (that is `src/proxy/postgres/index.ts`).
 */
export { FrontendReader, DEFAULT_MAX_STARTUP_BYTES, DEFAULT_MAX_FRONTEND_MESSAGE_BYTES } from './frontend-reader.js';
export type { FrontendReaderOptions, FrontendReaderMode } from './frontend-reader.js';
export { BackendReader, DEFAULT_MAX_BACKEND_MESSAGE_BYTES } from './backend-reader.js';
export type { BackendReaderOptions } from './backend-reader.js';
export {
  PROTOCOL_3_0,
  PROTOCOL_3_2,
  STARTUP_REQUEST_CODES,
  CANCEL_KEY_MIN_BYTES,
  CANCEL_KEY_MAX_BYTES,
  FRONTEND_MESSAGE_TYPES,
  decodeStartupPacket,
  decodeFrontendMessage,
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeGSSResponse,
  bindParamFormat,
} from './frontend-messages.js';
export type {
  ProtocolVersion,
  StartupMessage,
  SSLRequest,
  GSSENCRequest,
  CancelRequest,
  StartupPacket,
  Query,
  Parse,
  Bind,
  Execute,
  Describe,
  Close,
  Flush,
  Sync,
  Terminate,
  CopyData,
  CopyDone,
  CopyFail,
  FunctionCall,
  AuthenticationResponse,
  TaggedFrontendMessage,
  FrontendMessage,
} from './frontend-messages.js';
export {
  BACKEND_MESSAGE_TYPES,
  NOTICE_FIELD_CODES,
  decodeBackendMessage,
  parseCommandTag,
} from './backend-messages.js';
export type {
  AuthenticationOk,
  AuthenticationKerberosV5,
  AuthenticationCleartextPassword,
  AuthenticationMD5Password,
  AuthenticationGSS,
  AuthenticationGSSContinue,
  AuthenticationSSPI,
  AuthenticationSASL,
  AuthenticationSASLContinue,
  AuthenticationSASLFinal,
  AuthenticationRequest,
  ParameterStatus,
  BackendKeyData,
  TransactionStatus,
  ReadyForQuery,
  CommandComplete,
  NoticeFields,
  ErrorResponse,
  NoticeResponse,
  RowDescription,
  DataRow,
  CopyInResponse,
  CopyOutResponse,
  CopyBothResponse,
  NotificationResponse,
  ParameterDescription,
  NegotiateProtocolVersion,
  BackendCopyData,
  BackendCopyDone,
  FunctionCallResponse,
  ParseComplete,
  BindComplete,
  CloseComplete,
  NoData,
  PortalSuspended,
  EmptyQueryResponse,
  SSLResponse,
  BackendMessage,
} from './backend-messages.js';
export {
  encodeAuthenticationOk,
  encodeAuthenticationCleartextPassword,
  encodeParameterStatus,
  encodeBackendKeyData,
  encodeReadyForQuery,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeCommandComplete,
  encodeEmptyQueryResponse,
  encodeSSLResponse,
  encodeGSSENCResponse,
  encodeNegotiateProtocolVersion,
  encodeStartupMessage,
  encodeSSLRequest,
  encodeCancelRequest,
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeQuery,
  encodeParse,
  encodeSync,
  encodeTerminate,
} from './encode.js';
export type { ErrorFields, NoticeResponseFields } from './encode.js';
export {
  ScramClient,
  SCRAM_SHA_256,
  SCRAM_SHA_256_PLUS,
  chooseScramChannelBinding,
  tlsServerEndPointHash,
  preparePassword,
  md5Password,
} from './scram.js';
export type { ScramChannelBinding, ScramKeys, ScramKeyCache, ScramClientOptions, ScramOutcome } from './scram.js';
export { SQLSTATE } from './sqlstate.js';
export type { SqlState } from './sqlstate.js';
export { PROTOCOL_ERROR_CODES, isProtocolError } from './protocol-error.js';
export type { ProtocolError, ProtocolErrorCode } from './protocol-error.js';
