import { YmOrdersError } from '../errors.js';

export const STORE_ERROR_CODES = {
  notOurs: 'DB_NOT_OURS',
  corrupt: 'DB_CORRUPT',
  schemaTooNew: 'DB_SCHEMA_TOO_NEW',
  cannotOpen: 'DB_CANNOT_OPEN',
} as const;
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[keyof typeof STORE_ERROR_CODES];

/** The database file cannot be used: not ours, damaged, or written by a newer ym-orders. */
export class StoreError extends YmOrdersError {
  declare readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}
