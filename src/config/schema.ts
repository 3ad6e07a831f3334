import * as z from 'zod';
import { parseDuration, parseSize } from '../core/index.js';
import { AUDIT_PERMISSIONS, STATEMENT_CLASSES } from '../policy/index.js';
import { cidrProblem, cookieDomainProblem, formatDuration, hostPortProblem, hostProblem, httpUrlProblem, normalizeCookieDomain } from './formats.js';
import { didYouMean, type KeyPath } from './issues.js';
import { BEARER_ALGORITHMS, LOG_LEVELS, UPSTREAM_TLS_MODES } from './types.js';
import type { Problem } from './yaml-source.js';

/**
 * The shape of the config file (CONFIG-SHAPE): every object is strict, so an unknown key is an
 * error at any depth. Relations between keys (names that refer to each other, keys that only
 * make sense together) are checked in `checks.ts`, so that they are reported even when some
 * unrelated key has the wrong shape.
 */

/** What a YAML value is, in the words of someone editing YAML; never the value itself. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true/false';
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** A short, quoted rendering of a non-secret value for messages about enumerations. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return describeValue(value);
}

function oneOf(values: readonly unknown[], input: unknown): string {
  const choices = values.map(String);
  const hint = typeof input === 'string' ? didYouMean(input, choices) : '';
  return `expected one of ${choices.join(' | ')}, got ${show(input)}${hint}`;
}

/**
 * Our wording for zod's issues (parse-level error map). Schemas that know better set their own
 * message. No branch prints the input of a free-form string, so secrets never reach a message.
 */
function errorMap(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
    case 'too_small': {
      const minimum = Number(issue.minimum);
      if (issue.origin === 'array') return `must list at least ${minimum} ${minimum === 1 ? 'item' : 'items'}`;
      if (issue.origin === 'string') return minimum === 1 ? 'must not be empty' : `must be at least ${minimum} characters`;
      return `must be at least ${minimum}`;
    }
    case 'too_big': {
      const maximum = Number(issue.maximum);
      if (issue.origin === 'array') return `must list at most ${maximum} items`;
      if (issue.origin === 'string') return `must be at most ${maximum} characters`;
      return `must be at most ${maximum}`;
    }
    case 'invalid_value':
      return oneOf(issue.values, issue.input);
    case 'invalid_union': {
      if (issue.discriminator === undefined) return undefined;
      const input: unknown = issue.input;
      const value = input !== null && typeof input === 'object' ? (input as Record<string, unknown>)[issue.discriminator] : undefined;
      const choices = ('options' in issue && Array.isArray(issue.options) ? issue.options : []).map(String);
      if (value === undefined) return `is required; expected one of ${choices.join(' | ')}`;
      return oneOf(choices, value);
    }
    case 'invalid_key':
      return issue.issues[0]?.message;
    default:
      return undefined;
  }
}

const UNKNOWN_KEYS_SEPARATOR = '\n';

/**
 * A strict object whose unknown-key message names the closest known key. Zod reports all
 * unknown keys of one object as one issue; the message carries one line per key, in order,
 * and {@link validateShape} splits it back into one problem per key.
 */
function strict<Shape extends z.ZodRawShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      return issue.keys
        .map((key) => {
          const hint = didYouMean(key, known);
          return `unknown key ${JSON.stringify(key)}${hint === '' ? `; expected one of ${known.join(', ')}` : hint}`;
        })
        .join(UNKNOWN_KEYS_SEPARATOR);
    },
  });
}

/** A typed string that must not be empty. */
const text = () => z.string().min(1);

/** A string whose problems come from `check`, which returns a message or `null`. */
function checkedString(check: (value: string) => string | null) {
  return z.string().superRefine((value, context) => {
    const problem = check(value);
    if (problem !== null) context.addIssue({ code: 'custom', message: problem });
  });
}

interface DurationBounds {
  /** Smallest allowed value in ms; 1 unless zero makes sense. */
  readonly min?: number;
  readonly max?: number;
}

/** A duration string (`500ms`, `30s`, `1h30m`) → milliseconds. */
function duration(fallback: string, bounds: DurationBounds = {}) {
  const min = bounds.min ?? 1;
  return z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : `expected a duration such as 30s, got ${describeValue(issue.input)}`) })
    .transform((value, context) => {
      const ms = parseDuration(value);
      if (ms === null) {
        context.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a duration; use forms like 500ms, 30s, 15m, 1h30m` });
        return z.NEVER;
      }
      if (ms < min) context.addIssue({ code: 'custom', message: min === 1 ? 'must be longer than 0' : `must be at least ${formatDuration(min)}` });
      if (bounds.max !== undefined && ms > bounds.max) context.addIssue({ code: 'custom', message: `must be at most ${formatDuration(bounds.max)}` });
      return ms;
    })
    .prefault(fallback);
}

/** A size (`64MiB`, `16KiB`, or a byte count) → bytes. */
function size(fallback: string | number) {
  return z
    .unknown()
    .transform((value, context) => {
      const bytes = typeof value === 'number' ? (Number.isSafeInteger(value) && value >= 0 ? value : null) : typeof value === 'string' ? parseSize(value) : null;
      if (bytes === null) {
        const got = typeof value === 'string' || typeof value === 'number' ? JSON.stringify(value) : describeValue(value);
        context.addIssue({ code: 'custom', message: `expected a size such as 64MiB, 16KiB or a byte count, got ${got}` });
        return z.NEVER;
      }
      if (bytes < 1) context.addIssue({ code: 'custom', message: 'must be larger than 0' });
      return bytes;
    })
    .prefault(fallback);
}

/** A whole number of at least 1. */
const count = (fallback: number) => z.number().int().min(1).default(fallback);

const NAME = /^[a-z0-9][a-z0-9_-]*$/;
const NAME_RULE = 'lower-case letters, digits, "-" and "_", starting with a letter or digit';
const name = (what: string) => z.string().regex(NAME, { error: (issue) => (typeof issue.input === 'string' ? `${what} names use ${NAME_RULE}` : undefined) });

const listen = (fallback: string) => checkedString(hostPortProblem).default(fallback);

/** A secret: a literal, or a `${env:…}` / `${file:…}` reference already resolved by `secrets.ts`. */
const secret = () => z.string().min(1);

/** A secret used as a symmetric key, which must carry enough entropy to resist guessing. */
function secretKey(minBytes: number) {
  return z.string().superRefine((value, context) => {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes < minBytes) {
      context.addIssue({
        code: 'custom',
        message: `is ${bytes} bytes; at least ${minBytes} are required (generate one with: openssl rand -base64 ${minBytes})`,
      });
    }
  });
}

/** A list that, when given, must name something: an empty list is almost always a slip. */
const nonEmptyList = <Item extends z.ZodType>(item: Item, what: string) =>
  z.array(item).min(1, { error: `lists no ${what}; leave the key out to match any` });

const tls = strict({ cert: secret(), key: secret() });

const serverSchema = strict({
  public_url: checkedString((value) => httpUrlProblem(value, { noPath: true })),
  http: strict({
    listen: listen('127.0.0.1:8080'),
    tls: tls.optional(),
    trusted_proxies: z.array(checkedString(cidrProblem)).default([]),
    limits: strict({
      max_header_bytes: size('16KiB'),
      max_concurrent_requests: count(1024),
      headers_timeout: duration('10s'),
      idle_timeout: duration('60s'),
      upstream_connect_timeout: duration('5s'),
    }).prefault({}),
  }).prefault({}),
  postgres: strict({
    listen: listen('127.0.0.1:6432'),
    tls: tls.optional(),
    allow_cleartext_on_loopback: z.boolean().default(false),
    accept_oidc_tokens: z.boolean().default(false),
    limits: strict({
      max_startup_bytes: size(10_000),
      max_message_bytes: size('64MiB'),
      startup_timeout: duration('10s'),
      idle_timeout: duration('1h'),
      max_connections: count(1000),
    }).prefault({}),
    auth_failures: strict({
      max: count(5),
      window: duration('1m'),
    }).prefault({}),
  }).optional(),
  admin: strict({ listen: listen('127.0.0.1:9090') }).prefault({}),
});

const COOKIE_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

const algorithm = z.enum(BEARER_ALGORITHMS, {
  error: (issue) => {
    const input = issue.input;
    if (input === 'none') return `"none" would accept unsigned tokens; use one of ${BEARER_ALGORITHMS.join(' | ')}`;
    if (typeof input === 'string' && /^HS\d+$/i.test(input)) {
      return `${JSON.stringify(input)} is an HMAC algorithm: anyone holding the shared secret could forge tokens; use one of ${BEARER_ALGORITHMS.join(' | ')}`;
    }
    return typeof input === 'string' ? oneOf(BEARER_ALGORITHMS, input) : undefined;
  },
});

const identitySchema = strict({
  issuer: checkedString((value) => httpUrlProblem(value)),
  client_id: text(),
  client_secret: secret().optional(),
  // OpenID Connect Core 1.0 §3.1.2.1: a request without the openid scope is plain OAuth 2.0.
  scopes: z
    .array(text())
    .min(1)
    .refine((scopes) => scopes.includes('openid'), { error: 'must include openid' })
    .default(['openid', 'email', 'profile']),
  claims: strict({
    user: text().default('email'),
    email: text().default('email'),
    groups: text().default('groups'),
  }).prefault({}),
  session: strict({
    keys: z.array(secretKey(32)).min(1, { error: 'must list at least one key' }),
    ttl: duration('8h'),
    cookie_name: z
      .string()
      .regex(COOKIE_NAME, { error: 'is not a valid cookie name (RFC 6265 §4.1.1: letters, digits and !#$%&\'*+.^_`|~-)' })
      .default('tollgate_session'),
    // Shares the session cookie with the hosts under it (RFC 6265 §5.2.3); checks.ts holds the
    // public host and every host-matched resource to it.
    cookie_domain: checkedString(cookieDomainProblem).transform(normalizeCookieDomain).optional(),
  }),
  bearer: strict({
    enabled: z.boolean().default(true),
    audiences: z.array(text()).min(1).optional(),
    algorithms: z.array(algorithm).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']),
    clock_skew: duration('60s', { min: 0, max: 300_000 }),
  }).prefault({}),
  db_tokens: strict({
    signing_key: secretKey(32).optional(),
    ttl: duration('1h'),
    max_ttl: duration('12h'),
  }).prefault({}),
});

const matchHost = checkedString(hostProblem).transform((host) => host.toLowerCase());
const pathPrefix = checkedString((value) => (value.startsWith('/') && value.endsWith('/') ? null : `must start and end with "/" (like /app/)`));

const httpResource = strict({
  name: name('resource'),
  kind: z.literal('http'),
  upstream: checkedString((value) => httpUrlProblem(value)),
  match: strict({ host: matchHost.optional(), path_prefix: pathPrefix.optional() }),
  strip_prefix: z.boolean().default(false),
});

const postgresResource = strict({
  name: name('resource'),
  kind: z.literal('postgres'),
  upstream: strict({
    host: checkedString(hostProblem),
    port: z.number().int().min(1).max(65535).default(5432),
    database: text(),
    tls: z.enum(UPSTREAM_TLS_MODES).default('verify-full'),
    ca: secret().optional(),
  }),
  logins: z.array(strict({ name: name('login'), user: text(), password: secret() })).min(1, { error: 'must list at least one login' }),
  redact_parameters: z.boolean().default(false),
});

const METHOD = /^[A-Za-z]+$/;

const rule = strict({
  resource: text().optional(),
  methods: nonEmptyList(
    z.string().regex(METHOD, { error: 'is not an HTTP method name' }).transform((method) => method.toUpperCase()),
    'methods',
  ).optional(),
  paths: nonEmptyList(checkedString((value) => (value.startsWith('/') ? null : 'path globs start with "/"')), 'paths').optional(),
  logins: nonEmptyList(text(), 'logins').optional(),
  statements: nonEmptyList(z.enum(STATEMENT_CLASSES), 'statement classes').optional(),
  tables: nonEmptyList(text(), 'tables').optional(),
  functions: nonEmptyList(text(), 'functions').optional(),
  audit: nonEmptyList(z.enum(AUDIT_PERMISSIONS), 'audit permissions').optional(),
});

const role = strict({
  description: z.string().optional(),
  allow: z.array(rule).default([]),
  deny: z.array(rule).default([]),
});

const grant = strict({
  role: text(),
  groups: z.array(text()).default([]),
  users: z.array(text()).default([]),
});

const auditSchema = strict({
  store: z.literal('file', { error: (issue) => `expected "file" (the only audit store for now), got ${show(issue.input)}` }).default('file'),
  dir: text(),
  // C2SP tlog-checkpoint: the origin is the first line of every checkpoint.
  log_id: checkedString((value) => (/^[^\s\p{Cc}][^\p{Cc}]*$/u.test(value) && !/\s$/.test(value) ? null : 'must be one line of text with no leading or trailing space')),
  signing_key: secret(),
  checkpoint_interval: duration('1s'),
  durability: z.enum(['always', 'interval']).default('always'),
  sync_interval: duration('100ms', { max: 1_000 }),
  segment_size: size('64MiB'),
  group_commit: strict({
    max_records: count(512),
    max_delay: duration('2ms', { min: 0 }),
  }).prefault({}),
  append_timeout: duration('2s'),
});

const configSchema = strict({
  server: serverSchema,
  identity: identitySchema,
  resources: z.array(z.discriminatedUnion('kind', [httpResource, postgresResource])).default([]),
  roles: z.record(name('role'), role).default({}),
  grants: z.array(grant).default([]),
  audit: auditSchema,
  logging: strict({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
});

export type ConfigShape = z.output<typeof configSchema>;

export type ShapeOutcome = { readonly ok: true; readonly value: ConfigShape } | { readonly ok: false; readonly problems: readonly Problem[] };

/** Checks data against the schema; every issue becomes a problem with its key path. */
export function validateShape(data: unknown): ShapeOutcome {
  if (data === undefined || data === null) {
    return { ok: false, problems: [{ path: [], message: 'the config is empty; expected a mapping with server, identity, resources, roles, grants and audit' }] };
  }
  const result = configSchema.safeParse(data, { error: errorMap });
  if (result.success) return { ok: true, value: result.data };
  const problems: Problem[] = [];
  for (const issue of result.error.issues) {
    const path: KeyPath = issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment));
    if (issue.code === 'unrecognized_keys') {
      const messages = issue.message.split(UNKNOWN_KEYS_SEPARATOR);
      issue.keys.forEach((key, index) => problems.push({ path: [...path, key], message: messages[index] ?? `unknown key ${JSON.stringify(key)}` }));
    } else {
      problems.push({ path, message: issue.message });
    }
  }
  return { ok: false, problems };
}
