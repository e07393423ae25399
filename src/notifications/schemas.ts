// What a notification is, from the bytes the Market posts to the validated object we store:
// zod schemas made from shared/market-api/notification-api/openapi (SendNotificationRequest, a
// oneOf discriminated on notificationType, and the DTOs it references), and a JSON reader that
// a hostile body cannot make expensive.
//
// Known types are strict about what they require and about types (an id that is a string, a
// date that is no ISO 8601 instant are 400s) and strip keys the spec does not name, so the Market
// adding a field never turns into a 400 (a 400 is not retried: the notification would be lost).
// Statuses, substatuses and the other enums are open (the spec says other values may come): any
// upper-case code is data. A notificationType the spec does not list is parsed by a fallback that
// keeps only the type: it is stored and ignored, never a 400.

import { z } from 'zod';
import { clipText, NotificationFormatError, NotificationTooLargeError, type NotificationIssue } from './errors.js';

/** NotificationType.yaml, in its order. */
export const NOTIFICATION_TYPES = [
  'PING',
  'ORDER_CREATED',
  'ORDER_CANCELLED',
  'ORDER_STATUS_UPDATED',
  'ORDER_RETURN_CREATED',
  'ORDER_CANCELLATION_REQUEST',
  'ORDER_RETURN_STATUS_UPDATED',
  'ORDER_UPDATED',
  'GOODS_FEEDBACK_CREATED',
  'GOODS_FEEDBACK_COMMENT_CREATED',
  'CHAT_CREATED',
  'CHAT_MESSAGE_SENT',
  'CHAT_ARBITRAGE_STARTED',
  'CHAT_ARBITRAGE_FINISHED',
  'QUESTION_CREATED',
  'QUESTION_ANSWER_CREATED',
  'QUESTION_COMMENT_CREATED',
] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export function isKnownNotificationType(type: string): type is NotificationType {
  return (NOTIFICATION_TYPES as readonly string[]).includes(type);
}

// ---- field shapes ----------------------------------------------------------------------------

/** int64 ids (CampaignId, BusinessId: minimum 1): z.int() is a safe integer, so a rounded id is refused. */
const Id = z.int().positive();
/** Open enums (OrderStatusType, OrderSubstatusType, OrderUpdateType, ReturnType, the return statuses) and unknown notification types. */
const OpenCode = z.string().min(1).max(100).regex(/^[A-Z0-9_]+$/, 'expected an upper-case code (A-Z, 0-9, _)');
/** "ISO 8601 со смещением относительно UTC", e.g. 2017-11-21T00:00:00.213Z: an offset is required. */
const DateTime = z.iso.datetime({ offset: true });
/** ShopSku.yaml: 1..255 characters, not only blanks, no control characters but tab; trimmed (x-transform). */
const ShopSku = z.string().min(1).max(255).regex(/^(?=.*\S.*)[^\x00-\x08\x0A-\x1f\x7f]{1,255}$/, 'expected a SKU: 1-255 characters, not blank, no control characters').trim();

/** NotificationOrderItemDTO.yaml and NotificationReturnItemDTO.yaml (the same shape). */
const ItemSchema = z.object({ offerId: ShopSku, count: z.int() });

const type = <T extends NotificationType>(value: T) => z.literal(value);

// ---- the DTOs ----------------------------------------------------------------------------------

export const PingNotificationSchema = z.object({ notificationType: type('PING'), time: DateTime.optional() });

export const OrderCreatedNotificationSchema = z.object({
  notificationType: type('ORDER_CREATED'), orderId: Id, campaignId: Id, items: z.array(ItemSchema), createdAt: DateTime,
});
export const OrderStatusUpdatedNotificationSchema = z.object({
  notificationType: type('ORDER_STATUS_UPDATED'), orderId: Id, campaignId: Id, status: OpenCode, substatus: OpenCode, updatedAt: DateTime,
});
export const OrderCancelledNotificationSchema = z.object({
  notificationType: type('ORDER_CANCELLED'), orderId: Id, campaignId: Id, items: z.array(ItemSchema), cancelledAt: DateTime,
});
export const OrderCancellationRequestNotificationSchema = z.object({
  notificationType: type('ORDER_CANCELLATION_REQUEST'), orderId: Id, campaignId: Id, requestedAt: DateTime,
});
export const OrderReturnCreatedNotificationSchema = z.object({
  notificationType: type('ORDER_RETURN_CREATED'), orderId: Id, returnId: Id, returnType: OpenCode, campaignId: Id, items: z.array(ItemSchema), createdAt: DateTime,
});
/** NotificationUpdatedReturnStatusesDTO.yaml: only the status that changed comes. */
const ReturnStatusesSchema = z.object({ refundStatus: OpenCode.optional(), shipmentStatus: OpenCode.optional() });
export const OrderReturnStatusUpdatedNotificationSchema = z.object({
  notificationType: type('ORDER_RETURN_STATUS_UPDATED'), orderId: Id, returnId: Id, campaignId: Id, statuses: ReturnStatusesSchema, updatedAt: DateTime,
});
export const OrderUpdatedNotificationSchema = z.object({
  notificationType: type('ORDER_UPDATED'), orderId: Id, campaignId: Id, updateType: OpenCode, updatedAt: DateTime,
});
export const GoodsFeedbackCreatedNotificationSchema = z.object({
  notificationType: type('GOODS_FEEDBACK_CREATED'), feedbackId: Id, businessId: Id, createdAt: DateTime, publishedAt: DateTime,
});
export const GoodsFeedbackCommentCreatedNotificationSchema = z.object({
  notificationType: type('GOODS_FEEDBACK_COMMENT_CREATED'), commentId: Id, businessId: Id, createdAt: DateTime,
});
export const ChatCreatedNotificationSchema = z.object({
  notificationType: type('CHAT_CREATED'), chatId: Id, businessId: Id, createdAt: DateTime,
});
export const ChatMessageSentNotificationSchema = z.object({
  notificationType: type('CHAT_MESSAGE_SENT'), chatId: Id, messageId: z.string().min(1).max(1000), businessId: Id, sentAt: DateTime,
});
export const ChatArbitrageStartedNotificationSchema = z.object({
  notificationType: type('CHAT_ARBITRAGE_STARTED'), chatId: Id, businessId: Id, startedAt: DateTime,
});
export const ChatArbitrageFinishedNotificationSchema = z.object({
  notificationType: type('CHAT_ARBITRAGE_FINISHED'), chatId: Id, businessId: Id, finishedAt: DateTime,
});
export const QuestionCreatedNotificationSchema = z.object({
  notificationType: type('QUESTION_CREATED'), questionId: Id, businessId: Id, createdAt: DateTime,
});
export const QuestionAnswerCreatedNotificationSchema = z.object({
  notificationType: type('QUESTION_ANSWER_CREATED'), answerId: Id, businessId: Id, createdAt: DateTime,
});
export const QuestionCommentCreatedNotificationSchema = z.object({
  notificationType: type('QUESTION_COMMENT_CREATED'), answerId: Id, commentId: Id, businessId: Id, createdAt: DateTime,
});

/** SendNotificationRequest.yaml: one DTO per notificationType. */
export const SendNotificationRequestSchema = z.discriminatedUnion('notificationType', [
  PingNotificationSchema,
  OrderCreatedNotificationSchema,
  OrderStatusUpdatedNotificationSchema,
  OrderCancelledNotificationSchema,
  OrderCancellationRequestNotificationSchema,
  OrderReturnCreatedNotificationSchema,
  OrderReturnStatusUpdatedNotificationSchema,
  OrderUpdatedNotificationSchema,
  GoodsFeedbackCreatedNotificationSchema,
  GoodsFeedbackCommentCreatedNotificationSchema,
  ChatCreatedNotificationSchema,
  ChatMessageSentNotificationSchema,
  ChatArbitrageStartedNotificationSchema,
  ChatArbitrageFinishedNotificationSchema,
  QuestionCreatedNotificationSchema,
  QuestionAnswerCreatedNotificationSchema,
  QuestionCommentCreatedNotificationSchema,
]);
export type KnownNotification = z.infer<typeof SendNotificationRequestSchema>;

/** A type the spec does not list: only the type is kept (nothing else of it is ours to store). */
export const UnknownNotificationSchema = z.object({ notificationType: OpenCode });
export type UnknownNotification = z.infer<typeof UnknownNotificationSchema>;

export type ParsedNotification =
  | { readonly known: true; readonly notification: KnownNotification }
  /** `raw` is the whole body as parsed: what its dedupe key is made of, so two different events of one unknown type stay two. */
  | { readonly known: false; readonly notification: UnknownNotification; readonly raw: unknown };

/** SendNotificationResponse.yaml: name and version are 1..100 characters. */
export const SendNotificationResponseSchema = z.strictObject({
  version: z.string().min(1).max(100),
  name: z.string().min(1).max(100),
  time: DateTime,
});
export type SendNotificationResponse = z.infer<typeof SendNotificationResponseSchema>;

/** NotificationApiErrorType.yaml */
export const NOTIFICATION_API_ERROR_TYPES = ['UNKNOWN', 'WRONG_EVENT_FORMAT', 'DUPLICATED_EVENT'] as const;
export type NotificationApiErrorType = (typeof NOTIFICATION_API_ERROR_TYPES)[number];
/** SendNotificationErrorResponse.yaml */
export interface SendNotificationErrorResponse {
  readonly error: { readonly type: NotificationApiErrorType; readonly message: string };
}

/** The event's own time of a notification, in the field its DTO names (PING's `time` is not an event). */
export function eventTimeOf(notification: KnownNotification): string | undefined {
  switch (notification.notificationType) {
    case 'PING':
      return undefined;
    case 'ORDER_STATUS_UPDATED':
    case 'ORDER_RETURN_STATUS_UPDATED':
    case 'ORDER_UPDATED':
      return notification.updatedAt;
    case 'ORDER_CANCELLED':
      return notification.cancelledAt;
    case 'ORDER_CANCELLATION_REQUEST':
      return notification.requestedAt;
    case 'CHAT_MESSAGE_SENT':
      return notification.sentAt;
    case 'CHAT_ARBITRAGE_STARTED':
      return notification.startedAt;
    case 'CHAT_ARBITRAGE_FINISHED':
      return notification.finishedAt;
    default:
      return notification.createdAt;
  }
}

// ---- reading a body ----------------------------------------------------------------------------

export const NOTIFICATION_LIMITS = {
  /** The largest body read: a real notification is a few hundred bytes. */
  maxBodyBytes: 256 * 1024,
  /** The deepest nesting of objects and arrays: a real notification has 3 levels. */
  maxDepth: 32,
  /** The most values an in-process body (not text) may hold: text is bounded by its size instead. */
  maxValues: 100_000,
} as const;

/** Keys that mean something to JavaScript's objects: refused wherever they appear, so no later copy or merge of a body can reach a prototype. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const MAX_PATH_SEGMENT = 40;

function wrong(path: string, message: string): NotificationFormatError {
  return new NotificationFormatError([{ path, message }]);
}

/**
 * Fails when brackets nest deeper than `maxDepth`, in one pass over the text before JSON.parse
 * builds anything: a 256 KiB body of `[[[[…` costs JSON.parse ~0.2 s and its memory, this ~1 ms.
 */
function checkTextDepth(text: string, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) throw wrong('', `nested deeper than ${maxDepth} levels`);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
}

/**
 * Walks the value without recursion: fails on a forbidden key, on nesting deeper than `maxDepth`
 * (a cycle is infinitely deep), on more than `maxValues` values, and on values JSON cannot
 * carry (an in-process caller may pass anything).
 */
function checkValue(root: unknown, maxDepth: number): void {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value: root, depth: 0, path: '' }];
  let seen = 0;
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop()!;
    if (++seen > NOTIFICATION_LIMITS.maxValues) throw wrong('', `more than ${NOTIFICATION_LIMITS.maxValues} values`);
    if (value === null || typeof value === 'string' || typeof value === 'boolean') continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw wrong(path, 'not a JSON number');
      continue;
    }
    if (typeof value !== 'object') throw wrong(path, `a ${typeof value} is no JSON value`);
    if (depth >= maxDepth) throw wrong(path, `nested deeper than ${maxDepth} levels`);
    if (Array.isArray(value)) {
      value.forEach((item, index) => stack.push({ value: item, depth: depth + 1, path: join(path, String(index)) }));
      continue;
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) throw wrong(path, 'not a plain JSON object');
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) throw wrong(join(path, key), 'this key is not accepted');
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, path: join(path, key) });
    }
  }
}

function join(path: string, key: string): string {
  const segment = clipText(key, MAX_PATH_SEGMENT);
  return path ? `${path}.${segment}` : segment;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The body as a JSON value, checked against the limits: a string or bytes (UTF-8) is parsed, any
 * other value is taken as already parsed. Throws NotificationTooLargeError or
 * NotificationFormatError; never throws anything else for any input.
 */
export function readNotificationBody(body: unknown, maxBodyBytes: number = NOTIFICATION_LIMITS.maxBodyBytes): unknown {
  const maxDepth = NOTIFICATION_LIMITS.maxDepth;
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) {
    checkValue(body, maxDepth);
    return body;
  }
  let text: string;
  if (typeof body === 'string') {
    // A UTF-16 unit is at most 3 UTF-8 bytes: most bodies are measured without encoding them.
    if (body.length * 3 > maxBodyBytes && Buffer.byteLength(body, 'utf8') > maxBodyBytes) {
      throw new NotificationTooLargeError(maxBodyBytes, Buffer.byteLength(body, 'utf8'));
    }
    text = body;
  } else {
    if (body.byteLength > maxBodyBytes) throw new NotificationTooLargeError(maxBodyBytes, body.byteLength);
    try {
      text = utf8.decode(body);
    } catch {
      throw wrong('', 'the body is not UTF-8 text');
    }
  }
  checkTextDepth(text, maxDepth);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw wrong('', 'the body is not JSON');
  }
  checkValue(value, maxDepth);
  return value;
}

function issuesOf(error: z.ZodError): NotificationIssue[] {
  return error.issues.map((i) => ({ path: i.path.map((p) => clipText(String(p), MAX_PATH_SEGMENT)).join('.'), message: i.message }));
}

/**
 * A JSON value (from readNotificationBody) as a notification: a known type by its DTO, an unknown
 * one by the fallback. Throws NotificationFormatError naming every wrong field.
 */
export function parseNotification(value: unknown): ParsedNotification {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw wrong('', 'expected a JSON object');
  const type: unknown = (value as Record<string, unknown>).notificationType;
  if (typeof type === 'string' && isKnownNotificationType(type)) {
    const result = SendNotificationRequestSchema.safeParse(value);
    if (!result.success) throw new NotificationFormatError(issuesOf(result.error));
    return { known: true, notification: result.data };
  }
  const result = UnknownNotificationSchema.safeParse(value);
  if (!result.success) throw new NotificationFormatError(issuesOf(result.error));
  return { known: false, notification: result.data, raw: value };
}
