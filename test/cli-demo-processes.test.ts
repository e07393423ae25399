// `ym-orders demo --db postgres://… --processes <n>` (issue 11), run as the built CLI against the
// real PostgreSQL server (skipped, with the one skip line of the run, when none answers): the
// demo replaces its own schema, n child processes share the flush, and it prints each one's share,
// the calls against the minimum and the duplicates, and the notifications (to this process's
// receiver) and the reads they led to. Plus what it refuses: several processes on a SQLite file,
// and a schema that is another application's (nothing dropped).
//
// Every process doing some work is not checked: one lease takes up to 960 changes of a campaign,
// so at a test's size the first child to start takes every campaign's changes in its first round,
// and the others only poll operations. The shares adding up to the total is checked instead.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redactUrl } from '../src/store/open-store.js';
import { ensureBuilt, json, killRunning, makeTempDir, runCli } from './helpers/cli.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL, withRawClient } from './helpers/postgres.js';

const available = inject('postgres');
const PREFIX = freshSchemaPrefix();
const ORDERS = '400';
const RUN_TIMEOUT_MS = 240_000;

/** The test server's URL with a password in it (trust authentication ignores it), and that password. */
function urlWithPassword(): { url: string; password: string } {
  const url = new URL(POSTGRES_TEST_URL);
  if (!url.password) url.password = `demo-pw-${randomBytes(12).toString('hex')}`;
  return { url: url.toString(), password: decodeURIComponent(url.password) };
}
const { url: DB_URL, password: PASSWORD } = urlWithPassword();

beforeAll(async () => {
  await ensureBuilt();
});

afterAll(async () => {
  killRunning();
  if (available) await dropSchemas(PREFIX);
});

interface Share {
  readonly process: number;
  readonly changes: number;
  readonly requests: number;
}

/** The `process N (pid P): X changes in Y requests, Z %` lines of the text summary. */
function sharesOf(stdout: string): Share[] {
  return [...stdout.matchAll(/^ {3}process (\d+) \(pid \d+\): ([\d ]+) changes in ([\d ]+) requests, \d+ %/gm)].map((m) => ({
    process: Number(m[1]),
    changes: Number(m[2]!.replace(/ /g, '')),
    requests: Number(m[3]!.replace(/ /g, '')),
  }));
}

(available ? describe : describe.skip)('demo on PostgreSQL with several processes', () => {
  const schema = `${PREFIX}_demo`;

  it('shares the flush between four processes: shares add up, the minimum of calls, no duplicate, no password shown', async () => {
    const cwd = makeTempDir();
    const result = await runCli(['--db', DB_URL, 'demo', '--schema', schema, '--processes', '4', '--orders', ORDERS], { cwd, timeoutMs: RUN_TIMEOUT_MS });
    const out = result.stdout;
    expect(result.code, result.stderr + out).toBe(0);
    expect(out + result.stderr).not.toContain(PASSWORD);
    expect(out).toContain(`database             ${redactUrl(DB_URL)}, schema ${schema}`);

    const flushed = /^3\. flush: (\d+) changes in .* by 4 processes sharing the database: \1 accepted, 0 rejected, 0 still open/m.exec(out);
    expect(flushed, out).not.toBeNull();
    const changes = Number(flushed![1]);
    const shares = sharesOf(out);
    expect(shares.map((s) => s.process)).toEqual([1, 2, 3, 4]);
    // Every change went to the Market once, by one process or another.
    expect(shares.reduce((n, s) => n + s.changes, 0)).toBe(changes);

    const calls = /status-update calls\s+(\d+) made, minimum (\d+) = the minimum/.exec(out);
    expect(calls, out).not.toBeNull();
    expect(shares.reduce((n, s) => n + s.requests, 0)).toBe(Number(calls![1]));
    expect(calls![1]).toBe(calls![2]);
    expect(out).toMatch(/Market check\s+illegal requests received 0, duplicate applications 0; engine and Market agree on 440\/440 orders/);
  }, RUN_TIMEOUT_MS + 30_000);

  it('replaces its schema on the next run, and --json carries the per-process figures', async () => {
    const cwd = makeTempDir();
    const result = await runCli(['--db', DB_URL, 'demo', '--schema', schema, '--processes', '2', '--orders', ORDERS, '--json'], { cwd, timeoutMs: RUN_TIMEOUT_MS });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
    const doc = json<{
      database: string;
      schema: string;
      sync: { first: { created: number } };
      queued: number;
      statusUpdateCalls: { made: number; minimum: number };
      market: { duplicateApplications: number; orders: number; agree: number };
      marketMoves: { placed: number; placedTracked: number };
      notifications: { received: number; duplicates: number; unsettled: number; fake: { delivered: number; duplicatesSent: number } };
      reads: { calls: number; orders: number };
      processes: { process: number; pid: number; owner: string; changes: number; requests: number; share: number; reads: { calls: number; orders: number } }[];
    }>(result);
    expect(doc.schema).toBe(schema);
    // The schema the first test left was dropped and made anew: every order is new again.
    expect(doc.sync.first.created).toBe(400);
    expect(doc.processes.map((p) => p.process)).toEqual([1, 2]);
    expect(new Set(doc.processes.map((p) => p.owner)).size).toBe(2);
    expect(doc.processes.reduce((n, p) => n + p.changes, 0)).toBe(doc.queued);
    expect(doc.processes.reduce((n, p) => n + p.requests, 0)).toBe(doc.statusUpdateCalls.made);
    expect(doc.processes.reduce((n, p) => n + p.share, 0)).toBeCloseTo(1, 6);
    expect(doc.statusUpdateCalls.made).toBe(doc.statusUpdateCalls.minimum);
    expect(doc.market.duplicateApplications).toBe(0);
    // The notifications went to this process's receiver; the children applied those that came
    // while they ran, this process the rest; the reads of both are added up.
    expect(doc.notifications.received).toBe(doc.notifications.fake.delivered);
    expect(doc.notifications.duplicates).toBe(doc.notifications.fake.duplicatesSent);
    expect(doc.notifications.unsettled).toBe(0);
    expect(doc.marketMoves).toMatchObject({ placed: 40, placedTracked: 40 });
    expect(doc.reads.calls).toBeGreaterThan(0);
    expect(doc.reads.orders).toBeGreaterThanOrEqual(40);
    expect(doc.reads.calls).toBeGreaterThanOrEqual(doc.processes.reduce((n, p) => n + p.reads.calls, 0));
    expect(doc.market).toMatchObject({ orders: 440, agree: 440 });
  }, RUN_TIMEOUT_MS + 30_000);

  it("refuses a schema that holds another application's tables, and drops nothing", async () => {
    const foreign = `${PREFIX}_foreign`;
    await withRawClient(async (client) => {
      await client.query(`CREATE SCHEMA ${foreign}`);
      await client.query(`CREATE TABLE ${foreign}.invoices (id INTEGER PRIMARY KEY)`);
      await client.query(`INSERT INTO ${foreign}.invoices (id) VALUES (7)`);
    });
    const result = await runCli(['--db', DB_URL, 'demo', '--schema', foreign, '--processes', '4'], { cwd: makeTempDir() });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^error \\[DB_NOT_OURS\\]: postgres://[^ ]*:\\*\\*\\*@.*: schema ${foreign} holds another application's objects \\(invoices\\).*Nothing was dropped\\.`, 'm'));
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
    const rows = await withRawClient((client) => client.query<{ id: number }>(`SELECT id FROM ${foreign}.invoices`));
    expect(rows.rows).toEqual([{ id: 7 }]);
  });
});

describe('demo --processes on SQLite', () => {
  it('is a usage error (exit 2), and so is --schema; nothing is made', async () => {
    const dir = makeTempDir();
    const db = path.join(dir, 'demo.db');
    const several = await runCli(['--db', db, 'demo', '--processes', '2'], { cwd: dir });
    expect(several.code).toBe(2);
    expect(several.stderr).toMatch(/^error \[USAGE\]: --processes 2 needs a postgres:\/\/ database \(--db or YM_DB\)/m);
    const schema = await runCli(['--db', db, 'demo', '--schema', 'ym_orders_demo'], { cwd: dir });
    expect(schema.code).toBe(2);
    expect(schema.stderr).toMatch(/^error \[USAGE\]: --schema names a PostgreSQL schema/m);
    const tooMany = await runCli(['--db', db, 'demo', '--processes', '9'], { cwd: dir });
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/^error \[USAGE\]: --processes "9" must be a whole number from 1 to 8/m);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
