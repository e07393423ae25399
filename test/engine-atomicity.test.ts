// The engine's own transactions (issue 9, item 5): each command writes its snapshot, journal
// row and effect rows (outbox, timers) in ONE transaction of its own, so a write that fails
// part-way leaves nothing behind. The crash worker wraps every command in a transaction of its
// own and so cannot see this; here the engine runs alone on a real file, and a SQLite trigger,
// installed through a second connection, makes a later write of a command fail (the journal
// row, the outbox row, the timer row, or a later order of a batch) after the earlier writes
// of the same command have already run. Every table must then be exactly as before, and the
// same command must succeed once the fault is gone (a partial write would refuse it, or repeat
// a request number).

import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DBS_CANCELLATION_ANSWER_MS, ORDER_MACHINE_VERSION } from '../machines/order-machine.js';
import type { Engine } from '../src/engine/engine.js';
import { checkFileInvariants, dumpFile, FakeClock, makeTempDir, openEngine, removeDir, T0 } from './helpers/engine-fixtures.js';

type Write = 'INSERT' | 'UPDATE';
type Table = 'orders' | 'journal' | 'outbox' | 'timers';

let dir: string;
let file: string;
let clock: FakeClock;
let engine: Engine;

beforeEach(() => {
  dir = makeTempDir('ym-orders-atomicity-');
  file = path.join(dir, 'orders.db');
  clock = new FakeClock();
  engine = openEngine(file, clock);
  engine.trackOrders([
    { orderId: 1, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 2, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 3, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 4, campaignId: 20, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 },
  ]);
  clock.tick();
});

afterEach(() => {
  engine.close();
  removeDir(dir);
});

const TRIGGER = 'ym_test_planted_fault';

/**
 * Makes every `write` on `table` (whose row matches `when`, e.g. `NEW.order_id = 3`) fail,
 * through a second connection on the same file, as another process could. Returns the message
 * the failure carries.
 */
function failWrites(write: Write, table: Table, when = '1'): string {
  const message = `planted fault: ${write} on ${table} where ${when}`;
  const db = new BetterSqlite3(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    db.exec(`CREATE TRIGGER ${TRIGGER} BEFORE ${write} ON ${table} WHEN ${when} BEGIN SELECT RAISE(ABORT, '${message}'); END`);
  } finally {
    db.close();
  }
  return message;
}

function removeFault(): void {
  const db = new BetterSqlite3(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    db.exec(`DROP TRIGGER ${TRIGGER}`);
  } finally {
    db.close();
  }
}

/**
 * Runs `command` with the fault in place: it must throw the planted SQLite error (typed by
 * better-sqlite3's SqliteError and its code, not wrapped into a refusal), leave no transaction
 * open, and leave every table of the file, as another connection reads it, exactly as before.
 */
function expectNothingWritten(command: () => unknown, planted: string): void {
  const before = dumpFile(file);
  let error: unknown;
  try {
    command();
  } catch (e) {
    error = e;
  }
  expect(error, 'the command should have failed').toBeInstanceOf(BetterSqlite3.SqliteError);
  expect(error).toMatchObject({ code: 'SQLITE_CONSTRAINT_TRIGGER', message: planted });
  expect(engine.store.db.inTransaction).toBe(false);
  expect(dumpFile(file)).toEqual(before);
  expect(checkFileInvariants(file)).toEqual([]);
}

const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;

describe('requestChange', () => {
  // The writes of one change, in order: the order row, its journal row, its outbox row.
  it.each<[Write, Table]>([
    ['INSERT', 'journal'],
    ['INSERT', 'outbox'],
  ])('a failing %s on %s, after the order row was rewritten, leaves nothing', (write, table) => {
    expectNothingWritten(() => engine.requestChange({ orderId: 1, ...READY }), failWrites(write, table));
    removeFault();
    const queued = engine.requestChange({ orderId: 1, ...READY });
    expect(queued).toMatchObject({ change: 'queued', rowVersion: 2, pending: { ...READY, requestNo: 1 } });
    expect(engine.pendingChanges().map((r) => r.idempotency_key)).toEqual([`1:PROCESSING/READY_TO_SHIP:m${ORDER_MACHINE_VERSION}:r1`]);
  });
});

describe('requestChanges', () => {
  it('atomic: the third change failing to reach the outbox takes the first two with it', () => {
    const requests = [1, 2, 3].map((orderId) => ({ orderId, ...READY }));
    expectNothingWritten(() => engine.requestChanges(requests, { atomic: true }), failWrites('INSERT', 'outbox', 'NEW.order_id = 3'));
    removeFault();
    const result = engine.requestChanges(requests, { atomic: true });
    expect(result.queued.map((s) => [s.orderId, s.change, s.pending?.requestNo])).toEqual([
      [1, 'queued', 1],
      [2, 'queued', 1],
      [3, 'queued', 1],
    ]);
  });

  it('partial: a storage failure is not a refusal; the whole batch is rolled back, refusals and queued ones alike', () => {
    const requests = [
      { orderId: 1, ...READY },
      { orderId: 4, ...READY }, // DBS in DELIVERY: CHANGE_REFUSED, on its own
      { orderId: 2, ...READY },
      { orderId: 3, ...READY },
    ];
    expectNothingWritten(() => engine.requestChanges(requests), failWrites('INSERT', 'journal', 'NEW.order_id = 3'));
    removeFault();
    const result = engine.requestChanges(requests);
    expect(result.queued.map((s) => s.orderId)).toEqual([1, 2, 3]);
    expect(result.refused.map((r) => [r.orderId, r.error.code])).toEqual([[4, 'CHANGE_REFUSED']]);
    expect(engine.pendingChanges().map((r) => r.order_id)).toEqual([1, 2, 3]);
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

  it.each<[Write, Table]>([
    ['INSERT', 'journal'],
    ['INSERT', 'timers'],
  ])('a cancellation request whose %s on %s fails leaves no state, journal row or deadline', (write, table) => {
    expectNothingWritten(() => engine.observe(cancellationRequest()), failWrites(write, table));
    removeFault();
    const state = engine.observe(cancellationRequest());
    expect(state).toMatchObject({ rowVersion: 2, cancellationRequestedAt: T0 + 500 });
    expect(engine.timers()).toEqual([{ kind: 'dbs.cancellationAnswer', orderId: 4, dueAt: T0 + 500 + DBS_CANCELLATION_ANSWER_MS }]);
  });

  it('an observation that settles a pending change, whose outbox update fails, leaves the change open', () => {
    engine.requestChange({ orderId: 1, ...READY });
    const shipped = { orderId: 1, ...READY, observedAt: T0 + 2_000, source: 'sync' as const };
    expectNothingWritten(() => engine.observe(shipped), failWrites('UPDATE', 'outbox'));
    expect(engine.getOrder(1)).toMatchObject({ change: 'queued', status: 'PROCESSING', substatus: 'STARTED' });
    removeFault();
    expect(engine.observe(shipped)).toMatchObject({ change: 'idle', substatus: 'READY_TO_SHIP', lastOutcome: { kind: 'accepted', requestNo: 1 } });
    expect(engine.pendingChanges()).toEqual([]);
  });
});

describe('trackOrders', () => {
  // A batch that creates one order, observes a tracked one, and then fails on the third.
  const batch = () => [
    { orderId: 101, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 2, campaignId: 10, status: 'PROCESSING', substatus: 'READY_TO_SHIP', observedAt: T0 + 1_000 },
    { orderId: 102, campaignId: 30, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
  ];

  it.each<[Write, Table]>([
    ['INSERT', 'orders'],
    ['INSERT', 'journal'],
  ])('the last order of a batch failing its %s on %s takes the whole batch with it', (write, table) => {
    expectNothingWritten(() => engine.trackOrders(batch()), failWrites(write, table, 'NEW.order_id = 102'));
    expect(engine.findOrder(101)).toBeUndefined();
    removeFault();
    expect(engine.trackOrders(batch())).toEqual({ created: 2, updated: 1, unchanged: 0 });
    expect(engine.history(101).map((j) => j.row_version)).toEqual([1]);
    expect(engine.history(2).map((j) => j.row_version)).toEqual([1, 2]);
  });
});
