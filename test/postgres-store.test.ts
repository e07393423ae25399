// The PostgreSQL adapter against a real server: the store contract (test/helpers/store-contract.ts),
// then what only SQL or a second process can see: how a schema is claimed, refused and migrated,
// that no password shows, and that the locks the port documents hold across two pools (two
// processes, as the server sees them). Skipped, with one line saying how to run them, when no
// server answers at YM_TEST_POSTGRES_URL.

import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { STORE_ERROR_CODES, type StoreError } from '../src/store/errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, PostgresStore, type OrderWrite, type PostgresOptions, type Store } from '../src/store/index.js';
import { redactUrl } from '../src/store/open-store.js';
import { DATABASE_NOW_MS } from '../src/store/postgres/clock.js';
import { POSTGRES_MIGRATIONS } from '../src/store/postgres/migrations.js';
import { wrapPgError } from '../src/store/postgres/errors.js';
import { poolSettings } from '../src/store/postgres/postgres-store.js';
import { advisoryLockKey } from '../src/store/postgres/session.js';
import { LISTEN_APPLICATION_NAME, queuedChannel } from '../src/store/postgres/wakeups.js';
import { waitUntil } from './helpers/effects-fixtures.js';
import { dropSchemas, emptySchema, freshSchemaPrefix, POSTGRES_TEST_URL, withRawClient } from './helpers/postgres.js';
import { describeStoreContract, enqueueRow, expectStoreError, orderRow as contractOrderRow } from './helpers/store-contract.js';
import { startTcpProxy, type FrontendMessage, type TcpProxy } from './helpers/tcp-proxy.js';

const URL = POSTGRES_TEST_URL;
// Probed once for the whole run by test/helpers/postgres-setup.ts, which prints the skip line.
const available = inject('postgres');

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const PREFIX = freshSchemaPrefix();
let schemas = 0;
/** A schema no test of this run has used. */
const freshSchema = (): string => `${PREFIX}_${++schemas}`;

/** A port on which nothing listens: connecting is refused at once. */
const REFUSED_URL = 'postgres://postgres:s3cret-pw@127.0.0.1:1/test';

const stores: Store[] = [];
const proxies: TcpProxy[] = [];

async function connect(schema: string, options: Omit<PostgresOptions, 'schema'> = {}, url = URL): Promise<PostgresStore> {
  const store = await PostgresStore.connect(url, { schema, now: T0, ...options });
  stores.push(store);
  return store;
}


function raw<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withRawClient(fn, URL);
}

/** The database's clock now, in epoch milliseconds: what lease expiries are on. */
async function databaseNow(): Promise<number> {
  return raw(async (client) => Number((await client.query<{ t: string }>(`SELECT ${DATABASE_NOW_MS} AS t`)).rows[0]!.t));
}

/** A loopback proxy in front of the test server, closed after the test. */
async function proxy(): Promise<TcpProxy> {
  const started = await startTcpProxy(URL);
  proxies.push(started);
  return started;
}

/** How many backends of the stores wait on `pid`'s transaction right now. */
function waitingOn(pid: number): Promise<number> {
  return raw(
    async (client) =>
      (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ym-orders' AND $1 = ANY(pg_blocking_pids(pid))`, [pid])).rows[0]!.n,
  );
}

/** The backend whose transaction holds the advisory lock `kind`/`key` of `schema` (limiter.lockScope takes 'scope' ones). */
async function backendHolding(schema: string, kind: string, key: string): Promise<number> {
  const lock = BigInt.asUintN(64, advisoryLockKey(schema, kind, key));
  const rows = await raw(
    async (client) =>
      (
        await client.query<{ pid: number }>(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND classid = $1::bigint::oid AND objid = $2::bigint::oid`,
          [String(lock >> 32n), String(lock & 0xffffffffn)],
        )
      ).rows,
  );
  expect(rows).toHaveLength(1);
  return rows[0]!.pid;
}

/** The backends LISTENing on `schema`'s channel for a store (found by their application_name and last statement). */
async function listeners(schema: string): Promise<number[]> {
  return raw(
    async (client) =>
      (
        await client.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query = $2 AND state = 'idle' ORDER BY pid`, [
          LISTEN_APPLICATION_NAME,
          `LISTEN ${queuedChannel(schema)}`,
        ])
      ).rows.map((r) => r.pid),
  );
}

/** Every object in the schema and every row of its tables: equal dumps, an untouched schema. */
async function dumpSchema(schema: string): Promise<unknown> {
  return raw(async (client) => {
    const objects = (
      await client.query(
        `SELECT c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
         UNION ALL SELECT p.proname, 'function' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1
         ORDER BY 1`,
        [schema],
      )
    ).rows as { name: string; kind: string }[];
    const rows: Record<string, unknown[]> = {};
    // The names come from the catalog of a test schema: safe to name in a statement.
    for (const { name } of objects.filter((o) => o.kind === 'r')) rows[name] = (await client.query(`SELECT * FROM ${schema}.${name} ORDER BY 1`)).rows;
    return { objects, rows };
  });
}

function orderRow(orderId: number, extra: Partial<OrderWrite> = {}): OrderWrite {
  return contractOrderRow(orderId, { observed_at: T0, snapshot: '{"n":0}', updated_at: T0, ...extra });
}


/** Resolves once `n` callers wait on it: each caller's transaction has got that far. */
function barrier(n: number): () => Promise<void> {
  let waiting = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    if (++waiting === n) open();
    return opened;
  };
}

function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

(available ? describe : describe.skip)('PostgresStore', () => {
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const p of proxies.splice(0)) await p.close();
  });

  afterAll(async () => {
    await dropSchemas(PREFIX, URL);
  });

  // One schema for the whole contract, emptied after each case: a store with no rows in it.
  const contractSchema = freshSchema();
  describeStoreContract('PostgresStore', async () => {
    const options = { schema: contractSchema, now: 0 } as const;
    return {
      store: await PostgresStore.connect(URL, options),
      reopen: () => PostgresStore.connect(URL, options),
      cleanup: () => emptySchema(contractSchema, URL),
    };
  }, { leaseClock: 'database', databaseNow });

  describe('schema: claimed, migrated once, refused when not ours', () => {
    it('claims a missing schema: our marker, then every migration (the versions and names of SQLite’s), applied at `now`', async () => {
      const schema = freshSchema();
      const store = await connect(schema, { now: T0 + 7 });
      expect(store.name).toBe(redactUrl(URL));
      expect(store.schema).toBe(schema);
      const recorded = await raw(async (client) => ({
        marker: (await client.query(`SELECT application FROM ${schema}.ym_orders_meta`)).rows,
        migrations: (await client.query(`SELECT version, name, applied_at FROM ${schema}.schema_migrations ORDER BY version`)).rows,
      }));
      expect(recorded.marker).toEqual([{ application: 'ym-orders' }]);
      expect(recorded.migrations).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: String(T0 + 7) })));
      // Connecting again applies nothing and writes nothing.
      await store.close();
      const before = await dumpSchema(schema);
      await connect(schema, { now: T0 + 99 });
      expect(await dumpSchema(schema)).toEqual(before);
    });

    it('uses an empty schema that already exists (created by a DBA, say)', async () => {
      const schema = freshSchema();
      await raw((client) => client.query(`CREATE SCHEMA ${schema}`));
      const store = await connect(schema);
      await store.transaction((tx) => tx.cursors.set('c', 'v', T0));
      expect(await raw(async (client) => (await client.query(`SELECT value FROM ${schema}.cursors`)).rows)).toEqual([{ value: 'v' }]);
    });

    it('refuses a schema that holds another application’s objects (DB_NOT_OURS) and leaves it as it was', async () => {
      const setups = [
        ['a table', 'CREATE TABLE %s.customers (id int PRIMARY KEY, name text); INSERT INTO %s.customers VALUES (1, $$Ann$$)', 'customers'],
        ['a view', 'CREATE VIEW %s.answer AS SELECT 42 AS n', 'answer'],
        ['a function', 'CREATE FUNCTION %s.add_one(n int) RETURNS int AS $$ SELECT n + 1 $$ LANGUAGE sql', 'add_one'],
        ['a type', `CREATE TYPE %s.mood AS ENUM ('ok', 'sad')`, 'mood'],
        ['migrations but no marker', 'CREATE TABLE %s.schema_migrations (version int PRIMARY KEY, name text, applied_at bigint)', 'schema_migrations'],
        [
          'a marker of another application',
          `CREATE TABLE %s.schema_migrations (version int PRIMARY KEY, name text, applied_at bigint);
           CREATE TABLE %s.ym_orders_meta (application text); INSERT INTO %s.ym_orders_meta VALUES ('not-ym-orders')`,
          'ym_orders_meta',
        ],
      ] as const;
      for (const [what, sql, named] of setups) {
        const schema = freshSchema();
        await raw((client) => client.query(`CREATE SCHEMA ${schema}; ${sql.replaceAll('%s', schema)}`));
        const before = await dumpSchema(schema);
        const error = await expectStoreError(connect(schema), STORE_ERROR_CODES.notOurs);
        expect(error.message, what).toContain(`schema ${schema} holds another application's objects`);
        expect(error.details, what).toMatchObject({ schema, tables: expect.arrayContaining([named]) });
        expect(await dumpSchema(schema), what).toEqual(before);
      }
    });

    it('dropSchema drops a ym-orders schema whole, refuses another application’s (DB_NOT_OURS, nothing dropped), leaves a missing one', async () => {
      const ours = freshSchema();
      const store = await connect(ours);
      await store.transaction((tx) => tx.cursors.set('c', 'v', T0));
      await store.close();
      await PostgresStore.dropSchema(URL, { schema: ours });
      const present = (schema: string) => raw(async (client) => (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1);
      expect(await present(ours)).toBe(false);
      // Connecting again claims it afresh, empty.
      expect(await (await connect(ours)).read((tx) => tx.cursors.get('c'))).toBeUndefined();

      const theirs = freshSchema();
      await raw((client) => client.query(`CREATE SCHEMA ${theirs}; CREATE TABLE ${theirs}.customers (id int PRIMARY KEY); INSERT INTO ${theirs}.customers VALUES (1)`));
      const before = await dumpSchema(theirs);
      const error = await expectStoreError(PostgresStore.dropSchema(URL, { schema: theirs }), STORE_ERROR_CODES.notOurs);
      expect(error.details).toMatchObject({ schema: theirs, tables: ['customers'] });
      expect(await dumpSchema(theirs)).toEqual(before);

      const missing = freshSchema();
      await PostgresStore.dropSchema(URL, { schema: missing });
      expect(await present(missing)).toBe(false);
    });

    it('a schema written by a newer ym-orders → DB_SCHEMA_TOO_NEW, nothing written', async () => {
      const schema = freshSchema();
      await (await connect(schema)).close();
      await raw((client) => client.query(`INSERT INTO ${schema}.schema_migrations VALUES (99, 'from the future', 1)`));
      const before = await dumpSchema(schema);
      const error = await expectStoreError(connect(schema), STORE_ERROR_CODES.schemaTooNew);
      expect(error.details).toMatchObject({ schema, schemaVersion: 99, supportedVersion: LATEST_SCHEMA_VERSION });
      expect(error.message).toMatch(new RegExp(`has schema version 99, newer than this ym-orders knows \\(${LATEST_SCHEMA_VERSION}\\)`));
      expect(await dumpSchema(schema)).toEqual(before);
    });

    it('four pools connecting at once to a missing schema: one migrates, the others find it up to date', async () => {
      const schema = freshSchema();
      const opened = await Promise.all([1, 2, 3, 4].map((i) => PostgresStore.connect(URL, { schema, now: T0 + i })));
      stores.push(...opened);
      const recorded = await raw(async (client) => ({
        markers: (await client.query(`SELECT count(*)::int AS n FROM ${schema}.ym_orders_meta`)).rows[0],
        migrations: (await client.query(`SELECT version, applied_at FROM ${schema}.schema_migrations ORDER BY version`)).rows as { version: number; applied_at: string }[],
      }));
      expect(recorded.markers).toEqual({ n: 1 });
      expect(recorded.migrations.map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
      // One connect applied every migration: one `now` among the four pools’.
      expect(new Set(recorded.migrations.map((m) => m.applied_at)).size).toBe(1);
      for (const s of opened) expect(await s.read((tx) => tx.outbox.counts())).toMatchObject({ queued: 0 });
    });

    it('a schema at version 5 (the release before the inbox) migrates to the latest with its rows kept: outbox rows become status changes, the new tables work', async () => {
      const schema = freshSchema();
      // As that release left it: our marker, migrations 1..5, and rows.
      await raw(async (client) => {
        await client.query(`CREATE SCHEMA ${schema}; SET search_path = ${schema};
          CREATE TABLE ym_orders_meta (application TEXT NOT NULL); INSERT INTO ym_orders_meta VALUES ('ym-orders');
          CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);`);
        for (const m of POSTGRES_MIGRATIONS.slice(0, 5)) {
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations VALUES ($1, $2, $3)', [m.version, m.name, T0]);
        }
        await client.query(`INSERT INTO outbox (idempotency_key, order_id, campaign_id, request_no, status, substatus, state, attempts, next_attempt_at, last_error, journal_seq, created_at, updated_at, read_failures)
          VALUES ('1:PROCESSING/READY_TO_SHIP:m1:r1', 1, 10, 1, 'PROCESSING', 'READY_TO_SHIP', 'uncertain', 1, $1, 'timeout', 2, $2, $3, 2)`, [T0 + 60_000, T0 + 1, T0 + 2]);
        await client.query(`INSERT INTO limiter VALUES ('res', 100, 42, $1, 0, $2, $3)`, [T0 + 60_000, T0, T0 - 5]);
      });
      const store = await connect(schema, { now: T0 + 1_000 });
      const recorded = await raw(async (client) => (await client.query(`SELECT version, applied_at FROM ${schema}.schema_migrations ORDER BY version`)).rows);
      expect(recorded).toEqual(MIGRATIONS.map((m) => ({ version: m.version, applied_at: String(m.version <= 5 ? T0 : T0 + 1_000) })));
      expect(await store.read((tx) => tx.outbox.get(1, 1))).toMatchObject({
        state: 'uncertain',
        attempts: 1,
        read_failures: 2,
        last_error: 'timeout',
        next_attempt_at: T0 + 60_000,
        kind: 'statusChange',
        payload: null,
      });
      expect(await store.read((tx) => tx.limiter.get('res'))).toMatchObject({ remaining: 42, last_rate_limited_at: T0 - 5 });
      await store.transaction(async (tx) => {
        await tx.outbox.setState(1, 1, 'accepted', T0 + 2_000);
        await tx.outbox.enqueue(enqueueRow(2, 1, { kind: 'cancellationAnswer', status: 'CANCELLATION_ANSWER', substatus: 'ACCEPTED', payload: '{"accepted":true}' }));
        expect(await tx.inbox.insert({ dedupe_key: 'k', type: 'ORDER_CREATED', campaign_id: 10, order_id: 2, event_at: null, body: '{}', state: 'done', now: T0 })).toMatchObject({ duplicate: false });
        await tx.reads.request({ orderId: 2, campaignId: 10, businessId: 1, reason: 'ORDER_CREATED', now: T0 });
      });
      expect(await store.read(async (tx) => [(await tx.outbox.get(2, 1))?.kind, await tx.inbox.counts(), await tx.reads.count()])).toEqual([
        'cancellationAnswer',
        { pending: 0, done: 1, ignored: 0 },
        1,
      ]);
    });

    it('schemas are separate stores on one database: tenants never see each other’s rows', async () => {
      const a = await connect(freshSchema());
      const b = await connect(freshSchema());
      await a.transaction((tx) => tx.orders.insert(orderRow(1)));
      await b.transaction((tx) => tx.orders.insert(orderRow(1, { status: 'DELIVERED' })));
      expect((await a.read((tx) => tx.orders.get(1)))?.status).toBe('PROCESSING');
      expect((await b.read((tx) => tx.orders.get(1)))?.status).toBe('DELIVERED');
    });
  });

  describe('errors', () => {
    it('a refused port, a missing database, a bad option → DB_CANNOT_OPEN naming the redacted URL and the reason', async () => {
      const refused = await expectStoreError(PostgresStore.connect(REFUSED_URL, { connectTimeoutMs: 2_000 }), STORE_ERROR_CODES.cannotOpen);
      expect(refused.message).toBe('Cannot open database postgres://postgres:***@127.0.0.1:1/test (schema ym_orders): connect ECONNREFUSED 127.0.0.1:1');
      expect(refused.details).toEqual({ url: 'postgres://postgres:***@127.0.0.1:1/test', schema: 'ym_orders', networkCode: 'ECONNREFUSED' });

      const missing = await expectStoreError(PostgresStore.connect(URL.replace(/\/[^/?]*(\?|$)/, '/ym_no_such_database$1')), STORE_ERROR_CODES.cannotOpen);
      expect(missing.message).toMatch(/database "ym_no_such_database" does not exist/);
      expect(missing.details).toMatchObject({ sqlState: '3D000' });

      for (const options of [{ schema: 'Bad"; DROP SCHEMA x; --' }, { schema: 'UPPER' }, { poolSize: 0 }, { connectTimeoutMs: 1.5 }, { lockTimeoutMs: -1 }]) {
        const error = await expectStoreError(PostgresStore.connect(URL, options), STORE_ERROR_CODES.cannotOpen);
        expect(error.message).toMatch(/must be/);
      }
      expect(await raw(async (client) => (await client.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname IN ('x', 'UPPER')`)).rows)).toEqual([{ n: 0 }]);
      // The URL's own startup options would replace the schema's search_path: refused, not half-honoured.
      const withOptions = `${URL}${URL.includes('?') ? '&' : '?'}options=-c%20search_path%3Dpublic`;
      expect((await expectStoreError(PostgresStore.connect(withOptions), STORE_ERROR_CODES.cannotOpen)).message).toMatch(/must not carry an `options` parameter/);
    });

    it('poolSettings (the raw baseline of bench 6a) are the settings the store connects with: the same options checked, the same session settings', async () => {
      const schema = freshSchema();
      const settings = poolSettings(URL, { schema, poolSize: 3, lockTimeoutMs: 1_234, queryTimeoutMs: 5_678 });
      expect(settings).toMatchObject({ max: 3, query_timeout: 5_678, keepAlive: true, options: `-c search_path=${schema} -c lock_timeout=1234` });
      await connect(schema);
      const pool = new pg.Pool(settings);
      try {
        const { rows } = await pool.query<{ path: string; lock: string }>(`SELECT current_setting('search_path') AS path, current_setting('lock_timeout') AS lock`);
        expect(rows).toEqual([{ path: schema, lock: '1234ms' }]);
        // BIGINTs come back as numbers, as through the store.
        expect((await pool.query<{ n: unknown }>('SELECT 5::bigint AS n')).rows).toEqual([{ n: 5 }]);
      } finally {
        await pool.end();
      }
      for (const options of [{ schema: 'UPPER' }, { poolSize: 0 }]) {
        expect(() => poolSettings(URL, options)).toThrow(/must be/);
      }
    });

    it('the password never shows: not in name, messages, details, nor the error as printed', async () => {
      const secret = 's3cret-pw';
      // Trust authentication accepts any password: what is checked is that the one given never shows.
      const withPassword = URL.replace('://postgres@', `://postgres:${secret}@`);
      expect(withPassword).toContain(secret);
      const schema = freshSchema();
      const store = await connect(schema, {}, withPassword);
      expect(store.name).not.toContain(secret);
      expect(store.name).toContain(':***@');
      const errors: StoreError[] = [
        await expectStoreError(PostgresStore.connect(REFUSED_URL), STORE_ERROR_CODES.cannotOpen),
        await expectStoreError(PostgresStore.connect('postgres://127.0.0.1:1/test?user=postgres&password=s3cret-pw'), STORE_ERROR_CODES.cannotOpen),
        await expectStoreError(PostgresStore.connect(withPassword.replace(/\/[^/?]*(\?|$)/, '/ym_no_such_database$1')), STORE_ERROR_CODES.cannotOpen),
        await expectStoreError(PostgresStore.connect(withPassword, { schema: 'Not A Schema' }), STORE_ERROR_CODES.cannotOpen),
        await expectStoreError(
          store.transaction(async (tx) => {
            await tx.limiter.addLease('lease-1', 'scope', 'res', 1, T0, 30_000);
            await tx.limiter.addLease('lease-1', 'scope', 'res', 1, T0, 30_000); // a duplicate: DB_FAILED
          }),
          STORE_ERROR_CODES.failed,
        ),
      ];
      await store.close();
      errors.push(await expectStoreError(store.read((tx) => tx.orders.get(1)), STORE_ERROR_CODES.closed));
      for (const error of errors) {
        expect(error.message).not.toContain(secret);
        expect(JSON.stringify(error.details)).not.toContain(secret);
        expect(JSON.stringify(error)).not.toContain(secret);
        expect(inspect(error, { depth: 10 })).not.toContain(secret);
        expect(error.message).toMatch(/\*\*\*/);
      }
    });

    it('a failed statement fails the transaction even when its function catches the error and goes on', async () => {
      const store = await connect(freshSchema());
      await store.transaction((tx) => tx.limiter.addLease('lease-1', 'scope', 'res', 1, T0, 30_000));
      const error = await expectStoreError(
        store.transaction(async (tx) => {
          await tx.cursors.set('c', 'lost', T0);
          await tx.limiter.addLease('lease-1', 'scope', 'res', 1, T0, 30_000).catch(() => {});
          return 'went on';
        }),
        STORE_ERROR_CODES.failed,
      );
      expect(error.details).toMatchObject({ sqlState: '23505' });
      expect(await store.read((tx) => tx.cursors.get('c'))).toBeUndefined();
    });

    it('a BIGINT beyond 2^53 fails the read (DB_FAILED) instead of coming back rounded', async () => {
      const schema = freshSchema();
      const store = await connect(schema);
      await raw((client) =>
        client.query(`INSERT INTO ${schema}.campaigns (campaign_id, business_id, model) VALUES ($1, 1, 'FBS'), (9007199254740991, 1, 'FBS')`, ['9007199254740993']),
      );
      const error = await expectStoreError(
        store.read((tx) => tx.campaigns.all()),
        STORE_ERROR_CODES.failed,
      );
      expect(error.message).toMatch(/9007199254740993 is beyond JavaScript's safe integers/);
      expect(await store.read((tx) => tx.campaigns.get(9007199254740991))).toEqual({ campaign_id: 9007199254740991, business_id: 1, model: 'FBS' });
    });

    it('a throwing transaction leaves nothing and gives its connection back: a pool of 2 survives 20 of them', async () => {
      const schema = freshSchema();
      const store = await connect(schema, { poolSize: 2 });
      const boom = new Error('boom');
      const failures = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.orders.insert(orderRow(100 + i));
            await tx.limiter.addLease(`lease-${i}`, 'scope', 'res', 1, T0, 30_000);
            await tx.counters.add('engine', { n: 1 });
            if (i % 2 === 0) throw boom;
            await tx.limiter.addLease(`lease-${i}`, 'scope', 'res', 1, T0, 30_000); // a duplicate: DB_FAILED
          }),
        ),
      );
      expect(failures.map((f) => (f.status === 'rejected' ? (f.reason === boom ? 'boom' : (f.reason as StoreError).code) : 'committed'))).toEqual(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 'boom' : 'DB_FAILED')),
      );
      expect(await raw(async (client) => (await client.query(`SELECT (SELECT count(*) FROM ${schema}.orders)::int AS orders, (SELECT count(*) FROM ${schema}.counters)::int AS counters`)).rows[0])).toEqual({
        orders: 0,
        counters: 0,
      });
      await store.transaction((tx) => tx.orders.insert(orderRow(1)));
      expect(await store.read((tx) => tx.campaigns.orderCount(10))).toBe(1);
    });

    it('a connection that breaks mid-transaction: DB_UNAVAILABLE, nothing lands, the broken connection is dropped, the store goes on', async () => {
      const schema = freshSchema();
      const store = await connect(schema, { poolSize: 1 });
      const held = latch();
      const killed = latch();
      const running = store.transaction(async (tx) => {
        await tx.cursors.set('before', 'written', T0);
        await tx.limiter.lockScope('victim'); // marks this transaction's connection in pg_locks
        held.open();
        await killed.promise;
        await tx.cursors.set('after', 'written', T0);
      });
      await held.promise;
      const victim = await backendHolding(schema, 'scope', 'victim');
      expect(await raw(async (client) => (await client.query('SELECT pg_terminate_backend($1) AS done', [victim])).rows)).toEqual([{ done: true }]);
      killed.open();
      const error = await expectStoreError(running, STORE_ERROR_CODES.unavailable);
      expect(error.message).toMatch(/^postgres:\/\/.* is unavailable \((driver|57P01|ECONNRESET): .*\); nothing was written\. Retry once the database is back\.$/);
      // The pool's one connection was broken: a transaction now runs on a new one.
      expect(await store.transaction(async (tx) => [await tx.cursors.get('before'), await tx.cursors.get('after')])).toEqual([undefined, undefined]);
    });

    it('close: refuses new calls (DB_CLOSED), waits for the running one, ends the pool', async () => {
      const store = await connect(freshSchema());
      const release = latch();
      const running = store.transaction(async (tx) => {
        await tx.cursors.set('c', 'last', T0);
        await release.promise;
        return 'done';
      });
      await sleep(20);
      const closing = store.close();
      const refused = await expectStoreError(store.transaction(async () => 1), STORE_ERROR_CODES.closed);
      expect(refused.message).toContain(store.name);
      let closed = false;
      void closing.then(() => (closed = true));
      await sleep(50);
      expect(closed).toBe(false);
      release.open();
      expect(await running).toBe('done');
      await closing;
      expect(closed).toBe(true);
    });
  });

  describe('reads and locks across two pools (two processes, as the server sees them)', () => {
    it('read(): one snapshot for every statement, whatever commits meanwhile', async () => {
      const store = await connect(freshSchema());
      const firstDone = latch();
      const committed = latch();
      const seen = store.read(async (tx) => {
        const first = await tx.cursors.get('c');
        firstDone.open();
        await committed.promise;
        return [first, await tx.cursors.get('c')];
      });
      await firstDone.promise;
      await store.transaction((tx) => tx.cursors.set('c', 'new', T0));
      committed.open();
      expect(await seen).toEqual([undefined, undefined]);
      expect(await store.read((tx) => tx.cursors.get('c'))).toBe('new');
    });

    it('outbox.lease skips rows another transaction holds (SKIP LOCKED): it neither waits nor hands them out twice', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      await a.transaction(async (tx) => {
        for (let i = 1; i <= 10; i++) await tx.outbox.enqueue(enqueueRow(i, 1, { next_attempt_at: T0 - 100 + i }));
      });
      const leased = latch();
      const release = latch();
      const heldByA = a.transaction(async (tx) => {
        const rows = await tx.outbox.lease('queued', 'A', T0, 30_000, 5);
        leased.open();
        await release.promise;
        return rows;
      });
      await leased.promise;
      // B is answered while A's transaction is still open: the five rows A holds are passed over.
      const byB = await b.transaction((tx) => tx.outbox.lease('queued', 'B', T0, 30_000, 10));
      release.open();
      expect((await heldByA).map((r) => r.order_id)).toEqual([1, 2, 3, 4, 5]);
      expect(byB.map((r) => r.order_id)).toEqual([6, 7, 8, 9, 10]);
      expect(byB.every((r) => r.lease_owner === 'B')).toBe(true);
    });

    it('outbox.lease from two pools at once, 2 loops each, over 300 due rows: every row leased once', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      await a.transaction(async (tx) => {
        for (let i = 1; i <= 300; i++) await tx.outbox.enqueue(enqueueRow(i, 1, { next_attempt_at: T0 - (i % 17) }));
      });
      const drain = async (store: Store, owner: string): Promise<number[]> => {
        const ids: number[] = [];
        for (;;) {
          const rows = await store.transaction(async (tx) => {
            const got = await tx.outbox.lease('queued', owner, T0, 60_000, 7);
            await sleep(1); // hold the rows a moment, so the other pool meets them locked
            return got;
          });
          if (rows.length === 0) return ids;
          expect(rows.every((r) => r.lease_owner === owner)).toBe(true);
          ids.push(...rows.map((r) => r.id));
        }
      };
      const got = await Promise.all([drain(a, 'A1'), drain(a, 'A2'), drain(b, 'B1'), drain(b, 'B2')]);
      const all = got.flat();
      expect(all).toHaveLength(300);
      expect(new Set(all).size).toBe(300);
      expect(got.filter((ids) => ids.length > 0).length).toBeGreaterThan(1);
      const owners = await a.read(async (tx) => (await tx.outbox.open(1_000)).map((r) => r.lease_owner));
      expect(owners.every((o) => o !== null)).toBe(true);
    });

    it('inbox.takePending skips rows another transaction holds (SKIP LOCKED): it neither waits nor hands them out twice', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      const ids = await a.transaction(async (tx) => {
        const out: number[] = [];
        for (let i = 1; i <= 6; i++) out.push((await tx.inbox.insert({ dedupe_key: `n-${i}`, type: 'ORDER_STATUS_UPDATED', campaign_id: 10, order_id: i, event_at: T0, body: '{}', state: 'pending', now: T0 })).id);
        return out;
      });
      const taken = latch();
      const release = latch();
      const heldByA = a.transaction(async (tx) => {
        const rows = await tx.inbox.takePending(3);
        taken.open();
        await release.promise;
        for (const r of rows) await tx.inbox.finish(r.id, 'done', T0 + 1);
        return rows.map((r) => r.id);
      });
      await taken.promise;
      // B is answered while A's transaction is still open: the three rows A holds are passed over.
      const byB = await b.transaction((tx) => tx.inbox.takePending(10));
      // A read-only look locks nothing and sees all six pending.
      expect((await b.read((tx) => tx.inbox.takePending(10))).map((r) => r.id)).toEqual(ids);
      release.open();
      expect(await heldByA).toEqual(ids.slice(0, 3));
      expect(byB.map((r) => r.id)).toEqual(ids.slice(3));
      expect(await a.read((tx) => tx.inbox.counts())).toEqual({ pending: 3, done: 3, ignored: 0 });
    });

    it('reads.lease skips rows another transaction holds (SKIP LOCKED): it neither waits nor hands them out twice', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      await a.transaction(async (tx) => {
        for (let i = 1; i <= 6; i++) await tx.reads.request({ orderId: i, campaignId: 10, businessId: 1, reason: 'ORDER_CREATED', now: T0 - 100 + i });
      });
      const leased = latch();
      const release = latch();
      const heldByA = a.transaction(async (tx) => {
        const rows = await tx.reads.lease(1, 'A', T0, 30_000, 3);
        leased.open();
        await release.promise;
        return rows;
      });
      await leased.promise;
      const byB = await b.transaction((tx) => tx.reads.lease(1, 'B', T0, 30_000, 10));
      release.open();
      expect((await heldByA).map((r) => r.order_id)).toEqual([1, 2, 3]);
      expect(byB.map((r) => [r.order_id, r.lease_owner])).toEqual([
        [4, 'B'],
        [5, 'B'],
        [6, 'B'],
      ]);
    });

    it('limiter.lockScope: without it, two that read before either writes lose an update; with it, the second waits', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      const budget = { resource_key: 'res', capacity: 100, remaining: 100, window_ends_at: T0 + 60_000, blocked_until: 0, updated_at: T0, last_rate_limited_at: null };
      await a.transaction((tx) => tx.limiter.put(budget));

      const bothRead = barrier(2);
      const unlocked = (store: Store) =>
        store.transaction(async (tx) => {
          const row = (await tx.limiter.get('res'))!;
          await bothRead();
          await tx.limiter.put({ ...row, remaining: row.remaining - 1 });
        });
      await Promise.all([unlocked(a), unlocked(b)]);
      expect((await a.read((tx) => tx.limiter.get('res')))!.remaining).toBe(99); // one of the two takes is lost

      const aRead = latch();
      let bLocked = false;
      const first = a.transaction(async (tx) => {
        await tx.limiter.lockScope('campaign:1');
        const row = (await tx.limiter.get('res'))!;
        aRead.open();
        await sleep(200);
        await tx.limiter.put({ ...row, remaining: row.remaining - 1 });
      });
      await aRead.promise;
      const second = b.transaction(async (tx) => {
        await tx.limiter.lockScope('campaign:1');
        bLocked = true;
        const row = (await tx.limiter.get('res'))!;
        await tx.limiter.put({ ...row, remaining: row.remaining - 1 });
      });
      await sleep(100);
      expect(bLocked).toBe(false);
      await Promise.all([first, second]);
      expect((await a.read((tx) => tx.limiter.get('res')))!.remaining).toBe(97);
    });

    it('limiter.lockScope: two pools each taking from one budget 200 times at once → the exact total', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      await a.transaction((tx) => tx.limiter.put({ resource_key: 'res', capacity: 1_000, remaining: 1_000, window_ends_at: T0 + 60_000, blocked_until: 0, updated_at: T0, last_rate_limited_at: null }));
      const take = (store: Store) =>
        store.transaction(async (tx) => {
          await tx.limiter.lockScope('business:7');
          const row = (await tx.limiter.get('res'))!;
          await tx.limiter.put({ ...row, remaining: row.remaining - 1, updated_at: row.updated_at + 1 });
        });
      await Promise.all(Array.from({ length: 400 }, (_, i) => take(i % 2 === 0 ? a : b)));
      expect(await a.read((tx) => tx.limiter.get('res'))).toMatchObject({ remaining: 600, updated_at: T0 + 400 });
    });

    it('orders.get in a write transaction holds the order: two pools incrementing it 200 times each lose no update', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      await a.transaction((tx) => tx.orders.insert(orderRow(1)));
      const increment = (store: Store) =>
        store.transaction(async (tx) => {
          const row = (await tx.orders.get(1))!;
          const n = (JSON.parse(row.snapshot) as { n: number }).n;
          return tx.orders.update({ ...row, snapshot: JSON.stringify({ n: n + 1 }), updated_at: row.updated_at + 1 }, row.row_version);
        });
      const updated = await Promise.all(Array.from({ length: 400 }, (_, i) => increment(i % 2 === 0 ? a : b)));
      expect(updated.every((u) => u)).toBe(true); // no version conflict: each get waited for the write before it
      expect(await a.read((tx) => tx.orders.get(1))).toMatchObject({ snapshot: '{"n":400}', row_version: 401, updated_at: T0 + 400 });
    });

    it('orders.get of the order a write transaction holds, read again before any write: the held row (a copy), no statement; a write, another order or a read-only transaction reads again', async () => {
      const schema = freshSchema();
      const path = await proxy();
      const store = await connect(schema, { poolSize: 1 }, path.url);
      await store.transaction(async (tx) => {
        await tx.orders.insert(orderRow(1));
        await tx.orders.insert(orderRow(2));
      });
      const reads: string[] = [];
      void path.cutAt((message: FrontendMessage) => {
        if (message.type === 'B' && /FROM orders WHERE order_id/.test(message.sql ?? '')) reads.push(message.statement ?? '');
        return false; // a tap: nothing is cut
      });
      const seen = await store.transaction(async (tx) => {
        const first = (await tx.orders.get(1))!;
        (first as { status: string }).status = 'MUTATED BY THE CALLER'; // typed readonly; a copy all the same
        const again = (await tx.orders.get(1))!; // held: no statement
        const other = await tx.orders.get(2); // another order: read
        const back = await tx.orders.get(1); // no longer the one held: read
        await tx.orders.update({ ...back!, status: 'DELIVERED', updated_at: T0 + 1 }, back!.row_version);
        const written = await tx.orders.get(1); // written since: read
        const missing = await tx.orders.get(3);
        const stillMissing = await tx.orders.get(3); // a missing order is never held: read
        return { again, other, written, missing, stillMissing };
      });
      expect(seen.again).toMatchObject({ order_id: 1, status: 'PROCESSING', row_version: 1 });
      expect(seen.other).toMatchObject({ order_id: 2 });
      expect(seen.written).toMatchObject({ order_id: 1, status: 'DELIVERED', row_version: 2 });
      expect([seen.missing, seen.stillMissing]).toEqual([undefined, undefined]);
      expect(reads).toEqual(Array(6).fill('ym_orders_get_for_update'));
      // A read-only transaction reads every time (no lock holds anything for it).
      reads.length = 0;
      await store.read(async (tx) => {
        await tx.orders.get(1);
        await tx.orders.get(1);
      });
      expect(reads).toEqual(['ym_orders_get', 'ym_orders_get']);
    });

    it('orders.lock holds the orders named until the transaction ends: another pool’s write of one waits, of another order does not', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      await a.transaction(async (tx) => {
        for (const orderId of [1, 2, 3]) await tx.orders.insert(orderRow(orderId));
      });
      const locked = latch();
      const endA = latch();
      const byA = a.transaction(async (tx) => {
        await tx.limiter.lockScope('holder'); // marks A's backend in pg_locks
        await tx.orders.lock([3, 1, 99]); // any order given; an order not there is skipped
        locked.open();
        await endA.promise;
      });
      await locked.promise;
      const holder = await backendHolding(schema, 'scope', 'holder');
      const write = (orderId: number) => b.transaction((tx) => tx.orders.update({ ...orderRow(orderId), status: 'DELIVERED', updated_at: T0 + 1 }, 1));
      expect(await write(2)).toBe(true); // not locked: written while A holds 1 and 3
      const third = write(3);
      await waitUntil(async () => (await waitingOn(holder)) === 1, 'B’s write of order 3 waits for A’s transaction');
      endA.open();
      await byA;
      expect(await third).toBe(true);
      expect(await b.read((tx) => tx.orders.get(3))).toMatchObject({ status: 'DELIVERED', row_version: 2 });
      await a.transaction((tx) => tx.orders.lock([])); // nothing to lock: no statement to fail
    });

    it('operations.get in a write transaction holds the operation likewise', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      const op = { operation_id: 'op-1', operation_type: 'updateOrderStatuses', business_id: 1, order_id: 1, state: 'inProgress', next_poll_at: T0, deadline_at: T0 + 1, machine_version: 1, snapshot: '0', updated_at: T0 };
      await a.transaction((tx) => tx.operations.insert(op));
      const bump = (store: Store) =>
        store.transaction(async (tx) => {
          const row = (await tx.operations.get('op-1'))!;
          return tx.operations.update({ ...row, snapshot: String(Number(row.snapshot) + 1) }, row.row_version);
        });
      const updated = await Promise.all(Array.from({ length: 200 }, (_, i) => bump(i % 2 === 0 ? a : b)));
      expect(updated.every((u) => u)).toBe(true);
      expect(await a.read((tx) => tx.operations.get('op-1'))).toMatchObject({ snapshot: '200', row_version: 201 });
    });
  });

  describe('orders.insert across two pools: an order is tracked once', () => {

    it('an insert racing another pool’s open insert of the order waits for it: false once that one commits (its own other writes commit), true if it rolled back', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      for (const outcome of ['commits', 'rolls back'] as const) {
        const orderId = outcome === 'commits' ? 7 : 8;
        const inserted = latch();
        const endA = latch();
        const boom = new Error('A rolls back');
        const byA = a.transaction(async (tx) => {
          await tx.limiter.lockScope(`holder-${orderId}`); // marks A's backend in pg_locks
          const first = await tx.orders.insert(orderRow(orderId, { status: 'PROCESSING' }));
          inserted.open();
          await endA.promise;
          if (outcome === 'rolls back') throw boom;
          return first;
        });
        await inserted.promise;
        const holder = await backendHolding(schema, 'scope', `holder-${orderId}`);
        const byB = b.transaction(async (tx) => {
          await tx.cursors.set(`b-before-${orderId}`, 'written', T0);
          const second = await tx.orders.insert(orderRow(orderId, { status: 'DELIVERED' }));
          await tx.cursors.set(`b-after-${orderId}`, 'written', T0);
          return second;
        });
        await waitUntil(async () => (await waitingOn(holder)) === 1, `B’s insert waits for A’s transaction (${outcome})`);
        endA.open();
        if (outcome === 'commits') {
          expect(await byA).toBe(true);
          expect(await byB).toBe(false);
          expect(await b.read((tx) => tx.orders.get(orderId))).toMatchObject({ status: 'PROCESSING', row_version: 1 });
        } else {
          await expect(byA).rejects.toBe(boom);
          expect(await byB).toBe(true);
          expect(await b.read((tx) => tx.orders.get(orderId))).toMatchObject({ status: 'DELIVERED', row_version: 1 });
        }
        expect(await b.read(async (tx) => [await tx.cursors.get(`b-before-${orderId}`), await tx.cursors.get(`b-after-${orderId}`)])).toEqual(['written', 'written']);
      }
    });
  });

  describe('inbox.insert across two pools: a notification is stored once', () => {
    const notification = (key: string, body: string) => ({ dedupe_key: key, type: 'ORDER_CREATED', campaign_id: 10, order_id: 7, event_at: T0, body, state: 'done' as const, now: T0 });

    it('an insert racing another pool’s open insert of the key waits for it: a duplicate of its row once that one commits, new if it rolled back', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      for (const outcome of ['commits', 'rolls back'] as const) {
        const key = `key-${outcome}`;
        const inserted = latch();
        const endA = latch();
        const boom = new Error('A rolls back');
        const byA = a.transaction(async (tx) => {
          await tx.limiter.lockScope(`holder-${key}`); // marks A's backend in pg_locks
          const first = await tx.inbox.insert(notification(key, '"A"'));
          inserted.open();
          await endA.promise;
          if (outcome === 'rolls back') throw boom;
          return first;
        });
        await inserted.promise;
        const holder = await backendHolding(schema, 'scope', `holder-${key}`);
        const byB = b.transaction((tx) => tx.inbox.insert(notification(key, '"B"')));
        await waitUntil(async () => (await waitingOn(holder)) === 1, `B’s insert waits for A’s transaction (${outcome})`);
        endA.open();
        const rows = async () => (await b.read((tx) => tx.inbox.recent(100))).filter((r) => r.dedupe_key === key).map((r) => [r.id, r.body]);
        if (outcome === 'commits') {
          const first = await byA;
          expect(first.duplicate).toBe(false);
          expect(await byB).toEqual({ id: first.id, duplicate: true });
          expect(await rows()).toEqual([[first.id, '"A"']]);
        } else {
          await expect(byA).rejects.toBe(boom);
          const second = await byB;
          expect(second.duplicate).toBe(false);
          expect(await rows()).toEqual([[second.id, '"B"']]);
        }
      }
    });
  });

  describe('leases on the database’s clock, across hosts', () => {
    it('a host whose clock runs an hour ahead cannot take a row another host leased a moment ago, see it as an orphan, nor drop its limiter lease', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const ahead = await connect(schema);
      const aheadNow = T0 + 3_600_000;
      await a.transaction(async (tx) => {
        await tx.outbox.enqueue(enqueueRow(1));
        await tx.outbox.enqueue(enqueueRow(2));
      });
      const before = await databaseNow();
      const leased = await a.transaction(async (tx) => {
        const rows = await tx.outbox.lease('queued', 'A', T0, 30_000, 1);
        expect([...(await tx.outbox.claimForSend([(await tx.outbox.get(2, 1))!.id], 'A', T0, 30_000))]).toHaveLength(1);
        await tx.outbox.setState(2, 1, 'sending', T0, { sent: true });
        await tx.limiter.addLease('permit-1', 'campaign:10', 'res', 1, T0, 30_000);
        return rows;
      });
      const after = await databaseNow();
      expect(leased.map((r) => r.order_id)).toEqual([1]);
      // The lease runs 30 s from the database's now, whatever either host's clock says.
      expect(leased[0]!.lease_expires_at).toBeGreaterThanOrEqual(before + 30_000);
      expect(leased[0]!.lease_expires_at).toBeLessThanOrEqual(after + 30_000);

      expect(await ahead.transaction((tx) => tx.outbox.lease('queued', 'B', aheadNow, 30_000, 10))).toEqual([]);
      expect(await ahead.read((tx) => tx.outbox.dueCampaigns('queued', aheadNow))).toEqual([]);
      expect(await ahead.read((tx) => tx.outbox.orphans(aheadNow, 100))).toEqual([]);
      await ahead.transaction((tx) => tx.limiter.dropExpiredLeases(aheadNow));
      expect(await ahead.read((tx) => tx.limiter.inFlight('campaign:10'))).toBe(1);
      expect(await a.read(async (tx) => [(await tx.outbox.get(1, 1))?.lease_owner, (await tx.outbox.get(2, 1))?.lease_owner])).toEqual(['A', 'A']);
    });
  });

  describe('wake-ups: LISTEN/NOTIFY', () => {
    /** A raw connection LISTENing on the schema's channel: every notification, in commit order, with its payload. */
    async function rawListener(schema: string): Promise<{ payloads: string[]; end: () => Promise<void> }> {
      const client = new pg.Client({ connectionString: URL });
      await client.connect();
      const payloads: string[] = [];
      client.on('notification', (message) => payloads.push(message.payload ?? ''));
      await client.query(`LISTEN ${queuedChannel(schema)}`);
      return {
        payloads,
        // A marker of its own, after everything before it: once it is heard, so is every earlier commit's.
        end: async () => {
          await client.query(`NOTIFY ${queuedChannel(schema)}, 'end'`);
          await waitUntil(() => payloads.includes('end'), 'the raw listener hears its own marker');
          await client.end();
        },
      };
    }

    it('NOTIFY goes with COMMIT, in one simple query, once per transaction that queued rows; none for a rollback, a failed statement, a failed COMMIT or a transaction without an enqueue', async () => {
      const schema = freshSchema();
      const channel = queuedChannel(schema);
      const path = await proxy();
      const store = await connect(schema, { poolSize: 1 }, path.url);
      expect(store.wakeups).toBe('database');
      const queries: string[] = [];
      void path.cutAt((message: FrontendMessage) => {
        if (message.type === 'Q') queries.push(message.sql ?? '');
        return false; // a tap: nothing is cut
      });
      // A check the server runs at COMMIT: a cursor set to 'refused at commit' fails the COMMIT itself.
      await raw((client) =>
        client.query(`CREATE SCHEMA ${schema}_fx;
          CREATE FUNCTION ${schema}_fx.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.value = 'refused at commit' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$;
          CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON ${schema}.cursors
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${schema}_fx.refuse();`),
      );
      const heard = await rawListener(schema);

      await store.transaction(async (tx) => {
        for (const orderId of [1, 2, 3]) await tx.outbox.enqueue(enqueueRow(orderId));
      });
      const boom = new Error('boom');
      await expect(
        store.transaction(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(4));
          throw boom;
        }),
      ).rejects.toBe(boom);
      await expectStoreError(
        store.transaction(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(5));
          await tx.outbox.enqueue({ ...enqueueRow(6), idempotency_key: enqueueRow(5).idempotency_key });
        }),
        STORE_ERROR_CODES.failed,
      );
      const atCommit = await expectStoreError(
        store.transaction(async (tx) => {
          await tx.outbox.enqueue(enqueueRow(7));
          await tx.cursors.set('c', 'refused at commit', T0);
        }),
        STORE_ERROR_CODES.failed,
      );
      await store.transaction((tx) => tx.cursors.set('c', 'nothing queued', T0));
      const sent = [...queries];
      await heard.end();

      expect(heard.payloads).toEqual(['', 'end']); // the first transaction's, and the marker
      // A COMMIT the server refused reports as any refused statement: its reason, nothing written.
      expect(atCommit.message).toMatch(/\(P0001: refused at commit\); nothing was written\.$/);
      expect(atCommit.details).toMatchObject({ sqlState: 'P0001' });
      expect(await store.read(async (tx) => [(await tx.outbox.counts()).queued, await tx.cursors.get('c')])).toEqual([3, 'nothing queued']);
      // NOTIFY travelled with COMMIT as one simple query, never on its own.
      expect(sent.filter((q) => q.includes('NOTIFY'))).toEqual([`NOTIFY ${channel}; COMMIT`, `NOTIFY ${channel}; COMMIT`]);
      expect(sent.filter((q) => q === 'COMMIT')).toHaveLength(1); // the last transaction's
    });

    it('a listener of one store hears another pool’s commits; only a store with a listener holds a listening connection; killed, it comes back; close() ends it', async () => {
      const schema = freshSchema();
      const a = await connect(schema);
      const b = await connect(schema);
      let heard = 0;
      const stop = a.onQueued(() => heard++);
      await waitUntil(async () => (await listeners(schema)).length === 1, 'a listens');
      // Rows may have been queued before the LISTEN took effect: once it has, the listeners wake once.
      await waitUntil(() => heard === 1, 'the wake-up once listening');
      const [first] = await listeners(schema);
      await b.transaction((tx) => tx.outbox.enqueue(enqueueRow(1)));
      await waitUntil(() => heard === 2, 'a hears b’s commit');

      expect(await raw(async (client) => (await client.query('SELECT pg_terminate_backend($1) AS done', [first])).rows)).toEqual([{ done: true }]);
      await waitUntil(async () => {
        const now = await listeners(schema);
        return now.length === 1 && now[0] !== first;
      }, 'a listens again, on a new connection');
      // Rows may have been queued while nobody listened: the reconnect wakes the listeners once.
      await waitUntil(() => heard === 3, 'the wake-up after reconnecting');
      await b.transaction((tx) => tx.outbox.enqueue(enqueueRow(2)));
      await waitUntil(() => heard === 4, 'a hears b’s next commit');

      const listening = async () =>
        (await raw(async (client) => (await client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query = $2`, [LISTEN_APPLICATION_NAME, `LISTEN ${queuedChannel(schema)}`])).rows[0]!.n)) as number;
      // The last listener gone, the connection goes too (it would keep a finished process alive); a new one opens it again.
      stop();
      await waitUntil(async () => (await listening()) === 0, 'the listening connection ends with the last listener');
      a.onQueued(() => heard++);
      await waitUntil(async () => (await listening()) === 1, 'a listens again');
      await a.close();
      await waitUntil(async () => (await listening()) === 0, 'a’s listening connection ends');
    });

    it('while the server cannot be reached the listening connection tries again and again, no error escaping; back, it hears commits', async () => {
      const schema = freshSchema();
      const path = await proxy();
      const a = await connect(schema, {}, path.url);
      const b = await connect(schema);
      let heard = 0;
      a.onQueued(() => heard++);
      await waitUntil(async () => (await listeners(schema)).length === 1, 'a listens');
      path.setMode('refuse');
      const accepted = path.accepted();
      path.cutAll();
      await waitUntil(() => path.accepted() >= accepted + 3, 'the listening connection is tried again, three times');
      path.setMode('forward');
      await waitUntil(async () => (await listeners(schema)).length === 1 && heard >= 1, 'a listens again and wakes its listeners once');
      const before = heard;
      await b.transaction((tx) => tx.outbox.enqueue(enqueueRow(1)));
      await waitUntil(() => heard > before, 'a hears b’s commit');
    });
  });

  describe('DB_UNAVAILABLE: the server cannot be reached, or the connection broke', () => {
    it('a connection cut at COMMIT: DB_UNAVAILABLE saying the outcome is unknown; the server never saw it, and the next transaction runs on a new connection', async () => {
      const schema = freshSchema();
      const path = await proxy();
      const store = await connect(schema, { poolSize: 1 }, path.url);
      const cut = path.cutAt((message) => message.type === 'Q' && (message.sql ?? '').includes('COMMIT'));
      const error = await expectStoreError(
        store.transaction(async (tx) => {
          await tx.cursors.set('c', 'lost', T0);
          await tx.outbox.enqueue(enqueueRow(1));
        }),
        STORE_ERROR_CODES.unavailable,
      );
      expect((await cut).sql).toBe(`NOTIFY ${queuedChannel(schema)}; COMMIT`);
      expect(error.message).toMatch(/ became unavailable \(.*\); the connection broke while committing, so whether the transaction committed is unknown\. Read back/);
      expect(error.details).toMatchObject({ schema, commitOutcome: 'unknown' });
      const accepted = path.accepted();
      expect(await store.transaction(async (tx) => [await tx.cursors.get('c'), (await tx.outbox.counts()).queued])).toEqual([undefined, 0]);
      expect(path.accepted()).toBe(accepted + 1);
    });

    it('a server that goes away: DB_UNAVAILABLE for transactions and reads, nothing written; back, the store goes on by itself; connecting meanwhile stays DB_CANNOT_OPEN', async () => {
      const schema = freshSchema();
      const path = await proxy();
      const store = await connect(schema, { poolSize: 2 }, path.url);
      await store.transaction((tx) => tx.cursors.set('c', 'before', T0));
      path.setMode('refuse');
      path.cutAll();
      const refused = await expectStoreError(
        store.transaction((tx) => tx.cursors.set('c', 'while away', T0)),
        STORE_ERROR_CODES.unavailable,
      );
      expect(refused.message).toMatch(/^postgres:\/\/.* is unavailable \(.*\); nothing was written\. Retry once the database is back\.$/);
      expect(refused.details).not.toHaveProperty('commitOutcome');
      await expectStoreError(
        store.read((tx) => tx.cursors.get('c')),
        STORE_ERROR_CODES.unavailable,
      );
      await expectStoreError(PostgresStore.connect(path.url, { schema }), STORE_ERROR_CODES.cannotOpen);
      path.setMode('forward');
      await store.transaction((tx) => tx.cursors.set('c', 'after', T0));
      expect(await raw(async (client) => (await client.query(`SELECT value FROM ${schema}.cursors WHERE name = 'c'`)).rows)).toEqual([{ value: 'after' }]);
    });

    it('which driver errors are DB_UNAVAILABLE, DB_BUSY or DB_FAILED', () => {
      const context = { url: 'postgres://app:***@db:5432/orders', schema: 'ym_orders', secrets: [] };
      const network = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.1:5432`), { code });
      const server = (code: string) => Object.assign(new pg.DatabaseError(`server says ${code}`, 0, 'error'), { code });
      const unavailable = [
        ...['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAI_AGAIN', 'ENOTFOUND'].map(network),
        new AggregateError([network('ECONNREFUSED'), network('ECONNREFUSED')]),
        // localhost resolving to both addresses, neither answering.
        new AggregateError([network('ECONNREFUSED'), network('EADDRNOTAVAIL')]),
        new Error('Query read timeout'),
        new Error('Connection terminated unexpectedly'),
        new Error('Connection terminated'),
        new Error('Connection terminated due to connection timeout'),
        new Error('Client has encountered a connection error and is not queryable'),
        ...['08000', '08003', '08006', '57P01', '57P02', '57P03', '53300'].map(server),
      ];
      for (const error of unavailable) {
        const wrapped = wrapPgError(error, context);
        expect(wrapped.code, String(error)).toBe(STORE_ERROR_CODES.unavailable);
        expect(wrapped.message, String(error)).toMatch(/nothing was written/);
        const atCommit = wrapPgError(error, context, true);
        expect(atCommit.code, String(error)).toBe(STORE_ERROR_CODES.unavailable);
        expect(atCommit.message, String(error)).toMatch(/whether the transaction committed is unknown/);
        expect(atCommit.details, String(error)).toMatchObject({ commitOutcome: 'unknown' });
      }
      for (const error of [server('40001'), server('40P01'), server('55P03'), new Error('timeout exceeded when trying to connect')]) {
        expect(wrapPgError(error, context).code, String(error)).toBe(STORE_ERROR_CODES.busy);
      }
      for (const error of [server('23505'), server('42P01'), server('57014'), network('EACCES'), new Error('something else')]) {
        expect(wrapPgError(error, context).code, String(error)).toBe(STORE_ERROR_CODES.failed);
      }
      // A statement the server refused at COMMIT (a deferred check) wrote nothing.
      expect(wrapPgError(server('23505'), context, true).message).toMatch(/nothing was written/);
    });
  });
});
