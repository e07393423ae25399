// The engine's command shapes, validated with zod before anything is read or written.

import { z } from 'zod';
import type { CallEvidence } from '../../machines/call-evidence.js';
import { OBSERVATION_SOURCES, REQUEST_VIAS, type CancellationRefusalReason } from '../../machines/order-machine.js';
import type { KnownOrderStatus, KnownOrderSubstatus, OrderStatus, OrderSubstatus } from '../../machines/statuses.js';
import { InvalidCommandError } from './errors.js';
import { redactSecret } from '../market/redact.js';

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
/** Statuses as the Market reports them: a known value, or any other kept verbatim (unknown ones are data). */
export interface TrackOrderCommand extends Omit<z.input<typeof trackOrderSchema>, 'status' | 'substatus'> {
  readonly status: OrderStatus;
  readonly substatus?: OrderSubstatus | null | undefined;
}

export const observeSchema = z.strictObject({
  orderId,
  status: statusValue,
  substatus: statusValue.nullish(),
  observedAt: timestamp,
  source: z.enum(OBSERVATION_SOURCES).default('notification'),
  /** DBS: true for an ORDER_CANCELLATION_REQUEST notification, false once it is answered. */
  cancelRequested: z.boolean().optional(),
});
export interface ObserveCommand extends Omit<z.input<typeof observeSchema>, 'status' | 'substatus'> {
  readonly status: OrderStatus;
  readonly substatus?: OrderSubstatus | null | undefined;
}

const callRecord = z.strictObject({ startedAt: z.union([z.string(), z.number()]), connectedSeconds: z.number().nonnegative() });
// One object with the fields of both forms rather than a union: zod reports a failed union as a
// bare "Invalid input", and a seller whose call log has a wrong field needs to be told which.
const callEvidence = z
  .strictObject({
    buyerTimeZone: z.string().min(1).optional(),
    calls: z.array(callRecord).max(100).optional(),
    // The buyer's number was unavailable: USER_UNREACHABLE's call conditions do not apply (machines/call-evidence.ts).
    numberUnavailable: z.literal(true).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.numberUnavailable) {
      for (const key of ['buyerTimeZone', 'calls'] as const) {
        if (v[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'not allowed with numberUnavailable' });
      }
      return;
    }
    for (const key of ['buyerTimeZone', 'calls'] as const) {
      if (v[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'required (or give { numberUnavailable: true })' });
    }
  })
  .transform((v): CallEvidence => (v.numberUnavailable ? { numberUnavailable: true } : { buyerTimeZone: v.buyerTimeZone ?? '', calls: v.calls ?? [] }));

export const requestChangeSchema = z.strictObject({
  orderId,
  status: statusValue,
  substatus: statusValue.optional(),
  callEvidence: callEvidence.optional(),
  realDeliveryDate: z.string().optional(),
  /**
   * `chain`: the target may be several steps away; the engine plans the shortest legal chain
   * (planChain) and sends its steps one after another. The default is one step.
   */
  via: z.enum(REQUEST_VIAS).default('step'),
  /** Refuse with CONCURRENT_UPDATE if the order's row version is no longer this one. */
  expectedRowVersion: z.number().int().positive().optional(),
});
/**
 * A seller's change. Its target is typed by the Market's lists, so a misspelt status does not
 * compile; at run time a value no list has is refused (UNKNOWN_TARGET), for JavaScript callers.
 */
export interface RequestChangeCommand extends Omit<z.input<typeof requestChangeSchema>, 'status' | 'substatus' | 'callEvidence'> {
  readonly status: KnownOrderStatus;
  readonly substatus?: KnownOrderSubstatus | undefined;
  readonly callEvidence?: CallEvidence | undefined;
}

/** What `explain()` judges: a change's target as requestChange takes it, without the order id. */
export type ChangeTarget = Omit<RequestChangeCommand, 'orderId' | 'expectedRowVersion'>;

export const orderIdSchema = orderId;

/** A list of commands; each item is parsed on its own, so one bad item names its position. */
export const commandListSchema = z.array(z.unknown()).max(1_000_000);

/** What explain() judges: a target as requestChange takes it, without the order id. */
export const explainTargetSchema = requestChangeSchema.omit({ orderId: true, expectedRowVersion: true });

/** What settledChanges() lists: changes that ended in `state` at or after `since` (epoch ms). */
export const settledChangesSchema = z.strictObject({
  state: z.enum(['accepted', 'rejected', 'superseded']),
  since: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  limit: z.number().int().positive().max(100_000).default(1_000),
});
export type SettledChangesQuery = z.input<typeof settledChangesSchema>;

/**
 * A seller's answer to a DBS buyer's cancellation request. `reason` is any upper-case value here;
 * judgeCancellationAnswer refuses one the Market does not take (CANCELLATION_REASON_UNKNOWN).
 */
export const answerCancellationSchema = z.strictObject({
  accepted: z.boolean(),
  reason: statusValue.optional(),
  /** Refuse with CONCURRENT_UPDATE if the order's row version is no longer this one. */
  expectedRowVersion: z.number().int().positive().optional(),
});
export interface AnswerCancellationCommand extends Omit<z.input<typeof answerCancellationSchema>, 'reason'> {
  /** Required when refusing: ORDER_DELIVERED or ORDER_IN_DELIVERY. */
  readonly reason?: CancellationRefusalReason | undefined;
}

/** What openCancellations() lists: at most `limit` open requests, the soonest deadline first. */
export const openCancellationsSchema = z.strictObject({
  limit: z.number().int().positive().max(100_000).default(1_000),
});
export type OpenCancellationsQuery = z.input<typeof openCancellationsSchema>;

export const campaignSchema = z.strictObject({
  campaignId,
  businessId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  model: z.enum(['FBS', 'EXPRESS', 'DBS', 'LAAS']),
});
export type CampaignConfig = z.infer<typeof campaignSchema>;

/**
 * Parses `input` or throws INVALID_COMMAND naming every wrong field. zod's messages name unknown
 * keys as given, so `secret` (the API key, if a caller put it there) is redacted from them.
 */
export function parseCommand<S extends z.ZodType>(schema: S, command: string, input: unknown, secret = ''): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidCommandError(
    command,
    redactSecret(result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })), secret),
  );
}
