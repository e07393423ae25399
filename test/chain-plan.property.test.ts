// Properties of planChain and explainChain over random (model, from, target) drawn from the
// states the rules table names (plus final, Market-only and unknown ones), checked against
// two oracles that share no code with the planner: explainTransition, step by step, and a
// brute-force enumeration of every rule sequence up to a depth, in table order.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { explainChain, planChain, type ChainStart, type ChainTarget } from '../machines/chain-plan.js';
import { explainTransition, type TransitionRequest } from '../machines/explain.js';
import { SELLER_RULES, type SellerRule } from '../machines/rules.js';
import { FULFILMENT_MODELS, type FulfilmentModel } from '../machines/statuses.js';
import { VALID_CALL_EVIDENCE, concreteStates, label } from './helpers/machine-fixtures.js';

const NUM_RUNS = 2_000;

// ---- the universe: states the table names, and some it does not ------------------------------

function uniqueBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  return [...new Map(items.map((t) => [key(t), t])).values()];
}

const stateKey = (s: ChainStart): string => `${s.status}/${s.substatus ?? ''}`;

const STATES: ChainStart[] = uniqueBy(
  [
    ...SELLER_RULES.flatMap((r) => [...concreteStates(r.from), r.to]),
    { status: 'DELIVERED', substatus: 'DELIVERED_USER_NOT_RECEIVED' },
    { status: 'RETURNED', substatus: 'UNKNOWN' },
    { status: 'PLACING' },
    { status: 'HOLOGRAPHIC', substatus: 'STARTED' },
  ],
  stateKey,
);

const TARGETS: ChainTarget[] = uniqueBy(
  [
    ...STATES,
    // Targets without a substatus: any state with that status.
    ...[...new Set(STATES.map((s) => s.status))].map((status) => ({ status })),
    { status: 'CANCELLED', substatus: 'USER_NOT_PAID' },
  ],
  stateKey,
);

// ---- the oracles ------------------------------------------------------------------------------

function reaches(state: ChainStart, target: ChainTarget): boolean {
  return state.status === target.status && (target.substatus === undefined || state.substatus === target.substatus);
}

function applies(rule: SellerRule, model: FulfilmentModel, state: ChainStart): boolean {
  return rule.models.includes(model) && rule.from.status === state.status && (rule.from.substatus === undefined || rule.from.substatus === state.substatus);
}

const endsAChain = (rule: SellerRule): boolean => rule.requires !== undefined || rule.async === true;

/**
 * Every rule sequence of exactly `depth` steps from `from`, in table order (depth first), in
 * which only the last step may need evidence or be async; the first that ends at the target.
 */
function firstChainOfLength(model: FulfilmentModel, from: ChainStart, target: ChainTarget, depth: number): SellerRule[] | undefined {
  if (depth === 0) return reaches(from, target) ? [] : undefined;
  for (const rule of SELLER_RULES) {
    if (!applies(rule, model, from)) continue;
    if (depth > 1 && endsAChain(rule)) continue;
    const rest = firstChainOfLength(model, rule.to, target, depth - 1);
    if (rest !== undefined) return [rule, ...rest];
  }
  return undefined;
}

/** A shortest chain never visits a state twice, so it has at most as many steps as the model has states. */
function depthBound(model: FulfilmentModel): number {
  return new Set(SELLER_RULES.filter((r) => r.models.includes(model)).flatMap((r) => [stateKey(r.from), stateKey(r.to)])).size;
}

function bruteForceShortest(model: FulfilmentModel, from: ChainStart, target: ChainTarget, maxDepth: number): SellerRule[] | undefined {
  for (let depth = 1; depth <= maxDepth; depth++) {
    const chain = firstChainOfLength(model, from, target, depth);
    if (chain !== undefined) return chain;
  }
  return undefined;
}

/** The request a step sends: the last step carries the evidence its rule needs. */
function stepRequest(step: { status: string; substatus: string }, rule: SellerRule | undefined): TransitionRequest {
  return rule?.requires === 'callEvidence' ? { ...step, callEvidence: VALID_CALL_EVIDENCE } : step;
}

const ruleById = new Map(SELLER_RULES.map((r) => [r.id, r]));

const cases = fc.record({
  model: fc.constantFrom(...FULFILMENT_MODELS),
  from: fc.constantFrom(...STATES),
  target: fc.constantFrom(...TARGETS),
});

describe('planChain, against explainTransition and a brute-force search', () => {
  it('finds that the universe has multi-step targets, NO_CHAIN and ALREADY_IN_TARGET cases (the properties below are not vacuous)', () => {
    const lengths = new Set<number>();
    const codes = new Set<string>();
    for (const model of FULFILMENT_MODELS) {
      for (const from of STATES) {
        for (const target of TARGETS) {
          const plan = planChain(model, from, target);
          if (plan.ok) lengths.add(plan.steps.length);
          else for (const b of plan.blockers) codes.add(b.code);
        }
      }
    }
    expect([...lengths].sort()).toEqual([1, 2, 3]);
    expect([...codes].sort()).toEqual(['ALREADY_IN_TARGET', 'NO_CHAIN']);
  });

  it('every chain is legal step by step, ends at the target, is a shortest one and the first of those by table order', () => {
    fc.assert(
      fc.property(cases, ({ model, from, target }) => {
        const plan = planChain(model, from, target);
        const brute = reaches(from, target) ? [] : bruteForceShortest(model, from, target, depthBound(model));
        const context = `${model} ${label(from)} → ${label(target)}`;
        if (!plan.ok) {
          expect(plan.blockers.map((b) => b.code), context).toEqual([reaches(from, target) ? 'ALREADY_IN_TARGET' : 'NO_CHAIN']);
          // NO_CHAIN iff the brute force finds none.
          expect(brute, context).toEqual(reaches(from, target) ? [] : undefined);
          return;
        }
        expect(plan.steps.length, context).toBeGreaterThanOrEqual(1);
        let at: ChainStart = from;
        for (const [i, step] of plan.steps.entries()) {
          const rule = ruleById.get(step.ruleId);
          const verdict = explainTransition(at, stepRequest(step, rule), model);
          expect(verdict.allowed && verdict.rule.id, `${context}, step ${i + 1}`).toBe(step.ruleId);
          if (i < plan.steps.length - 1) expect(rule !== undefined && endsAChain(rule), `${context}, step ${i + 1} ends a chain`).toBe(false);
          at = step;
        }
        expect(reaches(at, target), context).toBe(true);
        // No shorter chain exists, and among the shortest the plan is the first by table order.
        expect(bruteForceShortest(model, from, target, plan.steps.length - 1), context).toBeUndefined();
        expect(brute?.map((r) => r.id), context).toEqual(plan.steps.map((s) => s.ruleId));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('explainChain, against explainTransition and planChain', () => {
  const NOT_ONE_STEP = ['NOT_FROM_CURRENT_STATE', 'MISSING_SUBSTATUS', 'WRONG_SUBSTATUS'];

  it('keeps explainTransition\'s answer for one step, refuses with its blockers for other reasons, and otherwise judges the plan step by step', () => {
    fc.assert(
      fc.property(cases, fc.boolean(), ({ model, from, target }, withEvidence) => {
        const request: TransitionRequest = withEvidence ? { ...target, callEvidence: VALID_CALL_EVIDENCE } : target;
        const single = explainTransition(from, request, model);
        const chain = explainChain(from, request, model);
        const context = `${model} ${label(from)} → ${label(target)}${withEvidence ? ' (evidence)' : ''}`;
        if (single.allowed) {
          expect(chain, context).toEqual({ allowed: true, steps: [{ from, to: single.rule.to, ruleId: single.rule.id, verdict: single }] });
          return;
        }
        if (!single.blockers.every((b) => NOT_ONE_STEP.includes(b.code))) {
          expect(chain, context).toEqual({ ...single, steps: [] });
          return;
        }
        const plan = planChain(model, from, target);
        if (!plan.ok) {
          expect(chain, context).toEqual({ ...single, blockers: [...single.blockers, ...plan.blockers], steps: [] });
          return;
        }
        expect(chain.steps.map((s) => ({ ...s.to, ruleId: s.ruleId })), context).toEqual(plan.steps);
        expect(chain.allowed, context).toBe(chain.steps.every((s) => s.verdict.allowed));
        // A refused chain says why with the first refused step's blockers, naming that step.
        const first = chain.steps.findIndex((s) => !s.verdict.allowed);
        const firstVerdict = chain.steps[first]?.verdict;
        if (!chain.allowed && firstVerdict !== undefined && !firstVerdict.allowed) {
          expect(chain.blockers.map((b) => [b.code, b['step']]), context).toEqual(firstVerdict.blockers.map((b) => [b.code, first + 1]));
          expect(chain.allowedTargets, context).toEqual(single.allowedTargets);
        }
        // Each step starts where the one before ended.
        expect(chain.steps.map((s) => s.from), context).toEqual([{ status: from.status, substatus: from.substatus }, ...chain.steps.slice(0, -1).map((s) => s.to)]);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
