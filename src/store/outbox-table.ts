// The outbox: one row per seller change the machines asked for. Its `state` follows the
// order's change region (queued → sending → …) so the dispatcher can find due work by index.

import type { Database, Statement } from 'better-sqlite3';

export const OUTBOX_STATES = ['queued', 'sending', 'awaitingOperation', 'uncertain', 'accepted', 'rejected', 'superseded'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

export interface OutboxRow {
  readonly id: number;
  readonly idempotency_key: string;
  readonly order_id: number;
  readonly campaign_id: number;
  readonly request_no: number;
  readonly status: string;
  readonly substatus: string;
  readonly real_delivery_date: string | null;
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

export interface OutboxEnqueue {
  readonly idempotency_key: string;
  readonly order_id: number;
  readonly campaign_id: number;
  readonly request_no: number;
  readonly status: string;
  readonly substatus: string;
  readonly real_delivery_date: string | null;
  readonly next_attempt_at: number;
  readonly journal_seq: number;
  readonly now: number;
}

/** @internal The SQLite driver stays out of the published types. */
export class OutboxTable {
  readonly #enqueue: Statement;
  readonly #setState: Statement;
  readonly #lease: Statement;
  readonly #claimForSend: Statement;
  readonly #dueCampaigns: Statement<[string, number, number], { campaign_id: number }>;
  readonly #release: Statement;
  readonly #releaseAfterFailedRead: Statement;
  readonly #reschedule: Statement;
  readonly #byOrderRequest: Statement<[number, number], OutboxRow>;
  readonly #open: Statement<[number], OutboxRow>;
  readonly #inState: Statement<[string, number, number], OutboxRow>;
  readonly #counts: Statement<[], { state: OutboxState; n: number }>;
  readonly #nextDue: Statement<[], { t: number | null }>;

  constructor(db: Database) {
    // Re-arming a request (a resend after a read-back) keeps its row, key and history.
    this.#enqueue = db.prepare(`INSERT INTO outbox
      (idempotency_key, order_id, campaign_id, request_no, status, substatus, real_delivery_date, state, next_attempt_at, journal_seq, created_at, updated_at)
      VALUES (@idempotency_key, @order_id, @campaign_id, @request_no, @status, @substatus, @real_delivery_date, 'queued', @next_attempt_at, @journal_seq, @now, @now)
      ON CONFLICT (order_id, request_no) DO UPDATE SET state = 'queued', next_attempt_at = excluded.next_attempt_at,
        read_failures = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = excluded.updated_at`);
    this.#setState = db.prepare(`UPDATE outbox SET state = @state, updated_at = @now,
        attempts = attempts + @sent, last_error = COALESCE(@last_error, last_error),
        lease_owner = CASE WHEN @keep_lease THEN lease_owner ELSE NULL END,
        lease_expires_at = CASE WHEN @keep_lease THEN lease_expires_at ELSE NULL END
      WHERE order_id = @order_id AND request_no = @request_no`);
    this.#lease = db.prepare(`UPDATE outbox SET lease_owner = @owner, lease_expires_at = @expires, updated_at = @now
      WHERE id IN (
        SELECT id FROM outbox WHERE state = @state AND next_attempt_at <= @now
          AND (lease_expires_at IS NULL OR lease_expires_at < @now)
          AND (@campaign_id IS NULL OR campaign_id = @campaign_id)
        ORDER BY next_attempt_at, id LIMIT @limit)
      RETURNING *`);
    this.#claimForSend = db.prepare(`UPDATE outbox SET lease_owner = @owner, lease_expires_at = @expires, updated_at = @now
      WHERE id = @id AND state = 'queued'`);
    this.#dueCampaigns = db.prepare(`SELECT campaign_id FROM outbox WHERE state = ? AND next_attempt_at <= ?
        AND (lease_expires_at IS NULL OR lease_expires_at < ?)
      GROUP BY campaign_id ORDER BY MIN(next_attempt_at)`);
    this.#release = db.prepare(`UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = @next_attempt_at, updated_at = @now
      WHERE id = @id AND lease_owner = @owner`);
    this.#releaseAfterFailedRead = db.prepare(`UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = @next_attempt_at,
        read_failures = @read_failures, updated_at = @now
      WHERE id = @id AND lease_owner = @owner`);
    this.#reschedule = db.prepare(
      'UPDATE outbox SET next_attempt_at = ?, read_failures = 0, lease_owner = NULL, lease_expires_at = NULL WHERE order_id = ? AND request_no = ?',
    );
    this.#byOrderRequest = db.prepare('SELECT * FROM outbox WHERE order_id = ? AND request_no = ?');
    this.#open = db.prepare(`SELECT * FROM outbox WHERE state IN ('queued', 'sending', 'awaitingOperation', 'uncertain') ORDER BY id LIMIT ?`);
    this.#inState = db.prepare('SELECT * FROM outbox WHERE state = ? AND next_attempt_at <= ? ORDER BY id LIMIT ?');
    this.#counts = db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state');
    this.#nextDue = db.prepare(`SELECT MIN(next_attempt_at) AS t FROM outbox WHERE state IN ('queued', 'uncertain')`);
  }

  enqueue(row: OutboxEnqueue): void {
    this.#enqueue.run(row);
  }

  /** Mirrors the order's change region; `sent` counts a send; the lease is kept only while sending. */
  setState(orderId: number, requestNo: number, state: OutboxState, now: number, options: { sent?: boolean; lastError?: string } = {}): void {
    this.#setState.run({
      order_id: orderId,
      request_no: requestNo,
      state,
      now,
      sent: options.sent ? 1 : 0,
      last_error: options.lastError ?? null,
      keep_lease: state === 'sending' ? 1 : 0,
    });
  }

  /** Claims up to `limit` due rows in `state` for `owner` until `now + leaseMs`. */
  lease(state: OutboxState, owner: string, now: number, leaseMs: number, limit: number, campaignId?: number): OutboxRow[] {
    return this.#lease.all({ state, owner, now, expires: now + leaseMs, limit, campaign_id: campaignId ?? null }) as OutboxRow[];
  }

  /**
   * Takes a row for `owner` right before it is sent, its lease now running from `now`; false
   * when it is no longer queued. A round can outlast the lease it started with, and another
   * process may have taken the row and sent it since: of two that hold it, only the first to
   * claim it (under the write lock, in the transaction that marks it sent) sends it.
   */
  claimForSend(id: number, owner: string, now: number, leaseMs: number): boolean {
    return this.#claimForSend.run({ id, owner, now, expires: now + leaseMs }).changes === 1;
  }

  /** Campaigns with rows in `state` due and free, the longest-waiting first. */
  dueCampaigns(state: OutboxState, now: number): number[] {
    return this.#dueCampaigns.all(state, now, now).map((r) => r.campaign_id);
  }

  /** Gives a leased row back untouched, to be tried again at `nextAttemptAt`. */
  release(id: number, owner: string, nextAttemptAt: number, now: number): void {
    this.#release.run({ id, owner, next_attempt_at: nextAttemptAt, now });
  }

  /** Gives a leased row back after a read-back that learnt nothing: `readFailures` in a row now. */
  releaseAfterFailedRead(id: number, owner: string, readFailures: number, nextAttemptAt: number, now: number): void {
    this.#releaseAfterFailedRead.run({ id, owner, read_failures: readFailures, next_attempt_at: nextAttemptAt, now });
  }

  /** The next read-back of an unknown outcome, at `nextAttemptAt`: a fresh start for its backoff. */
  reschedule(orderId: number, requestNo: number, nextAttemptAt: number): void {
    this.#reschedule.run(nextAttemptAt, orderId, requestNo);
  }

  get(orderId: number, requestNo: number): OutboxRow | undefined {
    return this.#byOrderRequest.get(orderId, requestNo);
  }

  open(limit: number): OutboxRow[] {
    return this.#open.all(limit);
  }

  inState(state: OutboxState, now: number, limit: number): OutboxRow[] {
    return this.#inState.all(state, now, limit);
  }

  counts(): Record<OutboxState, number> {
    const counts = Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as Record<OutboxState, number>;
    for (const { state, n } of this.#counts.all()) counts[state] = n;
    return counts;
  }

  /** The earliest time a queued or uncertain row becomes due, if any. */
  nextDueAt(): number | undefined {
    return this.#nextDue.get()?.t ?? undefined;
  }
}
