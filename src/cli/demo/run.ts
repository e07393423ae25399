// The work of `ym-orders demo`: a fake Market on loopback seeded with orders, pushing
// notifications to a receiver in this process, an engine on a fresh database, then sync → queue
// legal changes (the mistakes refused locally) → flush within the API limits (by this process, or
// by n child processes sharing a PostgreSQL schema) → let the Market move on (couriers, new
// orders, chats), which the engine learns only by notification, and the numbers of it as a
// DemoReport, checked against the fake's own orders.

import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { sleep } from '../../engine/concurrency.js';
import { createEngine, type Engine } from '../../engine/engine.js';
import { MARKET_OPERATIONS } from '../../market/errors.js';
import { startFakeMarket, type FakeMarket } from '../../testing/index.js';
import { flushWithProgress } from '../flushing.js';
import { label } from '../../format.js';
import type { Output } from '../output.js';
import { createProgress } from '../progress.js';
import { DEMO_CAMPAIGNS, generateOrders, placedOrders, planChanges, type PlannedGroup } from '../demo-data.js';
import { statusRows } from '../status-table.js';
import { databaseName, replaceDatabase, type DemoDatabase } from './database.js';
import { transitionsMermaid } from './diagram.js';
import { demoEngineOptions, type DemoEngineSettings } from './engine-options.js';
import { startDemoReceiver } from './notifications.js';
import { flushWithProcesses, sumCounters, sumReads, type ProcessesFlush } from './processes.js';
import { ORDERS_PER_CALL, type ChaosFault, type DemoReport, type RefusalGroup } from './report.js';

const ORDERS_PER_PAGE = 50;

/**
 * How the fake pushes: some notifications twice, some out of order, as the Market does (seeded,
 * so runs repeat); its retry schedule a thousand times faster (a retry a minute is one every 60 ms).
 */
const NOTIFY = { duplicateRate: 0.05, reorderRate: 0.05, seed: 12, timeScale: 1 / 1_000 } as const;
/** Buyers place this share of the seeded count as new orders once the flush is done. */
const NEW_ORDERS_SHARE = 0.1;
/** Chats buyers open about their new orders: a notification type the engine stores and ignores. */
const CHATS = 3;
/** The longest wait for the fake's notifier to deliver what it has: a failing receiver would keep it retrying for (scaled) days. */
const NOTIFIER_WAIT_MS = 45_000;

export interface DemoOptions {
  /** Orders the fake Market holds. */
  readonly orders: number;
  /** Inject faults (500s, 503s, 420s, drops, timeouts) during the flush. */
  readonly chaos: boolean;
  /** Replaced: refused unless it is missing, empty or a ym-orders database (or schema). */
  readonly database: DemoDatabase;
  /** Processes that flush: 1 is this one; more are children sharing a PostgreSQL schema. */
  readonly processes: number;
  /** Where the Mermaid diagram is written. */
  readonly diagram: string;
  /** Where the demo runs (the report's closing hint is relative to it). */
  readonly cwd: string;
}

interface Refusal {
  readonly orderId: number;
  readonly target: string;
  readonly code: string;
  readonly message: string;
}

/** Syncs with a progress bar; the demo knows how many pages to expect from its seeded orders. */
async function syncWithProgress(engine: Engine, out: Output, expectedPages: number, name: string) {
  const progress = createProgress(out, name);
  try {
    return await engine.sync({ onProgress: (p) => progress.update(Math.min(p.pages, expectedPages), expectedPages, 'pages') });
  } finally {
    progress.stop();
  }
}

async function applyGroups(engine: Engine, groups: readonly PlannedGroup[]) {
  const queued: { group: string; orderId: number; campaignId: number; single: boolean }[] = [];
  const refused: Refusal[] = [];
  for (const group of groups) {
    const result = await engine.requestChanges(group.requests);
    const byId = new Map(group.requests.map((r) => [r.orderId, r]));
    for (const o of result.queued) queued.push({ group: group.name, orderId: o.orderId, campaignId: o.campaignId, single: byId.get(o.orderId)?.realDeliveryDate !== undefined });
    for (const r of result.refused) {
      const request = byId.get(r.orderId ?? 0);
      const blockers = (r.error.details.blockers as { code: string; message: string }[] | undefined) ?? [{ code: r.error.code, message: r.error.message }];
      for (const b of blockers) {
        refused.push({ orderId: r.orderId ?? 0, target: request ? label(request.status, request.substatus) : '?', code: b.code, message: b.message });
      }
    }
  }
  return { queued, refused };
}

function groupRefusals(refused: readonly Refusal[]): RefusalGroup[] {
  const groups = new Map<string, { code: string; count: number; examples: Refusal[] }>();
  for (const r of refused) {
    const g = groups.get(r.code) ?? { code: r.code, count: 0, examples: [] };
    g.count++;
    if (g.examples.length < 2) g.examples.push(r);
    groups.set(r.code, g);
  }
  return [...groups.values()]
    .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code))
    .map((g) => ({ code: g.code, count: g.count, examples: g.examples.map((e) => ({ orderId: e.orderId, target: e.target, message: e.message })) }));
}

/** Compares every order's status in the engine with the fake Market's. */
async function agreement(engine: Engine, market: FakeMarket, orders: readonly { readonly id: number }[]): Promise<{ agree: number; differ: number[] }> {
  const differ: number[] = [];
  for (const o of orders) {
    const theirs = market.getOrder(o.id);
    const ours = await engine.findOrder(o.id);
    if (!theirs || !ours || theirs.status !== ours.status || theirs.substatus !== ours.substatus) differ.push(o.id);
  }
  return { agree: orders.length - differ.length, differ };
}

const CHAOS_FAULTS = [
  { kind: 'status500', probability: 0.08 },
  { kind: 'status503', probability: 0.03 },
  { kind: 'status420', probability: 0.04 },
  { kind: 'drop', probability: 0.04 },
  { kind: 'dropAfterApply', probability: 0.04 },
  { kind: 'timeoutAfterApply', probability: 0.03, delayMs: 2_500 },
  { kind: 'hang', probability: 0.02, delayMs: 2_500 },
] as const;

function injectChaos(market: FakeMarket): ChaosFault[] {
  for (const f of CHAOS_FAULTS) market.inject({ ...f, times: Infinity });
  return CHAOS_FAULTS.map((f) => ({ kind: f.kind, probability: f.probability }));
}

/**
 * Runs the demo end to end and returns its numbers; `out` draws the progress bars and the Market's
 * errors while it runs (the caller prints the report). The API key made up for the run is added to
 * `out`'s secrets: it lives in this process only, as the fake's password.
 */
export async function runDemo(options: DemoOptions, out: Output): Promise<DemoReport> {
  const started = Date.now();
  const { orders: orderCount, chaos } = options;
  await replaceDatabase(options.database);
  fs.rmSync(options.diagram, { force: true });

  const apiKey = `demo-${randomBytes(24).toString('hex')}`;
  out.addSecret(apiKey);
  const campaigns = DEMO_CAMPAIGNS;
  // The receiver listens first: the fake needs its URL to start, and the engine needs the fake's.
  const receiver = await startDemoReceiver();
  let market: FakeMarket | undefined;
  let engine: Engine | undefined;
  try {
    market = await startFakeMarket({
      apiKey,
      campaigns,
      operationDelayMs: 150,
      notify: { url: receiver.url, ...NOTIFY },
      // Chaos injects 420s whose -Until is the end of the quota window: keep windows short,
      // and on whole seconds (the header has no milliseconds, so -Until is then exact).
      ...(chaos
        ? { now: () => Math.floor(Date.now() / 1000) * 1000, quotas: Object.fromEntries(MARKET_OPERATIONS.map((op) => [op, { limit: 10_000, windowMs: 2_000 }])) }
        : {}),
    });
    const m = market;
    const notifier = m.notifier!;
    const seeded = generateOrders(campaigns, orderCount, Date.now());
    m.seedOrders(seeded);
    const settings: DemoEngineSettings = { database: options.database, marketUrl: m.url, apiKey, chaos };
    engine = await createEngine({ ...demoEngineOptions(settings), campaigns });
    const e = engine;
    receiver.serve(e);

    // 1. Import through the read side, as a real first run would.
    const perBusiness = new Map<number, number>();
    for (const o of seeded) {
      const b = campaigns.find((c) => c.campaignId === o.campaignId)!.businessId;
      perBusiness.set(b, (perBusiness.get(b) ?? 0) + 1);
    }
    const expectedPages = [...perBusiness.values()].reduce((n, k) => n + Math.ceil(k / ORDERS_PER_PAGE), 0);
    const t1 = Date.now();
    const firstSync = await syncWithProgress(e, out, expectedPages, '1. sync');
    const firstSyncMs = Date.now() - t1;

    // 2. Seller changes: the legal ones are queued, the mistakes refused before any I/O.
    const plan = planChanges(seeded, campaigns, Date.now());
    const legal = await applyGroups(e, plan.legal);
    const mistakes = await applyGroups(e, [plan.illegal]);
    const refused = [...legal.refused, ...mistakes.refused];

    // 3. Flush: batches of 30 per campaign, within the limits; LaaS cancellations polled. The
    // Market notifies each change it applies meanwhile; the flush applies those too.
    const chaosFaults = chaos ? injectChaos(m) : [];
    const flushOptions = { label: '3. flush', maxWaitMs: 45_000 };
    const { flush, shares }: ProcessesFlush =
      options.processes > 1
        ? await flushWithProcesses(e, out, { ...flushOptions, processes: options.processes, settings })
        : { flush: await flushWithProgress(e, out, flushOptions), shares: [] };

    // 4. The Market moves on, and the engine hears of it only by notification (no second sync):
    // couriers pick up packed orders, buyers place new orders and open chats about a few. This
    // engine applies the status updates and reads the new orders (a flush drains the inbox and
    // the reads as well); the check below compares every order with the fake's.
    // Chaos floors the fake's clock to whole seconds (above), so a move in the second the flush
    // ended would be dated before the engine's last answer from the Market, and look stale: the
    // Market moves on in the next second, as a Market whose clock runs with ours would.
    if (chaos) await sleep(1_001 - (Date.now() % 1_000));
    const t4 = Date.now();
    const ready = seeded.filter((o) => m.getOrder(o.id)?.substatus === 'READY_TO_SHIP').slice(0, Math.round(orderCount / 20));
    for (const o of ready) m.setOrderStatus(o.id, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
    const placed = placedOrders(campaigns, Math.round(orderCount * NEW_ORDERS_SHARE), seeded.at(-1)!.id + 1, Date.now());
    for (const o of placed) m.createOrder(o);
    for (const o of placed.slice(0, CHATS)) m.openChat(o.id);
    const patience = new AbortController();
    await Promise.race([notifier.idle(), sleep(NOTIFIER_WAIT_MS, patience.signal)]);
    patience.abort();
    const applied = await e.flush({ untilIdle: true, maxWaitMs: 45_000 });
    if (chaos) m.clearFaults();
    const notifiedMs = Date.now() - t4;
    const tracked = (await Promise.all(placed.map((o) => e.findOrder(o.id)))).filter((o) => o !== undefined).length;

    // The numbers.
    const summary = await e.summary();
    const byStatus = statusRows(summary);
    const bulkByCampaign = new Map<number, number>();
    let singles = 0;
    for (const q of legal.queued) {
      if (q.single) singles++;
      else bulkByCampaign.set(q.campaignId, (bulkByCampaign.get(q.campaignId) ?? 0) + 1);
    }
    const minimumBulk = [...bulkByCampaign.values()].reduce((n, k) => n + Math.ceil(k / ORDERS_PER_CALL), 0);
    // This process's calls (the sync, reads, and the flush unless children did it) and the children's.
    const own = await e.stats();
    const counters = sumCounters([own.counters, ...shares.map((s) => s.counters)]);
    const bulk = counters.calls.updateOrderStatuses ?? 0;
    const single = counters.calls.updateOrderStatus ?? 0;
    const stats = m.stats();
    const check = await agreement(e, m, [...seeded, ...placed]);
    const pushed = notifier.stats();
    fs.writeFileSync(options.diagram, transitionsMermaid(await e.transitionCounts(), byStatus));

    return {
      orders: orderCount,
      campaigns,
      chaos,
      database: databaseName(options.database),
      ...(options.database.kind === 'postgres' ? { schema: options.database.schema } : {}),
      diagram: options.diagram,
      marketUrl: m.url,
      receiverUrl: receiver.url,
      cwd: options.cwd,
      elapsedMs: Date.now() - started,
      firstSync,
      firstSyncMs,
      queued: legal.queued.length,
      groups: plan.legal.map((group) => {
        const inGroup = legal.queued.filter((q) => q.group === group.name);
        return { name: group.name, queued: inGroup.length, singles: inGroup.filter((q) => q.single).length };
      }),
      refusedRequests: new Set(refused.map((r) => `${r.orderId}|${r.target}`)).size,
      refusals: groupRefusals(refused),
      exampleOrderId: legal.queued[0]?.orderId ?? seeded[0]!.id,
      chaosFaults,
      flush,
      processes: shares,
      pickedUp: ready.length,
      placed: placed.length,
      placedTracked: tracked,
      chats: Math.min(CHATS, placed.length),
      notifiedMs,
      notifications: { ...receiver.tally(), unsettled: applied.inboxPending + applied.readsPending },
      notifier: {
        delivered: pushed.delivered,
        duplicatesSent: pushed.duplicatesSent,
        reordered: pushed.reordered,
        retries: pushed.retries,
        rejected: pushed.rejected,
      },
      reads: sumReads([own.reads, ...shares.map((s) => s.reads)]),
      byStatus,
      ordersStored: summary.orders,
      statusUpdateCalls: { made: bulk + single, minimum: minimumBulk + singles, bulk, minimumBulk, single, singles },
      counters,
      rateLimited: stats.rateLimited,
      operations: summary.operations,
      market: { orders: seeded.length + placed.length, illegalRequests: stats.illegalRequests, duplicateApplications: stats.duplicateApplications, agree: check.agree, differ: check.differ },
    };
  } finally {
    await market?.close();
    await receiver.close();
    await engine?.close();
  }
}
