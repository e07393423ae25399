// Resource quotas of the fake Market: a fixed window per (endpoint, campaign or business),
// opened by the first request after the previous one ended, as the X-RateLimit headers describe.

import type { MarketOperation } from '../market/errors.js';

export interface QuotaConfig {
  /** Units per window: orders for updateOrderStatuses, requests for the others. */
  limit: number;
  windowMs: number;
}

const HOUR_MS = 60 * 60 * 1000;

/** Defaults from the spec's x-resource-limit-config (NOTES.md, Endpoints table). */
export const DEFAULT_QUOTAS: Readonly<Record<MarketOperation, QuotaConfig>> = {
  updateOrderStatuses: { limit: 10_000, windowMs: HOUR_MS },
  updateOrderStatus: { limit: 10_000, windowMs: HOUR_MS },
  getOperations: { limit: 1_000, windowMs: HOUR_MS },
  getBusinessOrders: { limit: 10_000, windowMs: HOUR_MS },
  acceptOrderCancellation: { limit: 500, windowMs: HOUR_MS },
};

export interface QuotaState {
  limit: number;
  remaining: number;
  untilMs: number;
}

export class QuotaBook {
  readonly #configs: Readonly<Record<MarketOperation, QuotaConfig>>;
  readonly #now: () => number;
  readonly #windows = new Map<string, { startedAt: number; used: number }>();

  constructor(configs: Readonly<Record<MarketOperation, QuotaConfig>>, now: () => number) {
    this.#configs = configs;
    this.#now = now;
  }

  /** The current window of this resource and owner, opening a new one if the last has ended. */
  state(operation: MarketOperation, owner: string): QuotaState {
    const config = this.#configs[operation];
    const window = this.#window(operation, owner);
    return { limit: config.limit, remaining: Math.max(0, config.limit - window.used), untilMs: window.startedAt + config.windowMs };
  }

  /** What honest headers never say: a fresh window, as if nothing had been used. */
  fresh(operation: MarketOperation): QuotaState {
    const config = this.#configs[operation];
    return { limit: config.limit, remaining: config.limit, untilMs: this.#now() + config.windowMs };
  }

  consume(operation: MarketOperation, owner: string, units: number): void {
    this.#window(operation, owner).used += units;
  }

  #window(operation: MarketOperation, owner: string): { startedAt: number; used: number } {
    const key = `${operation} ${owner}`;
    const now = this.#now();
    let window = this.#windows.get(key);
    if (window === undefined || now >= window.startedAt + this.#configs[operation].windowMs) {
      window = { startedAt: now, used: 0 };
      this.#windows.set(key, window);
    }
    return window;
  }
}
