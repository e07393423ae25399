// explainTransition: one explicit case per blocker code, each checking the code, the fields a
// caller reads, and that the refusal names what IS allowed from the current state.

import { describe, expect, it } from 'vitest';
import { explainChain, type ChainExplanation } from '../machines/chain-plan.js';
import { BLOCKER_CODES, allowedTargets, explainTransition, type Blocker, type Explanation } from '../machines/explain.js';
import { SELLER_RULES } from '../machines/rules.js';
import { VALID_CALL_EVIDENCE } from './helpers/machine-fixtures.js';

const STARTED = { status: 'PROCESSING', substatus: 'STARTED' } as const;
const RTS = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const SHOP_FAILED = { status: 'CANCELLED', substatus: 'SHOP_FAILED' } as const;
const DBS_DELIVERY = { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' } as const;
const DBS_PICKUP = { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' } as const;
const DBS_DELIVERED = { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' } as const;
const FBS_FROM_STARTED_HINT = 'Allowed from here: PROCESSING/READY_TO_SHIP, CANCELLED/SHOP_FAILED.';
const NOTHING_HINT = 'No seller change is allowed from here.';
const NOON_2025_05_12 = Date.parse('2025-05-12T12:00:00Z');

function refusal(result: Explanation): { blockers: readonly Blocker[]; allowedTargets: readonly unknown[] } {
  if (result.allowed) throw new Error(`expected a refusal, got rule ${result.rule.id}`);
  return result;
}

function codes(result: Explanation): string[] {
  return refusal(result).blockers.map((b) => b.code);
}

describe('BLOCKER_CODES', () => {
  it('are the sixteen documented stable strings', () => {
    expect(Object.values(BLOCKER_CODES).sort()).toEqual(
      [
        'UNKNOWN_MODEL', 'UNKNOWN_STATUS', 'UNKNOWN_TARGET', 'TERMINAL_STATE', 'ALREADY_IN_TARGET', 'CHANGE_PENDING',
        'NOT_A_SELLER_CHANGE', 'FORBIDDEN_FOR_MODEL', 'NOT_FROM_CURRENT_STATE', 'MISSING_SUBSTATUS', 'WRONG_SUBSTATUS',
        'CALL_EVIDENCE_INSUFFICIENT', 'CALL_EVIDENCE_INVALID', 'REAL_DELIVERY_DATE_NOT_ACCEPTED', 'REAL_DELIVERY_DATE_INVALID',
        'NO_CHAIN',
      ].sort(),
    );
  });
});

describe('explainTransition, one case per blocker code', () => {
  it('UNKNOWN_MODEL: a model that is not FBS, EXPRESS, DBS or LAAS', () => {
    const r = refusal(explainTransition(STARTED, RTS, 'FBY'));
    expect(r.blockers.map((b) => b.code)).toEqual(['UNKNOWN_MODEL']);
    expect(r.blockers[0]!.message).toContain('"FBY"');
    expect(r.blockers[0]!.message).toContain(NOTHING_HINT);
    expect(r.allowedTargets).toEqual([]);
  });

  it('UNKNOWN_STATUS: the order is in a status no list has', () => {
    const r = refusal(explainTransition({ status: 'HOLOGRAPHIC', substatus: 'STARTED' }, SHOP_FAILED, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['UNKNOWN_STATUS']);
    expect(r.blockers[0]!.message).toContain('"HOLOGRAPHIC"');
    expect(r.blockers[0]!.message).toContain(NOTHING_HINT);
    expect(r.allowedTargets).toEqual([]);
  });

  it('UNKNOWN_TARGET: an unknown target status, or a known status with an unknown substatus', () => {
    const a = refusal(explainTransition(STARTED, { status: 'SHIPPED_BY_DRONE', substatus: 'STARTED' }, 'FBS'));
    expect(a.blockers.map((b) => b.code)).toEqual(['UNKNOWN_TARGET']);
    expect(a.blockers[0]!.message).toContain('SHIPPED_BY_DRONE/STARTED');
    expect(a.blockers[0]!.message).toContain(FBS_FROM_STARTED_HINT);
    expect(a.allowedTargets).toEqual([RTS, SHOP_FAILED]);
    const b = refusal(explainTransition(STARTED, { status: 'CANCELLED', substatus: 'BUYER_WAS_RUDE' }, 'FBS'));
    expect(b.blockers.map((x) => x.code)).toEqual(['UNKNOWN_TARGET']);
  });

  it('TERMINAL_STATE: no seller change from CANCELLED, DELIVERED, PARTIALLY_RETURNED or RETURNED', () => {
    for (const status of ['CANCELLED', 'DELIVERED', 'PARTIALLY_RETURNED', 'RETURNED']) {
      const r = refusal(explainTransition({ status, substatus: 'USER_CHANGED_MIND' }, SHOP_FAILED, 'DBS'));
      expect(r.blockers.map((b) => b.code), status).toEqual(['TERMINAL_STATE']);
      expect(r.blockers[0]!.message).toContain(NOTHING_HINT);
      expect(r.allowedTargets).toEqual([]);
    }
    expect(allowedTargets({ status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }, 'DBS')).toEqual([]);
  });

  it('ALREADY_IN_TARGET: asking for the state the order is in', () => {
    const r = refusal(explainTransition(RTS, RTS, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['ALREADY_IN_TARGET']);
    expect(r.blockers[0]!.message).toContain('already PROCESSING/READY_TO_SHIP');
    expect(r.blockers[0]!.message).toContain('Allowed from here: CANCELLED/SHOP_FAILED.');
    expect(r.allowedTargets).toEqual([SHOP_FAILED]);
  });

  it('CHANGE_PENDING: a change already on its way', () => {
    const r = refusal(explainTransition({ ...STARTED, pending: RTS }, SHOP_FAILED, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['CHANGE_PENDING']);
    expect(r.blockers[0]!['pending']).toEqual(RTS);
    expect(r.blockers[0]!.message).toContain('PROCESSING/READY_TO_SHIP is already pending');
    expect(r.blockers[0]!.message).toContain(FBS_FROM_STARTED_HINT);
    expect(r.allowedTargets).toEqual([RTS, SHOP_FAILED]);
  });

  it('NOT_A_SELLER_CHANGE: a status only the Market sets', () => {
    const r = refusal(explainTransition(STARTED, { status: 'DELIVERY', substatus: 'USER_RECEIVED' }, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['NOT_A_SELLER_CHANGE']);
    expect(r.blockers[0]!.message).toContain('DELIVERY/USER_RECEIVED is set by the Market');
    expect(r.blockers[0]!.message).toContain(FBS_FROM_STARTED_HINT);
    expect(r.allowedTargets).toEqual([RTS, SHOP_FAILED]);
    expect(codes(explainTransition({ status: 'DELIVERY', substatus: 'USER_RECEIVED' }, { status: 'RETURNED', substatus: 'UNKNOWN' }, 'DBS'))).toEqual(['NOT_A_SELLER_CHANGE']);
  });

  it('FORBIDDEN_FOR_MODEL: a change other models may make', () => {
    const r = refusal(explainTransition(STARTED, DBS_DELIVERY, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['FORBIDDEN_FOR_MODEL']);
    expect(r.blockers[0]!['modelsAllowed']).toEqual(['DBS']);
    expect(r.blockers[0]!.message).toContain('seller change for DBS, not for FBS');
    expect(r.blockers[0]!.message).toContain(FBS_FROM_STARTED_HINT);
    expect(r.allowedTargets).toEqual([RTS, SHOP_FAILED]);
    // A DBS-only cancellation reason is refused for the model, not as a wrong substatus.
    const reason = refusal(explainTransition(STARTED, { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' }, 'EXPRESS'));
    expect(reason.blockers.map((b) => b.code)).toEqual(['FORBIDDEN_FOR_MODEL']);
    expect(reason.blockers[0]!['modelsAllowed']).toEqual(['DBS']);
  });

  it('NOT_FROM_CURRENT_STATE: a change the model makes, but from elsewhere', () => {
    const r = refusal(explainTransition({ status: 'PROCESSING', substatus: 'SHIPPED' }, SHOP_FAILED, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['NOT_FROM_CURRENT_STATE']);
    expect(r.blockers[0]!.message).toContain('FBS sellers may set CANCELLED/SHOP_FAILED, but not from PROCESSING/SHIPPED');
    expect(r.blockers[0]!.message).toContain(NOTHING_HINT);
    expect(r.allowedTargets).toEqual([]);
    const dbs = refusal(explainTransition(DBS_PICKUP, DBS_DELIVERY, 'DBS'));
    expect(dbs.blockers.map((b) => b.code)).toEqual(['NOT_FROM_CURRENT_STATE']);
    expect(dbs.allowedTargets).toContainEqual(DBS_DELIVERED);
    expect(dbs.blockers[0]!.message).toContain('DELIVERED/DELIVERY_SERVICE_DELIVERED');
  });

  it('MISSING_SUBSTATUS: a status without the substatus it needs', () => {
    const r = refusal(explainTransition(STARTED, { status: 'CANCELLED' }, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['MISSING_SUBSTATUS']);
    expect(r.blockers[0]!['expectedSubstatuses']).toEqual(['SHOP_FAILED']);
    expect(r.blockers[0]!.message).toContain('CANCELLED needs a substatus here; one of SHOP_FAILED');
    expect(r.blockers[0]!.message).toContain(FBS_FROM_STARTED_HINT);
    // DBS: the substatuses the shop may send from the order's status (NOTES.md §d2).
    const dbs = refusal(explainTransition(DBS_DELIVERY, { status: 'CANCELLED' }, 'DBS'));
    expect(dbs.blockers[0]!['expectedSubstatuses']).toEqual(['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE']);
    const pickup = refusal(explainTransition(DBS_PICKUP, { status: 'CANCELLED' }, 'DBS'));
    expect(pickup.blockers[0]!['expectedSubstatuses']).toEqual(['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE', 'PICKUP_EXPIRED']);
    // No orange arrow leaves DELIVERY/USER_RECEIVED (Yandex Delivery has the order): no cancellation from there.
    expect(codes(explainTransition({ status: 'DELIVERY', substatus: 'USER_RECEIVED' }, SHOP_FAILED, 'DBS'))).toEqual(['NOT_FROM_CURRENT_STATE']);
  });

  it('WRONG_SUBSTATUS: a status allowed from here, with a substatus no seller sets', () => {
    const r = refusal(explainTransition(STARTED, { status: 'CANCELLED', substatus: 'USER_NOT_PAID' }, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['WRONG_SUBSTATUS']);
    expect(r.blockers[0]!['expectedSubstatuses']).toEqual(['SHOP_FAILED']);
    expect(r.blockers[0]!.message).toContain('CANCELLED cannot be set with substatus USER_NOT_PAID from PROCESSING/STARTED');
    expect(r.blockers[0]!.message).toContain(FBS_FROM_STARTED_HINT);
    expect(codes(explainTransition(STARTED, { status: 'PROCESSING', substatus: 'SHIPPED' }, 'FBS'))).toEqual(['WRONG_SUBSTATUS']);
  });

  it('CALL_EVIDENCE_INSUFFICIENT: USER_UNREACHABLE without evidence, or with too little', () => {
    const target = { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' };
    const none = refusal(explainTransition(DBS_DELIVERY, target, 'DBS'));
    expect(none.blockers.map((b) => b.code)).toEqual(['CALL_EVIDENCE_INSUFFICIENT']);
    expect(none.blockers[0]!['qualifyingCalls']).toBe(0);
    expect(none.allowedTargets).toContainEqual(target);
    expect(none.blockers[0]!.message).toContain('Allowed from here:');
    const two = refusal(
      explainTransition(DBS_DELIVERY, { ...target, callEvidence: { ...VALID_CALL_EVIDENCE, calls: VALID_CALL_EVIDENCE.calls.slice(0, 2) } }, 'DBS'),
    );
    expect(two.blockers.map((b) => b.code)).toEqual(['CALL_EVIDENCE_INSUFFICIENT']);
    expect(two.blockers[0]!['qualifyingCalls']).toBe(2);
    expect(explainTransition(DBS_DELIVERY, { ...target, callEvidence: VALID_CALL_EVIDENCE }, 'DBS').allowed).toBe(true);
  });

  it('CALL_EVIDENCE_INVALID: evidence that cannot be read', () => {
    const target = { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' };
    const r = refusal(explainTransition(STARTED, { ...target, callEvidence: { ...VALID_CALL_EVIDENCE, buyerTimeZone: 'Mars/Olympus_Mons' } }, 'DBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['CALL_EVIDENCE_INVALID']);
    expect(r.blockers[0]!.message).toContain('Mars/Olympus_Mons');
    expect(r.allowedTargets).toContainEqual(target);
  });

  it('REAL_DELIVERY_DATE_NOT_ACCEPTED: a realDeliveryDate on a change that does not take it', () => {
    const r = refusal(explainTransition(STARTED, { ...DBS_DELIVERY, realDeliveryDate: '2025-05-12' }, 'DBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['REAL_DELIVERY_DATE_NOT_ACCEPTED']);
    expect(r.blockers[0]!.message).toContain('DBS.hand-to-delivery');
    expect(r.allowedTargets).toContainEqual(DBS_DELIVERY);
    expect(codes(explainTransition(STARTED, { ...SHOP_FAILED, realDeliveryDate: '2025-05-12' }, 'FBS'))).toEqual(['REAL_DELIVERY_DATE_NOT_ACCEPTED']);
  });

  it('REAL_DELIVERY_DATE_INVALID: not YYYY-MM-DD, not a calendar day, or in the future', () => {
    for (const bad of ['12.05.2025', '2025-5-12', '2025-05-12T10:00:00Z', '2025-13-01', '2025-02-30', '2025-04-31', '']) {
      const r = refusal(explainTransition(DBS_DELIVERY, { ...DBS_DELIVERED, realDeliveryDate: bad }, 'DBS', { now: NOON_2025_05_12 }));
      expect(r.blockers.map((b) => b.code), bad).toEqual(['REAL_DELIVERY_DATE_INVALID']);
      expect(r.allowedTargets).toContainEqual(DBS_DELIVERED);
    }
    const future = refusal(explainTransition(DBS_DELIVERY, { ...DBS_PICKUP, realDeliveryDate: '2025-05-13' }, 'DBS', { now: NOON_2025_05_12 }));
    expect(future.blockers.map((b) => b.code)).toEqual(['REAL_DELIVERY_DATE_INVALID']);
    expect(future.blockers[0]!.message).toContain('in the future');
    // Today and the past are fine; without `now` the future check is skipped (no clock).
    for (const ok of ['2025-05-12', '2025-05-01', '2024-02-29']) {
      expect(explainTransition(DBS_DELIVERY, { ...DBS_DELIVERED, realDeliveryDate: ok }, 'DBS', { now: NOON_2025_05_12 }).allowed, ok).toBe(true);
    }
    expect(explainTransition(DBS_DELIVERY, { ...DBS_DELIVERED, realDeliveryDate: '2099-01-01' }, 'DBS').allowed).toBe(true);
  });
});

describe('explainTransition, combined and ordering', () => {
  it('reports every up-front blocker at once (unknown status, unknown target, pending change)', () => {
    const r = refusal(explainTransition({ status: 'NEW_THING', pending: RTS }, { status: 'ALSO_NEW' }, 'FBS'));
    expect(r.blockers.map((b) => b.code)).toEqual(['UNKNOWN_STATUS', 'UNKNOWN_TARGET', 'CHANGE_PENDING']);
  });

  it('reports every unmet requirement of the rule at once', () => {
    const r = refusal(
      explainTransition(STARTED, { status: 'CANCELLED', substatus: 'USER_UNREACHABLE', realDeliveryDate: '2025-05-12' }, 'DBS'),
    );
    expect(r.blockers.map((b) => b.code)).toEqual(['CALL_EVIDENCE_INSUFFICIENT', 'REAL_DELIVERY_DATE_NOT_ACCEPTED']);
  });

  it('an allowed change returns its rule and nothing else', () => {
    const result = explainTransition(DBS_DELIVERY, { ...DBS_DELIVERED, realDeliveryDate: '2025-05-11' }, 'DBS', { now: NOON_2025_05_12 });
    expect(result).toEqual({ allowed: true, rule: SELLER_RULES.find((r) => r.id === 'DBS.deliver-from-delivery') });
  });

  it('allowedTargets lists the rules from here and nothing from a terminal or unknown status', () => {
    expect(allowedTargets(STARTED, 'FBS')).toEqual([RTS, SHOP_FAILED]);
    expect(allowedTargets(STARTED, 'LAAS')).toEqual([SHOP_FAILED]);
    expect(allowedTargets({ status: 'RESERVED' }, 'LAAS')).toEqual([STARTED, SHOP_FAILED]);
    expect(allowedTargets({ status: 'UNRECOGNIZABLE' }, 'DBS')).toEqual([]);
    expect(allowedTargets({ status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'DBS')).toEqual([]);
  });
});

describe('realDeliveryDate is judged on the Market\'s (Moscow) calendar', () => {
  const order = { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' };
  const target = (realDeliveryDate: string) => ({ status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate });
  it('accepts today in Moscow at 01:00 Moscow time (22:00 UTC the day before)', () => {
    const now = Date.parse('2026-11-22T22:00:00Z'); // 2026-11-23 01:00 in Moscow
    expect(explainTransition(order, target('2026-11-23'), 'DBS', { now }).allowed).toBe(true);
  });
  it('refuses tomorrow in Moscow', () => {
    const now = Date.parse('2026-11-23T20:59:00Z'); // 23:59 in Moscow
    const result = explainTransition(order, target('2026-11-24'), 'DBS', { now });
    expect(result.allowed).toBe(false);
    if (!result.allowed) expect(result.blockers.map((b) => b.code)).toEqual(['REAL_DELIVERY_DATE_INVALID']);
  });
});

describe('explainChain: a target several seller changes away', () => {
  const DBS_DELIVERY_HINT = 'Allowed from here: PICKUP/PICKUP_SERVICE_RECEIVED, DELIVERED/DELIVERY_SERVICE_DELIVERED, CANCELLED/SHOP_FAILED, CANCELLED/USER_CHANGED_MIND, CANCELLED/USER_UNREACHABLE.';

  function chainRefusal(result: ChainExplanation) {
    if (result.allowed) throw new Error(`expected a refusal, got ${result.steps.map((s) => s.ruleId).join(' → ')}`);
    return result;
  }

  it('a change one step away: explainTransition\'s answer as a chain of one', () => {
    const single = explainTransition(STARTED, RTS, 'FBS');
    expect(explainChain(STARTED, RTS, 'FBS')).toEqual({ allowed: true, steps: [{ from: STARTED, to: RTS, ruleId: 'FBS.ready-to-ship', verdict: single }] });
  });

  it('DBS STARTED → DELIVERED: two steps, each labelled with its rule and judged from where the one before ends', () => {
    // The single step is still refused: explainTransition keeps its answer.
    expect(codes(explainTransition(STARTED, DBS_DELIVERED, 'DBS'))).toEqual(['NOT_FROM_CURRENT_STATE']);
    const chain = explainChain(STARTED, { ...DBS_DELIVERED, realDeliveryDate: '2025-05-11' }, 'DBS', { now: NOON_2025_05_12 });
    expect(chain.allowed).toBe(true);
    expect(chain.steps.map((s) => [s.from, s.to, s.ruleId, s.verdict.allowed])).toEqual([
      [STARTED, DBS_DELIVERY, 'DBS.hand-to-delivery', true],
      [DBS_DELIVERY, DBS_DELIVERED, 'DBS.deliver-from-delivery', true],
    ]);
    // realDeliveryDate goes to the step that accepts it, the last: given to hand-to-delivery it would be refused.
    expect(codes(explainTransition(STARTED, { ...DBS_DELIVERY, realDeliveryDate: '2025-05-11' }, 'DBS'))).toEqual(['REAL_DELIVERY_DATE_NOT_ACCEPTED']);
  });

  it('through PICKUP, with a target given without its substatus', () => {
    const chain = explainChain(STARTED, { status: 'PICKUP', realDeliveryDate: '2025-05-12' }, 'DBS', { now: NOON_2025_05_12 });
    expect(chain.allowed).toBe(true);
    expect(chain.steps.map((s) => s.ruleId)).toEqual(['DBS.hand-to-delivery', 'DBS.arrive-at-pickup']);
    // Alone, the status without a substatus is refused (MISSING_SUBSTATUS names the choices).
    expect(codes(explainTransition(DBS_DELIVERY, { status: 'CANCELLED' }, 'DBS'))).toEqual(['MISSING_SUBSTATUS']);
    const cancel = explainChain(DBS_DELIVERY, { status: 'CANCELLED', substatus: 'PICKUP_EXPIRED' }, 'DBS');
    expect(cancel.allowed && cancel.steps.map((s) => s.ruleId)).toEqual(['DBS.arrive-at-pickup', 'DBS.cancel-pickup-expired-from-pickup']);
  });

  it('a requirement the last step does not meet refuses the chain, naming the step; the plan is still shown', () => {
    const future = chainRefusal(explainChain(STARTED, { ...DBS_DELIVERED, realDeliveryDate: '2025-05-13' }, 'DBS', { now: NOON_2025_05_12 }));
    expect(future.blockers.map((b) => [b.code, b['step'], b['ruleId']])).toEqual([['REAL_DELIVERY_DATE_INVALID', 2, 'DBS.deliver-from-delivery']]);
    expect(future.blockers[0]!.message).toMatch(/^Step 2 of 2 \(DBS\.deliver-from-delivery, from DELIVERY\/DELIVERY_SERVICE_RECEIVED\): realDeliveryDate 2025-05-13 is in the future/);
    expect(future.blockers[0]!.message.endsWith(DBS_DELIVERY_HINT)).toBe(true);
    expect(future.steps.map((s) => s.verdict.allowed)).toEqual([true, false]);
    expect(future.allowedTargets).toEqual(allowedTargets(STARTED, 'DBS'));
    // A cancellation takes no realDeliveryDate: refused at the last of three steps.
    const cancel = chainRefusal(explainChain(STARTED, { status: 'CANCELLED', substatus: 'PICKUP_EXPIRED', realDeliveryDate: '2025-05-11' }, 'DBS'));
    expect(cancel.blockers.map((b) => [b.code, b['step']])).toEqual([['REAL_DELIVERY_DATE_NOT_ACCEPTED', 3]]);
    expect(cancel.steps).toHaveLength(3);
  });

  it('a pending change, a final state, another model\'s change or an unmet requirement of the direct step: the same blockers, no plan', () => {
    const cases = [
      [{ ...STARTED, pending: DBS_DELIVERY }, DBS_DELIVERED, 'DBS'],
      [{ status: 'CANCELLED', substatus: 'SHOP_FAILED' }, DBS_DELIVERED, 'DBS'],
      [STARTED, DBS_DELIVERED, 'FBS'],
      [DBS_DELIVERY, { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' }, 'DBS'],
      [STARTED, DBS_DELIVERED, 'FBY'],
    ] as const;
    const seen: string[] = [];
    for (const [order, target, model] of cases) {
      const single = explainTransition(order, target, model);
      expect(explainChain(order, target, model), `${model} ${order.status} → ${target.status}`).toEqual({ ...single, steps: [] });
      seen.push(...codes(single));
    }
    expect(seen).toEqual(['CHANGE_PENDING', 'TERMINAL_STATE', 'FORBIDDEN_FOR_MODEL', 'CALL_EVIDENCE_INSUFFICIENT', 'UNKNOWN_MODEL']);
  });

  it('NO_CHAIN: no chain reaches the target either; the single step\'s blockers come first', () => {
    const back = chainRefusal(explainChain(DBS_PICKUP, DBS_DELIVERY, 'DBS'));
    expect(back.blockers.map((b) => b.code)).toEqual(['NOT_FROM_CURRENT_STATE', 'NO_CHAIN']);
    expect(back.blockers[1]!.message).toContain('No chain of DBS seller changes leads from PICKUP/PICKUP_SERVICE_RECEIVED to DELIVERY/DELIVERY_SERVICE_RECEIVED.');
    expect(back.steps).toEqual([]);
    for (const b of back.blockers) expect(b.message).toContain('Allowed from here: DELIVERED/DELIVERY_SERVICE_DELIVERED');
    // FBS never sets SHIPPED: the Market does, once the order leaves.
    const shipped = chainRefusal(explainChain(STARTED, { status: 'PROCESSING', substatus: 'SHIPPED' }, 'FBS'));
    expect(shipped.blockers.map((b) => b.code)).toEqual(['WRONG_SUBSTATUS', 'NO_CHAIN']);
    expect(shipped.allowedTargets).toEqual([RTS, SHOP_FAILED]);
    // The order already has the status a target without substatus names.
    expect(chainRefusal(explainChain(STARTED, { status: 'PROCESSING' }, 'FBS')).blockers.map((b) => b.code)).toEqual(['MISSING_SUBSTATUS', 'ALREADY_IN_TARGET']);
  });
});
