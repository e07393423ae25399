// A strict consumer of the packed ym-orders (tools/check-package.ts installs the tarball, xstate
// and @statelyai/inspect beside a copy of this project, then type-checks and runs it). Every
// expected error below is a promise the published types keep: an unused one fails the build.

import assert from 'node:assert/strict';
import type { createWebSocketInspector } from '@statelyai/inspect';
import { initialTransition, transition } from 'xstate';
import { ChangeRefusedError, createEngine, type Engine, type OrderState, type RequestChangeCommand } from 'ym-orders';
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

// The engine on ':memory:' against the fake Market over loopback.
const fake = await startFakeMarket({ apiKey: API_KEY, campaigns });
fake.seedOrders([{ id: 1, campaignId: 1001, status: 'PROCESSING', substatus: 'STARTED' }]);
const engine: Engine = createEngine({ db: ':memory:', campaigns, api: { baseUrl: fake.url, apiKey: API_KEY } });
try {
  const synced = await engine.sync();
  assert.equal(synced.created, 1);
  // An observed status stays open: a value no list has is data.
  engine.trackOrders([{ orderId: 2, campaignId: 1001, status: 'A_STATUS_NO_LIST_HAS' }]);
  assert.equal(engine.getOrder(2).marketState, 'UNRECOGNIZED');

  assert.throws(
    // @ts-expect-error: a misspelt target does not compile (and is refused at run time all the same)
    () => engine.requestChange({ orderId: 1, status: 'PROCESING', substatus: 'READY_TO_SHIP' }),
    (error: unknown) => error instanceof ChangeRefusedError && error.blockers.some((b) => b.code === 'UNKNOWN_TARGET'),
  );
  const ship: RequestChangeCommand = { orderId: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' };
  engine.requestChange(ship);
  const report = await engine.flush({ untilIdle: true, maxWaitMs: 30_000 });
  assert.equal(report.open, 0);
  assert.equal(report.counters.calls.updateOrderStatuses, 1);
  const order: OrderState = engine.getOrder(1);
  assert.deepEqual([order.status, order.substatus, order.lastOutcome?.kind], ['PROCESSING', 'READY_TO_SHIP', 'accepted']);

  // @ts-expect-error: the SQLite driver's handle is not part of the published types
  assert.equal(typeof engine.store.db, 'object');
  console.log(`consumer: ok (order 1 ${order.status}/${order.substatus}, ${report.counters.calls.updateOrderStatuses} status-update call)`);
} finally {
  await engine.close();
  await fake.close();
}

/** Type-checked, never called: an app's Stately inspector plugs in with the app's own xstate. */
export function inspected(inspector: ReturnType<typeof createWebSocketInspector>): Engine {
  return createEngine({ db: ':memory:', inspect: inspector.inspect });
}
