// One order: where it is (the machine with its current states highlighted, and what can happen
// next), its pending change with the outbox row, operation and timers, and its journal.

import { orderMachine } from '../../../machines/order-machine.js';
import { label } from '../../format.js';
import { marketStatePath } from '../../engine/order-snapshots.js';
import type { JournalRow } from '../../store/journal.js';
import type { OutboxRow } from '../../store/outbox.js';
import { machineSvg, transitionsFrom } from '../diagram.js';
import { html, type SafeHtml } from '../html.js';
import { activeStatePaths, lastOutcomeOf, pendingOf, type OrderView } from '../order-view.js';
import { layout, when, type PageContext } from './layout.js';

type Entry = readonly [string, SafeHtml | string | number | null | undefined];

function kv(entries: readonly Entry[]): SafeHtml {
  return html`<dl class="kv">${entries.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

function outboxEntries(row: OutboxRow | undefined, now: number): Entry[] {
  if (!row) return [['outbox row', 'none']];
  return [
    ['outbox row', html`<span class="change change-${row.state}">${row.state}</span> <span class="note">#${row.id}, request ${row.request_no}</span>`],
    ['attempts', row.attempts],
    ['read-backs failed', row.read_failures > 0 ? row.read_failures : undefined],
    ['next attempt', row.state === 'queued' || row.state === 'uncertain' ? when(row.next_attempt_at, now) : undefined],
    ['lease', row.lease_owner ? html`${row.lease_owner} until ${when(row.lease_expires_at, now)}` : undefined],
    ['last error', row.last_error ? html`<span class="error">${row.last_error}</span>` : undefined],
    ['idempotency key', html`<code>${row.idempotency_key}</code>`],
    ['queued', when(row.created_at, now)],
    ['row updated', when(row.updated_at, now)],
  ];
}

function journalDetail(row: JournalRow): SafeHtml {
  let pretty = row.event;
  try {
    pretty = JSON.stringify(JSON.parse(row.event), null, 1);
  } catch {
    // shown as stored
  }
  return html`<details><summary>event</summary><pre>${pretty}</pre></details>`;
}

function move(from: string | null, to: string): string {
  return from === null ? `→ ${to}` : from === to ? to : `${from} → ${to}`;
}

function timeline(rows: readonly JournalRow[], now: number): SafeHtml {
  const body = rows.map(
    (r) => html`<tr><td class="num">#${r.row_version}</td><td>${when(r.at, now)}</td><td>${r.source}</td><td><code>${r.event_type}</code></td>
<td>${move(r.from_status === null ? null : label(r.from_status, r.from_substatus), label(r.to_status, r.to_substatus))}</td>
<td>${r.from_change === r.to_change ? r.to_change : move(r.from_change, r.to_change)}</td><td class="detail">${journalDetail(r)}</td></tr>`,
  );
  return html`<table class="timeline"><thead><tr><th>#</th><th>At</th><th>Source</th><th>Event</th><th>Status</th><th>Change</th><th></th></tr></thead><tbody>${body}</tbody></table>`;
}

export function orderPage(ctx: PageContext, view: OrderView): string {
  const { row, loaded } = view;
  const now = ctx.now;
  const pending = pendingOf(loaded);
  const outcome = lastOutcomeOf(loaded);
  const active = 'snapshot' in loaded ? activeStatePaths(loaded.snapshot.value) : [];
  const next = transitionsFrom(orderMachine, active);
  const machine =
    'snapshot' in loaded
      ? html`<div class="machine-row">${machineSvg(orderMachine, new Set(active))}
<div><h2>From the current states</h2>
<table class="next"><thead><tr><th>State</th><th>Event</th><th>Guard</th><th>Goes to</th></tr></thead><tbody>${next.map(
          (t) => html`<tr><td><code>${t.from}</code></td><td><code>${t.event}</code></td><td>${t.guard}</td><td>${t.targets.length > 0 ? t.targets.join(', ') : html`<span class="note">stays (actions only)</span>`}</td></tr>`,
        )}</tbody></table></div></div>`
      : html`<p class="error">${loaded.error}</p>`;
  const body = html`<section id="order" data-parts="orders outbox operations">
<h1>Order ${row.order_id} <span class="change change-${row.change_state}">${row.change_state}</span></h1>
<div class="grid">
<div class="panel"><h2>Order</h2>${kv([
    ['campaign', `${row.campaign_id}${view.campaign ? ` (business ${view.campaign.business_id})` : ''}`],
    ['model', row.model],
    ['status', label(row.status, row.substatus)],
    ['machine state', 'snapshot' in loaded ? html`<code>${marketStatePath(loaded.snapshot.value)}</code>` : undefined],
    ['cancellation', 'snapshot' in loaded && loaded.snapshot.context.cancellationRequestedAt !== null ? html`asked ${when(loaded.snapshot.context.cancellationRequestedAt, now)}` : undefined],
    ['observed', when(row.observed_at, now)],
    ['updated', when(row.updated_at, now)],
    ['row version', row.row_version],
    ['machine version', row.machine_version],
  ])}</div>
<div class="panel"><h2>Pending change</h2>${
    pending
      ? kv([
          ['target', label(pending.status, pending.substatus || null)],
          ['real delivery date', pending.realDeliveryDate],
          ['requested', when(pending.requestedAt, now)],
          ['sends', pending.sends],
          ['sent', pending.sentAt !== undefined ? when(pending.sentAt, now) : undefined],
          ['not before', pending.notBefore !== undefined ? when(pending.notBefore, now) : undefined],
          ['uncertain', pending.uncertainReason],
          ['read back at', pending.readBackAt !== undefined ? when(pending.readBackAt, now) : undefined],
          ...outboxEntries(view.pendingRow, now),
        ])
      : html`<p class="note">none</p>`
  }</div>
<div class="panel"><h2>Last outcome</h2>${
    outcome
      ? kv([
          ['outcome', html`<span class="outcome-${outcome.kind}">${outcome.kind}</span>`],
          ['target', label(outcome.status, outcome.substatus || null)],
          ['at', when(outcome.at, now)],
          ['reason', outcome.reason],
          ['rejection', outcome.rejection ? html`<code>${outcome.rejection.code}</code> ${outcome.rejection.message}` : undefined],
          ...outboxEntries(view.outcomeRow, now),
        ])
      : html`<p class="note">none</p>`
  }</div>
<div class="panel"><h2>Operation</h2>${
    view.operation
      ? kv([
          ['id', html`<code>${view.operation.operation_id}</code>`],
          ['type', view.operation.operation_type],
          ['state', view.operation.state],
          ['next poll', view.operation.state === 'inProgress' ? when(view.operation.next_poll_at, now) : undefined],
          ['deadline', when(view.operation.deadline_at, now)],
          ['started', when(view.operation.created_at, now)],
        ])
      : html`<p class="note">none</p>`
  }</div>
<div class="panel"><h2>Timers</h2>${
    view.timers.length > 0 ? kv(view.timers.map((t): Entry => [t.kind, when(t.due_at, now)])) : html`<p class="note">none</p>`
  }</div>
</div>
<h2>Machine</h2>
<p class="note">The order machine's regions; the states the order is in are highlighted.</p>
${machine}
<h2>Journal</h2>
${timeline(view.journal, now)}
</section>`;
  return layout(ctx, { title: `Order ${row.order_id}`, section: 'orders', body, watch: [row.order_id] });
}
