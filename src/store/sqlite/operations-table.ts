import type { Database, Statement } from 'better-sqlite3';
import type { OperationRow, OperationsPort, OperationWrite } from '../operations.js';

export class OperationsTable implements OperationsPort {
  readonly #get: Statement<[string], OperationRow>;
  readonly #insert: Statement<[OperationWrite]>;
  readonly #update: Statement<[OperationWrite & { expected_row_version: number }]>;
  readonly #due: Statement<[number, number], OperationRow>;
  readonly #counts: Statement<[], { state: string; n: number }>;
  readonly #nextDue: Statement<[], { t: number | null }>;

  constructor(db: Database) {
    this.#get = db.prepare('SELECT * FROM operations WHERE operation_id = ?');
    // A repeated start (the same answer applied twice) keeps the first row.
    this.#insert = db.prepare(`INSERT INTO operations
      (operation_id, operation_type, business_id, order_id, state, next_poll_at, deadline_at, machine_version, snapshot, row_version, created_at, updated_at)
      VALUES (@operation_id, @operation_type, @business_id, @order_id, @state, @next_poll_at, @deadline_at, @machine_version, @snapshot, 1, @updated_at, @updated_at)
      ON CONFLICT (operation_id) DO NOTHING`);
    this.#update = db.prepare(`UPDATE operations SET state = @state, next_poll_at = @next_poll_at, snapshot = @snapshot,
      machine_version = @machine_version, row_version = row_version + 1, updated_at = @updated_at
      WHERE operation_id = @operation_id AND row_version = @expected_row_version`);
    this.#due = db.prepare(`SELECT * FROM operations WHERE state = 'inProgress' AND next_poll_at <= ? ORDER BY next_poll_at, operation_id LIMIT ?`);
    this.#counts = db.prepare('SELECT state, COUNT(*) AS n FROM operations GROUP BY state');
    this.#nextDue = db.prepare(`SELECT MIN(next_poll_at) AS t FROM operations WHERE state = 'inProgress'`);
  }

  async get(operationId: string): Promise<OperationRow | undefined> {
    return this.#get.get(operationId);
  }

  async insert(row: OperationWrite): Promise<boolean> {
    return this.#insert.run(row).changes === 1;
  }

  async update(row: OperationWrite, expectedRowVersion: number): Promise<boolean> {
    return this.#update.run({ ...row, expected_row_version: expectedRowVersion }).changes === 1;
  }

  async due(now: number, limit: number): Promise<OperationRow[]> {
    return this.#due.all(now, limit);
  }

  async counts(): Promise<Record<string, number>> {
    return Object.fromEntries(this.#counts.all().map((r) => [r.state, r.n]));
  }

  async nextDueAt(): Promise<number | undefined> {
    return this.#nextDue.get()?.t ?? undefined;
  }
}
