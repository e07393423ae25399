// Issue #12, reads of notified orders: a notification that names an order without its status
// (ORDER_CREATED, ORDER_CANCELLED, …) leaves a read request; the runner reads the due ones 50 ids a
// getBusinessOrders call per business, over loopback HTTP from the fake Market into a real SQLite
// file (and once into PostgreSQL), takes what comes back into the book as sync does, and settles
// the requests in the same transaction. A spent budget, a failed call or a dead process's lease
// loses no request.

import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Engine } from '../src/engine/engine.js';
import type { FakeMarket } from '../src/testing/index.js';
import { BUSINESS_A, BUSINESS_B, DBS, FBS, LAAS, charged, orderIdsOf, range, requestsTo, seeds, waitUntil } from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL } from './helpers/postgres.js';

const postgres = inject('postgres');
const SCHEMAS = freshSchemaPrefix();
const t = useEffectsTest();

afterAll(async () => {
  if (postgres) await dropSchemas(SCHEMAS);
});

/** The engine's clock: real time plus what a test adds, so "later" is certain without sleeping. */
function steppingClock(): { fn: () => number; step: (ms: number) => void } {
  let offset = 0;
  return { fn: () => Date.now() + offset, step: (ms) => void (offset += ms) };
}

/** Asks for reads of `ids` (all of one campaign) at the engine's time, as the receiver does for ORDER_CREATED. */
async function requestReads(engine: Engine, campaign: { campaignId: number; businessId: number }, ids: readonly number[], reason = 'ORDER_CREATED'): Promise<void> {
  await engine.store.transaction(async (tx) => {
    for (const orderId of ids) await tx.reads.request({ orderId, campaignId: campaign.campaignId, businessId: campaign.businessId, reason, now: engine.clock() });
  });
}

const pending = (engine: Engine): Promise<number> => engine.store.read((tx) => tx.reads.count());
const reads = (m: FakeMarket) => requestsTo(m, 'getBusinessOrders');

describe('the order reader', () => {
  it('reads 60 requests of one business in exactly two calls, 50 ids and 10, and tracks what comes back', async () => {
    const m = await t.start();
    const ids = range(1_001, 60);
    m.seedOrders(seeds(FBS, 1_001, 60, 'PROCESSING', 'STARTED'));
    const { engine } = await t.open(m);
    await requestReads(engine, FBS, ids);
    expect((await engine.stats()).readsPending).toBe(60);

    // One pass of flush reads them: the reads are a phase of every round.
    const report = await engine.flush();
    const calls = reads(m);
    expect(calls.map((r) => orderIdsOf(r).length).sort((a, b) => b - a)).toEqual([50, 10]);
    expect(calls.every((r) => r.status === 200 && r.path.startsWith(`/v1/businesses/${BUSINESS_A}/orders`))).toBe(true);
    expect(new Set(calls.flatMap(orderIdsOf))).toEqual(new Set(ids));
    expect(calls.every((r) => JSON.stringify((r.body as { campaignIds?: number[] }).campaignIds) === JSON.stringify([FBS.campaignId]))).toBe(true);
    expect(report).toMatchObject({ readsPending: 0, reads: { calls: 2, orders: 60, notFound: 0 } });
    for (const id of ids) expect(await engine.getOrder(id)).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', model: 'FBS' });
    expect((await engine.history(ids[0]!))[0]).toMatchObject({ event_type: 'TRACK', source: 'sync' });

    // Nothing is left to read: another pass asks nothing.
    await engine.flush();
    expect(reads(m)).toHaveLength(2);
  });

  it('one round reads every business at once and counts every id it asked, whichever business answers first', async () => {
    const m = await t.start();
    m.seedOrders([...seeds(FBS, 2_001, 7, 'PROCESSING', 'STARTED'), ...seeds(LAAS, 3_001, 5, 'PROCESSING', 'STARTED')]);
    const { engine } = await t.open(m);
    await requestReads(engine, FBS, range(2_001, 7));
    await requestReads(engine, LAAS, range(3_001, 5));
    // The runner takes this count as the round's work: one business's count lost would make the round look idle.
    expect(await engine.readOrders()).toBe(12);
    expect(reads(m).map((r) => r.path.split('?')[0]).sort()).toEqual([`/v1/businesses/${BUSINESS_A}/orders`, `/v1/businesses/${BUSINESS_B}/orders`]);
    expect((await engine.stats()).readsPending).toBe(0);
  });

  it('tracks orders created at the fake after the engine started, at their own update time; an id the Market lacks settles as not found', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    const created = Date.now() - 5_000;
    m.seedOrders([...seeds(FBS, 2_001, 2, 'PROCESSING', 'STARTED', created), ...seeds(LAAS, 3_001, 1, 'PROCESSING', 'STARTED', created)]);
    m.setOrderStatus(2_002, 'PROCESSING', 'READY_TO_SHIP');
    await requestReads(engine, FBS, [2_001, 2_002, 2_999]);
    await requestReads(engine, LAAS, [3_001], 'ORDER_CANCELLED');

    const report = await engine.flush();
    // One call per business: each read asks its own business's ids only.
    expect(reads(m).map((r) => [r.path.split('?')[0], orderIdsOf(r).sort()])).toEqual(
      expect.arrayContaining([
        [`/v1/businesses/${BUSINESS_A}/orders`, [2_001, 2_002, 2_999]],
        [`/v1/businesses/${BUSINESS_B}/orders`, [3_001]],
      ]),
    );
    expect(reads(m)).toHaveLength(2);
    expect(report).toMatchObject({ readsPending: 0, reads: { calls: 2, orders: 3, notFound: 1 } });
    expect(await engine.getOrder(2_001)).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', observedAt: created });
    expect(await engine.getOrder(2_002)).toMatchObject({ substatus: 'READY_TO_SHIP', observedAt: m.getOrder(2_002)!.updateDate });
    expect(await engine.getOrder(3_001)).toMatchObject({ model: 'LAAS', status: 'PROCESSING' });
    expect(await engine.findOrder(2_999)).toBeUndefined();
  });

  it('a tracked order read again moves only on newer news; DBS cancelRequested comes with it', async () => {
    const m = await t.start();
    const { engine } = await t.open(m);
    m.seedOrders(seeds(DBS, 4_001, 1, 'PROCESSING', 'STARTED', Date.now() - 60_000));
    await engine.trackOrders([{ orderId: 4_001, campaignId: DBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', observedAt: Date.now() - 60_000 }]);
    m.requestCancellation(4_001);
    await requestReads(engine, DBS, [4_001], 'ORDER_CANCELLATION_REQUEST');
    await engine.flush();
    const read = await engine.getOrder(4_001);
    expect(read.cancellationRequestedAt).not.toBeNull();
    expect((await engine.history(4_001)).at(-1)).toMatchObject({ event_type: 'MARKET.OBSERVED', source: 'sync' });

    // The engine has seen newer than the Market's answer: reading it again changes nothing.
    await engine.observe({ orderId: 4_001, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: Date.now() + 60_000, source: 'notification' });
    const seen = await engine.getOrder(4_001);
    await requestReads(engine, DBS, [4_001], 'ORDER_UPDATED');
    await engine.flush();
    expect(reads(m)).toHaveLength(2);
    expect(await engine.getOrder(4_001)).toMatchObject({ status: 'DELIVERY', rowVersion: seen.rowVersion });
  });

  it('a request made while its read is in flight stays and is read again; the read that started before it settles nothing', async () => {
    const m = await t.start();
    m.seedOrders(seeds(FBS, 5_001, 2));
    const clock = steppingClock();
    const { engine } = await t.open(m, { clock: clock.fn });
    await requestReads(engine, FBS, [5_001, 5_002]);

    m.hold((r) => r.endpoint === 'getBusinessOrders');
    const flushing = engine.flush();
    await waitUntil(() => m.held().length === 1, 'the read reaches the Market');
    // The order changes at the Market and a new notification asks again, after the read started.
    m.setOrderStatus(5_001, 'PROCESSING', 'READY_TO_SHIP');
    clock.step(1_000);
    await requestReads(engine, FBS, [5_001], 'ORDER_STATUS_UPDATED');
    m.release();
    const first = await flushing;
    expect(first.readsPending).toBe(1);
    expect(await engine.findOrder(5_002)).toBeDefined();

    // Still due: the next pass reads it again and takes the newer status.
    await engine.flush();
    expect(reads(m).map((r) => orderIdsOf(r).sort())).toEqual([[5_001, 5_002], [5_001]]);
    expect(await engine.getOrder(5_001)).toMatchObject({ substatus: 'READY_TO_SHIP' });
    expect((await engine.stats()).readsPending).toBe(0);
  });

  it('a spent read budget gives the requests back due when the window ends, and reads them then: none lost, none asked twice', async () => {
    const windowMs = 1_500;
    const m = await t.start({ quotas: { getBusinessOrders: { limit: 1, windowMs } } });
    const ids = range(6_001, 60);
    m.seedOrders(seeds(FBS, 6_001, 60));
    const { engine } = await t.open(m, { limits: { resources: { getBusinessOrders: { limit: 1, windowMs } } } });
    await requestReads(engine, FBS, ids);

    const report = await engine.flush();
    // One batch got the budget's one call; the other found it spent and sent nothing.
    expect(reads(m)).toHaveLength(1);
    expect(report.readsPending).toBe(10);
    expect(report.waitingFor).toEqual([expect.objectContaining({ operation: 'getBusinessOrders', reason: 'budget' })]);
    const now = engine.clock();
    const { dueAt, due } = await engine.store.read(async (tx) => ({ dueAt: await tx.reads.nextDueAt(now), due: await tx.reads.dueBusinesses(now) }));
    // Given back (free again), due at the window's end rather than at once: the run loop sleeps until then.
    expect(due).toEqual([]);
    expect(dueAt).toBeGreaterThan(now);
    expect(dueAt).toBeLessThanOrEqual(now + windowMs + 1_000);

    await waitUntil(async () => (await engine.flush()).readsPending === 0, 'the rest is read once the window ends');
    expect(reads(m)).toHaveLength(2);
    expect(reads(m).every((r) => r.status === 200)).toBe(true);
    expect(reads(m).flatMap(orderIdsOf).sort((a, b) => a - b)).toEqual(ids);
    for (const id of ids) expect(await engine.findOrder(id)).toBeDefined();
  });

  it('a Market 500 gives the requests back after a backoff; they are read later', async () => {
    const m = await t.start();
    m.seedOrders(seeds(FBS, 7_001, 3));
    // Full jitter at 0.5 of a 400 ms cap: the first retry is 200 ms away.
    const { engine } = await t.open(m, { retry: { initialIntervalMs: 400 }, random: () => 0.5 });
    await requestReads(engine, FBS, range(7_001, 3));
    m.inject({ kind: 'status500', endpoint: 'getBusinessOrders' });

    const before = engine.clock();
    const failed = await engine.flush();
    expect(reads(m).map((r) => r.status)).toEqual([500]);
    expect(failed).toMatchObject({ readsPending: 3, reads: { calls: 1, orders: 0 } });
    expect(failed.lastErrors).toEqual(expect.arrayContaining([expect.objectContaining({ campaignId: FBS.campaignId, operation: 'getBusinessOrders', code: 'MARKET_SERVER_ERROR' })]));
    const dueAt = await engine.store.read((tx) => tx.reads.nextDueAt(engine.clock()));
    expect(dueAt).toBeGreaterThanOrEqual(before + 200);
    expect(dueAt).toBeLessThanOrEqual(engine.clock() + 200);

    await waitUntil(async () => (await engine.flush()).readsPending === 0, 'the requests are read after the backoff');
    expect(reads(m).map((r) => r.status)).toEqual([500, 200]);
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt!);
    expect((await engine.stats()).reads).toEqual({ calls: 2, orders: 3, notFound: 0 });
    for (const id of range(7_001, 3)) expect(await engine.findOrder(id)).toBeDefined();
  });

  it('a 420 gives the requests back until the end of the window the Market names, and they are read then', async () => {
    // One-second windows at the fake: its 420 names the end of the current one.
    const m = await t.start({ quotas: { getBusinessOrders: { limit: 10_000, windowMs: 1_000 } } });
    m.seedOrders(seeds(FBS, 7_501, 2));
    const { engine } = await t.open(m);
    await requestReads(engine, FBS, range(7_501, 2));
    m.inject({ kind: 'status420', endpoint: 'getBusinessOrders' });
    const first = await engine.flush();
    expect(reads(m).map((r) => r.status)).toEqual([420]);
    expect(first.readsPending).toBe(2);
    const now = engine.clock();
    const dueAt = await engine.store.read((tx) => tx.reads.nextDueAt(now));
    expect(dueAt).toBeGreaterThan(now);
    expect(dueAt).toBeLessThanOrEqual(now + 2_000);
    await waitUntil(async () => (await engine.flush()).readsPending === 0, 'the requests are read once the 420 has passed');
    expect(reads(m).map((r) => r.status)).toEqual([420, 200]);
  });

  it('requests leased by a process that died are read once the lease expires', async () => {
    const m = await t.start();
    m.seedOrders(seeds(FBS, 8_001, 5));
    const { engine } = await t.open(m);
    await requestReads(engine, FBS, range(8_001, 5));
    // Another engine leased them and stopped (its lease runs out on its own; nothing releases it).
    const leased = await engine.store.transaction((tx) => tx.reads.lease(BUSINESS_A, 'dead-process', engine.clock(), 400, 50));
    expect(leased).toHaveLength(5);

    await engine.flush();
    expect(reads(m)).toHaveLength(0);
    await waitUntil(async () => (await engine.flush()).readsPending === 0, 'the orphaned requests are read');
    expect(reads(m)).toHaveLength(1);
    expect(orderIdsOf(reads(m)[0]!).sort()).toEqual(range(8_001, 5));
    for (const id of range(8_001, 5)) expect(await engine.findOrder(id)).toBeDefined();
  });

  it('the run loop, idle, wakes when a request given back after a failure comes due', async () => {
    const m = await t.start();
    m.seedOrders(seeds(FBS, 9_001, 1));
    const { engine } = await t.open(m, { retry: { initialIntervalMs: 400 }, random: () => 0.5 });
    await requestReads(engine, FBS, [9_001]);
    m.inject({ kind: 'status500', endpoint: 'getBusinessOrders' });
    const stop = new AbortController();
    // Far longer than the test: a loop that slept its idle time out instead of until the request is due would time it out.
    const done = engine.run({ signal: stop.signal, idleMs: 10 * 60_000 });
    try {
      await waitUntil(async () => (await engine.findOrder(9_001)) !== undefined, 'the loop reads the order after the backoff', 20_000);
    } finally {
      stop.abort();
      await done;
    }
    expect(reads(m).map((r) => r.status)).toEqual([500, 200]);
  });

  it.skipIf(!postgres)('PostgreSQL: 60 requests are read in two calls of 50 and 10; two engines reading at once ask for each id once', async () => {
    const m = await t.start();
    const ids = range(10_001, 60);
    const more = range(11_001, 60);
    m.seedOrders([...seeds(FBS, 10_001, 60), ...seeds(FBS, 11_001, 60)]);
    const pg = { postgres: { schema: `${SCHEMAS}_reads` } };
    const a = await t.open(m, { db: POSTGRES_TEST_URL, ...pg });
    const b = await t.open(m, { db: POSTGRES_TEST_URL, ...pg });
    await requestReads(a.engine, FBS, ids);
    expect((await a.engine.flush()).reads).toEqual({ calls: 2, orders: 60, notFound: 0 });
    expect(reads(m).map((r) => orderIdsOf(r).length).sort((x, y) => y - x)).toEqual([50, 10]);
    expect(await pending(a.engine)).toBe(0);
    for (const id of ids) expect(await b.engine.findOrder(id)).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED' });

    // Leases on the database keep two engines off each other's requests.
    await requestReads(b.engine, FBS, more);
    await Promise.all([a.engine.flush(), b.engine.flush()]);
    const second = reads(m).slice(2);
    expect(second.flatMap(orderIdsOf).sort((x, y) => x - y)).toEqual(more);
    expect(second.length).toBeLessThanOrEqual(3);
    expect(await pending(b.engine)).toBe(0);
    const stats = [await a.engine.stats(), await b.engine.stats()];
    expect(stats[0]!.reads.orders + stats[1]!.reads.orders).toBe(120);
  });
});
