export { Store } from './store.js';
export { APPLICATION_ID, DEFAULT_DB_PATH, type OpenDatabaseOptions } from './open-database.js';
export { MIGRATIONS, LATEST_SCHEMA_VERSION, type Migration } from './migrations.js';
export { StoreError, STORE_ERROR_CODES, type StoreErrorCode } from './errors.js';
export type { OrderRow } from './orders-table.js';
export type { JournalRow } from './journal-table.js';
export { OUTBOX_STATES, type OutboxRow, type OutboxState } from './outbox-table.js';
export type { OperationRow } from './operations-table.js';
export type { TimerRow } from './timers-table.js';
