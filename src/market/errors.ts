// The client's failures, one class per stable code. The dispatcher decides what to do from
// `code` (and `rateLimit`, `sent`); the client itself never retries or waits.
// Messages and fields are built only from redacted text (see redact.ts).

import { YmOrdersError } from '../errors.js';
import type { RateLimitInfo } from './rate-limit.js';
import type { ApiError } from './schemas.js';

export const MARKET_ERROR_CODES = {
  auth: 'MARKET_AUTH',
  rateLimited: 'MARKET_RATE_LIMITED',
  clientError: 'MARKET_CLIENT_ERROR',
  serverError: 'MARKET_SERVER_ERROR',
  timeout: 'MARKET_TIMEOUT',
  network: 'MARKET_NETWORK',
  responseInvalid: 'MARKET_RESPONSE_INVALID',
  responseMismatch: 'MARKET_RESPONSE_MISMATCH',
  requestInvalid: 'MARKET_REQUEST_INVALID',
} as const;
export type MarketErrorCode = (typeof MARKET_ERROR_CODES)[keyof typeof MARKET_ERROR_CODES];

export const MARKET_OPERATIONS = [
  'updateOrderStatuses', 'updateOrderStatus', 'getOperations', 'getBusinessOrders', 'acceptOrderCancellation',
] as const;
export type MarketOperation = (typeof MARKET_OPERATIONS)[number];

/** Which call failed: the operation, and the HTTP method and path (ids only; an invalid id stays a `{name}` placeholder). */
export interface MarketCall {
  readonly operation: MarketOperation;
  readonly method: 'POST' | 'PUT';
  readonly path: string;
}

/** Fields of an error that came with an HTTP response. */
export interface ResponseFields {
  call: MarketCall;
  httpStatus: number;
  rateLimit: RateLimitInfo;
}

export interface MarketErrorsFields extends ResponseFields {
  marketErrors: readonly ApiError[];
}

/** Base of every client error: which call, and the rate-limit headers when a response came. */
export abstract class MarketError extends YmOrdersError {
  declare readonly code: MarketErrorCode;
  readonly call: MarketCall;
  /** The X-RateLimit-Resource-* headers of the response; undefined when no response came. */
  readonly rateLimit: RateLimitInfo | undefined;

  protected constructor(
    code: MarketErrorCode,
    message: string,
    call: MarketCall,
    rateLimit: RateLimitInfo | undefined,
    details: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(code, `${call.operation} (${call.method} ${call.path}): ${message}`, { call, rateLimit, ...details }, options);
    this.call = call;
    this.rateLimit = rateLimit;
  }
}

function describeMarketErrors(errors: readonly ApiError[]): string {
  return errors.length === 0 ? 'no error details' : errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
}

/** An answer with an error status and the Market's `errors[]`: the fields 401/403, 4xx and 5xx share. */
export abstract class MarketStatusError extends MarketError {
  readonly httpStatus: number;
  readonly marketErrors: readonly ApiError[];

  protected constructor(code: MarketErrorCode, summary: string, { call, httpStatus, rateLimit, marketErrors }: MarketErrorsFields) {
    super(code, `HTTP ${httpStatus}${summary}: ${describeMarketErrors(marketErrors)}`, call, rateLimit, { httpStatus, marketErrors });
    this.httpStatus = httpStatus;
    this.marketErrors = marketErrors;
  }
}

/** 401 (missing or bad key) or 403 (revoked token, wrong scope, no access to the campaign). */
export class MarketAuthError extends MarketStatusError {
  declare readonly code: typeof MARKET_ERROR_CODES.auth;

  constructor(fields: MarketErrorsFields) {
    super(MARKET_ERROR_CODES.auth, ', not authorised', fields);
  }
}

/** 420: a resource quota or the parallel-request limit was hit. Wait until `untilMs` if known. */
export class MarketRateLimitedError extends MarketError {
  declare readonly code: typeof MARKET_ERROR_CODES.rateLimited;
  readonly httpStatus = 420;
  readonly untilMs: number | undefined;
  /**
   * True when the Market said too many requests were in flight ("Hit rate limit of 4 parallel
   * requests ..."), not that a quota ran out: slow down rather than wait for `untilMs`.
   */
  readonly parallel: boolean;
  readonly marketErrors: readonly ApiError[];

  constructor({ call, rateLimit, marketErrors }: Omit<MarketErrorsFields, 'httpStatus'>) {
    const until = rateLimit.untilMs === undefined ? 'unknown' : new Date(rateLimit.untilMs).toISOString();
    // The 420 body has no field for the kind of limit; only the documented message tells.
    const parallel = marketErrors.some((e) => /\bparallel requests\b/i.test(e.message ?? ''));
    super(MARKET_ERROR_CODES.rateLimited, `HTTP 420, rate limited until ${until}: ${describeMarketErrors(marketErrors)}`, call, rateLimit, { httpStatus: 420, untilMs: rateLimit.untilMs, parallel, marketErrors });
    this.untilMs = rateLimit.untilMs;
    this.parallel = parallel;
    this.marketErrors = marketErrors;
  }
}

/** Any other 4xx: the Market refused the request as it is; sending it again will not help. */
export class MarketClientError extends MarketStatusError {
  declare readonly code: typeof MARKET_ERROR_CODES.clientError;

  constructor(fields: MarketErrorsFields) {
    super(MARKET_ERROR_CODES.clientError, '', fields);
  }
}

/** 5xx: the Market failed. Whether it acted on the request first is unknown. */
export class MarketServerError extends MarketStatusError {
  declare readonly code: typeof MARKET_ERROR_CODES.serverError;

  constructor(fields: MarketErrorsFields) {
    super(MARKET_ERROR_CODES.serverError, '', fields);
  }
}

/** No complete answer within `timeoutMs`. The request was sent, so the outcome is unknown. */
export class MarketTimeoutError extends MarketError {
  declare readonly code: typeof MARKET_ERROR_CODES.timeout;
  readonly timeoutMs: number;
  /** A timeout always happens after the request was written: the Market may have applied it. */
  readonly sent = true;

  constructor({ call, timeoutMs, cause }: { call: MarketCall; timeoutMs: number; cause: unknown }) {
    super(MARKET_ERROR_CODES.timeout, `no complete answer within ${timeoutMs} ms; outcome unknown`, call, undefined, { timeoutMs, sent: true }, { cause });
    this.timeoutMs = timeoutMs;
  }
}

/** The connection failed (refused, reset, dropped). */
export class MarketNetworkError extends MarketError {
  declare readonly code: typeof MARKET_ERROR_CODES.network;
  /**
   * False only when the connection was never established, so the Market cannot have seen the
   * request. True otherwise, including when we cannot tell: the outcome is then unknown.
   */
  readonly sent: boolean;
  /** The transport's error code, e.g. ECONNREFUSED or UND_ERR_SOCKET. */
  readonly transportCode: string | undefined;

  constructor({ call, sent, transportCode, cause }: { call: MarketCall; sent: boolean; transportCode: string | undefined; cause: unknown }) {
    const what = sent ? 'connection failed after the request may have been sent; outcome unknown' : 'could not connect; the request was not sent';
    super(MARKET_ERROR_CODES.network, `${what} (${transportCode ?? 'unknown transport error'})`, call, undefined, { sent, transportCode }, { cause });
    this.sent = sent;
    this.transportCode = transportCode;
  }
}

/** The answer was not JSON, did not match the schema, or had an unexpected HTTP status. */
export class MarketResponseInvalidError extends MarketError {
  declare readonly code: typeof MARKET_ERROR_CODES.responseInvalid;
  readonly httpStatus: number;
  /** Short, redacted descriptions of what was wrong (zod issues as `path: message`). */
  readonly issues: readonly string[];
  /** The start of the body as received, redacted, for diagnosis. */
  readonly bodySnippet: string;

  constructor({ call, httpStatus, rateLimit, issues, bodySnippet }: ResponseFields & { issues: readonly string[]; bodySnippet: string }) {
    super(MARKET_ERROR_CODES.responseInvalid, `HTTP ${httpStatus}, unreadable answer: ${issues.join('; ')}`, call, rateLimit, { httpStatus, issues, bodySnippet });
    this.httpStatus = httpStatus;
    this.issues = issues;
    this.bodySnippet = bodySnippet;
  }
}

/** The answer is about orders or operations that were not asked about, so none of it is trusted. */
export class MarketResponseMismatchError extends MarketError {
  declare readonly code: typeof MARKET_ERROR_CODES.responseMismatch;
  readonly httpStatus: number;
  /** Order ids (numbers) or operation ids (strings) in the answer that the request did not name. */
  readonly unexpectedIds: readonly (number | string)[];

  constructor({ call, httpStatus, rateLimit, unexpectedIds }: ResponseFields & { unexpectedIds: readonly (number | string)[] }) {
    super(MARKET_ERROR_CODES.responseMismatch, `HTTP ${httpStatus}, the answer names ids that were not asked about: ${unexpectedIds.join(', ')}`, call, rateLimit, { httpStatus, unexpectedIds });
    this.httpStatus = httpStatus;
    this.unexpectedIds = unexpectedIds;
  }
}

/** Our own request broke its schema (e.g. 31 orders); nothing was sent. */
export class MarketRequestInvalidError extends MarketError {
  declare readonly code: typeof MARKET_ERROR_CODES.requestInvalid;
  readonly issues: readonly string[];

  constructor({ call, issues }: { call: MarketCall; issues: readonly string[] }) {
    super(MARKET_ERROR_CODES.requestInvalid, `request not sent, it is invalid: ${issues.join('; ')}`, call, undefined, { issues });
    this.issues = issues;
  }
}

export type AnyMarketError =
  | MarketAuthError | MarketRateLimitedError | MarketClientError | MarketServerError | MarketTimeoutError
  | MarketNetworkError | MarketResponseInvalidError | MarketResponseMismatchError | MarketRequestInvalidError;

export function isMarketError(value: unknown): value is AnyMarketError {
  return value instanceof MarketError;
}

/**
 * Whether the Market may have acted on the request despite the error. When true, the outcome
 * is unknown and the caller must read the order back before sending the change again
 * (DESIGN.md principle 4). 4xx answers, 420 included, mean the request was not applied.
 */
export function mayHaveBeenApplied(error: AnyMarketError): boolean {
  switch (error.code) {
    case MARKET_ERROR_CODES.timeout:
    case MARKET_ERROR_CODES.serverError:
    case MARKET_ERROR_CODES.responseInvalid:
    case MARKET_ERROR_CODES.responseMismatch:
      return true;
    case MARKET_ERROR_CODES.network:
      return error.sent;
    case MARKET_ERROR_CODES.auth:
    case MARKET_ERROR_CODES.rateLimited:
    case MARKET_ERROR_CODES.clientError:
    case MARKET_ERROR_CODES.requestInvalid:
      return false;
  }
}
