// Issue #4, faults: the dispatcher, the read-backs and the poller against a fake Market that
// fails on a seeded schedule: 500s, hangs before and after applying (with a short client
// timeout: the classic unknown outcome), dropped connections before and after applying, 420s,
// truncated JSON and answers about ids nobody asked about. However it fails, every order must
// end where the Market has it, no change applied twice, nothing illegal sent, and the budgets
// kept. Then the typed halts and splits: 401/403 halt one campaign; a whole-batch 400 is bisected.
//
// The schedule is seeded: FAULT_SEED=<n> npx vitest run test/effects-faults.test.ts repeats it
// (the requests' interleaving still varies a little from run to run).

import { describe, expect, it } from 'vitest';
import type { Engine, FlushReport } from '../src/engine/engine.js';
import { MarketClientError } from '../src/market/errors.js';
import { parseRateLimitHeaders } from '../src/market/rate-limit.js';
import { seededRandom, type Fault, type FaultKind } from '../src/testing/faults.js';
import type { FakeMarket } from '../src/testing/index.js';
import type { FakeCampaign } from '../src/testing/order-book.js';
import {
  API_KEY,
  CAMPAIGNS,
  DBS,
  FBS,
  LAAS,
  engineFor,
  mismatches,
  orderIdsOf,
  parallel420s,
  pastDeliveryDate,
  quota420s,
  quotaWindows,
  range,
  recordingClient,
  requestsTo,
  seeds,
  tempDbPath,
} from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

const SEED = Number(process.env.FAULT_SEED ?? 20_250_604);
const STATUS_QUOTA = { limit: 100, windowMs: 1_000 };
const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const CANCEL = { status: 'CANCELLED', substatus: 'SHOP_FAILED' } as const;

/**
 * How long a test's open changes may go without one of them settling before flushWhileSettling stops:
 * longer than any wait the engine itself takes (a lost LaaS cancellation is resent asyncSettleMs,
 * 11 s, after its send), so only a hang reaches it, never a slow or busy machine.
 */
const STALL_MS = Number(process.env.FAULT_STALL_MS ?? 90_000);

/**
 * A wall-clock budget out of any test's reach (a day), for the budgets that must never decide an
 * outcome here: the storm's poll deadline (pollPolicy.timeoutMs: an operation still unpolled at
 * its deadline is given up, rejected though the fake applies it, and on a busy machine polls fail
 * for longer) and flush's maxWaitMs.
 */
const OUT_OF_REACH_MS = 24 * 3_600_000;

/**
 * flush({ untilIdle }) for as long as the open changes keep settling: it returns once none is
 * open (or only halted campaigns' are), as flush decides; it is stopped (its signal) only once
 * STALL_MS passed without one settling. Waits on progress, not on a wall-clock budget.
 */
async function flushWhileSettling(engine: Engine): Promise<FlushReport> {
  const stalled = new AbortController();
  let open = Infinity;
  let progressAt = Date.now();
  const watch = setInterval(() => {
    if (Date.now() - progressAt > STALL_MS) stalled.abort();
  }, 500);
  try {
    return await engine.flush({
      untilIdle: true,
      maxWaitMs: OUT_OF_REACH_MS,
      signal: stalled.signal,
      onProgress: (report) => {
        if (report.open < open) {
          open = report.open;
          progressAt = Date.now();
        }
      },
    });
  } finally {
    clearInterval(watch);
  }
}

const t = useEffectsTest();
const { engines, clients, dbs, errors } = t;
let market: FakeMarket | undefined;

/** Each kind once up front (so every kind is seen whatever the seed), then at random. */
function faultSchedule(): Fault[] {
  const once = (kind: FaultKind, endpoint: Fault['endpoint']): Fault => ({ kind, endpoint, times: 1 });
  const often = (kind: FaultKind, endpoint: Fault['endpoint'], probability: number): Fault => ({ kind, endpoint, probability, times: Infinity });
  const writeKinds: FaultKind[] = ['status500', 'status500AfterApply', 'timeoutAfterApply', 'hang', 'drop', 'dropAfterApply', 'status420', 'malformedJson', 'foreignIds', 'status503'];
  return [
    ...writeKinds.map((k) => once(k, 'updateOrderStatuses')),
    ...(['timeoutAfterApply', 'dropAfterApply', 'malformedJson', 'status500'] as const).map((k) => once(k, 'updateOrderStatus')),
    ...(['status500', 'malformedJson', 'foreignIds', 'drop', 'hang'] as const).map((k) => once(k, 'getBusinessOrders')),
    ...(['status500', 'malformedJson', 'foreignIds', 'drop'] as const).map((k) => once(k, 'getOperations')),
    often('status500', 'updateOrderStatuses', 0.06),
    often('status500AfterApply', 'updateOrderStatuses', 0.04),
    often('timeoutAfterApply', 'updateOrderStatuses', 0.06),
    often('hang', 'updateOrderStatuses', 0.03),
    often('drop', 'updateOrderStatuses', 0.04),
    often('dropAfterApply', 'updateOrderStatuses', 0.06),
    often('status420', 'updateOrderStatuses', 0.04),
    often('malformedJson', 'updateOrderStatuses', 0.05),
    often('foreignIds', 'updateOrderStatuses', 0.04),
    often('timeoutAfterApply', 'updateOrderStatus', 0.1),
    often('dropAfterApply', 'updateOrderStatus', 0.1),
    often('status500', 'getBusinessOrders', 0.08),
    often('drop', 'getBusinessOrders', 0.04),
    often('malformedJson', 'getBusinessOrders', 0.04),
    often('foreignIds', 'getBusinessOrders', 0.04),
    often('status500', 'getOperations', 0.1),
    often('malformedJson', 'getOperations', 0.05),
    often('foreignIds', 'getOperations', 0.05),
  ];
}

describe('a seeded storm of faults', () => {
  // Its waits follow progress; the timeout only stops a hang, on a machine as slow as it may be.
  it(`finishes with every order correct, nothing applied twice, nothing illegal, budgets kept (seed ${SEED})`, { timeout: 10 * 60_000 }, async () => {
    console.log(`[faults] seed ${SEED} (FAULT_SEED=${SEED} to repeat)`);
    market = await t.start({ seed: SEED, latencyMs: 5, operationDelayMs: 150, quotas: { updateOrderStatuses: STATUS_QUOTA } });
    const m = market;
    const fbs = range(110_001, 200);
    const dbs_ = range(120_001, 120);
    const laas = range(130_001, 80);
    m.seedOrders([...seeds(FBS, fbs[0]!, 200), ...seeds(DBS, dbs_[0]!, 120), ...seeds(LAAS, laas[0]!, 80)]);
    const db = tempDbPath();
    dbs.push(db);
    const client = recordingClient(m, { timeoutMs: 300 });
    clients.push(client);
    const settings = {
      client,
      maxSends: 12,
      retry: { initialIntervalMs: 40, backoffCoefficient: 2, maximumIntervalMs: 400 },
      limits: { resources: { updateOrderStatuses: STATUS_QUOTA } },
    };
    const poll = { initialIntervalMs: 60, backoffCoefficient: 1.5, maximumIntervalMs: 300 };
    // Two poll deadlines, for two different things. An order keeps the maxSends and the
    // asyncSettleMs of the engine that began tracking it, so the import is done by an engine whose
    // deadline is 1 s: a LaaS cancellation that did not apply is resent asyncSettleMs after its
    // send, this 1 s plus the Market's 10 s request limit, far longer than the fake's 150 ms
    // operations. The engine that sends and polls gives an operation OUT_OF_REACH_MS: with
    // 1 s of real time, operations whose polls a busy machine had failed (the 300 ms client
    // timeout) were given up at their deadline and rejected while the fake applied them.
    // The import itself runs clean, on a client of its own with the client's default 10 s timeout:
    // the storm's 300 ms one was hit by a busy machine's slow answers before the storm began.
    const importClient = recordingClient(m, { timeoutMs: 10_000 });
    clients.push(importClient);
    const importer = await engineFor(m, db, { ...settings, client: importClient, pollPolicy: { ...poll, timeoutMs: 1_000 } });
    engines.push(importer);
    await importer.sync();
    await importer.close();
    const engine = await engineFor(m, db, { ...settings, random: seededRandom(SEED), pollPolicy: { ...poll, timeoutMs: OUT_OF_REACH_MS } });
    engines.push(engine);

    const all = [...fbs, ...dbs_, ...laas];
    const dated = dbs_.slice(80, 110);
    const plan = [
      ...fbs.slice(0, 140).map((orderId) => ({ orderId, ...READY })),
      ...fbs.slice(140).map((orderId) => ({ orderId, ...CANCEL })),
      ...dbs_.slice(0, 80).map((orderId) => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }) as const),
      ...laas.map((orderId) => ({ orderId, ...CANCEL })),
    ];
    // DBS orders first hand to delivery in the clean, then are delivered with a date (single PUT) in the storm.
    await engine.requestChanges(dated.map((orderId) => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' })));
    expect((await flushWhileSettling(engine)).open).toBe(0);
    const cleanRequests = m.requests.length;
    for (const f of faultSchedule()) m.inject(f);

    const date = pastDeliveryDate();
    const queued = await engine.requestChanges([...plan, ...dated.map((orderId) => ({ orderId, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: date }) as const)]);
    expect(queued.refused).toEqual([]);
    const started = Date.now();
    const report = await flushWhileSettling(engine);
    const took = Date.now() - started;
    if (report.open > 0) {
      console.log(`[faults] STILL OPEN after ${took} ms: ${JSON.stringify(await engine.pendingChanges(5))}`);
      for (const r of await engine.pendingChanges(3)) console.log(`   ${JSON.stringify(await engine.getOrder(r.order_id))}`);
    }
    m.clearFaults();

    // Finished: nothing open, every change settled.
    expect(report.open).toBe(0);
    expect(report.halted).toEqual([]);
    // Every order is where the Market has it.
    const wrong = await mismatches(engine, m, all);
    for (const w of wrong.slice(0, 3)) {
      console.log(`[faults] MISMATCH ${JSON.stringify(w)} ${JSON.stringify(await engine.getOrder(w.id))}`);
      for (const h of await engine.history(w.id)) console.log(`   ${h.at} ${h.event_type} ${h.source} ${h.from_status}/${h.from_substatus}/${h.from_change} -> ${h.to_status}/${h.to_substatus}/${h.to_change} ${h.event.slice(0, 200)}`);
      for (const r of m.requests.filter((q) => orderIdsOf(q).includes(w.id) || JSON.stringify(q.body).includes(String(w.id)))) console.log(`   REQ ${r.receivedAt} ${r.endpoint} ${r.status} ${r.fault ?? ''} ${(r.responseBody ?? '').slice(0, 120)}`);
    }
    expect(wrong).toEqual([]);
    // And where the seller wanted it: each change went through (read-backs proved the unknown ones).
    for (const change of plan) expect(m.getOrder(change.orderId), `order ${change.orderId}`).toMatchObject({ status: change.status, substatus: change.substatus });
    for (const id of dated) expect(m.getOrder(id)).toMatchObject({ status: 'DELIVERED', realDeliveryDate: date });
    const outbox = (await engine.summary()).outbox;
    expect(outbox).toMatchObject({ queued: 0, sending: 0, awaitingOperation: 0, uncertain: 0, rejected: 0 });

    const stats = m.stats();
    expect(stats.duplicateApplications).toBe(0);
    expect(stats.illegalRequests).toBe(0);
    // Each change applied exactly once at the Market (LaaS: once its operation completed).
    const planned = new Set(plan.map((c) => c.orderId));
    for (const id of all) expect(stats.appliedChanges[id] ?? 0, `order ${id}`).toBe(dated.includes(id) ? 2 : planned.has(id) ? 1 : 0);
    // Budgets: never more than 4 requests in flight per campaign or business, never past the quota.
    for (const [scope, n] of Object.entries(stats.maxInFlight)) expect(n, scope).toBeLessThanOrEqual(4);
    expect(parallel420s(m)).toEqual([]);
    expect(quota420s(m)).toEqual([]);
    const fullest: Record<number, number> = {};
    for (const c of [FBS, DBS, LAAS]) {
      const windows = quotaWindows(m, 'updateOrderStatuses', c.campaignId, STATUS_QUOTA.windowMs);
      for (const w of windows) expect(w.units).toBeLessThanOrEqual(STATUS_QUOTA.limit);
      fullest[c.campaignId] = Math.max(...windows.map((w) => w.units));
    }
    // The quota did bind: FBS's 200 orders (plus resends) needed more than one window.
    expect(quotaWindows(m, 'updateOrderStatuses', FBS.campaignId, STATUS_QUOTA.windowMs).filter((w) => w.units > 0).length).toBeGreaterThan(1);

    // What happened, for the report.
    const storm = m.requests.slice(cleanRequests);
    const faults: Record<string, number> = {};
    for (const r of storm) if (r.fault) faults[`${r.endpoint}:${r.fault}`] = (faults[`${r.endpoint}:${r.fault}`] ?? 0) + 1;
    const faultCount = Object.values(faults).reduce((a, b) => a + b, 0);
    expect(faultCount).toBeGreaterThanOrEqual(22);
    for (const kind of ['status500', 'status500AfterApply', 'timeoutAfterApply', 'hang', 'drop', 'dropAfterApply', 'status420', 'malformedJson', 'foreignIds']) {
      expect(faults[`updateOrderStatuses:${kind}`] ?? 0, kind).toBeGreaterThan(0);
    }
    const bulk = storm.filter((r) => r.endpoint === 'updateOrderStatuses');
    const bulkMinimumByCampaign = Math.ceil(200 / 30) + Math.ceil(80 / 30) + Math.ceil(80 / 30);
    errors.push(...client.errors());
    const codes: Record<string, number> = {};
    for (const e of client.errors()) codes[(e as { code: string }).code] = (codes[(e as { code: string }).code] ?? 0) + 1;
    console.log(
      `[faults] seed ${SEED}: ${storm.length} requests in ${took} ms, ${faultCount} faulted ${JSON.stringify(faults)}; ` +
        `bulk calls ${bulk.length} (fault-free minimum ${bulkMinimumByCampaign}), PUTs ${storm.filter((r) => r.endpoint === 'updateOrderStatus').length} (minimum ${dated.length}); ` +
        `client errors ${JSON.stringify(codes)}; counters ${JSON.stringify(report.counters)}; duplicates ${stats.duplicateApplications}; ` +
        `maxInFlight ${JSON.stringify(stats.maxInFlight)}; fullest quota window per campaign ${JSON.stringify(fullest)} of ${STATUS_QUOTA.limit}`,
    );
  });
});

describe('unknown outcomes of async changes', () => {
  it('a LaaS cancellation whose answer was lost is read back until its operation ends, never sent twice', async () => {
    market = await t.start({ operationDelayMs: 800 });
    const m = market;
    const ids = range(6_001, 30);
    m.seedOrders(seeds(LAAS, ids[0]!, 30));
    const db = tempDbPath();
    dbs.push(db);
    // A "not yet" read-back stays inconclusive for asyncSettleMs: by default the poll deadline
    // (here 5 s) plus the Market's 10 s request limit, far longer than the 800 ms operations.
    const engine = await engineFor(m, db, {
      retry: { initialIntervalMs: 20, maximumIntervalMs: 200 },
      pollPolicy: { timeoutMs: 5_000 },
      api: { baseUrl: m.url, apiKey: API_KEY, timeoutMs: 300 },
    });
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges(ids.map((orderId) => ({ orderId, ...CANCEL })));
    // The Market starts the 30 operations, then the connection drops: the operation ids are lost.
    m.inject({ kind: 'dropAfterApply', endpoint: 'updateOrderStatuses' });
    const report = await flushWhileSettling(engine);
    expect(report.open).toBe(0);
    // The early read-backs saw PROCESSING (the operations still running) and waited.
    const reads = requestsTo(m, 'getBusinessOrders').filter((r) => (r.body as { orderIds?: number[] }).orderIds !== undefined);
    expect(reads.length).toBeGreaterThan(1);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(1);
    expect(m.stats().duplicateApplications).toBe(0);
    expect(await mismatches(engine, m, ids)).toEqual([]);
    for (const id of ids) {
      expect(await engine.getOrder(id)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', change: 'idle' });
      expect((await engine.getOrder(id)).lastOutcome?.kind).toBe('accepted');
    }
    console.log(`[faults] LaaS unknown outcome: ${reads.length} read-backs over the 800 ms operation, 1 send, 0 duplicates`);
  });
});

describe('a 5xx after the Market applied the change', () => {
  const readBacksOf = (m: FakeMarket) => requestsTo(m, 'getBusinessOrders').filter((r) => (r.body as { orderIds?: number[] }).orderIds !== undefined);

  it('a bulk update answered 500 after it applied: the orders are read back and accepted, never resent', async () => {
    market = await t.start();
    const m = market;
    const ids = range(8_001, 30);
    m.seedOrders(seeds(FBS, ids[0]!, ids.length));
    const db = tempDbPath();
    dbs.push(db);
    const engine = await engineFor(m, db, { retry: { initialIntervalMs: 20, maximumIntervalMs: 200 } });
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges(ids.map((orderId) => ({ orderId, ...READY })));
    m.inject({ kind: 'status500AfterApply', endpoint: 'updateOrderStatuses' });
    const report = await flushWhileSettling(engine);
    expect(report.open).toBe(0);
    // One status update at the Market for each order: the one answered 500.
    const sends = requestsTo(m, 'updateOrderStatuses');
    expect(sends.map((r) => [r.fault, r.status])).toEqual([['status500AfterApply', 500]]);
    for (const id of ids) expect(sends.filter((r) => orderIdsOf(r).includes(id)), `order ${id}`).toHaveLength(1);
    expect(readBacksOf(m).map((r) => (r.body as { orderIds: number[] }).orderIds)).toEqual([ids]);
    for (const id of ids) {
      expect(await engine.getOrder(id)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle', lastOutcome: { kind: 'accepted' } });
      const events = (await engine.history(id)).map((h) => [h.event_type, h.source]);
      expect(events.slice(-3)).toEqual([['DISPATCH.SENT', 'dispatcher'], ['DISPATCH.UNKNOWN', 'dispatcher'], ['MARKET.OBSERVED', 'readBack']]);
      expect(m.stats().appliedChanges[id]).toBe(1);
    }
    expect(report.counters).toMatchObject({ ordersSent: 30, uncertain: 30, readBacks: 30, accepted: 0 });
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('a LaaS cancellation answered 500 after its operation started: read back until the operation ends, never resent', async () => {
    market = await t.start({ operationDelayMs: 1_500 });
    const m = market;
    const ids = range(9_001, 10);
    m.seedOrders(seeds(LAAS, ids[0]!, ids.length));
    const db = tempDbPath();
    dbs.push(db);
    // A short retry policy no longer shortens the window (it did: 200 ms here, against 1.5 s operations).
    const engine = await engineFor(m, db, { retry: { initialIntervalMs: 20, maximumIntervalMs: 200 }, pollPolicy: { timeoutMs: 5_000 } });
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges(ids.map((orderId) => ({ orderId, ...CANCEL })));
    m.inject({ kind: 'status500AfterApply', endpoint: 'updateOrderStatuses' });
    const report = await flushWhileSettling(engine);
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses').map((r) => r.status)).toEqual([500]);
    // Read back while the operations ran ("not yet", inconclusive), then once they had ended.
    expect(readBacksOf(m).length).toBeGreaterThan(1);
    for (const id of ids) {
      expect(await engine.getOrder(id)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', change: 'idle', lastOutcome: { kind: 'accepted' } });
      expect(m.stats().appliedChanges[id]).toBe(1);
    }
    expect(m.stats().duplicateApplications).toBe(0);
    expect(m.stats().illegalRequests).toBe(0);
    console.log(`[faults] LaaS 500 after apply: ${readBacksOf(m).length} read-backs over the 1.5 s operations, 1 send`);
  });
});

describe('typed halts and splits', () => {
  it('401: the campaign is halted with MARKET_AUTH, its changes stay queued, the others proceed', async () => {
    market = await t.start();
    const m = market;
    m.seedOrders([...seeds(FBS, 1_001, 40), ...seeds(DBS, 2_001, 40), ...seeds(LAAS, 3_001, 10)]);
    const db = tempDbPath();
    dbs.push(db);
    // The DBS campaign's calls carry a key the Market refuses (a revoked key, say): a real 401.
    const refused = recordingClient(m, { apiKey: 'revoked-key-of-another-shop' });
    clients.push(refused);
    const client = recordingClient(m, {
      hooks: {
        updateOrderStatuses: (inner, campaignId, orders) => (campaignId === DBS.campaignId ? refused : inner).updateOrderStatuses(campaignId, orders),
      },
    });
    clients.push(client);
    const engine = await engineFor(m, db, { client, pollPolicy: { initialIntervalMs: 50 } });
    engines.push(engine);
    await engine.sync();
    const queued = await engine.requestChanges([
      ...range(1_001, 40).map((orderId) => ({ orderId, ...READY })),
      ...range(2_001, 40).map((orderId) => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }) as const),
      ...range(3_001, 10).map((orderId) => ({ orderId, ...CANCEL })),
    ]);
    expect(queued.refused).toEqual([]);

    // It stops when only the halted campaign's changes are left, not at maxWaitMs: that is out of
    // the test's reach, so a flush that waited for it would fail the test by its timeout.
    const report = await engine.flush({ untilIdle: true, maxWaitMs: OUT_OF_REACH_MS });
    expect(report.halted).toEqual([expect.objectContaining({ campaignId: DBS.campaignId, code: 'MARKET_AUTH' })]);
    expect(report.halted[0]!.message).toMatch(/401/);
    expect(report.open).toBe(40);
    for (const id of range(2_001, 40)) {
      expect(await engine.getOrder(id)).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED', change: 'queued' });
      expect((await engine.getOrder(id)).pending?.sends).toBe(0); // a refused key is not a send
      expect((await engine.store.read((tx) => tx.outbox.get(id, 1)))?.state).toBe('queued');
    }
    for (const id of range(1_001, 40)) expect(await engine.getOrder(id)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
    for (const id of range(3_001, 10)) expect(await engine.getOrder(id)).toMatchObject({ status: 'CANCELLED', change: 'idle' });
    // The halted campaign was tried once per batch in flight at most, then left alone.
    const dbsCalls = requestsTo(m, 'updateOrderStatuses', DBS.campaignId);
    expect(dbsCalls.every((r) => r.status === 401)).toBe(true);
    expect(dbsCalls.length).toBeGreaterThanOrEqual(1);
    expect(dbsCalls.length).toBeLessThanOrEqual(2); // 40 orders: two batches
    const again = await engine.flush();
    expect(requestsTo(m, 'updateOrderStatuses', DBS.campaignId)).toHaveLength(dbsCalls.length);
    expect(again.halted).toHaveLength(1);
    expect(m.stats().duplicateApplications).toBe(0);
    errors.push(...refused.errors());
  });

  it('403 for a campaign the key may not use halts that campaign too', async () => {
    const foreign: FakeCampaign = { campaignId: 5_999, businessId: 9_001, model: 'FBS' };
    market = await t.start({ campaigns: CAMPAIGNS }); // the Market does not know 5 999
    const m = market;
    m.seedOrders(seeds(FBS, 1_001, 5));
    const db = tempDbPath();
    dbs.push(db);
    const engine = await engineFor(m, db, { campaigns: [...CAMPAIGNS, foreign].map((c) => ({ campaignId: c.campaignId, businessId: c.businessId, model: c.model })) });
    engines.push(engine);
    await engine.trackOrders([{ orderId: 9_001, campaignId: foreign.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    await engine.sync();
    await engine.requestChanges([1_001, 1_002, 9_001].map((orderId) => ({ orderId, ...READY })));
    const report = await flushWhileSettling(engine);
    expect(report.halted).toEqual([expect.objectContaining({ campaignId: foreign.campaignId, code: 'MARKET_AUTH' })]);
    expect(report.halted[0]!.message).toMatch(/403/);
    expect((await engine.getOrder(9_001)).change).toBe('queued');
    expect(await engine.getOrder(1_001)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
  });

  it('a whole-batch 400 is bisected: only the offending order is rejected, the others are accepted once', async () => {
    market = await t.start();
    const m = market;
    const ids = range(4_001, 30);
    const poison = 4_017;
    m.seedOrders(seeds(FBS, ids[0]!, 30));
    const db = tempDbPath();
    dbs.push(db);
    // The fake has no "400 when order X is in the batch" fault, so this hook makes one over
    // HTTP: a batch holding the poison order goes out with a field the Market's schema refuses,
    // and the fake's real 400 (nothing applied) comes back as the client's MarketClientError.
    const client = recordingClient(m, {
      hooks: {
        updateOrderStatuses: async (inner, campaignId, orders) => {
          if (!orders.some((o) => o.id === poison)) return inner.updateOrderStatuses(campaignId, orders);
          const path = `/v2/campaigns/${campaignId}/orders/status-update`;
          const body = { orders: orders.map((o) => (o.id === poison ? { ...o, giftWrap: true } : o)) };
          const response = await fetch(`${m.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'api-key': API_KEY }, body: JSON.stringify(body) });
          const json = (await response.json()) as { errors: { code: string; message?: string }[] };
          expect(response.status).toBe(400);
          throw new MarketClientError({
            call: { operation: 'updateOrderStatuses', method: 'POST', path },
            httpStatus: response.status,
            rateLimit: parseRateLimitHeaders(Object.fromEntries(response.headers)),
            marketErrors: json.errors,
          });
        },
      },
    });
    clients.push(client);
    const engine = await engineFor(m, db, { client });
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges(ids.map((orderId) => ({ orderId, ...READY })));
    const report = await flushWhileSettling(engine);
    expect(report.open).toBe(0);
    for (const id of ids) {
      const order = await engine.getOrder(id);
      if (id === poison) {
        expect(order).toMatchObject({ substatus: 'STARTED', change: 'idle' });
        expect(order.lastOutcome).toMatchObject({ kind: 'rejected' });
        expect(order.lastOutcome!.reason).toMatch(/HTTP 400/);
        expect(m.getOrder(id)?.substatus).toBe('STARTED');
      } else {
        expect(order).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
        expect(order.lastOutcome?.kind).toBe('accepted');
      }
    }
    const calls = requestsTo(m, 'updateOrderStatuses');
    // 30 → 15 → 8 → 4 → 2 → 1: five splits, each sends its clean half once.
    expect(report.counters.bisections).toBe(5);
    expect(calls.filter((r) => r.status === 400)).toHaveLength(6);
    expect(calls.filter((r) => r.status === 200).flatMap(orderIdsOf).sort()).toEqual(ids.filter((id) => id !== poison).sort());
    expect(calls.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(30)) + 1);
    expect(m.stats().duplicateApplications).toBe(0);
    expect(m.stats().illegalRequests).toBe(0);
    console.log(`[faults] bisection: ${calls.length} calls for a 30-order batch with one bad order (${report.counters.bisections} splits)`);
  });
});
