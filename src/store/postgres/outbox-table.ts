import { OUTBOX_STATES, type OutboxEnqueue, type OutboxPort, type OutboxRow, type OutboxState } from '../outbox.js';
import { DATABASE_NOW_MS } from './clock.js';
import type { Session } from './session.js';

// Named columns, never `*` (orders-table.ts says why).
const COLUMNS = `id, idempotency_key, order_id, campaign_id, request_no, status, substatus, real_delivery_date, kind, payload, state, attempts,
  read_failures, next_attempt_at, lease_owner, lease_expires_at, last_error, journal_seq, created_at, updated_at`;

/** No lease, or one that expired before now on the database's clock (clock.ts). */
const LEASE_FREE = `(lease_expires_at IS NULL OR lease_expires_at < ${DATABASE_NOW_MS})`;

/** In state $1, due at the caller's now ($2), and free. */
const DUE_AND_FREE = `state = $1 AND next_attempt_at <= $2 AND ${LEASE_FREE}`;

const SQL = {
  // Re-arming a request (a resend after a read-back) keeps its row, key, target and history.
  enqueue: {
    name: 'ym_outbox_enqueue',
    text: `INSERT INTO outbox
        (idempotency_key, order_id, campaign_id, request_no, status, substatus, real_delivery_date, kind, payload, state, next_attempt_at, journal_seq, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $11, $12, $12)
      ON CONFLICT (order_id, request_no) DO UPDATE SET state = 'queued', next_attempt_at = excluded.next_attempt_at,
        read_failures = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = excluded.updated_at`,
  },
  setState: {
    name: 'ym_outbox_set_state',
    text: `UPDATE outbox SET state = $3, updated_at = $4, attempts = attempts + $5::integer, last_error = COALESCE($6::text, last_error),
        lease_owner = CASE WHEN $7::boolean THEN lease_owner END,
        lease_expires_at = CASE WHEN $7::boolean THEN lease_expires_at END
      WHERE order_id = $1 AND request_no = $2`,
  },
  reschedule: {
    name: 'ym_outbox_reschedule',
    text: 'UPDATE outbox SET next_attempt_at = $3, read_failures = 0, lease_owner = NULL, lease_expires_at = NULL WHERE order_id = $1 AND request_no = $2',
  },
  // SKIP LOCKED: rows another transaction holds right now (a lease of another process, say) are
  // passed over, not waited for, and so never handed out twice; the rows picked stay locked by
  // this transaction from the inner SELECT until it ends.
  lease: {
    name: 'ym_outbox_lease',
    text: `UPDATE outbox SET lease_owner = $3, lease_expires_at = ${DATABASE_NOW_MS} + $4::bigint, updated_at = $2
      WHERE id IN (
        SELECT id FROM outbox WHERE ${DUE_AND_FREE} AND ($6::bigint IS NULL OR campaign_id = $6::bigint)
        ORDER BY next_attempt_at, id LIMIT $5
        FOR UPDATE SKIP LOCKED)
      RETURNING ${COLUMNS}`,
  },
  claimForSend: {
    name: 'ym_outbox_claim_for_send',
    text: `UPDATE outbox SET lease_owner = $2, lease_expires_at = ${DATABASE_NOW_MS} + $4::bigint, updated_at = $3 WHERE id = ANY($1::bigint[]) AND state = 'queued' RETURNING id`,
  },
  dueCampaigns: {
    name: 'ym_outbox_due_campaigns',
    text: `SELECT campaign_id FROM outbox WHERE ${DUE_AND_FREE} GROUP BY campaign_id ORDER BY MIN(next_attempt_at), campaign_id`,
  },
  release: {
    name: 'ym_outbox_release',
    text: `UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $3, updated_at = $4 WHERE id = $1 AND lease_owner = $2`,
  },
  releaseAfterFailedRead: {
    name: 'ym_outbox_release_after_failed_read',
    text: `UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $3, updated_at = $4, read_failures = $5
      WHERE id = $1 AND lease_owner = $2`,
  },
  get: { name: 'ym_outbox_get', text: `SELECT ${COLUMNS} FROM outbox WHERE order_id = $1 AND request_no = $2` },
  open: {
    name: 'ym_outbox_open',
    text: `SELECT ${COLUMNS} FROM outbox WHERE state IN ('queued', 'sending', 'awaitingOperation', 'uncertain') ORDER BY id LIMIT $1`,
  },
  orphans: { name: 'ym_outbox_orphans', text: `SELECT ${COLUMNS} FROM outbox WHERE state = 'sending' AND ${LEASE_FREE} ORDER BY id LIMIT $1` },
  settledSince: { name: 'ym_outbox_settled_since', text: `SELECT ${COLUMNS} FROM outbox WHERE state = $1 AND updated_at >= $2 ORDER BY id LIMIT $3` },
  counts: { name: 'ym_outbox_counts', text: 'SELECT state, COUNT(*) AS n FROM outbox GROUP BY state' },
  nextDue: { name: 'ym_outbox_next_due', text: `SELECT MIN(next_attempt_at) AS t FROM outbox WHERE state IN ('queued', 'uncertain') AND ${LEASE_FREE}` },
} as const;

/** Oldest due first, as the port promises (RETURNING gives rows in no set order). */
function byDue(a: OutboxRow, b: OutboxRow): number {
  return a.next_attempt_at - b.next_attempt_at || a.id - b.id;
}

export class OutboxTable implements OutboxPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async enqueue(row: OutboxEnqueue): Promise<void> {
    await this.#session.changes(SQL.enqueue, [
      row.idempotency_key,
      row.order_id,
      row.campaign_id,
      row.request_no,
      row.status,
      row.substatus,
      row.real_delivery_date,
      row.kind ?? 'statusChange',
      row.payload ?? null,
      row.next_attempt_at,
      row.journal_seq,
      row.now,
    ]);
    this.#session.queued();
  }

  async setState(orderId: number, requestNo: number, state: OutboxState, now: number, options: { sent?: boolean; lastError?: string } = {}): Promise<void> {
    await this.#session.changes(SQL.setState, [orderId, requestNo, state, now, options.sent ? 1 : 0, options.lastError ?? null, state === 'sending']);
  }

  async reschedule(orderId: number, requestNo: number, nextAttemptAt: number): Promise<void> {
    await this.#session.changes(SQL.reschedule, [orderId, requestNo, nextAttemptAt]);
  }

  /** `now` is the due time and updated_at; the lease runs `leaseMs` on the database's clock. */
  async lease(state: OutboxState, owner: string, now: number, leaseMs: number, limit: number, campaignId?: number): Promise<OutboxRow[]> {
    const rows = await this.#session.rows<OutboxRow>(SQL.lease, [state, now, owner, leaseMs, limit, campaignId ?? null]);
    return rows.sort(byDue);
  }

  async claimForSend(ids: readonly number[], owner: string, now: number, leaseMs: number): Promise<ReadonlySet<number>> {
    if (ids.length === 0) return new Set();
    return new Set((await this.#session.rows<{ id: number }>(SQL.claimForSend, [ids, owner, now, leaseMs])).map((r) => r.id));
  }

  async dueCampaigns(state: OutboxState, now: number): Promise<number[]> {
    return (await this.#session.rows<{ campaign_id: number }>(SQL.dueCampaigns, [state, now])).map((r) => r.campaign_id);
  }

  async release(id: number, owner: string, nextAttemptAt: number, now: number): Promise<void> {
    await this.#session.changes(SQL.release, [id, owner, nextAttemptAt, now]);
  }

  async releaseAfterFailedRead(id: number, owner: string, readFailures: number, nextAttemptAt: number, now: number): Promise<void> {
    await this.#session.changes(SQL.releaseAfterFailedRead, [id, owner, nextAttemptAt, now, readFailures]);
  }

  async get(orderId: number, requestNo: number): Promise<OutboxRow | undefined> {
    const [row] = await this.#session.rows<OutboxRow>(SQL.get, [orderId, requestNo]);
    return row;
  }

  async open(limit: number): Promise<OutboxRow[]> {
    return this.#session.rows<OutboxRow>(SQL.open, [limit]);
  }

  /** Expired on the database's clock: the caller's `now` plays no part. */
  async orphans(_now: number, limit: number): Promise<OutboxRow[]> {
    return this.#session.rows<OutboxRow>(SQL.orphans, [limit]);
  }

  async settledSince(state: 'accepted' | 'rejected' | 'superseded', since: number, limit: number): Promise<OutboxRow[]> {
    return this.#session.rows<OutboxRow>(SQL.settledSince, [state, since, limit]);
  }

  async counts(): Promise<Record<OutboxState, number>> {
    const counts = Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])) as Record<OutboxState, number>;
    for (const { state, n } of await this.#session.rows<{ state: OutboxState; n: number }>(SQL.counts, [])) counts[state] = n;
    return counts;
  }

  async nextDueAt(_now: number): Promise<number | undefined> {
    const [row] = await this.#session.rows<{ t: number | null }>(SQL.nextDue, []);
    return row?.t ?? undefined;
  }
}
