// The order machine: two parallel regions.
//  - `market` mirrors the order's status at the Market. Every observation routes through the
//    transient `routing` state, whose `always` table picks the state for the observed status,
//    so the Market can move the order from anywhere (it is the source of truth) and one table
//    serves the initial state, observations and accepted changes alike.
//  - `change` is the seller's pending change: idle → queued → sending → (awaitingOperation |
//    uncertain) → idle, ending accepted, rejected or superseded.
// No I/O and no clock: time arrives in events (`at`, `observedAt`), and effects are named
// `effect.*` actions that `transition()` returns for the engine to carry out.

import { assign, setup } from 'xstate';
import { effectsAmong, type EffectOf } from './effects.js';
import { explainTransition, type Blocker, type Explanation, type TransitionRequest } from './explain.js';
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
 * change is conclusive).
 */
export const ORDER_MACHINE_VERSION = 3;

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
}

export interface Refusal {
  readonly status: KnownOrderStatus;
  readonly substatus?: KnownOrderSubstatus;
  readonly blockers: readonly Blocker[];
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
  readonly lastOutcome: ChangeOutcome | null;
  readonly lastRefusal: Refusal | null;
  readonly requestCount: number;
  /**
   * DBS: when the Market first reported the buyer's cancellation request (`cancelRequested`),
   * or null. The shop answers it within 48 h, or the Market cancels the order itself.
   */
  readonly cancellationRequestedAt: number | null;
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
      readonly at: number;
    }
  | { readonly type: 'DISPATCH.SENT'; readonly at: number }
  | { readonly type: 'DISPATCH.ACCEPTED'; readonly at: number; readonly status?: OrderStatus; readonly substatus?: OrderSubstatus | null }
  | { readonly type: 'DISPATCH.REJECTED'; readonly at: number; readonly reason: string; readonly rejection?: Rejection }
  | { readonly type: 'DISPATCH.OPERATION_STARTED'; readonly at: number; readonly operationId: string; readonly operationType: string }
  /** `readBackAt`: read the order back not before then (a struggling Market is not asked again at once). */
  | { readonly type: 'DISPATCH.UNKNOWN'; readonly at: number; readonly reason: string; readonly readBackAt?: number }
  | { readonly type: 'DISPATCH.DEFERRED'; readonly at: number; readonly notBefore: number; readonly reason: string };

export type OrderEventType = OrderEvent['type'];

/** The params of each effect the machine asks the engine to carry out, by action type. */
export interface OrderEffectParams {
  /** Queue the pending change for sending (an outbox row). */
  readonly 'effect.sendStatusChange': { readonly orderId: number; readonly campaignId: number; readonly pending: PendingChange };
  /** Read the order back before sending again; not before `notBefore` when set. */
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
  if (event.type === 'DISPATCH.ACCEPTED' && context.pending) {
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

/**
 * The one judge of a seller request: the rules, from where the machine has the order, with the
 * change already pending. The machine's guard, its refusal record and the engine all ask it.
 */
export function judgeRequest(
  context: Pick<OrderContext, 'status' | 'substatus' | 'pending' | 'model'>,
  target: TransitionRequest,
  now?: number,
): Explanation {
  return explainTransition(
    { status: context.status, substatus: context.substatus ?? undefined, pending: context.pending },
    target,
    context.model,
    now === undefined ? {} : { now },
  );
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
    reportsCancellationRequest: ({ context, event }) =>
      event.type === 'MARKET.OBSERVED' && event.cancelRequested === true && isFreshEvent(context, event),
    // The request ends when the Market drops the flag or the order reaches a final status.
    endsCancellationRequest: ({ context, event }) =>
      event.type === 'MARKET.OBSERVED' &&
      isFreshEvent(context, event) &&
      (event.cancelRequested === false || isTerminalStatus(event.status)),
    isFreshObservation: ({ context, event }) => isFreshEvent(context, event),
    isLegalRequest: ({ context, event }) => event.type === 'SELLER.REQUEST' && judgeRequest(context, event, event.at).allowed,
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
      const rule = findSellerRule(context.model, { status: context.status, substatus: context.substatus ?? undefined }, event);
      const requestNo = context.requestCount + 1;
      const pending: PendingChange = {
        status: event.status,
        substatus: event.substatus ?? '',
        ...(event.realDeliveryDate !== undefined ? { realDeliveryDate: event.realDeliveryDate } : {}),
        requestNo,
        requestedAt: event.at,
        sends: 0,
        async: rule?.async === true,
      };
      return { pending, requestCount: requestNo, lastRefusal: null };
    }),
    recordRefusal: assign(({ context, event }) => {
      if (event.type !== 'SELLER.REQUEST') return {};
      const explanation = judgeRequest(context, event, event.at);
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
      return { pending: null, lastOutcome: outcome };
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
    'effect.startCancellationDeadline': (_, _params: OrderEffectParams['effect.startCancellationDeadline']) => {},
    'effect.clearCancellationDeadline': (_, _params: OrderEffectParams['effect.clearCancellationDeadline']) => {},
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
    lastOutcome: null,
    lastRefusal: null,
    requestCount: 0,
    cancellationRequestedAt: input.cancelRequested ? input.observedAt : null,
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
        },
      },
    },
    change: {
      initial: 'idle',
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
            'SELLER.REQUEST': { actions: 'recordRefusal' },
            // Judged again at send time, before any I/O: a change queued under older rules that
            // the current ones refuse is never sent.
            'DISPATCH.SENT': [
              { guard: 'rulesRefusePending', ...toIdle('rejected') },
              { target: 'sending', actions: ['recordSent', recordChangeState('sending', true)] },
            ],
            // An OK answer for a row whose SENT was never recorded (a crash between the two):
            // the market region applies it, so the change must settle too.
            'DISPATCH.ACCEPTED': toIdle('accepted'),
            'MARKET.OBSERVED': [
              { guard: 'reachesTarget', ...toIdle('accepted') },
              { guard: 'supersedesPending', ...toIdle('superseded') },
            ],
          },
        },
        sending: {
          on: {
            'SELLER.REQUEST': { actions: 'recordRefusal' },
            'DISPATCH.ACCEPTED': toIdle('accepted'),
            'DISPATCH.REJECTED': toIdle('rejected'),
            'DISPATCH.OPERATION_STARTED': { target: 'awaitingOperation', actions: ['recordOperation', recordChangeState('awaitingOperation')] },
            'DISPATCH.UNKNOWN': { target: 'uncertain', actions: ['recordUncertain', recordChangeState('uncertain')] },
            // A deferred send never reached the Market; if the Market meanwhile moved the order
            // where the change no longer applies, queueing it again would send an illegal change.
            'DISPATCH.DEFERRED': [
              { guard: 'pendingNoLongerLegal', ...toIdle('superseded') },
              { target: 'queued', actions: ['recordDeferral', recordChangeState('queued')] },
            ],
            'MARKET.OBSERVED': [
              { guard: 'reachesTarget', ...toIdle('accepted') },
              { guard: 'endsElsewhere', ...toIdle('superseded') },
            ],
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
            'DISPATCH.ACCEPTED': toIdle('accepted'),
            'DISPATCH.REJECTED': toIdle('rejected'),
            'DISPATCH.UNKNOWN': { target: 'uncertain', actions: ['recordUncertain', recordChangeState('uncertain')] },
            'MARKET.OBSERVED': [
              { guard: 'reachesTarget', ...toIdle('accepted') },
              { guard: 'endsElsewhere', ...toIdle('superseded') },
            ],
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
            'DISPATCH.ACCEPTED': toIdle('accepted'),
            'DISPATCH.REJECTED': toIdle('rejected'),
            'MARKET.OBSERVED': [
              { guard: 'reachesTarget', ...toIdle('accepted') },
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
