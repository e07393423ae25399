/** One tracked order: its machine snapshot plus the columns queries need. */
export interface OrderRow {
  readonly order_id: number;
  readonly campaign_id: number;
  readonly model: string;
  readonly status: string;
  readonly substatus: string | null;
  readonly change_state: string;
  readonly observed_at: number;
  readonly machine_version: number;
  readonly snapshot: string;
  /** 1 on insert, one more on every update. */
  readonly row_version: number;
  readonly created_at: number;
  readonly updated_at: number;
}

export type OrderWrite = Omit<OrderRow, 'created_at' | 'row_version'>;

export interface StatusCount {
  readonly status: string;
  readonly substatus: string | null;
  readonly change_state: string;
  readonly n: number;
}

/** Which orders {@link OrdersPort.list} returns: every field given must match; an absent one matches any. */
export interface OrderListFilter {
  readonly campaignId?: number;
  /** Compared verbatim: a status no list has matches the orders stored with it. */
  readonly status?: string;
  /** A state of the order machine's change region: `idle`, `queued`, `sending`, `awaitingOperation`, `uncertain`. */
  readonly changeState?: string;
  /**
   * Stuck orders only: a change open (not `idle`) on a row last updated before this time (epoch
   * ms, exclusive), i.e. nothing moved the order since.
   */
  readonly stuckBefore?: number;
}

export interface OrdersPort {
  get(orderId: number): Promise<OrderRow | undefined>;
  /**
   * Holds these orders for the rest of this write transaction, as reading each of them to change
   * it does, in order-id order: the dispatcher takes a batch's orders before their outbox rows,
   * as every other writer does, in one statement instead of one read per order. Orders not there
   * are skipped. An adapter whose write transaction already holds every row (SQLite's holds the
   * file) does nothing.
   */
  lock(orderIds: readonly number[]): Promise<void>;
  /**
   * Inserts at row_version 1, created_at = updated_at. False (nothing written) when the order is
   * already there: another transaction, perhaps of another process, tracked it first; if that one
   * is still open, the insert waits for it to end.
   */
  insert(row: OrderWrite): Promise<boolean>;
  /**
   * Writes the row at row_version + 1 (its campaign, model and created_at never change); false
   * (nothing written) when it is no longer at `expectedRowVersion`, or not there. With
   * `expectedSnapshot`, also false unless the row still holds that very snapshot text: the
   * write then proves the row is the one the caller remembers, without reading it first.
   */
  update(row: OrderWrite, expectedRowVersion: number, expectedSnapshot?: string): Promise<boolean>;
  /** Orders per status, substatus and change state, sorted by those three (no substatus first). */
  countByStatus(): Promise<StatusCount[]>;
  /**
   * At most `limit` orders matching `filter` whose id is greater than `afterOrderId` (0 for the
   * first page), by order id: the next page starts after the last id of this one. A page costs
   * about the same however deep it is, with indexes for each filter over a million orders.
   */
  list(filter: OrderListFilter, afterOrderId: number, limit: number): Promise<OrderRow[]>;
}
