// The store contract: what every adapter of the store port (src/store/port.ts and the files it
// imports, whose doc comments are the spec) must do, checked through the port alone. An adapter's
// test file calls `describeStoreContract` with a function that opens a fresh, empty store and says
// whose clock its leases are on; this suite knows no SQL and no driver, so the PostgreSQL adapter
// runs it unchanged.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { YmOrdersError } from '../../src/errors.js';
import { StoreError, STORE_ERROR_CODES, type StoreErrorCode } from '../../src/store/errors.js';
import { INBOX_STATES, type InboxInsert } from '../../src/store/inbox.js';
import type { JournalWrite } from '../../src/store/journal.js';
import type { BudgetRow } from '../../src/store/limiter.js';
import type { OperationWrite } from '../../src/store/operations.js';
import type { OrderListFilter, OrderRow, OrderWrite } from '../../src/store/orders.js';
import { OUTBOX_STATES, type OutboxEnqueue, type OutboxRow, type OutboxState } from '../../src/store/outbox.js';
import type { Store, StoreTx } from '../../src/store/port.js';
import { waitUntil } from './effects-fixtures.js';

export interface StoreContractSubject {
  /** A fresh store with no rows in it. */
  readonly store: Store;
  /** Opens the same data again (after the suite closed `store`); absent where nothing outlives a store (`:memory:`). */
  readonly reopen?: () => Promise<Store>;
  /** Drops the data; the suite has closed every store it was given by then. */
  readonly cleanup: () => Promise<void>;
}

/**
 * Whose clock lease expiries are on (src/store/outbox.ts). `caller`: the `now` passed (one host,
 * SQLite), so expiries are exact and a later `now` passes them. `database`: the database's own
 * (PostgreSQL), so `now` plays no part in them and they pass in real time; `databaseNow` reads
 * that clock, in epoch milliseconds.
 */
export type StoreContractOptions =
  | { readonly leaseClock: 'caller' }
  | { readonly leaseClock: 'database'; readonly databaseNow: () => Promise<number> };

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
/** A lease that ends within a test, on a clock that runs in real time. */
const SHORT_LEASE_MS = 300;
/** A lease no test outlasts. */
const LONG_LEASE_MS = 600_000;
/** A host whose clock runs an hour ahead. */
const HOUR = 3_600_000;
/** Larger than any listing below: the listings are complete. */
const ALL = 1_000;
const SETTLED_STATES = ['accepted', 'rejected', 'superseded'] as const;

/** An order row for port tests (the adapters' own tests use it too). */
export function orderRow(orderId: number, extra: Partial<OrderWrite> = {}): OrderWrite {
  return {
    order_id: orderId,
    campaign_id: 10,
    model: 'FBS',
    status: 'PROCESSING',
    substatus: 'STARTED',
    change_state: 'idle',
    observed_at: T0,
    machine_version: 1,
    snapshot: `{"order":${orderId}}`,
    updated_at: T0,
    ...extra,
  };
}

function journalRow(orderId: number, rowVersion: number, extra: Partial<JournalWrite> = {}): JournalWrite {
  return {
    order_id: orderId,
    row_version: rowVersion,
    event_type: 'MARKET.OBSERVED',
    event: `{"v":${rowVersion}}`,
    source: 'test',
    from_status: 'PROCESSING',
    from_substatus: 'STARTED',
    from_change: 'idle',
    to_status: 'PROCESSING',
    to_substatus: 'STARTED',
    to_change: 'idle',
    at: T0 + rowVersion,
    ...extra,
  };
}

export function enqueueRow(orderId: number, requestNo = 1, extra: Partial<OutboxEnqueue> = {}): OutboxEnqueue {
  return {
    idempotency_key: `${orderId}:PROCESSING/READY_TO_SHIP:m1:r${requestNo}`,
    order_id: orderId,
    campaign_id: 10,
    request_no: requestNo,
    status: 'PROCESSING',
    substatus: 'READY_TO_SHIP',
    real_delivery_date: null,
    next_attempt_at: T0,
    journal_seq: 1,
    now: T0,
    ...extra,
  };
}

/** The row `enqueueRow(…)` makes, freshly queued. */
function queuedRow(row: OutboxEnqueue): Omit<OutboxRow, 'id'> {
  const { now, ...fields } = row;
  return { kind: 'statusChange', payload: null, ...fields, state: 'queued', attempts: 0, read_failures: 0, lease_owner: null, lease_expires_at: null, last_error: null, created_at: now, updated_at: now };
}

/** A notification's row for port tests: `key` is its dedupe key. */
export function inboxRow(key: string, extra: Partial<InboxInsert> = {}): InboxInsert {
  return {
    dedupe_key: key,
    type: 'ORDER_STATUS_UPDATED',
    campaign_id: 10,
    order_id: 7,
    event_at: T0 - 1_000,
    body: `{"key":"${key}"}`,
    state: 'pending',
    now: T0,
    ...extra,
  };
}

/** A read request for port tests: order `orderId` of campaign 10, business 1, asked at T0. */
export function readRequest(orderId: number, extra: Partial<Parameters<StoreTx['reads']['request']>[0]> = {}): Parameters<StoreTx['reads']['request']>[0] {
  return { orderId, campaignId: 10, businessId: 1, reason: 'ORDER_CREATED', now: T0, ...extra };
}

function operationRow(operationId: string, extra: Partial<OperationWrite> = {}): OperationWrite {
  return {
    operation_id: operationId,
    operation_type: 'updateOrderStatuses',
    business_id: 1,
    order_id: 7,
    state: 'inProgress',
    next_poll_at: T0,
    deadline_at: T0 + 3_600_000,
    machine_version: 1,
    snapshot: `{"op":"${operationId}"}`,
    updated_at: T0,
    ...extra,
  };
}

function budgetRow(resourceKey: string, extra: Partial<BudgetRow> = {}): BudgetRow {
  return { resource_key: resourceKey, capacity: 100, remaining: 90, window_ends_at: T0 + 60_000, blocked_until: 0, updated_at: T0, last_rate_limited_at: null, ...extra };
}

/** Every row the suite's writes can reach, read through the port in one view. */
async function snapshot(store: Store): Promise<unknown> {
  return store.read(async (tx) => {
    const orders = [];
    const journal = [];
    for (const id of [1, 2, 3]) {
      orders.push((await tx.orders.get(id)) ?? null);
      journal.push(await tx.journal.forOrder(id));
    }
    const outbox = await tx.outbox.open(ALL);
    for (const state of SETTLED_STATES) outbox.push(...(await tx.outbox.settledSince(state, Number.MIN_SAFE_INTEGER, ALL)));
    const operations = [];
    for (const id of ['op-1', 'op-2']) operations.push((await tx.operations.get(id)) ?? null);
    const cursors = [];
    for (const name of ['sync:1', 'sync:2']) cursors.push((await tx.cursors.get(name)) ?? null);
    const reads = [];
    for (const id of [1, 2, 3]) reads.push((await tx.reads.get(id)) ?? null);
    return {
      orders,
      journal,
      ordersByStatus: await tx.orders.countByStatus(),
      transitions: await tx.journal.transitionCounts(),
      outbox: outbox.sort((a, b) => a.id - b.id),
      outboxCounts: await tx.outbox.counts(),
      outboxNextDue: (await tx.outbox.nextDueAt(T0)) ?? null,
      operations,
      operationCounts: await tx.operations.counts(),
      timers: await tx.timers.list(undefined, Number.MAX_SAFE_INTEGER),
      budgets: await tx.limiter.all(),
      inFlight: [await tx.limiter.inFlight('scope-a'), await tx.limiter.inFlight('scope-b'), await tx.limiter.inFlightWeight('res-a', '')],
      cursors,
      campaigns: await tx.campaigns.all(),
      halts: await tx.halts.all(),
      counters: [await tx.counters.forOwner('engine-a'), await tx.counters.totals()],
      inbox: await tx.inbox.recent(ALL),
      inboxCounts: await tx.inbox.counts(),
      inboxPending: await tx.inbox.pendingCount(),
      reads,
      readCount: await tx.reads.count(),
      readsNextDue: (await tx.reads.nextDueAt(T0)) ?? null,
    };
  });
}

/** Rows in every concern: an order with its journal, an outbox row, an operation, and so on. */
async function seedEveryConcern(tx: StoreTx): Promise<void> {
  await tx.campaigns.upsert({ campaign_id: 10, business_id: 1, model: 'FBS' });
  await tx.orders.insert(orderRow(1));
  const seq = await tx.journal.append(journalRow(1, 1, { event_type: 'SELLER.TRACK', from_status: null, from_substatus: null, from_change: null }));
  await tx.outbox.enqueue(enqueueRow(1, 1, { journal_seq: seq }));
  await tx.operations.insert(operationRow('op-1'));
  await tx.timers.set('dbs-cancel', '1', T0 + 1_000, { orderId: 1 });
  await tx.limiter.put(budgetRow('res-a'));
  await tx.limiter.addLease('lease-1', 'scope-a', 'res-a', 3, T0, 30_000);
  await tx.cursors.set('sync:1', 'page-1', T0);
  await tx.halts.set({ campaign_id: 10, code: 'UNAUTHORIZED', message: 'key refused', owner: 'engine-a', at: T0 });
  await tx.counters.add('engine-a', { accepted: 2, 'calls.updateOrderStatuses': 1 });
  await tx.inbox.insert(inboxRow('n-1'));
  await tx.inbox.insert(inboxRow('n-2', { type: 'ORDER_CREATED', state: 'done' }));
  await tx.reads.request(readRequest(1));
  await tx.reads.request(readRequest(2, { now: T0 + 1 }));
}

/** Writes to every concern (inserts, updates and deletes) over the rows `seedEveryConcern` made. */
async function writeEveryConcern(tx: StoreTx): Promise<void> {
  await tx.campaigns.upsert({ campaign_id: 10, business_id: 2, model: 'DBS' });
  await tx.campaigns.upsert({ campaign_id: 20, business_id: 2, model: 'DBS' });
  await tx.orders.insert(orderRow(2, { campaign_id: 20 }));
  expect(await tx.orders.update(orderRow(1, { status: 'CANCELLED', substatus: 'SHOP_FAILED', updated_at: T0 + 5 }), 1)).toBe(true);
  const seq = await tx.journal.append(journalRow(1, 2, { to_status: 'CANCELLED', to_substatus: 'SHOP_FAILED' }));
  await tx.journal.append(journalRow(2, 1));
  await tx.outbox.enqueue(enqueueRow(2, 1, { journal_seq: seq }));
  await tx.outbox.setState(1, 1, 'superseded', T0 + 5, { lastError: 'cancelled' });
  await tx.outbox.lease('queued', 'engine-b', T0 + 5, 30_000, 10);
  expect(await tx.operations.insert(operationRow('op-2'))).toBe(true);
  expect(await tx.operations.update(operationRow('op-1', { state: 'done', updated_at: T0 + 5 }), 1)).toBe(true);
  await tx.timers.clear('dbs-cancel', '1');
  await tx.timers.set('dbs-cancel', '2', T0 + 2_000);
  await tx.limiter.put(budgetRow('res-a', { remaining: 1 }));
  await tx.limiter.put(budgetRow('res-b'));
  expect(await tx.limiter.removeLease('lease-1')).toBe(true);
  await tx.limiter.addLease('lease-2', 'scope-b', 'res-a', 5, T0, 30_000);
  await tx.cursors.set('sync:1', 'page-2', T0 + 5);
  await tx.cursors.set('sync:2', 'page-1', T0 + 5);
  expect(await tx.halts.clearAll()).toBe(1);
  await tx.halts.set({ campaign_id: 20, code: 'FORBIDDEN', message: 'no access', owner: 'engine-b', at: T0 + 5 });
  await tx.counters.add('engine-a', { accepted: 1, rejected: 4 });
  await tx.counters.add('engine-b', { accepted: 7 });
  await tx.outbox.enqueue(enqueueRow(3, 1, { kind: 'cancellationAnswer', status: 'CANCELLATION_ANSWER', substatus: 'ACCEPTED', payload: '{"accepted":true}' }));
  expect(await tx.inbox.insert(inboxRow('n-1'))).toMatchObject({ duplicate: true });
  await tx.inbox.insert(inboxRow('n-3', { campaign_id: null, order_id: null, event_at: null }));
  const [pending] = await tx.inbox.takePending(1);
  await tx.inbox.finish(pending!.id, 'ignored', T0 + 5, 'not ours');
  expect(await tx.inbox.prune(T0 + 1, ALL)).toBe(2); // n-1 (just finished) and n-2 (inserted done)
  await tx.reads.request(readRequest(3, { businessId: 2, now: T0 - 10 }));
  await tx.reads.request(readRequest(2, { reason: 'ORDER_STATUS_UPDATED', now: T0 + 5 }));
  await tx.reads.lease(1, 'engine-b', T0 + 5, 30_000, 2);
  await tx.reads.complete(1, T0 + 5);
}

/** The orders the rows are of, in their order. */
function orderIds(rows: readonly OutboxRow[]): number[] {
  return rows.map((r) => r.order_id);
}

/** The StoreError `promise` rejects with, checked to carry `code` (the adapters' own tests use it too). */
export async function expectStoreError(promise: Promise<unknown>, code: StoreErrorCode): Promise<StoreError> {
  const error = await promise.then(
    () => expect.fail(`expected the call to reject with ${code}`),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).code).toBe(code);
  return error as StoreError;
}

/** Lets other queued work run (a few turns of the event loop) in the middle of a transaction. */
function yieldToOthers(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function describeStoreContract(name: string, open: () => Promise<StoreContractSubject>, options: StoreContractOptions): void {
  describe(`store contract: ${name} (leases on the ${options.leaseClock}'s clock)`, () => {
    let subject: StoreContractSubject;
    let store: Store;
    const opened: Store[] = [];

    beforeEach(async () => {
      subject = await open();
      store = subject.store;
      opened.push(store);
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
      await subject.cleanup();
    });

    const write = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => store.transaction(fn);
    const read = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => store.read(fn);

    /**
     * Runs `fn`, which takes leases of `leaseMs` at the caller's `now`, and returns its value with
     * what those leases must expire at: now + leaseMs on the caller's clock; on the database's,
     * leaseMs after an instant of its clock while `fn` ran, whatever `now` was.
     */
    async function leasing<T>(now: number, leaseMs: number, fn: () => Promise<T>): Promise<[T, unknown]> {
      if (options.leaseClock === 'caller') return [await fn(), now + leaseMs];
      const before = await options.databaseNow();
      const value = await fn();
      const after = await options.databaseNow();
      const [from, to] = [before + leaseMs, after + leaseMs];
      return [value, expect.toSatisfy((t: unknown) => typeof t === 'number' && t >= from && t <= to, `an expiry on the database's clock, from ${from} to ${to}`)];
    }

    describe('orders', () => {
      it('insert: at row_version 1, created_at = updated_at; get returns the row, undefined for another id', async () => {
        expect(await write((tx) => tx.orders.insert(orderRow(7, { substatus: null, change_state: 'queued' })))).toBe(true);
        expect(await read((tx) => tx.orders.get(7))).toEqual({ ...orderRow(7, { substatus: null, change_state: 'queued' }), row_version: 1, created_at: T0 });
        expect(await read((tx) => tx.orders.get(8))).toBeUndefined();
      });

      it('insert of an order already there: false, the row as it was, and the transaction goes on to commit its other writes', async () => {
        expect(await write((tx) => tx.orders.insert(orderRow(7)))).toBe(true);
        const first = await read((tx) => tx.orders.get(7));
        const inserted = await write(async (tx) => {
          await tx.cursors.set('sync:1', 'page-9', T0);
          const again = await tx.orders.insert(orderRow(7, { status: 'CANCELLED', snapshot: '{"second":true}', updated_at: T0 + 1 }));
          await tx.cursors.set('sync:2', 'page-1', T0);
          return again;
        });
        expect(inserted).toBe(false);
        expect(await read((tx) => tx.orders.get(7))).toEqual(first);
        expect(await read(async (tx) => [await tx.cursors.get('sync:1'), await tx.cursors.get('sync:2')])).toEqual(['page-9', 'page-1']);
      });

      it('update: only at the expected row version, which it bumps; campaign, model and created_at stay', async () => {
        await write((tx) => tx.orders.insert(orderRow(7)));
        const change = orderRow(7, { campaign_id: 99, model: 'DBS', status: 'CANCELLED', substatus: 'SHOP_FAILED', change_state: 'sending', observed_at: T0 + 7, machine_version: 2, snapshot: '{"v":2}', updated_at: T0 + 9 });
        expect(await write((tx) => tx.orders.update(change, 2))).toBe(false);
        expect(await read((tx) => tx.orders.get(7))).toEqual({ ...orderRow(7), row_version: 1, created_at: T0 });
        expect(await write((tx) => tx.orders.update(change, 1))).toBe(true);
        const updated = { ...change, campaign_id: 10, model: 'FBS', row_version: 2, created_at: T0 };
        expect(await read((tx) => tx.orders.get(7))).toEqual(updated);
        // The second writer with the same read loses, and writes nothing.
        expect(await write((tx) => tx.orders.update(orderRow(7, { status: 'DELIVERED', updated_at: T0 + 10 }), 1))).toBe(false);
        expect(await read((tx) => tx.orders.get(7))).toEqual(updated);
        expect(await write((tx) => tx.orders.update(orderRow(8), 1))).toBe(false);
        expect(await read((tx) => tx.orders.get(8))).toBeUndefined();
      });

      it('update with an expected snapshot: only over the very row text given, at the expected version', async () => {
        const first = orderRow(7, { snapshot: '{"v":1}' });
        await write((tx) => tx.orders.insert(first));
        const change = orderRow(7, { status: 'CANCELLED', snapshot: '{"v":2}', updated_at: T0 + 9 });
        // The right version over other text (a rolled-back write's, or another process's) writes nothing.
        expect(await write((tx) => tx.orders.update(change, 1, '{"v":0}'))).toBe(false);
        expect(await read((tx) => tx.orders.get(7))).toEqual({ ...first, row_version: 1, created_at: T0 });
        expect(await write((tx) => tx.orders.update(change, 2, '{"v":1}'))).toBe(false);
        expect(await write((tx) => tx.orders.update(change, 1, '{"v":1}'))).toBe(true);
        expect(await read((tx) => tx.orders.get(7))).toEqual({ ...change, row_version: 2, created_at: T0 });
      });

      it('countByStatus: per status, substatus and change state, sorted by them (no substatus first)', async () => {
        await write(async (tx) => {
          await tx.orders.insert(orderRow(1, { status: 'PROCESSING', substatus: 'STARTED' }));
          await tx.orders.insert(orderRow(2, { status: 'PROCESSING', substatus: 'STARTED', change_state: 'queued' }));
          await tx.orders.insert(orderRow(3, { status: 'PROCESSING', substatus: 'STARTED' }));
          await tx.orders.insert(orderRow(4, { status: 'PROCESSING', substatus: null }));
          await tx.orders.insert(orderRow(5, { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }));
          await tx.orders.insert(orderRow(6, { status: 'CANCELLED', substatus: null }));
        });
        expect(await read((tx) => tx.orders.countByStatus())).toEqual([
          { status: 'CANCELLED', substatus: null, change_state: 'idle', n: 1 },
          { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', change_state: 'idle', n: 1 },
          { status: 'PROCESSING', substatus: null, change_state: 'idle', n: 1 },
          { status: 'PROCESSING', substatus: 'STARTED', change_state: 'idle', n: 2 },
          { status: 'PROCESSING', substatus: 'STARTED', change_state: 'queued', n: 1 },
        ]);
      });

      it('list: pages by order id after the given one, under every combination of filters; stuck is an open change updated before the time', async () => {
        // Inserted out of id order, ids up to 2^53 - 1; one status no list has (data, not an error).
        const seeded: [number, Partial<OrderWrite>][] = [
          [5, { campaign_id: 10, status: 'PROCESSING', change_state: 'idle', updated_at: T0 }],
          [3, { campaign_id: 10, status: 'PROCESSING', change_state: 'queued', updated_at: T0 - 10 }],
          [48_000_000_001, { campaign_id: 20, status: 'PROCESSING', change_state: 'uncertain', updated_at: T0 + 100 }],
          [8, { campaign_id: 20, status: 'DELIVERED', substatus: null, change_state: 'idle', updated_at: T0 - 50 }],
          [1, { campaign_id: 10, status: 'WAREHOUSE_HOLD', substatus: null, change_state: 'sending', updated_at: T0 }],
          [12, { campaign_id: 20, status: 'CANCELLED', substatus: null, change_state: 'queued', updated_at: T0 + 5 }],
          [7, { campaign_id: 10, status: 'PROCESSING', change_state: 'awaitingOperation', updated_at: T0 - 1 }],
          [20, { campaign_id: 10, status: 'PROCESSING', change_state: 'queued', updated_at: T0 }],
          [Number.MAX_SAFE_INTEGER, { campaign_id: 30, status: 'DELIVERED', substatus: null, change_state: 'uncertain', updated_at: T0 - 100 }],
        ];
        await write(async (tx) => {
          for (const [id, extra] of seeded) await tx.orders.insert(orderRow(id, extra));
        });
        // Rows move between filters: 5 gets a change (stuck since T0 - 20), 3's change settles.
        await write(async (tx) => {
          expect(await tx.orders.update(orderRow(5, { change_state: 'queued', updated_at: T0 - 20 }), 1)).toBe(true);
          expect(await tx.orders.update(orderRow(3, { change_state: 'idle', updated_at: T0 + 1 }), 1)).toBe(true);
        });
        const stored = await read(async (tx) => {
          const rows: OrderRow[] = [];
          for (const [id] of seeded) rows.push((await tx.orders.get(id))!);
          return rows.sort((a, b) => a.order_id - b.order_id);
        });
        const matches = (row: OrderRow, f: OrderListFilter): boolean =>
          (f.campaignId === undefined || row.campaign_id === f.campaignId) &&
          (f.status === undefined || row.status === f.status) &&
          (f.changeState === undefined || row.change_state === f.changeState) &&
          (f.stuckBefore === undefined || (row.change_state !== 'idle' && row.updated_at < f.stuckBefore));

        expect(await read((tx) => tx.orders.list({}, 0, ALL))).toEqual(stored);
        expect(await read((tx) => tx.orders.list({ stuckBefore: T0 }, 0, ALL))).toEqual(stored.filter((r) => [5, 7, Number.MAX_SAFE_INTEGER].includes(r.order_id)));
        let combinations = 0;
        for (const campaignId of [undefined, 10, 20, 99]) {
          for (const status of [undefined, 'PROCESSING', 'WAREHOUSE_HOLD', 'DELIVERED']) {
            for (const changeState of [undefined, 'idle', 'queued', 'uncertain']) {
              for (const stuckBefore of [undefined, T0]) {
                const filter: OrderListFilter = {
                  ...(campaignId !== undefined ? { campaignId } : {}),
                  ...(status !== undefined ? { status } : {}),
                  ...(changeState !== undefined ? { changeState } : {}),
                  ...(stuckBefore !== undefined ? { stuckBefore } : {}),
                };
                // Pages of 2: each starts after the last id of the one before; a short page is the last.
                const pages = await read(async (tx) => {
                  const all: OrderRow[][] = [];
                  for (let after = 0; ; ) {
                    const page = await tx.orders.list(filter, after, 2);
                    all.push(page);
                    if (page.length < 2) return all;
                    after = page[page.length - 1]!.order_id;
                  }
                });
                const expected = stored.filter((r) => matches(r, filter));
                expect(pages.flat(), JSON.stringify(filter)).toEqual(expected);
                expect(pages.length, JSON.stringify(filter)).toBe(Math.floor(expected.length / 2) + 1);
                combinations++;
              }
            }
          }
        }
        expect(combinations).toBe(128);
        expect(await read((tx) => tx.orders.list({}, 8, 3))).toEqual(stored.filter((r) => r.order_id > 8).slice(0, 3));
        expect(await read((tx) => tx.orders.list({}, Number.MAX_SAFE_INTEGER, ALL))).toEqual([]);
      });
    });

    describe('journal', () => {
      it('append: each seq greater than the one before; forOrder returns the order’s rows oldest first', async () => {
        const seqs = await write(async (tx) => [
          await tx.journal.append(journalRow(3, 1)),
          await tx.journal.append(journalRow(4, 1)),
          await tx.journal.append(journalRow(3, 2)),
        ]);
        const later = await write((tx) => tx.journal.append(journalRow(3, 3)));
        expect(seqs[1]).toBeGreaterThan(seqs[0]!);
        expect(seqs[2]).toBeGreaterThan(seqs[1]!);
        expect(later).toBeGreaterThan(seqs[2]!);
        expect(await read((tx) => tx.journal.forOrder(3))).toEqual([
          { ...journalRow(3, 1), seq: seqs[0] },
          { ...journalRow(3, 2), seq: seqs[2] },
          { ...journalRow(3, 3), seq: later },
        ]);
        expect(await read((tx) => tx.journal.forOrder(4))).toEqual([{ ...journalRow(4, 1), seq: seqs[1] }]);
        expect(await read((tx) => tx.journal.forOrder(5))).toEqual([]);
      });

      it('(order_id, row_version) is unique: a second row for one version fails the transaction (DB_FAILED)', async () => {
        await write((tx) => tx.journal.append(journalRow(3, 1)));
        const before = await snapshot(store);
        await expectStoreError(
          write(async (tx) => {
            await tx.journal.append(journalRow(3, 2));
            await tx.journal.append(journalRow(3, 2, { event_type: 'DISPATCH.SENT' }));
          }),
          STORE_ERROR_CODES.failed,
        );
        expect(await snapshot(store)).toEqual(before);
        expect(await read((tx) => tx.journal.forOrder(3))).toHaveLength(1);
      });

      it('transitionCounts: status moves only, by who made them, the most frequent first', async () => {
        const move = (from: [string, string | null], to: [string, string | null], eventType = 'MARKET.OBSERVED') => ({
          event_type: eventType,
          from_status: from[0],
          from_substatus: from[1],
          to_status: to[0],
          to_substatus: to[1],
        });
        const rows: Partial<JournalWrite>[] = [
          // Tracking an order is not a move.
          { event_type: 'SELLER.TRACK', from_status: null, from_substatus: null, from_change: null },
          // Nor is a change of the change region alone, with or without a substatus.
          { ...move(['PROCESSING', 'STARTED'], ['PROCESSING', 'STARTED'], 'SELLER.REQUEST'), to_change: 'queued' },
          { ...move(['DELIVERY', null], ['DELIVERY', null], 'SELLER.REQUEST'), to_change: 'queued' },
          ...Array.from({ length: 4 }, () => move(['PROCESSING', 'STARTED'], ['PROCESSING', 'READY_TO_SHIP'], 'DISPATCH.ACCEPTED')),
          ...Array.from({ length: 3 }, () => move(['PROCESSING', 'STARTED'], ['PROCESSING', 'READY_TO_SHIP'])),
          ...Array.from({ length: 2 }, () => move(['PROCESSING', null], ['PROCESSING', 'STARTED'])),
          move(['DELIVERY', 'COURIER_FOUND'], ['DELIVERY', null], 'DISPATCH.OPERATION_DONE'),
        ];
        await write(async (tx) => {
          for (const [i, row] of rows.entries()) await tx.journal.append(journalRow(100 + i, 1, row));
        });
        expect(await read((tx) => tx.journal.transitionCounts())).toEqual([
          { fromStatus: 'PROCESSING', fromSubstatus: 'STARTED', toStatus: 'PROCESSING', toSubstatus: 'READY_TO_SHIP', by: 'seller', count: 4 },
          { fromStatus: 'PROCESSING', fromSubstatus: 'STARTED', toStatus: 'PROCESSING', toSubstatus: 'READY_TO_SHIP', by: 'market', count: 3 },
          { fromStatus: 'PROCESSING', fromSubstatus: null, toStatus: 'PROCESSING', toSubstatus: 'STARTED', by: 'market', count: 2 },
          { fromStatus: 'DELIVERY', fromSubstatus: 'COURIER_FOUND', toStatus: 'DELIVERY', toSubstatus: null, by: 'seller', count: 1 },
        ]);
      });
    });

    describe('outbox', () => {
      it('enqueue: a queued row, no lease, nothing sent; get finds it by order and request', async () => {
        const row = enqueueRow(5, 1, { real_delivery_date: '2025-05-20', journal_seq: 42, next_attempt_at: T0 + 500 });
        await write((tx) => tx.outbox.enqueue(row));
        expect(await read((tx) => tx.outbox.get(5, 1))).toEqual({ ...queuedRow(row), id: expect.any(Number) });
        expect(await read((tx) => tx.outbox.get(5, 2))).toBeUndefined();
        expect(await read((tx) => tx.outbox.get(6, 1))).toBeUndefined();
      });

      it('re-enqueue of a request keeps its row, id, key and history, queued again from the new next attempt', async () => {
        await write((tx) => tx.outbox.enqueue(enqueueRow(5, 1, { journal_seq: 3 })));
        const first = (await read((tx) => tx.outbox.get(5, 1)))!;
        await write(async (tx) => {
          expect(await tx.outbox.lease('queued', 'A', T0, 30_000, 10)).toHaveLength(1);
          await tx.outbox.setState(5, 1, 'sending', T0 + 1, { sent: true });
          await tx.outbox.setState(5, 1, 'uncertain', T0 + 2, { lastError: 'timeout' });
          await tx.outbox.releaseAfterFailedRead(first.id, 'A', 2, T0 + 5_000, T0 + 2);
        });
        // A's lease went with `uncertain`, so its release above was not A's to make.
        expect(await read((tx) => tx.outbox.get(5, 1))).toMatchObject({ state: 'uncertain', read_failures: 0, lease_owner: null });
        await write(async (tx) => {
          await tx.outbox.lease('uncertain', 'A', T0 + 5_000, 30_000, 10);
          await tx.outbox.releaseAfterFailedRead(first.id, 'A', 2, T0 + 9_000, T0 + 5_000);
          await tx.outbox.lease('uncertain', 'B', T0 + 9_000, 30_000, 10);
          await tx.outbox.enqueue(enqueueRow(5, 1, { idempotency_key: 'a-different-key-is-ignored', journal_seq: 99, next_attempt_at: T0 + 60_000, now: T0 + 9_001 }));
        });
        expect(await read((tx) => tx.outbox.get(5, 1))).toEqual({
          ...first,
          state: 'queued',
          attempts: 1,
          read_failures: 0,
          last_error: 'timeout',
          next_attempt_at: T0 + 60_000,
          lease_owner: null,
          lease_expires_at: null,
          updated_at: T0 + 9_001,
        });
        expect(Object.values(await read((tx) => tx.outbox.counts())).reduce((a, b) => a + b, 0)).toBe(1);
      });

      it('one idempotency key: the same key for another request fails the transaction (DB_FAILED)', async () => {
        await write((tx) => tx.outbox.enqueue(enqueueRow(5, 1)));
        const before = await snapshot(store);
        await expectStoreError(
          write((tx) => tx.outbox.enqueue(enqueueRow(6, 1, { idempotency_key: enqueueRow(5, 1).idempotency_key }))),
          STORE_ERROR_CODES.failed,
        );
        expect(await snapshot(store)).toEqual(before);
      });

      it('setState: `sent` counts an attempt, lastError replaces (absent keeps it), the lease stays only in `sending`', async () => {
        await write((tx) => tx.outbox.enqueue(enqueueRow(5, 1)));
        const [leased, expiry] = await leasing(T0, 30_000, () => write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10)));
        expect(leased.map((r) => [r.lease_owner, r.lease_expires_at])).toEqual([['A', expiry]]);

        await write((tx) => tx.outbox.setState(5, 1, 'sending', T0 + 1, { sent: true }));
        expect(await read((tx) => tx.outbox.get(5, 1))).toMatchObject({ state: 'sending', attempts: 1, last_error: null, lease_owner: 'A', lease_expires_at: leased[0]!.lease_expires_at, updated_at: T0 + 1 });

        await write((tx) => tx.outbox.setState(5, 1, 'queued', T0 + 2, { lastError: 'HTTP 503' }));
        expect(await read((tx) => tx.outbox.get(5, 1))).toMatchObject({ state: 'queued', attempts: 1, last_error: 'HTTP 503', lease_owner: null, lease_expires_at: null, updated_at: T0 + 2 });

        await write(async (tx) => {
          await tx.outbox.lease('queued', 'B', T0 + 3, 30_000, 10);
          await tx.outbox.setState(5, 1, 'sending', T0 + 3, { sent: true });
          await tx.outbox.setState(5, 1, 'awaitingOperation', T0 + 4);
        });
        expect(await read((tx) => tx.outbox.get(5, 1))).toMatchObject({ state: 'awaitingOperation', attempts: 2, last_error: 'HTTP 503', lease_owner: null, lease_expires_at: null, updated_at: T0 + 4 });

        await write((tx) => tx.outbox.setState(5, 1, 'rejected', T0 + 5, { lastError: 'illegal transition' }));
        expect(await read((tx) => tx.outbox.get(5, 1))).toMatchObject({ state: 'rejected', attempts: 2, last_error: 'illegal transition', updated_at: T0 + 5 });
        // Another request of the order is untouched.
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(5, 2, { now: T0 + 6 }));
          await tx.outbox.setState(5, 1, 'superseded', T0 + 7);
        });
        expect(await read((tx) => tx.outbox.get(5, 2))).toMatchObject({ state: 'queued', attempts: 0, updated_at: T0 + 6 });
      });

      it('lease: due, free rows in the state, oldest due first, up to the limit, for the owner until now + leaseMs', async () => {
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(1, 1, { next_attempt_at: T0 })); // id order ≠ due order
          await tx.outbox.enqueue(enqueueRow(2, 1, { next_attempt_at: T0 - 5_000, campaign_id: 20 }));
          await tx.outbox.enqueue(enqueueRow(3, 1, { next_attempt_at: T0 + 10_000 })); // not due yet
          await tx.outbox.enqueue(enqueueRow(4, 1, { next_attempt_at: T0 }));
          await tx.outbox.enqueue(enqueueRow(5, 1, { next_attempt_at: T0 - 1 }));
          await tx.outbox.setState(5, 1, 'uncertain', T0 - 1); // another state
        });
        const [a, expiry] = await leasing(T0, 30_000, () => write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 2)));
        expect(a.map((r) => [r.order_id, r.lease_owner, r.lease_expires_at, r.updated_at])).toEqual([
          [2, 'A', expiry, T0],
          [1, 'A', expiry, T0],
        ]);
        expect(await read((tx) => tx.outbox.get(1, 1))).toEqual(a[1]);
        const more = await write((tx) => tx.outbox.lease('queued', 'B', T0 + 1_000, 30_000, 10));
        expect(more.map((r) => [r.order_id, r.lease_owner])).toEqual([[4, 'B']]); // 1 and 2 are A's, 3 not due
        expect(await write((tx) => tx.outbox.lease('queued', 'C', T0 + 2_000, 30_000, 10))).toEqual([]);
        expect((await write((tx) => tx.outbox.lease('uncertain', 'C', T0, 30_000, 10))).map((r) => r.order_id)).toEqual([5]);
      });

      it('lease: only the given campaign’s rows when one is given', async () => {
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(1, 1, { campaign_id: 10 }));
          await tx.outbox.enqueue(enqueueRow(2, 1, { campaign_id: 20 }));
          await tx.outbox.enqueue(enqueueRow(3, 1, { campaign_id: 20, next_attempt_at: T0 - 1 }));
        });
        expect((await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10, 20))).map((r) => r.order_id)).toEqual([3, 2]);
        expect((await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10, 30))).map((r) => r.order_id)).toEqual([]);
        expect((await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10))).map((r) => r.order_id)).toEqual([1]);
      });

      it('claimForSend: takes the rows still queued, whoever leased them, from now, and names them; a row no longer queued, or not there, stays as it is', async () => {
        await write(async (tx) => {
          for (const orderId of [1, 2, 3]) await tx.outbox.enqueue(enqueueRow(orderId, 1));
        });
        const leased = await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10));
        const idOf = (orderId: number) => leased.find((r) => r.order_id === orderId)!.id;
        const [byB, expiryB] = await leasing(T0 + 40_000, 30_000, () => write((tx) => tx.outbox.claimForSend([idOf(3), idOf(1)], 'B', T0 + 40_000, 30_000)));
        expect([...byB].sort()).toEqual([idOf(1), idOf(3)].sort());
        for (const orderId of [1, 3]) expect(await read((tx) => tx.outbox.get(orderId, 1))).toMatchObject({ lease_owner: 'B', lease_expires_at: expiryB, updated_at: T0 + 40_000 });
        expect(await read((tx) => tx.outbox.get(2, 1))).toMatchObject({ lease_owner: 'A', updated_at: T0 }); // not named: A's still
        const [byA, expiryA] = await leasing(T0 + 40_001, 60_000, () => write((tx) => tx.outbox.claimForSend([idOf(1)], 'A', T0 + 40_001, 60_000)));
        expect([...byA]).toEqual([idOf(1)]);
        expect(await read((tx) => tx.outbox.get(1, 1))).toMatchObject({ lease_owner: 'A', lease_expires_at: expiryA });
        await write((tx) => tx.outbox.setState(1, 1, 'sending', T0 + 40_002, { sent: true }));
        const sending = await read((tx) => tx.outbox.get(1, 1));
        const missing = Math.max(...leased.map((r) => r.id)) + 1_000;
        expect([...(await write((tx) => tx.outbox.claimForSend([idOf(1), idOf(2), missing], 'B', T0 + 40_003, 30_000)))]).toEqual([idOf(2)]);
        expect(await read((tx) => tx.outbox.get(1, 1))).toEqual(sending);
        expect(await read((tx) => tx.outbox.get(2, 1))).toMatchObject({ lease_owner: 'B', updated_at: T0 + 40_003 });
        expect([...(await write((tx) => tx.outbox.claimForSend([], 'B', T0, 30_000)))]).toEqual([]);
      });

      it('dueCampaigns: campaigns with due, free rows in the state, the longest-waiting first', async () => {
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(1, 1, { campaign_id: 10, next_attempt_at: T0 - 1_000 }));
          await tx.outbox.enqueue(enqueueRow(2, 1, { campaign_id: 20, next_attempt_at: T0 - 5_000 }));
          await tx.outbox.enqueue(enqueueRow(3, 1, { campaign_id: 30, next_attempt_at: T0 + 1 })); // not due
          await tx.outbox.enqueue(enqueueRow(4, 1, { campaign_id: 40, next_attempt_at: T0 - 9_000 }));
          await tx.outbox.setState(4, 1, 'uncertain', T0); // not queued
          await tx.outbox.enqueue(enqueueRow(5, 1, { campaign_id: 10, next_attempt_at: T0 - 500 }));
        });
        expect(await read((tx) => tx.outbox.dueCampaigns('queued', T0))).toEqual([20, 10]);
        expect(await read((tx) => tx.outbox.dueCampaigns('uncertain', T0))).toEqual([40]);
        await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10, 20));
        expect(await read((tx) => tx.outbox.dueCampaigns('queued', T0))).toEqual([10]);
        // Campaign 30's row is due by then; 20's is A's still.
        expect(await read((tx) => tx.outbox.dueCampaigns('queued', T0 + 1_000))).toEqual([10, 30]);
      });

      it('release and releaseAfterFailedRead: only by the owner, the row due again untouched otherwise', async () => {
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(1, 1));
          await tx.outbox.enqueue(enqueueRow(2, 1));
          await tx.outbox.enqueue(enqueueRow(3, 1, { next_attempt_at: T0 + 1 }));
        });
        const [one, two] = await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10));
        const held = await read((tx) => tx.outbox.get(1, 1));
        await write(async (tx) => {
          await tx.outbox.release(one!.id, 'B', T0 + 90_000, T0 + 1_000); // not B's
          await tx.outbox.releaseAfterFailedRead(one!.id, 'B', 3, T0 + 90_000, T0 + 1_000);
        });
        expect(await read((tx) => tx.outbox.get(1, 1))).toEqual(held);
        await write((tx) => tx.outbox.release(one!.id, 'A', T0 + 90_000, T0 + 1_000));
        expect(await read((tx) => tx.outbox.get(1, 1))).toEqual({ ...held, lease_owner: null, lease_expires_at: null, next_attempt_at: T0 + 90_000, updated_at: T0 + 1_000 });
        const twoBefore = await read((tx) => tx.outbox.get(2, 1));
        await write((tx) => tx.outbox.releaseAfterFailedRead(two!.id, 'A', 3, T0 + 80_000, T0 + 2_000));
        expect(await read((tx) => tx.outbox.get(2, 1))).toEqual({ ...twoBefore, lease_owner: null, lease_expires_at: null, read_failures: 3, next_attempt_at: T0 + 80_000, updated_at: T0 + 2_000 });
        // A row nobody leased is nobody's to release.
        const three = await read((tx) => tx.outbox.get(3, 1));
        await write(async (tx) => {
          await tx.outbox.release(three!.id, 'A', T0 + 5, T0 + 5);
          await tx.outbox.releaseAfterFailedRead(three!.id, 'A', 1, T0 + 5, T0 + 5);
        });
        expect(await read((tx) => tx.outbox.get(3, 1))).toEqual(three);
      });

      it('reschedule: the next attempt at the given time, read failures 0, no lease', async () => {
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(1, 1));
          await tx.outbox.setState(1, 1, 'uncertain', T0 + 1, { lastError: 'timeout' });
        });
        const [row] = await write((tx) => tx.outbox.lease('uncertain', 'A', T0 + 2, 30_000, 10));
        await write((tx) => tx.outbox.releaseAfterFailedRead(row!.id, 'A', 2, T0 + 3, T0 + 2));
        await write((tx) => tx.outbox.lease('uncertain', 'A', T0 + 3, 30_000, 10));
        const leased = (await read((tx) => tx.outbox.get(1, 1)))!;
        expect(leased).toMatchObject({ read_failures: 2, lease_owner: 'A', updated_at: T0 + 3 });
        await write((tx) => tx.outbox.reschedule(1, 1, T0 + 120_000));
        expect(await read((tx) => tx.outbox.get(1, 1))).toEqual({ ...leased, next_attempt_at: T0 + 120_000, read_failures: 0, lease_owner: null, lease_expires_at: null });
      });

      it('open, orphans, settledSince: by id, at most the limit', async () => {
        const states: OutboxState[] = ['queued', 'sending', 'awaitingOperation', 'uncertain', 'accepted', 'rejected', 'superseded', 'queued', 'rejected'];
        await write(async (tx) => {
          for (const [i, state] of states.entries()) {
            await tx.outbox.enqueue(enqueueRow(i + 1, 1, { next_attempt_at: T0 + (i % 2) * 1_000 }));
            if (state !== 'queued') await tx.outbox.setState(i + 1, 1, state, T0 + i * 10);
          }
        });
        expect(orderIds(await read((tx) => tx.outbox.open(ALL)))).toEqual([1, 2, 3, 4, 8]);
        expect(orderIds(await read((tx) => tx.outbox.open(3)))).toEqual([1, 2, 3]);
        // Order 2 went to `sending` without a lease; 10 and 11 are sent under a lease that still runs.
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(10, 1));
          await tx.outbox.enqueue(enqueueRow(11, 1));
          await tx.outbox.enqueue(enqueueRow(12, 1));
          await tx.outbox.setState(12, 1, 'sending', T0); // no lease either
          for (const orderId of [10, 11]) {
            expect([...(await tx.outbox.claimForSend([(await tx.outbox.get(orderId, 1))!.id], 'A', T0, LONG_LEASE_MS))]).toHaveLength(1);
            await tx.outbox.setState(orderId, 1, 'sending', T0, { sent: true });
          }
        });
        expect(orderIds(await read((tx) => tx.outbox.orphans(T0 + 1_000, ALL)))).toEqual([2, 12]);
        expect(orderIds(await read((tx) => tx.outbox.orphans(T0 + 1_000, 1)))).toEqual([2]);
        // Rejected at T0 + 50 (order 6) and T0 + 80 (order 9).
        expect(orderIds(await read((tx) => tx.outbox.settledSince('rejected', T0 + 50, ALL)))).toEqual([6, 9]);
        expect(orderIds(await read((tx) => tx.outbox.settledSince('rejected', T0 + 51, ALL)))).toEqual([9]);
        expect(orderIds(await read((tx) => tx.outbox.settledSince('rejected', T0, 1)))).toEqual([6]);
        expect(orderIds(await read((tx) => tx.outbox.settledSince('accepted', T0, ALL)))).toEqual([5]);
        expect(orderIds(await read((tx) => tx.outbox.settledSince('superseded', T0 + 61, ALL)))).toEqual([]);
      });

      it('counts: every state, 0 where none; nextDueAt: the earliest free queued or uncertain row', async () => {
        expect(await read((tx) => tx.outbox.counts())).toEqual(Object.fromEntries(OUTBOX_STATES.map((s) => [s, 0])));
        expect(await read((tx) => tx.outbox.nextDueAt(T0))).toBeUndefined();
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(1, 1, { next_attempt_at: T0 - 9_000 }));
          await tx.outbox.setState(1, 1, 'sending', T0); // not counted for nextDueAt
          await tx.outbox.enqueue(enqueueRow(2, 1, { next_attempt_at: T0 + 7_000 }));
          await tx.outbox.enqueue(enqueueRow(3, 1, { next_attempt_at: T0 + 5_000 }));
          await tx.outbox.setState(3, 1, 'uncertain', T0);
          await tx.outbox.enqueue(enqueueRow(4, 1, { next_attempt_at: T0 - 8_000 }));
          await tx.outbox.setState(4, 1, 'accepted', T0);
        });
        expect(await read((tx) => tx.outbox.counts())).toEqual({ queued: 1, sending: 1, awaitingOperation: 0, uncertain: 1, accepted: 1, rejected: 0, superseded: 0 });
        expect(await read((tx) => tx.outbox.nextDueAt(T0))).toBe(T0 + 5_000);
        await write((tx) => tx.outbox.enqueue(enqueueRow(5, 1, { next_attempt_at: T0 + 1_000 })));
        expect(await read((tx) => tx.outbox.nextDueAt(T0))).toBe(T0 + 1_000);
        // Leased by another owner: its work, not a due time of anyone else's, until the lease ends.
        await write((tx) => tx.outbox.lease('queued', 'A', T0 + 1_000, 30_000, 10));
        expect(await read((tx) => tx.outbox.nextDueAt(T0 + 1_000))).toBe(T0 + 5_000);
      });
    });

    describe('outbox kind and payload', () => {
      const answer = enqueueRow(6, 1, {
        kind: 'cancellationAnswer',
        status: 'CANCELLATION_ANSWER',
        substatus: 'ORDER_DELIVERED',
        payload: '{"accepted":false,"reason":"ORDER_DELIVERED"}',
      });

      it('a row is a statusChange without payload unless enqueued as another kind; kind and payload come back from get, lease and open', async () => {
        await write(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(5, 1));
          await tx.outbox.enqueue(answer);
        });
        expect(await read((tx) => tx.outbox.get(5, 1))).toMatchObject({ kind: 'statusChange', payload: null });
        expect(await read((tx) => tx.outbox.get(6, 1))).toEqual({ ...queuedRow(answer), id: expect.any(Number) });
        const leased = await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10));
        expect(leased.map((r) => [r.order_id, r.kind, r.payload])).toEqual([
          [5, 'statusChange', null],
          [6, 'cancellationAnswer', answer.payload],
        ]);
        expect((await read((tx) => tx.outbox.open(ALL))).map((r) => [r.kind, r.payload])).toEqual([
          ['statusChange', null],
          ['cancellationAnswer', answer.payload],
        ]);
      });

      it('re-enqueue of a request keeps its kind and payload, as it keeps its target', async () => {
        await write(async (tx) => {
          await tx.outbox.enqueue(answer);
          await tx.outbox.setState(6, 1, 'uncertain', T0 + 1, { lastError: 'timeout' });
        });
        await write((tx) => tx.outbox.enqueue({ ...answer, kind: 'statusChange', payload: null, next_attempt_at: T0 + 9, now: T0 + 2 }));
        expect(await read((tx) => tx.outbox.get(6, 1))).toMatchObject({ state: 'queued', kind: 'cancellationAnswer', payload: answer.payload, next_attempt_at: T0 + 9 });
      });
    });

    describe('inbox', () => {
      it('insert: a new row, received at now, pending and not processed or finished and processed at now; recent finds it; absent ids and times round-trip as null', async () => {
        const row = inboxRow('n-1');
        const first = await write((tx) => tx.inbox.insert(row));
        expect(first).toEqual({ id: expect.any(Number), duplicate: false });
        const { now, ...fields } = row;
        expect(await read((tx) => tx.inbox.recent(ALL))).toEqual([{ ...fields, id: first.id, received_at: now, processed_at: null, last_error: null }]);
        const bare = inboxRow('n-2', { type: 'SOMETHING_NEW', campaign_id: null, order_id: null, event_at: null, state: 'ignored', now: T0 + 1 });
        const second = await write((tx) => tx.inbox.insert(bare));
        expect(second).toEqual({ id: expect.any(Number), duplicate: false });
        expect(second.id).toBeGreaterThan(first.id);
        const { now: bareNow, ...bareFields } = bare;
        expect((await read((tx) => tx.inbox.recent(ALL)))[0]).toEqual({ ...bareFields, id: second.id, received_at: bareNow, processed_at: bareNow, last_error: null });
        const done = await write((tx) => tx.inbox.insert(inboxRow('n-3', { type: 'ORDER_CREATED', state: 'done', now: T0 + 2 })));
        expect((await read((tx) => tx.inbox.recent(1)))[0]).toMatchObject({ id: done.id, state: 'done', received_at: T0 + 2, processed_at: T0 + 2 });
      });

      it('insert of a dedupe key already there: a duplicate, the first row’s id, and nothing written, in a later transaction or the same one', async () => {
        const first = await write((tx) => tx.inbox.insert(inboxRow('n-1')));
        await write((tx) => tx.inbox.finish(first.id, 'done', T0 + 5));
        const before = await snapshot(store);
        const again = await write((tx) => tx.inbox.insert(inboxRow('n-1', { type: 'ORDER_CANCELLED', body: '{"other":true}', state: 'pending', now: T0 + 9 })));
        expect(again).toEqual({ id: first.id, duplicate: true });
        expect(await snapshot(store)).toEqual(before);
        const [a, b] = await write(async (tx) => [await tx.inbox.insert(inboxRow('n-2')), await tx.inbox.insert(inboxRow('n-2', { body: '{}', now: T0 + 1 }))]);
        expect(a).toEqual({ id: expect.any(Number), duplicate: false });
        expect(b).toEqual({ id: a.id, duplicate: true });
        expect(await read((tx) => tx.inbox.recent(ALL))).toMatchObject([
          { id: a.id, body: inboxRow('n-2').body, received_at: T0 },
          { id: first.id, state: 'done' },
        ]);
      });

      it('an insert rolled back leaves no row: the key inserted again is new', async () => {
        await expect(
          write(async (tx) => {
            await tx.inbox.insert(inboxRow('n-1'));
            throw new Error('undone');
          }),
        ).rejects.toThrow('undone');
        expect(await read((tx) => tx.inbox.recent(ALL))).toEqual([]);
        expect(await write((tx) => tx.inbox.insert(inboxRow('n-1')))).toMatchObject({ duplicate: false });
      });

      it('takePending: pending rows by id, at most the limit; finish marks one done or ignored at now, with its error or none', async () => {
        const states = [
          ['a', 'pending'],
          ['b', 'done'],
          ['c', 'pending'],
          ['d', 'ignored'],
          ['e', 'pending'],
        ] as const;
        const ids = await write(async (tx) => {
          const out: number[] = [];
          for (const [key, state] of states) out.push((await tx.inbox.insert(inboxRow(key, { state }))).id);
          return out;
        });
        const keys = (rows: readonly { dedupe_key: string }[]) => rows.map((r) => r.dedupe_key);
        expect(keys(await write((tx) => tx.inbox.takePending(2)))).toEqual(['a', 'c']);
        // Taking is not finishing: rows a transaction took and did not finish are pending still.
        expect(keys(await write((tx) => tx.inbox.takePending(ALL)))).toEqual(['a', 'c', 'e']);
        await write(async (tx) => {
          await tx.inbox.finish(ids[0]!, 'done', T0 + 10);
          await tx.inbox.finish(ids[2]!, 'ignored', T0 + 11, 'campaign 99 is not tracked');
        });
        expect(keys(await write((tx) => tx.inbox.takePending(ALL)))).toEqual(['e']);
        const byKey = new Map((await read((tx) => tx.inbox.recent(ALL))).map((r) => [r.dedupe_key, r]));
        expect(byKey.get('a')).toMatchObject({ state: 'done', processed_at: T0 + 10, last_error: null, received_at: T0 });
        expect(byKey.get('c')).toMatchObject({ state: 'ignored', processed_at: T0 + 11, last_error: 'campaign 99 is not tracked' });
        expect(byKey.get('e')).toMatchObject({ state: 'pending', processed_at: null, last_error: null });
      });

      it('takePending in two transactions at once: every row goes to one of them and is finished once', async () => {
        const all = await write(async (tx) => {
          const ids: number[] = [];
          for (let i = 1; i <= 30; i++) ids.push((await tx.inbox.insert(inboxRow(`n-${i}`))).id);
          return ids;
        });
        // Two at once first, so neither drain below starts late (a pool opening its second connection).
        await Promise.all([read((tx) => tx.inbox.counts()), read((tx) => tx.inbox.counts())]);
        const drain = async (owner: string): Promise<number[]> => {
          const taken: number[] = [];
          for (;;) {
            const ids = await write(async (tx) => {
              const rows = await tx.inbox.takePending(3);
              // Held a moment: the other transaction would take the same rows meanwhile, if the store let it.
              await new Promise((resolve) => setTimeout(resolve, 2));
              for (const r of rows) await tx.inbox.finish(r.id, 'done', T0 + 1, owner);
              return rows.map((r) => r.id);
            });
            if (ids.length === 0) return taken;
            taken.push(...ids);
          }
        };
        const [a, b] = await Promise.all([drain('A'), drain('B')]);
        expect([...a, ...b].sort((x, y) => x - y)).toEqual(all);
        const finishedBy = new Map((await read((tx) => tx.inbox.recent(ALL))).map((r) => [r.id, r.last_error]));
        for (const id of a) expect(finishedBy.get(id)).toBe('A');
        for (const id of b) expect(finishedBy.get(id)).toBe('B');
        expect(await read((tx) => tx.inbox.counts())).toEqual({ pending: 0, done: 30, ignored: 0 });
      });

      it('counts: every state, 0 where none; pendingCount: the pending ones; recent: by id, newest first, at most the limit', async () => {
        expect(await read((tx) => tx.inbox.counts())).toEqual(Object.fromEntries(INBOX_STATES.map((s) => [s, 0])));
        expect(await read((tx) => tx.inbox.pendingCount())).toBe(0);
        expect(await read((tx) => tx.inbox.recent(ALL))).toEqual([]);
        await write(async (tx) => {
          for (const [key, state] of [
            ['a', 'pending'],
            ['b', 'ignored'],
            ['c', 'pending'],
          ] as const)
            await tx.inbox.insert(inboxRow(key, { state }));
        });
        expect(await read((tx) => tx.inbox.counts())).toEqual({ pending: 2, done: 0, ignored: 1 });
        expect(await read((tx) => tx.inbox.pendingCount())).toBe(2);
        expect((await read((tx) => tx.inbox.recent(2))).map((r) => r.dedupe_key)).toEqual(['c', 'b']);
        const [a] = await write((tx) => tx.inbox.takePending(1));
        await write((tx) => tx.inbox.finish(a!.id, 'done', T0 + 1));
        expect(await read((tx) => tx.inbox.pendingCount())).toBe(1);
      });

      it('prune: finished rows received before the cut go, the oldest first, at most the limit; pending ones stay whatever their age', async () => {
        const DAY = 24 * HOUR;
        // Inserted out of age order, so "oldest first" is by received_at, not by id.
        const rows = [
          ['done-9d', 'done', T0 - 9 * DAY],
          ['pending-30d', 'pending', T0 - 30 * DAY],
          ['ignored-20d', 'ignored', T0 - 20 * DAY],
          ['done-cut', 'done', T0],
          ['done-19d', 'done', T0 - 19 * DAY],
          ['ignored-1d', 'ignored', T0 + DAY],
          ['done-30d', 'done', T0 - 30 * DAY],
        ] as const;
        await write(async (tx) => {
          for (const [key, state, now] of rows) await tx.inbox.insert(inboxRow(key, { state, now }));
        });
        const keys = async () => (await read((tx) => tx.inbox.recent(ALL))).map((r) => r.dedupe_key).sort();
        expect(await write((tx) => tx.inbox.prune(T0, 2))).toBe(2);
        expect(await keys()).toEqual(['done-19d', 'done-9d', 'done-cut', 'ignored-1d', 'pending-30d']);
        expect(await write((tx) => tx.inbox.prune(T0, 2))).toBe(2);
        expect(await keys()).toEqual(['done-cut', 'ignored-1d', 'pending-30d']);
        // Nothing left before the cut but the pending row; a row received at the cut is not before it.
        expect(await write((tx) => tx.inbox.prune(T0, ALL))).toBe(0);
        expect(await keys()).toEqual(['done-cut', 'ignored-1d', 'pending-30d']);
        expect(await read((tx) => tx.inbox.pendingCount())).toBe(1);
        // A repeat of a kept row is still a duplicate; a pruned key is new again.
        const kept = (await read((tx) => tx.inbox.recent(ALL))).find((r) => r.dedupe_key === 'done-cut')!;
        expect(await write((tx) => tx.inbox.insert(inboxRow('done-cut', { now: T0 + 2 })))).toEqual({ id: kept.id, duplicate: true });
        expect(await write((tx) => tx.inbox.insert(inboxRow('done-30d', { now: T0 + 2 })))).toMatchObject({ duplicate: false });
        // The old pending row, once finished, goes by when it came, not when it was finished.
        const old = (await read((tx) => tx.inbox.recent(ALL))).find((r) => r.dedupe_key === 'pending-30d')!;
        await write((tx) => tx.inbox.finish(old.id, 'done', T0 + 3));
        expect(await write((tx) => tx.inbox.prune(T0, ALL))).toBe(1);
        expect(await keys()).toEqual(['done-30d', 'done-cut', 'ignored-1d']);
      });
    });

    describe('order reads', () => {
      it('request: a row due and asked at now, no attempts, no lease; get finds it, count counts it', async () => {
        await write((tx) => tx.reads.request(readRequest(7, { campaignId: 20, businessId: 2, now: T0 + 5 })));
        expect(await read((tx) => tx.reads.get(7))).toEqual({
          order_id: 7,
          campaign_id: 20,
          business_id: 2,
          reason: 'ORDER_CREATED',
          requested_at: T0 + 5,
          due_at: T0 + 5,
          attempts: 0,
          lease_owner: null,
          lease_expires_at: null,
        });
        expect(await read((tx) => tx.reads.get(8))).toBeUndefined();
        expect(await read((tx) => tx.reads.count())).toBe(1);
      });

      it('request again: the latest reason, the later requested_at, the sooner due_at; campaign, business, attempts and a running lease stay', async () => {
        await write((tx) => tx.reads.request(readRequest(7)));
        await write(async (tx) => {
          expect(await tx.reads.lease(1, 'A', T0, 30_000, 10)).toHaveLength(1);
          await tx.reads.release(7, 'A', T0 + 60_000);
        });
        await write((tx) => tx.reads.request(readRequest(7, { reason: 'ORDER_STATUS_UPDATED', campaignId: 99, businessId: 99, now: T0 + 10 })));
        const asked = { order_id: 7, campaign_id: 10, business_id: 1, reason: 'ORDER_STATUS_UPDATED', requested_at: T0 + 10, due_at: T0 + 10, attempts: 1, lease_owner: null, lease_expires_at: null };
        expect(await read((tx) => tx.reads.get(7))).toEqual(asked);
        // An ask stamped earlier (another host's clock behind): due sooner, requested_at stays the later one.
        await write((tx) => tx.reads.request(readRequest(7, { reason: 'ORDER_CANCELLED', now: T0 + 3 })));
        expect(await read((tx) => tx.reads.get(7))).toEqual({ ...asked, reason: 'ORDER_CANCELLED', due_at: T0 + 3 });
        const [[leased], expiry] = await leasing(T0 + 3, 30_000, () => write((tx) => tx.reads.lease(1, 'B', T0 + 3, 30_000, 10)));
        expect(leased).toMatchObject({ order_id: 7, lease_owner: 'B', lease_expires_at: expiry });
        await write((tx) => tx.reads.request(readRequest(7, { now: T0 + 20 })));
        expect(await read((tx) => tx.reads.get(7))).toEqual({
          ...asked,
          reason: 'ORDER_CREATED',
          requested_at: T0 + 20,
          due_at: T0 + 3,
          lease_owner: 'B',
          lease_expires_at: leased!.lease_expires_at,
        });
        expect(await read((tx) => tx.reads.count())).toBe(1);
      });

      it('dueBusinesses: businesses with due, free rows, the longest-waiting first', async () => {
        await write(async (tx) => {
          await tx.reads.request(readRequest(1, { businessId: 1, now: T0 - 1_000 }));
          await tx.reads.request(readRequest(2, { businessId: 2, now: T0 - 5_000 }));
          await tx.reads.request(readRequest(3, { businessId: 3, now: T0 + 1 })); // not due
          await tx.reads.request(readRequest(4, { businessId: 4, now: T0 - 9_000 }));
          await tx.reads.request(readRequest(5, { businessId: 1, now: T0 - 500 }));
        });
        expect(await read((tx) => tx.reads.dueBusinesses(T0))).toEqual([4, 2, 1]);
        await write((tx) => tx.reads.lease(4, 'A', T0, 30_000, 10));
        expect(await read((tx) => tx.reads.dueBusinesses(T0))).toEqual([2, 1]);
        // Business 3's row is due by then; 4's is A's still.
        expect(await read((tx) => tx.reads.dueBusinesses(T0 + 1_000))).toEqual([2, 1, 3]);
      });

      it('lease: the business’s due, free rows, oldest due first, up to the limit, for the owner until now + leaseMs', async () => {
        await write(async (tx) => {
          await tx.reads.request(readRequest(1, { now: T0 })); // order ≠ due order
          await tx.reads.request(readRequest(2, { now: T0 - 5_000 }));
          await tx.reads.request(readRequest(3, { now: T0 + 10_000 })); // not due yet
          await tx.reads.request(readRequest(4, { now: T0 }));
          await tx.reads.request(readRequest(6, { businessId: 2, now: T0 - 9_000 })); // another business
        });
        const [a, expiry] = await leasing(T0, 30_000, () => write((tx) => tx.reads.lease(1, 'A', T0, 30_000, 2)));
        expect(a.map((r) => [r.order_id, r.lease_owner, r.lease_expires_at, r.attempts])).toEqual([
          [2, 'A', expiry, 0],
          [1, 'A', expiry, 0],
        ]);
        expect(await read((tx) => tx.reads.get(1))).toEqual(a[1]);
        expect((await write((tx) => tx.reads.lease(1, 'B', T0 + 1_000, 30_000, 10))).map((r) => [r.order_id, r.lease_owner])).toEqual([[4, 'B']]);
        expect(await write((tx) => tx.reads.lease(1, 'C', T0 + 2_000, 30_000, 10))).toEqual([]);
        expect((await write((tx) => tx.reads.lease(2, 'C', T0, 30_000, 10))).map((r) => r.order_id)).toEqual([6]);
        expect((await write((tx) => tx.reads.lease(1, 'C', T0 + 10_000, 30_000, 10))).map((r) => r.order_id)).toEqual([3]);
      });

      it('complete: deletes the row unless it was asked for again after the read started; then it stays, due, its lease cleared', async () => {
        await write(async (tx) => {
          await tx.reads.request(readRequest(1));
          await tx.reads.request(readRequest(2));
        });
        expect(await write((tx) => tx.reads.lease(1, 'A', T0, 30_000, 10))).toHaveLength(2);
        await write((tx) => tx.reads.request(readRequest(2, { reason: 'ORDER_STATUS_UPDATED', now: T0 + 50 }))); // asked again while it is read
        // A read that started as the ask came answers it.
        await write((tx) => tx.reads.complete(1, T0));
        expect(await read((tx) => tx.reads.get(1))).toBeUndefined();
        await write((tx) => tx.reads.complete(2, T0));
        expect(await read((tx) => tx.reads.get(2))).toEqual({
          order_id: 2,
          campaign_id: 10,
          business_id: 1,
          reason: 'ORDER_STATUS_UPDATED',
          requested_at: T0 + 50,
          due_at: T0,
          attempts: 0,
          lease_owner: null,
          lease_expires_at: null,
        });
        expect(await read((tx) => tx.reads.dueBusinesses(T0))).toEqual([1]);
        await write((tx) => tx.reads.complete(2, T0 + 50));
        expect(await read((tx) => tx.reads.count())).toBe(0);
        await write((tx) => tx.reads.complete(9, T0)); // no row: nothing to do
        expect(await read((tx) => tx.reads.count())).toBe(0);
      });

      it('release: only by the owner; the row due again at dueAt, attempts + 1, lease cleared', async () => {
        await write(async (tx) => {
          await tx.reads.request(readRequest(1));
          await tx.reads.request(readRequest(2));
          await tx.reads.request(readRequest(3, { now: T0 + 1 }));
        });
        expect((await write((tx) => tx.reads.lease(1, 'A', T0, 30_000, 10))).map((r) => r.order_id)).toEqual([1, 2]);
        const held = (await read((tx) => tx.reads.get(1)))!;
        await write((tx) => tx.reads.release(1, 'B', T0 + 90_000)); // not B's
        expect(await read((tx) => tx.reads.get(1))).toEqual(held);
        await write((tx) => tx.reads.release(1, 'A', T0 + 90_000));
        const released = { ...held, lease_owner: null, lease_expires_at: null, due_at: T0 + 90_000, attempts: 1 };
        expect(await read((tx) => tx.reads.get(1))).toEqual(released);
        await write((tx) => tx.reads.release(1, 'A', T0 + 5)); // A's no more
        expect(await read((tx) => tx.reads.get(1))).toEqual(released);
        // A row nobody leased is nobody's to release.
        const three = await read((tx) => tx.reads.get(3));
        await write((tx) => tx.reads.release(3, 'A', T0 + 5));
        expect(await read((tx) => tx.reads.get(3))).toEqual(three);
        expect(await read((tx) => tx.reads.get(2))).toMatchObject({ lease_owner: 'A', attempts: 0 });
      });

      it('count; nextDueAt: the earliest due time of a free row', async () => {
        expect(await read((tx) => tx.reads.count())).toBe(0);
        expect(await read((tx) => tx.reads.nextDueAt(T0))).toBeUndefined();
        await write(async (tx) => {
          await tx.reads.request(readRequest(1, { now: T0 + 7_000 }));
          await tx.reads.request(readRequest(2, { now: T0 + 5_000 }));
          await tx.reads.request(readRequest(3, { businessId: 2, now: T0 + 1_000 }));
        });
        expect(await read((tx) => tx.reads.count())).toBe(3);
        expect(await read((tx) => tx.reads.nextDueAt(T0))).toBe(T0 + 1_000);
        // Leased by another owner: its work, not a due time of anyone else's, until the lease ends.
        expect(await write((tx) => tx.reads.lease(2, 'A', T0 + 1_000, 30_000, 10))).toHaveLength(1);
        expect(await read((tx) => tx.reads.nextDueAt(T0 + 1_000))).toBe(T0 + 5_000);
      });
    });

    describe('operations', () => {
      it('insert: at row_version 1; a second insert of the operation keeps the first row and says false', async () => {
        expect(await write((tx) => tx.operations.insert(operationRow('op-1')))).toBe(true);
        const first = { ...operationRow('op-1'), row_version: 1, created_at: T0 };
        expect(await read((tx) => tx.operations.get('op-1'))).toEqual(first);
        expect(await write((tx) => tx.operations.insert(operationRow('op-1', { state: 'done', snapshot: '{}', updated_at: T0 + 1 })))).toBe(false);
        expect(await read((tx) => tx.operations.get('op-1'))).toEqual(first);
        expect(await read((tx) => tx.operations.get('op-2'))).toBeUndefined();
      });

      it('update: state, next poll, snapshot and machine version, only at the expected row version', async () => {
        await write((tx) => tx.operations.insert(operationRow('op-1', { order_id: null })));
        const change = operationRow('op-1', { operation_type: 'other', business_id: 9, order_id: 9, deadline_at: 1, state: 'done', next_poll_at: T0 + 60_000, machine_version: 2, snapshot: '{"done":true}', updated_at: T0 + 5 });
        expect(await write((tx) => tx.operations.update(change, 2))).toBe(false);
        expect(await write((tx) => tx.operations.update(change, 1))).toBe(true);
        const updated = { ...operationRow('op-1', { order_id: null }), state: 'done', next_poll_at: T0 + 60_000, machine_version: 2, snapshot: '{"done":true}', updated_at: T0 + 5, row_version: 2, created_at: T0 };
        expect(await read((tx) => tx.operations.get('op-1'))).toEqual(updated);
        expect(await write((tx) => tx.operations.update({ ...change, state: 'failed' }, 1))).toBe(false);
        expect(await read((tx) => tx.operations.get('op-1'))).toEqual(updated);
        expect(await write((tx) => tx.operations.update(operationRow('op-2'), 1))).toBe(false);
      });

      it('due, counts, nextDueAt', async () => {
        expect(await read((tx) => tx.operations.nextDueAt())).toBeUndefined();
        expect(await read((tx) => tx.operations.counts())).toEqual({});
        await write(async (tx) => {
          await tx.operations.insert(operationRow('op-a', { next_poll_at: T0 }));
          await tx.operations.insert(operationRow('op-b', { next_poll_at: T0 - 2_000 }));
          await tx.operations.insert(operationRow('op-c', { next_poll_at: T0 + 1 })); // not due
          await tx.operations.insert(operationRow('op-d', { next_poll_at: T0 - 9_000, state: 'done' }));
          await tx.operations.insert(operationRow('op-e', { next_poll_at: T0 - 1_000 }));
        });
        const ids = (rows: readonly { operation_id: string }[]) => rows.map((r) => r.operation_id);
        expect(ids(await read((tx) => tx.operations.due(T0, 10)))).toEqual(['op-b', 'op-e', 'op-a']);
        expect(ids(await read((tx) => tx.operations.due(T0, 2)))).toEqual(['op-b', 'op-e']);
        expect(await read((tx) => tx.operations.counts())).toEqual({ inProgress: 4, done: 1 });
        expect(await read((tx) => tx.operations.nextDueAt())).toBe(T0 - 2_000);
      });
    });

    describe('timers', () => {
      it('set, move, clear; list by due time then ref, of one kind or all, due at or before the bound', async () => {
        await write(async (tx) => {
          await tx.timers.set('dbs-cancel', '2', T0 + 2_000, { orderId: 2, note: 'ü' });
          await tx.timers.set('dbs-cancel', '1', T0 + 2_000);
          await tx.timers.set('other', '1', T0 + 1_000, [1, 2]);
          await tx.timers.set('dbs-cancel', '3', T0 + 9_000, { orderId: 3 });
        });
        expect(await read((tx) => tx.timers.list(undefined, T0 + 2_000))).toEqual([
          { kind: 'other', ref: '1', due_at: T0 + 1_000, payload: '[1,2]' },
          { kind: 'dbs-cancel', ref: '1', due_at: T0 + 2_000, payload: null },
          { kind: 'dbs-cancel', ref: '2', due_at: T0 + 2_000, payload: '{"orderId":2,"note":"ü"}' },
        ]);
        expect((await read((tx) => tx.timers.list('dbs-cancel', T0 + 9_000))).map((t) => t.ref)).toEqual(['1', '2', '3']);
        expect(await read((tx) => tx.timers.list('dbs-cancel', T0 + 1_999))).toEqual([]);
        await write(async (tx) => {
          await tx.timers.set('dbs-cancel', '3', T0 + 500, { moved: true }); // moves it, new payload
          await tx.timers.set('dbs-cancel', '2', T0 + 3_000); // and without one: none
          await tx.timers.clear('other', '1');
          await tx.timers.clear('other', 'never-set');
        });
        expect(await read((tx) => tx.timers.list(undefined, Number.MAX_SAFE_INTEGER))).toEqual([
          { kind: 'dbs-cancel', ref: '3', due_at: T0 + 500, payload: '{"moved":true}' },
          { kind: 'dbs-cancel', ref: '1', due_at: T0 + 2_000, payload: null },
          { kind: 'dbs-cancel', ref: '2', due_at: T0 + 3_000, payload: null },
        ]);
      });
    });

    describe('limiter', () => {
      it('put replaces a budget; get; all by resource key', async () => {
        expect(await read((tx) => tx.limiter.get('res-a'))).toBeUndefined();
        await write(async (tx) => {
          await tx.limiter.put(budgetRow('res-b'));
          await tx.limiter.put(budgetRow('res-a'));
          await tx.limiter.put(budgetRow('res-a', { capacity: 50, remaining: 0, window_ends_at: T0 + 1, blocked_until: T0 + 2, updated_at: T0 + 3 }));
        });
        const a = budgetRow('res-a', { capacity: 50, remaining: 0, window_ends_at: T0 + 1, blocked_until: T0 + 2, updated_at: T0 + 3 });
        expect(await read((tx) => tx.limiter.get('res-a'))).toEqual(a);
        expect(await read((tx) => tx.limiter.all())).toEqual([a, budgetRow('res-b')]);
      });

      it('last_rate_limited_at: null for a budget never refused, an instant round-trips, and put replaces it like every column', async () => {
        await write((tx) => tx.limiter.put(budgetRow('res-a')));
        expect(await read((tx) => tx.limiter.get('res-a'))).toEqual(budgetRow('res-a'));
        expect((await read((tx) => tx.limiter.get('res-a')))?.last_rate_limited_at).toBeNull();
        // An epoch-ms instant past 2^32: a 32-bit column would lose it.
        const refusedAt = T0 + 4_321;
        await write((tx) => tx.limiter.put(budgetRow('res-a', { blocked_until: T0 + 60_000, last_rate_limited_at: refusedAt })));
        expect(await read((tx) => tx.limiter.get('res-a'))).toEqual(budgetRow('res-a', { blocked_until: T0 + 60_000, last_rate_limited_at: refusedAt }));
        expect((await read((tx) => tx.limiter.all())).map((b) => b.last_rate_limited_at)).toEqual([refusedAt]);
        // A later put carrying the column keeps it; the row it replaces is the caller's to carry.
        await write(async (tx) => tx.limiter.put({ ...(await tx.limiter.get('res-a'))!, remaining: 3, updated_at: T0 + 5_000 }));
        expect(await read((tx) => tx.limiter.get('res-a'))).toMatchObject({ remaining: 3, last_rate_limited_at: refusedAt });
        await write((tx) => tx.limiter.put(budgetRow('res-a', { last_rate_limited_at: null })));
        expect((await read((tx) => tx.limiter.get('res-a')))?.last_rate_limited_at).toBeNull();
      });

      it('leases: in flight per scope, weight per resource but one lease, removed once', async () => {
        await write(async (tx) => {
          await tx.limiter.addLease('l1', 'scope-a', 'res-a', 3, T0, 10_000);
          await tx.limiter.addLease('l2', 'scope-a', 'res-b', 5, T0, 10_000);
          await tx.limiter.addLease('l3', 'scope-b', 'res-a', 7, T0, 0); // expires at once, still counted until dropped
        });
        expect(await read(async (tx) => [await tx.limiter.inFlight('scope-a'), await tx.limiter.inFlight('scope-b'), await tx.limiter.inFlight('scope-c')])).toEqual([2, 1, 0]);
        expect(await read(async (tx) => [await tx.limiter.inFlightWeight('res-a', 'l1'), await tx.limiter.inFlightWeight('res-a', 'none'), await tx.limiter.inFlightWeight('res-c', 'l1')])).toEqual([7, 10, 0]);
        expect(await write((tx) => tx.limiter.removeLease('l3'))).toBe(true);
        expect(await write((tx) => tx.limiter.removeLease('l3'))).toBe(false);
        expect(await read((tx) => tx.limiter.inFlightWeight('res-a', 'l1'))).toBe(0);
      });
    });

    if (options.leaseClock === 'caller') {
      describe('lease times on the caller’s clock: exact, and passed by a later now', () => {
        it('lease: a lease expired before now is taken over; one expiring exactly now is not', async () => {
          await write((tx) => tx.outbox.enqueue(enqueueRow(1, 1)));
          expect(await write((tx) => tx.outbox.lease('queued', 'A', T0, 30_000, 10))).toHaveLength(1);
          expect(await write((tx) => tx.outbox.lease('queued', 'B', T0 + 30_000, 30_000, 10))).toEqual([]);
          const taken = await write((tx) => tx.outbox.lease('queued', 'B', T0 + 30_001, 30_000, 10));
          expect(taken.map((r) => [r.order_id, r.lease_owner, r.lease_expires_at])).toEqual([[1, 'B', T0 + 60_001]]);
          expect(await read((tx) => tx.outbox.get(1, 1))).toMatchObject({ lease_owner: 'B', lease_expires_at: T0 + 60_001 });
        });

        it('dueCampaigns and orphans: a row is free again once its lease expired before now', async () => {
          await write(async (tx) => {
            await tx.outbox.enqueue(enqueueRow(1, 1, { campaign_id: 10 }));
            await tx.outbox.enqueue(enqueueRow(2, 1, { campaign_id: 20 }));
            await tx.outbox.enqueue(enqueueRow(3, 1, { campaign_id: 30 }));
            expect(orderIds(await tx.outbox.lease('queued', 'A', T0, 30_000, 10, 20))).toEqual([2]);
            expect([...(await tx.outbox.claimForSend([(await tx.outbox.get(3, 1))!.id], 'A', T0, 30_000))]).toHaveLength(1);
            await tx.outbox.setState(3, 1, 'sending', T0, { sent: true });
          });
          expect(await read((tx) => tx.outbox.dueCampaigns('queued', T0 + 30_000))).toEqual([10]);
          expect(await read((tx) => tx.outbox.dueCampaigns('queued', T0 + 30_001))).toEqual([10, 20]);
          expect(await read((tx) => tx.outbox.orphans(T0 + 30_000, ALL))).toEqual([]);
          expect(orderIds(await read((tx) => tx.outbox.orphans(T0 + 30_001, ALL)))).toEqual([3]);
        });

        it('reads: a lease expired before now is taken over, one expiring exactly now is not; dueBusinesses and nextDueAt see the row free again', async () => {
          await write((tx) => tx.reads.request(readRequest(1)));
          expect(await write((tx) => tx.reads.lease(1, 'A', T0, 30_000, 10))).toHaveLength(1);
          expect(await write((tx) => tx.reads.lease(1, 'B', T0 + 30_000, 30_000, 10))).toEqual([]);
          expect(await read((tx) => tx.reads.dueBusinesses(T0 + 30_000))).toEqual([]);
          expect(await read((tx) => tx.reads.nextDueAt(T0 + 30_000))).toBeUndefined();
          expect(await read((tx) => tx.reads.dueBusinesses(T0 + 30_001))).toEqual([1]);
          expect(await read((tx) => tx.reads.nextDueAt(T0 + 30_001))).toBe(T0);
          const taken = await write((tx) => tx.reads.lease(1, 'B', T0 + 30_001, 30_000, 10));
          expect(taken.map((r) => [r.order_id, r.lease_owner, r.lease_expires_at])).toEqual([[1, 'B', T0 + 60_001]]);
          await write((tx) => tx.reads.release(1, 'A', T0 + 1)); // A's lease is over: B's row
          expect(await read((tx) => tx.reads.get(1))).toMatchObject({ lease_owner: 'B', lease_expires_at: T0 + 60_001, attempts: 0 });
        });

        it('dropExpiredLeases drops those expiring at or before now; lingerLease moves the end, sooner or later', async () => {
          await write(async (tx) => {
            await tx.limiter.addLease('at', 'scope', 'res', 1, T0, 0);
            await tx.limiter.addLease('after', 'scope', 'res', 1, T0, 1);
            await tx.limiter.addLease('shortened', 'scope-s', 'res', 1, T0, 100);
            await tx.limiter.addLease('kept', 'scope-k', 'res', 1, T0, 100);
          });
          await write((tx) => tx.limiter.dropExpiredLeases(T0));
          expect(await read((tx) => tx.limiter.inFlight('scope'))).toBe(1);
          await write((tx) => tx.limiter.dropExpiredLeases(T0 + 1));
          expect(await read((tx) => tx.limiter.inFlight('scope'))).toBe(0);

          expect(await write((tx) => tx.limiter.lingerLease('shortened', T0 + 40, 10))).toBe(true);
          expect(await write((tx) => tx.limiter.lingerLease('kept', T0 + 400, 100))).toBe(true); // later than its own expiry
          expect(await write((tx) => tx.limiter.lingerLease('missing', T0, 500))).toBe(false);
          await write((tx) => tx.limiter.dropExpiredLeases(T0 + 49));
          expect(await read(async (tx) => [await tx.limiter.inFlight('scope-s'), await tx.limiter.inFlight('scope-k')])).toEqual([1, 1]);
          await write((tx) => tx.limiter.dropExpiredLeases(T0 + 50));
          expect(await read(async (tx) => [await tx.limiter.inFlight('scope-s'), await tx.limiter.inFlight('scope-k')])).toEqual([0, 1]);
          await write((tx) => tx.limiter.dropExpiredLeases(T0 + 499));
          expect(await read((tx) => tx.limiter.inFlight('scope-k'))).toBe(1);
          await write((tx) => tx.limiter.dropExpiredLeases(T0 + 500));
          expect(await read((tx) => tx.limiter.inFlight('scope-k'))).toBe(0);
        });
      });
    } else {
      describe('lease times on the database’s clock: they pass in real time, whatever now the caller passes', () => {
        it('outbox: a short lease frees its row for lease, dueCampaigns and orphans while now stands still; a long one holds even for a caller an hour ahead', async () => {
          await write(async (tx) => {
            for (const orderId of [1, 2, 3, 4]) await tx.outbox.enqueue(enqueueRow(orderId, 1, { campaign_id: orderId * 10 }));
            expect(orderIds(await tx.outbox.lease('queued', 'A', T0, LONG_LEASE_MS, 10, 10))).toEqual([1]);
            expect(orderIds(await tx.outbox.lease('queued', 'A', T0, SHORT_LEASE_MS, 10, 20))).toEqual([2]);
            for (const [orderId, leaseMs] of [
              [3, LONG_LEASE_MS],
              [4, SHORT_LEASE_MS],
            ] as const) {
              expect([...(await tx.outbox.claimForSend([(await tx.outbox.get(orderId, 1))!.id], 'A', T0, leaseMs))]).toHaveLength(1);
              await tx.outbox.setState(orderId, 1, 'sending', T0, { sent: true });
            }
          });
          expect(await write((tx) => tx.outbox.lease('queued', 'B', T0 + HOUR, 30_000, 10, 10))).toEqual([]);
          expect(await read((tx) => tx.outbox.dueCampaigns('queued', T0 + HOUR))).not.toContain(10);
          expect(orderIds(await read((tx) => tx.outbox.orphans(T0 + HOUR, ALL)))).not.toContain(3);

          await waitUntil(async () => (await read((tx) => tx.outbox.dueCampaigns('queued', T0))).includes(20), 'row 2’s short lease ends', 60_000);
          await waitUntil(async () => orderIds(await read((tx) => tx.outbox.orphans(T0, ALL))).includes(4), 'row 4’s short lease ends', 60_000);
          const [taken, expiry] = await leasing(T0, 30_000, () => write((tx) => tx.outbox.lease('queued', 'B', T0, 30_000, 10)));
          expect(taken.map((r) => [r.order_id, r.lease_owner, r.lease_expires_at])).toEqual([[2, 'B', expiry]]);
          expect(orderIds(await read((tx) => tx.outbox.orphans(T0, ALL)))).toEqual([4]);
        });

        it('reads: a short lease frees its row for lease, dueBusinesses and nextDueAt while now stands still; a long one holds even for a caller an hour ahead', async () => {
          await write(async (tx) => {
            await tx.reads.request(readRequest(1, { businessId: 1 }));
            await tx.reads.request(readRequest(2, { businessId: 2 }));
            expect((await tx.reads.lease(1, 'A', T0, LONG_LEASE_MS, 10)).map((r) => r.order_id)).toEqual([1]);
            expect((await tx.reads.lease(2, 'A', T0, SHORT_LEASE_MS, 10)).map((r) => r.order_id)).toEqual([2]);
          });
          expect(await write((tx) => tx.reads.lease(1, 'B', T0 + HOUR, 30_000, 10))).toEqual([]);
          expect(await read((tx) => tx.reads.dueBusinesses(T0 + HOUR))).not.toContain(1);

          await waitUntil(async () => (await read((tx) => tx.reads.dueBusinesses(T0))).includes(2), 'row 2’s short lease ends', 60_000);
          expect(await read((tx) => tx.reads.nextDueAt(T0))).toBe(T0);
          const [taken, expiry] = await leasing(T0, 30_000, () => write((tx) => tx.reads.lease(2, 'B', T0, 30_000, 10)));
          expect(taken.map((r) => [r.order_id, r.lease_owner, r.lease_expires_at])).toEqual([[2, 'B', expiry]]);
          expect(await read((tx) => tx.reads.dueBusinesses(T0))).toEqual([]);
          expect(await read((tx) => tx.reads.nextDueAt(T0 + HOUR))).toBeUndefined();
        });

        it('limiter: dropExpiredLeases drops the leases ended on the database’s clock; lingerLease sets a new end from that clock’s now', async () => {
          await write(async (tx) => {
            await tx.limiter.addLease('long', 'scope-l', 'res', 1, T0, LONG_LEASE_MS);
            await tx.limiter.addLease('short', 'scope-s', 'res', 1, T0, SHORT_LEASE_MS);
            await tx.limiter.addLease('shortened', 'scope-d', 'res', 1, T0, LONG_LEASE_MS);
            await tx.limiter.addLease('lengthened', 'scope-e', 'res', 1, T0, SHORT_LEASE_MS);
            expect(await tx.limiter.lingerLease('lengthened', T0, LONG_LEASE_MS)).toBe(true);
          });
          const inFlight = () =>
            read(async (tx) => ({
              long: await tx.limiter.inFlight('scope-l'),
              short: await tx.limiter.inFlight('scope-s'),
              shortened: await tx.limiter.inFlight('scope-d'),
              lengthened: await tx.limiter.inFlight('scope-e'),
            }));
          await write((tx) => tx.limiter.dropExpiredLeases(T0 + HOUR));
          expect(await inFlight()).toMatchObject({ long: 1, shortened: 1, lengthened: 1 });
          expect(await write((tx) => tx.limiter.lingerLease('shortened', T0 + HOUR, SHORT_LEASE_MS))).toBe(true);
          expect(await write((tx) => tx.limiter.lingerLease('missing', T0, SHORT_LEASE_MS))).toBe(false);
          await waitUntil(
            async () => {
              await write((tx) => tx.limiter.dropExpiredLeases(T0));
              const now = await inFlight();
              return now.short === 0 && now.shortened === 0;
            },
            'the short and the shortened leases end',
            60_000,
          );
          expect(await inFlight()).toEqual({ long: 1, short: 0, shortened: 0, lengthened: 1 });
        });
      });
    }

    describe('wake-ups', () => {
      let nextOrderId = 1_000;
      /**
       * Commits transactions that each queue a row (of a new order) until `heard()`, one every
       * 200 ms at most: the first may commit before a listening connection is open.
       */
      async function enqueueUntil(heard: () => boolean, what: string): Promise<void> {
        let lastCommit = 0;
        await waitUntil(
          async () => {
            if (!heard() && Date.now() - lastCommit >= 200) {
              lastCommit = Date.now();
              await write((tx) => tx.outbox.enqueue(enqueueRow(nextOrderId++, 1)));
            }
            return heard();
          },
          what,
          60_000,
        );
      }

      it('onQueued: every listener is called after a transaction that queued rows commits; once stopped, one is called no more', async () => {
        let first = 0;
        let second = 0;
        const stopFirst = store.onQueued(() => first++);
        const stopSecond = store.onQueued(() => second++);
        await enqueueUntil(() => first > 0 && second > 0, 'both listeners hear a commit');
        stopFirst();
        const [firstBefore, secondBefore] = [first, second];
        await enqueueUntil(() => second > secondBefore, 'the listener still on hears the next commit');
        // One wake-up calls every listener in one go: the stopped one would have been called by now.
        expect(first).toBe(firstBefore);
        stopFirst(); // stopping twice is a no-op
        stopSecond();
        expect(['process', 'database']).toContain(store.wakeups);
      });

      it('a listener that throws stops neither the others nor the store', async () => {
        store.onQueued(() => {
          throw new Error('a listener failed');
        });
        let heard = 0;
        store.onQueued(() => heard++);
        await enqueueUntil(() => heard > 0, 'the second listener hears a commit');
        const before = heard;
        await enqueueUntil(() => heard > before, 'it hears the next one too');
        await write((tx) => tx.cursors.set('sync:1', 'after', T0));
        expect(await read((tx) => tx.cursors.get('sync:1'))).toBe('after');
      });
    });

    describe('cursors, campaigns, halts, counters', () => {
      it('cursors keep the last value set', async () => {
        expect(await read((tx) => tx.cursors.get('sync:1'))).toBeUndefined();
        await write(async (tx) => {
          await tx.cursors.set('sync:1', 'a', T0);
          await tx.cursors.set('sync:2', 'x', T0);
        });
        await write((tx) => tx.cursors.set('sync:1', 'b', T0 + 1));
        expect(await read(async (tx) => [await tx.cursors.get('sync:1'), await tx.cursors.get('sync:2')])).toEqual(['b', 'x']);
      });

      it('campaigns: upsert replaces, all by id; hasOrders and orderCount count the campaign’s orders only', async () => {
        await write(async (tx) => {
          await tx.campaigns.upsert({ campaign_id: 20, business_id: 2, model: 'DBS' });
          await tx.campaigns.upsert({ campaign_id: 10, business_id: 1, model: 'FBS' });
          await tx.campaigns.upsert({ campaign_id: 20, business_id: 3, model: 'EXPRESS' });
          await tx.orders.insert(orderRow(1, { campaign_id: 10 }));
          await tx.orders.insert(orderRow(2, { campaign_id: 10 }));
          await tx.orders.insert(orderRow(3, { campaign_id: 30 })); // a campaign no longer configured
        });
        expect(await read((tx) => tx.campaigns.all())).toEqual([
          { campaign_id: 10, business_id: 1, model: 'FBS' },
          { campaign_id: 20, business_id: 3, model: 'EXPRESS' },
        ]);
        expect(await read((tx) => tx.campaigns.get(20))).toEqual({ campaign_id: 20, business_id: 3, model: 'EXPRESS' });
        expect(await read((tx) => tx.campaigns.get(30))).toBeUndefined();
        expect(await read(async (tx) => [await tx.campaigns.hasOrders(10), await tx.campaigns.hasOrders(20), await tx.campaigns.hasOrders(30)])).toEqual([true, false, true]);
        expect(await read(async (tx) => [await tx.campaigns.orderCount(10), await tx.campaigns.orderCount(20), await tx.campaigns.orderCount(30)])).toEqual([2, 0, 1]);
      });

      it('halts: set replaces the campaign’s halt, all by campaign id, clearAll says how many it cleared', async () => {
        expect(await read((tx) => tx.halts.all())).toEqual([]);
        const halt = (campaignId: number, code: string, at: number) => ({ campaign_id: campaignId, code, message: `refused ${code}`, owner: `engine-${at}`, at });
        await write(async (tx) => {
          await tx.halts.set(halt(20, 'UNAUTHORIZED', T0));
          await tx.halts.set(halt(10, 'FORBIDDEN', T0 + 1));
          await tx.halts.set(halt(20, 'FORBIDDEN', T0 + 2));
        });
        expect(await read((tx) => tx.halts.all())).toEqual([halt(10, 'FORBIDDEN', T0 + 1), halt(20, 'FORBIDDEN', T0 + 2)]);
        expect(await write((tx) => tx.halts.clearAll())).toBe(2);
        expect(await read((tx) => tx.halts.all())).toEqual([]);
        expect(await write((tx) => tx.halts.clearAll())).toBe(0);
      });

      it('counters: add starts a missing counter at 0; forOwner per owner, only names added; totals summed', async () => {
        expect(await read((tx) => tx.counters.totals())).toEqual({});
        expect(await read((tx) => tx.counters.forOwner('engine-a'))).toEqual({});
        await write(async (tx) => {
          await tx.counters.add('engine-a', { accepted: 2, 'calls.updateOrderStatuses': 1 });
          await tx.counters.add('engine-a', { accepted: 3, deferred: 0 });
          await tx.counters.add('engine-b', { accepted: 10, rejected: 1 });
          await tx.counters.add('engine-b', {});
        });
        expect(await read((tx) => tx.counters.forOwner('engine-a'))).toEqual({ accepted: 5, 'calls.updateOrderStatuses': 1, deferred: 0 });
        expect(await read((tx) => tx.counters.forOwner('engine-b'))).toEqual({ accepted: 10, rejected: 1 });
        expect(await read((tx) => tx.counters.forOwner('engine-c'))).toEqual({});
        expect(await read((tx) => tx.counters.totals())).toEqual({ accepted: 15, 'calls.updateOrderStatuses': 1, deferred: 0, rejected: 1 });
      });
    });

    describe('transactions', () => {
      it('resolve with the value of fn, once committed; read() resolves with its value and sees what was committed', async () => {
        expect(await write(async (tx) => (await tx.cursors.set('sync:1', 'a', T0), { answer: 42 }))).toEqual({ answer: 42 });
        expect(await read(async (tx) => ({ value: await tx.cursors.get('sync:1') }))).toEqual({ value: 'a' });
      });

      it('a throw rolls back every write of every concern, and the error comes out unchanged', async () => {
        await write(seedEveryConcern);
        const before = await snapshot(store);
        const boom = new Error('boom');
        await expect(
          write(async (tx) => {
            await writeEveryConcern(tx);
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await snapshot(store)).toEqual(before);
        // The same writes, committed, do change what the snapshot sees: the check above had something to undo.
        await write(writeEveryConcern);
        expect(await snapshot(store)).not.toEqual(before);
      });

      it('so does a promise that rejects after awaiting; a typed error passes through as it is', async () => {
        await write(seedEveryConcern);
        const before = await snapshot(store);
        const typed = new YmOrdersError('CONCURRENT_UPDATE', 'a typed error of the engine');
        await expect(
          write(async (tx) => {
            await writeEveryConcern(tx);
            await new Promise((resolve) => setTimeout(resolve, 5));
            return Promise.reject(typed);
          }),
        ).rejects.toBe(typed);
        expect(await snapshot(store)).toEqual(before);
      });

      it('a port call that fails (a duplicate) fails the transaction with DB_FAILED, undoing the writes before it', async () => {
        await write(seedEveryConcern);
        const before = await snapshot(store);
        await expectStoreError(
          write(async (tx) => {
            await writeEveryConcern(tx);
            await tx.journal.append(journalRow(1, 1)); // seedEveryConcern's
          }),
          STORE_ERROR_CODES.failed,
        );
        expect(await snapshot(store)).toEqual(before);
        // The store goes on working.
        await write((tx) => tx.cursors.set('sync:2', 'after', T0));
        expect(await read((tx) => tx.cursors.get('sync:2'))).toBe('after');
      });

      it('concurrent transactions of one process run one after another: no lost update', async () => {
        const increment = (times: number) =>
          write(async (tx) => {
            for (let i = 0; i < times; i++) {
              const n = Number((await tx.cursors.get('n')) ?? '0');
              await yieldToOthers(); // another transaction would run here, if the store let it
              await tx.cursors.set('n', String(n + 1), T0);
            }
          });
        await Promise.all([increment(1_000), increment(1_000)]);
        expect(await read((tx) => tx.cursors.get('n'))).toBe('2000');
        // Many small ones in flight at once, with reads among them that each see a whole number of them.
        const seen: Promise<number>[] = [];
        const small: Promise<void>[] = [];
        for (let i = 0; i < 200; i++) {
          small.push(increment(1));
          if (i % 20 === 0) seen.push(read(async (tx) => Number(await tx.cursors.get('n'))));
        }
        await Promise.all(small);
        expect(await read((tx) => tx.cursors.get('n'))).toBe('2200');
        for (const n of await Promise.all(seen)) expect(n).toBeGreaterThanOrEqual(2000);
      });

      it('a read sees all of a transaction or none of it, and nothing of one rolled back', async () => {
        const both = (tx: StoreTx) => Promise.all([tx.cursors.get('sync:1'), tx.cursors.get('sync:2')]).then((v) => v.map((x) => x ?? null));
        const committing = write(async (tx) => {
          await tx.cursors.set('sync:1', 'a', T0);
          await yieldToOthers();
          await tx.cursors.set('sync:2', 'a', T0);
        });
        const during = read(both);
        await committing;
        expect([
          ['a', 'a'],
          [null, null],
        ]).toContainEqual(await during);
        expect(await read(both)).toEqual(['a', 'a']);
        await expect(
          write(async (tx) => {
            await tx.cursors.set('sync:1', 'b', T0);
            throw new Error('undone');
          }),
        ).rejects.toThrow('undone');
        expect(await read(both)).toEqual(['a', 'a']);
      });

      it('read(): a write inside it fails with DB_FAILED and writes nothing; a throw comes out unchanged', async () => {
        await expectStoreError(
          read((tx) => tx.cursors.set('sync:1', 'a', T0)),
          STORE_ERROR_CODES.failed,
        );
        expect(await read((tx) => tx.cursors.get('sync:1'))).toBeUndefined();
        const boom = new Error('boom');
        await expect(read(async () => Promise.reject(boom))).rejects.toBe(boom);
        // Writes work again after a read.
        await write((tx) => tx.cursors.set('sync:1', 'a', T0));
        expect(await read((tx) => tx.cursors.get('sync:1'))).toBe('a');
      });

      it('close: later calls reject with DB_CLOSED, one already accepted finishes, closing twice is fine', async () => {
        const running = write(async (tx) => {
          await tx.cursors.set('sync:1', 'last', T0);
          await yieldToOthers();
          return 'done';
        });
        const closing = store.close();
        await expectStoreError(write((tx) => tx.cursors.set('sync:2', 'never', T0)), STORE_ERROR_CODES.closed);
        await expectStoreError(read((tx) => tx.cursors.get('sync:1')), STORE_ERROR_CODES.closed);
        expect(await running).toBe('done');
        await closing;
        await store.close();
        await expectStoreError(read((tx) => tx.cursors.get('sync:1')), STORE_ERROR_CODES.closed);
        if (subject.reopen) {
          const again = await subject.reopen();
          opened.push(again);
          expect(await again.read(async (tx) => [await tx.cursors.get('sync:1'), await tx.cursors.get('sync:2')])).toEqual(['last', undefined]);
        }
      });

      it('data survives closing and reopening the store', async ({ skip }) => {
        if (!subject.reopen) return skip('this store keeps nothing once closed');
        await write(seedEveryConcern);
        await write(writeEveryConcern);
        const before = await snapshot(store);
        await store.close();
        const again = await subject.reopen();
        opened.push(again);
        expect(await snapshot(again)).toEqual(before);
      });
    });
  });
}
