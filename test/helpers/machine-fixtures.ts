// Shared fixtures for the machine suites: inputs, call evidence that meets the documented
// conditions, concrete states matching a rule's `from` pattern, and a pure stepper over
// XState's transition()/initialTransition() that returns the effects with resolved params.

import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { CallLog } from '../../machines/call-evidence.js';
import type { StatusPattern } from '../../machines/rules.js';
import { orderMachine, type OrderEvent, type OrderInput } from '../../machines/order-machine.js';
import type { FulfilmentModel } from '../../machines/statuses.js';

export type OrderSnapshot = SnapshotFrom<typeof orderMachine>;

export interface Effect {
  readonly type: string;
  readonly params: Record<string, unknown>;
}

export interface Step {
  readonly snapshot: OrderSnapshot;
  readonly effects: Effect[];
  /** Every action transition() returned, effect or not. */
  readonly actionTypes: string[];
}

export const ORDER_ID = 4242;
export const CAMPAIGN_ID = 77;
export const T0 = Date.UTC(2025, 4, 12, 9, 0, 0); // 2025-05-12T09:00:00Z

export function orderInput(
  model: FulfilmentModel,
  status: string,
  substatus: string | null = null,
  extra: Partial<OrderInput> = {},
): OrderInput {
  return { orderId: ORDER_ID, campaignId: CAMPAIGN_ID, model, status, substatus, observedAt: T0, source: 'import', ...extra };
}

function effectsOf(actions: readonly { type: string; params?: unknown }[]): Effect[] {
  return actions
    .filter((a) => a.type.startsWith('effect.'))
    .map((a) => ({ type: a.type, params: (a.params ?? {}) as Record<string, unknown> }));
}

export function start(
  model: FulfilmentModel,
  status: string,
  substatus: string | null = null,
  extra: Partial<OrderInput> = {},
): Step {
  const [snapshot, actions] = initialTransition(orderMachine, orderInput(model, status, substatus, extra));
  return { snapshot, effects: effectsOf(actions), actionTypes: actions.map((a) => a.type) };
}

export function step(snapshot: OrderSnapshot, event: OrderEvent): Step {
  const [next, actions] = transition(orderMachine, snapshot, event);
  return { snapshot: next, effects: effectsOf(actions), actionTypes: actions.map((a) => a.type) };
}

/** Steps through events in order, returning every intermediate step. */
export function run(snapshot: OrderSnapshot, events: readonly OrderEvent[]): Step[] {
  const steps: Step[] = [];
  let current = snapshot;
  for (const event of events) {
    const s = step(current, event);
    steps.push(s);
    current = s.snapshot;
  }
  return steps;
}

export function changeState(snapshot: OrderSnapshot): string {
  return (snapshot.value as { change: string }).change;
}

/** The market region's state as a dotted path, e.g. `PROCESSING.STARTED` or `DELIVERY`. */
export function marketState(snapshot: OrderSnapshot): string {
  const market = (snapshot.value as { market: string | Record<string, string> }).market;
  if (typeof market === 'string') return market;
  const [parent, child] = Object.entries(market)[0]!;
  return `${parent}.${child}`;
}

/** Three 10-second calls at 09:00, 10:00 and 10:30 Moscow time: meets every condition. */
export const VALID_CALL_EVIDENCE: CallLog = {
  buyerTimeZone: 'Europe/Moscow',
  calls: [
    { startedAt: '2025-05-12T09:00:00+03:00', connectedSeconds: 10 },
    { startedAt: '2025-05-12T10:00:00+03:00', connectedSeconds: 10 },
    { startedAt: '2025-05-12T10:30:00+03:00', connectedSeconds: 10 },
  ],
};

/** Representative substatuses per status, used to make a `from` pattern concrete. */
const REPRESENTATIVE_SUBSTATUSES: Record<string, readonly (string | undefined)[]> = {
  RESERVED: [undefined, 'AWAIT_CONFIRMATION'],
  PROCESSING: ['STARTED', 'READY_TO_SHIP', 'SHIPPED', 'PACKAGING', undefined],
  DELIVERY: ['DELIVERY_SERVICE_RECEIVED', 'USER_RECEIVED', 'DELIVERY_USER_NOT_RECEIVED'],
  PICKUP: ['PICKUP_SERVICE_RECEIVED', 'PICKUP_USER_RECEIVED'],
};

export interface ConcreteState {
  readonly status: string;
  readonly substatus?: string | undefined;
}

/** Concrete order states that match `pattern`: itself when it names a substatus, else several. */
export function concreteStates(pattern: StatusPattern): ConcreteState[] {
  if (pattern.substatus !== undefined) return [{ status: pattern.status, substatus: pattern.substatus }];
  const subs = REPRESENTATIVE_SUBSTATUSES[pattern.status] ?? [undefined];
  return subs.map((substatus) => ({ status: pattern.status, substatus }));
}

export function label(state: { status: string; substatus?: string | null | undefined }): string {
  return state.substatus === undefined || state.substatus === null ? state.status : `${state.status}/${state.substatus}`;
}
