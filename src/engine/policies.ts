// Plain policy objects: what the dispatcher may spend, and how it waits after failures.
// Defaults follow ../shared/market-api/NOTES.md; every number is configurable because the
// docs and the spec disagree, and the response headers correct them at run time anyway.

import type { MarketOperation } from '../market/errors.js';

export interface RetryPolicy {
  readonly initialIntervalMs: number;
  readonly backoffCoefficient: number;
  readonly maximumIntervalMs: number;
  /** Sends of one change whose outcome stayed unknown before it is given up as rejected. */
  readonly maximumAttempts: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialIntervalMs: 500,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
  maximumAttempts: 3,
};

/** Full jitter: a uniformly random wait between 0 and the exponential cap. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maximumIntervalMs, policy.initialIntervalMs * policy.backoffCoefficient ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}

export interface ResourceBudget {
  /** Units per window: orders for updateOrderStatuses, requests for the others. */
  readonly limit: number;
  readonly windowMs: number;
}

export interface LimitsPolicy {
  readonly resources: Readonly<Record<MarketOperation, ResourceBudget>>;
  /** Requests in flight at once per campaign (campaign paths) or business (business paths). */
  readonly parallelPerScope: number;
  /** Orders per bulk status update (the API allows 1..30). */
  readonly ordersPerStatusUpdate: number;
  /** Ids per getBusinessOrders read-back (the API allows up to 50). */
  readonly ordersPerRead: number;
  /** Ids per getOperations call (the API allows 1..100). */
  readonly operationsPerPoll: number;
}

const HOUR = 3_600_000;

export const DEFAULT_LIMITS: LimitsPolicy = {
  resources: {
    // The spec's x-resource-limit-config says 10 000/h; the published page says 100 000 orders/h.
    // Start from the lower number: the first response's headers replace it with the real one.
    updateOrderStatuses: { limit: 10_000, windowMs: HOUR },
    updateOrderStatus: { limit: 10_000, windowMs: HOUR },
    getOperations: { limit: 1_000, windowMs: HOUR },
    getBusinessOrders: { limit: 10_000, windowMs: HOUR },
    acceptOrderCancellation: { limit: 500, windowMs: HOUR },
  },
  parallelPerScope: 4,
  ordersPerStatusUpdate: 30,
  ordersPerRead: 50,
  operationsPerPoll: 100,
};

export interface LimitsOverrides {
  readonly resources?: Partial<Record<MarketOperation, ResourceBudget>>;
  readonly parallelPerScope?: number;
  readonly ordersPerStatusUpdate?: number;
  readonly ordersPerRead?: number;
  readonly operationsPerPoll?: number;
}

export function resolveLimits(overrides: LimitsOverrides = {}): LimitsPolicy {
  return {
    ...DEFAULT_LIMITS,
    ...overrides,
    resources: { ...DEFAULT_LIMITS.resources, ...overrides.resources },
  };
}
