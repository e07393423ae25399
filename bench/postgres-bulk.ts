// Benchmark 6a: persisted transitions on PostgreSQL against raw driver calls doing the same
// statements batched the same way (issue 11, "Numbers"; issue 14, goal 3).
//
// The engine: `requestChanges` of `batch` orders a call (PROCESSING/STARTED → READY_TO_SHIP), one
// transaction each, through the PostgreSQL adapter, on a fresh schema. The baseline: a bare `pg`
// pool of the same size with the adapter's connection settings, sending exactly what the adapter
// sent, in one transaction per batch of the same size: the statement list is recorded from the
// adapter itself (bench/lib/statement-probe.ts, a two-order requestChanges) and replayed for other
// orders of the same table with their ids and the batch's time (bench/lib/statement-replay.ts):
// the same prepared statements by name, the same texts and values (the snapshot JSON, the event,
// the idempotency key rewritten for the order), each awaited before the next as the adapter does,
// each checked to touch as many rows as the adapter's did. What the baseline leaves out is what
// the engine adds to the SQL: validation, the rules, the machine's step, building the values.
//
// Both run in one child, alternating batch by batch (engine, raw, raw, engine, then again) over
// several rounds of fresh orders; each round's ratio is engine/raw changes per second, and the
// table gives the median of the rounds' ratios and their range. With `inFlight` > 1 that many
// batches (on as many pooled connections) run at once on one side, then on the other.

// The raw baseline is, with the adapter, the one place that uses the driver: it measures the
// driver itself doing the adapter's statements, the floor the engine is compared with.
import pg from 'pg';
import type { CampaignConfig } from '../src/engine/commands.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { TYPE_PARSERS } from '../src/store/postgres/session.js';
import { runChild } from './lib/child.js';
import { num, verdict, type Row } from './lib/report.js';
import { median, sidesInStep } from './lib/stats.js';
import { recordStatements } from './lib/statement-probe.js';
import { describePlan, planReplay, replay, type ReplayPlan } from './lib/statement-replay.js';

const CAMPAIGN: CampaignConfig = { campaignId: 601, businessId: 61, model: 'FBS' };
const FROM = { status: 'PROCESSING', substatus: 'STARTED' } as const;
const TARGET = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const OBSERVED_AT = Date.UTC(2025, 0, 1);
const TRACK_CHUNK = 2_000;
/** Ids of nine digits, so one never shows up inside another, a time or a count in the recorded values. */
const FIRST_ORDER_ID = 910_000_001;
/** The recording's two orders and its time: values that appear nowhere else. */
const RECORDED_ORDERS = [987_650_001, 987_650_002] as const;
const RECORDED_NOW = Date.UTC(2025, 5, 6, 7, 8, 9, 123);
/** Untimed batches per side before the first round: the JIT, and every pooled connection's prepared statements. */
const WARMUP_STEPS = 4;
/** The adapter's default; the baseline's pool gets the same. */
const LOCK_TIMEOUT_MS = 10_000;

export interface BulkArgs {
  readonly url: string;
  readonly schema: string;
  /** Changes per requestChanges call = per baseline transaction. */
  readonly batch: number;
  /** Batches at once on a side, each its own transaction on its own connection. */
  readonly inFlight: number;
  readonly poolSize: number;
  /** Changes per round, by each side. */
  readonly changesPerRound: number;
  readonly rounds: number;
}

export interface BulkRound {
  readonly engineRate: number;
  readonly rawRate: number;
  /** This process's CPU time (user + system) per change while each side ran, µs. */
  readonly engineCpuUs: number;
  readonly rawCpuUs: number;
}

export interface BulkResult {
  /** The statements replayed, in a line (describePlan). */
  readonly plan: string;
  readonly statementsPerChange: number;
  readonly rounds: readonly BulkRound[];
}

type Side = 'engine' | 'raw';

function ids(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

async function track(engine: Engine, orderIds: readonly number[]): Promise<void> {
  for (let i = 0; i < orderIds.length; i += TRACK_CHUNK) {
    await engine.trackOrders(orderIds.slice(i, i + TRACK_CHUNK).map((orderId) => ({ orderId, campaignId: CAMPAIGN.campaignId, ...FROM, observedAt: OBSERVED_AT })));
  }
}

/** One requestChanges call that must queue every request: a refusal would time the wrong work. */
async function requestAll(engine: Engine, orderIds: readonly number[]): Promise<void> {
  const { queued, refused } = await engine.requestChanges(orderIds.map((orderId) => ({ orderId, ...TARGET })));
  if (queued.length !== orderIds.length || refused.length > 0) throw new Error(`engine refused a benchmark request: ${refused[0]?.error.message ?? `${queued.length} of ${orderIds.length} queued`}`);
}

/** The statements the adapter sends for a two-order requestChanges, at RECORDED_NOW, as a plan for any orders. */
async function recordPlan(engine: Engine, setNow: (now: number | undefined) => void): Promise<ReplayPlan> {
  setNow(RECORDED_NOW);
  try {
    const { statements } = await recordStatements(() => requestAll(engine, RECORDED_ORDERS));
    return planReplay({ statements, orderIds: RECORDED_ORDERS, now: RECORDED_NOW });
  } finally {
    setNow(undefined);
  }
}

/** A pool as the adapter opens its own (postgres-store.ts): same size, search_path, lock timeout and type parsers. */
function rawPool(args: BulkArgs): pg.Pool {
  const pool = new pg.Pool({
    connectionString: args.url,
    max: args.poolSize,
    options: `-c search_path=${args.schema} -c lock_timeout=${LOCK_TIMEOUT_MS}`,
    application_name: 'ym-orders-bench-raw',
    types: TYPE_PARSERS,
  });
  pool.on('error', () => undefined);
  return pool;
}

async function rawBatch(pool: pg.Pool, plan: ReplayPlan, orderIds: readonly number[]): Promise<void> {
  const client = await pool.connect();
  let broken = false;
  try {
    await replay(client, plan, orderIds, Date.now());
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    client.release(broken);
  }
}

/** One step: `inFlight` batches of each side's own orders. */
interface Step {
  readonly engine: readonly (readonly number[])[];
  readonly raw: readonly (readonly number[])[];
}

/** `orderIds` cut into steps of `inFlight` batches of `batch`. */
function cut(orderIds: readonly number[], batch: number, inFlight: number): number[][][] {
  const steps: number[][][] = [];
  for (let i = 0; i < orderIds.length; i += batch * inFlight) {
    const end = Math.min(orderIds.length, i + batch * inFlight);
    const step: number[][] = [];
    for (let j = i; j < end; j += batch) step.push(orderIds.slice(j, Math.min(j + batch, end)));
    steps.push(step);
  }
  return steps;
}

interface Spent {
  ms: number;
  /** This process's CPU time, µs. */
  cpuUs: number;
}

/** Each step's batches run at once on one side, then on the other (sidesInStep); returns each side's wall and CPU time. */
async function alternate(steps: readonly Step[], run: Record<Side, (slice: readonly number[]) => Promise<void>>): Promise<Record<Side, Spent>> {
  const spent: Record<Side, Spent> = { engine: { ms: 0, cpuUs: 0 }, raw: { ms: 0, cpuUs: 0 } };
  for (const [k, step] of steps.entries()) {
    for (const side of sidesInStep<Side>(k, 'engine', 'raw')) {
      const cpu = process.cpuUsage();
      const t = performance.now();
      await Promise.all(step[side].map((slice) => run[side](slice)));
      spent[side].ms += performance.now() - t;
      const used = process.cpuUsage(cpu);
      spent[side].cpuUs += used.user + used.system;
    }
  }
  return spent;
}

/** Every order tracked here, engine's and baseline's alike, must now wait to be sent READY_TO_SHIP: the replay wrote what the engine writes. */
async function checkWritten(engine: Engine, total: number, rawOrderId: number): Promise<void> {
  const { byStatus, outbox } = await engine.summary();
  const expected = [{ ...FROM, change: 'queued', count: total }];
  if (JSON.stringify(byStatus) !== JSON.stringify(expected) || outbox.queued !== total) {
    throw new Error(`after the run the store holds ${JSON.stringify(byStatus)} and ${outbox.queued} queued changes; expected ${JSON.stringify(expected)} and ${total}`);
  }
  const replayed = await engine.getOrder(rawOrderId);
  if (replayed.change !== 'queued' || replayed.pending?.status !== TARGET.status || replayed.pending.substatus !== TARGET.substatus) {
    throw new Error(`order ${rawOrderId}, changed by the replay, reads back as ${JSON.stringify(replayed)}`);
  }
}

async function measure(args: BulkArgs): Promise<BulkResult> {
  let fixedNow: number | undefined;
  const engine = await createEngine({ db: args.url, postgres: { schema: args.schema, poolSize: args.poolSize }, campaigns: [CAMPAIGN], clock: () => fixedNow ?? Date.now() });
  const pool = rawPool(args);
  try {
    const warmup = WARMUP_STEPS * args.batch * args.inFlight;
    const perSide = warmup + args.rounds * args.changesPerRound;
    const engineIds = ids(FIRST_ORDER_ID, perSide);
    const rawIds = ids(FIRST_ORDER_ID + perSide, perSide);
    await track(engine, [...RECORDED_ORDERS, ...engineIds, ...rawIds]);
    const plan = await recordPlan(engine, (now) => (fixedNow = now));
    const run: Record<Side, (slice: readonly number[]) => Promise<void>> = {
      engine: (slice) => requestAll(engine, slice),
      raw: (slice) => rawBatch(pool, plan, slice),
    };
    const stepsOver = (from: number, count: number): Step[] => {
      const raw = cut(rawIds.slice(from, from + count), args.batch, args.inFlight);
      return cut(engineIds.slice(from, from + count), args.batch, args.inFlight).map((engineStep, k) => ({ engine: engineStep, raw: raw[k]! }));
    };
    await alternate(stepsOver(0, warmup), run);
    const rounds: BulkRound[] = [];
    for (let r = 0; r < args.rounds; r++) {
      const spent = await alternate(stepsOver(warmup + r * args.changesPerRound, args.changesPerRound), run);
      const n = args.changesPerRound;
      rounds.push({ engineRate: (n / spent.engine.ms) * 1000, rawRate: (n / spent.raw.ms) * 1000, engineCpuUs: spent.engine.cpuUs / n, rawCpuUs: spent.raw.cpuUs / n });
    }
    await checkWritten(engine, RECORDED_ORDERS.length + 2 * perSide, rawIds.at(-1)!);
    return { plan: describePlan(plan), statementsPerChange: plan.perChange.length, rounds };
  } finally {
    await pool.end();
    await engine.close();
  }
}

export const tasks = { measure };

export interface BulkOptions {
  readonly quick: boolean;
  readonly url: string;
  /** Each configuration gets a fresh schema named from this (bench/lib/postgres.ts). */
  readonly schemaPrefix: string;
}

export const BULK_TARGET_RATIO = 0.7;
/** The adapter's default pool size, for both sides. */
const POOL_SIZE = 10;
const CONFIGS = [
  { batch: 30, inFlight: 1 },
  { batch: 100, inFlight: 1 },
  { batch: 30, inFlight: 4 },
] as const;

/** All rounds' changes over all their time. */
function pooledRate(rates: readonly number[], perRound: number): number {
  return (rates.length * perRound) / rates.reduce((t, rate) => t + perRound / rate, 0);
}

export async function run(options: BulkOptions): Promise<Row[]> {
  const rows: Row[] = [];
  let planShown = false;
  for (const { batch, inFlight } of CONFIGS) {
    const args: BulkArgs = {
      url: options.url,
      schema: `${options.schemaPrefix}_bulk_${batch}x${inFlight}`,
      batch,
      inFlight,
      poolSize: POOL_SIZE,
      ...(options.quick ? { changesPerRound: 600, rounds: 3 } : { changesPerRound: 2_000, rounds: 5 }),
    };
    const result = await runChild<BulkResult>({ module: 'postgres-bulk', task: 'measure', args, timeoutMs: 600_000 });
    if (!planShown) console.error(`  raw baseline replays, per transaction: ${result.plan}`);
    planShown = true;
    const ratios = result.rounds.map((r) => r.engineRate / r.rawRate);
    const engineCpu = median(result.rounds.map((r) => r.engineCpuUs));
    const rawCpu = median(result.rounds.map((r) => r.rawCpuUs));
    console.error(`  ${batch}/txn × ${inFlight} in flight, engine/raw per round: ${ratios.map((x) => x.toFixed(3)).join(' ')}; this process's CPU per change: engine ${num(engineCpu)} µs, raw ${num(rawCpu)} µs`);
    const ratio = median(ratios);
    rows.push({
      id: '6',
      bench: 'PostgreSQL',
      metric:
        `bulk requestChanges (${batch}/txn, ${inFlight} in flight, pool ${POOL_SIZE}; ${num(args.changesPerRound)} changes × ${result.rounds.length} rounds) against raw pg sending ` +
        `the adapter's ${result.statementsPerChange} statements per change, alternating batch by batch in one child; ratio: median of rounds, range ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}; ` +
        `client CPU per change (median): engine ${num(engineCpu)} µs, raw ${num(rawCpu)} µs`,
      value: `${num(pooledRate(result.rounds.map((r) => r.engineRate), args.changesPerRound))} changes/s`,
      baseline: `raw pg: ${num(pooledRate(result.rounds.map((r) => r.rawRate), args.changesPerRound))} /s`,
      ratio: ratio.toFixed(3),
      target: `ratio ≥ ${BULK_TARGET_RATIO}`,
      verdict: verdict(ratio >= BULK_TARGET_RATIO),
    });
  }
  return rows;
}
