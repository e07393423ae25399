import type { Database, Statement } from 'better-sqlite3';

export interface JournalRow {
  readonly seq: number;
  readonly order_id: number;
  readonly row_version: number;
  readonly event_type: string;
  readonly event: string;
  readonly source: string;
  readonly from_status: string | null;
  readonly from_substatus: string | null;
  readonly from_change: string | null;
  readonly to_status: string;
  readonly to_substatus: string | null;
  readonly to_change: string;
  readonly at: number;
}

export type JournalWrite = Omit<JournalRow, 'seq'>;

/** @internal The SQLite driver stays out of the published types. */
export class JournalTable {
  readonly #append: Statement;
  readonly #forOrder: Statement<[number], JournalRow>;

  constructor(db: Database) {
    this.#append = db.prepare(`INSERT INTO journal
      (order_id, row_version, event_type, event, source, from_status, from_substatus, from_change, to_status, to_substatus, to_change, at)
      VALUES (@order_id, @row_version, @event_type, @event, @source, @from_status, @from_substatus, @from_change, @to_status, @to_substatus, @to_change, @at)`);
    this.#forOrder = db.prepare('SELECT * FROM journal WHERE order_id = ? ORDER BY seq');
  }

  /** Appends a row and returns its sequence number. */
  append(row: JournalWrite): number {
    return Number(this.#append.run(row).lastInsertRowid);
  }

  forOrder(orderId: number): JournalRow[] {
    return this.#forOrder.all(orderId);
  }
}
