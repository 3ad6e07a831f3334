import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/chromium.js';
import { sendRequest } from '../helpers/http-client.js';
import { ALICE, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';
import type { TestBrowser } from '../helpers/oidc-idp.js';

/**
 * Apps mounted by path on the gateway's public host share its origin. Their pages must not be
 * able to get a database token from `/db`, nor the form token of a CLI sign-in, and nobody may
 * lock the device login out for everyone.
 */

const HTML = { accept: 'text/html' };
/** What a browser sends with a script's `fetch` from a page of the same origin. */
const SCRIPT_FETCH = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' };
/** A frame of a same-origin page. */
const SAME_ORIGIN_FRAME = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' };
/** A link followed, or a form submitted, in the window of a same-origin page. */
const SAME_ORIGIN_NAVIGATION = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const CROSS_SITE_NAVIGATION = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

const WIKI_POLICY = `
roles:
  engineer:
    allow:
      - resource: app
        paths: ["/app/**"]
      - resource: wiki
        paths: ["/wiki/**"]
      - resource: shop
        logins: [reader]
grants:
  - role: engineer
    groups: [engineering]
`;

/**
 * A wiki whose page runs script, as any app with user content or a cross-site scripting hole
 * does: it asks for `/db` and for the device page of `?code=`, and opens `/db` in a window.
 */
const WIKI_PAGE = `<!doctype html><title>wiki</title><script>
window.results = (async () => {
  const code = new URLSearchParams(location.search).get('code') ?? '';
  const db = await fetch('/db', { headers: { accept: 'application/json' } });
  const dbText = await db.text();
  const device = await fetch('/_tollgate/cli/device?user_code=' + encodeURIComponent(code), { headers: { accept: 'text/html' } });
  const deviceText = await device.text();
  return { db: db.status, dbToken: /tgdb_/.test(dbText), device: device.status, formToken: deviceText.includes('form_token') };
})();
window.openDb = () => { window.popup = window.open('/db'); };
window.readPopup = () => {
  try {
    return window.popup.closed ? 'closed' : window.popup.document.body.innerText;
  } catch (error) {
    return 'blocked: ' + error.name;
  }
};
</script>`;

/**
 * A request in `browser`'s session with the Fetch Metadata a browser would send. Not through
 * `fetch`, which sets `Sec-Fetch-Mode` itself.
 */
async function visit(
  h: GatewayHarness,
  browser: TestBrowser,
  target: string,
  options: { readonly method?: string; readonly headers: Record<string, string>; readonly form?: URLSearchParams },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const form = options.form === undefined ? {} : { body: options.form.toString() };
  const headers = { ...options.headers, cookie: browser.cookieHeader(`${h.url}${target}`), ...(options.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) };
  return sendRequest(h.url, target, { method: options.method ?? (options.form === undefined ? 'GET' : 'POST'), headers, ...form });
}

function tokensIssued(h: GatewayHarness): number {
  return h.records().filter((record) => record.kind === 'token.issued').length;
}

async function startDeviceGrant(h: GatewayHarness, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(`${h.url}/_tollgate/cli/device`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: '' });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

/** The device approval page's form token for `userCode`, shown to `browser` on a plain navigation. */
async function deviceFormToken(h: GatewayHarness, browser: TestBrowser, userCode: string): Promise<string> {
  const page = await visit(h, browser, `/_tollgate/cli/device?user_code=${encodeURIComponent(userCode)}`, { headers: { ...HTML, ...SAME_ORIGIN_NAVIGATION } });
  expect(page.status).toBe(200);
  return /name="form_token" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
}

describe('/db and the CLI sign-in pages towards apps on the same origin', () => {
  let h: GatewayHarness;
  let wiki: Server;
  let chromium: Browser;

  beforeAll(async () => {
    wiki = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(WIKI_PAGE);
    });
    await new Promise<void>((resolve) => wiki.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(wiki.address() as AddressInfo).port}`;
    h = await startGatewayHarness({
      policyYaml: WIKI_POLICY,
      extraResourcesYaml: `  - name: wiki\n    kind: http\n    upstream: ${origin}\n    match: { path_prefix: /wiki/ }\n`,
    });
    chromium = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    await h?.close();
    await new Promise<void>((resolve) => (wiki ? wiki.close(() => resolve()) : resolve()));
  });

  it('refuses /db to a script or a frame of a same-origin page: 403, no token, no record', async () => {
    const { browser } = await h.login(ALICE);
    const before = tokensIssued(h);
    for (const headers of [{ accept: 'application/json', ...SCRIPT_FETCH }, { ...HTML, ...SAME_ORIGIN_FRAME }]) {
      const page = await visit(h, browser, '/db', { headers });
      expect(page.status, JSON.stringify(headers)).toBe(403);
      expect(page.body).not.toContain('tgdb_');
    }
    const json = await visit(h, browser, '/db', { headers: { accept: 'application/json', ...SCRIPT_FETCH } });
    expect(JSON.parse(json.body)).toMatchObject({ error: 'navigation_required', reason: 'fetch-metadata-not-navigation' });
    expect(tokensIssued(h)).toBe(before);
  });

  it('still hands /db tokens to a navigation, and to clients without Fetch Metadata, with the opener severed', async () => {
    const { browser } = await h.login(ALICE);
    const before = tokensIssued(h);
    const navigated = await visit(h, browser, '/db', { headers: { ...HTML, ...SAME_ORIGIN_NAVIGATION } });
    expect(navigated.status).toBe(200);
    expect(navigated.body).toMatch(/<pre>tgdb_/);
    expect(navigated.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(navigated.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    const typed = await visit(h, browser, '/db', { headers: { ...HTML, 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } });
    expect(typed.body).toMatch(/<pre>tgdb_/);
    const curl = await visit(h, browser, '/db', { headers: { accept: 'application/json' } });
    expect(JSON.parse(curl.body)).toMatchObject({ token: expect.stringMatching(/^tgdb_/) });
    expect(tokensIssued(h)).toBe(before + 3);
    const home = await visit(h, browser, '/', { headers: HTML });
    expect(home.headers['cross-origin-opener-policy']).toBe('same-origin');
  });

  it('asks before issuing a token to a navigation from another site, and issues none for HEAD', async () => {
    const { browser } = await h.login(ALICE);
    const before = tokensIssued(h);
    const asked = await visit(h, browser, '/db', { headers: { ...HTML, ...CROSS_SITE_NAVIGATION } });
    expect(asked.status).toBe(200);
    expect(asked.body).not.toContain('tgdb_');
    expect(asked.body).toContain('<form method="get" action="/db"><p><button type="submit">Get a database token</button>');
    const head = await visit(h, browser, '/db', { method: 'HEAD', headers: HTML });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const headJson = await visit(h, browser, '/db', { method: 'HEAD', headers: { accept: 'application/json' } });
    expect(headJson.status).toBe(200);
    expect(tokensIssued(h)).toBe(before);
    // The confirmation's button: the same request, now from the gateway's own page.
    const confirmed = await visit(h, browser, '/db?', { headers: { ...HTML, ...SAME_ORIGIN_NAVIGATION } });
    expect(confirmed.body).toMatch(/<pre>tgdb_/);
    const issued = h.records().filter((record) => record.kind === 'token.issued');
    expect(issued).toHaveLength(before + 1);
  });

  it('shows the device approval form only to a navigation, and takes its answer only from one', async () => {
    const { browser } = await h.login(ALICE);
    const device = await startDeviceGrant(h);
    const userCode = String(device.body['user_code']);
    const scripted = await visit(h, browser, `/_tollgate/cli/device?user_code=${encodeURIComponent(userCode)}`, { headers: { ...HTML, ...SCRIPT_FETCH } });
    expect(scripted.status).toBe(403);
    expect(scripted.body).not.toContain('form_token');
    const framed = await visit(h, browser, `/_tollgate/cli/device?user_code=${encodeURIComponent(userCode)}`, { headers: { ...HTML, ...SAME_ORIGIN_FRAME } });
    expect(framed.status).toBe(403);

    const formToken = await deviceFormToken(h, browser, userCode);
    expect(formToken).not.toBe('');
    const form = new URLSearchParams({ user_code: userCode, form_token: formToken, decision: 'approve' });
    const posted = await visit(h, browser, '/_tollgate/cli/device/approve', { form, headers: { ...HTML, ...SCRIPT_FETCH } });
    expect(posted.status).toBe(403);
    const poll = await fetch(`${h.url}/_tollgate/cli/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: String(device.body['device_code']) }),
    });
    expect(await poll.json()).toMatchObject({ error: 'authorization_pending' });

    const submitted = await visit(h, browser, '/_tollgate/cli/device/approve', { form, headers: { ...HTML, ...SAME_ORIGIN_NAVIGATION } });
    expect(submitted.status).toBe(200);
    expect(submitted.body).toContain('The Tollgate CLI is signed in');
  });

  it('keeps a real page of an app mounted by path from reading /db or the device form (Chromium)', async () => {
    const { browser } = await h.login(ALICE);
    const device = await startDeviceGrant(h);
    const context = await chromium.newContext();
    try {
      const url = new URL(h.url);
      const cookies = browser
        .cookieHeader(`${h.url}/wiki/`)
        .split('; ')
        .filter(Boolean)
        .map((pair) => ({ name: pair.slice(0, pair.indexOf('=')), value: pair.slice(pair.indexOf('=') + 1), domain: url.hostname, path: '/' }));
      await context.addCookies(cookies);
      const page = await context.newPage();
      const before = tokensIssued(h);
      await page.goto(`${h.url}/wiki/page?code=${encodeURIComponent(String(device.body['user_code']))}`);
      const results = await page.evaluate('window.results');
      expect(results).toEqual({ db: 403, dbToken: false, device: 403, formToken: false });
      expect(tokensIssued(h)).toBe(before);

      const popup = context.waitForEvent('page');
      await page.evaluate('window.openDb()');
      const opened = await popup;
      await opened.waitForLoadState();
      // The user sees the token in the new window; the page that opened it cannot read it.
      expect(await opened.locator('h2').first().textContent()).toBe('Your database token');
      const read = String(await page.evaluate('window.readPopup()'));
      expect(read).not.toContain('tgdb_');
    } finally {
      await context.close();
    }
  });

  it('asks a real browser sent from another site before issuing a token (Chromium)', async () => {
    const { browser } = await h.login(ALICE);
    const other = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>elsewhere</title><a id="go" href="${h.url}/db">databases</a>`);
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const context = await chromium.newContext();
    try {
      const url = new URL(h.url);
      await context.addCookies(
        browser
          .cookieHeader(`${h.url}/db`)
          .split('; ')
          .filter(Boolean)
          .map((pair) => ({ name: pair.slice(0, pair.indexOf('=')), value: pair.slice(pair.indexOf('=') + 1), domain: url.hostname, path: '/', sameSite: 'Lax' as const })),
      );
      const page = await context.newPage();
      const before = tokensIssued(h);
      // `localhost` and `127.0.0.1` are different sites to the browser.
      await page.goto(`http://localhost:${(other.address() as AddressInfo).port}/`);
      await page.click('#go');
      await page.waitForURL(`${h.url}/db`);
      expect(await page.locator('h1').textContent()).toBe('Get a database token?');
      expect(tokensIssued(h)).toBe(before);
      await page.click('button[type=submit]');
      await page.waitForURL(/\/db\?$/);
      expect(await page.locator('pre').first().textContent()).toMatch(/^tgdb_/);
      expect(tokensIssued(h)).toBe(before + 1);
    } finally {
      await context.close();
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });
});

describe('device sign-ins started without a login', () => {
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGatewayHarness({ trustedProxies: ['127.0.0.1/32'] });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('tells the approving user where and when a sign-in was started, and warns when it was not from their network', async () => {
    const { browser } = await h.login(ALICE);
    const page = async (userCode: string, headers: Record<string, string>) =>
      visit(h, browser, `/_tollgate/cli/device?user_code=${encodeURIComponent(userCode)}`, { headers: { ...HTML, ...SAME_ORIGIN_NAVIGATION, ...headers } });
    const elsewhere = String((await startDeviceGrant(h, { 'x-forwarded-for': '198.51.100.23' })).body['user_code']);
    const warned = await page(elsewhere, { 'x-forwarded-for': '203.0.113.40' });
    expect(warned.status).toBe(200);
    expect(warned.body).toContain('<strong>It was started less than a minute ago from <code>198.51.100.23</code>, not from the network this browser is on.</strong>');
    const here = String((await startDeviceGrant(h, { 'x-forwarded-for': '203.0.113.40' })).body['user_code']);
    const calm = await page(here, { 'x-forwarded-for': '203.0.113.40' });
    expect(calm.body).toContain('It was started less than a minute ago from <code>203.0.113.40</code>, the network this browser is on.');
    expect(calm.body).not.toContain('not from the network');
  });

  it('holds ten pending device grants per client network; others still sign in, and refusals are counted', async () => {
    const from = (address: string): Record<string, string> => ({ 'x-forwarded-for': address });
    for (let i = 0; i < 10; i++) expect((await startDeviceGrant(h, from('203.0.113.5'))).status).toBe(200);
    const refused = await startDeviceGrant(h, from('203.0.113.5'));
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: 'slow_down', error_description: expect.stringContaining('10 sign-ins started from your network are still waiting for approval') });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('cache-control')).toBe('no-store');

    // Another client, and the proxy's own address, are not affected.
    expect((await startDeviceGrant(h, from('203.0.113.6'))).status).toBe(200);
    expect((await startDeviceGrant(h)).status).toBe(200);

    // One IPv6 host holds a whole /64: its addresses count together.
    for (let i = 1; i <= 10; i++) expect((await startDeviceGrant(h, from(`2001:db8:1:2::${i.toString(16)}`))).status).toBe(200);
    expect((await startDeviceGrant(h, from('2001:db8:1:2:ffff::1'))).status).toBe(429);
    expect((await startDeviceGrant(h, from('2001:db8:1:3::1'))).status).toBe(200);

    const metrics = await h.registry.getSingleMetricAsString('tollgate_cli_login_refusals_total');
    expect(metrics).toContain('tollgate_cli_login_refusals_total{reason="device-client-limit"} 2');
  });
});
