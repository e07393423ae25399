// The Market's words for a refused status change, read into stable codes. The refusals come as
// free text (a bulk answer's per-order `errorDetails`, a 400's `errors[].message`) with no code
// of their own (NOTES.md §d2, the error-codes page): a seller should read "the Market says the
// transition from X is not allowed", and code should switch on a code, not match on text.
// Pure: no I/O. Text that matches no known form is UNRECOGNIZED, never an error.

export const MARKET_REFUSALS = {
  /** "No permission to set status 'X' for order 'N' with status 'Y'" */
  noPermission: 'NO_PERMISSION',
  /** "No transition found: 'A' -> 'B'" */
  noTransition: 'NO_TRANSITION',
  /** "Transition 'A' -> 'B' is not allowed. Reason: …" */
  transitionNotAllowed: 'TRANSITION_NOT_ALLOWED',
  /** "Status not allowed: 'X'": only PROCESSING, CANCELLED, DELIVERY, PICKUP and DELIVERED are accepted targets. */
  statusNotAllowed: 'STATUS_NOT_ALLOWED',
  /** "Cancellation request substatus … is not available for status 'X' and role 'R'" */
  cancelSubstatusNotAvailable: 'CANCEL_SUBSTATUS_NOT_AVAILABLE',
  /** A refusal in words none of the above match. */
  unrecognized: 'UNRECOGNIZED',
} as const;
export type MarketRefusalCode = (typeof MARKET_REFUSALS)[keyof typeof MARKET_REFUSALS];

/** What a refusal says, as data. Statuses are kept as the Market wrote them (e.g. `PROCESSING` or `PROCESSING/STARTED`). */
export type MarketRefusal = {
  readonly code: MarketRefusalCode;
  /** For people: what the Market said, in one sentence. */
  readonly message: string;
  /** The state the Market says the order was in. */
  readonly from?: string;
  /** The status (or transition target) that was refused. */
  readonly to?: string;
  /** The refused cancellation substatus. */
  readonly substatus?: string;
  readonly role?: string;
  readonly orderId?: number;
  /** The Market's own explanation, after "Reason:". */
  readonly detail?: string;
};

// A value as the Market quotes it: in straight, curly or angle quotes, or a bare word.
const Q = `['"\`‘’“”«»]`;
const VALUE = `(?:${Q}([^'"\`‘’“”«»]*)${Q}|([^\\s'"\`‘’“”«»,;]+))`;
const ARROW = `\\s*(?:->|→|=>)\\s*`;

const NO_PERMISSION = new RegExp(`no permission to set status\\s+${VALUE}\\s+for order\\s+${VALUE}\\s+with status\\s+${VALUE}`, 'iu');
const NO_TRANSITION = new RegExp(`no transition found:?\\s*${VALUE}${ARROW}${VALUE}`, 'iu');
const TRANSITION_NOT_ALLOWED = new RegExp(`transition\\s+${VALUE}${ARROW}${VALUE}\\s+is not allowed\\.?(?:\\s*reason:\\s*(.*))?`, 'isu');
const STATUS_NOT_ALLOWED = new RegExp(`status not allowed:?\\s*${VALUE}`, 'iu');
const CANCEL_SUBSTATUS = new RegExp(`cancellation request substatus\\s+${VALUE}\\s+is not available for status\\s+${VALUE}(?:\\s+and role\\s+${VALUE})?`, 'iu');

/** The value of the n-th VALUE group (quoted or bare), from its two capture slots. */
function valueAt(match: RegExpExecArray, n: number): string | undefined {
  const quoted = match[1 + 2 * n];
  const bare = match[2 + 2 * n];
  const value = (quoted ?? bare)?.trim();
  return value === undefined || value === '' ? undefined : value.replace(/[.)]+$/u, '');
}

function present<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}

/** Reads a refusal's text, wherever the known form sits in it (after an order id, an HTTP summary). */
export function readMarketRefusal(text: string): MarketRefusal {
  let m = NO_PERMISSION.exec(text);
  if (m) {
    const [to, order, from] = [valueAt(m, 0), valueAt(m, 1), valueAt(m, 2)];
    const orderId = order !== undefined && /^\d+$/.test(order) ? Number(order) : undefined;
    return present({
      code: MARKET_REFUSALS.noPermission,
      message: `The Market says the shop may not set ${to ?? 'this status'} on an order in ${from ?? 'its current status'}.`,
      from, to, orderId,
    });
  }
  m = TRANSITION_NOT_ALLOWED.exec(text);
  if (m) {
    const [from, to] = [valueAt(m, 0), valueAt(m, 1)];
    const detail = m[5]?.trim() || undefined;
    return present({
      code: MARKET_REFUSALS.transitionNotAllowed,
      message: `The Market says the transition from ${from} to ${to} is not allowed${detail ? `: ${detail}` : '.'}`,
      from, to, detail,
    });
  }
  m = NO_TRANSITION.exec(text);
  if (m) {
    const [from, to] = [valueAt(m, 0), valueAt(m, 1)];
    return present({ code: MARKET_REFUSALS.noTransition, message: `The Market knows no transition from ${from} to ${to}.`, from, to });
  }
  m = CANCEL_SUBSTATUS.exec(text);
  if (m) {
    const [substatus, from, role] = [valueAt(m, 0), valueAt(m, 1), valueAt(m, 2)];
    return present({
      code: MARKET_REFUSALS.cancelSubstatusNotAvailable,
      message: `The Market says cancellation substatus ${substatus} is not available from ${from}${role ? ` for role ${role}` : ''}.`,
      from, substatus, role,
    });
  }
  m = STATUS_NOT_ALLOWED.exec(text);
  if (m) {
    const to = valueAt(m, 0);
    return present({
      code: MARKET_REFUSALS.statusNotAllowed,
      message: `The Market does not accept ${to} as a target status; it accepts PROCESSING, CANCELLED, DELIVERY, PICKUP and DELIVERED.`,
      to,
    });
  }
  return { code: MARKET_REFUSALS.unrecognized, message: 'The Market refused the change in words ym-orders does not recognise; the reason holds them verbatim.' };
}
