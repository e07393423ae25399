// The Market reports each resource's budget in three headers on every response. They are
// advice, not a contract: a missing or garbled header yields an undefined field, never an error.

/** What the X-RateLimit-Resource-* headers of one response said. */
export interface RateLimitInfo {
  /** X-RateLimit-Resource-Limit: the budget of this resource per window. */
  limit?: number;
  /** X-RateLimit-Resource-Remaining: what is left of it. */
  remaining?: number;
  /** X-RateLimit-Resource-Until: when the window ends (epoch ms). */
  untilMs?: number;
}

export const RATE_LIMIT_HEADERS = {
  limit: 'x-ratelimit-resource-limit',
  remaining: 'x-ratelimit-resource-remaining',
  until: 'x-ratelimit-resource-until',
} as const;

/** Header values as Node and undici deliver them: lower-case names, repeated headers as arrays. */
export type HeaderValues = Readonly<Record<string, string | readonly string[] | undefined>>;

// RFC 822/1123 (`Thu, 10 Jul 2018 00:42:42 GMT`) as documented, and ISO 8601 with an offset in
// case the format drifts. Date.parse alone would also accept strings like "1" or "Jul".
const RFC_822 = /^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{2}:\d{2}(?::\d{2})?\s+(?:GMT|UTC|UT|Z|[+-]\d{4})$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

function single(value: string | readonly string[] | undefined): string | undefined {
  const text = typeof value === 'string' ? value : value?.[0];
  return text?.trim();
}

function parseCount(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

function parseUntil(value: string | undefined): number | undefined {
  if (value === undefined || !(RFC_822.test(value) || ISO_8601.test(value))) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Reads the rate-limit headers; only the fields that parsed are present. */
export function parseRateLimitHeaders(headers: HeaderValues): RateLimitInfo {
  const info: RateLimitInfo = {};
  const limit = parseCount(single(headers[RATE_LIMIT_HEADERS.limit]));
  const remaining = parseCount(single(headers[RATE_LIMIT_HEADERS.remaining]));
  const untilMs = parseUntil(single(headers[RATE_LIMIT_HEADERS.until]));
  if (limit !== undefined) info.limit = limit;
  if (remaining !== undefined) info.remaining = remaining;
  if (untilMs !== undefined) info.untilMs = untilMs;
  return info;
}
