/** One event that changed an order (append-only). */
export interface JournalRow {
  readonly seq: number;
  readonly order_id: number;
  readonly row_version: number;
  readonly event_type: string;
  readonly event: string;
  readonly source: string;
  readonly from_status: string | null;
  readonly from_substatus: string | null;
  readonly from_change: string | null;
  readonly to_status: string;
  readonly to_substatus: string | null;
  readonly to_change: string;
  readonly at: number;
}

export type JournalWrite = Omit<JournalRow, 'seq'>;

/** How often the journal saw an order move from one status to another, by who moved it. */
export interface TransitionCount {
  readonly fromStatus: string;
  readonly fromSubstatus: string | null;
  readonly toStatus: string;
  readonly toSubstatus: string | null;
  /** `seller` for a change the engine sent (a DISPATCH.* event), `market` for any other. */
  readonly by: 'seller' | 'market';
  readonly count: number;
}

export interface JournalPort {
  /** Appends a row; returns its sequence number, greater than every earlier one. (order_id, row_version) is unique. */
  append(row: JournalWrite): Promise<number>;
  /** The order's rows, oldest first. */
  forOrder(orderId: number): Promise<JournalRow[]>;
  /**
   * Status moves (status or substatus changed, from a known status: tracking an order is not a
   * move), the most frequent first (ties in no set order).
   */
  transitionCounts(): Promise<TransitionCount[]>;
}
