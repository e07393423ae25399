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
        update: async (row, expectedRowVersion, expectedSnapshot) => {
          if (row.order_id === 2 && !interfered) {
            interfered = true;
            const current = (await tx.orders.get(2))!;
            await tx.orders.update({ ...current, observed_at: current.observed_at + 1, updated_at: current.updated_at }, current.row_version);
          }
          return tx.orders.update(row, expectedRowVersion, expectedSnapshot);
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
        update: async (row, expectedRowVersion, expectedSnapshot) => (row.order_id === 2 ? (tries++, false) : tx.orders.update(row, expectedRowVersion, expectedSnapshot)),
      });
      return overriding(tx, { orders });
    });
    const { queued, refused } = await engine.requestChanges([1, 2].map((orderId) => ({ orderId, ...READY })));
    // The first write stands on the row this process remembers (no read); failing there, the
    // request is judged again on the row read, which is not a conflict; then three tries.
    expect(tries).toBe(4);
    expect(queued.map((s) => s.orderId)).toEqual([1]);
    expect(refused.map((r) => [r.orderId, r.error.code])).toEqual([[2, 'CONCURRENT_UPDATE']]);
    expect((await engine.pendingChanges()).map((r) => r.order_id)).toEqual([1]);
    expect((await engine.history(2)).map((j) => j.event_type)).toEqual(['TRACK']);
  }, 60_000);
});

// Issue 14: a write stands on the row this process last read or wrote, without reading it
// again, and its UPDATE is conditioned on that row's version and text. Whatever else the row may
// hold by then must win over the remembered one: another process's write, or a rolled-back one.
describe('the row this process remembers', () => {
  const stores = [
    { name: 'SQLite', db: () => tempDbPath(), options: {} },
    ...(postgres ? [{ name: 'PostgreSQL', db: () => POSTGRES_TEST_URL, options: { postgres: { schema: `${SCHEMAS}_remembered` } } }] : []),
  ];
  for (const { name, db, options } of stores) {
    it(`${name}: never stands in for a row another process changed since (that change decides the request)`, async () => {
      const path = db();
      const a = await opened(path, options);
      const b = await opened(path, options);
      await a.trackOrders([{ orderId: 1, ...STARTED }]);
      // B moves the order on; A still remembers it at version 1.
      expect((await b.requestChange({ orderId: 1, ...READY })).change).toBe('queued');
      const refused = await a.requestChange({ orderId: 1, ...READY }).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'CHANGE_REFUSED' });
      expect((refused as { blockers: { code: string }[] }).blockers.map((x) => x.code)).toContain('CHANGE_PENDING');
      expect((await a.history(1)).map((j) => j.event_type)).toEqual(['TRACK', 'SELLER.REQUEST']);
      expect((await a.pendingChanges()).map((r) => [r.order_id, r.request_no])).toEqual([[1, 1]]);
    }, 60_000);
  }

  it("a rolled-back write's row version, written again by another process with other content, is not written over", async () => {
    const path = tempDbPath();
    const a = await opened(path);
    const b = await opened(path);
    await a.trackOrders([{ orderId: 1, ...STARTED }]);
    // A's observation of READY_TO_SHIP (version 2) is stepped and remembered, then its
    // transaction fails at the journal row and rolls back.
    let failed = false;
    spyOnStore(a.store, (tx) =>
      overriding(tx, {
        journal: overriding(tx.journal, {
          append: async (row) => {
            if (!failed && row.order_id === 1) {
              failed = true;
              throw new Error('the disk is full');
            }
            return tx.journal.append(row);
          },
        }),
      }),
    );
    await expect(a.trackOrders([{ orderId: 1, ...STARTED, substatus: 'READY_TO_SHIP', observedAt: T0 + 1_000 }])).rejects.toThrow();
    expect(failed).toBe(true);
    // B's write takes version 2 with other content: the Market has moved the order to delivery.
    await b.trackOrders([{ orderId: 1, campaignId: CAMPAIGN, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 + 2_000 }]);
    // A cancel is allowed from what A remembers (READY_TO_SHIP at version 2), not from the row.
    const refused = await a.requestChange({ orderId: 1, status: 'CANCELLED', substatus: 'SHOP_FAILED' }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'CHANGE_REFUSED' });
    expect(await b.getOrder(1)).toMatchObject({ status: 'DELIVERY', change: 'idle', rowVersion: 2 });
    expect((await b.history(1)).map((j) => j.event_type)).toEqual(['TRACK', 'MARKET.OBSERVED']);
    expect(await b.pendingChanges()).toEqual([]);
  }, 60_000);

  it('never stands on a write whose transaction rolled back: the next request is judged on the row as it is', async () => {
    const engine = await opened(tempDbPath());
    await engine.trackOrders([{ orderId: 1, ...STARTED }]);
    // Order 1's step is written, then the unknown order 999 fails the atomic batch: all rolled back.
    await expect(engine.requestChanges([{ orderId: 1, ...READY }, { orderId: 999, ...READY }], { atomic: true })).rejects.toMatchObject({ code: 'ORDER_NOT_FOUND' });
    expect(await engine.getOrder(1)).toMatchObject({ change: 'idle', rowVersion: 1 });
    const state = await engine.requestChange({ orderId: 1, ...READY });
    expect(state).toMatchObject({ change: 'queued', rowVersion: 2 });
    expect((await engine.history(1)).map((j) => j.event_type)).toEqual(['TRACK', 'SELLER.REQUEST']);
  }, 60_000);
});

// A request standing on the remembered row whose outcome writes nothing (a refusal, a step that
// changes nothing) reads the row once to confirm it (OrderBook #confirm). Here another process
// (a store of its own on the same database) has changed the row since: the outcome on the
// remembered copy must not stand, and the request is decided on the row as it is.
describe('an outcome that writes nothing on the row this process remembers, though another process changed it', () => {
  const DBS_CAMPAIGN = CAMPAIGNS.find((c) => c.model === 'DBS')!.campaignId;
  const stores = [
    { name: 'SQLite', db: () => tempDbPath(), options: (_: string) => ({}) },
    ...(postgres ? [{ name: 'PostgreSQL', db: () => POSTGRES_TEST_URL, options: (test: string) => ({ postgres: { schema: `${SCHEMAS}_unread_${test}` } }) }] : []),
  ];
  for (const { name, db, options } of stores) {
    it(`${name}: a change refused on the remembered copy (UNPAID) is queued on the row another process moved to PROCESSING/STARTED`, async () => {
      const path = db();
      const a = await opened(path, options('request'));
      const b = await opened(path, options('request'));
      // A tracks the order unpaid, and remembers it at version 1: READY_TO_SHIP is refused there.
      await a.trackOrders([{ orderId: 1, campaignId: CAMPAIGN, status: 'UNPAID', substatus: null }]);
      expect(await a.explain(1, READY)).toMatchObject({ allowed: false });
      await b.trackOrders([{ orderId: 1, ...STARTED, observedAt: T0 + 1_000 }]);
      const state = await a.requestChange({ orderId: 1, ...READY });
      expect(state).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', change: 'queued', pending: { ...READY, requestNo: 1 }, rowVersion: 3 });
      const history = await b.history(1);
      expect(history.map((j) => [j.event_type, j.row_version])).toEqual([
        ['TRACK', 1],
        ['MARKET.OBSERVED', 2],
        ['SELLER.REQUEST', 3],
      ]);
      // Stepped once, on B's version: from the status B observed.
      expect(history[2]).toMatchObject({ from_status: 'PROCESSING', from_substatus: 'STARTED', from_change: 'idle', to_change: 'queued' });
      expect((await b.pendingChanges()).map((r) => [r.order_id, r.request_no, r.substatus])).toEqual([[1, 1, 'READY_TO_SHIP']]);
    }, 60_000);

    it(`${name}: stopChain, CHAIN_NOT_ACTIVE on the remembered copy, stops the chain another process started`, async () => {
      const path = db();
      const a = await opened(path, options('stop'));
      const b = await opened(path, options('stop'));
      await a.trackOrders([{ orderId: 1, ...STARTED, campaignId: DBS_CAMPAIGN }]);
      // B starts a chain to DELIVERED (via DELIVERY); A still remembers the order with none.
      const started = await b.requestChange({ orderId: 1, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: '2025-05-11', via: 'chain' });
      expect(started).toMatchObject({ change: 'queued', chain: { step: 1, of: 2 }, rowVersion: 2 });
      const stopped = await a.stopChain(1);
      expect(stopped).toMatchObject({ change: 'idle', chain: null, lastOutcome: { kind: 'superseded', requestNo: 1, chain: { end: 'stopped' } }, rowVersion: 3 });
      const history = await b.history(1);
      expect(history.map((j) => [j.event_type, j.row_version])).toEqual([
        ['TRACK', 1],
        ['SELLER.REQUEST', 2],
        ['SELLER.STOP_CHAIN', 3],
      ]);
      expect(history[2]).toMatchObject({ from_change: 'queued', to_change: 'idle' });
      expect(await b.pendingChanges()).toEqual([]);
    }, 60_000);

    it(`${name}: a cancellation answer, refused on the remembered copy (no request), is queued for the request another process observed`, async () => {
      const path = db();
      const a = await opened(path, options('answer'));
      const b = await opened(path, options('answer'));
      await a.trackOrders([{ orderId: 1, ...STARTED, campaignId: DBS_CAMPAIGN }]);
      await b.trackOrders([{ orderId: 1, ...STARTED, campaignId: DBS_CAMPAIGN, cancelRequested: true, observedAt: T0 + 1_000 }]);
      const answered = await a.answerCancellation(1, { accepted: true });
      expect(answered).toMatchObject({ cancellation: 'queued', cancellationAnswer: { accepted: true }, cancellationRequestedAt: T0 + 1_000, rowVersion: 3 });
      expect((await b.history(1)).map((j) => [j.event_type, j.row_version])).toEqual([
        ['TRACK', 1],
        ['MARKET.OBSERVED', 2],
        ['SELLER.ANSWER_CANCELLATION', 3],
      ]);
      const pending = await b.pendingChanges();
      expect(pending.map((r) => [r.order_id, r.kind, r.payload])).toEqual([[1, 'cancellationAnswer', JSON.stringify({ accepted: true })]]);
    }, 60_000);

    it(`${name}: an observation that changes nothing on the remembered copy is applied to the row another process changed`, async () => {
      const path = db();
      const a = await opened(path, options('observe'));
      const b = await opened(path, options('observe'));
      // A tracks the buyer's cancellation request (observed at T0) and remembers it.
      await a.trackOrders([{ orderId: 1, ...STARTED, campaignId: DBS_CAMPAIGN, cancelRequested: true }]);
      // B: the Market dropped the flag, as of the same moment.
      await b.trackOrders([{ orderId: 1, ...STARTED, campaignId: DBS_CAMPAIGN, cancelRequested: false }]);
      expect(await b.getOrder(1)).toMatchObject({ cancellation: 'none', rowVersion: 2 });
      // The request seen again: nothing new to A's copy (its request is open), a new request on the row.
      const observed = await a.observe({ orderId: 1, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0, source: 'import', cancelRequested: true });
      expect(observed).toMatchObject({ cancellation: 'unanswered', cancellationRequestedAt: T0, rowVersion: 3 });
      expect((await b.history(1)).map((j) => [j.event_type, j.row_version])).toEqual([
        ['TRACK', 1],
        ['MARKET.OBSERVED', 2],
        ['MARKET.OBSERVED', 3],
      ]);
      expect(await b.getOrder(1)).toMatchObject({ cancellation: 'unanswered', rowVersion: 3 });
    }, 60_000);
  }
});
