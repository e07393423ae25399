import type { OperationRow, OperationsPort, OperationWrite } from '../operations.js';
import type { Session } from './session.js';

const COLUMNS = 'operation_id, operation_type, business_id, order_id, state, next_poll_at, deadline_at, machine_version, snapshot, row_version, created_at, updated_at';

const SQL = {
  get: { name: 'ym_operations_get', text: `SELECT ${COLUMNS} FROM operations WHERE operation_id = $1` },
  // In a write transaction the operation is held until commit, as an order is (orders-table.ts).
  getForUpdate: { name: 'ym_operations_get_for_update', text: `SELECT ${COLUMNS} FROM operations WHERE operation_id = $1 FOR UPDATE` },
  // A repeated start (the same answer applied twice) keeps the first row.
  insert: {
    name: 'ym_operations_insert',
    text: `INSERT INTO operations (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) ON CONFLICT (operation_id) DO NOTHING`,
  },
  update: {
    name: 'ym_operations_update',
    text: `UPDATE operations SET state = $2, next_poll_at = $3, snapshot = $4, machine_version = $5, row_version = row_version + 1, updated_at = $6
      WHERE operation_id = $1 AND row_version = $7`,
  },
  due: {
    name: 'ym_operations_due',
    text: `SELECT ${COLUMNS} FROM operations WHERE state = 'inProgress' AND next_poll_at <= $1 ORDER BY next_poll_at, operation_id LIMIT $2`,
  },
  counts: { name: 'ym_operations_counts', text: 'SELECT state, COUNT(*) AS n FROM operations GROUP BY state' },
  nextDue: { name: 'ym_operations_next_due', text: `SELECT MIN(next_poll_at) AS t FROM operations WHERE state = 'inProgress'` },
} as const;

export class OperationsTable implements OperationsPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async get(operationId: string): Promise<OperationRow | undefined> {
    const [row] = await this.#session.rows<OperationRow>(this.#session.writable ? SQL.getForUpdate : SQL.get, [operationId]);
    return row;
  }

  async insert(row: OperationWrite): Promise<boolean> {
    const values = [row.operation_id, row.operation_type, row.business_id, row.order_id, row.state, row.next_poll_at, row.deadline_at, row.machine_version, row.snapshot, row.updated_at];
    return (await this.#session.changes(SQL.insert, values)) === 1;
  }

  async update(row: OperationWrite, expectedRowVersion: number): Promise<boolean> {
    const values = [row.operation_id, row.state, row.next_poll_at, row.snapshot, row.machine_version, row.updated_at, expectedRowVersion];
    return (await this.#session.changes(SQL.update, values)) === 1;
  }

  async due(now: number, limit: number): Promise<OperationRow[]> {
    return this.#session.rows<OperationRow>(SQL.due, [now, limit]);
  }

  async counts(): Promise<Record<string, number>> {
    return Object.fromEntries((await this.#session.rows<{ state: string; n: number }>(SQL.counts, [])).map((r) => [r.state, r.n]));
  }

  async nextDueAt(): Promise<number | undefined> {
    const [row] = await this.#session.rows<{ t: number | null }>(SQL.nextDue, []);
    return row?.t ?? undefined;
  }
}
