// Issue #4, sync: engine.sync() reads what the fake Market changed since a stored cursor
// (getBusinessOrders, 50 a page), over loopback HTTP into a real SQLite file. The cursor moves
// in the transaction that stores a page, so a crash or a failure between pages repeats at most
// that page and never skips one.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { SyncPageTokenRepeatedError } from '../src/engine/errors.js';
import { syncCursorName, type SyncCursor, type SyncProgress } from '../src/engine/order-sync.js';
import type { FakeMarket } from '../src/testing/index.js';
import {
  API_KEY,
  BUSINESS_A,
  BUSINESS_B,
  CAMPAIGNS,
  DBS,
  FBS,
  LAAS,
  engineFor,
  range,
  recordingClient,
  requestsTo,
  runChild,
  seeds,
  tempDbPath,
  type RecordingClient,
} from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

const TEN_MINUTES_AGO = (): number => Date.now() - 10 * 60_000;
/** Business A has FBS 70 + DBS 50 = 120 orders: three pages of 50. */
const FBS_IDS = range(10_001, 70);
const DBS_IDS = range(20_001, 50);
const LAAS_IDS = range(30_001, 20);

const t = useEffectsTest();
const { engines, clients, dbs, errors } = t;
let market: FakeMarket | undefined;

async function setup(options: { campaigns?: typeof CAMPAIGNS } = {}) {
  market = await t.start(options.campaigns ? { campaigns: options.campaigns } : {});
  const old = TEN_MINUTES_AGO();
  market.seedOrders([...seeds(FBS, FBS_IDS[0]!, 70, 'PROCESSING', 'STARTED', old), ...seeds(DBS, DBS_IDS[0]!, 50, 'PROCESSING', 'STARTED', old), ...seeds(LAAS, LAAS_IDS[0]!, 20, 'PROCESSING', 'STARTED', old)]);
  const db = tempDbPath();
  dbs.push(db);
  return { market, db };
}

async function open(m: FakeMarket, db: string, client?: RecordingClient, api: { timeoutMs?: number } = {}): Promise<Engine> {
  const engine = await engineFor(m, db, client ? { client } : api.timeoutMs ? { api: { baseUrl: m.url, apiKey: API_KEY, timeoutMs: api.timeoutMs } } : {});
  engines.push(engine);
  return engine;
}

async function cursorOf(engine: Engine, businessId: number): Promise<SyncCursor | undefined> {
  const raw = await engine.store.read((tx) => tx.cursors.get(syncCursorName(businessId)));
  return raw === undefined ? undefined : (JSON.parse(raw) as SyncCursor);
}

const query = (path: string): URLSearchParams => new URLSearchParams(path.split('?')[1] ?? '');

describe('sync pages through getBusinessOrders', () => {
  it('imports more than 50 orders page by page and stores the cursor', async () => {
    const { market: m, db } = await setup();
    const engine = await open(m, db);
    const before = Date.now();
    const result = await engine.sync();
    expect(result).toMatchObject({ pages: 3 + 1, seen: 140, created: 140, updated: 0, skipped: 0 });
    const reads = requestsTo(m, 'getBusinessOrders', BUSINESS_A);
    expect(reads).toHaveLength(3);
    expect(reads.map((r) => query(r.path).get('limit'))).toEqual(['50', '50', '50']);
    expect(reads[0]!.path).not.toMatch(/pageToken/);
    expect(reads.slice(1).every((r) => query(r.path).get('pageToken'))).toBe(true);
    // Only the configured campaigns of the business are asked for.
    expect(reads.every((r) => JSON.stringify((r.body as { campaignIds: number[] }).campaignIds) === JSON.stringify([FBS.campaignId, DBS.campaignId]))).toBe(true);
    for (const id of [...FBS_IDS, ...DBS_IDS, ...LAAS_IDS]) expect(await engine.getOrder(id)).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED' });

    // The sweep is complete: the cursor has no page token and starts the next sweep a minute
    // before this one began (clocks differ; stale news is ignored anyway).
    const cursor = (await cursorOf(engine, BUSINESS_A))!;
    expect(cursor.pageToken).toBeUndefined();
    const startedAt = Date.parse(cursor.sweepStartedAt);
    expect(startedAt).toBeGreaterThanOrEqual(before - 5);
    expect(Date.parse(cursor.updatedFrom!)).toBe(startedAt - 60_000);
    expect((await cursorOf(engine, BUSINESS_B))?.pageToken).toBeUndefined();

    // The cursor survives the process: a new engine on the file reads only what changed since.
    await engine.close();
    const again = await open(m, db);
    m.setOrderStatus(FBS_IDS[0]!, 'CANCELLED', 'USER_CHANGED_MIND');
    const second = await again.sync();
    expect(second).toMatchObject({ seen: 1, created: 0, updated: 1 });
    const read = requestsTo(m, 'getBusinessOrders', BUSINESS_A).at(-1)!;
    expect((read.body as { dates?: { updateDateFrom?: string } }).dates?.updateDateFrom).toBe(cursor.updatedFrom);
  });

  it('a second sync reads only the orders updated since, and observes Market-side moves', async () => {
    const { market: m, db } = await setup();
    const engine = await open(m, db);
    await engine.sync();
    const readsBefore = m.requests.length;

    m.setOrderStatus(FBS_IDS[5]!, 'PROCESSING', 'READY_TO_SHIP');
    m.setOrderStatus(DBS_IDS[7]!, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
    m.setOrderStatus(LAAS_IDS[3]!, 'CANCELLED', 'USER_CHANGED_MIND');
    const result = await engine.sync();
    expect(result).toMatchObject({ pages: 2, seen: 3, created: 0, updated: 3, skipped: 0 });
    expect(m.requests.length - readsBefore).toBe(2); // one page per business
    expect(await engine.getOrder(FBS_IDS[5]!)).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP', marketState: 'PROCESSING.READY_TO_SHIP' });
    expect(await engine.getOrder(DBS_IDS[7]!)).toMatchObject({ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', marketState: 'DELIVERY' });
    expect(await engine.getOrder(LAAS_IDS[3]!)).toMatchObject({ status: 'CANCELLED', substatus: 'USER_CHANGED_MIND', marketState: 'CANCELLED' });
    expect((await engine.history(DBS_IDS[7]!)).at(-1)).toMatchObject({ source: 'sync', from_status: 'PROCESSING', to_status: 'DELIVERY' });

    // Nothing changed: the next sync reads again (the one-minute overlap) but moves nothing.
    const quiet = await engine.sync();
    expect(quiet.created).toBe(0);
    expect((await engine.getOrder(FBS_IDS[5]!)).substatus).toBe('READY_TO_SHIP');
  });

  it('stores statuses no list has verbatim, without crashing', async () => {
    const { market: m, db } = await setup();
    m.seedOrders([
      { id: 40_001, campaignId: FBS.campaignId, status: 'TELEPORTED', substatus: 'BEAMED_UP' },
      { id: 40_002, campaignId: DBS.campaignId, status: 'PROCESSING', substatus: 'WAITING_FOR_ALIENS' },
    ]);
    const engine = await open(m, db);
    const result = await engine.sync();
    expect(result.created).toBe(142);
    expect(await engine.getOrder(40_001)).toMatchObject({ status: 'TELEPORTED', substatus: 'BEAMED_UP', marketState: 'UNRECOGNIZED' });
    expect(await engine.getOrder(40_002)).toMatchObject({ status: 'PROCESSING', substatus: 'WAITING_FOR_ALIENS', marketState: 'PROCESSING.OTHER' });
    // Unknown is not a licence: no seller change is judged safe from an unknown status.
    let refused: unknown;
    try {
      await engine.requestChange({ orderId: 40_001, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    } catch (e) {
      refused = e;
      errors.push(e);
    }
    expect(refused).toMatchObject({ code: 'CHANGE_REFUSED' });
    // And when the Market later reports a known status, the order follows.
    m.setOrderStatus(40_001, 'CANCELLED', 'SHOP_FAILED');
    await engine.sync();
    expect(await engine.getOrder(40_001)).toMatchObject({ status: 'CANCELLED', marketState: 'CANCELLED' });
  });

  it('skips orders of campaigns the engine is not configured for', async () => {
    const stranger = { campaignId: 5199, businessId: BUSINESS_A, model: 'FBS' as const };
    const { market: m, db } = await setup({ campaigns: [...CAMPAIGNS, stranger] });
    m.seedOrders(seeds(stranger, 50_001, 30));
    // A Market that ignores the campaignIds filter still cannot make the engine take them.
    const client = recordingClient(m, {
      hooks: {
        getBusinessOrders: (inner, businessId, body, q) => {
          const { campaignIds: _ignored, ...rest } = body;
          return inner.getBusinessOrders(businessId, rest, q);
        },
      },
    });
    clients.push(client);
    const engine = await open(m, db, client);
    const result = await engine.sync();
    expect(result).toMatchObject({ seen: 170, created: 140, skipped: 30 });
    for (const id of range(50_001, 30)) expect(await engine.findOrder(id)).toBeUndefined();
    expect((await engine.summary()).orders).toBe(140);

    // Through the real filter they are not even read.
    const plain = await open(m, tempDbPath());
    const filtered = await plain.sync();
    expect(filtered).toMatchObject({ seen: 140, created: 140, skipped: 0 });
  });
});

describe('the cursor advances only with a stored page', () => {
  it('a failure on the second page keeps the first page and the cursor at the second; the next sync resumes there', async () => {
    const { market: m, db } = await setup();
    let pagesOfA = 0;
    const client = recordingClient(m, {
      hooks: {
        getBusinessOrders: (inner, businessId, body, q) => {
          // The Market fails the second page (a real 500 from the fake), once.
          if (businessId === BUSINESS_A && ++pagesOfA === 2) m.inject({ kind: 'status500', endpoint: 'getBusinessOrders' });
          return inner.getBusinessOrders(businessId, body, q);
        },
      },
    });
    clients.push(client);
    const engine = await open(m, db, client);
    const failure = await engine.sync().then(
      () => undefined,
      (e: unknown) => e,
    );
    errors.push(failure);
    expect(failure).toMatchObject({ code: 'MARKET_SERVER_ERROR', httpStatus: 500 });

    const reads = requestsTo(m, 'getBusinessOrders', BUSINESS_A);
    expect(reads.map((r) => r.status)).toEqual([200, 500]);
    const cursor = (await cursorOf(engine, BUSINESS_A))!;
    expect(cursor.pageToken).toBe(query(reads[1]!.path).get('pageToken'));
    expect(cursor.updatedFrom).toBeUndefined(); // the first sweep is not complete
    expect((await engine.summary()).orders).toBe(50); // exactly the first page
    const firstPage = (JSON.parse(reads[0]!.responseBody!) as { orders: { orderId: number }[] }).orders.map((o) => o.orderId);
    for (const id of firstPage) expect(await engine.findOrder(id)).toBeDefined();

    const resumed = await engine.sync();
    expect(resumed).toMatchObject({ pages: 2 + 1, created: 90 });
    const after = requestsTo(m, 'getBusinessOrders', BUSINESS_A);
    expect(query(after[2]!.path).get('pageToken')).toBe(cursor.pageToken);
    expect((await engine.summary()).orders).toBe(140);
    expect((await cursorOf(engine, BUSINESS_A))?.pageToken).toBeUndefined();
  });

  it('a page that cannot be stored leaves nothing of it and the cursor where it was', async () => {
    const { market: m, db } = await setup();
    const engine = await open(m, db);
    // The engine already knows DBS order 20 050 as an FBS order: page 3 will not fit.
    await engine.trackOrders([{ orderId: DBS_IDS[49]!, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    const failure = await engine.sync().then(
      () => undefined,
      (e: unknown) => e,
    );
    errors.push(failure);
    expect(failure).toMatchObject({ code: 'IMPORT_CONFLICT' });
    const reads = requestsTo(m, 'getBusinessOrders', BUSINESS_A);
    expect(reads).toHaveLength(3);
    const third = (JSON.parse(reads[2]!.responseBody!) as { orders: { orderId: number }[] }).orders.map((o) => o.orderId);
    expect(third).toContain(DBS_IDS[49]);
    // Pages 1 and 2 are stored; nothing of page 3; the cursor still names page 3.
    expect((await engine.summary()).orders).toBe(1 + 100);
    for (const id of third.filter((id) => id !== DBS_IDS[49])) expect(await engine.findOrder(id)).toBeUndefined();
    expect((await cursorOf(engine, BUSINESS_A))?.pageToken).toBe(query(reads[2]!.path).get('pageToken'));
  });

  it('a process killed between pages resumes from the stored cursor, skipping nothing', async () => {
    const { market: m, db } = await setup();
    // Create the schema and campaigns, then let a child process sync and die asking for page 2.
    await (await open(m, db)).close();
    const child = await runChild({ YM_EFFECTS_CHILD: 'syncKill', YM_DB: db, YM_API_URL: m.url, YM_API_KEY: API_KEY, YM_KILL_AT_PAGE: '2' });
    errors.push(child.stdout, child.stderr);
    expect(child.signal).toBe('SIGKILL');
    expect(child.stdout).not.toMatch(/sync finished/);

    const engine = await open(m, db);
    expect((await engine.summary()).orders).toBe(50);
    const cursor = (await cursorOf(engine, BUSINESS_A))!;
    expect(cursor.pageToken).toBeDefined();
    const result = await engine.sync();
    expect(result.created).toBe(90);
    expect((await engine.summary()).orders).toBe(140);
    const reads = requestsTo(m, 'getBusinessOrders', BUSINESS_A);
    // The child read page 1 only; the resumed sweep asks for page 2 first, with the stored token.
    expect(reads).toHaveLength(1 + 2);
    expect(query(reads[1]!.path).get('pageToken')).toBe(cursor.pageToken);
  });
});

describe('a spent read budget', () => {
  it('stops the sweep at its cursor with resumeAt instead of waiting for the window, and run() keeps sending meanwhile', async () => {
    market = await t.start({ quotas: { getBusinessOrders: { limit: 2, windowMs: 60_000 } } });
    market.seedOrders(seeds(FBS, FBS_IDS[0]!, 120));
    const db = tempDbPath();
    dbs.push(db);
    const engine = await open(market, db);
    const first = await engine.sync();
    // Two pages of business A (its budget is then spent) and the empty page of business B.
    expect(first.pages).toBe(3);
    expect(first.resumeAt).toBeGreaterThan(Date.now() + 30_000);
    // The two pages read are stored; the third waits for the next window.
    let tracked = 0;
    for (const id of range(FBS_IDS[0]!, 120)) if ((await engine.findOrder(id)) !== undefined) tracked++;
    expect(tracked).toBe(100);
    await engine.requestChange({ orderId: FBS_IDS[0]!, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    const controller = new AbortController();
    const started = Date.now();
    const running = engine.run({ signal: controller.signal, syncIntervalMs: 1_000, idleMs: 50 });
    while ((await engine.getOrder(FBS_IDS[0]!)).change !== 'idle' && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await running;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await engine.getOrder(FBS_IDS[0]!)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
  });
});

// ---- sync must always end (issue 9, item 1) --------------------------------------------------

/** Polls `condition` until it holds; the test's own timeout bounds the wait. */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((r) => setTimeout(r, 10));
}

interface PagingRequest {
  readonly businessId: number;
  readonly pageToken: string | undefined;
}

/**
 * A minimal Market on loopback that serves only getBusinessOrders, each answer from `answer`
 * (a body, or an HTTP status to fail with), so a test can make it lead a sweep in a circle.
 */
async function pagingMarket(answer: (request: PagingRequest, n: number) => { orders: unknown[]; nextPageToken?: string } | number) {
  const requests: PagingRequest[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const request = { businessId: Number(/\/v1\/businesses\/(\d+)\/orders$/.exec(url.pathname)?.[1]), pageToken: url.searchParams.get('pageToken') ?? undefined };
      requests.push(request);
      const got = answer(request, requests.length);
      const [status, body] = typeof got === 'number' ? [got, { status: 'ERROR', errors: [{ code: 'INTERNAL_ERROR' }] }] : [200, { orders: got.orders, paging: got.nextPageToken ? { nextPageToken: got.nextPageToken } : {} }];
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function businessOrders(firstId: number, count: number): unknown[] {
  return range(firstId, count).map((orderId) => ({ orderId, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: new Date(TEN_MINUTES_AGO()).toISOString() }));
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  const failure = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  errors.push(failure);
  return failure;
}

describe('a page token the Market repeats', () => {
  it('ends the sweep with SYNC_PAGE_TOKEN_REPEATED, stores what it read, and leaves a cursor the next sync resumes from', async () => {
    // Like an OpenAPI mock: every page of business A names the same next page, "SAME".
    let broken = true;
    const m = await pagingMarket(({ businessId, pageToken }, n) => {
      if (n > 20) return 500; // today's endless loop ends here instead of hanging the suite
      if (businessId !== BUSINESS_A) return { orders: [] };
      if (pageToken === undefined) return { orders: businessOrders(60_001, 3), nextPageToken: 'SAME' };
      return broken ? { orders: businessOrders(60_004, 3), nextPageToken: 'SAME' } : { orders: businessOrders(60_004, 3) };
    });
    const db = tempDbPath();
    dbs.push(db);
    const engine = await createEngine({ db, campaigns: CAMPAIGNS.map(({ campaignId, businessId, model }) => ({ campaignId, businessId, model })), api: { baseUrl: m.url, apiKey: API_KEY, timeoutMs: 5_000 } });
    engines.push(engine);
    try {
      const failure = await failureOf(engine.sync());
      expect(failure).toBeInstanceOf(SyncPageTokenRepeatedError);
      expect(failure).toMatchObject({ code: 'SYNC_PAGE_TOKEN_REPEATED', businessId: BUSINESS_A, pageToken: 'SAME', pages: 2 });
      expect(m.requests).toEqual([{ businessId: BUSINESS_A, pageToken: undefined }, { businessId: BUSINESS_A, pageToken: 'SAME' }]);
      // Both pages are stored; the cursor stays on the page whose answer repeated the token.
      expect((await engine.summary()).orders).toBe(6);
      const cursor = (await cursorOf(engine, BUSINESS_A))!;
      expect(cursor).toMatchObject({ pageToken: 'SAME' });
      expect(cursor.updatedFrom).toBeUndefined();

      // Still broken: a later sync costs one request and ends with the same error.
      const again = await failureOf(engine.sync());
      expect(again).toMatchObject({ code: 'SYNC_PAGE_TOKEN_REPEATED', pages: 1 });
      expect(m.requests.slice(2)).toEqual([{ businessId: BUSINESS_A, pageToken: 'SAME' }]);
      expect(await cursorOf(engine, BUSINESS_A)).toEqual(cursor);

      // Mended: the next sync resumes from the stored page and completes the sweep.
      broken = false;
      const mended = await engine.sync();
      expect(mended).toMatchObject({ complete: true, pages: 2, seen: 3, created: 0 });
      expect(m.requests.slice(3)).toEqual([{ businessId: BUSINESS_A, pageToken: 'SAME' }, { businessId: BUSINESS_B, pageToken: undefined }]);
      expect((await cursorOf(engine, BUSINESS_A))?.pageToken).toBeUndefined();
      expect((await cursorOf(engine, BUSINESS_A))?.updatedFrom).toBeDefined();
    } finally {
      await m.close();
    }
  });
});

describe('a page cap per sweep', () => {
  it('maxPagesPerSweep stops each sweep at its cursor; the next sync resumes it and reads every page once', async () => {
    const { market: m, db } = await setup();
    const engine = await open(m, db);
    const first = await engine.sync({ maxPagesPerSweep: 2 });
    // Business A: 2 of its 3 pages; business B: its only page.
    expect(first).toMatchObject({ pages: 3, seen: 120, created: 120, complete: false, stoppedBy: 'pageCap' });
    const readsOfA = requestsTo(m, 'getBusinessOrders', BUSINESS_A);
    expect(readsOfA).toHaveLength(2);
    expect((await cursorOf(engine, BUSINESS_A))?.pageToken).toBeDefined();
    expect((await cursorOf(engine, BUSINESS_B))?.pageToken).toBeUndefined();

    const second = await engine.sync({ maxPagesPerSweep: 2 });
    expect(second).toMatchObject({ complete: true, created: 20 });
    expect(second.stoppedBy).toBeUndefined();
    const tokens = requestsTo(m, 'getBusinessOrders', BUSINESS_A).map((r) => query(r.path).get('pageToken'));
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(3);
    expect((await engine.summary()).orders).toBe(140);
  });

  it('refuses a cap that is not a positive integer before reading anything', async () => {
    const { market: m, db } = await setup();
    const engine = await open(m, db);
    for (const maxPagesPerSweep of [0, -1, 1.5]) {
      const failure = await failureOf(engine.sync({ maxPagesPerSweep }));
      expect(failure).toMatchObject({ code: 'INVALID_COMMAND', issues: [expect.objectContaining({ path: 'maxPagesPerSweep' })] });
    }
    expect(m.requests).toHaveLength(0);
  });
});

describe('sync({ signal, onProgress })', () => {
  it('reports every stored page, and an abort between pages stops the sweep at its cursor', async () => {
    const { market: m, db } = await setup();
    const engine = await open(m, db);
    const controller = new AbortController();
    const progress: SyncProgress[] = [];
    const stopped = await engine.sync({
      signal: controller.signal,
      onProgress: (p) => {
        progress.push(p);
        if (p.pages === 1) controller.abort();
      },
    });
    expect(stopped).toMatchObject({ pages: 1, seen: 50, created: 50, complete: false, stoppedBy: 'aborted' });
    expect(progress).toEqual([{ businessId: BUSINESS_A, pages: 1, seen: 50, created: 50, updated: 0, skipped: 0 }]);
    // Neither A's second page nor B's first was asked for.
    expect(requestsTo(m, 'getBusinessOrders')).toHaveLength(1);
    expect((await engine.summary()).orders).toBe(50);

    const rest: SyncProgress[] = [];
    const resumed = await engine.sync({ onProgress: (p) => rest.push(p) });
    expect(resumed).toMatchObject({ complete: true, pages: 3, seen: 90, created: 90 });
    expect(rest.map((p) => [p.businessId, p.pages, p.seen, p.created])).toEqual([
      [BUSINESS_A, 1, 50, 50],
      [BUSINESS_A, 2, 70, 70],
      [BUSINESS_B, 3, 90, 90],
    ]);
    expect((await engine.summary()).orders).toBe(140);
  });

  it('an abort abandons the read in flight instead of waiting for the request timeout', async () => {
    const { market: m, db } = await setup();
    m.inject({ kind: 'hang', endpoint: 'getBusinessOrders', times: Infinity });
    // A timeout far beyond the test's own: only the abort can end this read in time.
    const engine = await open(m, db, undefined, { timeoutMs: 120_000 });
    const controller = new AbortController();
    const syncing = engine.sync({ signal: controller.signal });
    await until(() => requestsTo(m, 'getBusinessOrders').length === 1);
    controller.abort();
    const result = await syncing;
    expect(result).toMatchObject({ pages: 0, seen: 0, complete: false, stoppedBy: 'aborted' });
    expect(await cursorOf(engine, BUSINESS_A)).toBeUndefined();
    // A read abandoned on purpose is no Market failure.
    expect(await engine.stats()).toMatchObject({ marketCalls: { answered: 0, failed: 0 }, lastErrors: [] });
    m.clearFaults();
    expect(await engine.sync()).toMatchObject({ complete: true, created: 140 });
  });
});

describe('run() and the sweep', () => {
  it('passes its signal to the sweep: an abort ends run() while a sync read hangs', async () => {
    const { market: m, db } = await setup();
    m.inject({ kind: 'hang', endpoint: 'getBusinessOrders', times: Infinity });
    const engine = await open(m, db, undefined, { timeoutMs: 120_000 });
    const controller = new AbortController();
    const running = engine.run({ signal: controller.signal, syncIntervalMs: 60_000, idleMs: 50 });
    await until(() => requestsTo(m, 'getBusinessOrders').length === 1);
    controller.abort();
    const report = await running;
    expect(report.open).toBe(0);
    expect(requestsTo(m, 'getBusinessOrders')).toHaveLength(1);
  });

  it('reports a repeated page token through onSyncError and keeps sending', async () => {
    const { market: m, db } = await setup();
    // Between the engine and the fake: every sync page is the first one again, named "SAME".
    const client = recordingClient(m, {
      hooks: {
        getBusinessOrders: async (inner, businessId, body, q, options) => {
          if (body.orderIds !== undefined) return inner.getBusinessOrders(businessId, body, q, options);
          const { pageToken: _same, ...first } = q ?? {};
          const page = await inner.getBusinessOrders(businessId, body, first, options);
          return { ...page, body: { ...page.body, paging: { nextPageToken: 'SAME' } } };
        },
      },
    });
    clients.push(client);
    const engine = await open(m, db, client);
    await engine.trackOrders([{ orderId: FBS_IDS[0]!, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    await engine.requestChange({ orderId: FBS_IDS[0]!, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    const syncErrors: unknown[] = [];
    const controller = new AbortController();
    const running = engine.run({ signal: controller.signal, syncIntervalMs: 60_000, idleMs: 50, onSyncError: (e) => void syncErrors.push(e) });
    let ended = false;
    void running.finally(() => (ended = true)).catch(() => undefined);
    await until(async () => ended || (await engine.getOrder(FBS_IDS[0]!)).change === 'idle' || requestsTo(m, 'getBusinessOrders').length > 50);
    controller.abort();
    await running;
    errors.push(...syncErrors);
    expect(syncErrors[0]).toMatchObject({ code: 'SYNC_PAGE_TOKEN_REPEATED', businessId: BUSINESS_A, pageToken: 'SAME' });
    expect(await engine.getOrder(FBS_IDS[0]!)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
    expect(m.getOrder(FBS_IDS[0]!)?.substatus).toBe('READY_TO_SHIP');
  });

  it('reads a long sweep a page cap at a time and sends between the parts', async () => {
    const { market: m, db } = await setup();
    const engine = await open(m, db);
    await engine.trackOrders([{ orderId: FBS_IDS[0]!, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    await engine.requestChange({ orderId: FBS_IDS[0]!, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    const controller = new AbortController();
    const running = engine.run({ signal: controller.signal, syncIntervalMs: 60_000, idleMs: 50, maxPagesPerSweep: 1 });
    await until(async () => (await engine.summary()).orders === 140 && (await engine.getOrder(FBS_IDS[0]!)).change === 'idle');
    controller.abort();
    await running;
    const log = m.requests.map((r) => r.endpoint);
    const sent = log.indexOf('updateOrderStatuses');
    const lastPageOfA = m.requests.indexOf(requestsTo(m, 'getBusinessOrders', BUSINESS_A)[2]!);
    // The change went out after the first page, long before the sweep's last.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(lastPageOfA);
    expect(await engine.getOrder(FBS_IDS[0]!)).toMatchObject({ substatus: 'READY_TO_SHIP', change: 'idle' });
  });
});
