/** One async Market operation: its machine snapshot and next poll time. */
export interface OperationRow {
  readonly operation_id: string;
  readonly operation_type: string;
  readonly business_id: number;
  readonly order_id: number | null;
  readonly state: string;
  readonly next_poll_at: number;
  readonly deadline_at: number;
  readonly machine_version: number;
  readonly snapshot: string;
  readonly row_version: number;
  readonly created_at: number;
  readonly updated_at: number;
}

export type OperationWrite = Omit<OperationRow, 'row_version' | 'created_at'>;

export interface OperationsPort {
  get(operationId: string): Promise<OperationRow | undefined>;
  /** Inserts at row_version 1; false (the first row kept) when the operation is already there. */
  insert(row: OperationWrite): Promise<boolean>;
  /** Writes state, next poll, snapshot and machine version at row_version + 1; false when no longer at `expectedRowVersion`. */
  update(row: OperationWrite, expectedRowVersion: number): Promise<boolean>;
  /** `inProgress` rows due at `now`, the soonest first, at most `limit`. */
  due(now: number, limit: number): Promise<OperationRow[]>;
  /** Rows per state (only states that have rows). */
  counts(): Promise<Record<string, number>>;
  /** The earliest next poll of an `inProgress` row, if any. */
  nextDueAt(): Promise<number | undefined>;
}
