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

export interface OrdersPort {
  get(orderId: number): Promise<OrderRow | undefined>;
  /**
   * Inserts at row_version 1, created_at = updated_at. False (nothing written) when the order is
   * already there: another transaction, perhaps of another process, tracked it first; if that one
   * is still open, the insert waits for it to end.
   */
  insert(row: OrderWrite): Promise<boolean>;
  /**
   * Writes the row at row_version + 1 (its campaign, model and created_at never change); false
   * (nothing written) when it is no longer at `expectedRowVersion`, or not there.
   */
  update(row: OrderWrite, expectedRowVersion: number): Promise<boolean>;
  /** Orders per status, substatus and change state, sorted by those three (no substatus first). */
  countByStatus(): Promise<StatusCount[]>;
}
