import type { Database, Statement } from 'better-sqlite3';

export interface CampaignRow {
  readonly campaign_id: number;
  readonly business_id: number;
  readonly model: string;
}

/** The campaigns an engine was configured with, kept so later processes (the CLI) know them too. */
export class CampaignsTable {
  readonly #all: Statement<[], CampaignRow>;
  readonly #upsert: Statement;

  constructor(db: Database) {
    this.#all = db.prepare('SELECT * FROM campaigns ORDER BY campaign_id');
    this.#upsert = db.prepare(`INSERT INTO campaigns (campaign_id, business_id, model) VALUES (@campaign_id, @business_id, @model)
      ON CONFLICT (campaign_id) DO UPDATE SET business_id = excluded.business_id, model = excluded.model`);
  }

  all(): CampaignRow[] {
    return this.#all.all();
  }

  upsert(row: CampaignRow): void {
    this.#upsert.run(row);
  }
}
