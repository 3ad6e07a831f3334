import type { GrantSpec, PolicySpec, RoleSpec } from '../policy/index.js';

/**
 * The validated config. It mirrors the YAML file key for key (snake_case), with every default
 * applied, durations in milliseconds, sizes in bytes and secret references resolved to their
 * values. It is deep-frozen. Listen addresses stay `host:port` strings (see `splitHostPort`).
 */
export interface TollgateConfig {
  readonly source: { readonly file: string };
  readonly server: ServerConfig;
  readonly identity: IdentityConfig;
  readonly resources: readonly ResourceConfig[];
  readonly roles: Readonly<Record<string, RoleSpec>>;
  readonly grants: readonly GrantSpec[];
  readonly audit: AuditConfig;
  readonly logging: LoggingConfig;
  /** `resources`, `roles` and `grants` as the policy room takes them. */
  readonly policy: PolicySpec;
}

export interface TlsConfig {
  /** PEM text. */
  readonly cert: string;
  /** PEM text. */
  readonly key: string;
}

export interface ServerConfig {
  /** `http(s)://host[:port]` with no path; the base of every URL the gateway hands out. */
  readonly public_url: string;
  readonly http: HttpListenerConfig;
  /** Absent: no PostgreSQL listener. */
  readonly postgres?: PostgresListenerConfig;
  readonly admin: { readonly listen: string };
}

export interface HttpListenerConfig {
  readonly listen: string;
  /** Present: the listener speaks HTTPS. */
  readonly tls?: TlsConfig;
  /** CIDRs (a bare address is one address) whose `X-Forwarded-For` is extended, not replaced. */
  readonly trusted_proxies: readonly string[];
  readonly limits: {
    readonly max_header_bytes: number;
    readonly max_concurrent_requests: number;
    readonly headers_timeout: number;
    readonly idle_timeout: number;
    readonly upstream_connect_timeout: number;
  };
}

export interface PostgresListenerConfig {
  readonly listen: string;
  /** Absent only when `allow_cleartext_on_loopback` is true and `listen` is a loopback address. */
  readonly tls?: TlsConfig;
  readonly allow_cleartext_on_loopback: boolean;
  readonly accept_oidc_tokens: boolean;
  readonly limits: {
    readonly max_startup_bytes: number;
    readonly max_message_bytes: number;
    readonly startup_timeout: number;
    readonly idle_timeout: number;
    readonly max_connections: number;
  };
  readonly auth_failures: { readonly max: number; readonly window: number };
}

/** JWS algorithms a bearer token may use; `none` and the HMAC `HS*` family never are. */
export const BEARER_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type BearerAlgorithm = (typeof BEARER_ALGORITHMS)[number];

export interface IdentityConfig {
  readonly issuer: string;
  readonly client_id: string;
  /** Absent: a public client using PKCE alone. */
  readonly client_secret?: string;
  readonly scopes: readonly string[];
  readonly claims: { readonly user: string; readonly email: string; readonly groups: string };
  readonly session: {
    /** At least one, each at least 32 bytes; the first seals, all open. */
    readonly keys: readonly string[];
    readonly ttl: number;
    readonly cookie_name: string;
    /**
     * Lower case, without a leading dot. Set: the session cookie carries `Domain=<cookie_domain>`
     * (and `__Secure-` instead of `__Host-` on https), so browsers on resources matched by a host
     * under it can sign in. The public host and every `match.host` are within it.
     */
    readonly cookie_domain?: string;
  };
  readonly bearer: {
    readonly enabled: boolean;
    /** Defaults to `[client_id]`. */
    readonly audiences: readonly string[];
    readonly algorithms: readonly BearerAlgorithm[];
    readonly clock_skew: number;
  };
  readonly db_tokens: {
    /** Present whenever a postgres resource exists; at least 32 bytes. */
    readonly signing_key?: string;
    readonly ttl: number;
    readonly max_ttl: number;
  };
}

export type ResourceConfig = HttpResourceConfig | PostgresResourceConfig;

export interface HttpResourceConfig {
  readonly name: string;
  readonly kind: 'http';
  readonly upstream: string;
  /** At least one of the two; `host` is lower-cased. */
  readonly match: { readonly host?: string; readonly path_prefix?: string };
  readonly strip_prefix: boolean;
}

export const UPSTREAM_TLS_MODES = ['disable', 'prefer', 'require', 'verify-full'] as const;
export type UpstreamTlsMode = (typeof UPSTREAM_TLS_MODES)[number];

export interface PostgresResourceConfig {
  readonly name: string;
  readonly kind: 'postgres';
  readonly upstream: {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly tls: UpstreamTlsMode;
    /** PEM text of the CA that signed the upstream's certificate. */
    readonly ca?: string;
  };
  /** Least privileged first; names unique within the resource. */
  readonly logins: readonly PostgresLoginConfig[];
  readonly redact_parameters: boolean;
}

export interface PostgresLoginConfig {
  readonly name: string;
  readonly user: string;
  readonly password: string;
}

export interface AuditConfig {
  readonly store: 'file';
  /** Resolved against the config file's directory when it was relative. */
  readonly dir: string;
  readonly log_id: string;
  /** C2SP signed-note private key text; the audit room parses and checks it. */
  readonly signing_key: string;
  readonly checkpoint_interval: number;
  readonly durability: 'always' | 'interval';
  /** Used only with `durability: interval`. */
  readonly sync_interval: number;
  readonly segment_size: number;
  readonly group_commit: { readonly max_records: number; readonly max_delay: number };
  readonly append_timeout: number;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggingConfig {
  readonly level: LogLevel;
}
