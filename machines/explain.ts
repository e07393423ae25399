// "Why not" as data: a refusal is a list of blockers with stable codes, each saying what
// is wrong, plus the changes that ARE allowed from the order's current state.

import { checkCallEvidence, type CallEvidence } from './call-evidence.js';
import { isFulfilmentModel, isKnownStatus, isKnownSubstatus, type FulfilmentModel } from './statuses.js';
import {
  findSellerRule,
  isTerminalStatus,
  rulesFrom,
  SELLER_RULES,
  RULE_REQUIREMENTS,
  type SellerRule,
  type StatusTarget,
} from './rules.js';

export const BLOCKER_CODES = {
  unknownModel: 'UNKNOWN_MODEL',
  unknownStatus: 'UNKNOWN_STATUS',
  unknownTarget: 'UNKNOWN_TARGET',
  terminalState: 'TERMINAL_STATE',
  alreadyInTarget: 'ALREADY_IN_TARGET',
  changePending: 'CHANGE_PENDING',
  notASellerChange: 'NOT_A_SELLER_CHANGE',
  forbiddenForModel: 'FORBIDDEN_FOR_MODEL',
  notFromCurrentState: 'NOT_FROM_CURRENT_STATE',
  missingSubstatus: 'MISSING_SUBSTATUS',
  wrongSubstatus: 'WRONG_SUBSTATUS',
  callEvidenceMissing: 'CALL_EVIDENCE_INSUFFICIENT',
  callEvidenceInvalid: 'CALL_EVIDENCE_INVALID',
  realDeliveryDateNotAccepted: 'REAL_DELIVERY_DATE_NOT_ACCEPTED',
  realDeliveryDateInvalid: 'REAL_DELIVERY_DATE_INVALID',
  /** planChain: no chain of seller changes leads from the order's state to the target. */
  noChain: 'NO_CHAIN',
} as const;
export type BlockerCode = (typeof BLOCKER_CODES)[keyof typeof BLOCKER_CODES];

export interface Blocker {
  readonly code: BlockerCode;
  readonly message: string;
  readonly [field: string]: unknown;
}

/** What explainTransition needs to know of an order. */
export interface OrderView {
  readonly status: string;
  readonly substatus?: string | undefined;
  /** The seller change already on its way, if any. */
  readonly pending?: { readonly status: string; readonly substatus?: string | undefined } | null | undefined;
}

export interface TransitionRequest {
  readonly status: string;
  readonly substatus?: string | undefined;
  /** Required for CANCELLED/USER_UNREACHABLE. */
  readonly callEvidence?: CallEvidence | undefined;
  /** DBS only, moving to PICKUP or DELIVERED: `YYYY-MM-DD`, not in the future. */
  readonly realDeliveryDate?: string | undefined;
}

export interface ExplainOptions {
  /** Epoch ms used to refuse a realDeliveryDate in the future; without it that check is skipped. */
  readonly now?: number;
}

export type Explanation =
  | { readonly allowed: true; readonly rule: SellerRule }
  | { readonly allowed: false; readonly blockers: readonly Blocker[]; readonly allowedTargets: readonly StatusTarget[] };

export type RefusedExplanation = Extract<Explanation, { allowed: false }>;

const REAL_DELIVERY_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** `YYYY-MM-DD` naming a real day: Date.parse alone rolls 2025-02-30 over to March 2. */
function isCalendarDate(value: string): boolean {
  if (!REAL_DELIVERY_DATE.test(value)) return false;
  const ms = Date.parse(value);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

// The Market's dates are Moscow dates (UTC+03:00, no daylight saving): "not in the future"
// means not after today in Moscow, whatever the zone of the machine running this.
const MOSCOW_OFFSET_MS = 3 * 60 * 60 * 1000;

function marketToday(now: number): string {
  return new Date(now + MOSCOW_OFFSET_MS).toISOString().slice(0, 10);
}

/** `STATUS/SUBSTATUS`, or the status alone when it has no substatus. */
export function statusLabel(status: string, substatus?: string): string {
  return substatus === undefined ? status : `${status}/${substatus}`;
}

function describeAllowed(targets: readonly StatusTarget[]): string {
  return targets.length === 0
    ? 'No seller change is allowed from here.'
    : `Allowed from here: ${targets.map((t) => statusLabel(t.status, t.substatus)).join(', ')}.`;
}

/** A refusal whose every blocker's message ends with what IS allowed from the order's state. */
export function refuse(blockers: readonly Blocker[], allowedTargets: readonly StatusTarget[]): RefusedExplanation {
  const hint = describeAllowed(allowedTargets);
  return {
    allowed: false,
    blockers: blockers.map((b) => ({ ...b, message: `${b.message} ${hint}` })),
    allowedTargets,
  };
}

/** Why the request cannot be made when the order is where it is, judged by rules alone. */
function ruleBlocker(model: FulfilmentModel, order: OrderView, target: TransitionRequest): Blocker {
  const here = statusLabel(order.status, order.substatus);
  const wanted = statusLabel(target.status, target.substatus);
  const anyRuleToTarget = (r: SellerRule): boolean =>
    r.to.status === target.status && (target.substatus === undefined || r.to.substatus === target.substatus);
  const modelSetsTarget = SELLER_RULES.some((r) => r.models.includes(model) && anyRuleToTarget(r));
  const otherModels = [...new Set(SELLER_RULES.filter(anyRuleToTarget).flatMap((r) => r.models))];
  const forbiddenForModel: Blocker = {
    code: BLOCKER_CODES.forbiddenForModel,
    message: `${wanted} is a seller change for ${otherModels.join(', ')}, not for ${model}.`,
    modelsAllowed: otherModels,
  };
  // A change this model never makes, from any state, is refused for the model, not for the
  // substatus: e.g. an FBS seller asking for CANCELLED/USER_CHANGED_MIND (a DBS-only reason).
  if (target.substatus !== undefined && !modelSetsTarget && otherModels.length > 0) return forbiddenForModel;
  const sameStatusRules = rulesFrom(model, order.status, order.substatus).filter((r) => r.to.status === target.status);
  if (sameStatusRules.length > 0) {
    const substatuses = sameStatusRules.map((r) => r.to.substatus);
    return target.substatus === undefined
      ? {
          code: BLOCKER_CODES.missingSubstatus,
          message: `${target.status} needs a substatus here; one of ${substatuses.join(', ')}.`,
          expectedSubstatuses: substatuses,
        }
      : {
          code: BLOCKER_CODES.wrongSubstatus,
          message: `${target.status} cannot be set with substatus ${target.substatus} from ${here}; one of ${substatuses.join(', ')}.`,
          expectedSubstatuses: substatuses,
        };
  }
  if (modelSetsTarget) {
    return {
      code: BLOCKER_CODES.notFromCurrentState,
      message: `${model} sellers may set ${wanted}, but not from ${here}.`,
    };
  }
  if (otherModels.length > 0) return forbiddenForModel;
  return { code: BLOCKER_CODES.notASellerChange, message: `${wanted} is set by the Market, never by the seller.` };
}

function requirementBlockers(rule: SellerRule, target: TransitionRequest, options: ExplainOptions): Blocker[] {
  const blockers: Blocker[] = [];
  if (rule.requires === RULE_REQUIREMENTS.callEvidence) {
    const problem = checkCallEvidence(target.callEvidence);
    if (problem !== undefined) blockers.push({ ...problem });
  }
  if (target.realDeliveryDate !== undefined) {
    if (!rule.acceptsRealDeliveryDate) {
      blockers.push({
        code: BLOCKER_CODES.realDeliveryDateNotAccepted,
        message: `realDeliveryDate is only sent by DBS shops moving an order to PICKUP or DELIVERED (rule ${rule.id} does not take it).`,
      });
    } else if (!isCalendarDate(target.realDeliveryDate)) {
      blockers.push({
        code: BLOCKER_CODES.realDeliveryDateInvalid,
        message: `realDeliveryDate "${target.realDeliveryDate}" is not a YYYY-MM-DD date.`,
      });
    } else if (options.now !== undefined && target.realDeliveryDate > marketToday(options.now)) {
      blockers.push({
        code: BLOCKER_CODES.realDeliveryDateInvalid,
        message: `realDeliveryDate ${target.realDeliveryDate} is in the future; the Market refuses it.`,
      });
    }
  }
  return blockers;
}

/** The seller changes `model` may make from the order's state, with the rule behind each. */
export function allowedTargets(order: OrderView, model: FulfilmentModel): StatusTarget[] {
  if (isTerminalStatus(order.status)) return [];
  return rulesFrom(model, order.status, order.substatus).map((r) => r.to);
}

/**
 * Whether a seller may ask the Market to move `order` to `target` under `model`, and if not,
 * every reason why. Pure: no I/O and no clock (pass `options.now` to check dates).
 */
export function explainTransition(
  order: OrderView,
  target: TransitionRequest,
  model: string,
  options: ExplainOptions = {},
): Explanation {
  if (!isFulfilmentModel(model)) {
    return refuse(
      [{ code: BLOCKER_CODES.unknownModel, message: `Unknown fulfilment model "${model}"; expected FBS, EXPRESS, DBS or LAAS.` }],
      [],
    );
  }
  // Listed only for a refusal: a request that is allowed needs no list of the alternatives.
  const allowed = () => allowedTargets(order, model);
  const blockers: Blocker[] = [];
  if (!isKnownStatus(order.status)) {
    blockers.push({
      code: BLOCKER_CODES.unknownStatus,
      message: `The order is in status "${order.status}", which the engine does not know; no seller change is judged safe from it until the Market reports a known status.`,
    });
  }
  if (!isKnownStatus(target.status) || (target.substatus !== undefined && !isKnownSubstatus(target.substatus))) {
    blockers.push({
      code: BLOCKER_CODES.unknownTarget,
      message: `${statusLabel(target.status, target.substatus)} is not a status/substatus of the Market API.`,
    });
  }
  if (order.pending) {
    blockers.push({
      code: BLOCKER_CODES.changePending,
      message: `A change to ${statusLabel(order.pending.status, order.pending.substatus)} is already pending; wait for its outcome.`,
      pending: { status: order.pending.status, substatus: order.pending.substatus },
    });
  }
  if (blockers.length > 0) return refuse(blockers, allowed());

  if (order.status === target.status && order.substatus === target.substatus) {
    return refuse([{ code: BLOCKER_CODES.alreadyInTarget, message: `The order is already ${statusLabel(order.status, order.substatus)}.` }], allowed());
  }
  if (isTerminalStatus(order.status)) {
    return refuse(
      [{ code: BLOCKER_CODES.terminalState, message: `The order is ${statusLabel(order.status, order.substatus)}, a final state for the seller.` }],
      [],
    );
  }
  const rule = findSellerRule(model, order, target);
  if (rule === undefined) return refuse([ruleBlocker(model, order, target)], allowed());
  const unmet = requirementBlockers(rule, target, options);
  return unmet.length > 0 ? refuse(unmet, allowed()) : { allowed: true, rule };
}
