// Polls the Market for async operations (LaaS cancellations): due operations grouped by
// business and type, up to 100 ids a call, on the backoff schedule each operation machine
// keeps. An ended operation settles its order's pending change.

import { isMarketError } from '../market/errors.js';
import type { OrderEvent } from '../../machines/order-machine.js';
import type { OperationRow } from '../store/operations.js';
import type { Store, StoreTx } from '../store/port.js';
import { chunk, inLockOrder, runConcurrently } from './concurrency.js';
import type { MeteredMarket } from './metered-market.js';
import type { OperationBook, OperationOutcome } from './operation-book.js';
import type { OrderBook } from './order-book.js';
import type { LimitsPolicy } from './policies.js';

export interface PollerDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly operations: OperationBook;
  readonly market: MeteredMarket;
  readonly limits: LimitsPolicy;
  readonly clock: () => number;
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
    const now = this.#d.clock();
    const due = await this.#d.store.read((tx) => tx.operations.due(now, 10_000));
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
    const got = await this.#d.market.permit('getOperations', { kind: 'business', id: businessId }, 1);
    if (!got.ok) {
      // No room in the budget (spent, or blocked after a 420): these operations back off to their
      // next poll time, as after a failed poll.
      await this.#record(batch, () => NOT_POLLED);
      return false;
    }
    let statuses: Map<string, string>;
    try {
      const response = await got.permit.call((client) => client.getOperations(businessId, { operationType, operationIds: batch.map((o) => o.operation_id) }));
      statuses = new Map(response.body.result.operations.map((o) => [o.id, o.status]));
    } catch (error) {
      if (!isMarketError(error)) throw error;
      // A failed poll learnt nothing, but the schedule backs off all the same.
      await this.#record(batch, () => POLL_FAILED);
      return true;
    }
    await this.#record(batch, (id) => statuses.get(id) ?? NOT_RETURNED);
    return true;
  }

  /** Records each operation's poll result (the operation machine schedules the next poll, or ends) and settles ended ones' orders. */
  async #record(batch: readonly OperationRow[], statusOf: (operationId: string) => string): Promise<void> {
    const now = this.#d.clock();
    await this.#d.store.transaction(async (tx: StoreTx) => {
      for (const op of inLockOrder(batch, (o) => o.order_id ?? 0)) {
        const outcome = await this.#d.operations.apply(tx, op.operation_id, { type: 'POLL.RESULT', status: statusOf(op.operation_id), at: now }, now);
        if (outcome?.orderId != null) await this.#d.orders.apply(tx, outcome.orderId, orderEvent(outcome, now), now);
      }
    });
  }
}
