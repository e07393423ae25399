/** A campaign an engine was configured with, kept so later processes (the CLI) know it too. */
export interface CampaignRow {
  readonly campaign_id: number;
  readonly business_id: number;
  readonly model: string;
}

export interface CampaignsPort {
  /** By campaign id. */
  all(): Promise<CampaignRow[]>;
  get(campaignId: number): Promise<CampaignRow | undefined>;
  upsert(row: CampaignRow): Promise<void>;
  /** Whether any order of the campaign is tracked; cheap on a million orders. */
  hasOrders(campaignId: number): Promise<boolean>;
  orderCount(campaignId: number): Promise<number>;
}
