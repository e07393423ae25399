// The SQLite adapter of the store port: one better-sqlite3 connection per store. A transaction
// is BEGIN IMMEDIATE … COMMIT on that connection, so a crash leaves the file before or after it,
// and another process's writes wait for it (busy_timeout). Because a transaction's function is
// async and the connection is shared, every transaction and every read of one store runs in turn
// through an in-process queue (a promise chain): two callers never interleave statements. The
// queue belongs to the file, not the store: a second store on the same file in this process
// (two engines side by side) waits its turn in the queue, since its BEGIN IMMEDIATE would
// otherwise block the thread in SQLite's busy wait while the first one's transaction, between
// two awaits, could never finish.
// The driver's handle is @internal: the published declarations (stripInternal) never show
// better-sqlite3's types, so a consumer needs no @types/better-sqlite3.

import fs from 'node:fs';
import nodePath from 'node:path';
import type { Database, Statement } from 'better-sqlite3';
import { StoreError, STORE_ERROR_CODES } from '../errors.js';
import type { Store, StoreTx } from '../port.js';
import { CampaignsTable } from './campaigns-table.js';
import { CountersTable } from './counters-table.js';
import { CursorsTable } from './cursors-table.js';
import { wrapSqliteError } from './errors.js';
import { HaltsTable } from './halts-table.js';
import { JournalTable } from './journal-table.js';
import { LimiterTable } from './limiter-table.js';
import { DEFAULT_DB_PATH, openDatabase, type SqliteOptions } from './open-database.js';
import { OperationsTable } from './operations-table.js';
import { OrdersTable } from './orders-table.js';
import { OutboxTable } from './outbox-table.js';
import { TimersTable } from './timers-table.js';

export type { SqliteOptions } from './open-database.js';

function ignore(): void {}

/**
 * Lets timers and I/O run before the next queued transaction. better-sqlite3 answers at once, so a
 * queue of transactions would otherwise run as one unbroken chain of microtasks, holding back
 * every request and answer waiting on the socket (a permit's request would reach the Market long
 * after its permit was taken), and every other server in the process.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The queue of one database file, shared by every store of this process open on it. */
interface FileQueue {
  tail: Promise<void>;
  stores: number;
}

const QUEUES = new Map<string, FileQueue>();

/** Who shares a queue: the file itself (whatever path names it); each in-memory database is its own. */
function queueKey(path: string): string | undefined {
  if (path === ':memory:' || path === '') return undefined;
  try {
    return fs.realpathSync(path);
  } catch {
    return nodePath.resolve(path);
  }
}

function joinQueue(path: string): { queue: FileQueue; leave: () => void } {
  const key = queueKey(path);
  const queue = (key !== undefined ? QUEUES.get(key) : undefined) ?? { tail: Promise.resolve(), stores: 0 };
  if (key !== undefined) QUEUES.set(key, queue);
  queue.stores++;
  return {
    queue,
    leave: () => {
      if (--queue.stores === 0 && key !== undefined && QUEUES.get(key) === queue) QUEUES.delete(key);
    },
  };
}

/** The store on one SQLite file (or `:memory:`): open it with {@link SqliteStore.open}. */
export class SqliteStore implements Store {
  readonly name: string;
  /** @internal The driver's handle, for the adapter's own tests only. */
  readonly db: Database;
  readonly #tx: StoreTx;
  readonly #beginWrite: Statement<[]>;
  readonly #beginRead: Statement<[]>;
  readonly #commit: Statement<[]>;
  readonly #rollback: Statement<[]>;
  /** Settles once every transaction and read accepted so far (by any store on this file) has: the next one starts after it. */
  readonly #queue: FileQueue;
  readonly #leaveQueue: () => void;
  /** Set by close(): from then on calls are refused, and it resolves once the handle is closed. */
  #closed: Promise<void> | undefined;

  private constructor(db: Database) {
    this.db = db;
    this.name = db.name;
    ({ queue: this.#queue, leave: this.#leaveQueue } = joinQueue(db.name));
    this.#tx = {
      orders: new OrdersTable(db),
      journal: new JournalTable(db),
      outbox: new OutboxTable(db),
      operations: new OperationsTable(db),
      timers: new TimersTable(db),
      limiter: new LimiterTable(db),
      cursors: new CursorsTable(db),
      campaigns: new CampaignsTable(db),
      halts: new HaltsTable(db),
      counters: new CountersTable(db),
    };
    // The write lock is taken up front: a transaction never fails half-way for want of it.
    this.#beginWrite = db.prepare('BEGIN IMMEDIATE');
    this.#beginRead = db.prepare('BEGIN DEFERRED');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
  }

  /**
   * Opens (or creates) the database file, claims it with our application_id, switches it to WAL
   * and migrates it. Throws DB_NOT_OURS, DB_CORRUPT, DB_SCHEMA_TOO_NEW or DB_CANNOT_OPEN.
   */
  static open(path: string = DEFAULT_DB_PATH, options: SqliteOptions = {}): SqliteStore {
    return new SqliteStore(openDatabase(path, options));
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#enqueue(() => this.#run(this.#beginWrite, fn, false));
  }

  read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    // One read transaction: every statement of `fn` sees the same snapshot of the file.
    return this.#enqueue(() => this.#run(this.#beginRead, fn, true));
  }

  /**
   * SQLite's own check of the whole file (PRAGMA integrity_check), in its turn in the queue: an
   * empty list when the file is sound, else SQLite's findings. For operators and crash tests.
   */
  integrityCheck(): Promise<string[]> {
    return this.#enqueue(async () => {
      const rows = this.db.pragma('integrity_check') as { integrity_check: string }[];
      const findings = rows.map((r) => r.integrity_check);
      return findings.length === 1 && findings[0] === 'ok' ? [] : findings;
    });
  }

  /** Refuses new calls at once; the ones already accepted finish, then the handle closes. */
  close(): Promise<void> {
    this.#closed ??= this.#queue.tail.then(() => {
      this.db.close();
      this.#leaveQueue();
    });
    return this.#closed;
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new StoreError(STORE_ERROR_CODES.closed, `${this.name} is closed; open the store again to use it.`, { path: this.name }));
    }
    const result = this.#queue.tail.then(yieldToEventLoop).then(work);
    this.#queue.tail = result.then(ignore, ignore);
    return result;
  }

  async #run<T>(begin: Statement<[]>, fn: (tx: StoreTx) => Promise<T>, readOnly: boolean): Promise<T> {
    try {
      begin.run();
      // A read that tries to write fails (SQLITE_READONLY → DB_FAILED) instead of writing. Not a
      // prepared statement: SQLite runs this pragma when it compiles it, not on each run.
      if (readOnly) this.db.exec('PRAGMA query_only = ON');
      const value = await fn(this.#tx);
      this.#commit.run();
      return value;
    } catch (error) {
      this.#rollbackIfOpen();
      throw wrapSqliteError(error, this.name);
    } finally {
      if (readOnly) this.db.exec('PRAGMA query_only = OFF');
    }
  }

  /** BEGIN may have failed (busy), and SQLite itself rolls back on some errors. */
  #rollbackIfOpen(): void {
    if (this.db.inTransaction) this.#rollback.run();
  }
}
