import { randomBytes } from 'node:crypto';

/** Text made safe for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A fresh CSP nonce (CSP Level 3 §6.1.1: at least 128 bits, base64). */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export interface PolicyOptions {
  readonly nonce: string;
  /** Origins a form on the page may submit to or be redirected to, besides the page's own. */
  readonly formAction?: readonly string[];
  /** The page runs its own inline script (nonce-bound) and opens connections to its own origin. */
  readonly script?: boolean;
}

/**
 * Response headers of a demo page: a Content Security Policy that allows only the page's own
 * nonce-bound style (and script, when it has one), no framing, and no referrer.
 */
export function pageHeaders(options: PolicyOptions): Record<string, string> {
  const directives = [
    "default-src 'none'",
    `style-src 'nonce-${options.nonce}'`,
    options.script === true ? `script-src 'nonce-${options.nonce}'` : null,
    options.script === true ? "connect-src 'self'" : null,
    // Browsers apply form-action to the redirects that follow a submission too, so the origins
    // a login or logout form ends up at must be listed.
    `form-action ${["'self'", ...(options.formAction ?? [])].join(' ')}`,
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].filter((directive): directive is string => directive !== null);
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': directives.join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

export interface PageOptions {
  readonly title: string;
  readonly nonce: string;
  /** HTML of the page's `<main>`; the caller escapes what it interpolates. */
  readonly body: string;
  /** Inline script text, bound to the nonce. */
  readonly script?: string;
}

/** A whole HTML page in the demo's look: no external assets, readable without CSS. */
export function renderPage(options: PageOptions): string {
  const script = options.script === undefined ? '' : `<script nonce="${options.nonce}">${options.script}</script>`;
  return (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeHtml(options.title)}</title><style nonce="${options.nonce}">${STYLE}</style></head>` +
    `<body><main>${options.body}</main>${script}</body></html>`
  );
}

const STYLE = [
  ':root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;--line:#d8dce3;--accent:#1f5fbf;--bad:#a4161a;--good:#1b6b3a}',
  '@media (prefers-color-scheme:dark){:root{--fg:#e8ebf0;--muted:#a3abb9;--bg:#14171c;--card:#1d2128;--line:#343a45;--accent:#7fb0ff;--bad:#ff8a8a;--good:#7fd69b}}',
  '*{box-sizing:border-box}',
  'body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}',
  'main{max-width:46rem;margin:2rem auto;padding:0 1rem}',
  'h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}',
  'p{margin:.5rem 0}.muted{color:var(--muted)}',
  'section,form.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}',
  'label{display:block;font-weight:600;margin:.75rem 0 .25rem}',
  'input{width:100%;padding:.5rem .6rem;font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:6px}',
  'input:focus,button:focus{outline:3px solid var(--accent);outline-offset:1px}',
  'button{margin-top:1rem;padding:.5rem 1rem;font:inherit;font-weight:600;color:#fff;background:var(--accent);border:0;border-radius:6px;cursor:pointer}',
  'button.secondary{background:transparent;color:var(--accent);border:1px solid var(--accent)}',
  'table{width:100%;border-collapse:collapse;margin:.5rem 0}caption{text-align:left;font-weight:600;padding:.25rem 0}',
  'th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}',
  'td form{margin:0}td button{margin:0;padding:.25rem .75rem}',
  'code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}',
  'dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}',
  '.error{color:var(--bad);font-weight:600}.ok{color:var(--good);font-weight:600}',
  '.row{display:flex;gap:.75rem;flex-wrap:wrap;align-items:flex-end}.row>div{flex:1 1 10rem}',
].join('');
