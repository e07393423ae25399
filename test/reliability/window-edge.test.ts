// The budget at a window's edge. Found by the contention suite (seed 1720232118, a loaded
// machine): a process takes a permit, then writes its batch's DISPATCH.SENT and only then sends;
// with four processes on one file that took 1.5 s, and the request reached the Market a window
// later than the one its permit came from. Another process, finding the window over, opened a
// fresh one with the whole quota, so that window got both (120 units of 90): a 420 the quota
// caused. Requests still in flight when a window ends may land in the next one, so they count
// against it until their answers tell.
//
// Here two engines share one file and one fake Market, as two processes would: one engine's
// batches stall between permit and request (its client waits for a gate) until the window their
// permits came from is over, and the other engine sends meanwhile. Every wait is on an event
// (held requests, the limiter consulted, the end of a window), not on a time.

import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import { resolveLimits } from '../../src/engine/policies.js';
import { RateLimiter, UNFINISHED_LINGER_MS, type Permit } from '../../src/engine/rate-limiter.js';
import type { MarketOperation } from '../../src/market/errors.js';
import { SqliteStore } from '../../src/store/index.js';
import type { BudgetRow } from '../../src/store/limiter.js';
import type { Store } from '../../src/store/port.js';
import type { FakeMarket } from '../../src/testing/index.js';
import { checkInvariants } from '../helpers/engine-fixtures.js';
import {
  countBudgetUse,
  engineFor,
  FBS,
  quota420s,
  range,
  recordingClient,
  removeTempDirs,
  requestsTo,
  seeds,
  startMarket,
  tempDbPath,
} from '../helpers/effects-fixtures.js';
import { replayQuotaWindows, sleep } from './support.js';

const LIMIT = 90;
const WINDOW_MS = 1_500;
const ROOMY = { limit: 100_000, windowMs: 60_000 };
const QUOTAS: Record<MarketOperation, { limit: number; windowMs: number }> = {
  updateOrderStatuses: { limit: LIMIT, windowMs: WINDOW_MS },
  updateOrderStatus: ROOMY,
  getOperations: ROOMY,
  getBusinessOrders: ROOMY,
  acceptOrderCancellation: ROOMY,
};
const BUDGET_KEY = `updateOrderStatuses@campaign:${FBS.campaignId}`;

let market: FakeMarket | undefined;
const engines: Engine[] = [];

afterAll(async () => {
  for (const e of engines) await e.close();
  await market?.close();
  removeTempDirs();
});

/** The FBS campaign's bulk-update budget row, read through the port. */
function budgetOf(store: Store): Promise<BudgetRow | undefined> {
  return store.read((tx) => tx.limiter.get(BUDGET_KEY));
}

async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await sleep(5);
}

describe('the budget at the end of a window', () => {
  it('requests still in flight when a window ends count against the next one: no 420 from the quota', { timeout: 5 * 60_000 }, async () => {
    market = await startMarket({ latencyMs: 1, quotas: QUOTAS });
    const m = market;
    const ids = range(9_500_001, 2 * LIMIT);
    m.seedOrders(seeds(FBS, ids[0]!, ids.length, 'PROCESSING', 'STARTED', Date.now() - 60_000));
    const db = tempDbPath('window-edge.db');

    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let held = 0;
    const stalling = recordingClient(m, {
      hooks: {
        updateOrderStatuses: async (inner, ...args) => {
          held++;
          await gate;
          return inner.updateOrderStatuses(...args);
        },
      },
    });
    const slow = await engineFor(m, db, { client: stalling, owner: 'slow', limits: { resources: QUOTAS } });
    const quick = await engineFor(m, db, { owner: 'quick', limits: { resources: QUOTAS } });
    engines.push(slow, quick);
    await quick.sync();
    expect((await quick.requestChanges(ids.map((orderId) => ({ orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })))).refused).toEqual([]);

    // The slow engine takes the window's whole budget, three batches of 30, which stall on their way.
    const slowFlush = slow.flush({ untilIdle: true, maxWaitMs: 120_000 });
    await until(() => held === LIMIT / 30);
    const budget = await budgetOf(slow.store);
    expect(budget!.remaining).toBe(0);
    const windowEnd = budget!.window_ends_at;
    await until(() => Date.now() > windowEnd);

    // The window those permits came from is over; the quick engine looks at the budget now.
    const quickUse = countBudgetUse(quick.store, 'updateOrderStatuses');
    const quickFlush = quick.flush({ untilIdle: true, maxWaitMs: 120_000 });
    // It either sent a batch (seen by the Market, as nothing else can reach it yet) or parked its rows.
    const quickLeases = async (): Promise<number> => (await quick.pendingChanges(ids.length)).filter((r) => r.lease_owner === 'quick' && r.state === 'queued').length;
    await until(async () => quickUse.consulted > 0 && (requestsTo(m, 'updateOrderStatuses').length > 0 || (await quickLeases()) === 0));
    const sentBeforeTheStalledOnes = requestsTo(m, 'updateOrderStatuses').length;
    openGate();
    const [slowReport, quickReport] = await Promise.all([slowFlush, quickFlush]);

    // The stalled requests and the quick engine's never shared a window beyond the quota.
    const overQuota = quota420s(m);
    const windows = replayQuotaWindows(m.requests, 'updateOrderStatuses', FBS.campaignId, WINDOW_MS, 1);
    console.log(
      `[window-edge] sent before the stalled ones reached the Market: ${sentBeforeTheStalledOnes}; quota 420s: ${overQuota.length}; windows ${windows.map((w) => w.units).join('/')}`,
    );
    expect(overQuota).toEqual([]);
    expect(sentBeforeTheStalledOnes).toBe(0);
    expect(windows.filter((w) => w.units > LIMIT)).toEqual([]);

    // And everything settled, once.
    expect(slowReport.open + quickReport.open).toBe(0);
    expect((await quick.summary()).outbox).toMatchObject({ accepted: ids.length, rejected: 0 });
    expect(m.stats().duplicateApplications).toBe(0);
    expect(ids.filter((id) => m.stats().appliedChanges[id] !== 1)).toEqual([]);
    expect(await checkInvariants(quick.store, ids)).toEqual([]);
  });

  it('a request the Market did not count, failing after its window ended, gives back only what the new window charged for it', async () => {
    const store = SqliteStore.open(tempDbPath('limiter.db'));
    try {
      const limiter = new RateLimiter(store, resolveLimits({ resources: QUOTAS }), { leaseMs: 60_000 });
      const scope = { kind: 'campaign', id: FBS.campaignId } as const;
      const t0 = 1_000_000;
      const take = async (at: number): Promise<Permit> => {
        const got = await limiter.tryAcquire('updateOrderStatuses', scope, 30, () => at);
        if (!got.ok) throw new Error(`no permit at ${at}: ${got.reason}`);
        return got.permit;
      };
      const permits = [await take(t0), await take(t0 + 1), await take(t0 + 2)];
      expect((await budgetOf(store))!.remaining).toBe(0);
      // Past the window's end, all three still in flight: the new window has room for none of them.
      // (A window the limiter opens itself ends with the second that windowMs from then falls in.)
      const later = (await budgetOf(store))!.window_ends_at + 10;
      expect(later).toBeGreaterThan(t0 + WINDOW_MS);
      expect(await limiter.tryAcquire('updateOrderStatuses', scope, 30, () => later)).toMatchObject({ ok: false, reason: 'budget', available: 0 });
      // One of them fails with a 503 (not counted): the new window gets its 30 back, no more, as
      // the other two may still land in it.
      await limiter.release(permits[0]!, { kind: 'notCounted' }, () => later);
      expect((await budgetOf(store))!.remaining).toBe(LIMIT - 60);
    } finally {
      await store.close();
    }
  });

  it('a request abandoned without an answer (the Market may have counted it) still counts against a window that opens while it lingers', async () => {
    const store = SqliteStore.open(tempDbPath('limiter-unfinished.db'));
    try {
      // A window shorter than the linger, as the fault soak's one-second windows are.
      const windowMs = UNFINISHED_LINGER_MS / 2;
      const limiter = new RateLimiter(store, resolveLimits({ resources: { ...QUOTAS, updateOrderStatuses: { limit: LIMIT, windowMs } } }), { leaseMs: 60_000 });
      const scope = { kind: 'campaign', id: FBS.campaignId } as const;
      const t0 = 1_000_000;
      const permits: Permit[] = [];
      for (const at of [t0, t0 + 1, t0 + 2]) {
        const got = await limiter.tryAcquire('updateOrderStatuses', scope, 30, () => at);
        if (!got.ok) throw new Error(`no permit at ${at}: ${got.reason}`);
        permits.push(got.permit);
      }
      // The connection drops after the request went out (dropAfterApply): no answer, maybe counted.
      await limiter.release(permits[0]!, { kind: 'unfinished' }, () => t0 + 10);
      // The window ends while it lingers and the other two are in flight: no room for another 30.
      const ended = (await budgetOf(store))!.window_ends_at;
      expect(ended).toBeLessThan(t0 + 10 + UNFINISHED_LINGER_MS);
      expect(await limiter.tryAcquire('updateOrderStatuses', scope, 30, () => ended)).toMatchObject({ ok: false, reason: 'budget', available: 0 });
      // Once it no longer lingers, its weight no longer counts at the next window: the two in flight still do.
      const after = Math.max(t0 + 10 + UNFINISHED_LINGER_MS, (await budgetOf(store))!.window_ends_at);
      expect(await limiter.tryAcquire('updateOrderStatuses', scope, 30, () => after)).toMatchObject({ ok: true });
      expect((await budgetOf(store))!.remaining).toBe(LIMIT - 60 - 30);
    } finally {
      await store.close();
    }
  });
});
