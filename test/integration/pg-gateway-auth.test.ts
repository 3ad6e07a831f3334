/**
 * Connecting to the Postgres gateway: TLS (SSLRequest with sslmode=require and verify-full
 * against a CA generated here, PostgreSQL 17's direct TLS with ALPN), token login and its
 * failures, the per-source failure limit, upstream TLS with SCRAM channel binding, OIDC tokens,
 * and an upstream that is down.
 */
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/index.js';
import { createDbTokens, createIdentity } from '../../src/identity/index.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { cstr, frame, packet, version } from '../helpers/pg-bytes.js';
import { ALICE, BOB, DEFAULT_PG_POLICY, MALLORY, startPgGateway, type PgGatewayHarness } from '../helpers/pg-gateway.js';
import { query, types, WireClient } from '../helpers/pg-wire.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { runProcess, type ProcessRun } from '../helpers/run-process.js';
import { createTestCa, type TestCa } from '../helpers/tls.js';

let ca: TestCa;
let server: TestPostgres;
let tlsServer: TestPostgres;
let gw: PgGatewayHarness;

beforeAll(async () => {
  ca = createTestCa();
  [server, tlsServer] = await Promise.all([startTestPostgres(), startTestPostgres({ tls: ca.issue('upstream') })]);
  gw = await startPgGateway({ postgres: server, tls: ca.issue('gateway'), authFailures: { max: 3, window: '1m' } });
});

afterAll(async () => {
  await gw?.close();
  await server?.stop();
  await tlsServer?.stop();
  ca?.remove();
});

function psql(conninfo: string, password: string, sql = 'select current_user'): Promise<ProcessRun> {
  return runProcess('psql', ['-X', '-A', '-t', '-c', sql, conninfo], { PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' });
}

const dsn = (user: string, extra: string): string => `host=127.0.0.1 port=${gw.port} dbname=shop user=${user} ${extra}`;

function failures(): { reason: unknown; user: unknown }[] {
  return gw
    .records()
    .filter((record) => record.kind === 'auth.failure')
    .map((record) => ({ reason: record.data['reason'], user: record.data['user'] }));
}

describe('TLS to the client', () => {
  it('connects with sslmode=require', async () => {
    const run = await psql(dsn(ALICE.email as string, 'sslmode=require'), gw.token(ALICE), 'select current_user');
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('shop_reader');
    const connect = gw.records().filter((record) => record.kind === 'pg.connect').at(-1);
    expect(connect?.data['tls']).toMatchObject({ negotiation: 'request', protocol: expect.stringMatching(/^TLSv1\.[23]$/) });
  });

  it('connects with sslmode=verify-full against the CA', async () => {
    const run = await psql(dsn(ALICE.email as string, `sslmode=verify-full sslrootcert=${ca.certFile}`), gw.token(ALICE), 'select 1');
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('1');
  });

  it('fails verify-full against another CA', async () => {
    const other = createTestCa('Another CA');
    try {
      const run = await psql(dsn(ALICE.email as string, `sslmode=verify-full sslrootcert=${other.certFile}`), gw.token(ALICE));
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/certificate verify failed/);
    } finally {
      other.remove();
    }
  });

  it('refuses to ask for a token without TLS, and records it', async () => {
    const run = await psql(dsn(ALICE.email as string, 'sslmode=disable'), gw.token(ALICE));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('tollgate: the gateway accepts tokens only over TLS');
    expect(failures()).toContainEqual({ reason: 'tls-required', user: ALICE.email });
  });

  it('speaks direct TLS (sslnegotiation=direct) with ALPN postgresql', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gw.port, ca: ca.cert, servername: 'localhost', ALPNProtocols: ['postgresql'] });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    expect(socket.alpnProtocol).toBe('postgresql');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const waitFor = async (type: string): Promise<void> => {
      for (let i = 0; i < 200 && !Buffer.concat(chunks).includes(Buffer.from(type)); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    socket.write(packet(version(3, 0), cstr('user'), cstr(ALICE.email as string), cstr('database'), cstr('shop'), Buffer.from([0])));
    await waitFor('R');
    socket.write(frame('p', cstr(gw.token(ALICE))));
    await waitFor('Z\u0000\u0000\u0000\u0005I');
    socket.write(query('select 42'));
    await waitFor('SELECT 1');
    expect(Buffer.concat(chunks).toString('latin1')).toContain('42');
    socket.destroy();
    const connect = gw.records().filter((record) => record.kind === 'pg.connect').at(-1);
    expect(connect?.data['tls']).toMatchObject({ negotiation: 'direct', alpn: 'postgresql' });
  });

  it('closes a direct TLS connection without the postgresql ALPN', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gw.port, ca: ca.cert, servername: 'localhost' });
    const outcome = await new Promise<string>((resolve) => {
      socket.once('secureConnect', () => socket.once('close', () => resolve('closed after handshake')));
      socket.once('error', () => resolve('handshake refused'));
    });
    expect(['closed after handshake', 'handshake refused']).toContain(outcome);
    socket.destroy();
  });

  it('refuses bytes sent behind an SSLRequest, before the handshake (CVE-2021-23222)', async () => {
    const client = await WireClient.connect('127.0.0.1', gw.port);
    try {
      client.send(packet(Buffer.from([0x04, 0xd2, 0x16, 0x2f])), packet(version(3, 0), cstr('user'), cstr('x'), Buffer.from([0])));
      const [error] = await client.readUntil(() => true);
      expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '08P01' } });
      expect(error?.type === 'ErrorResponse' ? error.fields.message : '').toContain('data arrived after SSLRequest');
      await client.closedByServer();
    } finally {
      client.close();
    }
  });

  it('answers GSSENCRequest with N and goes on', async () => {
    const client = await WireClient.connect('127.0.0.1', gw.port);
    try {
      client.send(packet(Buffer.from([0x04, 0xd2, 0x16, 0x30])));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(client.received.toString('latin1')).toBe('N');
    } finally {
      client.close();
    }
  });
});

describe('token login', () => {
  const ssl = { rejectUnauthorized: false };

  async function loginError(config: pg.ClientConfig): Promise<{ code?: string; message: string }> {
    const client = new pg.Client({ ...config, ssl });
    try {
      await client.connect();
    } catch (error) {
      return error as { code?: string; message: string };
    } finally {
      await client.end().catch(() => undefined);
    }
    throw new Error('expected the login to fail');
  }

  it('refuses an expired token with 28P01', async () => {
    const past = { now: () => Date.now() - 3 * 60 * 60 * 1000 };
    const old = createDbTokens({ publicUrl: gw.config.server.public_url, identity: gw.config.identity }, { clock: past }).issueDbToken(ALICE, 60 * 60 * 1000);
    if (!old.ok) throw new Error('token not issued');
    const error = await loginError({ ...gw.pgConfig(ALICE), password: old.token });
    expect(error.code).toBe('28P01');
    expect(error.message).toContain('has expired');
    expect(failures()).toContainEqual({ reason: 'token-expired', user: ALICE.email });
  });

  it("refuses another user's token with 28000", async () => {
    const error = await loginError({ ...gw.pgConfig(BOB), user: ALICE.email as string });
    expect(error.code).toBe('28000');
    expect(error.message).toContain('does not match the token');
  });

  it('refuses a database that names no resource with 3D000', async () => {
    const error = await loginError({ ...gw.pgConfig(ALICE), database: 'warehouse' });
    expect(error.code).toBe('3D000');
    expect(error.message).toContain('database "warehouse" does not exist');
  });

  it('refuses a principal whose roles grant no login', async () => {
    const error = await loginError(gw.pgConfig(MALLORY));
    expect(error.code).toBe('28000');
    expect(error.message).toContain('grant no login');
  });

  it('refuses a login the roles do not grant', async () => {
    const error = await loginError(gw.pgConfig(ALICE, { options: '-c tollgate.login=writer' }));
    expect(error.code).toBe('28000');
    expect(error.message).toContain('login "writer" is not granted');
  });

  it('refuses startup settings that statement policy never sees, and keeps the harmless ones', async () => {
    const searchPath = await loginError(gw.pgConfig(ALICE, { options: '-c search_path=pg_catalog' }));
    expect(searchPath.code).toBe('42501');
    expect(searchPath.message).toContain('startup setting "search_path"');
    const escapes = await loginError(gw.pgConfig(ALICE, { options: '-c standard_conforming_strings=off' }));
    expect(escapes.code).toBe('42501');
    const client = new pg.Client({ ...gw.pgConfig(ALICE, { options: '-c statement_timeout=4s', application_name: 'reports' }), ssl });
    await client.connect();
    try {
      const shown = await client.query('SHOW statement_timeout');
      expect(shown.rows[0]).toEqual({ statement_timeout: '4s' });
    } finally {
      await client.end();
    }
  });

  it('refuses an upstream that reads backslashes in string constants as escapes', async () => {
    await server.query('ALTER ROLE shop_reader SET standard_conforming_strings = off');
    try {
      const error = await loginError(gw.pgConfig(ALICE));
      expect(error.message).toContain('standard_conforming_strings=off');
    } finally {
      await server.query('ALTER ROLE shop_reader RESET standard_conforming_strings');
    }
    const client = new pg.Client({ ...gw.pgConfig(ALICE), ssl });
    await client.connect();
    await client.end();
  });

  it('ends a session whose server turns standard_conforming_strings off or leaves UTF8', async () => {
    const admins = await startPgGateway({
      postgres: server,
      tls: ca.issue('gateway'),
      policyYaml: DEFAULT_PG_POLICY.replace('statements: [read, write]', 'statements: [read, write, admin]'),
    });
    try {
      for (const [statement, setting] of [
        ['SET standard_conforming_strings = off', 'standard_conforming_strings was changed to off'],
        ["SET client_encoding = 'SJIS'", 'client_encoding was changed to SJIS'],
      ] as const) {
        const client = new pg.Client({ ...admins.pgConfig(BOB), ssl });
        const ended = new Promise<Error>((resolve) => client.on('error', resolve));
        await client.connect();
        const refused = await client.query(statement).then(
          () => null,
          (error: { code?: string; message: string }) => error,
        );
        const failure = refused ?? (await ended);
        expect((failure as { code?: string }).code).toBe('0A000');
        expect(failure.message).toContain(setting);
        await expect(client.query('SELECT 1')).rejects.toThrow();
        await client.end().catch(() => undefined);
      }
    } finally {
      await admins.close();
    }
  });

  it('refuses a password that is not a token, then limits the source address', async () => {
    const limited = await startPgGateway({ postgres: server, authFailures: { max: 3, window: '1m' } });
    try {
      for (let i = 0; i < 3; i++) {
        const error = await loginErrorPlain({ ...limited.pgConfig(ALICE), password: 'hunter2' });
        expect(error.code).toBe('28P01');
      }
      const blocked = await loginErrorPlain(limited.pgConfig(ALICE));
      expect(blocked.code).toBe('28000');
      expect(blocked.message).toContain('too many failed logins');
      const reasons = limited.records().filter((record) => record.kind === 'auth.failure').map((record) => record.data['reason']);
      expect(reasons).toEqual(['not-a-token', 'not-a-token', 'not-a-token', 'rate-limited']);
    } finally {
      await limited.close();
    }
  });

  async function loginErrorPlain(config: pg.ClientConfig): Promise<{ code?: string; message: string }> {
    const client = new pg.Client(config);
    try {
      await client.connect();
    } catch (error) {
      return error as { code?: string; message: string };
    } finally {
      await client.end().catch(() => undefined);
    }
    throw new Error('expected the login to fail');
  }

  it('reports an upstream that is down clearly, without hanging', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const down = await startPgGateway({ postgres: server, upstreamPort: deadPort });
    try {
      const error = await loginErrorPlain(down.pgConfig(ALICE));
      expect(error.code).toBe('08001');
      expect(error.message).toContain(`could not connect to upstream "shop" (127.0.0.1:${deadPort})`);
    } finally {
      await down.close();
    }
  });
});

describe('upstream TLS', () => {
  it('logs in upstream over verified TLS with SCRAM', async () => {
    const secure = await startPgGateway({ postgres: tlsServer, upstreamTls: 'verify-full', upstreamCa: ca.cert });
    try {
      const client = new pg.Client(secure.pgConfig(ALICE));
      await client.connect();
      try {
        const result = await client.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
        expect(result.rows).toEqual([{ ssl: true }]);
      } finally {
        await client.end();
      }
      expect(secure.records().find((record) => record.kind === 'pg.connect')?.data['upstream_tls']).toBe(true);
    } finally {
      await secure.close();
    }
  });

  it('refuses an upstream whose certificate the configured CA did not sign', async () => {
    const other = createTestCa('Not the upstream CA');
    const secure = await startPgGateway({ postgres: tlsServer, upstreamTls: 'verify-full', upstreamCa: other.cert });
    try {
      const client = new pg.Client(secure.pgConfig(ALICE));
      const error = await client.connect().then(
        () => null,
        (failure: { code?: string; message: string }) => failure,
      );
      await client.end().catch(() => undefined);
      expect(error?.code).toBe('08001');
      expect(error?.message).toContain('TLS with upstream "shop"');
    } finally {
      await secure.close();
      other.remove();
    }
  });

  it('refuses a plaintext upstream when the resource requires TLS', async () => {
    const strict = await startPgGateway({ postgres: server, upstreamTls: 'require' });
    try {
      const client = new pg.Client(strict.pgConfig(ALICE));
      const error = await client.connect().then(
        () => null,
        (failure: { code?: string; message: string }) => failure,
      );
      await client.end().catch(() => undefined);
      expect(error?.code).toBe('08001');
      expect(error?.message).toContain('does not support TLS');
    } finally {
      await strict.close();
    }
  });
});

describe('OIDC tokens as passwords', () => {
  let idp: TestIdp;

  beforeAll(async () => {
    idp = await startOidcIdp({ clients: [{ clientId: 'tollgate', clientSecret: 'oidc-client-secret-0123456789', redirectUris: ['http://127.0.0.1:1/_tollgate/callback'] }], users: [] });
  });

  afterAll(async () => {
    await idp?.close();
  });

  it('accepts an access token from the issuer when enabled, and refuses one that is not', async () => {
    const base = await startPgGateway({ postgres: server, issuer: idp.issuer, acceptOidcTokens: true });
    await base.close();
    const identity = await createIdentity({ publicUrl: base.config.server.public_url, identity: base.config.identity }, { clock: systemClock, jwksCooldownMs: 0 });
    const oidc = await startPgGateway({ postgres: server, issuer: idp.issuer, acceptOidcTokens: true, tokens: identity });
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = await idp.signToken({ iss: idp.issuer, aud: 'tollgate', sub: 'sub-alice', email: 'alice@example.com', groups: ['engineering'], iat: now, exp: now + 600 });
      const client = new pg.Client({ ...oidc.pgConfig(ALICE), password: token });
      await client.connect();
      try {
        expect((await client.query('select current_user as u')).rows).toEqual([{ u: 'shop_reader' }]);
      } finally {
        await client.end();
      }
      expect(oidc.records().find((record) => record.kind === 'pg.connect')?.data['auth']).toBe('oidc');

      const forged = await idp.signToken({ iss: 'https://elsewhere.example', aud: 'tollgate', sub: 'sub-alice', email: 'alice@example.com', iat: now, exp: now + 600 });
      const refused = new pg.Client({ ...oidc.pgConfig(ALICE), password: forged });
      const error = await refused.connect().then(
        () => null,
        (failure: { code?: string; message: string }) => failure,
      );
      await refused.end().catch(() => undefined);
      expect(error?.code).toBe('28P01');
      expect(error?.message).toContain('the OIDC token was refused (wrong-issuer)');
    } finally {
      await oidc.close();
    }
  });
});

describe('a raw session', () => {
  it('relays a query after a plain login on a cleartext loopback gateway', async () => {
    const plain = await startPgGateway({ postgres: server });
    try {
      const client = await WireClient.connect(plain.host, plain.port);
      try {
        const login = await client.login(ALICE.email as string, 'shop', plain.token(ALICE));
        expect(types(login)[0]).toBe('AuthenticationCleartextPassword');
        expect(types(login)).toContain('BackendKeyData');
        expect(types(login).at(-1)).toBe('ReadyForQuery(I)');
        client.send(query('select 1'));
        expect(types(await client.untilReady())).toEqual(['RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery(I)']);
      } finally {
        client.close();
      }
    } finally {
      await plain.close();
    }
  });
});
