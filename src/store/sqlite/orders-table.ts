import type { Database, Statement } from 'better-sqlite3';
import type { OrderRow, OrdersPort, OrderWrite, StatusCount } from '../orders.js';

export class OrdersTable implements OrdersPort {
  readonly #get: Statement<[number], OrderRow>;
  readonly #insert: Statement<[OrderWrite]>;
  readonly #update: Statement<[OrderWrite & { expected_row_version: number }]>;
  readonly #countByStatus: Statement<[], StatusCount>;

  constructor(db: Database) {
    this.#get = db.prepare('SELECT * FROM orders WHERE order_id = ?');
    // An order already there (another process tracked it first) is left as it is.
    this.#insert = db.prepare(`INSERT INTO orders
      (order_id, campaign_id, model, status, substatus, change_state, observed_at, machine_version, snapshot, row_version, created_at, updated_at)
      VALUES (@order_id, @campaign_id, @model, @status, @substatus, @change_state, @observed_at, @machine_version, @snapshot, 1, @updated_at, @updated_at)
      ON CONFLICT (order_id) DO NOTHING`);
    this.#update = db.prepare(`UPDATE orders SET status = @status, substatus = @substatus, change_state = @change_state,
      observed_at = @observed_at, machine_version = @machine_version, snapshot = @snapshot,
      row_version = row_version + 1, updated_at = @updated_at
      WHERE order_id = @order_id AND row_version = @expected_row_version`);
    // SQLite sorts NULL before any text, as the port asks.
    this.#countByStatus = db.prepare(
      'SELECT status, substatus, change_state, COUNT(*) AS n FROM orders GROUP BY status, substatus, change_state ORDER BY status, substatus, change_state',
    );
  }

  async get(orderId: number): Promise<OrderRow | undefined> {
    return this.#get.get(orderId);
  }

  async insert(row: OrderWrite): Promise<boolean> {
    return this.#insert.run(row).changes === 1;
  }

  async update(row: OrderWrite, expectedRowVersion: number): Promise<boolean> {
    return this.#update.run({ ...row, expected_row_version: expectedRowVersion }).changes === 1;
  }

  async countByStatus(): Promise<StatusCount[]> {
    return this.#countByStatus.all();
  }
}
