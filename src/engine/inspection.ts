// Live inspection. The engine computes every change with the pure transition() and keeps no
// actors; when an inspector is configured, it also mirrors each inspected order into a real
// XState actor (restored from the stored snapshot) and sends it the same event, so tools such
// as the Stately inspector (@statelyai/inspect) see ordinary actors, snapshots and events.

import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { orderMachine, type OrderEvent } from '../../machines/order-machine.js';
import type { OrderSnapshot } from './order-snapshots.js';

export type Inspector = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

export interface InspectOptions {
  /** Mirror only these orders (default: every order the engine touches). */
  readonly orderIds?: readonly number[];
  /** How many live actors to keep; the least recently used is stopped first. */
  readonly maxActors?: number;
}

export class OrderInspection {
  readonly #inspect: Inspector;
  readonly #only: ReadonlySet<number> | undefined;
  readonly #maxActors: number;
  readonly #actors = new Map<number, Actor<typeof orderMachine>>();

  constructor(inspect: Inspector, options: InspectOptions = {}) {
    this.#inspect = inspect;
    this.#only = options.orderIds ? new Set(options.orderIds) : undefined;
    this.#maxActors = options.maxActors ?? 1_000;
  }

  /** Replays `event` on the order's live actor, restoring it from `before` if it is missing or behind. */
  step(orderId: number, before: OrderSnapshot, event: OrderEvent): void {
    if (this.#only && !this.#only.has(orderId)) return;
    let actor = this.#actors.get(orderId);
    const stored = JSON.stringify(orderMachine.getPersistedSnapshot(before));
    if (!actor || JSON.stringify(actor.getPersistedSnapshot()) !== stored) {
      actor?.stop();
      const { context } = before;
      actor = createActor(orderMachine, {
        snapshot: JSON.parse(stored),
        // Ignored when restoring from a snapshot, but the machine's input type requires it.
        input: { orderId, campaignId: context.campaignId, model: context.model, status: context.status, observedAt: context.observedAt },
        inspect: this.#inspect,
        id: `order-${orderId}`,
      });
      actor.start();
    }
    this.#actors.delete(orderId);
    this.#actors.set(orderId, actor);
    actor.send(event);
    if (this.#actors.size > this.#maxActors) {
      const [oldest, oldestActor] = this.#actors.entries().next().value!;
      oldestActor.stop();
      this.#actors.delete(oldest);
    }
  }

  stop(): void {
    for (const actor of this.#actors.values()) actor.stop();
    this.#actors.clear();
  }
}
