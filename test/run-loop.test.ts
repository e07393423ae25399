// The run loop on its own: it rides out a database that fails for a while (and stops on one that
// will not come back), it wakes when work is queued instead of sleeping its idle time out: on
// SQLite for this process's own queuing, on PostgreSQL for any process's (LISTEN/NOTIFY), and it
// keeps the inbox small: finished rows pruned after 15 days, pending ones counted, not all rows.
//
// The failing database is the real one behind a switch on the engine's store (its transactions
// and reads reject with a StoreError while it is on), so what the run loop sees is what an
// adapter gives when its server goes away; test/reliability/postgres-faults.test.ts cuts real
// connections with a TCP proxy.

import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import type { Engine, FlushReport } from '../src/engine/engine.js';
import { INBOX_RETENTION } from '../src/engine/runner.js';
import { StoreError, STORE_ERROR_CODES, type StoreErrorCode } from '../src/store/errors.js';
import type { InboxPort } from '../src/store/inbox.js';
import type { Store, StoreTx } from '../src/store/port.js';
import type { FakeMarket } from '../src/testing/index.js';
import { API_KEY, FBS, engineFor, range, removeTempDirs, requestsTo, seeds, startMarket, tempDbPath, waitUntil } from './helpers/effects-fixtures.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL } from './helpers/postgres.js';
import { inboxRow } from './helpers/store-contract.js';

const postgres = inject('postgres');
const SCHEMAS = freshSchemaPrefix();
const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
/** Longer than any test: a loop that slept its idle time out instead of waking would time the test out. */
const NEVER_MS = 10 * 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const markets: FakeMarket[] = [];
const engines: Engine[] = [];
const loops: { stop: AbortController; done: Promise<unknown> }[] = [];

afterEach(async () => {
  for (const loop of loops.splice(0)) {
    loop.stop.abort();
    await loop.done.catch(() => {});
  }
  for (const engine of engines.splice(0)) await engine.close();
  for (const market of markets.splice(0)) await market.close();
});

afterAll(async () => {
  removeTempDirs();
  if (postgres) await dropSchemas(SCHEMAS);
});

async function marketWith(count: number): Promise<FakeMarket> {
  const market = await startMarket();
  markets.push(market);
  market.seedOrders(seeds(FBS, 1, count));
  return market;
}

/** An engine with 1.5 s leases (3 × the API timeout), so a send whose answer was lost is read back soon. */
async function openEngine(market: FakeMarket, db: string, options: Parameters<typeof engineFor>[2] = {}): Promise<Engine> {
  const engine = await engineFor(market, db, { api: { baseUrl: market.url, apiKey: API_KEY, timeoutMs: 500 }, ...options });
  engines.push(engine);
  return engine;
}

function startLoop(engine: Engine, options: Omit<Parameters<Engine['run']>[0], 'signal'>): { reports: FlushReport[]; done: Promise<FlushReport> } {
  const stop = new AbortController();
  const reports: FlushReport[] = [];
  const done = engine.run({ signal: stop.signal, ...options, onProgress: (r) => reports.push(r) });
  loops.push({ stop, done });
  return { reports, done };
}

/** Makes every transaction and read of `store` reject with `code` while `failing` is set. */
function failSwitch(store: Store): { failing: StoreErrorCode | undefined } {
  const state: { failing: StoreErrorCode | undefined } = { failing: undefined };
  const transaction = store.transaction.bind(store);
  const read = store.read.bind(store);
  const refuse = (code: StoreErrorCode) => Promise.reject(new StoreError(code, `${store.name}: the test's switch is on (${code}).`));
  store.transaction = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => (state.failing ? refuse(state.failing) : transaction(fn));
  store.read = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => (state.failing ? refuse(state.failing) : read(fn));
  return state;
}

async function queueReady(engine: Engine, ids: readonly number[]): Promise<void> {
  await engine.trackOrders(ids.map((orderId) => ({ orderId, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' })));
  const { refused } = await engine.requestChanges(ids.map((orderId) => ({ orderId, ...READY })));
  expect(refused).toEqual([]);
}

describe('the run loop and a failing database', () => {
  it('waits out a database that fails mid-send, reads back the send whose answer it could not record, and sends nothing twice', async () => {
    const ids = range(1, 12);
    const market = await marketWith(ids.length);
    const engine = await openEngine(market, tempDbPath());
    await queueReady(engine, ids);
    const db = failSwitch(engine.store);
    const errors: { code: string; retryInMs: number }[] = [];
    // The first batch reaches the Market and is held there; the database fails before its answer is recorded.
    market.hold();
    const loop = startLoop(engine, { idleMs: 50, onStoreError: (error, retryInMs) => errors.push({ code: error.code, retryInMs }) });
    await waitUntil(() => market.held().length === 1, 'the first batch reaches the Market');
    db.failing = STORE_ERROR_CODES.unavailable;
    market.release();
    await waitUntil(() => errors.length >= 4, 'the loop reports four store errors in a row');
    db.failing = undefined;
    await waitUntil(async () => (await engine.stats()).open === 0, 'every change settles');

    expect(new Set(errors.map((e) => e.code))).toEqual(new Set([STORE_ERROR_CODES.unavailable]));
    // Backing off: each wait in the streak is at least as long as half the one before (jitter is ±25 %).
    for (let i = 1; i < errors.length; i++) expect(errors[i]!.retryInMs).toBeGreaterThanOrEqual(errors[i - 1]!.retryInMs / 2);
    const stats = market.stats();
    expect(stats.duplicateApplications).toBe(0);
    for (const id of ids) {
      expect(stats.appliedChanges[id]).toBe(1);
      expect(market.getOrder(id)?.substatus).toBe('READY_TO_SHIP');
      expect((await engine.getOrder(id)).substatus).toBe('READY_TO_SHIP');
    }
    // The held batch's answer was lost with the database: its orders went through a read-back.
    const heldIds = (requestsTo(market, 'updateOrderStatuses')[0]!.body as { orders: { id: number }[] }).orders.map((o) => o.id);
    for (const id of heldIds) expect((await engine.history(id)).map((j) => j.event_type)).toContain('DISPATCH.UNKNOWN');
    expect(requestsTo(market, 'getBusinessOrders').length).toBeGreaterThan(0);
    expect(loop.reports.length).toBeGreaterThan(0);
  }, 120_000);

  it.each([STORE_ERROR_CODES.closed, STORE_ERROR_CODES.corrupt])('ends with %s: an error waiting will not cure', async (code) => {
    const market = await marketWith(1);
    const engine = await openEngine(market, tempDbPath());
    const db = failSwitch(engine.store);
    const errors: string[] = [];
    const loop = startLoop(engine, { idleMs: 20, onStoreError: (error) => errors.push(error.code) });
    await waitUntil(() => loop.reports.length > 0, 'the loop makes a pass');
    db.failing = code;
    await expect(loop.done).rejects.toMatchObject({ code });
    expect(errors).toEqual([]);
  }, 60_000);
});

describe('the run loop wakes when work is queued', () => {
  it('SQLite: a change this process queues is sent at once, not after the idle time', async () => {
    const market = await marketWith(1);
    const engine = await openEngine(market, tempDbPath());
    await engine.trackOrders([{ orderId: 1, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    const loop = startLoop(engine, { idleMs: NEVER_MS });
    await waitUntil(() => loop.reports.length > 0, 'the loop makes its first pass and goes idle');
    await engine.requestChange({ orderId: 1, ...READY });
    await waitUntil(() => market.getOrder(1)?.substatus === 'READY_TO_SHIP', 'the change reaches the Market');
  }, 60_000);

  it('does not spin on changes another process holds: a leased row is no due time', async () => {
    const market = await marketWith(3);
    const engine = await openEngine(market, tempDbPath());
    await queueReady(engine, range(1, 3));
    // Another process leased the three for a long while (it is sending them, slowly).
    const leased = await engine.store.transaction((tx) => tx.outbox.lease('queued', 'another-process', Date.now(), NEVER_MS, 10));
    expect(leased).toHaveLength(3);
    const loop = startLoop(engine, { idleMs: NEVER_MS });
    await waitUntil(() => loop.reports.length > 0, 'the loop makes its first pass');
    // Had it counted the leased rows as due, it would look again every 5 ms: a hundred passes a
    // half second. Idle, it makes none until something wakes it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(loop.reports.length).toBe(1);
    expect(market.requests).toHaveLength(0);
  }, 60_000);

  it.skipIf(!postgres)('PostgreSQL: a change another process queues wakes the idle loop (LISTEN/NOTIFY)', async () => {
    const market = await marketWith(3);
    const postgresOptions = { schema: `${SCHEMAS}_wake` };
    const runner = await openEngine(market, POSTGRES_TEST_URL, { postgres: postgresOptions });
    // Another pool on the same schema: to the server, another host.
    const other = await openEngine(market, POSTGRES_TEST_URL, { postgres: postgresOptions });
    await other.trackOrders(range(1, 3).map((orderId) => ({ orderId, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' })));
    const loop = startLoop(runner, { idleMs: NEVER_MS });
    await waitUntil(() => loop.reports.length > 0, 'the loop makes its first pass and goes idle');
    for (const orderId of range(1, 3)) {
      await other.requestChange({ orderId, ...READY });
      await waitUntil(() => market.getOrder(orderId)?.substatus === 'READY_TO_SHIP', `change ${orderId} reaches the Market`);
    }
    // Only the idle loop sends: the other engine never ran one.
    await waitUntil(async () => (await runner.stats()).counters.accepted === 3, 'the loop records the three answers');
    expect((await other.stats()).counters.accepted).toBe(0);
    expect((await other.stats()).open).toBe(0);
  }, 60_000);
});

/** Counts the calls of inbox.counts() made through `store`'s transactions and reads. */
function countInboxCounts(store: Store): { calls: number } {
  const seen = { calls: 0 };
  const watched = (tx: StoreTx): StoreTx => {
    const inbox = new Proxy(tx.inbox, {
      get(target, key) {
        if (key === 'counts') seen.calls++;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as InboxPort;
    return new Proxy(tx, { get: (target, key) => (key === 'inbox' ? inbox : Reflect.get(target, key, target)) });
  };
  const transaction = store.transaction.bind(store);
  const read = store.read.bind(store);
  store.transaction = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => transaction((tx) => fn(watched(tx)));
  store.read = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => read((tx) => fn(watched(tx)));
  return seen;
}

describe('the run loop keeps the inbox small', () => {
  it('prunes finished rows received over 15 days ago, a batch a pass until none is left, then only every few minutes; younger ones stay duplicates', async () => {
    const market = await marketWith(1);
    const clock = { offset: 0 };
    const engine = await openEngine(market, tempDbPath(), { clock: () => Date.now() + clock.offset });
    const now = engine.clock();
    const insert = (key: string, extra: Parameters<typeof inboxRow>[1]) => engine.store.transaction((tx) => tx.inbox.insert(inboxRow(key, { campaign_id: FBS.campaignId, ...extra })));
    // More than a batch past the keeping time, done and ignored; one just inside it.
    await engine.store.transaction(async (tx) => {
      for (let i = 0; i <= INBOX_RETENTION.batch; i++) {
        await tx.inbox.insert(inboxRow(`old-${i}`, { campaign_id: FBS.campaignId, state: i % 2 ? 'done' : 'ignored', now: now - 15 * DAY - HOUR - i }));
      }
    });
    const kept = await insert('kept', { state: 'done', now: now - 15 * DAY + HOUR });
    const counts = () => engine.store.read((tx) => tx.inbox.counts());
    const before = await counts();
    expect([before.pending, before.done + before.ignored]).toEqual([0, INBOX_RETENTION.batch + 2]);

    const loop = startLoop(engine, { idleMs: 20 });
    // Two batches, one pass after the other: a full batch does not wait the pruning interval.
    await waitUntil(async () => (await engine.store.read((tx) => tx.inbox.recent(10))).length === 1, 'every row past the keeping time is pruned', 20_000);
    const [left] = await engine.store.read((tx) => tx.inbox.recent(10));
    expect(left).toMatchObject({ id: kept.id, dedupe_key: 'kept' });
    expect(await insert('kept', { state: 'pending', now: engine.clock() })).toEqual({ id: kept.id, duplicate: true });

    // Another row past its time, right after a short batch: it waits for the next pruning, passes go on meanwhile.
    await insert('late', { state: 'done', now: now - 16 * DAY });
    const passes = loop.reports.length;
    await waitUntil(() => loop.reports.length >= passes + 5, 'the loop makes five more passes');
    expect(await counts()).toEqual({ pending: 0, done: 2, ignored: 0 });
    clock.offset += INBOX_RETENTION.everyMs;
    await waitUntil(async () => (await counts()).done === 1, 'the next pruning, once the interval is past, deletes it', 20_000);
    expect((await engine.store.read((tx) => tx.inbox.recent(10))).map((r) => r.dedupe_key)).toEqual(['kept']);
  }, 60_000);

  it('its reports and idle sleeps count only the pending rows, never the whole inbox', async () => {
    const market = await marketWith(1);
    const engine = await openEngine(market, tempDbPath());
    await engine.trackOrders([{ orderId: 1, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    const body = JSON.stringify({ notificationType: 'ORDER_STATUS_UPDATED', orderId: 1, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updatedAt: new Date().toISOString() });
    await engine.store.transaction((tx) => tx.inbox.insert(inboxRow('n-1', { campaign_id: FBS.campaignId, order_id: 1, body, now: engine.clock() })));
    const seen = countInboxCounts(engine.store);
    const loop = startLoop(engine, { idleMs: 20 });
    // The first pass applies the row; the ones after find nothing to do and sleep.
    await waitUntil(() => loop.reports.length >= 4, 'the loop makes four passes');
    expect(loop.reports[0]!.inboxPending).toBe(0);
    expect((await engine.getOrder(1)).substatus).toBe('READY_TO_SHIP');
    expect((await engine.stats()).inboxPending).toBe(0);
    expect(seen.calls).toBe(0);
  }, 60_000);
});
