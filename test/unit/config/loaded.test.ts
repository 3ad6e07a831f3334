import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatIssue, loadConfig, loadConfigOrThrow, type TollgateConfig } from '../../../src/config/index.js';
import { TollgateError } from '../../../src/core/index.js';
import type { PolicySpec } from '../../../src/policy/index.js';
import { ENV, edit, load } from './fixtures.js';

function valid(text: string, options: Parameters<typeof load>[1] = {}): TollgateConfig {
  const result = load(text, options);
  if (!result.ok) throw new Error(`expected a valid config:\n${result.errors.map(formatIssue).join('\n')}`);
  return result.config;
}

describe('defaults', () => {
  const config = valid(edit({ 23: '      # tls left out' }));

  it('fills the server section, with durations in ms and sizes in bytes', () => {
    expect(config.server).toEqual({
      public_url: 'https://gw.example.com',
      http: {
        listen: '127.0.0.1:8080',
        trusted_proxies: [],
        limits: {
          max_header_bytes: 16 * 1024,
          max_concurrent_requests: 1024,
          headers_timeout: 10_000,
          idle_timeout: 60_000,
          upstream_connect_timeout: 5_000,
        },
      },
      postgres: {
        listen: '127.0.0.1:6432',
        allow_cleartext_on_loopback: true,
        accept_oidc_tokens: false,
        limits: {
          max_startup_bytes: 10_000,
          max_message_bytes: 64 * 1024 * 1024,
          startup_timeout: 10_000,
          idle_timeout: 3_600_000,
          max_connections: 1000,
        },
        auth_failures: { max: 5, window: 60_000 },
      },
      admin: { listen: '127.0.0.1:9090' },
    });
  });

  it('fills the identity section; bearer audiences default to the client id', () => {
    expect(config.identity).toEqual({
      issuer: 'https://idp.example.com',
      client_id: 'tollgate',
      scopes: ['openid', 'email', 'profile'],
      claims: { user: 'email', email: 'email', groups: 'groups' },
      session: { keys: [ENV['SESSION_KEY']], ttl: 8 * 3_600_000, cookie_name: 'tollgate_session' },
      bearer: { enabled: true, audiences: ['tollgate'], algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'], clock_skew: 60_000 },
      db_tokens: { signing_key: ENV['DB_TOKEN_KEY'], ttl: 3_600_000, max_ttl: 12 * 3_600_000 },
    });
  });

  it('fills resources, roles and grants', () => {
    expect(config.resources[0]).toEqual({
      name: 'app',
      kind: 'http',
      upstream: 'http://127.0.0.1:3000',
      match: { path_prefix: '/app/' },
      strip_prefix: false,
    });
    expect(config.resources[1]).toMatchObject({
      upstream: { host: '127.0.0.1', port: 5432, database: 'shop', tls: 'verify-full' },
      redact_parameters: false,
    });
    expect(config.roles['auditor']).toEqual({ allow: [{ audit: ['view'] }], deny: [] });
    expect(config.grants).toEqual([
      { role: 'engineer', groups: ['engineering'], users: [] },
      { role: 'auditor', groups: [], users: ['carol@example.com'] },
    ]);
  });

  it('fills the audit and logging sections; audit.dir resolves against the config directory', () => {
    expect(config.audit).toEqual({
      store: 'file',
      dir: '/etc/tollgate/audit',
      log_id: 'gw.example.com/audit',
      signing_key: ENV['AUDIT_KEY'],
      checkpoint_interval: 1_000,
      durability: 'always',
      sync_interval: 100,
      segment_size: 64 * 1024 * 1024,
      group_commit: { max_records: 512, max_delay: 2 },
      append_timeout: 2_000,
    });
    expect(config.logging).toEqual({ level: 'info' });
    expect(config.source).toEqual({ file: '/etc/tollgate/tollgate.yaml' });
  });

  it('keeps values that are given, normalising methods to upper case and match hosts to lower case', () => {
    const given = valid(
      edit({
        17: '      path_prefix: /app/\n      host: App.Example.COM',
        51: '  dir: /srv/audit\n  durability: interval\n  sync_interval: 250ms\n  segment_size: 1048576',
      }),
    );
    expect(given.resources[0]).toMatchObject({ match: { host: 'app.example.com', path_prefix: '/app/' } });
    expect(given.roles['engineer']?.allow[0]).toEqual({ resource: 'app', methods: ['GET', 'POST'] });
    expect(given.audit).toMatchObject({ dir: '/srv/audit', durability: 'interval', sync_interval: 250, segment_size: 1_048_576 });
  });
});

describe('the result', () => {
  const config = valid(edit({}));

  it('is deep-frozen', () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server.http.limits)).toBe(true);
    expect(Object.isFrozen(config.identity.session.keys)).toBe(true);
    expect(Object.isFrozen(config.policy.roles['engineer']?.allow[0]?.methods)).toBe(true);
    expect(() => {
      (config.server as { public_url: string }).public_url = 'https://evil.example.com';
    }).toThrow(TypeError);
    expect(() => {
      (config.resources as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('derives the policy spec from resources, roles and grants', () => {
    const expected: PolicySpec = {
      resources: [
        { name: 'app', kind: 'http', logins: [] },
        { name: 'shop', kind: 'postgres', logins: ['reader', 'writer'] },
      ],
      roles: {
        engineer: {
          allow: [
            { resource: 'app', methods: ['GET', 'POST'] },
            { resource: 'shop', logins: ['reader'], statements: ['read'] },
          ],
          deny: [{ resource: 'shop', tables: ['secret.*'] }],
        },
        auditor: { allow: [{ audit: ['view'] }], deny: [] },
      },
      grants: [
        { role: 'engineer', groups: ['engineering'], users: [] },
        { role: 'auditor', groups: [], users: ['carol@example.com'] },
      ],
    };
    expect(config.policy).toStrictEqual(expected);
  });

  it('resolves secrets to their values', () => {
    expect(config.identity.session.keys).toEqual([ENV['SESSION_KEY']]);
    const shop = config.resources[1];
    expect(shop?.kind === 'postgres' ? shop.logins.map((login) => login.password) : []).toEqual([
      ENV['SHOP_READER_PASSWORD'],
      ENV['SHOP_WRITER_PASSWORD'],
    ]);
  });
});

describe('${file:} references', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  it('read files relative to the config file, trim a single-line secret and keep PEM text whole', () => {
    const config = valid(
      edit({
        11: '    signing_key: ${file:keys/db-token.key}',
        23: '      tls: verify-full\n      ca: ${file:/etc/ssl/db-ca.pem}',
        53: '  signing_key: ${file:../audit.key}',
      }),
      {
        files: {
          '/etc/tollgate/keys/db-token.key': `${'k'.repeat(40)}\n`,
          '/etc/ssl/db-ca.pem': pem,
          '/etc/audit.key': 'PRIVATE+KEY+gw+01020304+AAAA\r\n',
        },
      },
    );
    expect(config.identity.db_tokens.signing_key).toBe('k'.repeat(40));
    const shop = config.resources[1];
    expect(shop?.kind === 'postgres' ? shop.upstream.ca : undefined).toBe(pem);
    expect(config.audit.signing_key).toBe('PRIVATE+KEY+gw+01020304+AAAA');
  });

  it('an empty file is an error naming the reference', () => {
    const result = load(edit({ 53: '  signing_key: ${file:audit.key}' }), { files: { '/etc/tollgate/audit.key': '\n' } });
    expect(result.ok ? [] : result.errors.map(formatIssue)).toEqual([
      'tollgate.yaml:53 audit.signing_key: ${file:audit.key} is empty (/etc/tollgate/audit.key)',
    ]);
  });
});

describe('secret values never appear in messages', () => {
  const secrets = {
    SESSION_KEY: 'tiny-VALUE-a1',
    DB_TOKEN_KEY: 'small-VALUE-b2',
    SHOP_READER_PASSWORD: 'reader-VALUE-c3',
    SHOP_WRITER_PASSWORD: 'writer-VALUE-d4',
    AUDIT_KEY: 'audit-VALUE-e5',
  };
  const literal = 'literal-VALUE-f6';

  const attempts: { name: string; text: string; files?: Record<string, string> }[] = [
    { name: 'keys too short', text: edit({}) },
    { name: 'a literal secret next to a YAML error', text: edit({ 30: `        password: "${literal}\\q"` }) },
    { name: 'a literal secret of the wrong type', text: edit({ 30: `        password: [${literal}]` }) },
    { name: 'a literal session key too short', text: edit({ 9: `    keys: [${literal}]` }) },
    { name: 'a secret file too short', text: edit({ 11: '    signing_key: ${file:k}' }), files: { '/etc/tollgate/k': `${literal}\n` } },
    { name: 'a secret reference in a key that takes no secret', text: edit({ 52: '  log_id: ${env:AUDIT_KEY}' }) },
    { name: 'a secret in an unknown key', text: edit({ 27: '        password: ${env:SHOP_READER_PASSWORD}\n        passwrd: ${env:SHOP_READER_PASSWORD}' }) },
  ];

  it.each(attempts)('$name', ({ text, files }) => {
    const result = load(text, { env: secrets, ...(files === undefined ? {} : { files }) });
    expect(result.ok).toBe(false);
    const everything = result.ok ? '' : JSON.stringify(result.errors) + result.errors.map(formatIssue).join('\n');
    for (const value of [...Object.values(secrets), literal]) expect(everything).not.toContain(value);

    let thrown: unknown;
    try {
      loadConfigOrThrow({ file: '/etc/tollgate/tollgate.yaml', text, env: secrets, readFile: (path) => files?.[path] ?? '' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TollgateError);
    const text2 = `${(thrown as TollgateError).message}${JSON.stringify((thrown as TollgateError).details)}`;
    for (const value of [...Object.values(secrets), literal]) expect(text2).not.toContain(value);
  });

  it('says how short a key is, not what it is', () => {
    const result = load(edit({}), { env: secrets });
    expect(result.ok ? [] : result.errors.map(formatIssue)).toEqual([
      'tollgate.yaml:9 identity.session.keys[0]: is 13 bytes; at least 32 are required (generate one with: openssl rand -base64 32)',
      'tollgate.yaml:11 identity.db_tokens.signing_key: is 14 bytes; at least 32 are required (generate one with: openssl rand -base64 32)',
    ]);
  });
});

describe('loadConfigOrThrow', () => {
  it('throws TG_ERR_CONFIG_INVALID with every issue in details and one line each in the message', () => {
    const text = edit({ 14: '    kind: mysql', 46: '  - role: enginer' });
    let thrown: unknown;
    try {
      loadConfigOrThrow({ file: '/etc/tollgate/tollgate.yaml', label: 'tollgate.yaml', text, env: ENV, readFile: () => '' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TollgateError);
    const error = thrown as TollgateError;
    expect(error.code).toBe('TG_ERR_CONFIG_INVALID');
    expect(error.message).toBe(
      [
        'tollgate.yaml has 2 errors; fix them and check again with: tollgate config check --config tollgate.yaml',
        'tollgate.yaml:14 resources[0].kind: expected one of http | postgres, got "mysql"',
        'tollgate.yaml:46 grants[0].role: unknown role "enginer"; did you mean "engineer"?',
      ].join('\n'),
    );
    expect(error.details['issues']).toEqual([
      { file: 'tollgate.yaml', line: 14, path: 'resources[0].kind', message: 'expected one of http | postgres, got "mysql"' },
      { file: 'tollgate.yaml', line: 46, path: 'grants[0].role', message: 'unknown role "enginer"; did you mean "engineer"?' },
    ]);
  });

  it('returns the config when it is valid', () => {
    const config = loadConfigOrThrow({ file: '/etc/tollgate/tollgate.yaml', text: edit({}), env: ENV, readFile: () => '' });
    expect(config.resources.map((resource) => resource.name)).toEqual(['app', 'shop']);
  });
});

describe('the policy check hook', () => {
  it('places what the policy room refuses at the line of the key it names', () => {
    const result = loadConfig({
      file: '/etc/tollgate/tollgate.yaml',
      label: 'tollgate.yaml',
      text: edit({}),
      env: ENV,
      readFile: () => '',
      checkPolicy: (policy) =>
        policy.roles['engineer']?.deny[0]?.tables?.includes('secret.*') === true
          ? [{ path: 'roles.engineer.deny[0].tables[0]', message: 'table glob "secret.*" is refused' }]
          : [],
    });
    expect(result.ok ? [] : result.errors.map(formatIssue)).toEqual(['tollgate.yaml:41 roles.engineer.deny[0].tables[0]: table glob "secret.*" is refused']);
  });
});

describe('formatIssue', () => {
  it('writes file:line key.path: message, and file:line: message without a path', () => {
    expect(formatIssue({ file: 'a.yaml', line: 3, path: 'server.http.listen', message: 'm' })).toBe('a.yaml:3 server.http.listen: m');
    expect(formatIssue({ file: 'a.yaml', line: 1, path: '', message: 'm' })).toBe('a.yaml:1: m');
  });
});

describe('config/tollgate.example.yaml', () => {
  const path = resolve(dirname(fileURLToPath(import.meta.url)), '../../../config/tollgate.example.yaml');
  const text = readFileSync(path, 'utf8');
  const referenced = [...new Set([...text.matchAll(/^[^#\n]*\$\{env:([A-Z0-9_]+)\}/gm)].map((match) => match[1] ?? ''))];
  const header = text.slice(0, text.search(/^server:/m));
  const check = (env: Record<string, string>) => loadConfig({ file: path, text, env, readFile: () => '' });

  it('uses only ${env:} references, each documented in the header comment', () => {
    expect(text).not.toMatch(/^[^#\n]*\$\{file:/m);
    expect(referenced).toEqual(
      expect.arrayContaining([
        'TOLLGATE_OIDC_CLIENT_SECRET',
        'TOLLGATE_SESSION_KEY',
        'TOLLGATE_DB_TOKEN_KEY',
        'TOLLGATE_AUDIT_SIGNING_KEY',
        'SHOP_READER_PASSWORD',
        'SHOP_WRITER_PASSWORD',
      ]),
    );
    for (const name of referenced) expect(header).toMatch(new RegExp(`^#\\s+${name}\\s`, 'm'));
  });

  it('validates once every referenced variable is set to any value of 32 bytes', () => {
    const result = check(Object.fromEntries(referenced.map((name, i) => [name, `${name}-${i}`.padEnd(32, '#')])));
    expect(result.ok ? [] : result.errors.map(formatIssue)).toEqual([]);
  });

  it('needs 32 bytes only for the session and database token keys', () => {
    const env = Object.fromEntries(referenced.map((name) => [name, 'x']));
    const result = check({ ...env, TOLLGATE_SESSION_KEY: 's'.repeat(32), TOLLGATE_DB_TOKEN_KEY: 'd'.repeat(32) });
    expect(result.ok ? [] : result.errors.map(formatIssue)).toEqual([]);
  });

  it('holds the resources and roles the docs describe', () => {
    const result = check(Object.fromEntries(referenced.map((name) => [name, 'v'.repeat(32)])));
    if (!result.ok) throw new Error('the example must validate');
    const { policy } = result.config;
    expect(policy.resources).toEqual([
      { name: 'app', kind: 'http', logins: [] },
      { name: 'shop', kind: 'postgres', logins: ['reader', 'writer'] },
    ]);
    expect(Object.keys(policy.roles)).toEqual(expect.arrayContaining(['engineer', 'dba', 'security', 'oncall']));
    expect(policy.roles['dba']?.deny).toEqual([{ resource: 'shop', statements: ['ddl'] }]);
    expect(policy.roles['security']?.allow).toContainEqual({ audit: ['view', 'export'] });
    expect(policy.roles['oncall']?.deny.length).toBeGreaterThan(0);
  });
});
