// USER_UNREACHABLE may only be sent after documented attempts to reach the buyer
// (OrderSubstatusType.yaml L18-24): at least 3 calls between 08:00 and 21:00 in the
// buyer's time zone, at least 90 minutes between the first and the third, and each
// connection at least 5 s. The Market answers 400 otherwise, so we check it locally
// and say exactly which condition failed. The conditions do not apply "when the number is
// unavailable" (L24, NOTES.md §d2): evidence may say so instead of listing calls.

export interface CallAttempt {
  /** When the call started: an ISO 8601 string with `Z` or an offset (required), or epoch milliseconds. */
  readonly startedAt: string | number;
  /** How long the connection lasted, in seconds. */
  readonly connectedSeconds: number;
}

/** The calls made to the buyer, judged against CALL_RULES. */
export interface CallLog {
  /** The buyer's IANA time zone, e.g. `Europe/Moscow`. */
  readonly buyerTimeZone: string;
  readonly calls: readonly CallAttempt[];
}

/**
 * The buyer's number itself was unavailable (not in service, not reachable at all), the one case
 * the documented call conditions exempt. The Market is not sent this; it is the seller's word,
 * kept in the order's journal with the request.
 */
export interface NumberUnavailable {
  readonly numberUnavailable: true;
}

export type CallEvidence = CallLog | NumberUnavailable;

export const CALL_RULES = {
  minCalls: 3,
  windowStartHour: 8,
  windowEndHour: 21,
  minSpanMinutes: 90,
  minConnectedSeconds: 5,
} as const;

export interface CallEvidenceProblem {
  readonly code: 'CALL_EVIDENCE_INVALID' | 'CALL_EVIDENCE_INSUFFICIENT';
  readonly message: string;
  readonly qualifyingCalls?: number;
  readonly spanMinutes?: number;
}

function localHourMinute(epochMs: number, timeZone: string): { hour: number; minute: number } {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(epochMs));
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value);
  return { hour, minute };
}

function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** ISO 8601 date-time with `Z` or `±hh:mm`: without an offset the instant would depend on the host's zone. */
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

function toEpochMs(value: string | number): number {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && ISO_WITH_OFFSET.test(value) ? Date.parse(value) : Number.NaN;
}

/** Undefined when the evidence meets every documented condition, else what is wrong. */
export function checkCallEvidence(evidence: CallEvidence | undefined): CallEvidenceProblem | undefined {
  if (evidence === undefined) {
    return {
      code: 'CALL_EVIDENCE_INSUFFICIENT',
      message: 'USER_UNREACHABLE needs call evidence: at least 3 calls between 08:00 and 21:00 buyer time, 90 minutes from the first to the third, each connected for at least 5 s, or { numberUnavailable: true } when the number is unavailable.',
      qualifyingCalls: 0,
    };
  }
  if ('numberUnavailable' in evidence) {
    // Only a literal `true` exempts: anything else is a mistake, not a quiet "no".
    return evidence.numberUnavailable === true
      ? undefined
      : { code: 'CALL_EVIDENCE_INVALID', message: `numberUnavailable must be true when given, not ${JSON.stringify(evidence.numberUnavailable)}; omit it and list the calls instead.` };
  }
  if (typeof evidence.buyerTimeZone !== 'string' || !isValidTimeZone(evidence.buyerTimeZone)) {
    return { code: 'CALL_EVIDENCE_INVALID', message: `buyerTimeZone "${String(evidence.buyerTimeZone)}" is not an IANA time zone.` };
  }
  const times: number[] = [];
  for (const call of evidence.calls ?? []) {
    const at = toEpochMs(call.startedAt);
    if (!Number.isFinite(at) || typeof call.connectedSeconds !== 'number' || !(call.connectedSeconds >= 0)) {
      return { code: 'CALL_EVIDENCE_INVALID', message: `A call has an unreadable startedAt or connectedSeconds: ${JSON.stringify(call)}.` };
    }
    const { hour, minute } = localHourMinute(at, evidence.buyerTimeZone);
    const minutes = hour * 60 + minute;
    const inWindow = minutes >= CALL_RULES.windowStartHour * 60 && minutes < CALL_RULES.windowEndHour * 60;
    if (inWindow && call.connectedSeconds >= CALL_RULES.minConnectedSeconds) times.push(at);
  }
  times.sort((a, b) => a - b);
  if (times.length < CALL_RULES.minCalls) {
    return {
      code: 'CALL_EVIDENCE_INSUFFICIENT',
      message: `Only ${times.length} call(s) qualify (between 08:00 and 21:00 in ${evidence.buyerTimeZone}, connected ≥ 5 s); USER_UNREACHABLE needs ${CALL_RULES.minCalls}.`,
      qualifyingCalls: times.length,
    };
  }
  // The first and third qualifying calls must be at least 90 minutes apart; a later third
  // call can only widen the span, so taking the latest call as "third" is the best case.
  const spanMinutes = (times[times.length - 1]! - times[0]!) / 60_000;
  if (spanMinutes < CALL_RULES.minSpanMinutes) {
    return {
      code: 'CALL_EVIDENCE_INSUFFICIENT',
      message: `The qualifying calls span ${Math.floor(spanMinutes)} minutes; USER_UNREACHABLE needs at least ${CALL_RULES.minSpanMinutes} between the first and the third.`,
      qualifyingCalls: times.length,
      spanMinutes: Math.floor(spanMinutes),
    };
  }
  return undefined;
}
