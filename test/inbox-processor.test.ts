// Issue #12, notifications applied: the receiver stores ORDER_STATUS_UPDATED notifications as
// pending inbox rows and answers; the runner applies each one as an observation at the
// notification's own time, in real SQLite files, and marks it done in the same transaction. A
// stale one changes nothing, an unknown order is tracked, a campaign not configured is left
// alone, one order's trouble does not hold the queue, and a store failure rolls a batch back whole.

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLL_POLICY } from '../machines/operation-machine.js';
import { CounterBook } from '../src/engine/counter-book.js';
import type { Engine } from '../src/engine/engine.js';
import { InboxProcessor } from '../src/engine/inbox-processor.js';
import { MeteredMarket } from '../src/engine/metered-market.js';
import { OperationBook } from '../src/engine/operation-book.js';
import { RateLimiter } from '../src/engine/rate-limiter.js';
import { Runner } from '../src/engine/runner.js';
import { createMarketClient } from '../src/market/client.js';
import { NotificationReceiver } from '../src/notifications/receiver.js';
import { StoreError, STORE_ERROR_CODES } from '../src/store/errors.js';
import type { InboxRow, InboxState } from '../src/store/inbox.js';
import type { StoreTx } from '../src/store/port.js';
import type { FakeMarket } from '../src/testing/index.js';
import { API_KEY, DBS, FBS, range, waitUntil } from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

const t = useEffectsTest();
const T = Date.now() - 60 * 60_000;
const iso = (ms: number): string => new Date(ms).toISOString();

interface StatusUpdate {
  readonly orderId: number;
  readonly campaignId: number;
  readonly status: string;
  readonly substatus: string;
  readonly at: number;
}

/** Stores an ORDER_STATUS_UPDATED row as the receiver does (the validated body as JSON), pending. */
async function storeUpdate(engine: Engine, u: StatusUpdate, extra: { type?: string; body?: string } = {}): Promise<number> {
  const body = extra.body ?? JSON.stringify({ notificationType: 'ORDER_STATUS_UPDATED', orderId: u.orderId, campaignId: u.campaignId, status: u.status, substatus: u.substatus, updatedAt: iso(u.at) });
  const { id } = await engine.store.transaction((tx) =>
    tx.inbox.insert({ dedupe_key: randomUUID(), type: extra.type ?? 'ORDER_STATUS_UPDATED', campaign_id: u.campaignId, order_id: u.orderId, event_at: u.at, body, state: 'pending', now: engine.clock() }),
  );
  return id;
}

async function inboxRow(engine: Engine, id: number): Promise<InboxRow> {
  const rows = await engine.store.read((tx) => tx.inbox.recent(100_000));
  return rows.find((r) => r.id === id)!;
}

const inboxCounts = (engine: Engine): Promise<Record<InboxState, number>> => engine.store.read((tx) => tx.inbox.counts());

function processorOf(engine: Engine): InboxProcessor {
  return new InboxProcessor({ store: engine.store, orders: engine.orders, campaigns: engine.campaigns, clock: engine.clock });
}

/** A runner of the engine's own parts (the engine keeps its own private), for wake() and run(); close its client after. */
function runnerOf(engine: Engine, market: FakeMarket): { runner: Runner; close: () => Promise<void> } {
  const counters = new CounterBook(engine.owner);
  const client = createMarketClient({ baseUrl: market.url, apiKey: API_KEY, timeoutMs: 2_000 });
  const leaseMs = 6_000;
  const limiter = new RateLimiter(engine.store, engine.limits, { leaseMs });
  const runner = new Runner({
    store: engine.store,
    orders: engine.orders,
    operations: new OperationBook(DEFAULT_POLL_POLICY),
    market: new MeteredMarket({ client, limiter, counters, campaigns: engine.campaigns, clock: engine.clock }),
    counters,
    campaigns: engine.campaigns,
    limits: engine.limits,
    retry: engine.retry,
    owner: engine.owner,
    clock: engine.clock,
    leaseMs,
    random: Math.random,
  });
  return { runner, close: () => client.close() };
}

async function tracked(engine: Engine, orderId: number, campaignId = FBS.campaignId, at = T): Promise<void> {
  await engine.trackOrders([{ orderId, campaignId, status: 'PROCESSING', substatus: 'STARTED', observedAt: at }]);
}

describe('the inbox processor', () => {
  it('applies a pending status update as a notification observation at its own time, and marks it done', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    await tracked(engine, 1);
    const id = await storeUpdate(engine, { orderId: 1, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'READY_TO_SHIP', at: T + 1_000 });

    expect(await processorOf(engine).processPending()).toBe(1);
    expect(await engine.getOrder(1)).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP', observedAt: T + 1_000 });
    expect((await engine.history(1)).at(-1)).toMatchObject({ event_type: 'MARKET.OBSERVED', source: 'notification', to_substatus: 'READY_TO_SHIP', at: T + 1_000 });
    expect(await inboxRow(engine, id)).toMatchObject({ state: 'done', last_error: null, processed_at: expect.any(Number) });
    expect(await inboxCounts(engine)).toEqual({ pending: 0, done: 1, ignored: 0 });
    // Done is done: another pass finds nothing.
    expect(await processorOf(engine).processPending()).toBe(0);
    expect(m.requests).toHaveLength(0);
  });

  it('a stale or repeated update changes nothing; the later event wins whichever order they come in', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    await tracked(engine, 2);
    await storeUpdate(engine, { orderId: 2, campaignId: FBS.campaignId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', at: T + 5_000 });
    // Arrived after, happened before: older than what the order has by then.
    const stale = await storeUpdate(engine, { orderId: 2, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'SHIPPED', at: T + 2_000 });
    expect(await processorOf(engine).processPending()).toBe(2);
    const after = await engine.getOrder(2);
    expect(after).toMatchObject({ status: 'DELIVERY', observedAt: T + 5_000 });

    const older = await storeUpdate(engine, { orderId: 2, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'READY_TO_SHIP', at: T - 1_000 });
    expect(await processorOf(engine).processPending()).toBe(1);
    expect(await engine.getOrder(2)).toMatchObject({ status: 'DELIVERY', rowVersion: after.rowVersion });
    expect((await engine.history(2)).filter((j) => j.source === 'notification')).toHaveLength(1);
    for (const id of [stale, older]) expect(await inboxRow(engine, id)).toMatchObject({ state: 'done', last_error: null });
  });

  it('tracks an order it has not seen, with the campaign’s model and the notified status', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    await storeUpdate(engine, { orderId: 3, campaignId: DBS.campaignId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', at: T });
    await processorOf(engine).processPending();
    expect(await engine.getOrder(3)).toMatchObject({ campaignId: DBS.campaignId, model: 'DBS', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T });
    expect((await engine.history(3))[0]).toMatchObject({ event_type: 'TRACK', source: 'notification' });
  });

  it('leaves alone a campaign it is not configured for, a type it does not apply and a body it cannot read', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    const foreign = await storeUpdate(engine, { orderId: 4, campaignId: 777, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', at: T });
    const otherType = await storeUpdate(engine, { orderId: 5, campaignId: FBS.campaignId, status: 'X', substatus: 'Y', at: T }, { type: 'ORDER_CREATED' });
    const unreadable = await storeUpdate(engine, { orderId: 6, campaignId: FBS.campaignId, status: 'X', substatus: 'Y', at: T }, { body: '{"notificationType":"ORDER_STATUS_UPDATED","orderId":"six"}' });
    expect(await processorOf(engine).processPending()).toBe(3);
    for (const id of [4, 5, 6]) expect(await engine.findOrder(id)).toBeUndefined();
    expect(await inboxRow(engine, foreign)).toMatchObject({ state: 'ignored', last_error: expect.stringContaining('777') });
    expect(await inboxRow(engine, otherType)).toMatchObject({ state: 'ignored', last_error: expect.stringContaining('ORDER_CREATED') });
    expect(await inboxRow(engine, unreadable)).toMatchObject({ state: 'ignored', last_error: expect.any(String) });
  });

  it('one order the book refuses is marked done with its error, and the rest of the batch is applied', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    await tracked(engine, 7, FBS.campaignId);
    await tracked(engine, 8, FBS.campaignId);
    // Order 7 is FBS's: an update naming it under DBS is a conflict, not a move.
    const conflict = await storeUpdate(engine, { orderId: 7, campaignId: DBS.campaignId, status: 'CANCELLED', substatus: 'SHOP_FAILED', at: T + 1_000 });
    const fine = await storeUpdate(engine, { orderId: 8, campaignId: FBS.campaignId, status: 'CANCELLED', substatus: 'SHOP_FAILED', at: T + 1_000 });
    expect(await processorOf(engine).processPending()).toBe(2);
    expect(await engine.getOrder(7)).toMatchObject({ campaignId: FBS.campaignId, status: 'PROCESSING' });
    expect(await engine.getOrder(8)).toMatchObject({ status: 'CANCELLED' });
    expect(await inboxRow(engine, conflict)).toMatchObject({ state: 'done', last_error: expect.stringMatching(/^IMPORT_CONFLICT: /) });
    expect(await inboxRow(engine, fine)).toMatchObject({ state: 'done', last_error: null });
  });

  it('a store error rolls the whole batch back: every row stays pending and the next pass applies them', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    await tracked(engine, 9);
    await tracked(engine, 10);
    for (const orderId of [9, 10]) await storeUpdate(engine, { orderId, campaignId: FBS.campaignId, status: 'CANCELLED', substatus: 'SHOP_FAILED', at: T + 1_000 });
    // The database fails the second order's write (as a full disk would), after the first was written.
    const transaction = engine.store.transaction.bind(engine.store);
    engine.store.transaction = <R>(fn: (tx: StoreTx) => Promise<R>): Promise<R> =>
      transaction((tx) => {
        const orders = new Proxy(tx.orders, {
          get: (target, key) => {
            if (key === 'update') {
              return async (row: { order_id: number }, version: number) => {
                if (row.order_id === 10) throw new StoreError(STORE_ERROR_CODES.failed, 'the test fails this write');
                return target.update(row as never, version);
              };
            }
            const value: unknown = Reflect.get(target, key);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        return fn({ ...tx, orders });
      });
    await expect(processorOf(engine).processPending()).rejects.toBeInstanceOf(StoreError);
    engine.store.transaction = transaction;
    expect(await inboxCounts(engine)).toEqual({ pending: 2, done: 0, ignored: 0 });
    expect(await engine.getOrder(9)).toMatchObject({ status: 'PROCESSING' });

    expect(await processorOf(engine).processPending()).toBe(2);
    for (const orderId of [9, 10]) expect(await engine.getOrder(orderId)).toMatchObject({ status: 'CANCELLED' });
  });

  it('settles more rows than one transaction holds, every one once', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    const ids = range(100, 450);
    await engine.store.transaction(async (tx) => {
      for (const orderId of ids) {
        const body = JSON.stringify({ notificationType: 'ORDER_STATUS_UPDATED', orderId, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updatedAt: iso(T) });
        await tx.inbox.insert({ dedupe_key: `k${orderId}`, type: 'ORDER_STATUS_UPDATED', campaign_id: FBS.campaignId, order_id: orderId, event_at: T, body, state: 'pending', now: T });
      }
    });
    let transactions = 0;
    const transaction = engine.store.transaction.bind(engine.store);
    engine.store.transaction = <R>(fn: (tx: StoreTx) => Promise<R>): Promise<R> => {
      transactions++;
      return transaction(fn);
    };
    expect(await processorOf(engine).processPending()).toBe(450);
    engine.store.transaction = transaction;
    // 200 + 200 + 50: a transaction that took fewer than it could ends the pass.
    expect(transactions).toBe(3);
    expect(await inboxCounts(engine)).toEqual({ pending: 0, done: 450, ignored: 0 });
    expect((await engine.stats()).inboxPending).toBe(0);
  });

  it('flush applies a pending row before anything else, and reports the inbox it left', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    await tracked(engine, 11);
    await storeUpdate(engine, { orderId: 11, campaignId: FBS.campaignId, status: 'CANCELLED', substatus: 'USER_CHANGED_MIND', at: Date.now() });
    expect((await engine.stats()).inboxPending).toBe(1);
    // A change queued before the notification was applied: the Market has cancelled the order, so
    // it is superseded instead of sent.
    await engine.requestChange({ orderId: 11, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    const report = await engine.flush();
    expect(report.inboxPending).toBe(0);
    expect(await engine.getOrder(11)).toMatchObject({ status: 'CANCELLED' });
    expect(m.requests.filter((r) => r.endpoint === 'updateOrderStatuses')).toHaveLength(0);
  });

  it('a run loop sleeping idle wakes on runner.wake() after a notification is stored, and applies it', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    await tracked(engine, 12);
    const { runner, close } = runnerOf(engine, m);
    const receiver = new NotificationReceiver({ store: engine.store, campaigns: engine.campaigns, clock: engine.clock });
    const stop = new AbortController();
    let passes = 0;
    // Far longer than the test: a loop that slept its idle time out would time it out.
    const done = runner.run({ signal: stop.signal, idleMs: 10 * 60_000, onProgress: () => void passes++ });
    try {
      await waitUntil(() => passes > 0, 'the loop makes its first pass and goes idle');
      const answer = await receiver.handle(
        JSON.stringify({ notificationType: 'ORDER_STATUS_UPDATED', orderId: 12, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updatedAt: iso(Date.now()) }),
      );
      expect(answer).toMatchObject({ status: 200, outcome: 'stored' });
      runner.wake();
      await waitUntil(async () => (await engine.getOrder(12)).substatus === 'READY_TO_SHIP', 'the woken loop applies the notification', 20_000);
    } finally {
      stop.abort();
      await done;
      await close();
    }
    expect(await inboxCounts(engine)).toMatchObject({ pending: 0, done: 1 });
  });
});
