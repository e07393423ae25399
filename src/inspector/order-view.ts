// What the order page shows, read in one consistent view: the row and its machine snapshot, the
// journal, the outbox rows of the pending change and of the last outcome, the latest operation
// and the order's timers.

import type { ChangeOutcome, PendingChange } from '../../machines/order-machine.js';
import { TIMER_KINDS } from '../engine/order-book.js';
import { loadOrderSnapshot, type OrderSnapshot } from '../engine/order-snapshots.js';
import { isYmOrdersError } from '../errors.js';
import type { CampaignRow } from '../store/campaigns.js';
import type { JournalRow } from '../store/journal.js';
import type { OperationRow } from '../store/operations.js';
import type { OrderRow } from '../store/orders.js';
import type { OutboxRow } from '../store/outbox.js';
import type { StoreTx } from '../store/port.js';
import type { TimerRow } from '../store/timers.js';

/** The snapshot as the engine would load it (older machine versions upgraded), or why it cannot be. */
export type LoadedSnapshot = { readonly snapshot: OrderSnapshot } | { readonly error: string };

export function loadSnapshotOf(row: OrderRow): LoadedSnapshot {
  try {
    return { snapshot: loadOrderSnapshot(row.snapshot, row.machine_version, row.order_id) };
  } catch (error) {
    // A snapshot of a newer machine version, or one damaged: the page says so and shows the row.
    return { error: isYmOrdersError(error) ? `[${error.code}] ${error.message}` : String(error) };
  }
}

export function pendingOf(loaded: LoadedSnapshot): PendingChange | null {
  return 'snapshot' in loaded ? loaded.snapshot.context.pending : null;
}

export function lastOutcomeOf(loaded: LoadedSnapshot): ChangeOutcome | null {
  return 'snapshot' in loaded ? loaded.snapshot.context.lastOutcome : null;
}

/** `market.PROCESSING.STARTED`, `change.queued`, … and every ancestor: the states the order is in. */
export function activeStatePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [`${prefix}${value}`];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => [`${prefix}${key}`, ...activeStatePaths(child, `${prefix}${key}.`)]);
}

export interface OrderView {
  readonly row: OrderRow;
  readonly loaded: LoadedSnapshot;
  readonly campaign: CampaignRow | undefined;
  readonly journal: readonly JournalRow[];
  /** The outbox row of the pending change. */
  readonly pendingRow: OutboxRow | undefined;
  /** The outbox row of the change that settled last. */
  readonly outcomeRow: OutboxRow | undefined;
  /** The operation of the pending change, else the latest one the journal shows started. */
  readonly operation: OperationRow | undefined;
  readonly timers: readonly TimerRow[];
}

function latestOperationId(journal: readonly JournalRow[]): string | undefined {
  for (let i = journal.length - 1; i >= 0; i--) {
    const row = journal[i]!;
    if (row.event_type !== 'DISPATCH.OPERATION_STARTED') continue;
    const id = (JSON.parse(row.event) as { operationId?: unknown }).operationId;
    if (typeof id === 'string') return id;
  }
  return undefined;
}

export async function readOrderView(tx: StoreTx, orderId: number): Promise<OrderView | undefined> {
  const row = await tx.orders.get(orderId);
  if (!row) return undefined;
  const loaded = loadSnapshotOf(row);
  const pending = pendingOf(loaded);
  const outcome = lastOutcomeOf(loaded);
  const journal = await tx.journal.forOrder(orderId);
  const operationId = pending?.operationId ?? latestOperationId(journal);
  // The only per-order timer kind; read only for an order whose buyer asked to cancel.
  const cancellationAsked = 'snapshot' in loaded && loaded.snapshot.context.cancellationRequestedAt !== null;
  const timers = cancellationAsked ? (await tx.timers.list(TIMER_KINDS.dbsCancellationAnswer, Number.MAX_SAFE_INTEGER)).filter((t) => t.ref === String(orderId)) : [];
  return {
    row,
    loaded,
    campaign: await tx.campaigns.get(row.campaign_id),
    journal,
    pendingRow: pending ? await tx.outbox.get(orderId, pending.requestNo) : undefined,
    outcomeRow: outcome ? await tx.outbox.get(orderId, outcome.requestNo) : undefined,
    operation: operationId ? await tx.operations.get(operationId) : undefined,
    timers,
  };
}
