// The store port (one interface per concern behind one transaction boundary), its row types
// and errors, and the SQLite and PostgreSQL adapters.

export type { Store, StoreTx } from './port.js';
export type { OrderListFilter, OrderRow, OrderWrite, OrdersPort, StatusCount } from './orders.js';
export type { JournalRow, JournalWrite, JournalPort, TransitionCount } from './journal.js';
export { OUTBOX_STATES, OPEN_OUTBOX_STATES, OUTBOX_KINDS, type OutboxRow, type OutboxState, type OutboxKind, type OutboxEnqueue, type OutboxPort } from './outbox.js';
export type { OperationRow, OperationWrite, OperationsPort } from './operations.js';
export type { TimerRow, TimersPort } from './timers.js';
export type { BudgetRow, LimiterPort } from './limiter.js';
export type { CursorsPort } from './cursors.js';
export type { CampaignRow, CampaignsPort } from './campaigns.js';
export type { HaltRow, HaltsPort } from './halts.js';
export type { CountersPort } from './counters.js';
export { INBOX_STATES, type InboxInsert, type InboxPort, type InboxRow, type InboxState } from './inbox.js';
export type { OrderReadRow, OrderReadsPort } from './order-reads.js';
export { StoreError, STORE_ERROR_CODES, type StoreErrorCode } from './errors.js';
export { SqliteStore, type SqliteOptions } from './sqlite/sqlite-store.js';
export { APPLICATION_ID, DEFAULT_DB_PATH } from './sqlite/open-database.js';
export { MIGRATIONS, LATEST_SCHEMA_VERSION, type Migration } from './sqlite/migrations.js';
export { PostgresStore, type PostgresOptions } from './postgres/postgres-store.js';
export { openStore } from './open-store.js';
