// An in-process MarketClient for benchmarks: every bulk status update is answered OK for each
// order at once, with the rate-limit info the fake Market would give (bench/lib/market.ts's
// generous quota, a fixed window opened by the first call, the end cut to whole seconds as the
// `-Until` header carries it). No HTTP, no JSON, no validation: what the engine costs without a
// transport, the other side of a flush through the fake. Any other endpoint is a bug in the
// benchmark and throws.

import type { MarketClient } from '../../src/market/client.js';
import type { MarketOperation } from '../../src/market/errors.js';
import type { OrderState, UpdateOrderStatusesResponse } from '../../src/market/schemas.js';
import { UNLIMITED_QUOTAS } from './market.js';

export const STUB_ERROR_CODES = { unexpectedCall: 'STUB_UNEXPECTED_CALL' } as const;

export class StubUnexpectedCallError extends Error {
  readonly code = STUB_ERROR_CODES.unexpectedCall;

  constructor(operation: MarketOperation) {
    super(`the stub Market client answers only updateOrderStatuses; ${operation} was called`);
    this.name = 'StubUnexpectedCallError';
  }
}

export class StubMarketClient implements MarketClient {
  /** Per order id, how many times a change was sent for it: 1 each after a correct flush. */
  readonly sent = new Map<number, number>();
  calls = 0;
  readonly #now: () => number;
  #window: { untilMs: number; used: number } | undefined;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async updateOrderStatuses(_campaignId: number, orders: readonly OrderState[]) {
    this.calls++;
    const result: NonNullable<UpdateOrderStatusesResponse['result']>['orders'] = [];
    for (const o of orders) {
      this.sent.set(o.id, (this.sent.get(o.id) ?? 0) + 1);
      result.push({ id: o.id, status: o.status, ...(o.substatus !== undefined ? { substatus: o.substatus } : {}), updateStatus: 'OK' });
    }
    const body: UpdateOrderStatusesResponse = { status: 'OK', result: { orders: result } };
    return { body, rateLimit: this.#consume(orders.length), httpStatus: 200, missingIds: [] };
  }

  /** Duplicate sends and orders never sent, against the ids the flush should have sent once each. */
  check(expected: readonly number[]): { sentOnce: number; duplicates: number } {
    let sentOnce = 0;
    let duplicates = 0;
    for (const id of expected) {
      const n = this.sent.get(id) ?? 0;
      if (n === 1) sentOnce++;
      if (n > 1) duplicates += n - 1;
    }
    return { sentOnce, duplicates };
  }

  async updateOrderStatus(): Promise<never> {
    throw new StubUnexpectedCallError('updateOrderStatus');
  }

  async getOperations(): Promise<never> {
    throw new StubUnexpectedCallError('getOperations');
  }

  async getBusinessOrders(): Promise<never> {
    throw new StubUnexpectedCallError('getBusinessOrders');
  }

  async acceptOrderCancellation(): Promise<never> {
    throw new StubUnexpectedCallError('acceptOrderCancellation');
  }

  async close(): Promise<void> {}

  /** The fake's quota arithmetic (src/testing/quota.ts), so the engine's limiter sees the same numbers. */
  #consume(units: number) {
    const { limit, windowMs } = UNLIMITED_QUOTAS.updateOrderStatuses;
    const now = this.#now();
    if (this.#window === undefined || now >= this.#window.untilMs) this.#window = { untilMs: now + windowMs, used: 0 };
    this.#window.used += units;
    return { limit, remaining: Math.max(0, limit - this.#window.used), untilMs: Math.floor(this.#window.untilMs / 1000) * 1000 };
  }
}
