// Plain policy objects: what the dispatcher may spend, and how it waits after failures.
// Defaults follow ../shared/market-api/NOTES.md; every number is configurable because the
// docs and the spec disagree, and the response headers correct them at run time anyway.

import { z } from 'zod';
import { DEFAULT_POLL_POLICY, type PollPolicy } from '../../machines/operation-machine.js';
import { DEFAULT_TIMEOUT_MS } from '../market/client.js';
import { MARKET_OPERATIONS, type MarketOperation } from '../market/errors.js';
import { redactSecret } from '../market/redact.js';
import { InvalidOptionError, UnsafeOptionError } from './errors.js';

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

/** The Market's own limit on one request (NOTES.md, Endpoints: "the request timeout is 10 s"). */
export const MARKET_REQUEST_TIMEOUT_MS = 10_000;

/**
 * The shortest window after sending an async change (a LaaS cancellation) in which a read-back
 * showing "not yet" must count as inconclusive. The engine waits pollPolicy.timeoutMs for an
 * operation whose id it knows, and even then never resends; an operation whose id was lost with
 * the answer is owed no less. The window counts from the send, and the Market may start the
 * operation as late as the request's end: the client's timeout or the Market's own 10 s,
 * whichever is longer.
 */
export function minimumAsyncSettleMs(pollPolicy: PollPolicy, requestTimeoutMs: number): number {
  return pollPolicy.timeoutMs + Math.max(requestTimeoutMs, MARKET_REQUEST_TIMEOUT_MS);
}

/** The engine options that decide when and how often the dispatcher calls the Market. */
export interface DispatchOptions {
  readonly maxSends?: number | undefined;
  readonly retry?: Partial<RetryPolicy> | undefined;
  readonly limits?: LimitsOverrides | undefined;
  readonly pollPolicy?: Partial<PollPolicy> | undefined;
  readonly asyncSettleMs?: number | undefined;
  /** The client's timeout; a client passed ready-made is taken to keep the default. */
  /** `apiKey` is read only to redact it from INVALID_OPTION, whose messages name unknown keys as given. */
  readonly api?: { readonly timeoutMs?: number | undefined; readonly apiKey?: string | undefined } | undefined;
}

export interface DispatchSettings {
  readonly maxSends: number;
  readonly retry: RetryPolicy;
  readonly limits: LimitsPolicy;
  readonly pollPolicy: PollPolicy;
  readonly asyncSettleMs: number;
}

const count = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const duration = z.number().min(0).max(Number.MAX_SAFE_INTEGER);
const positiveDuration = z.number().gt(0).max(Number.MAX_SAFE_INTEGER);
const growth = z.number().min(1).max(1_000);

const dispatchOptionsSchema = z.object({
  maxSends: count.optional(),
  retry: z.strictObject({ initialIntervalMs: duration, backoffCoefficient: growth, maximumIntervalMs: duration, maximumAttempts: count }).partial().optional(),
  pollPolicy: z.strictObject({ initialIntervalMs: positiveDuration, backoffCoefficient: growth, maximumIntervalMs: positiveDuration, timeoutMs: positiveDuration }).partial().optional(),
  limits: z
    .strictObject({
      resources: z.partialRecord(z.enum(MARKET_OPERATIONS), z.strictObject({ limit: count, windowMs: positiveDuration })),
      parallelPerScope: count,
      // What the API takes per call (NOTES.md a, b, c).
      ordersPerStatusUpdate: count.max(30),
      ordersPerRead: count.max(50),
      operationsPerPoll: count.max(100),
    })
    .partial()
    .optional(),
  asyncSettleMs: positiveDuration.optional(),
  // Not strict: the rest of `api` (the key among it) is no business of this check, nor of its messages.
  api: z.object({ timeoutMs: positiveDuration.optional() }).optional(),
});

/**
 * Checks and completes the dispatch options: a value of the wrong shape throws INVALID_OPTION,
 * one that could make the engine send a change twice throws UNSAFE_OPTION (README, "Settings
 * that bear on exactly-once"). Pure: call it before anything is opened.
 */
export function resolveDispatchSettings(options: DispatchOptions): DispatchSettings {
  const parsed = dispatchOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
    throw new InvalidOptionError(redactSecret(issues, options.api?.apiKey ?? ''));
  }
  const o = parsed.data;
  const retry = { ...DEFAULT_RETRY_POLICY, ...o.retry };
  const pollPolicy = { ...DEFAULT_POLL_POLICY, ...o.pollPolicy };
  const requestTimeoutMs = o.api?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const minimum = minimumAsyncSettleMs(pollPolicy, requestTimeoutMs);
  if (o.asyncSettleMs !== undefined && o.asyncSettleMs < minimum) {
    throw new UnsafeOptionError(
      'asyncSettleMs',
      o.asyncSettleMs,
      minimum,
      `a LaaS cancellation whose answer was lost would be sent again while its operation may still run (pollPolicy.timeoutMs ${pollPolicy.timeoutMs} ms, plus ${minimum - pollPolicy.timeoutMs} ms for the request to reach the Market).`,
    );
  }
  return {
    maxSends: o.maxSends ?? retry.maximumAttempts,
    retry,
    limits: resolveLimits(o.limits),
    pollPolicy,
    asyncSettleMs: o.asyncSettleMs ?? minimum,
  };
}
