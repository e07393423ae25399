// createEngine: the library's front door. Commands are validated, judged by the rules, computed
// by the machines and written in one SQLite transaction each; nothing here does HTTP (the
// dispatcher does, from the outbox).

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { Explanation } from '../../machines/explain.js';
import type { PollPolicy } from '../../machines/operation-machine.js';
import type { JournalRow } from '../store/journal-table.js';
import type { OutboxRow, OutboxState } from '../store/outbox-table.js';
import { DEFAULT_DB_PATH, type OpenDatabaseOptions } from '../store/open-database.js';
import { Store } from '../store/store.js';
import {
  campaignSchema,
  commandListSchema,
  explainTargetSchema,
  observeSchema,
  orderIdSchema,
  parseCommand,
  requestChangeSchema,
  trackOrderSchema,
  type CampaignConfig,
  type ChangeTarget,
  type ObserveCommand,
  type RequestChangeCommand,
  type TrackOrderCommand,
} from './commands.js';
import { ApiNotConfiguredError, CampaignConflictError, EngineClosedError, isEngineError, SyncPageTokenRepeatedError, type EngineError } from './errors.js';
import { OperationBook } from './operation-book.js';
import { OrderBook, type OrderState } from './order-book.js';
import { createMarketClient, type AuthScheme, type MarketClient } from '../market/client.js';
import { Dispatcher, emptyCounters, type CampaignHalt, type DispatchCounters } from './dispatcher.js';
import { OperationPoller } from './operation-poller.js';
import { OrderSync, syncOptionsSchema, type SyncOptions, type SyncProgress, type SyncResult } from './order-sync.js';
import { MarketCallLog, type CampaignError, type MarketCallCounts } from './market-call-log.js';
import { resolveDispatchSettings, type LimitsOverrides, type LimitsPolicy, type RetryPolicy } from './policies.js';
import { RateLimiter } from './rate-limiter.js';
import { sleep } from './concurrency.js';
import { isMarketError, type AnyMarketError } from '../market/errors.js';

import { OrderInspection, type InspectOptions, type Inspector } from './inspection.js';

const SYNC_RETRY_MS = 5_000;
// run() reads a long sweep this many pages at a time per business, flushing between the parts,
// so a first sync of many thousand orders does not hold every send back until it ends.
const RUN_PAGES_PER_SYNC = 100;

export interface EngineOptions {
  /** A database file path (default `./ym-orders.db`), `:memory:`, or an open Store. */
  readonly db?: string | Store;
  /** Campaigns and their models; merged with the ones earlier runs stored in the database. */
  readonly campaigns?: readonly CampaignConfig[];
  /** Epoch ms; tests pass a fake clock. */
  readonly clock?: () => number;
  /** Sends with an unknown outcome before a change is given up (default 3). */
  readonly maxSends?: number;
  readonly pollPolicy?: Partial<PollPolicy>;
  /**
   * How long after an async change (a LaaS cancellation) is sent a read-back showing "not yet"
   * proves nothing, its operation possibly still running. Default, and the least accepted:
   * pollPolicy.timeoutMs plus the request timeout (at least 10 s); README, "Settings that bear
   * on exactly-once".
   */
  readonly asyncSettleMs?: number;
  /** Names this process in outbox leases (default host:pid:random). */
  readonly owner?: string;
  readonly sqlite?: OpenDatabaseOptions;
  /** The Market Partner API. Without it the engine records and queues but cannot flush or sync. */
  readonly api?: {
    readonly baseUrl: string;
    readonly apiKey: string;
    readonly authScheme?: AuthScheme;
    readonly timeoutMs?: number;
  };
  /** A ready client instead of `api` (tests wrap one to count or fail calls). */
  readonly client?: MarketClient;
  readonly limits?: LimitsOverrides;
  readonly retry?: Partial<RetryPolicy>;
  /** Random numbers for backoff jitter (tests pass a seeded one). */
  readonly random?: () => number;
  /**
   * An XState inspector (e.g. `createWebSocketInspector().inspect` from @statelyai/inspect):
   * every order the engine changes is mirrored into a live actor it can watch.
   */
  readonly inspect?: Inspector;
  readonly inspectOptions?: InspectOptions;
}

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
  readonly counters: DispatchCounters;
  readonly outbox: Record<OutboxState, number>;
  /** Changes not settled yet: queued, sending, awaiting an operation, uncertain. */
  readonly open: number;
  readonly halted: readonly CampaignHalt[];
  /** Market calls answered and failed over this engine's life (sync, sends, read-backs, polls). */
  readonly marketCalls: MarketCallCounts;
  /**
   * The latest failed Market call of each campaign, over this engine's life; a business-wide call
   * (a read or an operation poll) counts for every campaign of the business.
   */
  readonly lastErrors: readonly CampaignError[];
}

export interface RunOptions {
  readonly signal: AbortSignal;
  /** Sync this often (default: no sync). */
  readonly syncIntervalMs?: number;
  /** The longest sleep when there is nothing to do (default 1 s). */
  readonly idleMs?: number;
  /** Pages per business in one sync pass (default 100); a capped sweep goes on after the next flush pass. */
  readonly maxPagesPerSweep?: number;
  readonly onProgress?: (report: FlushReport) => void;
  readonly onSyncProgress?: (progress: SyncProgress) => void;
  /** A sync that failed at the Market (or was led in a circle); the loop goes on and syncs again later. */
  readonly onSyncError?: (error: AnyMarketError | SyncPageTokenRepeatedError) => void;
}

export interface TrackResult {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
}

export interface RequestChangesResult {
  readonly queued: readonly OrderState[];
  /** Refused or invalid requests, each with its typed error; nothing was written for them. */
  readonly refused: readonly { readonly orderId: number | undefined; readonly error: EngineError }[];
}

export interface EngineSummary {
  readonly orders: number;
  readonly byStatus: readonly { status: string; substatus: string | null; change: string; count: number }[];
  readonly outbox: Record<OutboxState, number>;
  readonly operations: Record<string, number>;
}

export class Engine {
  readonly store: Store;
  /** @internal The engine's methods are the API: these write without its validation and transaction. */
  readonly orders: OrderBook;
  /** @internal */
  readonly operations: OperationBook;
  readonly owner: string;
  readonly clock: () => number;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly limits: LimitsPolicy;
  readonly retry: RetryPolicy;
  readonly counters: DispatchCounters = emptyCounters();
  readonly halted = new Map<number, CampaignHalt>();
  readonly #client: MarketClient | undefined;
  readonly #ownsClient: boolean;
  readonly #random: () => number;
  readonly #inspection: OrderInspection | undefined;
  readonly #calls: MarketCallLog;
  #closed = false;
  readonly #ownsStore: boolean;
  /** Redacted from INVALID_COMMAND messages, which name unknown keys as given. */
  readonly #apiKey: string;

  constructor(options: EngineOptions = {}) {
    this.clock = options.clock ?? Date.now;
    // Before anything is opened: a bad or unsafe setting changes nothing.
    const settings = resolveDispatchSettings(options);
    this.#apiKey = options.api?.apiKey ?? '';
    const configured = this.#parse(commandListSchema, 'campaigns', options.campaigns ?? []).map((c) =>
      this.#parse(campaignSchema, 'campaign', c),
    );
    this.#ownsStore = !(options.db instanceof Store);
    this.store = options.db instanceof Store ? options.db : Store.open(options.db ?? DEFAULT_DB_PATH, { ...options.sqlite, now: this.clock() });
    try {
      this.store.write(() => {
        for (const c of configured) {
          const stored = this.store.campaigns.get(c.campaignId);
          const changed = stored !== undefined && (stored.model !== c.model || stored.business_id !== c.businessId);
          if (stored && changed && this.store.campaigns.hasOrders(c.campaignId)) {
            const orders = this.store.campaigns.orderCount(c.campaignId);
            if (stored.model !== c.model) throw new CampaignConflictError(c.campaignId, 'model', stored.model, c.model, orders);
            throw new CampaignConflictError(c.campaignId, 'businessId', stored.business_id, c.businessId, orders);
          }
          this.store.campaigns.upsert({ campaign_id: c.campaignId, business_id: c.businessId, model: c.model });
        }
      });
    } catch (error) {
      if (this.#ownsStore) this.store.close();
      throw error;
    }
    this.campaigns = new Map(
      this.store.campaigns.all().map((r) => [r.campaign_id, { campaignId: r.campaign_id, businessId: r.business_id, model: r.model as CampaignConfig['model'] }]),
    );
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.limits = settings.limits;
    this.retry = settings.retry;
    this.#random = options.random ?? Math.random;
    this.operations = new OperationBook(this.store, settings.pollPolicy);
    this.#inspection = options.inspect ? new OrderInspection(options.inspect, options.inspectOptions) : undefined;
    this.orders = new OrderBook(this.store, this.campaigns, this.operations, {
      maxSends: settings.maxSends,
      asyncSettleMs: settings.asyncSettleMs,
      inspection: this.#inspection,
    });
    this.#ownsClient = options.client === undefined && options.api !== undefined;
    this.#calls = new MarketCallLog(this.campaigns, this.clock);
    const client = options.client ?? (options.api ? createMarketClient(options.api) : undefined);
    this.#client = client ? this.#calls.wrap(client) : undefined;
    this.#timeoutMs = options.api?.timeoutMs ?? 10_000;
  }

  readonly #timeoutMs: number;

  #effects() {
    if (!this.#client) throw new ApiNotConfiguredError();
    const limiter = new RateLimiter(this.store, this.limits, { leaseMs: this.#leaseMs() });
    const common = { store: this.store, orders: this.orders, client: this.#client, limiter, limits: this.limits, clock: this.clock, counters: this.counters };
    return {
      limiter,
      dispatcher: new Dispatcher({ ...common, retry: this.retry, owner: this.owner, leaseMs: this.#leaseMs(), halted: this.halted, random: this.#random }),
      poller: new OperationPoller({ ...common, operations: this.operations }),
      sync: new OrderSync({ ...common, campaigns: this.campaigns }),
    };
  }

  // A lease must outlive the request it covers, or a live send would look orphaned.
  #leaseMs(): number {
    return this.#timeoutMs * 3;
  }

  #report(): FlushReport {
    const outbox = this.store.outbox.counts();
    return {
      counters: structuredClone(this.counters),
      outbox,
      open: outbox.queued + outbox.sending + outbox.awaitingOperation + outbox.uncertain,
      halted: [...this.halted.values()],
      marketCalls: this.#calls.counts(),
      lastErrors: this.#calls.latest(),
    };
  }

  /**
   * One round of the dispatcher: orphans, read-backs, sends, operation polls. Once `signal`
   * aborts no new phase starts, so only requests already in flight (each bounded by the request
   * timeout) are waited for.
   */
  async #pass({ dispatcher, poller }: { dispatcher: Dispatcher; poller: OperationPoller }, signal: AbortSignal | undefined): Promise<number> {
    dispatcher.recoverOrphanedSends();
    let worked = await dispatcher.readBackUncertain();
    if (!signal?.aborted) worked += await dispatcher.sendDue(signal);
    if (!signal?.aborted) worked += await poller.pollDue();
    return worked;
  }

  /**
   * Sends what is due: recovers sends a crash orphaned, reads back unknown outcomes, sends
   * queued changes in batches and polls due operations. With `untilIdle`, repeats (sleeping
   * until the next due time) until every change has settled or `maxWaitMs` passes.
   */
  async flush(options: FlushOptions = {}): Promise<FlushReport> {
    this.#open();
    const effects = this.#effects();
    const deadline = this.clock() + (options.maxWaitMs ?? 60_000);
    for (;;) {
      const worked = await this.#pass(effects, options.signal);
      const report = this.#report();
      options.onProgress?.(report);
      const settled = report.open === 0 || this.#onlyHaltedOpen();
      if (!options.untilIdle || settled || options.signal?.aborted || this.clock() >= deadline) return report;
      if (worked === 0) await sleep(this.#untilNextDue(deadline), options.signal);
    }
  }

  /** Everything still open waits on a campaign whose key the Market refused. */
  #onlyHaltedOpen(): boolean {
    if (this.halted.size === 0) return false;
    return this.store.outbox.open(10_000).every((r) => this.halted.has(r.campaign_id) && r.state === 'queued');
  }

  #untilNextDue(deadline: number): number {
    const now = this.clock();
    const next = Math.min(this.store.outbox.nextDueAt() ?? Infinity, this.store.operations.nextDueAt() ?? Infinity, deadline);
    return Math.max(5, Math.min(next - now, 1_000));
  }

  /** Polls due async operations once. */
  async pollOperations(): Promise<number> {
    this.#open();
    return this.#effects().poller.pollDue();
  }

  /**
   * Reads every order the Market changed since the last sync and observes it. Ends when every
   * sweep is complete, or stopped at its stored cursor (`complete: false`, `stoppedBy`): by the
   * read budget, `maxPagesPerSweep` or `signal`. A page token the Market repeats within a sweep
   * throws SYNC_PAGE_TOKEN_REPEATED.
   */
  async sync(options: SyncOptions = {}): Promise<SyncResult> {
    this.#open();
    this.#parse(syncOptionsSchema, 'sync options', { maxPagesPerSweep: options.maxPagesPerSweep });
    return this.#effects().sync.syncAll(options);
  }

  /**
   * The long-running loop: flush, poll and sync until `signal` aborts. The sync read in flight is
   * abandoned; a send batch in flight finishes (within the request timeout) and is persisted
   * before it returns.
   */
  async run(options: RunOptions): Promise<FlushReport> {
    this.#open();
    const { signal } = options;
    this.#parse(syncOptionsSchema, 'run options', { maxPagesPerSweep: options.maxPagesPerSweep });
    const effects = this.#effects();
    const idleMs = options.idleMs ?? 1_000;
    let nextSync = this.clock();
    while (!signal.aborted) {
      if (options.syncIntervalMs !== undefined && this.clock() >= nextSync) {
        try {
          const synced = await effects.sync.syncAll({
            signal,
            maxPagesPerSweep: options.maxPagesPerSweep ?? RUN_PAGES_PER_SYNC,
            ...(options.onSyncProgress ? { onProgress: options.onSyncProgress } : {}),
          });
          // A sweep cut at the page cap goes on right after this pass; a finished one waits.
          nextSync = synced.stoppedBy === 'pageCap' ? this.clock() : Math.max(this.clock() + options.syncIntervalMs, synced.resumeAt ?? 0);
        } catch (error) {
          if (!isMarketError(error) && !(error instanceof SyncPageTokenRepeatedError)) throw error;
          options.onSyncError?.(error);
          nextSync = this.clock() + Math.min(options.syncIntervalMs, SYNC_RETRY_MS);
        }
      }
      if (signal.aborted) break;
      const worked = await this.#pass(effects, signal);
      options.onProgress?.(this.#report());
      const syncDue = options.syncIntervalMs !== undefined && this.clock() >= nextSync;
      if (worked === 0 && !syncDue) await sleep(Math.min(this.#untilNextDue(this.clock() + idleMs), idleMs), signal);
    }
    return this.#report();
  }

  stats(): FlushReport {
    this.#open();
    return this.#report();
  }

  #open(): void {
    if (this.#closed) throw new EngineClosedError();
  }

  #parse<S extends z.ZodType>(schema: S, command: string, input: unknown): z.output<S> {
    return parseCommand(schema, command, input, this.#apiKey);
  }

  /** Starts tracking orders (or observes them, if tracked): all in one transaction, or none. */
  trackOrders(orders: readonly TrackOrderCommand[]): TrackResult {
    this.#open();
    const now = this.clock();
    const parsed = this.#parse(commandListSchema, 'orders', orders).map((o, i) => this.#parse(trackOrderSchema, `order #${i + 1}`, o));
    return this.store.write(() => {
      let created = 0;
      let updated = 0;
      for (const o of parsed) {
        const result = this.orders.track({ ...o, observedAt: o.observedAt ?? now }, 'import', now);
        if (result === 'created') created++;
        else if (result.changed) updated++;
      }
      return { created, updated, unchanged: parsed.length - created - updated };
    });
  }

  /** Tells the engine what the Market shows (e.g. a push notification); older news changes nothing. */
  observe(observation: ObserveCommand): OrderState {
    this.#open();
    const o = this.#parse(observeSchema, 'observation', observation);
    const now = this.clock();
    return this.store.write(
      () =>
        this.orders.apply(
          o.orderId,
          {
            type: 'MARKET.OBSERVED',
            status: o.status,
            substatus: o.substatus ?? null,
            observedAt: o.observedAt,
            source: o.source,
            ...(o.cancelRequested !== undefined ? { cancelRequested: o.cancelRequested } : {}),
          },
          now,
        ).state,
    );
  }

  /** Queues one seller change; an illegal one throws CHANGE_REFUSED and writes nothing. */
  requestChange(command: RequestChangeCommand): OrderState {
    this.#open();
    const c = this.#parse(requestChangeSchema, 'change request', command);
    const now = this.clock();
    const { orderId, expectedRowVersion, ...target } = c;
    return this.store.write(() => this.orders.request(orderId, target, now, { expectedRowVersion }).state);
  }

  /**
   * Queues many changes in one transaction. Each request is judged on its own: refused ones are
   * returned with their errors and write nothing; with `atomic`, the first refusal throws and
   * nothing at all is written.
   */
  requestChanges(commands: readonly RequestChangeCommand[], options: { atomic?: boolean } = {}): RequestChangesResult {
    this.#open();
    const now = this.clock();
    return this.store.write(() => {
      const queued: OrderState[] = [];
      const refused: { orderId: number | undefined; error: EngineError }[] = [];
      for (const command of this.#parse(commandListSchema, 'change requests', commands) as RequestChangeCommand[]) {
        try {
          const c = this.#parse(requestChangeSchema, 'change request', command);
          const { orderId, expectedRowVersion, ...target } = c;
          queued.push(this.orders.request(orderId, target, now, { expectedRowVersion }).state);
        } catch (error) {
          if (options.atomic || !isEngineError(error)) throw error;
          const orderId = typeof command?.orderId === 'number' ? command.orderId : undefined;
          refused.push({ orderId, error });
        }
      }
      return { queued, refused };
    });
  }

  /** Whether a change is allowed now, and if not every reason why; writes nothing. */
  explain(orderId: number, target: ChangeTarget): Explanation {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    const t = this.#parse(explainTargetSchema, 'target', target);
    return this.store.read(() => this.orders.explain(id, t, this.clock()));
  }

  getOrder(orderId: number): OrderState {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    return this.store.read(() => this.orders.get(id));
  }

  findOrder(orderId: number): OrderState | undefined {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    return this.store.read(() => this.orders.find(id));
  }

  history(orderId: number): JournalRow[] {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    return this.store.read(() => this.orders.history(id));
  }

  /**
   * Deadlines kept as rows, the soonest first: e.g. `dbs.cancellationAnswer` per DBS order whose
   * buyer asked to cancel (answer by `dueAt`, or the Market cancels it).
   */
  timers(options: { kind?: string; dueBefore?: number } = {}): { kind: string; orderId: number; dueAt: number }[] {
    this.#open();
    return this.store.read(() =>
      this.store.timers.list(options.kind, options.dueBefore ?? Number.MAX_SAFE_INTEGER).map((t) => ({ kind: t.kind, orderId: Number(t.ref), dueAt: t.due_at })),
    );
  }

  /** Outbox rows not yet settled (queued, sending, awaiting an operation, uncertain). */
  pendingChanges(limit = 1_000): OutboxRow[] {
    this.#open();
    return this.store.read(() => this.store.outbox.open(limit));
  }

  summary(): EngineSummary {
    this.#open();
    const byStatus = this.store.orders.countByStatus().map((r) => ({ status: r.status, substatus: r.substatus, change: r.change_state, count: r.n }));
    return {
      orders: byStatus.reduce((n, r) => n + r.count, 0),
      byStatus,
      outbox: this.store.outbox.counts(),
      operations: this.store.operations.counts(),
    };
  }

  /** Closes the database at once; the returned promise settles when the HTTP pool is closed too. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#inspection?.stop();
    if (this.#ownsStore) this.store.close();
    return this.#ownsClient && this.#client ? this.#client.close() : Promise.resolve();
  }
}

export function createEngine(options: EngineOptions = {}): Engine {
  return new Engine(options);
}
