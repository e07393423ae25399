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
// A third side tells where the gap is: the port replay (bench/lib/statement-port.ts) makes the
// engine's port calls of the same recording (orders.get, orders.update, journal.append,
// outbox.enqueue) for other orders, straight on the adapter, without the engine: port/raw is the
// adapter's own cost, engine/port the engine's.
//
// The three run in one child, taking turns batch by batch (each side first, second and last
// equally often: sideOrder) over several rounds of fresh orders; each round's ratio is engine/raw
// changes per second, and the table gives the median of the rounds' ratios and their range. With
// `inFlight` > 1 that many batches (on as many pooled connections) run at once on one side, then
// on the next.

// The raw baseline is, with the adapter, the one place that uses the driver: it measures the
// driver itself doing the adapter's statements, the floor the engine is compared with.
import pg from 'pg';
import type { CampaignConfig } from '../src/engine/commands.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { poolSettings, PostgresStore } from '../src/store/postgres/postgres-store.js';
import type { Store } from '../src/store/port.js';
import { runChild } from './lib/child.js';
import { num, verdict, type Row } from './lib/report.js';
import { median } from './lib/stats.js';
import { describePortPlan, planPortReplay, recordingStore, replayPort, type PortReplayPlan } from './lib/statement-port.js';
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
  /** The port replay: the engine's port calls on the adapter, without the engine. */
  readonly portRate: number;
  /** This process's CPU time (user + system) per change while each side ran, µs. */
  readonly engineCpuUs: number;
  readonly rawCpuUs: number;
  readonly portCpuUs: number;
}

export interface BulkResult {
  /** The statements replayed, in a line (describePlan). */
  readonly plan: string;
  /** The port calls replayed per change (describePortPlan). */
  readonly portPlan: string;
  readonly statementsPerChange: number;
  readonly rounds: readonly BulkRound[];
}

const SIDES = ['engine', 'raw', 'port'] as const;
type Side = (typeof SIDES)[number];

/**
 * Who goes when in step k: the six orders of the three sides in turn, so each is first, second
 * and last equally often (on a cooler cache, under a load that rises or falls within the cycle),
 * and, counting the joins between steps, the raw and the port replays each follow the engine (and
 * its garbage) as often as the other does: 3 times in 18 turns each, the engine never itself.
 */
const SIDE_ORDERS: readonly (readonly Side[])[] = [
  ['raw', 'port', 'engine'],
  ['port', 'engine', 'raw'],
  ['engine', 'raw', 'port'],
  ['engine', 'port', 'raw'],
  ['raw', 'engine', 'port'],
  ['port', 'raw', 'engine'],
];

function sideOrder(k: number): readonly Side[] {
  return SIDE_ORDERS[k % SIDE_ORDERS.length]!;
}

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

/**
 * What a two-order requestChanges at RECORDED_NOW sends, as plans for any orders: the adapter's
 * statements (for the raw side) and the engine's port calls (for the port side), from one call.
 */
async function recordPlans(engine: Engine, record: ReturnType<typeof recordingStore>['record'], setNow: (now: number | undefined) => void): Promise<{ sql: ReplayPlan; port: PortReplayPlan }> {
  setNow(RECORDED_NOW);
  try {
    const { value, statements } = await recordStatements(() => record(() => requestAll(engine, RECORDED_ORDERS)));
    return {
      sql: planReplay({ statements, orderIds: RECORDED_ORDERS, now: RECORDED_NOW }),
      port: planPortReplay({ calls: value.calls, orderIds: RECORDED_ORDERS, now: RECORDED_NOW }),
    };
  } finally {
    setNow(undefined);
  }
}

/** A pool exactly as the adapter opens its own (postgres-store.ts poolSettings): size, search_path, timeouts, keep-alive, type parsers. */
function rawPool(args: BulkArgs): pg.Pool {
  const pool = new pg.Pool({ ...poolSettings(args.url, { schema: args.schema, poolSize: args.poolSize }), application_name: 'ym-orders-bench-raw' });
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
type Step = Record<Side, readonly (readonly number[])[]>;

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

/** Each step's batches run at once on one side, then on the next (sideOrder); returns each side's wall and CPU time. */
async function alternate(steps: readonly Step[], run: Record<Side, (slice: readonly number[]) => Promise<void>>): Promise<Record<Side, Spent>> {
  const spent: Record<Side, Spent> = { engine: { ms: 0, cpuUs: 0 }, raw: { ms: 0, cpuUs: 0 }, port: { ms: 0, cpuUs: 0 } };
  for (const [k, step] of steps.entries()) {
    for (const side of sideOrder(k)) {
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

/** Every order tracked here, every side's alike, must now wait to be sent READY_TO_SHIP: the replays wrote what the engine writes. */
async function checkWritten(engine: Engine, total: number, replayedOrderIds: readonly number[]): Promise<void> {
  const { byStatus, outbox } = await engine.summary();
  const expected = [{ ...FROM, change: 'queued', count: total }];
  if (JSON.stringify(byStatus) !== JSON.stringify(expected) || outbox.queued !== total) {
    throw new Error(`after the run the store holds ${JSON.stringify(byStatus)} and ${outbox.queued} queued changes; expected ${JSON.stringify(expected)} and ${total}`);
  }
  for (const orderId of replayedOrderIds) {
    const replayed = await engine.getOrder(orderId);
    if (replayed.change !== 'queued' || replayed.pending?.status !== TARGET.status || replayed.pending.substatus !== TARGET.substatus) {
      throw new Error(`order ${orderId}, changed by a replay, reads back as ${JSON.stringify(replayed)}`);
    }
  }
}

async function measure(args: BulkArgs): Promise<BulkResult> {
  let fixedNow: number | undefined;
  // The engine's own store, opened as createEngine would open it, wrapped so its port calls can be recorded.
  const store: Store = await PostgresStore.connect(args.url, { schema: args.schema, poolSize: args.poolSize });
  let engine: Engine | undefined;
  const pool = rawPool(args);
  try {
    const recording = recordingStore(store);
    engine = await createEngine({ db: recording.store, campaigns: [CAMPAIGN], clock: () => fixedNow ?? Date.now() });
    const warmup = WARMUP_STEPS * args.batch * args.inFlight;
    const perSide = warmup + args.rounds * args.changesPerRound;
    const idsOf = Object.fromEntries(SIDES.map((side, i) => [side, ids(FIRST_ORDER_ID + i * perSide, perSide)])) as Record<Side, number[]>;
    await track(engine, [...RECORDED_ORDERS, ...SIDES.flatMap((side) => idsOf[side])]);
    const plans = await recordPlans(engine, recording.record, (now) => (fixedNow = now));
    const run: Record<Side, (slice: readonly number[]) => Promise<void>> = {
      engine: (slice) => requestAll(engine!, slice),
      raw: (slice) => rawBatch(pool, plans.sql, slice),
      port: (slice) => replayPort(store, plans.port, slice, Date.now()),
    };
    const stepsOver = (from: number, count: number): Step[] => {
      const cuts = Object.fromEntries(SIDES.map((side) => [side, cut(idsOf[side].slice(from, from + count), args.batch, args.inFlight)])) as Record<Side, number[][][]>;
      return cuts.engine.map((_, k) => ({ engine: cuts.engine[k]!, raw: cuts.raw[k]!, port: cuts.port[k]! }));
    };
    await alternate(stepsOver(0, warmup), run);
    const rounds: BulkRound[] = [];
    for (let r = 0; r < args.rounds; r++) {
      const spent = await alternate(stepsOver(warmup + r * args.changesPerRound, args.changesPerRound), run);
      const n = args.changesPerRound;
      rounds.push({
        engineRate: (n / spent.engine.ms) * 1000,
        rawRate: (n / spent.raw.ms) * 1000,
        portRate: (n / spent.port.ms) * 1000,
        engineCpuUs: spent.engine.cpuUs / n,
        rawCpuUs: spent.raw.cpuUs / n,
        portCpuUs: spent.port.cpuUs / n,
      });
    }
    await checkWritten(engine, RECORDED_ORDERS.length + SIDES.length * perSide, [idsOf.raw.at(-1)!, idsOf.port.at(-1)!]);
    return { plan: describePlan(plans.sql), portPlan: describePortPlan(plans.port), statementsPerChange: plans.sql.perChange.length, rounds };
  } finally {
    await pool.end();
    await engine?.close();
    await store.close();
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
    if (!planShown) console.error(`  raw baseline replays, per transaction: ${result.plan}\n  port replay (the adapter without the engine) makes, per change: ${result.portPlan}`);
    planShown = true;
    const ratios = result.rounds.map((r) => r.engineRate / r.rawRate);
    const portRatios = result.rounds.map((r) => r.portRate / r.rawRate);
    const engineCpu = median(result.rounds.map((r) => r.engineCpuUs));
    const rawCpu = median(result.rounds.map((r) => r.rawCpuUs));
    const portCpu = median(result.rounds.map((r) => r.portCpuUs));
    const portRatio = median(portRatios);
    console.error(
      `  ${batch}/txn × ${inFlight} in flight, engine/raw per round: ${ratios.map((x) => x.toFixed(3)).join(' ')}; port/raw: ${portRatios.map((x) => x.toFixed(3)).join(' ')}; ` +
        `this process's CPU per change: engine ${num(engineCpu)} µs, port replay ${num(portCpu)} µs, raw ${num(rawCpu)} µs`,
    );
    const ratio = median(ratios);
    rows.push({
      id: '6a',
      bench: 'PostgreSQL',
      metric:
        `bulk requestChanges (${batch}/txn, ${inFlight} in flight, pool ${POOL_SIZE}; ${num(args.changesPerRound)} changes × ${result.rounds.length} rounds) against raw pg sending ` +
        `the adapter's ${result.statementsPerChange} statements per change, alternating batch by batch in one child; ratio: median of rounds, range ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}; ` +
        `client CPU per change (median): engine ${num(engineCpu)} µs, raw ${num(rawCpu)} µs; ` +
        `the adapter alone (the engine's port calls replayed without it, same run): ${portRatio.toFixed(3)} of raw, ${num(portCpu)} µs`,
      value: `${num(pooledRate(result.rounds.map((r) => r.engineRate), args.changesPerRound))} changes/s`,
      baseline: `raw pg: ${num(pooledRate(result.rounds.map((r) => r.rawRate), args.changesPerRound))} /s`,
      ratio: ratio.toFixed(3),
      target: `ratio ≥ ${BULK_TARGET_RATIO}`,
      verdict: verdict(ratio >= BULK_TARGET_RATIO),
      goal: 3,
    });
  }
  return rows;
}
