// Benchmark 8 (issue #14): one step of the order machine near the floor. XState's public
// transition() against the stepper of src/engine/machine-step.ts (one actor scope for all
// steps) and the stepper with a SnapshotCache, on a bulk request's step: an FBS order at
// PROCESSING/STARTED, loaded from its stored JSON, asked for READY_TO_SHIP, its next snapshot
// serialised for the write. Also the step alone (a snapshot already in memory) and the first
// step of an order (initialTransition). All sides run in one process, pass by pass over the
// orders, in an order that rotates and mirrors, so none always runs first; each figure is the
// median over RUNS runs.
//
// `npx tsx bench/step.ts [--quick]`; `run({ quick })` gives the rows for bench/run.ts.

import { pathToFileURL } from 'node:url';
import { initialTransition, transition } from 'xstate';
import { orderMachine, ORDER_MACHINE_VERSION, type OrderEvent, type OrderInput } from '../machines/order-machine.js';
import { createMachineStepper, SnapshotCache, type StoredRow } from '../src/engine/machine-step.js';
import { loadOrderSnapshot, serializeOrderSnapshot, type OrderSnapshot } from '../src/engine/order-snapshots.js';
import { describeMachine, machineLine } from './lib/machine.js';
import { formatTable, num, type Row } from './lib/report.js';
import { median } from './lib/stats.js';

const RUNS = 5;
const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const REQUEST: OrderEvent = { type: 'SELLER.REQUEST', status: 'PROCESSING', substatus: 'READY_TO_SHIP', at: T0 + 60_000 };

interface StoredOrder {
  readonly orderId: number;
  /** As a read returns it: a string of its own, equal to the one remembered. */
  readonly row: StoredRow;
  readonly input: OrderInput;
}

function orders(count: number): StoredOrder[] {
  return Array.from({ length: count }, (_, i) => {
    const input: OrderInput = { orderId: 1_000_000 + i, campaignId: 101, model: 'FBS', status: 'PROCESSING', substatus: 'STARTED', observedAt: T0, source: 'sync', maxSends: 3, asyncSettleMs: 60_000 };
    const [snapshot] = initialTransition(orderMachine, input);
    return { orderId: input.orderId, input, row: { row_version: 1, machine_version: ORDER_MACHINE_VERSION, snapshot: serializeOrderSnapshot(snapshot) } };
  });
}

/** A fresh copy of the stored text, as a new read of the row would bring it. */
const reread = (row: StoredRow): StoredRow => ({ ...row, snapshot: JSON.stringify(JSON.parse(row.snapshot)) });

const stepper = createMachineStepper(orderMachine);

/** The sides compared: each does one order's work, returning something so it cannot be dropped. */
type Side = (order: StoredOrder, row: StoredRow, resolved: OrderSnapshot) => number;

const load = (order: StoredOrder, row: StoredRow) => loadOrderSnapshot(row.snapshot, row.machine_version, order.orderId);

function sides(cache: SnapshotCache<OrderSnapshot>) {
  return {
    bulk: {
      'transition()': ((order, row) => serializeOrderSnapshot(transition(orderMachine, load(order, row), REQUEST)[0]).length) as Side,
      stepper: ((order, row) => serializeOrderSnapshot(stepper.step(load(order, row), REQUEST)[0]).length) as Side,
      'stepper + cache': ((order, row) => serializeOrderSnapshot(stepper.step(cache.resolve(order.orderId, row, (r) => load(order, r)), REQUEST)[0]).length) as Side,
    },
    stepOnly: {
      'transition()': ((_order, _row, resolved) => transition(orderMachine, resolved, REQUEST)[1].length) as Side,
      stepper: ((_order, _row, resolved) => stepper.step(resolved, REQUEST)[1].length) as Side,
    },
    initial: {
      'initialTransition()': ((order) => initialTransition(orderMachine, order.input)[0].context.orderId) as Side,
      'stepper.initial': ((order) => stepper.initial(order.input)[0].context.orderId) as Side,
    },
  };
}

/** µs per order for each side: RUNS runs of `rounds` passes over the orders, sides rotated pass by pass. */
function measure(group: Record<string, Side>, stored: readonly StoredOrder[], rereads: readonly StoredRow[], resolved: readonly OrderSnapshot[], rounds: number): Map<string, number> {
  const names = Object.keys(group);
  const perRun = new Map<string, number[]>(names.map((n) => [n, []]));
  let sink = 0;
  for (let run = 0; run < RUNS; run++) {
    const elapsed = new Map<string, number>(names.map((n) => [n, 0]));
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      const rotated = [...order.slice(round % names.length), ...order.slice(0, round % names.length)];
      for (const name of rotated) {
        const side = group[name]!;
        const started = process.hrtime.bigint();
        for (let i = 0; i < stored.length; i++) sink += side(stored[i]!, rereads[i]!, resolved[i]!);
        elapsed.set(name, elapsed.get(name)! + Number(process.hrtime.bigint() - started));
      }
    }
    for (const name of names) perRun.get(name)!.push(elapsed.get(name)! / 1000 / (rounds * stored.length));
  }
  if (sink === 0) throw new Error('the sides did no work');
  return new Map(names.map((n) => [n, median(perRun.get(n)!)]));
}

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const count = options.quick ? 200 : 1_000;
  const rounds = options.quick ? 2 : 6;
  const stored = orders(count);
  const rereads = stored.map((o) => reread(o.row));
  const resolved = stored.map((o) => load(o, o.row));
  const cache = new SnapshotCache<OrderSnapshot>(count);
  // The orders this process wrote last: their snapshots are in the cache.
  for (const [i, order] of stored.entries()) cache.remember(order.orderId, order.row, resolved[i]!);
  const { bulk, stepOnly, initial } = sides(cache);

  // Both ways give the same write before anything is timed.
  for (const [i, order] of stored.slice(0, 20).entries()) {
    const expected = serializeOrderSnapshot(transition(orderMachine, load(order, rereads[i]!), REQUEST)[0]);
    const cached = cache.get(order.orderId, rereads[i]!);
    if (cached === undefined || serializeOrderSnapshot(stepper.step(cached, REQUEST)[0]) !== expected) throw new Error(`order ${order.orderId}: the stepper's write differs from transition()'s`);
  }
  // Warm up every side (JIT) with one pass.
  measure({ ...bulk, ...stepOnly, ...initial }, stored.slice(0, 200), rereads, resolved, 1);

  const rows: Row[] = [];
  // No target yet: the issue asks for the figures; PASS/MISS comes with the engine's own bench.
  const add = (id: string, metric: string, figures: Map<string, number>, baselineName: string) => {
    const baseline = figures.get(baselineName)!;
    for (const [name, value] of figures) {
      if (name === baselineName) continue;
      const ratio = value / baseline;
      rows.push({
        id,
        bench: 'machine step',
        metric: `${metric}: ${name}`,
        value: `${num(value, 2)} µs`,
        baseline: `${num(baseline, 2)} µs (${baselineName})`,
        ratio: `${num(ratio, 2)}×`,
        target: '—',
        verdict: 'info',
      });
    }
  };
  add('8a', 'load + SELLER.REQUEST + serialise, per order', measure(bulk, stored, rereads, resolved, rounds), 'transition()');
  add('8b', 'SELLER.REQUEST step alone, per order', measure(stepOnly, stored, rereads, resolved, rounds), 'transition()');
  add('8c', 'first step (track), per order', measure(initial, stored, rereads, resolved, rounds), 'initialTransition()');
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  console.log(`Machine: ${machineLine(describeMachine())}`);
  console.log(`Per-order µs, median of ${RUNS} runs${quick ? ' (quick)' : ''}\n`);
  console.log(formatTable(await run({ quick })));
}
