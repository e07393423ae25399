// USER_UNREACHABLE call evidence (OrderSubstatusType.yaml L18-24): at least 3 calls between
// 08:00 and 21:00 in the buyer's time zone, ≥ 90 minutes from the first to the third, each
// connected ≥ 5 s. Boundaries on every condition, in zones that differ from UTC.

import { describe, expect, it } from 'vitest';
import { CALL_RULES, checkCallEvidence, type CallAttempt, type CallLog } from '../machines/call-evidence.js';
import { explainTransition } from '../machines/explain.js';

/** Calls on 2025-05-12 at the given local wall-clock times, in a zone at `offset`. */
function callsAt(offset: string, times: readonly string[], connectedSeconds = 10): CallAttempt[] {
  return times.map((t) => ({ startedAt: `2025-05-12T${t.length === 5 ? `${t}:00` : t}${offset}`, connectedSeconds }));
}

function moscow(times: readonly string[], connectedSeconds = 10): CallLog {
  return { buyerTimeZone: 'Europe/Moscow', calls: callsAt('+03:00', times, connectedSeconds) };
}

describe('CALL_RULES', () => {
  it('states the documented numbers', () => {
    expect(CALL_RULES).toEqual({ minCalls: 3, windowStartHour: 8, windowEndHour: 21, minSpanMinutes: 90, minConnectedSeconds: 5 });
  });
});

describe('checkCallEvidence', () => {
  it('accepts three 5-second calls at 08:00, 09:00 and 09:30 buyer time', () => {
    expect(checkCallEvidence(moscow(['08:00', '09:00', '09:30'], 5))).toBeUndefined();
  });

  it('without evidence: insufficient, zero qualifying calls', () => {
    expect(checkCallEvidence(undefined)).toMatchObject({ code: 'CALL_EVIDENCE_INSUFFICIENT', qualifyingCalls: 0 });
    expect(checkCallEvidence({ buyerTimeZone: 'Europe/Moscow', calls: [] })).toMatchObject({ code: 'CALL_EVIDENCE_INSUFFICIENT', qualifyingCalls: 0 });
  });

  it('needs three calls: two are not enough, four with one outside the window are', () => {
    expect(checkCallEvidence(moscow(['08:00', '09:30']))).toMatchObject({ code: 'CALL_EVIDENCE_INSUFFICIENT', qualifyingCalls: 2 });
    expect(checkCallEvidence(moscow(['07:00', '08:00', '09:00', '09:30']))).toBeUndefined();
  });

  describe('the 08:00–21:00 window, in the buyer time zone', () => {
    it('07:59 does not count, 08:00 does', () => {
      expect(checkCallEvidence(moscow(['07:59', '09:00', '09:30']))).toMatchObject({ code: 'CALL_EVIDENCE_INSUFFICIENT', qualifyingCalls: 2 });
      expect(checkCallEvidence(moscow(['07:59:59', '09:00', '09:30']))).toMatchObject({ qualifyingCalls: 2 });
      expect(checkCallEvidence(moscow(['08:00', '09:00', '09:30']))).toBeUndefined();
    });

    it('20:59 counts, 21:00 does not', () => {
      expect(checkCallEvidence(moscow(['18:00', '19:00', '20:59']))).toBeUndefined();
      expect(checkCallEvidence(moscow(['18:00', '19:00', '20:59:59']))).toBeUndefined();
      expect(checkCallEvidence(moscow(['18:00', '19:00', '21:00']))).toMatchObject({ code: 'CALL_EVIDENCE_INSUFFICIENT', qualifyingCalls: 2 });
    });

    it('Asia/Vladivostok (UTC+10): judged by the buyer clock, not UTC', () => {
      // 22:00Z on 11 May is 08:00 on 12 May in Vladivostok.
      const utcTimes = ['2025-05-11T22:00:00Z', '2025-05-11T23:00:00Z', '2025-05-11T23:30:00Z'];
      const calls = utcTimes.map((startedAt) => ({ startedAt, connectedSeconds: 10 }));
      expect(checkCallEvidence({ buyerTimeZone: 'Asia/Vladivostok', calls })).toBeUndefined();
      // The same instants are 01:00–02:30 in Moscow and 22:00–23:30 in UTC: night.
      expect(checkCallEvidence({ buyerTimeZone: 'Europe/Moscow', calls })).toMatchObject({ qualifyingCalls: 0 });
      expect(checkCallEvidence({ buyerTimeZone: 'UTC', calls })).toMatchObject({ qualifyingCalls: 0 });
      // 21:59Z is 07:59 in Vladivostok.
      const early = [{ startedAt: '2025-05-11T21:59:00Z', connectedSeconds: 10 }, ...calls.slice(1)];
      expect(checkCallEvidence({ buyerTimeZone: 'Asia/Vladivostok', calls: early })).toMatchObject({ qualifyingCalls: 2 });
      // 10:59Z is 20:59 there, 11:00Z is 21:00.
      const late = (last: string) => [
        { startedAt: '2025-05-12T08:00:00Z', connectedSeconds: 10 },
        { startedAt: '2025-05-12T09:00:00Z', connectedSeconds: 10 },
        { startedAt: last, connectedSeconds: 10 },
      ];
      expect(checkCallEvidence({ buyerTimeZone: 'Asia/Vladivostok', calls: late('2025-05-12T10:59:00Z') })).toBeUndefined();
      expect(checkCallEvidence({ buyerTimeZone: 'Asia/Vladivostok', calls: late('2025-05-12T11:00:00Z') })).toMatchObject({ qualifyingCalls: 2 });
    });

    it('a zone with daylight saving: Europe/Berlin 08:00 is 07:00Z in winter and 06:00Z in summer', () => {
      const at = (isoZ: string[]) => ({ buyerTimeZone: 'Europe/Berlin', calls: isoZ.map((startedAt) => ({ startedAt, connectedSeconds: 10 })) });
      expect(checkCallEvidence(at(['2025-01-15T07:00:00Z', '2025-01-15T08:00:00Z', '2025-01-15T08:30:00Z']))).toBeUndefined();
      expect(checkCallEvidence(at(['2025-01-15T06:59:00Z', '2025-01-15T08:00:00Z', '2025-01-15T08:30:00Z']))).toMatchObject({ qualifyingCalls: 2 });
      expect(checkCallEvidence(at(['2025-07-15T06:00:00Z', '2025-07-15T07:00:00Z', '2025-07-15T07:30:00Z']))).toBeUndefined();
      expect(checkCallEvidence(at(['2025-07-15T05:59:00Z', '2025-07-15T07:00:00Z', '2025-07-15T07:30:00Z']))).toMatchObject({ qualifyingCalls: 2 });
    });

    it('takes epoch milliseconds as well as ISO strings', () => {
      const base = Date.UTC(2025, 4, 12, 5, 0); // 08:00 Moscow
      const calls = [0, 60, 90].map((m) => ({ startedAt: base + m * 60_000, connectedSeconds: 10 }));
      expect(checkCallEvidence({ buyerTimeZone: 'Europe/Moscow', calls })).toBeUndefined();
      const early = [{ startedAt: base - 60_000, connectedSeconds: 10 }, ...calls.slice(1)];
      expect(checkCallEvidence({ buyerTimeZone: 'Europe/Moscow', calls: early })).toMatchObject({ qualifyingCalls: 2 });
    });
  });

  describe('90 minutes from the first to the third call', () => {
    it('89 minutes is not enough, 90 is', () => {
      expect(checkCallEvidence(moscow(['08:00', '08:30', '09:29']))).toMatchObject({
        code: 'CALL_EVIDENCE_INSUFFICIENT',
        qualifyingCalls: 3,
        spanMinutes: 89,
      });
      expect(checkCallEvidence(moscow(['08:00', '08:30', '09:29:59']))).toMatchObject({ code: 'CALL_EVIDENCE_INSUFFICIENT', spanMinutes: 89 });
      expect(checkCallEvidence(moscow(['08:00', '08:30', '09:30']))).toBeUndefined();
    });

    it('call order in the list does not matter', () => {
      expect(checkCallEvidence(moscow(['09:30', '08:00', '08:30']))).toBeUndefined();
    });

    it('the span counts only qualifying calls', () => {
      // The 07:00 call is outside the window, so the first qualifying call is 08:00 and the span 89 min.
      expect(checkCallEvidence(moscow(['07:00', '08:00', '08:30', '09:29']))).toMatchObject({ spanMinutes: 89 });
    });
  });

  describe('each connection at least 5 s', () => {
    it('4.9 s does not count, 5 s does', () => {
      const ev = (s: number): CallLog => ({
        buyerTimeZone: 'Europe/Moscow',
        calls: [...callsAt('+03:00', ['08:00', '09:00'], 10), ...callsAt('+03:00', ['09:30'], s)],
      });
      expect(checkCallEvidence(ev(4.9))).toMatchObject({ code: 'CALL_EVIDENCE_INSUFFICIENT', qualifyingCalls: 2 });
      expect(checkCallEvidence(ev(5))).toBeUndefined();
      expect(checkCallEvidence(ev(0))).toMatchObject({ qualifyingCalls: 2 });
    });
  });

  describe('unreadable evidence is CALL_EVIDENCE_INVALID', () => {
    it('a time zone that is not IANA', () => {
      for (const tz of ['Mars/Olympus_Mons', '', 'Moscow time']) {
        expect(checkCallEvidence({ ...moscow(['08:00', '09:00', '09:30']), buyerTimeZone: tz }), tz).toMatchObject({ code: 'CALL_EVIDENCE_INVALID' });
      }
    });

    it('an unreadable start time or duration', () => {
      const bad = (call: CallAttempt) => checkCallEvidence({ buyerTimeZone: 'Europe/Moscow', calls: [...moscow(['08:00', '09:00']).calls, call] });
      expect(bad({ startedAt: 'yesterday at nine', connectedSeconds: 10 })).toMatchObject({ code: 'CALL_EVIDENCE_INVALID' });
      expect(bad({ startedAt: Number.NaN, connectedSeconds: 10 })).toMatchObject({ code: 'CALL_EVIDENCE_INVALID' });
      expect(bad({ startedAt: '2025-05-12T09:30:00+03:00', connectedSeconds: -1 })).toMatchObject({ code: 'CALL_EVIDENCE_INVALID' });
      expect(bad({ startedAt: '2025-05-12T09:30:00+03:00', connectedSeconds: Number.NaN })).toMatchObject({ code: 'CALL_EVIDENCE_INVALID' });
    });

    it('a local time without an offset: its instant would depend on the host time zone', () => {
      const r = checkCallEvidence({ buyerTimeZone: 'Europe/Moscow', calls: [...moscow(['08:00', '09:00']).calls, { startedAt: '2025-05-12T09:30:00', connectedSeconds: 10 }] });
      expect(r).toMatchObject({ code: 'CALL_EVIDENCE_INVALID' });
      expect(checkCallEvidence({ buyerTimeZone: 'Europe/Moscow', calls: [...moscow(['08:00', '09:00']).calls, { startedAt: '2025-05-12T06:30:00Z', connectedSeconds: 10 }] })).toBeUndefined();
    });
  });

  it('says which condition failed, in the buyer time zone', () => {
    const few = checkCallEvidence({ buyerTimeZone: 'Asia/Vladivostok', calls: [] });
    expect(few?.message).toContain('Asia/Vladivostok');
    expect(few?.message).toContain('needs 3');
    expect(checkCallEvidence(moscow(['08:00', '08:30', '09:29']))?.message).toContain('span 89 minutes');
  });
});

describe('the buyer\'s number is unavailable (OrderSubstatusType.yaml L24, NOTES.md §d2)', () => {
  it('{ numberUnavailable: true } passes without calls', () => {
    expect(checkCallEvidence({ numberUnavailable: true })).toBeUndefined();
  });

  it('anything but a literal true is invalid, not a quiet "no"', () => {
    for (const value of [false, 'yes', 1, null]) {
      const evidence = { numberUnavailable: value } as unknown as Parameters<typeof checkCallEvidence>[0];
      expect(checkCallEvidence(evidence), String(value)).toMatchObject({ code: 'CALL_EVIDENCE_INVALID', message: expect.stringContaining('numberUnavailable') });
    }
  });

  it('the message for missing evidence names the way to say so', () => {
    expect(checkCallEvidence(undefined)?.message).toContain('{ numberUnavailable: true }');
  });

  it('allows DBS CANCELLED/USER_UNREACHABLE from every state that has the row', () => {
    for (const order of [
      { status: 'PROCESSING', substatus: 'STARTED' },
      { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
      { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
    ]) {
      expect(explainTransition(order, { status: 'CANCELLED', substatus: 'USER_UNREACHABLE', callEvidence: { numberUnavailable: true } }, 'DBS').allowed, order.status).toBe(true);
    }
  });
});

describe('call evidence through explainTransition (DBS CANCELLED/USER_UNREACHABLE)', () => {
  const order = { status: 'PROCESSING', substatus: 'STARTED' };
  const target = { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' };

  it('allowed with evidence that meets every condition, refused at each boundary', () => {
    expect(explainTransition(order, { ...target, callEvidence: moscow(['08:00', '09:00', '09:30'], 5) }, 'DBS').allowed).toBe(true);
    for (const [why, ev] of [
      ['07:59', moscow(['07:59', '09:00', '09:30'])],
      ['21:00', moscow(['18:00', '19:00', '21:00'])],
      ['89 min', moscow(['08:00', '08:30', '09:29'])],
      ['4.9 s', moscow(['08:00', '09:00', '09:30'], 4.9)],
    ] as const) {
      const r = explainTransition(order, { ...target, callEvidence: ev }, 'DBS');
      expect(r.allowed, why).toBe(false);
      if (!r.allowed) expect(r.blockers.map((b) => b.code), why).toEqual(['CALL_EVIDENCE_INSUFFICIENT']);
    }
  });

  it('other cancellation reasons need no evidence', () => {
    expect(explainTransition(order, { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' }, 'DBS').allowed).toBe(true);
  });
});
