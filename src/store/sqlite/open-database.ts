// Opens (or creates) a ym-orders database: WAL, a busy timeout so several processes can share
// the file, our application_id to tell our files from others, and the schema migrated. Or, read
// only, an existing one as it is: no claim, no WAL switch, no migration, so a viewer beside
// running engines never writes a byte of the file.

import BetterSqlite3, { type Database } from 'better-sqlite3';
import { StoreError, STORE_ERROR_CODES } from '../errors.js';
import { currentSchemaVersion, LATEST_SCHEMA_VERSION, migrate } from './migrations.js';

/** PRAGMA application_id of every ym-orders database ("YMOR" in ASCII). */
export const APPLICATION_ID = 0x594d4f52;

export const DEFAULT_DB_PATH = './ym-orders.db';

/** How SqliteStore.open opens the file. */
export interface SqliteOptions {
  /** How long a write waits for another process's lock before DB_BUSY (default 5 s). */
  readonly busyTimeoutMs?: number;
  /** FULL (default) survives power loss; NORMAL is faster and still survives a process crash. */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** The time recorded with the migrations this open applies (default: the wall clock). */
  readonly now?: number;
  /**
   * Open an existing database without writing to it (default false): it must be ours and at this
   * build's schema version, since a read-only open neither claims nor migrates; transactions are
   * refused, reads see other processes' commits.
   */
  readonly readOnly?: boolean;
}

function sqliteCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

function wrapOpenError(path: string, error: unknown): StoreError {
  const code = sqliteCode(error);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new StoreError(
      STORE_ERROR_CODES.corrupt,
      `${path} is not a readable SQLite database (${code}). Restore it from a backup, or point --db at another file.`,
      { path, sqliteCode: code },
      { cause: error },
    );
  }
  return new StoreError(
    STORE_ERROR_CODES.cannotOpen,
    `Cannot open database ${path}: ${error instanceof Error ? error.message : String(error)}`,
    { path, sqliteCode: code },
    { cause: error },
  );
}

function userTables(db: Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((r) => r.name);
}

function notOurs(path: string, appId: number, tables: string[]): StoreError {
  return new StoreError(
    STORE_ERROR_CODES.notOurs,
    `${path} is an SQLite database of another application (application_id ${appId}, tables: ${tables.slice(0, 5).join(', ') || 'none'}). ym-orders will not write to it; choose another --db file.`,
    { path, applicationId: appId, tables },
  );
}

function schemaTooNew(path: string, version: number): StoreError {
  return new StoreError(
    STORE_ERROR_CODES.schemaTooNew,
    `${path} has schema version ${version}, newer than this ym-orders knows (${LATEST_SCHEMA_VERSION}). Upgrade ym-orders to open it.`,
    { path, schemaVersion: version, supportedVersion: LATEST_SCHEMA_VERSION },
  );
}

function claimOrCheck(db: Database, path: string): void {
  const look = () => ({ appId: db.pragma('application_id', { simple: true }) as number, tables: userTables(db) });
  // Both reads in one read transaction: a consistent view even while another process creates the file.
  const seen = db.transaction(look).deferred();
  if (seen.appId === APPLICATION_ID) return;
  if (seen.appId !== 0 || seen.tables.length > 0) throw notOurs(path, seen.appId, seen.tables);
  // An empty file: check again and claim it under the write lock, so two processes creating the
  // same file at once cannot both see "empty" and one then see the other's tables as foreign.
  db.transaction(() => {
    const now = look();
    if (now.appId === APPLICATION_ID) return;
    if (now.appId !== 0 || now.tables.length > 0) throw notOurs(path, now.appId, now.tables);
    db.pragma(`application_id = ${APPLICATION_ID}`);
  }).immediate();
}

/** Synchronous sleep for the open-time retry below (no event loop is involved in opening). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Switches to WAL. Changing the journal mode needs an exclusive lock, and SQLite returns
 * SQLITE_BUSY for it without calling the busy handler when another connection is switching
 * too (two processes creating the same file), so retry here up to the busy timeout.
 */
function enableWal(db: Database, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if (!String(sqliteCode(error)).startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw error;
      sleepSync(5 + Math.floor(Math.random() * 20));
    }
  }
}

/** @internal The SQLite driver stays out of the published types. Open a SqliteStore instead. */
export function openDatabase(path: string, options: SqliteOptions = {}): Database {
  if (options.readOnly) return openReadOnly(path, options);
  const inMemory = path === ':memory:';
  let db: Database;
  try {
    db = new BetterSqlite3(path, { fileMustExist: false });
  } catch (error) {
    throw wrapOpenError(path, error);
  }
  try {
    const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    // Reading the header is what reveals a file that is not SQLite at all.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    claimOrCheck(db, path);
    const version = currentSchemaVersionIfAny(db);
    if (version > LATEST_SCHEMA_VERSION) throw schemaTooNew(path, version);
    if (!inMemory) enableWal(db, busyTimeoutMs);
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db, options.now ?? Date.now());
    return db;
  } catch (error) {
    db.close();
    if (error instanceof StoreError) throw error;
    throw wrapOpenError(path, error);
  }
}

function currentSchemaVersionIfAny(db: Database): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  return exists ? currentSchemaVersion(db) : 0;
}

/**
 * The checks of a read-only open, in one read transaction: the file is ours (an unclaimed, empty
 * one counts as schema 0) and at exactly this build's schema. An older file is refused rather
 * than read: the tables and columns this build reads may not exist in it yet.
 */
function checkReadOnly(db: Database, path: string): void {
  const seen = db
    .transaction(() => ({ appId: db.pragma('application_id', { simple: true }) as number, tables: userTables(db), version: currentSchemaVersionIfAny(db) }))
    .deferred();
  if (seen.appId !== APPLICATION_ID && (seen.appId !== 0 || seen.tables.length > 0)) throw notOurs(path, seen.appId, seen.tables);
  if (seen.version > LATEST_SCHEMA_VERSION) throw schemaTooNew(path, seen.version);
  if (seen.version < LATEST_SCHEMA_VERSION) {
    throw new StoreError(
      STORE_ERROR_CODES.cannotOpen,
      `${path} has schema version ${seen.version}, older than this ym-orders (${LATEST_SCHEMA_VERSION}), and a read-only open does not migrate it. Run any command that writes (e.g. ym-orders sync) with this version once, then open it again.`,
      { path, schemaVersion: seen.version, supportedVersion: LATEST_SCHEMA_VERSION, readOnly: true },
    );
  }
}

function openReadOnly(path: string, options: SqliteOptions): Database {
  if (path === ':memory:' || path === '') {
    throw new StoreError(STORE_ERROR_CODES.cannotOpen, 'A read-only store needs an existing database file, not an in-memory database.', { path, readOnly: true });
  }
  let db: Database;
  try {
    db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw wrapOpenError(path, error);
  }
  try {
    // A read waits for a writer's checkpoint or recovery instead of failing at once.
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5_000}`);
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    checkReadOnly(db, path);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof StoreError) throw error;
    throw wrapOpenError(path, error);
  }
}
