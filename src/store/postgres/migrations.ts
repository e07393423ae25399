// The numbered schema migrations of src/store/sqlite/migrations.ts, as PostgreSQL DDL: the same
// versions and names, so one schema_migrations row means the same schema on either engine. Each
// runs once, in order, inside the transaction that records it; never edit a released one, append.
// Ids and epoch milliseconds are BIGINT (read back as JS numbers, see session.ts); every text
// column compares byte-wise (COLLATE "C"), as SQLite's do, so listings sort the same on any server
// locale. journal.seq and outbox.id are identity columns: never reused, like AUTOINCREMENT.

import type { Migration } from '../sqlite/migrations.js';

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'orders, journal, outbox, operations, timers, limiter, cursors',
    sql: `
      CREATE TABLE campaigns (
        campaign_id BIGINT PRIMARY KEY,
        business_id BIGINT NOT NULL,
        model TEXT COLLATE "C" NOT NULL
      );

      -- One row per order: the machine snapshot plus the columns queries need.
      CREATE TABLE orders (
        order_id BIGINT PRIMARY KEY,
        campaign_id BIGINT NOT NULL,
        model TEXT COLLATE "C" NOT NULL,
        status TEXT COLLATE "C" NOT NULL,
        substatus TEXT COLLATE "C",
        change_state TEXT COLLATE "C" NOT NULL,
        observed_at BIGINT NOT NULL,
        machine_version INTEGER NOT NULL,
        snapshot TEXT COLLATE "C" NOT NULL,
        row_version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX orders_by_status ON orders (status, substatus);
      CREATE INDEX orders_by_campaign ON orders (campaign_id);
      CREATE INDEX orders_with_change ON orders (change_state) WHERE change_state <> 'idle';

      -- Append-only audit: one row per event that changed an order.
      CREATE TABLE journal (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        order_id BIGINT NOT NULL,
        row_version INTEGER NOT NULL,
        event_type TEXT COLLATE "C" NOT NULL,
        event TEXT COLLATE "C" NOT NULL,
        source TEXT COLLATE "C" NOT NULL,
        from_status TEXT COLLATE "C",
        from_substatus TEXT COLLATE "C",
        from_change TEXT COLLATE "C",
        to_status TEXT COLLATE "C" NOT NULL,
        to_substatus TEXT COLLATE "C",
        to_change TEXT COLLATE "C" NOT NULL,
        at BIGINT NOT NULL,
        UNIQUE (order_id, row_version)
      );

      -- One row per status change the machines asked for; its state follows the order's change region.
      CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        idempotency_key TEXT COLLATE "C" NOT NULL UNIQUE,
        order_id BIGINT NOT NULL,
        campaign_id BIGINT NOT NULL,
        request_no INTEGER NOT NULL,
        status TEXT COLLATE "C" NOT NULL,
        substatus TEXT COLLATE "C" NOT NULL,
        real_delivery_date TEXT COLLATE "C",
        state TEXT COLLATE "C" NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        lease_owner TEXT COLLATE "C",
        lease_expires_at BIGINT,
        last_error TEXT COLLATE "C",
        journal_seq BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (order_id, request_no)
      );
      CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

      CREATE TABLE operations (
        operation_id TEXT COLLATE "C" PRIMARY KEY,
        operation_type TEXT COLLATE "C" NOT NULL,
        business_id BIGINT NOT NULL,
        order_id BIGINT,
        state TEXT COLLATE "C" NOT NULL,
        next_poll_at BIGINT NOT NULL,
        deadline_at BIGINT NOT NULL,
        machine_version INTEGER NOT NULL,
        snapshot TEXT COLLATE "C" NOT NULL,
        row_version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX operations_due ON operations (state, next_poll_at);

      -- Absolute due times that must survive restarts (e.g. DBS cancellation answers).
      CREATE TABLE timers (
        kind TEXT COLLATE "C" NOT NULL,
        ref TEXT COLLATE "C" NOT NULL,
        due_at BIGINT NOT NULL,
        payload TEXT COLLATE "C",
        PRIMARY KEY (kind, ref)
      );
      CREATE INDEX timers_due ON timers (due_at);

      -- Rate-limit budgets shared by every process on this database.
      CREATE TABLE limiter (
        resource_key TEXT COLLATE "C" PRIMARY KEY,
        capacity INTEGER NOT NULL,
        remaining INTEGER NOT NULL,
        window_ends_at BIGINT NOT NULL,
        blocked_until BIGINT NOT NULL DEFAULT 0,
        updated_at BIGINT NOT NULL
      );
      -- Requests in flight: they count against the parallel limit of their scope, and their
      -- weight is not yet reflected in the Market's Remaining header.
      CREATE TABLE limiter_leases (
        lease_id TEXT COLLATE "C" PRIMARY KEY,
        scope_key TEXT COLLATE "C" NOT NULL,
        resource_key TEXT COLLATE "C" NOT NULL,
        weight INTEGER NOT NULL,
        expires_at BIGINT NOT NULL
      );
      CREATE INDEX limiter_leases_by_scope ON limiter_leases (scope_key, expires_at);

      CREATE TABLE cursors (
        name TEXT COLLATE "C" PRIMARY KEY,
        value TEXT COLLATE "C" NOT NULL,
        updated_at BIGINT NOT NULL
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
        campaign_id BIGINT PRIMARY KEY,
        code TEXT COLLATE "C" NOT NULL,
        message TEXT COLLATE "C" NOT NULL,
        owner TEXT COLLATE "C" NOT NULL,
        at BIGINT NOT NULL
      );

      -- Named counts per engine (owner).
      CREATE TABLE counters (
        owner TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        value BIGINT NOT NULL,
        PRIMARY KEY (owner, name)
      );
    `,
  },
  {
    version: 4,
    name: 'orders listed by id under a filter: status, open changes',
    sql: `
      -- Keyset pages by order id under a filter (OrdersPort.list): each index walks its orders in
      -- id order and holds the columns of the other filters, so the rows it skips are never read
      -- from the table. SQLite's indexes end with the rowid (order_id) on their own; here the
      -- campaign's index gets it as a column.
      DROP INDEX orders_by_campaign;
      CREATE INDEX orders_by_campaign ON orders (campaign_id, order_id);
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
      ALTER TABLE limiter ADD COLUMN last_rate_limited_at BIGINT;
    `,
  },
  {
    version: 6,
    name: 'inbox, order_reads, outbox kind and payload: notifications from the Market and the reads they ask for',
    sql: `
      -- One row per notification received, a repeat (same dedupe_key) stored once; pending rows
      -- are taken in id order. id is an identity column: never reused.
      CREATE TABLE inbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        dedupe_key TEXT COLLATE "C" NOT NULL UNIQUE,
        type TEXT COLLATE "C" NOT NULL,
        campaign_id BIGINT,
        order_id BIGINT,
        event_at BIGINT,
        body TEXT COLLATE "C" NOT NULL,
        state TEXT COLLATE "C" NOT NULL,
        received_at BIGINT NOT NULL,
        processed_at BIGINT,
        last_error TEXT COLLATE "C"
      );
      CREATE INDEX inbox_by_state ON inbox (state, id);
      -- Finished rows by age, for pruning those older than the Market's retries (pending ones never go).
      CREATE INDEX inbox_finished_by_age ON inbox (received_at, id) WHERE state <> 'pending';

      -- One row per order to read from the Market, asks merged; leased like the outbox's rows.
      CREATE TABLE order_reads (
        order_id BIGINT PRIMARY KEY,
        campaign_id BIGINT NOT NULL,
        business_id BIGINT NOT NULL,
        reason TEXT COLLATE "C" NOT NULL,
        requested_at BIGINT NOT NULL,
        due_at BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT COLLATE "C",
        lease_expires_at BIGINT
      );
      CREATE INDEX order_reads_due ON order_reads (due_at);
      CREATE INDEX order_reads_by_business ON order_reads (business_id, due_at);

      -- What a row asks of the Market: every row an older release wrote is a status change.
      ALTER TABLE outbox ADD COLUMN kind TEXT COLLATE "C" NOT NULL DEFAULT 'statusChange';
      ALTER TABLE outbox ADD COLUMN payload TEXT COLLATE "C";
    `,
  },
];

export const POSTGRES_LATEST_SCHEMA_VERSION = POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]!.version;
