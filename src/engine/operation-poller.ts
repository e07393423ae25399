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
import { requestEndOf, type RateLimiter } from './rate-limiter.js';

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
      // Still IN_PROGRESS at the deadline: the operation may yet finish at the Market. A read-back
      // now would show the order unchanged and the machine would send the change again, a second
      // request for a change the Market is still applying. Give the change up instead; a sync
      // (or a notification) shows the order's real status once the operation ends.
      return { type: 'DISPATCH.REJECTED', at, reason: `${outcome.reason} It was not sent again, since it may still complete; sync to see the order's status.` };
  }
}

// Statuses we record when the Market told us nothing: the operation machine treats any value
// other than DONE and FAILED as unresolved and keeps polling on its backoff schedule.
const NOT_RETURNED = 'NOT_RETURNED';
const POLL_FAILED = 'POLL_FAILED';
const NOT_POLLED = 'NOT_POLLED';

export class OperationPoller {
  readonly #d: PollerDeps;

  constructor(deps: PollerDeps) {
    this.#d = deps;
  }

  /**
   * Polls every due operation once; returns how many operations were asked about. Operations the
   * budget had no room for are not counted (so a caller looping until nothing is left to do sleeps
   * instead of spinning) and, when the budget is spent or blocked, wait for their next poll time.
   */
  async pollDue(): Promise<number> {
    const due = this.#d.operations.due(this.#d.clock(), 10_000);
    const groups = new Map<string, OperationRow[]>();
    for (const op of due) {
      const key = `${op.business_id}|${op.operation_type}`;
      groups.set(key, [...(groups.get(key) ?? []), op]);
    }
    const work = [...groups.values()].flatMap((ops) => chunk(ops, this.#d.limits.operationsPerPoll));
    let asked = 0;
    await runConcurrently(work, this.#d.limits.parallelPerScope, async (batch) => {
      if (await this.#poll(batch)) asked += batch.length;
    });
    return asked;
  }

  /** Returns whether the Market was asked. */
  async #poll(batch: OperationRow[]): Promise<boolean> {
    const { business_id: businessId, operation_type: operationType } = batch[0]!;
    const got = this.#d.limiter.tryAcquire('getOperations', { kind: 'business', id: businessId }, 1, this.#d.clock());
    if (!got.ok) {
      // No room in the budget (spent, or blocked after a 420): these operations back off to their
      // next poll time, as after a failed poll. A busy parallel slot frees within a request's time.
      if (got.reason !== 'parallel') this.#recordUnresolved(batch, NOT_POLLED);
      return false;
    }
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
      if (error.code === 'MARKET_RATE_LIMITED') this.#d.counters.rateLimited++;
      this.#d.limiter.release(got.permit, requestEndOf(error), this.#d.clock());
      // A failed poll learnt nothing, but the schedule backs off all the same.
      this.#recordUnresolved(batch, POLL_FAILED);
    }
    return true;
  }

  /** Records a poll that learnt nothing: the operation machine schedules the next one (or expires). */
  #recordUnresolved(batch: readonly OperationRow[], status: string): void {
    const now = this.#d.clock();
    this.#d.store.write(() => {
      for (const op of batch) {
        const outcome = this.#d.operations.apply(op.operation_id, { type: 'POLL.RESULT', status, at: now }, now);
        if (outcome?.orderId != null) this.#d.orders.apply(outcome.orderId, orderEvent(outcome, now), now);
      }
    });
  }
}
