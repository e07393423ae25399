// The dispatcher: the only code that changes orders at the Market, and only from outbox rows.
// Each round it (1) turns sends orphaned by a crash into unknown outcomes, (2) reads back the
// orders whose outcome is unknown, and (3) sends due changes in batches of up to 30 per
// campaign, within the budgets, applying every per-order answer as its own machine event.
// Rows of kind cancellationAnswer (a DBS shop's answer to a buyer's cancellation request) go one
// per acceptOrderCancellation call, under that method's budget and the campaign's in-flight cap,
// through the same claim, failure handling and read-backs; their events are the ANSWER.* ones.

import { MARKET_ERROR_CODES, mayHaveBeenApplied, isMarketError, type AnyMarketError } from '../market/errors.js';
import type { UpdateOrderStatusResult } from '../market/schemas.js';
import { CANCELLATION_REFUSAL_REASONS, type CancellationAnswer, type OrderEvent } from '../../machines/order-machine.js';
import type { OutboxRow } from '../store/outbox.js';
import type { Store } from '../store/port.js';
import type { CampaignConfig } from './commands.js';
import type { CounterBook, CounterName } from './counter-book.js';
import type { MarketPermit, MeteredMarket } from './metered-market.js';
import type { OrderBook } from './order-book.js';
import { backoffDelay, type LimitsPolicy, type RetryPolicy } from './policies.js';
import { resourceKey, scopeKey } from './rate-limiter.js';
import { readOrdersById, retryAtAfter } from './business-orders.js';
import { chunk, inLockOrder, runConcurrently, sleep } from './concurrency.js';

/** A campaign whose key the Market refused (401/403): nothing more is sent for it until the halt is cleared. */
export interface CampaignHalt {
  readonly campaignId: number;
  readonly code: string;
  readonly message: string;
}

export interface DispatcherDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly market: MeteredMarket;
  readonly counters: CounterBook;
  readonly limits: LimitsPolicy;
  readonly retry: RetryPolicy;
  readonly owner: string;
  readonly clock: () => number;
  readonly leaseMs: number;
  readonly random?: () => number;
  /** How the dispatcher waits for a window's end (see WINDOW_EDGE_MS); a timer unless a test moves a fake clock instead. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}


/**
 * Rows a campaign's round leases, in rounds of its parallel slots' batches. Eight amortise a
 * round's own transactions; the price is that a fleet shares a campaign's queue in blocks that
 * large (the Market's in-flight cap is per campaign across the fleet, so one process can keep a
 * campaign's slots busy on its own).
 */
const ROWS_PER_ROUND_FACTOR = 8;
const BUDGET_RECHECK_MS = 1_000;
/**
 * A batch that finds the budget spent this close to the window's end waits for the end in place.
 * Given back to the queue, it would be leased again by a later round, after that round's other
 * work and the loop's sleep: on a loaded machine tens of milliseconds past the end, every window,
 * which a 2 s window cannot spare (issue #14, goal 4). Rows parked further out are due this long
 * before the end, so the round that leases them is there when the window opens.
 */
const WINDOW_EDGE_MS = 250;
/**
 * Waits for one window's end a batch makes before it goes back to the queue. The limiter, never
 * the timer, says when the window has opened; a timer may fire a little early, and the batch
 * then waits the rest.
 */
const EDGE_WAITS = 3;

/** How far a batch's send has got: what it waits on at a window's edge. */
interface SendAttempt {
  readonly signal?: AbortSignal | undefined;
  /** Waits for a window's end left to this batch (EDGE_WAITS). */
  readonly edgeWaits: number;
  /** Set when this batch opens a window for the others (see #alone): called once its request has been answered. */
  readonly opens?: (() => void) | undefined;
}

function describeResult(result: UpdateOrderStatusResult): string {
  return result.errorDetails ?? `The Market answered ERROR for order ${result.id} without details.`;
}

/** What the dispatcher reports about a row's request, in a status change's words. */
type SendEvent = Extract<OrderEvent, { type: 'DISPATCH.SENT' | 'DISPATCH.REJECTED' | 'DISPATCH.UNKNOWN' | 'DISPATCH.DEFERRED' }>;

/**
 * The machine event for what happened to `row`'s request: a cancellation answer has events of
 * its own (ANSWER.*), so that a report about it never moves the order's status change.
 */
function eventFor(row: OutboxRow, event: SendEvent): OrderEvent {
  // The row's request number: a late report about one step of a chain never counts for the next.
  if (row.kind !== 'cancellationAnswer') return { ...event, requestNo: row.request_no };
  switch (event.type) {
    case 'DISPATCH.SENT':
      return { type: 'ANSWER.SENT', at: event.at };
    case 'DISPATCH.REJECTED':
      return { type: 'ANSWER.REJECTED', at: event.at, reason: event.reason };
    case 'DISPATCH.UNKNOWN':
      return { type: 'ANSWER.UNKNOWN', at: event.at, reason: event.reason, ...(event.readBackAt !== undefined ? { readBackAt: event.readBackAt } : {}) };
    case 'DISPATCH.DEFERRED':
      return { type: 'ANSWER.DEFERRED', at: event.at, notBefore: event.notBefore, reason: event.reason };
  }
}

/** The answer a cancellationAnswer row carries (its payload, written by the order book). */
function answerOf(row: OutboxRow): CancellationAnswer {
  const payload = JSON.parse(row.payload ?? '{}') as { accepted?: unknown; reason?: unknown };
  const reason = CANCELLATION_REFUSAL_REASONS.find((r) => r === payload.reason);
  return { accepted: payload.accepted === true, ...(reason !== undefined ? { reason } : {}) };
}

export class Dispatcher {
  readonly #d: DispatcherDeps;
  /** Halted campaigns as last read (refreshed each round), plus the ones this round halted. */
  #halted = new Set<number>();
  /** Per budget (resourceKey), the batch opening a window, whose answer this process's other batches wait for. */
  readonly #opening = new Map<string, Promise<void>>();

  constructor(deps: DispatcherDeps) {
    this.#d = deps;
  }

  #campaign(campaignId: number): CampaignConfig {
    return this.#d.orders.campaign(campaignId);
  }

  /** Applies events to orders, all in one transaction. */
  async #apply(events: readonly { orderId: number; event: OrderEvent }[]): Promise<void> {
    if (events.length === 0) return;
    const now = this.#d.clock();
    await this.#d.store.transaction(async (tx) => {
      for (const { orderId, event } of inLockOrder(events, (e) => e.orderId)) await this.#d.orders.apply(tx, orderId, event, now);
    });
  }

  /** A send whose process died mid-call: its lease expired while still `sending`. */
  async recoverOrphanedSends(): Promise<number> {
    const now = this.#d.clock();
    const orphans = await this.#d.store.read((tx) => tx.outbox.orphans(now, 10_000));
    await this.#apply(orphans.map((r) => ({ orderId: r.order_id, event: eventFor(r, { type: 'DISPATCH.UNKNOWN', at: now, reason: 'The process sending this change stopped before the answer was recorded.' }) })));
    this.#d.counters.add('uncertain', orphans.length);
    return orphans.length;
  }

  /** Reads back orders whose outcome is unknown, up to 50 ids a call per business. */
  async readBackUncertain(): Promise<number> {
    const now = this.#d.clock();
    const rows = await this.#d.store.transaction((tx) => tx.outbox.lease('uncertain', this.#d.owner, now, this.#d.leaseMs, this.#roundSize()));
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
    let answer;
    try {
      answer = await readOrdersById(this.#d.market, businessId, { orderIds: rows.map((r) => r.order_id), limit: this.#d.limits.ordersPerRead }, this.#d.clock);
    } catch (error) {
      if (!isMarketError(error)) {
        await this.#releaseRows(rows, this.#d.clock());
        throw error;
      }
      // A 420 is the budget speaking, not a failed read: it waits for the window, uncounted.
      if (error.code === MARKET_ERROR_CODES.rateLimited) return this.#releaseRows(rows, this.#retryAt(error, 1));
      return this.#readFailed(rows, (attempt) => this.#retryAt(error, attempt));
    }
    if (!answer.ok) return this.#releaseRows(rows, answer.retryAt);
    const now = this.#d.clock();
    const found = new Map(answer.orders.map((o) => [o.orderId, o]));
    // A read-back is the freshest view there is: stamp it with the time it was read.
    // An async change read back too early is the order machine's call: it waits in `uncertain`.
    await this.#apply(
      rows.filter((r) => found.has(r.order_id)).map((r) => {
        const o = found.get(r.order_id)!;
        // cancelRequested tells whether an answer to a cancellation request was applied.
        const cancelRequested = o.cancelRequested !== undefined ? { cancelRequested: o.cancelRequested } : {};
        return { orderId: r.order_id, event: { type: 'MARKET.OBSERVED', status: o.status, substatus: o.substatus, observedAt: now, source: 'readBack', ...cancelRequested } };
      }),
    );
    this.#d.counters.add('readBacks', found.size);
    const missing = rows.filter((r) => !found.has(r.order_id));
    await this.#readFailed(missing, (attempt) => now + backoffDelay(this.#d.retry, attempt, this.#d.random));
  }

  /**
   * Gives back rows whose read-back learnt nothing, due again after the retry policy's backoff
   * for their read failures in a row (never their sends, which read-backs do not increase). One
   * time for the batch, so its orders are read back together. The order learnt nothing either,
   * so this is lease bookkeeping, not a machine event.
   */
  async #readFailed(rows: readonly OutboxRow[], retryAt: (attempt: number) => number): Promise<void> {
    if (rows.length === 0) return;
    const attempt = Math.max(...rows.map((r) => r.read_failures)) + 1;
    const nextAttemptAt = retryAt(attempt);
    const now = this.#d.clock();
    await this.#d.store.transaction(async (tx) => {
      for (const r of rows) await tx.outbox.releaseAfterFailedRead(r.id, this.#d.owner, attempt, nextAttemptAt, now);
    });
  }

  /**
   * Sends due changes; returns how many orders were handed to the Market. Each campaign leases
   * its own round, a whole number of batches, so a round never cuts a batch short. Once
   * `signal` aborts, batches not yet sent are given back and only those in flight finish.
   */
  async sendDue(signal?: AbortSignal): Promise<number> {
    const now = this.#d.clock();
    const { due, halts } = await this.#d.store.read(async (tx) => ({ due: await tx.outbox.dueCampaigns('queued', now), halts: await tx.halts.all() }));
    this.#halted = new Set(halts.map((h) => h.campaign_id));
    const campaigns = due.filter((id) => !this.#halted.has(id));
    let sent = 0;
    await runConcurrently(campaigns, campaigns.length, async (campaignId) => {
      // One process leases a campaign's rows at a time (the scope's lock, which its permits take
      // too), so two that lease at once never split what would have been one batch.
      const list = await this.#d.store.transaction(async (tx) => {
        await tx.limiter.lockScope(scopeKey({ kind: 'campaign', id: campaignId }));
        return tx.outbox.lease('queued', this.#d.owner, now, this.#d.leaseMs, this.#roundSize(), campaignId);
      });
      // DBS changes with a real delivery date need the single PUT, answers to cancellation
      // requests their own PUT; the rest go in bulk.
      const answers = list.filter((r) => r.kind === 'cancellationAnswer');
      const changes = list.filter((r) => r.kind !== 'cancellationAnswer');
      const singles = changes.filter((r) => r.real_delivery_date !== null);
      let bulk = changes.filter((r) => r.real_delivery_date === null);
      // A full lease may end in part of a batch whose rest is still queued: that part goes back,
      // to go out whole with the rest next round. Only the campaign's last rows go as a short batch.
      const perCall = this.#d.limits.ordersPerStatusUpdate;
      const whole = bulk.length - (bulk.length % perCall);
      if (list.length === this.#roundSize() && whole > 0 && whole < bulk.length) {
        await this.#releaseRows(bulk.slice(whole), now);
        bulk = bulk.slice(0, whole);
      }
      const batches = [...chunk(bulk, perCall), ...singles.map((r) => [r]), ...answers.map((r) => [r])];
      await runConcurrently(batches, this.#d.limits.parallelPerScope, async (batch) => {
        if (signal?.aborted) return this.#releaseRows(batch, this.#d.clock());
        // Awaited before adding: `sent += await …` would read `sent` before the wait, and batches
        // in flight together would each add to the same stale count.
        const handed = batch[0]!.kind === 'cancellationAnswer' ? await this.#sendAnswer(campaignId, batch[0]!) : await this.#send(campaignId, batch, { signal, edgeWaits: EDGE_WAITS });
        sent += handed;
      });
    });
    return sent;
  }

  #roundSize(): number {
    return this.#d.limits.ordersPerStatusUpdate * this.#d.limits.parallelPerScope * ROWS_PER_ROUND_FACTOR;
  }

  /**
   * Sends one batch; returns how many orders were handed to the Market. The first batch to reach
   * a window's edge opens the window alone (#atWindowEnd): until its answer the window's end is a
   * guess up to a second late (the header's whole second), and that answer pins it
   * (answeredWindowEnd). Batches sent beside it would hold the answer up (their claims and steps
   * run on this thread), pushing the end, and so the next window's first send, later by as much;
   * this process's other batches for the budget wait for it.
   */
  async #send(campaignId: number, rows: OutboxRow[], attempt: SendAttempt = { edgeWaits: 0 }): Promise<number> {
    if (this.#halted.has(campaignId) || attempt.signal?.aborted) {
      await this.#releaseRows(rows, this.#d.clock());
      return 0;
    }
    const single = rows.length === 1 && rows[0]!.real_delivery_date !== null;
    const operation = single ? 'updateOrderStatus' : 'updateOrderStatuses';
    const scope = { kind: 'campaign', id: campaignId } as const;
    const key = resourceKey(operation, scope);
    const opening = attempt.opens === undefined ? this.#opening.get(key) : undefined;
    if (opening !== undefined) {
      await opening;
      return this.#send(campaignId, rows, attempt);
    }
    // Claimed in the permit's own transaction: still queued, or another process has it in flight;
    // the lease, renewed here, covers this request however long the round has run.
    let sending: OutboxRow[] = [];
    const got = await this.#d.market.permit(operation, scope, rows.length, {
      prepare: async (tx, now) => {
        sending = [];
        const ordered = inLockOrder(rows, (row) => row.order_id);
        // The orders first, then their outbox rows, as every other writer locks them: a request
        // superseding one of these rows meanwhile waits here instead of deadlocking with the claim.
        await tx.orders.lock(ordered.map((r) => r.order_id));
        const claimed = await tx.outbox.claimForSend(ordered.map((r) => r.id), this.#d.owner, now, this.#d.leaseMs);
        for (const r of ordered) {
          if (!claimed.has(r.id)) continue;
          const { state } = await this.#d.orders.apply(tx, r.order_id, { type: 'DISPATCH.SENT', at: now, requestNo: r.request_no }, now);
          if (state.change === 'sending' && state.pending?.requestNo === r.request_no) sending.push(r);
        }
      },
    });
    if (!got.ok) {
      if (got.reason !== 'budget') {
        await this.#releaseRows(rows, got.retryAt);
        return 0;
      }
      // Spend what the budget still has on a smaller batch; the rest waits for the window.
      if (got.available > 0 && !single) {
        const sent = await this.#send(campaignId, rows.slice(0, got.available), attempt);
        return sent + (await this.#atWindowEnd(campaignId, key, rows.slice(got.available), got.retryAt, attempt));
      }
      return this.#atWindowEnd(campaignId, key, rows, got.retryAt, attempt);
    }
    if (sending.length === 0) {
      await got.permit.cancel();
      return 0;
    }
    this.#d.counters.add('ordersSent', sending.length);
    await this.#call(campaignId, sending, single, got.permit, attempt.opens);
    return sending.length;
  }

  /**
   * Rows the budget refused until `windowEndsAt`: within WINDOW_EDGE_MS of it they wait for it
   * here and are sent, the first of this process's batches to get there alone (#alone), the
   * others after its answer; further out they go back to the queue.
   */
  async #atWindowEnd(campaignId: number, key: string, rows: OutboxRow[], windowEndsAt: number, attempt: SendAttempt): Promise<number> {
    const wait = windowEndsAt - this.#d.clock();
    if (attempt.edgeWaits <= 0 || wait > WINDOW_EDGE_MS) {
      await this.#releaseRows(rows, this.#budgetRetryAt(windowEndsAt));
      return 0;
    }
    const next = { ...attempt, edgeWaits: attempt.edgeWaits - 1 };
    const sleepUntilEnd = (): Promise<void> => (this.#d.sleep ?? sleep)(wait, attempt.signal);
    if (attempt.opens !== undefined) {
      await sleepUntilEnd();
      return this.#send(campaignId, rows, next);
    }
    const opening = this.#opening.get(key);
    if (opening !== undefined) {
      await opening;
      return this.#send(campaignId, rows, next);
    }
    return this.#alone(key, async (opens) => {
      await sleepUntilEnd();
      return this.#send(campaignId, rows, { ...next, opens });
    });
  }

  /**
   * Runs `send` as the batch opening a window of budget `key`: this process's other batches for
   * that budget wait until `send` calls `opens` (its request answered) or ends.
   */
  async #alone(key: string, send: (opens: () => void) => Promise<number>): Promise<number> {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    this.#opening.set(key, gate);
    const opens = (): void => {
      if (this.#opening.get(key) === gate) this.#opening.delete(key);
      open();
    };
    try {
      return await send(opens);
    } finally {
      opens();
    }
  }

  /**
   * Sends one answer to a cancellation request with acceptOrderCancellation; returns 1 if it was
   * handed to the Market. Claimed with its permit, like a batch of changes (see #send).
   */
  async #sendAnswer(campaignId: number, row: OutboxRow): Promise<number> {
    if (this.#halted.has(campaignId)) {
      await this.#releaseRows([row], this.#d.clock());
      return 0;
    }
    let claimed = false;
    const got = await this.#d.market.permit('acceptOrderCancellation', { kind: 'campaign', id: campaignId }, 1, {
      prepare: async (tx, now) => {
        claimed = false;
        await tx.orders.lock([row.order_id]);
        if (!(await tx.outbox.claimForSend([row.id], this.#d.owner, now, this.#d.leaseMs)).has(row.id)) return;
        const { state } = await this.#d.orders.apply(tx, row.order_id, { type: 'ANSWER.SENT', at: now }, now);
        claimed = state.cancellation === 'sending' && state.cancellationAnswer?.requestNo === row.request_no;
      },
    });
    if (!got.ok) {
      await this.#releaseRows([row], got.reason === 'budget' ? this.#budgetRetryAt(got.retryAt) : got.retryAt);
      return 0;
    }
    if (!claimed) {
      await got.permit.cancel();
      return 0;
    }
    this.#d.counters.add('ordersSent');
    try {
      await got.permit.call((client) => client.acceptOrderCancellation(campaignId, row.order_id, answerOf(row)));
    } catch (error) {
      await this.#handleSendFailure(campaignId, [row], error);
      return 1;
    }
    await this.#apply([{ orderId: row.order_id, event: { type: 'ANSWER.ACCEPTED', at: this.#d.clock() } }]);
    this.#d.counters.add('accepted');
    return 1;
  }

  /** `answered` is called as soon as the Market's answer (or failure) is in, before what it means is applied. */
  async #call(campaignId: number, sending: OutboxRow[], single: boolean, permit: MarketPermit, answered?: () => void): Promise<void> {
    let results: readonly UpdateOrderStatusResult[];
    let missingIds: readonly number[] = [];
    try {
      if (single) {
        const row = sending[0]!;
        const response = await permit.call((client) =>
          client.updateOrderStatus(campaignId, row.order_id, {
            status: row.status,
            substatus: row.substatus,
            delivery: { dates: { realDeliveryDate: row.real_delivery_date! } },
          }),
        );
        const { order, operation: op } = response.body;
        results = [{ id: row.order_id, status: order.status, substatus: order.substatus, updateStatus: 'OK', ...(op ? { operation: op } : {}) }];
      } else {
        const response = await permit.call((client) => client.updateOrderStatuses(campaignId, sending.map((r) => ({ id: r.order_id, status: r.status, substatus: r.substatus }))));
        results = response.body.result?.orders ?? [];
        missingIds = response.missingIds;
      }
    } catch (error) {
      answered?.();
      return this.#handleSendFailure(campaignId, sending, error);
    }
    answered?.();
    await this.#applyResults(sending, results, missingIds);
  }

  async #applyResults(sending: readonly OutboxRow[], results: readonly UpdateOrderStatusResult[], missingIds: readonly number[]): Promise<void> {
    const at = this.#d.clock();
    const requestNos = new Map(sending.map((r) => [r.order_id, r.request_no]));
    // An answer about an order this batch did not send carries no request number: the machine takes it as before.
    const requestOf = (orderId: number) => {
      const requestNo = requestNos.get(orderId);
      return requestNo === undefined ? {} : { requestNo };
    };
    const events: { orderId: number; event: OrderEvent }[] = [];
    const counted: CounterName[] = [];
    for (const r of results) {
      if (r.updateStatus === 'OK' && r.operation) {
        events.push({ orderId: r.id, event: { type: 'DISPATCH.OPERATION_STARTED', at, ...requestOf(r.id), operationId: r.operation.id, operationType: r.operation.type } });
        counted.push('operationsStarted');
      } else if (r.updateStatus === 'OK') {
        events.push({ orderId: r.id, event: { type: 'DISPATCH.ACCEPTED', at, ...requestOf(r.id), ...(r.status ? { status: r.status, substatus: r.substatus ?? null } : {}) } });
        counted.push('accepted');
      } else {
        events.push({ orderId: r.id, event: { type: 'DISPATCH.REJECTED', at, ...requestOf(r.id), reason: describeResult(r) } });
        counted.push('rejected');
      }
    }
    for (const id of missingIds) {
      events.push({ orderId: id, event: { type: 'DISPATCH.UNKNOWN', at, ...requestOf(id), reason: 'The Market answered without this order.' } });
      counted.push('uncertain');
    }
    await this.#apply(events);
    // Counted once recorded: answers the store failed to record are counted when read back.
    for (const name of counted) this.#d.counters.add(name);
  }

  async #handleSendFailure(campaignId: number, rows: OutboxRow[], error: unknown): Promise<void> {
    const at = this.#d.clock();
    if (!isMarketError(error)) {
      // A bug on our side mid-send: the Market may have the request, so read back before resending.
      await this.#apply(rows.map((r) => ({ orderId: r.order_id, event: eventFor(r, { type: 'DISPATCH.UNKNOWN', at, reason: 'Internal error while sending.' }) })));
      throw error;
    }
    const failure = error;
    const reason = failure.message;
    if (failure.code === MARKET_ERROR_CODES.auth) {
      this.#halted.add(campaignId);
      await this.#d.store.transaction((tx) => tx.halts.set({ campaign_id: campaignId, code: failure.code, message: failure.message, owner: this.#d.owner, at }));
      return this.#defer(rows, at, reason);
    }
    if (failure.code === MARKET_ERROR_CODES.rateLimited) return this.#defer(rows, this.#retryAt(failure, 1), reason);
    if (failure.code === MARKET_ERROR_CODES.clientError && rows.length > 1) {
      // A 400 for the whole batch: nothing applied. Split it until the offending orders stand alone.
      this.#d.counters.add('bisections');
      await this.#defer(rows, at, reason);
      const half = Math.ceil(rows.length / 2);
      const fresh = (list: OutboxRow[]) =>
        this.#d.store.read(async (tx) => {
          const queued: OutboxRow[] = [];
          for (const r of list) {
            const row = await tx.outbox.get(r.order_id, r.request_no);
            if (row?.state === 'queued') queued.push(row);
          }
          return queued;
        });
      await this.#send(campaignId, await fresh(rows.slice(0, half)));
      await this.#send(campaignId, await fresh(rows.slice(half)));
      return;
    }
    if (failure.code === MARKET_ERROR_CODES.clientError || failure.code === MARKET_ERROR_CODES.requestInvalid) {
      await this.#apply(rows.map((r) => ({ orderId: r.order_id, event: eventFor(r, { type: 'DISPATCH.REJECTED', at, reason }) })));
      this.#d.counters.add('rejected', rows.length);
      return;
    }
    if (mayHaveBeenApplied(failure)) {
      // Read back after a backoff, so a struggling Market is not asked again at once; one time for
      // the whole batch, so its orders are read back (and, if need be, resent) together.
      const readBackAt = this.#retryAt(failure, Math.max(...rows.map((r) => r.attempts)) + 1);
      await this.#apply(rows.map((r) => ({ orderId: r.order_id, event: eventFor(r, { type: 'DISPATCH.UNKNOWN', at, reason, readBackAt }) })));
      this.#d.counters.add('uncertain', rows.length);
      return;
    }
    await this.#defer(rows, this.#retryAt(failure, rows[0]?.attempts ?? 1), reason);
  }

  async #defer(rows: OutboxRow[], notBefore: number, reason: string): Promise<void> {
    const at = this.#d.clock();
    await this.#apply(rows.map((r) => ({ orderId: r.order_id, event: eventFor(r, { type: 'DISPATCH.DEFERRED', at, notBefore, reason }) })));
    this.#d.counters.add('deferred', rows.length);
  }

  #retryAt(failure: AnyMarketError, attempt: number): number {
    return retryAtAfter(failure, attempt, this.#d.clock(), this.#d.retry, this.#d.random ?? Math.random);
  }

  /**
   * When rows that found the budget spent are tried again. The window's end is a guess until a
   * response's headers confirm it (a fresh local window lasts the configured windowMs, which may
   * be an hour when the Market's is shorter), so parked rows ask the limiter again at least every
   * BUDGET_RECHECK_MS instead of sleeping until a stale end; asking the limiter sends nothing.
   * Otherwise WINDOW_EDGE_MS before the end, to wait for it in place (#atWindowEnd); rows already
   * that close, which did not, at the end itself.
   */
  #budgetRetryAt(windowEndsAt: number): number {
    const now = this.#d.clock();
    const beforeEdge = windowEndsAt - WINDOW_EDGE_MS;
    return Math.min(beforeEdge > now ? beforeEdge : windowEndsAt, now + BUDGET_RECHECK_MS);
  }

  /** Gives leased rows back untouched (lease bookkeeping: the orders learnt nothing). */
  async #releaseRows(rows: readonly OutboxRow[], nextAttemptAt: number): Promise<void> {
    if (rows.length === 0) return;
    const now = this.#d.clock();
    await this.#d.store.transaction(async (tx) => {
      for (const r of rows) await tx.outbox.release(r.id, this.#d.owner, nextAttemptAt, now);
    });
  }
}
