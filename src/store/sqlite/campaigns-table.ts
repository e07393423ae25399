import type { Database, Statement } from 'better-sqlite3';
import type { CampaignRow, CampaignsPort } from '../campaigns.js';

export class CampaignsTable implements CampaignsPort {
  readonly #all: Statement<[], CampaignRow>;
  readonly #get: Statement<[number], CampaignRow>;
  readonly #upsert: Statement<[CampaignRow]>;
  readonly #hasOrders: Statement<[number], { yes: number }>;
  readonly #orderCount: Statement<[number], { n: number }>;

  constructor(db: Database) {
    this.#all = db.prepare('SELECT * FROM campaigns ORDER BY campaign_id');
    this.#get = db.prepare('SELECT * FROM campaigns WHERE campaign_id = ?');
    this.#upsert = db.prepare(`INSERT INTO campaigns (campaign_id, business_id, model) VALUES (@campaign_id, @business_id, @model)
      ON CONFLICT (campaign_id) DO UPDATE SET business_id = excluded.business_id, model = excluded.model`);
    // EXISTS stops at the first order (orders_by_campaign), unlike a count.
    this.#hasOrders = db.prepare('SELECT EXISTS (SELECT 1 FROM orders WHERE campaign_id = ?) AS yes');
    this.#orderCount = db.prepare('SELECT COUNT(*) AS n FROM orders WHERE campaign_id = ?');
  }

  async all(): Promise<CampaignRow[]> {
    return this.#all.all();
  }

  async get(campaignId: number): Promise<CampaignRow | undefined> {
    return this.#get.get(campaignId);
  }

  async upsert(row: CampaignRow): Promise<void> {
    this.#upsert.run(row);
  }

  async hasOrders(campaignId: number): Promise<boolean> {
    return this.#hasOrders.get(campaignId)?.yes === 1;
  }

  async orderCount(campaignId: number): Promise<number> {
    return this.#orderCount.get(campaignId)?.n ?? 0;
  }
}
