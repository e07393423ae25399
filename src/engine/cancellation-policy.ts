// What the engine does about DBS buyers' cancellation requests nobody has answered. `report` (the
// default) only lists them (engine.openCancellations, `ym-orders cancellations`) for a person to
// answer; `autoAccept` accepts each one whose 48 h deadline is near, so that none reaches the
// deadline unanswered. Accepting is what the Market does itself at the deadline, so it is the one
// answer safe to give without a person; a refusal always needs one (it names a reason).

import { z } from 'zod';
import { DBS_CANCELLATION_ANSWER_MS } from '../../machines/order-machine.js';
import type { Store } from '../store/port.js';
import { inLockOrder } from './concurrency.js';
import { InvalidOptionError } from './errors.js';
import { TIMER_KINDS, type OrderBook, type OrderState } from './order-book.js';

export const CANCELLATION_POLICY_MODES = ['report', 'autoAccept'] as const;
export type CancellationPolicyMode = (typeof CANCELLATION_POLICY_MODES)[number];

export interface CancellationPolicy {
  readonly mode: CancellationPolicyMode;
  /** autoAccept: accept a request once its deadline is this close (ms). */
  readonly acceptBeforeMs: number;
}

/** What EngineOptions.cancellationPolicy takes. */
export interface CancellationPolicyOptions {
  readonly mode: CancellationPolicyMode;
  /** Default 2 h before the 48 h deadline. */
  readonly acceptBeforeMs?: number;
}

export const DEFAULT_ACCEPT_BEFORE_MS = 2 * 60 * 60 * 1000;

export const DEFAULT_CANCELLATION_POLICY: CancellationPolicy = { mode: 'report', acceptBeforeMs: DEFAULT_ACCEPT_BEFORE_MS };

const policySchema = z.strictObject({
  mode: z.enum(CANCELLATION_POLICY_MODES),
  acceptBeforeMs: z.number().int().min(0).max(DBS_CANCELLATION_ANSWER_MS).optional(),
});

/** Checks and completes the option; a value of the wrong shape throws INVALID_OPTION (nothing is opened). */
export function resolveCancellationPolicy(options: CancellationPolicyOptions | undefined): CancellationPolicy {
  if (options === undefined) return DEFAULT_CANCELLATION_POLICY;
  const parsed = policySchema.safeParse(options);
  if (!parsed.success) {
    throw new InvalidOptionError(parsed.error.issues.map((i) => ({ path: ['cancellationPolicy', ...i.path.map(String)].join('.'), message: i.message })));
  }
  return { mode: parsed.data.mode, acceptBeforeMs: parsed.data.acceptBeforeMs ?? DEFAULT_ACCEPT_BEFORE_MS };
}

/**
 * Whether the policy should accept this open request now: nobody answered it, and no answer to
 * it was refused by the Market (that one waits for a person, rather than being sent every round).
 */
function awaitsAutoAccept(order: OrderState): boolean {
  if (order.cancellation !== 'unanswered' || order.cancellationRequestedAt === null) return false;
  const last = order.lastCancellationAnswer;
  return !(last !== null && last.kind === 'rejected' && last.at >= order.cancellationRequestedAt);
}

/**
 * In autoAccept mode, queues an accept for every open request whose deadline is within
 * acceptBeforeMs (the `dbs.cancellationAnswer` timers); the next send phase sends them. Returns
 * how many it queued; report mode queues none. Reads first, so a round with nothing to accept
 * writes nothing; each order is judged again inside the writing transaction.
 */
export async function answerDueCancellations(deps: { readonly store: Store; readonly orders: OrderBook; readonly clock: () => number }): Promise<number> {
  const policy = deps.orders.cancellationPolicy;
  if (policy.mode !== 'autoAccept') return 0;
  const dueBefore = deps.clock() + policy.acceptBeforeMs;
  const candidates = await deps.store.read(async (tx) => {
    const ids: number[] = [];
    for (const timer of await tx.timers.list(TIMER_KINDS.dbsCancellationAnswer, dueBefore)) {
      const order = await deps.orders.find(tx, Number(timer.ref));
      if (order && awaitsAutoAccept(order)) ids.push(order.orderId);
    }
    return ids;
  });
  if (candidates.length === 0) return 0;
  const now = deps.clock();
  return deps.store.transaction(async (tx) => {
    let queued = 0;
    for (const orderId of inLockOrder(candidates, (id) => id)) {
      const order = await deps.orders.find(tx, orderId);
      // Another process (or a person) may have answered it meanwhile.
      if (!order || !awaitsAutoAccept(order)) continue;
      await deps.orders.answerCancellation(tx, orderId, { accepted: true }, now);
      queued++;
    }
    return queued;
  });
}
