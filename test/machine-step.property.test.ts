// The stepper (src/engine/machine-step.ts) against XState's public transition(): over random
// inputs and random event streams, both give the same next snapshot (persisted JSON, and the
// very same object when nothing changed) and the same actions (types and resolved params), at
// every step, for the order and the operation machines. Also: a snapshot resolved from its JSON
// steps like the one in memory (what SnapshotCache.remember relies on), and the cache never
// serves a snapshot for a row other than the one it was resolved from.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assign, initialTransition, setup, transition, type AnyStateMachine, type EventFromLogic, type SnapshotFrom } from 'xstate';
import { allowedTargets } from '../machines/explain.js';
import { operationMachine, type OperationEvent, type OperationInput } from '../machines/operation-machine.js';
import { orderMachine, type OrderEvent, type OrderInput } from '../machines/order-machine.js';
import { sellerTargets } from '../machines/rules.js';
import { FULFILMENT_MODELS, OPERATION_STATUSES, OPERATION_TYPES, ORDER_STATUSES, ORDER_SUBSTATUSES, type KnownOrderStatus, type KnownOrderSubstatus } from '../machines/statuses.js';
import { createMachineStepper, SnapshotCache, type MachineStepper, type StoredRow } from '../src/engine/machine-step.js';
import { CAMPAIGN_ID, ORDER_ID, T0, VALID_CALL_EVIDENCE } from './helpers/machine-fixtures.js';

const NUM_RUNS = 200;

// ---- comparing a step both ways ----------------------------------------------------------------

type Actions = readonly { readonly type: string; readonly params?: unknown }[];

function persisted(machine: AnyStateMachine, snapshot: SnapshotFrom<AnyStateMachine>): string {
  return JSON.stringify(machine.getPersistedSnapshot(snapshot));
}

/** What the engine reads of an action: its type and resolved params, in order. */
function effectsOf(actions: Actions): { type: string; params: unknown }[] {
  return actions.map((a) => ({ type: a.type, params: a.params }));
}

interface Tally {
  steps: number;
  changed: number;
  withActions: number;
  readonly eventTypes: Set<string>;
  readonly actionTypes: Set<string>;
}

/** Every effect the machine's setup() declares: each must come up, so that each was compared. */
function declaredEffects(machine: AnyStateMachine): string[] {
  return Object.keys(machine.implementations.actions).filter((type) => type.startsWith('effect.')).sort();
}

const newTally = (): Tally => ({ steps: 0, changed: 0, withActions: 0, eventTypes: new Set(), actionTypes: new Set() });

/**
 * The stepper's resolve() shares what a state value resolves to between rows: its snapshot must
 * have resolveState's fields, equal one by one (the state nodes the very same objects), and no other.
 */
function expectSameResolution<M extends AnyStateMachine>(machine: M, stepper: MachineStepper<M>, json: string): void {
  const mine = stepper.resolve(JSON.parse(json)) as unknown as Record<string, unknown>;
  const reference = machine.resolveState(JSON.parse(json)) as unknown as Record<string, unknown>;
  expect(Object.keys(mine).sort()).toStrictEqual(Object.keys(reference).sort());
  for (const key of Object.keys(reference)) {
    if (key === '_nodes') {
      expect((mine._nodes as unknown[]).length).toBe((reference._nodes as unknown[]).length);
      (reference._nodes as unknown[]).forEach((node, i) => expect((mine._nodes as unknown[])[i]).toBe(node));
    } else if (key === 'tags') expect([...(mine.tags as Set<string>)].sort()).toStrictEqual([...(reference.tags as Set<string>)].sort());
    else if (typeof reference[key] === 'function') expect(mine[key]).toBe(reference[key]);
    else expect(mine[key], key).toStrictEqual(reference[key]);
  }
}

/**
 * Steps `templates` from `input` with transition() and with the stepper, side by side, checking
 * every step; also steps the stepper from the snapshot resolved from the persisted JSON.
 */
function compareWalk<M extends AnyStateMachine>(
  machine: M,
  stepper: MachineStepper<M>,
  input: Parameters<MachineStepper<M>['initial']>[0],
  templates: readonly ((s: SnapshotFrom<M>) => EventFromLogic<M>)[],
  tally: Tally,
): void {
  const [ref, refActions] = (initialTransition as (m: M, i: unknown) => [SnapshotFrom<M>, Actions])(machine, input);
  const [mine, mineActions] = stepper.initial(input);
  expect(persisted(machine, mine)).toBe(persisted(machine, ref));
  expect(stepper.persist(mine)).toBe(persisted(machine, ref));
  expect(effectsOf(mineActions)).toStrictEqual(effectsOf(refActions));
  // Each snapshot goes through a SnapshotCache (which freezes its context) before it is stepped
  // on, as the engine's next step of that order would take it: stepping must not change it.
  const cache = new SnapshotCache<SnapshotFrom<M>>(1);
  let rowVersion = 0;
  const cached = (snapshot: SnapshotFrom<M>): SnapshotFrom<M> => {
    const row = { row_version: ++rowVersion, machine_version: 1, snapshot: persisted(machine, snapshot) };
    cache.remember(1, row, snapshot);
    return cache.get(1, row)!;
  };
  let current = cached(ref);
  for (const template of templates) {
    const event = template(current);
    const [next, actions] = (transition as (m: M, s: SnapshotFrom<M>, e: EventFromLogic<M>) => [SnapshotFrom<M>, Actions])(machine, current, event);
    const [stepped, steppedActions] = stepper.step(current, event);
    const json = persisted(machine, next);
    expect(persisted(machine, stepped)).toBe(json);
    // What the engine stores: the stepper's own JSON, the same text as getPersistedSnapshot's.
    expect(stepper.persist(stepped)).toBe(json);
    expect(stepper.persist(next)).toBe(json);
    // The engine skips a write when the machine hands back the snapshot it was given.
    expect(stepped === current).toBe(next === current);
    expect(effectsOf(steppedActions)).toStrictEqual(effectsOf(actions));
    // As stored and loaded again: what a cached snapshot stands in for.
    expectSameResolution(machine, stepper, persisted(machine, current));
    const [fromJson, fromJsonActions] = stepper.step(stepper.resolve(JSON.parse(persisted(machine, current))), event);
    expect(persisted(machine, fromJson)).toBe(json);
    expect(stepper.persist(fromJson)).toBe(json);
    expect(JSON.stringify(effectsOf(fromJsonActions))).toBe(JSON.stringify(effectsOf(actions)));

    tally.steps++;
    tally.eventTypes.add(event.type);
    if (next !== current) tally.changed++;
    if (actions.length > 0) tally.withActions++;
    for (const a of actions) tally.actionTypes.add(a.type);
    current = cached(next);
    expect(current).toBe(next);
  }
}

// ---- order machine arbitraries -----------------------------------------------------------------

type OrderSnapshot = SnapshotFrom<typeof orderMachine>;
type OrderTemplate = (s: OrderSnapshot) => OrderEvent;

const weirdString = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor', '', 'processing', 'routing', 'UNRECOGNIZED', 'OTHER'));
const status = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ORDER_STATUSES) }, { weight: 1, arbitrary: weirdString });
const substatus = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ORDER_SUBSTATUSES) },
  { weight: 1, arbitrary: weirdString },
  { weight: 1, arbitrary: fc.constant(null) },
);
/** Negative deltas make stale events. */
const delta = fc.integer({ min: -5_000, max: 5_000 });
const actionable = fc.constantFrom<[string, string | null]>(
  ['PROCESSING', 'STARTED'],
  ['PROCESSING', 'READY_TO_SHIP'],
  ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'],
  ['PICKUP', 'PICKUP_SERVICE_RECEIVED'],
  ['RESERVED', null],
);
const allSellerTargets = FULFILMENT_MODELS.flatMap((m) => sellerTargets(m));

const observation = fc
  .record({
    at: fc.oneof(fc.tuple(status, substatus), actionable),
    d: delta,
    source: fc.constantFrom('readBack', 'readBack', 'sync', 'notification', 'dispatch', 'operation', 'import' as const),
    cancelRequested: fc.constantFrom(undefined, undefined, true, false),
  })
  .map(({ at: [st, sub], d, source, cancelRequested }): OrderTemplate => (s) => ({
    type: 'MARKET.OBSERVED',
    status: st,
    substatus: sub,
    observedAt: s.context.observedAt + d,
    source,
    ...(cancelRequested !== undefined ? { cancelRequested } : {}),
  }));

const request = fc
  .record({
    mode: fc.constantFrom('allowedHere', 'allowedHere', 'anySellerTarget', 'random'),
    pick: fc.nat(),
    random: fc.record({ status, substatus: fc.option(fc.constantFrom(...ORDER_SUBSTATUSES, 'NOT_A_SUBSTATUS'), { nil: undefined }) }),
    evidence: fc.constantFrom('none', 'valid', 'bad'),
    date: fc.constantFrom(undefined, undefined, undefined, '2025-05-10', '2025-02-30'),
    d: fc.integer({ min: 0, max: 5_000 }),
  })
  .map(({ mode, pick, random, evidence, date, d }): OrderTemplate => (s) => {
    // Mostly legal from where the order is (changes get queued), sometimes not at all.
    const here = allowedTargets({ status: s.context.status, substatus: s.context.substatus ?? undefined }, s.context.model);
    const target = mode === 'allowedHere' && here.length > 0 ? here[pick % here.length]! : mode === 'random' ? random : allSellerTargets[pick % allSellerTargets.length]!;
    return {
      type: 'SELLER.REQUEST',
      status: target.status as KnownOrderStatus,
      ...(target.substatus !== undefined ? { substatus: target.substatus as KnownOrderSubstatus } : {}),
      ...(evidence === 'valid' ? { callEvidence: VALID_CALL_EVIDENCE } : evidence === 'bad' ? { callEvidence: { buyerTimeZone: 'Nowhere/Land', calls: [] } } : {}),
      ...(date !== undefined ? { realDeliveryDate: date } : {}),
      at: s.context.observedAt + d,
    };
  });

const dispatch = fc
  .record({ kind: fc.constantFrom('SENT', 'ACCEPTED', 'ACCEPTED_AS', 'REJECTED', 'OPERATION_STARTED', 'UNKNOWN', 'DEFERRED'), d: delta, status, substatus })
  .map(({ kind, d, status: st, substatus: sub }): OrderTemplate => (s) => {
    const at = s.context.observedAt + d;
    switch (kind) {
      case 'SENT': return { type: 'DISPATCH.SENT', at };
      case 'ACCEPTED': return { type: 'DISPATCH.ACCEPTED', at };
      case 'ACCEPTED_AS': return { type: 'DISPATCH.ACCEPTED', at, status: st, substatus: sub };
      case 'REJECTED': return { type: 'DISPATCH.REJECTED', at, reason: 'ERROR' };
      case 'OPERATION_STARTED': return { type: 'DISPATCH.OPERATION_STARTED', at, operationId: 'op-1', operationType: 'ORDER_STATUS_UPDATE' };
      case 'UNKNOWN': return { type: 'DISPATCH.UNKNOWN', at, reason: 'timeout', readBackAt: at + 1_000 };
      default: return { type: 'DISPATCH.DEFERRED', at, notBefore: at + 1_000, reason: '420' };
    }
  });

/**
 * Any event type the machine handles (its root's `events`, so a type added later is stepped
 * too) or none, with every field some event reads. XState ignores what it does not handle, and
 * both ways must agree on that as well.
 */
function anyEvent<M extends AnyStateMachine>(machine: M, timeOf: (s: SnapshotFrom<M>) => number) {
  return fc
    .record({
      type: fc.constantFrom(...(machine.root.events as string[]), 'NOT.AN.EVENT'),
      d: fc.oneof(delta, fc.integer({ min: 0, max: 5_000 })),
      accepted: fc.boolean(),
      reason: fc.constantFrom(undefined, undefined, undefined, 'ORDER_DELIVERED', 'ORDER_IN_DELIVERY', 'NOT_A_REASON', 'timeout'),
      status: fc.constantFrom(...ORDER_STATUSES, ...OPERATION_STATUSES, 'NOT_A_STATUS'),
    })
    .map(({ type, d, accepted, reason, status: st }) => (s: SnapshotFrom<M>) => {
      const at = timeOf(s) + d;
      return { type, at, observedAt: at, source: 'sync', status: st, accepted, notBefore: at + 1_000, readBackAt: at + 500, operationId: 'op-2', operationType: 'ORDER_STATUS_UPDATE', ...(reason !== undefined ? { reason } : {}) } as EventFromLogic<M>;
    });
}

const at = (type: 'DISPATCH.SENT' | 'DISPATCH.UNKNOWN' | 'DISPATCH.OPERATION_STARTED'): OrderTemplate => (s) =>
  type === 'DISPATCH.SENT'
    ? { type, at: s.context.observedAt + 1 }
    : type === 'DISPATCH.UNKNOWN'
      ? { type, at: s.context.observedAt + 2, reason: 'timeout' }
      : { type, at: s.context.observedAt + 3, operationId: 'op-1', operationType: 'ORDER_STATUS_UPDATE' };
/** A fresh read-back showing the order where it was. */
const readBackUnchanged: OrderTemplate = (s) => ({ type: 'MARKET.OBSERVED', status: s.context.status, substatus: s.context.substatus, observedAt: s.context.observedAt + 10, source: 'readBack' });

const orderChunk = fc.oneof(
  { weight: 3, arbitrary: observation.map((t) => [t]) },
  { weight: 3, arbitrary: request.map((t) => [t]) },
  { weight: 4, arbitrary: dispatch.map((t) => [t]) },
  { weight: 2, arbitrary: anyEvent(orderMachine, (s) => s.context.observedAt).map((t) => [t]) },
  // Bursts of them, so that the lifecycles of event types this test does not name get walked too.
  { weight: 2, arbitrary: fc.array(anyEvent(orderMachine, (s) => s.context.observedAt), { minLength: 2, maxLength: 6 }) },
  // Runs that drive a change through sending into an operation, uncertain and a read-back.
  { weight: 1, arbitrary: request.map((r) => [r, at('DISPATCH.SENT'), at('DISPATCH.UNKNOWN'), readBackUnchanged]) },
  { weight: 1, arbitrary: request.map((r) => [r, at('DISPATCH.SENT'), at('DISPATCH.OPERATION_STARTED')]) },
  { weight: 1, arbitrary: fc.tuple(request, observation).map(([r, o]) => [r, at('DISPATCH.SENT'), o]) },
);

const orderScenario = fc.record({
  input: fc
    .record({
      model: fc.constantFrom(...FULFILMENT_MODELS, 'DBS'),
      start: fc.oneof({ weight: 3, arbitrary: actionable }, { weight: 1, arbitrary: fc.tuple(status, substatus) }),
      cancelRequested: fc.constantFrom(undefined, true, true, false),
      maxSends: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      asyncSettleMs: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
    })
    .map(({ model, start: [st, sub], cancelRequested, maxSends, asyncSettleMs }): OrderInput => ({
      orderId: ORDER_ID,
      campaignId: CAMPAIGN_ID,
      model,
      status: st,
      substatus: sub,
      observedAt: T0,
      ...(cancelRequested !== undefined ? { cancelRequested } : {}),
      ...(maxSends !== undefined ? { maxSends } : {}),
      ...(asyncSettleMs !== undefined ? { asyncSettleMs } : {}),
    })),
  events: fc.array(orderChunk, { maxLength: 25, size: 'medium' }).map((chunks) => chunks.flat()),
});

// ---- operation machine arbitraries -------------------------------------------------------------

type OperationSnapshot = SnapshotFrom<typeof operationMachine>;
type OperationTemplate = (s: OperationSnapshot) => OperationEvent;

const operationInput = fc
  .record({
    operationType: fc.constantFrom(...OPERATION_TYPES, 'NOT_A_TYPE'),
    orderId: fc.constantFrom(undefined, null, ORDER_ID),
    policy: fc.option(
      fc.record(
        { initialIntervalMs: fc.integer({ min: 1, max: 5_000 }), backoffCoefficient: fc.constantFrom(1, 1.5, 2), maximumIntervalMs: fc.integer({ min: 1, max: 60_000 }), timeoutMs: fc.integer({ min: 0, max: 120_000 }) },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    ),
  })
  .map(({ operationType, orderId, policy }): OperationInput => ({
    operationId: 'op-1',
    operationType,
    businessId: 77,
    startedAt: T0,
    ...(orderId !== undefined ? { orderId } : {}),
    ...(policy !== undefined ? { policy } : {}),
  }));

/** Times around the poll schedule and the deadline, so that both are crossed. */
const operationEvent = fc
  .record({
    kind: fc.constantFrom('result', 'result', 'result', 'deadline'),
    status: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...OPERATION_STATUSES) }, { weight: 1, arbitrary: weirdString }),
    base: fc.constantFrom('nextPoll', 'deadline', 'lastPoll'),
    d: delta,
  })
  .map(({ kind, status: st, base, d }): OperationTemplate => (s) => {
    const c = s.context;
    const at = (base === 'nextPoll' ? c.nextPollAt : base === 'deadline' ? c.deadlineAt : (c.lastPolledAt ?? c.startedAt)) + d;
    return kind === 'result' ? { type: 'POLL.RESULT', status: st, at } : { type: 'POLL.CHECK_DEADLINE', at };
  });

const operationScenario = fc.record({
  input: operationInput,
  events: fc.array(
    fc.oneof({ weight: 5, arbitrary: operationEvent }, { weight: 1, arbitrary: anyEvent(operationMachine, (s) => s.context.nextPollAt) }),
    { maxLength: 20 },
  ),
});

// ---- properties --------------------------------------------------------------------------------

describe('createMachineStepper', () => {
  it('steps the order machine exactly as transition(): snapshots and actions, at every step', () => {
    const stepper = createMachineStepper(orderMachine);
    const tally = newTally();
    fc.assert(
      fc.property(orderScenario, ({ input, events }) => {
        compareWalk(orderMachine, stepper, input, events, tally);
      }),
      { numRuns: NUM_RUNS },
    );
    // Not vacuous: every event type the machine handles was stepped, most steps did something,
    // and the effects the engine carries out came up.
    for (const type of orderMachine.root.events as string[]) expect(tally.eventTypes).toContain(type);
    expect(tally.changed).toBeGreaterThan(tally.steps / 4);
    expect([...tally.actionTypes].sort()).toStrictEqual(declaredEffects(orderMachine));
  });

  it('steps the operation machine exactly as transition()', () => {
    const stepper = createMachineStepper(operationMachine);
    const tally = newTally();
    fc.assert(
      fc.property(operationScenario, ({ input, events }) => {
        compareWalk(operationMachine, stepper, input, events, tally);
      }),
      { numRuns: NUM_RUNS },
    );
    expect(tally.changed).toBeGreaterThan(tally.steps / 4);
    expect([...tally.actionTypes].sort()).toStrictEqual(declaredEffects(operationMachine));
  });

  // A small machine for what ours do not have: a guard that throws, and an always chain.
  const probe = setup({
    types: { context: {} as { n: number }, events: {} as { type: 'GO'; boom?: boolean } | { type: 'NOOP' } },
    guards: {
      explodes: ({ event }) => {
        if (event.type === 'GO' && event.boom === true) throw new Error('guard exploded');
        return false;
      },
    },
    actions: { note: (_, _params: { n: number }) => {}, bump: assign(({ context }) => ({ n: context.n + 1 })) },
  }).createMachine({
    context: { n: 0 },
    initial: 'a',
    states: {
      a: { on: { GO: [{ guard: 'explodes', target: 'b' }, { target: 'b', actions: 'bump' }] } },
      b: { entry: { type: 'note', params: ({ context }) => ({ n: context.n }) }, always: { target: 'c', actions: 'bump' } },
      c: { entry: { type: 'note', params: ({ context }) => ({ n: context.n }) } },
    },
  });

  it('collects the actions of each step apart, also after a step that threw', () => {
    const stepper = createMachineStepper(probe);
    const [start] = stepper.initial(undefined);
    expect(() => stepper.step(start, { type: 'GO', boom: true })).toThrow('guard exploded');
    expect(() => transition(probe, start, { type: 'GO', boom: true })).toThrow('guard exploded');
    const [next, actions] = stepper.step(start, { type: 'GO' });
    expect(next.value).toBe('c');
    expect(effectsOf(actions)).toStrictEqual(effectsOf(transition(probe, start, { type: 'GO' })[1]));
    expect(effectsOf(actions)).toStrictEqual([{ type: 'note', params: { n: 1 } }, { type: 'note', params: { n: 2 } }]);
    // Nothing enabled: the same snapshot back, no actions, as transition() does.
    const [same, none] = stepper.step(next, { type: 'NOOP' });
    expect(same).toBe(next);
    expect(none).toEqual([]);
  });

  it('keeps a step taken inside a guard apart from the step that runs the guard, as transition() does', () => {
    let innerActions: unknown[] = [];
    let stepInside: () => readonly unknown[] = () => [];
    const nesting = probe.provide({
      guards: {
        explodes: ({ event }) => {
          if (event.type === 'GO' && event.boom === true) innerActions = [...stepInside()];
          return false;
        },
      },
    });
    const stepper = createMachineStepper(nesting);
    const [start] = stepper.initial(undefined);
    stepInside = () => transition(nesting, start, { type: 'GO' })[1];
    const expected = effectsOf(transition(nesting, start, { type: 'GO', boom: true })[1]);
    stepInside = () => stepper.step(start, { type: 'GO' })[1];
    expect(effectsOf(stepper.step(start, { type: 'GO', boom: true })[1])).toStrictEqual(expected);
    expect(expected).toHaveLength(2);
    expect(innerActions).toHaveLength(2);
  });

  it('persists what its own JSON does not cover (history, a spawned child) through getPersistedSnapshot, the same text', () => {
    const withHistory = setup({ actors: { child: probe } }).createMachine({
      initial: 'work',
      states: {
        work: {
          initial: 'one',
          states: { one: { on: { NEXT: 'two' } }, two: {}, again: { type: 'history' } },
          on: { PAUSE: 'paused', SPAWN: { actions: assign({ kid: ({ spawn }) => spawn('child', { id: 'kid' }) }) } },
        },
        paused: { on: { RESUME: 'work.again' } },
      },
    });
    const stepper = createMachineStepper(withHistory);
    const [start] = stepper.initial(undefined);
    const [two] = stepper.step(start, { type: 'NEXT' });
    const [paused] = stepper.step(two, { type: 'PAUSE' });
    expect(Object.keys(paused.historyValue)).not.toHaveLength(0);
    expect(stepper.persist(paused)).toBe(persisted(withHistory, paused));
    expect(stepper.persist(paused)).toContain('"historyValue":{"');
    // Spawned under transition(): the stepper's own steps are for machines without children.
    const [spawned] = transition(withHistory, start, { type: 'SPAWN' });
    expect(Object.keys(spawned.children)).toStrictEqual(['kid']);
    expect(stepper.persist(spawned)).toBe(persisted(withHistory, spawned));
    expect(stepper.persist(spawned)).toContain('"children":{"kid"');
  });

  it('refuses a machine that invokes actors, whose children would pile up in the one shared system', () => {
    const invoking = setup({ actors: { child: probe } }).createMachine({ initial: 'a', states: { a: { invoke: { src: 'child' } } } });
    expect(() => createMachineStepper(invoking)).toThrow(/invokes an actor/);
  });
});

// ---- the snapshot cache ------------------------------------------------------------------------

const row = (rowVersion: number, snapshot: string, machineVersion = 4): StoredRow => ({ row_version: rowVersion, machine_version: machineVersion, snapshot });

describe('SnapshotCache', () => {
  it('serves a row only the snapshot resolved from that very row', () => {
    const cache = new SnapshotCache<{ context: { v: number } }>(10);
    const v5 = { context: { v: 5 } };
    cache.remember(1, row(5, '{"a":5}'), v5);
    expect(cache.get(1, row(5, '{"a":5}'))).toBe(v5);
    // A newer row version, even with the same text, is not served the older snapshot.
    expect(cache.get(1, row(6, '{"a":5}'))).toBeUndefined();
    // The same version with other text: a write that rolled back after remember, then another write.
    expect(cache.get(1, row(5, '{"a":"other"}'))).toBeUndefined();
    // Written by another machine version: migrations would resolve it differently.
    expect(cache.get(1, row(5, '{"a":5}', 3))).toBeUndefined();
    expect(cache.get(2, row(5, '{"a":5}'))).toBeUndefined();
  });

  it('holds at most capacity entries, the least recently used out first', () => {
    const cache = new SnapshotCache<{ context: string }>(2);
    const one = { context: 'one' };
    const three = { context: 'three' };
    cache.remember(1, row(1, 'x'), one);
    cache.remember(2, row(1, 'x'), { context: 'two' });
    expect(cache.get(1, row(1, 'x'))).toBe(one); // 2 is now the least recently used
    cache.remember(3, row(1, 'x'), three);
    expect(cache.size).toBe(2);
    expect(cache.get(2, row(1, 'x'))).toBeUndefined();
    expect(cache.get(1, row(1, 'x'))).toBe(one);
    expect(cache.get(3, row(1, 'x'))).toBe(three);
    let loads = 0;
    const load = () => ({ context: `load ${++loads}` });
    expect(cache.resolve(4, row(2, 'y'), load).context).toBe('load 1');
    expect(cache.resolve(4, row(2, 'y'), load).context).toBe('load 1');
    expect(cache.resolve(4, row(3, 'y'), load).context).toBe('load 2');
    expect(() => new SnapshotCache(0)).toThrow(RangeError);
  });

  it("freezes a remembered snapshot's context, so that no caller can change what later steps start from", () => {
    const cache = new SnapshotCache<{ context: { pending: { sends: number } | null } }>(1);
    const snapshot = { context: { pending: { sends: 1 } } };
    cache.remember(1, row(1, 'x'), snapshot);
    const served = cache.get(1, row(1, 'x'))!;
    expect(() => {
      served.context.pending!.sends = 2;
    }).toThrow(TypeError);
    expect(served.context.pending!.sends).toBe(1);
  });

  it('never serves a snapshot for a row other than the one remembered (random remember/get streams)', () => {
    const op = fc.record({
      remember: fc.boolean(),
      id: fc.integer({ min: 1, max: 4 }),
      rowVersion: fc.integer({ min: 1, max: 4 }),
      text: fc.constantFrom('a', 'b'),
      machineVersion: fc.constantFrom(3, 4),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const cache = new SnapshotCache<{ context: string }>(capacity);
        // The model: the last row remembered per id (the cache keeps one per id).
        const last = new Map<number, string>();
        for (const { remember, id, rowVersion, text, machineVersion } of ops) {
          const stamp = `${id}:${rowVersion}:${machineVersion}:${text}`;
          const r = row(rowVersion, text, machineVersion);
          if (remember) {
            cache.remember(id, r, { context: stamp });
            last.set(id, stamp);
            continue;
          }
          const hit = cache.get(id, r)?.context;
          if (hit !== undefined) expect(hit).toBe(stamp);
          // With room for every id, nothing is evicted: a remembered row is always served.
          if (capacity >= 4) expect(hit).toBe(last.get(id) === stamp ? stamp : undefined);
        }
        expect(cache.size).toBeLessThanOrEqual(capacity);
      }),
    );
  });
});
