import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openAuditIndex, type AuditIndex, type AuditStore } from '../../../src/audit/index.js';
import type { Logger } from '../../../src/core/index.js';
import { TailHub, type TailAccess, type TailRevocation } from '../../../src/web/tail.js';
import { sampleEvent } from '../../helpers/audit-records.js';
import { storeFixture, testKeys } from '../../helpers/audit-store.js';
import { EventStreamClient } from '../../helpers/event-stream.js';

/**
 * The live tail's access checks against a real file store, its query index and real HTTP
 * streams on 127.0.0.1: each stream's access is decided again before records are flushed to it
 * and on the hub's timer, and a stream that fails the check ends with one `revoked` event.
 */

const fixture = storeFixture(testKeys());
const REVOKED: TailRevocation = { reason: 'access-revoked', message: 'Your access was revoked.', detail: { decision: 'no-matching-allow', rule: null } };

interface LogLine {
  readonly fields: Record<string, unknown>;
  readonly msg: string | undefined;
}

function capturingLogger(lines: LogLine[], bindings: Record<string, unknown> = {}): Logger {
  const log = (first: Record<string, unknown> | string, msg?: string): void => {
    lines.push(typeof first === 'string' ? { fields: bindings, msg: first } : { fields: { ...bindings, ...first }, msg });
  };
  return { trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: (more) => capturingLogger(lines, { ...bindings, ...more }) };
}

/** An access check the test turns off, counting how often the hub asks. */
class Switch implements TailAccess {
  readonly context: Record<string, string>;
  allowed = true;
  checks = 0;

  constructor(user: string) {
    this.context = { user };
  }

  check(): TailRevocation | null {
    this.checks += 1;
    return this.allowed ? null : REVOKED;
  }
}

interface Running {
  readonly store: AuditStore;
  readonly hub: TailHub;
  readonly logs: LogLine[];
  /** Opens a stream of the records after `after` for the caller `access` stands for. */
  open(access: Switch, after: number): Promise<EventStreamClient>;
}

let cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
  await fixture.cleanup();
});

async function start(accessCheckMs: number): Promise<Running> {
  const dir = fixture.newDir();
  const store = await fixture.open(dir);
  await store.append(sampleEvent(0));
  const index: AuditIndex = await openAuditIndex({ dir });
  const logs: LogLine[] = [];
  const hub = new TailHub({ index, store, logger: capturingLogger(logs), pollMs: 20, accessCheckMs, maxSubscribers: 5, maxPerViewer: 2 });
  const streams = new Map<string, { access: Switch; after: number }>();
  const server: Server = createServer((req, res) => {
    const stream = streams.get(req.url ?? '');
    if (stream === undefined) return void res.writeHead(404).end();
    void hub.subscribe(res, {}, stream.after, stream.access, stream.access.context['user'] ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const clients: EventStreamClient[] = [];
  cleanup.push(async () => {
    for (const client of clients) client.close();
    await hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await index.close();
  });
  const { port } = server.address() as AddressInfo;
  return {
    store,
    hub,
    logs,
    async open(access, after) {
      const path = `/tail/${streams.size}`;
      streams.set(path, { access, after });
      const client = await EventStreamClient.open(`http://127.0.0.1:${port}${path}`, {});
      clients.push(client);
      expect(client.status).toBe(200);
      return client;
    },
  };
}

const seqs = (client: EventStreamClient) => client.json<{ seq: number }>('record').map((record) => record.seq);

describe('live tail access checks', () => {
  it('sends a caller revoked by a reload none of the records appended after it, deciding before the flush rather than waiting for the timer', async () => {
    // The timer's check is an hour away: only the check before a flush can end the stream.
    const t = await start(3_600_000);
    const revoked = new Switch('victor@example.com');
    const kept = new Switch('carol@example.com');
    const victor = await t.open(revoked, 0);
    const carol = await t.open(kept, 0);
    const { seq: before } = await t.store.append(sampleEvent(1));
    await victor.until((c) => seqs(c).includes(before), `record ${before}`);
    await carol.until((c) => seqs(c).includes(before), `record ${before}`);

    revoked.allowed = false;
    const after = await Promise.all([2, 3, 4].map(async (i) => (await t.store.append(sampleEvent(i))).seq));
    await victor.untilEnded();
    expect(victor.json('revoked')).toEqual([{ reason: 'access-revoked', message: 'Your access was revoked.' }]);
    expect(victor.events().at(-1)?.event).toBe('revoked');
    expect(seqs(victor)).toEqual([before]);

    await carol.until((c) => after.every((seq) => seqs(c).includes(seq)), 'the records appended after the reload');
    expect(carol.ended).toBe(false);
    expect(carol.json('revoked')).toEqual([]);

    // The decision's detail goes to the operational log; the page gets the reason and message only.
    expect(t.logs).toContainEqual({ fields: { user: 'victor@example.com', reason: 'access-revoked', decision: 'no-matching-allow', rule: null }, msg: 'audit tail ended: access-revoked' });
  });

  it('decides once per flush of records, not once per record', async () => {
    const t = await start(3_600_000);
    const access = new Switch('carol@example.com');
    const carol = await t.open(access, 0);
    const appended = await Promise.all(Array.from({ length: 40 }, async (_, i) => (await t.store.append(sampleEvent(i + 1))).seq));
    await carol.until((c) => appended.every((seq) => seqs(c).includes(seq)), 'all 40 records');
    expect(access.checks).toBeGreaterThan(0);
    expect(access.checks).toBeLessThan(appended.length);
  });

  it('ends an idle stream whose caller lost access on the periodic check, with no record arriving', async () => {
    const t = await start(50);
    const access = new Switch('victor@example.com');
    const victor = await t.open(access, 0);
    await victor.until((c) => c.text.startsWith('retry: 2000\n\n'), 'the stream preamble');
    access.allowed = false;
    await victor.untilEnded();
    expect(victor.events()).toEqual([{ event: 'revoked', id: undefined, data: JSON.stringify({ reason: 'access-revoked', message: 'Your access was revoked.' }) }]);
    // The hub forgot the stream: a new one can open up to the limit and still gets records.
    const carol = await t.open(new Switch('carol@example.com'), 0);
    const { seq } = await t.store.append(sampleEvent(5));
    await carol.until((c) => seqs(c).includes(seq), `record ${seq}`);
  });

  it('ends a stream revoked while it catches up on the records it missed, sending none of them', async () => {
    const t = await start(3_600_000);
    const kept = new Switch('carol@example.com');
    const carol = await t.open(kept, 0);
    const missed = await Promise.all([1, 2, 3].map(async (i) => (await t.store.append(sampleEvent(i))).seq));
    await carol.until((c) => missed.every((seq) => seqs(c).includes(seq)), 'the new records');
    // A reconnect after seq 0, by a caller denied since: the catch-up flush is checked too.
    const denied = new Switch('victor@example.com');
    denied.allowed = false;
    const victor = await t.open(denied, 0);
    await victor.untilEnded();
    expect(seqs(victor)).toEqual([]);
    expect(victor.json('revoked')).toHaveLength(1);
  });
});

/** Streams join the hub once caught up; how long a slot change may take on a busy machine. */
const SLOT_WAIT = { timeout: 10_000, interval: 20 };

describe('live tail slots', () => {
  it('lets one viewer hold only their share of the streams, and the hub only its total', async () => {
    const t = await start(3_600_000);
    const carol = new Switch('carol@example.com');
    await t.open(carol, 0);
    await vi.waitFor(() => expect(t.hub.refusal('carol@example.com')).toBeNull(), SLOT_WAIT);
    const second = await t.open(carol, 0);
    await vi.waitFor(() => expect(t.hub.refusal('carol@example.com')).toBe('viewer-limit'), SLOT_WAIT);
    expect(t.hub.refusal('dave@example.com')).toBeNull();
    for (const user of ['dave@example.com', 'erin@example.com', 'frank@example.com']) await t.open(new Switch(user), 0);
    await vi.waitFor(() => expect(t.hub.refusal('grace@example.com')).toBe('full'), SLOT_WAIT);
    second.close();
    await vi.waitFor(() => expect(t.hub.refusal('grace@example.com')).toBeNull(), SLOT_WAIT);
    expect(t.hub.refusal('carol@example.com')).toBeNull();
  });
});
