// createEngine: the library's front door. Commands are validated, judged by the rules, computed
// by the machines and written in one SQLite transaction each; nothing here does HTTP (the
// dispatcher does, from the outbox).

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Explanation } from '../../machines/explain.js';
import type { PollPolicy } from '../../machines/operation-machine.js';
import type { JournalRow } from '../store/journal-table.js';
import type { OutboxRow, OutboxState } from '../store/outbox-table.js';
import { DEFAULT_DB_PATH, type OpenDatabaseOptions } from '../store/open-database.js';
import { Store } from '../store/store.js';
import {
  campaignSchema,
  observeSchema,
  parseCommand,
  requestChangeSchema,
  trackOrderSchema,
  type CampaignConfig,
  type ObserveCommand,
  type RequestChangeCommand,
  type TrackOrderCommand,
} from './commands.js';
import { EngineClosedError, isEngineError, type EngineError } from './errors.js';
import { OperationBook } from './operation-book.js';
import { OrderBook, type OrderState } from './order-book.js';

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
  /** Names this process in outbox leases (default host:pid:random). */
  readonly owner?: string;
  readonly sqlite?: OpenDatabaseOptions;
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
  readonly orders: OrderBook;
  readonly operations: OperationBook;
  readonly owner: string;
  readonly clock: () => number;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  #closed = false;
  readonly #ownsStore: boolean;

  constructor(options: EngineOptions = {}) {
    this.clock = options.clock ?? Date.now;
    const configured = (options.campaigns ?? []).map((c) => parseCommand(campaignSchema, 'campaign', c));
    this.#ownsStore = !(options.db instanceof Store);
    this.store = options.db instanceof Store ? options.db : Store.open(options.db ?? DEFAULT_DB_PATH, { ...options.sqlite, now: this.clock() });
    try {
      this.store.write(() => {
        for (const c of configured) this.store.campaigns.upsert({ campaign_id: c.campaignId, business_id: c.businessId, model: c.model });
      });
    } catch (error) {
      if (this.#ownsStore) this.store.close();
      throw error;
    }
    this.campaigns = new Map(
      this.store.campaigns.all().map((r) => [r.campaign_id, { campaignId: r.campaign_id, businessId: r.business_id, model: r.model as CampaignConfig['model'] }]),
    );
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.operations = new OperationBook(this.store, options.pollPolicy);
    this.orders = new OrderBook(this.store, this.campaigns, this.operations, { maxSends: options.maxSends ?? 3 });
  }

  #open(): void {
    if (this.#closed) throw new EngineClosedError();
  }

  /** Starts tracking orders (or observes them, if tracked): all in one transaction, or none. */
  trackOrders(orders: readonly TrackOrderCommand[]): TrackResult {
    this.#open();
    const now = this.clock();
    const parsed = orders.map((o, i) => parseCommand(trackOrderSchema, `order #${i + 1}`, o));
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
    const o = parseCommand(observeSchema, 'observation', observation);
    const now = this.clock();
    return this.store.write(
      () =>
        this.orders.apply(
          o.orderId,
          { type: 'MARKET.OBSERVED', status: o.status, substatus: o.substatus ?? null, observedAt: o.observedAt, source: o.source },
          now,
        ).state,
    );
  }

  /** Queues one seller change; an illegal one throws CHANGE_REFUSED and writes nothing. */
  requestChange(command: RequestChangeCommand): OrderState {
    this.#open();
    const c = parseCommand(requestChangeSchema, 'change request', command);
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
      for (const command of commands) {
        try {
          const c = parseCommand(requestChangeSchema, 'change request', command);
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
  explain(orderId: number, target: { status: string; substatus?: string; realDeliveryDate?: string }): Explanation {
    this.#open();
    return this.orders.explain(orderId, target, this.clock());
  }

  getOrder(orderId: number): OrderState {
    this.#open();
    return this.orders.get(orderId);
  }

  findOrder(orderId: number): OrderState | undefined {
    this.#open();
    return this.orders.find(orderId);
  }

  history(orderId: number): JournalRow[] {
    this.#open();
    return this.orders.history(orderId);
  }

  /** Outbox rows not yet settled (queued, sending, awaiting an operation, uncertain). */
  pendingChanges(limit = 1_000): OutboxRow[] {
    this.#open();
    return this.store.outbox.open(limit);
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

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsStore) this.store.close();
  }
}

export function createEngine(options: EngineOptions = {}): Engine {
  return new Engine(options);
}
