// The order reader: reads the orders a notification asked about (ORDER_CREATED, ORDER_CANCELLED,
// …: their bodies do not carry the status), up to 50 ids per getBusinessOrders call per business.
// What a read returns is taken into the book as sync takes a page, and its requests are settled
// in the same transaction; a request made after the read started stays for the next read.

import { isMarketError } from '../market/errors.js';
import type { OrderReadRow } from '../store/order-reads.js';
import type { Store } from '../store/port.js';
import { readOrdersById, retryAtAfter, takeBusinessOrder } from './business-orders.js';
import type { CampaignConfig } from './commands.js';
import { chunk, inLockOrder, runConcurrently } from './concurrency.js';
import { EngineError } from './errors.js';
import type { MeteredMarket } from './metered-market.js';
import type { OrderBook } from './order-book.js';
import type { LimitsPolicy, RetryPolicy } from './policies.js';

/** The reader's counter names, kept under the engine's owner with its other counters. */
export const READ_COUNTERS = {
  /** getBusinessOrders calls made for read requests (answered or not). */
  calls: 'reads.calls',
  /** Orders the reads returned. */
  orders: 'reads.orders',
  /** Ids asked for that the Market did not return: their requests are settled all the same. */
  notFound: 'reads.notFound',
  /** Orders returned that the book refused to take (IMPORT_CONFLICT, SNAPSHOT_TOO_NEW, …): settled all the same. */
  refused: 'reads.refused',
} as const;

export interface OrderReaderDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly market: MeteredMarket;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly limits: LimitsPolicy;
  readonly retry: RetryPolicy;
  readonly owner: string;
  readonly clock: () => number;
  readonly leaseMs: number;
  readonly random: () => number;
}

export class OrderReader {
  readonly #d: OrderReaderDeps;

  constructor(deps: OrderReaderDeps) {
    this.#d = deps;
  }

  /**
   * One round of reads for every business with due requests: each leases as many as its parallel
   * slots can read at once and reads them in batches. Returns how many ids were asked of the
   * Market. A business whose budget is spent or blocked, or whose read failed, gives its requests
   * back due later and the others go on; once `signal` aborts, batches not yet sent are given back.
   */
  async readDue(signal?: AbortSignal): Promise<number> {
    const businesses = await this.#d.store.read((tx) => tx.reads.dueBusinesses(this.#d.clock()));
    let asked = 0;
    await runConcurrently(businesses, businesses.length, async (businessId) => {
      // Not `asked += await …`: that reads `asked` before the wait, losing the other businesses' counts.
      const n = await this.#readBusiness(businessId, signal);
      asked += n;
    });
    return asked;
  }

  async #readBusiness(businessId: number, signal: AbortSignal | undefined): Promise<number> {
    const { limits } = this.#d;
    const rows = await this.#d.store.transaction((tx) => tx.reads.lease(businessId, this.#d.owner, this.#d.clock(), this.#d.leaseMs, limits.ordersPerRead * limits.parallelPerScope));
    // After a spent budget or a failed call the rest of this business's round waits as long: the
    // next permit or call would most likely meet the same.
    let waitUntil: number | undefined;
    let asked = 0;
    await runConcurrently(chunk(rows, limits.ordersPerRead), limits.parallelPerScope, async (batch) => {
      if (signal?.aborted) return this.#release(batch, this.#d.clock());
      if (waitUntil !== undefined) return this.#release(batch, waitUntil);
      const outcome = await this.#readBatch(businessId, batch, signal);
      if (outcome.asked) asked += batch.length;
      if (outcome.waitUntil !== undefined) waitUntil = Math.max(waitUntil ?? 0, outcome.waitUntil);
    });
    return asked;
  }

  async #readBatch(businessId: number, rows: readonly OrderReadRow[], signal: AbortSignal | undefined): Promise<{ asked: boolean; waitUntil?: number }> {
    const request = {
      orderIds: rows.map((r) => r.order_id),
      campaignIds: [...new Set(rows.map((r) => r.campaign_id))],
      limit: this.#d.limits.ordersPerRead,
    };
    let answer;
    try {
      answer = await readOrdersById(this.#d.market, businessId, request, this.#d.clock, signal);
    } catch (error) {
      // Abandoned on purpose (the read changes nothing): given back as they were.
      if (signal?.aborted) {
        await this.#release(rows, this.#d.clock(), 1);
        return { asked: true };
      }
      // Ours, not the Market's (a store that failed the permit, a bug): given back, and it goes up.
      if (!isMarketError(error)) {
        await this.#release(rows, this.#d.clock());
        throw error;
      }
      const attempt = Math.max(...rows.map((r) => r.attempts)) + 1;
      const retryAt = retryAtAfter(error, attempt, this.#d.clock(), this.#d.retry, this.#d.random);
      await this.#release(rows, retryAt, 1);
      return { asked: true, waitUntil: retryAt };
    }
    if (!answer.ok) {
      // Nothing was sent: a spent budget may last an hour, so the requests wait for it as rows,
      // and the run loop sleeps until then instead of asking again.
      await this.#release(rows, answer.reason === 'aborted' ? this.#d.clock() : answer.retryAt);
      return answer.reason === 'aborted' ? { asked: false } : { asked: false, waitUntil: answer.retryAt };
    }
    const { orders, startedAt } = answer;
    const now = this.#d.clock();
    const returned = new Set(orders.map((o) => o.orderId));
    await this.#d.store.transaction(async (tx) => {
      let refused = 0;
      for (const order of inLockOrder(orders, (o) => o.orderId)) {
        try {
          await takeBusinessOrder(this.#d, tx, order, now);
        } catch (error) {
          // One order the book cannot take (another campaign's order under its id, a snapshot of a
          // newer engine) must not hold back the rest or come back forever: its read is settled.
          if (!(error instanceof EngineError)) throw error;
          refused++;
        }
      }
      // Every id asked settles: an order the Market does not return is not there to read.
      for (const row of rows) await tx.reads.complete(row.order_id, startedAt);
      const counts = {
        [READ_COUNTERS.calls]: 1,
        [READ_COUNTERS.orders]: returned.size,
        [READ_COUNTERS.notFound]: rows.filter((r) => !returned.has(r.order_id)).length,
        [READ_COUNTERS.refused]: refused,
      };
      // Counted in the transaction that stores what was read: once, whatever crashes around it.
      await tx.counters.add(this.#d.owner, Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0)));
    });
    return { asked: true };
  }

  /** Gives leased requests back due at `dueAt`; `calls` counts a call made for them that failed. */
  async #release(rows: readonly OrderReadRow[], dueAt: number, calls = 0): Promise<void> {
    if (rows.length === 0) return;
    await this.#d.store.transaction(async (tx) => {
      for (const row of rows) await tx.reads.release(row.order_id, this.#d.owner, dueAt);
      if (calls > 0) await tx.counters.add(this.#d.owner, { [READ_COUNTERS.calls]: calls });
    });
  }
}
