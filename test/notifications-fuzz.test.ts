// Hostile bodies against the receiver (fast-check, the suite's fixed seed): random JSON, random
// bytes, huge strings, deep nesting, wrong types in known notifications, prototype keys. Every
// answer is a typed 200 or 400, never a 500; a 400 writes nothing; no prototype is touched; and
// over HTTP the server keeps serving. The other way round: every notification the spec accepts
// (checked with ajv against notification-api/openapi) is answered 200 and stored.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CampaignConfig } from '../src/engine/commands.js';
import { createNotificationHttpHandler } from '../src/notifications/http.js';
import { NotificationReceiver, type NotificationAnswer } from '../src/notifications/receiver.js';
import { NOTIFICATION_LIMITS, NOTIFICATION_TYPES, SendNotificationResponseSchema } from '../src/notifications/schemas.js';
import type { Store } from '../src/store/port.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { loadNotificationSchema, type JsonObject } from './helpers/openapi.js';

const T0 = Date.UTC(2025, 4, 12, 9, 0, 0);
const FBS: CampaignConfig = { campaignId: 41001, businessId: 9101, model: 'FBS' };
const CAMPAIGNS = new Map([[FBS.campaignId, FBS]]);

const BASES: Record<string, Record<string, unknown>> = {
  ORDER_CREATED: { notificationType: 'ORDER_CREATED', orderId: 1, campaignId: FBS.campaignId, items: [{ offerId: 'A', count: 1 }], createdAt: '2025-05-12T09:00:00Z' },
  ORDER_STATUS_UPDATED: { notificationType: 'ORDER_STATUS_UPDATED', orderId: 2, campaignId: FBS.campaignId, status: 'DELIVERY', substatus: 'UNKNOWN', updatedAt: '2025-05-12T09:00:00Z' },
  ORDER_RETURN_STATUS_UPDATED: { notificationType: 'ORDER_RETURN_STATUS_UPDATED', orderId: 3, returnId: 4, campaignId: FBS.campaignId, statuses: { shipmentStatus: 'PICKED' }, updatedAt: '2025-05-12T09:00:00Z' },
  CHAT_MESSAGE_SENT: { notificationType: 'CHAT_MESSAGE_SENT', chatId: 5, messageId: 'm', businessId: FBS.businessId, sentAt: '2025-05-12T09:00:00Z' },
};

// ---- hostile bodies ----------------------------------------------------------------------------

const FORBIDDEN = ['__proto__', 'constructor', 'prototype'] as const;

/** A known notification with one field replaced by any JSON value (often of the wrong type). */
const wrongField = fc.record({
  base: fc.constantFrom(...Object.values(BASES)),
  field: fc.constantFrom('orderId', 'campaignId', 'items', 'status', 'substatus', 'updatedAt', 'createdAt', 'statuses', 'chatId', 'notificationType'),
  value: fc.jsonValue({ maxDepth: 3 }),
}).map(({ base, field, value }) => JSON.stringify({ ...base, [field]: value }));

/** A body with a prototype key somewhere: JSON text written by hand, since an object literal cannot hold an own `__proto__`. */
const prototypeKey = fc.record({
  key: fc.constantFrom(...FORBIDDEN),
  inner: fc.jsonValue({ maxDepth: 2 }),
  base: fc.constantFrom(...Object.values(BASES), { notificationType: 'NOT_YET_IN_SPEC' }),
  nested: fc.boolean(),
}).map(({ key, inner, base, nested }) => {
  const planted = `${JSON.stringify(key)}:{"polluted":true,"x":${JSON.stringify(inner)}}`;
  const text = JSON.stringify(base);
  return nested ? `${text.slice(0, -1)},"deep":[{${planted}}]}` : `{${planted},${text.slice(1)}`;
});

const deepNesting = fc.record({ depth: fc.integer({ min: 1, max: 5_000 }), open: fc.constantFrom('[', '{"a":'), closed: fc.boolean() }).map(({ depth, open, closed }) => {
  const close = open === '[' ? ']' : '}';
  return `{"notificationType":"PING","x":${open.repeat(depth)}1${closed ? close.repeat(depth) : ''}}`;
});

/** Strings around and far over the size cap, with multi-byte characters (the cap counts bytes). */
const hugeString = fc.record({ kb: fc.integer({ min: 100, max: 600 }), char: fc.constantFrom('x', 'я', '€', '"', '\\\\'), type: fc.constantFrom('ORDER_CREATED', 'PING', 'WHATEVER') })
  .map(({ kb, char, type }) => `{"notificationType":"${type}","pad":"${char.repeat(Math.floor((kb * 1024) / Buffer.byteLength(char)))}"}`);

const randomJsonText = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.record({ notificationType: fc.constantFrom(...NOTIFICATION_TYPES), v: fc.jsonValue({ maxDepth: 3 }) }).map((body) => JSON.stringify(body)),
  fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })).map((d) => JSON.stringify({ ...d, notificationType: 'ORDER_UPDATED' })),
  fc.string({ maxLength: 200 }),
);

/** A valid notification with keys the spec does not name (the Market adding fields): 200, the keys dropped. */
const extraFields = fc.record({
  base: fc.constantFrom(...Object.values(BASES)),
  extra: fc.dictionary(fc.string({ maxLength: 12 }).filter((k) => !(FORBIDDEN as readonly string[]).includes(k)).map((k) => `x_${k}`), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
}).map(({ base, extra }) => JSON.stringify({ ...extra, ...base }));

const hostile: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { arbitrary: extraFields, weight: 3 },
  { arbitrary: wrongField, weight: 4 },
  { arbitrary: prototypeKey, weight: 3 },
  { arbitrary: deepNesting, weight: 2 },
  { arbitrary: hugeString, weight: 1 },
  { arbitrary: randomJsonText, weight: 4 },
  { arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 2 },
);

// ---- spec-valid notifications --------------------------------------------------------------------

const addFormats = ajvFormats.default;
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const notificationSchema = (name: string): JsonObject => loadNotificationSchema(name);
const enumOf = (name: string): string[] => ((notificationSchema(name).allOf as JsonObject[])[0]!.enum as string[]);
// By the DTO its discriminator names: the oneOf itself matches nothing but PING, whose DTO
// requires nothing and so also matches every other notification.
const MAPPING = (((notificationSchema('SendNotificationRequest').allOf as JsonObject[])[0]!.discriminator) as { mapping: Record<string, string> }).mapping;
const validators = new Map<string, ValidateFunction>();
function validByDto(body: Record<string, unknown>): { valid: boolean; errors: unknown } {
  const file = MAPPING[String(body.notificationType)]!.replace(/^\.\//, '').replace(/\.yaml$/, '');
  let validate = validators.get(file);
  if (validate === undefined) {
    validate = ajv.compile(notificationSchema(file));
    validators.set(file, validate);
  }
  return { valid: validate(body), errors: validate.errors };
}

const id = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const instant = fc.integer({ min: Date.UTC(2015, 0, 1), max: Date.UTC(2035, 0, 1) }).chain((ms) =>
  fc.constantFrom(new Date(ms).toISOString(), new Date(ms).toISOString().replace('Z', '+00:00'), new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')),
);
const sku = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,30}[A-Za-z0-9]$/);
const items = fc.array(fc.record({ offerId: sku, count: fc.integer({ min: 0, max: 1000 }) }), { maxLength: 5 });
const campaignId = fc.constantFrom(FBS.campaignId, 555);

const specValid: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ notificationType: fc.constant('PING'), time: instant }, { requiredKeys: ['notificationType'] }),
  fc.record({ notificationType: fc.constant('ORDER_CREATED'), orderId: id, campaignId, items, createdAt: instant }),
  fc.record({ notificationType: fc.constant('ORDER_STATUS_UPDATED'), orderId: id, campaignId, status: fc.constantFrom(...enumOf('OrderStatusType')), substatus: fc.constantFrom(...enumOf('OrderSubstatusType')), updatedAt: instant }),
  fc.record({ notificationType: fc.constant('ORDER_CANCELLED'), orderId: id, campaignId, items, cancelledAt: instant }),
  fc.record({ notificationType: fc.constant('ORDER_CANCELLATION_REQUEST'), orderId: id, campaignId, requestedAt: instant }),
  fc.record({ notificationType: fc.constant('ORDER_UPDATED'), orderId: id, campaignId, updateType: fc.constantFrom(...enumOf('OrderUpdateType')), updatedAt: instant }),
  fc.record({ notificationType: fc.constant('ORDER_RETURN_CREATED'), orderId: id, returnId: id, returnType: fc.constantFrom(...enumOf('ReturnType')), campaignId, items, createdAt: instant }),
  fc.record({
    notificationType: fc.constant('ORDER_RETURN_STATUS_UPDATED'), orderId: id, returnId: id, campaignId,
    statuses: fc.record({ refundStatus: fc.constantFrom(...enumOf('RefundStatusType')), shipmentStatus: fc.constantFrom(...enumOf('ReturnShipmentStatusType')) }, { requiredKeys: [] }),
    updatedAt: instant,
  }),
  fc.record({ notificationType: fc.constant('GOODS_FEEDBACK_CREATED'), feedbackId: id, businessId: id, createdAt: instant, publishedAt: instant }),
  fc.record({ notificationType: fc.constant('GOODS_FEEDBACK_COMMENT_CREATED'), commentId: id, businessId: id, createdAt: instant }),
  fc.record({ notificationType: fc.constant('CHAT_CREATED'), chatId: id, businessId: id, createdAt: instant }),
  fc.record({ notificationType: fc.constant('CHAT_MESSAGE_SENT'), chatId: id, messageId: fc.string({ minLength: 1, maxLength: 40 }), businessId: id, sentAt: instant }),
  fc.record({ notificationType: fc.constant('CHAT_ARBITRAGE_STARTED'), chatId: id, businessId: id, startedAt: instant }),
  fc.record({ notificationType: fc.constant('CHAT_ARBITRAGE_FINISHED'), chatId: id, businessId: id, finishedAt: instant }),
  fc.record({ notificationType: fc.constant('QUESTION_CREATED'), questionId: id, businessId: id, createdAt: instant }),
  fc.record({ notificationType: fc.constant('QUESTION_ANSWER_CREATED'), answerId: id, businessId: id, createdAt: instant }),
  fc.record({ notificationType: fc.constant('QUESTION_COMMENT_CREATED'), answerId: id, commentId: id, businessId: id, createdAt: instant }),
);

// ---- checks --------------------------------------------------------------------------------------

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

function expectTypedAnswer(answer: NotificationAnswer): void {
  expect([200, 400]).toContain(answer.status);
  if (answer.status === 200) {
    expect(SendNotificationResponseSchema.safeParse(answer.body).success).toBe(true);
  } else {
    expect(answer.outcome).toBe('invalid');
    const { error } = answer.body as { error: { type: string; message: string } };
    expect(error.type).toBe('WRONG_EVENT_FORMAT');
    expect(typeof error.message).toBe('string');
    expect(error.message.length).toBeLessThanOrEqual(500);
  }
}

function expectNoPollution(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS);
}

let dir: string;
let store: Store;
let receiver: NotificationReceiver;
const inboxSize = async (): Promise<number> => {
  const c = await store.read((tx) => tx.inbox.counts());
  return c.pending + c.done + c.ignored;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ym-notify-fuzz-'));
  store = SqliteStore.open(join(dir, 'orders.db'));
  receiver = new NotificationReceiver({ store, campaigns: CAMPAIGNS, clock: () => T0 });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('hostile bodies', () => {
  it('every answer is a typed 200 or 400, never a 500; a 400 stores nothing; no prototype is touched', async () => {
    const seen = { 200: 0, 400: 0 };
    await fc.assert(
      fc.asyncProperty(hostile, async (body) => {
        const before = await inboxSize();
        const answer = await receiver.handle(body);
        expectTypedAnswer(answer);
        seen[answer.status as 200 | 400]++;
        if (answer.status === 400) expect(await inboxSize()).toBe(before);
        expectNoPollution();
      }),
      { numRuns: 400 },
    );
    // The generators reach both answers (a generator that only made 400s would prove little).
    expect(seen[200]).toBeGreaterThan(20);
    expect(seen[400]).toBeGreaterThan(100);
    expect(receiver.stats().failed).toBe(0);
  });

  it('a prototype key anywhere, or nesting past the cap, is always refused and stores nothing', async () => {
    const tooDeep = fc.integer({ min: NOTIFICATION_LIMITS.maxDepth, max: 5_000 }).map((depth) => `{"notificationType":"PING","x":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    await fc.assert(
      fc.asyncProperty(fc.oneof(prototypeKey, tooDeep), async (body) => {
        const before = await inboxSize();
        const answer = await receiver.handle(body);
        expect(answer.status).toBe(400);
        expect((answer.body as { error: { message: string } }).error.message).toMatch(/this key is not accepted|nested deeper than 32 levels/);
        expect(await inboxSize()).toBe(before);
        expectNoPollution();
      }),
      { numRuns: 150 },
    );
  });

  it('over HTTP: every answer is 200, 400 or 413 with a JSON body, and the server keeps serving', async () => {
    const handler = createNotificationHttpHandler({ receiver, maxBodyBytes: NOTIFICATION_LIMITS.maxBodyBytes });
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const post = (body: string | Uint8Array): Promise<{ status: number; body: unknown }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/notification', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      await fc.assert(
        fc.asyncProperty(hostile, async (body) => {
          const reply = await post(body);
          expect([200, 400, 413]).toContain(reply.status);
          expect(reply.body).toEqual(expect.any(Object));
          if (reply.status !== 200) expect((reply.body as { error: { type: string } }).error.type).toBe('WRONG_EVENT_FORMAT');
          expectNoPollution();
        }),
        { numRuns: 120 },
      );
      expect(await post('{"notificationType":"PING"}')).toMatchObject({ status: 200 });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('what the spec accepts', () => {
  it('every notification valid by notification-api/openapi is answered 200 and, but PING, stored (once)', async () => {
    await fc.assert(
      fc.asyncProperty(specValid, async (notification) => {
        // The generator itself is checked against the spec, so the property is about the spec.
        const spec = validByDto(notification);
        expect(spec.valid, JSON.stringify(spec.errors)).toBe(true);
        const before = await inboxSize();
        const answer = await receiver.handle(JSON.stringify(notification));
        expect(answer.status, JSON.stringify(answer.body)).toBe(200);
        expect(answer.type).toBe(notification.notificationType);
        const expected = notification.notificationType === 'PING' ? ['ping'] : ['stored', 'ignored', 'duplicate'];
        expect(expected).toContain(answer.outcome);
        expect(await inboxSize()).toBe(before + (answer.outcome === 'ping' || answer.outcome === 'duplicate' ? 0 : 1));
        // The same again is a duplicate, however its keys are ordered.
        const again = await receiver.handle(JSON.stringify(Object.fromEntries(Object.entries(notification).reverse())));
        if (answer.outcome !== 'ping') expect(again.outcome).toBe('duplicate');
      }),
      { numRuns: 300 },
    );
  });
});
