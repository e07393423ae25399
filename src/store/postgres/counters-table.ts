import type { CountersPort } from '../counters.js';
import type { Session } from './session.js';

const SQL = {
  // One statement per counter, atomic on the server: two processes adding at once both count.
  add: {
    name: 'ym_counters_add',
    text: `INSERT INTO counters (owner, name, value) VALUES ($1, $2, $3)
      ON CONFLICT (owner, name) DO UPDATE SET value = counters.value + excluded.value`,
  },
  forOwner: { name: 'ym_counters_for_owner', text: 'SELECT name, value FROM counters WHERE owner = $1 ORDER BY name' },
  // SUM of a BIGINT is a NUMERIC: cast back, to read a number.
  totals: { name: 'ym_counters_totals', text: 'SELECT name, SUM(value)::bigint AS value FROM counters GROUP BY name ORDER BY name' },
} as const;

export class CountersTable implements CountersPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async add(owner: string, deltas: Readonly<Record<string, number>>): Promise<void> {
    for (const [name, delta] of Object.entries(deltas)) await this.#session.changes(SQL.add, [owner, name, delta]);
  }

  async forOwner(owner: string): Promise<Record<string, number>> {
    return Object.fromEntries((await this.#session.rows<{ name: string; value: number }>(SQL.forOwner, [owner])).map((r) => [r.name, r.value]));
  }

  async totals(): Promise<Record<string, number>> {
    return Object.fromEntries((await this.#session.rows<{ name: string; value: number }>(SQL.totals, [])).map((r) => [r.name, r.value]));
  }
}
