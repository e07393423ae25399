import type { Database, Statement } from 'better-sqlite3';

/**
 * Named positions (e.g. the sync cursor) that advance only inside the transaction that used them.
 * @internal The SQLite driver stays out of the published types.
 */
export class CursorsTable {
  readonly #get: Statement<[string], { value: string }>;
  readonly #set: Statement;

  constructor(db: Database) {
    this.#get = db.prepare('SELECT value FROM cursors WHERE name = ?');
    this.#set = db.prepare(`INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);
  }

  get(name: string): string | undefined {
    return this.#get.get(name)?.value;
  }

  set(name: string, value: string, now: number): void {
    this.#set.run(name, value, now);
  }
}
