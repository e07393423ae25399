// The one way the runner calls the Market: permit → count → call → release. Every caller
// (dispatcher sends and read-backs, operation polls, sync) asks for a permit, which waits while
// its scope's parallel slots are busy and says "not now" when the budget is spent or blocked;
// a granted permit is used exactly once, and on every path it is released with what the
// request's end means for the budget. Callers keep only what the answer means for orders.

import type { MarketClient, MarketResponse } from '../market/client.js';
import { isMarketError, type MarketErrorCode, type MarketOperation } from '../market/errors.js';
import type { CampaignConfig } from './commands.js';
import { sleep } from './concurrency.js';
import type { StoreTx } from '../store/port.js';
import type { CounterBook } from './counter-book.js';
import { requestEndOf, type Permit, type RateLimiter, type Scope } from './rate-limiter.js';

/** The latest failed Market call of a campaign. */
export interface CampaignError {
  readonly campaignId: number;
  readonly operation: MarketOperation;
  readonly code: MarketErrorCode;
  /** The typed error's message (built from redacted text only: never the key). */
  readonly message: string;
  /** When it failed (epoch ms, engine clock). */
  readonly at: number;
}

export interface MarketCallCounts {
  /** Calls the Market answered with a 2xx. */
  readonly answered: number;
  /** Calls that ended in a Market error (HTTP error, timeout, network, unreadable answer). */
  readonly failed: number;
}

/** A granted permit: make the call with it, or give it back unused. */
export interface MarketPermit {
  /** Counts the call, makes it, and releases the permit with what its end means for the budget. */
  call<T extends MarketResponse<unknown>>(send: (client: MarketClient) => Promise<T>): Promise<T>;
  /** Gives the permit back without calling (nothing was left to send). */
  cancel(): Promise<void>;
}

export type PermitAnswer =
  | { readonly ok: true; readonly permit: MarketPermit }
  /** Not now: the budget is spent (`available` units could still be taken) or blocked until `retryAt`; or `signal` aborted. */
  | { readonly ok: false; readonly reason: 'budget' | 'blocked' | 'aborted'; readonly retryAt: number; readonly available: number };

export class MeteredMarket {
  readonly #client: MarketClient;
  readonly #limiter: RateLimiter;
  readonly #counters: CounterBook;
  readonly #campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly #clock: () => number;
  readonly #latest = new Map<number, CampaignError>();

  constructor(deps: { client: MarketClient; limiter: RateLimiter; counters: CounterBook; campaigns: ReadonlyMap<number, CampaignConfig>; clock: () => number }) {
    this.#client = deps.client;
    this.#limiter = deps.limiter;
    this.#counters = deps.counters;
    this.#campaigns = deps.campaigns;
    this.#clock = deps.clock;
  }

  /** One entry per campaign that had a failed call, by campaign id. */
  latestErrors(): CampaignError[] {
    return [...this.#latest.values()].sort((a, b) => a.campaignId - b.campaignId);
  }

  /**
   * A permit for one `operation` call of `weight` units in `scope`. Busy parallel slots free up
   * within one request's time, so that is waited for (until `signal` aborts); a spent or blocked
   * budget is the caller's to schedule around. `prepare` runs in the transaction that grants it
   * (see RateLimiter.tryAcquire).
   */
  async permit(
    operation: MarketOperation,
    scope: Scope,
    weight: number,
    options: { signal?: AbortSignal | undefined; prepare?: (tx: StoreTx, now: number) => Promise<void> } = {},
  ): Promise<PermitAnswer> {
    const { signal } = options;
    for (;;) {
      if (signal?.aborted) return { ok: false, reason: 'aborted', retryAt: this.#clock(), available: 0 };
      const got = await this.#limiter.tryAcquire(operation, scope, weight, this.#clock, options.prepare);
      if (got.ok) return { ok: true, permit: this.#use(got.permit, signal) };
      if (got.reason !== 'parallel') return { ok: false, reason: got.reason, retryAt: got.retryAt, available: got.available };
      await sleep(Math.max(1, got.retryAt - this.#clock()), signal);
    }
  }

  #use(permit: Permit, signal: AbortSignal | undefined): MarketPermit {
    let used = false;
    const once = (): void => {
      if (used) throw new Error(`a ${permit.operation} permit was used twice`);
      used = true;
    };
    return {
      call: async (send) => {
        once();
        this.#counters.add(`calls.${permit.operation}`);
        let answer;
        try {
          answer = await send(this.#client);
        } catch (error) {
          await this.#limiter.release(permit, requestEndOf(error), this.#clock);
          // A call abandoned on purpose says nothing about the Market; a bug is not the Market's.
          if (!signal?.aborted && isMarketError(error)) this.#failed(permit, error.code, error.message);
          throw error;
        }
        this.#counters.add('market.answered');
        await this.#limiter.release(permit, { kind: 'answered', rateLimit: answer.rateLimit }, this.#clock);
        return answer;
      },
      cancel: async () => {
        once();
        await this.#limiter.release(permit, { kind: 'notCounted' }, this.#clock);
      },
    };
  }

  #failed(permit: Permit, code: MarketErrorCode, message: string): void {
    this.#counters.add('market.failed');
    if (code === 'MARKET_RATE_LIMITED') this.#counters.add('rateLimited');
    const at = this.#clock();
    // A business-wide call (reads, operation polls) serves every campaign of the business.
    const campaignIds =
      permit.scope.kind === 'campaign'
        ? [permit.scope.id]
        : [...this.#campaigns.values()].filter((c) => c.businessId === permit.scope.id).map((c) => c.campaignId);
    for (const campaignId of campaignIds) this.#latest.set(campaignId, { campaignId, operation: permit.operation, code, message, at });
  }
}
