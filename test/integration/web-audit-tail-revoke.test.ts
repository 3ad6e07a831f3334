/**
 * The live audit view of a reviewer whose access ends while it is open. First `tollgate serve` as
 * a real child process (real IdP, upstream and audit store), streams opened with bearer tokens,
 * and a config reload by SIGHUP that takes the reviewer's `audit.view` away: the stream must end
 * with a `revoked` event before it carries any record appended after the reload, while a
 * reviewer who keeps access goes on receiving them. Then the gateway harness on a manual clock,
 * where a session and a bearer token expire while their streams are open, a session signs out,
 * and a session comes due for refresh (the gateway re-reads its groups at the IdP).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/core/index.js';
import { isOutcome } from '../../src/web/record-view.js';
import { EventStreamClient } from '../helpers/event-stream.js';
import { ALICE, CLIENT_SECRET, TestUpstream, bearerFor, readAuditRecords } from '../helpers/http-gateway.js';
import { startOidcIdp, type IdpUser, type TestIdp } from '../helpers/oidc-idp.js';
import { httpResourceYaml, identityYaml, serveEnv, serverYaml, startServeProcess, type ServeEnv, type ServeProcess } from '../helpers/serve-process.js';
import { CAROL, REVIEWER_ROLES_YAML, VICTOR, startWebAudit, type WebAuditHarness } from '../helpers/web-audit.js';

interface RecordEvent {
  readonly seq: number;
  readonly html: string;
}

let idp: TestIdp;
let upstream: TestUpstream;
let dir: string;
let auditDir: string;
let configFile: string;
let env: ServeEnv;
let gateway: ServeProcess;
const streams: EventStreamClient[] = [];

/** The config; `auditors: false` is the edit that takes victor's `audit.view` away. */
function configText(auditors: boolean): string {
  return `
${serverYaml()}${identityYaml(idp.issuer)}resources:
${httpResourceYaml('app', upstream.origin)}roles:
  engineer:
    allow:
      - resource: app
        methods: [GET]
        paths: ["/app/**"]
${REVIEWER_ROLES_YAML}grants:
  - role: engineer
    groups: [engineering]
  - role: security
    groups: [security]
${auditors ? '  - role: auditor\n    groups: [auditors]\n' : ''}audit:
  dir: ${auditDir}
  log_id: test.tollgate/tail-revoke
  signing_key: \${env:AUDIT_KEY}
`;
}

/** Replaces the config file the way editors and config management do: a new file renamed over it. */
function writeConfig(auditors: boolean): void {
  writeFileSync(`${configFile}.new`, configText(auditors));
  renameSync(`${configFile}.new`, configFile);
}

async function openTail(token: string, after: number): Promise<EventStreamClient> {
  const stream = await EventStreamClient.open(`${gateway.httpBase}/audit/tail?after=${after}`, { authorization: `Bearer ${token}` });
  streams.push(stream);
  return stream;
}

async function getApp(token: string, path: string): Promise<number> {
  const response = await fetch(`${gateway.httpBase}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  await response.arrayBuffer();
  return response.status;
}

const records = (stream: EventStreamClient) => stream.json<RecordEvent>('record');
const hasPath = (stream: EventStreamClient, path: string) => records(stream).some((record) => record.html.includes(`GET ${path}<`));

describe('live audit view: access revoked by a config reload', () => {
  beforeAll(async () => {
    idp = await startOidcIdp({ clients: [{ clientId: 'tollgate', clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1:8080/_tollgate/callback'] }], users: [ALICE, CAROL, VICTOR] });
    upstream = new TestUpstream();
    await upstream.listen();
    dir = mkdtempSync(join(tmpdir(), 'tollgate-tail-revoke-it-'));
    auditDir = join(dir, 'audit');
    configFile = join(dir, 'tollgate.yaml');
    env = serveEnv('tail-revoke');
    writeConfig(true);

    gateway = await startServeProcess(dir, env);
  }, 120_000);

  afterAll(async () => {
    for (const stream of streams) stream.close();
    await gateway?.stop();
    await upstream?.close();
    await idp?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('ends the stream of a reviewer whose audit.view a reload took away, before any record appended after it, and keeps the other reviewer live', async () => {
    const [alice, victorToken, carolToken] = await Promise.all([bearerFor(idp, ALICE), bearerFor(idp, VICTOR), bearerFor(idp, CAROL)]);
    const newest = readAuditRecords(auditDir).at(-1)?.seq ?? -1;
    const victor = await openTail(victorToken, newest);
    const carol = await openTail(carolToken, newest);
    expect([victor.status, carol.status]).toEqual([200, 200]);

    // Both streams are live before the reload.
    expect(await getApp(alice, '/app/before-reload')).toBe(200);
    await victor.until((s) => hasPath(s, '/app/before-reload'), "victor's record of /app/before-reload");
    await carol.until((s) => hasPath(s, '/app/before-reload'), "carol's record of /app/before-reload");

    writeConfig(false);
    const from = gateway.logs.length;
    gateway.child.kill('SIGHUP');
    const reloaded = await gateway.waitForLog(from, (line) => line['component'] === 'config-reload' && line['trigger'] === 'SIGHUP');
    expect(reloaded).toMatchObject({ changed: ['grants'] });
    const reloadSeq = reloaded['seq'] as number;
    expect(typeof reloadSeq).toBe('number');

    for (const path of ['/app/after-reload-1', '/app/after-reload-2']) expect(await getApp(alice, path)).toBe(200);

    await victor.untilEnded();
    const revoked = victor.json<{ reason: string; message: string }>('revoked');
    expect(revoked).toEqual([{ reason: 'access-revoked', message: expect.stringContaining('revoked') }]);
    expect(victor.events().at(-1)?.event).toBe('revoked');
    expect(records(victor).filter((record) => record.seq > reloadSeq)).toEqual([]);
    expect(victor.text).not.toContain('/app/after-reload');

    await carol.until((s) => hasPath(s, '/app/after-reload-1') && hasPath(s, '/app/after-reload-2'), "carol's records appended after the reload");
    expect(carol.ended).toBe(false);
    expect(carol.json('revoked')).toEqual([]);

    const line = await gateway.waitForLog(from, (l) => l.msg === 'audit tail ended: access-revoked');
    expect(line).toMatchObject({ component: 'audit-pages', user: VICTOR.email, reason: 'access-revoked', decision: 'no-matching-allow' });
    expect(JSON.stringify(line)).not.toContain(victorToken);

    // The EventSource's reconnect is refused by the permission check the page makes.
    const again = await fetch(`${gateway.httpBase}/audit/tail?after=${newest}`, { headers: { authorization: `Bearer ${victorToken}`, accept: 'text/event-stream' } });
    expect(again.status).toBe(403);
    await again.arrayBuffer();
  });
});

describe('live audit view: the login ends while it is open', () => {
  const HOUR = 3_600_000;
  const clock = manualClock(Date.now());
  let w: WebAuditHarness;

  beforeAll(async () => {
    w = await startWebAudit({ clock, tailAccessCheckMs: 50 });
  }, 60_000);

  afterAll(async () => {
    for (const stream of streams) stream.close();
    await w?.close();
  });

  it('ends a bearer stream when its token expires and a session stream when its session expires, each saying why', async () => {
    const { browser: carol } = await w.h.login(CAROL);
    const { browser: alice } = await w.h.login(ALICE);
    const token = await bearerFor(w.h.idp, VICTOR, { exp: Math.floor(clock.now() / 1000) + 120 });
    const newest = w.h.records().at(-1)?.seq ?? -1;
    const tail = `${w.h.url}/audit/tail?after=${newest}`;
    const session = await EventStreamClient.open(tail, { cookie: carol.cookieHeader(w.h.url) });
    const bearer = await EventStreamClient.open(tail, { authorization: `Bearer ${token}` });
    streams.push(session, bearer);
    expect([session.status, bearer.status]).toEqual([200, 200]);
    expect((await alice.request(`${w.h.url}/app/while-signed-in`)).status).toBe(200);
    await bearer.until((s) => hasPath(s, '/app/while-signed-in'), 'the bearer stream\'s record');

    // Past the token's exp, within the session: only the idle bearer stream ends.
    clock.advance(121_000);
    await bearer.untilEnded();
    expect(bearer.json('revoked')).toEqual([{ reason: 'token-expired', message: expect.stringContaining('bearer token has expired') }]);
    expect((await alice.request(`${w.h.url}/app/token-expired`)).status).toBe(200);
    await session.until((s) => hasPath(s, '/app/token-expired'), 'the session stream\'s record after the token expired');
    expect(bearer.text).not.toContain('/app/token-expired');

    // Past the session's absolute end (identity.session.ttl, 8 h by default).
    clock.advance(8 * HOUR);
    await session.untilEnded();
    expect(session.json('revoked')).toEqual([{ reason: 'session-expired', message: expect.stringContaining('sign in again') }]);
    expect(session.events().at(-1)?.event).toBe('revoked');
  });
});

describe('live audit view: the session is signed out or its groups change at the IdP', () => {
  const HOUR = 3_600_000;
  /** The IdP's access tokens live an hour; the gateway refreshes 30 s before. */
  const PAST_REFRESH = HOUR - 29_000;
  const clock = manualClock(Date.now());
  /** Her groups at the IdP; the test takes `auditors` away. */
  const danaGroups = ['auditors'];
  const DANA: IdpUser = { email: 'dana@example.com', password: 'dana', groups: danaGroups };
  let w: WebAuditHarness;

  beforeAll(async () => {
    w = await startWebAudit({ clock, tailAccessCheckMs: 50, users: [DANA] });
  }, 60_000);

  afterAll(async () => {
    for (const stream of streams) stream.close();
    await w?.close();
  });

  async function openSessionTail(cookie: string, after: number, lastEventId?: number): Promise<EventStreamClient> {
    const stream = await EventStreamClient.open(`${w.h.url}/audit/tail?after=${after}`, { cookie, ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }) });
    streams.push(stream);
    return stream;
  }

  it('ends a session stream with revoked/logged-out when that session signs out, before the records that follow', async () => {
    const { browser: carol } = await w.h.login(CAROL);
    const { browser: alice } = await w.h.login(ALICE);
    const newest = w.h.records().at(-1)?.seq ?? -1;
    const stream = await openSessionTail(carol.cookieHeader(w.h.url), newest);
    expect(stream.status).toBe(200);
    expect((await alice.request(`${w.h.url}/app/before-logout`)).status).toBe(200);
    await stream.until((s) => hasPath(s, '/app/before-logout'), 'the record before the logout');

    expect((await carol.request(`${w.h.url}/_tollgate/logout`, { method: 'POST', body: new URLSearchParams() })).status).toBe(302);
    const logoutSeq = w.h.records().findLast((record) => record.kind === 'auth.logout')?.seq;
    expect(logoutSeq).toBeGreaterThan(newest);
    expect((await alice.request(`${w.h.url}/app/after-logout`)).status).toBe(200);

    await stream.untilEnded();
    expect(stream.json('revoked')).toEqual([{ reason: 'logged-out', message: expect.stringContaining('signed out') }]);
    expect(stream.events().at(-1)?.event).toBe('revoked');
    expect(records(stream).filter((record) => record.seq >= logoutSeq!)).toEqual([]);
    expect(stream.text).not.toContain('/app/after-logout');
  });

  it('ends a session stream with no event when the session is due for refresh; the reconnect resumes after Last-Event-ID, or is refused once the IdP took the group away', async () => {
    const { browser: dana } = await w.h.login(DANA);
    const { browser: alice } = await w.h.login(ALICE);
    const newest = w.h.records().at(-1)?.seq ?? -1;
    const first = await openSessionTail(dana.cookieHeader(w.h.url), newest);
    expect(first.status).toBe(200);
    expect((await alice.request(`${w.h.url}/app/before-refresh`)).status).toBe(200);
    await first.until((s) => hasPath(s, '/app/before-refresh'), 'the record before the refresh moment');

    // Past the refresh moment, well within the session's 8 h: the stream ends plainly.
    clock.advance(PAST_REFRESH);
    await first.untilEnded();
    expect(first.json('revoked')).toEqual([]);
    expect((await alice.request(`${w.h.url}/app/between`)).status).toBe(200);

    // The EventSource's reconnect: the gateway refreshes the session and the view goes on.
    const lastSeen = records(first).at(-1)!.seq;
    const second = await openSessionTail(dana.cookieHeader(w.h.url), newest, lastSeen);
    expect(second.status).toBe(200);
    expect(second.setCookies).toEqual([expect.stringMatching(/^tollgate_session=v1\./)]);
    await second.until((s) => hasPath(s, '/app/between'), 'the record appended while reconnecting');
    const delivered = [...records(first), ...records(second)].map((record) => record.seq);
    const upTo = delivered.at(-1)!;
    const expected = w.h
      .records()
      .filter((record) => record.seq > newest && record.seq <= upTo && !isOutcome(record))
      .map((record) => record.seq);
    expect(delivered).toEqual(expected);

    // The IdP takes dana out of `auditors`; her open view lasts until the next refresh moment.
    danaGroups.length = 0;
    const refreshed = second.setCookies[0]!;
    dana.setCookie(w.h.url, 'tollgate_session', refreshed.slice('tollgate_session='.length, refreshed.indexOf(';')));
    clock.advance(PAST_REFRESH);
    await second.untilEnded();
    expect(second.json('revoked')).toEqual([]);
    const refused = await fetch(`${w.h.url}/audit/tail?after=${newest}`, { headers: { cookie: dana.cookieHeader(w.h.url), accept: 'text/event-stream', 'last-event-id': String(records(second).at(-1)!.seq) } });
    expect(refused.status).toBe(403);
    await refused.arrayBuffer();
  });
});
