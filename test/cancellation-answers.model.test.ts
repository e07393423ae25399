// The answers to DBS cancellation requests, model-based (xstate/graph), as
// test/order-machine.model.test.ts does for status changes: from every reachable snapshot of a
// DBS order, generate the Market's moves (the request raised and dropped, the order cancelled or
// delivered, read-backs with and without the flag, fresh and stale), the seller's answers (legal
// and not) and every ANSWER.* event; traverse; then check that every node of the cancellation
// region is reached, that replaying every path with transition() gives the same states, that
// every entry to `queued` emits exactly one send effect and every refused answer none, and that
// the outbox and the deadline timer, rebuilt from the effects alone, match the machine on every path.

import { beforeAll, describe, expect, it } from 'vitest';
import { initialTransition, transition, type AnyStateNode } from 'xstate';
import { getShortestPaths, type StatePath } from 'xstate/graph';
import { DBS_CANCELLATION_ANSWER_MS, judgeCancellationAnswer, orderEffects, orderMachine, type OrderEvent, type OrderInput } from '../machines/order-machine.js';
import { CAMPAIGN_ID, ORDER_ID, T0, type OrderSnapshot } from './helpers/machine-fixtures.js';

const MOVES: ReadonlyArray<readonly [string, string | null, boolean | undefined]> = [
  ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED', true],
  ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED', false],
  ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED', undefined],
  ['PICKUP', 'PICKUP_SERVICE_RECEIVED', true],
  ['CANCELLED', 'USER_CHANGED_MIND', false],
  ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED', false],
];
const ANSWERS: ReadonlyArray<{ accepted: boolean; reason?: string }> = [
  { accepted: true },
  { accepted: false, reason: 'ORDER_IN_DELIVERY' },
  { accepted: false },
  { accepted: true, reason: 'ORDER_DELIVERED' },
];

function answerState(s: OrderSnapshot): string {
  const c = (s.value as { cancellation: unknown }).cancellation;
  return typeof c === 'string' ? c : (c as { requested: string }).requested;
}

function eventsFor(snapshot: OrderSnapshot): OrderEvent[] {
  const at = snapshot.context.observedAt + 1;
  const events: OrderEvent[] = [];
  for (const source of ['sync', 'readBack'] as const) {
    for (const [status, substatus, cancelRequested] of MOVES) {
      events.push({ type: 'MARKET.OBSERVED', status, substatus, observedAt: at, source, ...(cancelRequested !== undefined ? { cancelRequested } : {}) });
    }
  }
  // A stale read-back: never proof of anything.
  events.push({ type: 'MARKET.OBSERVED', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: at - 2, source: 'readBack', cancelRequested: true });
  for (const a of ANSWERS) events.push({ type: 'SELLER.ANSWER_CANCELLATION', ...a, at });
  events.push(
    { type: 'ANSWER.SENT', at },
    { type: 'ANSWER.ACCEPTED', at },
    { type: 'ANSWER.REJECTED', at, reason: 'BAD_REQUEST' },
    { type: 'ANSWER.UNKNOWN', at, reason: 'timeout' },
    { type: 'ANSWER.DEFERRED', at, notBefore: at + 60_000, reason: '420' },
  );
  return events;
}

function serializeState(snapshot: OrderSnapshot): string {
  const { context: c } = snapshot;
  return JSON.stringify([snapshot.value, c.status, c.cancellationRequestedAt !== null, c.cancellationAnswer?.accepted ?? null, c.cancellationAnswer?.sends ?? null, c.lastCancellationAnswer?.kind ?? null]);
}

const INPUT: OrderInput = { orderId: ORDER_ID, campaignId: CAMPAIGN_ID, model: 'DBS', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0, maxSends: 2 };

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

function cancellationNodes(): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const walk = (n: AnyStateNode) => {
    out.push(n);
    for (const child of Object.values(n.states) as AnyStateNode[]) walk(child);
  };
  walk(orderMachine.root.states.cancellation as AnyStateNode);
  return out;
}

describe('cancellation answer model (DBS)', () => {
  it('reaches every node of the cancellation region but the transient checking', () => {
    expect(paths.length).toBeGreaterThan(30);
    const reached = new Set(paths.map((p) => answerState(p.state)));
    const nodes = cancellationNodes().filter((n) => n.id !== 'order.cancellation.checking' && n.id !== 'order.cancellation' && n.id !== 'order.cancellation.requested');
    expect(nodes.map((n) => n.key).sort()).toEqual(['none', 'queued', 'sending', 'unanswered', 'uncertain']);
    expect(nodes.filter((n) => !reached.has(n.key)).map((n) => n.id)).toEqual([]);
    // Every way an answer ends is reached: each outcome, with the request closed or still open.
    const ends = new Set(paths.filter((p) => p.state.context.lastCancellationAnswer).map((p) => `${p.state.context.lastCancellationAnswer!.kind}:${answerState(p.state) === 'none' ? 'closed' : 'open'}`));
    for (const end of ['accepted:closed', 'rejected:open', 'superseded:closed']) expect(ends, end).toContain(end);
  });

  it('replays every path with transition() to the same states; queued is entered with exactly one send, a refused answer changes nothing', () => {
    let entries = 0;
    let refusals = 0;
    for (const p of paths) {
      let [s] = initialTransition(orderMachine, INPUT);
      for (const { event, state } of p.steps.slice(1)) {
        const before = s;
        const [next, actions] = transition(orderMachine, s, event);
        expect(serializeState(next)).toBe(serializeState(state));
        const sends = actions.filter((a) => a.type === 'effect.sendCancellationAnswer');
        const enteredQueued = answerState(next) === 'queued' && answerState(before) !== 'queued';
        expect(sends.length).toBe(enteredQueued ? 1 : 0);
        if (enteredQueued) {
          entries++;
          expect(sends[0]!.params).toEqual({ orderId: ORDER_ID, campaignId: CAMPAIGN_ID, answer: next.context.cancellationAnswer });
        }
        s = next;
      }
      // From every reachable state, each refused answer records its blockers and emits nothing.
      for (const a of ANSWERS) {
        const event = { type: 'SELLER.ANSWER_CANCELLATION', ...a, at: s.context.observedAt + 1 } as const;
        const verdict = judgeCancellationAnswer(s.context, event);
        if (verdict.allowed) continue;
        const [refused, actions] = transition(orderMachine, s, event);
        expect(refused.value).toEqual(s.value);
        expect(actions.filter((x) => x.type.startsWith('effect.'))).toEqual([]);
        expect(refused.context.lastAnswerRefusal?.blockers).toEqual(verdict.blockers);
        refusals++;
      }
    }
    expect(entries).toBeGreaterThan(0);
    expect(refusals).toBeGreaterThan(paths.length);
  });

  it('on every path the outbox and the deadline timer rebuilt from the effects match the machine', () => {
    for (const p of paths) {
      let [s, actions] = initialTransition(orderMachine, INPUT);
      const outbox = new Map<number, string>();
      let timer: number | undefined;
      const replay = () => {
        for (const e of orderEffects(actions)) {
          if (e.type === 'effect.startCancellationDeadline') timer = e.params.dueAt;
          if (e.type === 'effect.clearCancellationDeadline') timer = undefined;
          if (e.type === 'effect.sendCancellationAnswer') outbox.set(e.params.answer.requestNo, 'queued');
          if (e.type === 'effect.recordAnswerState') outbox.set(e.params.requestNo, e.params.state);
          if (e.type === 'effect.settleCancellationAnswer') outbox.set(e.params.outcome.requestNo, e.params.outcome.kind);
        }
      };
      replay();
      for (const { event } of p.steps.slice(1)) {
        [s, actions] = transition(orderMachine, s, event);
        replay();
      }
      const { cancellationAnswer: answer, cancellationRequestedAt: requestedAt } = s.context;
      const open = [...outbox].filter(([, state]) => ['queued', 'sending', 'uncertain'].includes(state));
      expect(open).toEqual(answer ? [[answer.requestNo, answerState(s)]] : []);
      expect(timer).toBe(requestedAt === null ? undefined : requestedAt + DBS_CANCELLATION_ANSWER_MS);
    }
  });
});
