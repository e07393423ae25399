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
// take advisory locks, outbox.lease skips rows another transaction holds (SKIP LOCKED), and
// counters add on the server. The driver's handle stays private, so the published declarations
// never show pg's types and a consumer needs no @types/pg.

import pg from 'pg';
import { StoreError, STORE_ERROR_CODES } from '../errors.js';
import { redactUrl } from '../redact-url.js';
import type { Store, StoreTx } from '../port.js';
import { CampaignsTable } from './campaigns-table.js';
import { CountersTable } from './counters-table.js';
import { CursorsTable } from './cursors-table.js';
import { secretsOf, wrapPgError, type ErrorContext } from './errors.js';
import { HaltsTable } from './halts-table.js';
import { JournalTable } from './journal-table.js';
import { LimiterTable } from './limiter-table.js';
import { OperationsTable } from './operations-table.js';
import { OrdersTable } from './orders-table.js';
import { OutboxTable } from './outbox-table.js';
import { DEFAULT_POSTGRES_SCHEMA, prepareSchema, SCHEMA_NAME } from './schema.js';
import { advisoryLockKey, LOCK_STATEMENT, TYPE_PARSERS, type Session, type Statement } from './session.js';
import { TimersTable } from './timers-table.js';

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
}

const DEFAULTS = { poolSize: 10, connectTimeoutMs: 10_000, lockTimeoutMs: 10_000 } as const;

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

/** One transaction's statements, on its one client. */
class TxSession implements Session {
  readonly writable: boolean;
  /** The first statement that failed: the transaction fails with it even if its function went on. */
  failure: StoreError | undefined;
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

  /** BEGIN or COMMIT. */
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
  };
}

/** The store on one schema of a PostgreSQL database: connect with {@link PostgresStore.connect}. */
export class PostgresStore implements Store {
  /** The URL, its password redacted. */
  readonly name: string;
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #context: ErrorContext;
  /** Every transaction and read accepted and not yet settled: close() waits for them. */
  readonly #running = new Set<Promise<unknown>>();
  /** Set by close(): from then on calls are refused, and it resolves once the pool has ended. */
  #closed: Promise<void> | undefined;

  private constructor(pool: pg.Pool, context: ErrorContext) {
    this.#pool = pool;
    this.#context = context;
    this.name = context.url;
    this.schema = context.schema;
  }

  /**
   * Connects a pool to `url` (postgres:// or postgresql://), then claims, checks and migrates the
   * schema. Throws DB_CANNOT_OPEN (unreachable, refused, a bad option), DB_NOT_OURS (the schema
   * is another application's: nothing is written), DB_SCHEMA_TOO_NEW, or DB_BUSY.
   */
  static async connect(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    const schema = options.schema ?? DEFAULT_POSTGRES_SCHEMA;
    const context: ErrorContext = { url: redactUrl(url), schema, secrets: secretsOf(url) };
    if (!SCHEMA_NAME.test(schema)) {
      throw badOption(context, `schema must be a plain lower-case SQL identifier (letters, digits, _; at most 63), got ${JSON.stringify(schema)}.`);
    }
    if (hasOptionsParameter(url)) throw badOption(context, 'the URL must not carry an `options` parameter: the store sets search_path to its schema itself.');
    const lockTimeoutMs = positiveInteger(options.lockTimeoutMs, DEFAULTS.lockTimeoutMs, 'lockTimeoutMs', context);
    const pool = new pg.Pool({
      connectionString: url,
      max: positiveInteger(options.poolSize, DEFAULTS.poolSize, 'poolSize', context),
      connectionTimeoutMillis: positiveInteger(options.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 'connectTimeoutMs', context),
      // Startup parameters: every pooled connection is on the schema from its first statement.
      options: `-c search_path=${schema} -c lock_timeout=${lockTimeoutMs}`,
      application_name: 'ym-orders',
      types: TYPE_PARSERS,
    });
    // A connection that breaks while idle or in use would otherwise crash the process (an
    // 'error' event with no listener); the pool drops it, and its statement, if any, rejects.
    pool.on('error', ignore);
    pool.on('connect', (client) => client.on('error', ignore));
    try {
      await prepareSchema(pool, context, options.now ?? Date.now());
    } catch (error) {
      await pool.end().catch(ignore);
      throw error;
    }
    return new PostgresStore(pool, context);
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#accept(() => this.#run(fn, true));
  }

  read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#accept(() => this.#run(fn, false));
  }

  /** Refuses new calls at once; the ones already accepted finish, then the pool ends. */
  close(): Promise<void> {
    this.#closed ??= Promise.allSettled([...this.#running]).then(() => this.#pool.end());
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
      await session.command('COMMIT', true);
      // A statement `fn` left running (not awaited) that failed before the COMMIT made it a rollback.
      if (session.failure) throw session.failure;
      client.release();
      return value;
    } catch (error) {
      // A connection that cannot even roll back is broken: destroyed, not handed out again.
      const rolledBack = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      );
      client.release(!rolledBack);
      throw error;
    }
  }
}
