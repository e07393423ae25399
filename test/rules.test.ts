// Every row of SELLER_RULES, for every fulfilment model, both ways: the models in the row may
// make the change from a concrete state matching `from`; the others are refused with the
// blocker code that the table implies (derived here from the table's data, independently of
// explain.ts), and every refusal names what IS allowed from the current state.

import { describe, expect, it } from 'vitest';
import { explainTransition, type Explanation } from '../machines/explain.js';
import {
  SELLER_RULES,
  TERMINAL_STATUSES,
  findSellerRule,
  isTerminalStatus,
  rulesFrom,
  sellerTargets,
  type SellerRule,
  type StatusTarget,
} from '../machines/rules.js';
import { FULFILMENT_MODELS, isKnownStatus, isKnownSubstatus, type FulfilmentModel } from '../machines/statuses.js';
import { VALID_CALL_EVIDENCE, concreteStates, label, type ConcreteState } from './helpers/machine-fixtures.js';

// ---- an independent oracle over the table's data --------------------------------------------

function matches(rule: SellerRule, state: ConcreteState): boolean {
  return rule.from.status === state.status && (rule.from.substatus === undefined || rule.from.substatus === state.substatus);
}

function sameTarget(a: StatusTarget, b: StatusTarget): boolean {
  return a.status === b.status && a.substatus === b.substatus;
}

/** Targets `model` may set from `state`, deduplicated, in table order. */
function expectedAllowedTargets(model: FulfilmentModel, state: ConcreteState): StatusTarget[] {
  const out: StatusTarget[] = [];
  for (const r of SELLER_RULES) {
    if (r.models.includes(model) && matches(r, state) && !out.some((t) => sameTarget(t, r.to))) out.push(r.to);
  }
  return out;
}

type Expected =
  | { allowed: true; ruleId: string }
  | { allowed: false; code: 'FORBIDDEN_FOR_MODEL' | 'NOT_FROM_CURRENT_STATE' | 'WRONG_SUBSTATUS' };

/**
 * What a request for `target` from `state` under `model` must give:
 *  - allowed, if some rule of the model goes from this state to exactly this target;
 *  - FORBIDDEN_FOR_MODEL if no rule of the model sets this target from anywhere;
 *  - otherwise the model sets it from elsewhere: WRONG_SUBSTATUS when the model can set the
 *    same status with another substatus from here, else NOT_FROM_CURRENT_STATE.
 */
function expectedFor(model: FulfilmentModel, state: ConcreteState, target: StatusTarget): Expected {
  const here = SELLER_RULES.find((r) => r.models.includes(model) && matches(r, state) && sameTarget(r.to, target));
  if (here) return { allowed: true, ruleId: here.id };
  const setsTargetSomewhere = SELLER_RULES.some((r) => r.models.includes(model) && sameTarget(r.to, target));
  if (!setsTargetSomewhere) return { allowed: false, code: 'FORBIDDEN_FOR_MODEL' };
  const sameStatusHere = SELLER_RULES.some((r) => r.models.includes(model) && matches(r, state) && r.to.status === target.status);
  return { allowed: false, code: sameStatusHere ? 'WRONG_SUBSTATUS' : 'NOT_FROM_CURRENT_STATE' };
}

function requestFor(rule: SellerRule) {
  return {
    status: rule.to.status,
    substatus: rule.to.substatus,
    ...(rule.requires === 'callEvidence' ? { callEvidence: VALID_CALL_EVIDENCE } : {}),
  };
}

function expectRefusalNamesAllowed(result: Explanation, model: FulfilmentModel, state: ConcreteState): void {
  if (result.allowed) throw new Error('expected a refusal');
  const allowed = expectedAllowedTargets(model, state);
  expect(result.allowedTargets).toEqual(allowed);
  const hint =
    allowed.length === 0
      ? 'No seller change is allowed from here.'
      : `Allowed from here: ${allowed.map((t) => `${t.status}/${t.substatus}`).join(', ')}.`;
  for (const b of result.blockers) expect(b.message.endsWith(hint)).toBe(true);
}

// ---- the table itself --------------------------------------------------------------------

describe('SELLER_RULES, the table', () => {
  it('has unique ids, known statuses and substatuses, known models and a source on every row', () => {
    const ids = SELLER_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of SELLER_RULES) {
      expect(r.models.length, r.id).toBeGreaterThan(0);
      for (const m of r.models) expect(FULFILMENT_MODELS, r.id).toContain(m);
      expect(isKnownStatus(r.from.status), r.id).toBe(true);
      if (r.from.substatus !== undefined) expect(isKnownSubstatus(r.from.substatus), r.id).toBe(true);
      expect(isKnownStatus(r.to.status), r.id).toBe(true);
      expect(isKnownSubstatus(r.to.substatus), r.id).toBe(true);
      expect(r.source.length, r.id).toBeGreaterThan(0);
      expect(isTerminalStatus(r.from.status), `${r.id} starts from a terminal status`).toBe(false);
    }
  });

  it('has no two rows of one model with the same from and to (each change has one rule)', () => {
    for (const model of FULFILMENT_MODELS) {
      const keys = SELLER_RULES.filter((r) => r.models.includes(model)).map(
        (r) => `${r.from.status}/${r.from.substatus ?? '*'}→${r.to.status}/${r.to.substatus}`,
      );
      expect(new Set(keys).size, model).toBe(keys.length);
    }
  });

  it('holds the documented changes', () => {
    const fbs = (from: string, to: string) =>
      findSellerRule('FBS', { status: 'PROCESSING', substatus: from }, { status: to.split('/')[0]!, substatus: to.split('/')[1] });
    expect(fbs('STARTED', 'PROCESSING/READY_TO_SHIP')?.id).toBe('FBS.ready-to-ship');
    expect(fbs('STARTED', 'CANCELLED/SHOP_FAILED')?.id).toBe('FBS.cancel-from-started');
    expect(fbs('READY_TO_SHIP', 'CANCELLED/SHOP_FAILED')?.id).toBe('FBS.cancel-from-ready-to-ship');
    expect(fbs('READY_TO_SHIP', 'PROCESSING/STARTED')).toBeUndefined();
    expect(fbs('SHIPPED', 'CANCELLED/SHOP_FAILED')).toBeUndefined();
    // Express follows FBS.
    expect(findSellerRule('EXPRESS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' })?.id).toBe('FBS.ready-to-ship');
    // Only USER_UNREACHABLE rows need call evidence; LaaS cancellations are async.
    expect(SELLER_RULES.filter((r) => r.requires === 'callEvidence').every((r) => r.to.substatus === 'USER_UNREACHABLE')).toBe(true);
    expect(SELLER_RULES.filter((r) => r.to.substatus === 'USER_UNREACHABLE').every((r) => r.requires === 'callEvidence')).toBe(true);
    expect(SELLER_RULES.filter((r) => r.async).map((r) => r.id).sort()).toEqual(['LAAS.cancel', 'LAAS.cancel-draft']);
    expect(SELLER_RULES.filter((r) => r.acceptsRealDeliveryDate).every((r) => r.models.join() === 'DBS')).toBe(true);
  });

  it('rulesFrom and sellerTargets agree with the rows', () => {
    expect(rulesFrom('FBS', 'PROCESSING', 'STARTED').map((r) => r.id)).toEqual(['FBS.ready-to-ship', 'FBS.cancel-from-started']);
    expect(rulesFrom('LAAS', 'PROCESSING', 'STARTED').map((r) => r.id)).toEqual(['LAAS.cancel']);
    expect(rulesFrom('DBS', 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED')).toEqual([]);
    expect(sellerTargets('FBS')).toEqual([
      { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
      { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    ]);
    expect(sellerTargets('LAAS').map((t) => label(t)).sort()).toEqual(['CANCELLED/SHOP_FAILED', 'PROCESSING/STARTED']);
    expect(sellerTargets('DBS').map((t) => label(t))).toEqual(
      expect.arrayContaining(['DELIVERY/DELIVERY_SERVICE_RECEIVED', 'PICKUP/PICKUP_SERVICE_RECEIVED', 'DELIVERED/DELIVERY_SERVICE_DELIVERED', 'CANCELLED/USER_UNREACHABLE']),
    );
    for (const model of FULFILMENT_MODELS) {
      for (const t of sellerTargets(model)) {
        expect(SELLER_RULES.some((r) => r.models.includes(model) && sameTarget(r.to, t))).toBe(true);
      }
    }
  });

  it('names the terminal statuses', () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual(['CANCELLED', 'DELIVERED', 'PARTIALLY_RETURNED', 'RETURNED']);
  });
});

// ---- every row × every model ----------------------------------------------------------------

describe.each(SELLER_RULES.map((rule) => [rule.id, rule] as const))('rule %s', (_id, rule) => {
  for (const model of FULFILMENT_MODELS) {
    const inRow = rule.models.includes(model);
    for (const state of concreteStates(rule.from)) {
      if (inRow) {
        it(`${model}: allowed from ${label(state)} to ${label(rule.to)}`, () => {
          const result = explainTransition(state, requestFor(rule), model);
          expect(result).toEqual({ allowed: true, rule });
          if (result.allowed) expect(result.rule).toBe(rule);
        });
        if (rule.requires === 'callEvidence') {
          it(`${model}: refused from ${label(state)} without call evidence (CALL_EVIDENCE_INSUFFICIENT)`, () => {
            const result = explainTransition(state, { status: rule.to.status, substatus: rule.to.substatus }, model);
            expect(result.allowed).toBe(false);
            if (result.allowed) return;
            expect(result.blockers.map((b) => b.code)).toEqual(['CALL_EVIDENCE_INSUFFICIENT']);
            // The change is still listed as allowed from here: it only lacks its evidence.
            expect(result.allowedTargets).toContainEqual(rule.to);
            expectRefusalNamesAllowed(result, model, state);
          });
        }
      } else {
        const expected = expectedFor(model, state, rule.to);
        const what = expected.allowed ? `allowed by ${expected.ruleId}` : `refused with ${expected.code}`;
        it(`${model} (not in the row): ${label(state)} → ${label(rule.to)} is ${what}`, () => {
          const result = explainTransition(state, requestFor(rule), model);
          if (expected.allowed) {
            expect(result.allowed).toBe(true);
            if (result.allowed) expect(result.rule.id).toBe(expected.ruleId);
            return;
          }
          expect(result.allowed).toBe(false);
          if (result.allowed) return;
          expect(result.blockers.map((b) => b.code)).toEqual([expected.code]);
          expectRefusalNamesAllowed(result, model, state);
          if (expected.code === 'FORBIDDEN_FOR_MODEL') {
            const modelsAllowed = [...new Set(SELLER_RULES.filter((r) => sameTarget(r.to, rule.to)).flatMap((r) => r.models))];
            expect(result.blockers[0]!['modelsAllowed']).toEqual(modelsAllowed);
            expect(result.blockers[0]!.message).toContain(`not for ${model}`);
          }
        });
      }
    }
  }
});

// ---- explicit cross-model expectations, written out by hand --------------------------------

describe('cross-model cases, by hand', () => {
  const cases: Array<[FulfilmentModel, ConcreteState, StatusTarget, string]> = [
    ['LAAS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, 'FORBIDDEN_FOR_MODEL'],
    ['FBS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, 'FORBIDDEN_FOR_MODEL'],
    ['EXPRESS', { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' }, 'FORBIDDEN_FOR_MODEL'],
    ['FBS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' }, 'FORBIDDEN_FOR_MODEL'],
    ['LAAS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' }, 'FORBIDDEN_FOR_MODEL'],
    ['DBS', { status: 'RESERVED' }, { status: 'PROCESSING', substatus: 'STARTED' }, 'FORBIDDEN_FOR_MODEL'],
    ['FBS', { status: 'RESERVED' }, { status: 'PROCESSING', substatus: 'STARTED' }, 'FORBIDDEN_FOR_MODEL'],
    ['FBS', { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'NOT_FROM_CURRENT_STATE'],
    ['LAAS', { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'NOT_FROM_CURRENT_STATE'],
    ['FBS', { status: 'RESERVED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'NOT_FROM_CURRENT_STATE'],
    ['DBS', { status: 'RESERVED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'NOT_FROM_CURRENT_STATE'],
    ['FBS', { status: 'PROCESSING', substatus: 'SHIPPED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'NOT_FROM_CURRENT_STATE'],
    // The DBS model has no READY_TO_SHIP (NOTES.md §d2): it is an FBS/Express change.
    ['DBS', { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, 'FORBIDDEN_FOR_MODEL'],
    ['DBS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, 'FORBIDDEN_FOR_MODEL'],
    // DBS edges start from the diagram's substatuses only.
    ['DBS', { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, 'NOT_FROM_CURRENT_STATE'],
    ['DBS', { status: 'DELIVERY', substatus: 'COURIER_RECEIVED' }, { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }, 'NOT_FROM_CURRENT_STATE'],
    ['DBS', { status: 'DELIVERY', substatus: 'USER_RECEIVED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'NOT_FROM_CURRENT_STATE'],
    ['DBS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'CANCELLED', substatus: 'PICKUP_EXPIRED' }, 'WRONG_SUBSTATUS'],
    ['DBS', { status: 'DELIVERY', substatus: 'DELIVERY_USER_NOT_RECEIVED' }, { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }, 'allowed:DBS.deliver-after-arbitration'],
    ['DBS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' }, 'NOT_FROM_CURRENT_STATE'],
    ['DBS', { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' }, { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, 'NOT_FROM_CURRENT_STATE'],
    ['FBS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'allowed:FBS.cancel-from-started'],
    ['DBS', { status: 'PROCESSING', substatus: 'STARTED' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'allowed:DBS.cancel-shop-failed-from-processing'],
    ['LAAS', { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, 'allowed:LAAS.cancel'],
  ];
  it.each(cases)('%s: %o → %o gives %s', (model, state, target, expected) => {
    const result = explainTransition(state, target, model);
    if (expected.startsWith('allowed:')) {
      expect(result.allowed).toBe(true);
      if (result.allowed) expect(result.rule.id).toBe(expected.slice('allowed:'.length));
      return;
    }
    expect(result.allowed).toBe(false);
    if (!result.allowed) expect(result.blockers.map((b) => b.code)).toEqual([expected]);
  });

  it('the oracle agrees with the hand-written cases', () => {
    for (const [model, state, target, expected] of cases) {
      const e = expectedFor(model, state, target);
      expect(e.allowed ? `allowed:${e.ruleId}` : e.code).toBe(expected);
    }
  });
});
