// Issue #4, the dispatcher up close, over loopback HTTP against the fake Market with real
// SQLite files: how it batches, how it settles unknown outcomes (read back before sending
// again, never blindly), what a crash mid-send leaves and how it is recovered, and the rate
// limiter's bookkeeping that the end-to-end suites rely on.

import { describe, expect, it } from 'vitest';
import { resolveLimits } from '../src/engine/policies.js';
import { RateLimiter, UNFINISHED_LINGER_MS, windowEnd } from '../src/engine/rate-limiter.js';
import { Store } from '../src/store/store.js';
import type { FakeMarket } from '../src/testing/index.js';
import {
  API_KEY,
  DBS,
  FBS,
  assertNoSecret,
  captureConsole,
  engineFor,
  orderIdsOf,
  pastDeliveryDate,
  range,
  requestsTo,
  runChild,
  seeds,
  tempDbPath,
} from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;

const t = useEffectsTest();
const { engines, stores, dbs, errors } = t;
let market: FakeMarket | undefined;

type EngineExtras = Parameters<typeof engineFor>[2];

async function setup(seedOrders: (m: FakeMarket) => void, options: (m: FakeMarket) => EngineExtras = () => ({})) {
  market = await t.start();
  seedOrders(market);
  const db = tempDbPath();
  dbs.push(db);
  const engine = engineFor(market, db, { retry: { initialIntervalMs: 20, maximumIntervalMs: 200 }, ...options(market) });
  engines.push(engine);
  await engine.sync();
  return { market, engine, db };
}

describe('batching', () => {
  it('sends at most 30 orders a call, per campaign; DBS changes with a realDeliveryDate one by one by PUT', async () => {
    const { market: m, engine } = await setup((mk) => {
      mk.seedOrders([...seeds(FBS, 1_001, 65), ...seeds(DBS, 2_001, 31), ...seeds(DBS, 2_101, 3, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED')]);
    });
    const date = pastDeliveryDate();
    engine.requestChanges([
      ...range(1_001, 65).map((orderId) => ({ orderId, ...READY })),
      ...range(2_001, 31).map((orderId) => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' })),
      ...range(2_101, 3).map((orderId) => ({ orderId, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: date })),
    ]);
    const report = await engine.flush();
    expect(report.open).toBe(0);
    const sizes = (campaignId: number) => requestsTo(m, 'updateOrderStatuses', campaignId).map((r) => orderIdsOf(r).length).sort((a, b) => b - a);
    expect(sizes(FBS.campaignId)).toEqual([30, 30, 5]);
    expect(sizes(DBS.campaignId)).toEqual([30, 1]);
    const puts = requestsTo(m, 'updateOrderStatus');
    expect(puts.map((r) => r.path).sort()).toEqual(range(2_101, 3).map((id) => `/v2/campaigns/${DBS.campaignId}/orders/${id}/status`));
    // A bulk call never mixes campaigns: every id in it belongs to the campaign in its path.
    for (const r of requestsTo(m, 'updateOrderStatuses')) {
      for (const id of orderIdsOf(r)) expect(engine.getOrder(id).campaignId).toBe(Number(/campaigns\/(\d+)/.exec(r.path)![1]));
    }
    expect(report.counters).toMatchObject({ ordersSent: 99, accepted: 99, rejected: 0, uncertain: 0 });
  });
});

describe('rounds never cut a batch short', () => {
  it('more changes than one round holds (990 + 700 over two campaigns, interleaved): exactly Σ ceil(orders/30) calls', async () => {
    const { market: m, engine } = await setup((mk) => {
      mk.seedOrders([...seeds(FBS, 100_001, 990), ...seeds(DBS, 200_001, 700)]);
    });
    // Two FBS requests for each DBS one, so a round shared by both campaigns would end mid-batch.
    const fbs = range(100_001, 990);
    const dbs = range(200_001, 700);
    const interleaved: number[] = [];
    while (fbs.length > 0 || dbs.length > 0) interleaved.push(...fbs.splice(0, 2), ...dbs.splice(0, 1));
    engine.requestChanges(interleaved.map((orderId) => ({ orderId, ...READY })));
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses', FBS.campaignId)).toHaveLength(Math.ceil(990 / 30));
    expect(requestsTo(m, 'updateOrderStatuses', DBS.campaignId)).toHaveLength(Math.ceil(700 / 30));
  });

  it('after the abort signal, batches not yet sent stay queued and nothing is left sending', async () => {
    const { market: m, engine } = await setup((mk) => mk.seedOrders(seeds(FBS, 100_001, 300)), (mk) => ({ limits: { parallelPerScope: 1 } }));
    engine.requestChanges(range(100_001, 300).map((orderId) => ({ orderId, ...READY })));
    const controller = new AbortController();
    let calls = 0;
    const run = engine.run({
      signal: controller.signal,
      onProgress: () => {
        calls = requestsTo(m, 'updateOrderStatuses').length;
      },
    });
    // Stop as soon as the first batch is on its way.
    while (requestsTo(m, 'updateOrderStatuses').length === 0) await new Promise((r) => setTimeout(r, 1));
    controller.abort();
    const report = await run;
    const sent = requestsTo(m, 'updateOrderStatuses').length;
    expect(sent).toBeLessThan(10);
    expect(report.outbox.sending).toBe(0);
    expect(report.outbox.queued).toBe(300 - 30 * sent);
    expect(calls).toBeLessThanOrEqual(sent);
  });
});

/** A 300 ms client timeout, so hangs become unknown outcomes quickly. */
const shortTimeout = (m: FakeMarket): EngineExtras => ({ api: { baseUrl: m.url, apiKey: API_KEY, timeoutMs: 300 } });

describe('unknown outcomes are read back before anything is sent again', () => {
  it('applied, then no answer (timeout): read back, accepted, never resent', async () => {
    const { market: m, engine } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, 3)), shortTimeout);
    engine.requestChanges(range(1_001, 3).map((orderId) => ({ orderId, ...READY })));
    m.inject({ kind: 'timeoutAfterApply', endpoint: 'updateOrderStatuses' });
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(1);
    const reads = requestsTo(m, 'getBusinessOrders').filter((r) => (r.body as { orderIds?: number[] }).orderIds);
    expect(reads.map((r) => (r.body as { orderIds: number[] }).orderIds)).toEqual([range(1_001, 3)]);
    for (const id of range(1_001, 3)) {
      const order = engine.getOrder(id);
      expect(order).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
      expect(order.lastOutcome?.kind).toBe('accepted');
      expect(engine.history(id).map((h) => h.event_type)).toEqual(expect.arrayContaining(['DISPATCH.SENT', 'DISPATCH.UNKNOWN', 'MARKET.OBSERVED']));
    }
    expect(report.counters).toMatchObject({ uncertain: 3, readBacks: 3 });
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('not applied, no answer (hang before applying): read back, then sent once more', async () => {
    const { market: m, engine } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, 3)), shortTimeout);
    engine.requestChanges(range(1_001, 3).map((orderId) => ({ orderId, ...READY })));
    m.inject({ kind: 'hang', endpoint: 'updateOrderStatuses' });
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    const sends = requestsTo(m, 'updateOrderStatuses');
    expect(sends.map((r) => r.fault ?? r.status)).toEqual(['hang', 200]);
    for (const id of range(1_001, 3)) {
      expect(engine.getOrder(id)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
      expect(engine.store.outbox.get(id, 1)).toMatchObject({ state: 'accepted', attempts: 2 });
    }
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('gives a change up as rejected after maxSends unknown outcomes the read-backs show not applied', async () => {
    const { market: m, engine } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, 1)), (mk) => ({ ...shortTimeout(mk), maxSends: 2 }));
    engine.requestChange({ orderId: 1_001, ...READY });
    m.inject({ kind: 'drop', endpoint: 'updateOrderStatuses', times: 5 });
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(2);
    const order = engine.getOrder(1_001);
    expect(order).toMatchObject({ substatus: 'STARTED', change: 'idle' });
    expect(order.lastOutcome).toMatchObject({ kind: 'rejected' });
    expect(order.lastOutcome!.reason).toMatch(/unknown after 2 send/);
    expect(m.getOrder(1_001)?.substatus).toBe('STARTED');
  });

  it('a process killed after the Market applied a batch: the orphaned send is read back, not resent', async () => {
    const { market: m, engine, db } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, 5)));
    engine.requestChanges(range(1_001, 5).map((orderId) => ({ orderId, ...READY })));
    await engine.close();
    const child = await runChild({ YM_EFFECTS_CHILD: 'sendKill', YM_DB: db, YM_API_URL: m.url, YM_API_KEY: API_KEY });
    errors.push(child.stdout, child.stderr);
    expect(child.signal).toBe('SIGKILL');
    expect(m.getOrder(1_001)?.substatus).toBe('READY_TO_SHIP'); // the Market has it

    // The rows are still `sending` under the dead process's lease; a later engine (its clock past
    // the lease) takes them as unknown outcomes and reads them back.
    const later = engineFor(m, db, { clock: () => Date.now() + 5 * 60_000 });
    engines.push(later);
    for (const id of range(1_001, 5)) expect(later.getOrder(id).change).toBe('sending');
    const report = await later.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(1);
    for (const id of range(1_001, 5)) {
      expect(later.getOrder(id)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
      expect(later.getOrder(id).lastOutcome?.kind).toBe('accepted');
    }
    expect(m.stats().duplicateApplications).toBe(0);
  });
});

describe('the rate limiter', () => {
  function limiter(parallel = 4) {
    const db = tempDbPath();
    dbs.push(db);
    const store = Store.open(db);
    stores.push(store);
    const limits = resolveLimits({ parallelPerScope: parallel, resources: { updateOrderStatuses: { limit: 100, windowMs: 60_000 } } });
    return { store, limiter: new RateLimiter(store, limits, { leaseMs: 30_000 }) };
  }
  const scope = { kind: 'campaign', id: 1 } as const;

  it('answers arriving out of order never raise the budget within a window', () => {
    const { store, limiter: l } = limiter();
    const t = Date.UTC(2025, 0, 1, 12, 0, 0);
    const until = t + 60_000;
    const a = l.tryAcquire('updateOrderStatuses', scope, 1, t);
    const b = l.tryAcquire('updateOrderStatuses', scope, 1, t);
    if (!a.ok || !b.ok) throw new Error('no permit');
    // B was counted second by the Market (9 left) but answers first, while A is still in flight
    // (so 9 - 1 is assumed); A's older answer then says 10, which must not raise it.
    l.release(b.permit, { kind: 'answered', rateLimit: { limit: 20, remaining: 9, untilMs: until } }, t + 10);
    expect(store.limiter.get('updateOrderStatuses@campaign:1')?.remaining).toBe(8);
    l.release(a.permit, { kind: 'answered', rateLimit: { limit: 20, remaining: 10, untilMs: until } }, t + 20);
    expect(store.limiter.get('updateOrderStatuses@campaign:1')?.remaining).toBe(8);
    // A header naming a later window starts it afresh.
    const c = l.tryAcquire('updateOrderStatuses', scope, 1, until + 1_500);
    if (!c.ok) throw new Error('no permit');
    l.release(c.permit, { kind: 'answered', rateLimit: { limit: 20, remaining: 19, untilMs: until + 60_000 } }, until + 1_600);
    expect(store.limiter.get('updateOrderStatuses@campaign:1')?.remaining).toBe(19);
  });

  it('reads a whole-second -Until as the end of that second', () => {
    const whole = Date.UTC(2025, 0, 1, 12, 0, 5);
    expect(windowEnd(whole)).toBe(whole + 999);
    expect(windowEnd(whole + 250)).toBe(whole + 250);
    const { store, limiter: l } = limiter();
    const got = l.tryAcquire('updateOrderStatuses', scope, 30, whole - 10_000);
    if (!got.ok) throw new Error('no permit');
    l.release(got.permit, { kind: 'answered', rateLimit: { limit: 50, remaining: 20, untilMs: whole } }, whole - 9_000);
    expect(store.limiter.get('updateOrderStatuses@campaign:1')).toMatchObject({ capacity: 50, remaining: 20, window_ends_at: whole + 999 });
    // Still the old window at the named second: no budget for 30 more...
    expect(l.tryAcquire('updateOrderStatuses', scope, 30, whole + 500)).toMatchObject({ ok: false, reason: 'budget', available: 20 });
    // ...and a fresh one once that second has passed.
    expect(l.tryAcquire('updateOrderStatuses', scope, 30, whole + 1_000).ok).toBe(true);
  });

  it('a request abandoned without an answer keeps its weight spent and its slot taken a moment longer', () => {
    const { store, limiter: l } = limiter(2);
    const t = Date.UTC(2025, 0, 1);
    const a = l.tryAcquire('updateOrderStatuses', scope, 10, t);
    const b = l.tryAcquire('updateOrderStatuses', scope, 10, t);
    if (!a.ok || !b.ok) throw new Error('no permit');
    expect(l.tryAcquire('updateOrderStatuses', scope, 10, t)).toMatchObject({ ok: false, reason: 'parallel' });
    l.release(a.permit, { kind: 'unfinished' }, t + 300);
    expect(store.limiter.get('updateOrderStatuses@campaign:1')?.remaining).toBe(80); // not given back
    expect(l.tryAcquire('updateOrderStatuses', scope, 10, t + 300 + UNFINISHED_LINGER_MS - 1)).toMatchObject({ ok: false, reason: 'parallel' });
    expect(l.tryAcquire('updateOrderStatuses', scope, 10, t + 300 + UNFINISHED_LINGER_MS).ok).toBe(true);
    // A 5xx is not counted by the Market: its weight comes back at once, and so does its slot.
    l.release(b.permit, { kind: 'notCounted' }, t + 400);
    expect(store.limiter.get('updateOrderStatuses@campaign:1')?.remaining).toBe(80 - 10 + 10);
  });
});

describe('the leak check itself', () => {
  it('finds a key planted in a row, in an error, in console output', () => {
    const db = tempDbPath();
    const store = Store.open(db);
    stores.push(store);
    expect(() => assertNoSecret({ dbPaths: [db] })).not.toThrow();
    store.write(() => store.cursors.set('planted', `{"token":"${API_KEY}"}`, 1));
    expect(() => assertNoSecret({ dbPaths: [db] })).toThrow(/tables of .*bytes of/);
    store.write(() => store.cursors.set('planted', '{}', 2));
    expect(() => assertNoSecret({ errors: [new Error('boom', { cause: { headers: { 'api-key': API_KEY } } })] })).toThrow(/error #0/);
    const capture = captureConsole({ passThrough: false }); // record it, but do not print the key
    console.log('header', { 'api-key': API_KEY });
    capture.restore();
    expect(() => assertNoSecret({ console: capture })).toThrow(/console output/);
  });
});
