// PostgreSQL's errors as the store's typed ones. Only the driver's own errors come here (a typed
// error, or any other, thrown by a transaction's function passes through the store unchanged). No
// message or detail carries a password: the URL is always the redacted one, and the driver's
// reason is scrubbed of the URL's password in case a server or library ever echoed it.

import pg from 'pg';
import { StoreError, STORE_ERROR_CODES } from '../errors.js';

/** Where an error happened: the redacted URL, the schema, and what must never be shown. */
export interface ErrorContext {
  readonly url: string;
  readonly schema: string;
  readonly secrets: readonly string[];
}

/** serialization_failure, deadlock_detected, lock_not_available (lock_timeout): another transaction won; a retry may pass. */
const BUSY_SQLSTATES = new Set(['40001', '40P01', '55P03']);

/** pg-pool's words when no connection came within connectionTimeoutMillis (all in use, or the server did not answer). */
const POOL_TIMEOUT = 'timeout exceeded when trying to connect';

/**
 * The URL's password and `password` parameter, decoded: what scrub() removes. A password shorter
 * than 4 characters is left out: replacing it everywhere would garble every message, and it is
 * only a guard against a driver echoing it.
 */
export function secretsOf(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  const secrets = [parsed.password, parsed.searchParams.get('password') ?? ''].flatMap((s) => {
    try {
      return [s, decodeURIComponent(s)];
    } catch {
      return [s];
    }
  });
  return [...new Set(secrets)].filter((s) => s.length >= 4);
}

function scrub(text: string, context: ErrorContext): string {
  return context.secrets.reduce((t, secret) => t.split(secret).join('***'), text);
}

/** The driver's reason, in words: Node's AggregateError (every address refused) has no message of its own. */
function reasonOf(error: unknown, context: ErrorContext): string {
  if (error instanceof AggregateError && error.message === '') return scrub(error.errors.map((e) => reasonOf(e, context)).join('; '), context);
  if (error instanceof Error) return scrub(error.message || String((error as NodeJS.ErrnoException).code ?? error.name), context);
  return scrub(String(error), context);
}

function sqlStateOf(error: unknown): string | undefined {
  return error instanceof pg.DatabaseError ? error.code : undefined;
}

/** Node's code for a failed socket (ECONNREFUSED, ENOTFOUND, ECONNRESET…), when that is the cause. */
function networkCodeOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  // Node's own argument errors (ERR_INVALID_URL, …) are no socket's.
  return typeof code === 'string' && !code.startsWith('ERR_') && !(error instanceof pg.DatabaseError) ? code : undefined;
}

function codes(error: unknown): Record<string, string> {
  const sqlState = sqlStateOf(error);
  const networkCode = networkCodeOf(error);
  return { ...(sqlState ? { sqlState } : {}), ...(networkCode ? { networkCode } : {}) };
}

/** Node's codes for a socket that cannot reach the server, or that broke. */
const UNREACHABLE_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  // A name that does not resolve now, while the store is open, is a DNS outage (at connect it is DB_CANNOT_OPEN).
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** The driver's own words for a connection that ended under it, or that it no longer uses after an error. */
const BROKEN_CONNECTION_MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Connection terminated due to connection timeout',
  'Client has encountered a connection error and is not queryable',
  // queryTimeoutMs: the server did not answer a statement in time (a network that drops packets silently).
  'Query read timeout',
]);

/** admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections; class 08 (connection_exception) is too. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** Whether the server could not be reached or the connection broke: a retry later may pass. */
function isUnavailable(error: unknown): boolean {
  if (error instanceof AggregateError && error.errors.length > 0 && error.errors.every(isUnavailable)) return true;
  const sqlState = sqlStateOf(error);
  if (sqlState !== undefined) return sqlState.startsWith('08') || UNAVAILABLE_SQLSTATES.has(sqlState);
  const networkCode = networkCodeOf(error);
  if (networkCode !== undefined && UNREACHABLE_NETWORK_CODES.has(networkCode)) return true;
  return error instanceof Error && BROKEN_CONNECTION_MESSAGES.has(error.message);
}

const UNKNOWN_OUTCOME = 'the connection broke while committing, so whether the transaction committed is unknown';

/**
 * An error of the driver while the store was open: DB_BUSY when another transaction won
 * (serialization failure, deadlock, lock timeout) or no connection came in time; DB_UNAVAILABLE
 * when the server cannot be reached or the connection broke; DB_FAILED for anything else.
 * `atCommit`: the error came from COMMIT, so when the connection broke there, the outcome is
 * unknown (the message says so, and details.commitOutcome is 'unknown').
 */
export function wrapPgError(error: unknown, context: ErrorContext, atCommit = false): StoreError {
  if (error instanceof StoreError) return error;
  const reason = reasonOf(error, context);
  const details = { url: context.url, schema: context.schema, ...codes(error) };
  const sqlState = sqlStateOf(error);
  const label = sqlState ?? networkCodeOf(error) ?? 'driver';
  if ((sqlState !== undefined && BUSY_SQLSTATES.has(sqlState)) || (error instanceof Error && error.message === POOL_TIMEOUT)) {
    return new StoreError(
      STORE_ERROR_CODES.busy,
      `${context.url} was busy (${reason}); nothing was written. Retry the transaction.`,
      details,
      { cause: error },
    );
  }
  if (isUnavailable(error)) {
    if (atCommit) {
      return new StoreError(
        STORE_ERROR_CODES.unavailable,
        `${context.url} became unavailable (${label}: ${reason}); ${UNKNOWN_OUTCOME}. Read back what it wrote once the database is back.`,
        { ...details, commitOutcome: 'unknown' },
        { cause: error },
      );
    }
    return new StoreError(
      STORE_ERROR_CODES.unavailable,
      `${context.url} is unavailable (${label}: ${reason}); nothing was written. Retry once the database is back.`,
      details,
      { cause: error },
    );
  }
  if (atCommit && sqlState === undefined) {
    return new StoreError(
      STORE_ERROR_CODES.failed,
      `PostgreSQL refused an operation on ${context.url} (${label}: ${reason}); ${UNKNOWN_OUTCOME}.`,
      { ...details, commitOutcome: 'unknown' },
      { cause: error },
    );
  }
  return new StoreError(STORE_ERROR_CODES.failed, `PostgreSQL refused an operation on ${context.url} (${label}: ${reason}); nothing was written.`, details, {
    cause: error,
  });
}

/** An error while opening: DB_BUSY as above (another process held the migration lock too long), else DB_CANNOT_OPEN. */
export function wrapOpenError(error: unknown, context: ErrorContext): StoreError {
  if (error instanceof StoreError) return error;
  const sqlState = sqlStateOf(error);
  if (sqlState !== undefined && BUSY_SQLSTATES.has(sqlState)) return wrapPgError(error, context);
  return new StoreError(
    STORE_ERROR_CODES.cannotOpen,
    `Cannot open database ${context.url} (schema ${context.schema}): ${reasonOf(error, context)}`,
    { url: context.url, schema: context.schema, ...codes(error) },
    { cause: error },
  );
}
