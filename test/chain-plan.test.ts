// planChain: the shortest chain of seller steps from the rules table, per model, with the
// table-order tie-break, the steps that may only end a chain, and its coded refusals.

import { describe, expect, it } from 'vitest';
import { planChain, type ChainPlan, type ChainStart, type ChainTarget } from '../machines/chain-plan.js';
import { SELLER_RULES, type SellerRule } from '../machines/rules.js';
import { FULFILMENT_MODELS, type FulfilmentModel } from '../machines/statuses.js';
import { concreteStates, label } from './helpers/machine-fixtures.js';

const STARTED = { status: 'PROCESSING', substatus: 'STARTED' } as const;
const RTS = { status: 'PROCESSING', substatus: 'READY_TO_SHIP' } as const;
const SHOP_FAILED = { status: 'CANCELLED', substatus: 'SHOP_FAILED' } as const;
const DBS_DELIVERY = { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' } as const;
const DBS_PICKUP = { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' } as const;
const DBS_DELIVERED = { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' } as const;
const ARBITRATION = { status: 'DELIVERY', substatus: 'DELIVERY_USER_NOT_RECEIVED' } as const;

function ruleIds(plan: ChainPlan): string[] {
  if (!plan.ok) throw new Error(`expected a plan, got ${plan.blockers.map((b) => b.code).join(', ')}`);
  return plan.steps.map((s) => s.ruleId);
}

function refusal(plan: ChainPlan): { code: string; message: string } {
  if (plan.ok) throw new Error(`expected a refusal, got ${plan.steps.map((s) => s.ruleId).join(' → ')}`);
  expect(plan.blockers).toHaveLength(1);
  return plan.blockers[0]!;
}

describe('planChain, DBS (the diagram\'s green arrows)', () => {
  it('STARTED → DELIVERED goes through DELIVERY, not the longer way through PICKUP', () => {
    const plan = planChain('DBS', STARTED, DBS_DELIVERED);
    expect(plan).toEqual({
      ok: true,
      steps: [
        { ...DBS_DELIVERY, ruleId: 'DBS.hand-to-delivery' },
        { ...DBS_DELIVERED, ruleId: 'DBS.deliver-from-delivery' },
      ],
    });
  });

  it('the PICKUP branch: STARTED → PICKUP, and on to a cancellation only PICKUP allows', () => {
    expect(ruleIds(planChain('DBS', STARTED, DBS_PICKUP))).toEqual(['DBS.hand-to-delivery', 'DBS.arrive-at-pickup']);
    expect(ruleIds(planChain('DBS', STARTED, { status: 'CANCELLED', substatus: 'PICKUP_EXPIRED' }))).toEqual([
      'DBS.hand-to-delivery',
      'DBS.arrive-at-pickup',
      'DBS.cancel-pickup-expired-from-pickup',
    ]);
    expect(ruleIds(planChain('DBS', DBS_DELIVERY, { status: 'CANCELLED', substatus: 'PICKUP_EXPIRED' }))).toEqual([
      'DBS.arrive-at-pickup',
      'DBS.cancel-pickup-expired-from-pickup',
    ]);
    expect(ruleIds(planChain('DBS', DBS_PICKUP, DBS_DELIVERED))).toEqual(['DBS.deliver-from-pickup']);
  });

  it('a target one step away is a chain of one, with the rule explainTransition would name', () => {
    expect(ruleIds(planChain('DBS', STARTED, DBS_DELIVERY))).toEqual(['DBS.hand-to-delivery']);
    expect(ruleIds(planChain('DBS', ARBITRATION, DBS_DELIVERED))).toEqual(['DBS.deliver-after-arbitration']);
    // A cancellation that needs call evidence may end a chain (here, the only step).
    expect(ruleIds(planChain('DBS', DBS_DELIVERY, { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' }))).toEqual([
      'DBS.cancel-user-unreachable-from-delivery',
    ]);
  });

  it('a target without a substatus: the nearest state with that status, ties by table order', () => {
    expect(planChain('DBS', STARTED, { status: 'DELIVERED' })).toEqual({
      ok: true,
      steps: [
        { ...DBS_DELIVERY, ruleId: 'DBS.hand-to-delivery' },
        { ...DBS_DELIVERED, ruleId: 'DBS.deliver-from-delivery' },
      ],
    });
    // Four cancellations leave STARTED; SHOP_FAILED is the first row.
    expect(planChain('DBS', STARTED, { status: 'CANCELLED' })).toEqual({ ok: true, steps: [{ ...SHOP_FAILED, ruleId: 'DBS.cancel-shop-failed-from-processing' }] });
    expect(ruleIds(planChain('DBS', STARTED, { status: 'PICKUP' }))).toEqual(['DBS.hand-to-delivery', 'DBS.arrive-at-pickup']);
  });

  it('NO_CHAIN: backwards, from a state no seller arrow leaves, or to a state only the Market sets', () => {
    const back = refusal(planChain('DBS', DBS_PICKUP, DBS_DELIVERY));
    expect(back.code).toBe('NO_CHAIN');
    expect(back.message).toBe(
      'No chain of DBS seller changes leads from PICKUP/PICKUP_SERVICE_RECEIVED to DELIVERY/DELIVERY_SERVICE_RECEIVED. ' +
        'Allowed from here: DELIVERED/DELIVERY_SERVICE_DELIVERED, CANCELLED/SHOP_FAILED, CANCELLED/USER_CHANGED_MIND, CANCELLED/USER_UNREACHABLE, CANCELLED/PICKUP_EXPIRED.',
    );
    // Yandex Delivery has the order: no seller arrow leaves DELIVERY/USER_RECEIVED.
    const yandex = refusal(planChain('DBS', { status: 'DELIVERY', substatus: 'USER_RECEIVED' }, DBS_DELIVERED));
    expect(yandex.code).toBe('NO_CHAIN');
    expect(yandex.message).toContain('No seller change is allowed from here.');
    expect(refusal(planChain('DBS', STARTED, { status: 'DELIVERY', substatus: 'USER_RECEIVED' })).code).toBe('NO_CHAIN');
    // INCORRECT_PERSONAL_DATA is only in PROCESSING's list: not reachable once in DELIVERY.
    expect(refusal(planChain('DBS', DBS_DELIVERY, { status: 'CANCELLED', substatus: 'INCORRECT_PERSONAL_DATA' })).code).toBe('NO_CHAIN');
    expect(refusal(planChain('DBS', DBS_DELIVERED, SHOP_FAILED)).code).toBe('NO_CHAIN');
  });

  it('ALREADY_IN_TARGET: the order is there, or already has the status a target without substatus names', () => {
    const same = refusal(planChain('DBS', DBS_DELIVERY, DBS_DELIVERY));
    expect(same.code).toBe('ALREADY_IN_TARGET');
    expect(same.message).toContain('The order is already DELIVERY/DELIVERY_SERVICE_RECEIVED.');
    expect(same.message).toContain('Allowed from here: PICKUP/PICKUP_SERVICE_RECEIVED');
    expect(refusal(planChain('DBS', { status: 'DELIVERY', substatus: 'USER_RECEIVED' }, { status: 'DELIVERY' })).code).toBe('ALREADY_IN_TARGET');
  });
});

describe('planChain, FBS and EXPRESS: every change is one step', () => {
  for (const model of ['FBS', 'EXPRESS'] as const) {
    it(`${model}: the three documented changes, each a chain of one`, () => {
      expect(ruleIds(planChain(model, STARTED, RTS))).toEqual(['FBS.ready-to-ship']);
      // Straight to CANCELLED, not through READY_TO_SHIP: the shorter chain wins.
      expect(ruleIds(planChain(model, STARTED, SHOP_FAILED))).toEqual(['FBS.cancel-from-started']);
      expect(ruleIds(planChain(model, RTS, SHOP_FAILED))).toEqual(['FBS.cancel-from-ready-to-ship']);
      expect(refusal(planChain(model, RTS, STARTED)).code).toBe('NO_CHAIN');
      expect(refusal(planChain(model, { status: 'PROCESSING', substatus: 'SHIPPED' }, SHOP_FAILED)).code).toBe('NO_CHAIN');
      expect(refusal(planChain(model, STARTED, DBS_DELIVERY)).code).toBe('NO_CHAIN');
    });

    it(`${model}: no plan from any state of the table is longer than one step`, () => {
      const states = SELLER_RULES.filter((r) => r.models.includes(model)).flatMap((r) => [...concreteStates(r.from), r.to]);
      for (const from of states) {
        for (const to of states) {
          const plan = planChain(model, from, to);
          if (plan.ok) expect(plan.steps.length, `${label(from)} → ${label(to)}`).toBe(1);
        }
      }
    });
  }
});

describe('planChain, LAAS', () => {
  it('confirms a draft, cancels it asynchronously in one step, and cancels a confirmed order', () => {
    expect(ruleIds(planChain('LAAS', { status: 'RESERVED' }, STARTED))).toEqual(['LAAS.confirm-draft']);
    expect(ruleIds(planChain('LAAS', { status: 'RESERVED', substatus: 'AWAIT_CONFIRMATION' }, { status: 'PROCESSING' }))).toEqual(['LAAS.confirm-draft']);
    // One async step, not confirm-then-cancel: the shorter chain, and an async step may end it.
    expect(ruleIds(planChain('LAAS', { status: 'RESERVED' }, SHOP_FAILED))).toEqual(['LAAS.cancel-draft']);
    expect(ruleIds(planChain('LAAS', RTS, SHOP_FAILED))).toEqual(['LAAS.cancel']);
    expect(refusal(planChain('LAAS', STARTED, { status: 'RESERVED' })).code).toBe('NO_CHAIN');
    expect(refusal(planChain('LAAS', STARTED, RTS)).code).toBe('NO_CHAIN');
  });
});

describe('planChain over a table of its own (options.rules)', () => {
  const rule = (id: string, from: ChainStart, to: { status: string; substatus: string }, extra: Partial<SellerRule> = {}): SellerRule =>
    ({ id, models: ['DBS'], from, to, source: 'test', ...extra }) as SellerRule;
  const A = { status: 'PROCESSING', substatus: 'STARTED' };
  const B = { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' };
  const C = { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' };
  const D = { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' };
  const plan = (rules: SellerRule[], from: ChainStart, to: ChainTarget) => planChain('DBS', from, to, { rules });

  it('a step that needs call evidence, or is async, ends a chain and is never a middle step', () => {
    for (const finalOnly of [{ requires: 'callEvidence' as const }, { async: true }]) {
      const rules = [rule('a-b', A, B, finalOnly), rule('b-d', B, D)];
      expect(ruleIds(plan(rules, A, B)), JSON.stringify(finalOnly)).toEqual(['a-b']);
      expect(refusal(plan(rules, A, D)).code, JSON.stringify(finalOnly)).toBe('NO_CHAIN');
      // B is reached first by the final-only step, then by a longer way that may go on.
      const detour = [rule('a-b', A, B, finalOnly), rule('a-c', A, C), rule('c-b', C, B), rule('b-d', B, D)];
      expect(ruleIds(plan(detour, A, D)), JSON.stringify(finalOnly)).toEqual(['a-c', 'c-b', 'b-d']);
    }
  });

  it('among chains of equal length, the first by table order wins', () => {
    const viaB = [rule('a-b', A, B), rule('a-c', A, C), rule('b-d', B, D), rule('c-d', C, D)];
    expect(ruleIds(plan(viaB, A, D))).toEqual(['a-b', 'b-d']);
    const viaC = [rule('a-c', A, C), rule('a-b', A, B), rule('b-d', B, D), rule('c-d', C, D)];
    expect(ruleIds(plan(viaC, A, D))).toEqual(['a-c', 'c-d']);
  });

  it('terminates on a cycle that never reaches the target', () => {
    const loop = [rule('a-b', A, B), rule('b-a', B, A)];
    expect(refusal(plan(loop, A, D)).code).toBe('NO_CHAIN');
  });

  it('plans only over the rows of its model', () => {
    const fbsOnly = [{ ...rule('a-b', A, B), models: ['FBS'] as FulfilmentModel[] }];
    expect(refusal(plan(fbsOnly, A, B)).code).toBe('NO_CHAIN');
    expect(ruleIds(planChain('FBS', A, B, { rules: fbsOnly }))).toEqual(['a-b']);
  });
});

describe('planChain and the models', () => {
  it('a model with no rows (a JavaScript caller\'s typo) finds no chain', () => {
    expect(refusal(planChain('FBY' as FulfilmentModel, STARTED, RTS)).code).toBe('NO_CHAIN');
  });

  it('every rule of every model is a chain of one from its own from-state', () => {
    for (const model of FULFILMENT_MODELS) {
      for (const r of SELLER_RULES.filter((x) => x.models.includes(model))) {
        for (const from of concreteStates(r.from)) {
          const plan = planChain(model, from, r.to);
          expect(plan.ok && plan.steps.length, `${model} ${r.id} from ${label(from)}`).toBe(1);
        }
      }
    }
  });
});
