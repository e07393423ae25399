// The order machine: two parallel regions.
//  - `market` mirrors the order's status at the Market. Every observation routes through the
//    transient `routing` state, whose `always` table picks the state for the observed status,
//    so the Market can move the order from anywhere (it is the source of truth) and one table
//    serves the initial state, observations and accepted changes alike.
//  - `change` is the seller's pending change: idle → queued → sending → (awaitingOperation |
//    uncertain) → idle, ending accepted, rejected or superseded. A multi-step change (a chain,
//    `context.chain`) is a plan of such changes: each accepted step queues the next in the same
//    transition, until the last is accepted or the chain stops.
//  - `cancellation` is a DBS buyer's cancellation request (none / requested) and, while it is
//    open, the seller's answer to it, sent with the same exactly-once rules as a change:
//    unanswered → queued → sending → (uncertain) → closed, or back to unanswered.
// No I/O and no clock: time arrives in events (`at`, `observedAt`), and effects are named
// `effect.*` actions that `transition()` returns for the engine to carry out.

import { assign, setup } from 'xstate';
import { effectsAmong, type EffectOf } from './effects.js';
import { explainTransition, statusLabel, type Blocker, type Explanation, type OrderView, type TransitionRequest } from './explain.js';
import { explainChain, type ChainExplanation, type PlannedStep } from './chain-plan.js';
import type { CallEvidence } from './call-evidence.js';
import { findSellerRule, isTerminalStatus } from './rules.js';
import {
  ORDER_STATUSES,
  type FulfilmentModel,
  type KnownOrderStatus,
  type KnownOrderSubstatus,
  type OrderStatus,
  type OrderSubstatus,
} from './statuses.js';

/**
 * Bumped whenever the stored snapshot's shape changes; src/engine/order-snapshots.ts holds the
 * migration from each older version. v2: `cancellationRequestedAt` (DBS buyer cancellation
 * requests) and `pending.operationType`; v3: `asyncSettleMs` (when a read-back of an async
 * change is conclusive); v4: the answer to a cancellation request (`cancellation.requested` has
 * substates; `cancellationAnswer`, `lastCancellationAnswer`, `lastAnswerRefusal`); v5: multi-step
 * changes (`chain`).
 */
export const ORDER_MACHINE_VERSION = 5;

/**
 * How long after sending an async change (LaaS) a read-back showing "not yet" proves nothing, for
 * a machine stepped without `asyncSettleMs`; the engine always passes its own, at least its poll
 * deadline plus the request time (src/engine/policies.ts).
 */
export const DEFAULT_ASYNC_SETTLE_MS = 60_000;

/** The shortest wait before reading an inconclusive async change back again. */
const MIN_READ_BACK_GAP_MS = 250;

/** A DBS buyer's cancellation request is cancelled by the Market if the shop does not answer in 48 h (NOTES.md §d). */
export const DBS_CANCELLATION_ANSWER_MS = 48 * 60 * 60 * 1000;

export const OBSERVATION_SOURCES = ['import', 'sync', 'readBack', 'dispatch', 'operation', 'notification'] as const;
export type ObservationSource = (typeof OBSERVATION_SOURCES)[number];

export interface PendingChange {
  readonly status: KnownOrderStatus;
  /** '' when the target has no substatus. */
  readonly substatus: KnownOrderSubstatus | '';
  readonly realDeliveryDate?: string;
  /** The order's n-th seller request: with orderId and target it makes the idempotency key. */
  readonly requestNo: number;
  readonly requestedAt: number;
  /** How many times it was handed to the Market. */
  readonly sends: number;
  readonly sentAt?: number;
  /** Not before this time (epoch ms): set when the dispatcher defers a send. */
  readonly notBefore?: number;
  readonly async: boolean;
  readonly operationId?: string;
  readonly operationType?: string;
  readonly uncertainReason?: string;
  /** Read the order back again no earlier than this (an async change not settled yet). */
  readonly readBackAt?: number;
}

export const CHANGE_OUTCOMES = ['accepted', 'rejected', 'superseded'] as const;
export type ChangeOutcomeKind = (typeof CHANGE_OUTCOMES)[number];

/**
 * Why a change was rejected, as data (like a Blocker): a stable `code` and a sentence for people.
 * The Market's refusals carry the codes of src/market/refusals.ts (MARKET_REFUSALS); the
 * machine's own are REJECTION_CODES.
 */
export interface Rejection {
  readonly code: string;
  readonly message: string;
  readonly [field: string]: unknown;
}

export const REJECTION_CODES = {
  /**
   * The change was queued under rules that allowed it, and the rules of this version do not
   * (a snapshot written before a rules fix): it is settled before anything is sent.
   */
  noLongerAllowed: 'NO_LONGER_ALLOWED',
} as const;

/** How a request is taken: one step (the default), or a chain of steps to a target further away. */
export const REQUEST_VIAS = ['step', 'chain'] as const;
export type RequestVia = (typeof REQUEST_VIAS)[number];

/** A multi-step change on its way: the plan, and where it is. `pending` is the step the Market is asked for now. */
export interface ChainProgress {
  /** The target as the seller asked for it (without a substatus: any state of that status). */
  readonly target: { readonly status: KnownOrderStatus; readonly substatus?: KnownOrderSubstatus };
  /** The plan when it was asked for (planChain). */
  readonly steps: readonly PlannedStep[];
  /** 0-based: the step that is `pending` now. */
  readonly index: number;
  /** The chain's id: its first step's request number. */
  readonly firstRequestNo: number;
  /** For the last step only. */
  readonly realDeliveryDate?: string;
  /** For the last step only, judged again when it is due. */
  readonly callEvidence?: CallEvidence;
  /** SELLER.STOP_CHAIN while a step was in flight: that step ends as it will, no step follows. */
  readonly stopRequested: boolean;
}

export const CHAIN_ENDS = ['continues', 'reached', 'stopped'] as const;
export type ChainEnd = (typeof CHAIN_ENDS)[number];

/** What a settled step of a chain says about the chain. */
export interface ChainStepOutcome {
  readonly firstRequestNo: number;
  /** 1-based. */
  readonly step: number;
  readonly of: number;
  readonly target: ChainProgress['target'];
  readonly end: ChainEnd;
  /** Why the chain stopped after (or at) this step. */
  readonly stopReason?: Rejection;
}

/** Why a chain stopped, when no Market refusal says it (a refused step's stopReason is its rejection). */
export const CHAIN_STOP_CODES = {
  /** The next step, judged again when it was due, is not allowed (the rules or the clock changed). */
  stepRefused: 'CHAIN_STEP_REFUSED',
  /** The Market put the order somewhere other than the plan's next state. */
  marketMoved: 'CHAIN_MARKET_MOVED',
  stoppedBySeller: 'CHAIN_STOPPED_BY_SELLER',
  /** A new seller request replaced the step before it was sent. */
  replaced: 'CHAIN_REPLACED',
  /** The step was given up without a refusal of the Market's (its outcome stayed unknown). */
  stepRejected: 'CHAIN_STEP_REJECTED',
} as const;

export interface ChangeOutcome {
  readonly kind: ChangeOutcomeKind;
  readonly status: KnownOrderStatus;
  readonly substatus: KnownOrderSubstatus | '';
  readonly requestNo: number;
  readonly at: number;
  /** In words; for a rejection by the Market, its text verbatim. */
  readonly reason?: string;
  /** A rejected change: why, with a stable code. */
  readonly rejection?: Rejection;
  /** A step of a chain: which, and whether the chain goes on. */
  readonly chain?: ChainStepOutcome;
}

export interface Refusal {
  readonly status: KnownOrderStatus;
  readonly substatus?: KnownOrderSubstatus;
  readonly blockers: readonly Blocker[];
  readonly at: number;
}

/** Why a DBS shop may refuse a buyer's cancellation (the API's OrderCancellationReasonType). */
export const CANCELLATION_REFUSAL_REASONS = ['ORDER_DELIVERED', 'ORDER_IN_DELIVERY'] as const;
export type CancellationRefusalReason = (typeof CANCELLATION_REFUSAL_REASONS)[number];

/** The seller's answer to a buyer's cancellation request: accept, or refuse with a reason. */
export interface CancellationAnswer {
  readonly accepted: boolean;
  /** Required when refusing, not allowed when accepting. */
  readonly reason?: CancellationRefusalReason;
}

/** An answer on its way to the Market (the answer's counterpart of {@link PendingChange}). */
export interface PendingAnswer extends CancellationAnswer {
  /** Numbered with the order's change requests: with orderId it makes the idempotency key. */
  readonly requestNo: number;
  readonly requestedAt: number;
  readonly sends: number;
  readonly sentAt?: number;
  readonly notBefore?: number;
  readonly uncertainReason?: string;
  readonly readBackAt?: number;
}

/**
 * How an answer ended. `kind` is what happened to the answer (accepted: the Market took it, be it
 * an accept or a refusal; rejected: the Market refused it, or its outcome stayed unknown; superseded:
 * the request ended before the answer could apply); `accepted`/`reason` are the answer itself.
 */
export interface AnswerOutcome extends CancellationAnswer {
  readonly kind: ChangeOutcomeKind;
  readonly requestNo: number;
  readonly at: number;
  /** In words; for a rejection by the Market, its text verbatim. */
  readonly message?: string;
}

/** Why an answer cannot be given now, as data: like the blockers of explainTransition. */
export const CANCELLATION_BLOCKER_CODES = {
  notDbs: 'NOT_DBS',
  notRequested: 'CANCELLATION_NOT_REQUESTED',
  answerPending: 'CANCELLATION_ANSWER_PENDING',
  reasonRequired: 'CANCELLATION_REASON_REQUIRED',
  reasonNotAllowed: 'CANCELLATION_REASON_NOT_ALLOWED',
  reasonUnknown: 'CANCELLATION_REASON_UNKNOWN',
} as const;
export type CancellationBlockerCode = (typeof CANCELLATION_BLOCKER_CODES)[keyof typeof CANCELLATION_BLOCKER_CODES];

export interface CancellationBlocker {
  readonly code: CancellationBlockerCode;
  readonly message: string;
  readonly [field: string]: unknown;
}

export type AnswerVerdict = { readonly allowed: true } | { readonly allowed: false; readonly blockers: readonly CancellationBlocker[] };

/** An answer the judge refused: nothing was queued. */
export interface AnswerRefusal {
  readonly accepted: boolean;
  readonly reason?: string;
  readonly blockers: readonly CancellationBlocker[];
  readonly at: number;
}

export interface OrderContext {
  readonly orderId: number;
  readonly campaignId: number;
  readonly model: FulfilmentModel;
  /** Verbatim from the Market: may be a value no list has. */
  readonly status: OrderStatus;
  readonly substatus: OrderSubstatus | null;
  /** The Market time of the observation applied last; older ones change nothing. */
  readonly observedAt: number;
  readonly observedSource: ObservationSource;
  readonly pending: PendingChange | null;
  /** A multi-step change: what follows `pending`, or null. */
  readonly chain: ChainProgress | null;
  readonly lastOutcome: ChangeOutcome | null;
  readonly lastRefusal: Refusal | null;
  readonly requestCount: number;
  /**
   * DBS: when the Market first reported the buyer's cancellation request (`cancelRequested`),
   * or null. The shop answers it within 48 h, or the Market cancels the order itself.
   */
  readonly cancellationRequestedAt: number | null;
  /** The seller's answer to the open cancellation request, while it is on its way. */
  readonly cancellationAnswer: PendingAnswer | null;
  readonly lastCancellationAnswer: AnswerOutcome | null;
  readonly lastAnswerRefusal: AnswerRefusal | null;
  /** After this many sends whose outcome stayed unknown, the change is given up as rejected. */
  readonly maxSends: number;
  /**
   * An async change (a LaaS cancellation) shows on the order only when its operation ends, and
   * an answer lost in transit took the operation id with it: for this long after the send, a
   * read-back showing "not changed yet" proves nothing, and resending could apply it twice.
   */
  readonly asyncSettleMs: number;
}

export interface OrderInput {
  readonly orderId: number;
  readonly campaignId: number;
  readonly model: FulfilmentModel;
  readonly status: OrderStatus;
  readonly substatus?: OrderSubstatus | null;
  readonly observedAt: number;
  readonly source?: ObservationSource;
  readonly cancelRequested?: boolean;
  readonly maxSends?: number;
  readonly asyncSettleMs?: number;
}

export type OrderEvent =
  | {
      readonly type: 'MARKET.OBSERVED';
      /** As the Market sent it: unknown values are data, kept verbatim. */
      readonly status: OrderStatus;
      readonly substatus?: OrderSubstatus | null;
      readonly observedAt: number;
      readonly source: ObservationSource;
      /** DBS: the Market's `cancelRequested` flag, when the observation carries it. */
      readonly cancelRequested?: boolean;
    }
  | {
      readonly type: 'SELLER.REQUEST';
      /** A seller may only ask for a value the Market's lists have. */
      readonly status: KnownOrderStatus;
      readonly substatus?: KnownOrderSubstatus;
      readonly callEvidence?: CallEvidence;
      readonly realDeliveryDate?: string;
      /** `chain`: the target may be several steps away; the machine plans and sends them one by one. */
      readonly via?: RequestVia;
      readonly at: number;
    }
  /** Stop the chain: a step not yet sent is dropped, one in flight ends as it will and nothing follows. */
  | { readonly type: 'SELLER.STOP_CHAIN'; readonly at: number }
  // The dispatcher's reports carry the request number of the outbox row they are about: one about
  // another request than the pending one (a late answer for a step the chain is past) is ignored.
  // Without one, it is about the pending change.
  | { readonly type: 'DISPATCH.SENT'; readonly at: number; readonly requestNo?: number }
  | { readonly type: 'DISPATCH.ACCEPTED'; readonly at: number; readonly requestNo?: number; readonly status?: OrderStatus; readonly substatus?: OrderSubstatus | null }
  | { readonly type: 'DISPATCH.REJECTED'; readonly at: number; readonly requestNo?: number; readonly reason: string; readonly rejection?: Rejection }
  | { readonly type: 'DISPATCH.OPERATION_STARTED'; readonly at: number; readonly requestNo?: number; readonly operationId: string; readonly operationType: string }
  /** `readBackAt`: read the order back not before then (a struggling Market is not asked again at once). */
  | { readonly type: 'DISPATCH.UNKNOWN'; readonly at: number; readonly requestNo?: number; readonly reason: string; readonly readBackAt?: number }
  | { readonly type: 'DISPATCH.DEFERRED'; readonly at: number; readonly requestNo?: number; readonly notBefore: number; readonly reason: string }
  /** DBS: the seller answers the buyer's open cancellation request; `reason` as given, judged by judgeCancellationAnswer. */
  | { readonly type: 'SELLER.ANSWER_CANCELLATION'; readonly accepted: boolean; readonly reason?: string; readonly at: number }
  // The answer's own lifecycle, as the dispatcher reports it (the DISPATCH.* events of a change).
  | { readonly type: 'ANSWER.SENT'; readonly at: number }
  | { readonly type: 'ANSWER.ACCEPTED'; readonly at: number }
  | { readonly type: 'ANSWER.REJECTED'; readonly at: number; readonly reason: string }
  | { readonly type: 'ANSWER.UNKNOWN'; readonly at: number; readonly reason: string; readonly readBackAt?: number }
  | { readonly type: 'ANSWER.DEFERRED'; readonly at: number; readonly notBefore: number; readonly reason: string };

export type OrderEventType = OrderEvent['type'];

/** The params of each effect the machine asks the engine to carry out, by action type. */
export interface OrderEffectParams {
  /** Queue the pending change for sending (an outbox row). */
  readonly 'effect.sendStatusChange': { readonly orderId: number; readonly campaignId: number; readonly pending: PendingChange };
  /** Read the order back before sending again (a change's or an answer's request); not before `notBefore` when set. */
  readonly 'effect.readBack': { readonly orderId: number; readonly campaignId: number; readonly requestNo: number; readonly notBefore: number | undefined };
  /** Poll the async operation the Market started for the change. */
  readonly 'effect.trackOperation': {
    readonly orderId: number;
    readonly campaignId: number;
    readonly operationId: string;
    readonly operationType: string;
  };
  /**
   * The pending change moved within the change region (sent, deferred back to the queue, handed to
   * an operation, its outcome unknown): its outbox row follows. `sent` counts a send.
   */
  readonly 'effect.recordChangeState': {
    readonly orderId: number;
    readonly requestNo: number;
    readonly state: 'queued' | 'sending' | 'awaitingOperation' | 'uncertain';
    readonly sent: boolean;
    readonly reason: string | undefined;
  };
  /** The change ended: settle its outbox row. */
  readonly 'effect.settleStatusChange': { readonly orderId: number; readonly campaignId: number; readonly outcome: ChangeOutcome };
  /** DBS: answer the buyer's cancellation request by `dueAt` (a timer row). */
  readonly 'effect.startCancellationDeadline': { readonly orderId: number; readonly dueAt: number };
  readonly 'effect.clearCancellationDeadline': { readonly orderId: number };
  /** Queue the answer for sending (an outbox row of kind cancellationAnswer). */
  readonly 'effect.sendCancellationAnswer': { readonly orderId: number; readonly campaignId: number; readonly answer: PendingAnswer };
  /** The pending answer moved (sent, deferred back to the queue, its outcome unknown): its outbox row follows. */
  readonly 'effect.recordAnswerState': {
    readonly orderId: number;
    readonly requestNo: number;
    readonly state: 'queued' | 'sending' | 'uncertain';
    readonly sent: boolean;
    readonly reason: string | undefined;
  };
  /** The answer ended: settle its outbox row. */
  readonly 'effect.settleCancellationAnswer': { readonly orderId: number; readonly campaignId: number; readonly outcome: AnswerOutcome };
}

export type OrderEffectType = keyof OrderEffectParams;

/** One effect with its params: a union discriminated by `type`. */
export type OrderEffect = EffectOf<OrderEffectParams>;

const ORDER_EFFECT_TYPES: Readonly<Record<OrderEffectType, true>> = {
  'effect.sendStatusChange': true,
  'effect.readBack': true,
  'effect.trackOperation': true,
  'effect.recordChangeState': true,
  'effect.settleStatusChange': true,
  'effect.startCancellationDeadline': true,
  'effect.clearCancellationDeadline': true,
  'effect.sendCancellationAnswer': true,
  'effect.recordAnswerState': true,
  'effect.settleCancellationAnswer': true,
};

/** The effects among the actions `transition(orderMachine, …)` returns, as {@link OrderEffect}s (see machines/effects.ts). */
export function orderEffects(actions: readonly { readonly type: string; readonly params?: unknown }[]): OrderEffect[] {
  return effectsAmong<OrderEffectParams>(ORDER_EFFECT_TYPES, actions);
}

interface Observation {
  readonly status: string;
  readonly substatus: string | null;
  readonly at: number;
}

/** What the event says the Market shows, if it says anything. */
function observationOf(context: OrderContext, event: OrderEvent): Observation | undefined {
  if (event.type === 'MARKET.OBSERVED') {
    return { status: event.status, substatus: event.substatus ?? null, at: event.observedAt };
  }
  if (event.type === 'DISPATCH.ACCEPTED' && context.pending && !isAboutAnotherRequest(context, event)) {
    // An OK answer means the Market changed the order: to what it says, else to our target.
    return {
      status: event.status ?? context.pending.status,
      substatus: event.status === undefined ? context.pending.substatus : event.substatus ?? null,
      at: event.at,
    };
  }
  return undefined;
}

function isFresh(context: OrderContext, observation: Observation): boolean {
  return observation.at >= context.observedAt;
}

/** The Market state the order will be in once this event is applied. */
function marketStateAfter(context: OrderContext, event: OrderEvent): Observation {
  const seen = observationOf(context, event);
  return seen !== undefined && isFresh(context, seen)
    ? seen
    : { status: context.status, substatus: context.substatus, at: context.observedAt };
}

function reachesTarget(context: OrderContext, event: OrderEvent): boolean {
  const { pending } = context;
  if (!pending || observationOf(context, event) === undefined) return false;
  const state = marketStateAfter(context, event);
  return state.status === pending.status && state.substatus === pending.substatus;
}

function pendingStillLegal(context: OrderContext, event: OrderEvent): boolean {
  const { pending } = context;
  if (!pending) return false;
  const state = marketStateAfter(context, event);
  return findSellerRule(context.model, { status: state.status, substatus: state.substatus ?? undefined }, pending) !== undefined;
}

/**
 * The rules refuse the pending change from where the order already is: only possible for a
 * change queued under older rules (a snapshot written before a rules fix), never for one this
 * version judged, since the machine settles a change as soon as the Market moves the order.
 */
function rulesRefusePending(context: OrderContext): boolean {
  const { pending } = context;
  return pending !== null && findSellerRule(context.model, { status: context.status, substatus: context.substatus ?? undefined }, pending) === undefined;
}

/** What a seller request is judged against: where the machine has the order, and what is already on its way. */
export type JudgedContext = Pick<OrderContext, 'status' | 'substatus' | 'pending' | 'model' | 'chain'>;

/** A chain's step queued and never handed to the Market: a new request may replace it. */
function replaceableStep(context: Pick<OrderContext, 'pending' | 'chain'>): boolean {
  return context.chain !== null && context.pending !== null && context.pending.sends === 0;
}

/** The order as a request is judged from: a replaceable step is no pending change. */
function requestView(context: JudgedContext): OrderView {
  return { status: context.status, substatus: context.substatus ?? undefined, pending: replaceableStep(context) ? null : context.pending };
}

/** CHANGE_PENDING for a chain's step in flight says which step, and how to end it sooner. */
function withChainInFlight<V extends { readonly allowed: boolean; readonly blockers?: readonly Blocker[] }>(context: JudgedContext, verdict: V): V {
  const { chain } = context;
  if (chain === null || verdict.blockers === undefined) return verdict;
  const about = { step: chain.index + 1, of: chain.steps.length, target: chain.target };
  const blockers = verdict.blockers.map((b) =>
    b.code === 'CHANGE_PENDING'
      ? { ...b, message: `Step ${about.step} of ${about.of} of a chain to ${statusLabel(chain.target.status, chain.target.substatus)} is on its way; stop it with stopChain, or wait. ${b.message}`, chain: about }
      : b,
  );
  return { ...verdict, blockers };
}

/**
 * The one judge of a one-step seller request: the rules, from where the machine has the order,
 * with the change already pending (a chain's step not yet sent is replaced, not pending). The
 * machine's guard, its refusal record and the engine all ask it.
 */
export function judgeRequest(context: JudgedContext, target: TransitionRequest, now?: number): Explanation {
  return withChainInFlight(context, explainTransition(requestView(context), target, context.model, now === undefined ? {} : { now }));
}

/** The chain twin of {@link judgeRequest}: explainChain from where the machine has the order. */
export function judgeChainRequest(context: JudgedContext, target: TransitionRequest, now?: number): ChainExplanation {
  return withChainInFlight(context, explainChain(requestView(context), target, context.model, now === undefined ? {} : { now }));
}

/**
 * The last judgement, by the identity of what was judged. The engine judges a request before
 * stepping the machine with it (to refuse with blockers and write nothing), and the machine's
 * guard then judges the same request on the same context again: a pure function of objects
 * nobody changes (contexts are replaced, never edited), so the second answer is the first.
 */
let lastJudged:
  | { readonly context: JudgedContext; readonly request: object; readonly now: number | undefined; readonly explanation: Explanation | ChainExplanation }
  | undefined;

/** A seller request judged as it asks to be taken: one step, or a chain (`via: 'chain'`). */
export function judgeSellerRequest(
  context: JudgedContext,
  request: TransitionRequest & { readonly via?: RequestVia | undefined },
  now?: number,
): Explanation | ChainExplanation {
  if (lastJudged !== undefined && lastJudged.context === context && lastJudged.request === request && lastJudged.now === now) return lastJudged.explanation;
  const explanation = request.via === 'chain' ? judgeChainRequest(context, request, now) : judgeRequest(context, request, now);
  lastJudged = { context, request, now, explanation };
  return explanation;
}

/** A dispatcher report naming another request than the pending one: a late answer, ignored. */
function isAboutAnotherRequest(context: OrderContext, event: OrderEvent): boolean {
  return 'requestNo' in event && event.requestNo !== undefined && event.requestNo !== context.pending?.requestNo;
}

/** The chain's step after the current one, as a request: the last one carries the chain's date and evidence. */
function nextStepRequest(chain: ChainProgress): TransitionRequest | undefined {
  const index = chain.index + 1;
  const step = chain.steps[index];
  if (step === undefined) return undefined;
  const to = { status: step.status, substatus: step.substatus };
  return index === chain.steps.length - 1 ? { ...to, callEvidence: chain.callEvidence, realDeliveryDate: chain.realDeliveryDate } : to;
}

type AfterAcceptedStep = { readonly end: 'continues' | 'reached' } | { readonly end: 'stopped'; readonly stopReason: Rejection };

/**
 * What an accepted step means for its chain: the next step goes out, the target is reached, or
 * the chain stops. The next step is judged again now: the rules or the clock may have changed
 * since the plan was made. A Market state off the plan stops it, even one further along it: the
 * seller cannot tell who made that move.
 */
function afterAcceptedStep(context: OrderContext, event: OrderEvent, chain: ChainProgress): AfterAcceptedStep {
  const state = marketStateAfter(context, event);
  const here = statusLabel(state.status, state.substatus ?? undefined);
  const planned = chain.steps[chain.index];
  const last = chain.index === chain.steps.length - 1;
  const inTarget = state.status === chain.target.status && (chain.target.substatus === undefined || state.substatus === chain.target.substatus);
  if (last && inTarget) return { end: 'reached' };
  if (planned === undefined || state.status !== planned.status || state.substatus !== planned.substatus) {
    const message = `The Market has the order in ${here}, not ${planned ? statusLabel(planned.status, planned.substatus) : 'the planned state'}: the chain stops.`;
    return { end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.marketMoved, message, status: state.status, substatus: state.substatus } };
  }
  if (chain.stopRequested) {
    return { end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.stoppedBySeller, message: 'Stopped by the seller: the step in flight ended, no further step is sent.' } };
  }
  const next = nextStepRequest(chain);
  if (next === undefined) return { end: 'reached' };
  const verdict = explainTransition({ status: state.status, substatus: state.substatus ?? undefined }, next, context.model, { now: eventTime(event) });
  if (verdict.allowed) return { end: 'continues' };
  const rule = chain.steps[chain.index + 1]?.ruleId;
  return {
    end: 'stopped',
    stopReason: {
      code: CHAIN_STOP_CODES.stepRefused,
      message: `Step ${chain.index + 2} of ${chain.steps.length} (${rule}) is not allowed from ${here} now: ${verdict.blockers.map((b) => b.message).join(' ')}`,
      blockers: verdict.blockers,
    },
  };
}

/** The pending step is accepted and its chain goes on: settle it and queue the next one in the same transition. */
function chainContinues(context: OrderContext, event: OrderEvent): boolean {
  const { chain } = context;
  return chain !== null && reachesTarget(context, event) && afterAcceptedStep(context, event, chain).end === 'continues';
}

/** What a settled step says about its chain (see {@link ChainStepOutcome}). */
function chainStepOutcome(context: OrderContext, event: OrderEvent, kind: ChangeOutcomeKind, reason: string | undefined, rejection: Rejection | undefined): ChainStepOutcome | undefined {
  const { chain } = context;
  if (chain === null) return undefined;
  const base = { firstRequestNo: chain.firstRequestNo, step: chain.index + 1, of: chain.steps.length, target: chain.target };
  if (kind === 'accepted') return { ...base, ...afterAcceptedStep(context, event, chain) };
  const message = reason ?? 'The step did not apply.';
  const stopReason: Rejection =
    kind === 'rejected'
      ? (rejection ?? { code: CHAIN_STOP_CODES.stepRejected, message })
      : event.type === 'SELLER.REQUEST'
        ? { code: CHAIN_STOP_CODES.replaced, message }
        : event.type === 'SELLER.STOP_CHAIN'
          ? { code: CHAIN_STOP_CODES.stoppedBySeller, message }
          : { code: CHAIN_STOP_CODES.marketMoved, message, status: marketStateAfter(context, event).status, substatus: marketStateAfter(context, event).substatus };
  return { ...base, end: 'stopped', stopReason };
}

function isRefusalReason(reason: string): reason is CancellationRefusalReason {
  return (CANCELLATION_REFUSAL_REASONS as readonly string[]).includes(reason);
}

/**
 * The one judge of a seller's answer to a cancellation request: DBS only, while the request is
 * open with no answer on its way; a refusal needs a reason, an accept takes none. The machine's
 * guard, its refusal record and the engine all ask it.
 */
export function judgeCancellationAnswer(
  context: Pick<OrderContext, 'model' | 'cancellationRequestedAt' | 'cancellationAnswer'>,
  answer: { readonly accepted: boolean; readonly reason?: string | undefined },
): AnswerVerdict {
  if (context.model !== 'DBS') {
    return {
      allowed: false,
      blockers: [{ code: CANCELLATION_BLOCKER_CODES.notDbs, message: `Only DBS orders have buyer cancellation requests to answer; this is a ${context.model} order.` }],
    };
  }
  const blockers: CancellationBlocker[] = [];
  if (context.cancellationRequestedAt === null) {
    blockers.push({ code: CANCELLATION_BLOCKER_CODES.notRequested, message: 'The buyer has not asked to cancel this order (or the request has ended); there is nothing to answer.' });
  } else if (context.cancellationAnswer !== null) {
    const pending = context.cancellationAnswer;
    blockers.push({
      code: CANCELLATION_BLOCKER_CODES.answerPending,
      message: `An answer (${pending.accepted ? 'accept' : `refuse: ${pending.reason}`}) is already on its way; wait for its outcome.`,
      pending: { accepted: pending.accepted, ...(pending.reason !== undefined ? { reason: pending.reason } : {}) },
    });
  }
  const reasons = CANCELLATION_REFUSAL_REASONS.join(' or ');
  if (answer.reason !== undefined && !isRefusalReason(answer.reason)) {
    blockers.push({ code: CANCELLATION_BLOCKER_CODES.reasonUnknown, message: `"${answer.reason}" is not a reason the Market takes; one of ${reasons}.`, expectedReasons: CANCELLATION_REFUSAL_REASONS });
  } else if (answer.accepted && answer.reason !== undefined) {
    blockers.push({ code: CANCELLATION_BLOCKER_CODES.reasonNotAllowed, message: 'An accepted cancellation takes no reason; a reason is only for refusing.' });
  } else if (!answer.accepted && answer.reason === undefined) {
    blockers.push({ code: CANCELLATION_BLOCKER_CODES.reasonRequired, message: `Refusing a cancellation needs a reason: ${reasons}.`, expectedReasons: CANCELLATION_REFUSAL_REASONS });
  }
  return blockers.length === 0 ? { allowed: true } : { allowed: false, blockers };
}

/** A fresh observation ends the cancellation request: the Market dropped the flag, or the order reached a final status. */
function endsCancellationRequest(context: OrderContext, event: OrderEvent): boolean {
  return event.type === 'MARKET.OBSERVED' && isFreshEvent(context, event) && (event.cancelRequested === false || isTerminalStatus(event.status));
}

/**
 * The request ended the way the answer on its way would have ended it: cancelled for an accept;
 * closed with the order not cancelled for a refusal (it went on, or was delivered).
 */
function answerApplied(context: OrderContext, event: OrderEvent): boolean {
  const answer = context.cancellationAnswer;
  if (answer === null || event.type !== 'MARKET.OBSERVED' || !endsCancellationRequest(context, event)) return false;
  const cancelled = event.status === 'CANCELLED';
  return answer.accepted ? cancelled || !isTerminalStatus(event.status) : !cancelled;
}

/** A fresh read-back shows the request still open: the answer sent did not apply. */
function answerReadBackShowsOpen(context: OrderContext, event: OrderEvent): boolean {
  return (
    event.type === 'MARKET.OBSERVED' &&
    event.source === 'readBack' &&
    isFreshEvent(context, event) &&
    event.cancelRequested === true &&
    !isTerminalStatus(event.status)
  );
}

/**
 * An observation reports a cancellation request the engine is not tracking. One no newer than an
 * answer the Market took is what the order looked like before the answer closed it (a lagging
 * read), not a new request.
 */
function reportsNewCancellationRequest(context: OrderContext, event: OrderEvent): boolean {
  if (event.type !== 'MARKET.OBSERVED' || event.cancelRequested !== true || !isFreshEvent(context, event)) return false;
  const last = context.lastCancellationAnswer;
  return !(last !== null && last.kind === 'accepted' && event.observedAt <= last.at);
}

function describeAnswer(answer: CancellationAnswer): string {
  return answer.accepted ? 'accept' : `refuse (${answer.reason})`;
}

function answerOutcomeMessage(context: OrderContext, event: OrderEvent, kind: ChangeOutcomeKind): string | undefined {
  const answer = context.cancellationAnswer;
  if (answer === null) return undefined;
  if (event.type === 'ANSWER.REJECTED') return event.reason;
  const seen = event.type === 'MARKET.OBSERVED' ? `${event.status}${event.substatus ? `/${event.substatus}` : ''}` : undefined;
  if (kind === 'superseded') return `The request ended at the Market (the order is ${seen}) before the answer to ${describeAnswer(answer)} could apply.`;
  if (kind === 'rejected') return `The outcome stayed unknown after ${answer.sends} send(s); the read-back shows the request still open.`;
  return seen === undefined ? undefined : `The Market shows the request closed (the order is ${seen}): the answer to ${describeAnswer(answer)} applied.`;
}

function noLongerAllowed(context: OrderContext, pending: PendingChange): Rejection {
  const here = { status: context.status, substatus: context.substatus ?? undefined };
  const verdict = explainTransition(here, { status: pending.status, substatus: pending.substatus }, context.model);
  const blockers = verdict.allowed ? [] : verdict.blockers;
  const state = (s: { status: string; substatus?: string | null | undefined }) => (s.substatus ? `${s.status}/${s.substatus}` : s.status);
  return {
    code: REJECTION_CODES.noLongerAllowed,
    message: `Not sent: ${state(pending)} was queued under older seller rules, and the current ones do not allow it from ${state(here)}. ${blockers.map((b) => b.message).join(' ')}`.trim(),
    blockers,
  };
}

function supersededReason(context: OrderContext, event: OrderEvent): string {
  if (event.type === 'SELLER.REQUEST') return `Replaced by request ${context.requestCount + 1} before it was sent.`;
  if (event.type === 'SELLER.STOP_CHAIN') return 'Stopped by the seller before it was sent.';
  const after = marketStateAfter(context, event);
  // Without a move, only a rules change can have made the change illegal (rulesRefusePending).
  return after.status === context.status && after.substatus === context.substatus
    ? `The order is still ${after.substatus ? `${after.status}/${after.substatus}` : after.status}, from where the current seller rules do not allow the change.`
    : `The Market moved the order to ${after.status}, from where the change no longer applies.`;
}

/** A fresh observation shows the order in a final status other than the change's target. */
function endsElsewhere(context: OrderContext, event: OrderEvent): boolean {
  return event.type === 'MARKET.OBSERVED' && isFreshEvent(context, event) && isTerminalStatus(event.status) && !reachesTarget(context, event);
}

function isFreshEvent(context: OrderContext, event: OrderEvent): boolean {
  const seen = observationOf(context, event);
  return seen !== undefined && isFresh(context, seen);
}

/**
 * A read-back after an unknown outcome shows the order where it was: the send did not apply.
 * Only a fresh read-back proves that; one older than what the machine has already seen
 * (a lagging replica, a reordered answer) changes nothing.
 */
function readBackShowsNotApplied(context: OrderContext, event: OrderEvent): boolean {
  return readBackShowsNotYet(context, event) && !asyncMayStillApply(context, event);
}

/** A fresh read-back shows the order still where the change applies from. */
function readBackShowsNotYet(context: OrderContext, event: OrderEvent): boolean {
  return (
    event.type === 'MARKET.OBSERVED' &&
    event.source === 'readBack' &&
    isFreshEvent(context, event) &&
    !reachesTarget(context, event) &&
    pendingStillLegal(context, event)
  );
}

/** An async change read back within asyncSettleMs of its send may still be applying. */
function asyncMayStillApply(context: OrderContext, event: OrderEvent): boolean {
  const { pending } = context;
  return pending?.async === true && eventTime(event) < (pending.sentAt ?? 0) + context.asyncSettleMs;
}

function eventTime(event: OrderEvent): number {
  return 'at' in event ? event.at : event.observedAt;
}

/** Market statuses that get a state node of their own; PROCESSING has substates. */
const PROCESSING_SUBSTATES = ['STARTED', 'READY_TO_SHIP', 'SHIPPED'] as const;
/** The substates of PROCESSING: those with a state of their own, and OTHER. */
export type ProcessingState = (typeof PROCESSING_SUBSTATES)[number] | 'OTHER';

/**
 * The market region's state value: a known status, `{ PROCESSING: substate }`, or UNRECOGNIZED.
 * (`routing` is transient: a snapshot never rests there.)
 */
export type MarketStateValue = 'routing' | 'UNRECOGNIZED' | Exclude<KnownOrderStatus, 'PROCESSING'> | { readonly PROCESSING: ProcessingState };

function routingTable() {
  return [
    ...PROCESSING_SUBSTATES.map((substatus) => ({
      guard: { type: 'isAt' as const, params: { status: 'PROCESSING', substatus } },
      target: `PROCESSING.${substatus}`,
    })),
    ...ORDER_STATUSES.map((status) => ({
      guard: { type: 'isAt' as const, params: { status } },
      target: status === 'PROCESSING' ? 'PROCESSING.OTHER' : status,
    })),
    { target: 'UNRECOGNIZED' },
  ];
}

// Typed state by state (not Record<string, object>), so that XState infers the market region's value.
type MarketStatesConfig = { routing: { always: ReturnType<typeof routingTable> }; UNRECOGNIZED: { description: string } } & {
  [S in Exclude<KnownOrderStatus, 'PROCESSING'>]: {};
} & { PROCESSING: { initial: 'OTHER'; states: { [S in ProcessingState]: { description?: string } } } };

function marketStates(): MarketStatesConfig {
  const states: Record<string, object> = {
    routing: { always: routingTable() },
    UNRECOGNIZED: { description: 'A status the engine does not know: kept verbatim in context.status.' },
  };
  for (const status of ORDER_STATUSES) {
    states[status] =
      status === 'PROCESSING'
        ? {
            initial: 'OTHER',
            states: {
              ...Object.fromEntries(PROCESSING_SUBSTATES.map((s) => [s, {}])),
              OTHER: { description: 'PROCESSING with a substatus that has no state of its own.' },
            },
          }
        : {};
  }
  return states as MarketStatesConfig;
}

/**
 * What an effect of the change region is about. The state that asks for it is only entered
 * after the value is set (recordRequest, recordOperation, settle), so a miss is a machine bug.
 */
function present<T>(value: T | null | undefined, what: string, context: OrderContext): T {
  if (value === null || value === undefined) throw new Error(`order ${context.orderId}: the effect needs ${what}, and it is not set`);
  return value;
}

/** The pending change moves to `state`: its outbox row follows (see effect.recordChangeState). */
const recordChangeState = (state: OrderEffectParams['effect.recordChangeState']['state'], sent = false) => ({
  type: 'effect.recordChangeState' as const,
  params: ({ context, event }: { context: OrderContext; event: OrderEvent }) => ({
    orderId: context.orderId,
    requestNo: present(context.pending, 'a pending change', context).requestNo,
    state,
    sent,
    reason: 'reason' in event ? event.reason : undefined,
  }),
});

const toIdle = (outcome: ChangeOutcomeKind) => ({
  target: 'idle' as const,
  actions: [
    { type: 'settle' as const, params: { outcome } },
    {
      type: 'effect.settleStatusChange' as const,
      params: ({ context }: { context: OrderContext }) => ({
        orderId: context.orderId,
        campaignId: context.campaignId,
        outcome: present(context.lastOutcome, 'the outcome', context),
      }),
    },
    'endChain' as const,
  ],
});

/**
 * An accepted step: when its chain goes on, the step settles and the next one is queued by the
 * same transition, so the two outbox rows are written together with the snapshot (one store
 * transaction); otherwise the change ends accepted. `guard` (reachesTarget) for observations.
 */
const accepted = (guard?: 'reachesTarget') => [
  {
    guard: 'chainContinues' as const,
    target: 'queued' as const,
    reenter: true,
    actions: [...toIdle('accepted').actions.slice(0, 2), 'advanceChain' as const],
  },
  { ...(guard !== undefined ? { guard } : {}), ...toIdle('accepted') },
];

/** A dispatcher report about another request than the pending one changes nothing. */
const ignoreOtherRequest = { guard: 'isAboutAnotherRequest' as const };

/** The pending answer moves to `state`: its outbox row follows (see effect.recordAnswerState). */
const recordAnswerState = (state: OrderEffectParams['effect.recordAnswerState']['state'], sent = false) => ({
  type: 'effect.recordAnswerState' as const,
  params: ({ context, event }: { context: OrderContext; event: OrderEvent }) => ({
    orderId: context.orderId,
    requestNo: present(context.cancellationAnswer, 'a pending answer', context).requestNo,
    state,
    sent,
    reason: 'reason' in event ? event.reason : undefined,
  }),
});

/**
 * The answer ends as `outcome`. Taken by the Market or overtaken by it (`closes`), the request is
 * closed too: the region leaves `requested`, whose exit clears the deadline. Rejected, the
 * request stays open for another answer.
 */
const settleAnswer = (outcome: ChangeOutcomeKind, closes: boolean) => ({
  target: closes ? ('#order.cancellation.none' as const) : ('#order.cancellation.requested.unanswered' as const),
  actions: [
    { type: 'settleAnswer' as const, params: { outcome } },
    {
      type: 'effect.settleCancellationAnswer' as const,
      params: ({ context }: { context: OrderContext }) => ({
        orderId: context.orderId,
        campaignId: context.campaignId,
        outcome: present(context.lastCancellationAnswer, 'the answer outcome', context),
      }),
    },
    ...(closes ? ['clearCancellationRequest' as const] : []),
  ],
});

export const orderMachine = setup({
  types: {
    context: {} as OrderContext,
    events: {} as OrderEvent,
    input: {} as OrderInput,
  },
  guards: {
    isAt: ({ context }, params: { status: string; substatus?: string }) =>
      context.status === params.status && (params.substatus === undefined || context.substatus === params.substatus),
    hasCancellationRequest: ({ context }) => context.cancellationRequestedAt !== null,
    reportsCancellationRequest: ({ context, event }) => reportsNewCancellationRequest(context, event),
    // The request ends when the Market drops the flag or the order reaches a final status.
    endsCancellationRequest: ({ context, event }) => endsCancellationRequest(context, event),
    isLegalAnswer: ({ context, event }) => event.type === 'SELLER.ANSWER_CANCELLATION' && judgeCancellationAnswer(context, event).allowed,
    answerApplied: ({ context, event }) => answerApplied(context, event),
    answerReadBackAllowsResend: ({ context, event }) =>
      answerReadBackShowsOpen(context, event) && (context.cancellationAnswer?.sends ?? 0) < context.maxSends,
    answerReadBackShowsOpen: ({ context, event }) => answerReadBackShowsOpen(context, event),
    isFreshObservation: ({ context, event }) => isFreshEvent(context, event),
    isLegalRequest: ({ context, event }) => event.type === 'SELLER.REQUEST' && judgeSellerRequest(context, event, event.at).allowed,
    isAboutAnotherRequest: ({ context, event }) => isAboutAnotherRequest(context, event),
    chainContinues: ({ context, event }) => chainContinues(context, event),
    chainActive: ({ context }) => context.chain !== null && !context.chain.stopRequested,
    chainStepUnsent: ({ context }) => replaceableStep(context),
    reachesTarget: ({ context, event }) => reachesTarget(context, event),
    // Only a fresh observation supersedes: a stale one changes nothing, in any state.
    supersedesPending: ({ context, event }) =>
      isFreshEvent(context, event) && !reachesTarget(context, event) && !pendingStillLegal(context, event),
    // The change no longer applies where the Market now has the order (it moved while sending).
    pendingNoLongerLegal: ({ context, event }) => !pendingStillLegal(context, event),
    rulesRefusePending: ({ context }) => rulesRefusePending(context),
    // The Market ended the order (a LaaS draft it cancelled itself, a buyer's cancellation) while
    // the change was on its way: no answer can make it apply now.
    endsElsewhere: ({ context, event }) => endsElsewhere(context, event),
    readBackShowsNotApplied: ({ context, event }) => readBackShowsNotApplied(context, event),
    readBackInconclusive: ({ context, event }) => readBackShowsNotYet(context, event) && asyncMayStillApply(context, event),
    readBackAllowsResend: ({ context, event }) =>
      readBackShowsNotApplied(context, event) && (context.pending?.sends ?? 0) < context.maxSends,
  },
  actions: {
    applyObservation: assign(({ context, event }) => {
      const seen = observationOf(context, event);
      if (seen === undefined) return {};
      const source: ObservationSource = event.type === 'MARKET.OBSERVED' ? event.source : 'dispatch';
      return { status: seen.status, substatus: seen.substatus, observedAt: seen.at, observedSource: source };
    }),
    recordRequest: assign(({ context, event }) => {
      if (event.type !== 'SELLER.REQUEST') return {};
      const here = { status: context.status, substatus: context.substatus ?? undefined };
      const plan = event.via === 'chain' ? judgeChainRequest(context, event, event.at) : undefined;
      const steps: readonly PlannedStep[] = plan?.allowed ? plan.steps.map((s) => ({ ...s.to, ruleId: s.ruleId })) : [];
      const first = steps[0] ?? { status: event.status, substatus: event.substatus ?? '' };
      const requestNo = context.requestCount + 1;
      // A plan of one step is an ordinary change: a chain of one is no different from a request today.
      const chain: ChainProgress | null =
        steps.length > 1
          ? {
              target: { status: event.status, ...(event.substatus !== undefined ? { substatus: event.substatus } : {}) },
              steps,
              index: 0,
              firstRequestNo: requestNo,
              ...(event.realDeliveryDate !== undefined ? { realDeliveryDate: event.realDeliveryDate } : {}),
              ...(event.callEvidence !== undefined ? { callEvidence: event.callEvidence } : {}),
              stopRequested: false,
            }
          : null;
      const rule = findSellerRule(context.model, here, first);
      const pending: PendingChange = {
        status: first.status,
        substatus: first.substatus,
        ...(chain === null && event.realDeliveryDate !== undefined ? { realDeliveryDate: event.realDeliveryDate } : {}),
        requestNo,
        requestedAt: event.at,
        sends: 0,
        async: rule?.async === true,
      };
      return { pending, chain, requestCount: requestNo, lastRefusal: null };
    }),
    advanceChain: assign(({ context, event }) => {
      const { chain } = context;
      if (chain === null) return {};
      const index = chain.index + 1;
      const step = present(chain.steps[index], 'the next step of the chain', context);
      const rule = findSellerRule(context.model, { status: context.status, substatus: context.substatus ?? undefined }, step);
      // Numbered as a seller request: (order, request number) names the step's own outbox row.
      const requestNo = context.requestCount + 1;
      const pending: PendingChange = {
        status: step.status,
        substatus: step.substatus,
        ...(index === chain.steps.length - 1 && chain.realDeliveryDate !== undefined ? { realDeliveryDate: chain.realDeliveryDate } : {}),
        requestNo,
        requestedAt: eventTime(event),
        sends: 0,
        async: rule?.async === true,
      };
      return { pending, requestCount: requestNo, chain: { ...chain, index } };
    }),
    endChain: assign({ chain: null }),
    requestChainStop: assign(({ context }) => (context.chain === null ? {} : { chain: { ...context.chain, stopRequested: true } })),
    recordRefusal: assign(({ context, event }) => {
      if (event.type !== 'SELLER.REQUEST') return {};
      const explanation = judgeSellerRequest(context, event, event.at);
      const blockers = explanation.allowed ? [] : explanation.blockers;
      return {
        lastRefusal: {
          status: event.status,
          ...(event.substatus !== undefined ? { substatus: event.substatus } : {}),
          blockers,
          at: event.at,
        },
      };
    }),
    recordSent: assign(({ context, event }) => {
      if (!context.pending) return {};
      const { notBefore: _done, ...rest } = context.pending;
      return { pending: { ...rest, sends: rest.sends + 1, sentAt: eventTime(event) } };
    }),
    recordDeferral: assign(({ context, event }) => {
      if (!context.pending || event.type !== 'DISPATCH.DEFERRED') return {};
      // A deferred send never reached the Market, so it does not count against maxSends.
      return { pending: { ...context.pending, sends: Math.max(0, context.pending.sends - 1), notBefore: event.notBefore } };
    }),
    recordOperation: assign(({ context, event }) => {
      if (!context.pending || event.type !== 'DISPATCH.OPERATION_STARTED') return {};
      return { pending: { ...context.pending, operationId: event.operationId, operationType: event.operationType } };
    }),
    recordUncertain: assign(({ context, event }) => {
      if (!context.pending || event.type !== 'DISPATCH.UNKNOWN') return {};
      const { readBackAt: _earlier, ...pending } = context.pending;
      return { pending: { ...pending, uncertainReason: event.reason, ...(event.readBackAt !== undefined ? { readBackAt: event.readBackAt } : {}) } };
    }),
    scheduleReadBack: assign(({ context, event }) => {
      if (!context.pending) return {};
      // Read again after half the time waited so far, and at the latest when the wait is over.
      const now = eventTime(event);
      const sentAt = context.pending.sentAt ?? now;
      const readBackAt = Math.min(sentAt + context.asyncSettleMs, now + Math.max(MIN_READ_BACK_GAP_MS, (now - sentAt) / 2));
      return { pending: { ...context.pending, readBackAt } };
    }),
    settle: assign(({ context, event }, params: { outcome: ChangeOutcomeKind }) => {
      if (!context.pending) return {};
      const rejection =
        event.type === 'DISPATCH.REJECTED'
          ? event.rejection
          : event.type === 'DISPATCH.SENT' && params.outcome === 'rejected'
            ? noLongerAllowed(context, context.pending)
            : undefined;
      const reason =
        event.type === 'DISPATCH.REJECTED'
          ? event.reason
          : rejection !== undefined
            ? rejection.message
            : params.outcome === 'superseded'
              ? supersededReason(context, event)
              : params.outcome === 'rejected'
                ? `The outcome stayed unknown after ${context.pending.sends} send(s); the read-back shows the change did not apply.`
                : undefined;
      const outcome: ChangeOutcome = {
        kind: params.outcome,
        status: context.pending.status,
        substatus: context.pending.substatus,
        requestNo: context.pending.requestNo,
        at: eventTime(event),
        ...(reason !== undefined ? { reason } : {}),
        ...(rejection !== undefined ? { rejection } : {}),
      };
      const chain = chainStepOutcome(context, event, params.outcome, reason, rejection);
      return { pending: null, lastOutcome: chain === undefined ? outcome : { ...outcome, chain } };
    }),
    // Effects: no implementation here. transition() hands them, with resolved params,
    // to the engine, which turns them into outbox rows, read-backs and operation rows.
    'effect.sendStatusChange': (_, _params: OrderEffectParams['effect.sendStatusChange']) => {},
    'effect.readBack': (_, _params: OrderEffectParams['effect.readBack']) => {},
    'effect.trackOperation': (_, _params: OrderEffectParams['effect.trackOperation']) => {},
    'effect.recordChangeState': (_, _params: OrderEffectParams['effect.recordChangeState']) => {},
    'effect.settleStatusChange': (_, _params: OrderEffectParams['effect.settleStatusChange']) => {},
    recordCancellationRequest: assign(({ event }) => (event.type === 'MARKET.OBSERVED' ? { cancellationRequestedAt: event.observedAt } : {})),
    clearCancellationRequest: assign({ cancellationRequestedAt: null }),
    recordAnswer: assign(({ context, event }) => {
      if (event.type !== 'SELLER.ANSWER_CANCELLATION') return {};
      // Numbered with the change requests: (order, request number) names one outbox row.
      const requestNo = context.requestCount + 1;
      const answer: PendingAnswer = {
        accepted: event.accepted,
        ...(event.reason !== undefined && isRefusalReason(event.reason) ? { reason: event.reason } : {}),
        requestNo,
        requestedAt: event.at,
        sends: 0,
      };
      return { cancellationAnswer: answer, requestCount: requestNo, lastAnswerRefusal: null };
    }),
    recordAnswerRefusal: assign(({ context, event }) => {
      if (event.type !== 'SELLER.ANSWER_CANCELLATION') return {};
      const verdict = judgeCancellationAnswer(context, event);
      return {
        lastAnswerRefusal: {
          accepted: event.accepted,
          ...(event.reason !== undefined ? { reason: event.reason } : {}),
          blockers: verdict.allowed ? [] : verdict.blockers,
          at: event.at,
        },
      };
    }),
    recordAnswerSent: assign(({ context, event }) => {
      if (!context.cancellationAnswer) return {};
      const { notBefore: _done, ...rest } = context.cancellationAnswer;
      return { cancellationAnswer: { ...rest, sends: rest.sends + 1, sentAt: eventTime(event) } };
    }),
    recordAnswerDeferral: assign(({ context, event }) => {
      if (!context.cancellationAnswer || event.type !== 'ANSWER.DEFERRED') return {};
      // Never reached the Market: not counted against maxSends.
      const answer = context.cancellationAnswer;
      return { cancellationAnswer: { ...answer, sends: Math.max(0, answer.sends - 1), notBefore: event.notBefore } };
    }),
    recordAnswerUncertain: assign(({ context, event }) => {
      if (!context.cancellationAnswer || event.type !== 'ANSWER.UNKNOWN') return {};
      const { readBackAt: _earlier, ...answer } = context.cancellationAnswer;
      return {
        cancellationAnswer: { ...answer, uncertainReason: event.reason, ...(event.readBackAt !== undefined ? { readBackAt: event.readBackAt } : {}) },
      };
    }),
    settleAnswer: assign(({ context, event }, params: { outcome: ChangeOutcomeKind }) => {
      const answer = context.cancellationAnswer;
      if (!answer) return {};
      const message = answerOutcomeMessage(context, event, params.outcome);
      const outcome: AnswerOutcome = {
        kind: params.outcome,
        accepted: answer.accepted,
        ...(answer.reason !== undefined ? { reason: answer.reason } : {}),
        requestNo: answer.requestNo,
        at: eventTime(event),
        ...(message !== undefined ? { message } : {}),
      };
      return { cancellationAnswer: null, lastCancellationAnswer: outcome };
    }),
    'effect.startCancellationDeadline': (_, _params: OrderEffectParams['effect.startCancellationDeadline']) => {},
    'effect.clearCancellationDeadline': (_, _params: OrderEffectParams['effect.clearCancellationDeadline']) => {},
    'effect.sendCancellationAnswer': (_, _params: OrderEffectParams['effect.sendCancellationAnswer']) => {},
    'effect.recordAnswerState': (_, _params: OrderEffectParams['effect.recordAnswerState']) => {},
    'effect.settleCancellationAnswer': (_, _params: OrderEffectParams['effect.settleCancellationAnswer']) => {},
  },
}).createMachine({
  id: 'order',
  type: 'parallel',
  context: ({ input }) => ({
    orderId: input.orderId,
    campaignId: input.campaignId,
    model: input.model,
    status: input.status,
    substatus: input.substatus ?? null,
    observedAt: input.observedAt,
    observedSource: input.source ?? 'import',
    pending: null,
    chain: null,
    lastOutcome: null,
    lastRefusal: null,
    requestCount: 0,
    cancellationRequestedAt: input.cancelRequested ? input.observedAt : null,
    cancellationAnswer: null,
    lastCancellationAnswer: null,
    lastAnswerRefusal: null,
    maxSends: input.maxSends ?? 3,
    asyncSettleMs: input.asyncSettleMs ?? DEFAULT_ASYNC_SETTLE_MS,
  }),
  states: {
    market: {
      initial: 'routing',
      on: {
        'MARKET.OBSERVED': { guard: 'isFreshObservation', target: '.routing', actions: 'applyObservation' },
        'DISPATCH.ACCEPTED': { guard: 'isFreshObservation', target: '.routing', actions: 'applyObservation' },
      },
      states: marketStates(),
    },
    cancellation: {
      description: 'DBS: a buyer asked to cancel; the shop answers within 48 h, or the Market cancels the order.',
      initial: 'checking',
      // An answer no substate takes is refused, with its blockers: never silently dropped.
      on: { 'SELLER.ANSWER_CANCELLATION': { actions: 'recordAnswerRefusal' } },
      states: {
        checking: {
          always: [{ guard: 'hasCancellationRequest', target: 'requested' }, { target: 'none' }],
        },
        none: {
          on: {
            'MARKET.OBSERVED': { guard: 'reportsCancellationRequest', target: 'requested', actions: 'recordCancellationRequest' },
          },
        },
        requested: {
          // The deadline is a value the engine keeps as a timer row, not an `after` delay.
          entry: {
            type: 'effect.startCancellationDeadline',
            params: ({ context }: { context: OrderContext }) => ({
              orderId: context.orderId,
              dueAt: (context.cancellationRequestedAt ?? 0) + DBS_CANCELLATION_ANSWER_MS,
            }),
          },
          exit: {
            type: 'effect.clearCancellationDeadline',
            params: ({ context }: { context: OrderContext }) => ({ orderId: context.orderId }),
          },
          on: {
            'MARKET.OBSERVED': { guard: 'endsCancellationRequest', target: 'none', actions: 'clearCancellationRequest' },
          },
          initial: 'unanswered',
          states: {
            unanswered: {
              on: { 'SELLER.ANSWER_CANCELLATION': { guard: 'isLegalAnswer', target: 'queued', actions: 'recordAnswer' } },
            },
            queued: {
              entry: {
                type: 'effect.sendCancellationAnswer',
                params: ({ context }: { context: OrderContext }) => ({
                  orderId: context.orderId,
                  campaignId: context.campaignId,
                  answer: present(context.cancellationAnswer, 'a pending answer', context),
                }),
              },
              on: {
                'ANSWER.SENT': { target: 'sending', actions: ['recordAnswerSent', recordAnswerState('sending', true)] },
                // Never sent (or proven not applied): whatever ended the request, it was not this answer.
                'MARKET.OBSERVED': { guard: 'endsCancellationRequest', ...settleAnswer('superseded', true) },
              },
            },
            sending: {
              on: {
                'ANSWER.ACCEPTED': settleAnswer('accepted', true),
                'ANSWER.REJECTED': settleAnswer('rejected', false),
                'ANSWER.UNKNOWN': { target: 'uncertain', actions: ['recordAnswerUncertain', recordAnswerState('uncertain')] },
                'ANSWER.DEFERRED': { target: 'queued', actions: ['recordAnswerDeferral', recordAnswerState('queued')] },
                'MARKET.OBSERVED': [
                  { guard: 'answerApplied', ...settleAnswer('accepted', true) },
                  { guard: 'endsCancellationRequest', ...settleAnswer('superseded', true) },
                ],
              },
            },
            uncertain: {
              description: 'The Market may or may not have the answer: read the order back before sending it again.',
              entry: {
                type: 'effect.readBack',
                params: ({ context }: { context: OrderContext }) => ({
                  orderId: context.orderId,
                  campaignId: context.campaignId,
                  requestNo: present(context.cancellationAnswer, 'a pending answer', context).requestNo,
                  notBefore: context.cancellationAnswer?.readBackAt,
                }),
              },
              on: {
                'ANSWER.ACCEPTED': settleAnswer('accepted', true),
                'ANSWER.REJECTED': settleAnswer('rejected', false),
                'MARKET.OBSERVED': [
                  { guard: 'answerApplied', ...settleAnswer('accepted', true) },
                  { guard: 'endsCancellationRequest', ...settleAnswer('superseded', true) },
                  { guard: 'answerReadBackAllowsResend', target: 'queued' },
                  { guard: 'answerReadBackShowsOpen', ...settleAnswer('rejected', false) },
                ],
              },
            },
          },
        },
      },
    },
    change: {
      initial: 'idle',
      // A step in flight (or one queued to be sent again) ends as it will; no step follows it.
      on: { 'SELLER.STOP_CHAIN': { guard: 'chainActive', actions: 'requestChainStop' } },
      states: {
        idle: {
          on: {
            'SELLER.REQUEST': [
              { guard: 'isLegalRequest', target: 'queued', actions: 'recordRequest' },
              { actions: 'recordRefusal' },
            ],
          },
        },
        queued: {
          entry: {
            type: 'effect.sendStatusChange',
            params: ({ context }: { context: OrderContext }) => ({
              orderId: context.orderId,
              campaignId: context.campaignId,
              pending: present(context.pending, 'a pending change', context),
            }),
          },
          on: {
            // Legal here only as the replacement of a chain's step not sent yet (judgeRequest):
            // the step is superseded and the new request queued in the same transition.
            'SELLER.REQUEST': [
              { guard: 'isLegalRequest', target: 'queued', reenter: true, actions: [...toIdle('superseded').actions, 'recordRequest'] },
              { actions: 'recordRefusal' },
            ],
            'SELLER.STOP_CHAIN': { guard: 'chainStepUnsent', ...toIdle('superseded') },
            // Judged again at send time, before any I/O: a change queued under older rules that
            // the current ones refuse is never sent.
            'DISPATCH.SENT': [
              ignoreOtherRequest,
              { guard: 'rulesRefusePending', ...toIdle('rejected') },
              { target: 'sending', actions: ['recordSent', recordChangeState('sending', true)] },
            ],
            // An OK answer for a row whose SENT was never recorded (a crash between the two):
            // the market region applies it, so the change must settle too.
            'DISPATCH.ACCEPTED': [ignoreOtherRequest, ...accepted()],
            'MARKET.OBSERVED': [...accepted('reachesTarget'), { guard: 'supersedesPending', ...toIdle('superseded') }],
          },
        },
        sending: {
          on: {
            'SELLER.REQUEST': { actions: 'recordRefusal' },
            'DISPATCH.ACCEPTED': [ignoreOtherRequest, ...accepted()],
            'DISPATCH.REJECTED': [ignoreOtherRequest, toIdle('rejected')],
            'DISPATCH.OPERATION_STARTED': [
              ignoreOtherRequest,
              { target: 'awaitingOperation', actions: ['recordOperation', recordChangeState('awaitingOperation')] },
            ],
            'DISPATCH.UNKNOWN': [ignoreOtherRequest, { target: 'uncertain', actions: ['recordUncertain', recordChangeState('uncertain')] }],
            // A deferred send never reached the Market; if the Market meanwhile moved the order
            // where the change no longer applies, queueing it again would send an illegal change.
            'DISPATCH.DEFERRED': [
              ignoreOtherRequest,
              { guard: 'pendingNoLongerLegal', ...toIdle('superseded') },
              { target: 'queued', actions: ['recordDeferral', recordChangeState('queued')] },
            ],
            'MARKET.OBSERVED': [...accepted('reachesTarget'), { guard: 'endsElsewhere', ...toIdle('superseded') }],
          },
        },
        awaitingOperation: {
          entry: {
            type: 'effect.trackOperation',
            params: ({ context }: { context: OrderContext }) => ({
              orderId: context.orderId,
              campaignId: context.campaignId,
              operationId: present(context.pending?.operationId, 'an operation id', context),
              operationType: present(context.pending?.operationType, 'an operation type', context),
            }),
          },
          on: {
            'SELLER.REQUEST': { actions: 'recordRefusal' },
            'DISPATCH.ACCEPTED': [ignoreOtherRequest, ...accepted()],
            'DISPATCH.REJECTED': [ignoreOtherRequest, toIdle('rejected')],
            'DISPATCH.UNKNOWN': [ignoreOtherRequest, { target: 'uncertain', actions: ['recordUncertain', recordChangeState('uncertain')] }],
            'MARKET.OBSERVED': [...accepted('reachesTarget'), { guard: 'endsElsewhere', ...toIdle('superseded') }],
          },
        },
        uncertain: {
          description: 'The Market may or may not have applied the change: read the order back before sending again.',
          entry: {
            type: 'effect.readBack',
            params: ({ context }: { context: OrderContext }) => ({
              orderId: context.orderId,
              campaignId: context.campaignId,
              requestNo: present(context.pending, 'a pending change', context).requestNo,
              notBefore: context.pending?.readBackAt,
            }),
          },
          on: {
            'SELLER.REQUEST': { actions: 'recordRefusal' },
            'DISPATCH.ACCEPTED': [ignoreOtherRequest, ...accepted()],
            'DISPATCH.REJECTED': [ignoreOtherRequest, toIdle('rejected')],
            'MARKET.OBSERVED': [
              ...accepted('reachesTarget'),
              { guard: 'supersedesPending', ...toIdle('superseded') },
              { guard: 'readBackInconclusive', target: 'uncertain', reenter: true, actions: 'scheduleReadBack' },
              { guard: 'readBackAllowsResend', target: 'queued' },
              { guard: 'readBackShowsNotApplied', ...toIdle('rejected') },
            ],
          },
        },
      },
    },
  },
});
