import type { Database, Statement } from 'better-sqlite3';
import type { CountersPort } from '../counters.js';

export class CountersTable implements CountersPort {
  readonly #add: Statement<[string, string, number]>;
  readonly #forOwner: Statement<[string], { name: string; value: number }>;
  readonly #totals: Statement<[], { name: string; value: number }>;

  constructor(db: Database) {
    this.#add = db.prepare(`INSERT INTO counters (owner, name, value) VALUES (?, ?, ?)
      ON CONFLICT (owner, name) DO UPDATE SET value = value + excluded.value`);
    this.#forOwner = db.prepare('SELECT name, value FROM counters WHERE owner = ? ORDER BY name');
    this.#totals = db.prepare('SELECT name, SUM(value) AS value FROM counters GROUP BY name ORDER BY name');
  }

  async add(owner: string, deltas: Readonly<Record<string, number>>): Promise<void> {
    for (const [name, delta] of Object.entries(deltas)) this.#add.run(owner, name, delta);
  }

  async forOwner(owner: string): Promise<Record<string, number>> {
    return Object.fromEntries(this.#forOwner.all(owner).map((r) => [r.name, r.value]));
  }

  async totals(): Promise<Record<string, number>> {
    return Object.fromEntries(this.#totals.all().map((r) => [r.name, r.value]));
  }
}
