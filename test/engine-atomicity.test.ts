// The engine's own transactions (issue 9, item 5): each command writes its snapshot, journal
// row and effect rows (outbox, timers) in ONE transaction of its own, so a write that fails
// part-way leaves nothing behind. The crash worker wraps every command in a transaction of its
// own and so cannot see this; here the engine runs alone on a real file, through a store that
// wraps the SQLite adapter and makes a later port write of a command fail (the journal row,
// the outbox row, the timer row, or a later order of a batch) with the adapter's DB_FAILED,
// after the earlier writes of the same command have already run (issue #10: no SQL triggers,
// the fault is planted at the port, so it holds for any adapter). Everything the port shows,
// read through a second connection, must then be exactly as before, and the same command must
// succeed once the fault is gone (a partial write would refuse it, or repeat a request number).

import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DBS_CANCELLATION_ANSWER_MS, ORDER_MACHINE_VERSION } from '../machines/order-machine.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { SqliteStore } from '../src/store/index.js';
import { STORE_ERROR_CODES, StoreError } from '../src/store/errors.js';
import type { Store, StoreTx } from '../src/store/port.js';
import { CAMPAIGNS, checkFileInvariants, dumpFile, FakeClock, makeTempDir, removeDir, T0 } from './helpers/engine-fixtures.js';

type Concern = 'orders' | 'journal' | 'outbox' | 'timers';

/** The port methods that write, per concern (the rest only read). */
const WRITES = {
  orders: ['insert', 'update'],
  journal: ['append'],
  outbox: ['enqueue', 'setState', 'reschedule', 'lease', 'claimForSend', 'release', 'releaseAfterFailedRead'],
  timers: ['set', 'clear'],
} as const satisfies Record<Concern, readonly string[]>;

// Every order a test touches (the dumps read orders by id).
const ORDER_IDS = [1, 2, 3, 4, 101, 102];

interface Fault {
  readonly concern: Concern;
  /** Which writes fail: e.g. `['append']`, or every write of the concern. */
  readonly methods: readonly string[];
  /** Whether this call fails, from its arguments (e.g. the row's order id). */
  readonly when: (args: readonly unknown[]) => boolean;
  readonly error: StoreError;
}

let dir: string;
let file: string;
let clock: FakeClock;
let sqlite: Store;
let engine: Engine;
let fault: Fault | undefined;
/** The writes of the current transaction, as `concern.method`, up to a planted failure. */
let writes: string[] = [];

/**
 * The SQLite adapter with a fault plant: inside a transaction every port call goes to the
 * adapter, except a write the planted fault matches, which rejects with the fault's error
 * (as DB_FAILED from a driver would) after the transaction's earlier writes went through.
 */
function plantable(inner: Store): Store {
  const wrap = (tx: StoreTx): StoreTx =>
    new Proxy(tx, {
      get(target, concern: string) {
        const port = target[concern as keyof StoreTx] as unknown as Record<string, unknown>;
        if (!(concern in WRITES)) return port;
        return new Proxy(port, {
          get(p, method: string) {
            const f = p[method];
            if (typeof f !== 'function') return f;
            // Called on the adapter's own object: its methods use private fields.
            if (!(WRITES[concern as Concern] as readonly string[]).includes(method)) return f.bind(p);
            return (...args: unknown[]) => {
              if (fault && fault.concern === concern && fault.methods.includes(method) && fault.when(args)) return Promise.reject(fault.error);
              writes.push(`${concern}.${method}`);
              return (f as (...a: unknown[]) => unknown).apply(p, args);
            };
          },
        });
      },
    });
  return {
    get name() {
      return inner.name;
    },
    wakeups: inner.wakeups,
    onQueued: (listener) => inner.onQueued(listener),
    transaction: (fn) => {
      writes = [];
      return inner.transaction((tx) => fn(wrap(tx)));
    },
    read: (fn) => inner.read((tx) => fn(wrap(tx))),
    close: () => inner.close(),
  };
}

beforeEach(async () => {
  dir = makeTempDir('ym-orders-atomicity-');
  file = path.join(dir, 'orders.db');
  clock = new FakeClock();
  fault = undefined;
  sqlite = SqliteStore.open(file, { now: clock.now });
  engine = await createEngine({ db: plantable(sqlite), campaigns: CAMPAIGNS, clock: clock.fn });
  await engine.trackOrders([
    { orderId: 1, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 2, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 3, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 4, campaignId: 20, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 },
  ]);
  clock.tick();
});

afterEach(async () => {
  await engine.close();
  // A store passed in is the caller's to close.
  await sqlite.close();
  removeDir(dir);
});

/** Makes `methods` of `concern` (those whose call matches `when`) fail; returns the error they reject with. */
function failWrites(concern: Concern, methods: readonly string[], when: (args: readonly unknown[]) => boolean = () => true): StoreError {
  const error = new StoreError(STORE_ERROR_CODES.failed, `planted fault: ${concern}.${methods.join('|')}`, { planted: true });
  fault = { concern, methods, when, error };
  return error;
}

function removeFault(): void {
  fault = undefined;
}

/** The row of an orders.insert / journal.append / outbox.enqueue call is about this order. */
const forOrder = (orderId: number) => (args: readonly unknown[]) => (args[0] as { order_id?: number }).order_id === orderId;

/**
 * Runs `command` with the fault in place: it must reject with the planted error itself (not
 * wrapped into a refusal), after earlier writes of the same transaction ran, and leave everything
 * the port shows of the file, as another connection reads it, exactly as before.
 */
async function expectNothingWritten(command: () => Promise<unknown>, planted: StoreError): Promise<void> {
  const before = await dumpFile(file, ORDER_IDS);
  let error: unknown;
  try {
    await command();
  } catch (e) {
    error = e;
  }
  expect(error, 'the command should have failed').toBe(planted);
  expect(error).toMatchObject({ code: 'DB_FAILED', message: planted.message });
  // The failure came part-way: the same transaction had written before it.
  expect(writes.length, 'writes before the planted fault').toBeGreaterThan(0);
  expect(await dumpFile(file, ORDER_IDS)).toEqual(before);
  expect(await checkFileInvariants(file, ORDER_IDS)).toEqual([]);
}

const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;

describe('requestChange', () => {
  // The writes of one change: the order row, its journal row, its outbox row.
  it.each<[Concern, string]>([
    ['journal', 'append'],
    ['outbox', 'enqueue'],
  ])('a failing %s.%s, after other writes of the change, leaves nothing', async (concern, method) => {
    await expectNothingWritten(() => engine.requestChange({ orderId: 1, ...READY }), failWrites(concern, [method]));
    removeFault();
    const queued = await engine.requestChange({ orderId: 1, ...READY });
    expect(queued).toMatchObject({ change: 'queued', rowVersion: 2, pending: { ...READY, requestNo: 1 } });
    expect((await engine.pendingChanges()).map((r) => r.idempotency_key)).toEqual([`1:PROCESSING/READY_TO_SHIP:m${ORDER_MACHINE_VERSION}:r1`]);
  });
});

describe('requestChanges', () => {
  it('atomic: the third change failing to reach the outbox takes the first two with it', async () => {
    const requests = [1, 2, 3].map((orderId) => ({ orderId, ...READY }));
    await expectNothingWritten(() => engine.requestChanges(requests, { atomic: true }), failWrites('outbox', ['enqueue'], forOrder(3)));
    removeFault();
    const result = await engine.requestChanges(requests, { atomic: true });
    expect(result.queued.map((s) => [s.orderId, s.change, s.pending?.requestNo])).toEqual([
      [1, 'queued', 1],
      [2, 'queued', 1],
      [3, 'queued', 1],
    ]);
  });

  it('partial: a storage failure is not a refusal; the whole batch is rolled back, refusals and queued ones alike', async () => {
    const requests = [
      { orderId: 1, ...READY },
      { orderId: 4, ...READY }, // DBS in DELIVERY: CHANGE_REFUSED, on its own
      { orderId: 2, ...READY },
      { orderId: 3, ...READY },
    ];
    await expectNothingWritten(() => engine.requestChanges(requests), failWrites('journal', ['append'], forOrder(3)));
    removeFault();
    const result = await engine.requestChanges(requests);
    expect(result.queued.map((s) => s.orderId)).toEqual([1, 2, 3]);
    expect(result.refused.map((r) => [r.orderId, r.error.code])).toEqual([[4, 'CHANGE_REFUSED']]);
    expect((await engine.pendingChanges()).map((r) => r.order_id)).toEqual([1, 2, 3]);
  });
});

describe('observe', () => {
  // A DBS buyer's cancellation request: the order row, its journal row, the deadline's timer row.
  const cancellationRequest = () => ({
    orderId: 4,
    status: 'DELIVERY',
    substatus: 'DELIVERY_SERVICE_RECEIVED',
    observedAt: T0 + 500,
    cancelRequested: true,
  });

  it.each<[Concern, string]>([
    ['journal', 'append'],
    ['timers', 'set'],
  ])('a cancellation request whose %s.%s fails leaves no state, journal row or deadline', async (concern, method) => {
    await expectNothingWritten(() => engine.observe(cancellationRequest()), failWrites(concern, [method]));
    removeFault();
    const state = await engine.observe(cancellationRequest());
    expect(state).toMatchObject({ rowVersion: 2, cancellationRequestedAt: T0 + 500 });
    expect(await engine.timers()).toEqual([{ kind: 'dbs.cancellationAnswer', orderId: 4, dueAt: T0 + 500 + DBS_CANCELLATION_ANSWER_MS }]);
  });

  it('an observation that settles a pending change, whose outbox update fails, leaves the change open', async () => {
    await engine.requestChange({ orderId: 1, ...READY });
    const shipped = { orderId: 1, ...READY, observedAt: T0 + 2_000, source: 'sync' as const };
    // Any write to an existing outbox row (enqueue inserts, so it is left alone).
    await expectNothingWritten(() => engine.observe(shipped), failWrites('outbox', WRITES.outbox.filter((m) => m !== 'enqueue')));
    expect(await engine.getOrder(1)).toMatchObject({ change: 'queued', status: 'PROCESSING', substatus: 'STARTED' });
    removeFault();
    expect(await engine.observe(shipped)).toMatchObject({ change: 'idle', substatus: 'READY_TO_SHIP', lastOutcome: { kind: 'accepted', requestNo: 1 } });
    expect(await engine.pendingChanges()).toEqual([]);
  });
});

describe('trackOrders', () => {
  // A batch that creates one order, observes a tracked one, and then fails on the third.
  const batch = () => [
    { orderId: 101, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 2, campaignId: 10, status: 'PROCESSING', substatus: 'READY_TO_SHIP', observedAt: T0 + 1_000 },
    { orderId: 102, campaignId: 30, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
  ];

  it.each<[Concern, string]>([
    ['orders', 'insert'],
    ['journal', 'append'],
  ])('the last order of a batch failing its %s.%s takes the whole batch with it', async (concern, method) => {
    await expectNothingWritten(() => engine.trackOrders(batch()), failWrites(concern, [method], forOrder(102)));
    expect(await engine.findOrder(101)).toBeUndefined();
    removeFault();
    expect(await engine.trackOrders(batch())).toEqual({ created: 2, updated: 1, unchanged: 0 });
    expect((await engine.history(101)).map((j) => j.row_version)).toEqual([1]);
    expect((await engine.history(2)).map((j) => j.row_version)).toEqual([1, 2]);
  });
});
