// Benchmark 3: how much of a quota the dispatcher uses without a single 420. The fake Market's
// updateOrderStatuses quota is scaled down in time (300 orders per 2 s window); the engine
// starts from its documented default budget and must learn the real one from the
// X-RateLimit headers. We queue exactly `windows × quota` changes, flush until idle, and read
// the fake's request log: orders accepted per quota window, divided by the quota; and over time
// (issue #14, goal 4), orders sent over what the Market would have granted in windows back to
// back, which every millisecond between one window's end and the next one's first request loses.

import { createEngine } from '../src/engine/engine.js';
import type { CampaignConfig } from '../src/engine/commands.js';
import type { FakeRequest } from '../src/testing/fake-market.js';
import { runChild } from './lib/child.js';
import { API_KEY, startBenchMarket } from './lib/market.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { makeTempDir, removeDir } from './lib/tmp.js';

const CAMPAIGN: CampaignConfig = { campaignId: 201, businessId: 21, model: 'FBS' };
const QUOTA = { limit: 300, windowMs: 2_000 };
export const QUOTA_TARGET_SHARE = 0.95;

interface FlushArgs {
  readonly url: string;
  readonly orders: number;
  readonly maxWaitMs: number;
}

interface FlushResult {
  readonly flushMs: number;
  readonly open: number;
  readonly accepted: number;
  readonly rateLimited: number;
  readonly deferred: number;
}

async function flush(args: FlushArgs): Promise<FlushResult> {
  const dir = makeTempDir('quota');
  // The engine starts from the documented default budget (10 000) and must learn the real one
  // (300) from the headers; it is told the window's length, as users configure the Market's hour.
  const engine = await createEngine({
    db: `${dir}/orders.db`,
    campaigns: [CAMPAIGN],
    api: { baseUrl: args.url, apiKey: API_KEY },
    limits: { resources: { updateOrderStatuses: { limit: 10_000, windowMs: QUOTA.windowMs } } },
    sqlite: { synchronous: 'NORMAL' },
  });
  try {
    const ids = Array.from({ length: args.orders }, (_, i) => i + 1);
    await engine.trackOrders(ids.map((orderId) => ({ orderId, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED' })));
    await engine.requestChanges(ids.map((orderId) => ({ orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })));
    const t = performance.now();
    const report = await engine.flush({ untilIdle: true, maxWaitMs: args.maxWaitMs });
    return {
      flushMs: performance.now() - t,
      open: report.open,
      accepted: report.counters.accepted,
      rateLimited: report.counters.rateLimited,
      deferred: report.counters.deferred,
    };
  } finally {
    await engine.close();
    removeDir(dir);
  }
}

export const tasks = { flush };

interface Window {
  readonly startedAt: number;
  orders: number;
  requests: number;
}

/** Replays the fake's fixed windows (opened by the first request after the previous one ended). */
function windowsOf(requests: readonly FakeRequest[]): { windows: Window[]; rejected: number; parallel: number } {
  const windows: Window[] = [];
  let rejected = 0;
  let parallel = 0;
  for (const r of requests) {
    if (r.endpoint !== 'updateOrderStatuses') continue;
    if (r.status === 420) {
      rejected++;
      if (/parallel/i.test(r.responseBody ?? '')) parallel++;
      continue;
    }
    if (r.status !== 200) continue;
    let w = windows.at(-1);
    if (w === undefined || r.receivedAt >= w.startedAt + QUOTA.windowMs) windows.push((w = { startedAt: r.receivedAt, orders: 0, requests: 0 }));
    w.orders += (r.body as { orders: unknown[] }).orders.length;
    w.requests++;
  }
  return { windows, rejected, parallel };
}

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const windows = options.quick ? 3 : 6;
  const orders = windows * QUOTA.limit;
  const market = await startBenchMarket([CAMPAIGN], { updateOrderStatuses: QUOTA });
  try {
    market.seedOrders(Array.from({ length: orders }, (_, i) => ({ id: i + 1, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED' })));
    const maxWaitMs = windows * QUOTA.windowMs * 4 + 5_000;
    const result = await runChild<FlushResult>({ module: 'quota', task: 'flush', args: { url: market.url, orders, maxWaitMs }, timeoutMs: maxWaitMs + 60_000 });
    const { windows: seen, rejected, parallel } = windowsOf(market.requests);
    // Every window but the last is one the dispatcher could have filled; the last holds what was left.
    const full = seen.length > 1 ? seen.slice(0, -1) : seen;
    const shares = full.map((w) => w.orders / QUOTA.limit);
    const mean = shares.reduce((a, b) => a + b, 0) / Math.max(1, shares.length);
    const min = Math.min(...shares);
    const sent = seen.reduce((n, w) => n + w.orders, 0);
    const ideal = (Math.ceil(orders / QUOTA.limit) - 1) * QUOTA.windowMs;
    // Over time: the windows the Market would have granted back to back since the first send.
    const span = seen.length > 0 ? seen.at(-1)!.startedAt + QUOTA.windowMs - seen[0]!.startedAt : 0;
    const timeUse = span > 0 ? sent / ((QUOTA.limit * span) / QUOTA.windowMs) : 0;
    const gaps = seen.slice(1).map((w, i) => w.startedAt - (seen[i]!.startedAt + QUOTA.windowMs));
    const meanGap = gaps.length > 0 ? gaps.reduce((a, b) => a + b, 0) / gaps.length : 0;
    return [
      {
        id: '3',
        bench: 'Quota use',
        metric: `orders sent per window / quota (${QUOTA.limit} orders per ${QUOTA.windowMs / 1000} s, ${num(orders)} queued = ${windows} windows' worth; mean of ${full.length} full windows, min ${(min * 100).toFixed(1)}%)`,
        value: `${(mean * 100).toFixed(1)}%`,
        baseline: `quota ${QUOTA.limit}/window`,
        ratio: mean.toFixed(3),
        target: `≥ ${QUOTA_TARGET_SHARE * 100}%`,
        verdict: verdict(mean >= QUOTA_TARGET_SHARE && rejected === 0),
      },
      {
        id: '3',
        bench: 'Quota use',
        metric: `420 answers (${rejected - parallel} quota, ${parallel} parallel-limit; engine counted ${result.rateLimited}); windows used ${seen.length} for ${windows} (orders ${seen.map((w) => w.orders).join('/')}); sent ${num(sent)} / ${num(orders)}, still open ${result.open}`,
        value: `${rejected} × 420`,
        baseline: '—',
        ratio: '—',
        target: '0',
        verdict: verdict(rejected === 0),
        goal: 4,
      },
      {
        id: '3',
        bench: 'Quota use',
        metric: `quota use over time (issue #14, goal 4): sent / (quota × windows elapsed since the first send), with 0 × 420; idle gap between windows ${ms(meanGap)} on average (max ${ms(Math.max(0, ...gaps))}; each ${gaps.map((g) => g.toFixed(0)).join('/')} ms); flush ${ms(result.flushMs)}, ideal ${ms(ideal)}`,
        value: `${(timeUse * 100).toFixed(1)}%`,
        baseline: `${ms(span)} of windows`,
        ratio: timeUse.toFixed(3),
        target: `≥ ${QUOTA_TARGET_SHARE * 100}%`,
        verdict: verdict(timeUse >= QUOTA_TARGET_SHARE && rejected === 0),
        goal: 4,
      },
    ];
  } finally {
    await market.close();
  }
}
