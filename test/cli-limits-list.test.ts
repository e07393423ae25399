// `ym-orders list` and `ym-orders limits` (issue 13) as real child processes of the built CLI, on a
// SQLite file seeded through the engine: changes queued at chosen times (stuck ones two hours
// ago), changes sent to a fake Market on loopback (budgets), a 420 (a blocked budget), and a
// request held at the Market while `limits` looks (a request in flight).

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine.js';
import type { CampaignConfig } from '../src/engine/commands.js';
import { startFakeMarket, type FakeMarket } from '../src/testing/index.js';
import { ensureBuilt, filesContaining, json, killRunning, makeTempDir, runCli, TEST_API_KEY, transcript } from './helpers/cli.js';

const A: CampaignConfig = { campaignId: 701, businessId: 71, model: 'FBS' };
const B: CampaignConfig = { campaignId: 702, businessId: 72, model: 'FBS' };
const C: CampaignConfig = { campaignId: 703, businessId: 73, model: 'FBS' };
/** A campaign with more orders than the CLI reads in one page. */
const BIG: CampaignConfig = { campaignId: 704, businessId: 74, model: 'FBS' };
const CAMPAIGNS = [A, B, C, BIG];
const BIG_COUNT = 2_500;
const HOUR = 3_600_000;
const READY = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;

interface Listed {
  orderId: number;
  campaignId: number;
  model: string;
  status: string;
  substatus: string | null;
  change: string;
  observedAt: number;
  updatedAt: number;
}

interface Limits {
  db: string;
  now: number;
  budgets: {
    resource: string;
    operation: string;
    scope: string;
    capacity: number;
    remaining: number;
    windowEndsAt: number;
    windowOver: boolean;
    blockedUntil: number | null;
    blocked: boolean;
    lastRateLimitedAt: number | null;
    inFlight: number;
  }[];
  scopes: { scope: string; inFlight: number }[];
  rateLimited: number;
}

let market: FakeMarket;
/** The engine clock just before and just after the flush that got B's 420. */
let rateLimitedWithin: { from: number; to: number };
let dir: string;
let db: string;
/** What the seeding ends with: the stuck ones' changes were queued two hours before it, 703 30 minutes before. */
const ids = {
  stuck: [7_010_001, 7_010_002],
  recent: 7_010_003,
  idleOld: 7_010_004,
  unknownStatus: 7_010_005,
  sentB: [7_020_001, 7_020_002],
  rateLimitedB: 7_020_003,
  sentC: 7_030_001,
  heldC: 7_030_002,
};

function engineAt(clock: () => number, api = false): Promise<Engine> {
  return createEngine({ db, campaigns: CAMPAIGNS, clock, ...(api ? { api: { baseUrl: market.url, apiKey: TEST_API_KEY } } : {}) });
}

/** `--db` and the database file: no --campaign, list and limits read the stored ones. */
const cli = (args: readonly string[]) => runCli(['--db', db, ...args]);

beforeAll(async () => {
  await ensureBuilt();
  dir = makeTempDir();
  db = path.join(dir, 'orders.db');
  market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: CAMPAIGNS });
  const start = Date.now();
  const observedAt = start - 3 * HOUR;
  market.seedOrders([...ids.stuck, ids.recent].map((id) => ({ id, campaignId: A.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: observedAt })));
  market.seedOrders([...ids.sentB, ids.rateLimitedB].map((id) => ({ id, campaignId: B.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: observedAt })));
  market.seedOrders([ids.sentC, ids.heldC].map((id) => ({ id, campaignId: C.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: observedAt })));

  // Every order, tracked by an engine on the real clock, which also sends B's and C's changes.
  const live = await engineAt(() => Date.now(), true);
  try {
    const started = (orderId: number, campaignId: number) => ({ orderId, campaignId, status: 'PROCESSING', substatus: 'STARTED', observedAt });
    await live.trackOrders([
      ...ids.stuck.map((id) => started(id, A.campaignId)),
      started(ids.recent, A.campaignId),
      { orderId: ids.idleOld, campaignId: A.campaignId, status: 'DELIVERED', substatus: null, observedAt },
      // A status no list has is data: tracked, listed, filtered on.
      { orderId: ids.unknownStatus, campaignId: A.campaignId, status: 'WAREHOUSE_HOLD', substatus: null, observedAt },
      ...[...ids.sentB, ids.rateLimitedB].map((id) => started(id, B.campaignId)),
      started(ids.sentC, C.campaignId),
      started(ids.heldC, C.campaignId),
      ...Array.from({ length: BIG_COUNT }, (_, i) => ({ orderId: 7_040_001 + i, campaignId: BIG.campaignId, status: 'DELIVERED', substatus: null, observedAt })),
    ]);
    await live.requestChanges([...ids.sentB, ids.sentC].map((orderId) => ({ orderId, ...READY })));
    expect((await live.flush()).open).toBe(0);
    // The next send for B gets a 420: its budget is blocked until the window's end.
    market.inject({ kind: 'status420', endpoint: 'updateOrderStatuses' });
    await live.requestChange({ orderId: ids.rateLimitedB, ...READY });
    const from = Date.now();
    const afterRateLimit = await live.flush();
    rateLimitedWithin = { from, to: Date.now() };
    expect(afterRateLimit.counters.rateLimited).toBe(1);
    expect(afterRateLimit.open).toBe(1);
  } finally {
    await live.close();
  }
  // A's changes, queued by engines whose clocks read two hours and 30 minutes ago.
  const twoHoursAgo = await engineAt(() => start - 2 * HOUR);
  await twoHoursAgo.requestChanges(ids.stuck.map((orderId) => ({ orderId, ...READY })));
  await twoHoursAgo.close();
  const halfHourAgo = await engineAt(() => start - HOUR / 2);
  await halfHourAgo.requestChange({ orderId: ids.recent, ...READY });
  await halfHourAgo.close();
}, 180_000);

afterAll(async () => {
  killRunning();
  await market?.close();
  for (const text of transcript) expect(text).not.toContain(TEST_API_KEY);
  if (dir) {
    expect(filesContaining(dir, TEST_API_KEY)).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** An instant as `limits` prints it: ISO, to the whole second. */
const second = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

const lines = (stdout: string): number[] => stdout.split('\n').filter(Boolean).map(Number);

describe('ym-orders list', () => {
  it('prints order ids one a line, by id, under each filter; --stuck is an open change that has not moved for longer than the duration', async () => {
    const results = await Promise.all([
      cli(['list', '--stuck', '1h']),
      cli(['list', '--stuck', '20m']),
      cli(['list', '--change', 'queued']),
      cli(['list', '--campaign', String(A.campaignId)]),
      cli(['list', '--campaign', `${B.campaignId}:${B.businessId}:FBS`, '--status', 'processing', '--change', 'IDLE']),
      cli(['list', '--status', 'WAREHOUSE_HOLD']),
      cli(['list', '--campaign', String(A.campaignId), '--stuck', '2h30m']),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const [stuck1h, stuck20m, queued, campaignA, idleB, unknown, stuckLonger] = results.map((r) => lines(r.stdout));
    expect(stuck1h).toEqual(ids.stuck);
    // B's change, deferred by the 420 just now, has not been stuck for 20 minutes.
    expect(stuck20m).toEqual([...ids.stuck, ids.recent]);
    expect(queued).toEqual([...ids.stuck, ids.recent, ids.rateLimitedB]);
    expect(campaignA).toEqual([...ids.stuck, ids.recent, ids.idleOld, ids.unknownStatus]);
    expect(idleB).toEqual(ids.sentB);
    expect(unknown).toEqual([ids.unknownStatus]);
    // A status the engine does not know is listed, with a warning on stderr (a typo shows).
    expect(results[5]!.stderr).toMatch(/^warning: WAREHOUSE_HOLD is not a status this ym-orders knows/m);
    expect(stuckLonger).toEqual([]);
    expect(results[6]!.stderr).toMatch(/no order matches/);
  }, 120_000);

  it('pages through more orders than one read holds; --limit stops and says where to go on with --after', async () => {
    const all = await cli(['list', '--campaign', String(BIG.campaignId)]);
    expect(all.code, all.stderr).toBe(0);
    const expected = Array.from({ length: BIG_COUNT }, (_, i) => 7_040_001 + i);
    expect(lines(all.stdout)).toEqual(expected);
    expect(all.stderr).toBe('');

    const first = await cli(['list', '--campaign', String(BIG.campaignId), '--limit', '1500']);
    expect(lines(first.stdout)).toEqual(expected.slice(0, 1500));
    const goOn = /more orders match: go on with --after (\d+)\./.exec(first.stderr);
    expect(goOn?.[1]).toBe(String(expected[1499]));
    const rest = await cli(['list', '--campaign', String(BIG.campaignId), '--after', goOn![1]!]);
    expect(lines(rest.stdout)).toEqual(expected.slice(1500));
    expect(rest.stderr).not.toMatch(/more orders match/);
  }, 120_000);

  it('--json: one array of the orders with their main fields', async () => {
    const result = await cli(['list', '--change', 'queued', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const orders = json<Listed[]>(result);
    expect(orders.map((o) => o.orderId)).toEqual([...ids.stuck, ids.recent, ids.rateLimitedB]);
    expect(orders[0]).toEqual({
      orderId: ids.stuck[0],
      campaignId: A.campaignId,
      model: 'FBS',
      status: 'PROCESSING',
      substatus: 'STARTED',
      change: 'queued',
      observedAt: expect.any(Number),
      updatedAt: expect.any(Number),
    });
    // The stuck ones' changes were written by the engine whose clock read two hours ago.
    expect(orders[2]!.updatedAt - orders[0]!.updatedAt).toBe(1.5 * HOUR);
    const big = json<Listed[]>(await cli(['list', '--campaign', String(BIG.campaignId), '--json']));
    expect(big).toHaveLength(BIG_COUNT);
    expect(new Set(big.map((o) => o.orderId)).size).toBe(BIG_COUNT);
    expect(json<Listed[]>(await cli(['list', '--status', 'RETURNED', '--json']))).toEqual([]);
  }, 120_000);

  it('bad values are USAGE errors (exit 2) that say what is expected; a missing database is DB_NOT_FOUND', async () => {
    const cases: [string[], RegExp][] = [
      [['list', '--stuck', '30x'], /^error \[USAGE\]: --stuck "30x" is not a duration such as 30m, 2h, 45s or 1h30m\.$/m],
      [['list', '--stuck', '0m'], /^error \[USAGE\]: --stuck "0m" is no time at all/m],
      [['list', '--stuck', '30'], /^error \[USAGE\]: --stuck "30" is not a duration/m],
      [['list', '--change', 'pending'], /^error \[USAGE\]: --change "pending" is not one of idle, queued, sending, awaitingOperation, uncertain\.$/m],
      [['list', '--status', 'NOT A STATUS'], /^error \[USAGE\]: --status "NOT A STATUS" is not a Market status/m],
      [['list', '--limit', '0'], /^error \[USAGE\]: --limit "0" is not a whole number of at least 1\.$/m],
      [['list', '--campaign', 'shop-1'], /^error \[USAGE\]: --campaign "shop-1" is not a campaign id/m],
      [['list', '--campaign', '701', '--campaign', '702'], /^error \[USAGE\]: list takes one --campaign, got 2/m],
      [['list', '--after', 'last'], /^error \[USAGE\]: --after "last" is not an order id/m],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((r, i) => {
      expect(r.code, `${cases[i]![0].join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stdout).toBe('');
    });
    for (const command of ['list', 'limits']) {
      const missing = await runCli(['--db', path.join(dir, 'none.db'), command]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^error \[DB_NOT_FOUND\]: No database at/m);
      expect(fs.existsSync(path.join(dir, 'none.db'))).toBe(false);
    }
  }, 120_000);
});

describe('ym-orders limits', () => {
  it('shows each budget with its remaining quota and window end, the 420 block, and the requests in flight, while another process sends', async () => {
    // C's send held at the Market: its permit's lease is in the database while limits reads. (A's
    // changes, due too, go through.)
    const sender = await engineAt(() => Date.now(), true);
    market.hold((r) => r.endpoint === 'updateOrderStatuses' && r.path.includes(`/campaigns/${C.campaignId}/`));
    let flushing: Promise<unknown> | undefined;
    try {
      await sender.requestChange({ orderId: ids.heldC, ...READY });
      flushing = sender.flush();
      const deadline = Date.now() + 60_000;
      while (market.held().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(market.held()).toHaveLength(1);

      const before = Date.now();
      const [asJson, asText] = await Promise.all([cli(['limits', '--json']), cli(['limits'])]);
      market.release();
      await flushing;
      expect(market.getOrder(ids.heldC)?.substatus).toBe('READY_TO_SHIP');

      expect(asJson.code, asJson.stderr).toBe(0);
      const limits = json<Limits>(asJson);
      expect(limits.now).toBeGreaterThanOrEqual(before);
      const byResource = new Map(limits.budgets.map((b) => [b.resource, b]));
      const b = byResource.get(`updateOrderStatuses@campaign:${B.campaignId}`)!;
      const c = byResource.get(`updateOrderStatuses@campaign:${C.campaignId}`)!;
      // B: two orders sent, then a 420 that spent the budget and blocks it until the window's end.
      expect(b).toMatchObject({ operation: 'updateOrderStatuses', scope: `campaign:${B.campaignId}`, remaining: 0, blocked: true, windowOver: false, inFlight: 0 });
      expect(b.blockedUntil).toBeGreaterThan(limits.now);
      expect(b.windowEndsAt).toBeGreaterThan(limits.now);
      // When the 420 came: during the flush that got it, not the end of its wait.
      expect(b.lastRateLimitedAt).toBeGreaterThanOrEqual(rateLimitedWithin.from);
      expect(b.lastRateLimitedAt).toBeLessThanOrEqual(rateLimitedWithin.to);
      // C: one order sent and answered, one in flight (its weight taken with its permit).
      expect(c).toMatchObject({ scope: `campaign:${C.campaignId}`, blocked: false, blockedUntil: null, lastRateLimitedAt: null, windowOver: false, inFlight: 1 });
      expect(c.capacity - c.remaining).toBe(2);
      expect(limits.scopes).toEqual(expect.arrayContaining([{ scope: `campaign:${B.campaignId}`, inFlight: 0 }, { scope: `campaign:${C.campaignId}`, inFlight: 1 }]));
      expect(limits.rateLimited).toBe(1);

      expect(asText.code, asText.stderr).toBe(0);
      const text = asText.stdout;
      expect(text).toMatch(/^\d+ budget\(s\) in .*orders\.db, at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
      const iso = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
      const blockedB = new RegExp(`^\\s+campaign:${B.campaignId}\\s+updateOrderStatuses\\s+0 / [\\d ]+\\s+ends ${iso} \\(in [\\d.]+ (s|min|h)\\)\\s+until ${iso} \\(in [\\d.]+ (s|min|h)\\)\\s+at ${second(b.lastRateLimitedAt!)} \\([\\d.]+ (s|min|h) ago\\)$`, 'm');
      expect(text).toMatch(blockedB);
      const openC = new RegExp(`^\\s+campaign:${C.campaignId}\\s+updateOrderStatuses\\s+[\\d ]+ / [\\d ]+\\s+ends ${iso} \\(in [\\d.]+ (s|min|h)\\)\\s+—\\s+—$`, 'm');
      expect(text).toMatch(openC);
      expect(text).toMatch(new RegExp(`^requests in flight: .*campaign:${C.campaignId} 1`, 'm'));
      expect(text).toMatch(/^420 answers so far \(every engine's count\): 1;/m);
      expect(text).toMatch(/^\s*scope\s+method\s+remaining\s+window\s+blocked by a 420\s+last 420$/m);
    } finally {
      market.release();
      await flushing?.catch(() => {});
      await sender.close();
    }
  }, 180_000);

  it('says so when no process has called the Market from the database yet', async () => {
    const empty = path.join(dir, 'empty.db');
    const engine = await createEngine({ db: empty, campaigns: [A] });
    await engine.trackOrders([{ orderId: 1, campaignId: A.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
    await engine.close();
    const text = await runCli(['--db', empty, 'limits']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^no budget in .*empty\.db yet: no process has called the Market from this database\.$/m);
    expect(json<Limits>(await runCli(['--db', empty, 'limits', '--json']))).toMatchObject({ budgets: [], scopes: [], rateLimited: 0 });
  }, 120_000);
});
