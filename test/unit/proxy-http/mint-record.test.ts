import { request } from 'node:http';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditStore } from '../../../src/audit/index.js';
import { manualClock, type Principal } from '../../../src/core/index.js';
import { DbTokens } from '../../../src/identity/index.js';
import {
  MINT_RECORD_MAX_BODY_BYTES,
  MINT_RECORD_METRIC,
  MINT_RECORD_PATH,
  MINT_RECORD_PROOF_HEADER,
  createMintRecorder,
  startAdminServer,
  type AdminServer,
  type MintRecordRequest,
} from '../../../src/proxy/http/index.js';
import { FaultyFs, readLog, storeFixture, testKeys } from '../../helpers/audit-store.js';

const KEY = 'mint-record-db-token-key-0123456789abcdef';
const LOG_ID = 'test.tollgate/mint-record';
const HOUR = 3_600_000;
const ALICE: Principal = { subject: 'Alice@Example.com', email: 'alice@example.com', groups: ['engineering'] };
const MINTED_BY = { os_user: 'ops', host: 'bastion-1', pid: 4242 };

const keys = testKeys();
const stores = storeFixture(keys);
let admin: AdminServer | null = null;

afterEach(async () => {
  await admin?.close();
  admin = null;
  await stores.cleanup();
});

interface Setup {
  readonly url: string;
  readonly dir: string;
  readonly store: AuditStore;
  readonly registry: Registry;
  readonly clock: ReturnType<typeof manualClock>;
  readonly tokens: DbTokens;
  readonly faults: FaultyFs;
}

/** A real file store and a real admin listener on port 0 with the endpoint mounted. */
async function setup(): Promise<Setup> {
  const dir = stores.newDir();
  const faults = new FaultyFs();
  const store = await stores.open(dir, { fs: faults.fs, appendTimeoutMs: 500, retry: { initialMs: 20, maxMs: 50 } });
  const clock = manualClock(Date.UTC(2026, 10, 27, 3, 0, 0));
  const tokens = new DbTokens({ signingKey: KEY, ttlMs: HOUR, maxTtlMs: 12 * HOUR }, clock);
  const registry = new Registry();
  admin = await startAdminServer({
    listen: '127.0.0.1:0',
    registry,
    readiness: () => [],
    mintRecorder: createMintRecorder({ tokens, audit: store, logId: LOG_ID, registry, clock }),
  });
  return { url: `${admin.url}${MINT_RECORD_PATH}`, dir, store, registry, clock, tokens, faults };
}

/** Mints a token as the CLI does, and the facts the CLI sends for it (never the token). */
function mint(tokens: DbTokens, ttlMs = 15 * 60_000): { token: string; tokenId: string; facts: Omit<MintRecordRequest, 'minted_by'> } {
  const issued = tokens.issueDbToken(ALICE, ttlMs);
  if (!issued.ok) throw new Error(issued.reason);
  const facts = {
    token_id: issued.tokenId,
    principal: { subject: ALICE.subject, email: ALICE.email ?? '', groups: [...ALICE.groups] },
    issued_at: new Date(issued.issuedAt).toISOString(),
    expires_at: new Date(issued.expiresAt).toISOString(),
  };
  return { token: issued.token, tokenId: issued.tokenId, facts };
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown> | null;
}

/** Where to post, and the gateway's own database tokens. */
type Endpoint = Pick<Setup, 'url' | 'tokens'>;

/** Posts `body`, proved by `signer`'s key as `tollgate token mint` does (the gateway's key unless said otherwise). */
async function post(s: Endpoint, body: string | null, contentType: string | null = 'application/json', signer: DbTokens | null = s.tokens): Promise<Answer> {
  const headers: Record<string, string> = contentType === null ? {} : { 'content-type': contentType };
  if (signer !== null) headers[MINT_RECORD_PROOF_HEADER] = signer.proveKeyHolder(body ?? '');
  const response = await fetch(s.url, { method: 'POST', headers, ...(body === null ? {} : { body }) });
  const text = await response.text();
  let parsed: Record<string, unknown> | null = null;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = null;
  }
  return { status: response.status, body: parsed };
}

function postFacts(s: Endpoint, facts: object, extra: Record<string, unknown> = {}, signer: DbTokens | null = s.tokens): Promise<Answer> {
  return post(s, JSON.stringify({ ...facts, minted_by: MINTED_BY, ...extra }), 'application/json', signer);
}

async function tokenRecords(s: Setup): Promise<Record<string, unknown>[]> {
  await s.store.close();
  return readLog(s.dir).records.filter((record) => record.kind === 'token.issued') as unknown as Record<string, unknown>[];
}

describe('POST /tokens/issued on the admin listener', () => {
  it('records token.issued from the posted facts, durable, and answers 201 with its seq and log', async () => {
    const s = await setup();
    const { tokenId, facts } = mint(s.tokens);
    const answer = await postFacts(s, facts, { reason: 'nightly export' });
    expect(answer).toEqual({ status: 201, body: { seq: 0, token_id: tokenId, log_id: LOG_ID, pid: process.pid } });
    const records = await tokenRecords(s);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      seq: 0,
      principal: { subject: 'Alice@Example.com', email: 'alice@example.com', groups: ['engineering'] },
      data: {
        method: 'cli',
        token_id: tokenId,
        issued_at: '2026-11-27T03:00:00.000Z',
        expires_at: '2026-11-27T03:15:00.000Z',
        minted_by: MINTED_BY,
        reason: 'nightly export',
        via: 'admin-listener',
        remote: '127.0.0.1',
      },
    });
  });

  it('refuses an expired token, a stale one and impossible times, recording nothing', async () => {
    const s = await setup();
    const short = mint(s.tokens, 5_000);
    const old = mint(s.tokens, 10 * 60_000);
    const backwards = mint(s.tokens);
    s.clock.advance(6_000);
    expect(await postFacts(s, short.facts)).toMatchObject({ status: 403, body: { error: 'expired' } });
    expect(await postFacts(s, { ...backwards.facts, expires_at: backwards.facts.issued_at })).toMatchObject({ status: 400, body: { error: 'bad-request' } });
    s.clock.advance(2 * 60_000);
    // Still valid for minutes, but not freshly minted: the endpoint is for tokens minted just now.
    expect(await postFacts(s, old.facts)).toMatchObject({ status: 403, body: { error: 'stale' } });
    expect(await tokenRecords(s)).toEqual([]);
  });

  it("refuses a request without proof of the gateway's key, whatever it says", async () => {
    const s = await setup();
    const other = new DbTokens({ signingKey: 'another-db-token-key-0123456789abcdef', ttlMs: HOUR, maxTtlMs: HOUR }, s.clock);
    // The facts of a real token, as anyone who holds one of their own could write them.
    const { facts } = mint(s.tokens);
    expect(await postFacts(s, facts, {}, null)).toMatchObject({ status: 403, body: { error: 'bad-proof' } });
    expect(await postFacts(s, facts, {}, other)).toMatchObject({ status: 403, body: { error: 'bad-proof' } });
    // A proof of another body does not carry over.
    const proof = s.tokens.proveKeyHolder(JSON.stringify({ ...facts, minted_by: MINTED_BY }));
    const tampered = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [MINT_RECORD_PROOF_HEADER]: proof },
      body: JSON.stringify({ ...facts, minted_by: { ...MINTED_BY, os_user: 'root' } }),
    });
    expect(tampered.status).toBe(403);
    expect(await tokenRecords(s)).toEqual([]);
  });

  it('records a token id once: a replay, even a concurrent one, is refused', async () => {
    const s = await setup();
    const { facts } = mint(s.tokens);
    const answers = await Promise.all([postFacts(s, facts), postFacts(s, facts)]);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 403]);
    expect(answers.find((a) => a.status === 403)?.body).toMatchObject({ error: 'replayed' });
    expect(await postFacts(s, facts, { reason: 'again' })).toMatchObject({ status: 403, body: { error: 'replayed' } });
    expect(await tokenRecords(s)).toHaveLength(1);
  });

  it('refuses a missing, oversized, non-JSON or misshapen body and a wrong content type, recording nothing', async () => {
    const s = await setup();
    const { facts } = mint(s.tokens);
    expect(await post(s, null)).toMatchObject({ status: 400, body: { error: 'bad-request' } });
    expect(await post(s, '{"token":')).toMatchObject({ status: 400, body: { error: 'bad-request' } });
    expect(await post(s, JSON.stringify({ token_id: facts.token_id }))).toMatchObject({ status: 400, body: { error: 'bad-request' } });
    expect(await postFacts(s, facts, { extra: 1 })).toMatchObject({ status: 400, body: { error: 'bad-request' } });
    const padded = JSON.stringify({ ...facts, minted_by: MINTED_BY, reason: 'x'.repeat(MINT_RECORD_MAX_BODY_BYTES) });
    expect(await post(s, padded)).toMatchObject({ status: 413, body: { error: 'too-large' } });
    expect(await post(s, JSON.stringify({ ...facts, minted_by: MINTED_BY }), 'text/plain')).toMatchObject({ status: 415, body: { error: 'unsupported-media-type' } });
    expect(await post(s, JSON.stringify({ ...facts, minted_by: MINTED_BY }), null)).toMatchObject({ status: 415 });
    expect((await fetch(s.url)).status).toBe(405);
    // None of these spent the token: it is still recorded once when sent properly.
    expect((await postFacts(s, facts)).status).toBe(201);
    expect(await tokenRecords(s)).toHaveLength(1);
  });

  it('refuses a body that streams past the limit without a declared length', async () => {
    const s = await setup();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(s.url, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('{"token":"');
      req.write('a'.repeat(MINT_RECORD_MAX_BODY_BYTES));
      req.end('"}');
    });
    expect(status).toBe(413);
    expect(await tokenRecords(s)).toEqual([]);
  });

  it('answers 503 when the record cannot be made durable, and takes the same token once the store recovers', async () => {
    const s = await setup();
    const { facts } = mint(s.tokens);
    s.faults.fail('writev', 'ENOSPC', /\.seg$/);
    expect(await postFacts(s, facts)).toMatchObject({ status: 503, body: { error: 'audit-unavailable' } });
    s.faults.clear();
    await expect.poll(async () => (await postFacts(s, facts)).status, { timeout: 10_000, interval: 100 }).toBe(201);
    const records = await tokenRecords(s);
    expect(records).toHaveLength(1);
  });

  it('counts requests by outcome', async () => {
    const s = await setup();
    await postFacts(s, mint(s.tokens).facts);
    await post(s, 'nope');
    const text = await s.registry.metrics();
    expect(text).toContain(`# TYPE ${MINT_RECORD_METRIC} counter`);
    expect(text).toContain(`${MINT_RECORD_METRIC}{outcome="recorded"} 1`);
    expect(text).toContain(`${MINT_RECORD_METRIC}{outcome="bad-request"} 1`);
  });

  it('refuses everything with 503 once closed for shutdown', async () => {
    const dir = stores.newDir();
    const store = await stores.open(dir);
    const tokens = new DbTokens({ signingKey: KEY, ttlMs: HOUR, maxTtlMs: HOUR }, { now: () => Date.now() });
    const recorder = createMintRecorder({ tokens, audit: store, logId: LOG_ID, registry: new Registry() });
    admin = await startAdminServer({ listen: '127.0.0.1:0', registry: new Registry(), readiness: () => [], mintRecorder: recorder });
    recorder.close();
    expect(await postFacts({ url: `${admin.url}${MINT_RECORD_PATH}`, tokens }, mint(tokens).facts)).toMatchObject({ status: 503, body: { error: 'closed' } });
    await store.close();
    expect(readLog(dir).records).toEqual([]);
  });
});
