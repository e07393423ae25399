// The Partner API client: one method per endpoint, exactly one HTTP request per call.
// It validates the request, sends it, and turns the answer into a typed body or a typed
// error. Retries, backoff and rate-limit waits belong to the dispatcher, which decides
// from the error codes and `rateLimit` (DESIGN.md principle 5).

import { inspect } from 'node:util';
import { Pool } from 'undici';
import type { z } from 'zod';
import {
  MarketAuthError, MarketClientError, MarketNetworkError, MarketRateLimitedError, MarketRequestInvalidError,
  MarketResponseInvalidError, MarketResponseMismatchError, MarketServerError, MarketTimeoutError,
  type MarketCall, type MarketOperation,
} from './errors.js';
import { parseRateLimitHeaders, type RateLimitInfo } from './rate-limit.js';
import { redactSecret } from './redact.js';
import {
  AcceptOrderCancellationRequestSchema, ApiErrorResponseSchema, EmptyApiResponseSchema, GetBusinessOrdersQuerySchema,
  GetBusinessOrdersRequestSchema, GetBusinessOrdersResponseSchema, GetOperationsRequestSchema, GetOperationsResponseSchema,
  OrderStatusChangeSchema, UpdateOrderStatusesRequestSchema, UpdateOrderStatusesResponseSchema,
  UpdateOrderStatusResponseSchema, type AcceptOrderCancellationRequest, type ApiError, type EmptyApiResponse,
  type GetBusinessOrdersQuery, type GetBusinessOrdersRequest, type GetBusinessOrdersResponse, type GetOperationsRequest,
  type GetOperationsResponse, type OrderState, type OrderStatusChange, type UpdateOrderStatusesResponse,
  type UpdateOrderStatusResponse,
} from './schemas.js';

export const AUTH_SCHEMES = ['api-key', 'oauth'] as const;
export type AuthScheme = (typeof AUTH_SCHEMES)[number];

export const DEFAULT_TIMEOUT_MS = 10_000;

export interface MarketClientOptions {
  /** e.g. `https://api.partner.market.yandex.ru`, or a fake Market's `url`. A path prefix is kept. */
  baseUrl: string;
  apiKey: string;
  /** `api-key` (default) sends `Api-Key: <key>`; `oauth` sends `Authorization: Bearer <key>`. */
  authScheme?: AuthScheme;
  /** The whole call (connect, headers, body) must finish within this; default 10 000 ms. */
  timeoutMs?: number;
  /** Maximum sockets to the origin; unlimited by default (the dispatcher caps concurrency). */
  connections?: number;
}

/** A 2xx answer: the validated body, the rate-limit headers and the HTTP status. */
export interface MarketResponse<Body> {
  body: Body;
  rateLimit: RateLimitInfo;
  httpStatus: number;
}

/** Ids asked about but absent from the answer: their outcome is unknown, read them back. */
export interface WithMissingIds<Id> {
  missingIds: Id[];
}

export interface MarketClient {
  /** POST /v2/campaigns/{campaignId}/orders/status-update with 1..30 orders. */
  updateOrderStatuses(campaignId: number, orders: readonly OrderState[]):
    Promise<MarketResponse<UpdateOrderStatusesResponse> & WithMissingIds<number>>;
  /** PUT /v2/campaigns/{campaignId}/orders/{orderId}/status (needed for DBS realDeliveryDate). */
  updateOrderStatus(campaignId: number, orderId: number, change: OrderStatusChange):
    Promise<MarketResponse<UpdateOrderStatusResponse>>;
  /** POST /v1/businesses/{businessId}/operations: statuses of async operations (LaaS cancellations). */
  getOperations(businessId: number, request: GetOperationsRequest):
    Promise<MarketResponse<GetOperationsResponse> & WithMissingIds<string>>;
  /**
   * POST /v1/businesses/{businessId}/orders: one page; follow `body.paging.nextPageToken`.
   * `signal` aborts the read (a sync stopped between pages); reads change nothing at the Market.
   */
  getBusinessOrders(businessId: number, body: GetBusinessOrdersRequest, query?: GetBusinessOrdersQuery, options?: { signal?: AbortSignal }):
    Promise<MarketResponse<GetBusinessOrdersResponse>>;
  /** PUT /v2/campaigns/{campaignId}/orders/{orderId}/cancellation/accept (DBS). */
  acceptOrderCancellation(campaignId: number, orderId: number, body: AcceptOrderCancellationRequest):
    Promise<MarketResponse<EmptyApiResponse>>;
  /** Closes the connection pool; in-flight calls fail. */
  close(): Promise<void>;
}

// Errors raised before the TCP connection existed: the Market cannot have seen the request.
const NOT_CONNECTED_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT',
]);
const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const BODY_SNIPPET_CHARS = 300;

function summariseIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`);
}

function validId(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

/**
 * The base URL, or a TypeError that does not repeat it: when the settings are swapped, it is the
 * key (URL's own error carries the input).
 */
function parseBaseUrl(baseUrl: string): URL {
  const url = URL.canParse(baseUrl) ? new URL(baseUrl) : undefined;
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    throw new TypeError('createMarketClient: baseUrl is not an absolute http(s) URL, e.g. https://api.partner.market.yandex.ru');
  }
  return url;
}

/** A wrong number is shown (it cannot be a secret); anything else only by its type. */
function describeId(value: unknown): string {
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : `a ${typeof value}`;
}

function transportCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

interface SendArgs<Schema extends z.ZodType> {
  call: MarketCall;
  body: unknown;
  query?: Record<string, string>;
  responseSchema: Schema;
  signal?: AbortSignal | undefined;
}

export function createMarketClient(options: MarketClientOptions): MarketClient {
  return new PartnerApiClient(options);
}

class PartnerApiClient implements MarketClient {
  // Private fields keep the key and the pool out of util.inspect, JSON and enumeration.
  readonly #apiKey: string;
  readonly #authHeader: Record<string, string>;
  readonly #pool: Pool;
  readonly #pathPrefix: string;
  readonly #origin: string;
  readonly #timeoutMs: number;
  readonly #authScheme: AuthScheme;

  constructor(options: MarketClientOptions) {
    const url = parseBaseUrl(options.baseUrl);
    if (options.apiKey === '') throw new TypeError('createMarketClient: apiKey is empty');
    this.#apiKey = options.apiKey;
    this.#authScheme = options.authScheme ?? 'api-key';
    this.#authHeader = this.#authScheme === 'oauth'
      ? { authorization: `Bearer ${options.apiKey}` }
      : { 'api-key': options.apiKey };
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#origin = url.origin;
    this.#pathPrefix = url.pathname.replace(/\/+$/, '');
    this.#pool = new Pool(url.origin, {
      connections: options.connections ?? null,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
      connect: { timeout: this.#timeoutMs },
    });
  }

  async updateOrderStatuses(campaignId: number, orders: readonly OrderState[]) {
    const call = this.#call('updateOrderStatuses', 'POST', '/v2/campaigns/{campaignId}/orders/status-update', { campaignId });
    const body = this.#validate(call, UpdateOrderStatusesRequestSchema, { orders });
    const response = await this.#send({ call, body, responseSchema: UpdateOrderStatusesResponseSchema });
    const asked = new Set(body.orders.map((o) => o.id));
    const answered = response.body.result?.orders.map((o) => o.id) ?? [];
    this.#rejectForeign(call, response, answered.filter((id) => !asked.has(id)));
    const answeredSet = new Set(answered);
    return { ...response, missingIds: [...asked].filter((id) => !answeredSet.has(id)) };
  }

  async updateOrderStatus(campaignId: number, orderId: number, change: OrderStatusChange) {
    const call = this.#call('updateOrderStatus', 'PUT', '/v2/campaigns/{campaignId}/orders/{orderId}/status', { campaignId, orderId });
    const order = this.#validate(call, OrderStatusChangeSchema, change);
    const response = await this.#send({ call, body: { order }, responseSchema: UpdateOrderStatusResponseSchema });
    this.#rejectForeign(call, response, response.body.order.id === orderId ? [] : [response.body.order.id]);
    return response;
  }

  async getOperations(businessId: number, request: GetOperationsRequest) {
    const call = this.#call('getOperations', 'POST', '/v1/businesses/{businessId}/operations', { businessId });
    const body = this.#validate(call, GetOperationsRequestSchema, request);
    const response = await this.#send({ call, body, responseSchema: GetOperationsResponseSchema });
    const asked = new Set(body.operationIds);
    const answered = response.body.result.operations.map((o) => o.id);
    this.#rejectForeign(call, response, answered.filter((id) => !asked.has(id)));
    const answeredSet = new Set(answered);
    return { ...response, missingIds: body.operationIds.filter((id) => !answeredSet.has(id)) };
  }

  async getBusinessOrders(businessId: number, request: GetBusinessOrdersRequest, query: GetBusinessOrdersQuery = {}, options: { signal?: AbortSignal } = {}) {
    const call = this.#call('getBusinessOrders', 'POST', '/v1/businesses/{businessId}/orders', { businessId });
    const body = this.#validate(call, GetBusinessOrdersRequestSchema, request);
    const { pageToken, limit } = this.#validate(call, GetBusinessOrdersQuerySchema, query);
    const search: Record<string, string> = {};
    if (pageToken !== undefined) search.pageToken = pageToken;
    if (limit !== undefined) search.limit = String(limit);
    const response = await this.#send({ call, body, query: search, responseSchema: GetBusinessOrdersResponseSchema, signal: options.signal });
    if (body.orderIds !== undefined) {
      const asked = new Set(body.orderIds);
      this.#rejectForeign(call, response, response.body.orders.map((o) => o.orderId).filter((id) => !asked.has(id)));
    }
    return response;
  }

  async acceptOrderCancellation(campaignId: number, orderId: number, request: AcceptOrderCancellationRequest) {
    const call = this.#call('acceptOrderCancellation', 'PUT', '/v2/campaigns/{campaignId}/orders/{orderId}/cancellation/accept', { campaignId, orderId });
    const body = this.#validate(call, AcceptOrderCancellationRequestSchema, request);
    return this.#send({ call, body, responseSchema: EmptyApiResponseSchema });
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  /** What JSON.stringify and util.inspect show: the configuration, never the key. */
  toJSON(): Record<string, unknown> {
    return { baseUrl: `${this.#origin}${this.#pathPrefix}`, authScheme: this.#authScheme, timeoutMs: this.#timeoutMs };
  }

  [inspect.custom](): string {
    return `MarketClient ${inspect(this.toJSON())}`;
  }

  /**
   * The call, its path filled in from `template` with the ids. An id that is not a positive
   * integer stops the call before anything is sent. It stays a `{name}` placeholder in the path
   * and the issue shows it only if it is a number: it may be anything, even the key in the wrong place.
   */
  #call(operation: MarketOperation, method: MarketCall['method'], template: string, ids: Record<string, number>): MarketCall {
    const invalid = Object.keys(ids).filter((name) => !validId(ids[name]!));
    const path = template.replace(/\{(\w+)\}/g, (placeholder, name: string) => (invalid.includes(name) ? placeholder : String(ids[name])));
    const call = { operation, method, path };
    if (invalid.length > 0) {
      throw new MarketRequestInvalidError({ call, issues: invalid.map((name) => `${name}: expected a positive integer, got ${describeId(ids[name])}`) });
    }
    return call;
  }

  #validate<Schema extends z.ZodType>(call: MarketCall, schema: Schema, value: unknown): z.output<Schema> {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new MarketRequestInvalidError({ call, issues: redactSecret(summariseIssues(parsed.error), this.#apiKey) });
    return parsed.data;
  }

  #rejectForeign(call: MarketCall, response: MarketResponse<unknown>, unexpectedIds: (number | string)[]): void {
    if (unexpectedIds.length > 0) {
      throw new MarketResponseMismatchError({ call, httpStatus: response.httpStatus, rateLimit: response.rateLimit, unexpectedIds });
    }
  }

  async #send<Schema extends z.ZodType>({ call, body, query, responseSchema, signal }: SendArgs<Schema>): Promise<MarketResponse<z.output<Schema>>> {
    const path = `${this.#pathPrefix}${call.path}`;
    const search = query !== undefined && Object.keys(query).length > 0 ? `?${new URLSearchParams(query).toString()}` : '';

    // headersTimeout and bodyTimeout each bound one phase; this deadline bounds the whole call,
    // so a server that sends headers and then trickles the body still fails within timeoutMs.
    const deadline = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.abort();
    }, this.#timeoutMs);

    let httpStatus: number;
    let rateLimit: RateLimitInfo;
    let text: string;
    try {
      const response = await this.#pool.request({
        path: `${path}${search}`,
        method: call.method,
        headers: { 'content-type': 'application/json', accept: 'application/json', ...this.#authHeader },
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([deadline.signal, signal]) : deadline.signal,
      });
      httpStatus = response.statusCode;
      rateLimit = parseRateLimitHeaders(response.headers);
      text = await response.body.text();
    } catch (error) {
      throw this.#transportError(call, error, timedOut);
    } finally {
      clearTimeout(timer);
    }

    if (httpStatus >= 200 && httpStatus < 300) return this.#parseSuccess(call, httpStatus, rateLimit, text, responseSchema);
    throw this.#httpError(call, httpStatus, rateLimit, text);
  }

  #transportError(call: MarketCall, error: unknown, timedOut: boolean): MarketTimeoutError | MarketNetworkError {
    const code = transportCode(error);
    // The raw error is replaced by a redacted summary: transport errors may carry request data.
    const cause = {
      name: error instanceof Error ? error.name : typeof error,
      code,
      message: redactSecret(error instanceof Error ? error.message : String(error), this.#apiKey),
    };
    if (timedOut || (code !== undefined && TIMEOUT_CODES.has(code))) {
      return new MarketTimeoutError({ call, timeoutMs: this.#timeoutMs, cause });
    }
    const sent = code === undefined || !NOT_CONNECTED_CODES.has(code);
    return new MarketNetworkError({ call, sent, transportCode: code, cause });
  }

  #parseSuccess<Schema extends z.ZodType>(
    call: MarketCall, httpStatus: number, rateLimit: RateLimitInfo, text: string, schema: Schema,
  ): MarketResponse<z.output<Schema>> {
    const invalid = (issues: string[]): MarketResponseInvalidError => new MarketResponseInvalidError({
      call, httpStatus, rateLimit, issues: redactSecret(issues, this.#apiKey), bodySnippet: this.#snippet(text),
    });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw invalid(['body is not JSON']);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw invalid(summariseIssues(parsed.error));
    return { body: parsed.data, rateLimit, httpStatus };
  }

  #httpError(call: MarketCall, httpStatus: number, rateLimit: RateLimitInfo, text: string) {
    const marketErrors = this.#marketErrors(text);
    if (httpStatus === 401 || httpStatus === 403) return new MarketAuthError({ call, httpStatus, rateLimit, marketErrors });
    if (httpStatus === 420) return new MarketRateLimitedError({ call, rateLimit, marketErrors });
    if (httpStatus >= 400 && httpStatus < 500) return new MarketClientError({ call, httpStatus, rateLimit, marketErrors });
    if (httpStatus >= 500) return new MarketServerError({ call, httpStatus, rateLimit, marketErrors });
    // 1xx and 3xx: undici does not follow redirects, and the API never sends them.
    return new MarketResponseInvalidError({
      call, httpStatus, rateLimit, issues: [`unexpected HTTP status ${httpStatus}`], bodySnippet: this.#snippet(text),
    });
  }

  /** The `errors` of an error body; an unreadable body (an HTML 502 page, say) gives none. */
  #marketErrors(text: string): ApiError[] {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return [];
    }
    const parsed = ApiErrorResponseSchema.safeParse(json);
    return parsed.success ? redactSecret(parsed.data.errors ?? [], this.#apiKey) : [];
  }

  #snippet(text: string): string {
    // Redact before cutting, so a key split by the cut cannot survive as a fragment.
    return redactSecret(text, this.#apiKey).slice(0, BODY_SNIPPET_CHARS);
  }
}
