// Contention (issue #6): three run loops on one SQLite file, and four on one PostgreSQL schema
// (skipped, with one line saying so, when no server answers), against one fake Market.
//
// What it proves: when three processes run the run loop (test/reliability/workers/run-worker.ts:
// createEngine + engine.run({signal}), each with its own lease owner, syncing every few seconds) on one
// SQLite file against one fake Market with small scaled quotas, sharing thousands of queued
// changes over FBS, DBS (bulk and the single PUT) and LaaS (async operations):
//  - no change is sent twice: duplicateApplications = 0, and each order's change appears in at
//    most one request the Market acted on (answered other than 420/5xx), unless a read-back
//    first showed it unapplied (uncertain → queued in the journal), which is then allowed once more;
//  - the shared budget holds: at most 4 requests in flight per campaign or business across all
//    processes (and no parallel-limit 420), and in every quota window (replayed from the fake's
//    request log) no more units than the quota, and no 420 caused by the quota;
//  - every change settles as accepted, exactly once at the Market, every order where the Market
//    says it is, the database consistent; all three processes stop cleanly on SIGTERM.
//
// A worker rather than `bin/ym-orders.js run`: the CLI cannot be told the scaled quotas, so it
// would start from the default hourly budget until the first answers' headers correct it.
//
// Replay: CONTENTION_SEED=<seed> npx vitest run test/reliability/contention.test.ts

import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import type { RequestChangeCommand } from '../../src/engine/commands.js';
import type { MarketOperation } from '../../src/market/errors.js';
import type { FakeMarket } from '../../src/testing/index.js';
import { checkInvariants } from '../helpers/engine-fixtures.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL } from '../helpers/postgres.js';
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
  orderIdsOf,
  parallel420s,
  pastDeliveryDate,
  quota420s,
  range,
  removeTempDirs,
  seeds,
  startMarket,
  tempDbPath,
} from '../helpers/effects-fixtures.js';
import { figures, killWorkers, POLL_TIMEOUT_MS, quota420Report, replayQuotaWindows, seedFrom, sized, startRunWorker, untilSettled, type RunningWorker } from './support.js';

const SEED = seedFrom('CONTENTION_SEED', 1720232118);
const postgres = inject('postgres');
const PG_SCHEMAS = freshSchemaPrefix();
const N = sized(
  { fbs: 600, dbs: 450, laas: 450, bulkPerSecond: 90, readsPerSecond: 30, syncEveryMs: 2_000, timeoutMs: 10 * 60_000 },
  { fbs: 9_000, dbs: 4_500, laas: 4_500, bulkPerSecond: 150, readsPerSecond: 60, syncEveryMs: 5_000, timeoutMs: 40 * 60_000 },
);
const WINDOW_MS = 1_000;
const LATENCY_MS = 5;
/**
 * Four processes write the file at once; on a loaded machine a process holding the write lock is
 * often descheduled, and the default 5 s busy timeout was hit (a DB_BUSY that stops a worker).
 */
const BUSY_TIMEOUT_MS = 60_000;
const QUOTAS: Record<MarketOperation, { limit: number; windowMs: number }> = {
  updateOrderStatuses: { limit: N.bulkPerSecond, windowMs: WINDOW_MS },
  updateOrderStatus: { limit: 30, windowMs: WINDOW_MS },
  getOperations: { limit: 20, windowMs: WINDOW_MS },
  getBusinessOrders: { limit: N.readsPerSecond, windowMs: WINDOW_MS },
  acceptOrderCancellation: { limit: 10, windowMs: WINDOW_MS },
};
const STATUS_ENDPOINTS = new Set(['updateOrderStatuses', 'updateOrderStatus']);

let market: FakeMarket | undefined;
let engine: Engine | undefined;

afterAll(async () => {
  await killWorkers();
  await engine?.close();
  await market?.close();
  removeTempDirs();
  if (postgres) await dropSchemas(PG_SCHEMAS);
});

/** Where the processes share their work: a SQLite file, or a PostgreSQL schema. */
interface SharedStore {
  readonly name: string;
  readonly processes: number;
  readonly db: () => string;
  readonly postgres?: { readonly schema: string };
}

const STORES: readonly SharedStore[] = [
  { name: 'SQLite file', processes: 3, db: () => tempDbPath('contention.db') },
  ...(postgres ? [{ name: 'PostgreSQL schema', processes: 4, db: () => POSTGRES_TEST_URL, postgres: { schema: `${PG_SCHEMAS}_contention` } }] : []),
];

describe('contention: run loops of several processes on one database', () => {
  it.each(STORES)(`$processes processes on one $name share the work and the budget without sending anything twice (seed ${SEED})`, { timeout: N.timeoutMs }, async (store) => {
    const PROCESSES = store.processes;
    const t0 = Date.now();
    console.log(`[contention] ${store.name}: seed ${SEED} (CONTENTION_SEED=${SEED} to replay)${sized('', ' SOAK')}`);
    market = await startMarket({ seed: SEED, latencyMs: LATENCY_MS, operationDelayMs: 200, quotas: QUOTAS });
    const m = market;
    const fbs = range(8_100_001, N.fbs);
    const dbs = range(8_200_001, N.dbs);
    const laas = range(8_300_001, N.laas);
    const half = Math.floor(dbs.length / 2);
    const backdated = Date.now() - 10 * 60_000;
    m.seedOrders([
      ...seeds(FBS, fbs[0]!, fbs.length, 'PROCESSING', 'STARTED', backdated),
      ...dbs.map((id, i) => ({ id, campaignId: DBS.campaignId, status: i < half ? 'PROCESSING' : 'DELIVERY', substatus: i < half ? 'STARTED' : 'DELIVERY_SERVICE_RECEIVED', updateDate: backdated })),
      ...seeds(LAAS, laas[0]!, laas.length, 'PROCESSING', 'STARTED', backdated),
    ]);
    const all = [...fbs, ...dbs, ...laas];
    const db = store.db();
    // An order keeps the asyncSettleMs (from pollPolicy) of the engine that began tracking it: this
    // one. With the default poll timeout (an hour), a LaaS cancellation whose answer was lost
    // would wait that long for its resend.
    const pollPolicy = { initialIntervalMs: 100, backoffCoefficient: 1.5, maximumIntervalMs: 500, timeoutMs: POLL_TIMEOUT_MS };
    engine = await engineFor(m, db, { limits: { resources: QUOTAS }, pollPolicy, ...(store.postgres ? { postgres: store.postgres } : {}) });
    const e = engine;
    await e.sync();
    expect((await e.summary()).orders).toBe(all.length);
    const date = pastDeliveryDate();
    const plan: RequestChangeCommand[] = [
      ...fbs.map((orderId, i): RequestChangeCommand => (i % 5 === 4 ? { orderId, status: 'CANCELLED', substatus: 'SHOP_FAILED' } : { orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })),
      ...dbs.slice(0, half).map((orderId): RequestChangeCommand => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' })),
      ...dbs.slice(half).map((orderId, i): RequestChangeCommand =>
        i % 2 === 0 ? { orderId, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: date } : { orderId, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
      ),
      ...laas.map((orderId): RequestChangeCommand => ({ orderId, status: 'CANCELLED', substatus: 'SHOP_FAILED' })),
    ];
    expect((await e.requestChanges(plan)).refused).toEqual([]);
    const before = m.requests.length;

    const workers: RunningWorker[] = Array.from({ length: PROCESSES }, (_, i) =>
      startRunWorker(
        {
          db,
          url: m.url,
          timeoutMs: 3_000,
          busyTimeoutMs: BUSY_TIMEOUT_MS,
          ...(store.postgres ? { postgres: store.postgres } : {}),
          owner: `contender-${i}`,
          seed: SEED + i,
          retry: { initialIntervalMs: 50, backoffCoefficient: 2, maximumIntervalMs: 1_000 },
          pollPolicy,
          limits: { resources: QUOTAS },
          syncIntervalMs: N.syncEveryMs,
          idleMs: 30,
        },
        API_KEY,
      ),
    );
    await Promise.all(workers.map((w) => w.ready));
    // However long it takes: the wait ends when every change has settled, or nothing settles any more.
    const open = await untilSettled(async () => (await e.stats()).open, { stop: () => workers.some((w) => w.exited()) });
    for (const w of workers) w.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => w.done));
    for (const x of exits) {
      expect(x.stderr, 'a worker failed').not.toMatch(/^fatal/m);
      expect(x.code, x.stderr).toBe(0);
    }
    if (open > 0) console.log(`[contention] STILL OPEN ${open}: ${JSON.stringify(await e.pendingChanges(3))}`);
    expect(open).toBe(0);
    const reports = exits.map((x) => JSON.parse(/^stopped (.*)$/m.exec(x.stdout)![1]!) as { counters: { ordersSent: number; accepted: number; calls: Record<string, number> } });
    const sentBy = reports.map((r) => r.counters.ordersSent);

    // Everything settled, once.
    const outbox = (await e.summary()).outbox;
    expect(outbox).toMatchObject({ accepted: plan.length, rejected: 0, superseded: 0 });
    for (const c of plan) expect(m.getOrder(c.orderId), `order ${c.orderId}`).toMatchObject({ status: c.status, substatus: c.substatus });
    expect(await mismatches(e, m, all)).toEqual([]);
    const stats = m.stats();
    expect(stats.duplicateApplications).toBe(0);
    expect(stats.illegalRequests).toBe(0);
    expect(all.filter((id) => stats.appliedChanges[id] !== 1)).toEqual([]);
    expect(await checkInvariants(e.store, all)).toEqual([]);

    // No change sent twice: per order, requests the Market acted on ≤ 1 + read-backs that proved it unapplied.
    const resends = new Map<number, number>();
    for (const orderId of all) {
      const resent = (await e.history(orderId)).filter((j) => j.from_change === 'uncertain' && j.to_change === 'queued').length;
      if (resent > 0) resends.set(orderId, resent);
    }
    const actedOn = new Map<number, number>();
    const carried = new Map<number, number>();
    for (const r of m.requests.slice(before)) {
      if (!STATUS_ENDPOINTS.has(r.endpoint ?? '')) continue;
      for (const id of orderIdsOf(r)) {
        carried.set(id, (carried.get(id) ?? 0) + 1);
        if (r.status !== undefined && r.status !== 420 && r.status < 500) actedOn.set(id, (actedOn.get(id) ?? 0) + 1);
      }
    }
    const twice = [...actedOn].filter(([id, n]) => n > 1 + (resends.get(id) ?? 0));
    expect(twice).toEqual([]);

    // The shared budget.
    for (const [scope, n] of Object.entries(stats.maxInFlight)) expect(n, scope).toBeLessThanOrEqual(4);
    expect(parallel420s(m)).toEqual([]);
    // With honest headers the shared budget never lets the processes run into the quota itself.
    const overQuota = quota420s(m);
    for (const line of quota420Report(m.requests.slice(before), overQuota, WINDOW_MS, LATENCY_MS)) console.log(`[contention] ${line}`);
    expect(overQuota).toEqual([]);
    const owners: [MarketOperation, number][] = [
      ...CAMPAIGNS.map((c) => ['updateOrderStatuses', c.campaignId] as [MarketOperation, number]),
      ['updateOrderStatus', DBS.campaignId],
      ['getOperations', BUSINESS_B],
      ['getBusinessOrders', BUSINESS_A],
      ['getBusinessOrders', BUSINESS_B],
    ];
    const fullest: Record<string, string> = {};
    let windows = 0;
    for (const [endpoint, owner] of owners) {
      const ws = replayQuotaWindows(m.requests.slice(before), endpoint, owner, WINDOW_MS, LATENCY_MS);
      windows += ws.length;
      expect(ws.filter((w) => w.units > QUOTAS[endpoint].limit), `${endpoint}@${owner}`).toEqual([]);
      fullest[`${endpoint}@${owner}`] = `${Math.max(0, ...ws.map((w) => w.units))}/${QUOTAS[endpoint].limit}`;
    }
    // The quota bound: FBS alone needed several windows.
    expect(replayQuotaWindows(m.requests.slice(before), 'updateOrderStatuses', FBS.campaignId, WINDOW_MS, LATENCY_MS).filter((w) => w.units > 0).length).toBeGreaterThan(3);
    // All three contended for the shared budget (how the sends split between them is printed).
    for (const r of reports) expect(Object.values(r.counters.calls).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    console.log(`[contention] fullest windows ${JSON.stringify(fullest)}; per process ${JSON.stringify(reports.map((r) => r.counters.calls))}`);
    console.log(
      figures('contention', {
        store: store.name,
        processes: PROCESSES,
        orders: all.length,
        changes: plan.length,
        sentByProcess: sentBy.join('/'),
        requests: m.requests.length - before,
        maxCarried: Math.max(0, ...carried.values()),
        resendsAfterReadBack: [...resends.values()].reduce((a, b) => a + b, 0),
        sentTwice: twice.length,
        duplicates: stats.duplicateApplications,
        illegal: stats.illegalRequests,
        maxInFlight: Math.max(...Object.values(stats.maxInFlight)),
        quotaWindows: windows,
        quota420s: overQuota.length,
        seed: SEED,
        ms: Date.now() - t0,
      }),
    );
    await e.close();
    engine = undefined;
    await m.close();
    market = undefined;
  });
});
