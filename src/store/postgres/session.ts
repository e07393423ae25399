// What the tables of the PostgreSQL adapter run their statements through: the one pooled client
// of the current transaction. Statements are named (prepared once per connection), except
// orders.list's, left unnamed so each is planned with its own values; all are parameterised,
// none is built from a value.

import { createHash } from 'node:crypto';
import pg from 'pg';

/** A prepared statement: its name is unique to its text, for the whole adapter. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

export interface Session {
  /**
   * Whether this is a write transaction. Reads a write may follow (orders.get, operations.get,
   * cursors.get) lock what they read only then: a read-only transaction cannot lock rows.
   */
  readonly writable: boolean;
  /** The statement's rows. A failure rejects with a StoreError and fails the whole transaction. */
  rows<R>(statement: Statement, values: readonly unknown[]): Promise<R[]>;
  /** How many rows the statement wrote. */
  changes(statement: Statement, values: readonly unknown[]): Promise<number>;
  /** Holds the advisory lock of `kind`/`key` in this schema until the transaction ends. */
  lock(kind: string, key: string): Promise<void>;
  /** Outbox rows were queued: the commit wakes every process's dispatcher (NOTIFY). */
  queued(): void;
}

/**
 * The 64-bit advisory lock key of `kind`/`key` in `schema`: the first 8 bytes of a SHA-256 of the
 * three (computed here, so every process and server version agrees). Advisory locks are
 * database-wide: the schema in the key keeps tenants in other schemas from contending. Two keys
 * that collide only wait for each other, never lose a lock.
 */
export function advisoryLockKey(schema: string, kind: string, key: string): bigint {
  return createHash('sha256').update(`ym-orders\u0000${schema}\u0000${kind}\u0000${key}`).digest().readBigInt64BE(0);
}

export const LOCK_STATEMENT: Statement = { name: 'ym_advisory_xact_lock', text: 'SELECT pg_advisory_xact_lock($1::bigint)' };

const INT8_OID = 20;

/**
 * BIGINT (and COUNT(*)) as a JS number, as every row field of the port is: the driver's default is
 * a string, since a BIGINT may exceed 2^53. Ids and epoch milliseconds never do; a value that
 * would lose precision fails the statement (DB_FAILED) instead of coming back rounded.
 */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`a BIGINT value ${text} is beyond JavaScript's safe integers (2^53 - 1)`);
  return value;
}

/**
 * The pool's own type parsers: the driver's global ones (pg.types) stay as other code set them.
 * @internal The driver stays out of the published types.
 */
export const TYPE_PARSERS: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};
