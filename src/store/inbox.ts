// The inbox: one row per notification the Market sent us (POST /notification), deduplicated by a
// digest of what it says, so a repeat (the Market retries until it hears 200) is stored once and
// applied once. The receiver writes the row and answers; the work it implies is done from the
// row, in its own transaction (takePending … finish), so a crash between the two loses nothing.

export const INBOX_STATES = ['pending', 'done', 'ignored'] as const;
export type InboxState = (typeof INBOX_STATES)[number];

export interface InboxRow {
  readonly id: number;
  /** A digest of what the notification says (type, ids, event time, payload): a repeat has the same key. */
  readonly dedupe_key: string;
  /** notificationType as sent; unknown types are kept verbatim. */
  readonly type: string;
  readonly campaign_id: number | null;
  readonly order_id: number | null;
  /** The event's own time (epoch ms) when it carries one. */
  readonly event_at: number | null;
  /** The notification as validated, JSON. */
  readonly body: string;
  /** pending: still to be applied (ORDER_STATUS_UPDATED); done: applied (or what it implies stored with it); ignored: a type or campaign we do not act on. */
  readonly state: InboxState;
  readonly received_at: number;
  readonly processed_at: number | null;
  readonly last_error: string | null;
}

/** A new notification's row: received_at = `now`, no error; processed_at = `now` when it comes in done or ignored, else null. */
export type InboxInsert = Pick<InboxRow, 'dedupe_key' | 'type' | 'campaign_id' | 'order_id' | 'event_at' | 'body' | 'state'> & { readonly now: number };

export interface InboxPort {
  /**
   * Inserts the row unless one with its dedupe_key is there (then nothing is written): its id,
   * and whether it was a duplicate. Waits for a concurrent inserter of the same key (PostgreSQL:
   * the unique index holds the second insert until the first commits or rolls back).
   */
  insert(row: InboxInsert): Promise<{ readonly id: number; readonly duplicate: boolean }>;
  /**
   * Up to `limit` pending rows by id, locked for this transaction: another transaction calling it
   * meanwhile skips them (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer at a time).
   */
  takePending(limit: number): Promise<InboxRow[]>;
  /** Marks row `id` done or ignored at `now` (processed_at), with an optional last_error (absent: none). */
  finish(id: number, state: 'done' | 'ignored', now: number, lastError?: string): Promise<void>;
  /** Rows per state, every state present (0 when none): reads every row, for stats and the inspector. */
  counts(): Promise<Record<InboxState, number>>;
  /** How many rows are pending: reads only those (the (state, id) index), for the run loop's every pass. */
  pendingCount(): Promise<number>;
  /**
   * Deletes up to `limit` finished rows (done or ignored) received before `receivedBefore`, the
   * oldest first; never a pending one, whatever its age. Returns how many it deleted. A key
   * deleted is new again: keep rows longer than the Market retries a notification.
   */
  prune(receivedBefore: number, limit: number): Promise<number>;
  /** The most recent rows (by id, descending), at most `limit`: for the inspector and tests. */
  recent(limit: number): Promise<InboxRow[]>;
}
