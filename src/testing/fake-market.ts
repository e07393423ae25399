// A fake Yandex Market Partner API over loopback HTTP: the five order endpoints ym-orders
// calls, with the real API's quirks (per-order errors inside HTTP 200, async LaaS
// operations, quotas with X-RateLimit headers, 420s, parallel limits) and injectable faults;
// with `notify`, it also pushes a notification for every change it makes (notifier.ts).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import { MARKET_OPERATIONS, type MarketOperation } from '../market/errors.js';
import {
  AcceptOrderCancellationRequestSchema, GetBusinessOrdersRequestSchema, GetOperationsRequestSchema,
  MAX_BUSINESS_ORDERS_PAGE, UpdateOrderStatusesRequestSchema, UpdateOrderStatusRequestSchema,
  type GetBusinessOrdersRequest,
} from '../market/schemas.js';
import { item, toBusinessOrderDto, toOrderDto } from './dto.js';
import { FAULT_KINDS, FaultInjector, type Fault, type FaultKind } from './faults.js';
import { FakeNotifier, notificationOf, type FakeNotifierOptions, type NotificationItem, type OrderUpdateType } from './notifier.js';
import {
  CHANGE_REFUSALS, OrderBook, type ChangeResult, type FakeCampaign, type FakeOrder, type FakeOrderSeed,
} from './order-book.js';
import { DEFAULT_QUOTAS, QuotaBook, type QuotaConfig, type QuotaState } from './quota.js';

export interface FakeMarketOptions {
  /** The key every request must carry, as `Api-Key: <key>` or `Authorization: Bearer <key>`. */
  apiKey: string;
  /** The campaigns the key may use; each belongs to a business and has a fulfilment model. */
  campaigns: readonly FakeCampaign[];
  /** Port on 127.0.0.1; default 0 (any free port). */
  port?: number;
  /** The fake's clock (epoch ms) for updateDate, quota windows and operations; default Date.now. */
  now?: () => number;
  /** How long a LaaS cancellation stays IN_PROGRESS, on the fake's clock; default 200 ms. */
  operationDelayMs?: number;
  /** Whether the operation started for this order ends FAILED (order unchanged); default never. */
  failOperation?: (orderId: number) => boolean;
  /** Quotas per endpoint; missing ones default to DEFAULT_QUOTAS (1 h windows). */
  quotas?: Partial<Record<MarketOperation, QuotaConfig>>;
  /** Requests in flight per campaign or business beyond which the fake answers 420; default 4. */
  parallelLimit?: number;
  /**
   * true (default): the X-RateLimit headers tell the truth. false: they always claim a fresh,
   * unused window, so a client that trusts them blindly runs into 420s.
   */
  honestHeaders?: boolean;
  /** Seed of the PRNG behind `Fault.probability`; default 1. */
  seed?: number;
  /** Delay before every request is handled (while it counts as in flight); default 0. */
  latencyMs?: number;
  /**
   * Push notifications to this receiver (`url`: the full URL of its `/notification`) for every
   * change the fake makes, with the notifier's faults and retries (notifier.ts); none when absent.
   */
  notify?: Omit<FakeNotifierOptions, 'now'>;
}

/** An order a buyer places: like a seed, but status and substatus default by model. */
export interface FakeNewOrder extends Omit<FakeOrderSeed, 'status' | 'substatus'> {
  /** Default PROCESSING, or RESERVED for LaaS (a draft the seller confirms). */
  status?: string;
  /** Default STARTED, or AWAIT_CONFIRMATION for LaaS. */
  substatus?: string;
}

/** One request as the fake saw it. */
export interface FakeRequest {
  method: string;
  /** Path and query string, as sent. */
  path: string;
  endpoint: MarketOperation | undefined;
  /** The parsed JSON body, or the raw text when it was not JSON. */
  body: unknown;
  /** The HTTP status answered; undefined while pending, or when the fake hung or dropped. */
  status: number | undefined;
  /** The answer's body text as sent (truncated JSON for malformedJson); undefined with no answer. */
  responseBody: string | undefined;
  fault: FaultKind | undefined;
  receivedAt: number;
  answeredAt: number | undefined;
}

export interface FakeMarketStats {
  /** Requests per endpoint, whatever the answer. */
  requestsByEndpoint: Record<MarketOperation, number>;
  /** 420 answers served (quota, parallel limit, or an injected status420). */
  rateLimited: number;
  /** Per order id: changes applied (seller changes, completed operations, accepted cancellations). */
  appliedChanges: Record<number, number>;
  /** Change requests for an (order, target) the fake had already accepted: re-sent changes. */
  duplicateApplications: number;
  /** Changes the rules refused (and cancellation answers with no request waiting). */
  illegalRequests: number;
  /** Per `campaign:<id>` or `business:<id>`: the most requests that were in flight at once. */
  maxInFlight: Record<string, number>;
}

export interface FakeMarket {
  /** Base URL to give the client, e.g. `http://127.0.0.1:53121`. */
  readonly url: string;
  readonly port: number;
  /** Every request received, in arrival order. */
  readonly requests: readonly FakeRequest[];
  /** Adds or replaces orders. Throws on an unknown campaign. */
  seedOrders(orders: readonly FakeOrderSeed[]): void;
  /**
   * A buyer places an order: seeded as given (status by model when absent), and notified
   * ORDER_CREATED. Throws on an unknown campaign or an id the fake has.
   */
  createOrder(order: FakeNewOrder): FakeOrder;
  /**
   * A Market-side move (no rules apply); bumps updateDate; notified ORDER_STATUS_UPDATED (and
   * ORDER_CANCELLED into CANCELLED). Throws on an unknown order.
   */
  setOrderStatus(orderId: number, status: string, substatus: string): void;
  /** The Market moved the order's shipment or delivery date: bumps updateDate, notified ORDER_UPDATED. */
  updateOrderDates(orderId: number, updateType: OrderUpdateType): void;
  /** A copy of the order, with due operations settled first. */
  getOrder(orderId: number): FakeOrder | undefined;
  /** DBS: the buyer asks to cancel (sets cancelRequested); notified ORDER_CANCELLATION_REQUEST. Throws for other models. */
  requestCancellation(orderId: number): void;
  /**
   * The buyer opens a chat about the order: notified CHAT_CREATED (a type an order engine has no
   * use for; the fake keeps no chats). Returns the chat's id. Throws on an unknown order.
   */
  openChat(orderId: number): number;
  /** The notifier when `notify` was given: wait on its idle(), read its stats(), ping(). */
  readonly notifier: FakeNotifier | undefined;
  /** Adds a fault; see FAULT_KINDS. */
  inject(fault: Fault): void;
  clearFaults(): void;
  /**
   * From now on, holds every request that gets past the parallel limit (so it counts as in
   * flight) and matches `filter`, before acting on it, until release(): a slow Market whose
   * requests a test lets go of when it has seen what it waits for.
   */
  hold(filter?: (request: FakeRequest) => boolean): void;
  /** The requests held now, in arrival order. */
  held(): readonly FakeRequest[];
  /**
   * Lets the held requests go on: all of them, or the first `count` in arrival order. Holding
   * stops, unless `keepHolding` (then later requests are held too).
   */
  release(options?: { count?: number; keepHolding?: boolean }): void;
  stats(): FakeMarketStats;
  /**
   * Stops the server and destroys every socket, hung requests included; closes the notifier,
   * dropping what it has not delivered (await `notifier.idle()` first to deliver it).
   */
  close(): Promise<void>;
}

const DEFAULT_OPERATION_DELAY_MS = 200;
const DEFAULT_PARALLEL_LIMIT = 4;
const HOUR_MS = 60 * 60 * 1000;
/** Added to an asked-about id to make one the client did not ask about (foreignIds fault). */
const FOREIGN_ID_OFFSET = 1_000_000_000;

type Owner = { kind: 'campaign' | 'business'; id: number };

interface Route {
  endpoint: MarketOperation;
  owner: Owner;
  orderId: number | undefined;
}

const ROUTES: readonly { method: string; pattern: RegExp; endpoint: MarketOperation; owner: Owner['kind'] }[] = [
  { method: 'POST', pattern: /^\/v2\/campaigns\/(\d+)\/orders\/status-update$/, endpoint: 'updateOrderStatuses', owner: 'campaign' },
  { method: 'PUT', pattern: /^\/v2\/campaigns\/(\d+)\/orders\/(\d+)\/status$/, endpoint: 'updateOrderStatus', owner: 'campaign' },
  { method: 'PUT', pattern: /^\/v2\/campaigns\/(\d+)\/orders\/(\d+)\/cancellation\/accept$/, endpoint: 'acceptOrderCancellation', owner: 'campaign' },
  { method: 'POST', pattern: /^\/v1\/businesses\/(\d+)\/operations$/, endpoint: 'getOperations', owner: 'business' },
  { method: 'POST', pattern: /^\/v1\/businesses\/(\d+)\/orders$/, endpoint: 'getBusinessOrders', owner: 'business' },
];

function route(method: string, pathname: string): Route | undefined {
  for (const r of ROUTES) {
    const match = r.method === method ? r.pattern.exec(pathname) : null;
    if (match !== null) {
      return { endpoint: r.endpoint, owner: { kind: r.owner, id: Number(match[1]) }, orderId: match[2] === undefined ? undefined : Number(match[2]) };
    }
  }
  return undefined;
}

const ownerKey = (owner: Owner): string => `${owner.kind}:${owner.id}`;

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

function errorReply(status: number, code: string, message: string): Reply {
  return { status, body: { status: 'ERROR', errors: [{ code, message }] } };
}

function invalidBody(error: z.ZodError): Reply {
  const issues = error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  return errorReply(400, 'BAD_REQUEST', `Invalid request body: ${issues.join('; ')}`);
}

/** A page token: the (updateDate, id) of the last order of the previous page, opaque to clients. */
function encodePageToken(order: FakeOrder): string {
  return Buffer.from(JSON.stringify([order.updateDate, order.id])).toString('base64url');
}

function decodePageToken(token: string): [number, number] | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value.every((n) => Number.isSafeInteger(n))) return value as [number, number];
  } catch {
    // not a token of ours
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Starts a fake Market Partner API on 127.0.0.1.
 *
 * Implements updateOrderStatuses, updateOrderStatus, getOperations, getBusinessOrders and
 * acceptOrderCancellation with in-memory orders. Seller changes follow SELLER_RULES
 * (machines/rules.ts): a refused change in the bulk call comes back as `updateStatus: ERROR`
 * with `errorDetails` inside HTTP 200, in the single PUT as HTTP 400. LaaS cancellations return
 * an operation that completes `operationDelayMs` later on the fake's clock.
 *
 * Quotas are fixed windows per endpoint and campaign/business (updateOrderStatuses counts
 * orders); every answer to an authorised request carries X-RateLimit-Resource-Limit, -Remaining
 * and -Until (windows run on the `now` clock). 2xx and 4xx answers use quota; 5xx and 420
 * answers do not. Requests without a valid key (401), to an unknown campaign or business (403)
 * or to an unknown path (404) carry no rate-limit headers and use no quota.
 *
 * With `notify`, every change the fake makes is pushed: a status change (a seller's through
 * either status endpoint, a completed LaaS operation, an accepted DBS cancellation, a
 * setOrderStatus) as ORDER_STATUS_UPDATED, followed by ORDER_CANCELLED when the order is now
 * CANCELLED; createOrder as ORDER_CREATED, requestCancellation as ORDER_CANCELLATION_REQUEST,
 * updateOrderDates as ORDER_UPDATED, openChat as CHAT_CREATED. Seeded orders are not notified. A LaaS operation is
 * notified when the fake settles it: `operationDelayMs` after it started, or at the next request
 * or getOrder when the fake's clock is not the real one.
 *
 * @example
 * const market = await startFakeMarket({ apiKey: 'k', campaigns: [{ campaignId: 1, businessId: 10, model: 'FBS' }] });
 * market.seedOrders([{ id: 5, campaignId: 1, status: 'PROCESSING', substatus: 'STARTED' }]);
 * market.inject({ kind: 'dropAfterApply', endpoint: 'updateOrderStatuses' });
 * // ... point the code under test at market.url ...
 * await market.close();
 */
export async function startFakeMarket(options: FakeMarketOptions): Promise<FakeMarket> {
  const now = options.now ?? Date.now;
  const parallelLimit = options.parallelLimit ?? DEFAULT_PARALLEL_LIMIT;
  const honestHeaders = options.honestHeaders ?? true;
  const latencyMs = options.latencyMs ?? 0;
  const operationDelayMs = options.operationDelayMs ?? DEFAULT_OPERATION_DELAY_MS;
  const book = new OrderBook({
    campaigns: options.campaigns,
    now,
    operationDelayMs,
    failOperation: options.failOperation ?? (() => false),
  });
  const quotaConfigs = { ...DEFAULT_QUOTAS, ...options.quotas };
  const quotas = new QuotaBook(quotaConfigs, now);
  const faults = new FaultInjector(options.seed ?? 1);
  const requests: FakeRequest[] = [];
  const requestsByEndpoint = Object.fromEntries(MARKET_OPERATIONS.map((op) => [op, 0])) as Record<MarketOperation, number>;
  const inFlight = new Map<string, number>();
  const maxInFlight: Record<string, number> = {};
  const timers = new Set<NodeJS.Timeout>();
  const notifier = options.notify === undefined ? undefined : new FakeNotifier({ ...options.notify, now });
  let rateLimited = 0;
  /** Chats buyers opened (openChat): the last chat id. */
  let chats = 0;
  let holding: ((request: FakeRequest) => boolean) | undefined;
  let held: { record: FakeRequest; go: () => void }[] = [];
  const release = (count: number, keepHolding: boolean): void => {
    if (!keepHolding) holding = undefined;
    const going = held.slice(0, count);
    held = held.slice(count);
    for (const h of going) h.go();
  };

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      resolve();
    }, ms);
    timers.add(timer);
  });

  // ---- notifications: what the Market pushes about the changes the fake makes ---------------

  /** NotificationOrderItemDTO of the order's item, as getBusinessOrders shows it. */
  const itemsOf = (order: FakeOrder): NotificationItem[] => {
    const { offerId, count } = item(order);
    return [{ offerId, count }];
  };

  const announceStatus = (order: FakeOrder): void => {
    notifier?.notify(notificationOf.statusUpdated(order));
    if (order.status === 'CANCELLED') notifier?.notify(notificationOf.cancelled(order, itemsOf(order)));
  };

  /** LaaS operations started while notifying, announced when the fake settles them. */
  const watchedOperations = new Set<string>();

  /** The one pending look at the watched operations, or undefined. */
  let settleCheck: ReturnType<typeof setTimeout> | undefined;
  const checkSettledIn = (ms: number): void => {
    if (settleCheck !== undefined) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      settleCheck = undefined;
      announceSettled();
    }, ms);
    settleCheck = timer;
    timers.add(timer);
  };

  const announceSettled = (): void => {
    if (watchedOperations.size === 0) return;
    let soonest: number | undefined;
    for (const op of book.operations('ORDER_STATUS_UPDATE', [...watchedOperations])) {
      if (op.status === 'IN_PROGRESS') {
        const left = op.startedAt + operationDelayMs - now();
        soonest = soonest === undefined ? left : Math.min(soonest, left);
        continue;
      }
      watchedOperations.delete(op.id);
      const order = op.status === 'DONE' ? book.get(op.orderId) : undefined;
      if (order !== undefined) announceStatus(order);
    }
    // On the real clock a timer may fire a millisecond before Date.now says the operation is due
    // (timers run on another clock): look again then, or it is never announced. On a clock of the
    // caller's, the next request or getOrder settles it, as documented.
    if (soonest !== undefined && options.now === undefined) checkSettledIn(Math.max(1, soonest));
  };

  const announceChange = (result: ChangeResult): void => {
    if (notifier === undefined || !result.ok) return;
    if (result.operation === undefined) return announceStatus(result.order);
    watchedOperations.add(result.operation.id);
    checkSettledIn(operationDelayMs);
  };

  const authorised = (req: IncomingMessage): boolean =>
    req.headers['api-key'] === options.apiKey || req.headers.authorization === `Bearer ${options.apiKey}`;

  const ownerExists = (owner: Owner): boolean =>
    owner.kind === 'campaign' ? book.campaign(owner.id) !== undefined : book.hasBusiness(owner.id);

  const quotaState = (endpoint: MarketOperation, owner: Owner): QuotaState =>
    quotas.state(endpoint, ownerKey(owner));

  const limitExceeded = (endpoint: MarketOperation, limit: number): Reply => {
    const windowMs = quotaConfigs[endpoint].windowMs;
    const period = windowMs === HOUR_MS ? 'hour' : `${windowMs} ms`;
    return errorReply(420, 'LIMIT_EXCEEDED', `Hit rate limit of ${limit} requests per ${period} for resource ${endpoint}`);
  };

  const rateLimitHeaders = (endpoint: MarketOperation, owner: Owner): Record<string, string> => {
    const state = honestHeaders ? quotaState(endpoint, owner) : quotas.fresh(endpoint);
    return {
      'X-RateLimit-Resource-Limit': String(state.limit),
      'X-RateLimit-Resource-Remaining': String(state.remaining),
      'X-RateLimit-Resource-Until': new Date(state.untilMs).toUTCString(),
    };
  };

  // A request stops counting as in flight when its answer is written, as the client sees it, not
  // when the socket later closes; otherwise a client that sends its next request as soon as it
  // reads an answer could be counted over the parallel limit.
  const leaveFlight = new WeakMap<ServerResponse, () => void>();

  const send = (res: ServerResponse, record: FakeRequest, status: number, payload: string, headers: Record<string, string> = {}): void => {
    if (res.destroyed || res.writableEnded) return;
    leaveFlight.get(res)?.();
    if (status === 420) rateLimited += 1;
    record.status = status;
    record.responseBody = payload;
    record.answeredAt = now();
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(payload), ...headers });
    res.end(payload);
  };

  // ---- endpoint handlers: validate, act on the order book, build the answer ---------------

  const changeReply = (result: ChangeResult, model: FakeCampaign['model'], foreign: boolean): Reply => {
    if (!result.ok) {
      if (result.refusal === CHANGE_REFUSALS.notFound) return errorReply(404, 'NOT_FOUND', result.message);
      const code = result.refusal === CHANGE_REFUSALS.badDeliveryDate ? 'BAD_REQUEST' : 'STATUS_NOT_ALLOWED';
      return errorReply(400, code, result.message);
    }
    const order = toOrderDto(result.order, model);
    if (foreign) order.id = result.order.id + FOREIGN_ID_OFFSET;
    return {
      status: 200,
      body: { order, ...(result.operation ? { operation: { id: result.operation.id, type: result.operation.type } } : {}) },
    };
  };

  const handlers: Record<MarketOperation, (route: Route, body: unknown, query: URLSearchParams, foreign: boolean) => Reply> = {
    updateOrderStatuses(r, body, _query, foreign) {
      const parsed = UpdateOrderStatusesRequestSchema.safeParse(body);
      if (!parsed.success) return invalidBody(parsed.error);
      const orders = parsed.data.orders.map((o) => {
        const result = book.change(r.owner.id, o.id, o);
        announceChange(result);
        if (result.ok) {
          return {
            id: o.id, status: result.order.status, substatus: result.order.substatus, updateStatus: 'OK',
            ...(result.operation ? { operation: { id: result.operation.id, type: result.operation.type } } : {}),
          };
        }
        return {
          id: o.id,
          ...(result.order ? { status: result.order.status, substatus: result.order.substatus } : {}),
          updateStatus: 'ERROR', errorDetails: result.message,
        };
      });
      if (foreign) {
        const first = parsed.data.orders[0];
        orders.push({ id: (first?.id ?? 0) + FOREIGN_ID_OFFSET, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updateStatus: 'OK' });
      }
      return { status: 200, body: { status: 'OK', result: { orders } } };
    },

    updateOrderStatus(r, body, _query, foreign) {
      const parsed = UpdateOrderStatusRequestSchema.safeParse(body);
      if (!parsed.success) return invalidBody(parsed.error);
      const { delivery, ...target } = parsed.data.order;
      const result = book.change(r.owner.id, r.orderId ?? 0, target, delivery?.dates?.realDeliveryDate);
      announceChange(result);
      return changeReply(result, book.campaign(r.owner.id)?.model ?? 'FBS', foreign);
    },

    getOperations(_r, body, _query, foreign) {
      const parsed = GetOperationsRequestSchema.safeParse(body);
      if (!parsed.success) return invalidBody(parsed.error);
      const operations = book.operations(parsed.data.operationType, parsed.data.operationIds)
        .map((op) => ({ id: op.id, type: op.type, status: op.status }));
      if (foreign) operations.push({ id: 'fake-op-not-asked', type: 'ORDER_STATUS_UPDATE', status: 'DONE' });
      return { status: 200, body: { status: 'OK', result: { operations } } };
    },

    getBusinessOrders(r, body, query, foreign) {
      const parsed = GetBusinessOrdersRequestSchema.safeParse(body);
      if (!parsed.success) return invalidBody(parsed.error);
      const limitText = query.get('limit');
      if (limitText !== null && !/^[1-9]\d*$/.test(limitText)) return errorReply(400, 'BAD_REQUEST', `Invalid limit: ${limitText}`);
      // PageLimit50Truncate: a larger limit is cut to 50, not refused.
      const limit = Math.min(limitText === null ? MAX_BUSINESS_ORDERS_PAGE : Number(limitText), MAX_BUSINESS_ORDERS_PAGE);
      const token = query.get('pageToken') ?? query.get('page_token');
      const cursor = token === null ? undefined : decodePageToken(token);
      if (token !== null && cursor === undefined) return errorReply(400, 'BAD_REQUEST', 'Invalid pageToken');

      const keep = (o: FakeOrder): boolean => matchesFilter(o, parsed.data, book.campaign(o.campaignId)?.model);
      const after = (o: FakeOrder): boolean => cursor === undefined || o.updateDate > cursor[0] || (o.updateDate === cursor[0] && o.id > cursor[1]);
      const matching = parsed.data.orderIds !== undefined
        ? book.ordersByIds(r.owner.id, parsed.data.orderIds).filter((o) => keep(o) && after(o))
        : book.pageOfBusiness(r.owner.id, cursor, limit, keep);
      const page = matching.slice(0, limit);
      const last = page.at(-1);
      const orders = page.map((o) => toBusinessOrderDto(o, book.campaign(o.campaignId)?.model ?? 'FBS'));
      const template = page[0];
      if (foreign && template) {
        orders.push(toBusinessOrderDto({ ...template, id: template.id + FOREIGN_ID_OFFSET }, book.campaign(template.campaignId)?.model ?? 'FBS'));
      }
      return {
        status: 200,
        body: { orders, paging: matching.length > limit && last ? { nextPageToken: encodePageToken(last) } : {} },
      };
    },

    acceptOrderCancellation(r, body) {
      const parsed = AcceptOrderCancellationRequestSchema.safeParse(body);
      if (!parsed.success) return invalidBody(parsed.error);
      const result = book.answerCancellation(r.owner.id, r.orderId ?? 0, parsed.data.accepted);
      if (result.ok && parsed.data.accepted) announceChange(result);
      if (result.ok) return { status: 200, body: { status: 'OK' } };
      if (result.refusal === CHANGE_REFUSALS.notFound) return errorReply(404, 'NOT_FOUND', result.message);
      return errorReply(400, 'BAD_REQUEST', result.message);
    },
  };

  // ---- the request pipeline: route, auth, parallel limit, faults, quota, handler ---------

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const record: FakeRequest = {
      method: req.method ?? 'GET', path: `${url.pathname}${url.search}`, endpoint: undefined, body: undefined,
      status: undefined, responseBody: undefined, fault: undefined, receivedAt: now(), answeredAt: undefined,
    };
    requests.push(record);
    const text = await readBody(req);
    let body: unknown;
    let bodyIsJson = true;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
      bodyIsJson = false;
    }
    record.body = body;
    const reply = (r: Reply, headers?: Record<string, string>): void => send(res, record, r.status, JSON.stringify(r.body), headers);

    const matched = route(record.method, url.pathname);
    if (matched === undefined) return reply(errorReply(404, 'NOT_FOUND', `No method ${record.method} ${url.pathname}`));
    const { endpoint, owner } = matched;
    record.endpoint = endpoint;
    requestsByEndpoint[endpoint] += 1;
    if (!authorised(req)) return reply(errorReply(401, 'UNAUTHORIZED', 'Api-Key is missing or invalid'));
    if (!ownerExists(owner)) return reply(errorReply(403, 'FORBIDDEN', `Access denied to ${owner.kind} ${owner.id}`));

    const key = ownerKey(owner);
    const active = (inFlight.get(key) ?? 0) + 1;
    inFlight.set(key, active);
    maxInFlight[key] = Math.max(maxInFlight[key] ?? 0, active);
    let inside = true;
    const leave = (): void => {
      if (!inside) return;
      inside = false;
      inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
    };
    leaveFlight.set(res, leave);
    res.on('close', leave);
    const headers = (): Record<string, string> => rateLimitHeaders(endpoint, owner);

    if (active > parallelLimit) {
      return reply(errorReply(420, 'LIMIT_EXCEEDED', `Hit rate limit of ${parallelLimit} parallel requests for ${owner.kind}Id ${owner.id}`), headers());
    }
    if (latencyMs > 0) await sleep(latencyMs);
    if (holding?.(record)) await new Promise<void>((go) => held.push({ record, go }));

    const fault = faults.take(endpoint);
    record.fault = fault?.kind;
    switch (fault?.kind) {
      case FAULT_KINDS.status500:
        return reply(errorReply(500, 'INTERNAL_ERROR', 'Internal server error'), headers());
      case FAULT_KINDS.status503:
        return reply(errorReply(503, 'SERVICE_UNAVAILABLE', 'Service temporarily unavailable'), headers());
      case FAULT_KINDS.status420:
        return reply(limitExceeded(endpoint, quotaState(endpoint, owner).limit), { ...headers(), 'X-RateLimit-Resource-Remaining': '0' });
      case FAULT_KINDS.hang:
        if (fault.delayMs === undefined) return;
        await sleep(fault.delayMs);
        break;
      case FAULT_KINDS.drop:
        req.socket.destroy();
        return;
    }

    // updateOrderStatuses is counted in orders (x-resource-limit-config path: resp.result.orders).
    const orders = bodyIsJson ? (body as { orders?: unknown } | null)?.orders : undefined;
    const units = endpoint === 'updateOrderStatuses' && Array.isArray(orders) ? Math.max(orders.length, 1) : 1;
    const quota = quotaState(endpoint, owner);
    if (quota.remaining < units) return reply(limitExceeded(endpoint, quota.limit), headers());

    // Operations due now are announced before this request's own changes, which happen later.
    announceSettled();
    const answer = bodyIsJson
      ? handlers[endpoint](matched, body, url.searchParams, fault?.kind === FAULT_KINDS.foreignIds)
      : errorReply(400, 'BAD_REQUEST', 'Request body is not valid JSON');
    announceSettled();
    if (answer.status < 500) quotas.consume(endpoint, key, units);

    switch (fault?.kind) {
      case FAULT_KINDS.timeoutAfterApply:
        if (fault.delayMs === undefined) return;
        await sleep(fault.delayMs);
        break;
      case FAULT_KINDS.dropAfterApply:
        req.socket.destroy();
        return;
      case FAULT_KINDS.status500AfterApply:
        return reply(errorReply(500, 'INTERNAL_ERROR', 'Internal server error'), headers());
      case FAULT_KINDS.malformedJson: {
        const json = JSON.stringify(answer.body);
        return send(res, record, answer.status, json.slice(0, Math.ceil(json.length / 2)), headers());
      }
    }
    reply(answer, headers());
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ status: 'ERROR', errors: [{ code: 'INTERNAL_ERROR', message: `fake Market bug: ${String(error)}` }] }));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    notifier,
    seedOrders: (orders) => book.seed(orders),
    createOrder: (order) => {
      if (book.get(order.id) !== undefined) throw new Error(`createOrder: the fake already has order ${order.id}`);
      const laas = book.campaign(order.campaignId)?.model === 'LAAS';
      book.seed([{
        ...order,
        status: order.status ?? (laas ? 'RESERVED' : 'PROCESSING'),
        substatus: order.substatus ?? (laas ? 'AWAIT_CONFIRMATION' : 'STARTED'),
      }]);
      const created = book.get(order.id)!;
      notifier?.notify(notificationOf.created(created, itemsOf(created)));
      return created;
    },
    setOrderStatus: (orderId, status, substatus) => {
      announceSettled();
      book.setStatus(orderId, status, substatus);
      if (notifier !== undefined) announceStatus(book.get(orderId)!);
    },
    updateOrderDates: (orderId, updateType) => {
      const order = book.get(orderId);
      if (order === undefined) throw new Error(`updateOrderDates: the fake has no order ${orderId}`);
      // The fake keeps no shipment or delivery dates: the change is its updateDate moving on.
      book.setStatus(orderId, order.status, order.substatus);
      notifier?.notify(notificationOf.updated(book.get(orderId)!, updateType));
    },
    getOrder: (orderId) => {
      announceSettled();
      return book.get(orderId);
    },
    requestCancellation: (orderId) => {
      book.requestCancellation(orderId);
      notifier?.notify(notificationOf.cancellationRequested(book.get(orderId)!));
    },
    openChat: (orderId) => {
      const order = book.get(orderId);
      if (order === undefined) throw new Error(`openChat: the fake has no order ${orderId}`);
      chats += 1;
      notifier?.notify(notificationOf.chatCreated(chats, book.campaign(order.campaignId)!.businessId, now()));
      return chats;
    },
    inject: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    hold: (filter) => {
      holding = filter ?? (() => true);
    },
    held: () => held.map((h) => h.record),
    release: (releaseOptions) => release(releaseOptions?.count ?? Infinity, releaseOptions?.keepHolding ?? false),
    stats: () => ({
      requestsByEndpoint: { ...requestsByEndpoint },
      rateLimited,
      appliedChanges: Object.fromEntries(book.applied),
      duplicateApplications: book.duplicateApplications,
      illegalRequests: book.illegalRequests,
      maxInFlight: { ...maxInFlight },
    }),
    close: async () => {
      await notifier?.close();
      await new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        // Held requests go on to find their sockets destroyed, so no handler is left waiting.
        release(Infinity, false);
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function matchesFilter(order: FakeOrder, filter: GetBusinessOrdersRequest, model: string | undefined): boolean {
  const from = filter.dates?.updateDateFrom === undefined ? undefined : Date.parse(filter.dates.updateDateFrom);
  const to = filter.dates?.updateDateTo === undefined ? undefined : Date.parse(filter.dates.updateDateTo);
  return (filter.orderIds === undefined || filter.orderIds.includes(order.id))
    && (filter.campaignIds === undefined || filter.campaignIds.includes(order.campaignId))
    && (filter.statuses === undefined || filter.statuses.includes(order.status))
    && (filter.substatuses === undefined || filter.substatuses.includes(order.substatus))
    && (filter.programTypes === undefined || (model !== undefined && filter.programTypes.includes(model)))
    && (filter.fake === undefined || filter.fake === order.fake)
    && (filter.waitingForCancellationApprove === undefined || filter.waitingForCancellationApprove === order.cancelRequested)
    // updateDateFrom is inclusive and updateDateTo exclusive, as getOrders documents for its pair.
    && (from === undefined || order.updateDate >= from)
    && (to === undefined || order.updateDate < to);
}
