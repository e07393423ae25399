// `ym-orders`: the engine, its store and the Market client, with every typed error. Every type a
// public signature names is exported here too (test/package-exports.test.ts checks it).

export { createEngine, Engine, type EngineOptions, type EngineSummary, type RequestChangesResult, type TrackResult } from './engine/engine.js';
export type { SettledChangesQuery } from './engine/commands.js';
export type { OrderState } from './engine/order-book.js';
export type { ListedOrder, OrderListPage, OrderListPageRequest } from './engine/order-listing.js';
export type { CampaignConfig, ChangeTarget, ObserveCommand, RequestChangeCommand, TrackOrderCommand } from './engine/commands.js';
export * from './engine/errors.js';
export { ORDER_SNAPSHOT_MIGRATIONS, type SnapshotMigration, type StoredSnapshot } from './engine/order-snapshots.js';
export type { CampaignHalt } from './engine/dispatcher.js';
export type { DispatchCounters } from './engine/counter-book.js';
export * from './store/index.js';
export { YmOrdersError, isYmOrdersError } from './errors.js';
export {
  createMarketClient,
  AUTH_SCHEMES,
  MARKET_ERROR_CODES,
  MARKET_OPERATIONS,
  MarketError,
  MarketStatusError,
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
  readMarketRefusal,
  MARKET_REFUSALS,
  type MarketRefusal,
  type MarketRefusalCode,
  type AnyMarketError,
  type AuthScheme,
  type MarketCall,
  type MarketClient,
  type MarketClientOptions,
  type MarketErrorCode,
  type MarketErrorsFields,
  type MarketOperation,
  type MarketResponse,
  type RateLimitInfo,
  type ResponseFields,
  type WithMissingIds,
} from './market/index.js';
// The Partner API's request and response bodies, as MarketClient takes and returns them.
export type {
  AcceptOrderCancellationRequest,
  ApiError,
  EmptyApiResponse,
  GetBusinessOrdersQuery,
  GetBusinessOrdersRequest,
  GetBusinessOrdersResponse,
  GetOperationsRequest,
  GetOperationsResponse,
  OrderState as MarketOrderState,
  OrderStatusChange,
  UpdateOrderStatusResponse,
  UpdateOrderStatusesResponse,
} from './market/schemas.js';
export { DEFAULT_LIMITS, DEFAULT_RETRY_POLICY, type LimitsPolicy, type LimitsOverrides, type RetryPolicy, type ResourceBudget } from './engine/policies.js';
export type { FlushOptions, FlushReport, RunOptions } from './engine/engine.js';
export type { CampaignError, MarketCallCounts } from './engine/metered-market.js';
export type { BudgetWait, Scope } from './engine/rate-limiter.js';
export type { SyncCounts, SyncOptions, SyncProgress, SyncResult, SyncStop } from './engine/order-sync.js';
export type { Inspector, InspectOptions } from './engine/inspection.js';
export type { OpenCancellation } from './engine/engine.js';
export type { AnswerCancellationCommand, OpenCancellationsQuery } from './engine/commands.js';
export type { CancellationState, ChainView } from './engine/order-book.js';
export type { CancellationPolicyOptions, CancellationPolicyMode } from './engine/cancellation-policy.js';
export type { ReadCounts } from './engine/runner.js';
// The push receiver (engine.handleNotification uses one; a backend may also mount the HTTP handler itself).
export * from './notifications/index.js';
