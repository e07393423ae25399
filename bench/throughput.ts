// Benchmark 1: persisted transitions per second through the engine, against a bare baseline
// measured in the same process, interleaved: XState transition() + JSON.stringify of the
// persisted snapshot + one SQLite upsert per order, in transactions of the same size, on a
// file database in WAL mode with the same synchronous pragma. Then the durable latency of
// one requestChange at a time (one transaction, one commit each), against the baseline doing
// the same per order.
//
// Before/after (issue 10: the async engine may cost at most 10 %): with `--baseline <ref>` the
// same measurement also runs on the code of a git ref (bench/lib/compiled.ts), in child
// processes alternating with ours, and the table compares the two engines.

// The raw baseline is the one place outside src/store/sqlite/ that uses the driver: it measures
// better-sqlite3 itself (bare upserts), the floor the engine is compared with.
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { initialTransition, transition } from 'xstate';
import { orderMachine } from '../machines/order-machine.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { runChild } from './lib/child.js';
import { compiledWorkerAt } from './lib/compiled.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { median, percentile } from './lib/stats.js';
import { makeTempDir, removeDir } from './lib/tmp.js';

type Synchronous = 'FULL' | 'NORMAL';

/** Also the arguments of the baseline ref's `measure` task: keep the names its bench/throughput.ts reads. */
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

async function openEngineWith(path: string, synchronous: Synchronous, orderIds: readonly number[]): Promise<Engine> {
  const engine = await createEngine({ db: path, campaigns: [CAMPAIGN], sqlite: { synchronous } });
  for (let i = 0; i < orderIds.length; i += TRACK_CHUNK) {
    await engine.trackOrders(
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

/** Transitions per second of `step` over all orders, `batch` at a time (the engine's step is awaited, the baselines' is not a promise). */
async function timeBulk(total: number, batch: number, step: (slice: number[]) => Promise<void> | void, orderIds: readonly number[]): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < total; i += batch) await step(orderIds.slice(i, i + batch));
  return (total / (performance.now() - started)) * 1000;
}

async function measure(args: ThroughputArgs): Promise<ThroughputResult> {
  const engineRates: number[] = [];
  const baselineRates: number[] = [];
  const loadingBaselineRates: number[] = [];
  const dir = makeTempDir('throughput');
  try {
    for (let rep = 0; rep < args.reps; rep++) {
      const orderIds = ids(1 + rep * args.orders, args.orders);
      const engine = await openEngineWith(`${dir}/engine-${rep}.db`, args.synchronous, orderIds);
      const baseline = new Baseline(`${dir}/baseline-${rep}.db`, args.synchronous, orderIds);
      const loading = new Baseline(`${dir}/loading-${rep}.db`, args.synchronous, orderIds);
      const runEngine = async () =>
        engineRates.push(
          await timeBulk(args.orders, args.batch, async (slice) => {
            const { queued, refused } = await engine.requestChanges(slice.map((orderId) => ({ orderId, ...TARGET })));
            if (queued.length !== slice.length || refused.length > 0) throw new Error('engine refused a benchmark request');
          }, orderIds),
        );
      const runBaseline = async () => baselineRates.push(await timeBulk(args.orders, args.batch, (slice) => baseline.step(slice), orderIds));
      const runLoading = async () => loadingBaselineRates.push(await timeBulk(args.orders, args.batch, (slice) => loading.stepLoading(slice), orderIds));
      // Rotate the order, so none always runs on a warmer (or more fragmented) heap.
      const order = [runEngine, runBaseline, runLoading];
      for (let k = 0; k < order.length; k++) await order[(k + rep) % order.length]!();
      await engine.close();
      baseline.close();
      loading.close();
    }

    // Durable latency: one request, one transaction, one commit at a time.
    const latencyIds = ids(10_000_000, args.latencyOrders);
    const engine = await openEngineWith(`${dir}/latency-engine.db`, args.synchronous, latencyIds);
    const baseline = new Baseline(`${dir}/latency-baseline.db`, args.synchronous, latencyIds);
    const engineLatencyMs: number[] = [];
    const baselineLatencyMs: number[] = [];
    for (const [i, orderId] of latencyIds.entries()) {
      const order = i % 2 === 0 ? ['engine', 'baseline'] : ['baseline', 'engine'];
      for (const who of order) {
        const t = performance.now();
        if (who === 'engine') await engine.requestChange({ orderId, ...TARGET });
        else baseline.step([orderId]);
        (who === 'engine' ? engineLatencyMs : baselineLatencyMs).push(performance.now() - t);
      }
    }
    await engine.close();
    baseline.close();
    return { synchronous: args.synchronous, engineRates, baselineRates, loadingBaselineRates, engineLatencyMs, baselineLatencyMs };
  } finally {
    removeDir(dir);
  }
}

export const tasks = { measure };

/** A git commit whose bench 1 runs beside ours (bench/lib/compiled.ts); `label` is how the table names it. */
export interface BaselineCommit {
  readonly label: string;
  readonly commit: string;
}

export interface ThroughputOptions {
  readonly quick: boolean;
  readonly synchronous: readonly Synchronous[];
  /** With a commit, every child of ours is paired with one of that commit's; without, ours alone. */
  readonly baseline?: BaselineCommit | undefined;
}

export const THROUGHPUT_TARGET_RATIO = 0.7;
/** Our own bound for one durable change (not set by the issue): a commit with fsync plus the work. */
export const LATENCY_TARGET_P99_MS = 10;
/** Issue 10: the async engine may cost at most 10 % of bench 1 against the commit before it. */
export const BEFORE_AFTER_TARGET_RATIO = 0.9;
/**
 * Children per side against a baseline commit, run in the order after, before, before, after:
 * mirrored, so a load that rises or falls during the run weighs on both sides alike.
 */
const ROUNDS_WITH_BASELINE = 2;

/** One side's children pooled: every rep and every latency sample of all of them. */
function pool(results: readonly ThroughputResult[]): ThroughputResult {
  const all = (key: Exclude<keyof ThroughputResult, 'synchronous'>) => results.flatMap((r) => r[key]);
  return {
    synchronous: results[0]!.synchronous,
    engineRates: all('engineRates'),
    baselineRates: all('baselineRates'),
    loadingBaselineRates: all('loadingBaselineRates'),
    engineLatencyMs: all('engineLatencyMs'),
    baselineLatencyMs: all('baselineLatencyMs'),
  };
}

/** The lowest and highest of the children's median bulk rates, e.g. `3 739–6 564`. */
function spread(results: readonly ThroughputResult[]): string {
  const medians = results.map((r) => median(r.engineRates));
  return `${num(Math.min(...medians))}–${num(Math.max(...medians))}`;
}

/** A baseline commit's result must have the shape we read; an older bench/throughput.ts might not. */
function checkShape(r: ThroughputResult, label: string): ThroughputResult {
  const keys = ['engineRates', 'baselineRates', 'loadingBaselineRates', 'engineLatencyMs', 'baselineLatencyMs'] as const;
  const missing = keys.filter((k) => !Array.isArray(r[k]) || r[k].length === 0);
  if (missing.length > 0) throw new Error(`bench 1 of ${label} returned no ${missing.join(', ')}: its bench/throughput.ts measures something else`);
  return r;
}

export async function run(options: ThroughputOptions): Promise<Row[]> {
  const baseline = options.baseline;
  const baselineWorker = baseline ? compiledWorkerAt(baseline.commit) : undefined;
  const rows: Row[] = [];
  for (const synchronous of options.synchronous) {
    const args: ThroughputArgs = options.quick
      ? { synchronous, orders: 4_000, batch: 500, reps: 2, latencyOrders: 300 }
      : { synchronous, orders: 20_000, batch: 500, reps: 3, latencyOrders: 2_000 };
    const after: ThroughputResult[] = [];
    const before: ThroughputResult[] = [];
    const sides = baseline
      ? Array.from({ length: ROUNDS_WITH_BASELINE }, (_, round) => (round % 2 === 0 ? (['after', 'before'] as const) : (['before', 'after'] as const))).flat()
      : (['after'] as const);
    for (const side of sides) {
      const worker = side === 'before' ? baselineWorker : undefined;
      const r = await runChild<ThroughputResult>({ module: 'throughput', task: 'measure', args, timeoutMs: 300_000, ...(worker ? { worker } : {}) });
      if (side === 'before') before.push(checkShape(r, baseline!.label));
      else after.push(r);
      if (baseline) {
        const who = side === 'before' ? baseline.label : 'this tree';
        console.error(`  ${who}, synchronous=${synchronous}: engine ${num(median(r.engineRates))} /s, raw baseline ${num(median(r.baselineRates))} /s, latency median ${ms(median(r.engineLatencyMs))}`);
      }
    }
    const r = pool(after);
    const reps = r.engineRates.length;
    const calls = r.engineLatencyMs.length;
    const engine = median(r.engineRates);
    const raw = median(r.baselineRates);
    const ratio = engine / raw;
    rows.push({
      id: '1',
      bench: 'Engine throughput',
      metric: `bulk requestChanges (${args.batch}/txn, ${num(args.orders)} orders × ${reps}), synchronous=${synchronous}`,
      value: `${num(engine)} transitions/s`,
      baseline: `${num(raw)} /s`,
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
      metric: `single requestChange durable latency, median (${num(calls)} calls), synchronous=${synchronous}`,
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
    if (baseline) rows.push(...beforeAfterRows(baseline.label, before, after, args));
  }
  return rows;
}

/** The baseline commit's bench 1 line, then this tree's engine against that commit's. */
function beforeAfterRows(label: string, before: readonly ThroughputResult[], after: readonly ThroughputResult[], args: ThroughputArgs): Row[] {
  const b = pool(before);
  const a = pool(after);
  const engineBefore = median(b.engineRates);
  const rawBefore = median(b.baselineRates);
  const engineAfter = median(a.engineRates);
  const ratio = engineAfter / engineBefore;
  const latencyBefore = median(b.engineLatencyMs);
  const latencyAfter = median(a.engineLatencyMs);
  const latencyRatio = latencyBefore / latencyAfter;
  const how = `${before.length} children each, alternating with ours`;
  return [
    {
      id: '1',
      bench: 'Engine throughput',
      metric: `(before: ${label}) bulk requestChanges (${args.batch}/txn, ${num(args.orders)} orders × ${b.engineRates.length}) on that commit's engine (${how}), synchronous=${args.synchronous}`,
      value: `${num(engineBefore)} transitions/s`,
      baseline: `${num(rawBefore)} /s`,
      ratio: (engineBefore / rawBefore).toFixed(3),
      target: 'info',
      verdict: 'info',
    },
    {
      id: '1',
      bench: 'Engine throughput',
      // The spread of the children's medians shows how far one run can be trusted on a loaded
      // machine. (Not each side against its own raw baseline: that baseline runs in the same
      // process after the engine, and measured about 15 % faster after the async engine.)
      metric: `after/before: bulk requestChanges, this tree against ${label} (child medians: after ${spread(after)}, before ${spread(before)} /s), synchronous=${args.synchronous}`,
      value: `${num(engineAfter)} transitions/s`,
      baseline: `${label}: ${num(engineBefore)} /s`,
      ratio: ratio.toFixed(3),
      target: `ratio ≥ ${BEFORE_AFTER_TARGET_RATIO}`,
      verdict: verdict(ratio >= BEFORE_AFTER_TARGET_RATIO),
    },
    {
      id: '1',
      bench: 'Engine throughput',
      metric: `after/before: single requestChange durable latency, median (${num(a.engineLatencyMs.length)} calls each), this tree against ${label}, synchronous=${args.synchronous}`,
      value: ms(latencyAfter),
      baseline: `${label}: ${ms(latencyBefore)}`,
      ratio: latencyRatio.toFixed(3),
      target: `ratio ≥ ${BEFORE_AFTER_TARGET_RATIO}`,
      verdict: verdict(latencyRatio >= BEFORE_AFTER_TARGET_RATIO),
    },
  ];
}
