// Multi-step changes end to end (issue #12): DBS orders at the fake Market (loopback HTTP), a
// real SQLite file, the engine's own dispatcher. A chain PROCESSING/STARTED → DELIVERED is two
// requests at the fake, in the diagram's order (the bulk POST, then the single PUT with the real
// delivery date), each sent once; a refusal or a Market move stops it; the CLI plans, queues and
// flushes it (set-status --chain), or only explains it (--dry-run).

import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHAIN_STOP_CODES } from '../machines/order-machine.js';
import { main } from '../src/cli/main.js';
import type { Engine, EngineOptions } from '../src/engine/engine.js';
import { ChainNotActiveError, ChangeRefusedError } from '../src/engine/errors.js';
import type { FakeMarket } from '../src/testing/index.js';
import { API_KEY, DBS, engineFor, pastDeliveryDate, range, removeTempDirs, requestsTo, seeds, startMarket, tempDbPath } from './helpers/effects-fixtures.js';

const DELIVERED = { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' } as const;

let market: FakeMarket;
const engines: Engine[] = [];
beforeEach(async () => {
  market = await startMarket();
});
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  await market.close();
});
afterAll(() => removeTempDirs());

let nextId = 7_300_000_001;
function startedOrders(count: number): number[] {
  const ids = range(nextId, count);
  nextId += count;
  market.seedOrders(seeds(DBS, ids[0]!, count, 'PROCESSING', 'STARTED', Date.now() - 60_000));
  return ids;
}

async function engine(options: Partial<EngineOptions> = {}, db = tempDbPath()): Promise<Engine> {
  const e = await engineFor(market, db, { random: () => 0, ...options });
  engines.push(e);
  return e;
}

/** The status changes the fake received for `orderId`, in arrival order: [endpoint, status, substatus, http status]. */
function sendsOf(orderId: number): [string, string, string, number][] {
  const sends: [string, string, string, number][] = [];
  for (const r of market.requests) {
    if (r.path.endsWith('/orders/status-update')) {
      const orders = (r.body as { orders?: { id: number; status: string; substatus: string }[] } | undefined)?.orders ?? [];
      for (const o of orders) if (o.id === orderId) sends.push(['updateOrderStatuses', o.status, o.substatus, r.status ?? 0]);
    } else if (r.path.endsWith(`/orders/${orderId}/status`)) {
      const o = (r.body as { order: { status: string; substatus: string } }).order;
      sends.push(['updateOrderStatus', o.status, o.substatus, r.status ?? 0]);
    }
  }
  return sends;
}

describe('a DBS chain at the fake Market', () => {
  it('PROCESSING/STARTED → DELIVERED/DELIVERY_SERVICE_DELIVERED: exactly two sends, in the diagram\'s order, each once; the fake ends DELIVERED', async () => {
    const [id] = startedOrders(1) as [number];
    const e = await engine();
    await e.sync();
    const date = pastDeliveryDate();
    const plan = await e.explain(id, { ...DELIVERED, realDeliveryDate: date, via: 'chain' });
    expect(plan.allowed && plan.steps.map((s) => s.ruleId)).toEqual(['DBS.hand-to-delivery', 'DBS.deliver-from-delivery']);

    const queued = await e.requestChange({ orderId: id, ...DELIVERED, realDeliveryDate: date, via: 'chain' });
    expect(queued).toMatchObject({ change: 'queued', pending: { status: 'DELIVERY', requestNo: 1 }, chain: { step: 1, of: 2, firstRequestNo: 1, target: DELIVERED } });
    const report = await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(report.open).toBe(0);

    expect(sendsOf(id)).toEqual([
      ['updateOrderStatuses', 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED', 200],
      ['updateOrderStatus', 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED', 200],
    ]);
    expect(market.getOrder(id)).toMatchObject(DELIVERED);
    const done = await e.getOrder(id);
    expect(done).toMatchObject({ ...DELIVERED, change: 'idle', chain: null, pending: null, lastOutcome: { kind: 'accepted', requestNo: 2, chain: { step: 2, of: 2, end: 'reached' } } });
    const accepted = await e.settledChanges({ state: 'accepted', since: 0 });
    expect(accepted.filter((r) => r.order_id === id).map((r) => [r.request_no, r.status, r.idempotency_key])).toEqual([
      [1, 'DELIVERY', `${id}:DELIVERY/DELIVERY_SERVICE_RECEIVED:m5:r1`],
      [2, 'DELIVERED', `${id}:DELIVERED/DELIVERY_SERVICE_DELIVERED:m5:r2`],
    ]);
    // Another flush sends nothing more.
    await e.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(sendsOf(id)).toHaveLength(2);
    await expect(e.stopChain(id)).rejects.toBeInstanceOf(ChainNotActiveError);
  });

  it('a refusal at step 1 (the Market has the order elsewhere) stops the chain: one send, rejected, the last step never sent', async () => {
    const [id] = startedOrders(1) as [number];
    const e = await engine();
    await e.sync();
    // The Market moved it where the engine has not seen yet: it refuses DELIVERY from there.
    market.setOrderStatus(id, 'CANCELLED', 'USER_CHANGED_MIND');
    await e.requestChange({ orderId: id, ...DELIVERED, realDeliveryDate: pastDeliveryDate(), via: 'chain' });
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(sendsOf(id).map((s) => s[1])).toEqual(['DELIVERY']);
    expect(requestsTo(market, 'updateOrderStatus').filter((r) => r.path.includes(`/orders/${id}/`))).toEqual([]);
    const state = await e.getOrder(id);
    expect(state).toMatchObject({ change: 'idle', chain: null, lastOutcome: { kind: 'rejected', requestNo: 1, chain: { step: 1, of: 2, end: 'stopped' } } });
    expect(state.lastOutcome?.chain?.stopReason?.code).toBeTypeOf('string');
    expect(market.getOrder(id)).toMatchObject({ status: 'CANCELLED' });
  });

  it('a Market move mid-chain (after step 1, before step 2 went out) stops it: step 2 superseded, never sent', async () => {
    const [id] = startedOrders(1) as [number];
    const e = await engine();
    await e.sync();
    await e.requestChange({ orderId: id, ...DELIVERED, realDeliveryDate: pastDeliveryDate(), via: 'chain' });
    // One round: step 1 goes out and is accepted; step 2, queued by that answer, waits for the next round.
    await e.flush();
    expect(await e.getOrder(id)).toMatchObject({ status: 'DELIVERY', change: 'queued', pending: { status: 'DELIVERED', requestNo: 2 }, chain: { step: 2 } });
    market.setOrderStatus(id, 'CANCELLED', 'USER_CHANGED_MIND');
    await e.sync();
    const state = await e.getOrder(id);
    expect(state).toMatchObject({
      status: 'CANCELLED',
      change: 'idle',
      chain: null,
      lastOutcome: { kind: 'superseded', requestNo: 2, chain: { step: 2, end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.marketMoved, status: 'CANCELLED' } } },
    });
    await e.flush({ untilIdle: true, maxWaitMs: 5_000 });
    expect(sendsOf(id).map((s) => s[1])).toEqual(['DELIVERY']);
  });

  it('stopChain before step 2 is sent ends it there; a request while a step is in flight is refused CHANGE_PENDING naming the chain', async () => {
    const [a, b] = startedOrders(2) as [number, number];
    const e = await engine();
    await e.sync();
    for (const id of [a, b]) await e.requestChange({ orderId: id, ...DELIVERED, realDeliveryDate: pastDeliveryDate(), via: 'chain' });
    await e.flush();
    const stopped = await e.stopChain(a);
    expect(stopped).toMatchObject({ change: 'idle', chain: null, lastOutcome: { kind: 'superseded', requestNo: 2, chain: { end: 'stopped', stopReason: { code: CHAIN_STOP_CODES.stoppedBySeller } } } });
    // b's step 2 is queued and unsent: a new request replaces it (superseded, then queued in one transaction).
    const replaced = await e.requestChange({ orderId: b, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    expect(replaced).toMatchObject({ change: 'queued', chain: null, pending: { status: 'CANCELLED', requestNo: 3 }, lastOutcome: { kind: 'superseded', requestNo: 2, chain: { stopReason: { code: CHAIN_STOP_CODES.replaced } } } });
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(sendsOf(a).map((s) => s[1])).toEqual(['DELIVERY']);
    expect(sendsOf(b).map((s) => s[1])).toEqual(['DELIVERY', 'CANCELLED']);
    expect(market.getOrder(b)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });

    const [c] = startedOrders(1) as [number];
    await e.sync();
    await e.requestChange({ orderId: c, ...DELIVERED, realDeliveryDate: pastDeliveryDate(), via: 'chain' });
    market.hold((r) => r.path.endsWith('/orders/status-update'));
    const flushing = e.flush();
    await waitFor(() => market.held().length === 1);
    const refused = await e.requestChange({ orderId: c, status: 'CANCELLED', substatus: 'SHOP_FAILED' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ChangeRefusedError);
    expect((refused as ChangeRefusedError).blockers).toEqual([expect.objectContaining({ code: 'CHANGE_PENDING', chain: { step: 1, of: 2, target: DELIVERED } })]);
    market.release();
    await flushing;
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ym-orders set-status --chain', () => {
  async function cli(db: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const sink = (append: (s: string) => void) => new Writable({ write: (chunk, _encoding, done) => (append(String(chunk)), done()) });
    const code = await main(['--db', db, '--api-url', market.url, '--campaign', `${DBS.campaignId}:${DBS.businessId}:DBS`, ...args], {
      stdin: Readable.from([]),
      stdout: sink((s) => (stdout += s)),
      stderr: sink((s) => (stderr += s)),
      env: { YM_API_KEY: API_KEY },
      cwd: path.dirname(db),
    });
    return { code, stdout, stderr };
  }

  it('--dry-run prints the plan and queues nothing; --chain --flush sends both steps and says the chain was reached; status shows the chain', async () => {
    const [id, other] = startedOrders(2) as [number, number];
    const db = tempDbPath();
    expect((await cli(db, ['sync'])).code).toBe(0);
    const date = pastDeliveryDate();
    const args = ['set-status', String(id), 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED', '--real-delivery-date', date, '--chain'];

    const dry = await cli(db, [...args, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`order ${id}: 1/2 DBS.hand-to-delivery → DELIVERY/DELIVERY_SERVICE_RECEIVED (allowed)`);
    expect(dry.stdout).toContain(`order ${id}: 2/2 DBS.deliver-from-delivery → DELIVERED/DELIVERY_SERVICE_DELIVERED (allowed)`);
    expect(dry.stdout).toContain('nothing was queued');
    const dryJson = JSON.parse((await cli(db, [...args, '--dry-run', '--json'])).stdout) as { plan: { ruleId: string }[]; queued: unknown[] };
    expect(dryJson.plan.map((p) => p.ruleId)).toEqual(['DBS.hand-to-delivery', 'DBS.deliver-from-delivery']);
    expect(dryJson.queued).toEqual([]);
    const refusedDry = await cli(db, ['set-status', String(id), 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED', '--real-delivery-date', '2999-01-01', '--chain', '--dry-run']);
    expect(refusedDry.code).toBe(1);
    expect(refusedDry.stdout).toMatch(/\[REAL_DELIVERY_DATE_INVALID\] Step 2 of 2 \(DBS\.deliver-from-delivery/);
    expect([...requestsTo(market, 'updateOrderStatuses'), ...requestsTo(market, 'updateOrderStatus')]).toEqual([]);

    // Without --chain the target two steps away is refused, as before.
    const single = await cli(db, ['set-status', String(other), 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED', '--real-delivery-date', date]);
    expect(single.code).toBe(1);
    expect(single.stdout).toContain('[NOT_FROM_CURRENT_STATE]');

    const queued = await cli(db, ['set-status', String(other), 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED', '--real-delivery-date', date, '--chain']);
    expect(queued.code).toBe(0);
    expect(queued.stdout).toContain(`order ${other}: 1/2 DBS.hand-to-delivery → DELIVERY/DELIVERY_SERVICE_RECEIVED (queued)`);
    expect(queued.stdout).toContain(`order ${other}: 2/2 DBS.deliver-from-delivery → DELIVERED/DELIVERY_SERVICE_DELIVERED (planned)`);
    const status = await cli(db, ['status', String(other)]);
    expect(status.stdout).toMatch(/chain\s+step 1 of 2 to DELIVERED\/DELIVERY_SERVICE_DELIVERED \(next: DBS\.deliver-from-delivery\)/);
    const statusJson = JSON.parse((await cli(db, ['status', String(other), '--json'])).stdout) as { chain: { step: number; of: number } };
    expect(statusJson.chain).toMatchObject({ step: 1, of: 2 });

    const flushed = await cli(db, [...args, '--flush']);
    expect(flushed.code).toBe(0);
    expect(flushed.stdout).toContain(`order ${id}: chain reached`);
    expect(sendsOf(id).map((s) => s.slice(0, 2))).toEqual([
      ['updateOrderStatuses', 'DELIVERY'],
      ['updateOrderStatus', 'DELIVERED'],
    ]);
    expect(market.getOrder(id)).toMatchObject(DELIVERED);
    const after = await cli(db, ['status', String(id)]);
    expect(after.stdout).toMatch(/last\s+accepted DELIVERED\/DELIVERY_SERVICE_DELIVERED at \S+ \(chain step 2 of 2: reached\)/);
  });
});
