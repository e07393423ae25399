// The effects the machines hand to the engine, as `orderEffects()` / `operationEffects()` type
// them: each effect of a run comes back with exactly the params its declared type promises, and
// nothing that is not an effect comes back at all.

import { initialTransition, transition } from 'xstate';
import { describe, expect, it } from 'vitest';
import { DBS_CANCELLATION_ANSWER_MS, orderEffects, orderMachine, type OrderEvent } from '../machines/order-machine.js';
import { operationEffects, operationMachine, type OperationEvent } from '../machines/operation-machine.js';

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const plain = (effects: readonly { type: string; params: unknown }[]) => effects.map(({ type, params }) => ({ type, params }));

function runOrder(input: Parameters<typeof initialTransition<typeof orderMachine>>[1], events: readonly OrderEvent[]) {
  const [s0, first] = initialTransition(orderMachine, input);
  const steps = [{ raw: first, effects: plain(orderEffects(first)) }];
  let snapshot = s0;
  for (const event of events) {
    const [next, actions] = transition(orderMachine, snapshot, event);
    steps.push({ raw: actions, effects: plain(orderEffects(actions)) });
    snapshot = next;
  }
  return steps;
}

describe('orderEffects', () => {
  it('a LaaS cancellation: send, track the operation, read back after a lost answer, settle — each with its declared params', () => {
    const ids = { orderId: 7, campaignId: 30 };
    const steps = runOrder({ ...ids, model: 'LAAS', status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }, [
      { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at: T0 + 1 },
      { type: 'DISPATCH.SENT', at: T0 + 2 },
      { type: 'DISPATCH.OPERATION_STARTED', at: T0 + 3, operationId: 'op-1', operationType: 'ORDER_STATUS_UPDATE' },
      { type: 'DISPATCH.UNKNOWN', at: T0 + 4, reason: 'timeout' },
      { type: 'DISPATCH.ACCEPTED', at: T0 + 5 },
    ]);
    const pending = { status: 'CANCELLED', substatus: 'SHOP_FAILED', requestNo: 1, requestedAt: T0 + 1, sends: 0, async: true };
    expect(steps.map((s) => s.effects)).toEqual([
      [],
      [{ type: 'effect.sendStatusChange', params: { ...ids, pending } }],
      [],
      [{ type: 'effect.trackOperation', params: { ...ids, operationId: 'op-1', operationType: 'ORDER_STATUS_UPDATE' } }],
      [{ type: 'effect.readBack', params: { ...ids, notBefore: undefined } }],
      [
        {
          type: 'effect.settleStatusChange',
          params: { ...ids, outcome: { kind: 'accepted', status: 'CANCELLED', substatus: 'SHOP_FAILED', requestNo: 1, at: T0 + 5 } },
        },
      ],
    ]);
    // Every effect transition() returned is there.
    for (const s of steps) expect(s.raw.filter((a) => a.type.startsWith('effect.')).map((a) => a.type)).toEqual(s.effects.map((e) => e.type));
  });

  it('leaves out actions that are not the machine\'s effects (XState\'s own, a name it does not declare)', () => {
    const send = { type: 'effect.sendStatusChange', params: {} };
    expect(orderEffects([{ type: 'xstate.raise', params: {} }, send, { type: 'effect.somethingElse' }])).toEqual([send]);
    const poll = { type: 'effect.schedulePoll', params: { nextPollAt: 1 } };
    expect(operationEffects([{ type: 'xstate.sendTo', params: {} }, poll, send])).toEqual([poll]);
  });

  it('a DBS buyer cancellation request starts the answer deadline, and its end clears it', () => {
    const steps = runOrder({ orderId: 8, campaignId: 40, model: 'DBS', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0, cancelRequested: true }, [
      { type: 'MARKET.OBSERVED', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 + 10, source: 'sync', cancelRequested: false },
    ]);
    expect(steps.map((s) => s.effects)).toEqual([
      [{ type: 'effect.startCancellationDeadline', params: { orderId: 8, dueAt: T0 + DBS_CANCELLATION_ANSWER_MS } }],
      [{ type: 'effect.clearCancellationDeadline', params: { orderId: 8 } }],
    ]);
  });
});

describe('operationEffects', () => {
  const input = { operationId: 'op-2', operationType: 'ORDER_STATUS_UPDATE', businessId: 5, orderId: 9, startedAt: T0, policy: { initialIntervalMs: 1_000, timeoutMs: 10_000 } };
  const effectsAfter = (events: readonly OperationEvent[]) => {
    let [snapshot] = initialTransition(operationMachine, input);
    return events.map((event) => {
      const [next, actions] = transition(operationMachine, snapshot, event);
      snapshot = next;
      return plain(operationEffects(actions));
    });
  };

  it('polls again while IN_PROGRESS, then reports DONE with the order', () => {
    expect(effectsAfter([{ type: 'POLL.RESULT', status: 'IN_PROGRESS', at: T0 + 1_000 }, { type: 'POLL.RESULT', status: 'DONE', at: T0 + 3_000 }])).toEqual([
      [{ type: 'effect.schedulePoll', params: { nextPollAt: T0 + 1_000 + 2_000 } }],
      [{ type: 'effect.operationDone', params: { orderId: 9 } }],
    ]);
  });

  it('FAILED and a deadline passed each end the operation with a reason', () => {
    expect(effectsAfter([{ type: 'POLL.RESULT', status: 'FAILED', at: T0 + 1_000 }])).toEqual([
      [{ type: 'effect.operationFailed', params: { orderId: 9, reason: 'Operation op-2 FAILED at the Market.' } }],
    ]);
    expect(effectsAfter([{ type: 'POLL.CHECK_DEADLINE', at: T0 + 10_000 }])).toEqual([
      [{ type: 'effect.operationExpired', params: { orderId: 9, reason: 'Operation op-2 still IN_PROGRESS at its deadline.' } }],
    ]);
  });
});
