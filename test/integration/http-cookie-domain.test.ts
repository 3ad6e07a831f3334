import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, startGatewayHarness, type GatewayHarness } from '../helpers/http-gateway.js';
import { TestBrowser, testHostsAgent } from '../helpers/oidc-idp.js';

/**
 * Browser login for a resource matched by a host other than the public one
 * (`identity.session.cookie_domain`): the gateway's public URL is `http://gw.tollgate.test:<port>`
 * and the resource `portal` is matched by `app.tollgate.test`; the browser connects to 127.0.0.1
 * while sending those host names.
 */

const POLICY_YAML = `
roles:
  engineer:
    allow:
      - resource: app
        paths: ["/app/**"]
      - resource: portal
grants:
  - role: engineer
    groups: [engineering]
`;

const PORTAL_YAML = `  - name: portal
    kind: http
    upstream: UPSTREAM
    match:
      host: app.tollgate.test
`;

const HTML = { accept: 'text/html' };
const JSON_ACCEPT = { accept: 'application/json' };

let agent: Agent;

beforeAll(() => {
  agent = testHostsAgent();
});

afterAll(async () => {
  await agent.close();
});

function startGatewayHarnessWithPortal(cookieDomain: string | undefined): Promise<GatewayHarness> {
  return startGatewayHarness({
    publicHost: 'gw.tollgate.test',
    ...(cookieDomain === undefined ? {} : { cookieDomain }),
    dispatcher: agent,
    policyYaml: POLICY_YAML,
    extraResourcesYaml: (upstream) => PORTAL_YAML.replace('UPSTREAM', upstream),
  });
}

describe('with identity.session.cookie_domain', () => {
  let harness: GatewayHarness;
  let port: number;
  let app: string;

  beforeAll(async () => {
    harness = await startGatewayHarnessWithPortal('tollgate.test');
    port = harness.gateway.address.port;
    app = `http://app.tollgate.test:${port}`;
  });

  afterAll(async () => {
    await harness.close();
  });

  it('sends a browser on the resource host to the public login with the absolute URL, and lands it there signed in', async () => {
    const browser = new TestBrowser({ dispatcher: agent });
    const first = await browser.request(`${app}/x?y=1`, { headers: HTML });
    expect(first.status).toBe(302);
    expect(first.headers.get('location')).toBe(`${harness.url}/_tollgate/login?return_to=${encodeURIComponent(`${app}/x?y=1`)}`);

    const atIdp = await browser.follow(new URL(first.headers.get('location') ?? '', first.url), { stopWhen: (url) => url.origin === harness.idp.issuer });
    expect(atIdp.stoppedAt).toBeDefined();
    const callback = await harness.idp.login(atIdp.stoppedAt as URL, { email: ALICE.email, password: ALICE.password }, browser);
    expect(callback.origin).toBe(harness.url);
    const back = await browser.request(callback);
    expect(back.status).toBe(302);
    expect(back.headers.get('location')).toBe(`${app}/x?y=1`);
    const sessionCookie = back.headers.getSetCookie().find((line) => line.startsWith('tollgate_session='));
    expect(sessionCookie).toContain('Domain=tollgate.test');

    const landed = await browser.request(`${app}/x?y=1`, { headers: HTML });
    expect(landed.status).toBe(200);
    const requestId = landed.headers.get('x-request-id') ?? '';
    const upstreamRequest = harness.upstream.byRequestId(requestId);
    expect(upstreamRequest?.url).toBe('/x?y=1');
    expect(upstreamRequest?.headers['x-tollgate-user']).toBe(ALICE.email);
    // The gateway's cookie never reaches the upstream.
    expect(upstreamRequest?.headers.cookie ?? '').not.toContain('tollgate_session');

    // The same cookie works on the public host.
    const onPublic = await browser.request(`${harness.url}/app/hello`, { headers: JSON_ACCEPT });
    expect(onPublic.status).toBe(200);
    expect(harness.upstream.byRequestId(onPublic.headers.get('x-request-id') ?? '')?.headers['x-tollgate-user']).toBe(ALICE.email);

    // Logout started on the resource host clears the domain cookie for both hosts.
    const logout = await browser.request(`${app}/_tollgate/logout`, { headers: HTML });
    expect(logout.status).toBe(302);
    const cleared = logout.headers.getSetCookie().find((line) => line.startsWith('tollgate_session='));
    expect(cleared).toContain('Max-Age=0');
    expect(cleared).toContain('Domain=tollgate.test');
    expect(browser.cookieHeader(`${app}/x`)).not.toContain('tollgate_session=');
    expect(browser.cookieHeader(`${harness.url}/app/hello`)).not.toContain('tollgate_session=');
    expect((await browser.request(`${app}/x`, { headers: JSON_ACCEPT })).status).toBe(401);
    expect((await browser.request(`${harness.url}/app/hello`, { headers: JSON_ACCEPT })).status).toBe(401);
  });

  it('keeps the relative redirect on the public host', async () => {
    const browser = new TestBrowser({ dispatcher: agent });
    const page = await browser.request(`${harness.url}/app/y`, { headers: HTML });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe(`/_tollgate/login?return_to=${encodeURIComponent('/app/y')}`);
  });

  it('sends a login started on the resource host to the public host, coming back to the resource host', async () => {
    const browser = new TestBrowser({ dispatcher: agent });
    const page = await browser.request(`${app}/_tollgate/login?return_to=%2Fdeep%2Fpage`, { headers: HTML });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe(`${harness.url}/_tollgate/login?return_to=${encodeURIComponent(`${app}/deep/page`)}`);
    expect(page.headers.getSetCookie()).toEqual([]);
  });

  it('returns to the public root when the return URL names a host no resource uses', async () => {
    const { browser, landed } = await harness.login(ALICE, `/_tollgate/login?return_to=${encodeURIComponent(`http://evil.tollgate.test:${port}/x`)}`);
    expect(landed.href).toBe(`${harness.url}/`);
    expect(browser.cookieHeader(`${app}/`)).toContain('tollgate_session=');
  });
});

describe('without identity.session.cookie_domain', () => {
  let harness: GatewayHarness;

  beforeAll(async () => {
    harness = await startGatewayHarnessWithPortal(undefined);
  });

  afterAll(async () => {
    await harness.close();
  });

  it('redirects a browser on the resource host to the relative login path, as before', async () => {
    const browser = new TestBrowser({ dispatcher: agent });
    const app = `http://app.tollgate.test:${harness.gateway.address.port}`;
    const page = await browser.request(`${app}/x`, { headers: HTML });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe(`/_tollgate/login?return_to=${encodeURIComponent('/x')}`);
  });

  it('sets a host-only session cookie', async () => {
    const { browser, landed } = await harness.login(ALICE);
    expect(landed.href).toBe(`${harness.url}/`);
    expect(browser.cookieHeader(`${harness.url}/`)).toContain('tollgate_session=');
    expect(browser.cookieHeader(`http://app.tollgate.test:${harness.gateway.address.port}/`)).not.toContain('tollgate_session=');
  });
});
