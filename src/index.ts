// `ym-orders`: the engine, its store and the Market client, with every typed error.

export { createEngine, Engine, type EngineOptions, type EngineSummary, type RequestChangesResult, type TrackResult } from './engine/engine.js';
export type { OrderState } from './engine/order-book.js';
export type { CampaignConfig, ObserveCommand, RequestChangeCommand, TrackOrderCommand } from './engine/commands.js';
export * from './engine/errors.js';
export { ORDER_SNAPSHOT_MIGRATIONS, type SnapshotMigration } from './engine/order-snapshots.js';
export * from './store/index.js';
export { YmOrdersError, isYmOrdersError } from './errors.js';
export {
  createMarketClient,
  MARKET_ERROR_CODES,
  MarketError,
  MarketAuthError,
  MarketRateLimitedError,
  MarketClientError,
  MarketServerError,
  MarketTimeoutError,
  MarketNetworkError,
  MarketResponseInvalidError,
  MarketResponseMismatchError,
  MarketRequestInvalidError,
  isMarketError,
  mayHaveBeenApplied,
  type MarketClient,
  type MarketClientOptions,
  type MarketErrorCode,
} from './market/index.js';
export { DEFAULT_LIMITS, DEFAULT_RETRY_POLICY, type LimitsPolicy, type LimitsOverrides, type RetryPolicy, type ResourceBudget } from './engine/policies.js';
export type { FlushOptions, FlushReport } from './engine/engine.js';
export type { SyncResult } from './engine/order-sync.js';
export type { Inspector, InspectOptions } from './engine/inspection.js';
