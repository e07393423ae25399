// The fake Market's memory: orders, async operations, and the seller changes it applied.
// It decides changes with the same SELLER_RULES table the engine uses (machines/rules.ts),
// so the fake refuses exactly what the engine believes is illegal.

import { findSellerRule, rulesFrom, type SellerRule } from '../../machines/rules.js';
import type { FulfilmentModel } from '../../machines/statuses.js';
import { moscowDate } from '../market/dates.js';

export interface FakeCampaign {
  campaignId: number;
  businessId: number;
  model: FulfilmentModel;
}

export interface FakeOrderSeed {
  id: number;
  campaignId: number;
  status: string;
  substatus: string;
  /** Epoch ms of the last change; defaults to the fake's clock now. */
  updateDate?: number;
  /** Epoch ms the order was created; defaults to `updateDate`. */
  creationDate?: number;
  /** The Market's sandbox flag (`fake` in BusinessOrderDTO); default false. */
  fake?: boolean;
}

/** An order as the fake holds it (a copy: changing it changes nothing in the fake). */
export interface FakeOrder {
  id: number;
  campaignId: number;
  status: string;
  substatus: string;
  creationDate: number;
  updateDate: number;
  fake: boolean;
  /** DBS: the buyer asked to cancel and the seller has not answered. */
  cancelRequested: boolean;
  /** DBS: the `realDeliveryDate` last sent with a status change (`YYYY-MM-DD`). */
  realDeliveryDate?: string;
}

export const FAKE_OPERATION_STATUSES = ['IN_PROGRESS', 'DONE', 'FAILED'] as const;
export type FakeOperationStatus = (typeof FAKE_OPERATION_STATUSES)[number];

export interface FakeOperation {
  id: string;
  type: 'ORDER_STATUS_UPDATE';
  orderId: number;
  target: { status: string; substatus: string };
  startedAt: number;
  status: FakeOperationStatus;
}

export interface StatusTarget {
  status: string;
  substatus?: string | undefined;
}

/** Why a change was refused; the HTTP layer turns it into errorDetails or an error body. */
export const CHANGE_REFUSALS = {
  notFound: 'NOT_FOUND',
  notAllowed: 'STATUS_NOT_ALLOWED',
  alreadyApplied: 'ALREADY_APPLIED',
  badDeliveryDate: 'BAD_DELIVERY_DATE',
} as const;
export type ChangeRefusal = (typeof CHANGE_REFUSALS)[keyof typeof CHANGE_REFUSALS];

export type ChangeResult =
  | { ok: true; order: FakeOrder; operation?: FakeOperation }
  | { ok: false; refusal: ChangeRefusal; message: string; order?: FakeOrder };

export interface OrderBookOptions {
  campaigns: readonly FakeCampaign[];
  now: () => number;
  operationDelayMs: number;
  failOperation: (orderId: number) => boolean;
}

const targetKey = (t: StatusTarget): string => `${t.status}/${t.substatus ?? ''}`;

export class OrderBook {
  readonly #campaigns: Map<number, FakeCampaign>;
  readonly #orders = new Map<number, FakeOrder>();
  /** Per business, its orders in (updateDate, id) order, for paging; rebuilt or re-sorted lazily. */
  readonly #byBusiness = new Map<number, FakeOrder[]>();
  readonly #unsorted = new Set<number>();
  readonly #operations = new Map<string, FakeOperation & { willFail: boolean }>();
  /** Per order, the targets the fake accepted (applied, or started an operation for). */
  readonly #accepted = new Map<number, Set<string>>();
  readonly #options: OrderBookOptions;
  #nextOperation = 1;

  readonly applied = new Map<number, number>();
  duplicateApplications = 0;
  illegalRequests = 0;

  constructor(options: OrderBookOptions) {
    this.#options = options;
    this.#campaigns = new Map(options.campaigns.map((c) => [c.campaignId, c]));
  }

  campaign(campaignId: number): FakeCampaign | undefined {
    return this.#campaigns.get(campaignId);
  }

  hasBusiness(businessId: number): boolean {
    return [...this.#campaigns.values()].some((c) => c.businessId === businessId);
  }

  seed(seeds: readonly FakeOrderSeed[]): void {
    for (const seed of seeds) {
      if (!this.#campaigns.has(seed.campaignId)) throw new Error(`seedOrders: order ${seed.id} names unknown campaign ${seed.campaignId}`);
      const updateDate = seed.updateDate ?? this.#options.now();
      this.#orders.set(seed.id, {
        id: seed.id, campaignId: seed.campaignId, status: seed.status, substatus: seed.substatus,
        creationDate: seed.creationDate ?? updateDate, updateDate, fake: seed.fake ?? false, cancelRequested: false,
      });
      this.#byBusiness.delete(this.#campaigns.get(seed.campaignId)!.businessId);
    }
  }

  /**
   * A page of a business's orders in (updateDate, id) order, after `after` (exclusive), keeping
   * those `keep` accepts: up to `limit + 1`, so the caller knows whether another page follows.
   * Logarithmic in the business's orders, so a sweep over a million stays fast.
   */
  pageOfBusiness(businessId: number, after: readonly [number, number] | undefined, limit: number, keep: (o: FakeOrder) => boolean): FakeOrder[] {
    this.settleOperations();
    const list = this.#sortedOrders(businessId);
    let lo = 0;
    let hi = list.length;
    while (after !== undefined && lo < hi) {
      const mid = (lo + hi) >>> 1;
      const o = list[mid]!;
      if (o.updateDate < after[0] || (o.updateDate === after[0] && o.id <= after[1])) lo = mid + 1;
      else hi = mid;
    }
    const page: FakeOrder[] = [];
    for (let i = lo; i < list.length && page.length <= limit; i++) if (keep(list[i]!)) page.push({ ...list[i]! });
    return page;
  }

  /** The orders of a business with these ids, as copies, in (updateDate, id) order. */
  ordersByIds(businessId: number, ids: readonly number[]): FakeOrder[] {
    this.settleOperations();
    return ids
      .map((id) => this.#orders.get(id))
      .filter((o): o is FakeOrder => o !== undefined && this.#campaigns.get(o.campaignId)?.businessId === businessId)
      .sort((a, b) => a.updateDate - b.updateDate || a.id - b.id)
      .map((o) => ({ ...o }));
  }

  #sortedOrders(businessId: number): FakeOrder[] {
    let list = this.#byBusiness.get(businessId);
    if (list === undefined) {
      list = [...this.#orders.values()].filter((o) => this.#campaigns.get(o.campaignId)?.businessId === businessId);
      this.#byBusiness.set(businessId, list);
      this.#unsorted.add(businessId);
    }
    // Touched orders only move forward in time, so the array is nearly sorted: cheap to re-sort.
    if (this.#unsorted.delete(businessId)) list.sort((a, b) => a.updateDate - b.updateDate || a.id - b.id);
    return list;
  }

  get(orderId: number): FakeOrder | undefined {
    this.settleOperations();
    const order = this.#orders.get(orderId);
    return order === undefined ? undefined : { ...order };
  }

  /** A Market-side move (courier picked up, buyer cancelled...): no rules apply. */
  setStatus(orderId: number, status: string, substatus: string): void {
    const order = this.#require(orderId);
    order.status = status;
    order.substatus = substatus;
    this.#touch(order);
  }

  requestCancellation(orderId: number): void {
    const order = this.#require(orderId);
    if (this.#campaigns.get(order.campaignId)?.model !== 'DBS') {
      throw new Error(`requestCancellation: order ${orderId} is not a DBS order`);
    }
    order.cancelRequested = true;
    this.#touch(order);
  }

  /** A seller's status change, as both status endpoints make it. */
  change(campaignId: number, orderId: number, target: StatusTarget, realDeliveryDate?: string): ChangeResult {
    this.settleOperations();
    const order = this.#orders.get(orderId);
    const campaign = this.#campaigns.get(campaignId);
    if (order === undefined || campaign === undefined || order.campaignId !== campaignId) {
      return { ok: false, refusal: CHANGE_REFUSALS.notFound, message: `Order ${orderId} not found in campaign ${campaignId}` };
    }
    const from = `${order.status}/${order.substatus}`;
    const to = targetKey(target);

    if (this.#accepted.get(orderId)?.has(to)) {
      // The client re-sent a change the fake already applied: what exactly-once must prevent.
      this.duplicateApplications += 1;
      return { ok: false, refusal: CHANGE_REFUSALS.alreadyApplied, order: { ...order }, message: `Order ${orderId}: status ${to} was already set (current status ${from})` };
    }
    const rule = findSellerRule(campaign.model, order, target);
    if (rule === undefined) {
      this.illegalRequests += 1;
      return { ok: false, refusal: CHANGE_REFUSALS.notAllowed, order: { ...order }, message: `Order ${orderId}: ${refusalText(campaign.model, order, target)}` };
    }
    if (realDeliveryDate !== undefined) {
      const refusal = this.#checkDeliveryDate(rule, realDeliveryDate, orderId);
      if (refusal !== undefined) return { ok: false, refusal: CHANGE_REFUSALS.badDeliveryDate, order: { ...order }, message: refusal };
    }

    this.#accept(orderId, to);
    if (rule.async === true) {
      const operation = {
        id: `fake-op-${this.#nextOperation++}`, type: 'ORDER_STATUS_UPDATE' as const, orderId,
        target: { status: rule.to.status, substatus: rule.to.substatus },
        startedAt: this.#options.now(), status: 'IN_PROGRESS' as const, willFail: this.#options.failOperation(orderId),
      };
      this.#operations.set(operation.id, operation);
      return { ok: true, order: { ...order }, operation: publicOperation(operation) };
    }
    this.#apply(order, rule.to.status, rule.to.substatus);
    if (realDeliveryDate !== undefined) order.realDeliveryDate = realDeliveryDate;
    return { ok: true, order: { ...order } };
  }

  /** DBS: the seller answers a buyer's cancellation request. */
  answerCancellation(campaignId: number, orderId: number, accepted: boolean): ChangeResult {
    this.settleOperations();
    const order = this.#orders.get(orderId);
    if (order === undefined || order.campaignId !== campaignId) {
      return { ok: false, refusal: CHANGE_REFUSALS.notFound, message: `Order ${orderId} not found in campaign ${campaignId}` };
    }
    if (!order.cancelRequested) {
      this.illegalRequests += 1;
      return { ok: false, refusal: CHANGE_REFUSALS.notAllowed, order: { ...order }, message: `Order ${orderId}: no cancellation request is waiting for an answer` };
    }
    order.cancelRequested = false;
    if (accepted) this.#apply(order, 'CANCELLED', 'USER_CHANGED_MIND');
    else this.#touch(order);
    return { ok: true, order: { ...order } };
  }

  /** The operations with these ids and this type, settled first; unknown ids are left out. */
  operations(type: string, ids: readonly string[]): FakeOperation[] {
    this.settleOperations();
    return ids.flatMap((id) => {
      const op = this.#operations.get(id);
      return op !== undefined && op.type === type ? [publicOperation(op)] : [];
    });
  }

  /** Completes every operation whose delay has passed on the fake's clock. */
  settleOperations(): void {
    const now = this.#options.now();
    for (const op of this.#operations.values()) {
      if (op.status !== 'IN_PROGRESS' || now - op.startedAt < this.#options.operationDelayMs) continue;
      const order = this.#orders.get(op.orderId);
      const campaign = order && this.#campaigns.get(order.campaignId);
      // The order may have moved while the operation ran; then the change no longer applies.
      const stillAllowed = order !== undefined && campaign !== undefined && findSellerRule(campaign.model, order, op.target) !== undefined;
      if (op.willFail || !stillAllowed) {
        op.status = 'FAILED';
        // A failed change was not applied, so sending it again is legitimate, not a duplicate.
        this.#accepted.get(op.orderId)?.delete(targetKey(op.target));
      } else {
        op.status = 'DONE';
        this.#apply(order, op.target.status, op.target.substatus);
      }
    }
  }

  #checkDeliveryDate(rule: SellerRule, date: string, orderId: number): string | undefined {
    if (rule.acceptsRealDeliveryDate !== true) {
      return `Order ${orderId}: realDeliveryDate is accepted only when moving to PICKUP or DELIVERED`;
    }
    // ISO dates compare correctly as strings.
    if (date > moscowDate(this.#options.now())) return `Order ${orderId}: realDeliveryDate ${date} is in the future`;
    return undefined;
  }

  #accept(orderId: number, target: string): void {
    let set = this.#accepted.get(orderId);
    if (set === undefined) this.#accepted.set(orderId, (set = new Set()));
    set.add(target);
  }

  #apply(order: FakeOrder, status: string, substatus: string): void {
    order.status = status;
    order.substatus = substatus;
    this.#touch(order);
    this.applied.set(order.id, (this.applied.get(order.id) ?? 0) + 1);
  }

  /** Bumps updateDate, strictly increasing per order so "newer" is always decidable. */
  #touch(order: FakeOrder): void {
    order.updateDate = Math.max(this.#options.now(), order.updateDate + 1);
    const businessId = this.#campaigns.get(order.campaignId)?.businessId;
    if (businessId !== undefined) this.#unsorted.add(businessId);
  }

  #require(orderId: number): FakeOrder {
    const order = this.#orders.get(orderId);
    if (order === undefined) throw new Error(`fake Market: no order ${orderId}`);
    return order;
  }
}

/** The statuses the Market accepts as a seller's target at all (NOTES.md §d2, "Status not allowed"). */
const TARGET_STATUSES: readonly string[] = ['PROCESSING', 'CANCELLED', 'DELIVERY', 'PICKUP', 'DELIVERED'];

/**
 * A refusal in the words the Market uses (NOTES.md §d2, the error-codes page), so that a client
 * meets the real forms. The role name is the fake's own: the page does not give one.
 */
function refusalText(model: FulfilmentModel, order: FakeOrder, target: StatusTarget): string {
  if (!TARGET_STATUSES.includes(target.status)) return `Status not allowed: '${target.status}'`;
  const cancelsFromHere = rulesFrom(model, order.status, order.substatus).some((r) => r.to.status === 'CANCELLED');
  if (target.status === 'CANCELLED' && cancelsFromHere) {
    return `Cancellation request substatus '${target.substatus ?? ''}' is not available for status '${order.status}' and role 'SHOP_USER'`;
  }
  return `Transition '${order.status}/${order.substatus}' -> '${targetKey(target)}' is not allowed. Reason: ${model} sellers have no such change`;
}

function publicOperation(op: FakeOperation & { willFail?: boolean }): FakeOperation {
  const { willFail: _hidden, ...rest } = op;
  return { ...rest, target: { ...op.target } };
}
