// Budgets, not errors: before each request the dispatcher takes its weight from the resource's
// budget and a slot of its scope's parallel limit; after it, the response headers correct the
// budget. State lives in the store (one transaction per permit), so every process on one
// database shares it. Callers reach it only through the metered client (metered-market.ts).

import { randomBytes } from 'node:crypto';
import { isMarketError, MARKET_ERROR_CODES, type MarketOperation } from '../market/errors.js';
import type { RateLimitInfo } from '../market/rate-limit.js';
import type { BudgetRow } from '../store/limiter.js';
import type { Store, StoreTx } from '../store/port.js';
import type { LimitsPolicy } from './policies.js';

export interface Scope {
  readonly kind: 'campaign' | 'business';
  readonly id: number;
}

export interface Permit {
  readonly leaseId: string;
  readonly operation: MarketOperation;
  readonly scope: Scope;
  readonly weight: number;
}

export type Acquired =
  | { readonly ok: true; readonly permit: Permit }
  /** Not now: try again at `retryAt`; `available` units could be taken at once (to send a smaller batch). */
  | { readonly ok: false; readonly retryAt: number; readonly available: number; readonly reason: 'budget' | 'blocked' | 'parallel' };

/** How the request ended, for the budget: 5xx and unsent requests are not counted by the Market. */
export type RequestEnd =
  | { readonly kind: 'answered'; readonly rateLimit: RateLimitInfo }
  | { readonly kind: 'notCounted'; readonly rateLimit?: RateLimitInfo | undefined }
  | { readonly kind: 'rateLimited'; readonly rateLimit?: RateLimitInfo | undefined; readonly parallel: boolean }
  /**
   * Abandoned without an answer (a timeout, a connection lost after sending): the Market may have
   * counted it and may still be serving it, so its weight stays spent and its parallel slot stays
   * taken for UNFINISHED_LINGER_MS more.
   */
  | { readonly kind: 'unfinished' };

/**
 * What a failed request means for the budget: a 420 blocks it; no answer (a timeout, a dropped
 * connection after sending) leaves the request counted and its slot busy a little longer; 5xx,
 * a connection never made, or a bug on our side are not counted by the Market.
 */
export function requestEndOf(error: unknown): RequestEnd {
  if (!isMarketError(error)) return { kind: 'notCounted' };
  const rateLimit = error.rateLimit;
  if (error.code === MARKET_ERROR_CODES.rateLimited) return { kind: 'rateLimited', rateLimit, parallel: error.parallel };
  if (error.code === MARKET_ERROR_CODES.timeout || (error.code === MARKET_ERROR_CODES.network && error.sent)) return { kind: 'unfinished' };
  if (error.code === MARKET_ERROR_CODES.serverError || rateLimit === undefined) return { kind: 'notCounted', rateLimit };
  return { kind: 'answered', rateLimit };
}

// A 420 for the parallel limit says nothing about the budget: wait briefly, not until -Until.
const PARALLEL_PAUSE_MS = 1_000;
const RATE_LIMITED_FALLBACK_MS = 60_000;
const PARALLEL_RETRY_MS = 20;
/** How long the slot of a request abandoned without an answer stays taken (the Market may not have noticed yet). */
export const UNFINISHED_LINGER_MS = 1_000;

const SECOND_MS = 1_000;

/**
 * When the window named by X-RateLimit-Resource-Until really ends, from the header alone. The
 * header is an RFC 822 date with whole seconds, so the Market's instant lies somewhere in the
 * second it names: a value on a whole second is read as the end of that second. Taking it as
 * exact sends up to a second early, into the old window, and earns a 420 whose own -Until is
 * then already past.
 */
export function windowEnd(untilMs: number): number {
  return untilMs % SECOND_MS === 0 ? untilMs + SECOND_MS - 1 : untilMs;
}

/**
 * The end of the window an answer's header names, as tight as is safe. The window had begun when
 * the Market counted the request, before it answered, so it ends at the latest `windowMs` after
 * the answer came (engine clock, if windowMs is the Market's): inside the second the header names,
 * that bound is kept, which `windowEnd` alone would round up by nearly a second every window.
 * Outside it the bound and the header disagree (a configured window that is not the Market's,
 * or a late answer), and the header's reading stands. Under a second, two windows may name one
 * second, and the header's second cannot tell which one an answer is about.
 */
export function answeredWindowEnd(untilMs: number, answeredAt: number, windowMs: number): number {
  const latest = windowEnd(untilMs);
  if (latest === untilMs || windowMs < SECOND_MS) return latest;
  const bound = answeredAt + windowMs;
  return bound >= untilMs && bound <= latest ? bound : latest;
}

/**
 * The end of a window the engine opens itself, before any header names it: its first request
 * reaches the Market after now, so the Market's window ends no sooner than `windowMs` from now,
 * and its header will name that second or a later one. It is read as such a header is, to the
 * end of that second; a tighter guess would look like a header's bound and keep the true one out
 * (release keeps the sooner of two ends within one second).
 */
function openedWindowEnd(now: number, windowMs: number): number {
  const end = now + windowMs;
  return windowEnd(end - (end % SECOND_MS));
}

/**
 * Which window a header names, against the stored one. `later`: a second after the stored end's,
 * a window the Market opened after the stored one ended, sooner than the engine knew. `previous`:
 * a second no later than windowMs before the stored end, by when the window before the stored one
 * had ended (the stored one began after it, and lasts windowMs): an answer to a request sent
 * before the window rolled over. `stored`: the stored window itself, or the Market's current one
 * where the stored end was only the engine's guess. Windows of at least a second never name one
 * second; under a second no header is taken for an earlier window's.
 */
function namedWindow(untilMs: number, storedEnd: number, windowMs: number): 'previous' | 'stored' | 'later' {
  const second = untilMs - (untilMs % SECOND_MS);
  if (second > storedEnd - (storedEnd % SECOND_MS)) return 'later';
  return windowMs >= SECOND_MS && second <= storedEnd - windowMs ? 'previous' : 'stored';
}

export function scopeKey(scope: Scope): string {
  return `${scope.kind}:${scope.id}`;
}

/** The key of a budget: one per operation and scope. */
export function resourceKey(operation: MarketOperation, scope: Scope): string {
  return `${operation}@${scopeKey(scope)}`;
}

/** A budget that holds calls back now, on the database every process shares: spent, or blocked by a 420. */
export interface BudgetWait {
  readonly operation: MarketOperation;
  readonly scope: Scope;
  /** `budget`: the window's quota is spent; `blocked`: the Market answered 420 and said until when. */
  readonly reason: 'budget' | 'blocked';
  /** When the window reopens or the block ends (epoch ms, engine clock). */
  readonly until: number;
}

/** `updateOrderStatuses@campaign:21000101` → its operation and scope; undefined for a key of another shape. */
export function parseResourceKey(key: string): { operation: MarketOperation; scope: Scope } | undefined {
  const match = /^([A-Za-z]+)@(campaign|business):(\d+)$/.exec(key);
  if (!match) return undefined;
  const [, operation, kind, id] = match;
  return { operation: operation as MarketOperation, scope: { kind: kind as Scope['kind'], id: Number(id) } };
}

/** The budgets among `rows` that hold calls back at `now`, soonest to end first. */
export function budgetWaits(rows: readonly BudgetRow[], now: number): BudgetWait[] {
  const waits: BudgetWait[] = [];
  for (const row of rows) {
    const key = parseResourceKey(row.resource_key);
    if (!key) continue;
    if (row.blocked_until > now) waits.push({ ...key, reason: 'blocked', until: row.blocked_until });
    else if (row.remaining <= 0 && row.window_ends_at > now) waits.push({ ...key, reason: 'budget', until: row.window_ends_at });
  }
  return waits.sort((a, b) => a.until - b.until);
}

export class RateLimiter {
  readonly #store: Store;
  readonly #limits: LimitsPolicy;
  readonly #leaseMs: number;

  constructor(store: Store, limits: LimitsPolicy, options: { leaseMs: number }) {
    this.#store = store;
    this.#limits = limits;
    this.#leaseMs = options.leaseMs;
  }

  async #budget(tx: StoreTx, operation: MarketOperation, scope: Scope, now: number): Promise<BudgetRow> {
    const key = resourceKey(operation, scope);
    const row = await tx.limiter.get(key);
    const { limit, windowMs } = this.#limits.resources[operation];
    if (!row) {
      return { resource_key: key, capacity: limit, remaining: limit, window_ends_at: openedWindowEnd(now, windowMs), blocked_until: 0, updated_at: now, last_rate_limited_at: null };
    }
    if (now >= row.window_ends_at) {
      // A permit is taken before its request goes out, so a request still in flight may reach the
      // Market in this new window (on a loaded machine, long after): it counts here too until its
      // answer's headers tell. (Below zero when more is in flight than the window holds: see release.)
      const inFlight = await tx.limiter.inFlightWeight(key, '');
      return { ...row, remaining: row.capacity - inFlight, window_ends_at: openedWindowEnd(now, windowMs), updated_at: now };
    }
    return row;
  }

  /**
   * `clock` is read inside the transaction: under load a transaction may wait its turn, and a
   * window opened at a time read before that wait would end early, letting a new window's
   * requests in while the Market still counts the old one.
   */
  tryAcquire(
    operation: MarketOperation,
    scope: Scope,
    weight: number,
    clock: () => number,
    /**
     * Runs in the transaction that grants the permit, only if it is granted: what the request is
     * about is claimed in the same instant as its permit, so the permit's lease and window count
     * from the moment the request goes out, not from before a wait for the store.
     */
    prepare?: (tx: StoreTx, now: number) => Promise<void>,
  ): Promise<Acquired> {
    return this.#store.transaction(async (tx): Promise<Acquired> => {
      const now = clock();
      await tx.limiter.lockScope(scopeKey(scope));
      await tx.limiter.dropExpiredLeases(now);
      const budget = await this.#budget(tx, operation, scope, now);
      if (budget.blocked_until > now) return { ok: false, retryAt: budget.blocked_until, available: 0, reason: 'blocked' };
      if (budget.remaining < weight) {
        return { ok: false, retryAt: budget.window_ends_at, available: Math.max(0, budget.remaining), reason: 'budget' };
      }
      if ((await tx.limiter.inFlight(scopeKey(scope))) >= this.#limits.parallelPerScope) {
        return { ok: false, retryAt: now + PARALLEL_RETRY_MS, available: budget.remaining, reason: 'parallel' };
      }
      const leaseId = randomBytes(8).toString('hex');
      await tx.limiter.put({ ...budget, remaining: budget.remaining - weight, updated_at: now });
      await tx.limiter.addLease(leaseId, scopeKey(scope), resourceKey(operation, scope), weight, now, this.#leaseMs);
      await prepare?.(tx, now);
      return { ok: true, permit: { leaseId, operation, scope, weight } };
    });
  }

  release(permit: Permit, end: RequestEnd, clock: () => number): Promise<void> {
    // Read before the transaction waits its turn: the sooner after the answer, the tighter the
    // end it bounds (answeredWindowEnd).
    const answeredAt = clock();
    return this.#store.transaction(async (tx) => {
      const now = clock();
      await tx.limiter.lockScope(scopeKey(permit.scope));
      const key = resourceKey(permit.operation, permit.scope);
      if (end.kind === 'unfinished') {
        // The weight was taken from the budget at acquire time and stays taken; while the lease
        // lingers, a window that opens counts it too.
        await tx.limiter.lingerLease(permit.leaseId, now, UNFINISHED_LINGER_MS);
        return;
      }
      // Read before the lease goes: a window that opens now has this request's weight in it, which
      // a request the Market did not count (below) gives back.
      let budget = await this.#budget(tx, permit.operation, permit.scope, now);
      const leased = await tx.limiter.removeLease(permit.leaseId);
      const info = end.rateLimit;
      const { windowMs } = this.#limits.resources[permit.operation];
      const named = info?.untilMs === undefined ? undefined : namedWindow(info.untilMs, budget.window_ends_at, windowMs);
      // A request the Market did not count, or counted in a window that ended before this one
      // began (its answer came after the window rolled over, which counted it while its lease was
      // in flight): this window gets its weight back.
      if (end.kind === 'notCounted' || (named === 'previous' && leased)) budget = { ...budget, remaining: Math.min(budget.capacity, budget.remaining + permit.weight) };
      if (info?.limit !== undefined) budget = { ...budget, capacity: info.limit };
      // A header about that earlier window says nothing of this one: not its end, not its count.
      const heard = named === 'previous' ? undefined : info;
      const untilMs = heard?.untilMs === undefined ? undefined : answeredWindowEnd(heard.untilMs, answeredAt, windowMs);
      if (untilMs !== undefined && untilMs > now) {
        // Every answer's end is safe, so within one window the soonest stands.
        budget = { ...budget, window_ends_at: named === 'later' ? untilMs : Math.min(budget.window_ends_at, untilMs) };
      }
      if (heard?.remaining !== undefined && end.kind !== 'notCounted') {
        // Within one window the budget is the lowest Remaining any answer told, less every request
        // still in flight (the Market may have counted some of them already, so this can fall
        // below zero until their answers come). Answers arrive out of order: a higher Remaining
        // is older news. This request is in that lowest count now (it was counted no later than
        // the answer that told it), so it no longer counts as in flight. Only a header naming a
        // later window starts the count afresh.
        const unseen = await tx.limiter.inFlightWeight(key, permit.leaseId);
        const told = heard.remaining - unseen;
        const untold = budget.remaining + (leased ? permit.weight : 0);
        budget = { ...budget, remaining: named === 'later' ? told : Math.min(untold, told) };
      }
      if (end.kind === 'rateLimited') {
        const until = end.parallel
          ? now + PARALLEL_PAUSE_MS
          : untilMs !== undefined && untilMs > now
            ? untilMs
            : now + RATE_LIMITED_FALLBACK_MS;
        // A refusal in a window that has ended holds nothing back now.
        const quota = !end.parallel && named !== 'previous';
        budget = {
          ...budget,
          ...(end.parallel || quota ? { blocked_until: Math.max(budget.blocked_until, until) } : {}),
          ...(quota ? { remaining: 0 } : {}),
          // Any 420, a parallel one too: what an operator asks is when the Market last refused.
          last_rate_limited_at: now,
        };
      }
      await tx.limiter.put({ ...budget, updated_at: now });
    });
  }
}
