import type { Database, Statement } from 'better-sqlite3';

export interface TimerRow {
  readonly kind: string;
  readonly ref: string;
  readonly due_at: number;
  readonly payload: string | null;
}

/**
 * Absolute due times that must survive restarts, keyed by kind and the thing they belong to.
 * @internal The SQLite driver stays out of the published types.
 */
export class TimersTable {
  readonly #set: Statement;
  readonly #clear: Statement;
  readonly #list: Statement<[{ kind: string | null; due: number }], TimerRow>;

  constructor(db: Database) {
    this.#set = db.prepare(`INSERT INTO timers (kind, ref, due_at, payload) VALUES (?, ?, ?, ?)
      ON CONFLICT (kind, ref) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload`);
    this.#clear = db.prepare('DELETE FROM timers WHERE kind = ? AND ref = ?');
    this.#list = db.prepare('SELECT * FROM timers WHERE (@kind IS NULL OR kind = @kind) AND due_at <= @due ORDER BY due_at, ref');
  }

  set(kind: string, ref: string, dueAt: number, payload: unknown = null): void {
    this.#set.run(kind, ref, dueAt, payload === null ? null : JSON.stringify(payload));
  }

  clear(kind: string, ref: string): void {
    this.#clear.run(kind, ref);
  }

  /** Timers of `kind` (or all) due at or before `dueBefore`, the soonest first. */
  list(kind: string | undefined, dueBefore: number): TimerRow[] {
    return this.#list.all({ kind: kind ?? null, due: dueBefore });
  }
}
