// Polls the Market for async operations (LaaS cancellations): due operations grouped by
// business and type, up to 100 ids a call, on the backoff schedule each operation machine
// keeps. An ended operation settles its order's pending change.

import { isMarketError } from '../market/errors.js';
import type { MarketClient } from '../market/client.js';
import type { OrderEvent } from '../../machines/order-machine.js';
import type { Store } from '../store/store.js';
import type { OperationRow } from '../store/operations-table.js';
import { chunk, runConcurrently } from './concurrency.js';
import type { DispatchCounters } from './dispatcher.js';
import type { OperationBook, OperationOutcome } from './operation-book.js';
import type { OrderBook } from './order-book.js';
import type { LimitsPolicy } from './policies.js';
import type { RateLimiter } from './rate-limiter.js';

export interface PollerDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly operations: OperationBook;
  readonly client: MarketClient;
  readonly limiter: RateLimiter;
  readonly limits: LimitsPolicy;
  readonly clock: () => number;
  readonly counters: DispatchCounters;
}

/** What an ended operation means for its order. */
function orderEvent(outcome: OperationOutcome, at: number): OrderEvent {
  switch (outcome.kind) {
    case 'done':
      return { type: 'DISPATCH.ACCEPTED', at };
    case 'failed':
      return { type: 'DISPATCH.REJECTED', at, reason: outcome.reason };
    case 'expired':
      return { type: 'DISPATCH.UNKNOWN', at, reason: outcome.reason };
  }
}

// Statuses we record when the Market told us nothing: the operation machine treats any value
// other than DONE and FAILED as unresolved and keeps polling on its backoff schedule.
const NOT_RETURNED = 'NOT_RETURNED';
const POLL_FAILED = 'POLL_FAILED';

export class OperationPoller {
  readonly #d: PollerDeps;

  constructor(deps: PollerDeps) {
    this.#d = deps;
  }

  /** Polls every due operation once; returns how many operations were asked about. */
  async pollDue(): Promise<number> {
    const due = this.#d.operations.due(this.#d.clock(), 10_000);
    const groups = new Map<string, OperationRow[]>();
    for (const op of due) {
      const key = `${op.business_id}|${op.operation_type}`;
      groups.set(key, [...(groups.get(key) ?? []), op]);
    }
    const work = [...groups.values()].flatMap((ops) => chunk(ops, this.#d.limits.operationsPerPoll));
    await runConcurrently(work, this.#d.limits.parallelPerScope, (batch) => this.#poll(batch));
    return due.length;
  }

  async #poll(batch: OperationRow[]): Promise<void> {
    const { business_id: businessId, operation_type: operationType } = batch[0]!;
    const got = this.#d.limiter.tryAcquire('getOperations', { kind: 'business', id: businessId }, 1, this.#d.clock());
    if (!got.ok) return;
    this.#d.counters.calls.getOperations = (this.#d.counters.calls.getOperations ?? 0) + 1;
    try {
      const response = await this.#d.client.getOperations(businessId, { operationType, operationIds: batch.map((o) => o.operation_id) });
      const now = this.#d.clock();
      this.#d.limiter.release(got.permit, { kind: 'answered', rateLimit: response.rateLimit }, now);
      const statuses = new Map(response.body.result.operations.map((o) => [o.id, o.status]));
      this.#d.store.write(() => {
        for (const op of batch) {
          const outcome = this.#d.operations.apply(op.operation_id, { type: 'POLL.RESULT', status: statuses.get(op.operation_id) ?? NOT_RETURNED, at: now }, now);
          if (outcome?.orderId != null) this.#d.orders.apply(outcome.orderId, orderEvent(outcome, now), now);
        }
      });
    } catch (error) {
      if (!isMarketError(error)) {
        this.#d.limiter.release(got.permit, { kind: 'notCounted' }, this.#d.clock());
        throw error;
      }
      const rateLimit = error.rateLimit;
      const now = this.#d.clock();
      if (error.code === 'MARKET_RATE_LIMITED') {
        this.#d.counters.rateLimited++;
        this.#d.limiter.release(got.permit, { kind: 'rateLimited', rateLimit, parallel: /parallel/i.test(error.message) }, now);
      } else {
        this.#d.limiter.release(got.permit, error.code === 'MARKET_SERVER_ERROR' || !rateLimit ? { kind: 'notCounted', rateLimit } : { kind: 'answered', rateLimit }, now);
      }
      // A failed poll learnt nothing, but the schedule backs off all the same.
      this.#d.store.write(() => {
        for (const op of batch) {
          const outcome = this.#d.operations.apply(op.operation_id, { type: 'POLL.RESULT', status: POLL_FAILED, at: now }, now);
          if (outcome?.orderId != null) this.#d.orders.apply(outcome.orderId, orderEvent(outcome, now), now);
        }
      });
    }
  }
}
