// Issue #14, goal 4: the end of a quota window, to the millisecond. X-RateLimit-Resource-Until
// names a whole second and the Market's window ends somewhere inside it; read alone, as the end
// of that second, it loses up to a second per window (a third of a 2 s window). Every answer
// bounds the end too: the window had begun when the Market counted the request, so it ends at
// the latest windowMs after the answer. These tests pin that bound and where it must not be
// used: a window the engine opened itself (pitfall a), an answer about the window before the
// roll (b), a configured window that is not the Market's (c), 420s (d), and budgets shared by
// two processes through one database (e).
//
// The Market's side is src/testing/quota.ts, the fake Market's own quota book, on a clock the
// test sets: a window opens at the first request after the last one ended, to the millisecond,
// and the headers say what the fake would, a whole-second -Until parsed as the client parses it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { resolveLimits } from '../src/engine/policies.js';
import { answeredWindowEnd, RateLimiter, windowEnd, type Permit } from '../src/engine/rate-limiter.js';
import { parseRateLimitHeaders, RATE_LIMIT_HEADERS, type RateLimitInfo } from '../src/market/rate-limit.js';
import { PostgresStore, SqliteStore, type Store } from '../src/store/index.js';
import { DEFAULT_QUOTAS, QuotaBook } from '../src/testing/quota.js';
import { dropSchemas, freshSchemaPrefix, POSTGRES_TEST_URL } from './helpers/postgres.js';

const OP = 'updateOrderStatuses';
const SCOPE = { kind: 'campaign', id: 501 } as const;
const KEY = `${OP}@campaign:${SCOPE.id}`;
/** On a whole second, so offsets below say where in a second each moment falls. */
const T = Date.UTC(2025, 5, 2, 10, 0, 0);
const SECOND = 1_000;
const W = 2_000;

/** The Market's quota for one resource and owner, on a clock each call sets. */
function marketQuota(limit: number, windowMs: number) {
  let now = 0;
  const book = new QuotaBook({ ...DEFAULT_QUOTAS, [OP]: { limit, windowMs } }, () => now);
  const owner = `campaign ${SCOPE.id}`;
  return {
    /** A request of `units` reaches the Market at `at`: counted if the window has room; the headers of its answer. */
    request(at: number, units: number): { counted: boolean; headers: RateLimitInfo } {
      now = at;
      const counted = book.state(OP, owner).remaining >= units;
      if (counted) book.consume(OP, owner, units);
      const state = book.state(OP, owner);
      const headers = parseRateLimitHeaders({
        [RATE_LIMIT_HEADERS.limit]: String(state.limit),
        [RATE_LIMIT_HEADERS.remaining]: String(state.remaining),
        [RATE_LIMIT_HEADERS.until]: new Date(state.untilMs).toUTCString(),
      });
      return { counted, headers };
    },
    /** When the window open at `at` really ends (opening one if none is). */
    endAt(at: number): number {
      now = at;
      return book.state(OP, owner).untilMs;
    },
  };
}

const dirs: string[] = [];
const stores: Store[] = [];
const PREFIX = freshSchemaPrefix();
let schemas = 0;

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});
afterAll(async () => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  if (inject('postgres')) await dropSchemas(PREFIX, POSTGRES_TEST_URL);
});

/** Two stores on one database, as two processes open it: a SQLite file, or a PostgreSQL schema through two pools. */
const ADAPTERS = [
  {
    name: 'SQLite file',
    skip: false,
    async pair(): Promise<[Store, Store]> {
      const dir = mkdtempSync(join(tmpdir(), 'ym-window-'));
      dirs.push(dir);
      const a = SqliteStore.open(join(dir, 'orders.db'));
      const b = SqliteStore.open(join(dir, 'orders.db'));
      stores.push(a, b);
      return [a, b];
    },
  },
  {
    name: 'PostgreSQL',
    skip: !inject('postgres'),
    async pair(): Promise<[Store, Store]> {
      const schema = `${PREFIX}_${++schemas}`;
      const a = await PostgresStore.connect(POSTGRES_TEST_URL, { schema, now: T });
      const b = await PostgresStore.connect(POSTGRES_TEST_URL, { schema, now: T });
      stores.push(a, b);
      return [a, b];
    },
  },
];

function limiterOn(store: Store, limit: number, windowMs: number, parallelPerScope = 4): RateLimiter {
  return new RateLimiter(store, resolveLimits({ parallelPerScope, resources: { [OP]: { limit, windowMs } } }), { leaseMs: 60_000 });
}

async function take(limiter: RateLimiter, at: number, weight = 30): Promise<Permit> {
  const got = await limiter.tryAcquire(OP, SCOPE, weight, () => at);
  if (!got.ok) throw new Error(`no permit at T+${at - T}: ${got.reason}`);
  return got.permit;
}

/** Releases a permit with the Market's answer, read at `at`. */
function answer(limiter: RateLimiter, permit: Permit, headers: RateLimitInfo, at: number, kind: 'answered' | 'rateLimited' = 'answered'): Promise<void> {
  const end = kind === 'answered' ? { kind, rateLimit: headers } : { kind, rateLimit: headers, parallel: false };
  return limiter.release(permit, end, () => at);
}

function budget(store: Store) {
  return store.read(async (tx) => (await tx.limiter.get(KEY))!);
}

describe('answeredWindowEnd: the end an answer bounds, inside the second the header names', () => {
  it('never before the Market’s end, and later by no more than the answer took (the header alone: up to 999 ms)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.integer({ min: 0, max: 900 }),
        fc.constantFrom(SECOND, 1_500, W, 60_000, 3_600_000),
        (offset, tookMs, windowMs) => {
          const market = marketQuota(100, windowMs);
          const arrival = T + offset;
          const { headers } = market.request(arrival, 1);
          const trueEnd = market.endAt(arrival);
          const end = answeredWindowEnd(headers.untilMs!, arrival + tookMs, windowMs);
          expect(end).toBeGreaterThanOrEqual(trueEnd);
          expect(end - trueEnd).toBeLessThanOrEqual(tookMs);
        },
      ),
    );
    // What the header alone says, for the same answer: up to a second more.
    expect(windowEnd(T + W) - (T + 10 + W)).toBe(989);
    expect(answeredWindowEnd(T + W, T + 15, W)).toBe(T + 15 + W);
  });

  it('a configured window that is not the Market’s: the header’s reading, never a bound that lies outside its second', () => {
    // The default hour against a 2 s window: the bound is an hour out, the header stands.
    expect(answeredWindowEnd(T + W, T + 15, 3_600_000)).toBe(T + W + 999);
    // A 1 s window against the Market's 3 s: the bound falls before the named second (the Market's
    // end is T+10+3000), and the header's reading, the safe one, stands.
    const market = marketQuota(100, 3_000);
    const { headers } = market.request(T + 10, 1);
    const end = answeredWindowEnd(headers.untilMs!, T + 15, SECOND);
    expect(end).toBe(T + 3_999);
    expect(end).toBeGreaterThanOrEqual(market.endAt(T + 10));
    // Under a second, two windows may name one second: no bound is kept.
    expect(answeredWindowEnd(T + SECOND, T + 505, 500)).toBe(T + SECOND + 999);
    // An -Until with milliseconds (ISO 8601) is exact already.
    expect(answeredWindowEnd(T + 2_250, T + 100, W)).toBe(T + 2_250);
  });
});

describe.each(ADAPTERS)('the limiter keeps each window’s precise end, on a $name', ({ skip, pair }) => {
  it.skipIf(skip)('the first answer’s bound is the window’s end: refused a millisecond before it, granted at it, and the Market agrees', async () => {
    const [store] = await pair();
    const limiter = limiterOn(store, 60, W);
    const market = marketQuota(60, W);
    const a = await take(limiter, T + 100);
    const b = await take(limiter, T + 100);
    await answer(limiter, a, market.request(T + 130, 30).headers, T + 135);
    await answer(limiter, b, market.request(T + 140, 30).headers, T + 145);
    const end = (await budget(store)).window_ends_at;
    // The first answer's bound; the header alone would say T+2999, the header taken as exact T+2000.
    expect(end).toBe(T + 135 + W);
    expect(end).toBeGreaterThanOrEqual(market.endAt(T + 140));
    expect(await limiter.tryAcquire(OP, SCOPE, 30, () => end - 1)).toMatchObject({ ok: false, reason: 'budget', retryAt: end });
    await take(limiter, end);
    expect(market.request(end, 30).counted).toBe(true);
  });

  it.skipIf(skip)('(a) a window the engine opened itself ends when its first answer says, not windowMs after the roll', async () => {
    const [store] = await pair();
    const limiter = limiterOn(store, 30, W);
    const market = marketQuota(30, W);
    const first = await take(limiter, T + 5);
    await answer(limiter, first, market.request(T + 10, 30).headers, T + 12);
    // The window rolls at its end; the request taken then reaches the Market 300 ms later (a slow
    // send), so the Market's window ends at roll + 300 + windowMs, in the same second as roll + windowMs.
    const roll = T + 12 + W;
    const late = await take(limiter, roll);
    await answer(limiter, late, market.request(roll + 300, 30).headers, roll + 305);
    const marketEnd = market.endAt(roll + 300);
    expect(marketEnd).toBe(roll + 300 + W);
    expect((await budget(store)).window_ends_at).toBe(roll + 305 + W);
    // Between the roll's own guess and the Market's end the Market would refuse; so does the limiter.
    expect(market.request(roll + W + 100, 30).counted).toBe(false);
    expect(await limiter.tryAcquire(OP, SCOPE, 30, () => roll + W + 100)).toMatchObject({ ok: false, reason: 'budget' });
  });

  it.skipIf(skip)('(b) an answer about the window before the roll neither drags the end back nor spends the new budget', async () => {
    for (const order of ['old answer first', 'new answer first'] as const) {
      const [store] = await pair();
      const limiter = limiterOn(store, 90, W);
      const market = marketQuota(90, W);
      const [a, b, stalled] = [await take(limiter, T + 100), await take(limiter, T + 100), await take(limiter, T + 100)];
      await answer(limiter, a, market.request(T + 110, 30).headers, T + 115);
      await answer(limiter, b, market.request(T + 120, 30).headers, T + 125);
      // The third reaches the Market in the old window (which it fills), but its answer is read late.
      const stalledHeaders = market.request(T + 150, 30).headers;
      expect(stalledHeaders).toMatchObject({ remaining: 0, untilMs: T + W });
      const oldEnd = (await budget(store)).window_ends_at;
      expect(oldEnd).toBe(T + 115 + W);
      // At the old window's end a new request is taken, counted against a new window with the stalled one.
      const next = await take(limiter, oldEnd);
      const nextHeaders = market.request(oldEnd + 5, 30).headers;
      const newEnd = market.endAt(oldEnd + 5);
      if (order === 'new answer first') await answer(limiter, next, nextHeaders, oldEnd + 8);
      await answer(limiter, stalled, stalledHeaders, oldEnd + 10);
      if (order === 'old answer first') await answer(limiter, next, nextHeaders, oldEnd + 12);
      const row = await budget(store);
      // Still the new window's end (the old header's second ends at T+2999, long before).
      expect(row.window_ends_at, order).toBeGreaterThanOrEqual(newEnd);
      expect(row.window_ends_at, order).toBeLessThan(newEnd + SECOND);
      // The new window has 60 left at the Market; the budget was not zeroed by the old "0 left".
      expect(row.remaining, order).toBe(60);
      await take(limiter, oldEnd + 20);
      expect(market.request(oldEnd + 25, 30).counted).toBe(true);
    }
  });

  it.skipIf(skip)('(c) configured windows that are not the Market’s keep the header’s reading, as before', async () => {
    for (const configured of [3_600_000, SECOND]) {
      const [store] = await pair();
      const limiter = limiterOn(store, 100, configured);
      const market = marketQuota(100, 3_000);
      const permit = await take(limiter, T + 100);
      const { headers } = market.request(T + 120, 30);
      await answer(limiter, permit, headers, T + 125);
      const row = await budget(store);
      expect(row.window_ends_at, `configured ${configured} ms`).toBe(windowEnd(headers.untilMs!));
      expect(row.window_ends_at).toBeGreaterThanOrEqual(market.endAt(T + 120));
      expect(row).toMatchObject({ capacity: 100, remaining: 70 });
    }
  });

  it.skipIf(skip)('(d) a quota 420 blocks until the window’s precise end; a parallel one spends nothing; one about the old window holds nothing back', async () => {
    const [store] = await pair();
    const limiter = limiterOn(store, 30, W);
    const market = marketQuota(30, W);
    // Another client spent the Market's window: our request is refused.
    market.request(T + 50, 30);
    const refused = await take(limiter, T + 100);
    const refusal = market.request(T + 110, 30);
    expect(refusal.counted).toBe(false);
    await answer(limiter, refused, refusal.headers, T + 115, 'rateLimited');
    const row = await budget(store);
    // The window began before the refusal, so it ends by T+115+W, inside the named second (the header alone: T+2999).
    expect(row).toMatchObject({ blocked_until: T + 115 + W, window_ends_at: T + 115 + W, remaining: 0, last_rate_limited_at: T + 115 });
    expect(row.blocked_until).toBeGreaterThanOrEqual(market.endAt(T + 110));
    expect(await limiter.tryAcquire(OP, SCOPE, 10, () => T + 114 + W)).toMatchObject({ ok: false, reason: 'blocked', retryAt: T + 115 + W });

    // At its end a fresh window; a parallel-limit 420 pauses the scope, and its request (not counted) spends nothing.
    const unlucky = await take(limiter, T + 115 + W, 10);
    await limiter.release(unlucky, { kind: 'rateLimited', rateLimit: market.request(T + 120 + W, 0).headers, parallel: true }, () => T + 125 + W);
    expect(await budget(store)).toMatchObject({ remaining: 30, blocked_until: T + 125 + W + SECOND, last_rate_limited_at: T + 125 + W });

    // A request taken in that window is refused there (another client filled it), and its 420 is read
    // only after the window rolled over: it neither blocks nor spends the new window.
    const slow = await take(limiter, T + 130 + W + SECOND, 10);
    market.request(T + 135 + W + SECOND, 30);
    const slowRefusal = market.request(T + 140 + W + SECOND, 10);
    expect(slowRefusal.counted).toBe(false);
    const rollAt = (await budget(store)).window_ends_at;
    const next = await take(limiter, rollAt, 10); // counted with the slow one still in flight: 30 - 10 - 10
    const rolled = await budget(store);
    expect(rolled.remaining).toBe(10);
    await answer(limiter, slow, slowRefusal.headers, rollAt + 10, 'rateLimited');
    expect(await budget(store)).toMatchObject({ window_ends_at: rolled.window_ends_at, remaining: 20, blocked_until: rolled.blocked_until, last_rate_limited_at: rollAt + 10 });
    expect(rolled.blocked_until).toBeLessThanOrEqual(rollAt);
    await limiter.release(next, { kind: 'notCounted' }, () => rollAt + 20);
  });

  it.skipIf(skip)('(e) two processes share the end through the budget row alone: one’s answer sets it, the other rolls at it, a late answer about the old window moves neither end nor count back', async () => {
    const [storeA, storeB] = await pair();
    const [a, b] = [limiterOn(storeA, 60, W), limiterOn(storeB, 60, W)];
    const market = marketQuota(60, W);
    const fromA = await take(a, T + 100);
    const fromB = await take(b, T + 101);
    await answer(a, fromA, market.request(T + 110, 30).headers, T + 115);
    const fromBHeaders = market.request(T + 120, 30).headers; // B's answer is read late
    const end = (await budget(storeB)).window_ends_at;
    expect(end).toBe(T + 115 + W);
    expect(await b.tryAcquire(OP, SCOPE, 30, () => end - 1)).toMatchObject({ ok: false, reason: 'budget', retryAt: end });
    const rolled = await take(b, end); // B rolls the shared window at A's end: 60 - 30 (its own, still in flight) - 30
    expect((await budget(storeA)).remaining).toBe(0);
    const rolledAnswer = market.request(end + 5, 30);
    expect(rolledAnswer.counted).toBe(true);
    // B's late answer names the old window: counted there, so the new one gets its 30 back.
    await answer(b, fromB, fromBHeaders, end + 10);
    expect((await budget(storeA)).remaining).toBe(30);
    await answer(b, rolled, rolledAnswer.headers, end + 12);
    const row = await budget(storeA);
    expect(row.window_ends_at).toBe(end + 12 + W);
    expect(row.window_ends_at).toBeGreaterThanOrEqual(market.endAt(end + 5));
    expect(row.remaining).toBe(30);
    expect(market.request(end + 20, 30).counted).toBe(true);
  });
});

describe('the count within a window, answers in any order', () => {
  it('never lets the Market’s window overflow, and once every answer is in, is exactly what the Market has left', async () => {
    const [store] = await ADAPTERS[0]!.pair();
    let scopeId = 10_000;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 2, maxLength: 8 }),
        fc.integer({ min: 0, max: 30 }),
        fc.array(fc.nat(), { minLength: 16, maxLength: 16 }),
        async (weights, spare, choices) => {
          const scope = { kind: 'campaign', id: ++scopeId } as const;
          const limit = weights.reduce((a, b) => a + b, 0) + spare;
          const limiter = limiterOn(store, limit, W, weights.length);
          const market = marketQuota(limit, W);
          const permits: Permit[] = [];
          for (const weight of weights) {
            const got = await limiter.tryAcquire(OP, scope, weight, () => T + 100);
            if (!got.ok) throw new Error(got.reason);
            permits.push(got.permit);
          }
          // Each request reaches the Market (counted, its headers written) before its answer is
          // read; in between, in any order, the others arrive and are read.
          const sent = new Set(permits.keys());
          const arrived = new Map<number, RateLimitInfo>();
          let counted = 0;
          for (let step = 0; sent.size + arrived.size > 0; step++) {
            const moves = [...[...sent].map((i) => ({ arrive: i })), ...[...arrived.keys()].map((i) => ({ read: i }))];
            const move = moves[(choices[step] ?? 0) % moves.length]!;
            const at = T + 200 + step;
            if ('arrive' in move) {
              sent.delete(move.arrive);
              const { counted: ok, headers } = market.request(at, weights[move.arrive]!);
              expect(ok).toBe(true);
              counted += weights[move.arrive]!;
              arrived.set(move.arrive, headers);
              continue;
            }
            await limiter.release(permits[move.read]!, { kind: 'answered', rateLimit: arrived.get(move.read)! }, () => at);
            arrived.delete(move.read);
            const { remaining } = (await store.read((tx) => tx.limiter.get(`${OP}@campaign:${scope.id}`)))!;
            const notYetCounted = [...sent].reduce((n, i) => n + weights[i]!, 0);
            expect(counted + notYetCounted + remaining).toBeLessThanOrEqual(limit);
            if (sent.size + arrived.size === 0) expect(remaining).toBe(limit - counted);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
