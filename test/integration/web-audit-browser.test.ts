import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, watchErrors } from '../helpers/chromium.js';
import { compilePolicy } from '../../src/policy/index.js';
import { ALICE } from '../helpers/http-gateway.js';
import { CAROL, VICTOR, principalOf, recordPgSession, startWebAudit, waitForVerified, type RecordedPgSession, type WebAuditHarness } from '../helpers/web-audit.js';

/**
 * The review pages in a real browser (Debian's chromium driven by playwright-core): a reviewer
 * signs in through the IdP's form, finds a session, and proves a record; the proof is checked by
 * the page's own script, in the browser. A reviewer watching the live view loses access to a
 * policy change and the page says so instead of reconnecting.
 */

describe('audit review pages in a browser', () => {
  let w: WebAuditHarness;
  let browser: Browser;
  let pg: RecordedPgSession;

  beforeAll(async () => {
    w = await startWebAudit({ chain: { pollMs: 50 } });
    pg = await recordPgSession(w.h.store, w.policy, principalOf(ALICE), ['select id, total from orders where customer_id = 7', "delete from orders where id = 7"]);
    await w.h.store.checkpointNow();
    await waitForVerified(w.pages, pg.querySeqs[1]!);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await w?.close();
  });

  it('signs carol in, opens a session from /audit, and proves a record in the browser', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);

    await page.goto(`${w.h.url}/audit`);
    await page.fill('input[name=login]', CAROL.email);
    await page.fill('input[name=password]', CAROL.password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${w.h.url}/audit`);
    expect(await page.locator('.chain strong').textContent()).toMatch(/^Audit log verified up to checkpoint \d+$/);

    await page.click(`a[href="/audit/sessions/${pg.sessionId}"]`);
    await page.waitForURL(`${w.h.url}/audit/sessions/${pg.sessionId}`);
    const seq = pg.querySeqs[0]!;
    const row = page.locator(`tr[data-seq="${seq}"]`);
    await expect.poll(() => row.locator('.effect').textContent()).toBe('allow');
    await expect.poll(() => page.locator(`tr[data-seq="${pg.querySeqs[1]}"] .effect`).textContent()).toBe('deny');

    // The button is shown by the script; pressing it checks the proof in the page.
    const prove = row.locator('button[data-prove]');
    await prove.focus();
    await page.keyboard.press('Enter');
    const output = page.locator(`#proof-${seq}`);
    await expect.poll(() => output.textContent(), { timeout: 10_000 }).toMatch(/^verified: /);
    const signer = w.h.auditVerifierKey.split('+').slice(0, 2).join('+');
    const shown = /^verified: record (\d+) is in the log of size (\d+) signed by (\S+)$/.exec((await output.textContent()) ?? '');
    expect(shown?.slice(1)).toEqual([String(seq), expect.any(String), signer]);
    expect(Number(shown?.[2])).toBeGreaterThan(seq);
    expect(await output.getAttribute('class')).toContain('proof-ok');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('stops the live view and shows why when a policy change takes the reviewer\'s access away', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    const { browser: alice } = await w.h.login(ALICE);

    await page.goto(`${w.h.url}/audit/records`);
    await page.fill('input[name=login]', VICTOR.email);
    await page.fill('input[name=password]', VICTOR.password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${w.h.url}/audit/records`);
    const toggle = page.locator('button[data-tail-toggle]');
    const state = page.locator('.tail-state');
    await toggle.click();
    await expect.poll(() => state.textContent()).toBe('waiting for new records');
    expect((await alice.request(`${w.h.url}/app/seen-live`)).status).toBe(200);
    await expect.poll(() => page.locator('td.action', { hasText: 'GET /app/seen-live' }).count()).toBe(1);

    // What a reload's apply does: the policy in force no longer grants the auditors anything.
    const { policy } = w.h.config;
    w.livePolicy.replace(compilePolicy({ ...policy, grants: policy.grants.filter((grant) => grant.role !== 'auditor') }));
    try {
      expect((await alice.request(`${w.h.url}/app/after-revocation`)).status).toBe(200);
      await expect.poll(() => state.textContent(), { timeout: 10_000 }).toMatch(/^Your access to the audit log was revoked/);
      expect(await toggle.textContent()).toBe('Live: off');
      expect(await toggle.getAttribute('aria-pressed')).toBe('false');
      expect(await state.getAttribute('class')).toContain('tail-ended');
      expect(await page.locator('td.action', { hasText: 'GET /app/after-revocation' }).count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      w.livePolicy.replace(w.policy);
      await context.close();
    }
  });
});
