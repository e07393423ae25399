// One asynchronous Market operation (getOperations): IN_PROGRESS → DONE | FAILED.
// The poll schedule and the deadline are data in context, never `after` delays: the
// engine stores `nextPollAt` and `deadlineAt` as rows, so polling resumes after a restart.

import { assign, setup } from 'xstate';
import { effectsAmong, type EffectOf } from './effects.js';
import type { OperationStatus, OperationType } from './statuses.js';

export const OPERATION_MACHINE_VERSION = 1;

/** How often to poll: a plain policy object (first interval, growth, cap). */
export interface PollPolicy {
  readonly initialIntervalMs: number;
  readonly backoffCoefficient: number;
  readonly maximumIntervalMs: number;
  /** Give up waiting this long after the operation started. */
  readonly timeoutMs: number;
}

export const DEFAULT_POLL_POLICY: PollPolicy = {
  initialIntervalMs: 2_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
  timeoutMs: 60 * 60_000,
};

export interface OperationContext {
  readonly operationId: string;
  readonly operationType: OperationType;
  readonly businessId: number;
  /** The order whose change this operation carries, if any. */
  readonly orderId: number | null;
  readonly startedAt: number;
  readonly deadlineAt: number;
  readonly nextPollAt: number;
  readonly pollCount: number;
  readonly lastPolledAt: number | null;
  /** The last status the Market reported, verbatim (it may be a value no list has). */
  readonly lastStatus: OperationStatus;
  readonly policy: PollPolicy;
}

export interface OperationInput {
  readonly operationId: string;
  readonly operationType: OperationType;
  readonly businessId: number;
  readonly orderId?: number | null;
  readonly startedAt: number;
  readonly policy?: Partial<PollPolicy>;
}

export type OperationEvent =
  | { readonly type: 'POLL.RESULT'; readonly status: OperationStatus; readonly at: number }
  | { readonly type: 'POLL.CHECK_DEADLINE'; readonly at: number };

/** The params of each effect the machine asks the engine to carry out, by action type. */
export interface OperationEffectParams {
  /** Poll again at `nextPollAt` (the operation row's next due time). */
  readonly 'effect.schedulePoll': { readonly nextPollAt: number };
  readonly 'effect.operationDone': { readonly orderId: number | null };
  readonly 'effect.operationFailed': { readonly orderId: number | null; readonly reason: string };
  /** No final status before the deadline: the change is given up without a resend, since the operation may still finish. */
  readonly 'effect.operationExpired': { readonly orderId: number | null; readonly reason: string };
}

export type OperationEffectType = keyof OperationEffectParams;

/** One effect with its params: a union discriminated by `type`. */
export type OperationEffect = EffectOf<OperationEffectParams>;

const OPERATION_EFFECT_TYPES: Readonly<Record<OperationEffectType, true>> = {
  'effect.schedulePoll': true,
  'effect.operationDone': true,
  'effect.operationFailed': true,
  'effect.operationExpired': true,
};

/** The effects among the actions `transition(operationMachine, …)` returns, typed (see orderEffects). */
export function operationEffects(actions: readonly { readonly type: string; readonly params?: unknown }[]): OperationEffect[] {
  return effectsAmong<OperationEffectParams>(OPERATION_EFFECT_TYPES, actions);
}

/** The wait before poll number `pollCount + 1`. */
export function pollInterval(policy: PollPolicy, pollCount: number): number {
  return Math.min(policy.maximumIntervalMs, policy.initialIntervalMs * policy.backoffCoefficient ** pollCount);
}

export const operationMachine = setup({
  types: {
    context: {} as OperationContext,
    events: {} as OperationEvent,
    input: {} as OperationInput,
  },
  guards: {
    reportsDone: ({ event }) => event.type === 'POLL.RESULT' && event.status === 'DONE',
    reportsFailed: ({ event }) => event.type === 'POLL.RESULT' && event.status === 'FAILED',
    isPastDeadline: ({ context, event }) => event.at >= context.deadlineAt,
  },
  actions: {
    recordPoll: assign(({ context, event }) => {
      const pollCount = context.pollCount + 1;
      return {
        pollCount,
        lastPolledAt: event.at,
        lastStatus: event.type === 'POLL.RESULT' ? event.status : context.lastStatus,
        nextPollAt: Math.min(context.deadlineAt, event.at + pollInterval(context.policy, pollCount)),
      };
    }),
    'effect.schedulePoll': (_, _params: OperationEffectParams['effect.schedulePoll']) => {},
    'effect.operationDone': (_, _params: OperationEffectParams['effect.operationDone']) => {},
    'effect.operationFailed': (_, _params: OperationEffectParams['effect.operationFailed']) => {},
    'effect.operationExpired': (_, _params: OperationEffectParams['effect.operationExpired']) => {},
  },
}).createMachine({
  id: 'operation',
  initial: 'inProgress',
  context: ({ input }) => {
    const policy = { ...DEFAULT_POLL_POLICY, ...input.policy };
    return {
      operationId: input.operationId,
      operationType: input.operationType,
      businessId: input.businessId,
      orderId: input.orderId ?? null,
      startedAt: input.startedAt,
      deadlineAt: input.startedAt + policy.timeoutMs,
      nextPollAt: input.startedAt + policy.initialIntervalMs,
      pollCount: 0,
      lastPolledAt: null,
      lastStatus: 'IN_PROGRESS',
      policy,
    };
  },
  states: {
    inProgress: {
      on: {
        'POLL.RESULT': [
          { guard: 'reportsDone', target: 'done', actions: 'recordPoll' },
          { guard: 'reportsFailed', target: 'failed', actions: 'recordPoll' },
          // IN_PROGRESS, or a status no list has: keep polling until the deadline.
          { guard: 'isPastDeadline', target: 'expired', actions: 'recordPoll' },
          {
            actions: [
              'recordPoll',
              { type: 'effect.schedulePoll', params: ({ context }: { context: OperationContext }) => ({ nextPollAt: context.nextPollAt }) },
            ],
          },
        ],
        'POLL.CHECK_DEADLINE': { guard: 'isPastDeadline', target: 'expired' },
      },
    },
    done: {
      type: 'final',
      entry: { type: 'effect.operationDone', params: ({ context }: { context: OperationContext }) => ({ orderId: context.orderId }) },
    },
    failed: {
      type: 'final',
      entry: { type: 'effect.operationFailed', params: ({ context }: { context: OperationContext }) => ({ orderId: context.orderId, reason: `Operation ${context.operationId} FAILED at the Market.` }) },
    },
    expired: {
      type: 'final',
      description: 'No final status before the deadline: the operation may still finish, so the engine gives the change up without sending it again; a sync or a notification shows what happened.',
      entry: { type: 'effect.operationExpired', params: ({ context }: { context: OperationContext }) => ({ orderId: context.orderId, reason: `Operation ${context.operationId} still ${context.lastStatus} at its deadline.` }) },
    },
  },
});
