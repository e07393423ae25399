import type { TimerRow, TimersPort } from '../timers.js';
import type { Session } from './session.js';

const SQL = {
  set: {
    name: 'ym_timers_set',
    text: `INSERT INTO timers (kind, ref, due_at, payload) VALUES ($1, $2, $3, $4)
      ON CONFLICT (kind, ref) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload`,
  },
  clear: { name: 'ym_timers_clear', text: 'DELETE FROM timers WHERE kind = $1 AND ref = $2' },
  list: {
    name: 'ym_timers_list',
    text: 'SELECT kind, ref, due_at, payload FROM timers WHERE ($1::text IS NULL OR kind = $1::text) AND due_at <= $2 ORDER BY due_at, ref',
  },
} as const;

export class TimersTable implements TimersPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async set(kind: string, ref: string, dueAt: number, payload: unknown = null): Promise<void> {
    // TEXT, not JSONB: the payload comes back exactly as it was written, as the port's JSON string.
    await this.#session.changes(SQL.set, [kind, ref, dueAt, payload === null ? null : JSON.stringify(payload)]);
  }

  async clear(kind: string, ref: string): Promise<void> {
    await this.#session.changes(SQL.clear, [kind, ref]);
  }

  async list(kind: string | undefined, dueBefore: number): Promise<TimerRow[]> {
    return this.#session.rows<TimerRow>(SQL.list, [kind ?? null, dueBefore]);
  }
}
