// The runner: everything that talks to the Market, built once per engine. One round (sends a
// crash orphaned, read-backs, sends, operation polls) serves both `flush` and `run`; the loop
// around it only decides when to sync, when to sleep and when to stop.

import { isMarketError, type AnyMarketError } from '../market/errors.js';
import { StoreError, STORE_ERROR_CODES } from '../store/errors.js';
import { OPEN_OUTBOX_STATES, type OutboxState } from '../store/outbox.js';
import type { Store } from '../store/port.js';
import type { CampaignConfig } from './commands.js';
import { Doorbell, sleep } from './concurrency.js';
import { dispatchCounters, type CounterBook, type DispatchCounters } from './counter-book.js';
import { Dispatcher, type CampaignHalt } from './dispatcher.js';
import { SyncPageTokenRepeatedError } from './errors.js';
import type { CampaignError, MarketCallCounts, MeteredMarket } from './metered-market.js';
import { budgetWaits, type BudgetWait } from './rate-limiter.js';
import type { OperationBook } from './operation-book.js';
import { OperationPoller } from './operation-poller.js';
import type { OrderBook } from './order-book.js';
import { OrderSync, type SyncOptions, type SyncProgress, type SyncResult } from './order-sync.js';
import type { LimitsPolicy, RetryPolicy } from './policies.js';

const SYNC_RETRY_MS = 5_000;
/** flush() waits for work other processes hold (no due time tells when it ends) by looking this often. */
const FLUSH_POLL_MS = 1_000;
/** The idle sleep by default: short where only this process's own queuing wakes the loop, long where every process's does. */
const IDLE_MS = { process: 1_000, database: 30_000 } as const;
/** After a store error the loop waits this long, doubling per error in a row up to the cap (with jitter). */
const STORE_RETRY = { firstMs: 100, maxMs: 5_000 } as const;
/**
 * Store errors the run loop waits out: the database busy or unreachable, for as long as that
 * lasts. The rest (closed, corrupt, not ours, too new) will not pass by waiting.
 */
const PASSING_STORE_ERRORS: ReadonlySet<string> = new Set([STORE_ERROR_CODES.busy, STORE_ERROR_CODES.unavailable]);
/**
 * DB_FAILED may pass (a full disk freed, a connection that broke while committing) or not (a
 * dropped schema, a permission taken away, a bug): waited out this many times in a row (about
 * 20 s with the backoff), then the loop ends with it.
 */
const FAILED_PASSES_WAITED = 8;
// run() reads a long sweep this many pages at a time per business, flushing between the parts,
// so a first sync of many thousand orders does not hold every send back until it ends.
const RUN_PAGES_PER_SYNC = 100;

export interface FlushOptions {
  /** Keep going, waiting for due times, until no change is open (default: one pass over what is due now). */
  readonly untilIdle?: boolean;
  /** Give up waiting after this long (default 60 s). */
  readonly maxWaitMs?: number;
  readonly signal?: AbortSignal;
  /** Called after each pass, e.g. to draw progress. */
  readonly onProgress?: (report: FlushReport) => void;
}

export interface FlushReport {
  /** This engine's counters (kept as rows per engine, so other processes see them too). */
  readonly counters: DispatchCounters;
  readonly outbox: Record<OutboxState, number>;
  /** Changes not settled yet: queued, sending, awaiting an operation, uncertain. */
  readonly open: number;
  /** Every campaign halted on this database, by whichever engine the Market refused. */
  readonly halted: readonly CampaignHalt[];
  /** Market calls this engine made that were answered and that failed (sync, sends, read-backs, polls). */
  readonly marketCalls: MarketCallCounts;
  /**
   * The latest failed Market call of each campaign, over this engine's life; a business-wide call
   * (a read or an operation poll) counts for every campaign of the business.
   */
  readonly lastErrors: readonly CampaignError[];
  /** Budgets that hold calls back now (spent, or blocked by a 420), shared by every process, and until when. */
  readonly waitingFor: readonly BudgetWait[];
}

export interface RunOptions {
  readonly signal: AbortSignal;
  /** Sync this often (default: no sync). */
  readonly syncIntervalMs?: number;
  /**
   * The longest sleep when there is nothing to do. Queued work wakes the loop sooner: this
   * process's on any store, every process's on PostgreSQL (Store.wakeups), so the default is 1 s
   * on SQLite (other processes' work is found by looking) and 30 s on PostgreSQL. A send
   * orphaned by a process that died is found by the first pass after its lease ends.
   */
  readonly idleMs?: number;
  /** Pages per business in one sync pass (default 100); a capped sweep goes on after the next flush pass. */
  readonly maxPagesPerSweep?: number;
  readonly onProgress?: (report: FlushReport) => void;
  readonly onSyncProgress?: (progress: SyncProgress) => void;
  /** A sync that failed at the Market (or was led in a circle); the loop goes on and syncs again later. */
  readonly onSyncError?: (error: AnyMarketError | SyncPageTokenRepeatedError) => void;
  /**
   * The database failed a pass (DB_BUSY, DB_UNAVAILABLE; DB_FAILED up to 8 times in a row, then
   * the loop ends with it): the loop waits `retryInMs` and goes on. What the failed pass had written stands or was rolled back whole; a send whose
   * answer could not be recorded is read back once its lease ends, never sent again blindly.
   */
  readonly onStoreError?: (error: StoreError, retryInMs: number) => void;
}

/**
 * The engine's report: counters saved and read back, the outbox and the halts, in one transaction
 * (a read-only one when nothing was counted since the last report).
 */
export async function readReport(store: Store, counters: CounterBook, lastErrors: readonly CampaignError[], now: number): Promise<FlushReport> {
  // Decided once: what is counted while the report is read waits for the next save.
  const saving = counters.unsaved;
  const inOne = saving ? store.transaction.bind(store) : store.read.bind(store);
  const { rows, outbox, halts, budgets } = await inOne(async (tx) => ({
    rows: saving ? await counters.save(tx) : await counters.saved(tx),
    budgets: await tx.limiter.all(),
    outbox: await tx.outbox.counts(),
    halts: await tx.halts.all(),
  }));
  return {
    counters: dispatchCounters(rows),
    outbox,
    open: OPEN_OUTBOX_STATES.reduce((n, s) => n + outbox[s], 0),
    halted: halts.map((h) => ({ campaignId: h.campaign_id, code: h.code, message: h.message })),
    marketCalls: { answered: rows['market.answered'] ?? 0, failed: rows['market.failed'] ?? 0 },
    lastErrors,
    waitingFor: budgetWaits(budgets, now),
  };
}

export interface RunnerDeps {
  readonly store: Store;
  readonly orders: OrderBook;
  readonly operations: OperationBook;
  readonly market: MeteredMarket;
  readonly counters: CounterBook;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly limits: LimitsPolicy;
  readonly retry: RetryPolicy;
  readonly owner: string;
  readonly clock: () => number;
  readonly leaseMs: number;
  readonly random: () => number;
}

export class Runner {
  readonly #d: RunnerDeps;
  readonly #dispatcher: Dispatcher;
  readonly #poller: OperationPoller;
  readonly #sync: OrderSync;
  #haltsCleared = false;

  constructor(deps: RunnerDeps) {
    this.#d = deps;
    this.#dispatcher = new Dispatcher(deps);
    this.#poller = new OperationPoller(deps);
    this.#sync = new OrderSync(deps);
  }

  report(): Promise<FlushReport> {
    return readReport(this.#d.store, this.#d.counters, this.#d.market.latestErrors(), this.#d.clock());
  }

  /**
   * One round: orphans, read-backs, sends, operation polls. Once `signal` aborts no new phase
   * starts, so only requests already in flight (each bounded by the request timeout) are waited for.
   */
  async #round(signal: AbortSignal | undefined): Promise<number> {
    if (!this.#haltsCleared) {
      // A halt is a refused key; this engine may have been given a new one, so it tries once more.
      await this.#d.store.transaction((tx) => tx.halts.clearAll());
      this.#haltsCleared = true;
    }
    await this.#dispatcher.recoverOrphanedSends();
    let worked = await this.#dispatcher.readBackUncertain();
    if (!signal?.aborted) worked += await this.#dispatcher.sendDue(signal);
    if (!signal?.aborted) worked += await this.#poller.pollDue();
    return worked;
  }

  async flush(options: FlushOptions = {}): Promise<FlushReport> {
    const deadline = this.#d.clock() + (options.maxWaitMs ?? 60_000);
    for (;;) {
      const worked = await this.#round(options.signal);
      const report = await this.report();
      options.onProgress?.(report);
      const settled = report.open === 0 || (await this.#onlyHaltedOpen(report.halted));
      if (!options.untilIdle || settled || options.signal?.aborted || this.#d.clock() >= deadline) return report;
      if (worked === 0) await sleep(await this.#untilNextDue(Math.min(FLUSH_POLL_MS, deadline - this.#d.clock())), options.signal);
    }
  }

  pollOperations(): Promise<number> {
    return this.#poller.pollDue();
  }

  sync(options: SyncOptions): Promise<SyncResult> {
    return this.#sync.syncAll(options);
  }

  async run(options: RunOptions): Promise<FlushReport> {
    const { signal } = options;
    const idleMs = options.idleMs ?? IDLE_MS[this.#d.store.wakeups];
    const doorbell = new Doorbell();
    const stopListening = this.#d.store.onQueued(() => doorbell.ring());
    const next = { syncAt: this.#d.clock() };
    let storeErrors = 0;
    let failedInARow = 0;
    try {
      while (!signal.aborted) {
        try {
          await this.#pass(options, next, idleMs, doorbell);
          storeErrors = 0;
          failedInARow = 0;
        } catch (error) {
          if (!(error instanceof StoreError)) throw error;
          failedInARow = error.code === STORE_ERROR_CODES.failed ? failedInARow + 1 : 0;
          if (!PASSING_STORE_ERRORS.has(error.code) && (error.code !== STORE_ERROR_CODES.failed || failedInARow > FAILED_PASSES_WAITED)) throw error;
          storeErrors++;
          const capped = Math.min(STORE_RETRY.maxMs, STORE_RETRY.firstMs * 2 ** (storeErrors - 1));
          const retryInMs = Math.round(capped * (0.5 + this.#d.random() / 2));
          options.onStoreError?.(error, retryInMs);
          await sleep(retryInMs, signal);
        }
      }
      return await this.report();
    } finally {
      stopListening();
    }
  }

  /** One turn of the run loop: a sync when due, a round, a report, and a sleep when idle. */
  async #pass(options: RunOptions, next: { syncAt: number }, idleMs: number, doorbell: Doorbell): Promise<void> {
    const { signal } = options;
    if (options.syncIntervalMs !== undefined && this.#d.clock() >= next.syncAt) {
      try {
        const synced = await this.#sync.syncAll({
          signal,
          maxPagesPerSweep: options.maxPagesPerSweep ?? RUN_PAGES_PER_SYNC,
          ...(options.onSyncProgress ? { onProgress: options.onSyncProgress } : {}),
        });
        // A sweep cut at the page cap goes on right after this pass; a finished one waits.
        next.syncAt = synced.stoppedBy === 'pageCap' ? this.#d.clock() : Math.max(this.#d.clock() + options.syncIntervalMs, synced.resumeAt ?? 0);
      } catch (error) {
        if (!isMarketError(error) && !(error instanceof SyncPageTokenRepeatedError)) throw error;
        options.onSyncError?.(error);
        next.syncAt = this.#d.clock() + Math.min(options.syncIntervalMs, SYNC_RETRY_MS);
      }
    }
    if (signal.aborted) return;
    const worked = await this.#round(signal);
    options.onProgress?.(await this.report());
    const syncDue = options.syncIntervalMs !== undefined && this.#d.clock() >= next.syncAt;
    if (worked === 0 && !syncDue) {
      const untilSync = options.syncIntervalMs === undefined ? idleMs : next.syncAt - this.#d.clock();
      await doorbell.wait(await this.#untilNextDue(Math.min(idleMs, untilSync)), signal);
    }
  }

  /** Everything still open waits on a campaign whose key the Market refused. */
  async #onlyHaltedOpen(halted: readonly CampaignHalt[]): Promise<boolean> {
    if (halted.length === 0) return false;
    const ids = new Set(halted.map((h) => h.campaignId));
    const open = await this.#d.store.read((tx) => tx.outbox.open(10_000));
    return open.every((r) => ids.has(r.campaign_id) && r.state === 'queued');
  }

  /** How long to sleep: until the next due send, read-back or poll, at most `capMs`. */
  async #untilNextDue(capMs: number): Promise<number> {
    const { outbox, operations } = await this.#d.store.read(async (tx) => ({ outbox: await tx.outbox.nextDueAt(this.#d.clock()), operations: await tx.operations.nextDueAt() }));
    const next = Math.min(outbox ?? Infinity, operations ?? Infinity);
    return Math.max(5, Math.min(next - this.#d.clock(), capMs));
  }
}
