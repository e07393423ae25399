// Issue #4, the operation poller: LaaS cancellations come back from the fake Market as async
// operations; the engine polls getOperations grouped by business and operation type, at most
// 100 ids a call, on the backoff schedule the operation machine stores as next_poll_at rows.
// One clock drives the engine and the fake, so every poll time is exact.

import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.js';
import { OperationBook } from '../src/engine/operation-book.js';
import type { OperationRow } from '../src/store/operations.js';
import type { FakeMarket, FakeMarketOptions } from '../src/testing/index.js';
import type { FakeCampaign } from '../src/testing/order-book.js';
import {
  BUSINESS_A,
  BUSINESS_B,
  CAMPAIGNS,
  LAAS,
  engineFor,
  range,
  requestsTo,
  seeds,
  tempDbPath,
} from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

const T0 = Date.UTC(2025, 5, 2, 9, 0, 0);
/** A second LaaS campaign, in the other business, to see the polls grouped by business. */
const LAAS_A: FakeCampaign = { campaignId: 5104, businessId: BUSINESS_A, model: 'LAAS' };
const ALL_CAMPAIGNS = [...CAMPAIGNS, LAAS_A];
const POLICY = { initialIntervalMs: 1_000, backoffCoefficient: 2, maximumIntervalMs: 8_000, timeoutMs: 120_000 };
const CANCEL = { status: 'CANCELLED', substatus: 'SHOP_FAILED' } as const;

let now = T0;
const t = useEffectsTest();
const { engines, dbs } = t;
let market: FakeMarket | undefined;

async function setup(options: { operationDelayMs: number; failOperation?: (id: number) => boolean; quotas?: FakeMarketOptions['quotas'] }) {
  now = T0;
  market = await t.start({ campaigns: ALL_CAMPAIGNS, now: () => now, ...options });
  const db = tempDbPath();
  dbs.push(db);
  return { market, db };
}

async function open(m: FakeMarket, db: string): Promise<Engine> {
  const engine = await engineFor(m, db, {
    clock: () => now,
    pollPolicy: POLICY,
    campaigns: ALL_CAMPAIGNS.map((c) => ({ campaignId: c.campaignId, businessId: c.businessId, model: c.model })),
  });
  engines.push(engine);
  return engine;
}

/** The operation's row, read through the port. */
async function operation(engine: Engine, operationId: string): Promise<OperationRow> {
  const row = await engine.store.read((tx) => tx.operations.get(operationId));
  if (row === undefined) throw new Error(`no operation ${operationId}`);
  return row;
}

const nextPollDue = (engine: Engine): Promise<number | undefined> => engine.store.read((tx) => tx.operations.nextDueAt());

type OpsBody = { operationType: string; operationIds: string[] };
const bodyOf = (r: { body: unknown }): OpsBody => r.body as OpsBody;

describe('polling async operations', () => {
  it('groups by business and type, at most 100 ids a call', async () => {
    const { market: m, db } = await setup({ operationDelayMs: 60_000 });
    const laasB = range(60_001, 230);
    const laasA = range(61_001, 40);
    m.seedOrders([...seeds(LAAS, laasB[0]!, 230), ...seeds(LAAS_A, laasA[0]!, 40)]);
    const engine = await open(m, db);
    await engine.sync();
    await engine.requestChanges([...laasB, ...laasA].map((orderId) => ({ orderId, ...CANCEL })));
    // Operations of another type (e.g. a recipient update started elsewhere) are polled apart:
    // recorded as the engine records an operation, with the engine's poll policy.
    const book = new OperationBook(POLICY);
    await engine.store.transaction(async (tx) => {
      for (const id of ['recipient-1', 'recipient-2']) await book.start(tx, { operationId: id, operationType: 'ORDER_RECIPIENT_UPDATE', businessId: BUSINESS_B, orderId: null }, now);
    });

    const sent = await engine.flush();
    expect(sent.counters.operationsStarted).toBe(270);
    expect(requestsTo(m, 'getOperations')).toHaveLength(0); // nothing due yet
    for (const id of [...laasB, ...laasA]) expect((await engine.getOrder(id)).change).toBe('awaitingOperation');

    now += POLICY.initialIntervalMs;
    expect(await engine.pollOperations()).toBe(272);
    const polls = requestsTo(m, 'getOperations');
    const groups = polls.map((r) => `${r.path.match(/businesses\/(\d+)/)![1]} ${bodyOf(r).operationType} ${bodyOf(r).operationIds.length}`).sort();
    expect(groups).toEqual([
      `${BUSINESS_A} ORDER_STATUS_UPDATE 40`,
      `${BUSINESS_B} ORDER_RECIPIENT_UPDATE 2`,
      `${BUSINESS_B} ORDER_STATUS_UPDATE 100`,
      `${BUSINESS_B} ORDER_STATUS_UPDATE 100`,
      `${BUSINESS_B} ORDER_STATUS_UPDATE 30`,
    ].sort());
    for (const r of polls) {
      const ids = bodyOf(r).operationIds;
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBeLessThanOrEqual(100);
    }
    // Every operation was asked about exactly once.
    expect(polls.flatMap((r) => bodyOf(r).operationIds)).toHaveLength(272);
    expect(Math.max(...Object.values(m.stats().maxInFlight))).toBeLessThanOrEqual(4);
  });

  it('follows the backoff schedule stored in next_poll_at', async () => {
    const { market: m, db } = await setup({ operationDelayMs: 20_000 });
    m.seedOrders(seeds(LAAS, 70_001, 1));
    const engine = await open(m, db);
    await engine.sync();
    await engine.requestChange({ orderId: 70_001, ...CANCEL });
    await engine.flush();
    const opId = (await engine.getOrder(70_001)).pending!.operationId!;
    const row = () => operation(engine, opId);
    expect((await row()).next_poll_at).toBe(T0 + 1_000);

    const pollTimes: number[] = [];
    const expectedGaps = [2_000, 4_000, 8_000, 8_000]; // initial 1 s, ×2, capped at 8 s
    for (const gap of expectedGaps) {
      // Just before the due time: nothing is polled.
      now = (await row()).next_poll_at - 1;
      expect(await engine.pollOperations()).toBe(0);
      now = (await row()).next_poll_at;
      expect(await engine.pollOperations()).toBe(1);
      pollTimes.push(now);
      expect((await row()).state).toBe('inProgress');
      expect((await row()).next_poll_at - now).toBe(gap);
    }
    expect(pollTimes).toEqual([T0 + 1_000, T0 + 3_000, T0 + 7_000, T0 + 15_000]);
    expect(requestsTo(m, 'getOperations').map((r) => r.receivedAt)).toEqual(pollTimes);

    // The fake finishes at T0 + 20 s; the poll at T0 + 23 s sees DONE and the order is CANCELLED.
    now = (await row()).next_poll_at;
    await engine.pollOperations();
    expect((await row()).state).toBe('done');
    expect(await engine.getOrder(70_001)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', change: 'idle', marketState: 'CANCELLED' });
    expect((await engine.getOrder(70_001)).lastOutcome).toMatchObject({ kind: 'accepted', status: 'CANCELLED' });
    expect(m.getOrder(70_001)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    // An ended operation is never polled again.
    now += 60_000;
    expect(await engine.pollOperations()).toBe(0);
  });

  it('DONE cancels the order; FAILED rejects the change with the reason and leaves the order where it is', async () => {
    const ids = range(80_001, 10);
    const failing = new Set([80_002, 80_005]);
    const { market: m, db } = await setup({ operationDelayMs: 500, failOperation: (id) => failing.has(id) });
    m.seedOrders(seeds(LAAS, ids[0]!, 10));
    const engine = await open(m, db);
    await engine.sync();
    await engine.requestChanges(ids.map((orderId) => ({ orderId, ...CANCEL })));
    await engine.flush();
    now += POLICY.initialIntervalMs;
    await engine.pollOperations();
    expect((await engine.stats()).open).toBe(0);
    for (const id of ids) {
      const order = await engine.getOrder(id);
      const fake = m.getOrder(id)!;
      expect(`${order.status}/${order.substatus}`).toBe(`${fake.status}/${fake.substatus}`);
      if (failing.has(id)) {
        expect(order).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', change: 'idle' });
        expect(order.lastOutcome).toMatchObject({ kind: 'rejected', status: 'CANCELLED', substatus: 'SHOP_FAILED' });
        expect(order.lastOutcome!.reason).toMatch(/Operation fake-op-\d+ FAILED at the Market/);
        expect(await engine.store.read((tx) => tx.outbox.get(id, 1))).toMatchObject({ state: 'rejected', last_error: order.lastOutcome!.reason });
      } else {
        expect(order).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', change: 'idle' });
        expect((await engine.store.read((tx) => tx.outbox.get(id, 1)))?.state).toBe('accepted');
      }
    }
    expect((await engine.summary()).operations).toEqual({ done: 8, failed: 2 });
    // A failed cancellation may be asked for again, and this time it goes through.
    failing.clear();
    await engine.requestChange({ orderId: 80_002, ...CANCEL });
    await engine.flush();
    now += 1_000;
    await engine.pollOperations();
    expect(await engine.getOrder(80_002)).toMatchObject({ status: 'CANCELLED', change: 'idle' });
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('an engine restarted mid-operation resumes polling at the stored next_poll_at', async () => {
    const { market: m, db } = await setup({ operationDelayMs: 5_000 });
    const ids = range(90_001, 5);
    m.seedOrders(seeds(LAAS, ids[0]!, 5));
    const first = await open(m, db);
    await first.sync();
    await first.requestChanges(ids.map((orderId) => ({ orderId, ...CANCEL })));
    await first.flush();
    now += 1_000;
    await first.pollOperations(); // IN_PROGRESS: next poll at T0 + 3 s
    const due = (await nextPollDue(first))!;
    expect(due).toBe(T0 + 3_000);
    await first.close();

    // A new process: nothing in memory, only the file.
    const second = await open(m, db);
    for (const id of ids) expect((await second.getOrder(id)).change).toBe('awaitingOperation');
    const pollsBefore = requestsTo(m, 'getOperations').length;
    now = due - 1;
    expect(await second.pollOperations()).toBe(0);
    expect(requestsTo(m, 'getOperations')).toHaveLength(pollsBefore);
    now = due;
    expect(await second.pollOperations()).toBe(5);
    expect(requestsTo(m, 'getOperations')).toHaveLength(pollsBefore + 1);
    // Still running at T0 + 3 s; the next poll at T0 + 7 s finds them DONE.
    expect(await nextPollDue(second)).toBe(T0 + 7_000);
    now = T0 + 7_000;
    const report = await second.flush();
    expect(report.open).toBe(0);
    for (const id of ids) expect(await second.getOrder(id)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', change: 'idle' });
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('with the getOperations budget spent, due operations back off to their next poll instead of being asked about', async () => {
    // The Market allows one getOperations call an hour per business, and its headers say so.
    const { market: m, db } = await setup({ operationDelayMs: 2_500, quotas: { getOperations: { limit: 1, windowMs: 3_600_000 } } });
    m.seedOrders([...seeds(LAAS, 96_001, 3), ...seeds(LAAS_A, 97_001, 3)]);
    const engine = await engineFor(m, db, {
      clock: () => now,
      pollPolicy: POLICY,
      campaigns: ALL_CAMPAIGNS.map((c) => ({ campaignId: c.campaignId, businessId: c.businessId, model: c.model })),
      limits: { resources: { getOperations: { limit: 1, windowMs: 3_600_000 } } },
    });
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges([...range(96_001, 3), ...range(97_001, 3)].map((orderId) => ({ orderId, ...CANCEL })));
    await engine.flush();
    now += POLICY.initialIntervalMs;
    // One call per business is due, and the budget of each business's getOperations has room for one.
    expect(await engine.pollOperations()).toBe(6);
    expect(requestsTo(m, 'getOperations')).toHaveLength(2);
    // Both budgets are now spent: the next due polls are not made, not counted, and rescheduled.
    now = (await nextPollDue(engine))!;
    expect(await engine.pollOperations()).toBe(0);
    expect(requestsTo(m, 'getOperations')).toHaveLength(2);
    expect(await nextPollDue(engine)).toBeGreaterThan(now);
    for (const id of [...range(96_001, 3), ...range(97_001, 3)]) expect((await engine.getOrder(id)).change).toBe('awaitingOperation');
  });

  it('an operation still running at its deadline expires: the change is given up, never sent twice', async () => {
    const { market: m, db } = await setup({ operationDelayMs: 10 * 60_000 });
    m.seedOrders(seeds(LAAS, 95_001, 1));
    const engine = await open(m, db);
    await engine.sync();
    await engine.requestChange({ orderId: 95_001, ...CANCEL });
    await engine.flush();
    const opId = (await engine.getOrder(95_001)).pending!.operationId!;
    // Poll on schedule until past the 2-minute deadline.
    for (let i = 0; i < 40 && (await operation(engine, opId)).state === 'inProgress'; i++) {
      now = (await operation(engine, opId)).next_poll_at;
      await engine.pollOperations();
    }
    expect((await operation(engine, opId)).state).toBe('expired');
    expect(now).toBe(T0 + POLICY.timeoutMs);
    const order = await engine.getOrder(95_001);
    expect(order).toMatchObject({ status: 'PROCESSING', change: 'idle' });
    expect(order.lastOutcome).toMatchObject({ kind: 'rejected' });
    expect(order.lastOutcome!.reason).toMatch(/still IN_PROGRESS at its deadline/);
    // Nothing is sent again while the Market may still be applying it.
    const sends = requestsTo(m, 'updateOrderStatuses').length;
    const report = await engine.flush();
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(sends);
    expect(m.stats().duplicateApplications).toBe(0);
    // When the operation does end at the Market, a sync shows it.
    now = T0 + 11 * 60_000;
    await engine.sync();
    expect(await engine.getOrder(95_001)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
  });
});
