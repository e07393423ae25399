// `ym-orders status [id]`: one order (its Market status, pending change, last outcome and
// what the seller may do next), or the whole database summarised by status.

import type { Command } from 'commander';
import { allowedTargets } from '../../../machines/explain.js';
import type { Engine } from '../../engine/engine.js';
import type { OrderState } from '../../engine/order-book.js';
import { act, type Cli } from '../command.js';
import { withEngine } from '../context.js';
import type { OutboxRow } from '../../store/outbox.js';
import { isoTime, label, num, seconds } from '../../format.js';
import { describeStatusRows, statusRows } from '../status-table.js';
import { parseOrderId } from '../input.js';

/** The outbox row of the order's open change: its sends, last error and next attempt. */
async function changeRow(engine: Engine, order: OrderState): Promise<OutboxRow | undefined> {
  const pending = order.pending;
  return pending ? engine.store.read((tx) => tx.outbox.get(order.orderId, pending.requestNo)) : undefined;
}

// Only these states wait for next_attempt_at (a send, or a read-back of an unknown outcome).
const WAITING_STATES: ReadonlySet<string> = new Set(['queued', 'uncertain']);

function outboxJson(row: OutboxRow | undefined): Record<string, unknown> | null {
  if (!row) return null;
  return {
    state: row.state,
    attempts: row.attempts,
    lastError: row.last_error,
    nextAttemptAt: WAITING_STATES.has(row.state) ? row.next_attempt_at : null,
  };
}

function orderJson(order: OrderState, row: OutboxRow | undefined, journalEntries: number): Record<string, unknown> {
  return {
    ...order,
    allowedTargets: allowedTargets({ status: order.status, substatus: order.substatus ?? undefined }, order.model),
    journalEntries,
    outbox: outboxJson(row),
  };
}

function describeNextAttempt(at: number, now: number): string {
  return at <= now ? `${isoTime(at)} (due now; the next flush or run tries it)` : `${isoTime(at)} (in ${seconds(at - now)})`;
}

function describeOrder(engine: Engine, order: OrderState, row: OutboxRow | undefined): string[] {
  const campaign = engine.campaigns.get(order.campaignId);
  const next = allowedTargets({ status: order.status, substatus: order.substatus ?? undefined }, order.model);
  const kv = (name: string, value: string): string => `  ${name.padEnd(10)} ${value}`;
  const lines = [
    `order ${order.orderId}  ${label(order.status, order.substatus)}`,
    kv('campaign', `${order.campaignId} (${order.model}${campaign ? `, business ${campaign.businessId}` : ''})`),
    kv('observed', `${isoTime(order.observedAt)} (machine state ${order.marketState})`),
    kv('change', order.pending ? `${order.change}: ${label(order.pending.status, order.pending.substatus)}${order.pending.realDeliveryDate ? ` realDeliveryDate ${order.pending.realDeliveryDate}` : ''}, sent ${order.pending.sends} time(s)` : order.change),
  ];
  if (order.chain) {
    const c = order.chain;
    const next = c.steps[c.step];
    lines.push(kv('chain', `step ${c.step} of ${c.of} to ${label(c.target.status, c.target.substatus)} (${c.stopRequested ? 'stopping after this step' : next ? `next: ${next.ruleId}` : 'the last step'})`));
  }
  if (order.pending?.operationId) lines.push(kv('operation', `${order.pending.operationId} (waiting for the Market)`));
  if (order.pending?.uncertainReason) lines.push(kv('uncertain', order.pending.uncertainReason));
  if (row?.last_error) lines.push(kv('last error', row.last_error));
  if (row && WAITING_STATES.has(row.state)) lines.push(kv('next try', describeNextAttempt(row.next_attempt_at, engine.clock())));
  if (order.lastOutcome) {
    const o = order.lastOutcome;
    const chain = o.chain ? ` (chain step ${o.chain.step} of ${o.chain.of}: ${o.chain.end}${o.chain.stopReason ? ` [${o.chain.stopReason.code}]` : ''})` : '';
    lines.push(kv('last', `${o.kind} ${label(o.status, o.substatus)} at ${isoTime(o.at)}${chain}${o.reason ? `: ${o.reason}` : ''}`));
  }
  lines.push(kv('next', next.length > 0 ? next.map((t) => label(t.status, t.substatus)).join(', ') : 'no seller change from here'));
  return lines;
}

export function registerStatus(program: Command, cli: Cli): void {
  program
    .command('status')
    .description('show one order, or every order summarised by status')
    .argument('[id]', 'order id')
    .addHelpText('after', '\nExample:\n  ym-orders status\n  ym-orders status 48000000001 --json')
    .action(
      act<Record<string, never>, [string | undefined]>(cli, async ({ io, out, globals }, idText) => {
        const orderId = idText === undefined ? undefined : parseOrderId(idText, '[id]');
        return withEngine(io, globals, { mustExist: true }, async (engine) => {
          if (orderId !== undefined) {
            const order = await engine.getOrder(orderId);
            const row = await changeRow(engine, order);
            const journalEntries = (await engine.history(orderId)).length;
            out.result(() => describeOrder(engine, order, row), () => orderJson(order, row, journalEntries));
            return 0;
          }
          const summary = await engine.summary();
          const rows = statusRows(summary);
          const campaigns = [...engine.campaigns.values()];
          out.result(
            () => [
              `${num(summary.orders)} order(s) in ${engine.store.name}; campaigns: ${campaigns.map((c) => `${c.campaignId} ${c.model}`).join(', ') || 'none'}`,
              ...describeStatusRows(rows),
              `outbox: ${Object.entries(summary.outbox).map(([s, n]) => `${s} ${num(n)}`).join(', ')}`,
              `operations: ${Object.entries(summary.operations).map(([s, n]) => `${s} ${num(n)}`).join(', ') || 'none'}`,
            ],
            () => ({ ...summary, statuses: rows, campaigns }),
          );
          return 0;
        });
      }),
    );
}
