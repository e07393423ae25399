import type { Database, Statement } from 'better-sqlite3';
import type { TimerRow, TimersPort } from '../timers.js';

export class TimersTable implements TimersPort {
  readonly #set: Statement<[string, string, number, string | null]>;
  readonly #clear: Statement<[string, string]>;
  readonly #list: Statement<[{ kind: string | null; due: number }], TimerRow>;

  constructor(db: Database) {
    this.#set = db.prepare(`INSERT INTO timers (kind, ref, due_at, payload) VALUES (?, ?, ?, ?)
      ON CONFLICT (kind, ref) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload`);
    this.#clear = db.prepare('DELETE FROM timers WHERE kind = ? AND ref = ?');
    this.#list = db.prepare('SELECT * FROM timers WHERE (@kind IS NULL OR kind = @kind) AND due_at <= @due ORDER BY due_at, ref');
  }

  async set(kind: string, ref: string, dueAt: number, payload: unknown = null): Promise<void> {
    this.#set.run(kind, ref, dueAt, payload === null ? null : JSON.stringify(payload));
  }

  async clear(kind: string, ref: string): Promise<void> {
    this.#clear.run(kind, ref);
  }

  async list(kind: string | undefined, dueBefore: number): Promise<TimerRow[]> {
    return this.#list.all({ kind: kind ?? null, due: dueBefore });
  }
}
