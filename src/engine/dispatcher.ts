// The dispatcher: the only code that changes orders at the Market, and only from outbox rows.
// Each round it (1) turns sends orphaned by a crash into unknown outcomes, (2) reads back the
// orders whose outcome is unknown, and (3) sends due changes in batches of up to 30 per
// campaign, within the budgets, applying every per-order answer as its own machine event.

import {
  MARKET_ERROR_CODES,
  mayHaveBeenApplied,
  isMarketError,
  type AnyMarketError,
} from '../market/errors.js';
import type { MarketClient } from '../market/client.js';
import type { UpdateOrderStatusResult } from '../market/schemas.js';
import type { OrderEvent } from '../../machines/order-machine.js';
import type { OutboxRow } from '../store/outbox-table.js';
import type { Store } from '../store/store.js';
import type { CampaignConfig } from './commands.js';
import type { OrderBook } from './order-book.js';
import { backoffDelay, type LimitsPolicy, type RetryPolicy } from './policies.js';
import { requestEndOf, windowEnd, type Permit, type RateLimiter, type Scope } from './rate-limiter.js';
import { chunk, runConcurrently, sleep } from './concurrency.js';

export interface DispatchCounters {
  /** HTTP calls made, by Market method. */
  calls: Record<string, number>;
  ordersSent: number;
  accepted: number;
  rejected: number;
  operationsStarted: number;
  uncertain: number;
  deferred: number;
  readBacks: number;
  rateLimited: number;
  /** Whole-batch 400s split in halves to isolate the offending orders. */
  bisections: number;
}

export function emptyCounters(): DispatchCounters {
  return { calls: {}, ordersSent: 0, accepted: 0, rejected: 0, operationsStarted: 0, uncertain: 0, deferred: 0, readBacks: 0, rateLimited: 0, bisections: 0 };
}

export interface CampaignHalt {
  readonly campaignId: number;
  readonly code: string;
  readonly message: string;
}

export interface DispatcherDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly client: MarketClient;
  readonly limiter: RateLimiter;
  readonly limits: LimitsPolicy;
  readonly retry: RetryPolicy;
  readonly owner: string;
  readonly clock: () => number;
  readonly leaseMs: number;
  readonly counters: DispatchCounters;
  /** Campaigns whose key was refused (401/403): nothing more is sent for them by this engine. */
  readonly halted: Map<number, CampaignHalt>;
  readonly random?: () => number;
}

const ROWS_PER_ROUND_FACTOR = 8;
const BUDGET_RECHECK_MS = 1_000;

function describeResult(result: UpdateOrderStatusResult): string {
  return result.errorDetails ?? `The Market answered ERROR for order ${result.id} without details.`;
}

export class Dispatcher {
  readonly #d: DispatcherDeps;

  constructor(deps: DispatcherDeps) {
    this.#d = deps;
  }

  #count(method: string): void {
    this.#d.counters.calls[method] = (this.#d.counters.calls[method] ?? 0) + 1;
  }

  #campaign(campaignId: number): CampaignConfig {
    return this.#d.orders.campaign(campaignId);
  }

  /** Applies events to orders, all in one transaction. */
  #apply(events: readonly { orderId: number; event: OrderEvent }[]): void {
    const now = this.#d.clock();
    this.#d.store.write(() => {
      for (const { orderId, event } of events) this.#d.orders.apply(orderId, event, now);
    });
  }

  /** A send whose process died mid-call: its lease expired while still `sending`. */
  recoverOrphanedSends(): number {
    const now = this.#d.clock();
    const orphans = this.#d.store.outbox.inState('sending', now, 10_000).filter((r) => r.lease_expires_at === null || r.lease_expires_at < now);
    this.#apply(orphans.map((r) => ({ orderId: r.order_id, event: { type: 'DISPATCH.UNKNOWN', at: now, reason: 'The process sending this change stopped before the answer was recorded.' } })));
    this.#d.counters.uncertain += orphans.length;
    return orphans.length;
  }

  /** Reads back orders whose outcome is unknown, up to 50 ids a call per business. */
  async readBackUncertain(): Promise<number> {
    const now = this.#d.clock();
    const rows = this.#d.store.write(() => this.#d.store.outbox.lease('uncertain', this.#d.owner, now, this.#d.leaseMs, this.#roundSize()));
    const byBusiness = new Map<number, OutboxRow[]>();
    for (const row of rows) {
      const businessId = this.#campaign(row.campaign_id).businessId;
      byBusiness.set(businessId, [...(byBusiness.get(businessId) ?? []), row]);
    }
    const work = [...byBusiness].flatMap(([businessId, list]) => chunk(list, this.#d.limits.ordersPerRead).map((batch) => ({ businessId, batch })));
    await runConcurrently(work, this.#d.limits.parallelPerScope, ({ businessId, batch }) => this.#readBack(businessId, batch));
    return rows.length;
  }

  async #readBack(businessId: number, rows: OutboxRow[]): Promise<void> {
    const scope: Scope = { kind: 'business', id: businessId };
    const permit = await this.#acquire('getBusinessOrders', scope, 1);
    if (!permit.ok) return this.#releaseRows(rows, permit.retryAt);
    this.#count('getBusinessOrders');
    try {
      const response = await this.#d.client.getBusinessOrders(businessId, { orderIds: rows.map((r) => r.order_id) }, { limit: this.#d.limits.ordersPerRead });
      this.#d.limiter.release(permit.permit, { kind: 'answered', rateLimit: response.rateLimit }, this.#d.clock());
      const now = this.#d.clock();
      const found = new Map(response.body.orders.map((o) => [o.orderId, o]));
      // A read-back is the freshest view there is: stamp it with the time it was read.
      // An async change read back too early is the order machine's call: it waits in `uncertain`.
      this.#apply(
        rows.filter((r) => found.has(r.order_id)).map((r) => {
          const o = found.get(r.order_id)!;
          return { orderId: r.order_id, event: { type: 'MARKET.OBSERVED', status: o.status, substatus: o.substatus, observedAt: now, source: 'readBack' } };
        }),
      );
      this.#d.counters.readBacks += found.size;
      const missing = rows.filter((r) => !found.has(r.order_id));
      this.#readFailed(missing, (attempt) => now + backoffDelay(this.#d.retry, attempt, this.#d.random));
    } catch (error) {
      if (!isMarketError(error)) {
        this.#d.limiter.release(permit.permit, { kind: 'notCounted' }, this.#d.clock());
        this.#releaseRows(rows, this.#d.clock());
        throw error;
      }
      this.#releasePermit(permit.permit, error);
      // A 420 is the budget speaking, not a failed read: it waits for the window, uncounted.
      if (error.code === MARKET_ERROR_CODES.rateLimited) return this.#releaseRows(rows, this.#retryAt(error, 1));
      this.#readFailed(rows, (attempt) => this.#retryAt(error, attempt));
    }
  }

  /**
   * Gives back rows whose read-back learnt nothing, due again after the retry policy's backoff
   * for their read failures in a row (never their sends, which read-backs do not increase). One
   * time for the batch, so its orders are read back together.
   */
  #readFailed(rows: readonly OutboxRow[], retryAt: (attempt: number) => number): void {
    if (rows.length === 0) return;
    const attempt = Math.max(...rows.map((r) => r.read_failures)) + 1;
    const nextAttemptAt = retryAt(attempt);
    const now = this.#d.clock();
    this.#d.store.write(() => {
      for (const r of rows) this.#d.store.outbox.releaseAfterFailedRead(r.id, this.#d.owner, attempt, nextAttemptAt, now);
    });
  }

  /**
   * Sends due changes; returns how many orders were handed to the Market. Each campaign leases
   * its own round, a whole number of batches, so a round never cuts a batch short. Once
   * `signal` aborts, batches not yet sent are given back and only those in flight finish.
   */
  async sendDue(signal?: AbortSignal): Promise<number> {
    const now = this.#d.clock();
    const campaigns = this.#d.store.outbox.dueCampaigns('queued', now).filter((id) => !this.#d.halted.has(id));
    const before = this.#d.counters.ordersSent;
    await runConcurrently(campaigns, campaigns.length, async (campaignId) => {
      const list = this.#d.store.write(() =>
        this.#d.store.outbox.lease('queued', this.#d.owner, now, this.#d.leaseMs, this.#roundSize(), campaignId),
      );
      // DBS changes with a real delivery date need the single PUT; the rest go in bulk.
      const singles = list.filter((r) => r.real_delivery_date !== null);
      const bulk = list.filter((r) => r.real_delivery_date === null);
      const batches = [...chunk(bulk, this.#d.limits.ordersPerStatusUpdate), ...singles.map((r) => [r])];
      await runConcurrently(batches, this.#d.limits.parallelPerScope, (batch) =>
        signal?.aborted ? Promise.resolve(this.#releaseRows(batch, this.#d.clock())) : this.#send(campaignId, batch),
      );
    });
    return this.#d.counters.ordersSent - before;
  }

  #roundSize(): number {
    return this.#d.limits.ordersPerStatusUpdate * this.#d.limits.parallelPerScope * ROWS_PER_ROUND_FACTOR;
  }

  async #acquire(operation: Permit['operation'], scope: Scope, weight: number) {
    // The parallel limit frees up within one request's time: wait for it rather than give up.
    for (;;) {
      const got = this.#d.limiter.tryAcquire(operation, scope, weight, this.#d.clock());
      if (got.ok || got.reason !== 'parallel') return got;
      await sleep(Math.max(1, got.retryAt - this.#d.clock()));
    }
  }

  async #send(campaignId: number, rows: OutboxRow[]): Promise<void> {
    if (this.#d.halted.has(campaignId)) return this.#releaseRows(rows, this.#d.clock());
    const single = rows.length === 1 && rows[0]!.real_delivery_date !== null;
    const operation = single ? 'updateOrderStatus' : 'updateOrderStatuses';
    const scope: Scope = { kind: 'campaign', id: campaignId };
    const got = await this.#acquire(operation, scope, rows.length);
    if (!got.ok) {
      // Spend what the budget still has on a smaller batch; the rest waits for the window.
      if (got.reason === 'budget' && got.available > 0 && !single) {
        await this.#send(campaignId, rows.slice(0, got.available));
        return this.#releaseRows(rows.slice(got.available), this.#budgetRetryAt(got.retryAt));
      }
      return this.#releaseRows(rows, got.reason === 'budget' ? this.#budgetRetryAt(got.retryAt) : got.retryAt);
    }
    const permit = got.permit;

    const now = this.#d.clock();
    const sending = this.#d.store.write(() =>
      rows.filter((r) => {
        // Still queued, or another process has it in flight; the lease, renewed here, covers this
        // request however long the round has run.
        if (!this.#d.store.outbox.claimForSend(r.id, this.#d.owner, now, this.#d.leaseMs)) return false;
        const { state } = this.#d.orders.apply(r.order_id, { type: 'DISPATCH.SENT', at: now }, now);
        return state.change === 'sending' && state.pending?.requestNo === r.request_no;
      }),
    );
    if (sending.length === 0) {
      this.#d.limiter.release(permit, { kind: 'notCounted' }, now);
      return;
    }
    this.#d.counters.ordersSent += sending.length;
    this.#count(operation);
    try {
      if (single) {
        const row = sending[0]!;
        const response = await this.#d.client.updateOrderStatus(campaignId, row.order_id, {
          status: row.status,
          substatus: row.substatus,
          delivery: { dates: { realDeliveryDate: row.real_delivery_date! } },
        });
        this.#d.limiter.release(permit, { kind: 'answered', rateLimit: response.rateLimit }, this.#d.clock());
        const { order, operation: op } = response.body;
        this.#applyResults([{ id: row.order_id, status: order.status, substatus: order.substatus, updateStatus: 'OK', ...(op ? { operation: op } : {}) }], []);
      } else {
        const response = await this.#d.client.updateOrderStatuses(
          campaignId,
          sending.map((r) => ({ id: r.order_id, status: r.status, substatus: r.substatus })),
        );
        this.#d.limiter.release(permit, { kind: 'answered', rateLimit: response.rateLimit }, this.#d.clock());
        this.#applyResults(response.body.result?.orders ?? [], response.missingIds);
      }
    } catch (error) {
      await this.#handleSendFailure(campaignId, sending, permit, error);
    }
  }

  #applyResults(results: readonly UpdateOrderStatusResult[], missingIds: readonly number[]): void {
    const at = this.#d.clock();
    const events: { orderId: number; event: OrderEvent }[] = [];
    for (const r of results) {
      if (r.updateStatus === 'OK' && r.operation) {
        events.push({ orderId: r.id, event: { type: 'DISPATCH.OPERATION_STARTED', at, operationId: r.operation.id, operationType: r.operation.type } });
        this.#d.counters.operationsStarted++;
      } else if (r.updateStatus === 'OK') {
        events.push({ orderId: r.id, event: { type: 'DISPATCH.ACCEPTED', at, ...(r.status ? { status: r.status, substatus: r.substatus ?? null } : {}) } });
        this.#d.counters.accepted++;
      } else {
        events.push({ orderId: r.id, event: { type: 'DISPATCH.REJECTED', at, reason: describeResult(r) } });
        this.#d.counters.rejected++;
      }
    }
    for (const id of missingIds) {
      events.push({ orderId: id, event: { type: 'DISPATCH.UNKNOWN', at, reason: 'The Market answered without this order.' } });
      this.#d.counters.uncertain++;
    }
    this.#apply(events);
  }

  async #handleSendFailure(campaignId: number, rows: OutboxRow[], permit: Permit, error: unknown): Promise<void> {
    const at = this.#d.clock();
    if (!isMarketError(error)) {
      // A bug on our side mid-send: the Market may have the request, so read back before resending.
      this.#d.limiter.release(permit, { kind: 'notCounted' }, at);
      this.#apply(rows.map((r) => ({ orderId: r.order_id, event: { type: 'DISPATCH.UNKNOWN', at, reason: 'Internal error while sending.' } })));
      throw error;
    }
    const failure = error;
    this.#releasePermit(permit, failure);
    const reason = failure.message;
    if (failure.code === MARKET_ERROR_CODES.auth) {
      this.#d.halted.set(campaignId, { campaignId, code: failure.code, message: failure.message });
      this.#defer(rows, at, reason);
      return;
    }
    if (failure.code === MARKET_ERROR_CODES.rateLimited) {
      this.#d.counters.rateLimited++;
      this.#defer(rows, this.#retryAt(failure, 1), reason);
      return;
    }
    if (failure.code === MARKET_ERROR_CODES.clientError && rows.length > 1) {
      // A 400 for the whole batch: nothing applied. Split it until the offending orders stand alone.
      this.#d.counters.bisections++;
      this.#defer(rows, at, reason);
      const half = Math.ceil(rows.length / 2);
      const fresh = (list: OutboxRow[]) => list.map((r) => this.#d.store.outbox.get(r.order_id, r.request_no)!).filter((r) => r.state === 'queued');
      await this.#send(campaignId, fresh(rows.slice(0, half)));
      await this.#send(campaignId, fresh(rows.slice(half)));
      return;
    }
    if (failure.code === MARKET_ERROR_CODES.clientError || failure.code === MARKET_ERROR_CODES.requestInvalid) {
      this.#apply(rows.map((r) => ({ orderId: r.order_id, event: { type: 'DISPATCH.REJECTED', at, reason } })));
      this.#d.counters.rejected += rows.length;
      return;
    }
    if (mayHaveBeenApplied(failure)) {
      this.#apply(rows.map((r) => ({ orderId: r.order_id, event: { type: 'DISPATCH.UNKNOWN', at, reason } })));
      this.#d.counters.uncertain += rows.length;
      // Read back after a backoff, so a struggling Market is not asked again at once; one time for
      // the whole batch, so its orders are read back (and, if need be, resent) together.
      const readBackAt = this.#retryAt(failure, Math.max(...rows.map((r) => r.attempts)) + 1);
      this.#d.store.write(() => {
        for (const r of rows) this.#d.store.outbox.reschedule(r.order_id, r.request_no, readBackAt);
      });
      return;
    }
    this.#defer(rows, this.#retryAt(failure, rows[0]?.attempts ?? 1), reason);
  }

  #defer(rows: OutboxRow[], notBefore: number, reason: string): void {
    const at = this.#d.clock();
    this.#apply(rows.map((r) => ({ orderId: r.order_id, event: { type: 'DISPATCH.DEFERRED', at, notBefore, reason } })));
    this.#d.counters.deferred += rows.length;
  }

  #releasePermit(permit: Permit, failure: AnyMarketError): void {
    this.#d.limiter.release(permit, requestEndOf(failure), this.#d.clock());
  }

  #retryAt(failure: AnyMarketError, attempt: number): number {
    const now = this.#d.clock();
    if (failure.code === MARKET_ERROR_CODES.rateLimited) {
      const until = failure.rateLimit?.untilMs === undefined ? undefined : windowEnd(failure.rateLimit.untilMs);
      return until !== undefined && until > now && !failure.parallel ? until : now + 1_000;
    }
    return now + backoffDelay(this.#d.retry, attempt, this.#d.random);
  }

  /**
   * When rows that found the budget spent are tried again. The window's end is a guess until a
   * response's headers confirm it (a fresh local window lasts the configured windowMs, which may
   * be an hour when the Market's is shorter), so parked rows ask the limiter again at least every
   * BUDGET_RECHECK_MS instead of sleeping until a stale end; asking the limiter sends nothing.
   */
  #budgetRetryAt(windowEndsAt: number): number {
    return Math.min(windowEndsAt, this.#d.clock() + BUDGET_RECHECK_MS);
  }

  #releaseRows(rows: readonly OutboxRow[], nextAttemptAt: number): void {
    if (rows.length === 0) return;
    const now = this.#d.clock();
    this.#d.store.write(() => {
      for (const r of rows) this.#d.store.outbox.release(r.id, this.#d.owner, nextAttemptAt, now);
    });
  }
}
