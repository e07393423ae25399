// The PostgreSQL server the PostgreSQL suites run against, and what they need beside the store:
// a probe (the suites skip, with one line saying how to run them, when no server answers), fresh
// schemas per test file, and a raw connection for what only SQL can see.

import crypto from 'node:crypto';
import pg from 'pg';
import { redactUrl } from '../../src/store/open-store.js';

/** YM_TEST_POSTGRES_URL, else the server these machines run. */
export const POSTGRES_TEST_URL = process.env.YM_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Whether a server answers at `url` within a short timeout. */
export async function postgresAnswers(url: string = POSTGRES_TEST_URL): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Whether the PostgreSQL suites may be skipped when no server answers: yes on a developer's machine,
 * no in CI (`.ci/run` sets YM_REQUIRE_POSTGRES=1), where a missing server must fail the run.
 */
export function requirePostgres(url: string = POSTGRES_TEST_URL): void {
  if (process.env.YM_REQUIRE_POSTGRES === '1') throw new Error(`YM_REQUIRE_POSTGRES=1 and no PostgreSQL server answers at ${redactUrl(url)}`);
}

export function skipLine(url: string = POSTGRES_TEST_URL): string {
  return `PostgreSQL suites skipped: no server at ${redactUrl(url)} (set YM_TEST_POSTGRES_URL=postgres://user:pass@host:port/db to run them)`;
}

/** A prefix no other run uses (`ym_test_<random>`): a test file's schemas are named from it, and dropped by it. */
export function freshSchemaPrefix(): string {
  return `ym_test_${crypto.randomBytes(5).toString('hex')}`;
}

/** Runs `fn` on a raw connection to the test server, ended afterwards. */
export async function withRawClient<T>(fn: (client: pg.Client) => Promise<T>, url: string = POSTGRES_TEST_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const TEST_SCHEMA = /^ym_test_[0-9a-z_]+$/;

function checkedTestSchema(name: string): string {
  if (!TEST_SCHEMA.test(name)) throw new Error(`refusing to drop ${JSON.stringify(name)}: not a test schema (ym_test_…)`);
  return name;
}

/**
 * Deletes every row of the store's tables in `schema` (its marker and migrations stay): a store
 * there is empty again, as a fresh one, in a few milliseconds rather than a new schema's few
 * hundred. Every table the catalog lists, so a table a later migration adds is emptied too.
 */
export async function emptySchema(schema: string, url: string = POSTGRES_TEST_URL): Promise<void> {
  await withRawClient(async (client) => {
    const { rows } = await client.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename NOT IN ('schema_migrations', 'ym_orders_meta')`,
      [checkedTestSchema(schema)],
    );
    // The names come from the catalog of a test schema: safe to name in a statement.
    await client.query(rows.map((r) => `DELETE FROM ${schema}.${r.tablename};`).join('\n'));
  }, url);
}

/** Drops every schema whose name starts with `prefix`: what a test file left behind. */
export async function dropSchemas(prefix: string, url: string = POSTGRES_TEST_URL): Promise<void> {
  await withRawClient(async (client) => {
    const { rows } = await client.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)', [checkedTestSchema(prefix)]);
    for (const { nspname } of rows) await client.query(`DROP SCHEMA IF EXISTS ${checkedTestSchema(nspname)} CASCADE`);
  }, url);
}
