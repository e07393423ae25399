// Multi-step changes: the Market takes one status change at a time, in the order of its
// diagram (DBS: "send statuses in the diagram's order, otherwise you get an error"), so a target
// several seller changes away is reached by a chain of single steps. planChain finds the
// shortest chain in the rules table; explainChain judges each of its steps with
// explainTransition, the one judge of a single step.

import {
  BLOCKER_CODES,
  explainTransition,
  refuse,
  statusLabel,
  type Blocker,
  type Explanation,
  type ExplainOptions,
  type OrderView,
  type TransitionRequest,
} from './explain.js';
import { matchesPattern, SELLER_RULES, type SellerRule, type StatusTarget } from './rules.js';
import { isFulfilmentModel, type FulfilmentModel } from './statuses.js';

/** Where a chain starts: the order's Market status. */
export type ChainStart = Pick<OrderView, 'status' | 'substatus'>;

/** What a chain ends at: `substatus` absent means any state with that status. */
export interface ChainTarget {
  readonly status: string;
  readonly substatus?: string | undefined;
}

/** One step of a plan: the state it sets, and the rule that makes it legal. */
export interface PlannedStep extends StatusTarget {
  readonly ruleId: string;
}

export type ChainPlan =
  | { readonly ok: true; readonly steps: readonly PlannedStep[] }
  | { readonly ok: false; readonly blockers: readonly Blocker[] };

export interface PlanOptions {
  /** The table to plan over: SELLER_RULES, the one every judge reads, unless you check an amended table. */
  readonly rules?: readonly SellerRule[];
}

/**
 * A step only the end of a chain may take. Call evidence is given for the final target (the
 * seller called the buyer about that cancellation), so it cannot vouch for a step after it; an
 * async step's outcome arrives later through an operation, so no next step could be judged from
 * a state that is not there yet.
 */
function endsAChain(rule: SellerRule): boolean {
  return rule.requires !== undefined || rule.async === true;
}

function reaches(state: ChainStart, target: ChainTarget): boolean {
  return state.status === target.status && (target.substatus === undefined || state.substatus === target.substatus);
}

function stateKey(state: ChainStart): string {
  return `${state.status}/${state.substatus ?? ''}`;
}

/**
 * The shortest chain of seller changes that `model` may make from `from` to `target`, each
 * step one rule's `to`; among chains of equal length, the first by table order (rule by rule
 * from the first step). A target one step away is a chain of one. Pure: judges no
 * requirement (call evidence, realDeliveryDate); explainChain does, step by step.
 */
export function planChain(model: FulfilmentModel, from: ChainStart, target: ChainTarget, options: PlanOptions = {}): ChainPlan {
  const ofModel = (options.rules ?? SELLER_RULES).filter((r) => r.models.includes(model));
  const rulesFrom = (state: ChainStart): SellerRule[] => ofModel.filter((r) => matchesPattern(r.from, state.status, state.substatus));
  const fail = (blocker: Blocker): ChainPlan => ({ ok: false, blockers: refuse([blocker], rulesFrom(from).map((r) => r.to)).blockers });
  const here = statusLabel(from.status, from.substatus);
  if (reaches(from, target)) return fail({ code: BLOCKER_CODES.alreadyInTarget, message: `The order is already ${here}.` });

  // Breadth first, each state's rules in table order: the first chain to reach the target is a
  // shortest one, and the first of those by table order. A state reached only by a step that
  // ends a chain is not marked seen, so a longer way through it that may go on stays open.
  let frontier: { state: ChainStart; steps: PlannedStep[] }[] = [{ state: from, steps: [] }];
  const seen = new Set([stateKey(from)]);
  while (frontier.length > 0) {
    const next: typeof frontier = [];
    for (const { state, steps } of frontier) {
      for (const rule of rulesFrom(state)) {
        const chain = [...steps, { ...rule.to, ruleId: rule.id }];
        if (reaches(rule.to, target)) return { ok: true, steps: chain };
        if (endsAChain(rule) || seen.has(stateKey(rule.to))) continue;
        seen.add(stateKey(rule.to));
        next.push({ state: rule.to, steps: chain });
      }
    }
    frontier = next;
  }
  return fail({
    code: BLOCKER_CODES.noChain,
    message: `No chain of ${model} seller changes leads from ${here} to ${statusLabel(target.status, target.substatus)}.`,
  });
}

/** One step of a chain with its own judgement, as explainTransition gives it from `from`. */
export interface JudgedStep {
  readonly from: ChainStart;
  readonly to: StatusTarget;
  readonly ruleId: string;
  readonly verdict: Explanation;
}

export type ChainExplanation =
  | { readonly allowed: true; readonly steps: readonly JudgedStep[] }
  | {
      readonly allowed: false;
      readonly blockers: readonly Blocker[];
      /** What is allowed from the order's state, as explainTransition says. */
      readonly allowedTargets: readonly StatusTarget[];
      /** The plan when one exists and a step of it is refused; otherwise empty. */
      readonly steps: readonly JudgedStep[];
    };

/** The refusals that only say the target is not one step from here: a chain may reach it. */
const NOT_ONE_STEP: ReadonlySet<string> = new Set([
  BLOCKER_CODES.notFromCurrentState,
  BLOCKER_CODES.missingSubstatus,
  BLOCKER_CODES.wrongSubstatus,
]);

/**
 * Whether `target` can be reached from `order` by a chain of seller changes, each judged by
 * explainTransition from the state the step before reached. A target one step away gives
 * explainTransition's answer as a chain of one; a refusal for any reason other than "not one
 * step from here" (a pending change, a final state, an unknown value, another model's change,
 * an unmet requirement of the direct step) refuses the chain with the same blockers. The
 * request's call evidence and realDeliveryDate go to the last step only: evidence is about the
 * final cancellation, and realDeliveryDate is taken by the step that delivers (or reaches the
 * pickup point) last.
 */
export function explainChain(
  order: OrderView,
  target: TransitionRequest,
  model: string,
  options: ExplainOptions = {},
): ChainExplanation {
  const single = explainTransition(order, target, model, options);
  const from: ChainStart = { status: order.status, substatus: order.substatus };
  if (single.allowed) return { allowed: true, steps: [{ from, to: single.rule.to, ruleId: single.rule.id, verdict: single }] };
  // isFulfilmentModel only narrows the type: explainTransition refused an unknown model already.
  if (!isFulfilmentModel(model) || !single.blockers.every((b) => NOT_ONE_STEP.has(b.code))) return { ...single, steps: [] };
  const plan = planChain(model, from, target);
  if (!plan.ok) return { ...single, blockers: [...single.blockers, ...plan.blockers], steps: [] };

  const { callEvidence, realDeliveryDate } = target;
  const steps: JudgedStep[] = [];
  const blockers: Blocker[] = [];
  let at = from;
  for (const [i, step] of plan.steps.entries()) {
    const to: StatusTarget = { status: step.status, substatus: step.substatus };
    const request: TransitionRequest = i === plan.steps.length - 1 ? { ...to, callEvidence, realDeliveryDate } : to;
    const verdict = explainTransition(at, request, model, options);
    // The first refused step says why the chain is refused; the later ones are judged as if it passed.
    if (!verdict.allowed && blockers.length === 0) {
      const prefix = `Step ${i + 1} of ${plan.steps.length} (${step.ruleId}, from ${statusLabel(at.status, at.substatus)}):`;
      blockers.push(...verdict.blockers.map((b) => ({ ...b, message: `${prefix} ${b.message}`, step: i + 1, ruleId: step.ruleId })));
    }
    steps.push({ from: at, to, ruleId: step.ruleId, verdict });
    at = to;
  }
  return blockers.length === 0 ? { allowed: true, steps } : { allowed: false, blockers, allowedTargets: single.allowedTargets, steps };
}
