import type { OrderListFilter, OrderRow, OrdersPort, OrderWrite, StatusCount } from '../orders.js';
import type { Session, Statement } from './session.js';

// Named columns, never `*`: a prepared `SELECT *` fails on a connection of an older process once a
// later migration adds a column ("cached plan must not change result type").
const COLUMNS = 'order_id, campaign_id, model, status, substatus, change_state, observed_at, machine_version, snapshot, row_version, created_at, updated_at';

const SQL = {
  get: { name: 'ym_orders_get', text: `SELECT ${COLUMNS} FROM orders WHERE order_id = $1` },
  // In a write transaction: whoever reads an order to change it holds it until commit, so two
  // read-modify-writes of one order (in any process) run one after the other.
  getForUpdate: { name: 'ym_orders_get_for_update', text: `SELECT ${COLUMNS} FROM orders WHERE order_id = $1 FOR UPDATE` },
  // Locked as the sort returns them (LockRows runs above Sort): in order-id order, as every writer takes orders.
  lock: { name: 'ym_orders_lock', text: 'SELECT order_id FROM orders WHERE order_id = ANY($1::bigint[]) ORDER BY order_id FOR UPDATE' },
  // An insert racing another transaction's insert of the order waits for it to end, then writes
  // nothing if that one committed: the order is tracked once, by whoever was first.
  insert: {
    name: 'ym_orders_insert',
    text: `INSERT INTO orders (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) ON CONFLICT (order_id) DO NOTHING`,
  },
  update: {
    name: 'ym_orders_update',
    text: `UPDATE orders SET status = $2, substatus = $3, change_state = $4, observed_at = $5, machine_version = $6, snapshot = $7,
        row_version = row_version + 1, updated_at = $8
      WHERE order_id = $1 AND row_version = $9`,
  },
  updateIfSame: {
    name: 'ym_orders_update_if_same',
    text: `UPDATE orders SET status = $2, substatus = $3, change_state = $4, observed_at = $5, machine_version = $6, snapshot = $7,
        row_version = row_version + 1, updated_at = $8
      WHERE order_id = $1 AND row_version = $9 AND snapshot = $10`,
  },
  countByStatus: {
    name: 'ym_orders_count_by_status',
    text: `SELECT status, substatus, change_state, COUNT(*) AS n FROM orders GROUP BY status, substatus, change_state
      ORDER BY status, substatus NULLS FIRST, change_state`,
  },
} as const;

/**
 * The statement for one combination of filters (built from fixed terms, never from a value) and
 * its values. `change_state <> 'idle'` is spelt out whenever it holds, so the planner may use the
 * partial index of open changes (migration 4). Unnamed, unlike the adapter's other statements: a
 * named one may switch to a generic plan after five runs, and for filters the planner cannot size
 * without their values that plan walks the primary key, reading the whole table when a value is
 * rare (over a million orders, half a second to a second for a status or campaign no order has,
 * where the plan for the value itself takes that column's index: under 2 ms). An unnamed
 * statement is planned with its values every time.
 */
function listStatement(filter: OrderListFilter, afterOrderId: number, limit: number): { statement: Statement; values: unknown[] } {
  const values: unknown[] = [afterOrderId, limit];
  const terms = ['order_id > $1'];
  /** `campaign_id =` and its value → `campaign_id = $3`. */
  const compare = (condition: string, value: unknown): void => {
    values.push(value);
    terms.push(`${condition} $${values.length}`);
  };
  if (filter.campaignId !== undefined) compare('campaign_id =', filter.campaignId);
  if (filter.status !== undefined) compare('status =', filter.status);
  if (filter.changeState !== undefined) compare('change_state =', filter.changeState);
  if (filter.stuckBefore !== undefined || (filter.changeState !== undefined && filter.changeState !== 'idle')) terms.push("change_state <> 'idle'");
  if (filter.stuckBefore !== undefined) compare('updated_at <', filter.stuckBefore);
  return {
    statement: {
      name: '',
      text: `SELECT ${COLUMNS} FROM orders WHERE ${terms.join(' AND ')} ORDER BY order_id LIMIT $2`,
    },
    values,
  };
}

export class OrdersTable implements OrdersPort {
  readonly #session: Session;
  /**
   * The order this write transaction last read FOR UPDATE and has not written since. Its lock
   * keeps every other transaction from changing it until this one ends, so reading it again
   * would return the same row: an order read and then read again in one transaction (a timer's
   * order found, then a refusal confirmed against its row) costs one round trip. One row, not all: a transaction of a million refused requests keeps
   * no million rows. A missing order is not kept (another transaction may insert it meanwhile).
   */
  #held: OrderRow | undefined;

  constructor(session: Session) {
    this.#session = session;
  }

  async get(orderId: number): Promise<OrderRow | undefined> {
    if (!this.#session.writable) return (await this.#session.rows<OrderRow>(SQL.get, [orderId]))[0];
    // A copy each time: what a caller does to its row never reaches the next caller.
    if (this.#held?.order_id === orderId) return { ...this.#held };
    const [row] = await this.#session.rows<OrderRow>(SQL.getForUpdate, [orderId]);
    this.#held = row && { ...row };
    return row;
  }

  async lock(orderIds: readonly number[]): Promise<void> {
    if (orderIds.length > 0) await this.#session.rows(SQL.lock, [orderIds]);
  }

  async insert(row: OrderWrite): Promise<boolean> {
    this.#held = undefined;
    const inserted = await this.#session.changes(SQL.insert, [
      row.order_id,
      row.campaign_id,
      row.model,
      row.status,
      row.substatus,
      row.change_state,
      row.observed_at,
      row.machine_version,
      row.snapshot,
      row.updated_at,
    ]);
    return inserted === 1;
  }

  async update(row: OrderWrite, expectedRowVersion: number, expectedSnapshot?: string): Promise<boolean> {
    this.#held = undefined;
    const values = [row.order_id, row.status, row.substatus, row.change_state, row.observed_at, row.machine_version, row.snapshot, row.updated_at, expectedRowVersion];
    if (expectedSnapshot === undefined) return (await this.#session.changes(SQL.update, values)) === 1;
    return (await this.#session.changes(SQL.updateIfSame, [...values, expectedSnapshot])) === 1;
  }

  async countByStatus(): Promise<StatusCount[]> {
    return this.#session.rows<StatusCount>(SQL.countByStatus, []);
  }

  async list(filter: OrderListFilter, afterOrderId: number, limit: number): Promise<OrderRow[]> {
    const { statement, values } = listStatement(filter, afterOrderId, limit);
    return this.#session.rows<OrderRow>(statement, values);
  }
}
