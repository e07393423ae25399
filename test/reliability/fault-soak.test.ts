// Fault soak (issue #6): every fault the fake Market knows, on every endpoint, all at once.
//
// What it proves: while the run loop (engine.run in a child process, syncing every second) works
// through a few thousand changes over FBS, DBS (bulk and the single PUT with a real delivery
// date) and LaaS (async operations), the fake Market answers a seeded random share of requests
// with 500s and 503s, hangs (the client times out), dropped connections before and after applying
// the change, timeouts after applying it, 420s (scattered, plus storms of consecutive 420s),
// truncated JSON, and answers about orders or operations nobody asked about. Still:
//  - every change settles as accepted and is applied exactly once (appliedChanges = 1 each,
//    duplicateApplications = 0), nothing illegal reaches the Market (illegalRequests = 0);
//  - every order ends where the Market says it is;
//  - the budgets hold: at most 4 requests in flight per campaign or business, and in every
//    quota window (small scaled quotas on every endpoint, replayed from market.requests'
//    timestamps) no more units charged than the quota; no 420 that the quota itself caused.
// It prints the faults injected, by kind.
//
// The loop is engine.run({syncIntervalMs}) as `ym-orders run` drives it, in a child process
// (test/reliability/workers/run-worker.ts), while the fake Market runs here. In one process, on a
// loaded machine, the fake read requests only when the engine's synchronous writes let it: some
// after the client had given up on them, counted into a window the engine rightly took for over,
// so that the next batch met a 420 no client could have avoided; and answers that were merely
// late tripped the 300 ms timeout. Two src issues found
// while writing this suite (see the issue #6 report): a failing sync used to escape run() and,
// since run() syncs first on every call, starve every send (fixed in the tree since: run() now
// catches it, `onSyncError`); and OrderSync.syncBusiness still waits inside run() for the
// getBusinessOrders budget (sleeping until the window ends, deaf to the abort signal), so a
// spent or 420-blocked read budget pauses sending. The storms here are short enough that this
// only slows the run.
//
// Replay: FAULT_SOAK_SEED=<seed> npx vitest run test/reliability/fault-soak.test.ts

import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import type { RequestChangeCommand } from '../../src/engine/commands.js';
import type { MarketOperation } from '../../src/market/errors.js';
import type { Fault, FaultKind } from '../../src/testing/faults.js';
import type { FakeMarket } from '../../src/testing/index.js';
import { checkInvariants } from '../helpers/engine-fixtures.js';
import {
  API_KEY,
  BUSINESS_A,
  BUSINESS_B,
  CAMPAIGNS,
  DBS,
  FBS,
  LAAS,
  engineFor,
  mismatches,
  orderIdsSeenBy,
  parallel420s,
  pastDeliveryDate,
  quota420s,
  range,
  removeTempDirs,
  requestsTo,
  unitsOf,
  seeds,
  startMarket,
  tempDbPath,
} from '../helpers/effects-fixtures.js';
import { faultTally, figures, killWorkers, POLL_TIMEOUT_MS, quota420Report, replayQuotaWindows, seedFrom, sized, startRunWorker, untilSettled } from './support.js';

const SEED = seedFrom('FAULT_SOAK_SEED', 4242);
const N = sized({ fbs: 900, dbs: 600, laas: 500, probability: 0.035, timeoutMs: 15 * 60_000 }, { fbs: 4_000, dbs: 3_000, laas: 3_000, probability: 0.04, timeoutMs: 60 * 60_000 });
/**
 * The client's timeout is short (hangs are among the faults, and each costs one), so on a loaded
 * machine it is also hit by answers that were merely slow (this process serves the fake Market
 * too). Each such timeout costs a send, never a duplicate (a read-back comes first), so the cap on
 * sends is set out of reach: a change may take many tries, and must still land exactly once.
 */
const CLIENT_TIMEOUT_MS = 300;
const MAX_SENDS = 1_000;
/** This process and the worker share the file; a loaded machine may deschedule a lock holder. */
const BUSY_TIMEOUT_MS = 60_000;
/**
 * The worker's poll deadline (pollPolicy.timeoutMs), out of the test's reach (a day; the test's
 * timeout is at most an hour). An operation still unresolved at its deadline is given up, its
 * change rejected while the fake applies it; on a loaded machine every poll may fail for seconds
 * (the 300 ms client timeout, and the faults), so a deadline of POLL_TIMEOUT_MS in real time
 * expired operations whose polls had merely been unlucky or starved.
 */
const WORKER_POLL_TIMEOUT_MS = 24 * 3_600_000;
const WINDOW_MS = 1_000;
const STORM = 6;
const LATENCY_MS = 2;
/** Small scaled quotas (per second instead of per hour), the same for the fake and the engine. */
const QUOTAS: Record<MarketOperation, { limit: number; windowMs: number }> = {
  updateOrderStatuses: { limit: 120, windowMs: WINDOW_MS },
  updateOrderStatus: { limit: 40, windowMs: WINDOW_MS },
  getOperations: { limit: 20, windowMs: WINDOW_MS },
  getBusinessOrders: { limit: 40, windowMs: WINDOW_MS },
  acceptOrderCancellation: { limit: 10, windowMs: WINDOW_MS },
};
const ENDPOINTS: readonly MarketOperation[] = ['updateOrderStatuses', 'updateOrderStatus', 'getOperations', 'getBusinessOrders'];
const KINDS: readonly FaultKind[] = ['status500', 'status503', 'status420', 'hang', 'timeoutAfterApply', 'drop', 'dropAfterApply', 'malformedJson', 'foreignIds'];

let market: FakeMarket | undefined;
let engine: Engine | undefined;

afterAll(async () => {
  await killWorkers();
  await engine?.close();
  await market?.close();
  removeTempDirs();
});

describe('fault soak: every fault at once', () => {
  it(`settles every change exactly once within the budgets (seed ${SEED})`, { timeout: N.timeoutMs }, async () => {
    const t0 = Date.now();
    console.log(`[fault-soak] seed ${SEED} (FAULT_SOAK_SEED=${SEED} to replay)${sized('', ' SOAK')}`);
    market = await startMarket({ seed: SEED, latencyMs: LATENCY_MS, operationDelayMs: 150, quotas: QUOTAS });
    const m = market;
    const fbs = range(7_100_001, N.fbs);
    const dbs = range(7_200_001, N.dbs);
    const laas = range(7_300_001, N.laas);
    const half = Math.floor(dbs.length / 2);
    const dbsStarted = dbs.slice(0, half);
    const dbsInDelivery = dbs.slice(half);
    const backdated = Date.now() - 10 * 60_000;
    m.seedOrders([
      ...seeds(FBS, fbs[0]!, fbs.length, 'PROCESSING', 'STARTED', backdated),
      ...dbsStarted.map((id) => ({ id, campaignId: DBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: backdated })),
      ...dbsInDelivery.map((id) => ({ id, campaignId: DBS.campaignId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', updateDate: backdated })),
      ...seeds(LAAS, laas[0]!, laas.length, 'PROCESSING', 'STARTED', backdated),
    ]);
    const all = [...fbs, ...dbs, ...laas];
    const db = tempDbPath('fault-soak.db');
    const retry = { initialIntervalMs: 40, backoffCoefficient: 2, maximumIntervalMs: 800 };
    const poll = { initialIntervalMs: 80, backoffCoefficient: 1.5, maximumIntervalMs: 400 };
    // This process imports (an order keeps the maxSends and the asyncSettleMs of the engine that
    // began tracking it), queues and watches; the worker sends and polls. So this engine's poll
    // deadline sets the orders' asyncSettleMs (POLL_TIMEOUT_MS plus the Market's 10 s request
    // limit: a LaaS cancellation that did not apply is resent that long after its send, far
    // longer than the fake's 150 ms operations), and the worker's decides when it gives an
    // operation up: never, within the test (WORKER_POLL_TIMEOUT_MS).
    engine = await engineFor(m, db, {
      limits: { resources: QUOTAS },
      maxSends: MAX_SENDS,
      pollPolicy: { ...poll, timeoutMs: POLL_TIMEOUT_MS },
      sqlite: { synchronous: 'NORMAL', busyTimeoutMs: BUSY_TIMEOUT_MS },
    });
    const e = engine;
    // The import runs clean; the storm starts with the changes.
    await e.sync();
    expect((await e.summary()).orders).toBe(all.length);

    const date = pastDeliveryDate();
    const plan: RequestChangeCommand[] = [
      ...fbs.map((orderId, i): RequestChangeCommand => ({ orderId, status: i % 4 === 3 ? 'CANCELLED' : 'PROCESSING', substatus: i % 4 === 3 ? 'SHOP_FAILED' : 'READY_TO_SHIP' })),
      ...dbsStarted.map((orderId): RequestChangeCommand => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' })),
      ...dbsInDelivery.map((orderId, i): RequestChangeCommand =>
        i % 3 === 2
          ? { orderId, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' }
          : { orderId, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: date },
      ),
      ...laas.map((orderId): RequestChangeCommand => ({ orderId, status: 'CANCELLED', substatus: 'SHOP_FAILED' })),
    ];
    const clean = m.requests.length;
    // Every kind once on every endpoint up front (so each is seen whatever the seed), then all at random.
    for (const endpoint of ENDPOINTS) for (const kind of KINDS) m.inject({ kind, endpoint, times: 1 });
    for (const kind of KINDS) m.inject({ kind, probability: N.probability, times: Infinity } satisfies Fault);
    expect((await e.requestChanges(plan)).refused).toEqual([]);

    // The run loop as `ym-orders run` drives it: send, read back, poll, and sync every second.
    const worker = startRunWorker(
      {
        db,
        url: m.url,
        timeoutMs: CLIENT_TIMEOUT_MS,
        busyTimeoutMs: BUSY_TIMEOUT_MS,
        maxSends: MAX_SENDS,
        seed: SEED,
        retry,
        pollPolicy: { ...poll, timeoutMs: WORKER_POLL_TIMEOUT_MS },
        limits: { resources: QUOTAS },
        syncIntervalMs: 1_000,
        idleMs: 50,
      },
      API_KEY,
    );
    await worker.ready;
    // 420 storms: now and then the next STORM requests to one endpoint all get a 420 (the next
    // storm only once the last one has blown over: each 420 rightly costs a wait until -Until).
    let storms = 0;
    let nextStorm = Date.now() + 2_000;
    let storm: { endpoint: MarketOperation; from: number } | undefined;
    // However long it takes: the wait ends when every change has settled, or nothing settles any more.
    await untilSettled(async () => (await e.stats()).open, {
      stop: () => worker.exited(),
      every: async () => {
        const over = storm === undefined || m.requests.slice(storm.from).filter((r) => r.endpoint === storm!.endpoint).length >= STORM;
        if (over && Date.now() >= nextStorm && (await e.stats()).open > plan.length * 0.4) {
          storm = { endpoint: storms % 2 === 0 ? 'updateOrderStatuses' : 'getBusinessOrders', from: m.requests.length };
          m.inject({ kind: 'status420', endpoint: storm.endpoint, times: STORM });
          storms++;
          nextStorm = Date.now() + 5_000;
        }
      },
    });
    worker.child.kill('SIGTERM');
    const exit = await worker.done;
    expect(exit.stderr, 'the worker failed').not.toMatch(/^fatal/m);
    expect(exit.code, exit.stderr).toBe(0);
    // Market failures the loop lived through, by code (syncs that failed among them).
    const survived: Record<string, number> = {};
    for (const [, code] of exit.stderr.matchAll(/^warn \[(\w+)\]/gm)) survived[code!] = (survived[code!] ?? 0) + 1;
    const syncFailures = [...exit.stderr.matchAll(/^warn \[\w+\] sync: /gm)].length;
    m.clearFaults();
    const took = Date.now() - t0;
    const report = await e.stats();
    if (report.open > 0) {
      console.log(`[fault-soak] STILL OPEN ${report.open}: ${JSON.stringify(await e.pendingChanges(5))}`);
      for (const r of await e.pendingChanges(3)) console.log(`   ${JSON.stringify(await e.getOrder(r.order_id))}`);
    }
    expect(report.open).toBe(0);
    expect(report.halted).toEqual([]);

    // Nothing lost, nothing twice, nothing illegal.
    const outbox = (await e.summary()).outbox;
    for (const r of await e.settledChanges({ state: 'rejected', since: 0, limit: 5 })) {
      console.log(`[fault-soak] REJECTED ${JSON.stringify({ order_id: r.order_id, status: r.status, substatus: r.substatus, attempts: r.attempts, last_error: r.last_error })}`);
    }
    expect(outbox).toMatchObject({ queued: 0, sending: 0, awaitingOperation: 0, uncertain: 0, rejected: 0, superseded: 0 });
    expect(outbox.accepted).toBe(plan.length);
    for (const c of plan) expect(m.getOrder(c.orderId), `order ${c.orderId}`).toMatchObject({ status: c.status, substatus: c.substatus });
    const stats = m.stats();
    expect(stats.duplicateApplications).toBe(0);
    expect(stats.illegalRequests).toBe(0);
    expect(all.filter((id) => stats.appliedChanges[id] !== 1)).toEqual([]);
    // Every order where the Market says it is.
    expect(await mismatches(e, m, all)).toEqual([]);
    // foreignIds answers made the syncs track orders nobody seeded: the Market told of them.
    expect(await checkInvariants(e.store, [...all, ...orderIdsSeenBy(m)])).toEqual([]);

    // Budgets: in flight, and units per quota window, for every endpoint and owner.
    for (const [scope, n] of Object.entries(stats.maxInFlight)) expect(n, scope).toBeLessThanOrEqual(4);
    expect(parallel420s(m)).toEqual([]);
    for (const line of quota420Report(m.requests, quota420s(m), WINDOW_MS, LATENCY_MS)) console.log(`[fault-soak] ${line}`);
    expect(quota420s(m)).toEqual([]);
    const owners: Record<MarketOperation, number[]> = {
      updateOrderStatuses: CAMPAIGNS.map((c) => c.campaignId),
      updateOrderStatus: [DBS.campaignId],
      acceptOrderCancellation: [],
      getOperations: [BUSINESS_B],
      getBusinessOrders: [BUSINESS_A, BUSINESS_B],
    };
    const fullest: Record<string, string> = {};
    for (const [endpoint, ids] of Object.entries(owners) as [MarketOperation, number[]][]) {
      for (const owner of ids) {
        const windows = replayQuotaWindows(m.requests, endpoint, owner, WINDOW_MS, LATENCY_MS);
        const over = windows.filter((w) => w.units > QUOTAS[endpoint].limit);
        for (const w of over) {
          console.log(`[fault-soak] OVER ${endpoint}@${owner} ${JSON.stringify(w)}`);
          for (const r of requestsTo(m, endpoint, owner).filter((q) => q.receivedAt >= w.startedAt - 2 * WINDOW_MS && q.receivedAt < w.startedAt + 2 * WINDOW_MS)) {
            console.log(`   ${r.receivedAt - w.startedAt} ${r.answeredAt === undefined ? '-' : r.answeredAt - w.startedAt} ${r.status} ${r.fault ?? ''} units=${unitsOf(r)} ${(r.responseBody ?? '').slice(0, 100)}`);
          }
        }
        expect(over, `${endpoint}@${owner}`).toEqual([]);
        fullest[`${endpoint}@${owner}`] = `${Math.max(0, ...windows.map((w) => w.units))}/${QUOTAS[endpoint].limit}`;
      }
    }
    // The bulk quota did bind: FBS needed several windows.
    expect(replayQuotaWindows(m.requests, 'updateOrderStatuses', FBS.campaignId, WINDOW_MS, LATENCY_MS).filter((w) => w.units > 0).length).toBeGreaterThan(3);

    const during = m.requests.slice(clean);
    const faults = faultTally(during);
    for (const kind of KINDS) expect(faults.byKind[kind] ?? 0, kind).toBeGreaterThan(0);
    console.log(`[fault-soak] faults by endpoint ${JSON.stringify(faults.byEndpoint)}; loop survived ${JSON.stringify(survived)}; fullest windows ${JSON.stringify(fullest)}`);
    console.log(
      figures('fault-soak', {
        orders: all.length,
        changes: plan.length,
        requests: during.length,
        faults: faults.total,
        byKind: faults.byKind,
        storms,
        syncPages: during.filter((r) => r.endpoint === 'getBusinessOrders' && (r.body as { orderIds?: unknown } | null)?.orderIds === undefined).length,
        syncFailures,
        lost: plan.length - outbox.accepted,
        duplicates: stats.duplicateApplications,
        illegal: stats.illegalRequests,
        maxInFlight: Math.max(...Object.values(stats.maxInFlight)),
        seed: SEED,
        ms: took,
      }),
    );
  });
});
