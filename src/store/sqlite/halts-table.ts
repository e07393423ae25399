import type { Database, Statement } from 'better-sqlite3';
import type { HaltRow, HaltsPort } from '../halts.js';

export class HaltsTable implements HaltsPort {
  readonly #all: Statement<[], HaltRow>;
  readonly #set: Statement<[HaltRow]>;
  readonly #clearAll: Statement<[]>;

  constructor(db: Database) {
    this.#all = db.prepare('SELECT * FROM halts ORDER BY campaign_id');
    this.#set = db.prepare(`INSERT INTO halts (campaign_id, code, message, owner, at) VALUES (@campaign_id, @code, @message, @owner, @at)
      ON CONFLICT (campaign_id) DO UPDATE SET code = excluded.code, message = excluded.message, owner = excluded.owner, at = excluded.at`);
    this.#clearAll = db.prepare('DELETE FROM halts');
  }

  async all(): Promise<HaltRow[]> {
    return this.#all.all();
  }

  async set(row: HaltRow): Promise<void> {
    this.#set.run(row);
  }

  async clearAll(): Promise<number> {
    return this.#clearAll.run().changes;
  }
}
