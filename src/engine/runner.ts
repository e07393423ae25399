// The runner: everything that talks to the Market, built once per engine. One round (stored
// notifications, notified orders' reads, sends a crash orphaned, read-backs, sends, operation
// polls) serves both `flush` and `run`; the loop around it only decides when to sync, when to
// sleep and when to stop.

import { answerDueCancellations } from './cancellation-policy.js';
import { isMarketError, type AnyMarketError } from '../market/errors.js';
import { StoreError, STORE_ERROR_CODES } from '../store/errors.js';
import { OPEN_OUTBOX_STATES, type OutboxState } from '../store/outbox.js';
import type { Store } from '../store/port.js';
import type { CampaignConfig } from './commands.js';
import { Doorbell, sleep } from './concurrency.js';
import { dispatchCounters, type CounterBook, type DispatchCounters } from './counter-book.js';
import { Dispatcher, type CampaignHalt } from './dispatcher.js';
import { SyncPageTokenRepeatedError } from './errors.js';
import { InboxProcessor } from './inbox-processor.js';
import type { CampaignError, MarketCallCounts, MeteredMarket } from './metered-market.js';
import { budgetWaits, type BudgetWait } from './rate-limiter.js';
import type { OperationBook } from './operation-book.js';
import { OperationPoller } from './operation-poller.js';
import type { OrderBook } from './order-book.js';
import { READ_COUNTERS, OrderReader } from './order-reader.js';
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
/**
 * How long the run loop keeps finished inbox rows, and how it deletes the older ones. The Market
 * retries a notification for up to 14 days (../shared/market-api/NOTES.md §g): a row kept 15
 * days still recognises the latest repeat as a duplicate. A batch per pass, in its own
 * transaction, so the writer is held briefly; a full batch goes on at the next pass, a short one
 * waits `everyMs`.
 */
export const INBOX_RETENTION = { keepMs: 15 * 24 * 3_600_000, everyMs: 10 * 60_000, batch: 5_000 } as const;

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
  /** Stored notifications not applied yet (status updates), on this database. */
  readonly inboxPending: number;
  /** Orders a notification asked to read and not read yet (due now or later), on this database. */
  readonly readsPending: number;
  /** This engine's reads of notified orders: getBusinessOrders calls, orders returned, ids the Market did not return. */
  readonly reads: ReadCounts;
}

export interface ReadCounts {
  readonly calls: number;
  readonly orders: number;
  readonly notFound: number;
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
  const { rows, outbox, halts, budgets, inboxPending, readsPending } = await inOne(async (tx) => ({
    rows: saving ? await counters.save(tx) : await counters.saved(tx),
    budgets: await tx.limiter.all(),
    outbox: await tx.outbox.counts(),
    halts: await tx.halts.all(),
    inboxPending: await tx.inbox.pendingCount(),
    readsPending: await tx.reads.count(),
  }));
  return {
    counters: dispatchCounters(rows),
    outbox,
    open: OPEN_OUTBOX_STATES.reduce((n, s) => n + outbox[s], 0),
    halted: halts.map((h) => ({ campaignId: h.campaign_id, code: h.code, message: h.message })),
    marketCalls: { answered: rows['market.answered'] ?? 0, failed: rows['market.failed'] ?? 0 },
    lastErrors,
    waitingFor: budgetWaits(budgets, now),
    inboxPending,
    readsPending,
    reads: { calls: rows[READ_COUNTERS.calls] ?? 0, orders: rows[READ_COUNTERS.orders] ?? 0, notFound: rows[READ_COUNTERS.notFound] ?? 0 },
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
  readonly #inbox: InboxProcessor;
  readonly #reader: OrderReader;
  /** The doorbells of the run() loops going on now: wake() rings them. */
  readonly #doorbells = new Set<Doorbell>();
  #haltsCleared = false;

  constructor(deps: RunnerDeps) {
    this.#d = deps;
    this.#dispatcher = new Dispatcher(deps);
    this.#poller = new OperationPoller(deps);
    this.#sync = new OrderSync(deps);
    this.#inbox = new InboxProcessor(deps);
    this.#reader = new OrderReader(deps);
  }

  report(): Promise<FlushReport> {
    return readReport(this.#d.store, this.#d.counters, this.#d.market.latestErrors(), this.#d.clock());
  }

  /**
   * One round: stored notifications, reads of notified orders, orphans, read-backs, sends,
   * operation polls. Notifications go first, so what they say is in the book before anything is
   * sent on the strength of it. Once `signal` aborts no new phase starts, so only requests
   * already in flight (each bounded by the request timeout) are waited for.
   */
  async #round(signal: AbortSignal | undefined): Promise<number> {
    if (!this.#haltsCleared) {
      // A halt is a refused key; this engine may have been given a new one, so it tries once more.
      await this.#d.store.transaction((tx) => tx.halts.clearAll());
      this.#haltsCleared = true;
    }
    let worked = await this.#inbox.processPending();
    if (!signal?.aborted) worked += await this.#reader.readDue(signal);
    await this.#dispatcher.recoverOrphanedSends();
    worked += await this.#dispatcher.readBackUncertain();
    // autoAccept: accepts queued here go out with the sends below, in this same round.
    if (!signal?.aborted) worked += await answerDueCancellations(this.#d);
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
      const settled = report.inboxPending === 0 && report.readsPending === 0 && (report.open === 0 || (await this.#onlyHaltedOpen(report.halted)));
      if (!options.untilIdle || settled || options.signal?.aborted || this.#d.clock() >= deadline) return report;
      if (worked === 0) await sleep(await this.#untilNextDue(Math.min(FLUSH_POLL_MS, deadline - this.#d.clock())), options.signal);
    }
  }

  pollOperations(): Promise<number> {
    return this.#poller.pollDue();
  }

  /** Applies the stored notifications still pending; returns how many it settled. */
  processInbox(): Promise<number> {
    return this.#inbox.processPending();
  }

  /** Reads the notified orders that are due, once; returns how many ids were asked of the Market. */
  readOrders(signal?: AbortSignal): Promise<number> {
    return this.#reader.readDue(signal);
  }

  /**
   * Wakes a run() loop of this runner that sleeps idle (a ring while it works is kept for its
   * next sleep): for a notification receiver in the same process, after each stored notification.
   * Across processes nothing rings: Store.wakeups cover queued changes only (PostgreSQL's
   * LISTEN/NOTIFY is on the outbox), so another process's notifications are found by the idle timer.
   */
  wake(): void {
    for (const doorbell of this.#doorbells) doorbell.ring();
  }

  sync(options: SyncOptions): Promise<SyncResult> {
    return this.#sync.syncAll(options);
  }

  async run(options: RunOptions): Promise<FlushReport> {
    const { signal } = options;
    const idleMs = options.idleMs ?? IDLE_MS[this.#d.store.wakeups];
    const doorbell = new Doorbell();
    const stopListening = this.#d.store.onQueued(() => doorbell.ring());
    this.#doorbells.add(doorbell);
    const next = { syncAt: this.#d.clock(), pruneAt: this.#d.clock() };
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
      this.#doorbells.delete(doorbell);
      stopListening();
    }
  }

  /** One turn of the run loop: a sync when due, a round, inbox pruning when due, a report, and a sleep when idle. */
  async #pass(options: RunOptions, next: { syncAt: number; pruneAt: number }, idleMs: number, doorbell: Doorbell): Promise<void> {
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
    if (!signal.aborted && this.#d.clock() >= next.pruneAt) next.pruneAt = await this.#pruneInbox();
    options.onProgress?.(await this.report());
    const syncDue = options.syncIntervalMs !== undefined && this.#d.clock() >= next.syncAt;
    if (worked === 0 && !syncDue && this.#d.clock() < next.pruneAt) {
      const untilSync = options.syncIntervalMs === undefined ? idleMs : next.syncAt - this.#d.clock();
      await doorbell.wait(await this.#untilNextDue(Math.min(idleMs, untilSync)), signal);
    }
  }

  /** Deletes a batch of finished inbox rows past their keeping time; returns when to prune next. */
  async #pruneInbox(): Promise<number> {
    const now = this.#d.clock();
    const deleted = await this.#d.store.transaction((tx) => tx.inbox.prune(now - INBOX_RETENTION.keepMs, INBOX_RETENTION.batch));
    return deleted < INBOX_RETENTION.batch ? now + INBOX_RETENTION.everyMs : now;
  }

  /** Everything still open waits on a campaign whose key the Market refused. */
  async #onlyHaltedOpen(halted: readonly CampaignHalt[]): Promise<boolean> {
    if (halted.length === 0) return false;
    const ids = new Set(halted.map((h) => h.campaignId));
    const open = await this.#d.store.read((tx) => tx.outbox.open(10_000));
    return open.every((r) => ids.has(r.campaign_id) && r.state === 'queued');
  }

  /** How long to sleep: none while a notification waits, else until the next due send, read-back, order read or poll, at most `capMs`. */
  async #untilNextDue(capMs: number): Promise<number> {
    const now = this.#d.clock();
    const { outbox, operations, reads, inboxPending } = await this.#d.store.read(async (tx) => ({
      outbox: await tx.outbox.nextDueAt(now),
      operations: await tx.operations.nextDueAt(),
      reads: await tx.reads.nextDueAt(now),
      inboxPending: await tx.inbox.pendingCount(),
    }));
    const next = inboxPending > 0 ? now : Math.min(outbox ?? Infinity, operations ?? Infinity, reads ?? Infinity);
    return Math.max(5, Math.min(next - this.#d.clock(), capMs));
  }
}
