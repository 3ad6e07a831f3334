import type { AuditAssets } from './assets.js';
import { html, type SafeHtml } from './html.js';
import type { AuditCaller } from './route.js';

export type NavItem = 'sessions' | 'records' | 'key';

export interface PageFrame {
  readonly title: string;
  readonly assets: AuditAssets;
  readonly caller: AuditCaller | null;
  readonly current: NavItem | null;
  /** The chain banner; absent on pages for callers without the audit permission. */
  readonly banner: SafeHtml | null;
  readonly body: SafeHtml;
}

const NAV: readonly { readonly item: NavItem; readonly href: string; readonly label: string }[] = [
  { item: 'sessions', href: '/audit', label: 'Sessions' },
  { item: 'records', href: '/audit/records', label: 'Records' },
  { item: 'key', href: '/audit/verifier-key', label: 'Verifier key' },
];

/** A whole review page: header with navigation, the chain banner, the page's own content. */
export function renderPage(frame: PageFrame): SafeHtml {
  const { stylesheet, script } = frame.assets;
  const nav = frame.banner === null ? '' : html`<nav aria-label="Audit log"><ul>${NAV.map(
    (entry) => html`<li><a href="${entry.href}"${entry.item === frame.current ? html` aria-current="page"` : ''}>${entry.label}</a></li>`,
  )}</ul></nav>`;
  const who = frame.caller === null ? '' : html`<span class="who">Signed in as <strong>${frame.caller.user}</strong> · <a href="/">Home</a></span>`;
  return html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · Tollgate audit log</title>
<link rel="stylesheet" href="${stylesheet.path}" integrity="${stylesheet.integrity}">
<script type="module" src="${script.path}" integrity="${script.integrity}"></script>
</head><body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="site"><span class="brand">Tollgate · Audit log</span>${nav}${who}</header>
<main id="main">${frame.banner}${frame.body}</main>
</body></html>`;
}
