import type { Database, Statement } from 'better-sqlite3';
import type { OrderListFilter, OrderRow, OrdersPort, OrderWrite, StatusCount } from '../orders.js';

/** The named parameters of a list statement; those it does not use are ignored. */
type ListParams = { after: number; limit: number } & OrderListFilter;

/**
 * The statement of a listing: its WHERE terms (fixed text for each filter given) and the index
 * that walks it in order id order (migration 4). The index is named, not left to the planner:
 * without ANALYZE statistics SQLite guesses, and a wrong guess (the campaign's index when a rare
 * status was asked for) reads most of the table. The most selective first: open changes are few
 * (the work in flight), a status holds fewer orders than a campaign. orders_open holds every
 * filter's column and orders_by_status_then_id the campaign's, so the entries they skip cost no
 * table read. Over a million orders the slowest page seen took 60 ms (a campaign with no order
 * at the status of 70 % of them: the whole status read from its index); most take 1 to 2 ms.
 */
function listSql(filter: OrderListFilter): string {
  const terms = ['order_id > @after'];
  if (filter.campaignId !== undefined) terms.push('campaign_id = @campaignId');
  if (filter.status !== undefined) terms.push('status = @status');
  if (filter.changeState !== undefined) terms.push('change_state = @changeState');
  // Spelt out so that SQLite sees the partial index's condition holds.
  const open = filter.stuckBefore !== undefined || (filter.changeState !== undefined && filter.changeState !== 'idle');
  if (open) terms.push("change_state <> 'idle'");
  if (filter.stuckBefore !== undefined) terms.push('updated_at < @stuckBefore');
  const index = open ? 'orders_open' : filter.status !== undefined ? 'orders_by_status_then_id' : filter.campaignId !== undefined ? 'orders_by_campaign' : undefined;
  const from = index === undefined ? 'orders' : `orders INDEXED BY ${index}`;
  return `SELECT * FROM ${from} WHERE ${terms.join(' AND ')} ORDER BY order_id LIMIT @limit`;
}

export class OrdersTable implements OrdersPort {
  readonly #get: Statement<[number], OrderRow>;
  readonly #insert: Statement<[OrderWrite]>;
  readonly #update: Statement<unknown[]>;
  readonly #updateIfSame: Statement<unknown[]>;
  readonly #countByStatus: Statement<[], StatusCount>;
  readonly #db: Database;
  /** One statement per combination of filters (by its text), prepared on first use. */
  readonly #list = new Map<string, Statement<[ListParams], OrderRow>>();

  constructor(db: Database) {
    this.#db = db;
    this.#get = db.prepare('SELECT * FROM orders WHERE order_id = ?');
    // An order already there (another process tracked it first) is left as it is.
    this.#insert = db.prepare(`INSERT INTO orders
      (order_id, campaign_id, model, status, substatus, change_state, observed_at, machine_version, snapshot, row_version, created_at, updated_at)
      VALUES (@order_id, @campaign_id, @model, @status, @substatus, @change_state, @observed_at, @machine_version, @snapshot, 1, @updated_at, @updated_at)
      ON CONFLICT (order_id) DO NOTHING`);
    // Positional parameters on the hot path: better-sqlite3 binds them without a lookup by name.
    this.#update = db.prepare(`UPDATE orders SET status = ?, substatus = ?, change_state = ?, observed_at = ?, machine_version = ?, snapshot = ?,
      row_version = row_version + 1, updated_at = ? WHERE order_id = ? AND row_version = ?`);
    this.#updateIfSame = db.prepare(`UPDATE orders SET status = ?, substatus = ?, change_state = ?, observed_at = ?, machine_version = ?, snapshot = ?,
      row_version = row_version + 1, updated_at = ? WHERE order_id = ? AND row_version = ? AND snapshot = ?`);
    // SQLite sorts NULL before any text, as the port asks.
    this.#countByStatus = db.prepare(
      'SELECT status, substatus, change_state, COUNT(*) AS n FROM orders GROUP BY status, substatus, change_state ORDER BY status, substatus, change_state',
    );
  }

  async get(orderId: number): Promise<OrderRow | undefined> {
    return this.#get.get(orderId);
  }

  /** A write transaction here is BEGIN IMMEDIATE: it holds the whole file already. */
  async lock(_orderIds: readonly number[]): Promise<void> {}

  async insert(row: OrderWrite): Promise<boolean> {
    return this.#insert.run(row).changes === 1;
  }

  async update(row: OrderWrite, expectedRowVersion: number, expectedSnapshot?: string): Promise<boolean> {
    const values = [row.status, row.substatus, row.change_state, row.observed_at, row.machine_version, row.snapshot, row.updated_at, row.order_id, expectedRowVersion];
    return (expectedSnapshot === undefined ? this.#update.run(...values) : this.#updateIfSame.run(...values, expectedSnapshot)).changes === 1;
  }

  async countByStatus(): Promise<StatusCount[]> {
    return this.#countByStatus.all();
  }

  async list(filter: OrderListFilter, afterOrderId: number, limit: number): Promise<OrderRow[]> {
    const sql = listSql(filter);
    let statement = this.#list.get(sql);
    if (!statement) {
      statement = this.#db.prepare<[ListParams], OrderRow>(sql);
      this.#list.set(sql, statement);
    }
    // Named parameters the statement does not use are ignored.
    return statement.all({ ...filter, after: afterOrderId, limit });
  }
}
