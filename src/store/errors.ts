import { YmOrdersError } from '../errors.js';

export const STORE_ERROR_CODES = {
  notOurs: 'DB_NOT_OURS',
  corrupt: 'DB_CORRUPT',
  schemaTooNew: 'DB_SCHEMA_TOO_NEW',
  cannotOpen: 'DB_CANNOT_OPEN',
  busy: 'DB_BUSY',
  /**
   * The database server cannot be reached, or the connection broke (refused, reset, shut down):
   * retry later. When it broke while committing, whether the transaction committed is unknown.
   */
  unavailable: 'DB_UNAVAILABLE',
  /** The store was closed (by engine.close() or store.close()) before the call. */
  closed: 'DB_CLOSED',
  /** `db` names no store this build knows (e.g. a URL scheme without an adapter). */
  unsupported: 'DB_UNSUPPORTED',
  /** Any other failure of the database while reading or writing: nothing was written. */
  failed: 'DB_FAILED',
} as const;
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[keyof typeof STORE_ERROR_CODES];

/** The database cannot be used: not ours, damaged, busy, closed, or written by a newer ym-orders. */
export class StoreError extends YmOrdersError {
  declare readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
