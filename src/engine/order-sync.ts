// Sync: reads the orders the Market changed since a stored cursor (getBusinessOrders, paged),
// tracks new ones and observes every status. The cursor moves in the same transaction that
// stores the page, so a crash repeats at most one page and never skips one.

import { z } from 'zod';
import type { BusinessOrder } from '../market/schemas.js';
import type { Store, StoreTx } from '../store/port.js';
import type { CampaignConfig } from './commands.js';
import type { MeteredMarket } from './metered-market.js';
import type { OrderBook } from './order-book.js';
import type { LimitsPolicy } from './policies.js';
import { SyncPageTokenRepeatedError } from './errors.js';
import { inLockOrder } from './concurrency.js';
import { takeBusinessOrder } from './business-orders.js';

export interface SyncCursor {
  /** ISO 8601: orders updated at or after this instant (absent on the first sweep). */
  readonly updatedFrom?: string;
  /** The page to read next within the current sweep. */
  readonly pageToken?: string;
  /** When the current sweep began; becomes `updatedFrom` once it completes. */
  readonly sweepStartedAt: string;
}

export interface SyncCounts {
  readonly pages: number;
  readonly seen: number;
  readonly created: number;
  readonly updated: number;
  /** Orders of campaigns this engine is not configured for: left alone. */
  readonly skipped: number;
}

/** Why a sync returned before every sweep was complete; each sweep stopped at its stored cursor. */
export type SyncStop =
  /** The getBusinessOrders budget is spent until `resumeAt`. */
  | 'budget'
  /** `maxPagesPerSweep` pages were read for a business. */
  | 'pageCap'
  /** The caller's signal aborted (the read in flight was abandoned; it changes nothing). */
  | 'aborted';

export interface SyncResult extends SyncCounts {
  /** Every business's sweep reached its last page; otherwise `stoppedBy` says why not. */
  readonly complete: boolean;
  readonly stoppedBy?: SyncStop;
  /**
   * Set when the read budget ran out mid-sweep: the sweep stopped at its stored cursor and can
   * resume from this time (epoch ms).
   */
  readonly resumeAt?: number;
}

/** Totals of this sync so far, after each stored page. */
export interface SyncProgress extends SyncCounts {
  /** The business whose page was just stored. */
  readonly businessId: number;
}

/** The options sync() and run() check before anything is read (the callbacks are taken as given). */
export const syncOptionsSchema = z.object({ maxPagesPerSweep: z.number().int().positive().optional() });

export interface SyncOptions {
  /** Stops the sync between pages and abandons the read in flight; what was stored stays. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: SyncProgress) => void;
  /**
   * Pages read per business in this call (default: no cap). When reached, the sweep stops at its
   * stored cursor (`stoppedBy: 'pageCap'`) and the next sync resumes it.
   */
  readonly maxPagesPerSweep?: number;
}

export interface SyncDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly market: MeteredMarket;
  readonly limits: LimitsPolicy;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly clock: () => number;
}

// Orders changed just before a sweep began may carry an earlier updateDate than the sweep's
// start (clocks differ); re-reading a little overlap is harmless, since stale news is ignored.
const OVERLAP_MS = 60_000;

// When sweeps stop for different reasons, the result names the one the caller acts on first: a
// capped sweep can go on at once (a business whose budget is spent then stops again at no cost).
const STOP_RANK: Record<SyncStop, number> = { budget: 0, pageCap: 1, aborted: 2 };

export function syncCursorName(businessId: number): string {
  return `sync:business:${businessId}`;
}

export class OrderSync {
  readonly #d: SyncDeps;

  constructor(deps: SyncDeps) {
    this.#d = deps;
  }

  async #cursor(businessId: number): Promise<SyncCursor | undefined> {
    const raw = await this.#d.store.read((tx) => tx.cursors.get(syncCursorName(businessId)));
    return raw === undefined ? undefined : (JSON.parse(raw) as SyncCursor);
  }

  /** One sweep for every configured business (resuming a sweep an earlier sync stopped). */
  async syncAll(options: SyncOptions = {}): Promise<SyncResult> {
    const businesses = new Map<number, number[]>();
    for (const c of this.#d.campaigns.values()) businesses.set(c.businessId, [...(businesses.get(c.businessId) ?? []), c.campaignId]);
    const total = { pages: 0, seen: 0, created: 0, updated: 0, skipped: 0 };
    let stoppedBy: SyncStop | undefined;
    let resumeAt: number | undefined;
    for (const [businessId, campaignIds] of businesses) {
      if (options.signal?.aborted) {
        stoppedBy = 'aborted';
        break;
      }
      const r = await this.#syncBusiness(businessId, campaignIds, options, total);
      if (r.resumeAt !== undefined) resumeAt = Math.max(resumeAt ?? 0, r.resumeAt);
      if (r.stoppedBy !== undefined && STOP_RANK[r.stoppedBy] > (stoppedBy === undefined ? -1 : STOP_RANK[stoppedBy])) stoppedBy = r.stoppedBy;
    }
    return {
      ...total,
      complete: stoppedBy === undefined,
      ...(stoppedBy !== undefined ? { stoppedBy } : {}),
      ...(resumeAt !== undefined ? { resumeAt } : {}),
    };
  }

  /** Reads one business's pages from its cursor, adding what it stores to `total`. */
  async #syncBusiness(
    businessId: number,
    campaignIds: readonly number[],
    options: SyncOptions,
    total: { pages: number; seen: number; created: number; updated: number; skipped: number },
  ): Promise<{ stoppedBy?: SyncStop; resumeAt?: number }> {
    const { signal } = options;
    const stored = await this.#cursor(businessId);
    let cursor: SyncCursor =
      stored?.pageToken !== undefined ? stored : { ...(stored?.updatedFrom ? { updatedFrom: stored.updatedFrom } : {}), sweepStartedAt: new Date(this.#d.clock()).toISOString() };
    // Tokens this sweep was given: a repeat means the Market would lead it in a circle.
    const tokens = new Set<string>(cursor.pageToken !== undefined ? [cursor.pageToken] : []);
    let pages = 0;
    for (;;) {
      if (signal?.aborted) return { stoppedBy: 'aborted' };
      if (options.maxPagesPerSweep !== undefined && pages >= options.maxPagesPerSweep) return { stoppedBy: 'pageCap' };
      const got = await this.#d.market.permit('getBusinessOrders', { kind: 'business', id: businessId }, 1, { signal });
      // A spent budget may take an hour: stop at the stored cursor rather than hold the caller (and
      // the run loop) that long.
      if (!got.ok) return got.reason === 'aborted' ? { stoppedBy: 'aborted' } : { stoppedBy: 'budget', resumeAt: got.retryAt };
      const from = cursor;
      let page;
      try {
        page = await got.permit.call((client) =>
          client.getBusinessOrders(
            businessId,
            { campaignIds: [...campaignIds], ...(from.updatedFrom ? { dates: { updateDateFrom: from.updatedFrom } } : {}) },
            { limit: this.#d.limits.ordersPerRead, ...(from.pageToken ? { pageToken: from.pageToken } : {}) },
            signal ? { signal } : {},
          ),
        );
      } catch (error) {
        // The read was abandoned on purpose: a read changes nothing, so there is nothing to report.
        if (signal?.aborted) return { stoppedBy: 'aborted' };
        throw error;
      }
      const now = this.#d.clock();
      const next = page.body.paging?.nextPageToken;
      // The page itself is a valid answer and is stored; the cursor stays on it, so the next sync
      // asks for it again rather than follow the circle.
      const repeated = next !== undefined && next !== '' && tokens.has(next);
      const nextCursor: SyncCursor = repeated
        ? cursor
        : next
          ? { ...cursor, pageToken: next }
          : { updatedFrom: new Date(Date.parse(cursor.sweepStartedAt) - OVERLAP_MS).toISOString(), sweepStartedAt: cursor.sweepStartedAt };
      const counts = { seen: 0, created: 0, updated: 0, skipped: 0 };
      const orders = page.body.orders;
      await this.#d.store.transaction(async (tx) => {
        for (const order of inLockOrder(orders, (o) => o.orderId)) await this.#take(tx, order, now, counts);
        await tx.cursors.set(syncCursorName(businessId), JSON.stringify(nextCursor), now);
      });
      pages++;
      total.pages++;
      for (const k of Object.keys(counts) as (keyof typeof counts)[]) total[k] += counts[k];
      options.onProgress?.({ businessId, ...total });
      if (repeated) throw new SyncPageTokenRepeatedError(businessId, next, pages);
      if (!next) return {};
      tokens.add(next);
      cursor = nextCursor;
    }
  }

  async #take(tx: StoreTx, order: BusinessOrder, now: number, result: { seen: number; created: number; updated: number; skipped: number }): Promise<void> {
    result.seen++;
    const outcome = await takeBusinessOrder(this.#d, tx, order, now);
    if (outcome === 'created') result.created++;
    else if (outcome === 'updated') result.updated++;
    else if (outcome === 'skipped') result.skipped++;
  }
}
