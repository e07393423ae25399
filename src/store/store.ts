// The store: one SQLite database and its tables. Every write the engine makes goes through
// `write()`, a BEGIN IMMEDIATE transaction, so a crash leaves the file before or after a change.
// The driver's handle and the tables are @internal: the published declarations (stripInternal)
// show open/read/write/close only, never better-sqlite3's types, so a consumer needs no
// @types/better-sqlite3 (and the tables stay free to change behind the store).

import type { Database } from 'better-sqlite3';
import { CampaignsTable } from './campaigns-table.js';
import { wrapSqliteError } from './errors.js';
import { CursorsTable } from './cursors-table.js';
import { JournalTable } from './journal-table.js';
import { LimiterTable } from './limiter-table.js';
import { openDatabase, type OpenDatabaseOptions } from './open-database.js';
import { OperationsTable } from './operations-table.js';
import { OrdersTable } from './orders-table.js';
import { OutboxTable } from './outbox-table.js';
import { TimersTable } from './timers-table.js';

export class Store {
  /** @internal */ readonly db: Database;
  /** @internal */ readonly orders: OrdersTable;
  /** @internal */ readonly journal: JournalTable;
  /** @internal */ readonly outbox: OutboxTable;
  /** @internal */ readonly operations: OperationsTable;
  /** @internal */ readonly cursors: CursorsTable;
  /** @internal */ readonly campaigns: CampaignsTable;
  /** @internal */ readonly limiter: LimiterTable;
  /** @internal */ readonly timers: TimersTable;

  /** @internal Open one with {@link Store.open}. */
  constructor(db: Database) {
    this.db = db;
    this.orders = new OrdersTable(db);
    this.journal = new JournalTable(db);
    this.outbox = new OutboxTable(db);
    this.operations = new OperationsTable(db);
    this.cursors = new CursorsTable(db);
    this.campaigns = new CampaignsTable(db);
    this.limiter = new LimiterTable(db);
    this.timers = new TimersTable(db);
  }

  static open(path: string, options?: OpenDatabaseOptions): Store {
    return new Store(openDatabase(path, options));
  }

  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE); a throw rolls everything back. */
  write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (error) {
      throw wrapSqliteError(error, this.db.name);
    }
  }

  /** Runs reads, turning SQLite's busy and corruption errors into typed ones. */
  read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw wrapSqliteError(error, this.db.name);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
