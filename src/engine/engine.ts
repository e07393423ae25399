// createEngine: the library's front door. Commands are validated, judged by the rules, computed
// by the machines and written in one store transaction each; queries read through the store
// port. Nothing here does HTTP: the runner (runner.ts) owns the loop that talks to the Market.

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { Explanation } from '../../machines/explain.js';
import type { ChainExplanation } from '../../machines/chain-plan.js';
import type { PollPolicy } from '../../machines/operation-machine.js';
import type { JournalRow, TransitionCount } from '../store/journal.js';
import type { OutboxRow, OutboxState } from '../store/outbox.js';
import { openStore } from '../store/open-store.js';
import type { Store, StoreTx } from '../store/port.js';
import type { OrderListFilter, PostgresOptions, SqliteOptions } from '../store/index.js';
import {
  answerCancellationSchema,
  campaignSchema,
  commandListSchema,
  explainTargetSchema,
  observeSchema,
  openCancellationsSchema,
  orderIdSchema,
  parseCommand,
  requestChangeSchema,
  settledChangesSchema,
  trackOrderSchema,
  type AnswerCancellationCommand,
  type CampaignConfig,
  type ChangeTarget,
  type ObserveCommand,
  type OpenCancellationsQuery,
  type RequestChangeCommand,
  type SettledChangesQuery,
  type TrackOrderCommand,
} from './commands.js';
import { ApiNotConfiguredError, CampaignConflictError, EngineClosedError, isEngineError, type EngineError } from './errors.js';
import { OperationBook } from './operation-book.js';
import { OrderBook, TIMER_KINDS, type OrderState } from './order-book.js';
import type { AnswerOutcome, PendingAnswer } from '../../machines/order-machine.js';
import { answerDueCancellations, resolveCancellationPolicy, type CancellationPolicy, type CancellationPolicyOptions } from './cancellation-policy.js';
import { createMarketClient, type AuthScheme, type MarketClient } from '../market/client.js';
import { CounterBook } from './counter-book.js';
import { MeteredMarket } from './metered-market.js';
import { readReport, Runner, type FlushOptions, type FlushReport, type RunOptions } from './runner.js';
import { syncOptionsSchema, type SyncOptions, type SyncResult } from './order-sync.js';
import { resolveDispatchSettings, type LimitsOverrides, type LimitsPolicy, type RetryPolicy } from './policies.js';
import { RateLimiter } from './rate-limiter.js';
import { OrderInspection, type InspectOptions, type Inspector } from './inspection.js';
import { inLockOrder } from './concurrency.js';
import { listOrders, type OrderListPage, type OrderListPageRequest } from './order-listing.js';
import { NotificationReceiver, type NotificationAnswer, type NotificationStats } from '../notifications/receiver.js';

export type { FlushOptions, FlushReport, RunOptions } from './runner.js';

export interface EngineOptions {
  /** A database file path (default `./ym-orders.db`), `:memory:`, a postgres:// URL, or a Store (e.g. `SqliteStore.open(path)`), which the engine does not close. */
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
  /** Names this process in outbox leases and its counters (default host:pid:random). */
  readonly owner?: string;
  /** SQLite settings, for a `db` given as a path. */
  readonly sqlite?: Omit<SqliteOptions, 'now'>;
  /**
   * PostgreSQL settings, for a `db` given as a postgres:// URL: the schema (default `ym_orders`),
   * the pool's size (10), how long to wait for a connection and for a lock (10 s each), and for a statement's answer (60 s).
   */
  readonly postgres?: Pick<PostgresOptions, 'schema' | 'poolSize' | 'connectTimeoutMs' | 'lockTimeoutMs' | 'queryTimeoutMs'>;
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
  /**
   * DBS buyers' cancellation requests: `report` (default) only lists them; `autoAccept` accepts
   * each one whose 48 h deadline is within `acceptBeforeMs` (default 2 h), in the runner's rounds.
   */
  readonly cancellationPolicy?: CancellationPolicyOptions;
  /**
   * The push receiver behind handleNotification(): the name and version its 200 answers carry
   * (default `ym-orders`, `1`) and the largest body it takes (default 256 KiB).
   */
  readonly notifications?: { readonly name?: string; readonly version?: string; readonly maxBodyBytes?: number };
}

/** An open DBS cancellation request, as openCancellations() lists it. */
export interface OpenCancellation {
  readonly orderId: number;
  readonly campaignId: number;
  readonly status: string;
  readonly substatus: string | null;
  /** When the Market first reported the request (epoch ms). */
  readonly requestedAt: number;
  /** Answer by then, or the Market cancels the order (48 h after requestedAt). */
  readonly dueAt: number;
  /** dueAt minus now; negative once the deadline has passed and the Market has not yet said so. */
  readonly timeLeftMs: number;
  /** The answer on its way, if any (`answerState` says where it is). */
  readonly answer: PendingAnswer | null;
  readonly answerState: OrderState['cancellation'];
  /** How the last answer ended, e.g. one the Market refused. */
  readonly lastAnswer: AnswerOutcome | null;
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

/** What the engine was opened with, checked and resolved (see createEngine). */
interface EngineParts {
  readonly store: Store;
  readonly ownsStore: boolean;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly settings: ReturnType<typeof resolveDispatchSettings>;
  readonly cancellationPolicy: CancellationPolicy;
  readonly apiKey: string;
}

export class Engine {
  readonly store: Store;
  /** @internal The engine's methods are the API: these write without its validation and transaction. */
  readonly orders: OrderBook;
  readonly owner: string;
  readonly clock: () => number;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly limits: LimitsPolicy;
  readonly retry: RetryPolicy;
  readonly #counters: CounterBook;
  readonly #client: MarketClient | undefined;
  readonly #ownsClient: boolean;
  readonly #runner: Runner | undefined;
  readonly #inspection: OrderInspection | undefined;
  readonly #receiver: NotificationReceiver;
  readonly #ownsStore: boolean;
  /** Redacted from INVALID_COMMAND messages, which name unknown keys as given. */
  readonly #apiKey: string;
  #closed = false;

  /** @internal Open one with {@link createEngine}. */
  constructor(options: EngineOptions, parts: EngineParts) {
    const { settings } = parts;
    this.clock = options.clock ?? Date.now;
    this.store = parts.store;
    this.#ownsStore = parts.ownsStore;
    this.#apiKey = parts.apiKey;
    this.campaigns = parts.campaigns;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.limits = settings.limits;
    this.retry = settings.retry;
    this.#counters = new CounterBook(this.owner);
    const operations = new OperationBook(settings.pollPolicy);
    this.#inspection = options.inspect ? new OrderInspection(options.inspect, options.inspectOptions) : undefined;
    this.orders = new OrderBook(this.campaigns, operations, {
      maxSends: settings.maxSends,
      asyncSettleMs: settings.asyncSettleMs,
      cancellationPolicy: parts.cancellationPolicy,
      inspection: this.#inspection,
    });
    this.#receiver = new NotificationReceiver({ store: this.store, campaigns: this.campaigns, clock: this.clock, owner: this.owner, ...options.notifications });
    this.#ownsClient = options.client === undefined && options.api !== undefined;
    this.#client = options.client ?? (options.api ? createMarketClient(options.api) : undefined);
    if (this.#client) {
      // A lease must outlive the request it covers, or a live send would look orphaned.
      const leaseMs = (options.api?.timeoutMs ?? 10_000) * 3;
      const limiter = new RateLimiter(this.store, this.limits, { leaseMs });
      const market = new MeteredMarket({ client: this.#client, limiter, counters: this.#counters, campaigns: this.campaigns, clock: this.clock });
      this.#runner = new Runner({
        store: this.store,
        orders: this.orders,
        operations,
        market,
        counters: this.#counters,
        campaigns: this.campaigns,
        limits: this.limits,
        retry: this.retry,
        owner: this.owner,
        clock: this.clock,
        leaseMs,
        random: options.random ?? Math.random,
      });
    }
  }

  #open(): void {
    if (this.#closed) throw new EngineClosedError();
  }

  #runnerOrThrow(): Runner {
    this.#open();
    if (!this.#runner) throw new ApiNotConfiguredError();
    return this.#runner;
  }

  #parse<S extends z.ZodType>(schema: S, command: string, input: unknown): z.output<S> {
    return parseCommand(schema, command, input, this.#apiKey);
  }

  /** Checks the engine is open, then reads in one consistent view. */
  async #read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.#open();
    return this.store.read(fn);
  }

  async #write<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.#open();
    return this.store.transaction(fn);
  }

  /**
   * Sends what is due: recovers sends a crash orphaned, reads back unknown outcomes, sends
   * queued changes in batches and polls due operations. With `untilIdle`, repeats (sleeping
   * until the next due time) until every change has settled or `maxWaitMs` passes.
   */
  async flush(options: FlushOptions = {}): Promise<FlushReport> {
    return this.#runnerOrThrow().flush(options);
  }

  /** Polls due async operations once. */
  async pollOperations(): Promise<number> {
    return this.#runnerOrThrow().pollOperations();
  }

  /**
   * Reads every order the Market changed since the last sync and observes it. Ends when every
   * sweep is complete, or stopped at its stored cursor (`complete: false`, `stoppedBy`): by the
   * read budget, `maxPagesPerSweep` or `signal`. A page token the Market repeats within a sweep
   * throws SYNC_PAGE_TOKEN_REPEATED.
   */
  async sync(options: SyncOptions = {}): Promise<SyncResult> {
    const runner = this.#runnerOrThrow();
    this.#parse(syncOptionsSchema, 'sync options', { maxPagesPerSweep: options.maxPagesPerSweep });
    return runner.sync(options);
  }

  /**
   * The long-running loop: flush, poll and sync until `signal` aborts. The sync read in flight is
   * abandoned; a send batch in flight finishes (within the request timeout) and is persisted
   * before it returns.
   */
  async run(options: RunOptions): Promise<FlushReport> {
    const runner = this.#runnerOrThrow();
    this.#parse(syncOptionsSchema, 'run options', { maxPagesPerSweep: options.maxPagesPerSweep });
    return runner.run(options);
  }

  /**
   * Answers one push notification from the Market (POST /notification): the body as received
   * (text, bytes or parsed JSON) in, the HTTP status and JSON body to send back out. A 200 means
   * the notification is stored (with the read it asks for), a duplicate, or a type the engine
   * does not act on; 400 WRONG_EVENT_FORMAT a body that does not match the spec (the Market does
   * not send it again); 500 our own failure (the store), which the Market retries. It never
   * calls the Market and never rejects; what a notification implies is done by flush() or run(),
   * whose running loop it wakes.
   */
  async handleNotification(body: unknown): Promise<NotificationAnswer> {
    this.#open();
    const answer = await this.#receiver.handle(body);
    if (answer.outcome === 'stored') this.#runner?.wake();
    return answer;
  }

  /** What handleNotification() answered since the engine opened, by outcome (invalid bodies are counted only here). */
  notificationStats(): NotificationStats {
    return this.#receiver.stats();
  }

  /** Applies stored ORDER_STATUS_UPDATED notifications (flush and run do it each round); the rows applied. */
  async processInbox(): Promise<number> {
    return this.#runnerOrThrow().processInbox();
  }

  /** Reads the orders notifications asked about (getBusinessOrders, ≤ 50 ids a call, within the budget) and takes them into the book; the orders read. */
  async readOrders(signal?: AbortSignal): Promise<number> {
    return this.#runnerOrThrow().readOrders(signal);
  }

  /** Rings a running run() loop so it looks for work now (handleNotification does it for what it stores). */
  wake(): void {
    this.#runner?.wake();
  }

  /** Counters, outbox counts, halts and Market calls, as flush reports them. */
  async stats(): Promise<FlushReport> {
    this.#open();
    return this.#runner ? this.#runner.report() : readReport(this.store, this.#counters, [], this.clock());
  }

  /** Starts tracking orders (or observes them, if tracked): all in one transaction, or none. */
  async trackOrders(orders: readonly TrackOrderCommand[]): Promise<TrackResult> {
    this.#open();
    const now = this.clock();
    const parsed = this.#parse(commandListSchema, 'orders', orders).map((o, i) => this.#parse(trackOrderSchema, `order #${i + 1}`, o));
    return this.#write(async (tx) => {
      let created = 0;
      let updated = 0;
      for (const o of inLockOrder(parsed, (p) => p.orderId)) {
        const result = await this.orders.track(tx, { ...o, observedAt: o.observedAt ?? now }, 'import', now);
        if (result === 'created') created++;
        else if (result.changed) updated++;
      }
      return { created, updated, unchanged: parsed.length - created - updated };
    });
  }

  /** Tells the engine what the Market shows (e.g. a push notification); older news changes nothing. */
  async observe(observation: ObserveCommand): Promise<OrderState> {
    this.#open();
    const o = this.#parse(observeSchema, 'observation', observation);
    const now = this.clock();
    const event = {
      type: 'MARKET.OBSERVED',
      status: o.status,
      substatus: o.substatus ?? null,
      observedAt: o.observedAt,
      source: o.source,
      ...(o.cancelRequested !== undefined ? { cancelRequested: o.cancelRequested } : {}),
    } as const;
    return this.#write(async (tx) => (await this.orders.apply(tx, o.orderId, event, now)).state);
  }

  /** Queues one seller change; an illegal one rejects with CHANGE_REFUSED and writes nothing. */
  async requestChange(command: RequestChangeCommand): Promise<OrderState> {
    this.#open();
    const { orderId, expectedRowVersion, ...target } = this.#parse(requestChangeSchema, 'change request', command);
    const now = this.clock();
    return this.#write(async (tx) => (await this.orders.request(tx, orderId, target, now, { expectedRowVersion })).state);
  }

  /**
   * Queues many changes in one transaction. Each request is judged on its own: refused ones are
   * returned with their errors and write nothing; with `atomic`, the first refusal rejects and
   * nothing at all is written.
   */
  async requestChanges(commands: readonly RequestChangeCommand[], options: { atomic?: boolean } = {}): Promise<RequestChangesResult> {
    this.#open();
    const now = this.clock();
    const list = this.#parse(commandListSchema, 'change requests', commands) as RequestChangeCommand[];
    const orderIdOf = (i: number): number => (typeof list[i]?.orderId === 'number' ? list[i].orderId : 0);
    return this.#write(async (tx) => {
      // Judged in lock order, reported in the caller's order.
      const outcomes: ({ queued: OrderState } | { refused: { orderId: number | undefined; error: EngineError } })[] = [];
      for (const i of inLockOrder(list.map((_, i) => i), orderIdOf)) {
        const command = list[i];
        try {
          const { orderId, expectedRowVersion, ...target } = this.#parse(requestChangeSchema, 'change request', command);
          outcomes[i] = { queued: (await this.orders.request(tx, orderId, target, now, { expectedRowVersion })).state };
        } catch (error) {
          if (options.atomic || !isEngineError(error)) throw error;
          outcomes[i] = { refused: { orderId: typeof command?.orderId === 'number' ? command.orderId : undefined, error } };
        }
      }
      return {
        queued: outcomes.flatMap((o) => ('queued' in o ? [o.queued] : [])),
        refused: outcomes.flatMap((o) => ('refused' in o ? [o.refused] : [])),
      };
    });
  }

  /**
   * Queues the answer to a DBS buyer's cancellation request (accept, or refuse with a reason:
   * ORDER_DELIVERED or ORDER_IN_DELIVERY); the next flush or run sends it. A refused answer
   * rejects with CANCELLATION_ANSWER_REFUSED and its blockers, and writes nothing.
   */
  async answerCancellation(orderId: number, answer: AnswerCancellationCommand): Promise<OrderState> {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    const { expectedRowVersion, ...a } = this.#parse(answerCancellationSchema, 'cancellation answer', answer);
    const now = this.clock();
    return this.#write(async (tx) => (await this.orders.answerCancellation(tx, id, a, now, { expectedRowVersion })).state);
  }

  /** Open DBS cancellation requests, the soonest deadline first, with the time left and any answer on its way. */
  async openCancellations(query: OpenCancellationsQuery = {}): Promise<OpenCancellation[]> {
    this.#open();
    const { limit } = this.#parse(openCancellationsSchema, 'open cancellations query', query);
    const now = this.clock();
    return this.#read(async (tx) => {
      const open: OpenCancellation[] = [];
      for (const timer of await tx.timers.list(TIMER_KINDS.dbsCancellationAnswer, Number.MAX_SAFE_INTEGER)) {
        if (open.length >= limit) break;
        const order = await this.orders.find(tx, Number(timer.ref));
        if (!order || order.cancellationRequestedAt === null) continue;
        open.push({
          orderId: order.orderId,
          campaignId: order.campaignId,
          status: order.status,
          substatus: order.substatus,
          requestedAt: order.cancellationRequestedAt,
          dueAt: timer.due_at,
          timeLeftMs: timer.due_at - now,
          answer: order.cancellationAnswer,
          answerState: order.cancellation,
          lastAnswer: order.lastCancellationAnswer,
        });
      }
      return open;
    });
  }

  /**
   * What the cancellation policy does in a round, once: in autoAccept mode, queues an accept for
   * each open request whose deadline is near; returns how many (report mode: 0).
   */
  async answerDueCancellations(): Promise<number> {
    this.#open();
    return answerDueCancellations({ store: this.store, orders: this.orders, clock: this.clock });
  }

  /**
   * Whether a change is allowed now, and if not every reason why; writes nothing. With
   * `via: 'chain'`, explainChain's answer: the plan to the target, each step judged.
   */
  async explain(orderId: number, target: ChangeTarget & { via: 'chain' }): Promise<ChainExplanation>;
  async explain(orderId: number, target: ChangeTarget & { via?: 'step' | undefined }): Promise<Explanation>;
  async explain(orderId: number, target: ChangeTarget): Promise<Explanation | ChainExplanation>;
  async explain(orderId: number, target: ChangeTarget): Promise<Explanation | ChainExplanation> {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    const t = this.#parse(explainTargetSchema, 'target', target);
    return this.#read((tx) => this.orders.explain(tx, id, t, this.clock()));
  }

  /**
   * Stops the order's multi-step change: a step not yet sent is superseded at once; a step in
   * flight ends as it will, and no step follows it. CHAIN_NOT_ACTIVE when none is on its way.
   */
  async stopChain(orderId: number, options: { expectedRowVersion?: number } = {}): Promise<OrderState> {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    const now = this.clock();
    return this.#write(async (tx) => (await this.orders.stopChain(tx, id, now, { expectedRowVersion: options.expectedRowVersion })).state);
  }

  /**
   * The orders matching `filter` (campaign, status, change state, stuck since), a page at a time
   * by order id: `page.after` is the last id of the page before, `nextAfter` the next page's.
   */
  async listOrders(filter: OrderListFilter, page?: OrderListPageRequest): Promise<OrderListPage> {
    this.#open();
    return listOrders(this.store, filter, page);
  }

  async getOrder(orderId: number): Promise<OrderState> {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    return this.#read((tx) => this.orders.get(tx, id));
  }

  async findOrder(orderId: number): Promise<OrderState | undefined> {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    return this.#read((tx) => this.orders.find(tx, id));
  }

  async history(orderId: number): Promise<JournalRow[]> {
    this.#open();
    const id = this.#parse(orderIdSchema, 'order id', orderId);
    return this.#read((tx) => this.orders.history(tx, id));
  }

  /**
   * Deadlines kept as rows, the soonest first: e.g. `dbs.cancellationAnswer` per DBS order whose
   * buyer asked to cancel (answer by `dueAt`, or the Market cancels it).
   */
  async timers(options: { kind?: string; dueBefore?: number } = {}): Promise<{ kind: string; orderId: number; dueAt: number }[]> {
    const rows = await this.#read((tx) => tx.timers.list(options.kind, options.dueBefore ?? Number.MAX_SAFE_INTEGER));
    return rows.map((t) => ({ kind: t.kind, orderId: Number(t.ref), dueAt: t.due_at }));
  }

  /** Outbox rows not yet settled (queued, sending, awaiting an operation, uncertain). */
  async pendingChanges(limit = 1_000): Promise<OutboxRow[]> {
    return this.#read((tx) => tx.outbox.open(limit));
  }

  /** Changes that settled in `state` at or after `since` (epoch ms, engine clock), the oldest first. */
  async settledChanges(query: SettledChangesQuery): Promise<OutboxRow[]> {
    this.#open();
    const q = this.#parse(settledChangesSchema, 'settled changes query', query);
    return this.#read((tx) => tx.outbox.settledSince(q.state, q.since, q.limit));
  }

  /** How often the journal saw orders move between statuses, and whether the seller or the Market moved them. */
  async transitionCounts(): Promise<TransitionCount[]> {
    return this.#read((tx) => tx.journal.transitionCounts());
  }

  async summary(): Promise<EngineSummary> {
    return this.#read(async (tx) => {
      const byStatus = (await tx.orders.countByStatus()).map((r) => ({ status: r.status, substatus: r.substatus, change: r.change_state, count: r.n }));
      return {
        orders: byStatus.reduce((n, r) => n + r.count, 0),
        byStatus,
        outbox: await tx.outbox.counts(),
        operations: await tx.operations.counts(),
      };
    });
  }

  /** Closes the store (if the engine opened it) and the HTTP pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#inspection?.stop();
    if (this.#ownsStore) await this.store.close();
    if (this.#ownsClient && this.#client) await this.#client.close();
  }
}

/**
 * Opens an engine: checks every option before anything is opened (a bad or unsafe setting changes
 * nothing), opens the store, and merges the configured campaigns with the stored ones, refusing to
 * move a campaign that has orders to another model or business.
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const clock = options.clock ?? Date.now;
  const settings = resolveDispatchSettings(options);
  const cancellationPolicy = resolveCancellationPolicy(options.cancellationPolicy);
  const apiKey = options.api?.apiKey ?? '';
  const configured = parseCommand(commandListSchema, 'campaigns', options.campaigns ?? [], apiKey).map((c) => parseCommand(campaignSchema, 'campaign', c, apiKey));
  const { store, owned } = await openStore(options.db, { ...(options.sqlite ? { sqlite: options.sqlite } : {}), ...(options.postgres ? { postgres: options.postgres } : {}), now: clock() });
  try {
    const campaigns = await mergeCampaigns(store, configured);
    return new Engine(options, { store, ownsStore: owned, campaigns, settings, cancellationPolicy, apiKey });
  } catch (error) {
    if (owned) await store.close();
    throw error;
  }
}

/** The stored campaigns with the configured ones merged in; writes only when something changed. */
async function mergeCampaigns(store: Store, configured: readonly CampaignConfig[]): Promise<ReadonlyMap<number, CampaignConfig>> {
  const same = (stored: { business_id: number; model: string } | undefined, c: CampaignConfig) => stored !== undefined && stored.model === c.model && stored.business_id === c.businessId;
  const stored = new Map((await store.read((tx) => tx.campaigns.all())).map((r) => [r.campaign_id, r]));
  if (configured.some((c) => !same(stored.get(c.campaignId), c))) {
    await store.transaction(async (tx) => {
      for (const c of configured) {
        const row = await tx.campaigns.get(c.campaignId);
        if (same(row, c)) continue;
        if (row && (await tx.campaigns.hasOrders(c.campaignId))) {
          const orders = await tx.campaigns.orderCount(c.campaignId);
          if (row.model !== c.model) throw new CampaignConflictError(c.campaignId, 'model', row.model, c.model, orders);
          throw new CampaignConflictError(c.campaignId, 'businessId', row.business_id, c.businessId, orders);
        }
        await tx.campaigns.upsert({ campaign_id: c.campaignId, business_id: c.businessId, model: c.model });
      }
    });
  }
  const all = await store.read((tx) => tx.campaigns.all());
  return new Map(all.map((r) => [r.campaign_id, { campaignId: r.campaign_id, businessId: r.business_id, model: r.model as CampaignConfig['model'] }]));
}
