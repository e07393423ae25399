// Claims, checks and migrates the store's schema when a PostgresStore connects: the guards of
// src/store/sqlite/open-database.ts for a PostgreSQL schema. A schema is ours when it holds the
// marker table ym_orders_meta (one row, application 'ym-orders') and schema_migrations; an empty
// or missing one is claimed; anything else is another application's and is never written.
// Everything runs in one transaction under an advisory lock of the schema, so processes that
// connect at once migrate once: the others wait, then find the schema up to date.

import type pg from 'pg';
import { StoreError, STORE_ERROR_CODES } from '../errors.js';
import { wrapOpenError, type ErrorContext } from './errors.js';
import { POSTGRES_LATEST_SCHEMA_VERSION, POSTGRES_MIGRATIONS } from './migrations.js';
import { advisoryLockKey, LOCK_STATEMENT } from './session.js';

export const DEFAULT_POSTGRES_SCHEMA = 'ym_orders';

/** The marker's value: what tells a schema of ours from another application's. */
export const POSTGRES_APPLICATION = 'ym-orders';

/** Every object a schema holds but indexes (which belong to a table): tables, views, sequences, functions, types. */
const OBJECTS_SQL = `
  SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind NOT IN ('i', 'I')
  UNION ALL
  SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1
  UNION ALL
  SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = $1 AND t.typrelid = 0 AND t.typelem = 0
  ORDER BY 1`;

/** The schema's tables resolve through the connection's search_path (postgres-store.ts). */
const CLAIM_SQL = `
  CREATE TABLE ym_orders_meta (application TEXT NOT NULL);
  CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);`;

function notOurs(context: ErrorContext, tables: readonly string[]): StoreError {
  return new StoreError(
    STORE_ERROR_CODES.notOurs,
    `${context.url}: schema ${context.schema} holds another application's objects (${tables.slice(0, 5).join(', ')}). ym-orders will not write to it; choose another schema (postgres.schema) or database.`,
    { url: context.url, schema: context.schema, tables },
  );
}

/** Whether the schema's objects are ours: our marker row and schema_migrations. */
async function isOurs(client: pg.PoolClient, objects: readonly string[]): Promise<boolean> {
  if (!objects.includes('ym_orders_meta') || !objects.includes('schema_migrations')) return false;
  const markers = (await client.query<{ application: string }>('SELECT application FROM ym_orders_meta')).rows;
  return markers.length > 0 && markers.every((m) => m.application === POSTGRES_APPLICATION);
}

/** The schema's version; DB_SCHEMA_TOO_NEW when a newer ym-orders wrote it. */
async function versionNotNewer(client: pg.PoolClient, context: ErrorContext): Promise<number> {
  const version = (await client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0]!.v;
  if (version > POSTGRES_LATEST_SCHEMA_VERSION) {
    throw new StoreError(
      STORE_ERROR_CODES.schemaTooNew,
      `${context.url} (schema ${context.schema}) has schema version ${version}, newer than this ym-orders knows (${POSTGRES_LATEST_SCHEMA_VERSION}). Upgrade ym-orders to open it.`,
      { url: context.url, schema: context.schema, schemaVersion: version, supportedVersion: POSTGRES_LATEST_SCHEMA_VERSION },
    );
  }
  return version;
}

/** A read-only connect's checks: the schema exists, is ours and is at this build's version. */
async function checkOurs(client: pg.PoolClient, context: ErrorContext): Promise<void> {
  const objects = (await client.query<{ name: string }>(OBJECTS_SQL, [context.schema])).rows.map((r) => r.name);
  if (objects.length === 0) {
    throw new StoreError(
      STORE_ERROR_CODES.cannotOpen,
      `${context.url}: schema ${context.schema} is missing or empty, and a read-only connect creates nothing. Connect once without readOnly (any command that writes, e.g. ym-orders sync), or choose the schema that holds the orders (postgres.schema).`,
      { url: context.url, schema: context.schema, readOnly: true },
    );
  }
  if (!(await isOurs(client, objects))) throw notOurs(context, objects);
  const version = await versionNotNewer(client, context);
  if (version < POSTGRES_LATEST_SCHEMA_VERSION) {
    throw new StoreError(
      STORE_ERROR_CODES.cannotOpen,
      `${context.url} (schema ${context.schema}) has schema version ${version}, older than this ym-orders (${POSTGRES_LATEST_SCHEMA_VERSION}), and a read-only connect does not migrate it. Run any command that writes with this version once, then connect again.`,
      { url: context.url, schema: context.schema, schemaVersion: version, supportedVersion: POSTGRES_LATEST_SCHEMA_VERSION, readOnly: true },
    );
  }
}

async function claimAndMigrate(client: pg.PoolClient, context: ErrorContext, now: number): Promise<void> {
  await client.query({ ...LOCK_STATEMENT, values: [String(advisoryLockKey(context.schema, 'migrate', ''))] });
  const objects = (await client.query<{ name: string }>(OBJECTS_SQL, [context.schema])).rows.map((r) => r.name);
  if (objects.length > 0 && !(await isOurs(client, objects))) throw notOurs(context, objects);
  if (objects.length === 0) {
    const present = (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [context.schema])).rowCount === 1;
    // An identifier cannot be a parameter; the schema name was checked to be a plain one (SCHEMA_NAME).
    if (!present) await client.query(`CREATE SCHEMA ${context.schema}`);
    await client.query(CLAIM_SQL);
    await client.query('INSERT INTO ym_orders_meta (application) VALUES ($1)', [POSTGRES_APPLICATION]);
  }
  const version = await versionNotNewer(client, context);
  for (const m of POSTGRES_MIGRATIONS) {
    if (m.version <= version) continue;
    await client.query(m.sql);
    await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now]);
  }
}

/** A plain lower-case SQL identifier: safe to name in DDL without quoting, and the same name in every catalog. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Runs `work` in one transaction on one connection of `pool`; its errors as wrapOpenError makes them. */
async function inOneTransaction(pool: pg.Pool, context: ErrorContext, work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw wrapOpenError(error, context);
  }
  try {
    await client.query('BEGIN');
    await work(client);
    await client.query('COMMIT');
    client.release();
  } catch (error) {
    const rolledBack = await client.query('ROLLBACK').then(
      () => true,
      () => false,
    );
    client.release(!rolledBack);
    throw wrapOpenError(error, context);
  }
}

/**
 * Drops the schema if it is ours, under the migration lock (a process connecting meanwhile waits,
 * then claims it afresh); a missing or empty one is left. Throws DB_NOT_OURS (nothing dropped).
 * @internal
 */
export function dropOurSchema(pool: pg.Pool, context: ErrorContext): Promise<void> {
  return inOneTransaction(pool, context, async (client) => {
    await client.query({ ...LOCK_STATEMENT, values: [String(advisoryLockKey(context.schema, 'migrate', ''))] });
    const objects = (await client.query<{ name: string }>(OBJECTS_SQL, [context.schema])).rows.map((r) => r.name);
    if (objects.length === 0) return;
    if (!(await isOurs(client, objects))) throw notOurs(context, objects);
    // An identifier cannot be a parameter; the schema name was checked to be a plain one (SCHEMA_NAME).
    await client.query(`DROP SCHEMA ${context.schema} CASCADE`);
  });
}

/**
 * Checks the schema and brings it up to date, on one connection of `pool`. Throws DB_NOT_OURS or
 * DB_SCHEMA_TOO_NEW (nothing written), DB_CANNOT_OPEN (the server cannot be reached or refused),
 * or DB_BUSY (another process held the schema's lock past the lock timeout).
 * @internal The driver stays out of the published types.
 */
export function prepareSchema(pool: pg.Pool, context: ErrorContext, now: number): Promise<void> {
  return inOneTransaction(pool, context, (client) => claimAndMigrate(client, context, now));
}

/**
 * Checks, without writing, that the schema is ours and at this build's version, on one
 * connection of `pool` (a read-only store's: its transactions are read-only). Throws
 * DB_CANNOT_OPEN (missing, empty or older schema; unreachable), DB_NOT_OURS or DB_SCHEMA_TOO_NEW.
 * @internal The driver stays out of the published types.
 */
export function checkSchema(pool: pg.Pool, context: ErrorContext): Promise<void> {
  return inOneTransaction(pool, context, (client) => checkOurs(client, context));
}
