// Model-based tests with xstate/graph: from every reachable snapshot, generate observations
// (every known status, several PROCESSING substatuses, an unknown status), seller requests
// (each allowed target and one illegal one) and every DISPATCH.* event; traverse with a bounded
// serialisation; then check that every state node is reached for every model and that every
// SellerRule edge is exercised by some path. The answers to cancellation requests (the
// substates of cancellation.requested past `unanswered`) have a model of their own, over the
// answer's events: test/cancellation-answers.model.test.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { initialTransition, transition, type AnyStateNode } from 'xstate';
import { getShortestPaths, type StatePath } from 'xstate/graph';
import { allowedTargets, explainTransition } from '../machines/explain.js';
import { orderMachine, type OrderEvent, type OrderInput } from '../machines/order-machine.js';
import { SELLER_RULES, matchesPattern } from '../machines/rules.js';
import { FULFILMENT_MODELS, type FulfilmentModel } from '../machines/statuses.js';
import { CAMPAIGN_ID, ORDER_ID, T0, VALID_CALL_EVIDENCE, changeState, type OrderSnapshot } from './helpers/machine-fixtures.js';

const OBSERVATIONS: ReadonlyArray<readonly [string, string | null]> = [
  ['PLACING', null],
  ['RESERVED', null],
  ['UNPAID', 'AWAIT_PAYMENT'],
  ['PROCESSING', 'STARTED'],
  ['PROCESSING', 'READY_TO_SHIP'],
  ['PROCESSING', 'SHIPPED'],
  ['PROCESSING', 'PACKAGING'],
  ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'],
  ['DELIVERY', 'DELIVERY_USER_NOT_RECEIVED'],
  ['PICKUP', 'PICKUP_SERVICE_RECEIVED'],
  ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED'],
  ['CANCELLED', 'SHOP_FAILED'],
  ['CANCELLED', 'USER_CHANGED_MIND'],
  ['PENDING', 'AWAIT_CONFIRMATION'],
  ['PARTIALLY_RETURNED', null],
  ['RETURNED', null],
  ['UNKNOWN', 'UNKNOWN'],
  ['A_STATUS_FROM_THE_FUTURE', 'SOMETHING'],
];

/** Reached by test/cancellation-answers.model.test.ts, whose events drive an answer. */
const ANSWER_NODES: ReadonlySet<string> = new Set(['order.cancellation.requested.queued', 'order.cancellation.requested.sending', 'order.cancellation.requested.uncertain']);

/** Never a seller change: always refused. */
const ILLEGAL = { status: 'RETURNED', substatus: 'UNKNOWN' } as const;

function eventsFor(snapshot: OrderSnapshot): OrderEvent[] {
  const { context } = snapshot;
  const at = context.observedAt + 1;
  const change = changeState(snapshot);
  const source = change === 'uncertain' ? 'readBack' : 'sync';
  const events: OrderEvent[] = OBSERVATIONS.map(([status, substatus]) => ({ type: 'MARKET.OBSERVED', status, substatus, observedAt: at, source }));
  // DBS buyer cancellation requests come and go with the Market's cancelRequested flag.
  for (const cancelRequested of [true, false]) {
    events.push({ type: 'MARKET.OBSERVED', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: at, source, cancelRequested });
  }
  if (change === 'idle') {
    for (const t of allowedTargets({ status: context.status, substatus: context.substatus ?? undefined }, context.model)) {
      events.push({
        type: 'SELLER.REQUEST',
        status: t.status,
        substatus: t.substatus,
        ...(t.substatus === 'USER_UNREACHABLE' ? { callEvidence: VALID_CALL_EVIDENCE } : {}),
        at,
      });
    }
  }
  events.push({ type: 'SELLER.REQUEST', ...ILLEGAL, at });
  events.push(
    { type: 'DISPATCH.SENT', at },
    { type: 'DISPATCH.ACCEPTED', at },
    { type: 'DISPATCH.REJECTED', at, reason: 'ERROR' },
    { type: 'DISPATCH.OPERATION_STARTED', at, operationId: 'op-1', operationType: 'ORDER_STATUS_UPDATE' },
    { type: 'DISPATCH.UNKNOWN', at, reason: 'timeout' },
    { type: 'DISPATCH.DEFERRED', at, notBefore: at + 60_000, reason: '420' },
  );
  return events;
}

function verdictAt(snapshot: OrderSnapshot, request: Extract<OrderEvent, { type: 'SELLER.REQUEST' }>) {
  const { context } = snapshot;
  return explainTransition({ status: context.status, substatus: context.substatus ?? undefined, pending: context.pending }, request, context.model, { now: request.at });
}

function serializeState(snapshot: OrderSnapshot): string {
  const { context: c } = snapshot;
  return JSON.stringify([snapshot.value, c.status, c.substatus, c.pending?.status ?? null, c.pending?.substatus ?? null, c.pending?.sends ?? null]);
}

function inputFor(model: FulfilmentModel): OrderInput {
  return { orderId: ORDER_ID, campaignId: CAMPAIGN_ID, model, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 };
}

function allNodes(): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const walk = (n: AnyStateNode) => {
    for (const child of Object.values(n.states) as AnyStateNode[]) {
      out.push(child);
      walk(child);
    }
  };
  walk(orderMachine.root as AnyStateNode);
  return out;
}

/** The state value that has `path` active, e.g. ['market','PROCESSING','STARTED'] → {market:{PROCESSING:'STARTED'}}. */
function valueFor(path: readonly string[]): string | Record<string, unknown> {
  const [head, ...rest] = path;
  return rest.length === 0 ? head! : { [head!]: valueFor(rest) };
}

type Path = StatePath<OrderSnapshot, OrderEvent>;
/** Transitions a traversal may explore (getShortestPaths' `limit`) before it throws. */
const TRAVERSAL_LIMIT = 200_000;
const pathsByModel = new Map<FulfilmentModel, Path[]>();
const timings: Record<string, number> = {};

/** The model's shortest paths, traversed on first use: each test gets them however it is run. */
function pathsFor(model: FulfilmentModel): Path[] {
  const known = pathsByModel.get(model);
  if (known) return known;
  const t = performance.now();
  const paths = getShortestPaths(orderMachine, {
    input: inputFor(model),
    events: (s) => eventsFor(s as OrderSnapshot),
    serializeState: (s) => serializeState(s as OrderSnapshot),
    limit: TRAVERSAL_LIMIT,
  }) as unknown as Path[];
  timings[model] = Math.round(performance.now() - t);
  pathsByModel.set(model, paths);
  return paths;
}

// Traversed up front, under the hook's longer timeout rather than the first test's.
beforeAll(() => {
  for (const model of FULFILMENT_MODELS) pathsFor(model);
}, 60_000);

describe.each(FULFILMENT_MODELS)('order machine model, %s', (model) => {
  it('reaches every state node except the transient market.routing and cancellation.checking (and the answer\'s, modelled apart)', () => {
    const paths = pathsFor(model);
    expect(paths.length).toBeGreaterThan(50);
    const unreached = allNodes()
      .filter((n) => n.id !== 'order.market.routing' && n.id !== 'order.cancellation.checking' && !ANSWER_NODES.has(n.id))
      .filter((n) => !paths.some((p) => p.state.matches(valueFor(n.path) as never)))
      .map((n) => n.id);
    expect(unreached).toEqual([]);
    // routing is transient: no snapshot ever rests in it.
    expect(paths.some((p) => p.state.matches({ market: 'routing' } as never))).toBe(false);
  });

  it('exercises every SellerRule edge of the model: a SELLER.REQUEST from a matching state that enters queued', () => {
    const paths = pathsFor(model);
    const exercised: Array<{ from: { status: string; substatus: string | null }; to: { status: string; substatus: string } }> = [];
    for (const p of paths) {
      for (let i = 1; i < p.steps.length; i++) {
        const prev = p.steps[i - 1]!.state;
        const { event, state } = p.steps[i]!;
        if (event.type === 'SELLER.REQUEST' && changeState(prev) === 'idle' && changeState(state) === 'queued') {
          exercised.push({ from: { status: prev.context.status, substatus: prev.context.substatus }, to: state.context.pending! });
        }
      }
    }
    const missing = SELLER_RULES.filter((r) => r.models.includes(model))
      .filter(
        (r) =>
          !exercised.some(
            (e) =>
              matchesPattern(r.from, e.from.status, e.from.substatus ?? undefined) &&
              e.to.status === r.to.status &&
              e.to.substatus === r.to.substatus,
          ),
      )
      .map((r) => r.id);
    expect(missing).toEqual([]);
    // And nothing else entered queued: every exercised edge is a rule of this model.
    for (const e of exercised) {
      expect(
        SELLER_RULES.some((r) => r.models.includes(model) && matchesPattern(r.from, e.from.status, e.from.substatus ?? undefined) && r.to.status === e.to.status && r.to.substatus === e.to.substatus),
        JSON.stringify(e),
      ).toBe(true);
    }
  });

  it('replaying every path with transition() gives the same states, a send effect on every entry to queued, and none for illegal requests', () => {
    const paths = pathsFor(model);
    let queuedEntries = 0;
    let refusalsChecked = 0;
    for (const p of paths) {
      let [s] = initialTransition(orderMachine, inputFor(model));
      for (const { event, state } of p.steps.slice(1)) {
        const before = s;
        const [next, actions] = transition(orderMachine, s, event);
        expect(serializeState(next)).toBe(serializeState(state));
        const sends = actions.filter((a) => a.type === 'effect.sendStatusChange');
        const enteredQueued = changeState(next) === 'queued' && changeState(before) !== 'queued';
        expect(sends.length).toBe(enteredQueued ? 1 : 0);
        if (enteredQueued) {
          queuedEntries++;
          expect(sends[0]!.params).toEqual({ orderId: ORDER_ID, campaignId: CAMPAIGN_ID, pending: next.context.pending });
        }
        // A refused request changes no state that counts, so a shortest path only ever
        // carries requests that were allowed and queued; refusals are checked below.
        if (event.type === 'SELLER.REQUEST') {
          expect(verdictAt(before, event).allowed).toBe(true);
          expect(enteredQueued).toBe(true);
        }
        s = next;
      }
      // From every reachable state, an illegal request is refused: no change, no send, and
      // the blockers explainTransition gives are recorded.
      const illegal = { type: 'SELLER.REQUEST', ...ILLEGAL, at: s.context.observedAt + 1 } as const;
      const verdict = verdictAt(s, illegal);
      if (verdict.allowed) throw new Error(`${ILLEGAL.status}/${ILLEGAL.substatus} is allowed from ${serializeState(s)}`);
      const [refused, actions] = transition(orderMachine, s, illegal);
      expect(changeState(refused)).toBe(changeState(s));
      expect(refused.context.pending).toEqual(s.context.pending);
      expect(actions.filter((a) => a.type === 'effect.sendStatusChange')).toEqual([]);
      expect(refused.context.lastRefusal?.blockers).toEqual(verdict.blockers);
      refusalsChecked++;
    }
    expect(queuedEntries).toBeGreaterThan(0);
    expect(refusalsChecked).toBe(paths.length);
  });
});

describe('order machine model, cost', () => {
  // The traversal's cost is the number of transitions it explores (each distinct state times
  // its events), a count that does not depend on how busy the machine is: about 9 000 to
  // 53 000 per model today. Growth to half the limit fails here, while the traversal still
  // completes, rather than as "Traversal limit exceeded" in every test at once.
  it('explores under half of the traversal limit for every model', () => {
    const cost = Object.fromEntries(
      FULFILMENT_MODELS.map((model) => {
        const paths = pathsFor(model);
        return [model, { states: paths.length, transitions: paths.reduce((n, p) => n + eventsFor(p.state).length, 0) }];
      }),
    );
    console.info('getShortestPaths per model:', cost, 'ms:', timings);
    expect(Object.keys(cost)).toEqual([...FULFILMENT_MODELS]);
    for (const [model, { states, transitions }] of Object.entries(cost)) {
      expect(states, model).toBeGreaterThan(50);
      expect(transitions, model).toBeLessThan(TRAVERSAL_LIMIT / 2);
    }
  });
});
