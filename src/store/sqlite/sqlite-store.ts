// The SQLite adapter of the store port: one better-sqlite3 connection per store. A transaction
// is BEGIN IMMEDIATE … COMMIT on that connection, so a crash leaves the file before or after it,
// and another process's writes wait for it (busy_timeout). Because a transaction's function is
// async and the connection is shared, every transaction and every read of one store runs in turn
// through an in-process queue (a promise chain): two callers never interleave statements. The
// queue belongs to the file, not the store: a second store on the same file in this process
// (two engines side by side) waits its turn in the queue, since its BEGIN IMMEDIATE would
// otherwise block the thread in SQLite's busy wait while the first one's transaction, between
// two awaits, could never finish. Wake-ups are shared the same way: a listener of any store on the
// file hears every commit of this process that queued outbox rows (other processes' commits are
// seen when their runners look).
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
import { InboxTable } from './inbox-table.js';
import { JournalTable } from './journal-table.js';
import { LimiterTable } from './limiter-table.js';
import { DEFAULT_DB_PATH, openDatabase, type SqliteOptions } from './open-database.js';
import { OperationsTable } from './operations-table.js';
import { OrderReadsTable } from './order-reads-table.js';
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

/** One onQueued call's listener: an entry of its own, so the same function added twice is stopped once each. */
interface ListenerEntry {
  readonly listener: () => void;
}

/** What every store of this process open on one database file shares. */
interface SharedFile {
  /** Settles once every transaction and read accepted so far (by any store on the file) has: the next one starts after it. */
  tail: Promise<void>;
  stores: number;
  /** Every store's wake-up listeners. */
  readonly listeners: Set<ListenerEntry>;
}

const SHARED_FILES = new Map<string, SharedFile>();

/** Who shares a queue: the file itself (whatever path names it); each in-memory database is its own. */
function queueKey(path: string): string | undefined {
  if (path === ':memory:' || path === '') return undefined;
  try {
    return fs.realpathSync(path);
  } catch {
    return nodePath.resolve(path);
  }
}

function joinFile(path: string): { shared: SharedFile; leave: () => void } {
  const key = queueKey(path);
  const shared = (key !== undefined ? SHARED_FILES.get(key) : undefined) ?? { tail: Promise.resolve(), stores: 0, listeners: new Set() };
  if (key !== undefined) SHARED_FILES.set(key, shared);
  shared.stores++;
  return {
    shared,
    leave: () => {
      if (--shared.stores === 0 && key !== undefined && SHARED_FILES.get(key) === shared) SHARED_FILES.delete(key);
    },
  };
}

/** Each listener in turn; one that throws stops neither the others nor the store. */
function wake(listeners: ReadonlySet<ListenerEntry>): void {
  for (const { listener } of [...listeners]) {
    try {
      listener();
    } catch {
      // A wake-up is a hint: a listener's own failure is its own to report.
    }
  }
}

/** The store on one SQLite file (or `:memory:`): open it with {@link SqliteStore.open}. */
export class SqliteStore implements Store {
  readonly name: string;
  /** Only this process's commits wake listeners. */
  readonly wakeups = 'process' as const;
  /** @internal The driver's handle, for the adapter's own tests only. */
  readonly db: Database;
  /** Opened with `readOnly`: transactions are refused, reads work. */
  readonly readOnly: boolean;
  readonly #tx: StoreTx;
  readonly #beginWrite: Statement<[]>;
  readonly #beginRead: Statement<[]>;
  readonly #commit: Statement<[]>;
  readonly #rollback: Statement<[]>;
  /** The queue and listeners of the file, shared with the other stores of this process on it. */
  readonly #shared: SharedFile;
  readonly #leaveFile: () => void;
  /** The listeners added through this store: they stop when it closes. */
  readonly #ownListeners = new Set<ListenerEntry>();
  /** Whether the transaction running now queued outbox rows. */
  #queuedInTransaction = false;
  /** Set by close(): from then on calls are refused, and it resolves once the handle is closed. */
  #closed: Promise<void> | undefined;

  private constructor(db: Database) {
    this.db = db;
    this.name = db.name;
    this.readOnly = db.readonly;
    ({ shared: this.#shared, leave: this.#leaveFile } = joinFile(db.name));
    this.#tx = {
      orders: new OrdersTable(db),
      journal: new JournalTable(db),
      outbox: new OutboxTable(db, () => (this.#queuedInTransaction = true)),
      operations: new OperationsTable(db),
      timers: new TimersTable(db),
      limiter: new LimiterTable(db),
      cursors: new CursorsTable(db),
      campaigns: new CampaignsTable(db),
      halts: new HaltsTable(db),
      counters: new CountersTable(db),
      inbox: new InboxTable(db),
      reads: new OrderReadsTable(db),
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
   * With `readOnly`, opens an existing file as it is and writes nothing to it: DB_CANNOT_OPEN
   * too for a missing file or one at an older schema (a read-only open does not migrate).
   */
  static open(path: string = DEFAULT_DB_PATH, options: SqliteOptions = {}): SqliteStore {
    return new SqliteStore(openDatabase(path, options));
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.readOnly) {
      return Promise.reject(
        new StoreError(STORE_ERROR_CODES.failed, `${this.name} is open read-only: nothing was written; open it without readOnly to write.`, { path: this.name, readOnly: true }),
      );
    }
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

  /**
   * Calls `listener` soon after (never during) each commit, by any store of this process on this
   * file, of a transaction that queued outbox rows. Stops when this store closes.
   */
  onQueued(listener: () => void): () => void {
    const entry = { listener };
    this.#shared.listeners.add(entry);
    this.#ownListeners.add(entry);
    return () => {
      this.#shared.listeners.delete(entry);
      this.#ownListeners.delete(entry);
    };
  }

  /** Refuses new calls at once; the ones already accepted finish, then the handle closes and this store's listeners stop. */
  close(): Promise<void> {
    this.#closed ??= this.#shared.tail.then(() => {
      this.db.close();
      for (const entry of this.#ownListeners) this.#shared.listeners.delete(entry);
      this.#ownListeners.clear();
      this.#leaveFile();
    });
    return this.#closed;
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new StoreError(STORE_ERROR_CODES.closed, `${this.name} is closed; open the store again to use it.`, { path: this.name }));
    }
    const result = this.#shared.tail.then(yieldToEventLoop).then(work);
    this.#shared.tail = result.then(ignore, ignore);
    return result;
  }

  async #run<T>(begin: Statement<[]>, fn: (tx: StoreTx) => Promise<T>, readOnly: boolean): Promise<T> {
    this.#queuedInTransaction = false;
    try {
      begin.run();
      // A read that tries to write fails (SQLITE_READONLY → DB_FAILED) instead of writing. Not a
      // prepared statement: SQLite runs this pragma when it compiles it, not on each run.
      if (readOnly) this.db.exec('PRAGMA query_only = ON');
      const value = await fn(this.#tx);
      this.#commit.run();
      // Once per committed transaction, after the caller's own continuation: a listener never
      // runs inside the transaction nor holds up its caller.
      if (this.#queuedInTransaction) setImmediate(wake, this.#shared.listeners);
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
