// Sync: reads the orders the Market changed since a stored cursor (getBusinessOrders, paged),
// tracks new ones and observes every status. The cursor moves in the same transaction that
// stores the page, so a crash repeats at most one page and never skips one.

import type { MarketClient } from '../market/client.js';
import type { BusinessOrder } from '../market/schemas.js';
import type { Store } from '../store/store.js';
import type { CampaignConfig } from './commands.js';
import type { DispatchCounters } from './dispatcher.js';
import type { OrderBook } from './order-book.js';
import type { LimitsPolicy } from './policies.js';
import { requestEndOf, type RateLimiter } from './rate-limiter.js';
import { sleep } from './concurrency.js';

export interface SyncCursor {
  /** ISO 8601: orders updated at or after this instant (absent on the first sweep). */
  readonly updatedFrom?: string;
  /** The page to read next within the current sweep. */
  readonly pageToken?: string;
  /** When the current sweep began; becomes `updatedFrom` once it completes. */
  readonly sweepStartedAt: string;
}

export interface SyncResult {
  readonly pages: number;
  readonly seen: number;
  readonly created: number;
  readonly updated: number;
  /** Orders of campaigns this engine is not configured for: left alone. */
  readonly skipped: number;
  /**
   * Set when the read budget ran out mid-sweep: the sweep stopped at its stored cursor and can
   * resume from this time (epoch ms).
   */
  readonly resumeAt?: number;
}

export interface SyncDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly client: MarketClient;
  readonly limiter: RateLimiter;
  readonly limits: LimitsPolicy;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly clock: () => number;
  readonly counters: DispatchCounters;
}

// Orders changed just before a sweep began may carry an earlier updateDate than the sweep's
// start (clocks differ); re-reading a little overlap is harmless, since stale news is ignored.
const OVERLAP_MS = 60_000;

export function syncCursorName(businessId: number): string {
  return `sync:business:${businessId}`;
}

export class OrderSync {
  readonly #d: SyncDeps;

  constructor(deps: SyncDeps) {
    this.#d = deps;
  }

  #cursor(businessId: number): SyncCursor | undefined {
    const raw = this.#d.store.cursors.get(syncCursorName(businessId));
    return raw === undefined ? undefined : (JSON.parse(raw) as SyncCursor);
  }

  /** One full sweep for every configured business; resumes a sweep a crash interrupted. */
  async syncAll(): Promise<SyncResult> {
    const businesses = new Map<number, number[]>();
    for (const c of this.#d.campaigns.values()) businesses.set(c.businessId, [...(businesses.get(c.businessId) ?? []), c.campaignId]);
    const total = { pages: 0, seen: 0, created: 0, updated: 0, skipped: 0 };
    let resumeAt: number | undefined;
    for (const [businessId, campaignIds] of businesses) {
      const r = await this.syncBusiness(businessId, campaignIds);
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r[k];
      if (r.resumeAt !== undefined) resumeAt = Math.max(resumeAt ?? 0, r.resumeAt);
    }
    return resumeAt === undefined ? total : { ...total, resumeAt };
  }

  async syncBusiness(businessId: number, campaignIds: readonly number[]): Promise<SyncResult> {
    const result = { pages: 0, seen: 0, created: 0, updated: 0, skipped: 0 };
    const stored = this.#cursor(businessId);
    let cursor: SyncCursor =
      stored?.pageToken !== undefined ? stored : { ...(stored?.updatedFrom ? { updatedFrom: stored.updatedFrom } : {}), sweepStartedAt: new Date(this.#d.clock()).toISOString() };
    for (;;) {
      const got = this.#d.limiter.tryAcquire('getBusinessOrders', { kind: 'business', id: businessId }, 1, this.#d.clock());
      if (!got.ok) {
        // A busy parallel slot frees within a request's time; a spent budget may take an hour:
        // stop at the stored cursor rather than hold the caller (and the run loop) that long.
        if (got.reason !== 'parallel') return { ...result, resumeAt: got.retryAt };
        await sleep(Math.max(1, got.retryAt - this.#d.clock()));
        continue;
      }
      this.#d.counters.calls.getBusinessOrders = (this.#d.counters.calls.getBusinessOrders ?? 0) + 1;
      let page;
      try {
        page = await this.#d.client.getBusinessOrders(
          businessId,
          { campaignIds: [...campaignIds], ...(cursor.updatedFrom ? { dates: { updateDateFrom: cursor.updatedFrom } } : {}) },
          { limit: this.#d.limits.ordersPerRead, ...(cursor.pageToken ? { pageToken: cursor.pageToken } : {}) },
        );
      } catch (error) {
        this.#d.limiter.release(got.permit, requestEndOf(error), this.#d.clock());
        throw error;
      }
      const now = this.#d.clock();
      this.#d.limiter.release(got.permit, { kind: 'answered', rateLimit: page.rateLimit }, now);
      const next = page.body.paging?.nextPageToken;
      const nextCursor: SyncCursor = next
        ? { ...cursor, pageToken: next }
        : { updatedFrom: new Date(Date.parse(cursor.sweepStartedAt) - OVERLAP_MS).toISOString(), sweepStartedAt: cursor.sweepStartedAt };
      this.#d.store.write(() => {
        for (const order of page.body.orders) this.#take(order, now, result);
        this.#d.store.cursors.set(syncCursorName(businessId), JSON.stringify(nextCursor), now);
      });
      result.pages++;
      cursor = nextCursor;
      if (!next) return result;
    }
  }

  #take(order: BusinessOrder, now: number, result: { seen: number; created: number; updated: number; skipped: number }): void {
    result.seen++;
    if (!this.#d.campaigns.has(order.campaignId)) {
      result.skipped++;
      return;
    }
    const observedAt = order.updateDate ? Date.parse(order.updateDate) : now;
    const outcome = this.#d.orders.track(
      {
        orderId: order.orderId,
        campaignId: order.campaignId,
        status: order.status,
        substatus: order.substatus,
        observedAt,
        ...(order.cancelRequested !== undefined ? { cancelRequested: order.cancelRequested } : {}),
      },
      'sync',
      now,
    );
    if (outcome === 'created') result.created++;
    else if (outcome.changed) result.updated++;
  }
}
