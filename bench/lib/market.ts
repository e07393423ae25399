// The fake Market for benchmarks: loopback only, generous quotas unless a benchmark sets them.

import type { QuotaConfig } from '../../src/testing/quota.js';
import { startFakeMarket, type FakeMarket } from '../../src/testing/fake-market.js';
import type { FakeCampaign } from '../../src/testing/order-book.js';
import type { MarketOperation } from '../../src/market/errors.js';

export const API_KEY = 'bench-key';

const HOUR = 3_600_000;
/** Quotas high enough that only the benchmark that studies them meets them. */
export const UNLIMITED_QUOTAS: Record<MarketOperation, QuotaConfig> = {
  updateOrderStatuses: { limit: 100_000_000, windowMs: HOUR },
  updateOrderStatus: { limit: 100_000_000, windowMs: HOUR },
  getOperations: { limit: 100_000_000, windowMs: HOUR },
  getBusinessOrders: { limit: 100_000_000, windowMs: HOUR },
  acceptOrderCancellation: { limit: 100_000_000, windowMs: HOUR },
};

export async function startBenchMarket(campaigns: readonly FakeCampaign[], quotas: Partial<Record<MarketOperation, QuotaConfig>> = {}): Promise<FakeMarket> {
  return startFakeMarket({ apiKey: API_KEY, campaigns, quotas: { ...UNLIMITED_QUOTAS, ...quotas }, port: 0 });
}

/** Engine limits to match UNLIMITED_QUOTAS, so the engine's starting budget is not the bottleneck. */
export const UNLIMITED_LIMITS = {
  resources: Object.fromEntries(Object.entries(UNLIMITED_QUOTAS).map(([k, v]) => [k, { limit: v.limit, windowMs: v.windowMs }])),
} as const;
