// Issue 9, items 1 and 4 at the engine: what an operator is shown when the Market fails
// (FlushReport.lastErrors and marketCalls), and flush({ signal }) starting nothing new after an
// abort, so it ends within the request in flight. Real SQLite files, real HTTP over loopback.

import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.js';
import { API_KEY, BUSINESS_A, CAMPAIGNS, DBS, FBS, LAAS, engineFor, requestsTo, seeds, tempDbPath } from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';
import { unreachableUrl } from './helpers/cli.js';

const t = useEffectsTest();
const { engines, dbs, errors } = t;

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}

describe('the latest Market error per campaign', () => {
  it('flush reports each campaign’s latest failed call and counts the failed calls; a business-wide call counts for its campaigns', async () => {
    const db = tempDbPath();
    dbs.push(db);
    const engine = await createEngine({
      db,
      campaigns: CAMPAIGNS.map(({ campaignId, businessId, model }) => ({ campaignId, businessId, model })),
      api: { baseUrl: await unreachableUrl(), apiKey: API_KEY, timeoutMs: 5_000 },
      sqlite: { synchronous: 'NORMAL' },
    });
    engines.push(engine);
    await engine.trackOrders([{ orderId: 10_001, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    await engine.requestChange({ orderId: 10_001, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    const before = Date.now();
    expect(await engine.stats()).toMatchObject({ marketCalls: { answered: 0, failed: 0 }, lastErrors: [] });

    const report = await engine.flush();
    expect(report.marketCalls).toEqual({ answered: 0, failed: 1 });
    expect(report.lastErrors).toEqual([
      { campaignId: FBS.campaignId, operation: 'updateOrderStatuses', code: 'MARKET_NETWORK', message: expect.stringMatching(/could not connect.*ECONNREFUSED/), at: expect.any(Number) },
    ]);
    expect(report.lastErrors[0]!.at).toBeGreaterThanOrEqual(before);
    // The change is kept for a later attempt, with the reason on its outbox row.
    expect((await engine.getOrder(10_001)).change).toBe('queued');
    expect((await engine.pendingChanges())[0]!.last_error).toMatch(/ECONNREFUSED/);

    // A sync read of business A fails for both of A's campaigns (FBS and DBS), not for LaaS.
    const failure = await engine.sync().then(
      () => undefined,
      (e: unknown) => e,
    );
    errors.push(failure);
    expect(failure).toMatchObject({ code: 'MARKET_NETWORK' });
    const after = await engine.stats();
    expect(after.marketCalls).toEqual({ answered: 0, failed: 2 });
    expect(after.lastErrors.map((e) => [e.campaignId, e.operation, e.code])).toEqual([
      [FBS.campaignId, 'getBusinessOrders', 'MARKET_NETWORK'],
      [DBS.campaignId, 'getBusinessOrders', 'MARKET_NETWORK'],
    ]);
    expect(after.lastErrors.some((e) => e.campaignId === LAAS.campaignId)).toBe(false);
    errors.push(after);
  });

  it('answered calls are counted too, and the Market’s answers leave no error behind', async () => {
    const market = await t.start();
    market.seedOrders(seeds(FBS, 10_001, 60));
    const db = tempDbPath();
    dbs.push(db);
    const engine = await engineFor(market, db);
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges(Array.from({ length: 60 }, (_, i) => ({ orderId: 10_001 + i, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })));
    const report = await engine.flush({ untilIdle: true });
    // 2 pages of business A, 1 of business B, 2 status updates of 30.
    expect(report.marketCalls).toEqual({ answered: 5, failed: 0 });
    expect(report.lastErrors).toEqual([]);
  });
});

describe('flush({ signal })', () => {
  it('starts no new phase after an abort: a read-back in flight finishes, the due operation poll waits', async () => {
    const market = await t.start({ operationDelayMs: 600_000 });
    market.seedOrders([...seeds(FBS, 10_001, 1), ...seeds(LAAS, 30_001, 1)]);
    const db = tempDbPath();
    dbs.push(db);
    // random 0: a read-back is due at once; a 1 ms poll interval: so is every operation poll.
    const engine = await engineFor(market, db, { random: () => 0, pollPolicy: { initialIntervalMs: 1 }, api: { baseUrl: market.url, apiKey: API_KEY, timeoutMs: 1_000 } });
    engines.push(engine);
    await engine.sync();
    // A LaaS cancellation the fake keeps IN_PROGRESS: its operation is polled on every pass.
    await engine.requestChange({ orderId: 30_001, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    await engine.flush();
    expect((await engine.getOrder(30_001)).change).toBe('awaitingOperation');
    // An FBS ship whose connection drops: its outcome is unknown, so it is read back first.
    await engine.requestChange({ orderId: 10_001, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    market.inject({ kind: 'drop', endpoint: 'updateOrderStatuses' });
    await engine.flush();
    expect((await engine.getOrder(10_001)).change).toBe('uncertain');

    market.inject({ kind: 'hang', endpoint: 'getBusinessOrders', times: Infinity });
    const reads = requestsTo(market, 'getBusinessOrders', BUSINESS_A).length;
    const polls = requestsTo(market, 'getOperations').length;
    const controller = new AbortController();
    const flushing = engine.flush({ untilIdle: true, maxWaitMs: 60_000, signal: controller.signal });
    await until(() => requestsTo(market, 'getBusinessOrders', BUSINESS_A).length > reads);
    controller.abort();
    const report = await flushing;
    // The hung read-back ended at the request timeout; nothing was started after the abort.
    expect(requestsTo(market, 'getOperations')).toHaveLength(polls);
    expect(requestsTo(market, 'getBusinessOrders', BUSINESS_A)).toHaveLength(reads + 1);
    expect(report).toMatchObject({ open: 2, outbox: { sending: 0, uncertain: 1, awaitingOperation: 1 } });
  });
});
