// A strict consumer of the packed ym-orders (tools/check-package.ts installs the tarball, xstate
// and @statelyai/inspect beside a copy of this project, then type-checks and runs it). Every
// expected error below is a promise the published types keep: an unused one fails the build.

import assert from 'node:assert/strict';
import type { createWebSocketInspector } from '@statelyai/inspect';
import { initialTransition, transition } from 'xstate';
import {
  ChangeRefusedError,
  createEngine,
  SqliteStore,
  STORE_ERROR_CODES,
  StoreError,
  type Engine,
  type OrderState,
  type OutboxPort,
  type RequestChangeCommand,
  type SqliteOptions,
  type Store,
  type StoreTx,
} from 'ym-orders';
import { orderEffects, orderMachine, type KnownOrderStatus, type MarketStateValue } from 'ym-orders/machines';
import { startFakeMarket } from 'ym-orders/testing';

const API_KEY = 'consumer-check-key';
const campaigns = [{ campaignId: 1001, businessId: 77, model: 'FBS' }] as const;

// The machines, stepped as a unit test would: the snapshot value has the machine's regions, the
// effects come back typed.
const [s0] = initialTransition(orderMachine, {
  orderId: 1, campaignId: 1001, model: 'FBS', status: 'PROCESSING', substatus: 'STARTED', observedAt: 0,
});
const market: MarketStateValue = s0.value.market;
assert.deepEqual(market, { PROCESSING: 'STARTED' });
// @ts-expect-error: the market region's value is `{ PROCESSING: … }` here, not a string
const marketAsString: string = s0.value.market;
assert.equal(typeof marketAsString, 'object');
const [s1, actions] = transition(orderMachine, s0, { type: 'SELLER.REQUEST', status: 'PROCESSING', substatus: 'READY_TO_SHIP', at: 1 });
assert.equal(s1.value.change, 'queued');
const [effect] = orderEffects(actions);
assert.ok(effect?.type === 'effect.sendStatusChange');
const target: KnownOrderStatus = effect.params.pending.status;
assert.equal(target, 'PROCESSING');
// @ts-expect-error: a seller may only ask for a status the Market's lists have
transition(orderMachine, s0, { type: 'SELLER.REQUEST', status: 'PROCESING', at: 1 });

// The engine on a store the app opened itself (':memory:'), against the fake Market over loopback.
const fake = await startFakeMarket({ apiKey: API_KEY, campaigns });
fake.seedOrders([{ id: 1, campaignId: 1001, status: 'PROCESSING', substatus: 'STARTED' }]);
const sqliteOptions: SqliteOptions = { synchronous: 'NORMAL', busyTimeoutMs: 1_000 };
const store = SqliteStore.open(':memory:', sqliteOptions);
const port: Store = store;
const engine: Engine = await createEngine({ db: port, campaigns, api: { baseUrl: fake.url, apiKey: API_KEY } });
try {
  const synced = await engine.sync();
  assert.equal(synced.created, 1);
  // An observed status stays open: a value no list has is data.
  await engine.trackOrders([{ orderId: 2, campaignId: 1001, status: 'A_STATUS_NO_LIST_HAS' }]);
  assert.equal((await engine.getOrder(2)).marketState, 'UNRECOGNIZED');

  await assert.rejects(
    // @ts-expect-error: a misspelt target does not compile (and is refused at run time all the same)
    engine.requestChange({ orderId: 1, status: 'PROCESING', substatus: 'READY_TO_SHIP' }),
    (error: unknown) => error instanceof ChangeRefusedError && error.blockers.some((b) => b.code === 'UNKNOWN_TARGET'),
  );
  const ship: RequestChangeCommand = { orderId: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' };
  await engine.requestChange(ship);
  const report = await engine.flush({ untilIdle: true, maxWaitMs: 30_000 });
  assert.equal(report.open, 0);
  assert.equal(report.counters.calls.updateOrderStatuses, 1);
  const order: OrderState = await engine.getOrder(1);
  assert.deepEqual([order.status, order.substatus, order.lastOutcome?.kind], ['PROCESSING', 'READY_TO_SHIP', 'accepted']);

  // The rows behind it, read through the port in one consistent view.
  const rows = await engine.store.read(async (tx: StoreTx) => {
    const outbox: OutboxPort = tx.outbox;
    return { order: await tx.orders.get(1), journal: await tx.journal.forOrder(1), accepted: (await outbox.counts()).accepted };
  });
  assert.deepEqual([rows.order?.substatus, rows.accepted], ['READY_TO_SHIP', 1]);
  assert.ok(rows.journal.some((row) => row.event_type === 'DISPATCH.ACCEPTED'));

  // @ts-expect-error: the SQLite driver's handle is not part of the published types
  assert.equal(typeof store.db, 'object');
  console.log(`consumer: ok (order 1 ${order.status}/${order.substatus}, ${report.counters.calls.updateOrderStatuses} status-update call)`);
} finally {
  await engine.close();
  await fake.close();
}
// The engine closes only a store it opened: this one is the app's to close.
assert.equal((await store.read((tx) => tx.orders.get(1)))?.order_id, 1);
await store.close();
await assert.rejects(store.read((tx) => tx.orders.get(1)), (error: unknown) => error instanceof StoreError && error.code === STORE_ERROR_CODES.closed);

/** Type-checked, never called: an app's Stately inspector plugs in with the app's own xstate. */
export function inspected(inspector: ReturnType<typeof createWebSocketInspector>): Promise<Engine> {
  return createEngine({ db: ':memory:', inspect: inspector.inspect });
}
