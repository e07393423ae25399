// Which store `createEngine({ db })` means: a Store instance as it is, a postgres:// URL the
// PostgreSQL adapter, another URL refused, anything else a SQLite file path (or ':memory:').

import { StoreError, STORE_ERROR_CODES } from './errors.js';
import type { Store } from './port.js';
import { redactUrl } from './redact-url.js';
import { PostgresStore, type PostgresOptions } from './postgres/postgres-store.js';
import { SqliteStore, type SqliteOptions } from './sqlite/sqlite-store.js';

export { isReplaceableDatabase } from './sqlite/header.js';
export { redactUrl } from './redact-url.js';

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;
const ANY_URL = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The store `db` names, and whether the caller opened it (and so closes it). A `Store` is used
 * as is (owned: false); a `postgres://` or `postgresql://` URL connects a PostgresStore with
 * `options.postgres`; any other string (and undefined: DEFAULT_DB_PATH) is a SQLite path, opened
 * with `options.sqlite`. `options.now` is the time of any migration. `options.readOnly` opens
 * either kind read-only (SqliteOptions.readOnly, PostgresOptions.readOnly); a Store is used as is.
 */
export async function openStore(
  db: string | Store | undefined,
  options: { sqlite?: SqliteOptions; postgres?: Pick<PostgresOptions, 'schema' | 'poolSize' | 'connectTimeoutMs' | 'lockTimeoutMs' | 'queryTimeoutMs'>; now: number; readOnly?: boolean },
): Promise<{ store: Store; owned: boolean }> {
  if (db !== undefined && typeof db !== 'string') return { store: db, owned: false };
  if (db !== undefined && POSTGRES_URL.test(db)) return { store: await PostgresStore.connect(db, { ...options.postgres, now: options.now, readOnly: options.readOnly ?? false }), owned: true };
  if (db !== undefined && ANY_URL.test(db)) {
    const url = redactUrl(db);
    throw new StoreError(STORE_ERROR_CODES.unsupported, `${url}: no store of this version opens that kind of URL; use a postgres:// URL, a SQLite file path or ':memory:'.`, { url });
  }
  return { store: SqliteStore.open(db, { ...options.sqlite, now: options.now, readOnly: options.readOnly ?? options.sqlite?.readOnly ?? false }), owned: true };
}
