// The fake Market's push side against a real receiver on loopback (a node:http server here, not
// the project's receiver): every body matches its DTO in notification-api/openapi, each change
// at the fake is notified, and the notifier duplicates, reorders and retries as the Market does.

import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { Ajv, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { createMarketClient, type MarketClient } from '../src/market/index.js';
import { formatIsoMoscow } from '../src/market/dates.js';
import {
  FAKE_NOTIFIER_ERROR_CODES, FakeNotifier, FakeNotifierOptionError, MARKET_RETRY_SCHEDULE, retryDelayMs, startFakeMarket,
  type FakeMarket, type FakeNotifierOptions,
} from '../src/testing/index.js';
import { waitUntil } from './helpers/effects-fixtures.js';
import { loadNotificationSchema, type JsonObject } from './helpers/openapi.js';

const addFormats = ajvFormats.default;
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);

const dtoOf = (schema: JsonObject): JsonObject => (schema.allOf as JsonObject[])[0]!;
/** SendNotificationRequest's discriminator: notificationType → the DTO file of its body. */
const MAPPING = dtoOf(loadNotificationSchema('SendNotificationRequest')).discriminator as { mapping: Record<string, string> };
const validators = new Map<string, { validate: ValidateFunction; fields: string[] }>();

/** Why `body` is not exactly the DTO its notificationType names: schema errors and fields the DTO lacks. */
function specErrors(body: Record<string, unknown>): string[] {
  const file = MAPPING.mapping[String(body.notificationType)];
  if (file === undefined) return [`no DTO for notificationType ${String(body.notificationType)}`];
  let entry = validators.get(file);
  if (entry === undefined) {
    const schema = loadNotificationSchema(file.replace(/^\.\//, '').replace(/\.yaml$/, ''));
    entry = { validate: ajv.compile(schema), fields: Object.keys(dtoOf(schema).properties as JsonObject) };
    validators.set(file, entry);
  }
  const errors = entry.validate(body) ? [] : (entry.validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`);
  return [...errors, ...Object.keys(body).filter((k) => !entry.fields.includes(k)).map((k) => `${k} is not in the DTO`)];
}

// ---- a receiver on loopback ----------------------------------------------------------------

type Answer = { status: number; body?: string; delayMs?: number } | 'hang';

interface Arrival {
  // Bodies are asserted on field by field; typing every notification would repeat the DTOs.
  body: any;
  at: number;
}

interface Receiver {
  url: string;
  port: number;
  arrivals: Arrival[];
  close(): Promise<void>;
}

const ACK = (): string => JSON.stringify({ version: '1.0', name: 'fake-notifier test', time: new Date().toISOString() });

const receivers: Receiver[] = [];

async function startReceiver(answer: (body: any, index: number) => Answer = () => ({ status: 200 }), port = 0): Promise<Receiver> {
  const arrivals: Arrival[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      arrivals.push({ body, at: performance.now() });
      const a = answer(body, arrivals.length - 1);
      if (a === 'hang') return void hanging.push(res);
      const reply = (): void => {
        if (res.destroyed) return;
        res.writeHead(a.status, { 'Content-Type': 'application/json' });
        res.end(a.body ?? (a.status === 200 ? ACK() : JSON.stringify({ error: { type: 'UNKNOWN', message: 'test' } })));
      };
      if (a.delayMs === undefined) reply();
      else setTimeout(reply, a.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${bound}/notification`,
    port: bound,
    arrivals,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
  receivers.push(receiver);
  return receiver;
}

const notifiers: FakeNotifier[] = [];
function notifierFor(options: FakeNotifierOptions): FakeNotifier {
  const notifier = new FakeNotifier(options);
  notifiers.push(notifier);
  return notifier;
}

let market: FakeMarket | undefined;
let client: MarketClient | undefined;

afterEach(async () => {
  await client?.close();
  await market?.close();
  for (const n of notifiers.splice(0)) await n.close();
  for (const r of receivers.splice(0)) await r.close();
  client = undefined;
  market = undefined;
});

// ---- the fake Market's changes, pushed ----------------------------------------------------

const API_KEY = 'notifier-test-key';
const BUSINESS = 88;
const FBS = 21;
const DBS = 22;
const LAAS = 23;
const T0 = Date.UTC(2025, 4, 20, 9, 0, 0);

async function startNotifyingMarket(receiver: Receiver, extra: { now?: () => number; operationDelayMs?: number } = {}): Promise<FakeMarket> {
  market = await startFakeMarket({
    apiKey: API_KEY,
    campaigns: [
      { campaignId: FBS, businessId: BUSINESS, model: 'FBS' },
      { campaignId: DBS, businessId: BUSINESS, model: 'DBS' },
      { campaignId: LAAS, businessId: BUSINESS, model: 'LAAS' },
    ],
    notify: { url: receiver.url, timeScale: 1 / 1000 },
    ...extra,
  });
  client = createMarketClient({ baseUrl: market.url, apiKey: API_KEY });
  return market;
}

const brief = (a: Arrival): string =>
  [a.body.notificationType, a.body.orderId, a.body.status, a.body.substatus, a.body.updateType].filter((v) => v !== undefined).join(' ');

describe('the fake Market pushes its changes', () => {
  it('notifies each change it makes, in order, each body exactly its DTO and timed like the order reads', async () => {
    const receiver = await startReceiver();
    let clock = T0;
    const m = await startNotifyingMarket(receiver, { now: () => clock, operationDelayMs: 100 });
    m.seedOrders([
      { id: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
      { id: 2, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' },
      { id: 3, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
      { id: 4, campaignId: LAAS, status: 'PROCESSING', substatus: 'STARTED' },
    ]);

    expect(m.createOrder({ id: 5, campaignId: FBS })).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED' });
    expect(m.createOrder({ id: 6, campaignId: LAAS })).toMatchObject({ status: 'RESERVED', substatus: 'AWAIT_CONFIRMATION' });
    clock += 1_000;
    await client!.updateOrderStatuses(FBS, [
      { id: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
      { id: 2, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' }, // refused: not notified
    ]);
    await client!.updateOrderStatus(FBS, 2, { status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    m.requestCancellation(3);
    await client!.acceptOrderCancellation(DBS, 3, { accepted: true });
    m.setOrderStatus(5, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
    m.updateOrderDates(5, 'SHIPMENT_DATE_UPDATED');
    expect(m.openChat(5)).toBe(1);
    const laas = await client!.updateOrderStatuses(LAAS, [{ id: 4, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]);
    expect(laas.body.result?.orders[0]?.operation).toBeDefined();
    m.notifier!.ping();
    await m.notifier!.idle();
    // The operation is IN_PROGRESS on the fake's clock: nothing about order 4 yet.
    expect(receiver.arrivals.filter((a) => a.body.orderId === 4)).toEqual([]);
    clock += 100;
    expect(m.getOrder(4)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    await m.notifier!.idle();

    expect(receiver.arrivals.map(brief)).toEqual([
      'ORDER_CREATED 5',
      'ORDER_CREATED 6',
      'ORDER_STATUS_UPDATED 1 PROCESSING READY_TO_SHIP',
      'ORDER_STATUS_UPDATED 2 CANCELLED SHOP_FAILED',
      'ORDER_CANCELLED 2',
      'ORDER_CANCELLATION_REQUEST 3',
      'ORDER_STATUS_UPDATED 3 CANCELLED USER_CHANGED_MIND',
      'ORDER_CANCELLED 3',
      'ORDER_STATUS_UPDATED 5 DELIVERY DELIVERY_SERVICE_RECEIVED',
      'ORDER_UPDATED 5 SHIPMENT_DATE_UPDATED',
      'CHAT_CREATED',
      'PING',
      'ORDER_STATUS_UPDATED 4 CANCELLED SHOP_FAILED',
      'ORDER_CANCELLED 4',
    ]);
    for (const a of receiver.arrivals) expect(specErrors(a.body), brief(a)).toEqual([]);
    // The last notification about an order carries the instant a getBusinessOrders read shows.
    for (const id of [1, 2, 3, 4, 5]) {
      const last = receiver.arrivals.filter((a) => a.body.orderId === id).at(-1)!.body;
      expect(last.updatedAt ?? last.cancelledAt, `order ${id}`).toBe(formatIsoMoscow(m.getOrder(id)!.updateDate));
    }
    expect(receiver.arrivals[0]!.body).toEqual({
      notificationType: 'ORDER_CREATED', orderId: 5, campaignId: FBS, items: [{ offerId: 'offer-5', count: 1 }], createdAt: formatIsoMoscow(T0),
    });
    expect(receiver.arrivals.find((a) => a.body.notificationType === 'PING')!.body).toEqual({ notificationType: 'PING', time: formatIsoMoscow(T0 + 1_000) });
    expect(receiver.arrivals.find((a) => a.body.notificationType === 'CHAT_CREATED')!.body).toEqual({
      notificationType: 'CHAT_CREATED', chatId: 1, businessId: BUSINESS, createdAt: formatIsoMoscow(T0 + 1_000),
    });
    expect(() => m.openChat(999)).toThrow(/no order 999/);
    expect(m.notifier!.stats()).toMatchObject({ sent: 14, delivered: 14, malformedAcks: 0, retries: 0, failedAttempts: 0 });
  });

  it('notifies a completed LaaS operation on its own, without a request to settle it', async () => {
    const receiver = await startReceiver();
    const m = await startNotifyingMarket(receiver, { operationDelayMs: 30 });
    m.seedOrders([{ id: 40, campaignId: LAAS, status: 'PROCESSING', substatus: 'STARTED' }]);
    await client!.updateOrderStatuses(LAAS, [{ id: 40, status: 'CANCELLED', substatus: 'SHOP_FAILED' }]);
    await waitUntil(() => receiver.arrivals.length === 2, 'the operation was notified', 5_000);
    expect(receiver.arrivals.map(brief)).toEqual(['ORDER_STATUS_UPDATED 40 CANCELLED SHOP_FAILED', 'ORDER_CANCELLED 40']);
  });

  it('pushes nothing for seeded orders, refused changes or a refused cancellation, and nothing without notify', async () => {
    const receiver = await startReceiver();
    const m = await startNotifyingMarket(receiver);
    m.seedOrders([{ id: 50, campaignId: DBS, status: 'PROCESSING', substatus: 'STARTED' }]);
    await client!.updateOrderStatuses(DBS, [{ id: 50, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }]);
    m.requestCancellation(50);
    await client!.acceptOrderCancellation(DBS, 50, { accepted: false, reason: 'ORDER_DELIVERED' });
    await m.notifier!.idle();
    expect(receiver.arrivals.map(brief)).toEqual(['ORDER_CANCELLATION_REQUEST 50']);

    const silent = await startFakeMarket({ apiKey: API_KEY, campaigns: [{ campaignId: FBS, businessId: BUSINESS, model: 'FBS' }] });
    silent.createOrder({ id: 51, campaignId: FBS });
    silent.setOrderStatus(51, 'CANCELLED', 'USER_CHANGED_MIND');
    expect(silent.notifier).toBeUndefined();
    await silent.close();
    expect(receiver.arrivals).toHaveLength(1);
  });
});

// ---- delivery: faults, retries, timeouts ---------------------------------------------------

/** Queues one ORDER_STATUS_UPDATED for each of `count` distinct orders, ids 1..count, in order. */
function pushOrders(notifier: FakeNotifier, count: number): void {
  for (let id = 1; id <= count; id++) {
    notifier.notify({ notificationType: 'ORDER_STATUS_UPDATED', orderId: id, campaignId: FBS, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updatedAt: formatIsoMoscow(T0 + id) });
  }
}

/** Orders whose first notification arrived after that of an order that changed later. */
function overtaken(arrivals: readonly Arrival[]): number {
  const firsts = [...new Set(arrivals.map((a) => a.body.orderId as number))];
  let highest = 0;
  let count = 0;
  for (const id of firsts) {
    if (id < highest) count += 1;
    highest = Math.max(highest, id);
  }
  return count;
}

describe('delivery as the Market does it', () => {
  const N = 300;

  it('duplicates and reorders at the configured rates, counted, and the same seed repeats the run exactly', async () => {
    const run = async (seed: number) => {
      const receiver = await startReceiver();
      const notifier = notifierFor({ url: receiver.url, duplicateRate: 0.2, reorderRate: 0.1, seed, timeScale: 1 / 1000 });
      pushOrders(notifier, N);
      await notifier.idle();
      return { arrivals: receiver.arrivals, stats: notifier.stats() };
    };
    const { arrivals, stats } = await run(7);

    const copies = new Map<number, Arrival[]>();
    for (const a of arrivals) copies.set(a.body.orderId, [...(copies.get(a.body.orderId) ?? []), a]);
    expect(copies.size).toBe(N);
    const twice = [...copies.values()].filter((c) => c.length === 2);
    expect([...copies.values()].every((c) => c.length <= 2)).toBe(true);
    for (const [first, second] of twice) expect(second!.body).toEqual(first!.body);
    expect(twice.length).toBe(stats.duplicatesSent);
    expect(overtaken(arrivals)).toBe(stats.reordered);
    expect(stats).toMatchObject({ sent: N + stats.duplicatesSent, delivered: N + stats.duplicatesSent, retries: 0, failedAttempts: 0 });
    // Binomial: 300 × 0.2 = 60 ± 7 duplicates; the one after a held notification is never held
    // itself, so ≈ 300 × 0.1 / 1.1 = 27 ± 5 reorderings.
    expect(stats.duplicatesSent).toBeGreaterThan(35);
    expect(stats.duplicatesSent).toBeLessThan(85);
    expect(stats.reordered).toBeGreaterThan(10);
    expect(stats.reordered).toBeLessThan(45);

    const again = await run(7);
    expect(again.arrivals.map((a) => a.body)).toEqual(arrivals.map((a) => a.body));
    const other = await run(8);
    expect(other.arrivals.map((a) => a.body)).not.toEqual(arrivals.map((a) => a.body));
  });

  it('delivers in order, once each, when both rates are 0', async () => {
    const receiver = await startReceiver();
    const notifier = notifierFor({ url: receiver.url });
    pushOrders(notifier, 50);
    await notifier.idle();
    expect(receiver.arrivals.map((a) => a.body.orderId)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(notifier.stats()).toMatchObject({ sent: 50, delivered: 50, duplicatesSent: 0, reordered: 0 });
  });

  it('a held-back notification with none after it is sent one scaled minute later; idle() waits for it', async () => {
    const receiver = await startReceiver();
    const notifier = notifierFor({ url: receiver.url, reorderRate: 1, timeScale: 1 / 1000 });
    const started = performance.now();
    pushOrders(notifier, 1);
    await notifier.idle();
    expect(receiver.arrivals).toHaveLength(1);
    expect(receiver.arrivals[0]!.at - started).toBeGreaterThanOrEqual(55);
    expect(notifier.stats()).toMatchObject({ delivered: 1, reordered: 0 });
  });

  it('retries a 500 on the compressed schedule until a 200, then stops', async () => {
    const receiver = await startReceiver((_body, i) => ({ status: i < 2 ? 500 : 200 }));
    const notifier = notifierFor({ url: receiver.url, timeScale: 1 / 500 }); // a retry every 120 ms
    pushOrders(notifier, 1);
    await notifier.idle();
    expect(receiver.arrivals).toHaveLength(3);
    expect(receiver.arrivals[2]!.body).toEqual(receiver.arrivals[0]!.body);
    for (const [earlier, later] of [[0, 1], [1, 2]] as const) {
      const gap = receiver.arrivals[later]!.at - receiver.arrivals[earlier]!.at;
      expect(gap).toBeGreaterThanOrEqual(115);
      expect(gap).toBeLessThan(1_000);
    }
    expect(notifier.stats()).toMatchObject({ sent: 3, delivered: 1, retries: 2, failedAttempts: 2, rejected: 0 });
  });

  it('does not retry a 400, goes on with the next notification, and counts a 200 without its body', async () => {
    const receiver = await startReceiver((body) => (body.orderId === 1 ? { status: 400 } : { status: 200, body: '' }));
    const notifier = notifierFor({ url: receiver.url, timeScale: 1 / 1000 });
    pushOrders(notifier, 2);
    await notifier.idle();
    expect(receiver.arrivals.map((a) => a.body.orderId)).toEqual([1, 2]);
    expect(notifier.stats()).toMatchObject({ sent: 2, rejected: 1, delivered: 1, malformedAcks: 1, retries: 0, failedAttempts: 0 });
  });

  it('retries a notification the receiver sat on past the timeout', async () => {
    const receiver = await startReceiver((_body, i) => (i === 0 ? 'hang' : { status: 200 }));
    const notifier = notifierFor({ url: receiver.url, timeoutMs: 100, timeScale: 1 / 1000 });
    pushOrders(notifier, 1);
    await notifier.idle();
    expect(receiver.arrivals).toHaveLength(2);
    // The timeout, then a scaled minute.
    expect(receiver.arrivals[1]!.at - receiver.arrivals[0]!.at).toBeGreaterThanOrEqual(150);
    expect(notifier.stats()).toMatchObject({ sent: 2, delivered: 1, retries: 1, failedAttempts: 1 });
  });

  it('gives a PING its own, shorter timeout', async () => {
    let pings = 0;
    // The first PING is answered in 150 ms, later ones at once; the order notification in 80 ms.
    const receiver = await startReceiver((body) => (body.notificationType === 'PING' ? { status: 200, delayMs: pings++ === 0 ? 150 : 0 } : { status: 200, delayMs: 80 }));
    const notifier = notifierFor({ url: receiver.url, timeoutMs: 1_000, pingTimeoutMs: 50, timeScale: 1 / 1000 });
    notifier.ping();
    pushOrders(notifier, 1);
    await notifier.idle();
    expect(receiver.arrivals.map((a) => a.body.notificationType)).toEqual(['PING', 'ORDER_STATUS_UPDATED', 'PING']);
    expect(notifier.stats()).toMatchObject({ delivered: 2, failedAttempts: 1, retries: 1 });
  });

  it('retries while the connection is refused and delivers once the receiver listens', async () => {
    const probe = await startReceiver();
    const { port } = probe;
    await probe.close();
    const notifier = notifierFor({ url: `http://127.0.0.1:${port}/notification`, timeScale: 1 / 1000 });
    pushOrders(notifier, 1);
    await waitUntil(() => notifier.stats().failedAttempts >= 2, 'two refused attempts', 5_000);
    const receiver = await startReceiver(undefined, port);
    await notifier.idle();
    expect(receiver.arrivals).toHaveLength(1);
    expect(notifier.stats()).toMatchObject({ delivered: 1, retries: notifier.stats().failedAttempts });
  });

  it('gives up after 14 days of failed attempts (scaled)', async () => {
    const receiver = await startReceiver(() => ({ status: 503 }));
    const timeScale = 1e-6; // 14 days ≈ 1.2 s
    const notifier = notifierFor({ url: receiver.url, timeScale });
    const started = performance.now();
    pushOrders(notifier, 1);
    await notifier.idle();
    expect(performance.now() - started).toBeGreaterThanOrEqual(MARKET_RETRY_SCHEDULE.giveUpAfterMs * timeScale);
    const stats = notifier.stats();
    expect(stats).toMatchObject({ delivered: 0, abandoned: 1, retries: stats.sent - 1, failedAttempts: stats.sent });
    expect(receiver.arrivals).toHaveLength(stats.sent);
  });

  it('close() drops what is queued and waiting for a retry; idle() then resolves', async () => {
    const receiver = await startReceiver(() => ({ status: 500 }));
    const notifier = notifierFor({ url: receiver.url });
    pushOrders(notifier, 3);
    // A failed notification waits a minute for its retry while the next ones go out.
    await waitUntil(() => notifier.stats().failedAttempts === 3, 'all three attempts failed', 5_000);
    const idle = notifier.idle();
    await notifier.close();
    await idle;
    notifier.notify({ notificationType: 'PING', time: formatIsoMoscow(T0) });
    expect(notifier.stats()).toMatchObject({ sent: 3, delivered: 0, retries: 0 });
    expect(receiver.arrivals).toHaveLength(3);
  });
});

describe('the retry schedule and the options', () => {
  it('checks bodies against the spec for real: a missing field, a wrong type and an extra field are caught', () => {
    expect(specErrors({ notificationType: 'ORDER_STATUS_UPDATED', orderId: 'one', campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', extra: 1 }))
      .toEqual([
        expect.stringMatching(/must have required property 'updatedAt'/),
        expect.stringMatching(/\/orderId must be integer/),
        'extra is not in the DTO',
      ]);
    expect(specErrors({ notificationType: 'ORDER_CREATED', orderId: 1, campaignId: FBS, items: [{ offerId: 'x' }], createdAt: 'yesterday' }))
      .toEqual([expect.stringMatching(/items\/0 must have required property 'count'/), expect.stringMatching(/createdAt must match format "date-time"/)]);
  });

  it('is every minute for the first hour, every 15 minutes for the first day, then hourly, for 14 days', () => {
    const minute = 60_000;
    const hour = 60 * minute;
    const day = 24 * hour;
    expect(retryDelayMs(0)).toBe(minute);
    expect(retryDelayMs(hour - 1)).toBe(minute);
    expect(retryDelayMs(hour)).toBe(15 * minute);
    expect(retryDelayMs(day - 1)).toBe(15 * minute);
    expect(retryDelayMs(day)).toBe(hour);
    expect(retryDelayMs(14 * day - 1)).toBe(hour);
    expect(retryDelayMs(14 * day)).toBeUndefined();
  });

  it.each<[string, Partial<FakeNotifierOptions>]>([
    ['url', { url: 'ftp://127.0.0.1/notification' }],
    ['url', { url: 'not a url' }],
    ['duplicateRate', { duplicateRate: 1.5 }],
    ['reorderRate', { reorderRate: -0.1 }],
    ['timeScale', { timeScale: 0 }],
    ['timeoutMs', { timeoutMs: Number.NaN }],
    ['seed', { seed: 1.5 }],
  ])('refuses a bad %s with a typed error', (option, bad) => {
    const attempt = () => new FakeNotifier({ url: 'http://127.0.0.1:1/notification', ...bad });
    expect(attempt).toThrow(FakeNotifierOptionError);
    expect(attempt).toThrow(expect.objectContaining({ code: FAKE_NOTIFIER_ERROR_CODES.invalidOption, option }));
  });
});

describe('ym-orders fake-market --notify', () => {
  it.each([
    [['--notify', 'ftp://127.0.0.1/notification'], /^error \[USAGE\]: --notify: FakeNotifier: url must be an http:\/\/ or https:\/\/ URL\.$/m],
    [['--notify', 'http://127.0.0.1:1/notification', '--notify-duplicates', '1.5'], /^error \[USAGE\]: --notify-duplicates "1\.5" is not a number from 0 to 1\.$/m],
    [['--notify', 'http://127.0.0.1:1/notification', '--notify-reorder', 'often'], /^error \[USAGE\]: --notify-reorder "often" is not a number from 0 to 1\.$/m],
  ])('refuses %j with a usage error (exit 2) before it listens', async (args, message) => {
    let stderr = '';
    const sink = (append: (text: string) => void) => new Writable({ write: (chunk, _encoding, done) => (append(String(chunk)), done()) });
    const code = await main(['--campaign', '601:61:FBS', 'fake-market', ...args], {
      stdin: Readable.from([]), stdout: sink(() => {}), stderr: sink((t) => (stderr += t)), env: { YM_API_KEY: API_KEY }, cwd: process.cwd(),
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});
