// The order book: the one place order snapshots change. Each change is computed by the
// machine's pure transition() and written with its journal row and its effects (outbox rows,
// operation rows) in the caller's write transaction, so they land together or not at all.

import { initialTransition, transition } from 'xstate';
import { explainTransition, type Explanation } from '../../machines/explain.js';
import {
  orderMachine,
  ORDER_MACHINE_VERSION,
  type ChangeOutcome,
  type OrderEvent,
  type PendingChange,
  type Refusal,
} from '../../machines/order-machine.js';
import type { FulfilmentModel, OrderStatus, OrderSubstatus } from '../../machines/statuses.js';
import { readMarketRefusal } from '../market/refusals.js';
import type { JournalRow } from '../store/journal-table.js';
import type { OrderRow } from '../store/orders-table.js';
import type { OutboxState } from '../store/outbox-table.js';
import type { Store } from '../store/store.js';
import type { CampaignConfig } from './commands.js';
import {
  CampaignUnknownError,
  ChangeRefusedError,
  ConcurrentUpdateError,
  ImportConflictError,
  OrderNotFoundError,
} from './errors.js';
import { changeState, loadOrderSnapshot, marketStatePath, serializeOrderSnapshot, type OrderSnapshot } from './order-snapshots.js';
import type { OperationBook } from './operation-book.js';
import type { OrderInspection } from './inspection.js';

/** An order as callers see it: the Market's status, the machine's states and the pending change. */
export interface OrderState {
  readonly orderId: number;
  readonly campaignId: number;
  readonly model: FulfilmentModel;
  /** As the Market reports it: a known value, or any other kept verbatim. */
  readonly status: OrderStatus;
  readonly substatus: OrderSubstatus | null;
  /** The market region's state, e.g. `PROCESSING.READY_TO_SHIP` or `UNRECOGNIZED`. */
  readonly marketState: string;
  readonly change: string;
  readonly pending: PendingChange | null;
  readonly lastOutcome: ChangeOutcome | null;
  readonly lastRefusal: Refusal | null;
  /** DBS: when the buyer's cancellation request was first seen, or null. */
  readonly cancellationRequestedAt: number | null;
  readonly observedAt: number;
  readonly rowVersion: number;
  readonly machineVersion: number;
  readonly updatedAt: number;
}

export interface AppliedEvent {
  readonly changed: boolean;
  readonly state: OrderState;
}

export interface EventOptions {
  readonly expectedRowVersion?: number | undefined;
}

export const TIMER_KINDS = {
  /** DBS: answer the buyer's cancellation request by then, or the Market cancels the order. */
  dbsCancellationAnswer: 'dbs.cancellationAnswer',
} as const;

/** The idempotency key of a change: the same order, target, machine and request always give the same key. */
export function idempotencyKey(orderId: number, pending: PendingChange, machineVersion = ORDER_MACHINE_VERSION): string {
  return `${orderId}:${pending.status}/${pending.substatus}:m${machineVersion}:r${pending.requestNo}`;
}

function sourceOf(event: OrderEvent): string {
  if (event.type === 'MARKET.OBSERVED') return event.source;
  if (event.type === 'SELLER.REQUEST') return 'seller';
  return 'dispatcher';
}

function eventTime(event: OrderEvent): number {
  return 'at' in event ? event.at : event.observedAt;
}

/** A rejection in the Market's words gets its stable code too (the outcome keeps the words). */
function withRejectionCode(event: OrderEvent): OrderEvent {
  return event.type === 'DISPATCH.REJECTED' && event.rejection === undefined ? { ...event, rejection: readMarketRefusal(event.reason) } : event;
}

function stateOf(row: OrderRow, snapshot: OrderSnapshot): OrderState {
  const { context } = snapshot;
  return {
    orderId: row.order_id,
    campaignId: row.campaign_id,
    model: row.model as FulfilmentModel,
    status: row.status,
    substatus: row.substatus,
    marketState: marketStatePath(snapshot.value),
    change: row.change_state,
    pending: context.pending,
    lastOutcome: context.lastOutcome,
    lastRefusal: context.lastRefusal,
    cancellationRequestedAt: context.cancellationRequestedAt,
    observedAt: row.observed_at,
    rowVersion: row.row_version,
    machineVersion: row.machine_version,
    updatedAt: row.updated_at,
  };
}

export class OrderBook {
  readonly #store: Store;
  readonly #campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly #operations: OperationBook;
  readonly #maxSends: number;
  readonly #asyncSettleMs: number;
  readonly #inspection: OrderInspection | undefined;

  constructor(
    store: Store,
    campaigns: ReadonlyMap<number, CampaignConfig>,
    operations: OperationBook,
    options: { maxSends: number; asyncSettleMs: number; inspection?: OrderInspection | undefined },
  ) {
    this.#store = store;
    this.#campaigns = campaigns;
    this.#operations = operations;
    this.#maxSends = options.maxSends;
    this.#asyncSettleMs = options.asyncSettleMs;
    this.#inspection = options.inspection;
  }

  campaign(campaignId: number): CampaignConfig {
    const campaign = this.#campaigns.get(campaignId);
    if (!campaign) throw new CampaignUnknownError(campaignId, [...this.#campaigns.keys()]);
    return campaign;
  }

  #row(orderId: number): OrderRow {
    const row = this.#store.orders.get(orderId);
    if (!row) throw new OrderNotFoundError(orderId);
    return row;
  }

  get(orderId: number): OrderState {
    const row = this.#row(orderId);
    return stateOf(row, loadOrderSnapshot(row.snapshot, row.machine_version, orderId));
  }

  find(orderId: number): OrderState | undefined {
    return this.#store.orders.get(orderId) ? this.get(orderId) : undefined;
  }

  history(orderId: number): JournalRow[] {
    this.#row(orderId);
    return this.#store.journal.forOrder(orderId);
  }

  explain(orderId: number, target: Parameters<typeof explainTransition>[1], now: number): Explanation {
    const row = this.#row(orderId);
    const { context } = loadOrderSnapshot(row.snapshot, row.machine_version, orderId);
    return explainTransition(
      { status: context.status, substatus: context.substatus ?? undefined, pending: context.pending },
      target,
      context.model,
      { now },
    );
  }

  /**
   * Starts tracking an order at the status the Market reports; an order already tracked is
   * observed instead (older observations change nothing). Call inside a write transaction.
   */
  track(
    order: {
      orderId: number;
      campaignId: number;
      status: string;
      substatus?: string | null | undefined;
      observedAt: number;
      cancelRequested?: boolean | undefined;
    },
    source: 'import' | 'sync',
    now: number,
  ): 'created' | AppliedEvent {
    const campaign = this.campaign(order.campaignId);
    const existing = this.#store.orders.get(order.orderId);
    if (existing) {
      if (existing.campaign_id !== order.campaignId) {
        throw new ImportConflictError(order.orderId, 'campaignId', existing.campaign_id, order.campaignId);
      }
      return this.apply(
        order.orderId,
        {
          type: 'MARKET.OBSERVED',
          status: order.status,
          substatus: order.substatus ?? null,
          observedAt: order.observedAt,
          source,
          ...(order.cancelRequested !== undefined ? { cancelRequested: order.cancelRequested } : {}),
        },
        now,
      );
    }
    const [snapshot, actions] = initialTransition(orderMachine, {
      orderId: order.orderId,
      campaignId: order.campaignId,
      model: campaign.model,
      status: order.status,
      substatus: order.substatus ?? null,
      observedAt: order.observedAt,
      source,
      ...(order.cancelRequested !== undefined ? { cancelRequested: order.cancelRequested } : {}),
      maxSends: this.#maxSends,
      asyncSettleMs: this.#asyncSettleMs,
    });
    this.#store.orders.insert({
      order_id: order.orderId,
      campaign_id: order.campaignId,
      model: campaign.model,
      status: snapshot.context.status,
      substatus: snapshot.context.substatus,
      change_state: changeState(snapshot.value),
      observed_at: snapshot.context.observedAt,
      machine_version: ORDER_MACHINE_VERSION,
      snapshot: serializeOrderSnapshot(snapshot),
      updated_at: now,
    });
    const journalSeq = this.#store.journal.append({
      order_id: order.orderId,
      row_version: 1,
      event_type: 'TRACK',
      event: JSON.stringify({ type: 'TRACK', ...order }),
      source,
      from_status: null,
      from_substatus: null,
      from_change: null,
      to_status: snapshot.context.status,
      to_substatus: snapshot.context.substatus,
      to_change: changeState(snapshot.value),
      at: now,
    });
    this.#carryOut(actions, order.orderId, order.campaignId, snapshot, journalSeq, now);
    return 'created';
  }

  /** Refuses with CHANGE_REFUSED before anything is written when the rules forbid the change. */
  request(
    orderId: number,
    target: { status: string; substatus?: string | undefined; callEvidence?: unknown; realDeliveryDate?: string | undefined },
    now: number,
    options: EventOptions = {},
  ): AppliedEvent {
    const { row, snapshot } = this.#load(orderId, options);
    const { context } = snapshot;
    const event = { type: 'SELLER.REQUEST', ...target, at: now } as Extract<OrderEvent, { type: 'SELLER.REQUEST' }>;
    const explanation = explainTransition(
      { status: context.status, substatus: context.substatus ?? undefined, pending: context.pending },
      event,
      context.model,
      { now },
    );
    if (!explanation.allowed) throw new ChangeRefusedError(orderId, target, explanation.blockers, explanation.allowedTargets);
    return this.#step(row, snapshot, event, now);
  }

  /** Applies one machine event to a tracked order. Call inside a write transaction. */
  apply(orderId: number, event: OrderEvent, now: number, options: EventOptions = {}): AppliedEvent {
    const { row, snapshot } = this.#load(orderId, options);
    return this.#step(row, snapshot, withRejectionCode(event), now);
  }

  #load(orderId: number, options: EventOptions): { row: OrderRow; snapshot: OrderSnapshot } {
    const row = this.#row(orderId);
    if (options.expectedRowVersion !== undefined && options.expectedRowVersion !== row.row_version) {
      throw new ConcurrentUpdateError('order', orderId, options.expectedRowVersion, row.row_version);
    }
    return { row, snapshot: loadOrderSnapshot(row.snapshot, row.machine_version, orderId) };
  }

  /** Turns the machine's effects into rows, in the caller's transaction. */
  #carryOut(actions: readonly { type: string; params: unknown }[], orderId: number, campaignId: number, next: OrderSnapshot, journalSeq: number, now: number): void {
    for (const action of actions) {
      switch (action.type) {
        case 'effect.sendStatusChange': {
          const pending = next.context.pending!;
          this.#store.outbox.enqueue({
            idempotency_key: idempotencyKey(orderId, pending),
            order_id: orderId,
            campaign_id: campaignId,
            request_no: pending.requestNo,
            status: pending.status,
            substatus: pending.substatus,
            real_delivery_date: pending.realDeliveryDate ?? null,
            next_attempt_at: pending.notBefore ?? now,
            journal_seq: journalSeq,
            now,
          });
          break;
        }
        case 'effect.trackOperation': {
          const { operationId, operationType } = action.params as { operationId: string; operationType: string };
          this.#operations.start({ operationId, operationType, businessId: this.campaign(campaignId).businessId, orderId }, now);
          break;
        }
        case 'effect.readBack': {
          // An async change read back too early waits in `uncertain` until notBefore.
          const { notBefore } = action.params as { notBefore?: number };
          if (notBefore !== undefined) this.#store.outbox.reschedule(orderId, next.context.pending!.requestNo, notBefore);
          break;
        }
        case 'effect.settleStatusChange': {
          const outcome = next.context.lastOutcome!;
          this.#store.outbox.setState(orderId, outcome.requestNo, outcome.kind, now, outcome.reason ? { lastError: outcome.reason } : {});
          break;
        }
        case 'effect.startCancellationDeadline': {
          const { dueAt } = action.params as { dueAt: number };
          this.#store.timers.set(TIMER_KINDS.dbsCancellationAnswer, String(orderId), dueAt, { campaignId });
          break;
        }
        case 'effect.clearCancellationDeadline':
          this.#store.timers.clear(TIMER_KINDS.dbsCancellationAnswer, String(orderId));
          break;
        default:
          break;
      }
    }
  }

  #step(row: OrderRow, snapshot: OrderSnapshot, event: OrderEvent, now: number): AppliedEvent {
    const [next, actions] = transition(orderMachine, snapshot, event);
    this.#inspection?.step(row.order_id, snapshot, event);
    const json = serializeOrderSnapshot(next);
    // The machine returns the same snapshot when no transition was enabled; compare the stored
    // form too, since XState may rebuild an equal snapshot (a row of an older machine version
    // differs, and is rewritten upgraded).
    if (next === snapshot || json === row.snapshot) {
      return { changed: false, state: stateOf(row, snapshot) };
    }
    const fromChange = row.change_state;
    const toChange = changeState(next.value);
    const written = {
      order_id: row.order_id,
      campaign_id: row.campaign_id,
      model: row.model,
      status: next.context.status,
      substatus: next.context.substatus,
      change_state: toChange,
      observed_at: next.context.observedAt,
      machine_version: ORDER_MACHINE_VERSION,
      snapshot: json,
      updated_at: now,
    };
    if (!this.#store.orders.update(written, row.row_version)) {
      throw new ConcurrentUpdateError('order', row.order_id, row.row_version, this.#store.orders.get(row.order_id)?.row_version);
    }
    const rowVersion = row.row_version + 1;
    const journalSeq = this.#store.journal.append({
      order_id: row.order_id,
      row_version: rowVersion,
      event_type: event.type,
      event: JSON.stringify(event),
      source: sourceOf(event),
      from_status: row.status,
      from_substatus: row.substatus,
      from_change: fromChange,
      to_status: next.context.status,
      to_substatus: next.context.substatus,
      to_change: toChange,
      at: eventTime(event),
    });

    this.#carryOut(actions, row.order_id, row.campaign_id, next, journalSeq, now);
    const pending = next.context.pending;
    // A new request's row was just inserted as `queued` by carryOut.
    if (pending && toChange !== fromChange && fromChange !== 'idle') {
      this.#store.outbox.setState(row.order_id, pending.requestNo, toChange as OutboxState, now, {
        sent: event.type === 'DISPATCH.SENT',
        ...(event.type === 'DISPATCH.REJECTED' || event.type === 'DISPATCH.UNKNOWN' || event.type === 'DISPATCH.DEFERRED'
          ? { lastError: event.reason }
          : {}),
      });
    }
    return { changed: true, state: stateOf({ ...written, row_version: rowVersion, created_at: row.created_at }, next) };
  }
}
