import type { OrderRow, OrdersPort, OrderWrite, StatusCount } from '../orders.js';
import type { Session } from './session.js';

// Named columns, never `*`: a prepared `SELECT *` fails on a connection of an older process once a
// later migration adds a column ("cached plan must not change result type").
const COLUMNS = 'order_id, campaign_id, model, status, substatus, change_state, observed_at, machine_version, snapshot, row_version, created_at, updated_at';

const SQL = {
  get: { name: 'ym_orders_get', text: `SELECT ${COLUMNS} FROM orders WHERE order_id = $1` },
  // In a write transaction: whoever reads an order to change it holds it until commit, so two
  // read-modify-writes of one order (in any process) run one after the other.
  getForUpdate: { name: 'ym_orders_get_for_update', text: `SELECT ${COLUMNS} FROM orders WHERE order_id = $1 FOR UPDATE` },
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
  countByStatus: {
    name: 'ym_orders_count_by_status',
    text: `SELECT status, substatus, change_state, COUNT(*) AS n FROM orders GROUP BY status, substatus, change_state
      ORDER BY status, substatus NULLS FIRST, change_state`,
  },
} as const;

export class OrdersTable implements OrdersPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async get(orderId: number): Promise<OrderRow | undefined> {
    const [row] = await this.#session.rows<OrderRow>(this.#session.writable ? SQL.getForUpdate : SQL.get, [orderId]);
    return row;
  }

  async insert(row: OrderWrite): Promise<boolean> {
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

  async update(row: OrderWrite, expectedRowVersion: number): Promise<boolean> {
    const values = [row.order_id, row.status, row.substatus, row.change_state, row.observed_at, row.machine_version, row.snapshot, row.updated_at, expectedRowVersion];
    return (await this.#session.changes(SQL.update, values)) === 1;
  }

  async countByStatus(): Promise<StatusCount[]> {
    return this.#session.rows<StatusCount>(SQL.countByStatus, []);
  }
}
