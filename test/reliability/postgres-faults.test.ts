// Faults between the engine and PostgreSQL (issue #11): a loopback TCP proxy (test/helpers/tcp-proxy.ts)
// stands between an engine and the test server and breaks the path on cue, against a fake Market
// on loopback. Skipped, with one line saying so, when no server answers.
//
// What it proves:
//  - a connection dropped in the middle of a transaction fails the call with DB_UNAVAILABLE and
//    lands nothing of it; the same call then succeeds, and each change reaches the Market once;
//  - a connection cut while the answer of a send is being committed leaves the outcome unknown:
//    the run loop reports it (onStoreError), goes on by itself, reads the change back once its
//    lease ends, and never sends it twice;
//  - a process cut off from the database while it holds leases (mid-send) loses its work to
//    another process after the lease, which reads back what may have gone out and sends nothing
//    twice; the cut-off process keeps running and works again once the database is back;
//  - a server that refuses or swallows connections for a while: the run loop waits it out,
//    saying so, and sends everything queued meanwhile once it is back, nothing lost or doubled;
//  - bad database URLs (refused, no such database, no such role, malformed), through
//    createEngine and the CLI: a typed error with a stable, documented code and exit code, and the
//    password in the URL nowhere. (test/postgres-store.test.ts covers PostgresStore.connect and
//    test/cli.test.ts the CLI on a refused port and a mysql:// URL; these are the rest.)

import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine/engine.js';
import type { RequestChangeCommand } from '../../src/engine/commands.js';
import { StoreError, STORE_ERROR_CODES } from '../../src/store/errors.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { FakeMarket } from '../../src/testing/index.js';
import { ensureBuilt, ROOT, runCli, unreachableUrl } from '../helpers/cli.js';
import {
  API_KEY,
  FBS,
  engineFor,
  orderIdsOf,
  range,
  seeds,
  startMarket,
  waitUntil,
} from '../helpers/effects-fixtures.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL, withRawClient } from '../helpers/postgres.js';
import { expectStoreError } from '../helpers/store-contract.js';
import { PROXY_MODES, startTcpProxy, type FrontendMessage, type ProxyMode } from '../helpers/tcp-proxy.js';
import { figures, killWorkers, startRunWorker, untilSettled, type RunningWorker } from './support.js';
import type { RunWorkerConfig } from './workers/run-worker.js';

const postgres = inject('postgres');
const PREFIX = freshSchemaPrefix();
const SEED = 1_110_011;
/** Put in the URLs of the bad-input cases: it must never show. Trust authentication ignores it. */
const PASSWORD = 's3cret-pass';
const STATUS_ENDPOINTS = new Set(['updateOrderStatuses', 'updateOrderStatus']);
/** Orders the fake Market changed "10 minutes ago", so a sync finds them. */
const BACKDATED = Date.now() - 10 * 60_000;
/** The run-worker's API timeout: leases are 3× that, 1.5 s. */
const WORKER_TIMEOUT_MS = 500;
const RETRY = { initialIntervalMs: 50, backoffCoefficient: 2, maximumIntervalMs: 1_000 } as const;

/** What each test opened, closed after it whatever happened. */
const opened: { close(): Promise<void> }[] = [];
function closing<T extends { close(): Promise<void> }>(resource: T): T {
  opened.push(resource);
  return resource;
}

afterEach(async () => {
  await killWorkers();
  for (const resource of opened.splice(0).reverse()) await resource.close().catch(() => undefined);
});

afterAll(async () => {
  if (postgres) await dropSchemas(PREFIX);
});

/** The rows a change request writes (orders, journal, outbox), read on a raw connection, not through the proxy. */
function changeRows(schema: string): Promise<Record<string, unknown[]>> {
  return withRawClient(async (client) => ({
    orders: (await client.query(`SELECT * FROM ${schema}.orders ORDER BY order_id`)).rows,
    journal: (await client.query(`SELECT * FROM ${schema}.journal ORDER BY seq`)).rows,
    outbox: (await client.query(`SELECT * FROM ${schema}.outbox ORDER BY id`)).rows,
  }));
}

/** The outbox rows `owner` holds a lease on, read on a raw connection. */
function leasedBy(schema: string, owner: string): Promise<{ order_id: number; state: string }[]> {
  return withRawClient(async (client) => (await client.query(`SELECT order_id::int, state FROM ${schema}.outbox WHERE lease_owner = $1 ORDER BY order_id`, [owner])).rows);
}

/** What `worker` has written to stderr so far, as it goes (support.ts gives it only once the worker exits). */
function stderrOf(worker: RunningWorker): () => string {
  let text = '';
  worker.child.stderr!.on('data', (chunk: string) => (text += chunk));
  return () => text;
}

/** A store error as the run loop reported it. */
interface ReportedStoreError {
  readonly error: StoreError;
  readonly retryInMs: number;
}

/** engine.run in this process, reporting its store errors; `ended` says whether it returned or threw. */
function startRunLoop(engine: Engine): { reported: ReportedStoreError[]; ended: () => boolean; stop: () => Promise<unknown> } {
  const controller = new AbortController();
  const reported: ReportedStoreError[] = [];
  let ended = false;
  const loop = engine
    .run({ signal: controller.signal, idleMs: 100, onStoreError: (error, retryInMs) => reported.push({ error, retryInMs }) })
    .finally(() => (ended = true));
  // A loop that throws is seen by the test through ended() before stop() rethrows it.
  loop.catch(() => undefined);
  // A test that failed midway leaves no loop running on the engine closed after it.
  closing({ close: () => (controller.abort(), loop.then(() => undefined, () => undefined)) });
  return {
    reported,
    ended: () => ended,
    stop: () => {
      controller.abort();
      return loop;
    },
  };
}

/**
 * Orders whose change the Market acted on (answered other than 420/5xx) more often than once plus
 * the read-backs that showed it unapplied (uncertain → queued in the journal): sent twice.
 */
async function sentTwice(market: FakeMarket, engine: Engine, orderIds: readonly number[]): Promise<number[]> {
  const actedOn = new Map<number, number>();
  for (const r of market.requests) {
    if (!STATUS_ENDPOINTS.has(r.endpoint ?? '') || r.status === undefined || r.status === 420 || r.status >= 500) continue;
    for (const id of orderIdsOf(r)) actedOn.set(id, (actedOn.get(id) ?? 0) + 1);
  }
  const twice: number[] = [];
  for (const id of orderIds) {
    const resent = (await engine.history(id)).filter((j) => j.from_change === 'uncertain' && j.to_change === 'queued').length;
    if ((actedOn.get(id) ?? 0) > 1 + resent) twice.push(id);
  }
  return twice;
}

/** Status requests the fake Market received that carried `orderId`. */
function statusRequestsFor(market: FakeMarket, orderId: number): number {
  return market.requests.filter((r) => STATUS_ENDPOINTS.has(r.endpoint ?? '') && orderIdsOf(r).includes(orderId)).length;
}

/** Every change applied at the Market exactly once, none re-applied, the database's outbox all accepted. */
async function expectEachAppliedOnce(market: FakeMarket, engine: Engine, plan: readonly RequestChangeCommand[]): Promise<void> {
  const stats = market.stats();
  expect(stats.duplicateApplications).toBe(0);
  expect(stats.illegalRequests).toBe(0);
  expect(plan.filter((c) => stats.appliedChanges[c.orderId] !== 1).map((c) => c.orderId)).toEqual([]);
  for (const c of plan) expect(market.getOrder(c.orderId), `order ${c.orderId}`).toMatchObject({ status: c.status, substatus: c.substatus });
  expect(await sentTwice(market, engine, plan.map((c) => c.orderId))).toEqual([]);
  expect((await engine.summary()).outbox).toMatchObject({ accepted: plan.length, queued: 0, sending: 0, uncertain: 0, rejected: 0, superseded: 0 });
}

/** The README's row for an error code in its table of errors: a code the tests see must be documented. */
function readmeErrorRow(code: string): string | undefined {
  return fs
    .readFileSync(path.join(ROOT, 'README.md'), 'utf8')
    .split('\n')
    .find((line) => line.startsWith(`| \`${code}\` |`));
}

/** The exit code docs/CLI.md gives for an error code, from its table of codes (`| \`A\`, \`B\` | exit | when |`). */
function documentedExit(code: string): number | undefined {
  for (const line of fs.readFileSync(path.join(ROOT, 'docs', 'CLI.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length > 3 && cells[1]!.split(',').some((c) => c.trim() === `\`${code}\``) && /^\d+$/.test(cells[2]!)) return Number(cells[2]);
  }
  return undefined;
}

const fbsReady = (orderId: number): RequestChangeCommand => ({ orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });

(postgres ? describe : describe.skip)('PostgreSQL faults between the engine and the server', () => {
  it('a connection dropped mid-transaction: DB_UNAVAILABLE, nothing of the batch lands; the same call then succeeds and each change reaches the Market once', { timeout: 180_000 }, async () => {
    const schema = `${PREFIX}_mid_tx`;
    const market = closing(await startMarket({ seed: SEED }));
    const ids = range(7_100_001, 5);
    market.seedOrders(seeds(FBS, ids[0]!, ids.length, 'PROCESSING', 'STARTED', BACKDATED));
    const proxy = closing(await startTcpProxy());
    const engine = closing(await engineFor(market, proxy.url, { postgres: { schema } }));
    expect((await engine.sync()).complete).toBe(true);
    const plan = ids.map(fbsReady);
    const before = await changeRows(schema);
    expect(before.orders).toHaveLength(5);

    // The transaction queues the orders one by one; the proxy cuts it as it sends the third
    // order's outbox row (each execution of a prepared statement is one Bind).
    let enqueues = 0;
    let cutAt: FrontendMessage | undefined;
    void proxy.cutAt((m) => m.type === 'B' && m.statement === 'ym_outbox_enqueue' && ++enqueues === 3).then((m) => (cutAt = m));
    const error = await expectStoreError(engine.requestChanges(plan), STORE_ERROR_CODES.unavailable);
    expect(cutAt?.sql).toMatch(/^INSERT INTO outbox/);
    expect(error.message).toMatch(/nothing was written/);
    expect(error.message).not.toMatch(/unknown/);

    // Read beside the proxy: not one row of the batch, the orders as they were.
    expect(await changeRows(schema)).toEqual(before);

    // The caller retries the same call once: it goes through (a new connection), and flush sends each change once.
    const retried = await engine.requestChanges(plan);
    expect(retried.refused).toEqual([]);
    expect(retried.queued).toHaveLength(plan.length);
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 120_000 });
    expect(report.open).toBe(0);
    await expectEachAppliedOnce(market, engine, plan);
    for (const id of ids) expect(statusRequestsFor(market, id), `order ${id}`).toBe(1);
  });

  it('the connection cut at the COMMIT that records a send’s answer: the run loop reports DB_UNAVAILABLE, goes on, reads the change back after its lease and never sends it twice', { timeout: 180_000 }, async () => {
    const schema = `${PREFIX}_recording`;
    const market = closing(await startMarket({ seed: SEED + 1 }));
    const ids = range(7_200_001, 4);
    market.seedOrders(seeds(FBS, ids[0]!, ids.length, 'PROCESSING', 'STARTED', BACKDATED));
    const direct = closing(await engineFor(market, POSTGRES_TEST_URL, { postgres: { schema } }));
    await direct.sync();
    const proxy = closing(await startTcpProxy());
    // A short API timeout: the send's lease (3× it) ends 3 s after it was claimed.
    const engine = closing(await engineFor(market, proxy.url, { postgres: { schema }, owner: 'recorder', api: { baseUrl: market.url, apiKey: API_KEY, timeoutMs: 1_000 } }));
    const plan = ids.map(fbsReady);

    // The send waits at the Market until the cut is armed, so the cut is sure to fall after the answer.
    market.hold((r) => r.endpoint === 'updateOrderStatuses');
    const loop = startRunLoop(engine);
    expect((await direct.requestChanges(plan)).refused).toEqual([]);
    await waitUntil(() => market.held().length === 1, 'the send reached the Market');
    // After the answer the first transaction to write an outbox state is the one recording it:
    // the cut falls on that connection's COMMIT, so the client cannot know whether it committed.
    let recording: number | undefined;
    let cutAt: FrontendMessage | undefined;
    void proxy
      .cutAt((m) => {
        if (m.type === 'B' && m.statement === 'ym_outbox_set_state') recording ??= m.connection;
        return m.connection === recording && m.type === 'Q' && /\bCOMMIT\b/i.test(m.sql ?? '');
      })
      .then((m) => (cutAt = m));
    market.release();
    await waitUntil(() => cutAt !== undefined, 'the proxy cut the COMMIT recording the answer');
    await waitUntil(() => loop.reported.length > 0 || loop.ended(), 'the run loop reported a store error');
    expect(loop.ended()).toBe(false);
    const first = loop.reported[0]!;
    expect(first.error).toBeInstanceOf(StoreError);
    expect(first.error.code).toBe(STORE_ERROR_CODES.unavailable);
    expect(first.error.message).toMatch(/whether the transaction committed is unknown/);
    expect(first.error.details).toMatchObject({ commitOutcome: 'unknown' });
    expect(first.retryInMs).toBeGreaterThan(0);

    const open = await untilSettled(async () => (await direct.stats()).open, { stop: loop.ended });
    expect(loop.ended(), 'the run loop ended by itself').toBe(false);
    expect(open).toBe(0);
    await loop.stop();
    await expectEachAppliedOnce(market, direct, plan);
    for (const id of ids) {
      expect(statusRequestsFor(market, id), `order ${id}`).toBe(1);
      // Settled by a read-back of the unknown outcome, not by the answer the cut lost.
      const history = await direct.history(id);
      expect(history.at(-1), `order ${id}`).toMatchObject({ event_type: 'MARKET.OBSERVED', source: 'readBack', from_change: 'uncertain', to_change: 'idle' });
    }
    const readBacks = market.requests.filter((r) => r.endpoint === 'getBusinessOrders' && r.status === 200 && orderIdsOf(r).some((id) => ids.includes(id)));
    expect(readBacks.length).toBeGreaterThan(0);
    for (const r of loop.reported) expect(r.error.code, r.error.message).toBe(STORE_ERROR_CODES.unavailable);
  });

  it('a process cut off while it holds leases: another takes its work over after the lease, reads back, sends nothing twice; the first recovers once the database is back', { timeout: 300_000 }, async () => {
    const schema = `${PREFIX}_cut_off`;
    const market = closing(await startMarket({ seed: SEED + 2 }));
    // Two batches (30 + 10): A leases both, and is cut off with one at the Market.
    const fbs = range(7_300_001, 40);
    const later = range(7_320_001, 5);
    market.seedOrders(seeds(FBS, fbs[0]!, fbs.length, 'PROCESSING', 'STARTED', BACKDATED));
    const direct = closing(await engineFor(market, POSTGRES_TEST_URL, { postgres: { schema } }));
    await direct.sync();
    const plan = fbs.map(fbsReady);
    expect((await direct.requestChanges(plan)).refused).toEqual([]);
    const config = (db: string, owner: string, seed: number): RunWorkerConfig => ({
      db,
      url: market.url,
      timeoutMs: WORKER_TIMEOUT_MS,
      postgres: { schema },
      owner,
      seed,
      retry: RETRY,
      idleMs: 100,
    });

    // A's sends wait at the Market (well within A's API timeout) while the test looks at the
    // database and cuts A off.
    market.hold((r) => r.endpoint === 'updateOrderStatuses');
    const proxyA = closing(await startTcpProxy());
    const a: RunningWorker = startRunWorker(config(proxyA.url, 'holder-a', SEED), API_KEY);
    const aStderr = stderrOf(a);
    await a.ready;
    await waitUntil(() => market.held().length > 0 || a.exited(), 'a batch of A reached the Market');
    const heldByA = await leasedBy(schema, 'holder-a');
    const inFlight = heldByA.filter((r) => r.state === 'sending').map((r) => r.order_id);
    expect(inFlight.length).toBeGreaterThan(0);
    proxyA.setMode(PROXY_MODES.refuse);
    expect(proxyA.cutAll()).toBeGreaterThan(0);
    const heldAtCut = market.held().length;
    // The Market acts on what A sent; A cannot record the answers.
    market.release();
    await waitUntil(() => /^warn \[DB_UNAVAILABLE\] store: /m.test(aStderr()) || a.exited(), 'A reported the lost database');
    expect(a.exited()).toBe(false);

    const b: RunningWorker = startRunWorker(config(POSTGRES_TEST_URL, 'taker-b', SEED + 1), API_KEY);
    await b.ready;
    const open = await untilSettled(async () => (await direct.stats()).open, { stop: () => a.exited() || b.exited() });
    expect([a.exited(), b.exited()]).toEqual([false, false]);
    expect(open).toBe(0);
    await expectEachAppliedOnce(market, direct, plan);
    // What A had in flight, B read back (its outcome unknown) instead of sending it again.
    for (const id of inFlight) {
      expect(statusRequestsFor(market, id), `order ${id}`).toBe(1);
      expect((await direct.history(id)).at(-1), `order ${id}`).toMatchObject({ event_type: 'MARKET.OBSERVED', source: 'readBack', from_change: 'uncertain', to_change: 'idle' });
    }
    const readBacks = market.requests.filter((r) => r.endpoint === 'getBusinessOrders' && orderIdsOf(r).some((id) => inFlight.includes(id)));
    expect(readBacks.length).toBeGreaterThan(0);
    console.log(
      figures('postgres-faults cut-off', {
        changes: plan.length,
        leasedByA: heldByA.length,
        inFlightAtCut: inFlight.length,
        heldAtCut,
        readBacks: readBacks.length,
        statusRequests: market.requests.filter((r) => STATUS_ENDPOINTS.has(r.endpoint ?? '')).length,
      }),
    );
    expect(await leasedBy(schema, 'holder-a')).toEqual([]);

    // The database is back for A; with B stopped, only A can send what is queued now.
    proxyA.setMode(PROXY_MODES.forward);
    b.child.kill('SIGTERM');
    const bExit = await b.done;
    expect(bExit.code, bExit.stderr).toBe(0);
    market.seedOrders(seeds(FBS, later[0]!, later.length, 'PROCESSING', 'STARTED'));
    await direct.trackOrders(later.map((orderId) => ({ orderId, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' })));
    expect((await direct.requestChanges(later.map(fbsReady))).refused).toEqual([]);
    expect(await untilSettled(async () => (await direct.stats()).open, { stop: () => a.exited() })).toBe(0);
    for (const id of later) expect(market.getOrder(id), `order ${id}`).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    expect(market.stats().duplicateApplications).toBe(0);
    a.child.kill('SIGTERM');
    const aExit = await a.done;
    expect(aExit.stderr).not.toMatch(/^fatal/m);
    expect(aExit.code, aExit.stderr).toBe(0);
    expect(aExit.stderr).toMatch(/^warn \[DB_UNAVAILABLE\] store: postgres:\/\/.*127\.0\.0\.1:\d+.* (is|became) unavailable/m);
  });

  describe.each([
    { mode: PROXY_MODES.refuse, what: 'closes every connection at once' },
    { mode: PROXY_MODES.blackhole, what: 'swallows every connection (the connect timeout bounds each try)' },
  ] as { mode: ProxyMode; what: string }[])('a server that $what for a while', ({ mode }) => {
    it('the run loop waits it out, reporting DB_UNAVAILABLE, and sends every change queued meanwhile once, as soon as it is back', { timeout: 180_000 }, async () => {
      const schema = `${PREFIX}_away_${mode}`;
      const market = closing(await startMarket({ seed: SEED + 3 }));
      const ids = range(mode === PROXY_MODES.refuse ? 7_400_001 : 7_410_001, 12);
      market.seedOrders(seeds(FBS, ids[0]!, ids.length, 'PROCESSING', 'STARTED', BACKDATED));
      const direct = closing(await engineFor(market, POSTGRES_TEST_URL, { postgres: { schema } }));
      await direct.sync();
      const proxy = closing(await startTcpProxy());
      // A store of its own for the engine: the connect timeout is a PostgresStore option.
      const store = closing(await PostgresStore.connect(proxy.url, { schema, connectTimeoutMs: 1_000 }));
      const engine = closing(await engineFor(market, proxy.url, { db: store, owner: `waiter-${mode}` }));
      const loop = startRunLoop(engine);
      await waitUntil(() => proxy.open() > 0, 'the engine connected');

      proxy.setMode(mode);
      expect(proxy.cutAll()).toBeGreaterThan(0);
      const plan = ids.map(fbsReady);
      expect((await direct.requestChanges(plan)).refused).toEqual([]);
      // Several tries in a row fail; meanwhile nothing is sent.
      await waitUntil(() => loop.reported.length >= 3 || loop.ended(), 'the run loop reported three store errors', 120_000);
      expect(loop.ended()).toBe(false);
      expect(market.requests.filter((r) => STATUS_ENDPOINTS.has(r.endpoint ?? ''))).toEqual([]);
      expect((await direct.stats()).outbox).toMatchObject({ queued: plan.length });

      proxy.setMode(PROXY_MODES.forward);
      const open = await untilSettled(async () => (await direct.stats()).open, { stop: loop.ended });
      expect(loop.ended(), 'the run loop ended by itself').toBe(false);
      expect(open).toBe(0);
      await loop.stop();
      await expectEachAppliedOnce(market, direct, plan);
      for (const id of ids) expect(statusRequestsFor(market, id), `order ${id}`).toBe(1);

      const codes = new Set(loop.reported.map((r) => r.error.code));
      expect([...codes]).toEqual([STORE_ERROR_CODES.unavailable]);
      expect(readmeErrorRow(STORE_ERROR_CODES.unavailable), 'README documents DB_UNAVAILABLE').toBeDefined();
      for (const { error, retryInMs } of loop.reported) {
        // Cut while idle, or at worst in the middle of a pass (even at its COMMIT).
        expect(error.message).toMatch(/ (is|became) unavailable \(/);
        // A capped backoff, never a hot loop.
        expect(retryInMs).toBeGreaterThanOrEqual(50);
        expect(retryInMs).toBeLessThanOrEqual(5_000);
      }
    });
  });

  describe('bad database URLs: a typed error, a stable documented code, the password nowhere', () => {
    /** Each URL with its expected code and reason; the schema is never created. */
    async function badUrls(): Promise<{ what: string; url: string; reason: RegExp; sqlState?: string }[]> {
      const server = new URL(POSTGRES_TEST_URL);
      const at = (user: string, database: string, port = server.port || '5432') => `postgres://${user}:${PASSWORD}@${server.hostname}:${port}/${database}`;
      const test = server.pathname.slice(1);
      const user = decodeURIComponent(server.username) || 'postgres';
      return [
        { what: 'a refused connection', url: at(user, test, new URL(await unreachableUrl()).port), reason: /ECONNREFUSED/ },
        { what: 'an unknown database', url: at(user, 'ym_no_such_database'), reason: /database "ym_no_such_database" does not exist/, sqlState: '3D000' },
        { what: 'a role that does not exist', url: at('ym_no_such_role', test), reason: /role "ym_no_such_role" does not exist/, sqlState: '28000' },
        { what: 'a malformed URL', url: `postgres://${user}:${PASSWORD}@${server.hostname}:not-a-port/${test}`, reason: /Invalid URL/ },
      ];
    }

    it('createEngine: DB_CANNOT_OPEN naming the redacted URL and the reason', async () => {
      const schema = `${PREFIX}_never`;
      for (const { what, url, reason, sqlState } of await badUrls()) {
        expect(url, what).toContain(PASSWORD);
        const error = await expectStoreError(createEngine({ db: url, postgres: { schema } }), STORE_ERROR_CODES.cannotOpen);
        expect(error.message, what).toMatch(reason);
        expect(error.message, what).toContain(':***@');
        if (sqlState) expect(error.details, what).toMatchObject({ sqlState });
        for (const shown of [error.message, error.stack ?? '', JSON.stringify(error), JSON.stringify(error.details), inspect(error, { depth: 10 })]) {
          expect(shown, what).not.toContain(PASSWORD);
        }
      }
      expect(readmeErrorRow(STORE_ERROR_CODES.cannotOpen)).toBeDefined();
      expect(await withRawClient(async (client) => (await client.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [schema])).rows)).toEqual([{ n: 0 }]);
    });

    it('the CLI: `status --db <url>` prints one error line with the code and exits with the documented code', { timeout: 300_000 }, async () => {
      // The CLI runs the built code (dist/), built here when older than the sources.
      await ensureBuilt();
      // The refused port is test/cli.test.ts's; these are the rest.
      const cases = (await badUrls()).filter((c) => c.what !== 'a refused connection');
      const results = await Promise.all(cases.map((c) => runCli(['--db', c.url, 'status'])));
      const exit = documentedExit(STORE_ERROR_CODES.cannotOpen);
      expect(exit).toBe(2);
      results.forEach((r, i) => {
        const { what, reason } = cases[i]!;
        expect(r.code, `${what}: ${r.stderr}`).toBe(exit);
        expect(r.stderr, what).toMatch(/^error \[DB_CANNOT_OPEN\]: Cannot open database postgres:\/\/[^:]+:\*\*\*@/m);
        expect(r.stderr, what).toMatch(reason);
        expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
        expect(r.stdout + r.stderr, what).not.toContain(PASSWORD);
      });
    });
  });
});
