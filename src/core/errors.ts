/**
 * The one error type of Tollgate. Every code is stable: scripts, logs and the README rely on it,
 * so a code is never renamed or reused. The README's "Error codes" table lists each one with what
 * to do about it, and a test fails when the two lists differ.
 */
export const ERROR_CODES = {
  TG_ERR_USAGE: 'A command was called with missing or conflicting options.',
  TG_ERR_CONFIG_NOT_FOUND: 'The config file could not be read.',
  TG_ERR_CONFIG_INVALID: 'The config file failed validation.',
  TG_ERR_SECRET_UNRESOLVED: 'A ${env:…} or ${file:…} secret reference could not be resolved.',
  TG_ERR_POLICY_INVALID: 'The roles or grants could not be compiled.',
  TG_ERR_SQL_PARSE: 'The PostgreSQL parser rejected the SQL text.',
  TG_ERR_SQL_PARSER_UNAVAILABLE: 'The PostgreSQL parser (WebAssembly) could not be loaded.',
  TG_ERR_AUDIT_UNAVAILABLE: 'The audit store cannot make records durable right now.',
  TG_ERR_AUDIT_TAMPERED: 'The audit log fails verification.',
  TG_ERR_AUDIT_LOCKED: 'Another process holds the audit directory.',
  TG_ERR_AUDIT_KEY_INVALID: 'An audit signing or verifier key is malformed.',
  TG_ERR_AUDIT_RECORD_INVALID: 'An audit record cannot be encoded.',
  TG_ERR_AUDIT_CLOSED: 'An append arrived after the audit store was closed.',
  TG_ERR_AUDIT_NOT_SIGNED: 'No signed checkpoint covers the audit record yet.',
  TG_ERR_IDENTITY_DISCOVERY: 'The OIDC issuer could not be discovered at startup.',
  TG_ERR_LISTEN: 'A listener could not bind its configured address.',
  TG_ERR_DEMO_START: 'The embedded demo stack could not start.',
  TG_ERR_LOGIN_FAILED: 'tollgate login obtained no database token: cancelled, timed out, or refused by the gateway.',
  TG_ERR_CREDENTIALS_LOCKED: 'Another tollgate login held the credentials file lock for longer than the wait bound.',
  TG_ERR_LOGIN_REQUIRED: 'No usable stored database token for the gateway: never logged in, expired, or unreadable.',
  TG_ERR_PSQL_NOT_FOUND: 'The psql client could not be started.',
  TG_ERR_MINT_REFUSED: 'The running gateway refused to record a token minted by tollgate token mint.',
  TG_ERR_INTERNAL: 'A bug in Tollgate.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface TollgateErrorOptions {
  cause?: unknown;
  /** Structured facts about the failure (file, line, seq, ...); never secrets. */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * An error with a stable `code`. The message says what went wrong and what to do next.
 */
export class TollgateError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: TollgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TollgateError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

export function isTollgateError(value: unknown, code?: ErrorCode): value is TollgateError {
  return value instanceof TollgateError && (code === undefined || value.code === code);
}
