import type { Database, Statement } from 'better-sqlite3';

export interface OrderRow {
  readonly order_id: number;
  readonly campaign_id: number;
  readonly model: string;
  readonly status: string;
  readonly substatus: string | null;
  readonly change_state: string;
  readonly observed_at: number;
  readonly machine_version: number;
  readonly snapshot: string;
  readonly row_version: number;
  readonly created_at: number;
  readonly updated_at: number;
}

export type OrderWrite = Omit<OrderRow, 'created_at' | 'row_version'>;

/** @internal The SQLite driver stays out of the published types. */
export class OrdersTable {
  readonly #get: Statement<[number], OrderRow>;
  readonly #insert: Statement;
  readonly #update: Statement;
  readonly #countByStatus: Statement<[], { status: string; substatus: string | null; change_state: string; n: number }>;

  constructor(db: Database) {
    this.#get = db.prepare('SELECT * FROM orders WHERE order_id = ?');
    this.#insert = db.prepare(`INSERT INTO orders
      (order_id, campaign_id, model, status, substatus, change_state, observed_at, machine_version, snapshot, row_version, created_at, updated_at)
      VALUES (@order_id, @campaign_id, @model, @status, @substatus, @change_state, @observed_at, @machine_version, @snapshot, 1, @updated_at, @updated_at)`);
    this.#update = db.prepare(`UPDATE orders SET status = @status, substatus = @substatus, change_state = @change_state,
      observed_at = @observed_at, machine_version = @machine_version, snapshot = @snapshot,
      row_version = row_version + 1, updated_at = @updated_at
      WHERE order_id = @order_id AND row_version = @expected_row_version`);
    this.#countByStatus = db.prepare(
      'SELECT status, substatus, change_state, COUNT(*) AS n FROM orders GROUP BY status, substatus, change_state ORDER BY status, substatus, change_state',
    );
  }

  get(orderId: number): OrderRow | undefined {
    return this.#get.get(orderId);
  }

  insert(row: OrderWrite): void {
    this.#insert.run(row);
  }

  /** False when the row changed since it was read at `expectedRowVersion`. */
  update(row: OrderWrite, expectedRowVersion: number): boolean {
    return this.#update.run({ ...row, expected_row_version: expectedRowVersion }).changes === 1;
  }

  countByStatus(): { status: string; substatus: string | null; change_state: string; n: number }[] {
    return this.#countByStatus.all();
  }
}
