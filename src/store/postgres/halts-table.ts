import type { HaltRow, HaltsPort } from '../halts.js';
import type { Session } from './session.js';

const SQL = {
  all: { name: 'ym_halts_all', text: 'SELECT campaign_id, code, message, owner, at FROM halts ORDER BY campaign_id' },
  set: {
    name: 'ym_halts_set',
    text: `INSERT INTO halts (campaign_id, code, message, owner, at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (campaign_id) DO UPDATE SET code = excluded.code, message = excluded.message, owner = excluded.owner, at = excluded.at`,
  },
  clearAll: { name: 'ym_halts_clear_all', text: 'DELETE FROM halts' },
} as const;

export class HaltsTable implements HaltsPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async all(): Promise<HaltRow[]> {
    return this.#session.rows<HaltRow>(SQL.all, []);
  }

  async set(row: HaltRow): Promise<void> {
    await this.#session.changes(SQL.set, [row.campaign_id, row.code, row.message, row.owner, row.at]);
  }

  async clearAll(): Promise<number> {
    return this.#session.changes(SQL.clearAll, []);
  }
}
