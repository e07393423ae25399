// Benchmark 4: a store of a million orders. We build it (engine.trackOrders for the first
// `small` orders, then copies of those rows with new ids written through the store port, since
// the engine would spend minutes on identical imports), and measure in child processes, each with its own peak RSS
// (process.resourceUsage().maxRSS): a full sync sweep against the fake Market seeded with the
// same orders, and a flush of 100 000 queued changes. Each is measured on the small store and
// on the large one, to show memory does not grow with the number of orders stored.

import fs from 'node:fs';
import { createEngine } from '../src/engine/engine.js';
import type { CampaignConfig } from '../src/engine/commands.js';
import type { JournalRow, JournalWrite } from '../src/store/journal.js';
import type { OrderRow, OrderWrite } from '../src/store/orders.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { runChild } from './lib/child.js';
import { API_KEY, startBenchMarket, UNLIMITED_LIMITS } from './lib/market.js';
import { mb, ms, num, verdict, type Row } from './lib/report.js';
import { makeTempDir, removeDir } from './lib/tmp.js';

const CAMPAIGN: CampaignConfig = { campaignId: 301, businessId: 31, model: 'FBS' };
/** The Market time of every imported order; whole seconds, as getBusinessOrders renders them. */
const OBSERVED_AT = Date.UTC(2025, 0, 1);
const TRACK_BATCH = 10_000;
/** Orders read at a time by `grow`, then written once per shift. */
const GROW_CHUNK = 10_000;
export const RSS_TARGET_BYTES = 256 * 1024 * 1024;
/**
 * "Memory does not grow with the orders": 10× the orders may cost at most this much more peak
 * RSS (under 36 bytes an order at 1M; V8's heap headroom alone varies by ±10 MB between runs).
 */
export const RSS_GROWTH_TARGET_BYTES = 32 * 1024 * 1024;
/** Opening a store must not scan it: 10× the orders may at most double the open time. */
export const OPEN_TIME_GROWTH_TARGET = 2;

interface Measured {
  readonly ms: number;
  /** process.resourceUsage().maxRSS, in bytes. */
  readonly maxRss: number;
  readonly detail: Record<string, number>;
}

function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

function openEngine(path: string, url?: string) {
  return createEngine({
    db: path,
    campaigns: [CAMPAIGN],
    ...(url ? { api: { baseUrl: url, apiKey: API_KEY } } : {}),
    limits: UNLIMITED_LIMITS,
    sqlite: { synchronous: 'NORMAL' },
  });
}

/**
 * A closed store is all in its main file: closing the last connection folds SQLite's WAL into
 * it and deletes the WAL. We copy and measure the file alone, so check that nothing was left.
 */
function assertNoWal(path: string): void {
  const wal = `${path}-wal`;
  if (fs.existsSync(wal) && fs.statSync(wal).size > 0) throw new Error(`${wal} is still there after close: the database file alone is not the whole store`);
}

/** Imports orders 1..count through the engine, in big batches. */
async function build(args: { path: string; count: number }): Promise<Measured> {
  const engine = await openEngine(args.path);
  const t = performance.now();
  for (let from = 1; from <= args.count; from += TRACK_BATCH) {
    const n = Math.min(TRACK_BATCH, args.count - from + 1);
    await engine.trackOrders(
      Array.from({ length: n }, (_, i) => ({ orderId: from + i, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED', observedAt: OBSERVED_AT })),
    );
  }
  const elapsed = performance.now() - t;
  await engine.close();
  assertNoWal(args.path);
  return { ms: elapsed, maxRss: peakRss(), detail: { orders: args.count } };
}

/** The order with its id moved by `shift`: the row, and the snapshot's context.orderId. */
function shiftedOrder(row: OrderRow, shift: number): OrderWrite {
  const snapshot = JSON.parse(row.snapshot) as { context: { orderId: number } };
  snapshot.context.orderId = row.order_id + shift;
  const { created_at: _created, row_version: _version, ...rest } = row;
  return { ...rest, order_id: row.order_id + shift, snapshot: JSON.stringify(snapshot) };
}

/** The journal row with its order id moved by `shift`: the row, and the event's orderId. */
function shiftedJournal(row: JournalRow, shift: number): JournalWrite {
  const event = JSON.parse(row.event) as { orderId: number };
  event.orderId = row.order_id + shift;
  const { seq: _seq, ...rest } = row;
  return { ...rest, order_id: row.order_id + shift, event: JSON.stringify(event) };
}

/**
 * Grows a store of orders 1..small to 1..large by copying rows with shifted ids (orders and
 * their TRACK journal rows, the snapshot's context.orderId and the event's orderId rewritten):
 * what `large / small` imports would have written, without the import time. It writes through
 * the store port, as the engine does, not through the engine: no transition is replayed.
 */
async function grow(args: { path: string; small: number; large: number }): Promise<Measured> {
  const store = SqliteStore.open(args.path, { synchronous: 'NORMAL' });
  const t = performance.now();
  for (let from = 1; from <= args.small; from += GROW_CHUNK) {
    const ids = Array.from({ length: Math.min(GROW_CHUNK, args.small - from + 1) }, (_, i) => from + i);
    const chunk = await store.read(async (tx) => {
      const rows: { order: OrderRow; journal: JournalRow[] }[] = [];
      for (const id of ids) {
        const order = await tx.orders.get(id);
        if (!order) throw new Error(`grow: order ${id} of the small store is missing`);
        // A copy is inserted at row_version 1, so the source must be there too (tracked, never changed).
        if (order.row_version !== 1) throw new Error(`grow: order ${id} is at row_version ${order.row_version}, not 1`);
        rows.push({ order, journal: await tx.journal.forOrder(id) });
      }
      return rows;
    });
    for (let shift = args.small; shift < args.large; shift += args.small) {
      await store.transaction(async (tx) => {
        for (const { order, journal } of chunk) {
          await tx.orders.insert(shiftedOrder(order, shift));
          for (const row of journal) await tx.journal.append(shiftedJournal(row, shift));
        }
      });
    }
  }
  const elapsed = performance.now() - t;
  const orders = (await store.read((tx) => tx.orders.countByStatus())).reduce((n, c) => n + c.n, 0);
  await store.close();
  assertNoWal(args.path);
  return { ms: elapsed, maxRss: peakRss(), detail: { orders, bytes: fs.statSync(args.path).size } };
}

/** Opens the store and reads its counters: the floor every other measurement stands on. */
async function open(args: { path: string }): Promise<Measured> {
  const t = performance.now();
  const engine = await openEngine(args.path);
  const stats = await engine.stats();
  const elapsed = performance.now() - t;
  await engine.close();
  return { ms: elapsed, maxRss: peakRss(), detail: { open: stats.open } };
}

async function sync(args: { path: string; url: string }): Promise<Measured> {
  const engine = await openEngine(args.path, args.url);
  try {
    const t = performance.now();
    const cpu = process.cpuUsage();
    const result = await engine.sync();
    const elapsed = performance.now() - t;
    const used = process.cpuUsage(cpu);
    const { pages, seen, created, updated, skipped } = result;
    return { ms: elapsed, maxRss: peakRss(), detail: { pages, seen, created, updated, skipped, engineCpuMs: (used.user + used.system) / 1000 } };
  } finally {
    await engine.close();
  }
}

/** Queues one change for each of orders 1..count (setup for `flush`, not measured). */
async function queue(args: { path: string; count: number }): Promise<Measured> {
  const engine = await openEngine(args.path);
  const t = performance.now();
  for (let from = 1; from <= args.count; from += TRACK_BATCH) {
    const n = Math.min(TRACK_BATCH, args.count - from + 1);
    const { refused } = await engine.requestChanges(Array.from({ length: n }, (_, i) => ({ orderId: from + i, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })));
    if (refused.length > 0) throw new Error(`refused: ${refused[0]!.error.message}`);
  }
  const elapsed = performance.now() - t;
  await engine.close();
  return { ms: elapsed, maxRss: peakRss(), detail: { queued: args.count } };
}

async function flush(args: { path: string; url: string }): Promise<Measured> {
  const engine = await openEngine(args.path, args.url);
  try {
    const t = performance.now();
    const cpu = process.cpuUsage();
    const report = await engine.flush({ untilIdle: true, maxWaitMs: 600_000 });
    const elapsed = performance.now() - t;
    const used = process.cpuUsage(cpu);
    return {
      ms: elapsed,
      maxRss: peakRss(),
      detail: { accepted: report.counters.accepted, open: report.open, calls: report.counters.calls.updateOrderStatuses ?? 0, engineCpuMs: (used.user + used.system) / 1000 },
    };
  } finally {
    await engine.close();
  }
}

export const tasks = { build, grow, open, sync, queue, flush };

interface Sizes {
  readonly small: number;
  readonly large: number;
  /** Orders the fake Market holds for the sync sweep of the large store, and of the small one. */
  readonly sweep: number;
  readonly sweepSmall: number;
  readonly flush: number;
}

const FULL: Sizes = { small: 100_000, large: 1_000_000, sweep: 1_000_000, sweepSmall: 100_000, flush: 100_000 };
const QUICK: Sizes = { small: 10_000, large: 100_000, sweep: 5_000, sweepSmall: 2_000, flush: 10_000 };

function progress(label: string, m: Measured): void {
  console.error(`  ${label}: ${ms(m.ms)}, peak RSS ${mb(m.maxRss)} ${JSON.stringify(m.detail)}`);
}

async function measureStore(label: string, path: string, sweep: number, sizes: Sizes, timeoutMs: number) {
  // Opening takes milliseconds: take the median of three fresh processes.
  const opens: Measured[] = [];
  for (let i = 0; i < 3; i++) opens.push(await runChild<Measured>({ module: 'scale', task: 'open', args: { path }, timeoutMs }));
  const opened = opens.sort((a, b) => a.ms - b.ms)[1]!;
  progress(`${label} open`, opened);
  const syncMarket = await startBenchMarket([CAMPAIGN]);
  let synced: Measured;
  try {
    syncMarket.seedOrders(
      Array.from({ length: sweep }, (_, i) => ({ id: i + 1, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: OBSERVED_AT })),
    );
    synced = await runChild<Measured>({ module: 'scale', task: 'sync', args: { path, url: syncMarket.url }, timeoutMs });
    progress(`${label} sync`, synced);
  } finally {
    await syncMarket.close();
  }
  const queued = await runChild<Measured>({ module: 'scale', task: 'queue', args: { path, count: sizes.flush }, timeoutMs });
  progress(`${label} queue`, queued);
  const flushMarket = await startBenchMarket([CAMPAIGN]);
  let flushed: Measured;
  try {
    flushMarket.seedOrders(
      Array.from({ length: sizes.flush }, (_, i) => ({ id: i + 1, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: OBSERVED_AT })),
    );
    flushed = await runChild<Measured>({ module: 'scale', task: 'flush', args: { path, url: flushMarket.url }, timeoutMs });
    progress(`${label} flush`, flushed);
  } finally {
    await flushMarket.close();
  }
  return { opened, synced, queued, flushed };
}

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const sizes = options.quick ? QUICK : FULL;
  const timeoutMs = options.quick ? 60_000 : 600_000;
  const dir = makeTempDir('scale');
  try {
    const smallPath = `${dir}/small.db`;
    const largePath = `${dir}/large.db`;
    const built = await runChild<Measured>({ module: 'scale', task: 'build', args: { path: smallPath, count: sizes.small }, timeoutMs });
    progress('build', built);
    fs.copyFileSync(smallPath, largePath);
    const grown = await runChild<Measured>({ module: 'scale', task: 'grow', args: { path: largePath, small: sizes.small, large: sizes.large }, timeoutMs });
    progress('grow', grown);
    const small = await measureStore(num(sizes.small), smallPath, sizes.sweepSmall, sizes, timeoutMs);
    const large = await measureStore(num(sizes.large), largePath, sizes.sweep, sizes, timeoutMs);

    const S = num(sizes.small);
    const L = num(sizes.large);
    const rssRow = (what: string, s: Measured, l: Measured, extra: string): Row => {
      const growth = l.maxRss - s.maxRss;
      return {
        id: '4',
        bench: 'Scale',
        metric: `peak RSS, ${what} (store of ${L}; same with ${S} as baseline)${extra}`,
        value: mb(l.maxRss),
        baseline: `${mb(s.maxRss)} at ${S}`,
        ratio: `${growth >= 0 ? '+' : '−'}${mb(Math.abs(growth))}`,
        target: `< 256 MB; ≤ +${mb(RSS_GROWTH_TARGET_BYTES)} for 10× orders`,
        verdict: verdict(l.maxRss < RSS_TARGET_BYTES && s.maxRss < RSS_TARGET_BYTES && growth <= RSS_GROWTH_TARGET_BYTES),
        goal: 5,
      };
    };
    const d = (m: Measured, k: string) => m.detail[k] ?? 0;
    return [
      {
        id: '4',
        bench: 'Scale',
        metric: `building the store: engine.trackOrders of ${S} orders (batches of ${num(TRACK_BATCH)}), then copies through the store port up to ${L} (${mb(d(grown, 'bytes'))} file)`,
        value: `${num(sizes.small / (built.ms / 1000))} orders/s tracked`,
        baseline: `copy ${ms(grown.ms)}`,
        ratio: '—',
        target: 'info',
        verdict: 'info',
      },
      rssRow('open the store + stats()', small.opened, large.opened, ''),
      {
        id: '4',
        bench: 'Scale',
        metric: `time to open the store (createEngine + stats()), ${L} orders against ${S}`,
        value: ms(large.opened.ms),
        baseline: `${ms(small.opened.ms)} at ${S}`,
        ratio: (large.opened.ms / small.opened.ms).toFixed(2),
        target: `ratio ≤ ${OPEN_TIME_GROWTH_TARGET}`,
        verdict: verdict(large.opened.ms / small.opened.ms <= OPEN_TIME_GROWTH_TARGET),
      },
      rssRow(
        `full sync sweep of the ${num(sizes.sweep)} orders the fake holds (baseline: ${num(sizes.sweepSmall)})`,
        small.synced,
        large.synced,
        `; ${num(d(large.synced, 'pages'))} pages, ${num(d(large.synced, 'updated'))} updated`,
      ),
      {
        id: '4',
        bench: 'Scale',
        metric: `sync sweep time, ${num(sizes.sweep)} orders; engine CPU ${ms(d(large.synced, 'engineCpuMs'))}, the rest is the fake`,
        value: `${ms(large.synced.ms)} (${num(sizes.sweep / (large.synced.ms / 1000))} orders/s)`,
        baseline: `${ms(small.synced.ms)} for ${num(sizes.sweepSmall)} at ${S}`,
        ratio: '—',
        target: 'info',
        verdict: 'info',
      },
      rssRow(`flush of ${num(sizes.flush)} queued changes`, small.flushed, large.flushed, `; ${num(d(large.flushed, 'calls'))} calls, ${num(d(large.flushed, 'accepted'))} accepted, ${d(large.flushed, 'open')} open`),
      {
        id: '4',
        bench: 'Scale',
        metric: `flush time, ${num(sizes.flush)} queued changes (engine CPU ${ms(d(large.flushed, 'engineCpuMs'))}; queueing them took ${ms(large.queued.ms)})`,
        value: `${ms(large.flushed.ms)} (${num(sizes.flush / (large.flushed.ms / 1000))} orders/s)`,
        baseline: `${ms(small.flushed.ms)} at ${S}`,
        ratio: (small.flushed.ms / large.flushed.ms).toFixed(2),
        target: 'info',
        verdict: 'info',
      },
    ];
  } finally {
    removeDir(dir);
  }
}
