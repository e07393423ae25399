// The notification receiver against real stores (a SQLite file in a temp dir; PostgreSQL when the
// test server answers): what each notification type writes (inbox row, read request, counters)
// in one transaction, duplicates stored once (also when they arrive together), PING without the
// store, unknown types and campaigns stored and ignored, bad bodies refused with the wrong field
// named and nothing written, our own failure a 500. The zod schemas are checked against the
// notification spec's DTOs: every type, every required field, every type of field.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { CampaignConfig } from '../src/engine/commands.js';
import { NOTIFICATION_ERROR_CODES, NotificationOptionError } from '../src/notifications/errors.js';
import { NotificationReceiver, type NotificationAnswer } from '../src/notifications/receiver.js';
import {
  NOTIFICATION_LIMITS, NOTIFICATION_TYPES, SendNotificationRequestSchema, SendNotificationResponseSchema, type NotificationType,
} from '../src/notifications/schemas.js';
import type { InboxRow } from '../src/store/inbox.js';
import type { OrderReadRow } from '../src/store/order-reads.js';
import type { Store } from '../src/store/port.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { loadNotificationSchema, type JsonObject } from './helpers/openapi.js';
import { dropSchemas, emptySchema, freshSchemaPrefix, POSTGRES_TEST_URL } from './helpers/postgres.js';

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const FBS: CampaignConfig = { campaignId: 21001, businessId: 7001, model: 'FBS' };
const DBS: CampaignConfig = { campaignId: 21002, businessId: 7002, model: 'DBS' };
const CAMPAIGNS: ReadonlyMap<number, CampaignConfig> = new Map([FBS, DBS].map((c) => [c.campaignId, c]));
const UNCONFIGURED = 29999;

/** One valid body of every type the spec lists (the spec's own example values where it has them). */
const SAMPLES: Record<NotificationType, Record<string, unknown>> = {
  PING: { notificationType: 'PING', time: '2025-05-12T09:00:00.000Z' },
  ORDER_CREATED: { notificationType: 'ORDER_CREATED', orderId: 501, campaignId: FBS.campaignId, items: [{ offerId: 'SKU-1', count: 2 }], createdAt: '2025-05-12T11:59:00.000+03:00' },
  ORDER_CANCELLED: { notificationType: 'ORDER_CANCELLED', orderId: 502, campaignId: FBS.campaignId, items: [{ offerId: 'SKU-2', count: 1 }], cancelledAt: '2025-05-12T09:01:00Z' },
  ORDER_STATUS_UPDATED: { notificationType: 'ORDER_STATUS_UPDATED', orderId: 503, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updatedAt: '2025-05-12T09:02:00Z' },
  ORDER_RETURN_CREATED: { notificationType: 'ORDER_RETURN_CREATED', orderId: 504, returnId: 9, returnType: 'RETURN', campaignId: FBS.campaignId, items: [{ offerId: 'SKU-3', count: 1 }], createdAt: '2025-05-12T09:03:00Z' },
  ORDER_CANCELLATION_REQUEST: { notificationType: 'ORDER_CANCELLATION_REQUEST', orderId: 505, campaignId: DBS.campaignId, requestedAt: '2025-05-12T09:04:00Z' },
  ORDER_RETURN_STATUS_UPDATED: { notificationType: 'ORDER_RETURN_STATUS_UPDATED', orderId: 506, returnId: 10, campaignId: FBS.campaignId, statuses: { refundStatus: 'REFUNDED' }, updatedAt: '2025-05-12T09:05:00Z' },
  ORDER_UPDATED: { notificationType: 'ORDER_UPDATED', orderId: 507, campaignId: DBS.campaignId, updateType: 'DELIVERY_DATE_UPDATED', updatedAt: '2025-05-12T09:06:00Z' },
  GOODS_FEEDBACK_CREATED: { notificationType: 'GOODS_FEEDBACK_CREATED', feedbackId: 11, businessId: FBS.businessId, createdAt: '2025-05-12T09:07:00Z', publishedAt: '2025-05-12T10:07:00Z' },
  GOODS_FEEDBACK_COMMENT_CREATED: { notificationType: 'GOODS_FEEDBACK_COMMENT_CREATED', commentId: 12, businessId: FBS.businessId, createdAt: '2025-05-12T09:08:00Z' },
  CHAT_CREATED: { notificationType: 'CHAT_CREATED', chatId: 13, businessId: FBS.businessId, createdAt: '2025-05-12T09:09:00Z' },
  CHAT_MESSAGE_SENT: { notificationType: 'CHAT_MESSAGE_SENT', chatId: 13, messageId: 'm-1', businessId: FBS.businessId, sentAt: '2025-05-12T09:10:00Z' },
  CHAT_ARBITRAGE_STARTED: { notificationType: 'CHAT_ARBITRAGE_STARTED', chatId: 13, businessId: FBS.businessId, startedAt: '2025-05-12T09:11:00Z' },
  CHAT_ARBITRAGE_FINISHED: { notificationType: 'CHAT_ARBITRAGE_FINISHED', chatId: 13, businessId: FBS.businessId, finishedAt: '2025-05-12T09:12:00Z' },
  QUESTION_CREATED: { notificationType: 'QUESTION_CREATED', questionId: 14, businessId: FBS.businessId, createdAt: '2025-05-12T09:13:00Z' },
  QUESTION_ANSWER_CREATED: { notificationType: 'QUESTION_ANSWER_CREATED', answerId: 15, businessId: FBS.businessId, createdAt: '2025-05-12T09:14:00Z' },
  QUESTION_COMMENT_CREATED: { notificationType: 'QUESTION_COMMENT_CREATED', answerId: 15, commentId: 16, businessId: FBS.businessId, createdAt: '2025-05-12T09:15:00Z' },
};

/** The event time field of each type's sample (undefined: none). */
const EVENT_FIELD: Record<NotificationType, string | undefined> = {
  PING: undefined, ORDER_CREATED: 'createdAt', ORDER_CANCELLED: 'cancelledAt', ORDER_STATUS_UPDATED: 'updatedAt', ORDER_RETURN_CREATED: 'createdAt',
  ORDER_CANCELLATION_REQUEST: 'requestedAt', ORDER_RETURN_STATUS_UPDATED: 'updatedAt', ORDER_UPDATED: 'updatedAt', GOODS_FEEDBACK_CREATED: 'createdAt',
  GOODS_FEEDBACK_COMMENT_CREATED: 'createdAt', CHAT_CREATED: 'createdAt', CHAT_MESSAGE_SENT: 'sentAt', CHAT_ARBITRAGE_STARTED: 'startedAt',
  CHAT_ARBITRAGE_FINISHED: 'finishedAt', QUESTION_CREATED: 'createdAt', QUESTION_ANSWER_CREATED: 'createdAt', QUESTION_COMMENT_CREATED: 'createdAt',
};

const READ_TYPES = ['ORDER_CREATED', 'ORDER_CANCELLED', 'ORDER_CANCELLATION_REQUEST', 'ORDER_UPDATED'] as const;
const IGNORED_TYPES = NOTIFICATION_TYPES.filter((t) => t !== 'PING' && t !== 'ORDER_STATUS_UPDATED' && !(READ_TYPES as readonly string[]).includes(t));

const json = (value: unknown): string => JSON.stringify(value);

// ---- the spec ------------------------------------------------------------------------------------

const notificationSchema = (name: string): JsonObject => loadNotificationSchema(name);
const dtoOf = (schema: JsonObject): JsonObject => (schema.allOf as JsonObject[])[0]!;
const REQUEST = dtoOf(notificationSchema('SendNotificationRequest'));
const MAPPING = (REQUEST.discriminator as { mapping: Record<string, string> }).mapping;

function specDto(type: string): { properties: Record<string, JsonObject>; required: string[]; definitions: JsonObject } {
  const schema = notificationSchema(MAPPING[type]!.replace(/^\.\//, '').replace(/\.yaml$/, ''));
  const dto = dtoOf(schema);
  return { properties: dto.properties as Record<string, JsonObject>, required: (dto.required as string[] | undefined) ?? [], definitions: schema.definitions as JsonObject };
}

/** The JSON type a spec property has, following its $ref. */
function specType(property: JsonObject, definitions: JsonObject): string {
  const ref = property.$ref;
  if (typeof ref === 'string') return specType(definitions[ref.replace('#/definitions/', '')] as JsonObject, definitions);
  return String(property.type);
}

/** A value of the wrong JSON type for a property of `type`. */
const WRONG: Record<string, unknown> = { integer: 'x1', string: 12, array: { not: 'an array' }, object: ['not an object'] };

describe('the schemas follow notification-api/openapi', () => {
  it('know every notificationType of NotificationType.yaml and map each to its DTO', () => {
    const specTypes = ((notificationSchema('NotificationType').allOf as JsonObject[])[0]!.enum as string[]);
    expect([...NOTIFICATION_TYPES].sort()).toEqual([...specTypes].sort());
    expect(Object.keys(MAPPING).sort()).toEqual([...specTypes].sort());
    for (const type of NOTIFICATION_TYPES) expect(SendNotificationRequestSchema.safeParse(SAMPLES[type]).success, type).toBe(true);
  });

  it.each(NOTIFICATION_TYPES.filter((t) => t !== 'PING'))('%s: each property the DTO names, missing or of the wrong type, is a 400 that names it; keys it does not name are dropped', async (type) => {
    const { properties, required, definitions } = specDto(type);
    // The sample carries every property of the DTO, so a test below covers each.
    expect(Object.keys(SAMPLES[type]).filter((k) => !(k in properties))).toEqual([]);
    const receiver = new NotificationReceiver({ store: closedStore, campaigns: CAMPAIGNS, clock: () => T0 });
    for (const field of Object.keys(properties).filter((f) => f !== 'notificationType')) {
      const wrongType = { ...SAMPLES[type], [field]: WRONG[specType(properties[field]!, definitions)] };
      const answer = await receiver.handle(json(wrongType));
      expect(answer.status, `${type}.${field} wrong type`).toBe(400);
      expect(messageOf(answer)).toContain(`${field}:`);
      if (required.includes(field)) {
        const { [field]: _dropped, ...missing } = SAMPLES[type];
        const missingAnswer = await receiver.handle(json(missing));
        expect(missingAnswer.status, `${type}.${field} missing`).toBe(400);
        expect(messageOf(missingAnswer)).toContain(`${field}:`);
      }
    }
    const parsed = SendNotificationRequestSchema.parse({ ...SAMPLES[type], addedByTheMarketLater: 1 });
    expect(parsed).not.toHaveProperty('addedByTheMarketLater');
  });
});

// ---- the receiver, per adapter -----------------------------------------------------------------

const messageOf = (answer: NotificationAnswer): string => ('error' in answer.body ? answer.body.error.message : '');

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A store whose every transaction fails (DB_CLOSED): PING and bad bodies must not need one. */
let closedStore: Store;
beforeEach(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ym-notify-closed-'));
  dirs.push(dir);
  closedStore = SqliteStore.open(join(dir, 'closed.db'));
  await closedStore.close();
});

const available = inject('postgres');
const PREFIX = freshSchemaPrefix();
const SCHEMA = `${PREFIX}_receiver`;
let schemaMade = false;

interface Adapter {
  readonly name: string;
  readonly skip: boolean;
  open(): Promise<Store>;
}

const ADAPTERS: Adapter[] = [
  {
    name: 'SQLite file',
    skip: false,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'ym-notify-'));
      dirs.push(dir);
      return SqliteStore.open(join(dir, 'orders.db'));
    },
  },
  {
    name: 'PostgreSQL',
    skip: !available,
    // One schema, emptied before each test: a few milliseconds, where a new schema takes a second.
    async open() {
      if (schemaMade) await emptySchema(SCHEMA, POSTGRES_TEST_URL);
      schemaMade = true;
      return PostgresStore.connect(POSTGRES_TEST_URL, { schema: SCHEMA, now: T0 });
    },
  },
];

afterAll(async () => {
  if (available) await dropSchemas(PREFIX, POSTGRES_TEST_URL);
});

describe.each(ADAPTERS)('NotificationReceiver on $name', ({ skip, open }) => {
  let store: Store;
  let now: number;
  let receiver: NotificationReceiver;

  beforeEach(async () => {
    if (skip) return;
    store = await open();
    now = T0;
    receiver = new NotificationReceiver({ store, campaigns: CAMPAIGNS, clock: () => now, name: 'test-receiver', owner: 'test-owner', version: '2.0' });
  });
  afterEach(async () => {
    if (!skip) await store.close();
  });

  const inbox = (): Promise<InboxRow[]> => store.read((tx) => tx.inbox.recent(1_000));
  /** Every read request, through the port (a lease far in the future of each due business). */
  const reads = (): Promise<OrderReadRow[]> =>
    store.transaction(async (tx) => {
      const rows: OrderReadRow[] = [];
      for (const business of await tx.reads.dueBusinesses(Number.MAX_SAFE_INTEGER)) rows.push(...(await tx.reads.lease(business, 'probe', Number.MAX_SAFE_INTEGER, 1, 1_000)));
      return rows;
    });
  const counters = (): Promise<Record<string, number>> => store.read((tx) => tx.counters.forOwner('test-owner'));
  /** Nothing in the inbox, no read asked for, no counter: what a refused body must leave. */
  const expectNothingWritten = async (): Promise<void> => {
    expect(await inbox()).toEqual([]);
    expect(await store.read((tx) => tx.reads.count())).toBe(0);
    expect(await counters()).toEqual({});
  };

  it.skipIf(skip).each(READ_TYPES)('%s: 200 once stored; an inbox row (done) and a read request of the order in the same commit', async (type) => {
    const sample = SAMPLES[type];
    const campaign = CAMPAIGNS.get(sample.campaignId as number)!;
    const answer = await receiver.handle(json(sample));
    expect(answer).toMatchObject({ status: 200, outcome: 'stored', type });
    expect(SendNotificationResponseSchema.parse(answer.body)).toEqual({ version: '2.0', name: 'test-receiver', time: new Date(T0).toISOString() });

    const [row, ...others] = await inbox();
    expect(others).toEqual([]);
    expect(row).toMatchObject({
      type, state: 'done', campaign_id: campaign.campaignId, order_id: sample.orderId,
      event_at: Date.parse(sample[EVENT_FIELD[type]!] as string), received_at: T0, processed_at: T0, last_error: null,
    });
    expect(JSON.parse(row!.body)).toEqual(sample);
    expect(row!.dedupe_key).toMatch(/^[0-9a-f]{64}$/);
    expect(await reads()).toEqual([expect.objectContaining({ order_id: sample.orderId, campaign_id: campaign.campaignId, business_id: campaign.businessId, reason: type, requested_at: T0 })]);
    expect(await counters()).toEqual({ 'notifications.received': 1 });
  });

  it.skipIf(skip)('ORDER_STATUS_UPDATED: stored pending (applied later as an observation), no read asked for; an unknown status is data', async () => {
    const sample = { ...SAMPLES.ORDER_STATUS_UPDATED, status: 'SOME_NEW_STATUS', substatus: 'NEVER_SEEN_2' };
    expect(await receiver.handle(json(sample))).toMatchObject({ status: 200, outcome: 'stored', type: 'ORDER_STATUS_UPDATED' });
    const [row] = await inbox();
    expect(row).toMatchObject({ state: 'pending', order_id: 503, campaign_id: FBS.campaignId, event_at: Date.parse('2025-05-12T09:02:00Z') });
    expect(JSON.parse(row!.body)).toMatchObject({ status: 'SOME_NEW_STATUS', substatus: 'NEVER_SEEN_2' });
    expect(await store.read((tx) => tx.reads.count())).toBe(0);
  });

  it.skipIf(skip).each(IGNORED_TYPES)('%s: 200, stored as ignored, nothing asked for', async (type) => {
    expect(await receiver.handle(json(SAMPLES[type]))).toMatchObject({ status: 200, outcome: 'ignored', type });
    const [row] = await inbox();
    expect(row).toMatchObject({ type, state: 'ignored' });
    expect(row!.event_at).toBe(Date.parse(SAMPLES[type][EVENT_FIELD[type]!] as string));
    expect(await store.read((tx) => tx.reads.count())).toBe(0);
    expect(await counters()).toEqual({ 'notifications.received': 1, 'notifications.ignored': 1 });
  });

  it.skipIf(skip)('an order of a campaign not configured: 200, stored as ignored, no read', async () => {
    for (const type of [...READ_TYPES, 'ORDER_STATUS_UPDATED'] as const) {
      expect(await receiver.handle(json({ ...SAMPLES[type], campaignId: UNCONFIGURED }))).toMatchObject({ status: 200, outcome: 'ignored' });
    }
    expect((await inbox()).map((r) => [r.state, r.campaign_id])).toEqual(Array(5).fill(['ignored', UNCONFIGURED]));
    expect(await store.read((tx) => tx.reads.count())).toBe(0);
  });

  it.skipIf(skip)('a type the spec does not list: 200, stored ignored with only its type; two different ones stay two, a repeat is one', async () => {
    const first = { notificationType: 'ORDER_TELEPORTED', orderId: 1, campaignId: FBS.campaignId, where: { planet: 'Mars' } };
    const second = { ...first, where: { planet: 'Venus' } };
    expect(await receiver.handle(json(first))).toMatchObject({ status: 200, outcome: 'ignored', type: 'ORDER_TELEPORTED' });
    expect(await receiver.handle(json(second))).toMatchObject({ status: 200, outcome: 'ignored' });
    expect(await receiver.handle(json(first))).toMatchObject({ status: 200, outcome: 'duplicate' });
    const rows = await inbox();
    expect(rows.map((r) => [r.type, r.state, r.body, r.order_id, r.campaign_id])).toEqual(Array(2).fill(['ORDER_TELEPORTED', 'ignored', '{"notificationType":"ORDER_TELEPORTED"}', null, null]));
    expect(await counters()).toEqual({ 'notifications.received': 3, 'notifications.ignored': 2, 'notifications.duplicates': 1 });
  });

  it.skipIf(skip)('the same notification twice (keys reordered, a field the spec lacks, a SKU with blanks): one row, one read, 200 both times', async () => {
    const sample = SAMPLES.ORDER_CREATED;
    const reordered = Object.fromEntries(Object.entries({ ...sample, items: [{ count: 2, offerId: '  SKU-1 ' }], futureField: true }).reverse());
    const first = await receiver.handle(json(sample));
    now = T0 + 60_000;
    const second = await receiver.handle(Buffer.from(json(reordered)));
    expect([first.status, first.outcome, second.status, second.outcome]).toEqual([200, 'stored', 200, 'duplicate']);
    expect(await inbox()).toHaveLength(1);
    // The repeat asked for nothing: the read is still the first one's.
    expect(await reads()).toEqual([expect.objectContaining({ order_id: sample.orderId, requested_at: T0 })]);
    expect(await counters()).toEqual({ 'notifications.received': 2, 'notifications.duplicates': 1 });
    // A later event about the same order is news.
    expect(await receiver.handle(json({ ...sample, createdAt: '2025-05-12T12:00:00+03:00' }))).toMatchObject({ outcome: 'stored' });
    expect(await inbox()).toHaveLength(2);
  });

  it.skipIf(skip)('the same notification 12 times at once: one row, every answer 200, exactly one of them stored', async () => {
    const body = json(SAMPLES.ORDER_UPDATED);
    const answers = await Promise.all(Array.from({ length: 12 }, () => receiver.handle(body)));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(200));
    expect(answers.filter((a) => a.outcome === 'stored')).toHaveLength(1);
    expect(answers.filter((a) => a.outcome === 'duplicate')).toHaveLength(11);
    expect(await inbox()).toHaveLength(1);
    expect(await store.read((tx) => tx.reads.count())).toBe(1);
    expect(await counters()).toEqual({ 'notifications.received': 12, 'notifications.duplicates': 11 });
  });

  it.skipIf(skip)('wrong types, missing fields, bad dates and ids: 400 WRONG_EVENT_FORMAT naming each field, nothing written', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, orderId: '503' }, 'orderId:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, orderId: 2 ** 53 }, 'orderId:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, orderId: 1.5 }, 'orderId:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, campaignId: 0 }, 'campaignId:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, status: 'processing' }, 'status:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, substatus: '' }, 'substatus:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, updatedAt: '2025-05-12 09:02:00' }, 'updatedAt:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, updatedAt: '2025-02-30T09:02:00Z' }, 'updatedAt:'],
      [{ ...SAMPLES.ORDER_STATUS_UPDATED, updatedAt: '2025-05-12T09:02:00' }, 'updatedAt:'],
      [{ ...SAMPLES.ORDER_CREATED, items: [{ offerId: 'A', count: 1 }, { offerId: 'B', count: 1.5 }] }, 'items.1.count:'],
      [{ ...SAMPLES.ORDER_CREATED, items: [{ offerId: '   ', count: 1 }] }, 'items.0.offerId:'],
      [{ ...SAMPLES.ORDER_CREATED, items: [{ offerId: 'bad\nsku', count: 1 }] }, 'items.0.offerId:'],
      [{ ...SAMPLES.ORDER_RETURN_STATUS_UPDATED, statuses: { refundStatus: 7 } }, 'statuses.refundStatus:'],
      [{ ...SAMPLES.PING, time: 'now' }, 'time:'],
      [{ orderId: 1 }, 'notificationType:'],
      [{ notificationType: 42 }, 'notificationType:'],
      [{ notificationType: 'lower case' }, 'notificationType:'],
    ];
    for (const [body, field] of cases) {
      const answer = await receiver.handle(json(body));
      expect(answer, field).toMatchObject({ status: 400, outcome: 'invalid', body: { error: { type: 'WRONG_EVENT_FORMAT' } } });
      expect(messageOf(answer)).toContain(field);
    }
    for (const body of ['', 'not json', '[1,2]', 'null', '"PING"', '{"notificationType":"PING"', new Uint8Array([0x7b, 0xff, 0x7d])]) {
      expect(await receiver.handle(body), String(body)).toMatchObject({ status: 400, outcome: 'invalid' });
    }
    await expectNothingWritten();
    expect(receiver.stats()).toMatchObject({ invalid: cases.length + 7, stored: 0 });
  });

  it.skipIf(skip)('hostile JSON: over the size cap, nested too deep, prototype keys: 400, nothing written, no prototype touched', async () => {
    const over = json({ ...SAMPLES.ORDER_CREATED, pad: 'x'.repeat(NOTIFICATION_LIMITS.maxBodyBytes) });
    expect(messageOf(await receiver.handle(over))).toMatch(/over the limit of 262144 bytes/);
    // Multi-byte text: measured in UTF-8 bytes, not characters.
    const wide = json({ ...SAMPLES.ORDER_CREATED, pad: 'я'.repeat(NOTIFICATION_LIMITS.maxBodyBytes / 2) });
    expect(wide.length).toBeLessThan(NOTIFICATION_LIMITS.maxBodyBytes);
    expect((await receiver.handle(wide)).status).toBe(400);

    const nested = (depth: number): string => `{"notificationType":"SOMETHING_NEW","a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    expect(await receiver.handle(nested(NOTIFICATION_LIMITS.maxDepth))).toMatchObject({ status: 200, outcome: 'ignored' });
    const deep = await receiver.handle(nested(NOTIFICATION_LIMITS.maxDepth + 1));
    expect(deep).toMatchObject({ status: 400 });
    expect(messageOf(deep)).toContain('nested deeper than 32 levels');
    // Brackets inside strings are text, not nesting.
    expect((await receiver.handle(json({ notificationType: 'SOMETHING_ELSE', text: '['.repeat(1000) }))).status).toBe(200);
    // Refused by counting brackets, before JSON.parse builds 200 000 arrays.
    expect(messageOf(await receiver.handle(`[`.repeat(200_000)))).toContain('nested deeper than 32 levels');

    for (const body of [
      '{"notificationType":"PING","__proto__":{"polluted":true}}',
      '{"notificationType":"ORDER_TELEPORTED","a":{"b":[{"__proto__":{"polluted":true}}]}}',
      '{"notificationType":"ORDER_TELEPORTED","constructor":{"prototype":{"polluted":true}}}',
      `{"notificationType":"ORDER_CREATED","orderId":1,"campaignId":${FBS.campaignId},"items":[],"createdAt":"2025-05-12T09:00:00Z","prototype":1}`,
    ]) {
      const answer = await receiver.handle(body);
      expect(answer, body).toMatchObject({ status: 400, outcome: 'invalid' });
      expect(messageOf(answer)).toMatch(/(__proto__|constructor|prototype): this key is not accepted/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');

    // In-process values: a cycle is too deep, a class instance is no JSON.
    const cyclic: Record<string, unknown> = { notificationType: 'PING' };
    cyclic.self = cyclic;
    expect((await receiver.handle(cyclic)).status).toBe(400);
    expect((await receiver.handle({ ...SAMPLES.ORDER_CREATED, createdAt: new Date(T0) })).status).toBe(400);
    expect(await receiver.handle(SAMPLES.ORDER_CREATED)).toMatchObject({ status: 200, outcome: 'stored' });

    const rows = await inbox();
    expect(rows.map((r) => r.type).sort()).toEqual(['ORDER_CREATED', 'SOMETHING_ELSE', 'SOMETHING_NEW']);
  });

  it.skipIf(skip)('a large message is cut: a body wrong in every field answers at most 500 characters', async () => {
    const wrongEverywhere = { notificationType: 'ORDER_CREATED', orderId: 'x', campaignId: 'x', items: Array.from({ length: 200 }, () => ({ offerId: 1, count: 'x' })), createdAt: 1 };
    const answer = await receiver.handle(json(wrongEverywhere));
    expect(answer.status).toBe(400);
    expect(messageOf(answer).length).toBeLessThanOrEqual(500);
    const longKey = `{"notificationType":"X","${'k'.repeat(10_000)}":{"__proto__":1}}`;
    expect(messageOf(await receiver.handle(longKey)).length).toBeLessThan(200);
  });

  it.skipIf(skip)('PING: 200 without the store (it works with the store closed), counted only in memory', async () => {
    await store.close();
    const answer = await receiver.handle(json(SAMPLES.PING));
    expect(answer).toMatchObject({ status: 200, outcome: 'ping', type: 'PING', body: { name: 'test-receiver', version: '2.0' } });
    expect(await receiver.handle('{"notificationType":"PING"}')).toMatchObject({ status: 200, outcome: 'ping' });
    expect(receiver.stats()).toMatchObject({ ping: 2 });
  });

  it.skipIf(skip)('our own failure (the store is closed): 500 UNKNOWN, nothing stored, the message names the code, not the database', async () => {
    await store.close();
    const answer = await receiver.handle(json(SAMPLES.ORDER_CREATED));
    expect(answer).toMatchObject({ status: 500, outcome: 'failed', type: 'ORDER_CREATED', errorCode: 'DB_CLOSED', body: { error: { type: 'UNKNOWN' } } });
    expect(messageOf(answer)).toContain('DB_CLOSED');
    expect(messageOf(answer)).not.toContain(store.name);
    store = await open();
    receiver = new NotificationReceiver({ store, campaigns: CAMPAIGNS, clock: () => now, name: 'test-receiver' });
    expect(await inbox()).toEqual([]);
  });

  it.skipIf(skip)('a failure inside the transaction rolls back the inbox row: the retry is stored, not a duplicate', async () => {
    const failing: Store = {
      name: store.name,
      wakeups: store.wakeups,
      onQueued: (l) => store.onQueued(l),
      read: (fn) => store.read(fn),
      close: () => store.close(),
      transaction: (fn) => store.transaction(async (tx) => fn({ ...tx, reads: { ...tx.reads, request: () => Promise.reject(new Error('planted')) } })),
    };
    const flaky = new NotificationReceiver({ store: failing, campaigns: CAMPAIGNS, clock: () => now, name: 'test-receiver' });
    expect(await flaky.handle(json(SAMPLES.ORDER_CREATED))).toMatchObject({ status: 500, errorCode: 'INTERNAL' });
    await expectNothingWritten();
    expect(await receiver.handle(json(SAMPLES.ORDER_CREATED))).toMatchObject({ status: 200, outcome: 'stored' });
  });

  /** `store`, with its transactions counted and, where `plant` says so, a read request that fails. */
  const instrumented = (plant: (orderId: number) => boolean = () => false) => {
    const counted = { transactions: 0 };
    const wrapped: Store = {
      name: store.name,
      wakeups: store.wakeups,
      onQueued: (l) => store.onQueued(l),
      read: (fn) => store.read(fn),
      close: () => store.close(),
      transaction: (fn) => {
        counted.transactions++;
        return store.transaction(async (tx) =>
          fn({ ...tx, reads: { ...tx.reads, request: (r) => (plant(r.orderId) ? Promise.reject(new Error('planted')) : tx.reads.request(r)) } }),
        );
      },
    };
    return { counted, receiver: new NotificationReceiver({ store: wrapped, campaigns: CAMPAIGNS, clock: () => now, name: 'test-receiver', owner: 'test-owner' }) };
  };
  const created = (orderId: number) => json({ ...SAMPLES.ORDER_CREATED, orderId });

  it.skipIf(skip)('notifications that arrive together share a commit (group commit): each acknowledged only once stored, in fewer transactions', async () => {
    const { counted, receiver: batching } = instrumented();
    const ids = Array.from({ length: 60 }, (_, i) => 8_000 + i);
    // The same notification twice in one batch is still one row.
    const answers = await Promise.all([...ids.map((id) => batching.handle(created(id))), batching.handle(created(ids[0]!))]);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(answers.filter((a) => a.outcome === 'stored')).toHaveLength(60);
    expect(answers.filter((a) => a.outcome === 'duplicate')).toHaveLength(1);
    expect(counted.transactions).toBeLessThan(answers.length / 2);
    expect((await inbox()).map((r) => r.order_id).sort()).toEqual(ids);
    expect((await reads()).map((r) => r.order_id).sort()).toEqual(ids);
    expect(await counters()).toMatchObject({ 'notifications.received': 61, 'notifications.duplicates': 1 });
  });

  it.skipIf(skip)('one notification whose write fails does not fail the others of its batch: it alone is answered 500, the rest are stored', async () => {
    const { receiver: batching } = instrumented((orderId) => orderId === 8_013);
    const ids = Array.from({ length: 30 }, (_, i) => 8_000 + i);
    const answers = await Promise.all(ids.map((id) => batching.handle(created(id))));
    expect(answers.filter((a) => a.status === 500)).toHaveLength(1);
    expect(answers[13]).toMatchObject({ status: 500, outcome: 'failed' });
    expect((await inbox()).map((r) => r.order_id).sort()).toEqual(ids.filter((id) => id !== 8_013));
    // Sent again (as the Market does after a 500) once the store is well, it is stored.
    expect(await receiver.handle(created(8_013))).toMatchObject({ status: 200, outcome: 'stored' });
  });
});

describe('NotificationReceiver options', () => {
  it('refuses a body limit, name or version out of range (NOTIFY_BAD_OPTION)', () => {
    const base = { store: closedStore, campaigns: CAMPAIGNS, clock: () => T0 };
    for (const [bad, option] of [[{ maxBodyBytes: 0 }, 'maxBodyBytes'], [{ maxBodyBytes: 1.5 }, 'maxBodyBytes'], [{ name: '' }, 'name'], [{ version: 'v'.repeat(101) }, 'version']] as const) {
      expect(() => new NotificationReceiver({ ...base, ...bad })).toThrow(NotificationOptionError);
      expect(() => new NotificationReceiver({ ...base, ...bad })).toThrow(expect.objectContaining({ code: NOTIFICATION_ERROR_CODES.badOption, option }));
    }
  });

  it('maxBodyBytes: a smaller limit refuses what the default takes', async () => {
    const limit = json(SAMPLES.PING).length;
    const small = new NotificationReceiver({ store: closedStore, campaigns: CAMPAIGNS, clock: () => T0, maxBodyBytes: limit });
    expect(await small.handle(json(SAMPLES.PING))).toMatchObject({ status: 200 });
    expect(messageOf(await small.handle(json({ ...SAMPLES.PING, pad: 'x' })))).toContain(`limit of ${limit} bytes`);
  });
});
