// A conflict on one order is retried for that order alone, and never fails the batch around it.
//
// Adapters lock what a write transaction reads, so the conflict that is left is a writer that
// had nothing to lock yet: two transactions tracking the same new order. On PostgreSQL that is
// two engines (two pools: two hosts, to the server) tracking one order at once; the test holds
// the first one's transaction open until the second is seen waiting on it. The order book's
// retry also covers a row that changed between its read and its write (an adapter without row
// locks); that path is driven on SQLite by a port that lets another write in between.

import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import type { Engine } from '../src/engine/engine.js';
import type { OrdersPort } from '../src/store/orders.js';
import type { Store, StoreTx } from '../src/store/port.js';
import { CAMPAIGNS, FakeClock, T0, openEngine } from './helpers/engine-fixtures.js';
import { overriding, removeTempDirs, spyOnStore, tempDbPath, waitUntil } from './helpers/effects-fixtures.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL, withRawClient } from './helpers/postgres.js';

const postgres = inject('postgres');
const SCHEMAS = freshSchemaPrefix();
const CAMPAIGN = CAMPAIGNS[0]!.campaignId;
const STARTED = { campaignId: CAMPAIGN, status: 'PROCESSING', substatus: 'STARTED' } as const;
const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;

const engines: Engine[] = [];

afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
});

afterAll(async () => {
  removeTempDirs();
  if (postgres) await dropSchemas(SCHEMAS);
});

async function opened(db: string, extra: Parameters<typeof openEngine>[2] = {}): Promise<Engine> {
  const engine = await openEngine(db, new FakeClock(T0), extra);
  engines.push(engine);
  return engine;
}

/** From now on the store's transactions commit only once `gate` opens (their work done, their locks held). */
function holdCommits(store: Store): { open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const transaction = store.transaction.bind(store);
  store.transaction = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> =>
    transaction(async (tx) => {
      const value = await fn(tx);
      await gate;
      return value;
    });
  return { open };
}

describe.skipIf(!postgres)('PostgreSQL: two engines track the same new order at once', () => {
  it('the second waits for the first, then observes that order alone; its batch stands whole', async () => {
    const options = { postgres: { schema: `${SCHEMAS}_track` } };
    const first = await opened(POSTGRES_TEST_URL, options);
    const second = await opened(POSTGRES_TEST_URL, options);
    const held = holdCommits(first.store);
    const firstTracks = first.trackOrders([{ orderId: 20, ...STARTED }]);
    // The first transaction has inserted order 20 and waits at the gate before its commit.
    const secondTracks = second.trackOrders([10, 20, 30].map((orderId) => ({ orderId, ...STARTED, substatus: 'READY_TO_SHIP' })));
    await waitUntil(
      () =>
        withRawClient(async (client) => {
          const { rows } = await client.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'ym-orders' AND wait_event_type = 'Lock'`);
          return rows.length > 0;
        }),
      'the second engine waits on the first one`s insert',
    );
    held.open();
    expect(await firstTracks).toEqual({ created: 1, updated: 0, unchanged: 0 });
    // 10 and 30 are new; 20 was tracked by the other engine meanwhile and is observed (STARTED → READY_TO_SHIP).
    expect(await secondTracks).toEqual({ created: 2, updated: 1, unchanged: 0 });
    const history = await second.history(20);
    expect(history.map((j) => j.event_type)).toEqual(['TRACK', 'MARKET.OBSERVED']);
    expect((await second.getOrder(20)).substatus).toBe('READY_TO_SHIP');
    for (const id of [10, 30]) expect((await first.history(id)).map((j) => j.event_type)).toEqual(['TRACK']);
  }, 60_000);
});

describe('a row that changed between the read and the write', () => {
  it('is read again and planned again for that order alone: the batch around it is queued whole', async () => {
    const engine = await opened(tempDbPath());
    await engine.trackOrders([1, 2, 3].map((orderId) => ({ orderId, ...STARTED })));
    // The first write of order 2 finds that another writer got in first: the port writes an
    // observation of order 2 (its row moves to the next version) before passing the write on.
    let interfered = false;
    spyOnStore(engine.store, (tx) => {
      const orders: OrdersPort = overriding(tx.orders, {
        update: async (row, expectedRowVersion) => {
          if (row.order_id === 2 && !interfered) {
            interfered = true;
            const current = (await tx.orders.get(2))!;
            await tx.orders.update({ ...current, observed_at: current.observed_at + 1, updated_at: current.updated_at }, current.row_version);
          }
          return tx.orders.update(row, expectedRowVersion);
        },
      });
      return overriding(tx, { orders });
    });
    const { queued, refused } = await engine.requestChanges([1, 2, 3].map((orderId) => ({ orderId, ...READY })));
    expect(interfered).toBe(true);
    expect(refused).toEqual([]);
    expect(queued.map((s) => [s.orderId, s.change])).toEqual([
      [1, 'queued'],
      [2, 'queued'],
      [3, 'queued'],
    ]);
    // Order 2: tracked (1), the other writer (2), the request planned on that row (3).
    expect(queued[1]!.rowVersion).toBe(3);
    expect((await engine.history(2)).map((j) => j.event_type)).toEqual(['TRACK', 'SELLER.REQUEST']);
    expect((await engine.pendingChanges()).map((r) => r.order_id)).toEqual([1, 2, 3]);
  }, 60_000);

  it('gives up on that order after a few tries (CONCURRENT_UPDATE, nothing written for it); the rest of the batch is queued', async () => {
    const engine = await opened(tempDbPath());
    await engine.trackOrders([1, 2].map((orderId) => ({ orderId, ...STARTED })));
    let tries = 0;
    spyOnStore(engine.store, (tx) => {
      const orders: OrdersPort = overriding(tx.orders, {
        update: async (row, expectedRowVersion) => (row.order_id === 2 ? (tries++, false) : tx.orders.update(row, expectedRowVersion)),
      });
      return overriding(tx, { orders });
    });
    const { queued, refused } = await engine.requestChanges([1, 2].map((orderId) => ({ orderId, ...READY })));
    expect(tries).toBe(3);
    expect(queued.map((s) => s.orderId)).toEqual([1]);
    expect(refused.map((r) => [r.orderId, r.error.code])).toEqual([[2, 'CONCURRENT_UPDATE']]);
    expect((await engine.pendingChanges()).map((r) => r.order_id)).toEqual([1]);
    expect((await engine.history(2)).map((j) => j.event_type)).toEqual(['TRACK']);
  }, 60_000);
});
