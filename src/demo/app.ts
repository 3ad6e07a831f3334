import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import { silentLogger, type Logger } from '../core/index.js';
import { JWKS_PATH } from '../proxy/http/index.js';
import { escapeHtml, newNonce, pageHeaders, renderPage } from './html.js';
import { listenOn } from './listen.js';

/**
 * The path prefix the demo app serves under. The gateway's `app` resource matches the same
 * prefix with `strip_prefix: false`, so the app sees the paths the browser sees, and its links
 * are right whether it is reached through the gateway or directly.
 */
export const DEMO_APP_PREFIX = '/app/';

export interface DemoAppOptions {
  /** Listens on 127.0.0.1:`port`. */
  readonly port: number;
  /** The gateway's public URL: the assertion's issuer, and where its JWKS is published. */
  readonly gatewayUrl: string;
  /** The gateway resource this app is (the assertion's audience); default `app`. */
  readonly resource?: string;
  readonly logger?: Logger;
}

export interface DemoApp {
  readonly port: number;
  /** `http://127.0.0.1:<port>/app/`: direct, without the gateway. */
  readonly url: string;
  close(): Promise<void>;
}

/** An order of the app's in-memory API. */
interface AppOrder {
  readonly id: number;
  readonly item: string;
  readonly quantity: number;
  readonly createdBy: string | null;
  readonly createdAt: string;
}

/** What the signed assertion said, or why it did not count. */
type AssertionCheck =
  | { readonly status: 'verified'; readonly subject: string; readonly email: string | null; readonly groups: readonly string[]; readonly expiresAt: string }
  | { readonly status: 'missing' }
  | { readonly status: 'invalid'; readonly reason: string };

/** The visitor as the gateway's headers describe them. */
interface Viewer {
  readonly user: string | null;
  readonly groups: readonly string[];
  readonly assertion: AssertionCheck;
}

const MAX_BODY_BYTES = 16 * 1024;
const MAX_ORDERS = 1000;
const MAX_WS_MESSAGE_BYTES = 64 * 1024;

/**
 * The demo's web app, the upstream of the gateway's `app` resource: an HTML page showing who
 * the gateway says the visitor is (`X-Tollgate-User`, `X-Tollgate-Groups`) and whether the
 * signed `X-Tollgate-Assertion` verifies against the gateway's JWKS; a small JSON API
 * (`GET`/`POST /app/api/orders`, `GET /app/api/whoami`); and a WebSocket echo at `/app/ws`.
 * Orders live in memory.
 *
 * @throws TollgateError `TG_ERR_DEMO_START` when the port cannot be listened on.
 */
export async function startDemoApp(options: DemoAppOptions): Promise<DemoApp> {
  const logger = options.logger ?? silentLogger;
  const resource = options.resource ?? 'app';
  const gatewayOrigin = new URL(options.gatewayUrl).origin;
  const jwksUrl = new URL(JWKS_PATH, gatewayOrigin);
  // Fetched when the first assertion arrives (the gateway starts after the app), cached, and
  // fetched again when an assertion names a key it does not know (a restarted gateway).
  const jwks = createRemoteJWKSet(jwksUrl, { timeoutDuration: 2000, cooldownDuration: 5000 });
  const orders: AppOrder[] = [
    { id: 1, item: 'Burr coffee grinder', quantity: 1, createdBy: null, createdAt: new Date().toISOString() },
    { id: 2, item: 'Linen tea towels, set of 3', quantity: 2, createdBy: null, createdAt: new Date().toISOString() },
  ];
  let nextId = orders.length + 1;

  async function checkAssertion(req: IncomingMessage): Promise<AssertionCheck> {
    const token = single(req.headers['x-tollgate-assertion']);
    if (token === undefined) return { status: 'missing' };
    try {
      // RFC 7519 §7.2 and RFC 8725 §3.1: the algorithm is pinned, issuer and audience checked.
      const { payload } = await jwtVerify(token, jwks, { issuer: gatewayOrigin, audience: resource, algorithms: ['EdDSA'] });
      const groups = Array.isArray(payload['groups']) ? payload['groups'].filter((group): group is string => typeof group === 'string') : [];
      return {
        status: 'verified',
        subject: payload.sub ?? '',
        email: typeof payload['email'] === 'string' ? payload['email'] : null,
        groups,
        expiresAt: new Date((payload.exp ?? 0) * 1000).toISOString(),
      };
    } catch (error) {
      const code = error !== null && typeof error === 'object' && 'code' in error ? String(error.code) : '';
      return { status: 'invalid', reason: code === '' ? (error instanceof Error ? error.message : 'not a valid JWT') : code };
    }
  }

  async function whoami(req: IncomingMessage): Promise<Viewer> {
    return {
      user: single(req.headers['x-tollgate-user']) ?? null,
      groups: (single(req.headers['x-tollgate-groups']) ?? '').split(',').filter((group) => group !== ''),
      assertion: await checkAssertion(req),
    };
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://app.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/app') return redirect(res, 308, DEMO_APP_PREFIX);
    if (path === DEMO_APP_PREFIX) {
      if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
      const nonce = newNonce();
      res.writeHead(200, pageHeaders({ nonce, script: true }));
      res.end(method === 'HEAD' ? undefined : renderPage({ title: 'Demo app · Tollgate', nonce, body: homePage(await whoami(req), orders, jwksUrl.href), script: WS_SCRIPT }));
      return;
    }
    if (path === '/app/api/whoami') {
      if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
      return sendJson(res, 200, await whoami(req));
    }
    if (path === '/app/api/orders') {
      if (method === 'GET' || method === 'HEAD') return sendJson(res, 200, { orders });
      if (method !== 'POST') return sendJson(res, 405, { error: 'use GET or POST' }, { allow: 'GET, HEAD, POST' });
      return createOrder(req, res);
    }
    sendJson(res, 404, { error: `no such page: ${path}` });
  }

  async function createOrder(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const isForm = type === 'application/x-www-form-urlencoded';
    if (type !== 'application/json' && !isForm) {
      return sendJson(res, 415, { error: 'send application/json ({"item": "...", "quantity": 1}) or a form' });
    }
    const body = await readBody(req);
    if (body === null) return sendJson(res, 413, { error: `the body is larger than ${MAX_BODY_BYTES} bytes` });
    let fields: { item?: unknown; quantity?: unknown };
    if (isForm) {
      const form = new URLSearchParams(body);
      fields = { item: form.get('item') ?? undefined, quantity: Number(form.get('quantity') ?? '1') };
    } else {
      try {
        const parsed: unknown = JSON.parse(body);
        fields = parsed !== null && typeof parsed === 'object' ? (parsed as typeof fields) : {};
      } catch {
        return sendJson(res, 400, { error: 'the body is not JSON' });
      }
    }
    const item = typeof fields.item === 'string' ? fields.item.trim() : '';
    const quantity = fields.quantity ?? 1;
    if (item === '' || item.length > 100) return sendJson(res, 400, { error: 'item must be text of 1 to 100 characters' });
    if (typeof quantity !== 'number' || !Number.isSafeInteger(quantity) || quantity < 1 || quantity > 1000) {
      return sendJson(res, 400, { error: 'quantity must be a whole number from 1 to 1000' });
    }
    const order: AppOrder = { id: nextId++, item, quantity, createdBy: single(req.headers['x-tollgate-user']) ?? null, createdAt: new Date().toISOString() };
    orders.push(order);
    if (orders.length > MAX_ORDERS) orders.shift();
    if (isForm) return redirect(res, 303, DEMO_APP_PREFIX);
    sendJson(res, 201, { order }, { location: `/app/api/orders/${order.id}` });
  }

  const server: Server = createServer((req, res) => {
    onRequest(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'demo app request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });
  sockets.on('connection', (socket: WebSocket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('error', (error) => logger.debug({ err: error }, 'demo app WebSocket error'));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://app.invalid').pathname;
    if (path !== '/app/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => sockets.emit('connection', ws, req));
  });

  await listenOn(server, options.port, 'demo app');
  logger.debug({ port: options.port }, 'demo app listening');
  return {
    port: options.port,
    url: `http://127.0.0.1:${options.port}${DEMO_APP_PREFIX}`,
    async close() {
      for (const client of sockets.clients) client.terminate();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

function redirect(res: ServerResponse, status: number, location: string): void {
  res.writeHead(status, { location, 'content-length': '0' });
  res.end();
}

function homePage(who: Viewer, orders: readonly AppOrder[], jwksUrl: string): string {
  const assertion = who.assertion;
  const verdict =
    assertion.status === 'verified'
      ? `<span class="ok">Verified</span> against <code>${escapeHtml(jwksUrl)}</code>: subject <code>${escapeHtml(assertion.subject)}</code>` +
        `${assertion.email === null ? '' : `, email <code>${escapeHtml(assertion.email)}</code>`}, groups <code>${escapeHtml(assertion.groups.join(', ') || '(none)')}</code>, expires ${escapeHtml(assertion.expiresAt)}`
      : assertion.status === 'missing'
        ? '<span class="error">Missing</span>: this request did not come through the gateway.'
        : `<span class="error">Not valid</span> (${escapeHtml(assertion.reason)}): do not trust the headers above.`;
  const rows = orders
    .slice(-20)
    .reverse()
    .map(
      (order) =>
        `<tr><td>${order.id}</td><td>${escapeHtml(order.item)}</td><td>${order.quantity}</td><td>${escapeHtml(order.createdBy ?? '(seed)')}</td><td>${escapeHtml(order.createdAt)}</td></tr>`,
    )
    .join('');
  return (
    '<h1>Demo app</h1><p class="muted">An ordinary web app behind Tollgate. It has no login of its own: the gateway tells it who you are.</p>' +
    '<section aria-labelledby="who"><h2 id="who">Who the gateway says you are</h2><dl>' +
    `<dt>User <span class="muted">(X-Tollgate-User)</span></dt><dd>${who.user === null ? '<span class="error">none</span>' : `<code>${escapeHtml(who.user)}</code>`}</dd>` +
    `<dt>Groups <span class="muted">(X-Tollgate-Groups)</span></dt><dd>${who.groups.length === 0 ? '(none)' : `<code>${escapeHtml(who.groups.join(', '))}</code>`}</dd>` +
    `<dt>Signed assertion <span class="muted">(X-Tollgate-Assertion)</span></dt><dd>${verdict}</dd></dl>` +
    '<p class="muted">Anything that reaches the app directly could send the two plain headers; only the gateway can sign the assertion.</p></section>' +
    '<section aria-labelledby="orders"><h2 id="orders">Orders</h2>' +
    '<p>Also as JSON: <a href="/app/api/orders"><code>GET /app/api/orders</code></a>. Adding one is a <code>POST</code>, which the gateway allows only to roles that may post.</p>' +
    '<table><caption class="muted">The latest 20 orders (kept in memory)</caption><thead><tr><th scope="col">#</th><th scope="col">Item</th><th scope="col">Qty</th><th scope="col">By</th><th scope="col">When</th></tr></thead>' +
    `<tbody>${rows}</tbody></table>` +
    '<form method="post" action="/app/api/orders"><div class="row"><div><label for="item">Item</label><input id="item" name="item" required maxlength="100"></div>' +
    '<div><label for="quantity">Quantity</label><input id="quantity" name="quantity" type="number" min="1" max="1000" value="1" required></div></div>' +
    '<button type="submit">Add order</button></form></section>' +
    '<section aria-labelledby="ws"><h2 id="ws">WebSocket echo</h2><p>The gateway decides and audits the upgrade, then relays frames to <code>/app/ws</code>.</p>' +
    '<form id="ws-form"><label for="ws-text">Message</label><input id="ws-text" maxlength="200" value="hello through the gateway"><button type="submit">Send</button></form>' +
    '<p role="status" aria-live="polite" id="ws-status" class="muted">Not connected.</p><ul id="ws-log"></ul></section>'
  );
}

/** The echo client: text only, written with textContent (nothing it receives becomes HTML). */
const WS_SCRIPT = `(() => {
  const form = document.getElementById('ws-form');
  const input = document.getElementById('ws-text');
  const status = document.getElementById('ws-status');
  const log = document.getElementById('ws-log');
  let socket = null;
  const add = (text) => { const li = document.createElement('li'); li.textContent = text; log.prepend(li); };
  const open = () => new Promise((resolve, reject) => {
    if (socket && socket.readyState === WebSocket.OPEN) return resolve(socket);
    socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/app/ws');
    socket.onopen = () => { status.textContent = 'Connected.'; resolve(socket); };
    socket.onerror = () => { status.textContent = 'Could not connect.'; reject(new Error('WebSocket failed')); };
    socket.onclose = () => { status.textContent = 'Disconnected.'; };
    socket.onmessage = (event) => add('echo: ' + String(event.data));
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    open().then((ws) => { add('sent: ' + input.value); ws.send(input.value); }, () => undefined);
  });
})();`;
