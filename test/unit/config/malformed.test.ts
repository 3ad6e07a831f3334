import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../../src/config/index.js';
import { BASE, ENV, edit, insert, load, type LoadOptions } from './fixtures.js';

/** Every issue of a config that must fail, as the one-line text people read. */
function issuesOf(text: string, options: LoadOptions = {}): string[] {
  const result = load(text, options);
  if (result.ok) throw new Error('expected the config to be invalid, but it loaded');
  return result.errors.map(formatIssue);
}

const withoutEnv = (name: string): Record<string, string> => Object.fromEntries(Object.entries(ENV).filter(([key]) => key !== name));

describe('the base fixture', () => {
  it('is valid, so each case below fails only for the reason it names', () => {
    expect(load(edit({})).ok).toBe(true);
  });
});

interface Case {
  readonly name: string;
  readonly text: string;
  readonly options?: LoadOptions;
  readonly expected: readonly string[];
}

const CASES: readonly Case[] = [
  {
    name: 'an unknown key, with the closest known key suggested',
    text: edit({ 23: '      tsl: disable' }),
    expected: ['tollgate.yaml:23 resources[1].upstream.tsl: unknown key "tsl"; did you mean "tls"?'],
  },
  {
    name: 'an unknown key unlike any known key lists the known ones',
    text: insert(17, ['    colour: blue']),
    expected: ['tollgate.yaml:18 resources[0].colour: unknown key "colour"; expected one of name, kind, upstream, match, strip_prefix'],
  },
  {
    name: 'a resource kind that does not exist',
    text: edit({ 14: '    kind: mysql' }),
    expected: ['tollgate.yaml:14 resources[0].kind: expected one of http | postgres, got "mysql"'],
  },
  {
    name: 'a missing resource kind, at the line of the resource',
    text: edit({ 14: '    # kind left out' }),
    expected: ['tollgate.yaml:13 resources[0].kind: is required; expected one of http | postgres'],
  },
  {
    name: 'a port written as a string',
    text: edit({ 23: '      port: "5432"' }),
    expected: ['tollgate.yaml:23 resources[1].upstream.port: expected a number, got a string'],
  },
  {
    name: 'a missing required key, at the line of its parent key',
    text: edit({ 21: '      # host left out' }),
    expected: ['tollgate.yaml:20 resources[1].upstream.host: is required'],
  },
  {
    name: 'a duration that is not one',
    text: insert(9, ['    ttl: 8 hours']),
    expected: ['tollgate.yaml:10 identity.session.ttl: "8 hours" is not a duration; use forms like 500ms, 30s, 15m, 1h30m'],
  },
  {
    name: 'a size that is not one, a count below 1, and a zero timeout',
    text: insert(2, ['  http:', '    limits: {max_header_bytes: 16kb, max_concurrent_requests: 0, headers_timeout: 0s}']),
    expected: [
      'tollgate.yaml:4 server.http.limits.max_header_bytes: expected a size such as 64MiB, 16KiB or a byte count, got "16kb"',
      'tollgate.yaml:4 server.http.limits.max_concurrent_requests: must be at least 1',
      'tollgate.yaml:4 server.http.limits.headers_timeout: must be longer than 0',
    ],
  },
  {
    name: 'an environment variable that is not set',
    text: edit({}),
    options: { env: withoutEnv('AUDIT_KEY') },
    expected: ['tollgate.yaml:53 audit.signing_key: ${env:AUDIT_KEY} is not set'],
  },
  {
    name: 'a session key shorter than 32 bytes',
    text: edit({}),
    options: { env: { ...ENV, SESSION_KEY: 'short-secret' } },
    expected: ['tollgate.yaml:9 identity.session.keys[0]: is 12 bytes; at least 32 are required (generate one with: openssl rand -base64 32)'],
  },
  {
    name: 'a database token key shorter than 32 bytes, counted in bytes not characters',
    text: edit({}),
    options: { env: { ...ENV, DB_TOKEN_KEY: 'ключ-ключ-ключ' } },
    expected: ['tollgate.yaml:11 identity.db_tokens.signing_key: is 26 bytes; at least 32 are required (generate one with: openssl rand -base64 32)'],
  },
  {
    name: 'a grant naming an unknown role',
    text: edit({ 46: '  - role: enginer' }),
    expected: ['tollgate.yaml:46 grants[0].role: unknown role "enginer"; did you mean "engineer"?'],
  },
  {
    name: 'a rule naming an unknown resource',
    text: edit({ 34: '      - resource: ap' }),
    expected: ['tollgate.yaml:34 roles.engineer.allow[0].resource: unknown resource "ap"; did you mean "app"?'],
  },
  {
    name: 'http-only methods on a postgres resource',
    text: edit({ 37: '        methods: [GET]' }),
    expected: ['tollgate.yaml:37 roles.engineer.allow[1].methods: applies only to http resources; "shop" is a postgres resource'],
  },
  {
    name: 'postgres-only statements on an http resource',
    text: edit({ 35: '        statements: [read]' }),
    expected: ['tollgate.yaml:35 roles.engineer.allow[0].statements: applies only to postgres resources; "app" is an http resource'],
  },
  {
    name: 'a statement class that does not exist',
    text: edit({ 38: '        statements: [read, writ]' }),
    expected: ['tollgate.yaml:38 roles.engineer.allow[1].statements[1]: expected one of read | write | ddl | admin, got "writ"; did you mean "write"?'],
  },
  {
    name: 'a login the resource does not have',
    text: edit({ 37: '        logins: [reader, admin]' }),
    expected: ['tollgate.yaml:37 roles.engineer.allow[1].logins[1]: resource "shop" has no login "admin"; its logins are reader, writer'],
  },
  {
    name: 'an audit rule that also names a resource',
    text: edit({ 44: '      - audit: [view]\n        resource: app' }),
    expected: ['tollgate.yaml:44 roles.auditor.allow[0].audit: audit rules name no resource; put the audit permissions in a rule of their own'],
  },
  {
    name: 'a rule with neither a resource nor audit permissions',
    text: edit({ 44: '      - {}' }),
    expected: ['tollgate.yaml:44 roles.auditor.allow[0]: names no resource and no audit permissions; add resource: NAME or audit: [view]'],
  },
  {
    name: 'a duplicate resource name, and the rules that now name a resource that is gone',
    text: edit({ 18: '  - name: app' }),
    expected: [
      'tollgate.yaml:18 resources[1].name: duplicate resource name "app"; first at line 13',
      'tollgate.yaml:36 roles.engineer.allow[1].resource: unknown resource "shop"; defined resources: app',
      'tollgate.yaml:40 roles.engineer.deny[0].resource: unknown resource "shop"; defined resources: app',
    ],
  },
  {
    name: 'a duplicate login name',
    text: edit({ 28: '      - name: reader' }),
    expected: ['tollgate.yaml:28 resources[1].logins[1].name: duplicate login name "reader"; first at line 25'],
  },
  {
    name: 'a match with neither host nor path_prefix',
    text: edit({ 17: '      {}' }),
    expected: ['tollgate.yaml:16 resources[0].match: needs host, path_prefix or both'],
  },
  {
    name: 'strip_prefix without a path_prefix to strip',
    text: edit({ 17: '      host: app.example.com\n    strip_prefix: true' }),
    expected: ['tollgate.yaml:18 resources[0].strip_prefix: applies only with match.path_prefix'],
  },
  {
    name: 'a postgres listener without tls',
    text: edit({ 4: '    allow_cleartext_on_loopback: false' }),
    expected: [
      'tollgate.yaml:3 server.postgres.tls: is required: clients send database tokens as passwords, which must not cross a network in cleartext (or set allow_cleartext_on_loopback: true for a loopback listener)',
    ],
  },
  {
    name: 'cleartext on an address that is not loopback',
    text: edit({ 4: '    allow_cleartext_on_loopback: true\n    listen: 0.0.0.0:6432' }),
    expected: ['tollgate.yaml:5 server.postgres.listen: allow_cleartext_on_loopback covers only loopback addresses; listen on 127.0.0.1 or ::1, or configure tls'],
  },
  {
    name: 'no database token key while a postgres resource exists',
    text: edit({ 10: '  # db_tokens left out', 11: '' }),
    expected: ['tollgate.yaml:5 identity.db_tokens.signing_key: is required when a postgres resource exists: database tokens are signed with it'],
  },
  {
    name: 'a database token ttl above max_ttl',
    text: edit({ 10: '  db_tokens:\n    ttl: 13h' }),
    expected: ['tollgate.yaml:11 identity.db_tokens.ttl: is longer than max_ttl (12h)'],
  },
  {
    name: 'sync_interval without durability: interval',
    text: insert(53, ['  sync_interval: 50ms']),
    expected: ['tollgate.yaml:54 audit.sync_interval: applies only with durability: interval; remove it, or set durability: interval'],
  },
  {
    name: 'bearer algorithms none, HS256 and a misspelt one',
    text: insert(9, ['  bearer:', '    algorithms: [RS256, none, HS256, RS257]']),
    expected: [
      'tollgate.yaml:11 identity.bearer.algorithms[1]: "none" would accept unsigned tokens; use one of RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | ES512 | EdDSA',
      'tollgate.yaml:11 identity.bearer.algorithms[2]: "HS256" is an HMAC algorithm: anyone holding the shared secret could forge tokens; use one of RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | ES512 | EdDSA',
      'tollgate.yaml:11 identity.bearer.algorithms[3]: expected one of RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | ES512 | EdDSA, got "RS257"; did you mean "RS256"?',
    ],
  },
  {
    name: 'a clock skew above 5m',
    text: insert(9, ['  bearer: {clock_skew: 10m}']),
    expected: ['tollgate.yaml:10 identity.bearer.clock_skew: must be at most 5m'],
  },
  {
    name: 'listen addresses that are not host:port',
    text: insert(2, ['  http:', '    listen: 127.0.0.1', '  admin: {listen: "localhost:99999"}']),
    expected: [
      'tollgate.yaml:4 server.http.listen: "127.0.0.1" is not host:port; write it like 127.0.0.1:8080 or [::1]:8080',
      'tollgate.yaml:5 server.admin.listen: port 99999 is out of range (0 to 65535)',
    ],
  },
  {
    name: 'a public URL with a path, and an issuer that is not http(s)',
    text: edit({ 2: '  public_url: https://gw.example.com/gate', 6: '  issuer: ftp://idp.example.com' }),
    expected: [
      'tollgate.yaml:2 server.public_url: "https://gw.example.com/gate" must have no path (found "/gate"); Tollgate serves from the root of its public URL',
      'tollgate.yaml:6 identity.issuer: "ftp://idp.example.com" is not an http or https URL',
    ],
  },
  {
    name: 'trusted proxies that are not CIDR blocks',
    text: insert(2, ['  http:', '    trusted_proxies: [10.0.0.0/33, proxy.internal, 192.0.2.7]']),
    expected: [
      'tollgate.yaml:4 server.http.trusted_proxies[0]: prefix /33 is longer than 32 bits',
      'tollgate.yaml:4 server.http.trusted_proxies[1]: "proxy.internal" is not a CIDR block; write it like 10.0.0.0/8 or fd00::/8',
    ],
  },
  {
    name: 'scopes without openid',
    text: insert(7, ['  scopes: [email]']),
    expected: ['tollgate.yaml:8 identity.scopes: must include openid'],
  },
  {
    name: 'a role name with capitals',
    text: edit({ 42: '  Auditor:', 48: '  - role: Auditor' }),
    expected: ['tollgate.yaml:42 roles.Auditor: role names use lower-case letters, digits, "-" and "_", starting with a letter or digit'],
  },
  {
    name: 'an empty list where leaving the key out was meant',
    text: edit({ 35: '        methods: []' }),
    expected: ['tollgate.yaml:35 roles.engineer.allow[0].methods: lists no methods; leave the key out to match any'],
  },
  {
    name: 'a grant with neither users nor groups',
    text: edit({ 47: '    groups: []' }),
    expected: ['tollgate.yaml:46 grants[0]: names no users and no groups; add at least one to either list'],
  },
  {
    name: 'an empty section',
    text: edit({ 51: '', 52: '', 53: '' }),
    expected: ['tollgate.yaml:50 audit: expected a mapping, got an empty value'],
  },
  {
    name: 'an audit store that does not exist, and an unknown log level',
    text: insert(53, ['  store: s3', 'logging: {level: verbose}']),
    expected: [
      'tollgate.yaml:54 audit.store: expected "file" (the only audit store for now), got "s3"',
      'tollgate.yaml:55 logging.level: expected one of trace | debug | info | warn | error | fatal, got "verbose"',
    ],
  },
  {
    name: 'a secret reference outside a secret key',
    text: edit({ 52: '  log_id: ${env:LOG_ID}' }),
    expected: ['tollgate.yaml:52 audit.log_id: secret references are resolved only in secret keys (passwords, keys, certificates); write the value itself here'],
  },
  {
    name: 'a file reference to a file that does not exist, relative to the config directory',
    text: edit({ 53: '  signing_key: ${file:keys/audit.key}' }),
    expected: ['tollgate.yaml:53 audit.signing_key: ${file:keys/audit.key} cannot be read: no such file (/etc/tollgate/keys/audit.key)'],
  },
  {
    name: 'a malformed reference',
    text: edit({ 53: '  signing_key: ${vault:audit}' }),
    expected: ['tollgate.yaml:53 audit.signing_key: holds "${" but is not a whole ${env:NAME} or ${file:PATH} reference'],
  },
  {
    name: 'a YAML syntax error',
    text: edit({ 7: '  client_id: "tollgate' }),
    expected: ['tollgate.yaml:7 identity.client_id: a quoted string is missing its closing quote'],
  },
  {
    name: 'a bad escape in a double-quoted string, described without echoing the string',
    text: edit({ 30: '        password: "pa\\qss"' }),
    expected: ['tollgate.yaml:30 resources[1].logins[1].password: invalid escape sequence in a double-quoted string; use single quotes to keep backslashes as they are'],
  },
  {
    name: 'a duplicate key',
    text: edit({ 7: '  client_id: tollgate\n  client_id: other' }),
    expected: ['tollgate.yaml:8 identity.client_id: duplicate key; first at line 7'],
  },
  {
    name: 'an unquoted reference inside [ ], which YAML reads as a mapping',
    text: edit({ 9: '    keys: [${env:SESSION_KEY}]' }),
    expected: [
      'tollgate.yaml:9 identity.session.keys: missing , or : between flow sequence items; inside [ ] or { } put a secret reference in quotes: "${env:NAME}"',
    ],
  },
  {
    name: 'an alias with no anchor',
    text: edit({ 7: '  client_id: *name' }),
    expected: ['tollgate.yaml:7 identity.client_id: alias *name names no anchor defined above it'],
  },
  {
    name: 'a second YAML document',
    text: `${edit({})}---\nserver: {}\n`,
    expected: ['tollgate.yaml:54: the config file must hold a single YAML document; remove the second "---"'],
  },
  {
    name: 'an empty file',
    text: '',
    expected: ['tollgate.yaml:1: the config is empty; expected a mapping with server, identity, resources, roles, grants and audit'],
  },
  {
    name: 'a list where the top-level mapping belongs',
    text: '- server\n- identity\n',
    expected: ['tollgate.yaml:1: expected a mapping, got a list'],
  },
];

describe('malformed configs: every issue with its exact line, key path and message', () => {
  it('has at least 15 distinct cases', () => {
    expect(new Set(CASES.map((c) => c.text + JSON.stringify(c.options ?? {}))).size).toBe(CASES.length);
    expect(CASES.length).toBeGreaterThanOrEqual(15);
  });

  it.each(CASES)('$name', ({ text, options, expected }) => {
    expect(issuesOf(text, options)).toEqual(expected);
  });
});

describe('several mistakes at once', () => {
  it('reports an unknown key, a wrong type and a missing ${env:} reference together, in line order', () => {
    const text = edit({ 23: '      tsl: disable', 35: '        methods: GET' });
    expect(issuesOf(text, { env: withoutEnv('SHOP_WRITER_PASSWORD') })).toEqual([
      'tollgate.yaml:23 resources[1].upstream.tsl: unknown key "tsl"; did you mean "tls"?',
      'tollgate.yaml:30 resources[1].logins[1].password: ${env:SHOP_WRITER_PASSWORD} is not set',
      'tollgate.yaml:35 roles.engineer.allow[0].methods: expected a list, got a string',
    ]);
  });

  it('reports schema and reference problems together, without blaming rules for a resource that exists', () => {
    const text = edit({ 14: '    kind: mysql', 46: '  - role: enginer', 52: '  log_id: 42' });
    expect(issuesOf(text)).toEqual([
      'tollgate.yaml:14 resources[0].kind: expected one of http | postgres, got "mysql"',
      'tollgate.yaml:46 grants[0].role: unknown role "enginer"; did you mean "engineer"?',
      'tollgate.yaml:52 audit.log_id: expected a string, got a number',
    ]);
  });

  it('reports each unknown key of one mapping on its own line', () => {
    const text = insert(2, ['  htp: {}', '  admn: {}']);
    expect(issuesOf(text)).toEqual([
      'tollgate.yaml:3 server.htp: unknown key "htp"; did you mean "http"?',
      'tollgate.yaml:4 server.admn: unknown key "admn"; did you mean "admin"?',
    ]);
  });

  it('does not repeat an unresolved reference as a schema error', () => {
    expect(issuesOf(edit({}), { env: withoutEnv('SESSION_KEY') })).toEqual([
      'tollgate.yaml:9 identity.session.keys[0]: ${env:SESSION_KEY} is not set',
    ]);
  });
});

it('BASE has the lines the cases above rely on', () => {
  expect(BASE[22]).toBe('      tls: disable');
  expect(BASE[52]).toBe('  signing_key: ${env:AUDIT_KEY}');
});
