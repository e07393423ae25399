// The SQLite adapter's own checks, the ones only SQL can see (the port's behaviour is the store
// contract's, test/store-contract.test.ts): how a file is opened, claimed and migrated (from every
// older schema), which files it refuses, that a transaction is BEGIN IMMEDIATE and leaves nothing
// when rolled back, how driver errors surface, and two processes on one file.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, STORE_ERROR_CODES, type StoreErrorCode } from '../src/store/errors.js';
import { APPLICATION_ID, LATEST_SCHEMA_VERSION, MIGRATIONS, openStore, SqliteStore, type Store } from '../src/store/index.js';
import { isReplaceableDatabase } from '../src/store/open-store.js';
import { migrate } from '../src/store/sqlite/migrations.js';
import { enqueueRow, expectStoreError, orderRow } from './helpers/store-contract.js';

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

let dir: string;
const stores: Store[] = [];

function open(name = 'store.db', options: Parameters<typeof SqliteStore.open>[1] = {}): SqliteStore {
  const store = SqliteStore.open(path.join(dir, name), { now: T0, ...options });
  stores.push(store);
  return store;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ym-orders-sqlite-'));
});

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every table's rows (sqlite_sequence too) and the header pragmas: equal dumps, equal databases. */
function dump(db: Database): Record<string, unknown[]> {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
  const out: Record<string, unknown[]> = {};
  for (const name of tables) out[name] = db.prepare(`SELECT * FROM "${name}" ORDER BY 1, 2`).all();
  out['#pragma'] = [db.pragma('application_id', { simple: true }), db.pragma('user_version', { simple: true })];
  return out;
}

function rawFile(name: string, build: (db: Database) => void): string {
  const file = path.join(dir, name);
  const db = new BetterSqlite3(file);
  try {
    build(db);
  } finally {
    db.close();
  }
  return file;
}

/** The bytes of a file and its companions, for "not one byte changed". */
function fileBytes(file: string): (string | null)[] {
  return ['', '-wal', '-journal'].map((suffix) => (fs.existsSync(file + suffix) ? fs.readFileSync(file + suffix).toString('base64') : null));
}

function thrownStoreError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StoreError) return error;
    throw new Error(`expected a StoreError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a StoreError');
}


const ORDER = orderRow(1, { observed_at: T0, snapshot: '{}', updated_at: T0 });

describe('SqliteStore.open', () => {
  it('creates a WAL database with our application_id, a busy timeout and every migration applied once', async () => {
    const file = path.join(dir, 'new.db');
    const store = open('new.db');
    expect(store.name).toBe(file);
    const db = store.db;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5_000);
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all()).toEqual(
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: T0 })),
    );
    expect(MIGRATIONS.map((m) => m.version)).toEqual(Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1));
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all();
    expect(tables).toEqual(['campaigns', 'counters', 'cursors', 'halts', 'inbox', 'journal', 'limiter', 'limiter_leases', 'operations', 'order_reads', 'orders', 'outbox', 'schema_migrations', 'timers']);
    expect(migrate(db, T0 + 1)).toEqual([]); // nothing left to apply
    await store.close();
    expect(db.open).toBe(false);

    // Reopening changes nothing; the options reach SQLite.
    const bytes = fs.readFileSync(file);
    const again = open('new.db', { now: T0 + 5, busyTimeoutMs: 250, synchronous: 'NORMAL' });
    expect(again.db.pragma('busy_timeout', { simple: true })).toBe(250);
    expect(again.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(again.db.prepare('SELECT COUNT(*) FROM schema_migrations').pluck().get()).toBe(MIGRATIONS.length);
    await again.close();
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
  });

  it('claims an existing empty file (one `touch`ed, or created by sqlite3)', () => {
    fs.writeFileSync(path.join(dir, 'empty.db'), '');
    const store = open('empty.db');
    expect(store.db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(store.db.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get()).toBe(LATEST_SCHEMA_VERSION);
  });

  it(':memory: works without WAL', async () => {
    const store = SqliteStore.open(':memory:', { now: T0 });
    stores.push(store);
    expect(store.name).toBe(':memory:');
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('memory');
    await store.transaction((tx) => tx.orders.insert(ORDER));
    expect(await store.read((tx) => tx.orders.get(1))).toMatchObject({ order_id: 1, row_version: 1 });
  });
});

describe('files SqliteStore.open refuses, leaving them as they were', () => {
  function refuses(file: string, code: StoreErrorCode, advice: RegExp): StoreError {
    const bytes = fileBytes(file);
    const listing = fs.readdirSync(dir).sort();
    const error = thrownStoreError(() => SqliteStore.open(file, { now: T0 }));
    expect(error.code).toBe(code);
    expect(error.message).toContain(file);
    expect(error.message).toMatch(advice);
    expect(fileBytes(file)).toEqual(bytes);
    expect(fs.readdirSync(dir).sort()).toEqual(listing);
    return error;
  }

  it("another application's SQLite database → DB_NOT_OURS", () => {
    const file = rawFile('crm.sqlite', (db) => db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('Ann');"));
    const error = refuses(file, STORE_ERROR_CODES.notOurs, /another application.*choose another --db file/);
    expect(error.details).toMatchObject({ path: file, applicationId: 0, tables: ['customers'] });
  });

  it('one with our table names but another application_id → DB_NOT_OURS', () => {
    const file = rawFile('shop.db', (db) => {
      db.pragma('application_id = 1234');
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY); CREATE TABLE schema_migrations (version INTEGER);');
    });
    expect(refuses(file, STORE_ERROR_CODES.notOurs, /application_id 1234/).details).toMatchObject({ applicationId: 1234 });
  });

  it('an empty database with another application_id → DB_NOT_OURS', () => {
    refuses(rawFile('claimed.db', (db) => db.pragma('application_id = 42')), STORE_ERROR_CODES.notOurs, /application_id 42/);
  });

  it('random bytes, a text file, our own file with a damaged schema page → DB_CORRUPT', async () => {
    const random = Buffer.alloc(16_384);
    let x = 12345;
    for (let i = 0; i < random.length; i++) random[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    fs.writeFileSync(path.join(dir, 'random.db'), random);
    refuses(path.join(dir, 'random.db'), STORE_ERROR_CODES.corrupt, /not a readable SQLite database.*Restore it from a backup/);

    fs.writeFileSync(path.join(dir, 'notes.txt'), 'order 1: shipped\norder 2: cancelled\n'.repeat(200));
    refuses(path.join(dir, 'notes.txt'), STORE_ERROR_CODES.corrupt, /not a readable SQLite database/);

    const ours = open('ours.db');
    await ours.close(); // checkpointed: the whole schema is in the main file
    const bytes = fs.readFileSync(path.join(dir, 'ours.db'));
    bytes.fill(0xab, 100, 400); // page 1 after the header: sqlite_master's b-tree
    fs.writeFileSync(path.join(dir, 'damaged.db'), bytes);
    refuses(path.join(dir, 'damaged.db'), STORE_ERROR_CODES.corrupt, /not a readable SQLite database/);
  });

  it('a schema newer than this code → DB_SCHEMA_TOO_NEW', async () => {
    await open('future.db').close();
    const file = rawFile('future.db', (db) => {
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(LATEST_SCHEMA_VERSION + 1, 'from the future', T0);
    });
    const error = refuses(file, STORE_ERROR_CODES.schemaTooNew, new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 1}, newer than this ym-orders knows \\(${LATEST_SCHEMA_VERSION}\\)\\. Upgrade ym-orders`));
    expect(error.details).toMatchObject({ schemaVersion: LATEST_SCHEMA_VERSION + 1, supportedVersion: LATEST_SCHEMA_VERSION });
  });

  it('a path that cannot be opened → DB_CANNOT_OPEN', () => {
    const error = thrownStoreError(() => SqliteStore.open(path.join(dir, 'no', 'such', 'dir', 'x.db')));
    expect(error.code).toBe(STORE_ERROR_CODES.cannotOpen);
    expect(error.message).toMatch(/Cannot open database/);
    expect(fs.existsSync(path.join(dir, 'no'))).toBe(false);
  });
});

describe('migrations from every older schema', () => {
  /** A file as the release at schema `version` left it: only the first migrations, with rows. */
  function olderFile(version: number): string {
    return rawFile(`schema-${version}.db`, (db) => {
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma('journal_mode = WAL');
      expect(migrate(db, T0, MIGRATIONS.slice(0, version))).toEqual(Array.from({ length: version }, (_, i) => i + 1));
      db.prepare(`INSERT INTO orders (order_id, campaign_id, model, status, substatus, change_state, observed_at, machine_version, snapshot, row_version, created_at, updated_at)
        VALUES (1, 10, 'FBS', 'PROCESSING', 'STARTED', 'queued', ?, 1, '{"old":true}', 2, ?, ?)`).run(T0, T0, T0 + 1);
      db.prepare(`INSERT INTO journal (order_id, row_version, event_type, event, source, from_status, from_substatus, from_change, to_status, to_substatus, to_change, at)
        VALUES (1, 1, 'SELLER.TRACK', '{}', 'import', NULL, NULL, NULL, 'PROCESSING', 'STARTED', 'idle', ?),
               (1, 2, 'SELLER.REQUEST', '{}', 'api', 'PROCESSING', 'STARTED', 'idle', 'PROCESSING', 'STARTED', 'queued', ?)`).run(T0, T0 + 1);
      db.prepare(`INSERT INTO outbox (idempotency_key, order_id, campaign_id, request_no, status, substatus, real_delivery_date, state, attempts,
          next_attempt_at, lease_owner, lease_expires_at, last_error, journal_seq, created_at, updated_at${version >= 2 ? ', read_failures' : ''})
        VALUES ('1:PROCESSING/READY_TO_SHIP:m1:r1', 1, 10, 1, 'PROCESSING', 'READY_TO_SHIP', NULL, 'uncertain', 1, ?, NULL, NULL, 'timeout', 2, ?, ?${version >= 2 ? ', 2' : ''})`).run(T0 + 60_000, T0 + 1, T0 + 2);
      db.prepare(`INSERT INTO operations VALUES ('op-1', 'updateOrderStatuses', 1, 1, 'inProgress', ?, ?, 1, '{}', 1, ?, ?)`).run(T0 + 5_000, T0 + 3_600_000, T0, T0);
      db.prepare(`INSERT INTO timers VALUES ('dbs-cancel', '1', ?, '{"orderId":1}')`).run(T0 + 9_000);
      db.prepare('INSERT INTO limiter (resource_key, capacity, remaining, window_ends_at, blocked_until, updated_at) VALUES (?, 100, 42, ?, 0, ?)').run('res', T0 + 60_000, T0);
      db.prepare("INSERT INTO limiter_leases VALUES ('lease-1', 'scope', 'res', 3, ?)").run(T0 + 30_000);
      db.prepare("INSERT INTO cursors VALUES ('sync:1', 'page-7', ?)").run(T0);
      db.prepare("INSERT INTO campaigns VALUES (10, 1, 'FBS')").run();
    });
  }

  const older = Array.from({ length: LATEST_SCHEMA_VERSION - 1 }, (_, i) => i + 1);
  it.each(older)('a file at schema %i opens, migrated, with its rows intact and the new tables working', async (version) => {
    const file = olderFile(version);
    const store = SqliteStore.open(file, { now: T0 + 1_000 });
    stores.push(store);
    expect(store.db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all()).toEqual(
      MIGRATIONS.map((m) => ({ version: m.version, applied_at: m.version <= version ? T0 : T0 + 1_000 })),
    );
    const rows = await store.read(async (tx) => ({
      order: await tx.orders.get(1),
      journal: (await tx.journal.forOrder(1)).map((j) => [j.row_version, j.event_type]),
      outbox: await tx.outbox.get(1, 1),
      operation: await tx.operations.get('op-1'),
      timers: await tx.timers.list(undefined, Number.MAX_SAFE_INTEGER),
      budget: await tx.limiter.get('res'),
      inFlight: await tx.limiter.inFlight('scope'),
      cursor: await tx.cursors.get('sync:1'),
      campaigns: await tx.campaigns.all(),
    }));
    expect(rows).toEqual({
      order: { ...ORDER, change_state: 'queued', snapshot: '{"old":true}', row_version: 2, created_at: T0, updated_at: T0 + 1 },
      journal: [
        [1, 'SELLER.TRACK'],
        [2, 'SELLER.REQUEST'],
      ],
      // Every row an older release wrote is a status change.
      outbox: expect.objectContaining({ state: 'uncertain', attempts: 1, last_error: 'timeout', next_attempt_at: T0 + 60_000, read_failures: version >= 2 ? 2 : 0, kind: 'statusChange', payload: null }),
      operation: expect.objectContaining({ operation_id: 'op-1', state: 'inProgress', next_poll_at: T0 + 5_000 }),
      timers: [{ kind: 'dbs-cancel', ref: '1', due_at: T0 + 9_000, payload: '{"orderId":1}' }],
      budget: { resource_key: 'res', capacity: 100, remaining: 42, window_ends_at: T0 + 60_000, blocked_until: 0, updated_at: T0, last_rate_limited_at: null },
      inFlight: 1,
      cursor: 'page-7',
      campaigns: [{ campaign_id: 10, business_id: 1, model: 'FBS' }],
    });
    // The old rows work with the new code, and the tables newer migrations added exist.
    await store.transaction(async (tx) => {
      expect(await tx.orders.update({ ...ORDER, change_state: 'idle', updated_at: T0 + 2_000 }, 2)).toBe(true);
      await tx.outbox.setState(1, 1, 'accepted', T0 + 2_000);
      await tx.halts.set({ campaign_id: 10, code: 'UNAUTHORIZED', message: 'key refused', owner: 'e1', at: T0 + 2_000 });
      await tx.counters.add('e1', { accepted: 1 });
      await tx.outbox.enqueue(enqueueRow(2, 1, { kind: 'cancellationAnswer', status: 'CANCELLATION_ANSWER', substatus: 'ACCEPTED', payload: '{"accepted":true}' }));
      await tx.inbox.insert({ dedupe_key: 'k', type: 'ORDER_CREATED', campaign_id: 10, order_id: 2, event_at: null, body: '{}', state: 'done', now: T0 });
      await tx.reads.request({ orderId: 2, campaignId: 10, businessId: 1, reason: 'ORDER_CREATED', now: T0 });
    });
    expect(
      await store.read(async (tx) => [
        (await tx.orders.get(1))?.row_version,
        (await tx.outbox.get(1, 1))?.state,
        await tx.halts.all(),
        await tx.counters.totals(),
        (await tx.outbox.get(2, 1))?.kind,
        await tx.inbox.counts(),
        await tx.reads.count(),
      ]),
    ).toEqual([3, 'accepted', [{ campaign_id: 10, code: 'UNAUTHORIZED', message: 'key refused', owner: 'e1', at: T0 + 2_000 }], { accepted: 1 }, 'cancellationAnswer', { pending: 0, done: 1, ignored: 0 }, 1]);
  });
});

describe('transactions on the connection', () => {
  it('take the write lock up front (BEGIN IMMEDIATE): another connection cannot write while one runs', async () => {
    const store = open();
    const other = new BetterSqlite3(path.join(dir, 'store.db'));
    other.pragma('busy_timeout = 0');
    const insert = () => other.exec("INSERT INTO cursors (name, value, updated_at) VALUES ('x', 'y', 0)");
    try {
      await store.transaction(async () => {
        // No write yet in this transaction, and still the lock is ours.
        expect(store.db.inTransaction).toBe(true);
        expect(insert).toThrow(/locked|busy/i);
      });
      insert();
      expect(await store.read((tx) => tx.cursors.get('x'))).toBe('y');
    } finally {
      other.close();
    }
  });

  it('two stores on one file in one process take turns instead of blocking each other (two engines side by side)', async () => {
    // A short busy timeout: were the second store's BEGIN IMMEDIATE to wait in SQLite's busy loop
    // for the first one's transaction (which cannot go on while the thread waits), it would fail
    // with DB_BUSY well within this test.
    const a = open('shared.db', { busyTimeoutMs: 200 });
    const b = SqliteStore.open(path.join(dir, '.', 'shared.db'), { now: T0, busyTimeoutMs: 200 });
    stores.push(b);
    const bump = (store: Store, name: string) =>
      store.transaction(async (tx) => {
        const n = Number((await tx.cursors.get(name)) ?? '0');
        // Give the other store every chance to start its own transaction in between.
        await new Promise((resolve) => setTimeout(resolve, 1));
        await tx.cursors.set(name, String(n + 1), T0);
      });
    await Promise.all(Array.from({ length: 40 }, (_, i) => bump(i % 2 === 0 ? a : b, 'n')));
    expect(await a.read((tx) => tx.cursors.get('n'))).toBe('40');
    // Opening a third store while one holds a transaction open across an await: an up-to-date file
    // opens without taking the write lock.
    let third: SqliteStore | undefined;
    await a.transaction(async (tx) => {
      await tx.cursors.set('m', '1', T0);
      third = SqliteStore.open(path.join(dir, 'shared.db'), { now: T0, busyTimeoutMs: 200 });
      stores.push(third);
    });
    expect(await third!.read((tx) => tx.cursors.get('m'))).toBe('1');
  });

  it('a rolled-back transaction leaves every table (and the AUTOINCREMENT counters) as they were', async () => {
    const store = open();
    await store.transaction(async (tx) => {
      await tx.orders.insert(ORDER);
      await tx.journal.append({ order_id: 1, row_version: 1, event_type: 'SELLER.TRACK', event: '{}', source: 'import', from_status: null, from_substatus: null, from_change: null, to_status: 'PROCESSING', to_substatus: 'STARTED', to_change: 'idle', at: T0 });
    });
    const before = dump(store.db);
    await expect(
      store.transaction(async (tx) => {
        await tx.orders.insert({ ...ORDER, order_id: 2 });
        await tx.journal.append({ order_id: 2, row_version: 1, event_type: 'SELLER.TRACK', event: '{}', source: 'import', from_status: null, from_substatus: null, from_change: null, to_status: 'PROCESSING', to_substatus: 'STARTED', to_change: 'idle', at: T0 });
        await tx.outbox.enqueue({ idempotency_key: 'k', order_id: 2, campaign_id: 10, request_no: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP', real_delivery_date: null, next_attempt_at: T0, journal_seq: 2, now: T0 });
        await tx.halts.set({ campaign_id: 10, code: 'UNAUTHORIZED', message: 'm', owner: 'o', at: T0 });
        await tx.counters.add('o', { accepted: 1 });
        await tx.inbox.insert({ dedupe_key: 'n', type: 'ORDER_CREATED', campaign_id: 10, order_id: 2, event_at: null, body: '{}', state: 'pending', now: T0 });
        await tx.reads.request({ orderId: 2, campaignId: 10, businessId: 1, reason: 'ORDER_CREATED', now: T0 });
        await new Promise((resolve) => setTimeout(resolve, 5));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(store.db.inTransaction).toBe(false);
    expect(dump(store.db)).toEqual(before);
  });

  it('a driver error surfaces as DB_FAILED: it names the file and SQLite’s reason, never the values, and keeps the cause', async () => {
    const store = open();
    await store.transaction((tx) => tx.limiter.addLease('lease-1', 'scope', 'res', 1, T0, 30_000));
    const before = dump(store.db);
    const error = await expectStoreError(
      store.transaction(async (tx) => {
        await tx.cursors.set('sync:1', 'page-2', T0);
        await tx.limiter.addLease('lease-1', 'scope-s3cr3t-value', 'res', 1, T0, 30_000);
      }),
      STORE_ERROR_CODES.failed,
    );
    expect(error.message).toContain(store.name);
    expect(error.message).toMatch(/SQLITE_CONSTRAINT_PRIMARYKEY.*limiter_leases\.lease_id.*nothing was written/);
    expect(error.message).not.toContain('s3cr3t');
    expect(JSON.stringify(error.details)).not.toContain('s3cr3t');
    expect(error.details).toEqual({ path: store.name, sqliteCode: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect(error.cause).toBeInstanceOf(BetterSqlite3.SqliteError);
    expect(dump(store.db)).toEqual(before);
    expect(store.db.inTransaction).toBe(false);
  });

  it('a read is one read-only transaction: one snapshot, and a write in it is refused', async () => {
    const store = open();
    await store.transaction((tx) => tx.cursors.set('c', 'old', T0));
    const other = new BetterSqlite3(path.join(dir, 'store.db'));
    try {
      const seen = await store.read(async (tx) => {
        const first = await tx.cursors.get('c');
        other.prepare("UPDATE cursors SET value = 'new' WHERE name = 'c'").run(); // another process commits meanwhile
        return [first, await tx.cursors.get('c')];
      });
      expect(seen).toEqual(['old', 'old']);
      expect(await store.read((tx) => tx.cursors.get('c'))).toBe('new');
    } finally {
      other.close();
    }
    const error = await expectStoreError(
      store.read((tx) => tx.cursors.set('c', 'written in a read', T0)),
      STORE_ERROR_CODES.failed,
    );
    expect(error.details).toMatchObject({ sqliteCode: 'SQLITE_READONLY' });
    expect(await store.read((tx) => tx.cursors.get('c'))).toBe('new');
    expect(store.db.pragma('query_only', { simple: true })).toBe(0);
  });

  it('close lets an accepted transaction finish, then closes the handle; later calls get DB_CLOSED', async () => {
    const store = open();
    const running = store.transaction(async (tx) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await tx.cursors.set('c', 'committed', T0);
      return store.db.open;
    });
    const closing = store.close();
    const refused = await expectStoreError(store.transaction(async () => 1), STORE_ERROR_CODES.closed);
    expect(refused.message).toContain(store.name);
    expect(await running).toBe(true);
    await closing;
    expect(store.db.open).toBe(false);
    const again = open();
    expect(await again.read((tx) => tx.cursors.get('c'))).toBe('committed');
  });
});

describe('openStore and isReplaceableDatabase', () => {
  it('a Store is used as it is; a path opens a SqliteStore with the options and the time given', async () => {
    const mine = open('given.db');
    expect(await openStore(mine, { now: T0 })).toEqual({ store: mine, owned: false });
    const file = path.join(dir, 'opened.db');
    const { store, owned } = await openStore(file, { sqlite: { busyTimeoutMs: 321 }, now: T0 + 7 });
    stores.push(store);
    expect(owned).toBe(true);
    expect(store).toBeInstanceOf(SqliteStore);
    expect(store.name).toBe(file);
    const db = (store as SqliteStore).db;
    expect(db.pragma('busy_timeout', { simple: true })).toBe(321);
    expect(db.prepare('SELECT DISTINCT applied_at FROM schema_migrations').pluck().all()).toEqual([T0 + 7]);
  });

  it('a postgres:// or postgresql:// URL goes to PostgreSQL (a refused port: DB_CANNOT_OPEN), its password redacted', async () => {
    for (const url of ['postgres://app:hunter2@127.0.0.1:1/orders', 'postgresql://app:p@ss@127.0.0.1:1/orders?sslmode=require', 'POSTGRES://127.0.0.1:1/orders?user=app&password=hunter2']) {
      const error = await expectStoreError(openStore(url, { now: T0 }), STORE_ERROR_CODES.cannotOpen);
      expect(error.message).toMatch(/^Cannot open database postgres(ql)?:\/\/.*ECONNREFUSED/i);
      for (const secret of ['hunter2', 'p@ss', 'ss@127']) {
        expect(error.message).not.toContain(secret);
        expect(JSON.stringify(error.details)).not.toContain(secret);
      }
      expect(error.message).toContain('***');
    }
    expect((await expectStoreError(openStore('postgres://app:hunter2@127.0.0.1:1/orders', { now: T0 }), STORE_ERROR_CODES.cannotOpen)).details).toEqual({
      url: 'postgres://app:***@127.0.0.1:1/orders',
      schema: 'ym_orders',
      networkCode: 'ECONNREFUSED',
    });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('isReplaceableDatabase: nothing there, an empty file or one of ours; never another file', async () => {
    await open('ours.db').close();
    fs.writeFileSync(path.join(dir, 'empty.db'), '');
    fs.writeFileSync(path.join(dir, 'short.db'), 'SQLite format 3');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'x'.repeat(200));
    rawFile('other.db', (db) => db.exec('CREATE TABLE t (a)'));
    fs.mkdirSync(path.join(dir, 'a-dir'));
    const answers = Object.fromEntries(['missing.db', 'empty.db', 'ours.db', 'short.db', 'notes.txt', 'other.db', 'a-dir'].map((n) => [n, isReplaceableDatabase(path.join(dir, n))]));
    expect(answers).toEqual({ 'missing.db': true, 'empty.db': true, 'ours.db': true, 'short.db': false, 'notes.txt': false, 'other.db': false, 'a-dir': false });
  });
});

// ---------------------------------------------------------------------------------------------
// Two processes on one file (test/workers/*.ts under `node --import tsx`).

interface WorkerOutput {
  readonly code: number | null;
  readonly lines: string[];
  readonly stderr: string;
}

function spawnWorker(script: string, args: readonly string[], onLine?: (line: string) => void): { child: ReturnType<typeof spawn>; done: Promise<WorkerOutput> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'workers', script), ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = new Promise<WorkerOutput>((resolve, reject) => {
    const lines: string[] = [];
    let buffered = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        onLine?.(line);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, lines, stderr }));
  });
  return { child, done };
}

describe('two processes on one file', () => {
  it('a transaction that waits for another process’s write lock past the busy timeout fails with DB_BUSY and writes nothing', async () => {
    const store = open('locked.db', { busyTimeoutMs: 200 });
    await store.transaction((tx) => tx.orders.insert(ORDER));
    const before = dump(store.db);
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // Held until this test lets go (a line on its stdin), however slowly this process runs.
    const holder = spawnWorker('lock-holder.ts', [store.name, 'stdin'], (line) => line.startsWith('locked ') && locked());
    await Promise.race([isLocked, holder.done]);
    const error = await expectStoreError(
      store.transaction(async (tx) => {
        await tx.cursors.set('c', 'never', T0);
      }),
      STORE_ERROR_CODES.busy,
    );
    holder.child.stdin!.end('release\n');
    const out = await holder.done;
    expect(out.stderr).toBe('');
    expect(out.lines.map((l) => l.split(' ')[0])).toEqual(['locked', 'committing', 'released']);
    expect(error.message).toMatch(/stayed locked by another process longer than the busy timeout \(SQLITE_BUSY.*\); nothing was written/);
    expect(error.details).toMatchObject({ path: store.name });
    expect(dump(store.db)).toEqual(before);
    // Once the lock is free, the store writes again.
    await store.transaction((tx) => tx.cursors.set('c', 'now', T0));
    expect(await store.read((tx) => tx.cursors.get('c'))).toBe('now');
  }, 60_000);

  it('two processes creating the same new database file at the same instant both succeed', async () => {
    const files = 150;
    const workers = [0, 1].map((proc) => {
      let loaded!: () => void;
      const isLoaded = new Promise<void>((resolve) => (loaded = resolve));
      return { worker: spawnWorker('open-race-worker.ts', [dir, String(files), String(proc)], (line) => line === 'loaded' && loaded()), loaded: isLoaded };
    });
    await Promise.all(workers.map((w) => Promise.race([w.loaded, w.worker.done])));
    const go = `go ${Date.now() + 100}\n`;
    for (const { worker } of workers) worker.child.stdin!.end(go);
    const outputs = await Promise.all(workers.map((w) => w.worker.done));
    const results = outputs.map((o) => {
      expect(o.stderr).toBe('');
      expect(o.lines[0]).toBe('loaded');
      return JSON.parse(o.lines.at(-1)!.slice(5)) as unknown;
    });
    expect(results).toEqual([
      { outcomes: { ok: files }, firstError: null },
      { outcomes: { ok: files }, firstError: null },
    ]);
    // Each file is one of ours, migrated once.
    for (const i of [0, files - 1]) {
      const store = open(`f${i}.db`);
      expect(store.db.prepare('SELECT COUNT(*) FROM schema_migrations').pluck().get()).toBe(MIGRATIONS.length);
    }
  }, 60_000);
});

describe('integrityCheck', () => {
  it('is empty for a sound file and lists SQLite’s findings for a damaged one', async () => {
    const store = open('check.db');
    await store.transaction(async (tx) => {
      for (let i = 0; i < 200; i++) await tx.cursors.set(`c${i}`, 'x'.repeat(200), T0);
    });
    expect(await store.integrityCheck()).toEqual([]);
    // Overwrite the index behind cursors' primary key: the table and the index now disagree.
    const rootpage = (store.db.prepare("SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cursors'").get() as { rootpage: number }).rootpage;
    const page = store.db.pragma('page_size', { simple: true }) as number;
    await store.close();
    const file = path.join(dir, 'check.db');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(page - 200, 0xff), 0, page - 200, (rootpage - 1) * page + 100);
    fs.closeSync(fd);
    const again = open('check.db');
    const findings = await again.integrityCheck();
    expect(findings.join('\n')).toMatch(/out of range|corrupt|wrong # of entries|missing from index/i);
  });
});

describe('wake-ups', () => {
  /** Listeners run in a setImmediate the store schedules at commit: one scheduled after the transaction settled runs after them. */
  const afterWakeups = () => new Promise<void>((resolve) => setImmediate(resolve));


  it('once per committed transaction that queued rows, after its commit, for every store of this process on the file; none for a rollback, a failure or a transaction without an enqueue', async () => {
    const a = open('wake.db');
    const b = SqliteStore.open(path.join(dir, '.', 'wake.db'), { now: T0 });
    stores.push(b);
    const elsewhere = open('other.db');
    expect(a.wakeups).toBe('process');
    const heard = { a: 0, b: 0, elsewhere: 0 };
    a.onQueued(() => heard.a++);
    b.onQueued(() => heard.b++);
    elsewhere.onQueued(() => heard.elsewhere++);

    await a.transaction(async (tx) => {
      for (const orderId of [1, 2, 3]) await tx.outbox.enqueue(enqueueRow(orderId));
    });
    expect(heard).toEqual({ a: 0, b: 0, elsewhere: 0 }); // not before the caller has its answer
    await afterWakeups();
    expect(heard).toEqual({ a: 1, b: 1, elsewhere: 0 });

    const boom = new Error('boom');
    await expect(
      b.transaction(async (tx) => {
        await tx.outbox.enqueue(enqueueRow(4));
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expectStoreError(
      a.transaction(async (tx) => {
        await tx.outbox.enqueue(enqueueRow(5));
        await tx.outbox.enqueue({ ...enqueueRow(6), idempotency_key: enqueueRow(5).idempotency_key }); // one key, two requests
      }),
      STORE_ERROR_CODES.failed,
    );
    await a.transaction((tx) => tx.cursors.set('c', 'nothing queued', T0));
    expect(await a.read((tx) => tx.outbox.counts())).toMatchObject({ queued: 3 });
    await afterWakeups();
    expect(heard).toEqual({ a: 1, b: 1, elsewhere: 0 });

    await b.transaction((tx) => tx.outbox.enqueue(enqueueRow(7)));
    await afterWakeups();
    expect(heard).toEqual({ a: 2, b: 2, elsewhere: 0 });
    // A closed store's listeners stop; the other store's go on.
    await a.close();
    await b.transaction((tx) => tx.outbox.enqueue(enqueueRow(8)));
    await afterWakeups();
    expect(heard).toEqual({ a: 2, b: 3, elsewhere: 0 });
  });
});

describe('statement plans', () => {
  it('a statement taking a batch of outbox ids (json_each) looks them up by primary key, never by walking the index of every queued row', () => {
    // The statements as the store prepares them, so the plan checked is the one that runs.
    const proto = BetterSqlite3.prototype as unknown as { prepare: (this: Database, sql: string) => unknown };
    const prepare = proto.prepare;
    const texts: string[] = [];
    proto.prepare = function (sql) {
      texts.push(sql);
      return prepare.call(this, sql);
    };
    let store: SqliteStore;
    try {
      store = open();
    } finally {
      proto.prepare = prepare;
    }
    const batched = texts.filter((sql) => sql.includes('json_each'));
    expect(batched.length).toBeGreaterThan(0);
    for (const sql of batched) {
      const params = Object.fromEntries([...new Set(sql.match(/@\w+/g) ?? [])].map((p) => [p.slice(1), p === '@ids' ? '[1, 2]' : 0]));
      const plan = (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail).join('\n');
      expect(plan, sql).toMatch(/SEARCH outbox USING INTEGER PRIMARY KEY/);
      expect(plan, sql).not.toMatch(/outbox_due/);
    }
  });
});
