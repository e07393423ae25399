import type { CampaignRow, CampaignsPort } from '../campaigns.js';
import type { Session } from './session.js';

const SQL = {
  all: { name: 'ym_campaigns_all', text: 'SELECT campaign_id, business_id, model FROM campaigns ORDER BY campaign_id' },
  get: { name: 'ym_campaigns_get', text: 'SELECT campaign_id, business_id, model FROM campaigns WHERE campaign_id = $1' },
  upsert: {
    name: 'ym_campaigns_upsert',
    text: `INSERT INTO campaigns (campaign_id, business_id, model) VALUES ($1, $2, $3)
      ON CONFLICT (campaign_id) DO UPDATE SET business_id = excluded.business_id, model = excluded.model`,
  },
  // EXISTS stops at the first order (orders_by_campaign), unlike a count.
  hasOrders: { name: 'ym_campaigns_has_orders', text: 'SELECT EXISTS (SELECT 1 FROM orders WHERE campaign_id = $1) AS yes' },
  orderCount: { name: 'ym_campaigns_order_count', text: 'SELECT COUNT(*) AS n FROM orders WHERE campaign_id = $1' },
} as const;

export class CampaignsTable implements CampaignsPort {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async all(): Promise<CampaignRow[]> {
    return this.#session.rows<CampaignRow>(SQL.all, []);
  }

  async get(campaignId: number): Promise<CampaignRow | undefined> {
    const [row] = await this.#session.rows<CampaignRow>(SQL.get, [campaignId]);
    return row;
  }

  async upsert(row: CampaignRow): Promise<void> {
    await this.#session.changes(SQL.upsert, [row.campaign_id, row.business_id, row.model]);
  }

  async hasOrders(campaignId: number): Promise<boolean> {
    const [row] = await this.#session.rows<{ yes: boolean }>(SQL.hasOrders, [campaignId]);
    return row?.yes === true;
  }

  async orderCount(campaignId: number): Promise<number> {
    const [row] = await this.#session.rows<{ n: number }>(SQL.orderCount, [campaignId]);
    return row?.n ?? 0;
  }
}
