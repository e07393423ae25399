import type { Database, Statement } from 'better-sqlite3';

export interface CampaignRow {
  readonly campaign_id: number;
  readonly business_id: number;
  readonly model: string;
}

/**
 * The campaigns an engine was configured with, kept so later processes (the CLI) know them too.
 * @internal The SQLite driver stays out of the published types.
 */
export class CampaignsTable {
  readonly #all: Statement<[], CampaignRow>;
  readonly #upsert: Statement;
  readonly #get: Statement<[number], CampaignRow>;
  readonly #orders: Statement<[number], { n: number }>;
  readonly #hasOrders: Statement<[number], { yes: number }>;

  constructor(db: Database) {
    this.#all = db.prepare('SELECT * FROM campaigns ORDER BY campaign_id');
    this.#get = db.prepare('SELECT * FROM campaigns WHERE campaign_id = ?');
    this.#orders = db.prepare('SELECT COUNT(*) AS n FROM orders WHERE campaign_id = ?');
    this.#hasOrders = db.prepare('SELECT EXISTS (SELECT 1 FROM orders WHERE campaign_id = ?) AS yes');
    this.#upsert = db.prepare(`INSERT INTO campaigns (campaign_id, business_id, model) VALUES (@campaign_id, @business_id, @model)
      ON CONFLICT (campaign_id) DO UPDATE SET business_id = excluded.business_id, model = excluded.model`);
  }

  all(): CampaignRow[] {
    return this.#all.all();
  }

  get(campaignId: number): CampaignRow | undefined {
    return this.#get.get(campaignId);
  }

  /** Cheap on a million orders, unlike a count: engines check it on every open. */
  hasOrders(campaignId: number): boolean {
    return this.#hasOrders.get(campaignId)?.yes === 1;
  }

  orderCount(campaignId: number): number {
    return this.#orders.get(campaignId)?.n ?? 0;
  }

  upsert(row: CampaignRow): void {
    this.#upsert.run(row);
  }
}
