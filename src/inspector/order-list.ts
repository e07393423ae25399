// The orders page's query: filters (campaign, status, change state, stuck for N minutes) and
// keyset paging by order id (`after`), so a page costs the same however deep it is.
//
// The store port lists no orders yet (OrdersPort has get and countByStatus only), so the
// candidates come from the outbox: every order with an open change, and those whose change
// settled in the last SETTLED_WINDOW_MS, at most OUTBOX_SCAN rows of each kind. Orders that
// never had a change are not listed (the summary counts them). Once the port has
// `orders.list(query)` (see the inspector's notes), readOrderPage asks it instead and the rest of
// the page stays as it is.

import { orderMachine } from '../../machines/order-machine.js';
import { ORDER_STATUSES } from '../../machines/statuses.js';
import type { OrderRow } from '../store/orders.js';
import { OPEN_OUTBOX_STATES, type OutboxRow } from '../store/outbox.js';
import type { StoreTx } from '../store/port.js';
import { InspectorQueryError } from './errors.js';

/** The states of the order machine's change region (`idle` and the open ones). */
export const CHANGE_STATES: readonly string[] = Object.keys(orderMachine.states.change!.states);
export const STATUS_CHOICES: readonly string[] = ORDER_STATUSES;

export const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;
/** Outbox rows looked at per kind (open, and each settled state) for one page. */
export const OUTBOX_SCAN = 5_000;
/** Settled changes older than this are not looked at. */
export const SETTLED_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;
/** Order rows read for one page at most; a page that needs more stops early and says where to go on. */
const MAX_ORDER_READS = 2_000;
const SETTLED_STATES = ['accepted', 'rejected', 'superseded'] as const;

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
  /** Some outbox list was cut at OUTBOX_SCAN rows: older changes are not looked at. */
  readonly candidatesCut: boolean;
  /** The page stopped after MAX_ORDER_READS rows without filling up; `nextAfter` goes on from there. */
  readonly readsCut: boolean;
}

function matches(row: OrderRow, filter: OrderFilter, now: number): boolean {
  if (filter.campaignId !== undefined && row.campaign_id !== filter.campaignId) return false;
  if (filter.status !== undefined && row.status !== filter.status) return false;
  if (filter.change !== undefined && row.change_state !== filter.change) return false;
  if (filter.stuckMinutes !== undefined && (row.change_state === 'idle' || row.updated_at > now - filter.stuckMinutes * 60_000)) return false;
  return true;
}

/** Whether an outbox row can belong to an order the filter keeps (cheap checks before reading the order). */
function mayMatch(outbox: OutboxRow, filter: OrderFilter): boolean {
  if (filter.campaignId !== undefined && outbox.campaign_id !== filter.campaignId) return false;
  // A change open now has an open outbox row; an idle order's changes have all settled.
  const open = (OPEN_OUTBOX_STATES as readonly string[]).includes(outbox.state);
  if (filter.change === 'idle') return !open;
  if (filter.change !== undefined || filter.stuckMinutes !== undefined) return open;
  return true;
}

export async function readOrderPage(tx: StoreTx, filter: OrderFilter, now: number): Promise<OrderPage> {
  const outbox = [...(await tx.outbox.open(OUTBOX_SCAN))];
  let candidatesCut = outbox.length >= OUTBOX_SCAN;
  // Only an idle order can have nothing but settled changes.
  const idleWanted = (filter.change === undefined || filter.change === 'idle') && filter.stuckMinutes === undefined;
  for (const state of idleWanted ? SETTLED_STATES : []) {
    const settled = await tx.outbox.settledSince(state, now - SETTLED_WINDOW_MS, OUTBOX_SCAN);
    candidatesCut ||= settled.length >= OUTBOX_SCAN;
    outbox.push(...settled);
  }
  const after = filter.afterOrderId ?? 0;
  const ids = [...new Set(outbox.filter((r) => r.order_id > after && mayMatch(r, filter)).map((r) => r.order_id))].sort((a, b) => a - b);
  const rows: OrderRow[] = [];
  let reads = 0;
  for (const id of ids) {
    if (rows.length > filter.limit) break;
    if (reads === MAX_ORDER_READS) return { rows, nextAfter: ids[reads - 1], candidatesCut, readsCut: true };
    reads++;
    const row = await tx.orders.get(id);
    if (row && matches(row, filter, now)) rows.push(row);
  }
  const more = rows.length > filter.limit;
  const page = rows.slice(0, filter.limit);
  return { rows: page, nextAfter: more ? page[page.length - 1]!.order_id : undefined, candidatesCut, readsCut: false };
}
