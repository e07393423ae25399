// Benchmark 1: persisted transitions per second through the engine, against baselines measured
// in the same process, all on file databases in WAL mode with the same synchronous pragma, in
// transactions of the same size, taking turns batch by batch (timeBulkInTurns):
// - the floor of issue 14, goal 1 (class Floor): the three rows the engine writes per change,
//   written raw on the engine's own schema, plus the cheapest pure step (the stepper on a
//   snapshot in memory, serialised);
// - XState's transition() + JSON.stringify of the persisted snapshot + one upsert per order
//   (issue 6's baseline), and the same reading each snapshot back first.
// Then the durable latency of one requestChange at a time (one transaction, one commit each),
// against the transition() baseline doing the same per order.
//
// Before/after (issue 10: the async engine may cost at most 10 %): with `--baseline <ref>` the
// engine of a git ref (compiled by bench/lib/compiled.ts) and ours run in ONE child, alternating
// batch by batch, over several repetitions on fresh databases; the table gives the median of
// the repetitions' after/before ratios and their range. Whole children of each side, one after
// the other, measured 0.70 to 1.46 between runs on a shared 2-core machine: the load changes
// between two children far more than the engines differ. Within one process and a few hundred
// milliseconds the load hits both alike: the medians stayed within 0.91 to 0.97 from run to run.

import { pathToFileURL } from 'node:url';
// The raw baseline is the one place outside src/store/sqlite/ that uses the driver: it measures
// better-sqlite3 itself (bare upserts), the floor the engine is compared with.
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { initialTransition, transition } from 'xstate';
import { orderMachine, ORDER_MACHINE_VERSION, type OrderEvent } from '../machines/order-machine.js';
import type { RequestChangeCommand, TrackOrderCommand } from '../src/engine/commands.js';
import { createEngine, type EngineOptions } from '../src/engine/engine.js';
import { createMachineStepper } from '../src/engine/machine-step.js';
import { idempotencyKey } from '../src/engine/order-book.js';
import { changeState, loadOrderSnapshot, serializeOrderSnapshot, type OrderSnapshot } from '../src/engine/order-snapshots.js';
import { runChild } from './lib/child.js';
import { compiledEngineAt } from './lib/compiled.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { median, percentile, sidesInStep } from './lib/stats.js';
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
  /** Issue 14's floor (class Floor), bulk, measured beside the engine. */
  readonly floorRates: number[];
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

/**
 * What bench 1 uses of an engine, ours or a baseline commit's. The synchronous engine before
 * issue 10 returns values where ours returns promises; every call is awaited, so both fit.
 */
interface BenchEngine {
  trackOrders(orders: readonly TrackOrderCommand[]): unknown;
  requestChanges(commands: readonly RequestChangeCommand[]): Promise<ChangesResult> | ChangesResult;
  requestChange(command: RequestChangeCommand): unknown;
  close(): Promise<void>;
}
interface ChangesResult {
  readonly queued: readonly unknown[];
  readonly refused: readonly unknown[];
}
type CreateEngine = (options: EngineOptions) => Promise<BenchEngine> | BenchEngine;

async function openEngineWith(path: string, synchronous: Synchronous, orderIds: readonly number[], create: CreateEngine = createEngine): Promise<BenchEngine> {
  const engine = await create({ db: path, campaigns: [CAMPAIGN], sqlite: { synchronous } });
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

/** What the floor writes of a row it stepped: the columns it passes on to the next step. */
interface FloorOrder {
  snapshot: OrderSnapshot;
  rowVersion: number;
  status: string;
  substatus: string | null;
  change: string;
}

/**
 * Issue 14's floor: what a persisted change cannot do without. The three rows the engine writes
 * for a request (the order's UPDATE, its journal row, its outbox row), written raw (prepared
 * statements, positional parameters), on the engine's own schema and indexes (the file is made by the engine and its
 * orders tracked by it), plus the cheapest pure step of the same machine on the same event: the
 * stepper on a snapshot already in memory, serialised. No read, no validation, no judging.
 */
class Floor {
  readonly db: Database;
  readonly #update: Statement;
  readonly #journal: Statement;
  readonly #outbox: Statement;
  readonly #orders = new Map<number, FloorOrder>();
  readonly #stepper = createMachineStepper(orderMachine);

  /** `path`: a file the engine created and tracked `orderIds` in, then closed. */
  constructor(path: string, synchronous: Synchronous, orderIds: readonly number[]) {
    this.db = new BetterSqlite3(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous}`);
    // Positional parameters, the columns the engine writes: the plainest way to write these rows.
    this.#update = this.db.prepare(`UPDATE orders SET status = ?, substatus = ?, change_state = ?, observed_at = ?, machine_version = ?, snapshot = ?,
      row_version = row_version + 1, updated_at = ? WHERE order_id = ? AND row_version = ?`);
    this.#journal = this.db.prepare(`INSERT INTO journal
      (order_id, row_version, event_type, event, source, from_status, from_substatus, from_change, to_status, to_substatus, to_change, at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#outbox = this.db.prepare(`INSERT INTO outbox
      (idempotency_key, order_id, campaign_id, request_no, status, substatus, real_delivery_date, kind, payload, state, next_attempt_at, journal_seq, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, NULL, 'statusChange', NULL, 'queued', ?, ?, ?, ?)`);
    const select = this.db.prepare<[number], { snapshot: string; row_version: number; machine_version: number; status: string; substatus: string | null; change_state: string }>(
      'SELECT snapshot, row_version, machine_version, status, substatus, change_state FROM orders WHERE order_id = ?',
    );
    for (const orderId of orderIds) {
      const row = select.get(orderId)!;
      this.#orders.set(orderId, {
        snapshot: loadOrderSnapshot(row.snapshot, row.machine_version, orderId),
        rowVersion: row.row_version,
        status: row.status,
        substatus: row.substatus,
        change: row.change_state,
      });
    }
  }

  step(orderIds: readonly number[]): void {
    const now = Date.now();
    this.db.transaction(() => {
      for (const orderId of orderIds) {
        const order = this.#orders.get(orderId)!;
        const event: OrderEvent = { type: 'SELLER.REQUEST', ...TARGET, at: now };
        const [next, actions] = this.#stepper.step(order.snapshot, event);
        const send = actions.find((a) => a.type === 'effect.sendStatusChange')?.params as { pending: { status: string; substatus: string; requestNo: number } } | undefined;
        if (send === undefined) throw new Error(`floor: order ${orderId} queued nothing`);
        const change = changeState(next.value);
        const rowVersion = order.rowVersion + 1;
        const { status, substatus, observedAt } = next.context;
        const updated = this.#update.run(status, substatus, change, observedAt, ORDER_MACHINE_VERSION, serializeOrderSnapshot(next), now, orderId, order.rowVersion);
        if (updated.changes !== 1) throw new Error(`floor: order ${orderId} was not updated`);
        const journalSeq = this.#journal.run(
          orderId, rowVersion, event.type, JSON.stringify(event), 'seller', order.status, order.substatus, order.change, status, substatus, change, now,
        ).lastInsertRowid;
        const { pending } = send;
        this.#outbox.run(idempotencyKey(orderId, pending), orderId, CAMPAIGN.campaignId, pending.requestNo, pending.status, pending.substatus, now, journalSeq, now, now);
        this.#orders.set(orderId, { snapshot: next, rowVersion, status: next.context.status, substatus: next.context.substatus, change });
      }
    }).immediate();
  }

  close(): void {
    this.db.close();
  }
}

/** One requestChanges call that must queue every request: a refusal would time the wrong work. */
async function requestAll(engine: BenchEngine, orderIds: readonly number[]): Promise<void> {
  const { queued, refused } = await engine.requestChanges(orderIds.map((orderId) => ({ orderId, ...TARGET })));
  if (queued.length !== orderIds.length || refused.length > 0) throw new Error('engine refused a benchmark request');
}

/** The bulk sides of bench 1: each does one batch of orders on a database of its own. */
type BulkSide = (slice: number[]) => Promise<void> | void;

/**
 * Transitions per second of each side over all orders, `batch` at a time, the sides taking turns
 * batch by batch in an order that rotates: a load that changes over a few batches (a shared
 * machine) weighs on every side alike, where whole runs one after the other measured the load.
 * The first batch of each side is not timed: it pays for the JIT.
 */
async function timeBulkInTurns(total: number, batch: number, sides: readonly BulkSide[], orderIds: readonly number[]): Promise<number[]> {
  const elapsed = sides.map(() => 0);
  let timed = 0;
  for (let i = 0, k = 0; i < total; i += batch, k++) {
    const slice = orderIds.slice(i, i + batch);
    if (k > 0) timed += slice.length;
    for (let j = 0; j < sides.length; j++) {
      const side = (j + k) % sides.length;
      const started = performance.now();
      await sides[side]!(slice);
      if (k > 0) elapsed[side]! += performance.now() - started;
    }
  }
  return elapsed.map((ms) => (timed / ms) * 1000);
}

async function measure(args: ThroughputArgs): Promise<ThroughputResult> {
  const engineRates: number[] = [];
  const baselineRates: number[] = [];
  const loadingBaselineRates: number[] = [];
  const floorRates: number[] = [];
  const dir = makeTempDir('throughput');
  try {
    for (let rep = 0; rep < args.reps; rep++) {
      const orderIds = ids(1 + rep * args.orders, args.orders);
      const engine = await openEngineWith(`${dir}/engine-${rep}.db`, args.synchronous, orderIds);
      const baseline = new Baseline(`${dir}/baseline-${rep}.db`, args.synchronous, orderIds);
      const loading = new Baseline(`${dir}/loading-${rep}.db`, args.synchronous, orderIds);
      await (await openEngineWith(`${dir}/floor-${rep}.db`, args.synchronous, orderIds)).close();
      const floor = new Floor(`${dir}/floor-${rep}.db`, args.synchronous, orderIds);
      const [e, b, l, f] = await timeBulkInTurns(
        args.orders,
        args.batch,
        [(slice) => requestAll(engine, slice), (slice) => baseline.step(slice), (slice) => loading.stepLoading(slice), (slice) => floor.step(slice)],
        orderIds,
      );
      engineRates.push(e!);
      baselineRates.push(b!);
      loadingBaselineRates.push(l!);
      floorRates.push(f!);
      await engine.close();
      baseline.close();
      loading.close();
      floor.close();
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
    return { synchronous: args.synchronous, engineRates, baselineRates, loadingBaselineRates, floorRates, engineLatencyMs, baselineLatencyMs };
  } finally {
    removeDir(dir);
  }
}

/** The arguments of the `interleave` task: this tree's engine and a baseline commit's, in one child. */
export interface InterleaveArgs {
  readonly synchronous: Synchronous;
  /** Orders changed per repetition by each engine. */
  readonly orders: number;
  /** Requests per requestChanges call. */
  readonly batch: number;
  readonly reps: number;
  /** Single-order requests timed one at a time per repetition, by each engine. */
  readonly latencyOrders: number;
  /** The baseline commit's compiled src/engine/engine.js (compiledEngineAt). */
  readonly beforeEngine: string;
}

/** One repetition on fresh databases: each side's bulk rate and its single-change latencies. */
export interface InterleaveRep {
  readonly afterRate: number;
  readonly beforeRate: number;
  readonly afterLatencyMs: number[];
  readonly beforeLatencyMs: number[];
}

type Side = 'after' | 'before';

/**
 * One turn of the event loop, untimed, before every timed call of the interleaved child. The
 * engine before issue 10 never returns to the event loop, so whatever is left queued there (V8
 * runs parts of its garbage collection as event-loop tasks; one turn after a batch took up to
 * 37 ms) would run inside our engine's next call, where the SQLite store yields to the event loop
 * before each of its calls: our side would pay for both. Measured on the same two trees (FULL, 6 reps
 * each): bulk after/before about 0.91 without this turn, 0.95 with it.
 */
function turnEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Untimed work on each engine before the first repetition, so neither pays for the JIT in its figures. */
const WARMUP = { batches: 4, latencyOrders: 50 } as const;

/**
 * Both engines in this process, alternating: in each repetition every `batch` of bulk requests
 * runs on one engine and then on the other (sidesInStep), then single requests alternate the
 * same way, one call at a time, each call after a turn of the event loop (turnEventLoop). Load
 * that changes slower than one batch (a few hundred milliseconds) weighs on both sides alike.
 */
async function interleave(args: InterleaveArgs): Promise<InterleaveRep[]> {
  const create: Record<Side, CreateEngine> = {
    after: createEngine,
    before: ((await import(pathToFileURL(args.beforeEngine).href)) as { createEngine: CreateEngine }).createEngine,
  };
  const dir = makeTempDir('interleave');
  try {
    // Every round opens databases of its own, so the ids may repeat from one round to the next.
    const round = async (tag: string, orders: number, latencyOrders: number): Promise<InterleaveRep> => {
      const bulkIds = ids(1, orders);
      const latencyIds = ids(1 + orders, latencyOrders);
      const engines: Record<Side, BenchEngine> = {
        after: await openEngineWith(`${dir}/after-${tag}.db`, args.synchronous, [...bulkIds, ...latencyIds], create.after),
        before: await openEngineWith(`${dir}/before-${tag}.db`, args.synchronous, [...bulkIds, ...latencyIds], create.before),
      };
      const bulkMs: Record<Side, number> = { after: 0, before: 0 };
      for (let i = 0, k = 0; i < bulkIds.length; i += args.batch, k++) {
        const slice = bulkIds.slice(i, i + args.batch);
        for (const side of sidesInStep<Side>(k, 'after', 'before')) {
          await turnEventLoop();
          const t = performance.now();
          await requestAll(engines[side], slice);
          bulkMs[side] += performance.now() - t;
        }
      }
      const latencyMs: Record<Side, number[]> = { after: [], before: [] };
      for (const [k, orderId] of latencyIds.entries()) {
        for (const side of sidesInStep<Side>(k, 'after', 'before')) {
          await turnEventLoop();
          const t = performance.now();
          await engines[side].requestChange({ orderId, ...TARGET });
          latencyMs[side].push(performance.now() - t);
        }
      }
      await engines.after.close();
      await engines.before.close();
      return {
        afterRate: (orders / bulkMs.after) * 1000,
        beforeRate: (orders / bulkMs.before) * 1000,
        afterLatencyMs: latencyMs.after,
        beforeLatencyMs: latencyMs.before,
      };
    };
    await round('warmup', WARMUP.batches * args.batch, WARMUP.latencyOrders);
    const reps: InterleaveRep[] = [];
    for (let rep = 0; rep < args.reps; rep++) reps.push(await round(String(rep), args.orders, args.latencyOrders));
    return reps;
  } finally {
    removeDir(dir);
  }
}

export const tasks = { measure, interleave };

/** A git commit whose engine bench 1 compares with ours (bench/lib/compiled.ts); `label` is how the table names it. */
export interface BaselineCommit {
  readonly label: string;
  readonly commit: string;
}

export interface ThroughputOptions {
  readonly quick: boolean;
  readonly synchronous: readonly Synchronous[];
  /** With a commit, a second child per `synchronous` runs that commit's engine and ours interleaved. */
  readonly baseline?: BaselineCommit | undefined;
}

export const THROUGHPUT_TARGET_RATIO = 0.7;
/** Issue 14, goal 1: bulk persisted transitions against the floor (class Floor). */
export const FLOOR_TARGET_RATIO = 0.8;
/** Our own bound for one durable change (not set by the issue): a commit with fsync plus the work. */
export const LATENCY_TARGET_P99_MS = 10;
/** Issue 10: the async engine may cost at most 10 % of bench 1 against the commit before it. */
export const BEFORE_AFTER_TARGET_RATIO = 0.9;

export async function run(options: ThroughputOptions): Promise<Row[]> {
  const baseline = options.baseline;
  const beforeEngine = baseline ? compiledEngineAt(baseline.commit) : undefined;
  const rows: Row[] = [];
  for (const synchronous of options.synchronous) {
    const args: ThroughputArgs = options.quick
      ? { synchronous, orders: 4_000, batch: 500, reps: 2, latencyOrders: 300 }
      : { synchronous, orders: 20_000, batch: 500, reps: 3, latencyOrders: 2_000 };
    const r = await runChild<ThroughputResult>({ module: 'throughput', task: 'measure', args, timeoutMs: 300_000 });
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
    const floor = median(r.floorRates);
    const perChange = (rate: number) => `${num(1e6 / rate, 1)} µs/change`;
    rows.push({
      id: '1',
      bench: 'Engine throughput',
      metric: `issue 14 goal 1: bulk requestChanges against the floor (the same 3 rows written raw + the stepper on a snapshot in memory; engine ${perChange(engine)}, floor ${perChange(floor)}), synchronous=${synchronous}`,
      value: `${num(engine)} transitions/s`,
      baseline: `floor ${num(floor)} /s`,
      ratio: (engine / floor).toFixed(3),
      target: `ratio ≥ ${FLOOR_TARGET_RATIO}`,
      verdict: verdict(engine / floor >= FLOOR_TARGET_RATIO),
      goal: 1,
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
    if (baseline && beforeEngine) {
      const interleaveArgs: InterleaveArgs = options.quick
        ? { synchronous, orders: 2_000, batch: 500, reps: 3, latencyOrders: 100, beforeEngine }
        : { synchronous, orders: 8_000, batch: 500, reps: 7, latencyOrders: 200, beforeEngine };
      const result = await runChild<InterleaveRep[]>({ module: 'throughput', task: 'interleave', args: interleaveArgs, timeoutMs: 300_000 });
      rows.push(...beforeAfterRows(baseline.label, result, interleaveArgs));
    }
  }
  return rows;
}

/** The median of the repetitions' ratios, and their range as `0.934–1.012`. */
function medianAndRange(ratios: readonly number[]): { median: number; range: string } {
  return { median: median(ratios), range: `${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}` };
}

/** This tree's engine against the baseline commit's, measured in one child (the `interleave` task). */
function beforeAfterRows(label: string, reps: readonly InterleaveRep[], args: InterleaveArgs): Row[] {
  const n = reps.length;
  // All repetitions' orders over all their time (each rep's time is orders / rate).
  const pooledRate = (rates: readonly number[]) => (n * args.orders) / rates.reduce((t, rate) => t + args.orders / rate, 0);
  const afterRate = pooledRate(reps.map((r) => r.afterRate));
  const beforeRate = pooledRate(reps.map((r) => r.beforeRate));
  const bulk = medianAndRange(reps.map((r) => r.afterRate / r.beforeRate));
  const afterLatency = median(reps.flatMap((r) => r.afterLatencyMs));
  const beforeLatency = median(reps.flatMap((r) => r.beforeLatencyMs));
  const latency = medianAndRange(reps.map((r) => median(r.beforeLatencyMs) / median(r.afterLatencyMs)));
  console.error(
    `  after/before, synchronous=${args.synchronous}, per rep: bulk ${reps.map((r) => (r.afterRate / r.beforeRate).toFixed(3)).join(' ')}; ` +
      `latency ${reps.map((r) => (median(r.beforeLatencyMs) / median(r.afterLatencyMs)).toFixed(3)).join(' ')}`,
  );
  const how = (range: string) => `both engines in one child, alternating; ratio: median of ${n} reps, range ${range}`;
  return [
    {
      id: '1',
      bench: 'Engine throughput',
      metric: `after/before: bulk requestChanges (${args.batch}/txn, ${num(args.orders)} orders × ${n}), this tree against ${label}, batch by batch (${how(bulk.range)}), synchronous=${args.synchronous}`,
      value: `${num(afterRate)} transitions/s`,
      baseline: `${label}: ${num(beforeRate)} /s`,
      ratio: bulk.median.toFixed(3),
      target: `ratio ≥ ${BEFORE_AFTER_TARGET_RATIO}`,
      verdict: verdict(bulk.median >= BEFORE_AFTER_TARGET_RATIO),
    },
    {
      id: '1',
      bench: 'Engine throughput',
      metric: `after/before: single requestChange durable latency, median (${num(args.latencyOrders)} calls × ${n} each), this tree against ${label}, call by call (${how(latency.range)}), synchronous=${args.synchronous}`,
      value: ms(afterLatency),
      baseline: `${label}: ${ms(beforeLatency)}`,
      ratio: latency.median.toFixed(3),
      target: `ratio ≥ ${BEFORE_AFTER_TARGET_RATIO}`,
      verdict: verdict(latency.median >= BEFORE_AFTER_TARGET_RATIO),
    },
  ];
}
