// The operation machine: IN_PROGRESS polls back off per policy (capped at the maximum and at
// the deadline), DONE/FAILED/expired are final with their effect, unknown statuses keep polling.

import { describe, expect, it } from 'vitest';
import { createActor, initialTransition, transition, type SnapshotFrom } from 'xstate';
import { DEFAULT_POLL_POLICY, OPERATION_MACHINE_VERSION, operationMachine, pollInterval, type OperationEvent, type OperationInput } from '../machines/operation-machine.js';

type Snap = SnapshotFrom<typeof operationMachine>;
const START = Date.UTC(2025, 4, 12, 9, 0, 0);
const input = (extra: Partial<OperationInput> = {}): OperationInput => ({
  operationId: 'op-1',
  operationType: 'ORDER_STATUS_UPDATE',
  businessId: 900,
  orderId: 4242,
  startedAt: START,
  ...extra,
});

function effects(actions: readonly { type: string; params?: unknown }[]) {
  return actions.filter((a) => a.type.startsWith('effect.')).map((a) => ({ type: a.type, params: a.params }));
}

function poll(s: Snap, status: string, at: number) {
  const [next, actions] = transition(operationMachine, s, { type: 'POLL.RESULT', status, at });
  return { s: next, effects: effects(actions) };
}

describe('operation machine', () => {
  it('starts in progress with the first poll one initial interval after the start, and the deadline at start + timeout', () => {
    const [s, actions] = initialTransition(operationMachine, input());
    expect(s.value).toBe('inProgress');
    expect(actions).toEqual([]);
    expect(s.context).toEqual({
      operationId: 'op-1',
      operationType: 'ORDER_STATUS_UPDATE',
      businessId: 900,
      orderId: 4242,
      startedAt: START,
      deadlineAt: START + 60 * 60_000,
      nextPollAt: START + 2_000,
      pollCount: 0,
      lastPolledAt: null,
      lastStatus: 'IN_PROGRESS',
      policy: DEFAULT_POLL_POLICY,
    });
    expect(OPERATION_MACHINE_VERSION).toBe(1);
  });

  it('IN_PROGRESS: each poll schedules the next one interval × coefficient later, capped at the maximum', () => {
    const policy = { initialIntervalMs: 1_000, backoffCoefficient: 3, maximumIntervalMs: 20_000, timeoutMs: 10 * 60_000 };
    let [s] = initialTransition(operationMachine, input({ policy }));
    expect(s.context.nextPollAt).toBe(START + 1_000);
    const expectedIntervals = [3_000, 9_000, 20_000, 20_000, 20_000];
    let at = s.context.nextPollAt;
    expectedIntervals.forEach((interval, i) => {
      const r = poll(s, 'IN_PROGRESS', at);
      expect(r.s.value).toBe('inProgress');
      expect(r.s.context.pollCount).toBe(i + 1);
      expect(r.s.context.lastPolledAt).toBe(at);
      expect(r.s.context.nextPollAt - at, `poll ${i + 1}`).toBe(interval);
      expect(r.effects).toEqual([{ type: 'effect.schedulePoll', params: { nextPollAt: at + interval } }]);
      s = r.s;
      at = s.context.nextPollAt;
    });
    expect(pollInterval(policy, 0)).toBe(1_000);
    expect(pollInterval(policy, 2)).toBe(9_000);
    expect(pollInterval(policy, 50)).toBe(20_000);
  });

  it('never schedules a poll after the deadline', () => {
    const policy = { initialIntervalMs: 1_000, backoffCoefficient: 2, maximumIntervalMs: 60_000, timeoutMs: 10_000 };
    let [s] = initialTransition(operationMachine, input({ policy }));
    const r1 = poll(s, 'IN_PROGRESS', START + 8_000); // next would be +2 s = 10 s = deadline
    expect(r1.s.context.nextPollAt).toBe(START + 10_000);
    s = poll(s, 'IN_PROGRESS', START + 9_000).s; // next would be 11 s: capped at 10 s
    expect(s.context.nextPollAt).toBe(START + 10_000);
    expect(s.context.nextPollAt).toBe(s.context.deadlineAt);
  });

  it('DONE is final with effect.operationDone', () => {
    const [s0] = initialTransition(operationMachine, input());
    const r = poll(s0, 'DONE', START + 2_000);
    expect(r.s.value).toBe('done');
    expect(r.s.status).toBe('done');
    expect(r.s.context).toMatchObject({ pollCount: 1, lastPolledAt: START + 2_000, lastStatus: 'DONE' });
    expect(r.effects).toEqual([{ type: 'effect.operationDone', params: { orderId: 4242 } }]);
    const after = poll(r.s, 'FAILED', START + 4_000);
    expect(after.s.value).toBe('done');
    expect(after.effects).toEqual([]);
  });

  it('FAILED is final with effect.operationFailed and a reason', () => {
    const [s0] = initialTransition(operationMachine, input({ orderId: null }));
    const r = poll(s0, 'FAILED', START + 2_000);
    expect(r.s.value).toBe('failed');
    expect(r.s.status).toBe('done');
    expect(r.effects).toEqual([{ type: 'effect.operationFailed', params: { orderId: null, reason: 'Operation op-1 FAILED at the Market.' } }]);
  });

  it('an unknown status keeps polling and is kept verbatim', () => {
    const [s0] = initialTransition(operationMachine, input());
    const r = poll(s0, 'QUEUED_IN_2030', START + 2_000);
    expect(r.s.value).toBe('inProgress');
    expect(r.s.context.lastStatus).toBe('QUEUED_IN_2030');
    expect(r.effects.map((e) => e.type)).toEqual(['effect.schedulePoll']);
  });

  it('a poll at or after the deadline that is still not final expires it', () => {
    const [s0] = initialTransition(operationMachine, input({ policy: { timeoutMs: 30_000 } }));
    const before = poll(s0, 'IN_PROGRESS', START + 29_999);
    expect(before.s.value).toBe('inProgress');
    const r = poll(before.s, 'IN_PROGRESS', START + 30_000);
    expect(r.s.value).toBe('expired');
    expect(r.s.status).toBe('done');
    expect(r.s.context.pollCount).toBe(2);
    expect(r.effects).toEqual([{ type: 'effect.operationExpired', params: { orderId: 4242, reason: 'Operation op-1 still IN_PROGRESS at its deadline.' } }]);
    // DONE at the deadline still counts as done.
    expect(poll(before.s, 'DONE', START + 30_000).s.value).toBe('done');
  });

  it('POLL.CHECK_DEADLINE expires it only at or after the deadline', () => {
    const [s0] = initialTransition(operationMachine, input({ policy: { timeoutMs: 30_000 } }));
    const [early, a1] = transition(operationMachine, s0, { type: 'POLL.CHECK_DEADLINE', at: START + 29_999 });
    expect(early.value).toBe('inProgress');
    expect(a1).toEqual([]);
    const [late, a2] = transition(operationMachine, s0, { type: 'POLL.CHECK_DEADLINE', at: START + 30_000 });
    expect(late.value).toBe('expired');
    expect(late.context.pollCount).toBe(0);
    expect(effects(a2)).toEqual([{ type: 'effect.operationExpired', params: { orderId: 4242, reason: 'Operation op-1 still IN_PROGRESS at its deadline.' } }]);
  });

  it('its persisted snapshot survives JSON and resumes polling the same way', () => {
    const actor = createActor(operationMachine, { input: input() }).start();
    const events: OperationEvent[] = [
      { type: 'POLL.RESULT', status: 'IN_PROGRESS', at: START + 2_000 },
      { type: 'POLL.RESULT', status: 'IN_PROGRESS', at: START + 6_000 },
    ];
    for (const e of events) actor.send(e);
    const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    const restored = createActor(operationMachine, { snapshot: persisted, input: input() }).start();
    expect(restored.getSnapshot().context).toEqual(actor.getSnapshot().context);
    const next: OperationEvent = { type: 'POLL.RESULT', status: 'DONE', at: START + 14_000 };
    actor.send(next);
    restored.send(next);
    expect(restored.getSnapshot().value).toBe('done');
    expect(restored.getSnapshot().context).toEqual(actor.getSnapshot().context);
    actor.stop();
    restored.stop();
  });
});
