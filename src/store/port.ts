// The store port: what the engine needs from a database, one interface per concern, behind one
// transaction boundary. Adapters (src/store/sqlite, src/store/postgres) implement it; nothing
// outside an adapter imports a driver or writes SQL, so every adapter runs the same engine code.

import type { CampaignsPort } from './campaigns.js';
import type { CountersPort } from './counters.js';
import type { CursorsPort } from './cursors.js';
import type { HaltsPort } from './halts.js';
import type { InboxPort } from './inbox.js';
import type { JournalPort } from './journal.js';
import type { LimiterPort } from './limiter.js';
import type { OperationsPort } from './operations.js';
import type { OrderReadsPort } from './order-reads.js';
import type { OrdersPort } from './orders.js';
import type { OutboxPort } from './outbox.js';
import type { TimersPort } from './timers.js';

/** Every concern of the store, as seen from inside one transaction. */
export interface StoreTx {
  readonly orders: OrdersPort;
  readonly journal: JournalPort;
  readonly outbox: OutboxPort;
  readonly operations: OperationsPort;
  readonly timers: TimersPort;
  readonly limiter: LimiterPort;
  readonly cursors: CursorsPort;
  readonly campaigns: CampaignsPort;
  readonly halts: HaltsPort;
  readonly counters: CountersPort;
  readonly inbox: InboxPort;
  readonly reads: OrderReadsPort;
}

export interface Store {
  /** What messages call this database: a file path, or a URL with its password redacted. */
  readonly name: string;
  /**
   * Whose queued rows {@link onQueued} reports: this process's only (SQLite; other processes on
   * the file are seen when the runner next looks), or every process's on the database
   * (PostgreSQL, by LISTEN/NOTIFY).
   */
  readonly wakeups: 'process' | 'database';
  /**
   * Calls `listener` soon after a transaction that queued outbox rows commits (see `wakeups`) and
   * returns the function that stops it. A wake-up is a hint: one may be missed (a listening
   * connection that broke) or come with nothing left to do, so a runner still looks on its own
   * now and then.
   */
  onQueued(listener: () => void): () => void;
  /**
   * Runs `fn` in one write transaction and resolves with its value once committed. A throw (or a
   * rejected promise) rolls back everything `fn` wrote and comes out unchanged. `fn` must only
   * touch the store through `tx` and must not wait on anything else (no HTTP): the transaction
   * holds locks others wait for. Concurrent transactions are isolated from each other: an adapter
   * may run them one at a time (SQLite queues them) or side by side (PostgreSQL, with row and
   * advisory locks where the port says so). `fn` must not call `transaction` or `read` of the
   * same store: on a queuing adapter it would wait for itself.
   * A port call that fails (e.g. a duplicate journal row) fails the whole transaction: it rejects
   * with a StoreError (DB_FAILED; DB_BUSY, DB_UNAVAILABLE or DB_CORRUPT where that is the cause)
   * and nothing is written, so `fn` must not catch it and go on. The one exception is a
   * connection that broke during the commit (DB_UNAVAILABLE, `details.commitOutcome` 'unknown'):
   * the transaction may have committed.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * Runs reads against one consistent view of the database (nothing another transaction commits
   * meanwhile shows) and resolves with `fn`'s value. `fn` must not write: a write fails with
   * DB_FAILED and nothing is written.
   */
  read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * Closes the database: calls made from now on reject with DB_CLOSED at once; those already
   * accepted finish first. Resolves once closed; closing twice is a no-op.
   */
  close(): Promise<void>;
}
