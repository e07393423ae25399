// Concurrency worker: `node --import tsx test/workers/concurrency-worker.ts <dbfile> <seed> <proc> <commands>`,
// started together with the other through its start line (test/workers/start-line.ts).
// Two of these write the same database file at once: the same orders, interleaved imports,
// observations, requests (some with expectedRowVersion), bulk requests and dispatcher events,
// each through the public engine API in its own transaction (dispatcher events through the
// engine's order book in a store transaction, as the dispatcher does). Each write this process made is
// printed as `ack <json>` so the parent can find it in the journal. Expected refusals are
// counted; anything else (SQLITE_BUSY above all) is printed to stderr and exits 1.

import fs from 'node:fs';
import { createEngine } from '../../src/engine/engine.js';
import type { OrderState } from '../../src/engine/order-book.js';
import { YmOrdersError } from '../../src/errors.js';
import { CAMPAIGNS, campaignOf, DISPATCH_TYPES, MARKET_STATES, pick, rng, RULE_START_STATES, T0, TARGETS } from '../helpers/engine-fixtures.js';
import { waitForStartLine } from './start-line.js';

export const CONCURRENCY_ORDERS = 8;

const [file, seedArg, procArg, countArg] = process.argv.slice(2);
if (!file || !seedArg || !procArg || !countArg) {
  process.stderr.write('usage: concurrency-worker.ts <dbfile> <seed> <proc> <commands>\n');
  process.exit(2);
}
const proc = Number(procArg);
const count = Number(countArg);
const random = rng(Number(seedArg));
const out = (line: string) => fs.writeSync(1, `${line}\n`);

// Times unique to this process (its own parity), sometimes older than the order's last news.
const used = new Set<number>();
let step = 0;
function uniqueTime(): number {
  let t = T0 + (step - Math.floor(random() * 40)) * 2_000 + proc;
  while (used.has(t)) t += 2;
  used.add(t);
  return t;
}

const refusals: Record<string, number> = {};
const EXPECTED = new Set(['CHANGE_REFUSED', 'CONCURRENT_UPDATE', 'ORDER_NOT_FOUND']);
function refused(error: unknown): void {
  if (error instanceof YmOrdersError && EXPECTED.has(error.code)) {
    refusals[error.code] = (refusals[error.code] ?? 0) + 1;
    return;
  }
  throw error;
}

function ackRequest(s: OrderState): void {
  out(`ack ${JSON.stringify({ op: 'request', o: s.orderId, v: s.rowVersion, rq: s.pending!.requestNo, key: `${s.orderId}:${s.pending!.status}/${s.pending!.substatus}` })}`);
}

// Both processes open the (possibly not yet existing) file at the same moment.
const startAt = waitForStartLine();
while (Date.now() < startAt) {
  /* spin: the two processes start together */
}
const engine = await createEngine({ db: file, campaigns: CAMPAIGNS, clock: () => T0 + step * 2_000 + proc });
const ids = Array.from({ length: CONCURRENCY_ORDERS }, (_, i) => i + 1);
const orderId = () => pick(random, ids);
const reads = new Map<number, number>();

try {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (step = 1; step <= count; step++) {
    // A real caller does other work between writes; without any, SQLite's busy handler lets
    // one process hold the lock for long stretches and the two barely interleave.
    if (random() < 0.5) Atomics.wait(pause, 0, 0, random() * 1.5);
    const now = engine.clock();
    const r = random();
    try {
      if (r < 0.05 || step === 1) {
        const batch = (step === 1 ? ids : [orderId(), orderId()]).map((id) => ({ orderId: id, campaignId: campaignOf(id), status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }));
        await engine.trackOrders(batch);
        out(`ack ${JSON.stringify({ op: 'track', ids: batch.map((b) => b.orderId) })}`);
      } else if (r < 0.3) {
        const o = orderId();
        const t = uniqueTime();
        const state = random() < 0.5 ? pick(random, RULE_START_STATES) : pick(random, MARKET_STATES);
        const s = await engine.observe({ orderId: o, status: state.status, substatus: state.substatus, observedAt: t, source: random() < 0.2 ? 'readBack' : 'notification' });
        if (s.observedAt === t) out(`ack ${JSON.stringify({ op: 'observe', o, v: s.rowVersion, t })}`);
      } else if (r < 0.45) {
        ackRequest(await engine.requestChange({ orderId: orderId(), ...pick(random, TARGETS) }));
      } else if (r < 0.55) {
        // Optimistic concurrency across processes: write only if nobody changed the order since
        // this process read it, a few steps ago (often someone did: CONCURRENT_UPDATE).
        const o = orderId();
        const seen = reads.get(o) ?? (await engine.getOrder(o)).rowVersion;
        reads.set(o, (await engine.getOrder(o)).rowVersion);
        ackRequest(await engine.requestChange({ orderId: o, ...pick(random, TARGETS.slice(0, 4)), expectedRowVersion: seen }));
      } else if (r < 0.62) {
        const result = await engine.requestChanges(
          Array.from({ length: 1 + Math.floor(random() * 4) }, () => ({ orderId: orderId(), ...pick(random, TARGETS) })),
          { atomic: random() < 0.3 },
        );
        for (const s of result.queued) ackRequest(s);
        for (const x of result.refused) refused(x.error);
      } else {
        const o = orderId();
        const type = random() < 0.35 ? 'DISPATCH.SENT' : pick(random, DISPATCH_TYPES);
        const at = uniqueTime();
        const event =
          type === 'DISPATCH.SENT' ? { type, at }
          : type === 'DISPATCH.ACCEPTED' ? { type, at }
          : type === 'DISPATCH.OPERATION_STARTED' ? { type, at, operationId: `op-${proc}-${step}`, operationType: 'ORDER_STATUS_UPDATE' }
          : type === 'DISPATCH.DEFERRED' ? { type, at, notBefore: at + 60_000, reason: '420 (fake)' }
          : { type, at, reason: `${type} (fake)` };
        const applied = await engine.store.transaction((tx) => engine.orders.apply(tx, o, event as never, now));
        if (applied.changed) out(`ack ${JSON.stringify({ op: 'dispatch', o, v: applied.state.rowVersion, type, at })}`);
      }
    } catch (error) {
      refused(error);
    }
  }
  await engine.close();
  out(`done ${JSON.stringify({ proc, refusals })}`);
} catch (error) {
  process.stderr.write(`worker ${proc} failed at step ${step}: ${error instanceof Error ? `${(error as { code?: string }).code ?? ''} ${error.stack}` : String(error)}\n`);
  process.exit(1);
}
