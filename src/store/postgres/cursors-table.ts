import type { CursorsPort } from '../cursors.js';
import type { Session } from './session.js';

const SQL = {
  get: { name: 'ym_cursors_get', text: 'SELECT value FROM cursors WHERE name = $1' },
  set: {
    name: 'ym_cursors_set',
    text: `INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, $3)
      ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
  },
} as const;

export class CursorsTable implements CursorsPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  /**
   * In a write transaction the cursor is held (an advisory lock on its name) until commit, so a
   * cursor read and then advanced is never advanced by two transactions from the same value. An
   * advisory lock, not FOR UPDATE: it holds a cursor that has no row yet too.
   */
  async get(name: string): Promise<string | undefined> {
    if (this.#session.writable) await this.#session.lock('cursor', name);
    const [row] = await this.#session.rows<{ value: string }>(SQL.get, [name]);
    return row?.value;
  }

  async set(name: string, value: string, now: number): Promise<void> {
    await this.#session.changes(SQL.set, [name, value, now]);
  }
}
