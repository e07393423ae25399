// The SQLite store under the engine (issue #3): how a database is opened and migrated, that
// Store.write is all-or-nothing, and the table rules the engine relies on — optimistic row
// versions, one journal row per version, one outbox row per request that a resend re-arms
// without a new key, and leases only one owner holds.

import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { APPLICATION_ID, openDatabase } from '../src/store/open-database.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate } from '../src/store/migrations.js';
import { Store } from '../src/store/store.js';
import type { OutboxEnqueue } from '../src/store/outbox-table.js';
import { dumpDatabase, makeTempDir, removeDir, T0 } from './helpers/engine-fixtures.js';

let dir: string;
const stores: Store[] = [];

function open(name = 'store.db'): Store {
  const store = Store.open(path.join(dir, name), { now: T0 });
  stores.push(store);
  return store;
}

beforeEach(() => {
  dir = makeTempDir('ym-orders-store-');
});

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  removeDir(dir);
});

function order(store: Store, orderId: number, rv = 1): void {
  store.orders.insert({
    order_id: orderId,
    campaign_id: 10,
    model: 'FBS',
    status: 'PROCESSING',
    substatus: 'STARTED',
    change_state: 'idle',
    observed_at: T0,
    machine_version: 1,
    snapshot: '{}',
    updated_at: T0,
  });
  expect(store.orders.get(orderId)?.row_version).toBe(rv);
}

function journal(store: Store, orderId: number, rowVersion: number): number {
  return store.journal.append({
    order_id: orderId,
    row_version: rowVersion,
    event_type: 'TEST',
    event: '{}',
    source: 'test',
    from_status: null,
    from_substatus: null,
    from_change: null,
    to_status: 'PROCESSING',
    to_substatus: 'STARTED',
    to_change: 'idle',
    at: T0,
  });
}

function enqueue(store: Store, orderId: number, requestNo: number, extra: Partial<OutboxEnqueue> = {}): void {
  store.outbox.enqueue({
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
  });
}

describe('openDatabase', () => {
  it('creates a WAL database with our application_id, a busy timeout and every migration applied once', () => {
    const file = path.join(dir, 'new.db');
    const db = openDatabase(file, { now: T0 });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5_000);
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
      expect(db.prepare('SELECT version, name, applied_at FROM schema_migrations').all()).toEqual(
        MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: T0 })),
      );
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(expect.arrayContaining(['orders', 'journal', 'outbox', 'operations', 'timers', 'limiter', 'cursors', 'campaigns']));
      expect(migrate(db, T0 + 1)).toEqual([]); // nothing left to apply
    } finally {
      db.close();
    }
    // Reopening changes nothing.
    const bytes = fs.readFileSync(file);
    const again = openDatabase(file, { now: T0 + 5, busyTimeoutMs: 250, synchronous: 'NORMAL' });
    expect(again.pragma('busy_timeout', { simple: true })).toBe(250);
    expect(again.prepare('SELECT COUNT(*) FROM schema_migrations').pluck().get()).toBe(MIGRATIONS.length);
    again.close();
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
  });

  it('claims an existing empty SQLite file (e.g. one `touch`ed or created by sqlite3)', () => {
    const file = path.join(dir, 'empty.db');
    fs.writeFileSync(file, '');
    const db = openDatabase(file);
    expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(db.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get()).toBe(LATEST_SCHEMA_VERSION);
    db.close();
  });

  it(':memory: works without WAL', () => {
    const db = openDatabase(':memory:');
    expect(db.pragma('journal_mode', { simple: true })).toBe('memory');
    expect(db.prepare('SELECT COUNT(*) FROM orders').pluck().get()).toBe(0);
    db.close();
  });
});

describe('Store.write', () => {
  it('commits everything or, on a throw, nothing', () => {
    const store = open();
    store.write(() => order(store, 1));
    const before = dumpDatabase(store.db);
    expect(() =>
      store.write(() => {
        order(store, 2);
        journal(store, 2, 1);
        store.cursors.set('sync', 'page-2', T0);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(dumpDatabase(store.db)).toEqual(before);
    expect(store.db.inTransaction).toBe(false);
  });

  it('takes the write lock up front (BEGIN IMMEDIATE): a second connection cannot write meanwhile', () => {
    const store = open();
    const other = new BetterSqlite3(path.join(dir, 'store.db'));
    other.pragma('busy_timeout = 0');
    try {
      store.write(() => {
        // No write has happened yet in this transaction, and still the lock is ours.
        expect(() => other.exec("INSERT INTO cursors (name, value, updated_at) VALUES ('x', 'y', 0)")).toThrow(/locked|busy/i);
      });
      other.exec("INSERT INTO cursors (name, value, updated_at) VALUES ('x', 'y', 0)");
      expect(store.cursors.get('x')).toBe('y');
    } finally {
      other.close();
    }
  });

  it('nests: an inner write that throws rolls back only itself', () => {
    const store = open();
    store.write(() => {
      order(store, 1);
      expect(() =>
        store.write(() => {
          order(store, 2);
          throw new Error('inner');
        }),
      ).toThrow('inner');
      store.cursors.set('after', '1', T0);
    });
    expect(store.orders.get(1)).toBeDefined();
    expect(store.orders.get(2)).toBeUndefined();
    expect(store.cursors.get('after')).toBe('1');
  });

  it('close is idempotent', () => {
    const store = open();
    store.close();
    store.close();
    expect(store.db.open).toBe(false);
  });
});

describe('tables', () => {
  it('orders: update succeeds only at the expected row version and bumps it', () => {
    const store = open();
    order(store, 7);
    const row = store.orders.get(7)!;
    const write = { ...row, status: 'CANCELLED', substatus: 'SHOP_FAILED', updated_at: T0 + 1 };
    expect(store.orders.update(write, 2)).toBe(false);
    expect(store.orders.get(7)!.row_version).toBe(1);
    expect(store.orders.update(write, 1)).toBe(true);
    expect(store.orders.get(7)).toMatchObject({ row_version: 2, status: 'CANCELLED', created_at: T0, updated_at: T0 + 1 });
    expect(store.orders.update(write, 1)).toBe(false); // the second writer with the same read loses
    expect(() => order(store, 7)).toThrow(/UNIQUE|PRIMARY KEY/);
  });

  it('journal: one row per (order, row version), returned in sequence order', () => {
    const store = open();
    const s1 = journal(store, 3, 1);
    const s2 = journal(store, 3, 2);
    journal(store, 4, 1);
    expect(s2).toBeGreaterThan(s1);
    expect(() => journal(store, 3, 2)).toThrow(/UNIQUE/);
    expect(store.journal.forOrder(3).map((r) => [r.seq, r.row_version])).toEqual([
      [s1, 1],
      [s2, 2],
    ]);
  });

  it('outbox: one row per request; a resend re-arms it with the same key and history', () => {
    const store = open();
    enqueue(store, 5, 1);
    store.outbox.setState(5, 1, 'sending', T0 + 1, { sent: true });
    store.outbox.setState(5, 1, 'uncertain', T0 + 2, { lastError: 'timeout' });
    enqueue(store, 5, 1, { next_attempt_at: T0 + 60_000, now: T0 + 3, idempotency_key: 'a-different-key-is-ignored' });
    const row = store.outbox.get(5, 1)!;
    expect(row).toMatchObject({
      idempotency_key: '5:PROCESSING/READY_TO_SHIP:m1:r1',
      state: 'queued',
      attempts: 1,
      last_error: 'timeout',
      next_attempt_at: T0 + 60_000,
      created_at: T0,
      updated_at: T0 + 3,
    });
    expect(store.db.prepare('SELECT COUNT(*) FROM outbox').pluck().get()).toBe(1);
    // The same key for another request is refused outright.
    expect(() => enqueue(store, 6, 1, { idempotency_key: row.idempotency_key })).toThrow(/UNIQUE/);
    expect(store.outbox.nextDueAt()).toBe(T0 + 60_000);
    store.outbox.setState(5, 1, 'accepted', T0 + 4);
    expect(store.outbox.open(10)).toEqual([]);
    expect(store.outbox.counts()).toMatchObject({ accepted: 1, queued: 0 });
  });

  it('outbox leases: a due row goes to one owner until the lease expires; only the owner releases it', () => {
    const store = open();
    enqueue(store, 1, 1);
    enqueue(store, 2, 1, { next_attempt_at: T0 + 10_000 });
    const a = store.outbox.lease('queued', 'A', T0, 30_000, 10);
    expect(a.map((r) => [r.order_id, r.lease_owner])).toEqual([[1, 'A']]); // order 2 is not due yet
    expect(store.outbox.lease('queued', 'B', T0 + 1_000, 30_000, 10)).toEqual([]); // held by A
    store.outbox.release(a[0]!.id, 'B', T0, T0 + 1_000); // not B's to release
    expect(store.outbox.get(1, 1)!.lease_owner).toBe('A');
    const b = store.outbox.lease('queued', 'B', T0 + 31_000, 30_000, 10); // A's lease expired
    expect(b.map((r) => [r.order_id, r.lease_owner])).toEqual([
      [1, 'B'],
      [2, 'B'],
    ]);
    store.outbox.release(b[0]!.id, 'B', T0 + 90_000, T0 + 31_500);
    expect(store.outbox.get(1, 1)).toMatchObject({ lease_owner: null, lease_expires_at: null, next_attempt_at: T0 + 90_000 });
    // Moving to sending keeps the lease; any other state drops it.
    store.outbox.setState(2, 1, 'sending', T0 + 32_000, { sent: true });
    expect(store.outbox.get(2, 1)!.lease_owner).toBe('B');
    store.outbox.setState(2, 1, 'accepted', T0 + 33_000);
    expect(store.outbox.get(2, 1)).toMatchObject({ lease_owner: null, attempts: 1, state: 'accepted' });
  });

  it('cursors and campaigns keep the last value written', () => {
    const store = open();
    store.cursors.set('sync', 'a', T0);
    store.cursors.set('sync', 'b', T0 + 1);
    expect(store.cursors.get('sync')).toBe('b');
    expect(store.cursors.get('nope')).toBeUndefined();
    store.campaigns.upsert({ campaign_id: 10, business_id: 1, model: 'FBS' });
    store.campaigns.upsert({ campaign_id: 10, business_id: 2, model: 'DBS' });
    expect(store.campaigns.all()).toEqual([{ campaign_id: 10, business_id: 2, model: 'DBS' }]);
  });
});
