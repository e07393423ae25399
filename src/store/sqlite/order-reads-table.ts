import type { Database, Statement } from 'better-sqlite3';
import type { OrderReadRow, OrderReadsPort } from '../order-reads.js';

interface RequestParams {
  readonly order_id: number;
  readonly campaign_id: number;
  readonly business_id: number;
  readonly reason: string;
  readonly now: number;
}

interface LeaseParams {
  readonly business_id: number;
  readonly owner: string;
  readonly now: number;
  readonly expires: number;
  readonly limit: number;
}

/** Oldest due first, as the port promises (SQLite returns RETURNING rows in no set order). */
function byDue(a: OrderReadRow, b: OrderReadRow): number {
  return a.due_at - b.due_at || a.order_id - b.order_id;
}

export class OrderReadsTable implements OrderReadsPort {
  readonly #request: Statement<[RequestParams]>;
  readonly #dueBusinesses: Statement<[{ now: number }], { business_id: number }>;
  readonly #lease: Statement<[LeaseParams], OrderReadRow>;
  readonly #settle: Statement<[number, number]>;
  readonly #unlease: Statement<[number]>;
  readonly #release: Statement<[{ order_id: number; owner: string; due_at: number }]>;
  readonly #get: Statement<[number], OrderReadRow>;
  readonly #count: Statement<[], { n: number }>;
  readonly #nextDue: Statement<[number], { t: number | null }>;

  constructor(db: Database) {
    // Asked again: the latest reason, the latest ask, the soonest due time; the lease (a read
    // running now) stays, and `complete` then keeps the row for a read after it.
    this.#request = db.prepare(`INSERT INTO order_reads (order_id, campaign_id, business_id, reason, requested_at, due_at)
      VALUES (@order_id, @campaign_id, @business_id, @reason, @now, @now)
      ON CONFLICT (order_id) DO UPDATE SET reason = excluded.reason,
        requested_at = MAX(requested_at, excluded.requested_at), due_at = MIN(due_at, excluded.due_at)`);
    this.#dueBusinesses = db.prepare(`SELECT business_id FROM order_reads WHERE due_at <= @now AND (lease_expires_at IS NULL OR lease_expires_at < @now)
      GROUP BY business_id ORDER BY MIN(due_at), business_id`);
    this.#lease = db.prepare(`UPDATE order_reads SET lease_owner = @owner, lease_expires_at = @expires
      WHERE order_id IN (
        SELECT order_id FROM order_reads WHERE business_id = @business_id AND due_at <= @now
          AND (lease_expires_at IS NULL OR lease_expires_at < @now)
        ORDER BY due_at, order_id LIMIT @limit)
      RETURNING *`);
    this.#settle = db.prepare('DELETE FROM order_reads WHERE order_id = ? AND requested_at <= ?');
    this.#unlease = db.prepare('UPDATE order_reads SET lease_owner = NULL, lease_expires_at = NULL WHERE order_id = ?');
    this.#release = db.prepare(`UPDATE order_reads SET lease_owner = NULL, lease_expires_at = NULL, due_at = @due_at, attempts = attempts + 1
      WHERE order_id = @order_id AND lease_owner = @owner`);
    this.#get = db.prepare('SELECT * FROM order_reads WHERE order_id = ?');
    this.#count = db.prepare('SELECT COUNT(*) AS n FROM order_reads');
    this.#nextDue = db.prepare('SELECT MIN(due_at) AS t FROM order_reads WHERE lease_expires_at IS NULL OR lease_expires_at < ?');
  }

  async request(row: { readonly orderId: number; readonly campaignId: number; readonly businessId: number; readonly reason: string; readonly now: number }): Promise<void> {
    this.#request.run({ order_id: row.orderId, campaign_id: row.campaignId, business_id: row.businessId, reason: row.reason, now: row.now });
  }

  async dueBusinesses(now: number): Promise<number[]> {
    return this.#dueBusinesses.all({ now }).map((r) => r.business_id);
  }

  async lease(businessId: number, owner: string, now: number, leaseMs: number, limit: number): Promise<OrderReadRow[]> {
    return this.#lease.all({ business_id: businessId, owner, now, expires: now + leaseMs, limit }).sort(byDue);
  }

  async complete(orderId: number, startedAt: number): Promise<void> {
    // Asked for again after the read started: the answer may predate what was asked about.
    if (this.#settle.run(orderId, startedAt).changes === 0) this.#unlease.run(orderId);
  }

  async release(orderId: number, owner: string, dueAt: number): Promise<void> {
    this.#release.run({ order_id: orderId, owner, due_at: dueAt });
  }

  async get(orderId: number): Promise<OrderReadRow | undefined> {
    return this.#get.get(orderId);
  }

  async count(): Promise<number> {
    return this.#count.get()!.n;
  }

  async nextDueAt(now: number): Promise<number | undefined> {
    return this.#nextDue.get(now)?.t ?? undefined;
  }
}
