// The frame every page shares: the navigation, the database it reads, the live-update badge,
// and the stylesheet and script served by the inspector itself.

import { isoTime, relative } from '../../format.js';
import { html, type SafeHtml } from '../html.js';

export interface PageContext {
  /** Where the inspector is mounted ('' at the root of its own server). */
  readonly base: string;
  /** What the store calls its database (a path, or a URL with its password redacted). */
  readonly dbName: string;
  readonly now: number;
}

export type Section = 'orders' | 'engine' | 'rules';

export interface Page {
  readonly title: string;
  readonly section: Section | undefined;
  readonly body: SafeHtml;
  /** Orders the page shows, whose changes the live updates look for. */
  readonly watch?: readonly number[];
}

const NAV: readonly { section: Section; path: string; label: string }[] = [
  { section: 'orders', path: '/orders', label: 'Orders' },
  { section: 'engine', path: '/engine', label: 'Budgets & counters' },
  { section: 'rules', path: '/rules', label: 'Seller rules' },
];

export function layout(ctx: PageContext, page: Page): string {
  const nav = NAV.map((n) => html`<a href="${ctx.base}${n.path}" class="${n.section === page.section ? 'here' : ''}">${n.label}</a>`);
  return `<!doctype html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · ym-orders inspector</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ctx.base}/assets/inspector.css">
<script src="${ctx.base}/assets/inspector.js" defer></script>
</head>
<body data-base="${ctx.base}" data-watch="${(page.watch ?? []).join(',')}">
<header><span class="brand">ym-orders inspector</span><nav>${nav}</nav><span id="live" data-state="connecting">connecting…</span><span class="db" title="read-only">${ctx.dbName} · read-only · ${isoTime(ctx.now)}</span></header>
<main>
${page.body}
</main>
</body>
</html>`.text}\n`;
}


/** A time as ISO with how long ago (or until) it is, for tables. */
export function when(at: number | null | undefined, now: number): SafeHtml {
  if (at === null || at === undefined) return html`<span class="note">—</span>`;
  // Whole seconds in the table; the exact instant on hover.
  return html`<span title="${isoTime(at)}">${isoTime(Math.floor(at / 1000) * 1000)}</span> <span class="note">(${relative(at, now)})</span>`;
}

export function errorPage(ctx: PageContext, status: number, code: string, message: string): string {
  return layout(ctx, {
    title: `${status}`,
    section: undefined,
    body: html`<h1>${status === 404 ? 'Not found' : status === 400 ? 'Bad request' : 'Cannot show this page'}</h1><p class="error" data-code="${code}">[${code}] ${message}</p><p><a href="${ctx.base}/orders">Orders</a></p>`,
  });
}
