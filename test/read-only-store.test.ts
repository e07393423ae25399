// A store opened read-only (what `ym-orders inspect` uses): on a real SQLite file beside a writer
// in another process, and on the real PostgreSQL server beside a writer on another connection. It
// reads what the writer commits, refuses transactions, and never writes: no claim, no WAL switch,
// no migration (an older schema is refused, its file byte for byte unchanged), no schema created.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { STORE_ERROR_CODES } from '../src/store/errors.js';
import { APPLICATION_ID, LATEST_SCHEMA_VERSION, MIGRATIONS, openStore, PostgresStore, SqliteStore, type Store } from '../src/store/index.js';
import { migrate } from '../src/store/sqlite/migrations.js';
import { waitUntil } from './helpers/effects-fixtures.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL, withRawClient } from './helpers/postgres.js';
import { enqueueRow, expectStoreError, orderRow } from './helpers/store-contract.js';

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const STORE_MODULE = path.join(REPO_ROOT, 'src', 'store', 'index.ts');

let dir: string;
const stores: Store[] = [];

function track<S extends Store>(store: S): S {
  stores.push(store);
  return store;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ym-orders-read-only-'));
});

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The bytes of a file and every companion SQLite may create, for "not one byte changed". */
function fileBytes(file: string): (string | null)[] {
  return ['', '-wal', '-shm', '-journal'].map((suffix) => (fs.existsSync(file + suffix) ? fs.readFileSync(file + suffix).toString('base64') : null));
}

/** A file built with the raw driver, in rollback-journal mode (a writer's open would switch it to WAL). */
function rawFile(name: string, build: (db: Database) => void): string {
  const file = path.join(dir, name);
  const db = new BetterSqlite3(file);
  try {
    build(db);
  } finally {
    db.close();
  }
  return file;
}

/** Ours, at schema `version` (the first migrations only), with one cursor row. */
function fileAtSchema(name: string, version: number): string {
  return rawFile(name, (db) => {
    db.pragma(`application_id = ${APPLICATION_ID}`);
    migrate(db, T0, MIGRATIONS.slice(0, version));
    db.prepare('INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)').run('seen', 'before', T0);
  });
}

/**
 * A writer in another process: opens the store read-write and sets cursor `count` to 1, 2, 3, …,
 * one transaction each, printing `wrote <n>` after each commit, until its stdin closes.
 */
function spawnCountingWriter(file: string): { child: ReturnType<typeof spawn>; lastWritten: () => number; done: Promise<{ code: number | null; stderr: string }> } {
  const script = `
    const { SqliteStore } = await import(${JSON.stringify(STORE_MODULE)});
    const store = SqliteStore.open(${JSON.stringify(file)});
    let stopped = false;
    process.stdin.on('data', () => {});
    process.stdin.on('end', () => (stopped = true));
    for (let n = 1; !stopped; n++) {
      await store.transaction((tx) => tx.cursors.set('count', String(n), ${T0} + n));
      process.stdout.write('wrote ' + n + '\\n');
    }
    await store.close();`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let last = 0;
  let pending = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.startsWith('wrote ')) last = Number(line.slice(6));
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  return { child, lastWritten: () => last, done };
}

describe('SqliteStore.open(path, { readOnly: true })', () => {
  it('reads what a writer in another process commits, while it writes, and the writer never waits on it', async () => {
    const file = path.join(dir, 'shared.db');
    await SqliteStore.open(file, { now: T0 }).close();
    const writer = spawnCountingWriter(file);
    try {
      await waitUntil(() => writer.lastWritten() > 0 || writer.child.exitCode !== null, 'the writer commits its first transaction');
      const reader = track(SqliteStore.open(file, { readOnly: true }));
      expect(reader.readOnly).toBe(true);
      const seen: number[] = [];
      const readCount = async () => Number((await reader.read((tx) => tx.cursors.get('count'))) ?? 0);
      // Several distinct values, read one after another while the writer goes on committing.
      await waitUntil(async () => {
        const count = await readCount();
        if (seen.at(-1) !== count) seen.push(count);
        return seen.length >= 5 || writer.child.exitCode !== null;
      }, 'the reader sees five successive commits of the writer');
      expect(seen.length).toBe(5);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
      writer.child.stdin!.end();
      const out = await writer.done;
      expect(out).toEqual({ code: 0, stderr: '' });
      expect(await readCount()).toBe(writer.lastWritten());
    } finally {
      writer.child.kill('SIGKILL');
    }
  }, 180_000);

  it('refuses transactions and writes from a read, and leaves a rollback-journal file byte for byte as it was', async () => {
    const file = fileAtSchema('journal-mode.db', LATEST_SCHEMA_VERSION);
    const before = fileBytes(file);
    const store = track(SqliteStore.open(file, { readOnly: true }));
    expect(await store.read((tx) => tx.cursors.get('seen'))).toBe('before');
    let ran = false;
    const refused = await expectStoreError(
      store.transaction(async (tx) => {
        ran = true;
        await tx.cursors.set('seen', 'after', T0);
      }),
      STORE_ERROR_CODES.failed,
    );
    expect(ran).toBe(false);
    expect(refused.message).toMatch(/open read-only: nothing was written/);
    expect(refused.details).toMatchObject({ path: file, readOnly: true });
    await expectStoreError(
      store.read((tx) => tx.cursors.set('seen', 'after', T0)),
      STORE_ERROR_CODES.failed,
    );
    expect(await store.read((tx) => tx.cursors.get('seen'))).toBe('before');
    await store.close();
    // No claim, no switch to WAL (the header records the journal mode), no migration row.
    expect(fileBytes(file)).toEqual(before);
  }, 60_000);

  it('refuses a file at an older schema with DB_CANNOT_OPEN and leaves it byte for byte as it was', () => {
    const file = fileAtSchema('older.db', LATEST_SCHEMA_VERSION - 1);
    const before = fileBytes(file);
    const error = thrown(() => SqliteStore.open(file, { readOnly: true }));
    expect(error).toMatchObject({ code: STORE_ERROR_CODES.cannotOpen, details: { path: file, schemaVersion: LATEST_SCHEMA_VERSION - 1, supportedVersion: LATEST_SCHEMA_VERSION, readOnly: true } });
    expect((error as Error).message).toMatch(/older than this ym-orders .* a read-only open does not migrate it/);
    expect(fileBytes(file)).toEqual(before);
  });

  it('refuses a newer schema, another application’s file, an unclaimed empty one, a missing one and :memory:, creating nothing', () => {
    const newer = rawFile('newer.db', (db) => {
      db.pragma(`application_id = ${APPLICATION_ID}`);
      migrate(db, T0);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(LATEST_SCHEMA_VERSION + 1, 'from the future', T0);
    });
    const foreign = rawFile('foreign.db', (db) => db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY)'));
    const empty = rawFile('empty.db', (db) => db.exec('VACUUM'));
    const missing = path.join(dir, 'missing.db');
    const before = [newer, foreign, empty].map(fileBytes);
    expect(thrown(() => SqliteStore.open(newer, { readOnly: true }))).toMatchObject({ code: STORE_ERROR_CODES.schemaTooNew, details: { schemaVersion: LATEST_SCHEMA_VERSION + 1 } });
    expect(thrown(() => SqliteStore.open(foreign, { readOnly: true }))).toMatchObject({ code: STORE_ERROR_CODES.notOurs, details: { tables: ['notes'] } });
    expect(thrown(() => SqliteStore.open(empty, { readOnly: true }))).toMatchObject({ code: STORE_ERROR_CODES.cannotOpen, details: { schemaVersion: 0 } });
    expect(thrown(() => SqliteStore.open(missing, { readOnly: true }))).toMatchObject({ code: STORE_ERROR_CODES.cannotOpen, details: { path: missing } });
    expect(thrown(() => SqliteStore.open(':memory:', { readOnly: true }))).toMatchObject({ code: STORE_ERROR_CODES.cannotOpen });
    expect([newer, foreign, empty].map(fileBytes)).toEqual(before);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('openStore passes readOnly through', async () => {
    const file = fileAtSchema('via-open-store.db', LATEST_SCHEMA_VERSION);
    const before = fileBytes(file);
    const { store, owned } = await openStore(file, { readOnly: true, now: T0 });
    track(store);
    expect(owned).toBe(true);
    await expectStoreError(
      store.transaction((tx) => tx.cursors.set('seen', 'after', T0)),
      STORE_ERROR_CODES.failed,
    );
    await store.close();
    expect(fileBytes(file)).toEqual(before);
  });
});

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

describe.skipIf(!inject('postgres'))('PostgresStore.connect(url, { readOnly: true })', () => {
  const URL = POSTGRES_TEST_URL;
  const PREFIX = freshSchemaPrefix();
  let schemas = 0;
  const freshSchema = (): string => `${PREFIX}_${++schemas}`;

  afterAll(async () => {
    await dropSchemas(PREFIX, URL);
  });

  const schemaExists = (schema: string) => withRawClient(async (client) => (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1, URL);
  const migrations = (schema: string) =>
    withRawClient(async (client) => (await client.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`)).rows.map((r) => r.version), URL);

  it('reads beside a writer on another connection, hears its commits (onQueued), and refuses transactions, the rows unchanged', async () => {
    const schema = freshSchema();
    const writer = track(await PostgresStore.connect(URL, { schema, now: T0 }));
    await writer.transaction((tx) => tx.cursors.set('count', '0', T0));
    const reader = track(await PostgresStore.connect(URL, { schema, readOnly: true }));
    expect(reader.readOnly).toBe(true);
    let heard = 0;
    reader.onQueued(() => heard++);
    for (let n = 1; n <= 5; n++) {
      await writer.transaction((tx) => tx.cursors.set('count', String(n), T0 + n));
      expect(await reader.read((tx) => tx.cursors.get('count'))).toBe(String(n));
    }
    // A queued outbox row sends NOTIFY: the read-only store's LISTEN connection hears it.
    await writer.transaction(async (tx) => {
      await tx.orders.insert(orderRow(1));
      await tx.outbox.enqueue(enqueueRow(1));
    });
    await waitUntil(() => heard > 0, 'the read-only store hears the writer’s commit');
    let ran = false;
    const refused = await expectStoreError(
      reader.transaction(async (tx) => {
        ran = true;
        await tx.cursors.set('count', 'written by the reader', T0);
      }),
      STORE_ERROR_CODES.failed,
    );
    expect(ran).toBe(false);
    expect(refused.details).toMatchObject({ schema, readOnly: true });
    expect(await writer.read((tx) => tx.cursors.get('count'))).toBe('5');
  }, 120_000);

  it('a missing schema is refused with DB_CANNOT_OPEN and not created, through openStore too', async () => {
    const schema = freshSchema();
    const error = await expectStoreError(PostgresStore.connect(URL, { schema, readOnly: true }), STORE_ERROR_CODES.cannotOpen);
    expect(error.message).toMatch(/missing or empty, and a read-only connect creates nothing/);
    expect(error.details).toMatchObject({ schema, readOnly: true });
    // openStore passes readOnly through to PostgreSQL too.
    await expectStoreError(openStore(URL, { readOnly: true, postgres: { schema }, now: T0 }), STORE_ERROR_CODES.cannotOpen);
    expect(await schemaExists(schema)).toBe(false);
  }, 60_000);

  it('a schema at an older version is refused with DB_CANNOT_OPEN and not migrated', async () => {
    const schema = freshSchema();
    await (await PostgresStore.connect(URL, { schema, now: T0 })).close();
    const all = await migrations(schema);
    const latest = all.at(-1)!;
    // As an older build left it: the last migration's row gone (its tables stay; what counts is the version).
    await withRawClient((client) => client.query(`DELETE FROM ${schema}.schema_migrations WHERE version = $1`, [latest]), URL);
    const error = await expectStoreError(PostgresStore.connect(URL, { schema, readOnly: true }), STORE_ERROR_CODES.cannotOpen);
    expect(error.details).toMatchObject({ schema, schemaVersion: latest - 1, supportedVersion: latest, readOnly: true });
    expect(await migrations(schema)).toEqual(all.slice(0, -1));
  }, 60_000);
});
