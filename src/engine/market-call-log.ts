// What the Market said, per campaign: the latest failed call of each, and how many calls were
// answered or failed. The engine wraps its client in this log, so flush, run and sync can show
// an operator why nothing moves; the outbox keeps only each change's own last reason.

import type { MarketClient } from '../market/client.js';
import { isMarketError, type MarketErrorCode, type MarketOperation } from '../market/errors.js';
import type { CampaignConfig } from './commands.js';

/** The latest failed Market call of a campaign. */
export interface CampaignError {
  readonly campaignId: number;
  readonly operation: MarketOperation;
  readonly code: MarketErrorCode;
  /** The typed error's message (built from redacted text only: never the key). */
  readonly message: string;
  /** When it failed (epoch ms, engine clock). */
  readonly at: number;
}

export interface MarketCallCounts {
  /** Calls the Market answered with a 2xx. */
  readonly answered: number;
  /** Calls that ended in a Market error (HTTP error, timeout, network, unreadable answer). */
  readonly failed: number;
}

export class MarketCallLog {
  readonly #campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly #clock: () => number;
  readonly #latest = new Map<number, CampaignError>();
  #answered = 0;
  #failed = 0;

  constructor(campaigns: ReadonlyMap<number, CampaignConfig>, clock: () => number) {
    this.#campaigns = campaigns;
    this.#clock = clock;
  }

  counts(): MarketCallCounts {
    return { answered: this.#answered, failed: this.#failed };
  }

  /** One entry per campaign that had a failed call, by campaign id. */
  latest(): CampaignError[] {
    return [...this.#latest.values()].sort((a, b) => a.campaignId - b.campaignId);
  }

  /** `client`, with every call's outcome recorded here. */
  wrap(client: MarketClient): MarketClient {
    // A business-wide call (reads, operation polls) serves every campaign of the business.
    const ofBusiness = (businessId: number): number[] =>
      [...this.#campaigns.values()].filter((c) => c.businessId === businessId).map((c) => c.campaignId);
    return {
      updateOrderStatuses: (campaignId, orders) => this.#track('updateOrderStatuses', [campaignId], undefined, () => client.updateOrderStatuses(campaignId, orders)),
      updateOrderStatus: (campaignId, orderId, change) =>
        this.#track('updateOrderStatus', [campaignId], undefined, () => client.updateOrderStatus(campaignId, orderId, change)),
      getOperations: (businessId, request) => this.#track('getOperations', ofBusiness(businessId), undefined, () => client.getOperations(businessId, request)),
      getBusinessOrders: (businessId, body, query, options) =>
        this.#track('getBusinessOrders', ofBusiness(businessId), options?.signal, () => client.getBusinessOrders(businessId, body, query, options)),
      acceptOrderCancellation: (campaignId, orderId, body) =>
        this.#track('acceptOrderCancellation', [campaignId], undefined, () => client.acceptOrderCancellation(campaignId, orderId, body)),
      close: () => client.close(),
    };
  }

  async #track<T>(operation: MarketOperation, campaignIds: readonly number[], signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    try {
      const answer = await call();
      this.#answered++;
      return answer;
    } catch (error) {
      // A call abandoned on purpose says nothing about the Market; a bug is not the Market's.
      if (signal?.aborted || !isMarketError(error)) throw error;
      this.#failed++;
      const at = this.#clock();
      for (const campaignId of campaignIds) this.#latest.set(campaignId, { campaignId, operation, code: error.code, message: error.message, at });
      throw error;
    }
  }
}
