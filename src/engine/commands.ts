// The engine's command shapes, validated with zod before anything is read or written.

import { z } from 'zod';
import { OBSERVATION_SOURCES } from '../../machines/order-machine.js';
import { InvalidCommandError } from './errors.js';

const orderId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const campaignId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const statusValue = z.string().min(1).max(100).regex(/^[A-Z0-9_]+$/, 'an upper-case Market value such as PROCESSING');
const timestamp = z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s))]);

export const trackOrderSchema = z.strictObject({
  orderId,
  campaignId,
  status: statusValue,
  substatus: statusValue.nullish(),
  /** When the Market last changed the order (epoch ms or ISO 8601); defaults to now. */
  observedAt: timestamp.optional(),
  /** DBS: the buyer asked to cancel (getBusinessOrders' `cancelRequested`). */
  cancelRequested: z.boolean().optional(),
});
export type TrackOrderCommand = z.input<typeof trackOrderSchema>;

export const observeSchema = z.strictObject({
  orderId,
  status: statusValue,
  substatus: statusValue.nullish(),
  observedAt: timestamp,
  source: z.enum(OBSERVATION_SOURCES).default('notification'),
  /** DBS: true for an ORDER_CANCELLATION_REQUEST notification, false once it is answered. */
  cancelRequested: z.boolean().optional(),
});
export type ObserveCommand = z.input<typeof observeSchema>;

const callEvidence = z.strictObject({
  buyerTimeZone: z.string().min(1),
  calls: z.array(z.strictObject({ startedAt: z.union([z.string(), z.number()]), connectedSeconds: z.number().nonnegative() })).max(100),
});

export const requestChangeSchema = z.strictObject({
  orderId,
  status: statusValue,
  substatus: statusValue.optional(),
  callEvidence: callEvidence.optional(),
  realDeliveryDate: z.string().optional(),
  /** Refuse with CONCURRENT_UPDATE if the order's row version is no longer this one. */
  expectedRowVersion: z.number().int().positive().optional(),
});
export type RequestChangeCommand = z.input<typeof requestChangeSchema>;

export const orderIdSchema = orderId;

/** A list of commands; each item is parsed on its own, so one bad item names its position. */
export const commandListSchema = z.array(z.unknown()).max(1_000_000);

/** What explain() judges: a target as requestChange takes it, without the order id. */
export const explainTargetSchema = requestChangeSchema.omit({ orderId: true, expectedRowVersion: true });

export const campaignSchema = z.strictObject({
  campaignId,
  businessId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  model: z.enum(['FBS', 'EXPRESS', 'DBS', 'LAAS']),
});
export type CampaignConfig = z.infer<typeof campaignSchema>;

/** Parses `input` or throws INVALID_COMMAND naming every wrong field. */
export function parseCommand<S extends z.ZodType>(schema: S, command: string, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidCommandError(
    command,
    result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
}
