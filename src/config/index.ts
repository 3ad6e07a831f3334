export { loadConfig, loadConfigOrThrow } from './load.js';
export type { LoadConfigInput, LoadConfigResult, PolicyProblem } from './load.js';
export { formatIssue } from './issues.js';
export type { ConfigIssue } from './issues.js';
export type { SecretEnv, ReadTextFile } from './secrets.js';
export { isWithinDomain, splitHostPort } from './formats.js';
export { BEARER_ALGORITHMS, UPSTREAM_TLS_MODES, LOG_LEVELS } from './types.js';
export type {
  TollgateConfig,
  TlsConfig,
  ServerConfig,
  HttpListenerConfig,
  PostgresListenerConfig,
  BearerAlgorithm,
  IdentityConfig,
  ResourceConfig,
  HttpResourceConfig,
  UpstreamTlsMode,
  PostgresResourceConfig,
  PostgresLoginConfig,
  AuditConfig,
  LogLevel,
  LoggingConfig,
} from './types.js';
