// The orders page's query: filters (campaign, status, change state, stuck for N minutes) and
// keyset paging by order id (`after`), so a page costs the same however deep it is: one
// OrdersPort.list call, on the indexes the store keeps for each filter.

import { ORDER_STATUSES } from '../../machines/statuses.js';
import { CHANGE_STATES } from '../engine/order-listing.js';
import type { OrderRow } from '../store/orders.js';
import type { StoreTx } from '../store/port.js';
import { InspectorQueryError } from './errors.js';

export { CHANGE_STATES };
export const STATUS_CHOICES: readonly string[] = ORDER_STATUSES;

export const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;

export interface OrderFilter {
  readonly campaignId?: number;
  /** A Market status, known or not (unknown statuses are data). */
  readonly status?: string;
  readonly change?: string;
  /** Only orders whose change is open and that have not moved for this many minutes. */
  readonly stuckMinutes?: number;
  /** Keyset cursor: orders with a greater id. */
  readonly afterOrderId?: number;
  readonly limit: number;
}

function positiveInteger(params: URLSearchParams, name: string, max: number): number | undefined {
  const text = params.get(name)?.trim();
  if (!text) return undefined;
  if (!/^\d{1,16}$/.test(text) || Number(text) > max) throw new InspectorQueryError(name, text, `a whole number from 0 to ${max}`);
  return Number(text);
}

/** The filter in a page's query string; empty values mean "any". */
export function parseOrderFilter(params: URLSearchParams): OrderFilter {
  const status = params.get('status')?.trim() || undefined;
  if (status !== undefined && !/^[A-Z][A-Z0-9_]{0,63}$/.test(status)) throw new InspectorQueryError('status', status, 'a Market status such as PROCESSING');
  const change = params.get('change')?.trim() || undefined;
  if (change !== undefined && !CHANGE_STATES.includes(change)) throw new InspectorQueryError('change', change, `one of ${CHANGE_STATES.join(', ')}`);
  const campaignId = positiveInteger(params, 'campaign', Number.MAX_SAFE_INTEGER);
  const stuckMinutes = positiveInteger(params, 'stuck', 60 * 24 * 365);
  const afterOrderId = positiveInteger(params, 'after', Number.MAX_SAFE_INTEGER);
  const limit = positiveInteger(params, 'limit', MAX_PAGE_SIZE) || DEFAULT_PAGE_SIZE;
  return {
    ...(campaignId !== undefined ? { campaignId } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(change !== undefined ? { change } : {}),
    ...(stuckMinutes !== undefined ? { stuckMinutes } : {}),
    ...(afterOrderId !== undefined ? { afterOrderId } : {}),
    limit,
  };
}

export interface OrderPage {
  readonly rows: readonly OrderRow[];
  /** The `after` of the next page; undefined on the last one. */
  readonly nextAfter: number | undefined;
}

export async function readOrderPage(tx: StoreTx, filter: OrderFilter, now: number): Promise<OrderPage> {
  const rows = await tx.orders.list(
    {
      ...(filter.campaignId !== undefined ? { campaignId: filter.campaignId } : {}),
      ...(filter.status !== undefined ? { status: filter.status } : {}),
      ...(filter.change !== undefined ? { changeState: filter.change } : {}),
      ...(filter.stuckMinutes !== undefined ? { stuckBefore: now - filter.stuckMinutes * 60_000 } : {}),
    },
    filter.afterOrderId ?? 0,
    // One more than shown: whether another page follows, without a count.
    filter.limit + 1,
  );
  const page = rows.slice(0, filter.limit);
  return { rows: page, nextAfter: rows.length > filter.limit ? page[page.length - 1]!.order_id : undefined };
}
