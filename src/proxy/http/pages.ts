import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * The gateway's own responses: error pages, the home and `/db` pages, JSON errors for API
 * clients. Every page is self-contained (no scripts, no external resources) and sent with a
 * strict Content-Security-Policy, `no-store`, no framing, and in a browsing context group of its
 * own: apps mounted by path share the gateway's origin, and a window one of them opened on
 * `/db` could otherwise read the token out of it (HTML Standard, "Cross-origin opener policies":
 * `Cross-Origin-Opener-Policy: same-origin` severs the opener).
 */

export const PAGE_SECURITY_HEADERS: Readonly<OutgoingHttpHeaders> = Object.freeze({
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-store',
});

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string);
}

/**
 * Whether the client is a browser navigating (its `Accept` names `text/html`): it gets pages and
 * login redirects; everything else gets JSON and `401`s.
 */
export function wantsHtml(headers: IncomingHttpHeaders): boolean {
  const accept = headers.accept;
  return accept !== undefined && accept.includes('text/html');
}

/**
 * How a browser says it made a request, in its Fetch Metadata headers (W3C Fetch Metadata
 * Request Headers §2): `no-metadata` for clients that send none (curl, the CLI, API clients),
 * `navigation` for a top-level navigation (a link followed, an address typed, a form submitted
 * into the window), `not-navigation` for everything a page's script or markup can do without
 * showing the user the answer: `fetch`, XHR, frames, images.
 */
export type BrowserRequestKind = 'no-metadata' | 'navigation' | 'not-navigation';

export function browserRequestKind(headers: IncomingHttpHeaders): BrowserRequestKind {
  if (headers['sec-fetch-site'] === undefined) return 'no-metadata';
  return headers['sec-fetch-mode'] === 'navigate' && headers['sec-fetch-dest'] === 'document' ? 'navigation' : 'not-navigation';
}

/** A complete HTML document; `body` is trusted markup built with {@link escapeHtml}. */
export function renderPage(title: string, body: string): string {
  return (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeHtml(title)} · Tollgate</title><style>` +
    'body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1d2330;line-height:1.5}' +
    'h1{font-size:1.4rem}code,pre{font-family:ui-monospace,monospace;background:#f2f4f8;border-radius:4px}' +
    'pre{padding:.75rem;white-space:pre-wrap;word-break:break-all;user-select:all}' +
    'table{border-collapse:collapse}td,th{padding:.25rem .75rem;border-bottom:1px solid #dde1ea;text-align:left}' +
    '.muted{color:#5b6475;font-size:.9rem}button{font:inherit;padding:.3rem .9rem}' +
    `</style></head><body>${body}</body></html>`
  );
}

/** Sends a complete response with a known length; `extra` headers are added. */
export function send(res: ServerResponse, status: number, contentType: string, body: string, extra: OutgoingHttpHeaders = {}): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...extra, 'content-type': contentType, 'content-length': bytes.length });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

export function sendHtml(res: ServerResponse, status: number, title: string, body: string, extra: OutgoingHttpHeaders = {}): void {
  send(res, status, 'text/html; charset=utf-8', renderPage(title, body), { ...PAGE_SECURITY_HEADERS, ...extra });
}

export function sendJson(res: ServerResponse, status: number, value: unknown, extra: OutgoingHttpHeaders = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
}

/** What an error response says, in both forms. */
export interface ErrorResponse {
  readonly status: number;
  /** Stable machine-readable code for JSON clients (`forbidden`, `bad_request`, ...). */
  readonly error: string;
  /** Page heading. */
  readonly title: string;
  /** One or two sentences for people: what happened and what to do. */
  readonly message: string;
  readonly requestId: string;
  /** The policy decision's reason, or the parser's problem. */
  readonly reason?: string;
  readonly headers?: OutgoingHttpHeaders;
}

/** An error as an HTML page for browsers or JSON for everyone else, with the request id in both. */
export function sendError(res: ServerResponse, html: boolean, error: ErrorResponse): void {
  const headers = error.headers ?? {};
  if (html) {
    const reason = error.reason === undefined ? '' : `<p class="muted">Reason: <code>${escapeHtml(error.reason)}</code></p>`;
    const body =
      `<h1>${escapeHtml(error.title)}</h1><p>${escapeHtml(error.message)}</p>${reason}` +
      `<p class="muted">Request id: <code>${escapeHtml(error.requestId)}</code></p>`;
    sendHtml(res, error.status, error.title, body, headers);
    return;
  }
  const json: Record<string, string> = { error: error.error, message: error.message };
  if (error.reason !== undefined) json['reason'] = error.reason;
  json['request_id'] = error.requestId;
  sendJson(res, error.status, json, headers);
}
