// The outbox: one row per seller change the machines asked for. Its `state` follows the order's
// change region (written only from the machine's effects), so the dispatcher finds due work by
// index; leases say which process works on a row right now.
//
// Lease times are on the store's clock: the caller passes its `now`, and an adapter that several
// hosts share (PostgreSQL) ignores it for leases and uses the database's own clock, so a host
// whose clock runs ahead cannot take a lease another still holds. `now` still sets due times
// (next_attempt_at) and updated_at, which follow the engine's clock.

export const OUTBOX_STATES = ['queued', 'sending', 'awaitingOperation', 'uncertain', 'accepted', 'rejected', 'superseded'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

/** Changes not settled yet. */
export const OPEN_OUTBOX_STATES = ['queued', 'sending', 'awaitingOperation', 'uncertain'] as const satisfies readonly OutboxState[];

/**
 * What a row asks of the Market. statusChange: set status/substatus (bulk or single PUT);
 * cancellationAnswer: answer a DBS buyer's cancellation request (PUT …/cancellation/accept), its
 * answer in `payload`. A cancellationAnswer row's status is 'CANCELLATION_ANSWER' and its
 * substatus 'ACCEPTED' or the reason of a refusal ('ORDER_DELIVERED', 'ORDER_IN_DELIVERY'), so
 * listings and counts read plainly.
 */
export const OUTBOX_KINDS = ['statusChange', 'cancellationAnswer'] as const;
export type OutboxKind = (typeof OUTBOX_KINDS)[number];

export interface OutboxRow {
  readonly id: number;
  readonly idempotency_key: string;
  readonly order_id: number;
  readonly campaign_id: number;
  readonly request_no: number;
  readonly status: string;
  readonly substatus: string;
  readonly real_delivery_date: string | null;
  /** statusChange: set status/substatus (bulk or single PUT); cancellationAnswer: answer a DBS buyer's cancellation request (PUT …/cancellation/accept), with `payload`. */
  readonly kind: OutboxKind;
  /** JSON, for kinds that need more than the target: cancellationAnswer `{accepted, reason?}`. Null otherwise. */
  readonly payload: string | null;
  readonly state: OutboxState;
  readonly attempts: number;
  /** Read-backs in a row that learnt nothing about the order; 0 again once one does, or on a resend. */
  readonly read_failures: number;
  readonly next_attempt_at: number;
  readonly lease_owner: string | null;
  readonly lease_expires_at: number | null;
  readonly last_error: string | null;
  readonly journal_seq: number;
  readonly created_at: number;
  readonly updated_at: number;
}

/**
 * A new request's row; the columns not named here start empty (no lease, no attempts, no error).
 * `kind` defaults to 'statusChange' and `payload` to null.
 */
export type OutboxEnqueue = Pick<
  OutboxRow,
  'idempotency_key' | 'order_id' | 'campaign_id' | 'request_no' | 'status' | 'substatus' | 'real_delivery_date' | 'next_attempt_at' | 'journal_seq'
> & { readonly now: number; readonly kind?: OutboxKind; readonly payload?: string | null };

export interface OutboxPort {
  /**
   * Inserts a `queued` row (attempts and read_failures 0, no lease, no last error, created_at =
   * updated_at = `now`). For a request already there (a resend after a read-back) the row stays,
   * with its id, key, target, kind, payload, journal_seq, attempts, last error and created_at, and is queued
   * again: `next_attempt_at` from `row`, no lease, read_failures 0, updated_at `now`. The same
   * idempotency key for another request is an error.
   */
  enqueue(row: OutboxEnqueue): Promise<void>;
  /**
   * Sets the state of the order's request, updated_at `now`. `sent` adds one to attempts;
   * `lastError` replaces the stored one (absent keeps it). The lease is kept only when the new
   * state is `sending`.
   */
  setState(orderId: number, requestNo: number, state: OutboxState, now: number, options?: { sent?: boolean; lastError?: string }): Promise<void>;
  /** The request's next attempt (or read-back) at `nextAttemptAt`, a fresh start for its backoff: read_failures 0, no lease (updated_at unchanged). */
  reschedule(orderId: number, requestNo: number, nextAttemptAt: number): Promise<void>;
  /**
   * Leases up to `limit` rows in `state`, due at `now` and free (no lease, or one expired before
   * `now`), for `owner` until `now + leaseMs` (updated_at `now`); only of `campaignId` if given.
   * Returns them as leased, oldest due first (by next_attempt_at, then id).
   */
  lease(state: OutboxState, owner: string, now: number, leaseMs: number, limit: number, campaignId?: number): Promise<OutboxRow[]>;
  /**
   * Takes the rows of `ids` that are still `queued`, whoever leased them, for `owner` until
   * `now + leaseMs` (updated_at `now`); returns the ids it took. A row no longer queued, or not
   * there, is left as it is.
   */
  claimForSend(ids: readonly number[], owner: string, now: number, leaseMs: number): Promise<ReadonlySet<number>>;
  /** Campaigns with rows in `state` due at `now` and free, the longest-waiting first. */
  dueCampaigns(state: OutboxState, now: number): Promise<number[]>;
  /** Gives a row `owner` leased back untouched, due again at `nextAttemptAt` (updated_at `now`). No-op for a row `owner` does not hold. */
  release(id: number, owner: string, nextAttemptAt: number, now: number): Promise<void>;
  /** Like release, after a read-back that learnt nothing: `readFailures` in a row now. */
  releaseAfterFailedRead(id: number, owner: string, readFailures: number, nextAttemptAt: number, now: number): Promise<void>;
  get(orderId: number, requestNo: number): Promise<OutboxRow | undefined>;
  /** Rows in an open state (OPEN_OUTBOX_STATES), by id, at most `limit`. */
  open(limit: number): Promise<OutboxRow[]>;
  /**
   * `sending` rows whose lease is gone or expired: the process that sent them stopped before it
   * recorded the answer. By id, at most `limit`.
   */
  orphans(now: number, limit: number): Promise<OutboxRow[]>;
  /** Rows in `state` last updated at or after `since`, by id, at most `limit`. */
  settledSince(state: 'accepted' | 'rejected' | 'superseded', since: number, limit: number): Promise<OutboxRow[]>;
  /** Rows per state, every state present (0 when none). */
  counts(): Promise<Record<OutboxState, number>>;
  /**
   * The earliest `next_attempt_at` of a queued or uncertain row that is free at `now` (no lease,
   * or one that expired): a row another process holds is its work, not a reason to wake.
   */
  nextDueAt(now: number): Promise<number | undefined>;
}
