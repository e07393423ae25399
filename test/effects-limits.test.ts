// Issue #4, limits: budgets, not errors. A fake Market with a scaled-down quota on
// updateOrderStatuses (orders per short window) and honest X-RateLimit headers; the dispatcher
// must wait for the window instead of collecting 420s, spend the budget fully (a partial batch
// when fewer than 30 orders are left in the window), learn the real limit from the headers when
// configured with a wrong one, share one budget between processes on one database file, and
// wait out a 420 until its -Until without using up a send attempt.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { windowEnd } from '../src/engine/rate-limiter.js';
import type { MarketRateLimitedError } from '../src/market/errors.js';
import type { FakeMarket } from '../src/testing/index.js';
import {
  API_KEY,
  FBS,
  countBudgetUse,
  engineFor,
  waitUntil,
  orderIdsOf,
  overriding,
  parallel420s,
  quota420s,
  quotaWindows,
  range,
  recordingClient,
  requestsTo,
  seeds,
  spyOnStore,
  tempDbPath,
  type BudgetUse,
} from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

const QUOTA = 50;
const WINDOW_MS = 1_000;
const HOUR = 3_600_000;
const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
/**
 * For the shared-budget tests: batches of 10 and one request in flight per engine make a round
 * lease 10 x 1 x 8 = 80 rows, so the first engine cannot take all 150 and both compete for the
 * one budget.
 */
const SHARED_LIMITS = { resources: { updateOrderStatuses: { limit: QUOTA, windowMs: WINDOW_MS } }, ordersPerStatusUpdate: 10, parallelPerScope: 1 };

const t = useEffectsTest();
const { engines, dbs, errors } = t;
let market: FakeMarket | undefined;

async function setup(count: number, engineLimit: { limit: number; windowMs: number }, extra: { honestHeaders?: boolean } = {}) {
  market = await t.start({ quotas: { updateOrderStatuses: { limit: QUOTA, windowMs: WINDOW_MS } }, ...extra });
  const ids = range(1_000, count);
  market.seedOrders(seeds(FBS, ids[0]!, count));
  const db = tempDbPath();
  dbs.push(db);
  const engine = await engineFor(market, db, { limits: { resources: { updateOrderStatuses: engineLimit } } });
  engines.push(engine);
  await engine.sync();
  const queued = await engine.requestChanges(ids.map((orderId) => ({ orderId, ...READY })));
  expect(queued.queued).toHaveLength(count);
  return { market, engine, ids, db };
}

function sentOnce(m: FakeMarket, ids: readonly number[]): void {
  const sent = requestsTo(m, 'updateOrderStatuses').filter((r) => r.status === 200).flatMap(orderIdsOf);
  expect([...sent].sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
  expect(m.stats().duplicateApplications).toBe(0);
}

describe('a scaled-down quota: 50 orders per 1 s window', () => {
  it('waits for the window instead of hitting 420, spending every window fully with partial batches', async () => {
    const { market: m, engine, ids } = await setup(130, { limit: QUOTA, windowMs: WINDOW_MS });
    const started = Date.now();
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 20_000 });
    const took = Date.now() - started;
    expect(report.open).toBe(0);
    expect(m.stats().rateLimited).toBe(0);
    expect(report.counters.rateLimited).toBe(0);
    sentOnce(m, ids);

    const windows = quotaWindows(m, 'updateOrderStatuses', FBS.campaignId, WINDOW_MS);
    // Never more than the quota in a window; every window but the last one used to the full.
    for (const w of windows) expect(w.units).toBeLessThanOrEqual(QUOTA);
    expect(windows.slice(0, -1).map((w) => w.units)).toEqual(Array(windows.length - 1).fill(QUOTA));
    expect(windows).toHaveLength(Math.ceil(130 / QUOTA));
    // 50 is not a multiple of 30: each window ends with a partial batch.
    const sizes = requestsTo(m, 'updateOrderStatuses').map((r) => orderIdsOf(r).length);
    expect(sizes.some((n) => n < 30 && n > 0)).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(30);
    // It waited for the windows: three windows cannot fit in less than two window lengths.
    expect(took).toBeGreaterThanOrEqual(2 * WINDOW_MS);
    console.log(`[limits] 130 orders, quota ${QUOTA}/${WINDOW_MS} ms: ${sizes.length} calls (sizes ${sizes.join(',')}), ${windows.length} windows, ${took} ms, 0 x 420`);
  });

  it('corrects a wrong, larger configured limit from the headers: 420s only in the first, blind burst', async () => {
    const { market: m, engine, ids } = await setup(130, { limit: 10_000, windowMs: HOUR });
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(report.open).toBe(0);
    sentOnce(m, ids);

    const calls = requestsTo(m, 'updateOrderStatuses');
    const limited = quota420s(m);
    // Before any answer the engine believes 10 000 orders: its first round sends four batches of
    // 30 at once, 120 orders, more than the Market's windows hold even if the four straddle two
    // of them (2 x 50), so at least one is refused. After the first answer, never again.
    const firstRound = new Set(calls.slice(0, 4));
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited.every((r) => firstRound.has(r))).toBe(true);
    expect(limited.length).toBeLessThanOrEqual(3);
    expect(calls.slice(4).filter((r) => r.status === 420)).toEqual([]);
    // The headers replaced the configured limit with the Market's.
    const budget = (await engine.store.read((tx) => tx.limiter.all())).find((b) => b.resource_key === `updateOrderStatuses@campaign:${FBS.campaignId}`);
    expect(budget?.capacity).toBe(QUOTA);
    for (const w of quotaWindows(m, 'updateOrderStatuses', FBS.campaignId, WINDOW_MS)) expect(w.units).toBeLessThanOrEqual(QUOTA);
    // The refused batches were deferred, not counted as sends: every change was accepted.
    expect(report.counters.rateLimited).toBe(limited.length);
    expect((await engine.summary()).outbox.accepted).toBe(130);
    console.log(`[limits] configured 10000/h vs real ${QUOTA}/${WINDOW_MS} ms: ${limited.length} x 420 in the first burst, ${calls.length - 4} later calls without one`);
  });

  it('420 with -Until: waits until then and does not use up a send attempt', async () => {
    market = await t.start({ quotas: { updateOrderStatuses: { limit: 1_000, windowMs: 2_000 } } });
    market.seedOrders(seeds(FBS, 7_000, 3));
    const db = tempDbPath();
    dbs.push(db);
    const client = recordingClient(market);
    const engine = await engineFor(market, db, { client, maxSends: 1 });
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges([7_000, 7_001, 7_002].map((orderId) => ({ orderId, ...READY })));
    market.inject({ kind: 'status420', endpoint: 'updateOrderStatuses' });

    // One pass: the batch is sent, refused with 420, deferred.
    const first = await engine.flush();
    expect(first.counters.rateLimited).toBe(1);
    const error = client.errors()[0] as MarketRateLimitedError;
    errors.push(...client.errors());
    expect(error).toMatchObject({ code: 'MARKET_RATE_LIMITED', httpStatus: 420, parallel: false });
    const until = error.untilMs!;
    expect(until).toBeGreaterThan(Date.now() - 2_000);
    for (const id of [7_000, 7_001, 7_002]) {
      const order = await engine.getOrder(id);
      expect(order.change).toBe('queued');
      // The 420 did not count: no send is recorded (maxSends is 1, so a counted one would be the last).
      expect(order.pending?.sends).toBe(0);
      expect(order.pending?.notBefore).toBe(windowEnd(until));
    }

    const report = await engine.flush({ untilIdle: true, maxWaitMs: 10_000 });
    expect(report.open).toBe(0);
    const calls = requestsTo(market, 'updateOrderStatuses');
    expect(calls.map((r) => r.status)).toEqual([420, 200]);
    // Not before -Until (the header's whole second), and not much after its end.
    expect(calls[1]!.receivedAt).toBeGreaterThanOrEqual(until);
    expect(calls[1]!.receivedAt).toBeLessThanOrEqual(windowEnd(until) + 1_100);
    for (const id of [7_000, 7_001, 7_002]) expect(await engine.getOrder(id)).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP', change: 'idle' });
    expect(market.stats().duplicateApplications).toBe(0);
    console.log(`[limits] 420 until ${new Date(until).toISOString()}: resent ${calls[1]!.receivedAt - until} ms after -Until, pending.sends stayed 0`);
  });
});

describe('one budget shared through the database file', () => {
  it('two engine instances on one file never exceed the quota together', async () => {
    const { market: m, engine: queuedBy, ids, db } = await setup(150, { limit: QUOTA, windowMs: WINDOW_MS });
    const engine = await engineFor(m, db, { limits: SHARED_LIMITS, owner: 'first' });
    const second = await engineFor(m, db, { limits: SHARED_LIMITS, owner: 'second' });
    engines.push(engine);
    engines.push(second);
    const uses = [countBudgetUse(engine.store, 'updateOrderStatuses'), countBudgetUse(second.store, 'updateOrderStatuses')];
    const [a, b] = await Promise.all([
      engine.flush({ untilIdle: true, maxWaitMs: 20_000 }),
      second.flush({ untilIdle: true, maxWaitMs: 20_000 }),
    ]);
    expect(a.open + b.open).toBe(0);
    expect(m.stats().rateLimited).toBe(0);
    sentOnce(m, ids);
    const windows = quotaWindows(m, 'updateOrderStatuses', FBS.campaignId, WINDOW_MS);
    for (const w of windows) expect(w.units).toBeLessThanOrEqual(QUOTA);
    expect(a.counters.ordersSent + b.counters.ordersSent).toBe(150);
    // Both asked the one budget for permits (who wins a window is a race, not a rule); every
    // request sent was covered by a permit from it.
    expect(uses.map((u) => u.consulted > 0)).toEqual([true, true]);
    expect(uses[0]!.acquired + uses[1]!.acquired).toBe(requestsTo(m, 'updateOrderStatuses').length);
    expect((await queuedBy.summary()).outbox.accepted).toBe(150);
    expect(Math.max(...Object.values(m.stats().maxInFlight))).toBeLessThanOrEqual(4);
    console.log(`[limits] two engines, one file: ${a.counters.ordersSent} + ${b.counters.ordersSent} orders, permits asked ${uses.map((u) => u.consulted).join(' + ')}, windows ${windows.map((w) => w.units).join('/')}`);
  });

  it('two processes on one file never exceed the quota together', async () => {
    const { market: m, engine, ids, db } = await setup(150, { limit: QUOTA, windowMs: WINDOW_MS });
    await engine.close();
    const script = fileURLToPath(new URL('./helpers/effects-fixtures.ts', import.meta.url));
    const children = [0, 1].map(() => {
      const proc = spawn(process.execPath, ['--import', 'tsx', script], {
        env: {
          ...process.env,
          YM_EFFECTS_CHILD: '1',
          YM_DB: db,
          YM_API_URL: m.url,
          YM_API_KEY: API_KEY,
          YM_MAX_WAIT_MS: '20000',
          YM_LIMITS: JSON.stringify(SHARED_LIMITS),
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let onReady: () => void = () => {};
      const ready = new Promise<void>((resolve) => (onReady = resolve));
      proc.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('ready\n')) onReady();
      });
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        proc.on('close', (code) => {
          onReady();
          resolve({ code, stdout, stderr });
        }),
      );
      return { proc, ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.proc.stdin.end('go\n');
    const results = await Promise.all(children.map((c) => c.done));
    for (const r of results) {
      errors.push(r.stdout, r.stderr);
      expect(r.stderr.replace(/npm warn[^\n]*\n?/g, '')).toBe('');
      expect(r.code).toBe(0);
    }
    if (process.env.DEBUG_LIMITS) {
      for (const r of results) console.log('CHILD', r.code, r.stdout, r.stderr);
      for (const q of m.requests) console.log('REQ', q.endpoint, q.receivedAt % 100000, q.answeredAt === undefined ? '-' : q.answeredAt % 100000, q.status, orderIdsOf(q).length, q.fault);
    }
    const reports = results.map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { pid: number; counters: { ordersSent: number }; open: number; budget: BudgetUse });
    expect(reports.map((r) => r.open)).toEqual([0, 0]);
    expect(reports[0]!.pid).not.toBe(reports[1]!.pid);
    expect(m.stats().rateLimited).toBe(0);
    sentOnce(m, ids);
    const windows = quotaWindows(m, 'updateOrderStatuses', FBS.campaignId, WINDOW_MS);
    for (const w of windows) expect(w.units).toBeLessThanOrEqual(QUOTA);
    expect(reports[0]!.counters.ordersSent + reports[1]!.counters.ordersSent).toBe(150);
    expect(reports.map((r) => r.budget.consulted > 0)).toEqual([true, true]);
    expect(reports[0]!.budget.acquired + reports[1]!.budget.acquired).toBe(requestsTo(m, 'updateOrderStatuses').length);
    console.log(`[limits] two processes, one file: ${reports.map((r) => r.counters.ordersSent).join(' + ')} orders, permits asked ${reports.map((r) => r.budget.consulted).join(' + ')}, windows ${windows.map((w) => w.units).join('/')}, ${parallel420s(m).length} parallel 420s`);
  });
});

describe('at most 4 requests in flight per campaign', () => {
  it('a slow Market holding the first four: no fifth is sent, by this engine or another on the same file, until one answers', async () => {
    // The fake would take more at once: the cap under test is the engine's (its default).
    market = await t.start({ parallelLimit: 8 });
    const m = market;
    const ids = range(1_000, 400);
    m.seedOrders(seeds(FBS, ids[0]!, ids.length));
    const db = tempDbPath();
    dbs.push(db);
    // Batches of 10, so the first engine's round (10 x 4 x 8 = 320 rows) leaves 80 for the second.
    const limits = { ordersPerStatusUpdate: 10 };
    const first = await engineFor(m, db, { limits, owner: 'first' });
    const second = await engineFor(m, db, { limits, owner: 'second' });
    engines.push(first, second);
    await first.sync();
    await first.requestChanges(ids.map((orderId) => ({ orderId, ...READY })));
    m.hold((r) => r.endpoint === 'updateOrderStatuses');

    const flushes = [first.flush({ untilIdle: true, maxWaitMs: 60_000 })];
    await waitUntil(() => m.held().length >= 4, 'four requests are in flight');
    // A round's sends all start at once, with no answer awaited in between: had a fifth been
    // allowed, it would have been handed to the client by now.
    expect((await first.stats()).counters.calls.updateOrderStatuses).toBe(4);
    expect(m.held()).toHaveLength(4);

    // The second engine takes the other rows and asks the shared limiter for a slot, again and again.
    let slotChecks = 0;
    spyOnStore(second.store, (tx) =>
      overriding(tx, {
        limiter: overriding(tx.limiter, {
          inFlight: (scope) => {
            if (scope === `campaign:${FBS.campaignId}`) slotChecks++;
            return tx.limiter.inFlight(scope);
          },
        }),
      }),
    );
    flushes.push(second.flush({ untilIdle: true, maxWaitMs: 60_000 }));
    await waitUntil(() => slotChecks >= 5 || m.held().length > 4, 'the second engine has asked for a slot five times');
    expect(m.held()).toHaveLength(4);
    expect((await second.stats()).counters.calls.updateOrderStatuses ?? 0).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(4);

    m.release();
    const reports = await Promise.all(flushes);
    expect(reports.map((r) => r.open)).toEqual([0, 0]);
    sentOnce(m, ids);
    expect(m.stats().maxInFlight[`campaign:${FBS.campaignId}`]).toBe(4);
    expect(m.stats().rateLimited).toBe(0);
    expect(reports[0]!.counters.ordersSent + reports[1]!.counters.ordersSent).toBe(400);
    console.log(`[limits] held 4 in flight: ${slotChecks} slot checks by the second engine, none sent; then ${requestsTo(m, 'updateOrderStatuses').length} calls, at most 4 at once`);
  });
});
