// The database the demo starts afresh on every run: a SQLite file it deletes, or a schema on a
// PostgreSQL server it drops. Either only when it is the demo's to replace (missing, empty, or a
// ym-orders one); another application's is refused with DB_NOT_OURS and nothing is deleted.

import fs from 'node:fs';
import type { EngineOptions } from '../../engine/engine.js';
import { StoreError, STORE_ERROR_CODES } from '../../store/errors.js';
import { isReplaceableDatabase, redactUrl } from '../../store/open-store.js';
import { PostgresStore } from '../../store/postgres/postgres-store.js';
import { CliError, EXIT_CODES } from '../errors.js';

/**
 * The schema the demo uses on a PostgreSQL server unless --schema names another: never the
 * engine's default (`ym_orders`), where a seller's real orders may be.
 */
export const DEFAULT_DEMO_SCHEMA = 'ym_orders_demo';

/** The URLs openStore gives to the PostgreSQL adapter. */
const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;

/** Plain data: it goes to the demo's child processes over their IPC channel. */
export type DemoDatabase =
  | { readonly kind: 'sqlite'; readonly file: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema: string };

export const isPostgresUrl = (db: string): boolean => POSTGRES_URL.test(db);

/** How messages and the report name it: the file, or the URL with its password redacted. */
export function databaseName(db: DemoDatabase): string {
  return db.kind === 'sqlite' ? db.file : redactUrl(db.url);
}

/** What createEngine opens it with. */
export function engineDatabase(db: DemoDatabase): Pick<EngineOptions, 'db' | 'postgres'> {
  return db.kind === 'sqlite' ? { db: db.file } : { db: db.url, postgres: { schema: db.schema } };
}

/** Deletes the file and its side files, or drops the schema; refuses another application's. */
export async function replaceDatabase(db: DemoDatabase): Promise<void> {
  if (db.kind === 'postgres') return dropSchema(db);
  if (!isReplaceableDatabase(db.file)) {
    throw new CliError('DB_NOT_OURS', `${db.file} exists and is not a ym-orders database; the demo replaces its database, so choose another --db.`, EXIT_CODES.usage);
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${db.file}${suffix}`, { force: true });
}

async function dropSchema(db: Extract<DemoDatabase, { kind: 'postgres' }>): Promise<void> {
  try {
    await PostgresStore.dropSchema(db.url, { schema: db.schema });
  } catch (error) {
    if (!(error instanceof StoreError) || error.code !== STORE_ERROR_CODES.notOurs) throw error;
    const objects = (error.details.tables as readonly string[] | undefined) ?? [];
    throw new CliError(
      'DB_NOT_OURS',
      `${redactUrl(db.url)}: schema ${db.schema} holds another application's objects (${objects.slice(0, 5).join(', ')}); the demo replaces its schema, so choose another --schema. Nothing was dropped.`,
      EXIT_CODES.usage,
      { schema: db.schema, objects },
    );
  }
}
