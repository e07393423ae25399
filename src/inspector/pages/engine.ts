// Budgets and counters: every rate-limit budget (remaining, window end, 420 block, the latest
// 420, requests in flight), the campaigns halted by a refused key, the outbox and operations by state, and the
// counters every engine on the database stored.

import { num } from '../../format.js';
import type { EngineView } from '../engine-view.js';
import { html } from '../html.js';
import { layout, when, type PageContext } from './layout.js';

function counts(title: string, values: Readonly<Record<string, number>>) {
  const rows = Object.entries(values).map(([name, n]) => html`<tr><td><code>${name}</code></td><td class="num">${num(n)}</td></tr>`);
  return html`<div class="panel"><h2>${title}</h2>${rows.length > 0 ? html`<table><tbody>${rows}</tbody></table>` : html`<p class="note">none</p>`}</div>`;
}

export function enginePage(ctx: PageContext, view: EngineView): string {
  const now = ctx.now;
  const budgets = view.budgets.map((b) => {
    const windowOver = b.window_ends_at <= now;
    return html`<tr data-resource="${b.resource_key}">
<td><code>${b.scope}</code></td><td><code>${b.operation}</code></td>
<td class="num">${windowOver ? html`<span class="note" title="the next request opens a new window">${num(b.capacity)} (new window)</span>` : html`${num(b.remaining)} / ${num(b.capacity)}`}</td>
<td>${when(b.window_ends_at, now)}</td>
<td>${b.blocked_until > now ? html`<span class="error">420: until ${when(b.blocked_until, now)}</span>` : b.blocked_until > 0 ? html`<span class="note">last ${when(b.blocked_until, now)}</span>` : html`<span class="note">—</span>`}</td>
<td data-col="last-420">${when(b.last_rate_limited_at, now)}</td>
<td class="num" data-col="in-flight">${b.inFlight}</td>
<td>${when(b.updated_at, now)}</td>
</tr>`;
  });
  const halts = view.halts.map((h) => html`<tr><td class="num">${h.campaign_id}</td><td><code>${h.code}</code></td><td>${h.message}</td><td>${h.owner}</td><td>${when(h.at, now)}</td></tr>`);
  const campaigns = view.campaigns.map((c) => html`<tr><td class="num">${c.campaign_id}</td><td class="num">${c.business_id}</td><td>${c.model}</td></tr>`);
  const body = html`<h1>Budgets &amp; counters</h1>
<section id="engine" data-parts="budgets counters outbox operations halts">
<h2>Budgets</h2>
<p class="note">One per Market method and scope, shared by every engine on the database. In flight: requests holding a parallel slot of the scope (a lease of a process that died counts until its expiry is noticed).</p>
<table class="budgets"><thead><tr><th>Scope</th><th>Method</th><th class="num">Remaining</th><th>Window ends</th><th>Blocked (420)</th><th>Last 420</th><th class="num">In flight</th><th>Updated</th></tr></thead>
<tbody>${budgets.length > 0 ? budgets : html`<tr><td colspan="8" class="note">No request was made yet.</td></tr>`}</tbody></table>
<h2>Halted campaigns</h2>
${halts.length > 0 ? html`<table><thead><tr><th>Campaign</th><th>Code</th><th>Message</th><th>Engine</th><th>At</th></tr></thead><tbody>${halts}</tbody></table>` : html`<p class="note">none: every campaign may send</p>`}
<div class="grid">
${counts('Outbox', view.outbox)}
${counts('Operations', view.operations)}
${counts('Counters (every engine, summed)', view.counters)}
<div class="panel"><h2>Campaigns</h2><table><thead><tr><th>Campaign</th><th>Business</th><th>Model</th></tr></thead><tbody>${campaigns}</tbody></table></div>
</div>
</section>`;
  return layout(ctx, { title: 'Budgets & counters', section: 'engine', body });
}
