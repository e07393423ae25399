// Issue #4, the dispatcher up close, over loopback HTTP against the fake Market with real
// SQLite files: how it batches, how it settles unknown outcomes (read back before sending
// again, never blindly), what a crash mid-send leaves and how it is recovered, and the rate
// limiter's bookkeeping that the end-to-end suites rely on.

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CounterBook } from '../src/engine/counter-book.js';
import { Dispatcher } from '../src/engine/dispatcher.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { InvalidOptionError, UnsafeOptionError } from '../src/engine/errors.js';
import { MeteredMarket } from '../src/engine/metered-market.js';
import { resolveLimits } from '../src/engine/policies.js';
import { RateLimiter, UNFINISHED_LINGER_MS, windowEnd } from '../src/engine/rate-limiter.js';
import { createMarketClient } from '../src/market/client.js';
import type { OutboxRow, OutboxState } from '../src/store/outbox.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/port.js';
import type { FakeMarket } from '../src/testing/index.js';
import {
  API_KEY,
  DBS,
  FBS,
  LAAS,
  assertNoSecret,
  captureConsole,
  countBudgetUse,
  holdsKeyBytes,
  engineFor,
  orderIdsOf,
  overriding,
  pastDeliveryDate,
  range,
  requestsTo,
  runChild,
  seeds,
  spyOnStore,
  tempDbPath,
  waitUntil,
} from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';
import { thrownYmError } from './helpers/engine-fixtures.js';

const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
/** DBS shops hand the order to delivery themselves; READY_TO_SHIP is FBS's and Express's. */
const TO_DELIVERY = { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' } as const;

const t = useEffectsTest();
const { engines, stores, dbs, errors } = t;
let market: FakeMarket | undefined;

type EngineExtras = Parameters<typeof engineFor>[2];

/** The outbox row of the order's request, read through the port. */
function outboxRow(engine: Engine, orderId: number, requestNo: number): Promise<OutboxRow | undefined> {
  return engine.store.read((tx) => tx.outbox.get(orderId, requestNo));
}

async function setup(seedOrders: (m: FakeMarket) => void, options: (m: FakeMarket) => EngineExtras = () => ({})) {
  market = await t.start();
  seedOrders(market);
  const db = tempDbPath();
  dbs.push(db);
  const engine = await engineFor(market, db, { retry: { initialIntervalMs: 20, maximumIntervalMs: 200 }, ...options(market) });
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
    await engine.requestChanges([
      ...range(1_001, 65).map((orderId) => ({ orderId, ...READY })),
      ...range(2_001, 31).map((orderId) => ({ orderId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }) as const),
      ...range(2_101, 3).map((orderId) => ({ orderId, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: date }) as const),
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
      for (const id of orderIdsOf(r)) expect((await engine.getOrder(id)).campaignId).toBe(Number(/campaigns\/(\d+)/.exec(r.path)![1]));
    }
    expect(report.counters).toMatchObject({ ordersSent: 99, accepted: 99, rejected: 0, uncertain: 0 });
  });
});

describe('rounds never cut a batch short', () => {
  it('a full round that ends in part of a batch gives that part back: single PUTs in the round do not cost a bulk call', async () => {
    // 3 a call, 1 in flight: a round leases 3 × 1 × 8 = 24 rows. The first due is a dated
    // delivery (a single PUT), so the round holds 23 bulk rows: 7 batches and 2 over.
    const { market: m, engine } = await setup(
      (mk) => mk.seedOrders([...seeds(DBS, 2_001, 1, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED'), ...seeds(DBS, 2_101, 30)]),
      () => ({ limits: { ordersPerStatusUpdate: 3, parallelPerScope: 1 } }),
    );
    await engine.requestChange({ orderId: 2_001, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: pastDeliveryDate() });
    await engine.requestChanges(range(2_101, 30).map((orderId) => ({ orderId, ...TO_DELIVERY })));
    const report = await engine.flush({ untilIdle: true });
    expect(report.open).toBe(0);
    const sizes = requestsTo(m, 'updateOrderStatuses', DBS.campaignId).map((r) => orderIdsOf(r).length);
    expect(sizes).toEqual(Array.from({ length: 10 }, () => 3));
    expect(requestsTo(m, 'updateOrderStatus')).toHaveLength(1);
  });

  it('more changes than one round holds (990 + 700 over two campaigns, interleaved): exactly Σ ceil(orders/30) calls', async () => {
    const { market: m, engine } = await setup((mk) => {
      mk.seedOrders([...seeds(FBS, 100_001, 990), ...seeds(DBS, 200_001, 700)]);
    });
    // Two FBS requests for each DBS one, so a round shared by both campaigns would end mid-batch.
    const fbs = range(100_001, 990);
    const dbs = range(200_001, 700);
    const interleaved: number[] = [];
    while (fbs.length > 0 || dbs.length > 0) interleaved.push(...fbs.splice(0, 2), ...dbs.splice(0, 1));
    const dbsIds = new Set(range(200_001, 700));
    const queued = await engine.requestChanges(interleaved.map((orderId) => ({ orderId, ...(dbsIds.has(orderId) ? TO_DELIVERY : READY) })));
    expect(queued.refused).toEqual([]);
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses', FBS.campaignId)).toHaveLength(Math.ceil(990 / 30));
    expect(requestsTo(m, 'updateOrderStatuses', DBS.campaignId)).toHaveLength(Math.ceil(700 / 30));
  });

  it('after the abort signal, batches not yet sent stay queued and nothing is left sending', async () => {
    const { market: m, engine } = await setup((mk) => mk.seedOrders(seeds(FBS, 100_001, 300)), (mk) => ({ limits: { parallelPerScope: 1 } }));
    await engine.requestChanges(range(100_001, 300).map((orderId) => ({ orderId, ...READY })));
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
    await engine.requestChanges(range(1_001, 3).map((orderId) => ({ orderId, ...READY })));
    m.inject({ kind: 'timeoutAfterApply', endpoint: 'updateOrderStatuses' });
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(1);
    const reads = requestsTo(m, 'getBusinessOrders').filter((r) => (r.body as { orderIds?: number[] }).orderIds);
    expect(reads.map((r) => (r.body as { orderIds: number[] }).orderIds)).toEqual([range(1_001, 3)]);
    for (const id of range(1_001, 3)) {
      const order = await engine.getOrder(id);
      expect(order).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
      expect(order.lastOutcome?.kind).toBe('accepted');
      expect((await engine.history(id)).map((h) => h.event_type)).toEqual(expect.arrayContaining(['DISPATCH.SENT', 'DISPATCH.UNKNOWN', 'MARKET.OBSERVED']));
    }
    expect(report.counters).toMatchObject({ uncertain: 3, readBacks: 3 });
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('not applied, no answer (hang before applying): read back, then sent once more', async () => {
    const { market: m, engine } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, 3)), shortTimeout);
    await engine.requestChanges(range(1_001, 3).map((orderId) => ({ orderId, ...READY })));
    m.inject({ kind: 'hang', endpoint: 'updateOrderStatuses' });
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    const sends = requestsTo(m, 'updateOrderStatuses');
    expect(sends.map((r) => r.fault ?? r.status)).toEqual(['hang', 200]);
    for (const id of range(1_001, 3)) {
      expect(await engine.getOrder(id)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
      expect(await outboxRow(engine, id, 1)).toMatchObject({ state: 'accepted', attempts: 2 });
    }
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('gives a change up as rejected after maxSends unknown outcomes the read-backs show not applied', async () => {
    const { market: m, engine } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, 1)), (mk) => ({ ...shortTimeout(mk), maxSends: 2 }));
    await engine.requestChange({ orderId: 1_001, ...READY });
    m.inject({ kind: 'drop', endpoint: 'updateOrderStatuses', times: 5 });
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(2);
    const order = await engine.getOrder(1_001);
    expect(order).toMatchObject({ substatus: 'STARTED', change: 'idle' });
    expect(order.lastOutcome).toMatchObject({ kind: 'rejected' });
    expect(order.lastOutcome!.reason).toMatch(/unknown after 2 send/);
    expect(m.getOrder(1_001)?.substatus).toBe('STARTED');
  });

  it('a process killed after the Market applied a batch: the orphaned send is read back, not resent', async () => {
    const { market: m, engine, db } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, 5)));
    await engine.requestChanges(range(1_001, 5).map((orderId) => ({ orderId, ...READY })));
    await engine.close();
    const child = await runChild({ YM_EFFECTS_CHILD: 'sendKill', YM_DB: db, YM_API_URL: m.url, YM_API_KEY: API_KEY });
    errors.push(child.stdout, child.stderr);
    expect(child.signal).toBe('SIGKILL');
    expect(m.getOrder(1_001)?.substatus).toBe('READY_TO_SHIP'); // the Market has it

    // The rows are still `sending` under the dead process's lease; a later engine (its clock past
    // the lease) takes them as unknown outcomes and reads them back.
    const later = await engineFor(m, db, { clock: () => Date.now() + 5 * 60_000 });
    engines.push(later);
    for (const id of range(1_001, 5)) expect((await later.getOrder(id)).change).toBe('sending');
    const report = await later.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'updateOrderStatuses')).toHaveLength(1);
    for (const id of range(1_001, 5)) {
      expect(await later.getOrder(id)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
      expect((await later.getOrder(id)).lastOutcome?.kind).toBe('accepted');
    }
    expect(m.stats().duplicateApplications).toBe(0);
  });
});

/** Read-backs the fake was asked for (a sync reads without orderIds). */
const readBacks = (m: FakeMarket) => requestsTo(m, 'getBusinessOrders').filter((r) => (r.body as { orderIds?: number[] }).orderIds !== undefined);

describe('read-backs back off on their own count', () => {
  it('against a Market answering 500 to every read, each read-back waits the retry backoff for its failures in a row', async () => {
    let now = Date.now();
    const { market: m, engine } = await setup(
      (mk) => mk.seedOrders(seeds(FBS, 1_001, 1)),
      () => ({ clock: () => now, random: () => 0.5, retry: { initialIntervalMs: 1_000, backoffCoefficient: 2, maximumIntervalMs: 8_000 } }),
    );
    const row = async () => (await outboxRow(engine, 1_001, 1))!;
    await engine.requestChange({ orderId: 1_001, ...READY });
    m.inject({ kind: 'status500', endpoint: 'updateOrderStatuses' });
    m.inject({ kind: 'status500', endpoint: 'getBusinessOrders', times: Infinity });

    await engine.flush();
    // The 500 may have applied: read back after the backoff for the first send.
    expect(await row()).toMatchObject({ state: 'uncertain', attempts: 1, read_failures: 0, next_attempt_at: now + 500 });

    // Full jitter with random() = 0.5: half of min(8 000, 1 000 x 2^(n-1)) after the n-th failed read.
    const expected = [500, 1_000, 2_000, 4_000, 4_000, 4_000];
    const waits: number[] = [];
    for (const [i] of expected.entries()) {
      const due = (await row()).next_attempt_at;
      now = due - 1;
      await engine.flush();
      expect(readBacks(m), 'not read before it is due').toHaveLength(i);
      now = due;
      await engine.flush();
      expect(readBacks(m)).toHaveLength(i + 1);
      expect(await row()).toMatchObject({ state: 'uncertain', attempts: 1, read_failures: i + 1 });
      waits.push((await row()).next_attempt_at - now);
    }
    expect(waits).toEqual(expected);
    expect((await engine.getOrder(1_001)).change).toBe('uncertain');

    // The Market recovers: the read shows the change did not apply, so it is sent once more, and
    // the resend starts the count afresh.
    m.clearFaults();
    now = (await row()).next_attempt_at;
    await engine.flush();
    expect(requestsTo(m, 'updateOrderStatuses').map((r) => r.status)).toEqual([500, 200]);
    expect(await row()).toMatchObject({ state: 'accepted', attempts: 2, read_failures: 0 });
    expect(m.stats().duplicateApplications).toBe(0);
  });
});

describe('outbox leases: a change is sent by one engine only', () => {
  /** The engines' request timeout (real time: held requests must not time out) and their lease, 3 x that. */
  const TIMEOUT_MS = 60_000;
  const LEASE_MS = 3 * TIMEOUT_MS;
  /** How long each of A's requests takes on the shared clock: within the timeout. */
  const REQUEST_MS = 50_000;
  const IN_FLIGHT = 4;

  /**
   * Two engines on one file and one clock. A leases all `batches` batches of 30 for one round and
   * sends them four at a time, each four taking REQUEST_MS, so the round outlasts the lease it
   * started with. Returns once the clock is past that lease, with A's fourth four held at the Market.
   */
  async function roundPastItsLease(batches: number) {
    const clock = { now: Date.now() };
    const api = (mk: FakeMarket) => ({ baseUrl: mk.url, apiKey: API_KEY, timeoutMs: TIMEOUT_MS });
    const count = 30 * batches;
    const { market: m, engine: a, db } = await setup((mk) => mk.seedOrders(seeds(FBS, 1_001, count)), (mk) => ({ owner: 'A', clock: () => clock.now, api: api(mk) }));
    const b = await engineFor(m, db, { owner: 'B', clock: () => clock.now, api: api(m) });
    engines.push(b);
    await a.requestChanges(range(1_001, count).map((orderId) => ({ orderId, ...READY })));
    m.hold((r) => r.endpoint === 'updateOrderStatuses');
    const leasedAt = clock.now;
    const flushA = a.flush();
    for (let step = 1; step <= 4; step++) {
      await waitUntil(() => m.held().length === IN_FLIGHT, `A's requests ${4 * step - 3}..${4 * step} are at the Market`);
      clock.now += REQUEST_MS;
      if (step < 4) m.release({ keepHolding: true });
    }
    expect(clock.now - leasedAt).toBeGreaterThan(LEASE_MS);
    return { m, a, b, count, flushA };
  }

  /** Every order id of every status update, held ones included. */
  const sentIds = (m: FakeMarket) => requestsTo(m, 'updateOrderStatuses').flatMap(orderIdsOf).sort((x, y) => x - y);
  const bulkCalls = async (e: Engine) => (await e.stats()).counters.calls.updateOrderStatuses ?? 0;

  it('rows of a round that outlasted its lease, sent by another engine meanwhile, are not sent again', async () => {
    const { m, a, b, count, flushA } = await roundPastItsLease(18);
    // B finds A's last two batches queued under a lease that has run out and takes them; it
    // waits for a free request slot.
    const flushB = b.flush();
    const takenByB = async () => (await b.store.read((tx) => tx.outbox.open(10_000))).filter((r) => r.lease_owner === 'B').length;
    await waitUntil(async () => (await takenByB()) === 60, 'B has taken the rows');
    // A's four answers arrive; A's round goes on to the same two batches, and both engines get a
    // request slot for each (a permit comes right before a batch is marked sent, or found taken).
    const permits = [countBudgetUse(a.store, 'updateOrderStatuses'), countBudgetUse(b.store, 'updateOrderStatuses')];
    const callsBefore = (await bulkCalls(a)) + (await bulkCalls(b));
    m.release({ keepHolding: true });
    await waitUntil(() => permits.every((p) => p.acquired === 2), 'each engine has tried both batches');
    const sent = (await bulkCalls(a)) + (await bulkCalls(b)) - callsBefore;
    await waitUntil(() => m.held().length === sent, 'the batches sent are at the Market');
    expect(sentIds(m), 'both engines sent the same rows').toEqual(range(1_001, count));
    expect(sent).toBe(2);
    m.release();
    await Promise.all([flushA, flushB]);
    expect(sentIds(m)).toEqual(range(1_001, count));
    for (const id of range(1_001, count)) expect(await a.getOrder(id)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
    expect(m.stats().duplicateApplications).toBe(0);
  });

  it('a send late in a round keeps a lease for its own request: another engine does not take it as orphaned', async () => {
    const { m, a, b, count, flushA } = await roundPastItsLease(16);
    // A's last four requests are in flight, sent REQUEST_MS ago; B's flush first looks for sends a
    // dead process orphaned, then leases uncertain rows to read back: once it asks for those, it
    // has judged A's sends, and they must still be A's.
    const leasedByB: OutboxState[] = [];
    spyOnStore(b.store, (tx) =>
      overriding(tx, {
        outbox: overriding(tx.outbox, {
          lease: (state, ...rest) => {
            leasedByB.push(state);
            return tx.outbox.lease(state, ...rest);
          },
        }),
      }),
    );
    const flushB = b.flush();
    await waitUntil(() => leasedByB.length > 0, 'B has looked for orphaned sends');
    expect(await a.summary()).toMatchObject({ outbox: { sending: 120, uncertain: 0, queued: 0 } });
    m.release();
    expect((await flushB).counters).toMatchObject({ uncertain: 0, readBacks: 0, ordersSent: 0 });
    expect((await flushA).open).toBe(0);
    expect(sentIds(m)).toEqual(range(1_001, count));
    expect(m.stats().duplicateApplications).toBe(0);
  });
});


/** The order's machine context as stored, read through the port. */
async function storedContext(engine: Engine, orderId: number): Promise<{ asyncSettleMs: number; maxSends: number }> {
  const row = await engine.store.read((tx) => tx.orders.get(orderId));
  return (JSON.parse(row!.snapshot) as { context: { asyncSettleMs: number; maxSends: number } }).context;
}

/** The asyncSettleMs an engine gives the orders it starts tracking. */
async function settleOf(engine: Engine | Promise<Engine>): Promise<number> {
  const e = await engine;
  await e.trackOrders([{ orderId: 1, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
  return (await storedContext(e, 1)).asyncSettleMs;
}

describe('settings that bear on exactly-once', () => {
  const api = { baseUrl: 'http://127.0.0.1:9', apiKey: API_KEY, timeoutMs: 5_000 };
  const campaigns = [{ campaignId: FBS.campaignId, businessId: FBS.businessId, model: FBS.model }];
  const open = async (options: Parameters<typeof createEngine>[0]) => {
    const engine = await createEngine({ db: ':memory:', campaigns, ...options });
    engines.push(engine);
    return engine;
  };

  it('asyncSettleMs below pollPolicy.timeoutMs plus the request time is refused with UNSAFE_OPTION, and nothing is opened', async () => {
    const file = tempDbPath();
    const error = await thrownYmError(() => createEngine({ db: file, campaigns, api, pollPolicy: { timeoutMs: 60_000 }, asyncSettleMs: 2_000 }));
    errors.push(error);
    expect(error).toBeInstanceOf(UnsafeOptionError);
    // 60 s of polling, plus the longer of the 5 s client timeout and the Market's own 10 s.
    expect(error).toMatchObject({ code: 'UNSAFE_OPTION', option: 'asyncSettleMs', value: 2_000, minimum: 70_000 });
    expect(error.details).toEqual({ option: 'asyncSettleMs', value: 2_000, minimum: 70_000 });
    expect(error.message).toMatch(/^Engine option asyncSettleMs = 2000 could send a change twice: .*pollPolicy\.timeoutMs 60000 ms.* Use at least 70000/);
    expect(existsSync(file)).toBe(false);

    expect((await thrownYmError(() => open({ api, pollPolicy: { timeoutMs: 60_000 }, asyncSettleMs: 69_999 }))).code).toBe('UNSAFE_OPTION');
    expect(await settleOf(open({ api, pollPolicy: { timeoutMs: 60_000 }, asyncSettleMs: 70_000 }))).toBe(70_000);
    // Unset, it is that minimum: it follows the poll deadline and a client timeout above 10 s.
    expect(await settleOf(open({ api, pollPolicy: { timeoutMs: 60_000 } }))).toBe(70_000);
    expect(await settleOf(open({ api: { ...api, timeoutMs: 30_000 }, pollPolicy: { timeoutMs: 60_000 } }))).toBe(90_000);
    expect(await settleOf(open({}))).toBe(3_600_000 + 10_000);
    // No longer tied to the retry policy: a short retry wait leaves the window alone.
    expect(await settleOf(open({ retry: { maximumIntervalMs: 200 } }))).toBe(3_600_000 + 10_000);
  });

  it('options of the wrong shape are refused with INVALID_OPTION naming each, and nothing is opened', async () => {
    const cases: [Parameters<typeof createEngine>[0], string, RegExp][] = [
      [{ maxSends: 0 }, 'maxSends', /too small/i],
      [{ maxSends: 1.5 }, 'maxSends', /expected int/i],
      [{ retry: { backoffCoefficient: 0.5 } }, 'retry.backoffCoefficient', /too small/i],
      [{ retry: { initialIntervalMs: Number.NaN } }, 'retry.initialIntervalMs', /number/i],
      [{ retry: { maximumAttempts: 0 } }, 'retry.maximumAttempts', /too small/i],
      [{ retry: { maxIntervalMs: 100 } as never }, 'retry', /unrecognized key.*maxIntervalMs/i],
      [{ limits: { ordersPerStatusUpdate: 31 } }, 'limits.ordersPerStatusUpdate', /too big/i],
      [{ limits: { ordersPerRead: 51 } }, 'limits.ordersPerRead', /too big/i],
      [{ limits: { parallelPerScope: 0 } }, 'limits.parallelPerScope', /too small/i],
      [{ limits: { resources: { updateOrderStatuses: { limit: 0, windowMs: 1_000 } } } }, 'limits.resources.updateOrderStatuses.limit', /too small/i],
      [{ pollPolicy: { timeoutMs: 0 } }, 'pollPolicy.timeoutMs', /too small/i],
      [{ asyncSettleMs: -1 }, 'asyncSettleMs', /too small/i],
      [{ api: { ...api, timeoutMs: 0 } }, 'api.timeoutMs', /too small/i],
    ];
    for (const [options, path, message] of cases) {
      const file = tempDbPath();
      const error = await thrownYmError(() => createEngine({ db: file, campaigns, ...options }));
      errors.push(error);
      expect(error, path).toBeInstanceOf(InvalidOptionError);
      expect(error.code).toBe('INVALID_OPTION');
      expect((error as InvalidOptionError).issues, path).toEqual([{ path, message: expect.stringMatching(message) }]);
      expect(error.message).toContain(path);
      expect(existsSync(file), path).toBe(false);
    }
  });

  it('maxSends defaults to retry.maximumAttempts', async () => {
    const engine = await open({ retry: { maximumAttempts: 5 } });
    await settleOf(engine);
    expect((await storedContext(engine, 1)).maxSends).toBe(5);
  });

  it('a LaaS cancellation that did not apply is read back as inconclusive until asyncSettleMs after its send, then sent once more', async () => {
    const clock = { now: Date.now() };
    market = await t.start({ now: () => clock.now, operationDelayMs: 1_000 });
    const m = market;
    m.seedOrders(seeds(LAAS, 3_001, 1));
    const file = tempDbPath();
    dbs.push(file);
    // The window is 20 s of polling plus the Market's 10 s request limit.
    const engine = await engineFor(m, file, { clock: () => clock.now, random: () => 0.5, pollPolicy: { timeoutMs: 20_000 }, api: { baseUrl: m.url, apiKey: API_KEY, timeoutMs: 2_000 } });
    engines.push(engine);
    await engine.sync();
    await engine.requestChange({ orderId: 3_001, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    m.inject({ kind: 'status500', endpoint: 'updateOrderStatuses' }); // refused before acting
    const sentAt = clock.now;
    // Step both clocks from one due time to the next until the change settles.
    for (let step = 0; (await engine.getOrder(3_001)).change !== 'idle'; step++) {
      expect(step, 'steps to settle').toBeLessThan(100);
      await engine.flush();
      const [outboxDue, operationsDue] = await engine.store.read(async (tx) => [await tx.outbox.nextDueAt(clock.now), await tx.operations.nextDueAt()]);
      const next = Math.min(outboxDue ?? Infinity, operationsDue ?? Infinity);
      if (Number.isFinite(next)) clock.now = Math.max(clock.now, next);
    }
    const sends = requestsTo(m, 'updateOrderStatuses');
    expect(sends.map((r) => [r.status, r.receivedAt - sentAt])).toEqual([[500, 0], [200, 30_000]]);
    // Read back often while the operation might still run, each time "not yet", and never resent before.
    const early = readBacks(m).filter((r) => r.receivedAt < sentAt + 30_000);
    expect(early.length).toBeGreaterThan(3);
    expect(await engine.getOrder(3_001)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', change: 'idle', lastOutcome: { kind: 'accepted' } });
    expect(m.stats().appliedChanges).toEqual({ 3_001: 1 });
  });
});

describe('a window’s edge (issue #14, goal 4): the next window’s first send comes at the end the first answer pinned', () => {
  // 60 orders per 2 s window at the fake Market and in the engine's limits, 2 requests in flight:
  // two batches of 30 fill a window. Market and engine share one clock that only the test and the
  // dispatcher's injected sleep move, so every instant below is exact: a request takes no time on
  // it, and the first answer pins the window's end at T0 + 2000 (the header alone says T0 + 2899,
  // the end of the whole second it names).
  const W = 2_000;
  const LIMIT = 60;
  const EDGE_MS = 250;

  async function atTheEdge() {
    const T0 = Math.ceil(Date.now() / 1_000) * 1_000 + 100;
    const clock = { now: T0 };
    market = await t.start({ now: () => clock.now, quotas: { updateOrderStatuses: { limit: LIMIT, windowMs: W } } });
    const m = market;
    m.seedOrders(seeds(FBS, 1_001, 2 * LIMIT));
    const db = tempDbPath();
    dbs.push(db);
    const limits = { parallelPerScope: 2, resources: { updateOrderStatuses: { limit: LIMIT, windowMs: W } } };
    const engine = await engineFor(m, db, { clock: () => clock.now, limits });
    engines.push(engine);
    await engine.sync();
    await engine.requestChanges(range(1_001, 2 * LIMIT).map((orderId) => ({ orderId, ...READY })));
    // Each call's start and answer, in the order they happen, at the shared clock's offset from T0.
    const calls: string[] = [];
    const client = createMarketClient({ baseUrl: m.url, apiKey: API_KEY, timeoutMs: 5_000 });
    const recorded = new Proxy(client, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (prop !== 'updateOrderStatuses' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          calls.push(`sent +${clock.now - T0}`);
          try {
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } finally {
            calls.push('answered');
          }
        };
      },
    });
    const leaseMs = 60_000;
    const counters = new CounterBook(engine.owner);
    const limiter = new RateLimiter(engine.store, engine.limits, { leaseMs });
    const budgetUse = countBudgetUse(engine.store, 'updateOrderStatuses');
    /** The dispatcher's waits for a window's end: each one waits for the test to end it. */
    const sleepers: { ms: number; wake: () => void }[] = [];
    const dispatcher = new Dispatcher({
      store: engine.store,
      orders: engine.orders,
      market: new MeteredMarket({ client: recorded, limiter, counters, campaigns: engine.campaigns, clock: () => clock.now }),
      counters,
      limits: engine.limits,
      retry: engine.retry,
      owner: engine.owner,
      clock: () => clock.now,
      leaseMs,
      sleep: (ms) => new Promise<void>((wake) => sleepers.push({ ms, wake })),
    });
    const dueAt = async () => (await engine.store.read((tx) => tx.outbox.open(1_000))).filter((r) => r.state === 'queued').map((r) => r.next_attempt_at - T0);
    const windows = () => {
      const sent = requestsTo(m, 'updateOrderStatuses');
      return { statuses: [...new Set(sent.map((r) => r.status))], receivedAt: sent.map((r) => r.receivedAt - T0) };
    };

    // The first window: two batches fill it; the other two find it spent, its end already pinned
    // by the first answer (each worker asks again only after its own answer), and are parked
    // until the next recheck, then until EDGE_MS before the end.
    expect(await dispatcher.sendDue()).toBe(LIMIT);
    expect((await engine.store.read((tx) => tx.limiter.get(`updateOrderStatuses@campaign:${FBS.campaignId}`)))?.window_ends_at).toBe(T0 + W);
    expect(await dueAt()).toEqual(Array.from({ length: LIMIT }, () => 1_000));
    clock.now = T0 + 1_000;
    expect(await dispatcher.sendDue()).toBe(0);
    expect(await dueAt()).toEqual(Array.from({ length: LIMIT }, () => W - EDGE_MS));
    clock.now = T0 + W - EDGE_MS;
    calls.length = 0;
    const consulted = budgetUse.consulted;
    const round = dispatcher.sendDue();
    // Both batches asked and were refused; the first to be refused waits for the end (one timer),
    // the other for its answer (no timer of its own).
    await waitUntil(() => budgetUse.consulted === consulted + 2, 'both batches have asked for the budget');
    await new Promise((resolve) => setImmediate(resolve));
    expect(sleepers.map((s) => s.ms)).toEqual([EDGE_MS]);
    return { T0, clock, m, round, sleepers, calls, windows };
  }

  it('a batch the budget refused just before the end waits for it in place and is sent at it, alone until its answer, then the other: 0 × 420', async () => {
    const { T0, clock, round, sleepers, calls, windows } = await atTheEdge();
    const [edge] = sleepers.splice(0);
    clock.now += edge!.ms;
    edge!.wake();
    expect(await round).toBe(LIMIT);
    expect(clock.now).toBe(T0 + W);
    expect(calls).toEqual([`sent +${W}`, 'answered', `sent +${W}`, 'answered']);
    expect(sleepers).toEqual([]);
    // The Market's second window began the millisecond its first ended: no time lost, nothing refused.
    expect(windows()).toEqual({ statuses: [200], receivedAt: [0, 0, W, W] });
  });

  it('a timer that fires early sends nothing early (the limiter says when the window opens); one that fires late only costs its delay', async () => {
    {
      const { clock, round, sleepers, calls, windows } = await atTheEdge();
      const [edge] = sleepers.splice(0);
      clock.now += edge!.ms - 5;
      edge!.wake();
      await waitUntil(() => sleepers.length === 1, 'the batch waits the rest');
      const [rest] = sleepers.splice(0);
      expect(rest!.ms).toBe(5);
      expect(calls).toEqual([]);
      clock.now += rest!.ms;
      rest!.wake();
      expect(await round).toBe(LIMIT);
      expect(windows()).toEqual({ statuses: [200], receivedAt: [0, 0, W, W] });
    }
    {
      const { clock, round, sleepers, windows } = await atTheEdge();
      const [edge] = sleepers.splice(0);
      clock.now += edge!.ms + 40;
      edge!.wake();
      expect(await round).toBe(LIMIT);
      expect(windows()).toEqual({ statuses: [200], receivedAt: [0, 0, W + 40, W + 40] });
    }
  });
});

describe('the rate limiter', () => {
  function limiter(parallel = 4) {
    const db = tempDbPath();
    dbs.push(db);
    const store = SqliteStore.open(db);
    stores.push(store);
    const limits = resolveLimits({ parallelPerScope: parallel, resources: { updateOrderStatuses: { limit: 100, windowMs: 60_000 } } });
    return { store, limiter: new RateLimiter(store, limits, { leaseMs: 30_000 }) };
  }
  const scope = { kind: 'campaign', id: 1 } as const;
  const budget = (store: Store) => store.read((tx) => tx.limiter.get('updateOrderStatuses@campaign:1'));

  it('remembers when the latest 420 came, through later permits and answers', async () => {
    const { store, limiter: l } = limiter();
    const t = Date.UTC(2025, 0, 1, 12, 0, 0);
    const a = await l.tryAcquire('updateOrderStatuses', scope, 1, () => t);
    if (!a.ok) throw new Error('no permit');
    await l.release(a.permit, { kind: 'rateLimited', parallel: true }, () => t + 10);
    const b = await l.tryAcquire('updateOrderStatuses', scope, 1, () => t + 2_000); // the parallel pause (1 s) is over
    if (!b.ok) throw new Error('no permit');
    await l.release(b.permit, { kind: 'answered', rateLimit: { limit: 100, remaining: 98, untilMs: t + 60_000 } }, () => t + 2_010);
    expect(await budget(store)).toMatchObject({ last_rate_limited_at: t + 10, updated_at: t + 2_010 });
  });

  it('answers arriving out of order never raise the budget within a window', async () => {
    const { store, limiter: l } = limiter();
    const t = Date.UTC(2025, 0, 1, 12, 0, 0);
    const until = t + 60_000;
    const a = await l.tryAcquire('updateOrderStatuses', scope, 1, () => t);
    const b = await l.tryAcquire('updateOrderStatuses', scope, 1, () => t);
    if (!a.ok || !b.ok) throw new Error('no permit');
    // B was counted second by the Market (9 left) but answers first, while A is still in flight
    // (so 9 - 1 is assumed); A's older answer then says 10, which must not raise it above B's
    // lowest count (9); with nothing left in flight, 9 is exact.
    await l.release(b.permit, { kind: 'answered', rateLimit: { limit: 20, remaining: 9, untilMs: until } }, () => t + 10);
    expect((await budget(store))?.remaining).toBe(8);
    await l.release(a.permit, { kind: 'answered', rateLimit: { limit: 20, remaining: 10, untilMs: until } }, () => t + 20);
    expect((await budget(store))?.remaining).toBe(9);
    // A header naming a later window starts it afresh.
    const c = await l.tryAcquire('updateOrderStatuses', scope, 1, () => until + 1_500);
    if (!c.ok) throw new Error('no permit');
    await l.release(c.permit, { kind: 'answered', rateLimit: { limit: 20, remaining: 19, untilMs: until + 60_000 } }, () => until + 1_600);
    expect((await budget(store))?.remaining).toBe(19);
  });

  it('reads a whole-second -Until as the end of that second', async () => {
    const whole = Date.UTC(2025, 0, 1, 12, 0, 5);
    expect(windowEnd(whole)).toBe(whole + 999);
    expect(windowEnd(whole + 250)).toBe(whole + 250);
    const { store, limiter: l } = limiter();
    const got = await l.tryAcquire('updateOrderStatuses', scope, 30, () => whole - 10_000);
    if (!got.ok) throw new Error('no permit');
    await l.release(got.permit, { kind: 'answered', rateLimit: { limit: 50, remaining: 20, untilMs: whole } }, () => whole - 9_000);
    expect(await budget(store)).toMatchObject({ capacity: 50, remaining: 20, window_ends_at: whole + 999 });
    // Still the old window at the named second: no budget for 30 more...
    expect(await l.tryAcquire('updateOrderStatuses', scope, 30, () => whole + 500)).toMatchObject({ ok: false, reason: 'budget', available: 20 });
    // ...and a fresh one once that second has passed.
    expect((await l.tryAcquire('updateOrderStatuses', scope, 30, () => whole + 1_000)).ok).toBe(true);
  });

  it('a request abandoned without an answer keeps its weight spent and its slot taken a moment longer', async () => {
    const { store, limiter: l } = limiter(2);
    const t = Date.UTC(2025, 0, 1);
    const a = await l.tryAcquire('updateOrderStatuses', scope, 10, () => t);
    const b = await l.tryAcquire('updateOrderStatuses', scope, 10, () => t);
    if (!a.ok || !b.ok) throw new Error('no permit');
    expect(await l.tryAcquire('updateOrderStatuses', scope, 10, () => t)).toMatchObject({ ok: false, reason: 'parallel' });
    await l.release(a.permit, { kind: 'unfinished' }, () => t + 300);
    expect((await budget(store))?.remaining).toBe(80); // not given back
    expect(await l.tryAcquire('updateOrderStatuses', scope, 10, () => t + 300 + UNFINISHED_LINGER_MS - 1)).toMatchObject({ ok: false, reason: 'parallel' });
    expect((await l.tryAcquire('updateOrderStatuses', scope, 10, () => t + 300 + UNFINISHED_LINGER_MS)).ok).toBe(true);
    // A 5xx is not counted by the Market: its weight comes back at once, and so does its slot.
    await l.release(b.permit, { kind: 'notCounted' }, () => t + 400);
    expect((await budget(store))?.remaining).toBe(80 - 10 + 10);
  });
});

describe('the leak check itself', () => {
  it('finds a key planted in a row, in an error, in console output', async () => {
    const db = tempDbPath();
    const store = SqliteStore.open(db);
    stores.push(store);
    await expect(assertNoSecret({ dbPaths: [db] })).resolves.toBeGreaterThan(0);
    // A halt's message, where a refused call's error text would go.
    const halt = { campaign_id: FBS.campaignId, code: 'MARKET_AUTH', owner: 'planter', at: 1 };
    await store.transaction((tx) => tx.halts.set({ ...halt, message: `refused: {"token":"${API_KEY}"}` }));
    await expect(assertNoSecret({ dbPaths: [db] })).rejects.toThrow(/tables of .*bytes of/);
    // A row the port cannot list is found through what the caller knows of it.
    await store.transaction(async (tx) => {
      await tx.halts.clearAll();
      await tx.cursors.set('planted', `{"token":"${API_KEY}"}`, 1);
    });
    await expect(assertNoSecret({ dbPaths: [db], known: { cursorNames: ['planted'] } })).rejects.toThrow(/tables of /);
    await store.transaction((tx) => tx.cursors.set('planted', '{}', 2));
    // Cut in two (a value spanning two overflow pages), the larger half is still found in the bytes.
    const half = Math.ceil(API_KEY.length / 2);
    expect(holdsKeyBytes(`xx${API_KEY.slice(0, half - 3)}\u0000\u0000\u0000\u0007${API_KEY.slice(half - 3)}xx`)).toBe(true);
    expect(holdsKeyBytes(`xx${API_KEY.slice(0, half - 1)}xx`)).toBe(false);
    await expect(assertNoSecret({ errors: [new Error('boom', { cause: { headers: { 'api-key': API_KEY } } })] })).rejects.toThrow(/error #0/);
    const capture = captureConsole({ passThrough: false }); // record it, but do not print the key
    console.log('header', { 'api-key': API_KEY });
    capture.restore();
    await expect(assertNoSecret({ console: capture })).rejects.toThrow(/console output/);
  });
});
