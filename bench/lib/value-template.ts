// The value templates the two replays of bench 6 share (statement-replay.ts: the adapter's
// statements; statement-port.ts: the port calls behind them). A value recorded for order A at
// time T becomes a template: A itself stands for the order's id, T for the batch's time, a string
// holding either (the snapshot JSON, the event, the idempotency key) has them replaced, and
// anything else is sent as recorded. Each replay adds kinds of its own (a value an earlier
// statement or call returned; a port call's object argument) and handles them first.

/** The kinds of template value both replays make and fill in alike. */
export type PlainValue =
  | { readonly kind: 'recorded'; readonly value: unknown }
  | { readonly kind: 'orderId' }
  | { readonly kind: 'now' }
  | { readonly kind: 'text'; readonly text: string };

/**
 * The template of `v` recorded for `orderId` at `now` when it is the order's id, the time, or a
 * string holding either; else undefined (the caller's own kinds, or `recorded`). Without an
 * order id (a statement of the transaction, not of a change) only the time is looked for.
 */
export function plainTemplateOf(v: unknown, orderId: number | undefined, now: number): PlainValue | undefined {
  if (orderId !== undefined && v === orderId) return { kind: 'orderId' };
  if (v === now) return { kind: 'now' };
  if (typeof v === 'string' && ((orderId !== undefined && v.includes(String(orderId))) || v.includes(String(now)))) return { kind: 'text', text: v };
  return undefined;
}

/** What a replay fills in: the order's id and the batch's time, for those of the recording. */
export interface Substitution {
  readonly orderId: number;
  /** Undefined for a statement of the transaction: its text keeps every number but the time. */
  readonly recordedOrderId: number | undefined;
  readonly now: number;
  readonly recordedNow: number;
}

/** The value `v` stands for in the replay `s`. */
export function plainValueOf(v: PlainValue, s: Substitution): unknown {
  switch (v.kind) {
    case 'recorded':
      return v.value;
    case 'orderId':
      return s.orderId;
    case 'now':
      return s.now;
    case 'text': {
      const text = s.recordedOrderId === undefined ? v.text : v.text.replaceAll(String(s.recordedOrderId), String(s.orderId));
      return text.replaceAll(String(s.recordedNow), String(s.now));
    }
  }
}
