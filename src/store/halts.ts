/** A campaign whose API key the Market refused (401/403): no process sends for it until cleared. */
export interface HaltRow {
  readonly campaign_id: number;
  readonly code: string;
  readonly message: string;
  /** The engine (owner) that was refused. */
  readonly owner: string;
  readonly at: number;
}

export interface HaltsPort {
  /** By campaign id. */
  all(): Promise<HaltRow[]>;
  /** Sets or replaces the campaign's halt. */
  set(row: HaltRow): Promise<void>;
  /** Clears every halt; returns how many there were. */
  clearAll(): Promise<number>;
}
