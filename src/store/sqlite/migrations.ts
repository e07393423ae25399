// Numbered schema migrations. Each runs once, in order, inside the transaction that records
// it in schema_migrations; never edit a released one, append a new one.

import type { Database } from 'better-sqlite3';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'orders, journal, outbox, operations, timers, limiter, cursors',
    sql: `
      CREATE TABLE campaigns (
        campaign_id INTEGER PRIMARY KEY,
        business_id INTEGER NOT NULL,
        model TEXT NOT NULL
      );

      -- One row per order: the machine snapshot plus the columns queries need.
      CREATE TABLE orders (
        order_id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        substatus TEXT,
        change_state TEXT NOT NULL,
        observed_at INTEGER NOT NULL,
        machine_version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        row_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX orders_by_status ON orders (status, substatus);
      CREATE INDEX orders_by_campaign ON orders (campaign_id);
      CREATE INDEX orders_with_change ON orders (change_state) WHERE change_state <> 'idle';

      -- Append-only audit: one row per event that changed an order.
      CREATE TABLE journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id INTEGER NOT NULL,
        row_version INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        event TEXT NOT NULL,
        source TEXT NOT NULL,
        from_status TEXT,
        from_substatus TEXT,
        from_change TEXT,
        to_status TEXT NOT NULL,
        to_substatus TEXT,
        to_change TEXT NOT NULL,
        at INTEGER NOT NULL,
        UNIQUE (order_id, row_version)
      );

      -- One row per status change the machines asked for; its state follows the order's change region.
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        order_id INTEGER NOT NULL,
        campaign_id INTEGER NOT NULL,
        request_no INTEGER NOT NULL,
        status TEXT NOT NULL,
        substatus TEXT NOT NULL,
        real_delivery_date TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        lease_owner TEXT,
        lease_expires_at INTEGER,
        last_error TEXT,
        journal_seq INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (order_id, request_no)
      );
      CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

      CREATE TABLE operations (
        operation_id TEXT PRIMARY KEY,
        operation_type TEXT NOT NULL,
        business_id INTEGER NOT NULL,
        order_id INTEGER,
        state TEXT NOT NULL,
        next_poll_at INTEGER NOT NULL,
        deadline_at INTEGER NOT NULL,
        machine_version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        row_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX operations_due ON operations (state, next_poll_at);

      -- Absolute due times that must survive restarts (e.g. DBS cancellation answers).
      CREATE TABLE timers (
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        payload TEXT,
        PRIMARY KEY (kind, ref)
      );
      CREATE INDEX timers_due ON timers (due_at);

      -- Rate-limit budgets shared by every process on this database.
      CREATE TABLE limiter (
        resource_key TEXT PRIMARY KEY,
        capacity INTEGER NOT NULL,
        remaining INTEGER NOT NULL,
        window_ends_at INTEGER NOT NULL,
        blocked_until INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );
      -- Requests in flight: they count against the parallel limit of their scope, and their
      -- weight is not yet reflected in the Market's Remaining header.
      CREATE TABLE limiter_leases (
        lease_id TEXT PRIMARY KEY,
        scope_key TEXT NOT NULL,
        resource_key TEXT NOT NULL,
        weight INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX limiter_leases_by_scope ON limiter_leases (scope_key, expires_at);

      CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'outbox read_failures: read-backs back off on their own count',
    sql: `
      -- Read-backs of this row's unknown outcome in a row that learnt nothing about the order (an
      -- error, or the order missing from the answer); their backoff follows it, not the sends.
      ALTER TABLE outbox ADD COLUMN read_failures INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 3,
    name: 'halts and counters: rows every process and an inspector see',
    sql: `
      -- A campaign whose API key the Market refused: no process sends for it until cleared.
      CREATE TABLE halts (
        campaign_id INTEGER PRIMARY KEY,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        owner TEXT NOT NULL,
        at INTEGER NOT NULL
      );

      -- Named counts per engine (owner).
      CREATE TABLE counters (
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        value INTEGER NOT NULL,
        PRIMARY KEY (owner, name)
      );
    `,
  },
  {
    version: 4,
    name: 'orders listed by id under a filter: status, open changes',
    sql: `
      -- Keyset pages by order id under a filter (OrdersPort.list): each index walks its orders in
      -- id order (order_id is the rowid, which every index ends with, so orders_by_campaign
      -- already does), and holds the columns of the other filters, so the rows it skips are
      -- never read from the table.
      CREATE INDEX orders_by_status_then_id ON orders (status, order_id, campaign_id);
      -- Open changes only (the work in flight, a small part of the orders): the stuck ones.
      CREATE INDEX orders_open ON orders (order_id, change_state, updated_at, campaign_id, status) WHERE change_state <> 'idle';
    `,
  },
  {
    version: 5,
    name: 'limiter last_rate_limited_at: when each budget last got a 420',
    sql: `
      -- The time of the latest 420 for the budget (blocked_until is when its wait ends, not when it
      -- came); NULL for a budget never refused, and for every budget an older release wrote.
      ALTER TABLE limiter ADD COLUMN last_rate_limited_at INTEGER;
    `,
  },
  {
    version: 6,
    name: 'inbox, order_reads, outbox kind and payload: notifications from the Market and the reads they ask for',
    sql: `
      -- One row per notification received, a repeat (same dedupe_key) stored once; pending rows
      -- are taken in id order.
      CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dedupe_key TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        campaign_id INTEGER,
        order_id INTEGER,
        event_at INTEGER,
        body TEXT NOT NULL,
        state TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        processed_at INTEGER,
        last_error TEXT
      );
      CREATE INDEX inbox_by_state ON inbox (state, id);
      -- Finished rows by age, for pruning those older than the Market's retries (pending ones never go).
      CREATE INDEX inbox_finished_by_age ON inbox (received_at, id) WHERE state <> 'pending';

      -- One row per order to read from the Market, asks merged; leased like the outbox's rows.
      CREATE TABLE order_reads (
        order_id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL,
        business_id INTEGER NOT NULL,
        reason TEXT NOT NULL,
        requested_at INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_expires_at INTEGER
      );
      CREATE INDEX order_reads_due ON order_reads (due_at);
      CREATE INDEX order_reads_by_business ON order_reads (business_id, due_at);

      -- What a row asks of the Market: every row an older release wrote is a status change.
      ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'statusChange';
      ALTER TABLE outbox ADD COLUMN payload TEXT;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** @internal The SQLite driver stays out of the published types. */
export function currentSchemaVersion(db: Database): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Applies every migration newer than the database; returns the versions applied. `migrations`
 * is for the adapter's tests, which build the files older releases left (a prefix of MIGRATIONS).
 * @internal The SQLite driver stays out of the published types.
 */
export function migrate(db: Database, now: number, migrations: readonly Migration[] = MIGRATIONS): number[] {
  // An up-to-date file (every open but the first) is only read: taking the write lock here would
  // wait, in SQLite's busy loop, on any transaction another store of this process has open.
  const recorded = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
  const last = migrations[migrations.length - 1]?.version ?? 0;
  if (recorded && currentSchemaVersion(db) >= last) return [];
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied: number[] = [];
  for (const m of migrations) {
    db.transaction(() => {
      // Re-checked inside the write lock: another process may have migrated meanwhile.
      if (currentSchemaVersion(db) >= m.version) return;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now);
      applied.push(m.version);
    }).immediate();
  }
  return applied;
}
