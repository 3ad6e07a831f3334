import type { IdentityConfig } from '../config/index.js';
import { TollgateError } from '../core/index.js';

/**
 * What the identity room needs to know: the validated `identity` config section (durations in
 * milliseconds, secrets resolved) and where the gateway lives.
 */
export interface IdentityOptions {
  /** `server.public_url`: origin of the gateway; https turns on `Secure` and `__Host-` cookies. */
  readonly publicUrl: string;
  readonly identity: IdentityConfig;
  /**
   * Path of the gateway's OIDC callback route, registered at the IdP as
   * `<public_url><callbackPath>`. Default {@link DEFAULT_CALLBACK_PATH}.
   */
  readonly callbackPath?: string;
}

/** Where the HTTP proxy serves the OIDC callback unless told otherwise. */
export const DEFAULT_CALLBACK_PATH = '/_tollgate/callback';

/** Secrets shorter than this are refused: HKDF cannot add entropy that the input lacks. */
export const MIN_SECRET_BYTES = 32;

/** RFC 8725 §3.1: the algorithm list is an allow-list, and these never belong on it. */
const FORBIDDEN_ALGORITHM = /^(?:none|HS\d+)$/i;

const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** The gateway's own URL facts, derived once from `server.public_url`. */
export interface GatewayUrls {
  readonly publicOrigin: string;
  readonly redirectUri: string;
  readonly secure: boolean;
}

function invalid(key: string, message: string): TollgateError {
  return new TollgateError('TG_ERR_CONFIG_INVALID', `identity.${key}: ${message}`, { details: { key: `identity.${key}` } });
}

/** Resolves the public origin and the callback URL; throws `TG_ERR_CONFIG_INVALID` when unusable. */
export function gatewayUrls(options: IdentityOptions): GatewayUrls {
  let url: URL;
  try {
    url = new URL(options.publicUrl);
  } catch (cause) {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', `server.public_url: "${options.publicUrl}" is not a URL; use https://gateway.example.com`, {
      cause,
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TollgateError('TG_ERR_CONFIG_INVALID', 'server.public_url: use an http:// or https:// URL');
  }
  const callbackPath = options.callbackPath ?? DEFAULT_CALLBACK_PATH;
  if (!callbackPath.startsWith('/') || callbackPath.startsWith('//')) {
    throw new TollgateError('TG_ERR_INTERNAL', `callback path "${callbackPath}" must be an absolute path on the gateway`);
  }
  return {
    publicOrigin: url.origin,
    redirectUri: new URL(callbackPath, url.origin).href,
    secure: url.protocol === 'https:',
  };
}

/** Throws `TG_ERR_CONFIG_INVALID` unless every session key is long enough. */
export function checkSessionKeys(keys: readonly string[]): void {
  if (keys.length === 0) throw invalid('session.keys', 'list at least one key; the first seals, all open');
  keys.forEach((key, index) => {
    if (Buffer.byteLength(key, 'utf8') < MIN_SECRET_BYTES) {
      throw invalid(`session.keys[${index}]`, `must be at least ${MIN_SECRET_BYTES} bytes; generate one with "openssl rand -base64 48"`);
    }
  });
}

/** Throws `TG_ERR_CONFIG_INVALID` for a missing or short database-token signing key. */
export function checkDbTokenKey(key: string | undefined): string {
  if (key === undefined || key === '') {
    throw invalid('db_tokens.signing_key', 'is required to issue or verify database tokens; set it to a secret reference');
  }
  if (Buffer.byteLength(key, 'utf8') < MIN_SECRET_BYTES) {
    throw invalid('db_tokens.signing_key', `must be at least ${MIN_SECRET_BYTES} bytes; generate one with "openssl rand -base64 48"`);
  }
  return key;
}

/** The bearer settings with defaults resolved; throws `TG_ERR_CONFIG_INVALID` for unsafe values. */
export function bearerSettings(config: IdentityConfig): { audiences: string[]; algorithms: string[]; clockSkewMs: number } {
  const algorithms = [...config.bearer.algorithms];
  if (algorithms.length === 0) throw invalid('bearer.algorithms', 'list at least one asymmetric algorithm such as RS256');
  const forbidden = algorithms.find((alg) => FORBIDDEN_ALGORITHM.test(alg));
  if (forbidden !== undefined) {
    throw invalid('bearer.algorithms', `"${forbidden}" is not allowed; use asymmetric algorithms (RS256, PS256, ES256, EdDSA)`);
  }
  const skew = config.bearer.clock_skew;
  if (!Number.isFinite(skew) || skew < 0 || skew > MAX_CLOCK_SKEW_MS) {
    throw invalid('bearer.clock_skew', 'must be between 0s and 5m');
  }
  const audiences = config.bearer.audiences.length > 0 ? [...config.bearer.audiences] : [config.client_id];
  return { audiences, algorithms, clockSkewMs: skew };
}
