// Multi-step changes on the order machine (issue #12): a DBS chain PROCESSING/STARTED →
// DELIVERY/DELIVERY_SERVICE_RECEIVED → DELIVERED/DELIVERY_SERVICE_DELIVERED, one row of the
// design's outcome table per test (/tmp/prompts/h7-design.md §3): what each step settles as, what
// it says about the chain, and which outbox effects the transition asks for.

import { describe, expect, it } from 'vitest';
import { CHAIN_STOP_CODES, judgeSellerRequest, orderMachine, type OrderEvent } from '../machines/order-machine.js';
import { changeState, ORDER_ID, CAMPAIGN_ID, run, start, step, T0, type OrderSnapshot } from './helpers/machine-fixtures.js';

const DELIVERY = { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' } as const;
const DELIVERED = { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' } as const;
const TARGET = { ...DELIVERED };
const DATE = '2025-05-11'; // the day before T0
const STEPS = [
  { ...DELIVERY, ruleId: 'DBS.hand-to-delivery' },
  { ...DELIVERED, ruleId: 'DBS.deliver-from-delivery' },
];

const chainRequest = (at: number, extra: Partial<Extract<OrderEvent, { type: 'SELLER.REQUEST' }>> = {}): OrderEvent => ({
  type: 'SELLER.REQUEST',
  ...TARGET,
  realDeliveryDate: DATE,
  via: 'chain',
  at,
  ...extra,
});
const sent = (at: number, requestNo?: number): OrderEvent => ({ type: 'DISPATCH.SENT', at, ...(requestNo !== undefined ? { requestNo } : {}) });
const acceptedAnswer = (at: number, requestNo?: number, state?: { status: string; substatus: string }): OrderEvent => ({
  type: 'DISPATCH.ACCEPTED',
  at,
  ...(requestNo !== undefined ? { requestNo } : {}),
  ...(state ?? {}),
});
const observed = (state: { status: string; substatus: string | null }, observedAt: number, source: 'sync' | 'readBack' = 'sync'): OrderEvent => ({
  type: 'MARKET.OBSERVED',
  ...state,
  observedAt,
  source,
});

/** A DBS order at PROCESSING/STARTED with the chain to DELIVERED asked for at T0 + 1 s. */
function chainQueued(): OrderSnapshot {
  return step(start('DBS', 'PROCESSING', 'STARTED').snapshot, chainRequest(T0 + 1_000)).snapshot;
}

/** Step 1 accepted: step 2 queued (request 2). */
function secondStepQueued(): OrderSnapshot {
  const steps = run(chainQueued(), [sent(T0 + 2_000, 1), acceptedAnswer(T0 + 3_000, 1)]);
  return steps[1]!.snapshot;
}

const base = { firstRequestNo: 1, of: 2, target: TARGET };

describe('a chain is asked for', () => {
  it('queues step 1 alone as the pending change, the plan in context.chain; realDeliveryDate waits for the last step', () => {
    const s = step(start('DBS', 'PROCESSING', 'STARTED').snapshot, chainRequest(T0 + 1_000));
    expect(changeState(s.snapshot)).toBe('queued');
    expect(s.snapshot.context.pending).toEqual({ ...DELIVERY, requestNo: 1, requestedAt: T0 + 1_000, sends: 0, async: false });
    expect(s.snapshot.context.chain).toEqual({ target: TARGET, steps: STEPS, index: 0, firstRequestNo: 1, realDeliveryDate: DATE, stopRequested: false });
    expect(s.effects).toEqual([{ type: 'effect.sendStatusChange', params: { orderId: ORDER_ID, campaignId: CAMPAIGN_ID, pending: s.snapshot.context.pending } }]);
  });

  it('a plan of one step is an ordinary change (chain: null), and a step request keeps refusing a target two steps away', () => {
    const one = step(start('DBS', 'PROCESSING', 'STARTED').snapshot, { type: 'SELLER.REQUEST', ...DELIVERY, via: 'chain', at: T0 + 1_000 });
    expect(one.snapshot.context.chain).toBeNull();
    expect(one.snapshot.context.pending).toMatchObject({ ...DELIVERY, requestNo: 1 });
    const stepOnly = step(start('DBS', 'PROCESSING', 'STARTED').snapshot, chainRequest(T0 + 1_000, { via: 'step' }));
    expect(changeState(stepOnly.snapshot)).toBe('idle');
    expect(stepOnly.snapshot.context.lastRefusal?.blockers.map((b) => b.code)).toEqual(['NOT_FROM_CURRENT_STATE']);
    expect(stepOnly.effects).toEqual([]);
  });

  it('a chain whose last step is refused (a realDeliveryDate in the future) queues nothing and says which step', () => {
    const s = step(start('DBS', 'PROCESSING', 'STARTED').snapshot, chainRequest(T0 + 1_000, { realDeliveryDate: '2025-05-13' }));
    expect(changeState(s.snapshot)).toBe('idle');
    expect(s.effects).toEqual([]);
    expect(s.snapshot.context.lastRefusal?.blockers).toEqual([
      expect.objectContaining({ code: 'REAL_DELIVERY_DATE_INVALID', step: 2, ruleId: 'DBS.deliver-from-delivery', message: expect.stringMatching(/^Step 2 of 2 \(DBS\.deliver-from-delivery/) }),
    ]);
  });
});

describe('the outcome table: how each step settles and what it says about the chain', () => {
  it('step accepted, more steps, next legal: accepted with end "continues", and the next step queued as request 2 in the same transition', () => {
    const [sending, next] = run(chainQueued(), [sent(T0 + 2_000, 1), acceptedAnswer(T0 + 3_000, 1)]);
    expect(changeState(sending!.snapshot)).toBe('sending');
    const s = next!;
    expect(changeState(s.snapshot)).toBe('queued');
    expect(s.snapshot.context).toMatchObject({ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', requestCount: 2 });
    const outcome = { kind: 'accepted', ...DELIVERY, requestNo: 1, at: T0 + 3_000, chain: { ...base, step: 1, end: 'continues' } };
    expect(s.snapshot.context.lastOutcome).toEqual(outcome);
    expect(s.snapshot.context.pending).toEqual({ ...DELIVERED, realDeliveryDate: DATE, requestNo: 2, requestedAt: T0 + 3_000, sends: 0, async: false });
    expect(s.snapshot.context.chain).toMatchObject({ index: 1, firstRequestNo: 1 });
    // Settle request 1, then enqueue request 2: one transition, so one store transaction.
    expect(s.effects).toEqual([
      { type: 'effect.settleStatusChange', params: { orderId: ORDER_ID, campaignId: CAMPAIGN_ID, outcome } },
      { type: 'effect.sendStatusChange', params: { orderId: ORDER_ID, campaignId: CAMPAIGN_ID, pending: s.snapshot.context.pending } },
    ]);
  });

  it('the last step accepted: accepted with end "reached", chain null, nothing more queued', () => {
    const [, s] = run(secondStepQueued(), [sent(T0 + 4_000, 2), acceptedAnswer(T0 + 5_000, 2)]);
    expect(changeState(s!.snapshot)).toBe('idle');
    expect(s!.snapshot.context).toMatchObject({ status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', chain: null, pending: null, requestCount: 2 });
    expect(s!.snapshot.context.lastOutcome).toEqual({ kind: 'accepted', ...DELIVERED, requestNo: 2, at: T0 + 5_000, chain: { ...base, step: 2, end: 'reached' } });
    expect(s!.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('a read-back showing step 1 applied (after an unknown outcome) continues the chain exactly as an OK answer does', () => {
    const steps = run(chainQueued(), [sent(T0 + 2_000, 1), { type: 'DISPATCH.UNKNOWN', at: T0 + 3_000, requestNo: 1, reason: 'timeout' }, observed(DELIVERY, T0 + 4_000, 'readBack')]);
    const s = steps[2]!;
    expect(changeState(s.snapshot)).toBe('queued');
    expect(s.snapshot.context.lastOutcome?.chain).toEqual({ ...base, step: 1, end: 'continues' });
    expect(s.effects.map((e) => [e.type, (e.params.outcome as { requestNo?: number } | undefined)?.requestNo ?? (e.params.pending as { requestNo: number }).requestNo])).toEqual([
      ['effect.settleStatusChange', 1],
      ['effect.sendStatusChange', 2],
    ]);
  });

  it('the next step refused by the rules when it is due (a plan made under other rules): step accepted, end "stopped", CHAIN_STEP_REFUSED with the blockers', () => {
    // A snapshot written under a table whose step 2 went DELIVERY → PROCESSING/READY_TO_SHIP: no DBS rule today.
    const queued = chainQueued();
    const persisted = orderMachine.getPersistedSnapshot(queued) as unknown as { context: Record<string, unknown> };
    const edited = orderMachine.resolveState({
      ...persisted,
      context: { ...persisted.context, chain: { ...queued.context.chain!, steps: [STEPS[0]!, { status: 'PROCESSING', substatus: 'READY_TO_SHIP', ruleId: 'OLD.back-to-rts' }] } },
    } as Parameters<typeof orderMachine.resolveState>[0]);
    const [, s] = run(edited, [sent(T0 + 2_000, 1), acceptedAnswer(T0 + 3_000, 1)]);
    expect(changeState(s!.snapshot)).toBe('idle');
    expect(s!.snapshot.context.chain).toBeNull();
    expect(s!.snapshot.context.lastOutcome).toMatchObject({
      kind: 'accepted',
      requestNo: 1,
      chain: { ...base, step: 1, end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.stepRefused, message: expect.stringContaining('Step 2 of 2 (OLD.back-to-rts)'), blockers: [expect.objectContaining({ code: 'FORBIDDEN_FOR_MODEL' })] } },
    });
    expect(s!.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('the Market refuses step 1: rejected with its refusal as the stop reason; nothing more queued', () => {
    const rejection = { code: 'STATUS_NOT_ALLOWED', message: 'Status change is not allowed' };
    const [, s] = run(chainQueued(), [sent(T0 + 2_000, 1), { type: 'DISPATCH.REJECTED', at: T0 + 3_000, requestNo: 1, reason: 'Status change is not allowed', rejection }]);
    expect(changeState(s!.snapshot)).toBe('idle');
    expect(s!.snapshot.context).toMatchObject({ chain: null, pending: null, status: 'PROCESSING', requestCount: 1 });
    expect(s!.snapshot.context.lastOutcome).toMatchObject({ kind: 'rejected', requestNo: 1, chain: { ...base, step: 1, end: 'stopped', stopReason: rejection } });
    expect(s!.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
    // Without a code of the Market's, the stop reason says the step was rejected.
    const [, bare] = run(chainQueued(), [sent(T0 + 2_000, 1), { type: 'DISPATCH.REJECTED', at: T0 + 3_000, reason: 'no' }]);
    expect(bare!.snapshot.context.lastOutcome?.chain?.stopReason).toMatchObject({ code: CHAIN_STOP_CODES.stepRejected, message: 'no' });
  });

  it('a Market move elsewhere mid-chain (the buyer cancelled) supersedes the step in flight: end "stopped", CHAIN_MARKET_MOVED naming the state', () => {
    const [, s] = run(chainQueued(), [sent(T0 + 2_000, 1), observed({ status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' }, T0 + 3_000)]);
    expect(changeState(s!.snapshot)).toBe('idle');
    expect(s!.snapshot.context.lastOutcome).toMatchObject({
      kind: 'superseded',
      requestNo: 1,
      chain: { ...base, step: 1, end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.marketMoved, status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' } },
    });
    expect(s!.snapshot.context.chain).toBeNull();
  });

  it('a Market move further along the plan (straight to DELIVERED) stops the chain too: nobody can tell who made it', () => {
    const [, s] = run(chainQueued(), [sent(T0 + 2_000, 1), observed(DELIVERED, T0 + 3_000)]);
    expect(changeState(s!.snapshot)).toBe('idle');
    expect(s!.snapshot.context.lastOutcome).toMatchObject({ kind: 'superseded', chain: { end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.marketMoved } } });
    expect(s!.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('an OK answer naming another state than the plan\'s: step accepted, end "stopped", CHAIN_MARKET_MOVED, no next step', () => {
    const [, s] = run(chainQueued(), [sent(T0 + 2_000, 1), acceptedAnswer(T0 + 3_000, 1, { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' })]);
    expect(changeState(s!.snapshot)).toBe('idle');
    expect(s!.snapshot.context).toMatchObject({ status: 'PICKUP', chain: null, pending: null });
    expect(s!.snapshot.context.lastOutcome).toMatchObject({ kind: 'accepted', chain: { end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.marketMoved, status: 'PICKUP' } } });
    expect(s!.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('SELLER.STOP_CHAIN while a step is queued and unsent: superseded "stopped by the seller", its row settled, nothing sent', () => {
    const s = step(secondStepQueued(), { type: 'SELLER.STOP_CHAIN', at: T0 + 4_000 });
    expect(changeState(s.snapshot)).toBe('idle');
    expect(s.snapshot.context).toMatchObject({ chain: null, pending: null, status: 'DELIVERY' });
    expect(s.snapshot.context.lastOutcome).toEqual({
      kind: 'superseded',
      ...DELIVERED,
      requestNo: 2,
      at: T0 + 4_000,
      reason: 'Stopped by the seller before it was sent.',
      chain: { ...base, step: 2, end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.stoppedBySeller, message: 'Stopped by the seller before it was sent.' } },
    });
    expect(s.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('SELLER.STOP_CHAIN while step 1 is in flight: it ends as it will (accepted), end "stopped", and no step follows', () => {
    const [, stopping, s] = run(chainQueued(), [sent(T0 + 2_000, 1), { type: 'SELLER.STOP_CHAIN', at: T0 + 2_500 }, acceptedAnswer(T0 + 3_000, 1)]);
    expect(changeState(stopping!.snapshot)).toBe('sending');
    expect(stopping!.snapshot.context.chain?.stopRequested).toBe(true);
    expect(stopping!.effects).toEqual([]);
    expect(changeState(s!.snapshot)).toBe('idle');
    expect(s!.snapshot.context).toMatchObject({ status: 'DELIVERY', chain: null, pending: null, requestCount: 1 });
    expect(s!.snapshot.context.lastOutcome).toMatchObject({ kind: 'accepted', requestNo: 1, chain: { step: 1, end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.stoppedBySeller } } });
    expect(s!.effects.map((e) => e.type)).toEqual(['effect.settleStatusChange']);
  });

  it('SELLER.REQUEST while a step is queued with no send: the step superseded "replaced by request 3", the new request queued in the same transition', () => {
    const cancel = { status: 'CANCELLED', substatus: 'SHOP_FAILED' } as const;
    const request: OrderEvent = { type: 'SELLER.REQUEST', ...cancel, at: T0 + 4_000 };
    expect(judgeSellerRequest(secondStepQueued().context, request, T0 + 4_000).allowed).toBe(true);
    const s = step(secondStepQueued(), request);
    expect(changeState(s.snapshot)).toBe('queued');
    expect(s.snapshot.context).toMatchObject({ chain: null, requestCount: 3, pending: { ...cancel, requestNo: 3, sends: 0 } });
    expect(s.snapshot.context.lastOutcome).toMatchObject({
      kind: 'superseded',
      requestNo: 2,
      reason: 'Replaced by request 3 before it was sent.',
      chain: { step: 2, end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.replaced } },
    });
    expect(s.effects.map((e) => [e.type, (e.params.outcome as { requestNo?: number } | undefined)?.requestNo ?? (e.params.pending as { requestNo: number }).requestNo])).toEqual([
      ['effect.settleStatusChange', 2],
      ['effect.sendStatusChange', 3],
    ]);
  });

  it('SELLER.REQUEST while a step is in flight: refused CHANGE_PENDING, the blocker naming the chain; nothing changes', () => {
    const [sending] = run(chainQueued(), [sent(T0 + 2_000, 1)]);
    const s = step(sending!.snapshot, { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at: T0 + 2_500 });
    expect(changeState(s.snapshot)).toBe('sending');
    expect(s.effects).toEqual([]);
    expect(s.snapshot.context.chain).toEqual(sending!.snapshot.context.chain);
    expect(s.snapshot.context.lastRefusal?.blockers).toEqual([
      expect.objectContaining({ code: 'CHANGE_PENDING', chain: { step: 1, of: 2, target: TARGET }, message: expect.stringContaining('stop it with stopChain, or wait') }),
    ]);
  });
});

describe('nothing counts twice', () => {
  it('a late answer about step 1 (request 1) while step 2 is queued is ignored: step 2 stays queued, unsent, the order where it is', () => {
    const queued = secondStepQueued();
    for (const late of [acceptedAnswer(T0 + 4_000, 1), sent(T0 + 4_000, 1), { type: 'DISPATCH.REJECTED', at: T0 + 4_000, requestNo: 1, reason: 'late' } as OrderEvent]) {
      const s = step(queued, late);
      expect(s.snapshot.value).toEqual(queued.value);
      expect(s.snapshot.context).toEqual(queued.context);
      expect(s.effects).toEqual([]);
    }
    // The same answer naming request 2 does count.
    expect(changeState(step(queued, sent(T0 + 4_000, 2)).snapshot)).toBe('sending');
  });

  it('SELLER.STOP_CHAIN with no chain changes nothing', () => {
    const idle = start('DBS', 'PROCESSING', 'STARTED').snapshot;
    const s = step(idle, { type: 'SELLER.STOP_CHAIN', at: T0 + 1 });
    expect(s.snapshot.context).toEqual(idle.context);
    expect(s.effects).toEqual([]);
  });
});
