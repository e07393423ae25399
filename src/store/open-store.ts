// Which store `createEngine({ db })` means: a Store instance as it is, a URL of a database this
// build has no adapter for refused, anything else a SQLite file path (or ':memory:').

import { StoreError, STORE_ERROR_CODES } from './errors.js';
import type { Store } from './port.js';
import { SqliteStore, type SqliteOptions } from './sqlite/sqlite-store.js';

export { isReplaceableDatabase } from './sqlite/header.js';

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;

/** The URL with any password (in the user info, or a `password` parameter) replaced by `***`. */
export function redactUrl(url: string): string {
  const start = url.indexOf('://') + 3;
  // The last `@` ends the user info: an unescaped `@` in a password must not leak its tail.
  const at = url.lastIndexOf('@');
  const colon = url.indexOf(':', start);
  const userInfoRedacted = at > start && colon > 0 && colon < at ? `${url.slice(0, colon + 1)}***${url.slice(at)}` : url;
  return userInfoRedacted.replace(/([?&]password=)[^&#]*/gi, '$1***');
}

/**
 * The store `db` names, and whether the caller opened it (and so closes it). A `Store` is used
 * as is (owned: false); `postgres://` and `postgresql://` URLs are refused with DB_UNSUPPORTED
 * until the PostgreSQL adapter; any other string (and undefined: DEFAULT_DB_PATH) is a SQLite
 * path, opened with `options.sqlite` and `options.now` as the time of any migration.
 */
export function openStore(db: string | Store | undefined, options: { sqlite?: SqliteOptions; now: number }): { store: Store; owned: boolean } {
  if (db !== undefined && typeof db !== 'string') return { store: db, owned: false };
  if (db !== undefined && POSTGRES_URL.test(db)) {
    const url = redactUrl(db);
    throw new StoreError(STORE_ERROR_CODES.unsupported, `${url}: PostgreSQL support arrives with the PostgreSQL adapter; use a SQLite file path for now.`, { url });
  }
  return { store: SqliteStore.open(db, { ...options.sqlite, now: options.now }), owned: true };
}
