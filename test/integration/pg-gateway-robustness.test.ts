/**
 * Bad input and load against the Postgres gateway: malformed, oversized and unknown messages,
 * startup without a user, clients that stall, connection limits, mutated frames over real
 * sockets while a healthy session keeps getting right answers, and 200 concurrent sessions that
 * leave nothing behind.
 */
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/audit-store.js';
import { cstr, frame, int16, int32, packet, version } from '../helpers/pg-bytes.js';
import { ALICE, startPgGateway, type PgGatewayHarness } from '../helpers/pg-gateway.js';
import { bind, describePortal, execute, parse, query, sync, types, WireClient } from '../helpers/pg-wire.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

let server: TestPostgres;
let gw: PgGatewayHarness;

beforeAll(async () => {
  server = await startTestPostgres();
  gw = await startPgGateway({
    postgres: server,
    limits: { startup_timeout: '800ms', idle_timeout: '1s', max_message_bytes: '1MiB' },
  });
});

afterAll(async () => {
  await gw?.close();
  await server?.stop();
});

const startup = (user: string | null, params: Record<string, string> = {}, major = 3, minor = 0): Buffer => {
  const body = [version(major, minor)];
  if (user !== null) body.push(cstr('user'), cstr(user));
  body.push(cstr('database'), cstr('shop'));
  for (const [name, value] of Object.entries(params)) body.push(cstr(name), cstr(value));
  return packet(...body, Buffer.from([0]));
};

async function loggedIn(): Promise<WireClient> {
  const client = await WireClient.connect(gw.host, gw.port);
  const login = await client.login(ALICE.email as string, 'shop', gw.token(ALICE));
  expect(types(login).at(-1)).toBe('ReadyForQuery(I)');
  return client;
}

async function upstreamSessions(): Promise<number> {
  const result = await server.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where usename like 'shop\\_%'");
  return result.rows[0]?.n ?? -1;
}

describe('malformed input closes only the offending connection', () => {
  it('refuses an oversized startup packet with 08P01', async () => {
    const client = await WireClient.connect(gw.host, gw.port);
    client.send(int32(20_000), version(3, 0));
    const [error] = await client.readUntil(() => true);
    expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '08P01', severity: 'FATAL' } });
    expect(error?.type === 'ErrorResponse' ? error.fields.message : '').toContain('the limit is 10000');
    await client.closedByServer();
  });

  it('refuses a message whose declared length is over max_message_bytes', async () => {
    const client = await loggedIn();
    client.send(Buffer.from('Q'), int32(2 * 1024 * 1024));
    const [error] = await client.readUntil(() => true);
    expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '08P01' } });
    expect(error?.type === 'ErrorResponse' ? error.fields.message : '').toContain('the limit is 1048576');
    await client.closedByServer();
  });

  it('refuses an unknown message type', async () => {
    const client = await loggedIn();
    client.send(frame('z', cstr('?')));
    const [error] = await client.readUntil(() => true);
    expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '08P01' } });
    expect(error?.type === 'ErrorResponse' ? error.fields.message : '').toContain("unknown frontend message type 'z'");
    await client.closedByServer();
  });

  it('refuses a startup without user with 28000', async () => {
    const client = await WireClient.connect(gw.host, gw.port);
    client.send(startup(null));
    const [error] = await client.readUntil(() => true);
    expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '28000', message: 'tollgate: no PostgreSQL user name specified in startup packet' } });
    await client.closedByServer();
  });

  it('negotiates a newer minor protocol version down to 3.0', async () => {
    const client = await WireClient.connect(gw.host, gw.port);
    try {
      client.send(startup(ALICE.email as string, { '_pq_.compression': 'on' }, 3, 2));
      const negotiate = await client.next();
      expect(negotiate).toMatchObject({ type: 'NegotiateProtocolVersion', version: { major: 3, minor: 0 }, unsupportedOptions: ['_pq_.compression'] });
      expect(await client.next()).toMatchObject({ type: 'AuthenticationCleartextPassword' });
      client.send(frame('p', cstr(gw.token(ALICE))));
      expect(types(await client.untilReady()).at(-1)).toBe('ReadyForQuery(I)');
    } finally {
      client.close();
    }
  });

  it('answers a Describe and Execute of a portal it never saw bound with 42501, then goes on', async () => {
    const client = await loggedIn();
    try {
      client.send(execute('ghost'), sync(), query('select 7'));
      expect(types(await client.untilReady())).toEqual(['ErrorResponse(42501)', 'ReadyForQuery(I)']);
      expect(types(await client.untilReady())).toEqual(['RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery(I)']);
      client.send(parse('', 'select $1::int + 1'), bind('', '', ['41']), describePortal(''), execute(), sync());
      expect(types(await client.untilReady())).toEqual(['ParseComplete', 'BindComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery(I)']);
    } finally {
      client.close();
    }
  });
});

describe('clients that stall', () => {
  it('drops a client that sends half a startup packet and goes silent, holding no upstream connection', async () => {
    const before = await upstreamSessions();
    const client = await WireClient.connect(gw.host, gw.port);
    client.send(startup(ALICE.email as string).subarray(0, 6));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await upstreamSessions()).toBe(before);
    await client.closedByServer(5000);
  });

  it('drops a client that stops after the password request', async () => {
    const client = await WireClient.connect(gw.host, gw.port);
    client.send(startup(ALICE.email as string));
    expect(await client.next()).toMatchObject({ type: 'AuthenticationCleartextPassword' });
    await client.closedByServer(5000);
  });

  it('ends a session whose client sent half a message and went silent, with 57P05', async () => {
    const client = await loggedIn();
    client.send(query('select 1').subarray(0, 4));
    const [error] = await client.readUntil(() => true, 5000);
    expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '57P05', severity: 'FATAL' } });
    await client.closedByServer();
    await waitFor(() => gw.gateway.sessionCount() === 0, 'the session to end');
  });

  it('does not end a session that waits for a long statement', async () => {
    const client = new pg.Client(gw.pgConfig(ALICE));
    await client.connect();
    try {
      expect((await client.query('select 1 as slept from pg_sleep(1.5)')).rows).toEqual([{ slept: 1 }]);
    } finally {
      await client.end();
    }
  });
});

describe('connection limits', () => {
  it('refuses connections over max_connections with 53300', async () => {
    const small = await startPgGateway({ postgres: server, limits: { max_connections: 2 } });
    const held: WireClient[] = [];
    try {
      for (let i = 0; i < 2; i++) held.push(await WireClient.connect(small.host, small.port));
      await waitFor(() => small.gateway.connectionCount() === 2, 'two connections');
      const third = await WireClient.connect(small.host, small.port);
      const [error] = await third.readUntil(() => true);
      expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '53300', message: 'tollgate: sorry, too many clients already' } });
      await third.closedByServer();
    } finally {
      for (const client of held) client.close();
      await small.close();
    }
  });
});

describe('shutdown', () => {
  it('ends sessions with 57P01, closes their upstream connections and records their end', async () => {
    const closing = await startPgGateway({ postgres: server });
    const client = await WireClient.connect(closing.host, closing.port);
    const login = await client.login(ALICE.email as string, 'shop', closing.token(ALICE));
    expect(types(login).at(-1)).toBe('ReadyForQuery(I)');
    const pid = (closing.records().find((record) => record.kind === 'pg.connect')?.data['upstream_pid'] as number) ?? -1;
    await closing.gateway.close();
    const [error] = await client.readUntil(() => true);
    expect(error).toMatchObject({ type: 'ErrorResponse', fields: { code: '57P01', severity: 'FATAL' } });
    await client.closedByServer();
    const disconnect = closing.records().find((record) => record.kind === 'pg.disconnect');
    expect(disconnect?.data).toMatchObject({ closed_by: 'gateway', reason: 'the gateway is shutting down' });
    await closing.close();
    let alive = 1;
    for (let i = 0; i < 100 && alive > 0; i++) {
      alive = (await server.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where pid = $1', [pid])).rows[0]?.n ?? 0;
      if (alive > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(alive).toBe(0);
  });
});

describe('mutated frames over real sockets', () => {
  const valid = (): Buffer[] => [
    query('select 1'),
    query("select item from orders where id = 1; select 2"),
    parse('s', 'select $1::text'),
    bind('p', 's', ['x']),
    describePortal('p'),
    execute('p', 1),
    sync(),
    frame('H'),
    frame('C', Buffer.from('S'), cstr('s')),
    frame('d', Buffer.from('row\n')),
    frame('c'),
    frame('f', cstr('stop')),
    frame('F', int32(1), int16(0), int16(0), int16(0)),
    frame('p', cstr('late password')),
  ];

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('length' as const), at: fc.nat(), value: fc.integer({ min: -8, max: 0x7fffffff }) }),
  );

  interface Mutation {
    readonly kind: string;
    readonly at: number;
    readonly bits?: number;
    readonly bytes?: Uint8Array;
    readonly value?: number;
  }

  function mutate(bytes: Buffer, change: Mutation): Buffer {
    const copy = Buffer.from(bytes);
    const at = copy.length === 0 ? 0 : change.at % copy.length;
    switch (change.kind) {
      case 'flip':
        copy[at] = (copy[at] as number) ^ (change.bits as number);
        return copy;
      case 'truncate':
        return copy.subarray(0, at);
      case 'insert':
        return Buffer.concat([copy.subarray(0, at), Buffer.from(change.bytes as Uint8Array), copy.subarray(at)]);
      default:
        if (copy.length >= 5) copy.writeInt32BE(change.value as number, 1);
        return copy;
    }
  }

  function exchange(host: string, port: number, bytes: readonly Buffer[]): Promise<void> {
    return new Promise((resolve) => {
      const socket: Socket = connect({ host, port });
      const done = (): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve();
      };
      const timer = setTimeout(done, 2000);
      socket.on('error', done);
      socket.on('close', done);
      socket.on('data', () => undefined);
      socket.once('connect', () => {
        for (const chunk of bytes) socket.write(chunk);
        socket.end();
      });
    });
  }

  it('never crashes and never disturbs a healthy session', async () => {
    const healthy = new pg.Client(gw.pgConfig(ALICE));
    await healthy.connect();
    let running = true;
    let answers = 0;
    const wrong: unknown[] = [];
    const loop = (async () => {
      while (running) {
        const n = (answers % 3) + 1;
        const result = await healthy.query('select id, item from orders where id = $1', [n]);
        const expected = ['apple', 'pear', 'plum'][n - 1];
        if (result.rows.length !== 1 || result.rows[0].item !== expected) wrong.push(result.rows);
        answers += 1;
      }
    })();

    let frames = 0;
    const token = gw.token(ALICE, 60 * 60 * 1000);
    const login = [startup(ALICE.email as string), frame('p', cstr(token))];
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.boolean(),
          fc.array(fc.tuple(fc.nat({ max: 13 }), fc.option(mutation, { nil: undefined })), { minLength: 1, maxLength: 12 }),
          async (authenticated, plan) => {
            const pieces = valid();
            const sent = plan.map(([index, change]) => {
              const piece = pieces[index] as Buffer;
              return change === undefined ? piece : mutate(piece, change);
            });
            frames += sent.length;
            const prefix = authenticated ? login : [mutate(startup(ALICE.email as string), plan[0]?.[1] ?? { kind: 'flip', at: 9, bits: 1 })];
            await exchange(gw.host, gw.port, [...prefix, ...sent]);
          },
        ),
        { numRuns: 3000, seed: 424242 },
      );
    } finally {
      running = false;
      await loop;
    }
    expect(frames).toBeGreaterThan(15_000);
    expect(wrong).toEqual([]);
    expect(answers).toBeGreaterThan(10);
    expect((await healthy.query('select count(*)::int as n from orders')).rows).toEqual([{ n: 3 }]);
    await healthy.end();
    await waitFor(() => gw.gateway.connectionCount() === 0, 'every fuzzing connection to close', 20_000);
  }, 180_000);
});

describe('200 concurrent sessions', () => {
  it('run statements, close, and leave no socket behind', async () => {
    // Default limits: with 200 clients connecting at once, an early one may wait a while idle.
    const gw = await startPgGateway({ postgres: server });
    try {
      await runSessions(gw);
    } finally {
      await gw.close();
    }
  }, 120_000);
});

/** Opens 200 sessions at once, runs 5 statements on each, closes them, and checks nothing is left. */
async function runSessions(gw: PgGatewayHarness): Promise<void> {
  const sockets = (): number => process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap' || name === 'TLSWrap').length;
  await waitFor(() => gw.gateway.connectionCount() === 0, 'a quiet gateway');
  const before = sockets();
  const clients = Array.from({ length: 200 }, () => new pg.Client(gw.pgConfig(ALICE)));
  await Promise.all(clients.map((client) => client.connect()));
  expect(gw.gateway.sessionCount()).toBe(200);
  expect(await upstreamSessions()).toBe(200);
  const results = await Promise.all(
    clients.map(async (client, i) => {
      const id = (i % 3) + 1;
      let item = '';
      for (let round = 0; round < 5; round++) item = (await client.query('select item from orders where id = $1', [id])).rows[0].item;
      return item;
    }),
  );
  expect(results.filter((item, i) => item !== ['apple', 'pear', 'plum'][i % 3])).toEqual([]);
  await Promise.all(clients.map((client) => client.end()));
  await waitFor(() => gw.gateway.connectionCount() === 0 && gw.gateway.sessionCount() === 0, 'every session to close');
  await waitFor(() => sockets() <= before, 'the sockets to be released');
  let upstream = await upstreamSessions();
  for (let i = 0; i < 100 && upstream > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    upstream = await upstreamSessions();
  }
  expect(upstream).toBe(0);
  const disconnects = await gw.recordsWhere((record) => record.kind === 'pg.disconnect' && record.data['statements'] === 5, 200);
  expect(disconnects.length).toBe(200);
}
