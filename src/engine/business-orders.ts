// What every reader of getBusinessOrders shares: a read of orders by id through a permit (the
// order reader's batches, the dispatcher's read-backs), when to read again after a failed call,
// and how one order the Market listed is taken into the book (sync's pages, the reader's batches).

import { MARKET_ERROR_CODES, type AnyMarketError } from '../market/errors.js';
import type { BusinessOrder } from '../market/schemas.js';
import type { StoreTx } from '../store/port.js';
import type { CampaignConfig } from './commands.js';
import type { MeteredMarket } from './metered-market.js';
import type { OrderBook } from './order-book.js';
import { backoffDelay, type RetryPolicy } from './policies.js';
import { windowEnd } from './rate-limiter.js';

/** What taking one listed order did: tracked it, moved it, found nothing new, or left it alone (a campaign not configured). */
export type TakeOutcome = 'created' | 'updated' | 'unchanged' | 'skipped';

/**
 * Takes one order the Market listed into the book, in the caller's transaction: a new order is
 * tracked, a tracked one observed at the order's own updateDate (an older one changes nothing),
 * with the DBS `cancelRequested` flag when it is there. Orders of campaigns this engine is not
 * configured for are left alone.
 */
export async function takeBusinessOrder(
  deps: { readonly orders: OrderBook; readonly campaigns: ReadonlyMap<number, CampaignConfig> },
  tx: StoreTx,
  order: BusinessOrder,
  now: number,
): Promise<TakeOutcome> {
  if (!deps.campaigns.has(order.campaignId)) return 'skipped';
  const observedAt = order.updateDate ? Date.parse(order.updateDate) : now;
  const outcome = await deps.orders.track(
    tx,
    {
      orderId: order.orderId,
      campaignId: order.campaignId,
      status: order.status,
      substatus: order.substatus,
      observedAt,
      ...(order.cancelRequested !== undefined ? { cancelRequested: order.cancelRequested } : {}),
    },
    'sync',
    now,
  );
  if (outcome === 'created') return 'created';
  return outcome.changed ? 'updated' : 'unchanged';
}

export type ReadByIdAnswer =
  /** The Market answered: the orders it has among those asked (an order it does not return is not there for this key). */
  | { readonly ok: true; readonly orders: readonly BusinessOrder[]; readonly startedAt: number }
  /** Nothing was sent: the read budget is spent or blocked until `retryAt`, or `signal` aborted. */
  | { readonly ok: false; readonly reason: 'budget' | 'blocked' | 'aborted'; readonly retryAt: number };

/**
 * Reads up to `limit` (≤ 50) orders of one business by id: one getBusinessOrders call through a
 * permit of the business's read budget. `startedAt` is the engine's time just before the request
 * went out: whatever was asked of the order after it, the answer may predate. A Market error is
 * thrown as it came (the permit has been released with what it means for the budget).
 */
export async function readOrdersById(
  market: MeteredMarket,
  businessId: number,
  request: { readonly orderIds: readonly number[]; readonly campaignIds?: readonly number[]; readonly limit: number },
  clock: () => number,
  signal?: AbortSignal,
): Promise<ReadByIdAnswer> {
  const got = await market.permit('getBusinessOrders', { kind: 'business', id: businessId }, 1, { signal });
  if (!got.ok) return { ok: false, reason: got.reason, retryAt: got.retryAt };
  const startedAt = clock();
  const body = { orderIds: [...request.orderIds], ...(request.campaignIds ? { campaignIds: [...request.campaignIds] } : {}) };
  const response = await got.permit.call((client) => client.getBusinessOrders(businessId, body, { limit: request.limit }, signal ? { signal } : {}));
  return { ok: true, orders: response.body.orders, startedAt };
}

/**
 * When to call again after `failure`, the `attempt`-th in a row: a 420 for the budget at the end
 * of the window its headers name (a second from now when they name none, or for the parallel
 * limit), anything else after the retry policy's backoff.
 */
export function retryAtAfter(failure: AnyMarketError, attempt: number, now: number, retry: RetryPolicy, random: () => number): number {
  if (failure.code === MARKET_ERROR_CODES.rateLimited) {
    const until = failure.rateLimit?.untilMs === undefined ? undefined : windowEnd(failure.rateLimit.untilMs);
    return until !== undefined && until > now && !failure.parallel ? until : now + 1_000;
  }
  return now + backoffDelay(retry, attempt, random);
}
