import { YmOrdersError } from '../errors.js';

export const STORE_ERROR_CODES = {
  notOurs: 'DB_NOT_OURS',
  corrupt: 'DB_CORRUPT',
  schemaTooNew: 'DB_SCHEMA_TOO_NEW',
  cannotOpen: 'DB_CANNOT_OPEN',
  busy: 'DB_BUSY',
} as const;
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[keyof typeof STORE_ERROR_CODES];

/** The database file cannot be used: not ours, damaged, busy, or written by a newer ym-orders. */
export class StoreError extends YmOrdersError {
  declare readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

function sqliteCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
}

/**
 * SQLite's own errors that a user can meet at run time, as typed errors: a lock held by another
 * process past the busy timeout, and damage found after the file opened. Others pass through.
 */
export function wrapSqliteError(error: unknown, path: string): unknown {
  const code = sqliteCode(error);
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
  return error;
}
