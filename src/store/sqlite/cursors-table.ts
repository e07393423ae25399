import type { Database, Statement } from 'better-sqlite3';
import type { CursorsPort } from '../cursors.js';

export class CursorsTable implements CursorsPort {
  readonly #get: Statement<[string], { value: string }>;
  readonly #set: Statement<[string, string, number]>;

  constructor(db: Database) {
    this.#get = db.prepare('SELECT value FROM cursors WHERE name = ?');
    this.#set = db.prepare(`INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);
  }

  async get(name: string): Promise<string | undefined> {
    return this.#get.get(name)?.value;
  }

  async set(name: string, value: string, now: number): Promise<void> {
    this.#set.run(name, value, now);
  }
}
