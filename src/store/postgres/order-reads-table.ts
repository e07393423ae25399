import type { OrderReadRow, OrderReadsPort } from '../order-reads.js';
import { DATABASE_NOW_MS } from './clock.js';
import type { Session } from './session.js';

// Named columns, never `*` (orders-table.ts says why).
const COLUMNS = 'order_id, campaign_id, business_id, reason, requested_at, due_at, attempts, lease_owner, lease_expires_at';

/** No lease, or one that expired before now on the database's clock (clock.ts). */
const LEASE_FREE = `(lease_expires_at IS NULL OR lease_expires_at < ${DATABASE_NOW_MS})`;

const SQL = {
  // Asked again: the latest reason, the latest ask, the soonest due time; the lease (a read
  // running now) stays, and `complete` then keeps the row for a read after it.
  request: {
    name: 'ym_reads_request',
    text: `INSERT INTO order_reads (order_id, campaign_id, business_id, reason, requested_at, due_at) VALUES ($1, $2, $3, $4, $5, $5)
      ON CONFLICT (order_id) DO UPDATE SET reason = excluded.reason,
        requested_at = GREATEST(order_reads.requested_at, excluded.requested_at), due_at = LEAST(order_reads.due_at, excluded.due_at)`,
  },
  dueBusinesses: {
    name: 'ym_reads_due_businesses',
    text: `SELECT business_id FROM order_reads WHERE due_at <= $1 AND ${LEASE_FREE} GROUP BY business_id ORDER BY MIN(due_at), business_id`,
  },
  // SKIP LOCKED, as outbox.lease: rows another transaction holds are passed over, never handed out twice.
  lease: {
    name: 'ym_reads_lease',
    text: `UPDATE order_reads SET lease_owner = $2, lease_expires_at = ${DATABASE_NOW_MS} + $4::bigint
      WHERE order_id IN (
        SELECT order_id FROM order_reads WHERE business_id = $1 AND due_at <= $3 AND ${LEASE_FREE}
        ORDER BY due_at, order_id LIMIT $5
        FOR UPDATE SKIP LOCKED)
      RETURNING ${COLUMNS}`,
  },
  // Asked for again after the read started: the answer may predate what was asked about, so the
  // row stays for another read. One statement: the row is locked from the delete to the update.
  complete: {
    name: 'ym_reads_complete',
    text: `WITH settled AS (DELETE FROM order_reads WHERE order_id = $1 AND requested_at <= $2 RETURNING order_id)
      UPDATE order_reads SET lease_owner = NULL, lease_expires_at = NULL WHERE order_id = $1 AND NOT EXISTS (SELECT 1 FROM settled)`,
  },
  release: {
    name: 'ym_reads_release',
    text: `UPDATE order_reads SET lease_owner = NULL, lease_expires_at = NULL, due_at = $3, attempts = attempts + 1 WHERE order_id = $1 AND lease_owner = $2`,
  },
  get: { name: 'ym_reads_get', text: `SELECT ${COLUMNS} FROM order_reads WHERE order_id = $1` },
  count: { name: 'ym_reads_count', text: 'SELECT COUNT(*) AS n FROM order_reads' },
  nextDue: { name: 'ym_reads_next_due', text: `SELECT MIN(due_at) AS t FROM order_reads WHERE ${LEASE_FREE}` },
} as const;

/** Oldest due first, as the port promises (RETURNING gives rows in no set order). */
function byDue(a: OrderReadRow, b: OrderReadRow): number {
  return a.due_at - b.due_at || a.order_id - b.order_id;
}

export class OrderReadsTable implements OrderReadsPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async request(row: { readonly orderId: number; readonly campaignId: number; readonly businessId: number; readonly reason: string; readonly now: number }): Promise<void> {
    await this.#session.changes(SQL.request, [row.orderId, row.campaignId, row.businessId, row.reason, row.now]);
  }

  async dueBusinesses(now: number): Promise<number[]> {
    return (await this.#session.rows<{ business_id: number }>(SQL.dueBusinesses, [now])).map((r) => r.business_id);
  }

  /** `now` is the due time; the lease runs `leaseMs` on the database's clock. */
  async lease(businessId: number, owner: string, now: number, leaseMs: number, limit: number): Promise<OrderReadRow[]> {
    const rows = await this.#session.rows<OrderReadRow>(SQL.lease, [businessId, owner, now, leaseMs, limit]);
    return rows.sort(byDue);
  }

  async complete(orderId: number, startedAt: number): Promise<void> {
    await this.#session.changes(SQL.complete, [orderId, startedAt]);
  }

  async release(orderId: number, owner: string, dueAt: number): Promise<void> {
    await this.#session.changes(SQL.release, [orderId, owner, dueAt]);
  }

  async get(orderId: number): Promise<OrderReadRow | undefined> {
    const [row] = await this.#session.rows<OrderReadRow>(SQL.get, [orderId]);
    return row;
  }

  async count(): Promise<number> {
    const [row] = await this.#session.rows<{ n: number }>(SQL.count, []);
    return row!.n;
  }

  /** Free on the database's clock: the caller's `now` plays no part. */
  async nextDueAt(_now: number): Promise<number | undefined> {
    const [row] = await this.#session.rows<{ t: number | null }>(SQL.nextDue, []);
    return row?.t ?? undefined;
  }
}
