// createEngine({ inspect }) mirrors every order the engine changes into a live XState actor, so
// an inspector (e.g. @statelyai/inspect) sees ordinary actors, events and snapshots.

import type { InspectionEvent } from 'xstate';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.js';

const campaigns = [{ campaignId: 1, businessId: 10, model: 'FBS' as const }];

describe('inspection', () => {
  it('an inspector sees each order as an actor, with the events the engine applied and the resulting snapshots', async () => {
    const seen: InspectionEvent[] = [];
    const engine = await createEngine({ db: ':memory:', campaigns, inspect: (event) => seen.push(event) });
    await engine.trackOrders([{ orderId: 7, campaignId: 1, status: 'PROCESSING', substatus: 'STARTED', observedAt: 1 }]);
    await engine.requestChange({ orderId: 7, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    await engine.observe({ orderId: 7, status: 'PROCESSING', substatus: 'READY_TO_SHIP', observedAt: Date.now() + 1, source: 'notification' });

    const actors = seen.filter((e) => e.type === '@xstate.actor');
    expect(actors.map((e) => (e.actorRef as unknown as { id: string }).id)).toContain('order-7');
    const events = seen.filter((e) => e.type === '@xstate.event').map((e) => (e as { event: { type: string } }).event.type);
    expect(events).toEqual(expect.arrayContaining(['SELLER.REQUEST', 'MARKET.OBSERVED']));
    const snapshots = seen.filter((e) => e.type === '@xstate.snapshot') as Extract<InspectionEvent, { type: '@xstate.snapshot' }>[];
    const last = snapshots.at(-1)!.snapshot as unknown as { value: unknown; context: { lastOutcome: { kind: string } } };
    // The live actor ends exactly where the stored snapshot is.
    expect(last.value).toEqual({ market: { PROCESSING: 'READY_TO_SHIP' }, change: 'idle', cancellation: 'none' });
    expect(last.context.lastOutcome.kind).toBe('accepted');
    expect(await engine.getOrder(7)).toMatchObject({ marketState: 'PROCESSING.READY_TO_SHIP', change: 'idle' });
    await engine.close();
  });

  it('inspectOptions.orderIds limits the mirror to those orders', async () => {
    const seen: InspectionEvent[] = [];
    const engine = await createEngine({ db: ':memory:', campaigns, inspect: (event) => seen.push(event), inspectOptions: { orderIds: [2] } });
    await engine.trackOrders([1, 2].map((orderId) => ({ orderId, campaignId: 1, status: 'PROCESSING', substatus: 'STARTED', observedAt: 1 })));
    await engine.requestChanges([1, 2].map((orderId) => ({ orderId, status: 'CANCELLED', substatus: 'SHOP_FAILED' })));
    const ids = new Set(seen.filter((e) => e.type === '@xstate.actor').map((e) => (e.actorRef as unknown as { id: string }).id));
    expect([...ids]).toEqual(['order-2']);
    await engine.close();
  });
});
