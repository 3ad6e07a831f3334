/**
 * The SQLSTATE codes the gateway sends in its own ErrorResponse and NoticeResponse messages,
 * keyed by PostgreSQL's condition names (PostgreSQL docs, Appendix A "PostgreSQL Error Codes").
 * Clients branch on these codes (psql, drivers, retry logic), so each is the one PostgreSQL
 * itself uses for the same situation.
 */
export const SQLSTATE = {
  successful_completion: '00000',
  warning: '01000',
  /** Could not reach or log in to the upstream. */
  sqlclient_unable_to_establish_sqlconnection: '08001',
  connection_exception: '08000',
  connection_does_not_exist: '08003',
  sqlserver_rejected_establishment_of_sqlconnection: '08004',
  /** The upstream connection broke mid-session. */
  connection_failure: '08006',
  /** A malformed, oversized or out-of-place message. */
  protocol_violation: '08P01',
  /** Something PostgreSQL supports that the gateway does not relay (GSSAPI, replication, ...). */
  feature_not_supported: '0A000',
  invalid_parameter_value: '22023',
  /** A statement arrived while the transaction is aborted. */
  in_failed_sql_transaction: '25P02',
  /** The startup packet names no user, or a user the token does not belong to. */
  invalid_authorization_specification: '28000',
  /** The database token is wrong, expired or revoked. */
  invalid_password: '28P01',
  /** The resource named as `database` does not exist. */
  invalid_catalog_name: '3D000',
  /** Policy denied the statement. */
  insufficient_privilege: '42501',
  syntax_error: '42601',
  /** The gateway's connection limit is reached. */
  too_many_connections: '53300',
  configuration_limit_exceeded: '53400',
  program_limit_exceeded: '54000',
  /** The statement was cancelled (CancelRequest) or timed out. */
  query_canceled: '57014',
  /** The gateway is shutting down. */
  admin_shutdown: '57P01',
  /** The gateway cannot serve yet or right now (e.g. the audit log is unavailable). */
  cannot_connect_now: '57P03',
  idle_session_timeout: '57P05',
  internal_error: 'XX000',
} as const;

export type SqlState = (typeof SQLSTATE)[keyof typeof SQLSTATE];
