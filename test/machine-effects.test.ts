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
    const moved = (state: string, sent: boolean, reason: string | undefined) => ({
      type: 'effect.recordChangeState',
      params: { orderId: ids.orderId, requestNo: 1, state, sent, reason },
    });
    expect(steps.map((s) => s.effects)).toStrictEqual([
      [],
      [{ type: 'effect.sendStatusChange', params: { ...ids, pending } }],
      [moved('sending', true, undefined)],
      [moved('awaitingOperation', false, undefined), { type: 'effect.trackOperation', params: { ...ids, operationId: 'op-1', operationType: 'ORDER_STATUS_UPDATE' } }],
      [moved('uncertain', false, 'timeout'), { type: 'effect.readBack', params: { ...ids, requestNo: 1, notBefore: undefined } }],
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

  it('effect.recordChangeState follows the pending change on every move within the change region, and readBackAt travels into the read-back', () => {
    const ids = { orderId: 9, campaignId: 10 };
    const moves = (steps: ReturnType<typeof runOrder>) =>
      steps.map((s) => s.effects.filter((e) => e.type === 'effect.recordChangeState').map((e) => e.params));
    const fbs = { ...ids, model: 'FBS' as const, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 };
    const request: OrderEvent = { type: 'SELLER.REQUEST', status: 'PROCESSING', substatus: 'READY_TO_SHIP', at: T0 + 1 };
    // Sending (a send counted), deferred back to the queue (with the reason, no send counted),
    // sending again, then an unknown outcome whose read-back is due at readBackAt.
    const readBackAt = T0 + 90_000;
    const fbsSteps = runOrder(fbs, [
      request,
      { type: 'DISPATCH.SENT', at: T0 + 2 },
      { type: 'DISPATCH.DEFERRED', at: T0 + 3, notBefore: T0 + 60_000, reason: '420 parallel limit' },
      { type: 'DISPATCH.SENT', at: T0 + 60_000 },
      { type: 'DISPATCH.UNKNOWN', at: T0 + 60_001, reason: 'timeout after 10 s', readBackAt },
    ]);
    expect(moves(fbsSteps)).toStrictEqual([
      [],
      [],
      [{ orderId: 9, requestNo: 1, state: 'sending', sent: true, reason: undefined }],
      [{ orderId: 9, requestNo: 1, state: 'queued', sent: false, reason: '420 parallel limit' }],
      [{ orderId: 9, requestNo: 1, state: 'sending', sent: true, reason: undefined }],
      [{ orderId: 9, requestNo: 1, state: 'uncertain', sent: false, reason: 'timeout after 10 s' }],
    ]);
    expect(fbsSteps.at(-1)!.effects.filter((e) => e.type === 'effect.readBack')).toStrictEqual([
      { type: 'effect.readBack', params: { ...ids, requestNo: 1, notBefore: readBackAt } },
    ]);
    // Without readBackAt the read-back is due at once.
    const unhurried = runOrder(fbs, [request, { type: 'DISPATCH.SENT', at: T0 + 2 }, { type: 'DISPATCH.UNKNOWN', at: T0 + 3, reason: 'timeout' }]);
    expect(unhurried.at(-1)!.effects.filter((e) => e.type === 'effect.readBack')).toStrictEqual([
      { type: 'effect.readBack', params: { ...ids, requestNo: 1, notBefore: undefined } },
    ]);

    // An operation start (LaaS), and an unknown outcome while awaiting it, of the second request.
    const laas = runOrder({ ...fbs, model: 'LAAS' }, [
      { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at: T0 + 1 },
      { type: 'DISPATCH.SENT', at: T0 + 2 },
      { type: 'DISPATCH.REJECTED', at: T0 + 3, reason: 'no' },
      { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at: T0 + 4 },
      { type: 'DISPATCH.SENT', at: T0 + 5 },
      { type: 'DISPATCH.OPERATION_STARTED', at: T0 + 6, operationId: 'op-9', operationType: 'ORDER_STATUS_UPDATE' },
      { type: 'DISPATCH.UNKNOWN', at: T0 + 7, reason: 'poll answer lost', readBackAt: T0 + 30_000 },
    ]);
    expect(moves(laas).slice(5)).toStrictEqual([
      [{ orderId: 9, requestNo: 2, state: 'sending', sent: true, reason: undefined }],
      [{ orderId: 9, requestNo: 2, state: 'awaitingOperation', sent: false, reason: undefined }],
      [{ orderId: 9, requestNo: 2, state: 'uncertain', sent: false, reason: 'poll answer lost' }],
    ]);
    expect(laas.at(-1)!.effects.filter((e) => e.type === 'effect.readBack')).toStrictEqual([
      { type: 'effect.readBack', params: { ...ids, requestNo: 2, notBefore: T0 + 30_000 } },
    ]);
    // Settling is the settle effect's job: no recordChangeState on the way to idle.
    expect(moves(laas)[3]).toStrictEqual([]);
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
