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

/**
 * When the window named by X-RateLimit-Resource-Until really ends. The header is an RFC 822 date
 * with whole seconds, so the Market's instant lies somewhere in the second it names: a value on
 * a whole second is read as the end of that second. Taking it as exact sends up to a second
 * early, into the old window, and earns a 420 whose own -Until is then already past.
 */
export function windowEnd(untilMs: number): number {
  return untilMs % 1_000 === 0 ? untilMs + 999 : untilMs;
}

export function scopeKey(scope: Scope): string {
  return `${scope.kind}:${scope.id}`;
}

function resourceKey(operation: MarketOperation, scope: Scope): string {
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
      return { resource_key: key, capacity: limit, remaining: limit, window_ends_at: now + windowMs, blocked_until: 0, updated_at: now, last_rate_limited_at: null };
    }
    if (now >= row.window_ends_at) {
      // A permit is taken before its request goes out, so a request still in flight may reach the
      // Market in this new window (on a loaded machine, long after): it counts here too until its
      // answer's headers tell.
      const inFlight = await tx.limiter.inFlightWeight(key, '');
      return { ...row, remaining: Math.max(0, row.capacity - inFlight), window_ends_at: now + windowMs, updated_at: now };
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
      await tx.limiter.removeLease(permit.leaseId);
      const storedWindowEnd = budget.window_ends_at;
      if (end.kind === 'notCounted') budget = { ...budget, remaining: Math.min(budget.capacity, budget.remaining + permit.weight) };
      const info = end.rateLimit;
      const untilMs = info?.untilMs === undefined ? undefined : windowEnd(info.untilMs);
      if (info?.limit !== undefined) budget = { ...budget, capacity: info.limit };
      if (untilMs !== undefined && untilMs > now) budget = { ...budget, window_ends_at: untilMs };
      if (info?.remaining !== undefined && end.kind !== 'notCounted') {
        // The Market's count includes this request but not the others still in flight.
        const unseen = await tx.limiter.inFlightWeight(key, permit.leaseId);
        const told = Math.max(0, info.remaining - unseen);
        // Answers arrive out of order: within one window only a lower count is news; only a
        // header naming a later window may raise the budget.
        const laterWindow = untilMs !== undefined && untilMs > storedWindowEnd;
        budget = { ...budget, remaining: laterWindow ? told : Math.min(budget.remaining, told) };
      }
      if (end.kind === 'rateLimited') {
        const until = end.parallel
          ? now + PARALLEL_PAUSE_MS
          : untilMs !== undefined && untilMs > now
            ? untilMs
            : now + RATE_LIMITED_FALLBACK_MS;
        budget = {
          ...budget,
          blocked_until: Math.max(budget.blocked_until, until),
          ...(end.parallel ? {} : { remaining: 0 }),
          // Any 420, a parallel one too: what an operator asks is when the Market last refused.
          last_rate_limited_at: now,
        };
      }
      await tx.limiter.put({ ...budget, updated_at: now });
    });
  }
}
