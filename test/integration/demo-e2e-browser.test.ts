import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import pg from 'pg';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_USERS } from '../../src/demo/index.js';
import { frameAtSeq, recordBytes } from '../helpers/audit-files.js';
import { launchChromium, watchErrors } from '../helpers/chromium.js';
import { demoRoot, freeDemoPortBase, removeDemoRoot, startDemo, type RunningDemo } from '../helpers/demo.js';

/**
 * The demo end to end in a real browser (Debian's chromium driven by playwright-core), as its
 * three users meet it: alice signs in through the demo IdP's own form, uses the app, takes a
 * database token from /db and runs a read and a denied write with `pg` over TLS; carol finds that
 * Postgres session in /audit, sees both decisions and proves a record in the browser; alice may
 * not open /audit; and a record changed on disk turns the chain banner red, naming the seq.
 */

const READ_SQL = 'SELECT id, full_name FROM customers ORDER BY id LIMIT 3';
const WRITE_SQL = "INSERT INTO customers (full_name, email, country, city, created_at) VALUES ('Mallory', 'mallory@example.net', 'DE', 'Berlin', now())";

function demoUser(name: string): { email: string; password: string } {
  const user = DEMO_USERS.find((candidate) => candidate.username === name);
  if (user === undefined) throw new Error(`no demo user ${name}`);
  return { email: user.email, password: user.password };
}

const alice = demoUser('alice');
const carol = demoUser('carol');

/** Fills the demo IdP's sign-in form (not the one-click forms of its user table) and submits it. */
async function signIn(page: Page, idp: string, user: { email: string; password: string }): Promise<void> {
  await page.waitForURL((url) => url.origin === idp);
  await page.fill('#login', user.email);
  await page.fill('#password', user.password);
  await page.click('form.card button[type=submit]');
}

/** The size of the checkpoint the chain banner says is verified, or 0 while it says otherwise. */
async function verifiedSize(page: Page): Promise<number> {
  const title = (await page.locator('.chain strong').textContent()) ?? '';
  const match = /^Audit log verified up to checkpoint ([\d,]+)$/.exec(title);
  return match === null ? 0 : Number(match[1]?.replaceAll(',', ''));
}

/**
 * Changes one byte of record `seq` in its segment file, in place, and rewrites the frame's CRC to
 * match, so that framing passes and only the hash chain can tell. Both writes are positional and
 * keep the file's length: the gateway, still appending to the same segment, is not disturbed.
 */
async function tamperInPlace(auditDir: string, seq: number, find: string, replace: string): Promise<void> {
  if (Buffer.byteLength(find) !== Buffer.byteLength(replace) || find === replace) throw new Error('the edit must keep the length and change something');
  const frame = frameAtSeq(auditDir, seq);
  const record = Buffer.from(recordBytes(auditDir, seq));
  const at = record.indexOf(find);
  if (at < 0) throw new Error(`record ${seq} has no ${find}`);
  record.write(replace, at);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(record) >>> 0);
  const file = await open(frame.path, 'r+');
  try {
    await file.write(record, at, Buffer.byteLength(replace), frame.offset + 4 + at);
    await file.write(crc, 0, 4, frame.offset + 4 + frame.length);
    await file.datasync();
  } finally {
    await file.close();
  }
}

describe('the demo in a browser', () => {
  let root: string;
  let demo: RunningDemo;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  let web: string;
  let idp: string;
  let readSeq: number;
  let writeSeq: number;

  beforeAll(async () => {
    root = demoRoot('tollgate-e2e-');
    demo = await startDemo(root, await freeDemoPortBase());
    web = demo.stack.urls.web;
    idp = new URL(demo.stack.urls.idp).origin;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await demo?.close();
    removeDemoRoot(root);
  });

  async function freshPage(): Promise<{ page: Page; errors: string[] }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    return { page, errors: watchErrors(page) };
  }

  it('alice signs in through the IdP form, uses the app, and runs a read and a denied write with a /db token', async () => {
    const { page, errors } = await freshPage();
    await page.goto(`${web}/app/`);
    await signIn(page, idp, alice);
    await page.waitForURL(`${web}/app/`);
    const appPage = (await page.textContent('body')) ?? '';
    expect(appPage).toContain(alice.email);
    // The app verified the gateway's signed assertion against the gateway's JWKS.
    expect(appPage).toContain('Verified');

    const db = await page.goto(`${web}/db`);
    expect(db?.status()).toBe(200);
    const token = ((await page.locator('h2:has-text("Your database token") + p + pre').textContent()) ?? '').trim();
    expect(token.length).toBeGreaterThan(20);

    const client = new pg.Client({
      host: '127.0.0.1',
      port: demo.stack.ports.postgres,
      database: 'shop',
      user: alice.email,
      password: token,
      // sslmode=require: TLS, the demo's self-signed certificate not checked.
      ssl: { rejectUnauthorized: false },
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const read = await client.query<{ id: string; full_name: string }>(READ_SQL);
      expect(read.rows.map((row) => row.id)).toEqual(['1', '2', '3']);
      expect(read.rows.every((row) => row.full_name.length > 0)).toBe(true);
      const denied = await client.query(WRITE_SQL).then(
        () => null,
        (error: { code?: string; message: string }) => error,
      );
      expect(denied?.code).toBe('42501');
      // The session goes on after a denial.
      expect((await client.query('SELECT count(*)::int AS n FROM orders')).rows[0]?.n).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
    expect(errors).toEqual([]);
  });

  it('carol finds that session with the user filter, sees both decisions, and proves a record in the browser', async () => {
    const { page, errors } = await freshPage();
    await page.goto(`${web}/audit`);
    await signIn(page, idp, carol);
    await page.waitForURL(`${web}/audit`);

    await page.fill('form.filters input[name=user]', alice.email);
    await page.click('form.filters button[type=submit]');
    await page.waitForURL((url) => url.pathname === '/audit' && url.searchParams.get('user') === alice.email);
    // Alice has two sessions: the browser login (app) and the Postgres connection (shop).
    const rows = page.locator('table tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const pgSession = rows.filter({ has: page.locator('td', { hasText: /^shop$/ }) });
    expect(await pgSession.count()).toBe(1);
    expect(await pgSession.locator('th a').textContent()).toBe(alice.email);
    await pgSession.locator('th a').click();
    await page.waitForURL((url) => url.pathname.startsWith('/audit/sessions/'));
    expect(await page.locator('h1').textContent()).toBe(`Session of ${alice.email}`);

    const statements = page.locator('tr[data-seq]', { hasText: 'pg.query' });
    const read = statements.filter({ hasText: 'LIMIT 3' });
    const write = statements.filter({ hasText: 'Mallory' });
    expect(await read.count()).toBe(1);
    expect(await write.count()).toBe(1);
    expect(await read.locator('.effect').textContent()).toBe('allow');
    expect(await read.locator('td.code').first().textContent()).toBe('engineer.allow[1]');
    expect(await read.locator('td[data-col=result]').textContent()).toContain('3 rows');
    expect(await write.locator('.effect').textContent()).toBe('deny');
    expect(await write.locator('td.code').first().textContent()).toBe('default deny');
    expect(await write.locator('td.code').nth(1).textContent()).toBe('no-matching-allow');
    expect(await write.locator('td[data-col=result]').textContent()).toBe('not forwarded');
    readSeq = Number(await read.getAttribute('data-seq'));
    writeSeq = Number(await write.getAttribute('data-seq'));
    expect(writeSeq).toBeGreaterThan(readSeq);

    // A proof needs a signed checkpoint that covers the record: the gateway signs one every second.
    await expect.poll(async () => (await page.reload(), verifiedSize(page)), { timeout: 20_000, interval: 500 }).toBeGreaterThan(writeSeq);
    const prove = page.locator(`tr[data-seq="${readSeq}"] button[data-prove]`);
    await prove.click();
    const output = page.locator(`#proof-${readSeq}`);
    await expect.poll(() => output.textContent(), { timeout: 10_000 }).toMatch(/^verified: /);
    const shown = /^verified: record (\d+) is in the log of size (\d+) signed by (\S+)$/.exec((await output.textContent()) ?? '');
    expect(shown?.[1]).toBe(String(readSeq));
    expect(Number(shown?.[2])).toBeGreaterThan(writeSeq);
    // Signed by the demo's audit key: `name+keyid` of the verifier key the demo wrote.
    expect(shown?.[3]).toBe(readFileSync(demo.stack.auditVerifierKeyFile, 'utf8').trim().split('+').slice(0, 2).join('+'));
    expect(await output.getAttribute('class')).toContain('proof-ok');
    expect(errors).toEqual([]);
  });

  it('alice may not open /audit', async () => {
    const { page } = await freshPage();
    await page.goto(`${web}/app/`);
    await signIn(page, idp, alice);
    await page.waitForURL(`${web}/app/`);
    const audit = await page.goto(`${web}/audit`);
    expect(audit?.status()).toBe(403);
    expect(await page.locator('table').count()).toBe(0);
  });

  it('a record changed on disk behind a valid CRC turns the chain banner red, naming the seq', async () => {
    const { page } = await freshPage();
    await page.goto(`${web}/audit`);
    await signIn(page, idp, carol);
    await page.waitForURL(`${web}/audit`);
    expect(await page.locator('section.chain').getAttribute('class')).toContain('chain-verified');

    await tamperInPlace(demo.stack.config.audit.dir, readSeq, 'LIMIT 3', 'LIMIT 9');
    // The record's leaf hash no longer matches the `prev` of the record after it.
    const banner = page.locator('section.chain');
    await expect.poll(async () => (await page.reload(), banner.getAttribute('class')), { timeout: 30_000, interval: 500 }).toContain('chain-failed');
    expect(await banner.getAttribute('role')).toBe('alert');
    expect(await banner.locator('strong').textContent()).toBe(`Audit log verification FAILED at seq ${readSeq + 1}: prev-mismatch`);
    expect(await banner.textContent()).toContain(`record ${readSeq} was altered`);
    // Red on every page, not only the one that was open.
    await page.goto(`${web}/audit/records`);
    expect(await page.locator('section.chain').getAttribute('class')).toContain('chain-failed');
  });
});
