// Multi-step changes, model-based (xstate/graph) and by property (fast-check), over a DBS order
// starting at PROCESSING/STARTED. The events: chain requests to DELIVERED (legal, and with a
// realDeliveryDate in the future), one-step requests, STOP_CHAIN, every DISPATCH.* report about
// the pending request and late ones about the request before it, and the Market's moves
// (along the plan, elsewhere, further along it), fresh and stale. On every path:
//  - each entry to `queued` enqueues exactly one row, for the pending request; a request number
//    names one target, is settled at most once, and is never queued again once settled (a resend
//    queues its own row again, the idempotency key unchanged);
//  - the outbox rebuilt from the effects alone has open rows exactly for the pending change;
//  - a chain's settled steps run 1..k in order, every one but the last saying `continues`, and
//    the last `reached` or `stopped`; after it, `chain` is null and `pending` null or a newer request.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import { getShortestPaths, type StatePath } from 'xstate/graph';
import { orderEffects, orderMachine, type ChangeOutcome, type OrderEvent, type OrderInput } from '../machines/order-machine.js';
import { CAMPAIGN_ID, ORDER_ID, T0, type OrderSnapshot } from './helpers/machine-fixtures.js';

const INPUT: OrderInput = { orderId: ORDER_ID, campaignId: CAMPAIGN_ID, model: 'DBS', status: 'PROCESSING', substatus: 'STARTED', observedAt: T0, maxSends: 2 };
const DATE = '2025-05-11';

const MOVES: ReadonlyArray<readonly [string, string]> = [
  ['PROCESSING', 'STARTED'],
  ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'],
  ['PICKUP', 'PICKUP_SERVICE_RECEIVED'],
  ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED'],
  ['CANCELLED', 'USER_CHANGED_MIND'],
];

function eventsFor(snapshot: OrderSnapshot): OrderEvent[] {
  const { context } = snapshot;
  const at = context.observedAt + 1;
  const current = context.pending?.requestNo ?? context.requestCount;
  const events: OrderEvent[] = [
    { type: 'SELLER.REQUEST', status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: DATE, via: 'chain', at },
    { type: 'SELLER.REQUEST', status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: '2999-01-01', via: 'chain', at },
    { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at },
    { type: 'SELLER.STOP_CHAIN', at },
  ];
  // About the pending request, and a late one about the request before it.
  for (const requestNo of [current, current - 1]) {
    events.push(
      { type: 'DISPATCH.SENT', at, requestNo },
      { type: 'DISPATCH.ACCEPTED', at, requestNo },
      { type: 'DISPATCH.REJECTED', at, requestNo, reason: 'refused', rejection: { code: 'STATUS_NOT_ALLOWED', message: 'refused' } },
    );
  }
  events.push(
    { type: 'DISPATCH.ACCEPTED', at, requestNo: current, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    { type: 'DISPATCH.UNKNOWN', at, requestNo: current, reason: 'timeout' },
    { type: 'DISPATCH.DEFERRED', at, requestNo: current, notBefore: at + 1_000, reason: '420' },
  );
  for (const source of ['sync', 'readBack'] as const) {
    for (const [status, substatus] of MOVES) events.push({ type: 'MARKET.OBSERVED', status, substatus, observedAt: at, source });
  }
  events.push({ type: 'MARKET.OBSERVED', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: at - 2, source: 'readBack' });
  return events;
}

/** The state as far as the properties care: absolute request numbers and times left out, so the graph is finite. */
function serializeState(snapshot: OrderSnapshot): string {
  const c = snapshot.context;
  return JSON.stringify([
    snapshot.value,
    c.status,
    c.substatus,
    c.pending ? [c.pending.status, c.pending.sends] : null,
    c.chain ? [c.chain.index, c.chain.stopRequested] : null,
    c.lastOutcome ? [c.lastOutcome.kind, c.lastOutcome.chain?.end ?? null, c.lastOutcome.chain?.step ?? null] : null,
  ]);
}

/** Replays `events` from the start, checking the invariants after each step; returns the chain outcomes seen. */
function replayChecked(events: readonly OrderEvent[]): { outcomes: ChangeOutcome[]; enqueued: number[]; final: OrderSnapshot } {
  let [s, actions] = initialTransition(orderMachine, INPUT);
  const outbox = new Map<number, string>();
  const enqueued: number[] = [];
  const targets = new Map<number, string>();
  const outcomes: ChangeOutcome[] = [];
  const apply = () => {
    for (const e of orderEffects(actions)) {
      if (e.type === 'effect.sendStatusChange') {
        // A resend (after a read-back, a deferral) queues the request's own row again; a settled
        // request is never queued again, and a request number names one target only.
        const { requestNo, status, substatus } = e.params.pending;
        expect(['accepted', 'rejected', 'superseded'], `request ${requestNo} queued after it settled`).not.toContain(outbox.get(requestNo));
        const target = `${status}/${substatus}`;
        expect(targets.get(requestNo) ?? target, `request ${requestNo} names two targets`).toBe(target);
        targets.set(requestNo, target);
        if (!enqueued.includes(requestNo)) enqueued.push(requestNo);
        outbox.set(requestNo, 'queued');
      }
      if (e.type === 'effect.recordChangeState') outbox.set(e.params.requestNo, e.params.state);
      if (e.type === 'effect.settleStatusChange') {
        expect(outbox.get(e.params.outcome.requestNo), `request ${e.params.outcome.requestNo} settled twice`).not.toMatch(/^(accepted|rejected|superseded)$/);
        outbox.set(e.params.outcome.requestNo, e.params.outcome.kind);
        outcomes.push(e.params.outcome);
      }
    }
  };
  apply();
  for (const event of events) {
    const before = s;
    [s, actions] = transition(orderMachine, s, event);
    const sends = orderEffects(actions).filter((e) => e.type === 'effect.sendStatusChange');
    const change = (x: OrderSnapshot) => (x.value as { change: string }).change;
    const enteredQueued = change(s) === 'queued' && (change(before) !== 'queued' || s.context.pending?.requestNo !== before.context.pending?.requestNo);
    expect(sends.length).toBe(enteredQueued ? 1 : 0);
    if (enteredQueued) expect(sends[0]!.params).toMatchObject({ pending: s.context.pending });
    apply();
    const open = [...outbox].filter(([, state]) => ['queued', 'sending', 'awaitingOperation', 'uncertain'].includes(state));
    expect(open.map(([no]) => no)).toEqual(s.context.pending ? [s.context.pending.requestNo] : []);
    if (s.context.chain !== null) expect(s.context.pending?.status).toBe(s.context.chain.steps[s.context.chain.index]!.status);
  }
  checkChainOutcomes(outcomes, s);
  return { outcomes, enqueued, final: s };
}

function checkChainOutcomes(outcomes: readonly ChangeOutcome[], final: OrderSnapshot): void {
  const byChain = new Map<number, ChangeOutcome[]>();
  for (const o of outcomes) if (o.chain) byChain.set(o.chain.firstRequestNo, [...(byChain.get(o.chain.firstRequestNo) ?? []), o]);
  for (const [first, settled] of byChain) {
    expect(settled.map((o) => o.chain!.step)).toEqual(settled.map((_, i) => i + 1));
    expect(settled.map((o) => o.requestNo)).toEqual([...settled.map((o) => o.requestNo)].sort((a, b) => a - b));
    expect(settled[0]!.requestNo).toBe(first);
    for (const o of settled.slice(0, -1)) expect(o.chain!.end).toBe('continues');
    const last = settled.at(-1)!;
    if (last.chain!.end === 'continues') {
      // The chain is still on its way: its next step is the pending change.
      expect(final.context.chain?.firstRequestNo).toBe(first);
      expect(final.context.pending?.requestNo).toBeGreaterThan(last.requestNo);
    } else {
      if (last.chain!.end === 'reached') expect(last.kind).toBe('accepted');
      else expect(last.chain!.stopReason?.code).toBeTypeOf('string');
      expect(final.context.chain?.firstRequestNo).not.toBe(first);
      if (final.context.pending) expect(final.context.pending.requestNo).toBeGreaterThan(last.requestNo);
    }
  }
}

type Path = StatePath<OrderSnapshot, OrderEvent>;
let paths: Path[] = [];
beforeAll(() => {
  paths = getShortestPaths(orderMachine, {
    input: INPUT,
    events: (s) => eventsFor(s as OrderSnapshot),
    serializeState: (s) => serializeState(s as OrderSnapshot),
    limit: 100_000,
  }) as unknown as Path[];
}, 60_000);

describe('chain model (DBS, PROCESSING/STARTED → DELIVERED)', () => {
  it('reaches every change state with a chain, and every way a chain step ends', () => {
    expect(paths.length).toBeGreaterThan(50);
    const withChain = new Set(paths.filter((p) => p.state.context.chain !== null).map((p) => (p.state.value as { change: string }).change));
    for (const state of ['queued', 'sending', 'uncertain']) expect(withChain, state).toContain(state);
    const ends = new Set(paths.flatMap((p) => (p.state.context.lastOutcome?.chain ? [`${p.state.context.lastOutcome.kind}:${p.state.context.lastOutcome.chain.end}:${p.state.context.lastOutcome.chain.stopReason?.code ?? ''}`] : [])));
    for (const end of [
      'accepted:continues:',
      'accepted:reached:',
      'accepted:stopped:CHAIN_MARKET_MOVED',
      'accepted:stopped:CHAIN_STOPPED_BY_SELLER',
      'rejected:stopped:STATUS_NOT_ALLOWED',
      'superseded:stopped:CHAIN_MARKET_MOVED',
      'superseded:stopped:CHAIN_STOPPED_BY_SELLER',
      'superseded:stopped:CHAIN_REPLACED',
    ]) {
      expect(ends, end).toContain(end);
    }
  });

  it('on every path: one row per entry to queued, no request queued after it settled or settled twice, open rows = the pending change, chain steps settle 1..k in order', () => {
    let chains = 0;
    for (const p of paths) {
      const { outcomes } = replayChecked(p.steps.slice(1).map((s) => s.event));
      if (outcomes.some((o) => o.chain?.step === 2)) chains++;
    }
    expect(chains).toBeGreaterThan(0);
  });
});

describe('chain properties (fast-check)', () => {
  it('for random event sequences the same invariants hold', () => {
    // Each event is drawn from those the current state offers (eventsFor), by index.
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (picks) => {
        let [s] = initialTransition(orderMachine, INPUT);
        const events: OrderEvent[] = [];
        for (const pick of picks) {
          const offered = eventsFor(s);
          const event = offered[pick % offered.length]!;
          events.push(event);
          [s] = transition(orderMachine, s, event);
        }
        replayChecked(events);
      }),
      { numRuns: 400 },
    );
  });
});
