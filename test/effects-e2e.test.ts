// Issue #4, end to end: 1 000 orders over FBS, DBS and LaaS campaigns, imported by sync() from
// the fake Market over loopback HTTP into a real SQLite file, then shipped, cancelled (LaaS
// cancellations complete through async operations, some FAILED), delivered (DBS, some with a
// realDeliveryDate through the single PUT) and a few illegal requests refused locally.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, RequestChangesResult } from '../src/engine/engine.js';
import type { RequestChangeCommand } from '../src/engine/commands.js';
import type { FakeMarket } from '../src/testing/index.js';
import {
  API_KEY,
  BUSINESS_A,
  BUSINESS_B,
  DBS,
  FBS,
  LAAS,
  assertNoSecret,
  captureConsole,
  engineFor,
  mismatches,
  orderIdsOf,
  pastDeliveryDate,
  range,
  removeTempDirs,
  requestsTo,
  seeds,
  startMarket,
  tempDbPath,
  type ConsoleCapture,
} from './helpers/effects-fixtures.js';

const FBS_IDS = range(100_001, 400);
const DBS_IDS = range(200_001, 300);
const LAAS_IDS = range(300_001, 300);
const ALL_IDS = [...FBS_IDS, ...DBS_IDS, ...LAAS_IDS];

// The plan, by order id.
const FBS_SHIP = FBS_IDS.slice(0, 250);
const FBS_CANCEL = FBS_IDS.slice(250, 350);
const DBS_CANCEL = DBS_IDS.slice(250, 300);
const DBS_TO_DELIVERY = DBS_IDS.slice(0, 200);
const DBS_DELIVER_BULK = DBS_IDS.slice(0, 150);
/** The buyer cancels these at the Market after the delivery was queued: sync() must stop the send. */
const DBS_MARKET_CANCELLED = DBS_DELIVER_BULK.slice(0, 10);
const DBS_DELIVER_SENT = DBS_DELIVER_BULK.slice(10);
const DBS_DELIVER_DATED = DBS_IDS.slice(150, 200);
const LAAS_CANCEL = LAAS_IDS.slice(0, 200);
/** The fake ends these operations FAILED: the order stays where it was. */
const LAAS_FAIL = new Set(LAAS_CANCEL.filter((id) => id % 10 === 3));

const ceil30 = (n: number): number => Math.ceil(n / 30);

let market: FakeMarket;
let engine: Engine;
let db: string;
let output: ConsoleCapture;
const thrown: unknown[] = [];

beforeAll(async () => {
  output = captureConsole();
  market = await startMarket({ operationDelayMs: 150, failOperation: (id) => LAAS_FAIL.has(id) });
  market.seedOrders([...seeds(FBS, FBS_IDS[0]!, 400), ...seeds(DBS, DBS_IDS[0]!, 300), ...seeds(LAAS, LAAS_IDS[0]!, 300)]);
  db = tempDbPath();
  engine = await engineFor(market, db, { pollPolicy: { initialIntervalMs: 60, backoffCoefficient: 1.5, maximumIntervalMs: 300 } });
});

afterAll(async () => {
  await engine?.close();
  await market?.close();
  output?.restore();
  removeTempDirs();
});

function expectAllQueued(result: RequestChangesResult, count: number): void {
  for (const r of result.refused) thrown.push(r.error);
  expect(result.refused.map((r) => `${r.orderId}: ${r.error.message}`)).toEqual([]);
  expect(result.queued).toHaveLength(count);
}

describe('1 000 orders end to end against the fake Market', () => {
  it('imports every order with sync(), paging through getBusinessOrders', async () => {
    const result = await engine.sync();
    expect(result.created).toBe(1_000);
    expect(result.skipped).toBe(0);
    // 700 orders of business A and 300 of business B, 50 a page.
    expect(result.pages).toBe(14 + 6);
    expect((await engine.summary()).orders).toBe(1_000);
    expect(await mismatches(engine, market, ALL_IDS)).toEqual([]);
  });

  it('refuses illegal requests locally with CHANGE_REFUSED', async () => {
    const illegal: RequestChangeCommand[] = [
      { orderId: FBS_IDS[399]!, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }, // Market's move for FBS
      { orderId: DBS_IDS[240]!, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }, // not from PROCESSING
      { orderId: LAAS_IDS[299]!, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, // not a LaaS change
      { orderId: FBS_IDS[398]!, status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' }, // a DBS-only reason
      { orderId: DBS_IDS[241]!, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: '2999-01-01' },
    ];
    for (const change of illegal) {
      const before = await engine.getOrder(change.orderId);
      let error: unknown;
      try {
        await engine.requestChange(change);
      } catch (e) {
        error = e;
        thrown.push(e);
      }
      expect(error, `order ${change.orderId}`).toMatchObject({ code: 'CHANGE_REFUSED', orderId: change.orderId });
      const after = await engine.getOrder(change.orderId);
      expect(after.change).toBe('idle');
      expect(after.rowVersion).toBe(before.rowVersion); // nothing written
      expect(after.pending).toBeNull();
    }
    expect((await engine.summary()).outbox.queued).toBe(0);
  });

  it('ships, cancels and hands to delivery in batches of 30 per campaign', async () => {
    expectAllQueued(await engine.requestChanges(FBS_SHIP.map((orderId) => ({ orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP' }))), 250);
    expectAllQueued(await engine.requestChanges(FBS_CANCEL.map((orderId) => ({ orderId, status: 'CANCELLED', substatus: 'SHOP_FAILED' }))), 100);
    expectAllQueued(await engine.requestChanges(DBS_TO_DELIVERY.map((orderId) => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }))), 200);
    expectAllQueued(await engine.requestChanges(DBS_CANCEL.map((orderId) => ({ orderId, status: 'CANCELLED', substatus: 'SHOP_FAILED' }))), 50);
    expectAllQueued(await engine.requestChanges(LAAS_CANCEL.map((orderId) => ({ orderId, status: 'CANCELLED', substatus: 'SHOP_FAILED' }))), 200);

    // A second request while one is pending is refused too, and writes nothing.
    const again = await engine.requestChanges([{ orderId: FBS_SHIP[0]!, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]);
    expect(again.refused.map((r) => r.error.code)).toEqual(['CHANGE_REFUSED']);
    thrown.push(...again.refused.map((r) => r.error));

    const report = await engine.flush({ untilIdle: true, maxWaitMs: 30_000 });
    expect(report.open).toBe(0);
    expect(report.halted).toEqual([]);

    const bulk = (campaignId: number) => requestsTo(market, 'updateOrderStatuses', campaignId);
    expect(bulk(FBS.campaignId)).toHaveLength(ceil30(350));
    expect(bulk(DBS.campaignId)).toHaveLength(ceil30(250));
    expect(bulk(LAAS.campaignId)).toHaveLength(ceil30(200));
    expect(requestsTo(market, 'updateOrderStatus')).toHaveLength(0);
    // LaaS cancellations came back as operations and were polled to an end.
    expect(report.counters.operationsStarted).toBe(200);
    expect(requestsTo(market, 'getOperations', BUSINESS_B).length).toBeGreaterThan(0);
    expect(requestsTo(market, 'getOperations', BUSINESS_A)).toHaveLength(0);
  });

  it('delivers DBS orders: in bulk without a date, by single PUT with realDeliveryDate', async () => {
    const date = pastDeliveryDate();
    expectAllQueued(await engine.requestChanges(DBS_DELIVER_BULK.map((orderId) => ({ orderId, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }))), 150);
    expectAllQueued(
      await engine.requestChanges(DBS_DELIVER_DATED.map((orderId) => ({ orderId, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: date }))),
      50,
    );
    // Meanwhile the Market moves some of them (no rules apply to the Market); a sync sees it.
    for (const id of DBS_MARKET_CANCELLED) market.setOrderStatus(id, 'CANCELLED', 'USER_CHANGED_MIND');
    await engine.sync();
    for (const id of DBS_MARKET_CANCELLED) {
      expect(await engine.getOrder(id)).toMatchObject({ status: 'CANCELLED', substatus: 'USER_CHANGED_MIND', change: 'idle' });
      expect((await engine.getOrder(id)).lastOutcome?.kind).toBe('superseded');
    }
    const callsBefore = requestsTo(market, 'updateOrderStatuses', DBS.campaignId).length;
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 30_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(market, 'updateOrderStatuses', DBS.campaignId).length - callsBefore).toBe(ceil30(DBS_DELIVER_SENT.length));
    const puts = requestsTo(market, 'updateOrderStatus');
    expect(puts).toHaveLength(50);
    expect(puts.flatMap(orderIdsOf).sort()).toEqual([...DBS_DELIVER_DATED].sort());
    for (const put of puts) expect(put.body).toEqual({ order: { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', delivery: { dates: { realDeliveryDate: date } } } });
    for (const id of DBS_DELIVER_DATED) expect(market.getOrder(id)?.realDeliveryDate).toBe(date);
  });

  it('ends with every order where the Market says it is, each change applied once', async () => {
    // Status-update calls: the minimum, ceil(orders / 30) per campaign and round.
    const bulkCalls = requestsTo(market, 'updateOrderStatuses').length;
    const minimum = ceil30(350) + ceil30(250) + ceil30(200) + ceil30(DBS_DELIVER_SENT.length);
    expect(bulkCalls).toBe(minimum);
    expect(requestsTo(market, 'updateOrderStatus')).toHaveLength(DBS_DELIVER_DATED.length);

    const stats = market.stats();
    expect(stats.rateLimited).toBe(0);
    expect(stats.duplicateApplications).toBe(0);
    expect(stats.illegalRequests).toBe(0);
    expect(Math.max(...Object.values(stats.maxInFlight))).toBeLessThanOrEqual(4);

    expect(await mismatches(engine, market, ALL_IDS)).toEqual([]);

    // Where the plan says each order is.
    for (const id of FBS_SHIP) expect(market.getOrder(id)).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    for (const id of [...FBS_CANCEL, ...DBS_CANCEL]) expect(market.getOrder(id)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    for (const id of [...DBS_DELIVER_SENT, ...DBS_DELIVER_DATED]) expect(market.getOrder(id)).toMatchObject({ status: 'DELIVERED' });
    for (const id of DBS_MARKET_CANCELLED) expect(market.getOrder(id)).toMatchObject({ status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' });
    for (const id of LAAS_CANCEL) {
      const order = await engine.getOrder(id);
      if (LAAS_FAIL.has(id)) {
        expect(order).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', change: 'idle' });
        expect(order.lastOutcome).toMatchObject({ kind: 'rejected', status: 'CANCELLED' });
        expect(order.lastOutcome?.reason).toMatch(/FAILED/);
      } else {
        expect(order).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', marketState: 'CANCELLED' });
        expect(order.lastOutcome?.kind).toBe('accepted');
      }
    }

    // Nothing illegal was ever sent: the refused orders appear in no request.
    const refusedIds = new Set([FBS_IDS[399], DBS_IDS[240], LAAS_IDS[299], FBS_IDS[398], DBS_IDS[241]]);
    const sentIds = market.requests.filter((r) => r.endpoint === 'updateOrderStatuses' || r.endpoint === 'updateOrderStatus').flatMap(orderIdsOf);
    expect(sentIds.filter((id) => refusedIds.has(id))).toEqual([]);
    // Every order was sent at most once per change.
    const expectedSends = 350 + 250 + 200 + DBS_DELIVER_SENT.length + DBS_DELIVER_DATED.length;
    expect(sentIds).toHaveLength(expectedSends);
    expect(sentIds.filter((id) => DBS_MARKET_CANCELLED.includes(id))).toHaveLength(DBS_MARKET_CANCELLED.length); // only their first change

    const summary = await engine.summary();
    expect(summary.outbox).toMatchObject({ queued: 0, sending: 0, awaitingOperation: 0, uncertain: 0 });
    expect(summary.outbox.accepted).toBe(expectedSends - LAAS_FAIL.size);
    expect(summary.outbox.rejected).toBe(LAAS_FAIL.size);
    expect(summary.outbox.superseded).toBe(DBS_MARKET_CANCELLED.length);
    expect(summary.operations).toEqual({ done: 200 - LAAS_FAIL.size, failed: LAAS_FAIL.size });
  });

  it('a later sync moves no order: the engine already knew every status', async () => {
    const statuses = async () => {
      const lines: string[] = [];
      for (const id of ALL_IDS) {
        const order = await engine.getOrder(id);
        lines.push(`${id} ${order.status}/${order.substatus}`);
      }
      return lines;
    };
    const before = await statuses();
    const result = await engine.sync();
    expect(result.created).toBe(0);
    expect(result.seen).toBeGreaterThan(0);
    expect(await statuses()).toEqual(before);
    expect(await mismatches(engine, market, ALL_IDS)).toEqual([]);
  });

  it('leaves the API key nowhere: errors, database rows and files, console output', async () => {
    expect(thrown.length).toBeGreaterThan(0);
    const places = await assertNoSecret({ dbPaths: [db], known: { orderIds: ALL_IDS }, errors: thrown, console: output, extra: [await engine.stats(), await engine.summary()] });
    expect(places).toBeGreaterThan(3);
    expect(API_KEY).toMatch(/SECRET/);
  });
});
