// Timers are rows: the 48 h a DBS shop has to answer a buyer's cancellation request is kept as
// an absolute due time in the store (a row), set and cleared by the order machine's effects, and it
// survives a restart.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DBS_CANCELLATION_ANSWER_MS } from '../machines/order-machine.js';
import { createEngine } from '../src/engine/engine.js';

const campaigns = [{ campaignId: 3, businessId: 30, model: 'DBS' as const }];
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('DBS cancellation-answer timers', () => {
  it('a cancellation request sets a 48 h timer that survives a restart; the flag going away clears it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ym-timers-'));
    dirs.push(dir);
    const db = join(dir, 'orders.db');
    const t0 = Date.parse('2026-11-20T10:00:00Z');
    const engine = await createEngine({ db, campaigns });
    await engine.trackOrders([
      { orderId: 1, campaignId: 3, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: t0 },
      { orderId: 2, campaignId: 3, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED', observedAt: t0, cancelRequested: true },
    ]);
    await engine.observe({ orderId: 1, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: t0 + 1_000, cancelRequested: true });
    // A later notification repeating the flag keeps the first deadline.
    await engine.observe({ orderId: 1, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: t0 + 5_000, cancelRequested: true });
    expect(await engine.timers()).toEqual([
      { kind: 'dbs.cancellationAnswer', orderId: 2, dueAt: t0 + DBS_CANCELLATION_ANSWER_MS },
      { kind: 'dbs.cancellationAnswer', orderId: 1, dueAt: t0 + 1_000 + DBS_CANCELLATION_ANSWER_MS },
    ]);
    expect((await engine.getOrder(1)).cancellationRequestedAt).toBe(t0 + 1_000);
    await engine.close();

    const reopened = await createEngine({ db });
    expect((await reopened.timers({ dueBefore: t0 + DBS_CANCELLATION_ANSWER_MS })).map((t) => t.orderId)).toEqual([2]);
    await reopened.observe({ orderId: 2, status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED', observedAt: t0 + 9_000, cancelRequested: false });
    expect((await reopened.timers()).map((t) => t.orderId)).toEqual([1]);
    expect((await reopened.getOrder(2)).cancellationRequestedAt).toBeNull();
    // A stale observation clears nothing.
    await reopened.observe({ orderId: 1, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: t0, cancelRequested: false });
    expect((await reopened.timers()).map((t) => t.orderId)).toEqual([1]);
    await reopened.close();
  });
});
