import type { Database, Statement } from 'better-sqlite3';
import { OUTBOX_STATES, type OutboxEnqueue, type OutboxKind, type OutboxPort, type OutboxRow, type OutboxState } from '../outbox.js';

interface LeaseParams {
  readonly state: OutboxState;
  readonly owner: string;
  readonly now: number;
  readonly expires: number;
  readonly limit: number;
  readonly campaign_id: number | null;
}

interface SetStateParams {
  readonly order_id: number;
  readonly request_no: number;
  readonly state: OutboxState;
  readonly now: number;
  readonly sent: 0 | 1;
  readonly last_error: string | null;
  readonly keep_lease: 0 | 1;
}

interface ReleaseParams {
  readonly id: number;
  readonly owner: string;
  readonly next_attempt_at: number;
  readonly now: number;
}

/** Oldest due first, as the port promises (SQLite returns RETURNING rows in no set order). */
function byDue(a: OutboxRow, b: OutboxRow): number {
  return a.next_attempt_at - b.next_attempt_at || a.id - b.id;
}

export class OutboxTable implements OutboxPort {
  readonly #enqueue: Statement<unknown[]>;
  readonly #setState: Statement<[SetStateParams]>;
  readonly #lease: Statement<[LeaseParams], OutboxRow>;
  readonly #claimForSend: Statement<[{ ids: string; owner: string; now: number; expires: number }], { id: number }>;
  readonly #dueCampaigns: Statement<[{ state: OutboxState; now: number }], { campaign_id: number }>;
  readonly #release: Statement<[ReleaseParams]>;
  readonly #releaseAfterFailedRead: Statement<[ReleaseParams & { read_failures: number }]>;
  readonly #reschedule: Statement<[number, number, number]>;
  readonly #get: Statement<[number, number], OutboxRow>;
  readonly #open: Statement<[number], OutboxRow>;
  readonly #orphans: Statement<[number, number], OutboxRow>;
  readonly #settledSince: Statement<[OutboxState, number, number], OutboxRow>;
  readonly #counts: Statement<[], { state: OutboxState; n: number }>;
  readonly #nextDue: Statement<[number], { t: number | null }>;
  readonly #onEnqueue: () => void;

  /** `onEnqueue`: called after each row queued, for the store's wake-ups. */
  constructor(db: Database, onEnqueue: () => void) {
    this.#onEnqueue = onEnqueue;
    // Re-arming a request (a resend after a read-back) keeps its row, key, target and history.
    this.#enqueue = db.prepare(`INSERT INTO outbox
      (idempotency_key, order_id, campaign_id, request_no, status, substatus, real_delivery_date, kind, payload, state, next_attempt_at, journal_seq, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)
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
    // The ids as one JSON array: one statement for a batch of any size. `+state` keeps the
    // planner off outbox_due: with it, SQLite walks every queued row (tens of µs per row of a
    // large queue) instead of looking the ids up by primary key.
    this.#claimForSend = db.prepare(`UPDATE outbox SET lease_owner = @owner, lease_expires_at = @expires, updated_at = @now
      WHERE id IN (SELECT value FROM json_each(@ids)) AND +state = 'queued' RETURNING id`);
    this.#dueCampaigns = db.prepare(`SELECT campaign_id FROM outbox WHERE state = @state AND next_attempt_at <= @now
        AND (lease_expires_at IS NULL OR lease_expires_at < @now)
      GROUP BY campaign_id ORDER BY MIN(next_attempt_at), campaign_id`);
    this.#release = db.prepare(`UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = @next_attempt_at, updated_at = @now
      WHERE id = @id AND lease_owner = @owner`);
    this.#releaseAfterFailedRead = db.prepare(`UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = @next_attempt_at,
        read_failures = @read_failures, updated_at = @now
      WHERE id = @id AND lease_owner = @owner`);
    this.#reschedule = db.prepare(
      'UPDATE outbox SET next_attempt_at = ?, read_failures = 0, lease_owner = NULL, lease_expires_at = NULL WHERE order_id = ? AND request_no = ?',
    );
    this.#get = db.prepare('SELECT * FROM outbox WHERE order_id = ? AND request_no = ?');
    this.#open = db.prepare(`SELECT * FROM outbox WHERE state IN ('queued', 'sending', 'awaitingOperation', 'uncertain') ORDER BY id LIMIT ?`);
    this.#orphans = db.prepare(`SELECT * FROM outbox WHERE state = 'sending' AND (lease_expires_at IS NULL OR lease_expires_at < ?) ORDER BY id LIMIT ?`);
    this.#settledSince = db.prepare('SELECT * FROM outbox WHERE state = ? AND updated_at >= ? ORDER BY id LIMIT ?');
    this.#counts = db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state');
    this.#nextDue = db.prepare(
      `SELECT MIN(next_attempt_at) AS t FROM outbox WHERE state IN ('queued', 'uncertain') AND (lease_expires_at IS NULL OR lease_expires_at < ?)`,
    );
  }

  async enqueue(row: OutboxEnqueue): Promise<void> {
    // Positional, in the column order above: binding by name costs a lookup per parameter.
    this.#enqueue.run(row.idempotency_key, row.order_id, row.campaign_id, row.request_no, row.status, row.substatus, row.real_delivery_date, row.kind ?? 'statusChange', row.payload ?? null, row.next_attempt_at, row.journal_seq, row.now, row.now);
    this.#onEnqueue();
  }

  async setState(orderId: number, requestNo: number, state: OutboxState, now: number, options: { sent?: boolean; lastError?: string } = {}): Promise<void> {
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

  async reschedule(orderId: number, requestNo: number, nextAttemptAt: number): Promise<void> {
    this.#reschedule.run(nextAttemptAt, orderId, requestNo);
  }

  async lease(state: OutboxState, owner: string, now: number, leaseMs: number, limit: number, campaignId?: number): Promise<OutboxRow[]> {
    return this.#lease.all({ state, owner, now, expires: now + leaseMs, limit, campaign_id: campaignId ?? null }).sort(byDue);
  }

  async claimForSend(ids: readonly number[], owner: string, now: number, leaseMs: number): Promise<ReadonlySet<number>> {
    return new Set(this.#claimForSend.all({ ids: JSON.stringify(ids), owner, now, expires: now + leaseMs }).map((r) => r.id));
  }

  async dueCampaigns(state: OutboxState, now: number): Promise<number[]> {
    return this.#dueCampaigns.all({ state, now }).map((r) => r.campaign_id);
  }

  async release(id: number, owner: string, nextAttemptAt: number, now: number): Promise<void> {
    this.#release.run({ id, owner, next_attempt_at: nextAttemptAt, now });
  }

  async releaseAfterFailedRead(id: number, owner: string, readFailures: number, nextAttemptAt: number, now: number): Promise<void> {
    this.#releaseAfterFailedRead.run({ id, owner, read_failures: readFailures, next_attempt_at: nextAttemptAt, now });
  }

  async get(orderId: number, requestNo: number): Promise<OutboxRow | undefined> {
    return this.#get.get(orderId, requestNo);
  }

  async open(limit: number): Promise<OutboxRow[]> {
    return this.#open.all(limit);
  }

  async orphans(now: number, limit: number): Promise<OutboxRow[]> {
    return this.#orphans.all(now, limit);
  }

  async settledSince(state: 'accepted' | 'rejected' | 'superseded', since: number, limit: number): Promise<OutboxRow[]> {
    return this.#settledSince.all(state, since, limit);
  }

  async counts(): Promise<Record<OutboxState, number>> {
    const counts = Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as Record<OutboxState, number>;
    for (const { state, n } of this.#counts.all()) counts[state] = n;
    return counts;
  }

  async nextDueAt(now: number): Promise<number | undefined> {
    return this.#nextDue.get(now)?.t ?? undefined;
  }
}
