import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { SafeHtml } from './html.js';

/**
 * Responses of the review pages. Every page is sent with a strict Content Security Policy
 * (CSP Level 3): scripts, styles and connections only from the gateway itself, no inline script
 * or style, no plugins, no `<base>`, forms only to the gateway, and no framing by anyone.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export const PAGE_HEADERS: Readonly<OutgoingHttpHeaders> = Object.freeze({
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // Audit data is never cached by browsers or proxies.
  'cache-control': 'no-store',
});

/** Sends a complete body with its length; HEAD gets the headers only. */
export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, extra: OutgoingHttpHeaders = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...PAGE_HEADERS, ...extra, 'content-type': contentType, 'content-length': bytes.length });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

export function sendHtml(res: ServerResponse, status: number, document: SafeHtml, extra: OutgoingHttpHeaders = {}): void {
  send(res, status, 'text/html; charset=utf-8', String(document), extra);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, extra: OutgoingHttpHeaders = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), extra);
}

export function sendText(res: ServerResponse, status: number, text: string, extra: OutgoingHttpHeaders = {}): void {
  send(res, status, 'text/plain; charset=utf-8', text, extra);
}
