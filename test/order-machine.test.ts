// The order machine, stepped with XState's pure transition(): each flow checks the state
// value, the context a user reads, and the effect.* actions (with resolved params) that the
// engine turns into outbox rows, read-backs and operation rows.

import { describe, expect, it } from 'vitest';
import { ORDER_STATUSES, type KnownOrderStatus, type KnownOrderSubstatus } from '../machines/statuses.js';
import { DBS_CANCELLATION_ANSWER_MS, DEFAULT_ASYNC_SETTLE_MS, ORDER_MACHINE_VERSION, type OrderEvent } from '../machines/order-machine.js';
import {
  CAMPAIGN_ID,
  ORDER_ID,
  T0,
  VALID_CALL_EVIDENCE,
  changeState,
  marketState,
  run,
  start,
  step,
  type OrderSnapshot,
} from './helpers/machine-fixtures.js';

const RTS = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const SHOP_FAILED = { status: 'CANCELLED', substatus: 'SHOP_FAILED' } as const;
const ids = { orderId: ORDER_ID, campaignId: CAMPAIGN_ID };
/** effect.recordChangeState: the pending change (request 1) moved to `state`; its outbox row follows. */
const changeStateEffect = (state: string, sent = false, reason?: string) => ({
  type: 'effect.recordChangeState',
  params: { orderId: ORDER_ID, requestNo: 1, state, sent, reason },
});

const request = (target: { status: KnownOrderStatus; substatus?: KnownOrderSubstatus }, at: number, extra: Partial<Extract<OrderEvent, { type: 'SELLER.REQUEST' }>> = {}): OrderEvent => ({
  type: 'SELLER.REQUEST',
  ...target,
  at,
  ...extra,
});
const observed = (status: string, substatus: string | null, observedAt: number, source: 'readBack' | 'sync' | 'notification' = 'sync'): OrderEvent => ({
  type: 'MARKET.OBSERVED',
  status,
  substatus,
  observedAt,
  source,
});
const sent = (at: number): OrderEvent => ({ type: 'DISPATCH.SENT', at });
const accepted = (at: number, extra: { status?: string; substatus?: string | null } = {}): OrderEvent => ({ type: 'DISPATCH.ACCEPTED', at, ...extra });
const unknown = (at: number): OrderEvent => ({ type: 'DISPATCH.UNKNOWN', at, reason: 'timeout after 10 s' });

function fbsQueued(): OrderSnapshot {
  const { snapshot } = start('FBS', 'PROCESSING', 'STARTED');
  return step(snapshot, request(RTS, T0 + 1_000)).snapshot;
}

describe('order machine: initial state', () => {
  it('starts in the observed Market state with no change pending and no effects', () => {
    const s = start('FBS', 'PROCESSING', 'STARTED');
    expect(s.snapshot.value).toEqual({ market: { PROCESSING: 'STARTED' }, change: 'idle', cancellation: 'none' });
    expect(s.effects).toEqual([]);
    expect(s.snapshot.context).toEqual({
      ...ids,
      model: 'FBS',
      status: 'PROCESSING',
      substatus: 'STARTED',
      observedAt: T0,
      observedSource: 'import',
      pending: null,
      chain: null,
      lastOutcome: null,
      cancellationRequestedAt: null,
      cancellationAnswer: null,
      lastCancellationAnswer: null,
      lastAnswerRefusal: null,
      lastRefusal: null,
      requestCount: 0,
      maxSends: 3,
      asyncSettleMs: DEFAULT_ASYNC_SETTLE_MS,
    });
    expect(ORDER_MACHINE_VERSION).toBe(5);
  });

  it.each(ORDER_STATUSES.filter((s) => s !== 'PROCESSING'))('routes a %s observation to its own state', (status) => {
    const { snapshot } = start('DBS', 'PROCESSING', 'STARTED');
    const next = step(snapshot, observed(status, 'UNKNOWN', T0 + 1)).snapshot;
    expect(marketState(next)).toBe(status);
    expect(next.context.status).toBe(status);
  });

  it('PROCESSING substates: STARTED, READY_TO_SHIP, SHIPPED, and OTHER for any other or no substatus', () => {
    for (const [sub, state] of [
      ['STARTED', 'PROCESSING.STARTED'],
      ['READY_TO_SHIP', 'PROCESSING.READY_TO_SHIP'],
      ['SHIPPED', 'PROCESSING.SHIPPED'],
      ['PACKAGING', 'PROCESSING.OTHER'],
      ['A_SUBSTATUS_FROM_2030', 'PROCESSING.OTHER'],
      [null, 'PROCESSING.OTHER'],
    ] as const) {
      const s = start('FBS', 'PROCESSING', sub).snapshot;
      expect(marketState(s), String(sub)).toBe(state);
      expect(s.context.substatus).toBe(sub);
    }
  });

  it('keeps an unknown status verbatim in context, in the UNRECOGNIZED state', () => {
    const s = start('FBS', 'TELEPORTING', 'BEAMED_UP').snapshot;
    expect(marketState(s)).toBe('UNRECOGNIZED');
    expect(s.context.status).toBe('TELEPORTING');
    expect(s.context.substatus).toBe('BEAMED_UP');
    // The spec's own UNKNOWN value is a known status with a state of its own.
    expect(marketState(start('FBS', 'UNKNOWN').snapshot)).toBe('UNKNOWN');
    // And observing a known status later leaves UNRECOGNIZED.
    expect(marketState(step(s, observed('PROCESSING', 'PACKAGING', T0 + 1)).snapshot)).toBe('PROCESSING.OTHER');
  });
});

describe('order machine: FBS ship accepted', () => {
  it('queues, sends and settles, with an effect at each step', () => {
    const { snapshot: s0 } = start('FBS', 'PROCESSING', 'STARTED');
    const s1 = step(s0, request(RTS, T0 + 1_000));
    expect(s1.snapshot.value).toEqual({ market: { PROCESSING: 'STARTED' }, change: 'queued', cancellation: 'none' });
    const pending = { ...RTS, requestNo: 1, requestedAt: T0 + 1_000, sends: 0, async: false };
    expect(s1.snapshot.context.pending).toEqual(pending);
    expect(s1.snapshot.context.requestCount).toBe(1);
    expect(s1.effects).toEqual([{ type: 'effect.sendStatusChange', params: { ...ids, pending } }]);

    const s2 = step(s1.snapshot, sent(T0 + 2_000));
    expect(changeState(s2.snapshot)).toBe('sending');
    expect(s2.snapshot.context.pending).toEqual({ ...pending, sends: 1, sentAt: T0 + 2_000 });
    expect(s2.effects).toEqual([changeStateEffect('sending', true)]);

    const s3 = step(s2.snapshot, accepted(T0 + 3_000));
    expect(s3.snapshot.value).toEqual({ market: { PROCESSING: 'READY_TO_SHIP' }, change: 'idle', cancellation: 'none' });
    const outcome = { kind: 'accepted', ...RTS, requestNo: 1, at: T0 + 3_000 };
    expect(s3.snapshot.context).toMatchObject({
      status: 'PROCESSING',
      substatus: 'READY_TO_SHIP',
      observedAt: T0 + 3_000,
      observedSource: 'dispatch',
      pending: null,
      lastOutcome: outcome,
    });
    expect(s3.effects).toEqual([{ type: 'effect.settleStatusChange', params: { ...ids, outcome } }]);
  });

  it('an OK answer naming another state moves the order there', () => {
    const s = run(fbsQueued(), [sent(T0 + 2_000), accepted(T0 + 3_000, { status: 'PROCESSING', substatus: 'SHIPPED' })]).at(-1)!.snapshot;
    expect(marketState(s)).toBe('PROCESSING.SHIPPED');
    expect(s.context.lastOutcome?.kind).toBe('accepted');
  });

  it('a Market observation showing the target while sending also settles it as accepted', () => {
    const steps = run(fbsQueued(), [sent(T0 + 2_000), observed('PROCESSING', 'READY_TO_SHIP', T0 + 2_500, 'notification')]);
    const last = steps.at(-1)!;
    expect(last.snapshot.value).toEqual({ market: { PROCESSING: 'READY_TO_SHIP' }, change: 'idle', cancellation: 'none' });
    expect(last.snapshot.context.lastOutcome?.kind).toBe('accepted');
    expect(last.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });
});

describe('order machine: per-order rejection', () => {
  it('DISPATCH.REJECTED settles as rejected with the reason and leaves the Market state alone', () => {
    const steps = run(fbsQueued(), [sent(T0 + 2_000), { type: 'DISPATCH.REJECTED', at: T0 + 3_000, reason: 'STATUS_NOT_ALLOWED: order 4242' }]);
    const last = steps.at(-1)!;
    expect(last.snapshot.value).toEqual({ market: { PROCESSING: 'STARTED' }, change: 'idle', cancellation: 'none' });
    const outcome = { kind: 'rejected', ...RTS, requestNo: 1, at: T0 + 3_000, reason: 'STATUS_NOT_ALLOWED: order 4242' };
    expect(last.snapshot.context.lastOutcome).toEqual(outcome);
    expect(last.snapshot.context.pending).toBeNull();
    expect(last.effects).toEqual([{ type: 'effect.settleStatusChange', params: { ...ids, outcome } }]);
    // A new request is possible afterwards, with the next request number.
    const again = step(last.snapshot, request(SHOP_FAILED, T0 + 4_000));
    expect(changeState(again.snapshot)).toBe('queued');
    expect(again.snapshot.context.pending?.requestNo).toBe(2);
  });
});

describe('order machine: LaaS', () => {
  it('cancel goes through an operation: OPERATION_STARTED → awaitingOperation → ACCEPTED', () => {
    const { snapshot } = start('LAAS', 'PROCESSING', 'STARTED');
    const s1 = step(snapshot, request(SHOP_FAILED, T0 + 1_000));
    expect(s1.snapshot.context.pending).toMatchObject({ ...SHOP_FAILED, async: true });
    expect(s1.effects.map((e) => e.type)).toEqual(['effect.sendStatusChange']);
    const s2 = step(s1.snapshot, sent(T0 + 2_000));
    const s3 = step(s2.snapshot, { type: 'DISPATCH.OPERATION_STARTED', at: T0 + 2_100, operationId: 'op-77', operationType: 'ORDER_STATUS_UPDATE' });
    expect(s3.snapshot.value).toEqual({ market: { PROCESSING: 'STARTED' }, change: 'awaitingOperation', cancellation: 'none' });
    expect(s3.snapshot.context.pending?.operationId).toBe('op-77');
    expect(s3.effects).toEqual([
      changeStateEffect('awaitingOperation'),
      { type: 'effect.trackOperation', params: { ...ids, operationId: 'op-77', operationType: 'ORDER_STATUS_UPDATE' } },
    ]);
    // A second request while the operation runs is refused, not queued.
    const busy = step(s3.snapshot, request(SHOP_FAILED, T0 + 2_200));
    expect(changeState(busy.snapshot)).toBe('awaitingOperation');
    expect(busy.snapshot.context.lastRefusal?.blockers.map((b) => b.code)).toEqual(['CHANGE_PENDING']);
    expect(busy.effects).toEqual([]);
    const s4 = step(s3.snapshot, accepted(T0 + 60_000));
    expect(s4.snapshot.value).toEqual({ market: 'CANCELLED', change: 'idle', cancellation: 'none' });
    expect(s4.snapshot.context).toMatchObject({ ...SHOP_FAILED, pending: null, lastOutcome: { kind: 'accepted', ...SHOP_FAILED } });
    expect(s4.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('a FAILED operation settles as rejected', () => {
    const { snapshot } = start('LAAS', 'PROCESSING', 'STARTED');
    const last = run(snapshot, [
      request(SHOP_FAILED, T0 + 1),
      sent(T0 + 2),
      { type: 'DISPATCH.OPERATION_STARTED', at: T0 + 3, operationId: 'op-1', operationType: 'ORDER_STATUS_UPDATE' },
      { type: 'DISPATCH.REJECTED', at: T0 + 4, reason: 'Operation op-1 FAILED at the Market.' },
    ]).at(-1)!;
    expect(last.snapshot.value).toEqual({ market: { PROCESSING: 'STARTED' }, change: 'idle', cancellation: 'none' });
    expect(last.snapshot.context.lastOutcome).toMatchObject({ kind: 'rejected', reason: 'Operation op-1 FAILED at the Market.' });
  });

  it('confirms a draft: RESERVED → PROCESSING/STARTED (synchronous)', () => {
    const { snapshot } = start('LAAS', 'RESERVED');
    expect(marketState(snapshot)).toBe('RESERVED');
    const steps = run(snapshot, [request({ status: 'PROCESSING', substatus: 'STARTED' }, T0 + 1), sent(T0 + 2), accepted(T0 + 3)]);
    expect(steps[0]!.snapshot.context.pending?.async).toBe(false);
    expect(steps.at(-1)!.snapshot.value).toEqual({ market: { PROCESSING: 'STARTED' }, change: 'idle', cancellation: 'none' });
  });
});

describe('order machine: unknown outcome, read back before sending again', () => {
  it('UNKNOWN → uncertain → read-back not applied → queued again … → rejected after maxSends', () => {
    let s = fbsQueued();
    const started = (at: number) => observed('PROCESSING', 'STARTED', at, 'readBack');
    for (let send = 1; send <= 3; send++) {
      const base = T0 + send * 10_000;
      const a = step(s, sent(base));
      expect(a.snapshot.context.pending?.sends).toBe(send);
      const b = step(a.snapshot, unknown(base + 1));
      expect(changeState(b.snapshot)).toBe('uncertain');
      expect(b.snapshot.context.pending?.uncertainReason).toBe('timeout after 10 s');
      expect(b.effects).toEqual([changeStateEffect('uncertain', false, 'timeout after 10 s'), { type: 'effect.readBack', params: { ...ids, requestNo: 1, notBefore: undefined } }]);
      const c = step(b.snapshot, started(base + 2));
      if (send < 3) {
        expect(changeState(c.snapshot), `after send ${send}`).toBe('queued');
        expect(c.effects).toEqual([{ type: 'effect.sendStatusChange', params: { ...ids, pending: c.snapshot.context.pending } }]);
        expect(c.snapshot.context.pending).toMatchObject({ ...RTS, requestNo: 1, sends: send });
      } else {
        expect(c.snapshot.value).toEqual({ market: { PROCESSING: 'STARTED' }, change: 'idle', cancellation: 'none' });
        expect(c.snapshot.context.lastOutcome).toMatchObject({ kind: 'rejected', ...RTS, requestNo: 1 });
        expect(c.snapshot.context.lastOutcome?.reason).toContain('after 3 send(s)');
        expect(c.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
      }
      s = c.snapshot;
    }
  });

  it('maxSends from the input bounds the retries', () => {
    const { snapshot } = start('FBS', 'PROCESSING', 'STARTED', { maxSends: 1 });
    const last = run(snapshot, [request(RTS, T0 + 1), sent(T0 + 2), unknown(T0 + 3), observed('PROCESSING', 'STARTED', T0 + 4, 'readBack')]).at(-1)!;
    expect(changeState(last.snapshot)).toBe('idle');
    expect(last.snapshot.context.lastOutcome?.kind).toBe('rejected');
  });

  it('a read-back showing the target settles as accepted', () => {
    const last = run(fbsQueued(), [sent(T0 + 2), unknown(T0 + 3), observed('PROCESSING', 'READY_TO_SHIP', T0 + 4, 'readBack')]).at(-1)!;
    expect(last.snapshot.value).toEqual({ market: { PROCESSING: 'READY_TO_SHIP' }, change: 'idle', cancellation: 'none' });
    expect(last.snapshot.context.lastOutcome).toMatchObject({ kind: 'accepted', at: T0 + 4 });
    expect(last.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('a read-back showing a cancelled order settles as superseded', () => {
    const last = run(fbsQueued(), [sent(T0 + 2), unknown(T0 + 3), observed('CANCELLED', 'USER_CHANGED_MIND', T0 + 4, 'readBack')]).at(-1)!;
    expect(last.snapshot.value).toEqual({ market: 'CANCELLED', change: 'idle', cancellation: 'none' });
    expect(last.snapshot.context.lastOutcome).toMatchObject({ kind: 'superseded' });
  });

  it('an observation that is not a read-back does not trigger a resend', () => {
    const last = run(fbsQueued(), [sent(T0 + 2), unknown(T0 + 3), observed('PROCESSING', 'STARTED', T0 + 4, 'notification')]).at(-1)!;
    expect(changeState(last.snapshot)).toBe('uncertain');
    expect(last.effects).toEqual([]);
  });

  it('a read-back older than what the machine has already seen proves nothing: no resend', () => {
    const uncertain = run(fbsQueued(), [sent(T0 + 2), unknown(T0 + 3)]).at(-1)!.snapshot;
    const stale = step(uncertain, observed('PROCESSING', 'STARTED', T0 - 60_000, 'readBack'));
    expect(stale.snapshot.value).toEqual(uncertain.value);
    expect(stale.snapshot.context).toEqual(uncertain.context);
    expect(stale.effects).toEqual([]);
  });
});

describe('order machine: the Market moves first', () => {
  it('Market cancels while READY_TO_SHIP is queued → superseded, nothing is sent', () => {
    const s = step(fbsQueued(), observed('CANCELLED', 'USER_CHANGED_MIND', T0 + 5_000, 'notification'));
    expect(s.snapshot.value).toEqual({ market: 'CANCELLED', change: 'idle', cancellation: 'none' });
    expect(s.snapshot.context.lastOutcome).toMatchObject({ kind: 'superseded', ...RTS, requestNo: 1, at: T0 + 5_000 });
    expect(s.snapshot.context.lastOutcome?.reason).toContain('CANCELLED');
    expect(s.effects).toEqual([{ type: 'effect.settleStatusChange', params: { ...ids, outcome: s.snapshot.context.lastOutcome } }]);
  });

  it('an observation from which the queued change is still legal keeps it queued', () => {
    const { snapshot } = start('DBS', 'PROCESSING', 'STARTED');
    const queued = step(snapshot, request(SHOP_FAILED, T0 + 1)).snapshot;
    const s = step(queued, observed('DELIVERY', 'DELIVERY_SERVICE_RECEIVED', T0 + 2));
    expect(s.snapshot.value).toEqual({ market: 'DELIVERY', change: 'queued', cancellation: 'none' });
    expect(s.effects).toEqual([]);
  });

  it('a deferred send whose change the Market has meanwhile made illegal is superseded, not re-queued', () => {
    // A move to a non-final status keeps the change in `sending`: the answer may still say it applied first.
    const sending = run(fbsQueued(), [sent(T0 + 2), observed('DELIVERY', 'DELIVERY_SERVICE_RECEIVED', T0 + 3, 'notification')]).at(-1)!.snapshot;
    expect(changeState(sending)).toBe('sending');
    const s = step(sending, { type: 'DISPATCH.DEFERRED', at: T0 + 4, notBefore: T0 + 60_000, reason: '420' });
    expect(s.snapshot.value).toEqual({ market: 'DELIVERY', change: 'idle', cancellation: 'none' });
    expect(s.snapshot.context.lastOutcome?.kind).toBe('superseded');
    expect(s.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });
});

describe('order machine: deferral', () => {
  it('DISPATCH.DEFERRED returns to queued, re-emits the send with notBefore, and does not count a send', () => {
    const sending = step(fbsQueued(), sent(T0 + 2)).snapshot;
    expect(sending.context.pending?.sends).toBe(1);
    const d = step(sending, { type: 'DISPATCH.DEFERRED', at: T0 + 3, notBefore: T0 + 60_000, reason: '420 until …' });
    expect(changeState(d.snapshot)).toBe('queued');
    expect(d.snapshot.context.pending).toMatchObject({ sends: 0, notBefore: T0 + 60_000 });
    expect(d.effects).toEqual([changeStateEffect('queued', false, '420 until …'), { type: 'effect.sendStatusChange', params: { ...ids, pending: d.snapshot.context.pending } }]);
    const again = step(d.snapshot, sent(T0 + 60_000));
    expect(again.snapshot.context.pending?.sends).toBe(1);
    expect(again.snapshot.context.pending).not.toHaveProperty('notBefore');
  });

  it('any number of deferrals never exhausts maxSends', () => {
    let s = fbsQueued();
    for (let i = 0; i < 10; i++) {
      s = run(s, [sent(T0 + 10 * i + 1), { type: 'DISPATCH.DEFERRED', at: T0 + 10 * i + 2, notBefore: T0 + 10 * i + 5, reason: '420' }]).at(-1)!.snapshot;
    }
    expect(s.context.pending?.sends).toBe(0);
    const after = run(s, [sent(T0 + 1_000), unknown(T0 + 1_001), observed('PROCESSING', 'STARTED', T0 + 1_002, 'readBack')]).at(-1)!;
    expect(changeState(after.snapshot)).toBe('queued');
  });
});

describe('order machine: DBS delivery chain with realDeliveryDate', () => {
  it('PROCESSING → DELIVERY → PICKUP → DELIVERED, then nothing more', () => {
    const day = Date.parse('2025-05-14T15:00:00Z');
    let s = start('DBS', 'PROCESSING', 'STARTED').snapshot;
    const chain = [
      [{ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, undefined, 'DELIVERY'],
      [{ status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' }, '2025-05-13', 'PICKUP'],
      [{ status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }, '2025-05-14', 'DELIVERED'],
    ] as const;
    chain.forEach(([target, date, state], i) => {
      const at = day + i * 1_000;
      const q = step(s, request(target, at, date ? { realDeliveryDate: date } : {}));
      expect(changeState(q.snapshot), state).toBe('queued');
      const pending = { ...target, ...(date ? { realDeliveryDate: date } : {}), requestNo: i + 1, requestedAt: at, sends: 0, async: false };
      expect(q.effects).toEqual([{ type: 'effect.sendStatusChange', params: { ...ids, pending } }]);
      const done = run(q.snapshot, [sent(at + 100), accepted(at + 200)]).at(-1)!;
      expect(done.snapshot.value).toEqual({ market: state, change: 'idle', cancellation: 'none' });
      expect(done.snapshot.context).toMatchObject({ ...target, lastOutcome: { kind: 'accepted', ...target } });
      s = done.snapshot;
    });
    expect(s.context.requestCount).toBe(3);
    const after = step(s, request({ status: 'CANCELLED', substatus: 'SHOP_FAILED' }, day + 10_000));
    expect(changeState(after.snapshot)).toBe('idle');
    expect(after.effects).toEqual([]);
    expect(after.snapshot.context.lastRefusal?.blockers.map((b) => b.code)).toEqual(['TERMINAL_STATE']);
  });

  it('refuses a realDeliveryDate later than the request time', () => {
    const s = start('DBS', 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED').snapshot;
    const r = step(s, request({ status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }, Date.parse('2025-05-14T15:00:00Z'), { realDeliveryDate: '2025-05-15' }));
    expect(changeState(r.snapshot)).toBe('idle');
    expect(r.snapshot.context.lastRefusal?.blockers.map((b) => b.code)).toEqual(['REAL_DELIVERY_DATE_INVALID']);
  });

  it('USER_UNREACHABLE needs call evidence', () => {
    const s = start('DBS', 'PROCESSING', 'STARTED').snapshot;
    const target = { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' } as const;
    expect(step(s, request(target, T0)).snapshot.context.lastRefusal?.blockers.map((b) => b.code)).toEqual(['CALL_EVIDENCE_INSUFFICIENT']);
    expect(changeState(step(s, request(target, T0, { callEvidence: VALID_CALL_EVIDENCE })).snapshot)).toBe('queued');
  });
});

describe('order machine: illegal requests record lastRefusal', () => {
  it('a forbidden change stays idle, emits nothing, and says why and what is allowed', () => {
    const { snapshot } = start('FBS', 'PROCESSING', 'STARTED');
    const r = step(snapshot, request({ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, T0 + 5));
    expect(r.snapshot.value).toEqual(snapshot.value);
    expect(r.effects).toEqual([]);
    expect(r.actionTypes).toEqual([]);
    const refusal = r.snapshot.context.lastRefusal!;
    expect(refusal).toMatchObject({ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', at: T0 + 5 });
    expect(refusal.blockers.map((b) => b.code)).toEqual(['FORBIDDEN_FOR_MODEL']);
    expect(refusal.blockers[0]!.message).toContain('Allowed from here: PROCESSING/READY_TO_SHIP, CANCELLED/SHOP_FAILED.');
    expect(r.snapshot.context.requestCount).toBe(0);
    // A later legal request clears it.
    expect(step(r.snapshot, request(RTS, T0 + 6)).snapshot.context.lastRefusal).toBeNull();
  });

  it('a second request while one is queued is refused with CHANGE_PENDING', () => {
    const r = step(fbsQueued(), request(SHOP_FAILED, T0 + 2));
    expect(changeState(r.snapshot)).toBe('queued');
    expect(r.effects).toEqual([]);
    expect(r.snapshot.context.pending).toMatchObject(RTS);
    expect(r.snapshot.context.lastRefusal?.blockers.map((b) => b.code)).toEqual(['CHANGE_PENDING']);
  });

  it('in an unrecognised status every request is refused with UNKNOWN_STATUS', () => {
    const r = step(start('FBS', 'TELEPORTING').snapshot, request(SHOP_FAILED, T0 + 1));
    expect(changeState(r.snapshot)).toBe('idle');
    expect(r.snapshot.context.lastRefusal?.blockers.map((b) => b.code)).toEqual(['UNKNOWN_STATUS']);
  });
});

describe('order machine: observation ordering', () => {
  it('an older observation changes nothing; an equal or newer one applies', () => {
    const { snapshot } = start('FBS', 'PROCESSING', 'STARTED');
    const stale = step(snapshot, observed('CANCELLED', 'SHOP_FAILED', T0 - 1));
    expect(stale.snapshot).toBe(snapshot);
    expect(stale.actionTypes).toEqual([]);
    const same = step(snapshot, observed('PROCESSING', 'READY_TO_SHIP', T0, 'notification'));
    expect(marketState(same.snapshot)).toBe('PROCESSING.READY_TO_SHIP');
    expect(same.snapshot.context.observedSource).toBe('notification');
    const newer = step(same.snapshot, observed('DELIVERY', 'USER_RECEIVED', T0 + 1));
    expect(newer.snapshot.context).toMatchObject({ status: 'DELIVERY', substatus: 'USER_RECEIVED', observedAt: T0 + 1, observedSource: 'sync' });
  });

  it('the Market moves the order from anywhere, including back from a terminal status', () => {
    const s = run(start('FBS', 'CANCELLED', 'SHOP_FAILED').snapshot, [observed('RETURNED', null, T0 + 1), observed('PROCESSING', 'STARTED', T0 + 2)]);
    expect(marketState(s[0]!.snapshot)).toBe('RETURNED');
    expect(marketState(s[1]!.snapshot)).toBe('PROCESSING.STARTED');
  });

  it('dispatch answers with no pending change are ignored', () => {
    const { snapshot } = start('FBS', 'PROCESSING', 'STARTED');
    for (const e of [accepted(T0 + 1), sent(T0 + 1), unknown(T0 + 1), { type: 'DISPATCH.REJECTED', at: T0 + 1, reason: 'x' } as const]) {
      const r = step(snapshot, e);
      expect(r.snapshot.value, e.type).toEqual(snapshot.value);
      expect(r.snapshot.context, e.type).toEqual(snapshot.context);
      expect(r.effects).toEqual([]);
    }
  });

  it('an OK answer for a queued change (its SENT was lost) settles it; the Market state never equals the pending target', () => {
    const r = step(fbsQueued(), accepted(T0 + 3));
    expect(r.snapshot.value).toEqual({ market: { PROCESSING: 'READY_TO_SHIP' }, change: 'idle', cancellation: 'none' });
    expect(r.snapshot.context.pending).toBeNull();
    expect(r.snapshot.context.lastOutcome?.kind).toBe('accepted');
  });
});

describe('order machine: DBS cancellation requests (v2)', () => {
  it('records when the Market first reports cancelRequested, keeps that time, and clears it when the flag goes away', () => {
    const { snapshot } = start('DBS', 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
    expect(snapshot.context.cancellationRequestedAt).toBeNull();
    const seen = (at: number, cancelRequested?: boolean): OrderEvent => ({
      type: 'MARKET.OBSERVED', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: at, source: 'sync',
      ...(cancelRequested === undefined ? {} : { cancelRequested }),
    });
    const s1 = step(snapshot, seen(T0 + 10, true));
    expect(s1.snapshot.context.cancellationRequestedAt).toBe(T0 + 10);
    expect((s1.snapshot.value as { cancellation: unknown }).cancellation).toEqual({ requested: 'unanswered' });
    expect(s1.effects).toEqual([
      { type: 'effect.startCancellationDeadline', params: { orderId: ids.orderId, dueAt: T0 + 10 + DBS_CANCELLATION_ANSWER_MS } },
    ]);
    const s2 = step(s1.snapshot, seen(T0 + 20, true));
    expect(s2.snapshot.context.cancellationRequestedAt).toBe(T0 + 10);
    expect(s2.effects).toEqual([]);
    const s3 = step(s2.snapshot, seen(T0 + 30));
    expect(s3.snapshot.context.cancellationRequestedAt).toBe(T0 + 10);
    const stale = step(s3.snapshot, seen(T0 + 5, false));
    expect(stale.snapshot.context.cancellationRequestedAt).toBe(T0 + 10);
    const s4 = step(s3.snapshot, seen(T0 + 40, false));
    expect(s4.snapshot.context.cancellationRequestedAt).toBeNull();
    expect((s4.snapshot.value as { cancellation: string }).cancellation).toBe('none');
    expect(s4.effects).toEqual([{ type: 'effect.clearCancellationDeadline', params: { orderId: ids.orderId } }]);
  });

  it('a final status ends the request (the Market cancelled it, or it was delivered)', () => {
    const { snapshot } = start('DBS', 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
    const requested = step(snapshot, { type: 'MARKET.OBSERVED', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 + 10, source: 'notification', cancelRequested: true });
    const cancelled = step(requested.snapshot, { type: 'MARKET.OBSERVED', status: 'CANCELLED', substatus: 'USER_CHANGED_MIND', observedAt: T0 + 20, source: 'sync' });
    expect(cancelled.snapshot.value).toMatchObject({ market: 'CANCELLED', cancellation: 'none' });
    expect(cancelled.effects.map((e) => e.type)).toEqual(['effect.clearCancellationDeadline']);
  });
});

describe('order machine: an async change whose answer was lost', () => {
  it('a read-back showing "not yet" within asyncSettleMs keeps it uncertain and schedules another read; after that it is resent', () => {
    const { snapshot } = start('LAAS', 'PROCESSING', 'STARTED');
    const sentAt = T0 + 2_000;
    const unsure = run(snapshot, [request(SHOP_FAILED, T0 + 1_000), sent(sentAt), unknown(sentAt + 10_000)]).at(-1)!;
    expect(changeState(unsure.snapshot)).toBe('uncertain');
    expect(unsure.effects).toEqual([changeStateEffect('uncertain', false, 'timeout after 10 s'), { type: 'effect.readBack', params: { ...ids, requestNo: 1, notBefore: undefined } }]);
    // 20 s after the send the operation may still be running: read again after half the wait.
    const early = step(unsure.snapshot, observed('PROCESSING', 'STARTED', sentAt + 20_000, 'readBack'));
    expect(changeState(early.snapshot)).toBe('uncertain');
    expect(early.effects).toEqual([{ type: 'effect.readBack', params: { ...ids, requestNo: 1, notBefore: sentAt + 30_000 } }]);
    expect(early.snapshot.context.pending?.sends).toBe(1);
    // Past asyncSettleMs, "not yet" means not applied: it is sent again.
    const late = step(early.snapshot, observed('PROCESSING', 'STARTED', sentAt + DEFAULT_ASYNC_SETTLE_MS, 'readBack'));
    expect(changeState(late.snapshot)).toBe('queued');
    expect(late.effects.map((e) => e.type)).toEqual(['effect.sendStatusChange']);
  });

  it('a synchronous change is judged on the first read-back', () => {
    const { snapshot } = start('FBS', 'PROCESSING', 'STARTED');
    const unsure = run(snapshot, [request(RTS, T0 + 1_000), sent(T0 + 2_000), unknown(T0 + 12_000)]).at(-1)!;
    const next = step(unsure.snapshot, observed('PROCESSING', 'STARTED', T0 + 13_000, 'readBack'));
    expect(changeState(next.snapshot)).toBe('queued');
  });
});
