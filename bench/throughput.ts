// Benchmark 1: persisted transitions per second through the engine, against a bare baseline
// measured in the same process, interleaved: XState transition() + JSON.stringify of the
// persisted snapshot + one SQLite upsert per order, in transactions of the same size, on a
// file database in WAL mode with the same synchronous pragma. Then the durable latency of
// one requestChange at a time (one transaction, one commit each), against the baseline doing
// the same per order.

import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { initialTransition, transition } from 'xstate';
import { orderMachine } from '../machines/order-machine.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { runChild } from './lib/child.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { median, percentile } from './lib/stats.js';
import { makeTempDir, removeDir } from './lib/tmp.js';

type Synchronous = 'FULL' | 'NORMAL';

export interface ThroughputArgs {
  readonly synchronous: Synchronous;
  /** Orders changed per repetition, by the engine and by the baseline each. */
  readonly orders: number;
  /** Requests per requestChanges call = orders per baseline transaction. */
  readonly batch: number;
  readonly reps: number;
  /** Single-order requests timed one at a time. */
  readonly latencyOrders: number;
}

export interface ThroughputResult {
  readonly synchronous: Synchronous;
  readonly engineRates: number[];
  readonly baselineRates: number[];
  readonly loadingBaselineRates: number[];
  readonly engineLatencyMs: number[];
  readonly baselineLatencyMs: number[];
}

const CAMPAIGN = { campaignId: 1, businessId: 1, model: 'FBS' as const };
const TARGET = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const TRACK_CHUNK = 5_000;
const OBSERVED_AT = Date.UTC(2025, 0, 1);

function ids(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

function openEngineWith(path: string, synchronous: Synchronous, orderIds: readonly number[]): Engine {
  const engine = createEngine({ db: path, campaigns: [CAMPAIGN], sqlite: { synchronous } });
  for (let i = 0; i < orderIds.length; i += TRACK_CHUNK) {
    engine.trackOrders(
      orderIds.slice(i, i + TRACK_CHUNK).map((orderId) => ({ orderId, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED', observedAt: OBSERVED_AT })),
    );
  }
  return engine;
}

/** The bare baseline: the machine's own transition and snapshot, one upsert per order. */
class Baseline {
  readonly db: Database;
  readonly #upsert: Statement;
  readonly #select: Statement<[number], { snapshot: string }>;
  readonly #snapshots = new Map<number, ReturnType<typeof orderMachine.resolveState>>();

  constructor(path: string, synchronous: Synchronous, orderIds: readonly number[]) {
    this.db = new BetterSqlite3(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous}`);
    this.db.exec('CREATE TABLE snapshots (order_id INTEGER PRIMARY KEY, snapshot TEXT NOT NULL, updated_at INTEGER NOT NULL)');
    this.#upsert = this.db.prepare(`INSERT INTO snapshots (order_id, snapshot, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (order_id) DO UPDATE SET snapshot = excluded.snapshot, updated_at = excluded.updated_at`);
    this.#select = this.db.prepare('SELECT snapshot FROM snapshots WHERE order_id = ?');
    this.db.transaction(() => {
      for (const orderId of orderIds) {
        const [snapshot] = initialTransition(orderMachine, {
          orderId, campaignId: CAMPAIGN.campaignId, model: CAMPAIGN.model, status: 'PROCESSING', substatus: 'STARTED', observedAt: OBSERVED_AT,
        });
        this.#snapshots.set(orderId, snapshot);
        this.#upsert.run(orderId, JSON.stringify(orderMachine.getPersistedSnapshot(snapshot)), 0);
      }
    })();
  }

  /** One transaction: transition + stringify + upsert for each order. */
  step(orderIds: readonly number[]): void {
    const now = Date.now();
    this.db.transaction(() => {
      for (const orderId of orderIds) {
        const [next] = transition(orderMachine, this.#snapshots.get(orderId)!, { type: 'SELLER.REQUEST', ...TARGET, at: now });
        this.#upsert.run(orderId, JSON.stringify(orderMachine.getPersistedSnapshot(next)), now);
        this.#snapshots.set(orderId, next);
      }
    }).immediate();
  }

  /** The same, but each snapshot is first read back from SQLite (SELECT, JSON.parse, resolveState) as the engine must. */
  stepLoading(orderIds: readonly number[]): void {
    const now = Date.now();
    this.db.transaction(() => {
      for (const orderId of orderIds) {
        const stored = JSON.parse(this.#select.get(orderId)!.snapshot) as Parameters<typeof orderMachine.resolveState>[0];
        const [next] = transition(orderMachine, orderMachine.resolveState(stored), { type: 'SELLER.REQUEST', ...TARGET, at: now });
        this.#upsert.run(orderId, JSON.stringify(orderMachine.getPersistedSnapshot(next)), now);
      }
    }).immediate();
  }

  close(): void {
    this.db.close();
  }
}

function timeBulk(total: number, batch: number, step: (slice: number[]) => void, orderIds: readonly number[]): number {
  const started = performance.now();
  for (let i = 0; i < total; i += batch) step(orderIds.slice(i, i + batch) as number[]);
  return (total / (performance.now() - started)) * 1000;
}

function measure(args: ThroughputArgs): ThroughputResult {
  const engineRates: number[] = [];
  const baselineRates: number[] = [];
  const loadingBaselineRates: number[] = [];
  const dir = makeTempDir('throughput');
  try {
    for (let rep = 0; rep < args.reps; rep++) {
      const orderIds = ids(1 + rep * args.orders, args.orders);
      const engine = openEngineWith(`${dir}/engine-${rep}.db`, args.synchronous, orderIds);
      const baseline = new Baseline(`${dir}/baseline-${rep}.db`, args.synchronous, orderIds);
      const loading = new Baseline(`${dir}/loading-${rep}.db`, args.synchronous, orderIds);
      const runEngine = () =>
        engineRates.push(
          timeBulk(args.orders, args.batch, (slice) => {
            const { queued, refused } = engine.requestChanges(slice.map((orderId) => ({ orderId, ...TARGET })));
            if (queued.length !== slice.length || refused.length > 0) throw new Error('engine refused a benchmark request');
          }, orderIds),
        );
      const runBaseline = () => baselineRates.push(timeBulk(args.orders, args.batch, (slice) => baseline.step(slice), orderIds));
      const runLoading = () => loadingBaselineRates.push(timeBulk(args.orders, args.batch, (slice) => loading.stepLoading(slice), orderIds));
      // Rotate the order, so none always runs on a warmer (or more fragmented) heap.
      const order = [runEngine, runBaseline, runLoading];
      for (let k = 0; k < order.length; k++) order[(k + rep) % order.length]!();
      void engine.close();
      baseline.close();
      loading.close();
    }

    // Durable latency: one request, one transaction, one commit at a time.
    const latencyIds = ids(10_000_000, args.latencyOrders);
    const engine = openEngineWith(`${dir}/latency-engine.db`, args.synchronous, latencyIds);
    const baseline = new Baseline(`${dir}/latency-baseline.db`, args.synchronous, latencyIds);
    const engineLatencyMs: number[] = [];
    const baselineLatencyMs: number[] = [];
    latencyIds.forEach((orderId, i) => {
      const order = i % 2 === 0 ? ['engine', 'baseline'] : ['baseline', 'engine'];
      for (const who of order) {
        const t = performance.now();
        if (who === 'engine') engine.requestChange({ orderId, ...TARGET });
        else baseline.step([orderId]);
        (who === 'engine' ? engineLatencyMs : baselineLatencyMs).push(performance.now() - t);
      }
    });
    void engine.close();
    baseline.close();
    return { synchronous: args.synchronous, engineRates, baselineRates, loadingBaselineRates, engineLatencyMs, baselineLatencyMs };
  } finally {
    removeDir(dir);
  }
}

export const tasks = { measure };

export interface ThroughputOptions {
  readonly quick: boolean;
  readonly synchronous: readonly Synchronous[];
}

export const THROUGHPUT_TARGET_RATIO = 0.7;
/** Our own bound for one durable change (not set by the issue): a commit with fsync plus the work. */
export const LATENCY_TARGET_P99_MS = 10;

export async function run(options: ThroughputOptions): Promise<Row[]> {
  const rows: Row[] = [];
  for (const synchronous of options.synchronous) {
    const args: ThroughputArgs = options.quick
      ? { synchronous, orders: 4_000, batch: 500, reps: 2, latencyOrders: 300 }
      : { synchronous, orders: 20_000, batch: 500, reps: 3, latencyOrders: 2_000 };
    const r = await runChild<ThroughputResult>({ module: 'throughput', task: 'measure', args, timeoutMs: 300_000 });
    const engine = median(r.engineRates);
    const baseline = median(r.baselineRates);
    const ratio = engine / baseline;
    rows.push({
      id: '1',
      bench: 'Engine throughput',
      metric: `bulk requestChanges (${args.batch}/txn, ${num(args.orders)} orders × ${args.reps}), synchronous=${synchronous}`,
      value: `${num(engine)} transitions/s`,
      baseline: `${num(baseline)} /s`,
      ratio: ratio.toFixed(3),
      target: `ratio ≥ ${THROUGHPUT_TARGET_RATIO}`,
      verdict: verdict(ratio >= THROUGHPUT_TARGET_RATIO),
    });
    const loading = median(r.loadingBaselineRates);
    rows.push({
      id: '1',
      bench: 'Engine throughput',
      metric: `(info) the same, against a baseline that also reads each snapshot back (SELECT + JSON.parse + resolveState), synchronous=${synchronous}`,
      value: `${num(engine)} transitions/s`,
      baseline: `${num(loading)} /s`,
      ratio: (engine / loading).toFixed(3),
      target: 'info',
      verdict: 'info',
    });
    const em = median(r.engineLatencyMs);
    const bm = median(r.baselineLatencyMs);
    rows.push({
      id: '1',
      bench: 'Engine throughput',
      metric: `single requestChange durable latency, median (${num(args.latencyOrders)} calls), synchronous=${synchronous}`,
      value: ms(em),
      baseline: ms(bm),
      ratio: (bm / em).toFixed(3),
      target: `ratio ≥ ${THROUGHPUT_TARGET_RATIO}`,
      verdict: verdict(bm / em >= THROUGHPUT_TARGET_RATIO),
    });
    const ep = percentile(r.engineLatencyMs, 99);
    rows.push({
      id: '1',
      bench: 'Engine throughput',
      metric: `single requestChange durable latency, p99, synchronous=${synchronous}`,
      value: ms(ep),
      baseline: ms(percentile(r.baselineLatencyMs, 99)),
      ratio: '—',
      target: `< ${LATENCY_TARGET_P99_MS} ms`,
      verdict: verdict(ep < LATENCY_TARGET_P99_MS),
    });
  }
  return rows;
}
