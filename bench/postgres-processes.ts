// Benchmark 6b: 1, 2 and 4 engine processes on one PostgreSQL schema (issue 11, "Numbers"):
// total changes settled per second and the share of the work each process took.
//
// Per process count, on a fresh schema: N orders over 8 campaigns (4 businesses) are tracked and
// a change is queued for each (PROCESSING/STARTED → READY_TO_SHIP) before any process starts.
// Then P child processes each open an engine (own lease owner, the default pool) on that schema
// against one fake Market in the parent (no latency, quotas far above the load, the engine's
// limits to match; the Market's 4-in-flight rule per campaign stays, spread over 8 campaigns) and
// say they are ready; all are let go at once (bench/lib/steered-child.ts) into engine.run. The
// rate is N over the time from that moment to the last change settled (the latest updated_at of
// the accepted outbox rows); each process's share is the orders it sent, from its own counters.
// Checked every run: every change settled once (accepted rows = N = the processes' sends summed),
// the fake applied each order's change exactly once, no duplicate, no 420. What binds is
// measured: the CPU split (the engines, PostgreSQL and the fake share the machine's cores), the
// most requests in flight per campaign at the fake, and lock waits sampled on the schema.

import type { CampaignConfig } from '../src/engine/commands.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { cpuBetween, describeCpu, sampleCpu } from './lib/cpu.js';
import { describeLockWaits, startLockWaitSampler, type LockWaits, type LockWaitSampler } from './lib/lock-waits.js';
import { API_KEY, startBenchMarket, UNLIMITED_LIMITS } from './lib/market.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { awaitGo, startSteeredChild, type SteeredChild } from './lib/steered-child.js';

const CAMPAIGNS: readonly CampaignConfig[] = Array.from({ length: 8 }, (_, i) => ({ campaignId: 621 + i, businessId: 62 + Math.floor(i / 2), model: 'FBS' as const }));
const FROM = { status: 'PROCESSING', substatus: 'STARTED' } as const;
const TARGET = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const OBSERVED_AT = Date.UTC(2025, 0, 1);
const FIRST_ORDER_ID = 920_000_001;
const SETUP_CHUNK = 2_000;
const PROCESS_COUNTS = [1, 2, 4] as const;
/** How often the parent looks whether everything has settled (the rate's end comes from the rows, not from this). */
const POLL_MS = 50;

export interface RunLoopArgs {
  readonly url: string;
  readonly schema: string;
  readonly marketUrl: string;
  readonly owner: string;
}

export interface RunLoopResult {
  readonly owner: string;
  readonly ordersSent: number;
  readonly accepted: number;
  readonly calls: number;
  /** Store errors the run loop waited out (onStoreError), by code. */
  readonly storeErrors: Readonly<Record<string, number>>;
  /** This process's CPU time (user + system) from go to stop, ms. */
  readonly cpuMs: number;
}

/** One process of the fleet: an engine on the shared schema, in engine.run from go until stop. */
async function runLoop(args: RunLoopArgs): Promise<RunLoopResult> {
  const engine = await createEngine({
    db: args.url,
    postgres: { schema: args.schema },
    campaigns: CAMPAIGNS,
    api: { baseUrl: args.marketUrl, apiKey: API_KEY },
    limits: UNLIMITED_LIMITS,
    owner: args.owner,
  });
  try {
    const signal = await awaitGo();
    const cpu = process.cpuUsage();
    const storeErrors: Record<string, number> = {};
    // The run loop waits out a busy or failing database and goes on: counted, so the table says so.
    const report = await engine.run({ signal, onStoreError: (error) => void (storeErrors[error.code] = (storeErrors[error.code] ?? 0) + 1) });
    const used = process.cpuUsage(cpu);
    const calls = Object.values(report.counters.calls).reduce((a, b) => a + b, 0);
    return { owner: args.owner, ordersSent: report.counters.ordersSent, accepted: report.counters.accepted, calls, storeErrors, cpuMs: (used.user + used.system) / 1000 };
  } finally {
    await engine.close();
  }
}

export const tasks = { runLoop };

interface Planned {
  readonly orderId: number;
  readonly campaignId: number;
}

/** N orders, the campaigns taking turns, as traffic of many shops would come. */
function plan(total: number): Planned[] {
  return Array.from({ length: total }, (_, i) => ({ orderId: FIRST_ORDER_ID + i, campaignId: CAMPAIGNS[i % CAMPAIGNS.length]!.campaignId }));
}

async function queueAll(engine: Engine, orders: readonly Planned[]): Promise<void> {
  for (let i = 0; i < orders.length; i += SETUP_CHUNK) {
    const chunk = orders.slice(i, i + SETUP_CHUNK);
    await engine.trackOrders(chunk.map((o) => ({ orderId: o.orderId, campaignId: o.campaignId, ...FROM, observedAt: OBSERVED_AT })));
    const { refused } = await engine.requestChanges(chunk.map((o) => ({ orderId: o.orderId, ...TARGET })));
    if (refused.length > 0) throw new Error(`engine refused ${refused.length} setup requests: ${refused[0]!.error.message}`);
  }
}

/** Waits until nothing is open (or the deadline), sampling lock waits meanwhile; returns what is still open. */
async function untilSettled(engine: Engine, sampler: LockWaitSampler, deadline: number): Promise<number> {
  for (;;) {
    await sampler.sample();
    const { open } = await engine.stats();
    if (open === 0 || Date.now() >= deadline) return open;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export interface FleetResult {
  readonly processes: number;
  readonly total: number;
  /** Tracking the orders and queueing their changes, before the processes start. */
  readonly setupMs: number;
  /** From go to the last change settled, ms. */
  readonly elapsedMs: number;
  readonly perProcess: readonly RunLoopResult[];
  readonly stillOpen: number;
  readonly acceptedRows: number;
  /** Orders the fake applied a change to other than exactly once. */
  readonly notOnce: number;
  readonly duplicates: number;
  readonly rateLimited: number;
  /** The most requests in flight at once in one campaign or business, at the fake. */
  readonly maxInFlight: number;
  readonly cpu: string;
  readonly lockWaits: LockWaits;
}

async function measureFleet(options: { url: string; schema: string; processes: number; total: number; timeoutMs: number }): Promise<FleetResult> {
  const orders = plan(options.total);
  const market = await startBenchMarket(CAMPAIGNS);
  const children: SteeredChild<RunLoopResult>[] = [];
  let sampler: LockWaitSampler | undefined;
  const engine = await createEngine({ db: options.url, postgres: { schema: options.schema }, campaigns: CAMPAIGNS });
  try {
    market.seedOrders(orders.map((o) => ({ id: o.orderId, campaignId: o.campaignId, ...FROM, updateDate: OBSERVED_AT })));
    const setup = performance.now();
    await queueAll(engine, orders);
    const setupMs = performance.now() - setup;
    for (let i = 0; i < options.processes; i++) {
      const args: RunLoopArgs = { url: options.url, schema: options.schema, marketUrl: market.url, owner: `bench-${options.processes}p-${i + 1}` };
      children.push(startSteeredChild<RunLoopResult>({ module: 'postgres-processes', task: 'runLoop', args, timeoutMs: options.timeoutMs }));
    }
    await Promise.all(children.map((c) => c.ready));
    sampler = await startLockWaitSampler(options.url, options.schema);
    const cpuStart = sampleCpu();
    const parentCpu = process.cpuUsage();
    const started = Date.now();
    for (const c of children) c.go();
    const stillOpen = await untilSettled(engine, sampler, started + options.timeoutMs - 30_000);
    const cpuEnd = sampleCpu();
    const parentUsed = process.cpuUsage(parentCpu);
    const lockWaits = await sampler.finish();
    for (const c of children) c.stop();
    const perProcess = await Promise.all(children.map((c) => c.result));
    const accepted = await engine.settledChanges({ state: 'accepted', since: 0, limit: options.total + 1 });
    const lastSettled = Math.max(...accepted.map((r) => r.updated_at));
    const stats = market.stats();
    const use = cpuBetween(cpuStart, cpuEnd);
    return {
      processes: options.processes,
      total: options.total,
      setupMs,
      elapsedMs: lastSettled - started,
      perProcess,
      stillOpen,
      acceptedRows: accepted.length,
      notOnce: orders.filter((o) => stats.appliedChanges[o.orderId] !== 1).length,
      duplicates: stats.duplicateApplications,
      rateLimited: stats.rateLimited,
      maxInFlight: Math.max(0, ...Object.values(stats.maxInFlight)),
      lockWaits,
      cpu: describeCpu(use, [
        { label: options.processes === 1 ? 'the engine' : `the ${options.processes} engines`, ms: perProcess.reduce((ms, p) => ms + p.cpuMs, 0) },
        { label: 'fake Market (parent)', ms: (parentUsed.user + parentUsed.system) / 1000 },
      ]),
    };
  } catch (error) {
    for (const c of children) c.kill();
    throw error;
  } finally {
    await sampler?.finish();
    await engine.close();
    await market.close();
  }
}

function sumErrors(perProcess: readonly RunLoopResult[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const p of perProcess) for (const [code, n] of Object.entries(p.storeErrors)) sum[code] = (sum[code] ?? 0) + n;
  return sum;
}

/** `, store errors waited out: DB_BUSY 3`, or nothing. */
function storeErrorsText(errors: Readonly<Record<string, number>>): string {
  const list = Object.entries(errors).map(([code, n]) => `${code} ${n}`);
  return list.length > 0 ? `, store errors waited out: ${list.join(', ')}` : '';
}

function settledOnce(r: FleetResult): boolean {
  const sent = r.perProcess.reduce((n, p) => n + p.ordersSent, 0);
  return r.stillOpen === 0 && r.acceptedRows === r.total && sent === r.total && r.notOnce === 0 && r.duplicates === 0 && r.rateLimited === 0;
}

export async function run(options: { quick: boolean; url: string; schemaPrefix: string }): Promise<Row[]> {
  const total = options.quick ? 2_000 : 16_000;
  const results: (FleetResult | { processes: number; error: string })[] = [];
  for (const processes of PROCESS_COUNTS) {
    let r: FleetResult;
    try {
      r = await measureFleet({ url: options.url, schema: `${options.schemaPrefix}_fleet_${processes}`, processes, total, timeoutMs: 600_000 });
    } catch (error) {
      // One process count failing (a process that stopped on an error) still leaves the others' figures.
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`  ${processes} process(es) failed: ${text}`);
      results.push({ processes, error: text.split('\n')[0]! });
      continue;
    }
    console.error(`  ${processes} process(es): ${num(total)} settled in ${ms(r.elapsedMs)} (queued in ${ms(r.setupMs)}); ${r.perProcess.map((p) => `${p.owner} sent ${p.ordersSent} in ${p.calls} calls, CPU ${Math.round(p.cpuMs)} ms${storeErrorsText(p.storeErrors)}`).join('; ')}; ${r.cpu}; ${describeLockWaits(r.lockWaits)}`);
    results.push(r);
  }
  const rate = (r: FleetResult) => (r.total / r.elapsedMs) * 1000;
  const first = results[0];
  const one = first && 'total' in first ? rate(first) : undefined;
  const target = `all ${num(total)} settled once, 0 duplicates, 0 × 420`;
  const title = (processes: number) => `${processes} process${processes === 1 ? '' : 'es'} in engine.run on one schema, ${num(total)} changes queued before start over ${CAMPAIGNS.length} campaigns, one instant fake Market`;
  return results.map((r): Row => {
    if (!('total' in r)) {
      return { id: '6b', bench: 'PostgreSQL', metric: `${title(r.processes)}: failed: ${r.error}`, value: '—', baseline: '—', ratio: '—', target, verdict: 'MISS', goal: 3 };
    }
    const shares = r.perProcess.map((p) => `${Math.round((p.ordersSent / r.total) * 100)}%`).join(' / ');
    const sent = r.perProcess.reduce((n, p) => n + p.ordersSent, 0);
    return {
      id: '6b',
      bench: 'PostgreSQL',
      metric:
        `${title(r.processes)}: settled/s from go to the last settled; shares ${shares}; sent ${num(sent)}, accepted rows ${num(r.acceptedRows)}, still open ${r.stillOpen}, ` +
        `applied ≠ once ${r.notOnce}, duplicates ${r.duplicates}, 420s ${r.rateLimited}, max in flight per campaign ${r.maxInFlight} (Market allows 4)` +
        `${storeErrorsText(sumErrors(r.perProcess))}; ` +
        `what binds: CPU (${r.cpu}); ${describeLockWaits(r.lockWaits)}`,
      value: `${num(rate(r))} changes/s`,
      baseline: r.processes === 1 || one === undefined ? '—' : `1 process: ${num(one)} /s`,
      ratio: one === undefined ? '—' : `${(rate(r) / one).toFixed(2)}× of 1 process`,
      target,
      verdict: verdict(settledOnce(r)),
      goal: 3,
    };
  });
}
