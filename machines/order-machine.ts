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
import { explainTransition, type Blocker } from './explain.js';
import type { CallEvidence } from './call-evidence.js';
import { findSellerRule, isTerminalStatus } from './rules.js';
import { ORDER_STATUSES, type FulfilmentModel } from './statuses.js';

/**
 * Bumped whenever the stored snapshot's shape changes; src/engine/order-snapshots.ts holds the
 * migration from each older version. v2: `cancellationRequestedAt` (DBS buyer cancellation
 * requests) and `pending.operationType`; v3: `asyncSettleMs` (when a read-back of an async
 * change is conclusive).
 */
export const ORDER_MACHINE_VERSION = 3;

/** A DBS buyer's cancellation request is cancelled by the Market if the shop does not answer in 48 h (NOTES.md §d). */
/** How long after sending an async change (LaaS) a read-back showing "not yet" proves nothing. */
export const DEFAULT_ASYNC_SETTLE_MS = 60_000;

/** The shortest wait before reading an inconclusive async change back again. */
const MIN_READ_BACK_GAP_MS = 250;

export const DBS_CANCELLATION_ANSWER_MS = 48 * 60 * 60 * 1000;

export const OBSERVATION_SOURCES = ['import', 'sync', 'readBack', 'dispatch', 'operation', 'notification'] as const;
export type ObservationSource = (typeof OBSERVATION_SOURCES)[number];

export interface PendingChange {
  readonly status: string;
  readonly substatus: string;
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

export interface ChangeOutcome {
  readonly kind: ChangeOutcomeKind;
  readonly status: string;
  readonly substatus: string;
  readonly requestNo: number;
  readonly at: number;
  readonly reason?: string;
}

export interface Refusal {
  readonly status: string;
  readonly substatus?: string;
  readonly blockers: readonly Blocker[];
  readonly at: number;
}

export interface OrderContext {
  readonly orderId: number;
  readonly campaignId: number;
  readonly model: FulfilmentModel;
  /** Verbatim from the Market: may be a value no list has. */
  readonly status: string;
  readonly substatus: string | null;
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
  readonly status: string;
  readonly substatus?: string | null;
  readonly observedAt: number;
  readonly source?: ObservationSource;
  readonly cancelRequested?: boolean;
  readonly maxSends?: number;
  readonly asyncSettleMs?: number;
}

export type OrderEvent =
  | {
      readonly type: 'MARKET.OBSERVED';
      readonly status: string;
      readonly substatus?: string | null;
      readonly observedAt: number;
      readonly source: ObservationSource;
      /** DBS: the Market's `cancelRequested` flag, when the observation carries it. */
      readonly cancelRequested?: boolean;
    }
  | {
      readonly type: 'SELLER.REQUEST';
      readonly status: string;
      readonly substatus?: string;
      readonly callEvidence?: CallEvidence;
      readonly realDeliveryDate?: string;
      readonly at: number;
    }
  | { readonly type: 'DISPATCH.SENT'; readonly at: number }
  | { readonly type: 'DISPATCH.ACCEPTED'; readonly at: number; readonly status?: string; readonly substatus?: string | null }
  | { readonly type: 'DISPATCH.REJECTED'; readonly at: number; readonly reason: string }
  | { readonly type: 'DISPATCH.OPERATION_STARTED'; readonly at: number; readonly operationId: string; readonly operationType: string }
  | { readonly type: 'DISPATCH.UNKNOWN'; readonly at: number; readonly reason: string }
  | { readonly type: 'DISPATCH.DEFERRED'; readonly at: number; readonly notBefore: number; readonly reason: string };

export type OrderEventType = OrderEvent['type'];

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

function marketStates() {
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
  return states;
}

const toIdle = (outcome: ChangeOutcomeKind) => ({
  target: 'idle' as const,
  actions: [
    { type: 'settle' as const, params: { outcome } },
    {
      type: 'effect.settleStatusChange' as const,
      params: ({ context }: { context: OrderContext }) => ({
        orderId: context.orderId,
        campaignId: context.campaignId,
        outcome: context.lastOutcome,
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
    isLegalRequest: ({ context, event }) =>
      event.type === 'SELLER.REQUEST' &&
      explainTransition(
        { status: context.status, substatus: context.substatus ?? undefined, pending: context.pending },
        event,
        context.model,
        { now: event.at },
      ).allowed,
    reachesTarget: ({ context, event }) => reachesTarget(context, event),
    // Only a fresh observation supersedes: a stale one changes nothing, in any state.
    supersedesPending: ({ context, event }) =>
      isFreshEvent(context, event) && !reachesTarget(context, event) && !pendingStillLegal(context, event),
    // The change no longer applies where the Market now has the order (it moved while sending).
    pendingNoLongerLegal: ({ context, event }) => !pendingStillLegal(context, event),
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
      const explanation = explainTransition(
        { status: context.status, substatus: context.substatus ?? undefined, pending: context.pending },
        event,
        context.model,
        { now: event.at },
      );
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
      return { pending: { ...pending, uncertainReason: event.reason } };
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
      const reason =
        event.type === 'DISPATCH.REJECTED'
          ? event.reason
          : params.outcome === 'superseded'
            ? `The Market moved the order to ${marketStateAfter(context, event).status}, from where the change no longer applies.`
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
      };
      return { pending: null, lastOutcome: outcome };
    }),
    // Effects: no implementation here. transition() hands them, with resolved params,
    // to the engine, which turns them into outbox rows, read-backs and operation rows.
    'effect.sendStatusChange': () => {},
    'effect.readBack': () => {},
    'effect.trackOperation': () => {},
    'effect.settleStatusChange': () => {},
    recordCancellationRequest: assign(({ event }) => (event.type === 'MARKET.OBSERVED' ? { cancellationRequestedAt: event.observedAt } : {})),
    clearCancellationRequest: assign({ cancellationRequestedAt: null }),
    'effect.startCancellationDeadline': () => {},
    'effect.clearCancellationDeadline': () => {},
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
              pending: context.pending,
            }),
          },
          on: {
            'SELLER.REQUEST': { actions: 'recordRefusal' },
            'DISPATCH.SENT': { target: 'sending', actions: 'recordSent' },
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
            'DISPATCH.OPERATION_STARTED': { target: 'awaitingOperation', actions: 'recordOperation' },
            'DISPATCH.UNKNOWN': { target: 'uncertain', actions: 'recordUncertain' },
            // A deferred send never reached the Market; if the Market meanwhile moved the order
            // where the change no longer applies, queueing it again would send an illegal change.
            'DISPATCH.DEFERRED': [
              { guard: 'pendingNoLongerLegal', ...toIdle('superseded') },
              { target: 'queued', actions: 'recordDeferral' },
            ],
            'MARKET.OBSERVED': { guard: 'reachesTarget', ...toIdle('accepted') },
          },
        },
        awaitingOperation: {
          entry: {
            type: 'effect.trackOperation',
            params: ({ context }: { context: OrderContext }) => ({
              orderId: context.orderId,
              campaignId: context.campaignId,
              operationId: context.pending?.operationId,
              operationType: context.pending?.operationType,
            }),
          },
          on: {
            'SELLER.REQUEST': { actions: 'recordRefusal' },
            'DISPATCH.ACCEPTED': toIdle('accepted'),
            'DISPATCH.REJECTED': toIdle('rejected'),
            'DISPATCH.UNKNOWN': { target: 'uncertain', actions: 'recordUncertain' },
            'MARKET.OBSERVED': { guard: 'reachesTarget', ...toIdle('accepted') },
          },
        },
        uncertain: {
          description: 'The Market may or may not have applied the change: read the order back before sending again.',
          entry: {
            type: 'effect.readBack',
            params: ({ context }: { context: OrderContext }) => ({
              orderId: context.orderId,
              campaignId: context.campaignId,
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
