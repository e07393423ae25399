/** An absolute due time that must survive restarts, keyed by kind and the thing it belongs to. */
export interface TimerRow {
  readonly kind: string;
  readonly ref: string;
  readonly due_at: number;
  /** JSON, or null. */
  readonly payload: string | null;
}

export interface TimersPort {
  /** Sets (or moves) the timer; `payload` is stored as JSON. */
  set(kind: string, ref: string, dueAt: number, payload?: unknown): Promise<void>;
  clear(kind: string, ref: string): Promise<void>;
  /** Timers of `kind` (or every kind) due at or before `dueBefore`, the soonest first, then by ref. */
  list(kind: string | undefined, dueBefore: number): Promise<TimerRow[]>;
}
