/**
 * The README's screenshots of the review pages: starts the demo in a temporary folder, has alice
 * and bob use the app and the shop database (one of alice's statements is denied), then signs
 * carol in and saves, at 1280×800,
 *   docs/review-page.png     the sessions list at /audit
 *   docs/session-detail.png  alice's Postgres session, with one record proven in the browser.
 *
 * Run with: node --import tsx scripts/screenshot.ts   (needs Debian's chromium)
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { DEMO_USERS } from '../src/demo/index.js';
import { launchChromium } from '../test/helpers/chromium.js';
import { demoRoot, freeDemoPortBase, removeDemoRoot, startDemo, type RunningDemo } from '../test/helpers/demo.js';

const docsDir = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'docs');
/**
 * A 1280×800 screen at 80 % zoom: the records table (Seq to Proof) needs a little more than 1280
 * CSS pixels, and a picture of it with columns cut off would show less than a reviewer sees.
 */
const SCREEN = { viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 0.8 } as const;

/** What each demo user does through the gateway, statement by statement. */
const WORKLOAD: Readonly<Record<string, readonly string[]>> = {
  alice: [
    'SELECT id, full_name, country FROM customers ORDER BY id LIMIT 5',
    'SELECT status, count(*) FROM orders GROUP BY status',
    "UPDATE orders SET status = 'refunded' WHERE id = 42",
  ],
  bob: [
    'SELECT id, status FROM orders WHERE id = 42',
    "UPDATE orders SET status = 'shipped' WHERE id = 42",
    "INSERT INTO payments (order_id, method, status, amount, paid_at) SELECT id, 'card', 'captured', total, now() FROM orders WHERE id = 42",
  ],
};

function demoUser(name: string): { readonly email: string; readonly password: string } {
  const user = DEMO_USERS.find((candidate) => candidate.username === name);
  if (user === undefined) throw new Error(`no demo user ${name}`);
  return user;
}

/** Goes to `url` on the gateway and signs in at the demo IdP's form on the way. */
async function signedIn(page: Page, demo: RunningDemo, url: string, name: string): Promise<void> {
  const user = demoUser(name);
  await page.goto(url);
  await page.waitForURL((at) => at.origin === new URL(demo.stack.urls.idp).origin);
  await page.fill('#login', user.email);
  await page.fill('#password', user.password);
  await page.click('form.card button[type=submit]');
  await page.waitForURL(url);
}

/** One user's visit: the app and its API, a database token from /db, then the workload with `pg`. */
async function visit(browser: Browser, demo: RunningDemo, name: string): Promise<void> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const web = demo.stack.urls.web;
    if (name === 'alice') {
      await signedIn(page, demo, `${web}/app/`, name);
      await page.goto(`${web}/app/api/orders`);
      await page.goto(`${web}/app/api/whoami`);
      await page.goto(`${web}/db`);
    } else {
      await signedIn(page, demo, `${web}/db`, name);
    }
    const token = ((await page.locator('h2:has-text("Your database token") + p + pre').textContent()) ?? '').trim();
    const client = new pg.Client({
      host: '127.0.0.1',
      port: demo.stack.ports.postgres,
      database: 'shop',
      user: demoUser(name).email,
      password: token,
      ssl: { rejectUnauthorized: false },
      application_name: 'psql',
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      for (const statement of WORKLOAD[name] ?? []) {
        // A denied statement is part of the picture: the session goes on.
        await client.query(statement).catch((error: { code?: string }) => {
          if (error.code !== '42501') throw error;
        });
      }
    } finally {
      await client.end();
    }
  } finally {
    await context.close();
  }
}

/** Reloads until the chain banner says a checkpoint covering `records` records is verified. */
async function waitForVerified(page: Page, records: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const title = (await page.locator('.chain strong').textContent()) ?? '';
    const size = Number(/verified up to checkpoint ([\d,]+)/.exec(title)?.[1]?.replaceAll(',', '') ?? 0);
    if (size >= records) return;
    if (Date.now() > deadline) throw new Error(`the chain banner still says "${title}"`);
    await new Promise((done) => setTimeout(done, 500));
    await page.reload();
  }
}

async function main(): Promise<void> {
  mkdirSync(docsDir, { recursive: true });
  const root = demoRoot('tollgate-screenshot-');
  let demo: RunningDemo | null = null;
  let browser: Browser | null = null;
  try {
    demo = await startDemo(root, await freeDemoPortBase());
    browser = await launchChromium();
    await visit(browser, demo, 'alice');
    await visit(browser, demo, 'bob');

    const context = await browser.newContext(SCREEN);
    const page = await context.newPage();
    await signedIn(page, demo, `${demo.stack.urls.web}/audit`, 'carol');
    await waitForVerified(page, demo.gateway.audit.state().size);
    await page.screenshot({ path: join(docsDir, 'review-page.png') });

    const alicePg = page.locator('table tbody tr', { hasText: 'alice@example.com' }).filter({ has: page.locator('td', { hasText: /^shop$/ }) });
    await alicePg.locator('th a').click();
    await page.waitForURL((url) => url.pathname.startsWith('/audit/sessions/'));
    const proven = page.locator('tr[data-seq]', { hasText: 'pg.query' }).first();
    const seq = await proven.getAttribute('data-seq');
    await proven.locator('button[data-prove]').click();
    await page.locator(`#proof-${seq}.proof-ok`).waitFor({ timeout: 10_000 });
    // The records table at the top of the window: the statements, their decisions and the proof
    // are the point of this picture.
    await page.evaluate("document.querySelector('section.records').scrollIntoView({ block: 'start' })");
    await page.screenshot({ path: join(docsDir, 'session-detail.png') });
    await context.close();
    process.stdout.write(`wrote ${join(docsDir, 'review-page.png')} and ${join(docsDir, 'session-detail.png')}\n`);
  } finally {
    await browser?.close();
    await demo?.close();
    removeDemoRoot(root);
  }
}

await main();
