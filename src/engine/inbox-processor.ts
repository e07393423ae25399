// The inbox processor: applies the status updates the notification receiver stored as pending.
// The receiver only stores (it answers the Market once the row is committed); each row is applied
// here as an observation at the notification's own time, so a duplicate or a late one changes
// nothing the machine has seen newer, and is marked done in the same transaction.

import { OrderStatusUpdatedNotificationSchema } from '../notifications/schemas.js';
import type { InboxRow } from '../store/inbox.js';
import type { Store, StoreTx } from '../store/port.js';
import type { CampaignConfig } from './commands.js';
import { inLockOrder } from './concurrency.js';
import { EngineError } from './errors.js';
import type { OrderBook } from './order-book.js';

/** The one type the receiver leaves pending; the others it settles as it stores them. */
const STATUS_UPDATED = 'ORDER_STATUS_UPDATED';

/** Rows per transaction: large enough to amortise a commit, small enough not to hold the writer long. */
const ROWS_PER_TRANSACTION = 200;

export interface InboxProcessorDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly clock: () => number;
}

export class InboxProcessor {
  readonly #d: InboxProcessorDeps;

  constructor(deps: InboxProcessorDeps) {
    this.#d = deps;
  }

  /**
   * Applies every pending row, in transactions of up to 200 rows; returns how many rows it
   * settled. A store error rolls its transaction back whole (its rows stay pending for the next pass).
   */
  async processPending(): Promise<number> {
    let total = 0;
    for (;;) {
      const taken = await this.#d.store.transaction(async (tx) => {
        const rows = await tx.inbox.takePending(ROWS_PER_TRANSACTION);
        const now = this.#d.clock();
        for (const row of inLockOrder(rows, (r) => r.order_id ?? 0)) await this.#settle(tx, row, now);
        return rows.length;
      });
      total += taken;
      if (taken < ROWS_PER_TRANSACTION) return total;
    }
  }

  async #settle(tx: StoreTx, row: InboxRow, now: number): Promise<void> {
    if (row.type !== STATUS_UPDATED) return tx.inbox.finish(row.id, 'ignored', now, `${row.type} is not applied from the inbox.`);
    const update = OrderStatusUpdatedNotificationSchema.safeParse(parseJson(row.body));
    if (!update.success) return tx.inbox.finish(row.id, 'ignored', now, `The stored body is not an ${STATUS_UPDATED} notification.`);
    const n = update.data;
    if (!this.#d.campaigns.has(n.campaignId)) return tx.inbox.finish(row.id, 'ignored', now, `Campaign ${n.campaignId} is not configured.`);
    try {
      // Tracks an order the engine does not know yet (the notification may be the first news of
      // it); a tracked one is observed, and an older observation than its own changes nothing.
      await this.#d.orders.track(tx, { orderId: n.orderId, campaignId: n.campaignId, status: n.status, substatus: n.substatus, observedAt: Date.parse(n.updatedAt) }, 'notification', now);
    } catch (error) {
      // This order's trouble (another campaign's order under the id, a snapshot from a newer
      // engine) must not hold the queue; it is written on the row for whoever looks.
      if (!(error instanceof EngineError)) throw error;
      return tx.inbox.finish(row.id, 'done', now, `${error.code}: ${error.message}`);
    }
    await tx.inbox.finish(row.id, 'done', now);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
