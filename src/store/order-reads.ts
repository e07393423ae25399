// "Read this order" requests: a notification that says an order changed (ORDER_CREATED, …) asks
// for a read, and the reader fetches the due ones in batches, one getBusinessOrders call per
// business. One row per order: asking again while a read is waiting or running merges into it,
// and `requested_at` tells a read that started before the latest ask (its answer may predate
// the change) from one that started after.
//
// Lease times are on the store's clock, as the outbox's (src/store/outbox.ts): PostgreSQL ignores
// the caller's `now` for leases and uses the database's own clock; `now` still sets due times and
// requested_at, which follow the engine's clock.

export interface OrderReadRow {
  readonly order_id: number;
  readonly campaign_id: number;
  readonly business_id: number;
  /** Why it is read: the notification type that asked, e.g. ORDER_CREATED. The latest one wins. */
  readonly reason: string;
  /** The last time it was asked for (epoch ms, engine clock): a read that started before this does not settle it. */
  readonly requested_at: number;
  readonly due_at: number;
  readonly attempts: number;
  readonly lease_owner: string | null;
  readonly lease_expires_at: number | null;
}

export interface OrderReadsPort {
  /**
   * Asks for a read of the order: inserts the row (due at `now`, attempts 0), or for one already
   * there sets reason and requested_at = max(requested_at, now), due_at = min(due_at, now) and
   * keeps its lease (and campaign, business and attempts).
   */
  request(row: { readonly orderId: number; readonly campaignId: number; readonly businessId: number; readonly reason: string; readonly now: number }): Promise<void>;
  /** Businesses with rows due at `now` and free (no lease, or an expired one), the longest-waiting first. */
  dueBusinesses(now: number): Promise<number[]>;
  /**
   * Leases up to `limit` due, free rows of `businessId` for `owner` until now + leaseMs (database
   * clock on PostgreSQL, as outbox leases), oldest due first (by due_at, then order_id). A row
   * another transaction holds right now is skipped, not waited for.
   */
  lease(businessId: number, owner: string, now: number, leaseMs: number, limit: number): Promise<OrderReadRow[]>;
  /**
   * The read that started at `startedAt` answered for the order: deletes its row unless it was
   * asked for again after `startedAt` (then it stays, due, lease cleared). No-op for no row.
   */
  complete(orderId: number, startedAt: number): Promise<void>;
  /** Gives the row back (lease cleared) due at `dueAt`, attempts + 1. No-op for a row `owner` does not hold. */
  release(orderId: number, owner: string, dueAt: number): Promise<void>;
  /** The order's row, if a read of it is asked for: for the inspector and tests. */
  get(orderId: number): Promise<OrderReadRow | undefined>;
  /** How many rows there are. */
  count(): Promise<number>;
  /** The earliest due_at of a free row, or undefined. */
  nextDueAt(now: number): Promise<number | undefined>;
}
