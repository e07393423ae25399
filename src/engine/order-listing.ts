// Orders listed under a filter, a page at a time by order id (keyset paging): what `ym-orders
// list` prints. A page reads the order rows only, never a snapshot's JSON, and costs the same
// however deep it is (see OrdersPort.list).

import { z } from 'zod';
import { orderMachine } from '../../machines/order-machine.js';
import type { OrderListFilter, OrderRow } from '../store/orders.js';
import type { Store } from '../store/port.js';
import { parseCommand } from './commands.js';

/** The states of the order machine's change region: `idle` and the open ones. */
export const CHANGE_STATES: readonly string[] = Object.keys(orderMachine.states.change!.states);

const MAX_LIST_PAGE = 10_000;

const epochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const filterSchema = z.strictObject({
  campaignId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  // Any value the Market may send: unknown statuses are data, and match the orders stored with them.
  status: z.string().min(1).max(100).regex(/^[A-Z0-9_]+$/, 'an upper-case Market value such as PROCESSING').optional(),
  changeState: z.enum(CHANGE_STATES as [string, ...string[]]).optional(),
  stuckBefore: epochMs.optional(),
});

const pageSchema = z.strictObject({
  /** The last order id of the page before; absent for the first page. */
  after: epochMs.default(0),
  limit: z.number().int().positive().max(MAX_LIST_PAGE).default(100),
});
export type OrderListPageRequest = z.input<typeof pageSchema>;

/** One listed order: its row's columns, named as in OrderState. */
export interface ListedOrder {
  readonly orderId: number;
  readonly campaignId: number;
  readonly model: string;
  readonly status: string;
  readonly substatus: string | null;
  /** The change region's state (CHANGE_STATES). */
  readonly change: string;
  readonly observedAt: number;
  /** When the engine last wrote the order: a stuck order's change has not moved since. */
  readonly updatedAt: number;
}

export interface OrderListPage {
  readonly orders: readonly ListedOrder[];
  /** The `after` of the next page; undefined on the last one. */
  readonly nextAfter: number | undefined;
}

function listed(row: OrderRow): ListedOrder {
  return {
    orderId: row.order_id,
    campaignId: row.campaign_id,
    model: row.model,
    status: row.status,
    substatus: row.substatus,
    change: row.change_state,
    observedAt: row.observed_at,
    updatedAt: row.updated_at,
  };
}

/**
 * The orders matching `filter` after `page.after`, at most `page.limit` (default 100), by order id.
 * INVALID_COMMAND names each wrong field of a filter or page that does not have this shape.
 */
export async function listOrders(store: Store, filter: OrderListFilter, page: OrderListPageRequest = {}): Promise<OrderListPage> {
  const f = parseCommand(filterSchema, 'order list filter', filter);
  const { after, limit } = parseCommand(pageSchema, 'order list page', page);
  // One more than asked: whether another page follows, without a count.
  const rows = await store.read((tx) => tx.orders.list(f, after, limit + 1));
  const shown = rows.slice(0, limit);
  return { orders: shown.map(listed), nextAfter: rows.length > limit ? shown[shown.length - 1]!.order_id : undefined };
}
