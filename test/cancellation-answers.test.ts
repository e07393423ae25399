// Answers to DBS buyers' cancellation requests (issue #12), in the order machine, stepped with
// XState's pure transition(): the judge (judgeCancellationAnswer), every path of the answer's
// lifecycle (queued → sending → accepted | rejected | uncertain → read back → resend or settle,
// deferred back to the queue, superseded by the Market), the effects the engine turns into rows
// (an outbox row of kind cancellationAnswer, the deadline timer), and properties over random
// event sequences.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import {
  CANCELLATION_BLOCKER_CODES,
  DBS_CANCELLATION_ANSWER_MS,
  judgeCancellationAnswer,
  orderEffects,
  orderMachine,
  type OrderEvent,
  type OrderInput,
} from '../machines/order-machine.js';
import { CAMPAIGN_ID, ORDER_ID, T0, run, start, step, type OrderSnapshot } from './helpers/machine-fixtures.js';

const ids = { orderId: ORDER_ID, campaignId: CAMPAIGN_ID };
const DELIVERY = ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'] as const;

const seen = (observedAt: number, extra: { status?: string; substatus?: string | null; cancelRequested?: boolean; source?: 'sync' | 'readBack' | 'notification' } = {}): OrderEvent => ({
  type: 'MARKET.OBSERVED',
  status: extra.status ?? DELIVERY[0],
  substatus: extra.substatus === undefined ? DELIVERY[1] : extra.substatus,
  observedAt,
  source: extra.source ?? 'sync',
  ...(extra.cancelRequested !== undefined ? { cancelRequested: extra.cancelRequested } : {}),
});
const answer = (accepted: boolean, at: number, reason?: string): OrderEvent => ({ type: 'SELLER.ANSWER_CANCELLATION', accepted, ...(reason !== undefined ? { reason } : {}), at });
const accept = (at: number): OrderEvent => answer(true, at);
const refuse = (at: number, reason = 'ORDER_IN_DELIVERY'): OrderEvent => answer(false, at, reason);
const sent = (at: number): OrderEvent => ({ type: 'ANSWER.SENT', at });
const taken = (at: number): OrderEvent => ({ type: 'ANSWER.ACCEPTED', at });
const unknown = (at: number, readBackAt?: number): OrderEvent => ({ type: 'ANSWER.UNKNOWN', at, reason: 'timeout after 10 s', ...(readBackAt !== undefined ? { readBackAt } : {}) });
const readBack = (at: number, cancelRequested: boolean, status: string = DELIVERY[0], substatus: string | null = DELIVERY[1]): OrderEvent =>
  seen(at, { status, substatus, cancelRequested, source: 'readBack' });

/** A DBS order in delivery whose buyer asked to cancel at T0 + 10 (the request is open, unanswered). */
function requested(extra: Partial<OrderInput> = {}): OrderSnapshot {
  const { snapshot } = start('DBS', DELIVERY[0], DELIVERY[1], extra);
  return step(snapshot, seen(T0 + 10, { cancelRequested: true })).snapshot;
}
const cancellationOf = (s: OrderSnapshot): unknown => (s.value as { cancellation: unknown }).cancellation;
const effectTypes = (effects: readonly { type: string }[]) => effects.map((e) => e.type);
const codesOf = (s: OrderSnapshot) => s.context.lastAnswerRefusal?.blockers.map((b) => b.code);

describe('judgeCancellationAnswer', () => {
  const open = { model: 'DBS' as const, cancellationRequestedAt: T0, cancellationAnswer: null };

  it('allows an accept without a reason and a refusal with one, while the request is open', () => {
    expect(judgeCancellationAnswer(open, { accepted: true })).toEqual({ allowed: true });
    expect(judgeCancellationAnswer(open, { accepted: false, reason: 'ORDER_DELIVERED' })).toEqual({ allowed: true });
    expect(judgeCancellationAnswer(open, { accepted: false, reason: 'ORDER_IN_DELIVERY' })).toEqual({ allowed: true });
  });

  it.each([
    ['a refusal without a reason', open, { accepted: false }, [CANCELLATION_BLOCKER_CODES.reasonRequired]],
    ['an accept with a reason', open, { accepted: true, reason: 'ORDER_DELIVERED' }, [CANCELLATION_BLOCKER_CODES.reasonNotAllowed]],
    ['a reason the Market does not take', open, { accepted: false, reason: 'BUYER_IS_WRONG' }, [CANCELLATION_BLOCKER_CODES.reasonUnknown]],
    ['no request', { ...open, cancellationRequestedAt: null }, { accepted: true }, [CANCELLATION_BLOCKER_CODES.notRequested]],
    ['no request, and no reason either', { ...open, cancellationRequestedAt: null }, { accepted: false }, [CANCELLATION_BLOCKER_CODES.notRequested, CANCELLATION_BLOCKER_CODES.reasonRequired]],
    ['an answer on its way', { ...open, cancellationAnswer: { accepted: true, requestNo: 1, requestedAt: T0, sends: 0 } }, { accepted: true }, [CANCELLATION_BLOCKER_CODES.answerPending]],
    ['an FBS order', { ...open, model: 'FBS' as const }, { accepted: true }, [CANCELLATION_BLOCKER_CODES.notDbs]],
  ])('refuses %s, with coded blockers', (_what, context, a, codes) => {
    const verdict = judgeCancellationAnswer(context, a);
    expect(verdict.allowed).toBe(false);
    if (verdict.allowed) return;
    expect(verdict.blockers.map((b) => b.code)).toEqual(codes);
    for (const b of verdict.blockers) expect(b.message.length).toBeGreaterThan(20);
  });
});

describe('answering a cancellation request: the Market takes the answer', () => {
  it('accept: queued (an outbox row) → sending (a send counted) → accepted; the request closes and its deadline is cleared', () => {
    const [queued, sending, done] = run(requested(), [accept(T0 + 100), sent(T0 + 200), taken(T0 + 300)]);
    expect(cancellationOf(queued!.snapshot)).toEqual({ requested: 'queued' });
    const pendingAnswer = { accepted: true, requestNo: 1, requestedAt: T0 + 100, sends: 0 };
    expect(queued!.effects).toEqual([{ type: 'effect.sendCancellationAnswer', params: { ...ids, answer: pendingAnswer } }]);
    expect(queued!.snapshot.context).toMatchObject({ cancellationAnswer: pendingAnswer, requestCount: 1, lastAnswerRefusal: null });

    expect(cancellationOf(sending!.snapshot)).toEqual({ requested: 'sending' });
    expect(sending!.effects).toEqual([{ type: 'effect.recordAnswerState', params: { orderId: ORDER_ID, requestNo: 1, state: 'sending', sent: true, reason: undefined } }]);
    expect(sending!.snapshot.context.cancellationAnswer).toMatchObject({ sends: 1, sentAt: T0 + 200 });

    expect(cancellationOf(done!.snapshot)).toBe('none');
    const outcome = { kind: 'accepted', accepted: true, requestNo: 1, at: T0 + 300 };
    expect(done!.effects).toEqual([
      { type: 'effect.clearCancellationDeadline', params: { orderId: ORDER_ID } },
      { type: 'effect.settleCancellationAnswer', params: { ...ids, outcome } },
    ]);
    expect(done!.snapshot.context).toMatchObject({ cancellationRequestedAt: null, cancellationAnswer: null, lastCancellationAnswer: outcome });
    // The status follows from the Market's next observation, not from the answer.
    expect(done!.snapshot.context.status).toBe('DELIVERY');
    const cancelled = step(done!.snapshot, seen(T0 + 400, { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND', cancelRequested: false }));
    expect(cancelled.snapshot.value).toMatchObject({ market: 'CANCELLED', cancellation: 'none' });
    expect(cancelled.effects).toEqual([]);
  });

  it('refuse: the request closes with the refusal recorded, and the order stays where it is', () => {
    const done = run(requested(), [refuse(T0 + 100, 'ORDER_DELIVERED'), sent(T0 + 200), taken(T0 + 300)]).at(-1)!;
    expect(done.snapshot.value).toMatchObject({ market: 'DELIVERY', cancellation: 'none' });
    expect(done.snapshot.context.lastCancellationAnswer).toEqual({ kind: 'accepted', accepted: false, reason: 'ORDER_DELIVERED', requestNo: 1, at: T0 + 300 });
    expect(effectTypes(done.effects)).toEqual(['effect.clearCancellationDeadline', 'effect.settleCancellationAnswer']);
  });

  it('an observation no newer than the answer the Market took does not reopen the request; a later one does', () => {
    const done = run(requested(), [accept(T0 + 100), sent(T0 + 200), taken(T0 + 300)]).at(-1)!.snapshot;
    const lagging = step(done, seen(T0 + 250, { cancelRequested: true }));
    expect(cancellationOf(lagging.snapshot)).toBe('none');
    expect(lagging.effects).toEqual([]);
    const again = step(done, seen(T0 + 5_000, { cancelRequested: true }));
    expect(cancellationOf(again.snapshot)).toEqual({ requested: 'unanswered' });
    expect(again.effects).toEqual([{ type: 'effect.startCancellationDeadline', params: { orderId: ORDER_ID, dueAt: T0 + 5_000 + DBS_CANCELLATION_ANSWER_MS } }]);
  });
});

describe('answers refused before anything is queued', () => {
  it.each([
    ['a refusal without a reason', answer(false, T0 + 100), [CANCELLATION_BLOCKER_CODES.reasonRequired]],
    ['an accept with a reason', answer(true, T0 + 100, 'ORDER_DELIVERED'), [CANCELLATION_BLOCKER_CODES.reasonNotAllowed]],
    ['an unknown reason', answer(false, T0 + 100, 'NOPE'), [CANCELLATION_BLOCKER_CODES.reasonUnknown]],
  ])('%s: stays unanswered, no effect, the blockers recorded', (_what, event, codes) => {
    const before = requested();
    const s = step(before, event);
    expect(cancellationOf(s.snapshot)).toEqual({ requested: 'unanswered' });
    expect(s.effects).toEqual([]);
    expect(codesOf(s.snapshot)).toEqual(codes);
    expect(s.snapshot.context.cancellationAnswer).toBeNull();
    expect(s.snapshot.context.requestCount).toBe(before.context.requestCount);
  });

  it('no request open: CANCELLATION_NOT_REQUESTED (from none, and on a non-DBS order NOT_DBS)', () => {
    const dbs = step(start('DBS', ...DELIVERY).snapshot, accept(T0 + 1));
    expect(cancellationOf(dbs.snapshot)).toBe('none');
    expect(dbs.effects).toEqual([]);
    expect(codesOf(dbs.snapshot)).toEqual([CANCELLATION_BLOCKER_CODES.notRequested]);
    const fbs = step(start('FBS', 'PROCESSING', 'STARTED').snapshot, accept(T0 + 1));
    expect(codesOf(fbs.snapshot)).toEqual([CANCELLATION_BLOCKER_CODES.notDbs]);
    expect(fbs.effects).toEqual([]);
  });

  it.each([
    ['queued', [accept(T0 + 100)]],
    ['sending', [accept(T0 + 100), sent(T0 + 200)]],
    ['uncertain', [accept(T0 + 100), sent(T0 + 200), unknown(T0 + 300)]],
  ] as const)('an answer while one is %s: CANCELLATION_ANSWER_PENDING, the first one untouched', (state, events) => {
    const before = run(requested(), events).at(-1)!.snapshot;
    const s = step(before, refuse(T0 + 400));
    expect(cancellationOf(s.snapshot)).toEqual({ requested: state });
    expect(s.effects).toEqual([]);
    expect(codesOf(s.snapshot)).toEqual([CANCELLATION_BLOCKER_CODES.answerPending]);
    expect(s.snapshot.context.cancellationAnswer).toEqual(before.context.cancellationAnswer);
  });
});

describe('an answer whose outcome is unknown: read back before any resend', () => {
  const uncertain = (maxSends = 3) => run(requested({ maxSends }), [accept(T0 + 100), sent(T0 + 200), unknown(T0 + 300, T0 + 5_000)]).at(-1)!;

  it('goes uncertain and asks for a read-back of its own request, not before readBackAt', () => {
    const s = uncertain();
    expect(cancellationOf(s.snapshot)).toEqual({ requested: 'uncertain' });
    expect(s.effects).toEqual([
      { type: 'effect.recordAnswerState', params: { orderId: ORDER_ID, requestNo: 1, state: 'uncertain', sent: false, reason: 'timeout after 10 s' } },
      { type: 'effect.readBack', params: { ...ids, requestNo: 1, notBefore: T0 + 5_000 } },
    ]);
  });

  it('still cancelRequested and not cancelled: not applied, so it is sent again (queued, its row re-armed)', () => {
    const s = step(uncertain().snapshot, readBack(T0 + 6_000, true));
    expect(cancellationOf(s.snapshot)).toEqual({ requested: 'queued' });
    expect(s.effects).toEqual([{ type: 'effect.sendCancellationAnswer', params: { ...ids, answer: expect.objectContaining({ requestNo: 1, sends: 1 }) } }]);
  });

  it('after maxSends unknown outcomes a read-back showing the request open gives it up as rejected; the request stays open', () => {
    let s = uncertain(2).snapshot;
    s = run(s, [readBack(T0 + 6_000, true), sent(T0 + 7_000), unknown(T0 + 8_000)]).at(-1)!.snapshot;
    expect(s.context.cancellationAnswer?.sends).toBe(2);
    const last = step(s, readBack(T0 + 9_000, true));
    expect(cancellationOf(last.snapshot)).toEqual({ requested: 'unanswered' });
    expect(last.effects).toEqual([
      { type: 'effect.settleCancellationAnswer', params: { ...ids, outcome: expect.objectContaining({ kind: 'rejected', requestNo: 1, message: expect.stringContaining('after 2 send(s)') }) } },
    ]);
    // The deadline stands: the request is still open, and may be answered again (a new request number).
    expect(last.snapshot.context.cancellationRequestedAt).toBe(T0 + 10);
    const again = step(last.snapshot, accept(T0 + 10_000));
    expect(again.snapshot.context.cancellationAnswer).toMatchObject({ requestNo: 2, sends: 0 });
  });

  it.each([
    ['the flag gone', readBack(T0 + 6_000, false), 'accepted'],
    ['the order CANCELLED', readBack(T0 + 6_000, false, 'CANCELLED', 'USER_CHANGED_MIND'), 'accepted'],
    ['the order DELIVERED instead', readBack(T0 + 6_000, false, 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED'), 'superseded'],
  ] as const)('an accept read back with %s settles %s, closing the request', (_what, event, kind) => {
    const s = step(uncertain().snapshot, event);
    expect(cancellationOf(s.snapshot)).toBe('none');
    expect(s.snapshot.context.lastCancellationAnswer).toMatchObject({ kind, accepted: true, requestNo: 1 });
    expect(effectTypes(s.effects)).toEqual(['effect.clearCancellationDeadline', 'effect.settleCancellationAnswer']);
  });

  it('a refusal read back with the flag gone settles accepted; with the order CANCELLED, superseded', () => {
    const unsure = run(requested(), [refuse(T0 + 100), sent(T0 + 200), unknown(T0 + 300)]).at(-1)!.snapshot;
    expect(step(unsure, readBack(T0 + 6_000, false)).snapshot.context.lastCancellationAnswer).toMatchObject({ kind: 'accepted', accepted: false });
    expect(step(unsure, readBack(T0 + 6_000, false, 'CANCELLED', 'USER_CHANGED_MIND')).snapshot.context.lastCancellationAnswer).toMatchObject({ kind: 'superseded' });
  });

  it('a stale read-back, or one that does not say whether the buyer still asks, changes nothing', () => {
    const before = uncertain().snapshot;
    for (const event of [readBack(T0 + 1, true), seen(T0 + 6_000, { source: 'readBack' })]) {
      const s = step(before, event);
      expect(cancellationOf(s.snapshot)).toEqual({ requested: 'uncertain' });
      expect(s.snapshot.context.cancellationAnswer).toEqual(before.context.cancellationAnswer);
      expect(s.effects).toEqual([]);
    }
  });
});

describe('deferred and rejected answers, and the Market moving first', () => {
  it('deferred (a 420, a halt): back to queued, the send not counted, its row due at notBefore', () => {
    const s = run(requested(), [accept(T0 + 100), sent(T0 + 200), { type: 'ANSWER.DEFERRED', at: T0 + 300, notBefore: T0 + 60_000, reason: '420' }]).at(-1)!;
    expect(cancellationOf(s.snapshot)).toEqual({ requested: 'queued' });
    expect(s.snapshot.context.cancellationAnswer).toMatchObject({ sends: 0, notBefore: T0 + 60_000 });
    expect(s.effects).toEqual([
      { type: 'effect.recordAnswerState', params: { orderId: ORDER_ID, requestNo: 1, state: 'queued', sent: false, reason: '420' } },
      // Entering queued again re-arms the same row (same request number), due at notBefore.
      { type: 'effect.sendCancellationAnswer', params: { ...ids, answer: expect.objectContaining({ requestNo: 1, sends: 0, notBefore: T0 + 60_000 }) } },
    ]);
  });

  it('rejected by the Market (a 400): settled with its words; the request stays open, its deadline kept', () => {
    const s = run(requested(), [accept(T0 + 100), sent(T0 + 200), { type: 'ANSWER.REJECTED', at: T0 + 300, reason: 'BAD_REQUEST: no cancellation request is waiting' }]).at(-1)!;
    expect(cancellationOf(s.snapshot)).toEqual({ requested: 'unanswered' });
    expect(s.snapshot.context.lastCancellationAnswer).toEqual({ kind: 'rejected', accepted: true, requestNo: 1, at: T0 + 300, message: 'BAD_REQUEST: no cancellation request is waiting' });
    expect(effectTypes(s.effects)).toEqual(['effect.settleCancellationAnswer']);
  });

  it.each([
    ['the flag dropped', seen(T0 + 500, { cancelRequested: false })],
    ['the order cancelled', seen(T0 + 500, { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' })],
  ])('queued, then %s at the Market: superseded, never sent, the deadline cleared', (_what, event) => {
    const s = step(step(requested(), accept(T0 + 100)).snapshot, event);
    expect(cancellationOf(s.snapshot)).toBe('none');
    expect(s.snapshot.context.lastCancellationAnswer).toMatchObject({ kind: 'superseded', requestNo: 1, message: expect.stringContaining('before the answer') });
    expect(effectTypes(s.effects)).toEqual(['effect.clearCancellationDeadline', 'effect.settleCancellationAnswer']);
  });

  it('a stale observation ending the request settles nothing', () => {
    const queued = step(requested(), accept(T0 + 100)).snapshot;
    const s = step(queued, seen(T0 + 5, { cancelRequested: false }));
    expect(s.snapshot).toBe(queued);
  });

  it('sending, then the Market shows the request closed the way the answer would: settled accepted', () => {
    const s = step(run(requested(), [accept(T0 + 100), sent(T0 + 200)]).at(-1)!.snapshot, seen(T0 + 300, { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' }));
    expect(s.snapshot.context.lastCancellationAnswer).toMatchObject({ kind: 'accepted' });
    expect(cancellationOf(s.snapshot)).toBe('none');
  });

  it('an answer and a status change are numbered together and never move each other', () => {
    const change: OrderEvent = { type: 'SELLER.REQUEST', status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', at: T0 + 50 };
    const [withChange, withAnswer, answerSent, changeSent] = run(requested(), [change, accept(T0 + 100), sent(T0 + 200), { type: 'DISPATCH.SENT', at: T0 + 300 }]);
    expect(withChange!.snapshot.context.pending?.requestNo).toBe(1);
    expect(withAnswer!.snapshot.context.cancellationAnswer?.requestNo).toBe(2);
    expect(answerSent!.snapshot.value).toMatchObject({ change: 'queued', cancellation: { requested: 'sending' } });
    expect(changeSent!.snapshot.value).toMatchObject({ change: 'sending', cancellation: { requested: 'sending' } });
    const accepted = step(changeSent!.snapshot, taken(T0 + 400));
    expect(accepted.snapshot.value).toMatchObject({ change: 'sending', cancellation: 'none' });
    expect(accepted.snapshot.context.pending).toEqual(changeSent!.snapshot.context.pending);
  });

  it('events for an answer that is not there change nothing', () => {
    const open = requested();
    for (const event of [sent(T0 + 100), taken(T0 + 100), unknown(T0 + 100), { type: 'ANSWER.REJECTED', at: T0 + 100, reason: 'x' } as const]) {
      expect(step(open, event).snapshot).toBe(open);
    }
  });
});

// ---- properties over random event sequences ----------------------------------------------

/** An event whose time is relative to the snapshot it is sent to: negative deltas are stale. */
type EventTemplate = (s: OrderSnapshot) => OrderEvent;
const delta = fc.integer({ min: -2_000, max: 5_000 });
const flag = fc.constantFrom<boolean | undefined>(true, true, false, undefined);
const observation = fc
  .record({
    where: fc.constantFrom<[string, string | null]>(['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'], ['PICKUP', 'PICKUP_SERVICE_RECEIVED'], ['CANCELLED', 'USER_CHANGED_MIND'], ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED'], ['SOMETHING_NEW', null]),
    cancelRequested: flag,
    source: fc.constantFrom('readBack', 'readBack', 'sync', 'notification' as const),
    d: delta,
  })
  .map(({ where: [status, substatus], cancelRequested, source, d }): EventTemplate => (s) => ({
    type: 'MARKET.OBSERVED', status, substatus, observedAt: s.context.observedAt + d, source, ...(cancelRequested !== undefined ? { cancelRequested } : {}),
  }));
const answerEvent = fc
  .record({ accepted: fc.boolean(), reason: fc.constantFrom(undefined, 'ORDER_DELIVERED', 'ORDER_IN_DELIVERY', 'WRONG'), d: fc.nat({ max: 1_000 }) })
  .map(({ accepted, reason, d }): EventTemplate => (s) => answer(accepted, s.context.observedAt + d, reason));
const lifecycle = fc
  .record({ kind: fc.constantFrom('SENT', 'SENT', 'ACCEPTED', 'REJECTED', 'UNKNOWN', 'UNKNOWN', 'DEFERRED'), d: delta })
  .map(({ kind, d }): EventTemplate => (s) => {
    const at = s.context.observedAt + d;
    switch (kind) {
      case 'SENT': return { type: 'ANSWER.SENT', at };
      case 'ACCEPTED': return { type: 'ANSWER.ACCEPTED', at };
      case 'REJECTED': return { type: 'ANSWER.REJECTED', at, reason: 'BAD_REQUEST' };
      case 'UNKNOWN': return { type: 'ANSWER.UNKNOWN', at, reason: 'timeout' };
      default: return { type: 'ANSWER.DEFERRED', at, notBefore: at + 1_000, reason: '420' };
    }
  });
const step1 = (type: 'ANSWER.SENT' | 'ANSWER.UNKNOWN'): EventTemplate => (s) =>
  type === 'ANSWER.SENT' ? { type, at: s.context.observedAt + 1 } : { type, at: s.context.observedAt + 2, reason: 'timeout' };
/** Runs that drive an answer to the Market (and into uncertain, read back), mixed with single events. */
const chunk = fc.oneof(
  { weight: 8, arbitrary: fc.oneof({ weight: 3, arbitrary: observation }, { weight: 2, arbitrary: answerEvent }, { weight: 4, arbitrary: lifecycle }).map((t) => [t]) },
  { weight: 1, arbitrary: fc.tuple(answerEvent, lifecycle).map(([a, then]): EventTemplate[] => [a, step1('ANSWER.SENT'), then]) },
  {
    weight: 2,
    arbitrary: fc.tuple(answerEvent, flag, fc.integer({ min: -100, max: 5_000 })).map(([a, cancelRequested, d]): EventTemplate[] => [
      a,
      step1('ANSWER.SENT'),
      step1('ANSWER.UNKNOWN'),
      (s) => ({ type: 'MARKET.OBSERVED', status: s.context.status, substatus: s.context.substatus, observedAt: s.context.observedAt + d, source: 'readBack', ...(cancelRequested !== undefined ? { cancelRequested } : {}) }),
    ]),
  },
);
const scenario = fc.record({
  maxSends: fc.integer({ min: 1, max: 3 }),
  events: fc.array(chunk, { maxLength: 25 }).map((chunks) => chunks.flat()),
});

const ANSWER_STATES = ['queued', 'sending', 'uncertain'];
function answerState(s: OrderSnapshot): string {
  const c = cancellationOf(s);
  return typeof c === 'string' ? c : (c as { requested: string }).requested;
}

describe('cancellation answer properties', () => {
  it('the outbox and the deadline timer follow the machine from its effects alone; refused answers write nothing; sends stay within maxSends', () => {
    const reached = new Set<string>();
    fc.assert(
      fc.property(scenario, ({ maxSends, events }) => {
        let [s, actions] = initialTransition(orderMachine, { ...ids, model: 'DBS', status: DELIVERY[0], substatus: DELIVERY[1], observedAt: T0, cancelRequested: true, maxSends });
        const outbox = new Map<number, string>();
        const timers = new Map<number, number>();
        const replay = (list: readonly { type: string; params?: unknown }[]) => {
          for (const e of orderEffects(list)) {
            if (e.type === 'effect.startCancellationDeadline') timers.set(e.params.orderId, e.params.dueAt);
            if (e.type === 'effect.clearCancellationDeadline') timers.delete(e.params.orderId);
            if (e.type === 'effect.sendCancellationAnswer') outbox.set(e.params.answer.requestNo, 'queued');
            if (e.type === 'effect.recordAnswerState') {
              expect(outbox.has(e.params.requestNo)).toBe(true);
              expect(e.params.sent).toBe(e.params.state === 'sending');
              outbox.set(e.params.requestNo, e.params.state);
            }
            if (e.type === 'effect.settleCancellationAnswer') outbox.set(e.params.outcome.requestNo, e.params.outcome.kind);
          }
        };
        replay(actions);
        for (const template of events) {
          const event = template(s);
          const before = s;
          [s, actions] = transition(orderMachine, s, event);
          replay(actions);
          const c = s.context;
          reached.add(`${answerState(before)}→${answerState(s)}`);
          // A refused answer changes nothing but the refusal record, and emits nothing.
          if (event.type === 'SELLER.ANSWER_CANCELLATION' && !judgeCancellationAnswer(before.context, event).allowed) {
            expect(actions.filter((a) => a.type.startsWith('effect.'))).toEqual([]);
            expect(s.value).toEqual(before.value);
            expect({ ...c, lastAnswerRefusal: null }).toEqual({ ...before.context, lastAnswerRefusal: null });
            expect(c.lastAnswerRefusal?.blockers.length).toBeGreaterThan(0);
          }
          // The answer's row is the one open row, in the machine's state.
          const open = [...outbox].filter(([, state]) => ANSWER_STATES.includes(state));
          expect(c.cancellationAnswer === null).toBe(!ANSWER_STATES.includes(answerState(s)));
          expect(open).toEqual(c.cancellationAnswer ? [[c.cancellationAnswer.requestNo, answerState(s)]] : []);
          // The timer is there exactly while a request is open, due 48 h after it was seen.
          expect(c.cancellationRequestedAt === null).toBe(answerState(s) === 'none');
          expect([...timers]).toEqual(c.cancellationRequestedAt === null ? [] : [[ORDER_ID, c.cancellationRequestedAt + DBS_CANCELLATION_ANSWER_MS]]);
          if (c.cancellationAnswer) expect(c.cancellationAnswer.sends).toBeLessThanOrEqual(maxSends);
          if (c.cancellationAnswer) expect(c.cancellationAnswer.sends).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 400 },
    );
    // The scenarios reach every move of the answer.
    for (const move of ['unanswered→queued', 'queued→sending', 'sending→queued', 'sending→uncertain', 'uncertain→queued', 'sending→none', 'sending→unanswered', 'uncertain→none', 'uncertain→unanswered', 'queued→none', 'unanswered→none', 'none→unanswered']) {
      expect(reached, move).toContain(move);
    }
  });
});
