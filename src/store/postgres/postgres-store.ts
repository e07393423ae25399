// The PostgreSQL adapter of the store port, for several engine processes (on several hosts)
// sharing one database. The driver is `pg` (node-postgres): pure JavaScript (no native build to
// break on a Node upgrade or a slim image), with a connection pool, LISTEN/NOTIFY for waking a
// dispatcher, and the most used PostgreSQL driver for Node, so the best known and kept.
//
// A transaction is BEGIN … COMMIT on one pooled connection, READ COMMITTED; a read is BEGIN
// REPEATABLE READ READ ONLY, one snapshot for all its statements. Transactions of one store run at
// once on different connections: no queue in this process. What keeps a read-modify-write exact
// is a lock held until commit, the same one whether the other writer is in this process or on
// another host: orders.get and operations.get read FOR UPDATE, cursors.get and limiter.lockScope
// take advisory locks, outbox.lease, reads.lease and inbox.takePending skip rows another
// transaction holds (SKIP LOCKED), inbox.insert waits on the unique key of a concurrent insert of
// the same notification, and counters add on the server. Lease expiries are on the server's clock
// (clock.ts). A transaction that queued outbox rows sends NOTIFY with its COMMIT, which every
// store listening on the schema hears (wakeups.ts). The driver's handle stays private, so the
// published declarations never show pg's types and a consumer needs no @types/pg.

import pg from 'pg';
import { StoreError, STORE_ERROR_CODES } from '../errors.js';
import { redactUrl } from '../redact-url.js';
import type { Store, StoreTx } from '../port.js';
import { CampaignsTable } from './campaigns-table.js';
import { CountersTable } from './counters-table.js';
import { CursorsTable } from './cursors-table.js';
import { secretsOf, wrapPgError, type ErrorContext } from './errors.js';
import { HaltsTable } from './halts-table.js';
import { InboxTable } from './inbox-table.js';
import { JournalTable } from './journal-table.js';
import { LimiterTable } from './limiter-table.js';
import { OperationsTable } from './operations-table.js';
import { OrderReadsTable } from './order-reads-table.js';
import { OrdersTable } from './orders-table.js';
import { OutboxTable } from './outbox-table.js';
import { checkSchema, DEFAULT_POSTGRES_SCHEMA, dropOurSchema, prepareSchema, SCHEMA_NAME } from './schema.js';
import { advisoryLockKey, LOCK_STATEMENT, TYPE_PARSERS, type Session, type Statement } from './session.js';
import { TimersTable } from './timers-table.js';
import { QueuedListener, queuedChannel } from './wakeups.js';

/** How PostgresStore.connect connects. */
export interface PostgresOptions {
  /**
   * The schema holding the store's tables (default `ym_orders`), created if missing: one per
   * engine fleet or tenant sharing a server. A plain lower-case SQL identifier.
   */
  readonly schema?: string;
  /** Connections in the pool (default 10): how many transactions of this store run at once. */
  readonly poolSize?: number;
  /** The time recorded with the migrations this connect applies (default: the wall clock). */
  readonly now?: number;
  /** How long to wait for a connection, when connecting and for each transaction (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** How long a statement waits for a lock another transaction holds before DB_BUSY (default 10 s). */
  readonly lockTimeoutMs?: number;
  /**
   * How long a statement may go unanswered before DB_UNAVAILABLE (default 60 s): a network that
   * drops packets without a reset would otherwise hold a transaction, and a shutdown, for as long
   * as TCP takes to give up. Longer than any statement the store sends.
   */
  readonly queryTimeoutMs?: number;
  /**
   * Connect without writing (default false): the schema must exist, be ours and be at this
   * build's version (nothing is created or migrated); every connection runs with
   * default_transaction_read_only=on, transactions are refused, and onQueued still hears commits.
   */
  readonly readOnly?: boolean;
}

const DEFAULTS = { poolSize: 10, connectTimeoutMs: 10_000, lockTimeoutMs: 10_000, queryTimeoutMs: 60_000 } as const;

const BEGIN_WRITE = 'BEGIN';
const BEGIN_READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

function ignore(): void {}

function badOption(context: ErrorContext, message: string): StoreError {
  return new StoreError(STORE_ERROR_CODES.cannotOpen, `Cannot open database ${context.url}: ${message}`, { url: context.url, schema: context.schema });
}

function positiveInteger(value: number | undefined, fallback: number, name: string, context: ErrorContext): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw badOption(context, `${name} must be a whole number of at least 1, got ${String(value)}.`);
  return value;
}

/** The URL's own `options` parameter would replace the search_path the pool sets (the URL's settings win in pg). */
function hasOptionsParameter(url: string): boolean {
  try {
    return new URL(url).searchParams.has('options');
  } catch {
    return false;
  }
}

/** The settings of every connection to the schema, the options checked (DB_CANNOT_OPEN for a bad one). */
function connectionSettings(url: string, options: PostgresOptions): { context: ErrorContext; connection: pg.ClientConfig; max: number } {
  const schema = options.schema ?? DEFAULT_POSTGRES_SCHEMA;
  const context: ErrorContext = { url: redactUrl(url), schema, secrets: secretsOf(url) };
  if (!SCHEMA_NAME.test(schema)) {
    throw badOption(context, `schema must be a plain lower-case SQL identifier (letters, digits, _; at most 63), got ${JSON.stringify(schema)}.`);
  }
  if (hasOptionsParameter(url)) throw badOption(context, 'the URL must not carry an `options` parameter: the store sets search_path to its schema itself.');
  const lockTimeoutMs = positiveInteger(options.lockTimeoutMs, DEFAULTS.lockTimeoutMs, 'lockTimeoutMs', context);
  const connection: pg.ClientConfig = {
    connectionString: url,
    connectionTimeoutMillis: positiveInteger(options.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 'connectTimeoutMs', context),
    query_timeout: positiveInteger(options.queryTimeoutMs, DEFAULTS.queryTimeoutMs, 'queryTimeoutMs', context),
    // Probes on an idle socket, so one whose peer vanished is found and dropped.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Startup parameters: every connection is on the schema from its first statement, and for a
    // read-only store the server itself refuses any write, whatever statement reaches it.
    options: `-c search_path=${schema} -c lock_timeout=${lockTimeoutMs}${options.readOnly ? ' -c default_transaction_read_only=on' : ''}`,
    application_name: 'ym-orders',
    types: TYPE_PARSERS,
  };
  return { context, connection, max: positiveInteger(options.poolSize, DEFAULTS.poolSize, 'poolSize', context) };
}

/**
 * The pool settings the store connects with, for a raw-driver baseline that must connect exactly
 * as the store does (bench 6a): search_path, lock and statement timeouts, keep-alive, type parsers.
 * @internal The driver stays out of the published types.
 */
export function poolSettings(url: string, options: PostgresOptions = {}): pg.PoolConfig {
  const { connection, max } = connectionSettings(url, options);
  return { ...connection, max };
}

/** A pool on the schema, the options checked (DB_CANNOT_OPEN for a bad one); nothing connects yet. */
function openPool(url: string, options: PostgresOptions): { context: ErrorContext; connection: pg.ClientConfig; pool: pg.Pool } {
  const { context, connection, max } = connectionSettings(url, options);
  const pool = new pg.Pool({ ...connection, max });
  // A connection that breaks while idle or in use would otherwise crash the process (an
  // 'error' event with no listener); the pool drops it, and its statement, if any, rejects.
  pool.on('error', ignore);
  pool.on('connect', (client) => client.on('error', ignore));
  return { context, connection, pool };
}

/** One transaction's statements, on its one client. */
class TxSession implements Session {
  readonly writable: boolean;
  /** The first statement that failed: the transaction fails with it even if its function went on. */
  failure: StoreError | undefined;
  /** Whether outbox rows were queued: the commit then wakes the dispatchers. */
  hasQueued = false;
  readonly #client: pg.PoolClient;
  readonly #context: ErrorContext;

  constructor(client: pg.PoolClient, writable: boolean, context: ErrorContext) {
    this.#client = client;
    this.writable = writable;
    this.#context = context;
  }

  async rows<R>(statement: Statement, values: readonly unknown[]): Promise<R[]> {
    return (await this.#query(statement, values)).rows as R[];
  }

  async changes(statement: Statement, values: readonly unknown[]): Promise<number> {
    return (await this.#query(statement, values)).rowCount ?? 0;
  }

  async lock(kind: string, key: string): Promise<void> {
    await this.#query(LOCK_STATEMENT, [String(advisoryLockKey(this.#context.schema, kind, key))]);
  }

  queued(): void {
    this.hasQueued = true;
  }

  /** BEGIN or COMMIT (a simple query: no parameters, so it may hold more than one statement). */
  async command(text: string, atCommit = false): Promise<void> {
    try {
      await this.#client.query(text);
    } catch (error) {
      throw wrapPgError(error, this.#context, atCommit);
    }
  }

  async #query(statement: Statement, values: readonly unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.#client.query({ name: statement.name, text: statement.text, values: [...values] });
    } catch (error) {
      const wrapped = wrapPgError(error, this.#context);
      // After a failed statement PostgreSQL refuses the rest, and its COMMIT silently rolls back:
      // remembering the failure keeps a caught one from looking committed.
      this.failure ??= wrapped;
      throw wrapped;
    }
  }
}

function txOf(session: Session): StoreTx {
  return {
    orders: new OrdersTable(session),
    journal: new JournalTable(session),
    outbox: new OutboxTable(session),
    operations: new OperationsTable(session),
    timers: new TimersTable(session),
    limiter: new LimiterTable(session),
    cursors: new CursorsTable(session),
    campaigns: new CampaignsTable(session),
    halts: new HaltsTable(session),
    counters: new CountersTable(session),
    inbox: new InboxTable(session),
    reads: new OrderReadsTable(session),
  };
}

/** The store on one schema of a PostgreSQL database: connect with {@link PostgresStore.connect}. */
export class PostgresStore implements Store {
  /** The URL, its password redacted. */
  readonly name: string;
  readonly schema: string;
  /** Every process's queued rows wake this store's listeners (LISTEN/NOTIFY). */
  readonly wakeups = 'database' as const;
  /** Connected with `readOnly`: transactions are refused, reads and onQueued work. */
  readonly readOnly: boolean;
  readonly #pool: pg.Pool;
  readonly #context: ErrorContext;
  /** The listening connection, opened by the first onQueued. */
  readonly #listener: QueuedListener;
  /** What a transaction that queued rows commits with: NOTIFY and COMMIT in one round trip. */
  readonly #notifyAndCommit: string;
  /** Every transaction and read accepted and not yet settled: close() waits for them. */
  readonly #running = new Set<Promise<unknown>>();
  /** Set by close(): from then on calls are refused, and it resolves once the pool and the listening connection have ended. */
  #closed: Promise<void> | undefined;

  private constructor(pool: pg.Pool, listener: QueuedListener, context: ErrorContext, readOnly: boolean) {
    this.#pool = pool;
    this.readOnly = readOnly;
    this.#listener = listener;
    this.#context = context;
    this.name = context.url;
    this.schema = context.schema;
    // An identifier cannot be a parameter; the channel is built from hex digits (queuedChannel).
    this.#notifyAndCommit = `NOTIFY ${queuedChannel(context.schema)}; COMMIT`;
  }

  /**
   * Connects a pool to `url` (postgres:// or postgresql://), then claims, checks and migrates the
   * schema. Throws DB_CANNOT_OPEN (unreachable, refused, a bad option), DB_NOT_OURS (the schema
   * is another application's: nothing is written), DB_SCHEMA_TOO_NEW, or DB_BUSY. With
   * `readOnly`, only checks the schema: DB_CANNOT_OPEN too for a missing or empty schema, or one
   * at an older version (nothing is created or migrated).
   */
  static async connect(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    const { context, connection, pool } = openPool(url, options);
    const readOnly = options.readOnly ?? false;
    try {
      await (readOnly ? checkSchema(pool, context) : prepareSchema(pool, context, options.now ?? Date.now()));
    } catch (error) {
      await pool.end().catch(ignore);
      throw error;
    }
    return new PostgresStore(pool, new QueuedListener(connection, context.schema), context, readOnly);
  }

  /**
   * Drops the schema with everything in it, if it is a ym-orders schema (a missing or empty one
   * is left as it is): what a demo or a test that starts afresh does. Throws DB_NOT_OURS when the
   * schema holds anything else (nothing is dropped), DB_CANNOT_OPEN, or DB_BUSY while a process
   * migrates it.
   */
  static async dropSchema(url: string, options: Pick<PostgresOptions, 'schema' | 'connectTimeoutMs' | 'lockTimeoutMs'> = {}): Promise<void> {
    const { context, pool } = openPool(url, { ...options, poolSize: 1 });
    try {
      await dropOurSchema(pool, context);
    } finally {
      await pool.end().catch(ignore);
    }
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.readOnly) {
      return Promise.reject(
        new StoreError(STORE_ERROR_CODES.failed, `${this.name} (schema ${this.schema}) is connected read-only: nothing was written; connect without readOnly to write.`, {
          url: this.name,
          schema: this.schema,
          readOnly: true,
        }),
      );
    }
    return this.#accept(() => this.#run(fn, true));
  }

  read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#accept(() => this.#run(fn, false));
  }

  /**
   * Calls `listener` after any transaction on this schema that queued outbox rows commits, in
   * this process or another. The first call opens the listening connection; a listener that
   * throws is skipped and stays.
   */
  onQueued(listener: () => void): () => void {
    return this.#listener.add(listener);
  }

  /** Refuses new calls at once; the ones already accepted finish, then the pool and the listening connection end. */
  close(): Promise<void> {
    this.#closed ??= Promise.allSettled([...this.#running]).then(async () => {
      await Promise.all([this.#pool.end(), this.#listener.close()]);
    });
    return this.#closed;
  }

  #accept<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new StoreError(STORE_ERROR_CODES.closed, `${this.name} is closed; open the store again to use it.`, { url: this.name, schema: this.schema }));
    }
    const result = work();
    this.#running.add(result);
    const settle = () => this.#running.delete(result);
    result.then(settle, settle);
    return result;
  }

  async #run<T>(fn: (tx: StoreTx) => Promise<T>, writable: boolean): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw wrapPgError(error, this.#context);
    }
    const session = new TxSession(client, writable, this.#context);
    try {
      await session.command(writable ? BEGIN_WRITE : BEGIN_READ);
      const value = await fn(txOf(session));
      if (session.failure) throw session.failure;
      // NOTIFY is delivered at COMMIT, and only if it commits: one simple query, one round trip.
      await session.command(session.hasQueued ? this.#notifyAndCommit : 'COMMIT', true).catch((error: unknown) => {
        // A statement `fn` left running (not awaited) that failed before the NOTIFY is the cause.
        throw session.failure ?? error;
      });
      // A statement `fn` left running that failed before the COMMIT made it a rollback.
      if (session.failure) throw session.failure;
      client.release();
      return value;
    } catch (error) {
      // A connection that broke, or cannot even roll back, is destroyed, never handed out again.
      const broke = session.failure?.code === STORE_ERROR_CODES.unavailable || (error instanceof StoreError && error.code === STORE_ERROR_CODES.unavailable);
      const rolledBack = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      );
      client.release(broke || !rolledBack);
      throw error;
    }
  }
}
