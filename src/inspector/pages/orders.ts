// The orders page: the filter form, one page of orders and the link to the next.

import { label } from '../../format.js';
import type { CampaignRow } from '../../store/campaigns.js';
import { html } from '../html.js';
import { CHANGE_STATES, STATUS_CHOICES, DEFAULT_PAGE_SIZE, type OrderFilter, type OrderPage } from '../order-list.js';
import { loadSnapshotOf, pendingOf } from '../order-view.js';
import { layout, when, type PageContext } from './layout.js';

function option(value: string, text: string, selected: boolean) {
  return html`<option value="${value}"${selected ? html` selected` : ''}>${text}</option>`;
}

/** The query string of `filter` with `after` set (or dropped). */
function pageQuery(filter: OrderFilter, after: number | undefined): string {
  const q = new URLSearchParams();
  if (filter.campaignId !== undefined) q.set('campaign', String(filter.campaignId));
  if (filter.status !== undefined) q.set('status', filter.status);
  if (filter.change !== undefined) q.set('change', filter.change);
  if (filter.stuckMinutes !== undefined) q.set('stuck', String(filter.stuckMinutes));
  if (filter.limit !== DEFAULT_PAGE_SIZE) q.set('limit', String(filter.limit));
  if (after !== undefined) q.set('after', String(after));
  const text = q.toString();
  return text ? `?${text}` : '';
}

function filterForm(ctx: PageContext, filter: OrderFilter, campaigns: readonly CampaignRow[]) {
  const statuses = filter.status !== undefined && !STATUS_CHOICES.includes(filter.status) ? [...STATUS_CHOICES, filter.status] : STATUS_CHOICES;
  return html`<form id="filters" class="filters" method="get" action="${ctx.base}/orders">
<label>Campaign<select name="campaign">${option('', 'any', filter.campaignId === undefined)}${campaigns.map((c) => option(String(c.campaign_id), `${c.campaign_id} ${c.model}`, filter.campaignId === c.campaign_id))}</select></label>
<label>Status<select name="status">${option('', 'any', filter.status === undefined)}${statuses.map((s) => option(s, s, filter.status === s))}</select></label>
<label>Change<select name="change">${option('', 'any', filter.change === undefined)}${CHANGE_STATES.map((s) => option(s, s, filter.change === s))}</select></label>
<label>Stuck longer than (min)<input type="number" name="stuck" min="0" step="1" value="${filter.stuckMinutes ?? ''}" placeholder="any"></label>
${filter.limit !== DEFAULT_PAGE_SIZE ? html`<input type="hidden" name="limit" value="${filter.limit}">` : ''}
<button type="submit">Apply</button> <a href="${ctx.base}/orders">clear</a>
</form>`;
}

export function ordersPage(ctx: PageContext, filter: OrderFilter, page: OrderPage, campaigns: readonly CampaignRow[]): string {
  const rows = page.rows.map((row) => {
    const pending = pendingOf(loadSnapshotOf(row));
    return html`<tr data-order="${row.order_id}">
<td><a href="${ctx.base}/orders/${row.order_id}">${row.order_id}</a></td>
<td class="num" data-col="campaign">${row.campaign_id}</td>
<td>${row.model}</td>
<td data-col="status">${label(row.status, row.substatus)}</td>
<td data-col="change"><span class="change change-${row.change_state}">${row.change_state}</span></td>
<td>${pending ? label(pending.status, pending.substatus || null) : ''}${pending && pending.sends > 0 ? html` <span class="note">sent ${pending.sends}×</span>` : ''}</td>
<td>${when(row.updated_at, ctx.now)}</td>
</tr>`;
  });
  const first = filter.afterOrderId !== undefined ? html`<a href="${ctx.base}/orders${pageQuery(filter, undefined)}">« first page</a>` : '';
  const next = page.nextAfter !== undefined ? html`<a rel="next" href="${ctx.base}/orders${pageQuery(filter, page.nextAfter)}">next page »</a>` : html`<span class="note">last page</span>`;
  const body = html`<h1>Orders</h1>
${filterForm(ctx, filter, campaigns)}
<section id="orders" data-parts="outbox orders">
<p class="note">Every tracked order, by id; open one by its id: <code>${ctx.base}/orders/&lt;id&gt;</code>.</p>
<table class="orders">
<thead><tr><th>Order</th><th class="num">Campaign</th><th>Model</th><th>Status</th><th>Change</th><th>Pending target</th><th>Updated</th></tr></thead>
<tbody>${rows.length > 0 ? rows : html`<tr><td colspan="7" class="note">No order matches.</td></tr>`}</tbody>
</table>
<div class="pager">${first}${next}</div>
</section>`;
  return layout(ctx, { title: 'Orders', section: 'orders', body, watch: page.rows.map((r) => r.order_id) });
}
