// The order book: the one place order snapshots change. Each change is computed by the
// machine's pure step (machine-step.ts: transition() without its per-call actor) and written with its journal row and its effects (outbox rows,
// operation rows, timers) in the caller's transaction, so they land together or not at all.
// Every outbox write comes from a machine effect; nothing here decides a row's state itself.

import type { Explanation, TransitionRequest } from '../../machines/explain.js';
import type { ChainExplanation, PlannedStep } from '../../machines/chain-plan.js';
import {
  judgeCancellationAnswer,
  judgeSellerRequest,
  orderEffects,
  orderMachine,
  ORDER_MACHINE_VERSION,
  type AnswerOutcome,
  type CancellationAnswer,
  type ChangeOutcome,
  type ObservationSource,
  type OrderEvent,
  type PendingAnswer,
  type PendingChange,
  type ChainProgress,
  type RequestVia,
} from '../../machines/order-machine.js';
import type { FulfilmentModel, OrderStatus, OrderSubstatus } from '../../machines/statuses.js';
import { readMarketRefusal } from '../market/refusals.js';
import type { JournalRow } from '../store/journal.js';
import type { OrderRow, OrderWrite } from '../store/orders.js';
import type { StoreTx } from '../store/port.js';
import type { CampaignConfig } from './commands.js';
import type { CancellationPolicy } from './cancellation-policy.js';
import {
  CampaignUnknownError,
  CancellationAnswerRefusedError,
  ChainNotActiveError,
  ChangeRefusedError,
  ConcurrentUpdateError,
  ImportConflictError,
  OrderNotFoundError,
} from './errors.js';
import { changeState, loadOrderSnapshot, marketStatePath, orderStepper, serializeOrderSnapshot, type OrderSnapshot } from './order-snapshots.js';
import { SnapshotCache } from './machine-step.js';
import type { OperationBook } from './operation-book.js';
import type { OrderInspection } from './inspection.js';


/**
 * How many resolved snapshots an order book keeps (about 2.5 KB each with its row's text): the
 * orders this engine wrote or read last, whose next step then skips resolving the row's JSON.
 */
const SNAPSHOT_CACHE_SIZE = 5_000;

/** How many times one order's write is tried when it keeps finding its row changed (see #retryingConflicts). */
const CONFLICT_TRIES = 3;

/**
 * Thrown where one order's try cannot stand, caught by #retryingConflicts, which runs it again on
 * the row read. With `conflict`: a write that read its row found it changed since (a try counted
 * against CONFLICT_TRIES). Without: the try stood on the remembered row, not read in this
 * transaction, and that row is gone (a conditioned write found it changed, #confirm found other
 * text, or the caller expects another row version); running it on the row read is no conflict.
 */
class TryAgain {
  constructor(readonly conflict?: ConcurrentUpdateError) {}
}

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
  /** A multi-step change on its way: its plan, and the step `pending` is (1-based); else null. */
  readonly chain: ChainView | null;
  readonly lastOutcome: ChangeOutcome | null;
  /** DBS: when the buyer's cancellation request was first seen, or null. */
  readonly cancellationRequestedAt: number | null;
  /**
   * DBS: the cancellation region's state: `none`, or the open request's answer: `unanswered`,
   * `queued`, `sending`, `uncertain` (read back before it is sent again).
   */
  readonly cancellation: CancellationState;
  /** The answer to the open request while it is on its way, or null. */
  readonly cancellationAnswer: PendingAnswer | null;
  /** How the last answer ended (the Market took it, refused it, or the request ended first). */
  readonly lastCancellationAnswer: AnswerOutcome | null;
  readonly observedAt: number;
  readonly rowVersion: number;
  readonly machineVersion: number;
  readonly updatedAt: number;
}

/** A chain as callers see it (the machine's ChainProgress without the call evidence it keeps for its last step). */
export interface ChainView {
  readonly target: ChainProgress['target'];
  readonly steps: readonly PlannedStep[];
  /** 1-based: the step that is pending now. */
  readonly step: number;
  readonly of: number;
  readonly firstRequestNo: number;
  /** stopChain() while a step was in flight: that step ends as it will, and no step follows. */
  readonly stopRequested: boolean;
}

function chainView(chain: ChainProgress | null): ChainView | null {
  if (chain === null) return null;
  return { target: chain.target, steps: chain.steps, step: chain.index + 1, of: chain.steps.length, firstRequestNo: chain.firstRequestNo, stopRequested: chain.stopRequested };
}

/** Where an order first seen comes from: an import, a sync, or a notification that named it. */
export type TrackSource = Extract<ObservationSource, 'import' | 'sync' | 'notification'>;

export interface AppliedEvent {
  readonly changed: boolean;
  readonly state: OrderState;
}

export interface EventOptions {
  readonly expectedRowVersion?: number | undefined;
}

export const CANCELLATION_STATES = ['none', 'unanswered', 'queued', 'sending', 'uncertain'] as const;
export type CancellationState = (typeof CANCELLATION_STATES)[number];

export const TIMER_KINDS = {
  /** DBS: answer the buyer's cancellation request by then, or the Market cancels the order. */
  dbsCancellationAnswer: 'dbs.cancellationAnswer',
} as const;

/** The idempotency key of a change: the same order, target, machine and request always give the same key. */
export function idempotencyKey(orderId: number, pending: { readonly status: string; readonly substatus: string; readonly requestNo: number }, machineVersion = ORDER_MACHINE_VERSION): string {
  return `${orderId}:${pending.status}/${pending.substatus}:m${machineVersion}:r${pending.requestNo}`;
}

/** How an answer's outbox row reads in listings and counts (status/substatus columns) and in its key. */
export const CANCELLATION_ANSWER_STATUS = 'CANCELLATION_ANSWER';

export function answerTarget(answer: CancellationAnswer): { status: string; substatus: string } {
  return { status: CANCELLATION_ANSWER_STATUS, substatus: answer.accepted ? 'ACCEPTED' : (answer.reason ?? '') };
}

function cancellationStateOf(value: unknown): CancellationState {
  const region = (value as { cancellation?: unknown }).cancellation;
  if (region && typeof region === 'object') {
    const sub = (region as { requested?: unknown }).requested;
    return (CANCELLATION_STATES as readonly unknown[]).includes(sub) ? (sub as CancellationState) : 'unanswered';
  }
  return 'none';
}

function sourceOf(event: OrderEvent): string {
  if (event.type === 'MARKET.OBSERVED') return event.source;
  if (event.type === 'SELLER.REQUEST' || event.type === 'SELLER.ANSWER_CANCELLATION' || event.type === 'SELLER.STOP_CHAIN') return 'seller';
  return 'dispatcher';
}

function eventTime(event: OrderEvent): number {
  return 'at' in event ? event.at : event.observedAt;
}

/** A rejection in the Market's words gets its stable code too (the outcome keeps the words). */
function withRejectionCode(event: OrderEvent): OrderEvent {
  return event.type === 'DISPATCH.REJECTED' && event.rejection === undefined ? { ...event, rejection: readMarketRefusal(event.reason) } : event;
}

/**
 * The row as a write left it. Spelt out, not `{ ...written, row_version, created_at }`: that
 * spread took 2.5–3 µs (measured alone, Node 20), this takes a hundredth of it.
 */
function rowAsWritten(written: OrderWrite, rowVersion: number, createdAt: number): OrderRow {
  return {
    order_id: written.order_id,
    campaign_id: written.campaign_id,
    model: written.model,
    status: written.status,
    substatus: written.substatus,
    change_state: written.change_state,
    observed_at: written.observed_at,
    machine_version: written.machine_version,
    snapshot: written.snapshot,
    row_version: rowVersion,
    created_at: createdAt,
    updated_at: written.updated_at,
  };
}

/** The one view of an order callers see, from its row and the snapshot loaded from it. */
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
    chain: chainView(context.chain),
    lastOutcome: context.lastOutcome,
    cancellationRequestedAt: context.cancellationRequestedAt,
    cancellation: cancellationStateOf(snapshot.value),
    cancellationAnswer: context.cancellationAnswer,
    lastCancellationAnswer: context.lastCancellationAnswer,
    observedAt: row.observed_at,
    rowVersion: row.row_version,
    machineVersion: row.machine_version,
    updatedAt: row.updated_at,
  };
}

export class OrderBook {
  readonly #campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly #operations: OperationBook;
  readonly #maxSends: number;
  readonly #asyncSettleMs: number;
  readonly #inspection: OrderInspection | undefined;
  readonly #snapshots = new SnapshotCache<OrderSnapshot, OrderRow>(SNAPSHOT_CACHE_SIZE);
  /** What the engine does about open cancellation requests (see cancellation-policy.ts). */
  readonly cancellationPolicy: CancellationPolicy;

  constructor(
    campaigns: ReadonlyMap<number, CampaignConfig>,
    operations: OperationBook,
    options: { maxSends: number; asyncSettleMs: number; cancellationPolicy: CancellationPolicy; inspection?: OrderInspection | undefined },
  ) {
    this.#campaigns = campaigns;
    this.#operations = operations;
    this.#maxSends = options.maxSends;
    this.#asyncSettleMs = options.asyncSettleMs;
    this.cancellationPolicy = options.cancellationPolicy;
    this.#inspection = options.inspection;
  }

  campaign(campaignId: number): CampaignConfig {
    const campaign = this.#campaigns.get(campaignId);
    if (!campaign) throw new CampaignUnknownError(campaignId, [...this.#campaigns.keys()]);
    return campaign;
  }

  async #row(tx: StoreTx, orderId: number): Promise<OrderRow> {
    const row = await tx.orders.get(orderId);
    if (!row) throw new OrderNotFoundError(orderId);
    return row;
  }

  async get(tx: StoreTx, orderId: number): Promise<OrderState> {
    const row = await this.#row(tx, orderId);
    return stateOf(row, this.#snapshotOf(row));
  }

  async find(tx: StoreTx, orderId: number): Promise<OrderState | undefined> {
    const row = await tx.orders.get(orderId);
    return row ? stateOf(row, this.#snapshotOf(row)) : undefined;
  }

  async history(tx: StoreTx, orderId: number): Promise<JournalRow[]> {
    await this.#row(tx, orderId);
    return tx.journal.forOrder(orderId);
  }

  /** Whether the request is allowed now: explainTransition's verdict, or explainChain's for `via: 'chain'`. */
  async explain(tx: StoreTx, orderId: number, target: TransitionRequest & { via?: RequestVia | undefined }, now: number): Promise<Explanation | ChainExplanation> {
    const row = await this.#row(tx, orderId);
    return judgeSellerRequest(this.#snapshotOf(row).context, target, now);
  }

  /**
   * Starts tracking an order at the status the Market reports; an order already tracked is
   * observed instead (older observations change nothing).
   */
  async track(
    tx: StoreTx,
    order: {
      orderId: number;
      campaignId: number;
      status: string;
      substatus?: string | null | undefined;
      observedAt: number;
      cancelRequested?: boolean | undefined;
    },
    source: TrackSource,
    now: number,
  ): Promise<'created' | AppliedEvent> {
    const campaign = this.campaign(order.campaignId);
    const cancelRequested = order.cancelRequested !== undefined ? { cancelRequested: order.cancelRequested } : {};
    return this.#retryingConflicts(async () => {
      const existing = await tx.orders.get(order.orderId);
      if (existing) {
        if (existing.campaign_id !== order.campaignId) {
          throw new ImportConflictError(order.orderId, 'campaignId', existing.campaign_id, order.campaignId);
        }
        const event: OrderEvent = { type: 'MARKET.OBSERVED', status: order.status, substatus: order.substatus ?? null, observedAt: order.observedAt, source, ...cancelRequested };
        return this.#step(tx, existing, this.#snapshotOf(existing), event, now);
      }
      return this.#insert(tx, { ...order, ...cancelRequested }, campaign.model, source, now);
    });
  }

  /** The first row of an order; a conflict when another transaction inserted the order first. */
  async #insert(
    tx: StoreTx,
    order: { orderId: number; campaignId: number; status: string; substatus?: string | null | undefined; observedAt: number; cancelRequested?: boolean },
    model: FulfilmentModel,
    source: TrackSource,
    now: number,
  ): Promise<'created'> {
    const cancelRequested = order.cancelRequested !== undefined ? { cancelRequested: order.cancelRequested } : {};
    const [snapshot, actions] = orderStepper.initial({
      orderId: order.orderId,
      campaignId: order.campaignId,
      model,
      status: order.status,
      substatus: order.substatus ?? null,
      observedAt: order.observedAt,
      source,
      ...cancelRequested,
      maxSends: this.#maxSends,
      asyncSettleMs: this.#asyncSettleMs,
    });
    const json = serializeOrderSnapshot(snapshot);
    const first = {
      order_id: order.orderId,
      campaign_id: order.campaignId,
      model,
      status: snapshot.context.status,
      substatus: snapshot.context.substatus,
      change_state: changeState(snapshot.value),
      observed_at: snapshot.context.observedAt,
      machine_version: ORDER_MACHINE_VERSION,
      snapshot: json,
      updated_at: now,
    };
    const inserted = await tx.orders.insert(first);
    if (!inserted) throw new TryAgain(new ConcurrentUpdateError('order', order.orderId, 0, 1));
    this.#snapshots.remember(order.orderId, rowAsWritten(first, 1, now), snapshot);
    const journalSeq = await tx.journal.append({
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
    await this.#carryOut(tx, actions, order.campaignId, journalSeq, now);
    return 'created';
  }

  /** Refuses with CHANGE_REFUSED before anything is written when the rules forbid the change. */
  async request(
    tx: StoreTx,
    orderId: number,
    target: { status: string; substatus?: string | undefined; callEvidence?: unknown; realDeliveryDate?: string | undefined; via?: RequestVia | undefined },
    now: number,
    options: EventOptions = {},
  ): Promise<AppliedEvent> {
    const event = { type: 'SELLER.REQUEST', ...target, at: now } as Extract<OrderEvent, { type: 'SELLER.REQUEST' }>;
    return this.#retryingConflicts(async (read) => {
      const { row, snapshot, remembered } = await this.#load(tx, orderId, options, read);
      const explanation = judgeSellerRequest(snapshot.context, event, now);
      if (!explanation.allowed) {
        if (remembered) await this.#confirm(tx, row);
        throw new ChangeRefusedError(orderId, target, explanation.blockers, explanation.allowedTargets);
      }
      return this.#step(tx, row, snapshot, event, now, remembered);
    });
  }

  /**
   * Stops the order's chain: a step not yet sent is superseded, one in flight ends as it will and
   * no step follows. CHAIN_NOT_ACTIVE, writing nothing, when no chain is on its way.
   */
  async stopChain(tx: StoreTx, orderId: number, now: number, options: EventOptions = {}): Promise<AppliedEvent> {
    return this.#retryingConflicts(async (read) => {
      const { row, snapshot, remembered } = await this.#load(tx, orderId, options, read);
      if (snapshot.context.chain === null) {
        if (remembered) await this.#confirm(tx, row);
        throw new ChainNotActiveError(orderId, snapshot.context.lastOutcome);
      }
      return this.#step(tx, row, snapshot, { type: 'SELLER.STOP_CHAIN', at: now }, now, remembered);
    });
  }

  /**
   * Queues the seller's answer to the order's open cancellation request; refuses with
   * CANCELLATION_ANSWER_REFUSED before anything is written when judgeCancellationAnswer does.
   */
  async answerCancellation(
    tx: StoreTx,
    orderId: number,
    answer: { accepted: boolean; reason?: string | undefined },
    now: number,
    options: EventOptions = {},
  ): Promise<AppliedEvent> {
    const event: OrderEvent = { type: 'SELLER.ANSWER_CANCELLATION', accepted: answer.accepted, ...(answer.reason !== undefined ? { reason: answer.reason } : {}), at: now };
    return this.#retryingConflicts(async (read) => {
      const { row, snapshot, remembered } = await this.#load(tx, orderId, options, read);
      const verdict = judgeCancellationAnswer(snapshot.context, answer);
      if (!verdict.allowed) {
        if (remembered) await this.#confirm(tx, row);
        throw new CancellationAnswerRefusedError(orderId, answer, verdict.blockers);
      }
      return this.#step(tx, row, snapshot, event, now, remembered);
    });
  }

  /** Applies one machine event to a tracked order. */
  async apply(tx: StoreTx, orderId: number, event: OrderEvent, now: number, options: EventOptions = {}): Promise<AppliedEvent> {
    return this.#retryingConflicts(async (read) => {
      const { row, snapshot, remembered } = await this.#load(tx, orderId, options, read);
      return this.#step(tx, row, snapshot, withRejectionCode(event), now, remembered);
    });
  }

  /**
   * Runs one order's load → plan → write again when its write finds the row changed since the
   * load, this order alone: the rest of the caller's transaction stands. Adapters lock what a
   * write transaction reads, so this takes a writer that had nothing to lock yet: two
   * transactions (of any processes) tracking the same new order. Each try re-reads and re-plans,
   * so a request is judged again on the order as it now is.
   */
  async #retryingConflicts<T>(attempt: (read: boolean) => Promise<T>): Promise<T> {
    // The first try may stand on the remembered row; every later one reads it.
    let read = false;
    for (let conflicts = 0; ; ) {
      try {
        return await attempt(read);
      } catch (error) {
        if (!(error instanceof TryAgain)) throw error;
        if (error.conflict !== undefined && ++conflicts >= CONFLICT_TRIES) throw error.conflict;
        read = true;
      }
    }
  }

  /**
   * Reads the row a step stood on without reading it, for an outcome that writes nothing (a
   * refusal, no change): the outcome stands if the row still holds that very text; otherwise the
   * cache entry goes and the try runs again on the row read (TryAgain).
   */
  async #confirm(tx: StoreTx, remembered: OrderRow): Promise<void> {
    const current = await tx.orders.get(remembered.order_id);
    if (current?.row_version === remembered.row_version && current.machine_version === remembered.machine_version && current.snapshot === remembered.snapshot) return;
    this.#snapshots.forget(remembered.order_id);
    throw new TryAgain();
  }

  /** The row's snapshot: the one resolved from this very row before, else resolved now. */
  #snapshotOf(row: OrderRow): OrderSnapshot {
    return this.#snapshots.resolve(row.order_id, row, () => loadOrderSnapshot(row.snapshot, row.machine_version, row.order_id));
  }

  /**
   * The order's row and snapshot for a write. Unless `read`, the row this process last read or
   * wrote stands in for reading it (`remembered`): the step's UPDATE is then conditioned on that
   * row's version and text, so it writes only over the very row the step started from, and an
   * outcome that writes nothing is confirmed by reading the row (#confirm).
   */
  async #load(tx: StoreTx, orderId: number, options: EventOptions, read: boolean): Promise<{ row: OrderRow; snapshot: OrderSnapshot; remembered: boolean }> {
    const latest = read ? undefined : this.#snapshots.latest(orderId);
    if (latest !== undefined) {
      if (options.expectedRowVersion !== undefined && options.expectedRowVersion !== latest.row.row_version) throw new TryAgain();
      return { row: latest.row, snapshot: latest.snapshot, remembered: true };
    }
    const row = await this.#row(tx, orderId);
    if (options.expectedRowVersion !== undefined && options.expectedRowVersion !== row.row_version) {
      throw new ConcurrentUpdateError('order', orderId, options.expectedRowVersion, row.row_version);
    }
    return { row, snapshot: this.#snapshotOf(row), remembered: false };
  }

  /** Turns the machine's effects into rows, in the caller's transaction. */
  async #carryOut(tx: StoreTx, actions: readonly { type: string; params?: unknown }[], campaignId: number, journalSeq: number, now: number): Promise<void> {
    for (const effect of orderEffects(actions)) {
      switch (effect.type) {
        case 'effect.sendStatusChange': {
          const { orderId, pending } = effect.params;
          await tx.outbox.enqueue({
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
        case 'effect.recordChangeState': {
          const { orderId, requestNo, state, sent, reason } = effect.params;
          await tx.outbox.setState(orderId, requestNo, state, now, { sent, ...(reason !== undefined ? { lastError: reason } : {}) });
          break;
        }
        case 'effect.trackOperation': {
          const { orderId, operationId, operationType } = effect.params;
          await this.#operations.start(tx, { operationId, operationType, businessId: this.campaign(campaignId).businessId, orderId }, now);
          break;
        }
        case 'effect.readBack': {
          // The read-back waits in `uncertain` until notBefore (an async change read back too early,
          // or a struggling Market); without one it is due at once.
          const { orderId, requestNo, notBefore } = effect.params;
          if (notBefore !== undefined) await tx.outbox.reschedule(orderId, requestNo, notBefore);
          break;
        }
        case 'effect.settleStatusChange': {
          const { orderId, outcome } = effect.params;
          await tx.outbox.setState(orderId, outcome.requestNo, outcome.kind, now, outcome.reason ? { lastError: outcome.reason } : {});
          break;
        }
        case 'effect.startCancellationDeadline': {
          const { orderId, dueAt } = effect.params;
          await tx.timers.set(TIMER_KINDS.dbsCancellationAnswer, String(orderId), dueAt, { campaignId });
          break;
        }
        case 'effect.clearCancellationDeadline':
          await tx.timers.clear(TIMER_KINDS.dbsCancellationAnswer, String(effect.params.orderId));
          break;
        case 'effect.sendCancellationAnswer': {
          const { orderId, answer } = effect.params;
          const target = answerTarget(answer);
          await tx.outbox.enqueue({
            idempotency_key: idempotencyKey(orderId, { ...target, requestNo: answer.requestNo }),
            order_id: orderId,
            campaign_id: campaignId,
            request_no: answer.requestNo,
            ...target,
            real_delivery_date: null,
            kind: 'cancellationAnswer',
            payload: JSON.stringify({ accepted: answer.accepted, ...(answer.reason !== undefined ? { reason: answer.reason } : {}) }),
            next_attempt_at: answer.notBefore ?? now,
            journal_seq: journalSeq,
            now,
          });
          break;
        }
        case 'effect.recordAnswerState': {
          const { orderId, requestNo, state, sent, reason } = effect.params;
          await tx.outbox.setState(orderId, requestNo, state, now, { sent, ...(reason !== undefined ? { lastError: reason } : {}) });
          break;
        }
        case 'effect.settleCancellationAnswer': {
          const { orderId, outcome } = effect.params;
          await tx.outbox.setState(orderId, outcome.requestNo, outcome.kind, now, outcome.message ? { lastError: outcome.message } : {});
          break;
        }
      }
    }
  }

  async #step(tx: StoreTx, row: OrderRow, snapshot: OrderSnapshot, event: OrderEvent, now: number, remembered = false): Promise<AppliedEvent> {
    const [next, actions] = orderStepper.step(snapshot, event);
    const json = serializeOrderSnapshot(next);
    // The machine returns the same snapshot when no transition was enabled; compare the stored
    // form too, since XState may rebuild an equal snapshot (a row of an older machine version
    // differs, and is rewritten upgraded).
    if (next === snapshot || json === row.snapshot) {
      if (remembered) await this.#confirm(tx, row);
      this.#inspection?.step(row.order_id, snapshot, event);
      return { changed: false, state: stateOf(row, snapshot) };
    }
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
    if (!(await tx.orders.update(written, row.row_version, remembered ? row.snapshot : undefined))) {
      if (remembered) {
        this.#snapshots.forget(row.order_id);
        throw new TryAgain();
      }
      throw new TryAgain(new ConcurrentUpdateError('order', row.order_id, row.row_version, (await tx.orders.get(row.order_id))?.row_version));
    }
    const rowVersion = row.row_version + 1;
    const stored = rowAsWritten(written, rowVersion, row.created_at);
    // Remembered as soon as the row holds it: should the transaction roll back, the row keeps
    // its old text, which this entry does not match (and a write conditioned on it fails).
    this.#snapshots.remember(row.order_id, stored, next);
    this.#inspection?.step(row.order_id, snapshot, event);
    const journalSeq = await tx.journal.append({
      order_id: row.order_id,
      row_version: rowVersion,
      event_type: event.type,
      event: JSON.stringify(event),
      source: sourceOf(event),
      from_status: row.status,
      from_substatus: row.substatus,
      from_change: row.change_state,
      to_status: next.context.status,
      to_substatus: next.context.substatus,
      to_change: toChange,
      at: eventTime(event),
    });
    await this.#carryOut(tx, actions, row.campaign_id, journalSeq, now);
    return { changed: true, state: stateOf(stored, next) };
  }
}
