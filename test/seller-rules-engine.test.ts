// Issue 15 through the engine, a real SQLite file and the fake Market over loopback HTTP:
//  - a change queued under the old rules that the new ones refuse is never sent: it settles as
//    rejected (NO_LONGER_ALLOWED, with the blockers) before any I/O;
//  - a LaaS draft the Market cancels itself (RESERVED → CANCELLED, unasked) settles whatever
//    change was pending: queued, in flight, or awaiting its operation;
//  - USER_UNREACHABLE with the buyer's number unavailable passes the call-evidence check.

import { describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import { ORDER_MACHINE_VERSION, orderMachine, type OrderEvent } from '../machines/order-machine.js';
import { isYmOrdersError } from '../src/errors.js';
import { SqliteStore } from '../src/store/index.js';
import type { FakeMarket, FakeRequest } from '../src/testing/index.js';
import { DBS, LAAS, engineFor, orderIdsOf, seeds, tempDbPath, waitUntil } from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

const statusCalls = (market: FakeMarket): FakeRequest[] =>
  market.requests.filter((r) => r.endpoint === 'updateOrderStatuses' || r.endpoint === 'updateOrderStatus');

/**
 * Queues a change on an idle tracked order as an older ym-orders, whose table allowed `target`,
 * would have stored it: the machine takes a request the current rules allow (CANCELLED/SHOP_FAILED)
 * and its pending target is rewritten; then the order row, its SELLER.REQUEST journal row and the
 * outbox row (with the key of `target`) are written through the store port, in one transaction,
 * on a connection of their own (the engine is closed meanwhile).
 */
async function queueUnderOlderRules(db: string, orderId: number, target: { status: string; substatus: string }, at: number): Promise<void> {
  const store = SqliteStore.open(db);
  try {
    await store.transaction(async (tx) => {
      const row = await tx.orders.get(orderId);
      expect(row).toMatchObject({ change_state: 'idle' });
      const request: OrderEvent = { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at };
      const [queued] = transition(orderMachine, orderMachine.resolveState(JSON.parse(row!.snapshot)), request);
      const persisted = JSON.parse(JSON.stringify(orderMachine.getPersistedSnapshot(queued))) as { context: { pending: { requestNo: number } } };
      expect(persisted.context.pending).toMatchObject({ requestNo: 1 });
      persisted.context.pending = { ...persisted.context.pending, ...target };
      expect(await tx.orders.update({ ...row!, change_state: 'queued', snapshot: JSON.stringify(persisted), updated_at: at }, row!.row_version)).toBe(true);
      const journalSeq = await tx.journal.append({
        order_id: orderId,
        row_version: row!.row_version + 1,
        event_type: 'SELLER.REQUEST',
        event: JSON.stringify({ ...request, ...target }),
        source: 'seller',
        from_status: row!.status,
        from_substatus: row!.substatus,
        from_change: 'idle',
        to_status: row!.status,
        to_substatus: row!.substatus,
        to_change: 'queued',
        at,
      });
      await tx.outbox.enqueue({
        idempotency_key: `${orderId}:${target.status}/${target.substatus}:m${ORDER_MACHINE_VERSION}:r1`,
        order_id: orderId,
        campaign_id: row!.campaign_id,
        request_no: 1,
        status: target.status,
        substatus: target.substatus,
        real_delivery_date: null,
        next_attempt_at: at,
        journal_seq: journalSeq,
        now: at,
      });
    });
  } finally {
    await store.close();
  }
}

describe('a queued change the new rules refuse', () => {
  const t = useEffectsTest();

  it('is never sent: it settles as rejected with NO_LONGER_ALLOWED before any I/O, the rest go out', async () => {
    const market = await t.start();
    market.seedOrders([...seeds(DBS, 901, 3, 'PROCESSING', 'STARTED'), ...seeds(DBS, 911, 1, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED')]);
    const db = tempDbPath();
    t.dbs.push(db);
    let engine = await engineFor(market, db);
    await engine.sync();
    await engine.requestChanges([
      { orderId: 902, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
      { orderId: 903, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
    ]);
    await engine.close();
    // What the old table queued: DBS.ready-to-ship (removed) and a buyer reason the shop may not send.
    await queueUnderOlderRules(db, 901, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, Date.now());
    await queueUnderOlderRules(db, 911, { status: 'CANCELLED', substatus: 'USER_REFUSED_QUALITY' }, Date.now());

    engine = await engineFor(market, db);
    t.engines.push(engine);
    await engine.flush({ untilIdle: true });

    const sent = statusCalls(market).flatMap(orderIdsOf);
    expect(sent.sort()).toEqual([902, 903]);
    expect(market.stats().illegalRequests).toBe(0);
    expect(market.getOrder(901)).toMatchObject({ status: 'PROCESSING', substatus: 'STARTED' });
    expect(market.getOrder(911)).toMatchObject({ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' });

    const ready = await engine.getOrder(901);
    expect(ready).toMatchObject({
      change: 'idle',
      pending: null,
      lastOutcome: {
        kind: 'rejected',
        status: 'PROCESSING',
        substatus: 'READY_TO_SHIP',
        rejection: { code: 'NO_LONGER_ALLOWED', blockers: [{ code: 'FORBIDDEN_FOR_MODEL' }] },
      },
    });
    expect(ready.lastOutcome!.reason).toContain('queued under older seller rules');
    expect((await engine.getOrder(911)).lastOutcome).toMatchObject({
      kind: 'rejected',
      rejection: { code: 'NO_LONGER_ALLOWED', blockers: [{ code: 'WRONG_SUBSTATUS', expectedSubstatuses: ['SHOP_FAILED', 'USER_CHANGED_MIND', 'USER_UNREACHABLE'] }] },
    });
    expect((await engine.pendingChanges()).map((r) => r.order_id)).toEqual([]);
    const rows = await engine.settledChanges({ state: 'rejected', since: 0 });
    expect(rows.map((r) => [r.order_id, r.attempts]).sort()).toEqual([[901, 0], [911, 0]]);
  });

  it('when it is the only change due, no request is made at all', async () => {
    const market = await t.start();
    market.seedOrders(seeds(DBS, 921, 1, 'PROCESSING', 'STARTED'));
    const db = tempDbPath();
    t.dbs.push(db);
    let engine = await engineFor(market, db);
    await engine.sync();
    await engine.close();
    await queueUnderOlderRules(db, 921, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }, Date.now());
    engine = await engineFor(market, db);
    t.engines.push(engine);
    const before = market.requests.length;
    const report = await engine.flush({ untilIdle: true });
    expect(market.requests.length - before).toBe(0);
    expect(report.open).toBe(0);
    expect((await engine.getOrder(921)).lastOutcome).toMatchObject({ kind: 'rejected', rejection: { code: 'NO_LONGER_ALLOWED' } });
  });
});

describe('a LaaS draft the Market cancels itself (unconfirmed after an hour)', () => {
  const t = useEffectsTest();

  it('settles a queued confirmation as superseded, and it is never sent', async () => {
    const market = await t.start();
    market.seedOrders(seeds(LAAS, 931, 1, 'RESERVED', 'AWAIT_CONFIRMATION'));
    const { engine } = await t.open(market);
    await engine.sync();
    await engine.requestChange({ orderId: 931, status: 'PROCESSING', substatus: 'STARTED' });
    market.setOrderStatus(931, 'CANCELLED', 'RESERVATION_EXPIRED');
    await engine.sync();
    await engine.flush({ untilIdle: true });
    expect(statusCalls(market)).toHaveLength(0);
    expect(await engine.getOrder(931)).toMatchObject({
      status: 'CANCELLED', substatus: 'RESERVATION_EXPIRED', change: 'idle', pending: null,
      lastOutcome: { kind: 'superseded', status: 'PROCESSING', substatus: 'STARTED' },
    });
  });

  it('settles an in-flight confirmation as superseded; the Market’s late refusal changes nothing', async () => {
    const market = await t.start();
    market.seedOrders(seeds(LAAS, 941, 1, 'RESERVED', 'AWAIT_CONFIRMATION'));
    const { engine } = await t.open(market);
    await engine.sync();
    await engine.requestChange({ orderId: 941, status: 'PROCESSING', substatus: 'STARTED' });
    market.hold((r) => r.endpoint === 'updateOrderStatuses');
    const flushing = engine.flush({ untilIdle: true });
    let observed;
    try {
      await waitUntil(() => market.held().length > 0, 'the confirmation is in flight');
      expect((await engine.getOrder(941)).change).toBe('sending');
      // The hour ran out while the request was on its way; the notification arrives first.
      market.setOrderStatus(941, 'CANCELLED', 'RESERVATION_EXPIRED');
      observed = await engine.observe({ orderId: 941, status: 'CANCELLED', substatus: 'RESERVATION_EXPIRED', observedAt: market.getOrder(941)!.updateDate });
    } finally {
      market.release();
      await flushing;
    }
    expect(observed).toMatchObject({ change: 'idle', lastOutcome: { kind: 'superseded', status: 'PROCESSING', substatus: 'STARTED' } });
    expect(statusCalls(market)).toHaveLength(1);
    expect(await engine.getOrder(941)).toMatchObject({ status: 'CANCELLED', change: 'idle', lastOutcome: { kind: 'superseded' } });
    expect(await engine.pendingChanges()).toEqual([]);
  });

  it('settles a cancellation awaiting its operation as superseded, without waiting for the operation', async () => {
    const market = await t.start({ operationDelayMs: 3_600_000 });
    market.seedOrders(seeds(LAAS, 951, 1, 'RESERVED', 'AWAIT_CONFIRMATION'));
    const { engine } = await t.open(market);
    await engine.sync();
    await engine.requestChange({ orderId: 951, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    await engine.flush();
    expect((await engine.getOrder(951)).change).toBe('awaitingOperation');
    market.setOrderStatus(951, 'CANCELLED', 'RESERVATION_EXPIRED');
    await engine.sync();
    expect(await engine.getOrder(951)).toMatchObject({
      status: 'CANCELLED', substatus: 'RESERVATION_EXPIRED', change: 'idle',
      lastOutcome: { kind: 'superseded', status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    });
    expect((await engine.stats()).open).toBe(0);
  });
});

describe('the order machine, stepped: RESERVED → CANCELLED unasked', () => {
  const input = { orderId: 5, campaignId: 6, model: 'LAAS' as const, status: 'RESERVED', substatus: 'AWAIT_CONFIRMATION', observedAt: 1_000 };
  const cancelled = (at: number): OrderEvent => ({ type: 'MARKET.OBSERVED', status: 'CANCELLED', substatus: 'RESERVATION_EXPIRED', observedAt: at, source: 'notification' });
  const steps = (events: OrderEvent[]) => {
    let [s] = initialTransition(orderMachine, input);
    const actions: string[][] = [];
    for (const e of events) {
      const [next, a] = transition(orderMachine, s, e);
      actions.push(a.map((x) => x.type).filter((x) => x.startsWith('effect.')));
      s = next;
    }
    return { s, actions };
  };
  const confirm: OrderEvent = { type: 'SELLER.REQUEST', status: 'PROCESSING', substatus: 'STARTED', at: 1_100 };
  const cancel: OrderEvent = { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at: 1_100 };

  it.each([
    ['queued confirm-draft', [confirm]],
    ['in-flight confirm-draft', [confirm, { type: 'DISPATCH.SENT', at: 1_200 } as OrderEvent]],
    ['cancel-draft awaiting its operation', [cancel, { type: 'DISPATCH.SENT', at: 1_200 } as OrderEvent, { type: 'DISPATCH.OPERATION_STARTED', at: 1_300, operationId: 'op', operationType: 'ORDER_STATUS_UPDATE' } as OrderEvent]],
  ] as const)('%s: superseded at once, and a late answer is ignored', (_name, before) => {
    const { s, actions } = steps([...before, cancelled(2_000), { type: 'DISPATCH.ACCEPTED', at: 2_100 }, { type: 'DISPATCH.REJECTED', at: 2_200, reason: 'late' }]);
    expect(s.value).toEqual({ market: 'CANCELLED', change: 'idle', cancellation: 'none' });
    expect(s.context.lastOutcome).toMatchObject({ kind: 'superseded', at: 2_000 });
    expect(s.context).toMatchObject({ status: 'CANCELLED', substatus: 'RESERVATION_EXPIRED', pending: null });
    expect(actions.at(-3)).toEqual(['effect.settleStatusChange']);
    expect(actions.slice(-2)).toEqual([[], []]);
  });

  it('a stale notification of the cancellation settles nothing', () => {
    const { s } = steps([confirm, { type: 'DISPATCH.SENT', at: 1_200 }, cancelled(500)]);
    expect(s.value).toMatchObject({ change: 'sending' });
  });
});

describe('the order machine, stepped: a snapshot whose queued change the rules now refuse', () => {
  /** A DBS order queued for `target` as an older version's table allowed, restored as the engine restores it. */
  function restoredQueued(target: { status: string; substatus: string }) {
    const [initial] = initialTransition(orderMachine, { orderId: 5, campaignId: 6, model: 'DBS', status: 'PROCESSING', substatus: 'STARTED', observedAt: 1_000 });
    const [queued] = transition(orderMachine, initial, { type: 'SELLER.REQUEST', status: 'CANCELLED', substatus: 'SHOP_FAILED', at: 1_100 });
    const persisted = JSON.parse(JSON.stringify(orderMachine.getPersistedSnapshot(queued))) as { context: { pending: object } };
    persisted.context.pending = { ...persisted.context.pending, ...target };
    return orderMachine.resolveState(persisted as never);
  }

  it('DISPATCH.SENT settles it rejected with NO_LONGER_ALLOWED and the blockers; nothing goes to sending', () => {
    const [next, actions] = transition(orderMachine, restoredQueued({ status: 'PROCESSING', substatus: 'READY_TO_SHIP' }), { type: 'DISPATCH.SENT', at: 1_200 });
    expect(next.value).toMatchObject({ change: 'idle' });
    expect(next.context.pending).toBeNull();
    expect(next.context.lastOutcome).toMatchObject({
      kind: 'rejected', status: 'PROCESSING', substatus: 'READY_TO_SHIP', at: 1_200,
      rejection: { code: 'NO_LONGER_ALLOWED', blockers: [{ code: 'FORBIDDEN_FOR_MODEL', modelsAllowed: ['FBS', 'EXPRESS'] }] },
    });
    expect(next.context.lastOutcome!.reason).toBe(next.context.lastOutcome!.rejection!.message);
    expect(actions.map((a) => a.type).filter((t) => t.startsWith('effect.'))).toEqual(['effect.settleStatusChange']);
  });

  it('a sync showing the order where it was settles it superseded, saying the rules (not the Market) moved', () => {
    const [next] = transition(orderMachine, restoredQueued({ status: 'CANCELLED', substatus: 'REPLACING_ORDER' }), {
      type: 'MARKET.OBSERVED', status: 'PROCESSING', substatus: 'STARTED', observedAt: 1_300, source: 'sync',
    });
    expect(next.context.lastOutcome).toMatchObject({ kind: 'superseded', substatus: 'REPLACING_ORDER' });
    expect(next.context.lastOutcome!.reason).toBe('The order is still PROCESSING/STARTED, from where the current seller rules do not allow the change.');
  });

  it('a change the rules still allow is sent as before', () => {
    const [next] = transition(orderMachine, restoredQueued({ status: 'CANCELLED', substatus: 'INCORRECT_PERSONAL_DATA' }), { type: 'DISPATCH.SENT', at: 1_200 });
    expect(next.value).toMatchObject({ change: 'sending' });
  });
});

describe('USER_UNREACHABLE when the buyer’s number is unavailable', () => {
  const t = useEffectsTest();

  it('is queued and sent with { numberUnavailable: true }; other shapes are refused and write nothing', async () => {
    const market = await t.start();
    market.seedOrders(seeds(DBS, 961, 1, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED'));
    const engine = await engineFor(market, ':memory:');
    t.engines.push(engine);
    await engine.sync();
    const refused = async (callEvidence: unknown) => {
      try {
        await engine.requestChange({ orderId: 961, status: 'CANCELLED', substatus: 'USER_UNREACHABLE', callEvidence } as never);
      } catch (error) {
        if (isYmOrdersError(error)) return error;
        throw error;
      }
      throw new Error('expected a refusal');
    };
    expect(await refused(undefined)).toMatchObject({ code: 'CHANGE_REFUSED', message: expect.stringContaining('numberUnavailable') });
    expect(await refused({ numberUnavailable: false })).toMatchObject({ code: 'INVALID_COMMAND' });
    expect(await refused({ numberUnavailable: 'yes' })).toMatchObject({ code: 'INVALID_COMMAND' });
    expect((await engine.history(961)).map((r) => r.event_type)).toEqual(['TRACK']);

    await engine.requestChange({ orderId: 961, status: 'CANCELLED', substatus: 'USER_UNREACHABLE', callEvidence: { numberUnavailable: true } });
    await engine.flush({ untilIdle: true });
    expect(market.getOrder(961)).toMatchObject({ status: 'CANCELLED', substatus: 'USER_UNREACHABLE' });
    expect((await engine.getOrder(961)).lastOutcome).toMatchObject({ kind: 'accepted' });
    const request = (await engine.history(961)).find((r) => r.event_type === 'SELLER.REQUEST')!;
    expect(JSON.parse(request.event)).toMatchObject({ callEvidence: { numberUnavailable: true } });
  });
});
