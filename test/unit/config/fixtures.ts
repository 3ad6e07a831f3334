import { loadConfig, type LoadConfigResult } from '../../../src/config/index.js';

/**
 * A small valid config, one array entry per line, so that a test can change line N and know
 * exactly which line its error must name.
 */
export const BASE: readonly string[] = [
  /* 1 */ 'server:',
  /* 2 */ '  public_url: https://gw.example.com',
  /* 3 */ '  postgres:',
  /* 4 */ '    allow_cleartext_on_loopback: true',
  /* 5 */ 'identity:',
  /* 6 */ '  issuer: https://idp.example.com',
  /* 7 */ '  client_id: tollgate',
  /* 8 */ '  session:',
  /* 9 */ '    keys: ["${env:SESSION_KEY}"]',
  /* 10 */ '  db_tokens:',
  /* 11 */ '    signing_key: ${env:DB_TOKEN_KEY}',
  /* 12 */ 'resources:',
  /* 13 */ '  - name: app',
  /* 14 */ '    kind: http',
  /* 15 */ '    upstream: http://127.0.0.1:3000',
  /* 16 */ '    match:',
  /* 17 */ '      path_prefix: /app/',
  /* 18 */ '  - name: shop',
  /* 19 */ '    kind: postgres',
  /* 20 */ '    upstream:',
  /* 21 */ '      host: 127.0.0.1',
  /* 22 */ '      database: shop',
  /* 23 */ '      tls: disable',
  /* 24 */ '    logins:',
  /* 25 */ '      - name: reader',
  /* 26 */ '        user: shop_reader',
  /* 27 */ '        password: ${env:SHOP_READER_PASSWORD}',
  /* 28 */ '      - name: writer',
  /* 29 */ '        user: shop_writer',
  /* 30 */ '        password: ${env:SHOP_WRITER_PASSWORD}',
  /* 31 */ 'roles:',
  /* 32 */ '  engineer:',
  /* 33 */ '    allow:',
  /* 34 */ '      - resource: app',
  /* 35 */ '        methods: [get, POST]',
  /* 36 */ '      - resource: shop',
  /* 37 */ '        logins: [reader]',
  /* 38 */ '        statements: [read]',
  /* 39 */ '    deny:',
  /* 40 */ '      - resource: shop',
  /* 41 */ '        tables: ["secret.*"]',
  /* 42 */ '  auditor:',
  /* 43 */ '    allow:',
  /* 44 */ '      - audit: [view]',
  /* 45 */ 'grants:',
  /* 46 */ '  - role: engineer',
  /* 47 */ '    groups: [engineering]',
  /* 48 */ '  - role: auditor',
  /* 49 */ '    users: [carol@example.com]',
  /* 50 */ 'audit:',
  /* 51 */ '  dir: ./audit',
  /* 52 */ '  log_id: gw.example.com/audit',
  /* 53 */ '  signing_key: ${env:AUDIT_KEY}',
];

/** Secret values of the base config; each is distinctive, so a leak into a message is easy to spot. */
export const ENV: Readonly<Record<string, string>> = {
  SESSION_KEY: 'session-key-VALUE-7f3a9c1e5b2d8f4a6c0e',
  DB_TOKEN_KEY: 'db-token-key-VALUE-1b9e7d5c3a2f0e8d6c4b',
  SHOP_READER_PASSWORD: 'reader-pw-VALUE-4c2e',
  SHOP_WRITER_PASSWORD: 'writer-pw-VALUE-9a7b',
  AUDIT_KEY: 'PRIVATE+KEY+gw.example.com/audit+0a1b2c3d+AVALUE',
};

/** The base with some lines replaced: `{ 9: '    keys: [short]' }`. A replacement may span several lines. */
export function edit(changes: Readonly<Record<number, string>>, base: readonly string[] = BASE): string {
  return base.map((line, index) => changes[index + 1] ?? line).join('\n') + '\n';
}

/** The base with lines inserted after line `after` (0 inserts at the top). */
export function insert(after: number, added: readonly string[], base: readonly string[] = BASE): string {
  return [...base.slice(0, after), ...added, ...base.slice(after)].join('\n') + '\n';
}

export interface LoadOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly files?: Readonly<Record<string, string>>;
}

/** Loads config text as `/etc/tollgate/tollgate.yaml`, naming it `tollgate.yaml` in issues. */
export function load(text: string, options: LoadOptions = {}): LoadConfigResult {
  const files = options.files ?? {};
  return loadConfig({
    file: '/etc/tollgate/tollgate.yaml',
    label: 'tollgate.yaml',
    text,
    env: options.env ?? ENV,
    readFile: (path) => {
      const content = files[path];
      if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return content;
    },
  });
}
