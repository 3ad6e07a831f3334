import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSignerKey, openFileStore, parseSignerKey, type AuditStore } from '../../../src/audit/index.js';
import { readConfigSource } from '../../../src/cli/config-file.js';
import type { CliIo } from '../../../src/cli/io.js';
import { ConfigReloader, changedKeys, configFileReader, describeReloadOutcome, type ReloadOutcome } from '../../../src/cli/reload.js';
import type { TollgateConfig } from '../../../src/config/index.js';
import type { Logger } from '../../../src/core/index.js';
import { decide, type CompiledPolicy } from '../../../src/policy/index.js';
import { readRecords } from '../../helpers/pg-gateway.js';

const ALICE = { subject: 'sub-alice', email: 'alice@example.com', groups: ['engineering'] };
const READ_ORDERS = { kind: 'sql', resource: 'shop', login: 'reader', statement: { class: 'read', tables: ['public.orders'], functions: [] } } as const;

interface ConfigShape {
  readonly httpListen?: string;
  readonly grantEngineers?: boolean;
  readonly statements?: string;
  readonly comment?: string;
}

function configText(auditDir: string, shape: ConfigShape = {}): string {
  return `# ${shape.comment ?? 'reload test'}
server:
  public_url: http://127.0.0.1:8080
  http:
    listen: ${shape.httpListen ?? '127.0.0.1:0'}
  postgres:
    listen: 127.0.0.1:0
    allow_cleartext_on_loopback: true
  admin:
    listen: 127.0.0.1:0
identity:
  issuer: https://idp.invalid
  client_id: tollgate
  session:
    keys: ["\${env:SESSION_KEY}"]
  db_tokens:
    signing_key: \${env:DB_TOKEN_KEY}
resources:
  - name: shop
    kind: postgres
    upstream:
      host: 127.0.0.1
      port: 5432
      database: shop
      tls: disable
    logins:
      - name: reader
        user: shop_reader
        password: \${env:READER_PASSWORD}
roles:
  engineer:
    allow:
      - resource: shop
        statements: [${shape.statements ?? 'read'}]
grants:
${shape.grantEngineers === false ? '  []' : '  - role: engineer\n    groups: [engineering]'}
audit:
  dir: ${auditDir}
  log_id: test.tollgate/reload
  signing_key: \${env:AUDIT_KEY}
`;
}

/** A logger that keeps every line, as pino would write it: level, fields, message. */
function captureLogger(lines: { level: string; fields: Record<string, unknown>; msg: string }[], bindings: Record<string, unknown> = {}): Logger {
  const at =
    (level: string) =>
    (first: Record<string, unknown> | string, msg?: string): void => {
      if (typeof first === 'string') lines.push({ level, fields: { ...bindings }, msg: first });
      else lines.push({ level, fields: { ...bindings, ...first }, msg: msg ?? '' });
    };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (more) => captureLogger(lines, { ...bindings, ...more }),
  };
}

describe('ConfigReloader', () => {
  let dir: string;
  let auditDir: string;
  let file: string;
  let io: CliIo;
  let store: AuditStore;
  let applied: { config: TollgateConfig; policy: CompiledPolicy }[];
  let lines: { level: string; fields: Record<string, unknown>; msg: string }[];
  let reloader: ConfigReloader;

  /** Replaces the file the way editors do: write a new one, rename it over the old. */
  const edit = (shape: ConfigShape): void => {
    writeFileSync(`${file}.tmp`, configText(auditDir, shape));
    renameSync(`${file}.tmp`, file);
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-'));
    auditDir = join(dir, 'audit');
    file = join(dir, 'tollgate.yaml');
    writeFileSync(file, configText(auditDir));
    const keys = generateSignerKey('test.tollgate');
    io = {
      cwd: dir,
      env: { SESSION_KEY: 'reload-session-key-0123456789abcdef', DB_TOKEN_KEY: 'reload-db-token-key-0123456789abcdef', READER_PASSWORD: 'reader-pw', AUDIT_KEY: keys.signerKey },
      stdout: () => undefined,
      stderr: () => undefined,
    };
    const first = readConfigSource('tollgate.yaml', io);
    if (!first.result.ok) throw new Error(`test config invalid: ${JSON.stringify(first.result.errors)}`);
    const config = first.result.config;
    store = await openFileStore({ dir: config.audit.dir, logId: config.audit.log_id, signer: parseSignerKey(keys.signerKey) });
    applied = [];
    lines = [];
    reloader = new ConfigReloader({
      reader: configFileReader('tollgate.yaml', io),
      config,
      sha256: first.sha256,
      audit: store,
      apply: (next, policy) => applied.push({ config: next, policy }),
      logger: captureLogger(lines),
    });
  });

  afterEach(async () => {
    await reloader.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const outcomeLines = () => lines.filter((line) => line.fields['component'] === 'config-reload');

  it('records config.loaded with reload: true and the file hash, then applies the new policy', async () => {
    edit({ grantEngineers: false });
    const outcome = await reloader.reload('SIGHUP');
    const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
    expect(outcome).toEqual({ ok: true, changed: ['grants'], sha256, seq: 0 });
    const [record] = readRecords(auditDir);
    expect(record?.kind).toBe('config.loaded');
    expect(record?.data).toMatchObject({ reload: true, sha256, changed: ['grants'], file, grants: 0, roles: ['engineer'], resources: ['shop'] });
    expect(applied).toHaveLength(1);
    expect(decide(applied[0]!.policy, ALICE, READ_ORDERS).effect).toBe('deny');
    expect(reloader.config.grants).toEqual([]);
    expect(outcomeLines()).toEqual([expect.objectContaining({ level: 'info', msg: 'config reloaded (grants changed)', fields: expect.objectContaining({ trigger: 'SIGHUP', seq: 0, sha256 }) })]);
  });

  it('keeps the old config for a file that fails validation, and logs each error as file:line key.path: message', async () => {
    edit({ statements: 'reed', grantEngineers: false });
    const outcome = await reloader.reload();
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.refusal).toBe('invalid');
    expect(outcome.errors).toEqual([expect.stringMatching(/^tollgate\.yaml:\d+ roles\.engineer\.allow\[0\]\.statements\[0\]: /)]);
    expect(applied).toEqual([]);
    expect(reloader.config.grants).toHaveLength(1);
    expect(readRecords(auditDir)).toEqual([]);
    const [line] = outcomeLines();
    expect(line?.level).toBe('error');
    expect(line?.msg).toContain(outcome.errors[0]);
    expect(line?.msg).toContain('the old config stays in force');
  });

  it('refuses a change to server.http.listen whole, naming the key and saying to restart', async () => {
    edit({ httpListen: '127.0.0.1:9999', grantEngineers: false });
    const outcome = await reloader.reload();
    expect(outcome).toEqual({ ok: false, refusal: 'restart-required', errors: [expect.stringContaining('server.http.listen changed; restart to apply')] });
    expect(applied).toEqual([]);
    expect(reloader.config.grants).toHaveLength(1);
    expect(readRecords(auditDir)).toEqual([]);
  });

  it('refuses the reload when config.loaded cannot be written', async () => {
    await store.close();
    edit({ grantEngineers: false });
    const outcome = await reloader.reload();
    expect(outcome).toMatchObject({ ok: false, refusal: 'audit-unavailable' });
    expect(applied).toEqual([]);
    expect(reloader.config.grants).toHaveLength(1);
  });

  it('records and applies nothing when the file did not change', async () => {
    const outcome = await reloader.reload('file-change');
    expect(outcome).toMatchObject({ ok: true, changed: [], seq: null });
    expect(applied).toEqual([]);
    expect(readRecords(auditDir)).toEqual([]);
    expect(describeReloadOutcome(outcome)).toBe('config unchanged; nothing to reload');
  });

  it('records an edit that changes no policy (the hash names the file in force)', async () => {
    edit({ comment: 'a comment changed' });
    const outcome = await reloader.reload();
    expect(outcome).toMatchObject({ ok: true, changed: [], seq: 0 });
    expect(applied).toHaveLength(1);
    expect(readRecords(auditDir)[0]?.data).toMatchObject({ reload: true, changed: [] });
  });

  it('refuses a file that is gone, and reloads after it is back', async () => {
    rmSync(file);
    const gone: ReloadOutcome = await reloader.reload();
    expect(gone).toMatchObject({ ok: false, refusal: 'unreadable', errors: [expect.stringContaining('no such file')] });
    edit({ grantEngineers: false });
    expect(await reloader.reload()).toMatchObject({ ok: true, changed: ['grants'] });
  });

  it('refuses reloads once closing', async () => {
    edit({ grantEngineers: false });
    await reloader.close();
    expect(await reloader.reload()).toMatchObject({ ok: false, refusal: 'stopping' });
    expect(applied).toEqual([]);
  });
});

describe('changedKeys', () => {
  it('names the leaves that differ, as config key paths', () => {
    const before = { http: { listen: 'a:1', trusted_proxies: ['10.0.0.0/8'] }, admin: { listen: 'b:2' } };
    const after = { http: { listen: 'a:2', trusted_proxies: ['10.0.0.0/16'] }, admin: { listen: 'b:2' } };
    expect(changedKeys('server', before, after)).toEqual(['server.http.listen', 'server.http.trusted_proxies[0]']);
  });

  it('names a list whose length changed, and a key that appeared or went', () => {
    expect(changedKeys('identity', { scopes: ['openid'] }, { scopes: ['openid', 'email'] })).toEqual(['identity.scopes']);
    expect(changedKeys('server', { http: {} }, { http: {}, postgres: { listen: 'x' } })).toEqual(['server.postgres']);
    expect(changedKeys('server', { postgres: { listen: 'x' } }, {})).toEqual(['server.postgres']);
  });

  it('finds nothing in equal values that are different objects', () => {
    expect(changedKeys('audit', { dir: '/a', group_commit: { max_records: 256 } }, { dir: '/a', group_commit: { max_records: 256 } })).toEqual([]);
  });
});
