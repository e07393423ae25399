// Benchmark 2: status-update calls the engine makes for N orders over C campaigns of
// different models, against the minimum (sum over campaigns of ceil(orders / 30)) and against
// a naive client that sends one PUT per order through the same client and the same fake.

import { createEngine } from '../src/engine/engine.js';
import type { CampaignConfig, ChangeTarget } from '../src/engine/commands.js';
import { createMarketClient } from '../src/market/client.js';
import { runConcurrently } from '../src/engine/concurrency.js';
import type { FakeRequest } from '../src/testing/fake-market.js';
import { runChild } from './lib/child.js';
import { API_KEY, startBenchMarket, UNLIMITED_LIMITS } from './lib/market.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { makeTempDir, removeDir } from './lib/tmp.js';

const CAMPAIGNS: readonly CampaignConfig[] = [
  { campaignId: 101, businessId: 11, model: 'FBS' },
  { campaignId: 102, businessId: 11, model: 'EXPRESS' },
  { campaignId: 103, businessId: 12, model: 'DBS' },
  { campaignId: 104, businessId: 13, model: 'LAAS' },
];
/** Shares of the orders per campaign: uneven, so the ceil() of each campaign matters. */
const SHARES = [0.34, 0.27, 0.23, 0.16];
const BATCH = 30;

/**
 * Where each model starts and the seller change it gets, one synchronous batchable change per
 * model (machines/rules.ts): FBS/EXPRESS ready to ship, DBS handed to delivery (DBS has no
 * READY_TO_SHIP), LaaS a confirmed draft.
 */
function changeFor(model: CampaignConfig['model']): Pick<PlannedOrder, 'from' | 'to'> {
  switch (model) {
    case 'LAAS':
      return { from: { status: 'RESERVED', substatus: 'RESERVED' }, to: { status: 'PROCESSING', substatus: 'STARTED' } };
    case 'DBS':
      return { from: { status: 'PROCESSING', substatus: 'STARTED' }, to: { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' } };
    default:
      return { from: { status: 'PROCESSING', substatus: 'STARTED' }, to: { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } };
  }
}

interface PlannedOrder {
  readonly orderId: number;
  readonly campaignId: number;
  readonly from: { status: string; substatus: string };
  readonly to: ChangeTarget;
}

/** N orders spread over the campaigns by SHARES, interleaved by id as real traffic would be. */
function plan(total: number, firstId: number): PlannedOrder[] {
  const counts = SHARES.map((s) => Math.floor(total * s));
  counts[0]! += total - counts.reduce((a, b) => a + b, 0);
  const left = [...counts];
  const out: PlannedOrder[] = [];
  let id = firstId;
  while (out.length < total) {
    for (let c = 0; c < CAMPAIGNS.length; c++) {
      // Weighted round robin: campaigns with more orders left get more turns.
      const turns = Math.ceil((left[c]! / Math.max(1, Math.max(...left))) * 3);
      for (let k = 0; k < turns && left[c]! > 0; k++) {
        const campaign = CAMPAIGNS[c]!;
        out.push({ orderId: id++, campaignId: campaign.campaignId, ...changeFor(campaign.model) });
        left[c]!--;
      }
    }
  }
  return out;
}

interface EngineRunArgs {
  readonly url: string;
  readonly orders: readonly PlannedOrder[];
}

interface EngineRunResult {
  readonly calls: Record<string, number>;
  readonly accepted: number;
  readonly open: number;
  readonly flushMs: number;
}

async function engineRun(args: EngineRunArgs): Promise<EngineRunResult> {
  const dir = makeTempDir('api-cost');
  const engine = await createEngine({
    db: `${dir}/orders.db`,
    campaigns: CAMPAIGNS,
    api: { baseUrl: args.url, apiKey: API_KEY },
    limits: UNLIMITED_LIMITS,
    sqlite: { synchronous: 'NORMAL' },
  });
  try {
    await engine.trackOrders(args.orders.map((o) => ({ orderId: o.orderId, campaignId: o.campaignId, ...o.from })));
    const { refused } = await engine.requestChanges(args.orders.map((o) => ({ orderId: o.orderId, ...o.to })));
    if (refused.length > 0) throw new Error(`engine refused ${refused.length} requests: ${refused[0]!.error.message}`);
    const t = performance.now();
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 120_000 });
    return { calls: report.counters.calls, accepted: report.counters.accepted, open: report.open, flushMs: performance.now() - t };
  } finally {
    await engine.close();
    removeDir(dir);
  }
}

async function naiveRun(args: EngineRunArgs): Promise<{ calls: number; ok: number; ms: number }> {
  const client = createMarketClient({ baseUrl: args.url, apiKey: API_KEY });
  let calls = 0;
  let ok = 0;
  const t = performance.now();
  try {
    const byCampaign = new Map<number, PlannedOrder[]>();
    for (const o of args.orders) byCampaign.set(o.campaignId, [...(byCampaign.get(o.campaignId) ?? []), o]);
    // The Market allows 4 requests in flight per campaign: a naive client may at least do that.
    await runConcurrently([...byCampaign.values()], byCampaign.size, (list) =>
      runConcurrently(list, 4, async (o) => {
        calls++;
        await client.updateOrderStatus(o.campaignId, o.orderId, o.to);
        ok++;
      }),
    );
  } finally {
    await client.close();
  }
  return { calls, ok, ms: performance.now() - t };
}

export const tasks = { engineRun, naiveRun };

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const total = options.quick ? 600 : 3_000;
  const engineOrders = plan(total, 1);
  const naiveOrders = plan(total, 1_000_000);
  const market = await startBenchMarket(CAMPAIGNS);
  try {
    market.seedOrders([...engineOrders, ...naiveOrders].map((o) => ({ id: o.orderId, campaignId: o.campaignId, ...o.from, updateDate: Date.UTC(2025, 0, 1) })));
    const minimum = CAMPAIGNS.reduce((n, c) => n + Math.ceil(engineOrders.filter((o) => o.campaignId === c.campaignId).length / BATCH), 0);

    const isStatusUpdate = (r: FakeRequest) => r.endpoint === 'updateOrderStatuses' || r.endpoint === 'updateOrderStatus';
    const engine = await runChild<EngineRunResult>({ module: 'api-cost', task: 'engineRun', args: { url: market.url, orders: engineOrders }, timeoutMs: 180_000 });
    const engineRequests = market.requests.filter(isStatusUpdate);
    const naive = await runChild<{ calls: number; ok: number; ms: number }>({ module: 'api-cost', task: 'naiveRun', args: { url: market.url, orders: naiveOrders }, timeoutMs: 180_000 });
    const after = market.stats();

    const engineCalls = engineRequests.length;
    const naiveCalls = market.requests.filter(isStatusUpdate).length - engineCalls;
    const applied = engineOrders.filter((o) => (after.appliedChanges[o.orderId] ?? 0) === 1).length;
    const perCampaign = CAMPAIGNS.map((c) => {
      const n = engineOrders.filter((o) => o.campaignId === c.campaignId).length;
      const sent = engineRequests.filter((r) => r.path.startsWith(`/v2/campaigns/${c.campaignId}/`)).length;
      return `${c.model} ${num(n)}→${sent}/${Math.ceil(n / BATCH)}`;
    }).join(', ');

    return [
      {
        id: '2',
        bench: 'API cost',
        metric: `status-update calls for ${num(total)} orders over ${CAMPAIGNS.length} campaigns (${perCampaign}; calls/minimum)`,
        value: `${num(engineCalls)} calls`,
        baseline: `naive 1 PUT/order: ${num(naiveCalls)} calls`,
        ratio: `${(engineCalls / minimum).toFixed(3)} of min; ${(engineCalls / naiveCalls).toFixed(3)} of naive`,
        target: `= minimum (${num(minimum)})`,
        verdict: verdict(engineCalls === minimum),
        goal: 5,
      },
      {
        id: '2',
        bench: 'API cost',
        metric: `changes applied exactly once at the fake (accepted ${num(engine.accepted)}, still open ${engine.open}, duplicates ${after.duplicateApplications}); flush time vs naive`,
        value: `${num(applied)} / ${num(total)} in ${ms(engine.flushMs)}`,
        baseline: `naive ${num(naive.ok)} in ${ms(naive.ms)}`,
        ratio: '—',
        target: `all ${num(total)}, 0 duplicates`,
        verdict: verdict(applied === total && after.duplicateApplications === 0),
      },
    ];
  } finally {
    await market.close();
  }
}
