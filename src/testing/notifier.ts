// The fake Market's push side: POSTs notification bodies (notification-api/openapi,
// SendNotificationRequest) to a receiver the way NOTES.md §g says the Market does.
//
// API. A FakeNotifier is one receiver URL and a queue. `notify(body)` queues a body; one request
// is in flight at a time, so without faults the receiver sees notifications in the order they
// happened. startFakeMarket({ notify: { url, ... } }) makes one and feeds it every change the
// fake makes (see fake-market.ts); `market.notifier` is that instance. Used alone, it pushes
// whatever a test hands it (a malformed body, an unknown notificationType, a PING).
//
// What the Market does, and so the notifier:
// - timeout: 10 s for a notification, 1 s for PING (`timeoutMs`, `pingTimeoutMs`);
// - 2xx is delivered; 400 is the receiver refusing the notification itself: not retried
//   (`rejected`); a timeout, a refused or broken connection, or any other status is retried on
//   MARKET_RETRY_SCHEDULE (every minute for the first hour, every 15 minutes for the first day,
//   then hourly; after 14 days the Market gives up), every interval multiplied by `timeScale`
//   (1/1000: a retry every 60 ms), so a test sees a day of retries in a second and a half;
// - duplicates and out-of-order delivery happen: with `duplicateRate` a notification is sent
//   twice (the same body), with `reorderRate` it is held back until the next one is queued and
//   sent right after it (or after one scaled minute when none comes); both drawn from a PRNG
//   seeded by `seed`, so a run repeats exactly.
//
// Tests wait on `idle()` (nothing queued, held, waiting for a retry or in flight) and read
// `stats()`. close() drops whatever is left and aborts the request in flight.

import { Agent, request } from 'undici';
import { YmOrdersError } from '../errors.js';
import { formatIsoMoscow } from '../market/dates.js';
import { seededRandom } from './faults.js';
import type { FakeOrder } from './order-book.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** When the Market tries a notification again after a failed attempt (NOTES.md §g). */
export const MARKET_RETRY_SCHEDULE = {
  /** `everyMs` apart while less than `untilMs` has passed since the first attempt. */
  phases: [
    { untilMs: HOUR_MS, everyMs: MINUTE_MS },
    { untilMs: DAY_MS, everyMs: 15 * MINUTE_MS },
  ],
  thenEveryMs: HOUR_MS,
  /** "After 14 days of unavailability the integration is switched off." */
  giveUpAfterMs: 14 * DAY_MS,
} as const;

/** The wait before the next attempt, `elapsedMs` (Market time) after the first; undefined: give up. */
export function retryDelayMs(elapsedMs: number): number | undefined {
  if (elapsedMs >= MARKET_RETRY_SCHEDULE.giveUpAfterMs) return undefined;
  const phase = MARKET_RETRY_SCHEDULE.phases.find((p) => elapsedMs < p.untilMs);
  return phase?.everyMs ?? MARKET_RETRY_SCHEDULE.thenEveryMs;
}

export const DEFAULT_NOTIFICATION_TIMEOUT_MS = 10_000;
export const DEFAULT_PING_TIMEOUT_MS = 1_000;

// ---- the bodies (components/schemas/*NotificationDTO.yaml) --------------------------------

/** OrderUpdateType.yaml. */
export const ORDER_UPDATE_TYPES = ['SHIPMENT_DATE_UPDATED', 'DELIVERY_DATE_UPDATED', 'UNKNOWN'] as const;
export type OrderUpdateType = (typeof ORDER_UPDATE_TYPES)[number];

/** NotificationOrderItemDTO.yaml. */
export type NotificationItem = { offerId: string; count: number };

/** The notifications the fake sends, field for field as their DTOs; every time is ISO 8601. */
export type FakeNotification =
  | { notificationType: 'PING'; time: string }
  | { notificationType: 'ORDER_CREATED'; orderId: number; campaignId: number; items: NotificationItem[]; createdAt: string }
  | { notificationType: 'ORDER_STATUS_UPDATED'; orderId: number; campaignId: number; status: string; substatus: string; updatedAt: string }
  | { notificationType: 'ORDER_CANCELLED'; orderId: number; campaignId: number; items: NotificationItem[]; cancelledAt: string }
  | { notificationType: 'ORDER_CANCELLATION_REQUEST'; orderId: number; campaignId: number; requestedAt: string }
  | { notificationType: 'ORDER_UPDATED'; orderId: number; campaignId: number; updateType: OrderUpdateType; updatedAt: string }
  | { notificationType: 'CHAT_CREATED'; chatId: number; businessId: number; createdAt: string };

/**
 * The body of each notification about a fake order, timed by the order's dates, so that a
 * notification and a getBusinessOrders read of the same change carry the same instant.
 */
export const notificationOf = {
  ping: (at: number): FakeNotification => ({ notificationType: 'PING', time: formatIsoMoscow(at) }),
  created: (o: FakeOrder, items: NotificationItem[]): FakeNotification => ({
    notificationType: 'ORDER_CREATED', orderId: o.id, campaignId: o.campaignId, items, createdAt: formatIsoMoscow(o.creationDate),
  }),
  statusUpdated: (o: FakeOrder): FakeNotification => ({
    notificationType: 'ORDER_STATUS_UPDATED', orderId: o.id, campaignId: o.campaignId,
    status: o.status, substatus: o.substatus, updatedAt: formatIsoMoscow(o.updateDate),
  }),
  cancelled: (o: FakeOrder, items: NotificationItem[]): FakeNotification => ({
    notificationType: 'ORDER_CANCELLED', orderId: o.id, campaignId: o.campaignId, items, cancelledAt: formatIsoMoscow(o.updateDate),
  }),
  cancellationRequested: (o: FakeOrder): FakeNotification => ({
    notificationType: 'ORDER_CANCELLATION_REQUEST', orderId: o.id, campaignId: o.campaignId, requestedAt: formatIsoMoscow(o.updateDate),
  }),
  updated: (o: FakeOrder, updateType: OrderUpdateType): FakeNotification => ({
    notificationType: 'ORDER_UPDATED', orderId: o.id, campaignId: o.campaignId, updateType, updatedAt: formatIsoMoscow(o.updateDate),
  }),
  chatCreated: (chatId: number, businessId: number, at: number): FakeNotification => ({
    notificationType: 'CHAT_CREATED', chatId, businessId, createdAt: formatIsoMoscow(at),
  }),
};

// ---- options and errors ------------------------------------------------------------------

export interface FakeNotifierOptions {
  /** The receiver's full URL, path included, e.g. `http://127.0.0.1:8080/notification`. */
  url: string;
  /** Chance (0..1) that a notification is sent twice; default 0. */
  duplicateRate?: number;
  /** Chance (0..1) that a notification is held back and sent after the next one; default 0. */
  reorderRate?: number;
  /** Seed of the PRNG behind both rates; default 1. */
  seed?: number;
  /** Multiplies every retry interval (and the hold of a reordered notification); default 1. */
  timeScale?: number;
  /** How long the receiver has to answer a notification; default 10 000 ms. */
  timeoutMs?: number;
  /** How long the receiver has to answer a PING; default 1 000 ms. */
  pingTimeoutMs?: number;
  /** The clock a PING's `time` is read from (epoch ms); default Date.now. */
  now?: () => number;
}

export const FAKE_NOTIFIER_ERROR_CODES = {
  invalidOption: 'FAKE_NOTIFIER_INVALID_OPTION',
} as const;

/** An option of the notifier that it cannot use; nothing was started. */
export class FakeNotifierOptionError extends YmOrdersError {
  readonly option: string;
  constructor(option: string, expected: string) {
    super(FAKE_NOTIFIER_ERROR_CODES.invalidOption, `FakeNotifier: ${option} must be ${expected}.`, { option, expected });
    this.option = option;
  }
}

export interface FakeNotifierStats {
  /** POST requests made: first attempts and retries. */
  sent: number;
  /** Notifications the receiver acknowledged with a 2xx. */
  delivered: number;
  /** 2xx answers whose body is not SendNotificationResponse ({version, name, time}). */
  malformedAcks: number;
  /** Extra copies queued by `duplicateRate`. */
  duplicatesSent: number;
  /** Notifications held back by `reorderRate` and sent after a later one. */
  reordered: number;
  /** Attempts after a notification's first. */
  retries: number;
  /** Notifications answered 400: refused by the receiver, not retried. */
  rejected: number;
  /** Attempts that timed out, could not connect, or got a status other than 2xx and 400. */
  failedAttempts: number;
  /** Notifications given up after 14 days (scaled) of failed attempts. */
  abandoned: number;
}

interface Delivery {
  readonly json: string;
  readonly timeoutMs: number;
  /** performance.now() of the first attempt: the retry schedule counts from it. */
  firstAttemptAt: number | undefined;
  attempts: number;
}

const isAck = (text: string): boolean => {
  try {
    const body = JSON.parse(text) as Record<string, unknown> | null;
    return ['version', 'name', 'time'].every((k) => typeof body?.[k] === 'string' && body[k] !== '');
  } catch {
    return false;
  }
};

function rate(options: FakeNotifierOptions, name: 'duplicateRate' | 'reorderRate'): number {
  const value = options[name] ?? 0;
  if (!(value >= 0 && value <= 1)) throw new FakeNotifierOptionError(name, 'a number from 0 to 1');
  return value;
}

function positive(options: FakeNotifierOptions, name: 'timeScale' | 'timeoutMs' | 'pingTimeoutMs', fallback: number): number {
  const value = options[name] ?? fallback;
  if (!(Number.isFinite(value) && value > 0)) throw new FakeNotifierOptionError(name, 'a positive number');
  return value;
}

export class FakeNotifier {
  readonly url: string;
  readonly #duplicateRate: number;
  readonly #reorderRate: number;
  readonly #timeScale: number;
  readonly #timeoutMs: number;
  readonly #pingTimeoutMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #agent = new Agent();
  readonly #ready: Delivery[] = [];
  /** The notification (with its duplicate) held back for the next one to overtake. */
  #held: { deliveries: Delivery[]; timer: NodeJS.Timeout } | undefined;
  readonly #retrying = new Map<Delivery, NodeJS.Timeout>();
  #inFlight: AbortController | undefined;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  readonly #stats: FakeNotifierStats = {
    sent: 0, delivered: 0, malformedAcks: 0, duplicatesSent: 0, reordered: 0, retries: 0, rejected: 0, failedAttempts: 0, abandoned: 0,
  };

  /** Throws FakeNotifierOptionError for a URL that is not http(s), a rate outside 0..1, a non-positive time. */
  constructor(options: FakeNotifierOptions) {
    if (!URL.canParse(options.url) || !/^https?:$/.test(new URL(options.url).protocol)) {
      throw new FakeNotifierOptionError('url', 'an http:// or https:// URL');
    }
    if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) throw new FakeNotifierOptionError('seed', 'an integer');
    this.url = options.url;
    this.#duplicateRate = rate(options, 'duplicateRate');
    this.#reorderRate = rate(options, 'reorderRate');
    this.#timeScale = positive(options, 'timeScale', 1);
    this.#timeoutMs = positive(options, 'timeoutMs', DEFAULT_NOTIFICATION_TIMEOUT_MS);
    this.#pingTimeoutMs = positive(options, 'pingTimeoutMs', DEFAULT_PING_TIMEOUT_MS);
    this.#now = options.now ?? Date.now;
    this.#random = seededRandom(options.seed ?? 1);
  }

  /**
   * Queues a body: any JSON object, a FakeNotification or not (a malformed one tests a
   * receiver's 400). Does nothing after close().
   */
  notify(body: FakeNotification | Readonly<Record<string, unknown>>): void {
    if (this.#closed) return;
    // Both draws happen for every notification, so one rate does not shift the other's sequence.
    const duplicate = this.#random() < this.#duplicateRate;
    const holdBack = this.#random() < this.#reorderRate;
    const timeoutMs = body.notificationType === 'PING' ? this.#pingTimeoutMs : this.#timeoutMs;
    const json = JSON.stringify(body);
    const group: Delivery[] = [{ json, timeoutMs, firstAttemptAt: undefined, attempts: 0 }];
    if (duplicate) {
      group.push({ json, timeoutMs, firstAttemptAt: undefined, attempts: 0 });
      this.#stats.duplicatesSent += 1;
    }
    const held = this.#held;
    if (held !== undefined) {
      clearTimeout(held.timer);
      this.#held = undefined;
      this.#ready.push(...group, ...held.deliveries);
      this.#stats.reordered += 1;
    } else if (holdBack) {
      const timer = setTimeout(() => {
        this.#held = undefined;
        this.#ready.push(...group);
        this.#pump();
      }, MINUTE_MS * this.#timeScale);
      this.#held = { deliveries: group, timer };
    } else {
      this.#ready.push(...group);
    }
    this.#pump();
  }

  /** Queues a PING (the receiver has `pingTimeoutMs` to answer). */
  ping(): void {
    this.notify(notificationOf.ping(this.#now()));
  }

  /** Resolves when nothing is queued, held back, waiting for a retry or in flight (or after close()). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  stats(): FakeNotifierStats {
    return { ...this.#stats };
  }

  /** Drops every queued notification and retry, aborts the request in flight. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#held !== undefined) clearTimeout(this.#held.timer);
    this.#held = undefined;
    for (const timer of this.#retrying.values()) clearTimeout(timer);
    this.#retrying.clear();
    this.#ready.length = 0;
    this.#inFlight?.abort();
    this.#inFlight = undefined;
    this.#settleIdle();
    await this.#agent.destroy();
  }

  #isIdle(): boolean {
    return this.#closed || (this.#ready.length === 0 && this.#held === undefined && this.#retrying.size === 0 && this.#inFlight === undefined);
  }

  #settleIdle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #pump(): void {
    if (this.#closed || this.#inFlight !== undefined) return;
    const next = this.#ready.shift();
    if (next === undefined) return this.#settleIdle();
    const controller = new AbortController();
    this.#inFlight = controller;
    void this.#attempt(next, controller);
  }

  async #attempt(delivery: Delivery, controller: AbortController): Promise<void> {
    delivery.firstAttemptAt ??= performance.now();
    if (delivery.attempts > 0) this.#stats.retries += 1;
    delivery.attempts += 1;
    this.#stats.sent += 1;
    const timer = setTimeout(() => controller.abort(), delivery.timeoutMs);
    let outcome: 'delivered' | 'rejected' | 'failed' = 'failed';
    let acknowledged = false;
    try {
      const response = await request(this.url, {
        method: 'POST', dispatcher: this.#agent, signal: controller.signal,
        headers: { 'content-type': 'application/json' }, body: delivery.json,
      });
      const text = await response.body.text();
      if (response.statusCode >= 200 && response.statusCode < 300) {
        outcome = 'delivered';
        acknowledged = isAck(text);
      } else if (response.statusCode === 400) {
        outcome = 'rejected';
      }
    } catch {
      // Timeout, refused or reset connection: all are "no answer" to the Market.
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed) return;
    this.#inFlight = undefined;
    if (outcome === 'delivered') {
      this.#stats.delivered += 1;
      if (!acknowledged) this.#stats.malformedAcks += 1;
    } else if (outcome === 'rejected') {
      this.#stats.rejected += 1;
    } else {
      this.#stats.failedAttempts += 1;
      this.#scheduleRetry(delivery);
    }
    this.#pump();
  }

  #scheduleRetry(delivery: Delivery): void {
    const elapsedMs = (performance.now() - (delivery.firstAttemptAt ?? 0)) / this.#timeScale;
    const delayMs = retryDelayMs(elapsedMs);
    if (delayMs === undefined) {
      this.#stats.abandoned += 1;
      return;
    }
    const timer = setTimeout(() => {
      this.#retrying.delete(delivery);
      this.#ready.push(delivery);
      this.#pump();
    }, delayMs * this.#timeScale);
    this.#retrying.set(delivery, timer);
  }
}
