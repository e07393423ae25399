// The Market's refusal messages (NOTES.md §d2, the error-codes page) read into stable codes,
// in text as it really arrives: after an order id in a bulk answer's errorDetails, inside a
// 400's summary, in other quotes; and end to end, into the order's lastOutcome.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MARKET_REFUSALS, readMarketRefusal } from '../src/market/refusals.js';
import { DBS, pastDeliveryDate, engineFor, seeds } from './helpers/effects-fixtures.js';
import { useEffectsTest } from './helpers/effects-harness.js';

describe('readMarketRefusal, each documented form', () => {
  it('"No permission to set status …": the refused status, the order and the status it was in', () => {
    expect(readMarketRefusal("No permission to set status 'DELIVERED' for order '48000000123' with status 'PROCESSING'")).toEqual({
      code: 'NO_PERMISSION',
      message: 'The Market says the shop may not set DELIVERED on an order in PROCESSING.',
      to: 'DELIVERED',
      orderId: 48000000123,
      from: 'PROCESSING',
    });
    // Unquoted, after the bulk answer's order prefix.
    expect(readMarketRefusal('Order 48000000123: No permission to set status DELIVERY for order 48000000123 with status CANCELLED.')).toMatchObject({
      code: 'NO_PERMISSION', to: 'DELIVERY', orderId: 48000000123, from: 'CANCELLED',
    });
  });

  it('"No transition found: \'A\' -> \'B\'", in any quotes or arrow', () => {
    const expected = { code: 'NO_TRANSITION', from: 'PROCESSING', to: 'DELIVERED', message: 'The Market knows no transition from PROCESSING to DELIVERED.' };
    expect(readMarketRefusal("No transition found: 'PROCESSING' -> 'DELIVERED'")).toEqual(expected);
    expect(readMarketRefusal('Order 48000000123: No transition found: "PROCESSING" -> "DELIVERED"')).toEqual(expected);
    expect(readMarketRefusal('No transition found: «PROCESSING» → «DELIVERED»')).toEqual(expected);
    expect(readMarketRefusal('no transition found: ‘PROCESSING’->‘DELIVERED’')).toEqual(expected);
    expect(readMarketRefusal("No transition found: 'PROCESSING/STARTED' -> 'DELIVERED/DELIVERY_SERVICE_DELIVERED'")).toMatchObject({
      from: 'PROCESSING/STARTED', to: 'DELIVERED/DELIVERY_SERVICE_DELIVERED',
    });
  });

  it('"Transition \'A\' -> \'B\' is not allowed. Reason: …": the Market\'s reason is kept', () => {
    const text = "Transition 'DELIVERY' -> 'CANCELLED' is not allowed. Reason: order 48000000123 has a cancellation request from the buyer";
    expect(readMarketRefusal(text)).toEqual({
      code: 'TRANSITION_NOT_ALLOWED',
      message: 'The Market says the transition from DELIVERY to CANCELLED is not allowed: order 48000000123 has a cancellation request from the buyer',
      from: 'DELIVERY',
      to: 'CANCELLED',
      detail: 'order 48000000123 has a cancellation request from the buyer',
    });
    expect(readMarketRefusal("Transition 'PICKUP' -> 'DELIVERY' is not allowed.")).toEqual({
      code: 'TRANSITION_NOT_ALLOWED', message: 'The Market says the transition from PICKUP to DELIVERY is not allowed.', from: 'PICKUP', to: 'DELIVERY',
    });
    // A reason over several lines stays whole.
    expect(readMarketRefusal("Transition 'A' -> 'B' is not allowed. Reason: first line\nsecond line").detail).toBe('first line\nsecond line');
  });

  it('"Status not allowed: \'X\'"', () => {
    expect(readMarketRefusal("Status not allowed: 'RESERVED'")).toEqual({
      code: 'STATUS_NOT_ALLOWED',
      message: 'The Market does not accept RESERVED as a target status; it accepts PROCESSING, CANCELLED, DELIVERY, PICKUP and DELIVERED.',
      to: 'RESERVED',
    });
    expect(readMarketRefusal('Status not allowed: RETURNED.')).toMatchObject({ code: 'STATUS_NOT_ALLOWED', to: 'RETURNED' });
  });

  it('"Cancellation request substatus … is not available for status \'X\' and role \'R\'"', () => {
    expect(readMarketRefusal("Cancellation request substatus 'USER_REFUSED_QUALITY' is not available for status 'PROCESSING' and role 'SHOP_USER'")).toEqual({
      code: 'CANCEL_SUBSTATUS_NOT_AVAILABLE',
      message: 'The Market says cancellation substatus USER_REFUSED_QUALITY is not available from PROCESSING for role SHOP_USER.',
      substatus: 'USER_REFUSED_QUALITY',
      from: 'PROCESSING',
      role: 'SHOP_USER',
    });
    expect(readMarketRefusal('Cancellation request substatus PICKUP_EXPIRED is not available for status DELIVERY')).toMatchObject({
      code: 'CANCEL_SUBSTATUS_NOT_AVAILABLE', substatus: 'PICKUP_EXPIRED', from: 'DELIVERY',
    });
  });

  it('inside a client error summary, as a 400 becomes a rejection reason', () => {
    const summary =
      "updateOrderStatus (PUT /v2/campaigns/5102/orders/48000000123/status): HTTP 400: STATUS_NOT_ALLOWED: No transition found: 'PICKUP' -> 'DELIVERY'";
    expect(readMarketRefusal(summary)).toMatchObject({ code: 'NO_TRANSITION', from: 'PICKUP', to: 'DELIVERY' });
    // The code STATUS_NOT_ALLOWED alone is not the message "Status not allowed".
    expect(readMarketRefusal('updateOrderStatuses (POST /v2/campaigns/1/orders/status-update): HTTP 400: STATUS_NOT_ALLOWED')).toMatchObject({ code: 'UNRECOGNIZED' });
  });

  it('anything else is UNRECOGNIZED, with no fields read from it', () => {
    for (const text of ['', 'Internal error', 'The Market answered ERROR for order 5 without details.', 'Operation fake-op-1 FAILED at the Market.', 'Transition not allowed']) {
      expect(readMarketRefusal(text), text).toEqual({ code: 'UNRECOGNIZED', message: expect.stringContaining('does not recognise') });
    }
  });

  it('never throws, and always gives one of the codes, whatever the text (fixed seed)', () => {
    const codes = Object.values(MARKET_REFUSALS) as string[];
    const pieces = fc.constantFrom("No transition found: '", "' -> '", 'Status not allowed: ', 'Transition ', ' is not allowed. Reason: ', 'Cancellation request substatus ', "'", '«', '→', '\n', 'PROCESSING', '48000000123');
    fc.assert(
      fc.property(fc.array(fc.oneof(pieces, fc.string()), { maxLength: 12 }), (parts) => {
        const r = readMarketRefusal(parts.join(''));
        expect(codes).toContain(r.code);
        expect(typeof r.message).toBe('string');
      }),
      { seed: 15, numRuns: 2_000 },
    );
  });
});

describe('refusals end to end: the order\'s lastOutcome carries the code, the reason keeps the words', () => {
  const t = useEffectsTest();

  it('a bulk ERROR and a single-PUT 400 become coded rejections; the journal keeps them', async () => {
    const market = await t.start();
    // The engine last saw these in DELIVERY or PICKUP; the Market has since moved them on.
    market.seedOrders([...seeds(DBS, 701, 2, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED'), ...seeds(DBS, 703, 1, 'PICKUP', 'PICKUP_SERVICE_RECEIVED')]);
    const { engine } = await t.open(market);
    await engine.sync();
    market.setOrderStatus(701, 'CANCELLED', 'USER_CHANGED_MIND');
    market.setOrderStatus(702, 'CANCELLED', 'USER_CHANGED_MIND');
    market.setOrderStatus(703, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
    await engine.requestChange({ orderId: 701, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' }); // bulk
    await engine.requestChange({ orderId: 702, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: pastDeliveryDate() }); // single PUT
    await engine.requestChange({ orderId: 703, status: 'CANCELLED', substatus: 'PICKUP_EXPIRED' }); // a PICKUP reason, not a DELIVERY one
    await engine.flush({ untilIdle: true });

    const bulk = (await engine.getOrder(701)).lastOutcome!;
    expect(bulk).toMatchObject({
      kind: 'rejected',
      rejection: { code: 'TRANSITION_NOT_ALLOWED', from: 'CANCELLED/USER_CHANGED_MIND', to: 'PICKUP/PICKUP_SERVICE_RECEIVED' },
    });
    expect(bulk.reason).toMatch(/^Order 701: Transition 'CANCELLED\/USER_CHANGED_MIND' -> 'PICKUP\/PICKUP_SERVICE_RECEIVED' is not allowed/);
    expect(bulk.rejection!.message).toMatch(/^The Market says the transition from CANCELLED\/USER_CHANGED_MIND to PICKUP\/PICKUP_SERVICE_RECEIVED is not allowed/);

    const single = (await engine.getOrder(702)).lastOutcome!;
    expect(single).toMatchObject({ kind: 'rejected', rejection: { code: 'TRANSITION_NOT_ALLOWED', from: 'CANCELLED/USER_CHANGED_MIND', to: 'DELIVERED/DELIVERY_SERVICE_DELIVERED' } });
    expect(single.reason).toContain('HTTP 400');

    expect((await engine.getOrder(703)).lastOutcome).toMatchObject({
      kind: 'rejected',
      rejection: { code: 'CANCEL_SUBSTATUS_NOT_AVAILABLE', substatus: 'PICKUP_EXPIRED', from: 'DELIVERY' },
    });
    // The fake was asked, and refused, each once: nothing was resent.
    expect(market.requests.filter((r) => r.endpoint === 'updateOrderStatuses' || r.endpoint === 'updateOrderStatus')).toHaveLength(2);

    const rejected = (await engine.history(701)).find((row) => row.event_type === 'DISPATCH.REJECTED')!;
    expect(JSON.parse(rejected.event)).toMatchObject({ rejection: { code: 'TRANSITION_NOT_ALLOWED' } });
  });

  it('a rejection in words nobody documented is UNRECOGNIZED, with the words kept, and nothing breaks', async () => {
    const market = await t.start();
    market.seedOrders(seeds(DBS, 801, 1, 'PROCESSING', 'STARTED'));
    const engine = await engineFor(market, ':memory:');
    t.engines.push(engine);
    await engine.sync();
    await engine.requestChange({ orderId: 801, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' });
    const now = engine.clock();
    await engine.store.transaction(async (tx) => {
      await engine.orders.apply(tx, 801, { type: 'DISPATCH.SENT', at: now }, now);
      await engine.orders.apply(tx, 801, { type: 'DISPATCH.REJECTED', at: now, reason: 'Заказ 801: что-то пошло не так (код 7)' }, now);
    });
    expect(await engine.getOrder(801)).toMatchObject({
      change: 'idle',
      lastOutcome: { kind: 'rejected', reason: 'Заказ 801: что-то пошло не так (код 7)', rejection: { code: 'UNRECOGNIZED' } },
    });
  });
});
