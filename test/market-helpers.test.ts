// The small pure pieces of src/market: rate-limit headers, Market dates, redaction.

import { describe, expect, it } from 'vitest';
import {
  formatIsoMoscow, formatMarketDateTime, parseMarketDateTime, parseRateLimitHeaders, redactSecret,
} from '../src/market/index.js';

describe('parseRateLimitHeaders', () => {
  it('reads the three headers, the date in RFC 822', () => {
    expect(parseRateLimitHeaders({
      'x-ratelimit-resource-limit': '1000',
      'x-ratelimit-resource-remaining': '998',
      'x-ratelimit-resource-until': 'Thu, 10 Jul 2018 00:42:42 GMT',
    })).toEqual({ limit: 1000, remaining: 998, untilMs: Date.UTC(2018, 6, 10, 0, 42, 42) });
  });

  it('leaves out missing and garbled values', () => {
    expect(parseRateLimitHeaders({})).toEqual({});
    expect(parseRateLimitHeaders({
      'x-ratelimit-resource-limit': '-5',
      'x-ratelimit-resource-remaining': '12abc',
      'x-ratelimit-resource-until': '1',
    })).toEqual({});
    expect(parseRateLimitHeaders({ 'x-ratelimit-resource-until': 'Thu, 99 Jul 2018 00:42:42 GMT' })).toEqual({});
    expect(parseRateLimitHeaders({ 'x-ratelimit-resource-limit': ['7', '8'] })).toEqual({ limit: 7 });
  });
});

describe('Market dates', () => {
  it('parses OrderDTO dates as Moscow time and refuses impossible ones', () => {
    expect(parseMarketDateTime('23-09-2022 09:12:41')).toBe(Date.UTC(2022, 8, 23, 6, 12, 41));
    for (const bad of ['31-02-2024 10:00:00', '2022-09-23 09:12:41', '23-09-2022 24:00:00', '23-09-2022 9:12:41']) {
      expect(parseMarketDateTime(bad)).toBeUndefined();
    }
  });

  it('formats round-trip', () => {
    const at = Date.UTC(2025, 11, 31, 22, 30, 5);
    expect(formatMarketDateTime(at)).toBe('01-01-2026 01:30:05');
    expect(parseMarketDateTime(formatMarketDateTime(at))).toBe(at);
    expect(formatIsoMoscow(at)).toBe('2026-01-01T01:30:05.000+03:00');
    expect(Date.parse(formatIsoMoscow(at))).toBe(at);
  });
});

describe('redactSecret', () => {
  it('scrubs strings, arrays and plain objects deeply, keys included', () => {
    expect(redactSecret({ a: ['x SECRET y', { SECRET: 1 }], n: 5 }, 'SECRET'))
      .toEqual({ a: ['x [REDACTED] y', { '[REDACTED]': 1 }], n: 5 });
    expect(redactSecret('nothing to hide', '')).toBe('nothing to hide');
  });
});
