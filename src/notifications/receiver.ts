// The push receiver: one notification in, one answer out. It validates the body, writes the
// inbox row (and, for an order that changed, a read request) in a store transaction, and
// answers 200 only once that committed (acknowledge only what is stored); notifications that
// arrive together share one transaction (group commit). It never calls the
// Market: what a notification implies is done later from the rows (the inbox processor applies
// ORDER_STATUS_UPDATED as an observation, the reader fetches the orders asked for).
//
// Answers: 200 for a stored, repeated or ignored notification and for PING; 400 WRONG_EVENT_FORMAT
// for a body that does not match the spec (the Market does not retry those); 500 UNKNOWN only for
// our own failure (the store), which the Market retries.

import { createHash } from 'node:crypto';
import type { CampaignConfig } from '../engine/commands.js';
import { isYmOrdersError } from '../errors.js';
import type { InboxState } from '../store/inbox.js';
import type { Store, StoreTx } from '../store/port.js';
import { inLockOrder } from '../engine/concurrency.js';
import { NotificationError, NotificationOptionError } from './errors.js';
import {
  eventTimeOf,
  NOTIFICATION_LIMITS,
  parseNotification,
  readNotificationBody,
  type KnownNotification,
  type NotificationType,
  type ParsedNotification,
  type SendNotificationErrorResponse,
  type SendNotificationResponse,
} from './schemas.js';

/** Types that say an order changed in a way a read settles (getBusinessOrders by orderIds). */
export const READ_REQUESTING_TYPES = ['ORDER_CREATED', 'ORDER_CANCELLED', 'ORDER_CANCELLATION_REQUEST', 'ORDER_UPDATED'] as const satisfies readonly NotificationType[];

export const NOTIFICATION_OUTCOMES = ['stored', 'duplicate', 'ignored', 'ping', 'invalid', 'failed'] as const;
export type NotificationOutcome = (typeof NOTIFICATION_OUTCOMES)[number];

/** The counters the receiver adds in its transaction, under its owner name. */
export const NOTIFICATION_COUNTERS = {
  received: 'notifications.received',
  duplicates: 'notifications.duplicates',
  ignored: 'notifications.ignored',
} as const;

export interface NotificationAnswer {
  readonly status: 200 | 400 | 500;
  readonly body: SendNotificationResponse | SendNotificationErrorResponse;
  readonly outcome: NotificationOutcome;
  /** notificationType, once the body was valid. */
  readonly type?: string;
  /** The code of our own failure (a 500): for the log; the answer itself does not carry it. */
  readonly errorCode?: string;
}

export interface NotificationReceiverOptions {
  readonly store: Store;
  readonly campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly clock: () => number;
  /** The integration's name in 200 answers (1..100 characters). Default 'ym-orders'. */
  readonly name?: string;
  /** Whose counters the receiver adds to (CountersPort): the engine's owner, so processes never share a counter row. Default 'receiver'. */
  readonly owner?: string;
  /** The integration's version in 200 answers (1..100 characters). */
  readonly version?: string;
  /** The largest body accepted, in bytes (default 256 KiB). */
  readonly maxBodyBytes?: number;
}

export type NotificationStats = Record<NotificationOutcome, number>;

const DEFAULT_NAME = 'ym-orders';
const DEFAULT_VERSION = '1';
const DEFAULT_OWNER = 'receiver';

function checkLabel(option: string, value: string): string {
  if (value.length < 1 || value.length > 100) throw new NotificationOptionError(option, 'a string of 1 to 100 characters (SendNotificationResponse)');
  return value;
}

/** JSON with object keys sorted at every level: the same notification always has the same text, whatever order its keys came in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The inbox row's facts of a validated notification. */
interface Facts {
  readonly type: string;
  readonly orderId: number | null;
  readonly campaignId: number | null;
  readonly eventAt: number | null;
  readonly body: string;
  readonly dedupeKey: string;
}

function factsOf(parsed: ParsedNotification): Facts {
  const body = canonicalJson(parsed.notification);
  if (!parsed.known) {
    return { type: parsed.notification.notificationType, orderId: null, campaignId: null, eventAt: null, body, dedupeKey: sha256(canonicalJson(parsed.raw)) };
  }
  const n: KnownNotification = parsed.notification;
  const time = eventTimeOf(n);
  return {
    type: n.notificationType,
    orderId: 'orderId' in n ? n.orderId : null,
    campaignId: 'campaignId' in n ? n.campaignId : null,
    eventAt: time === undefined ? null : Date.parse(time),
    body,
    dedupeKey: sha256(body),
  };
}

type WriteOutcome = 'stored' | 'duplicate' | 'ignored';

/** A notification waiting for the transaction that stores it. */
interface Waiting {
  readonly facts: Facts;
  readonly now: number;
  readonly resolve: (outcome: WriteOutcome) => void;
  readonly reject: (error: unknown) => void;
}

/** Notifications one transaction stores at most: bounds how long it holds the write lock. */
const MAX_BATCH = 500;

function settle(batch: readonly Waiting[], outcomes: readonly WriteOutcome[]): void {
  batch.forEach((w, i) => w.resolve(outcomes[i]!));
}

function isReadRequesting(type: string): boolean {
  return (READ_REQUESTING_TYPES as readonly string[]).includes(type);
}

export class NotificationReceiver {
  readonly maxBodyBytes: number;
  readonly #db: Store;
  readonly #campaigns: ReadonlyMap<number, CampaignConfig>;
  readonly #clock: () => number;
  readonly #name: string;
  readonly #version: string;
  readonly #owner: string;
  readonly #stats: NotificationStats = { stored: 0, duplicate: 0, ignored: 0, ping: 0, invalid: 0, failed: 0 };
  /** Notifications waiting for the next transaction, and whether one is being written now (see #write). */
  readonly #waiting: Waiting[] = [];
  #writing = false;

  constructor(options: NotificationReceiverOptions) {
    const maxBodyBytes = options.maxBodyBytes ?? NOTIFICATION_LIMITS.maxBodyBytes;
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) throw new NotificationOptionError('maxBodyBytes', 'a positive integer (bytes)');
    this.maxBodyBytes = maxBodyBytes;
    this.#db = options.store;
    this.#campaigns = options.campaigns;
    this.#clock = options.clock;
    this.#name = checkLabel('name', options.name ?? DEFAULT_NAME);
    this.#version = checkLabel('version', options.version ?? DEFAULT_VERSION);
    this.#owner = options.owner ?? DEFAULT_OWNER;
  }

  /** What this receiver answered since it was made, by outcome. Invalid bodies are counted only here: they write nothing, not even a counter. */
  stats(): NotificationStats {
    return { ...this.#stats };
  }

  /** Answers one notification: a body as text, bytes (UTF-8 JSON) or an already parsed value. Never rejects. */
  async handle(body: unknown): Promise<NotificationAnswer> {
    const now = this.#clock();
    let type: string | undefined;
    try {
      const parsed = parseNotification(readNotificationBody(body, this.maxBodyBytes));
      type = parsed.notification.notificationType;
      // PING's timeout is 1 s: it is answered without waiting for the store.
      if (type === 'PING') return this.#count({ status: 200, body: this.#ok(now), outcome: 'ping', type });
      const outcome = await this.#write(factsOf(parsed), now);
      return this.#count({ status: 200, body: this.#ok(now), outcome, type });
    } catch (error) {
      if (error instanceof NotificationError) {
        return this.#count({ status: 400, body: { error: { type: 'WRONG_EVENT_FORMAT', message: error.message } }, outcome: 'invalid' });
      }
      // Our failure, not the Market's: a 500 makes it send again later. The store's message
      // (paths, hosts) stays here; the answer says only that it was not stored.
      const errorCode = isYmOrdersError(error) ? error.code : 'INTERNAL';
      return this.#count({
        status: 500,
        body: { error: { type: 'UNKNOWN', message: `The notification was not stored (${errorCode}); send it again later.` } },
        outcome: 'failed',
        ...(type === undefined ? {} : { type }),
        errorCode,
      });
    }
  }

  /**
   * Stores the notification: it joins the batch the next transaction writes (group commit), and
   * resolves once that transaction committed. The Market posts notifications concurrently, and a
   * commit is durable only after its sync to disk (SQLite) or its round trip (PostgreSQL): one
   * commit for all that arrived meanwhile acknowledges each just as durably, at the cost of one.
   */
  #write(facts: Facts, now: number): Promise<WriteOutcome> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ facts, now, resolve, reject });
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0, MAX_BATCH);
        try {
          settle(batch, await this.#db.transaction((tx) => this.#writeBatch(tx, batch)));
        } catch (error) {
          if (batch.length === 1) batch[0]!.reject(error);
          // One notification must not keep the others from being stored (the Market would send
          // them all again, and the same batch would fail again): each is tried on its own.
          else for (const one of batch) await this.#db.transaction((tx) => this.#writeBatch(tx, [one])).then((o) => settle([one], o), one.reject);
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  /**
   * Writes a batch's inbox rows, the reads they ask for and the counters. Rows are written by
   * dedupe key and reads by order id, so two processes writing overlapping batches on PostgreSQL
   * take their locks in one order and never deadlock.
   */
  async #writeBatch(tx: StoreTx, batch: readonly Waiting[]): Promise<WriteOutcome[]> {
    const outcomes = new Map<Waiting, WriteOutcome>();
    const reads: { orderId: number; campaign: CampaignConfig; type: string; now: number }[] = [];
    const counts = { received: 0, duplicates: 0, ignored: 0 };
    for (const w of [...batch].sort((a, b) => (a.facts.dedupeKey < b.facts.dedupeKey ? -1 : a.facts.dedupeKey > b.facts.dedupeKey ? 1 : 0))) {
      const { type, campaignId, orderId } = w.facts;
      const campaign = campaignId === null ? undefined : this.#campaigns.get(campaignId);
      const state: InboxState = campaign === undefined ? 'ignored' : type === 'ORDER_STATUS_UPDATED' ? 'pending' : isReadRequesting(type) ? 'done' : 'ignored';
      const { duplicate } = await tx.inbox.insert({
        dedupe_key: w.facts.dedupeKey, type, campaign_id: campaignId, order_id: orderId, event_at: w.facts.eventAt, body: w.facts.body, state, now: w.now,
      });
      if (!duplicate && state === 'done' && campaign !== undefined && orderId !== null) reads.push({ orderId, campaign, type, now: w.now });
      const outcome = duplicate ? 'duplicate' : state === 'ignored' ? 'ignored' : 'stored';
      outcomes.set(w, outcome);
      counts.received++;
      if (outcome === 'duplicate') counts.duplicates++;
      if (outcome === 'ignored') counts.ignored++;
    }
    for (const r of inLockOrder(reads, (x) => x.orderId)) {
      await tx.reads.request({ orderId: r.orderId, campaignId: r.campaign.campaignId, businessId: r.campaign.businessId, reason: r.type, now: r.now });
    }
    await tx.counters.add(this.#owner, {
      [NOTIFICATION_COUNTERS.received]: counts.received,
      ...(counts.duplicates > 0 ? { [NOTIFICATION_COUNTERS.duplicates]: counts.duplicates } : {}),
      ...(counts.ignored > 0 ? { [NOTIFICATION_COUNTERS.ignored]: counts.ignored } : {}),
    });
    return batch.map((w) => outcomes.get(w)!);
  }

  #ok(now: number): SendNotificationResponse {
    return { version: this.#version, name: this.#name, time: new Date(now).toISOString() };
  }

  #count(answer: NotificationAnswer): NotificationAnswer {
    this.#stats[answer.outcome]++;
    return answer;
  }
}
