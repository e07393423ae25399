// SQLite's errors as the store's typed ones. Only the driver's own errors are translated: a
// typed error (or any other) thrown by a transaction's function passes through unchanged.

import BetterSqlite3 from 'better-sqlite3';
import { StoreError, STORE_ERROR_CODES } from '../errors.js';

/**
 * A busy or locked database (another process held the lock past the busy timeout) → DB_BUSY,
 * damage found after the file opened → DB_CORRUPT, any other SQLite error → DB_FAILED. The
 * message names the file and SQLite's reason (which names tables and columns, never a bound
 * value); the driver's error stays as `cause`.
 */
export function wrapSqliteError(error: unknown, path: string): unknown {
  if (!(error instanceof BetterSqlite3.SqliteError)) return error;
  const code = error.code;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreError(
      STORE_ERROR_CODES.busy,
      `${path} stayed locked by another process longer than the busy timeout (${code}); nothing was written. Retry, or give the engine a longer sqlite.busyTimeoutMs.`,
      { path, sqliteCode: code },
      { cause: error },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new StoreError(
      STORE_ERROR_CODES.corrupt,
      `${path} is damaged (${code}). Stop every process using it and restore it from a backup.`,
      { path, sqliteCode: code },
      { cause: error },
    );
  }
  return new StoreError(
    STORE_ERROR_CODES.failed,
    `SQLite refused an operation on ${path} (${code}: ${error.message}); nothing was written.`,
    { path, sqliteCode: code },
    { cause: error },
  );
}
