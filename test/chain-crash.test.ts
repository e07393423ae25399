// A chain survives a crash (issue #12): a real child process (test/workers/crash-chain-worker.ts)
// flushes DBS chains PROCESSING/STARTED → DELIVERED against the fake Market over loopback, and is
// killed with SIGKILL mid-chain; a new child on the same SQLite file resumes where the first one
// stopped. The fake applies the requests the dead child had in flight (their answers are lost):
// the restart reads those orders back instead of sending again. Each step reaches the fake once.
//  - killed with step 1 in flight: the settle + enqueue of step 2 never committed; the read-back
//    that shows step 1 applied continues the chain, as a live OK answer does;
//  - killed with step 2 in flight: step 1 settled and step 2 was queued in one transaction; the
//    read-back shows step 2 applied and the chain ends reached.

import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeMarket, FakeRequest } from '../src/testing/index.js';
import { API_KEY, DBS, engineFor, pastDeliveryDate, range, removeTempDirs, seeds, startMarket, tempDbPath, waitUntil } from './helpers/effects-fixtures.js';
import { REPO_ROOT, workerArgs } from './helpers/engine-fixtures.js';

const DELIVERED = { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' } as const;

let market: FakeMarket;
const children = new Set<ChildProcess>();
beforeEach(async () => {
  market = await startMarket();
});
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await market.close();
});
afterAll(() => removeTempDirs());

interface Worker {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(db: string): Worker {
  const child = spawn(process.execPath, workerArgs('crash-chain-worker.ts', [db, market.url]), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, YM_CHAIN_WORKER_KEY: API_KEY, YM_CHAIN_WORKER_CAMPAIGNS: JSON.stringify([{ campaignId: DBS.campaignId, businessId: DBS.businessId, model: 'DBS' }]) },
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += String(chunk)));
  child.stderr!.on('data', (chunk: Buffer) => (output += String(chunk)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  void exited.then(() => children.delete(child));
  return { child, output: () => output, exited };
}

let nextId = 7_400_000_001;
/** DBS orders at PROCESSING/STARTED, tracked in a fresh database file with a chain to DELIVERED queued for each. */
async function chainsQueued(count: number): Promise<{ db: string; ids: number[] }> {
  const ids = range(nextId, count);
  nextId += count;
  market.seedOrders(seeds(DBS, ids[0]!, count, 'PROCESSING', 'STARTED', Date.now() - 60_000));
  const db = tempDbPath();
  const engine = await engineFor(market, db);
  try {
    await engine.sync();
    for (const orderId of ids) await engine.requestChange({ orderId, ...DELIVERED, realDeliveryDate: pastDeliveryDate(), via: 'chain' });
  } finally {
    await engine.close();
  }
  return { db, ids };
}

const isBulk = (r: FakeRequest) => r.path.endsWith('/orders/status-update');
const isSingle = (r: FakeRequest) => /\/orders\/\d+\/status$/.test(r.path);
/** How many times the fake received each step for `orderId`: [bulk DELIVERY sends, single DELIVERED sends]. */
function stepsReceived(orderId: number): [number, number] {
  const bulk = market.requests.filter((r) => isBulk(r) && ((r.body as { orders?: { id: number }[] }).orders ?? []).some((o) => o.id === orderId)).length;
  const single = market.requests.filter((r) => isSingle(r) && r.path.includes(`/orders/${orderId}/`)).length;
  return [bulk, single];
}

async function killWhenHeld(worker: Worker, count: number): Promise<void> {
  await waitUntil(() => market.held().length >= count, `${count} request(s) held at the fake`, 30_000);
  worker.child.kill('SIGKILL');
  expect(await worker.exited).toMatchObject({ signal: 'SIGKILL' });
  // The dead child's requests are still at the fake: it applies them, and their answers go nowhere.
  market.release();
}

async function resumeToTheEnd(db: string, ids: readonly number[]): Promise<void> {
  const worker = startWorker(db);
  const { code } = await worker.exited;
  expect(code, worker.output()).toBe(0);
  expect(worker.output()).toContain('done 0');
  const engine = await engineFor(market, db);
  try {
    for (const id of ids) {
      expect(stepsReceived(id), `order ${id}`).toEqual([1, 1]);
      expect(market.getOrder(id)).toMatchObject(DELIVERED);
      expect(await engine.getOrder(id)).toMatchObject({ ...DELIVERED, change: 'idle', chain: null, lastOutcome: { kind: 'accepted', requestNo: 2, chain: { step: 2, of: 2, end: 'reached' } } });
    }
    const rows = await engine.store.read((tx) => Promise.all(ids.flatMap((id) => [tx.outbox.get(id, 1), tx.outbox.get(id, 2), tx.outbox.get(id, 3)])));
    expect(rows.map((r) => r?.state ?? null)).toEqual(ids.flatMap(() => ['accepted', 'accepted', null]));
  } finally {
    await engine.close();
  }
}

describe('a chain across a SIGKILL', () => {
  it('killed with step 1 in flight: the restart reads it back, continues the chain, and sends each step once', async () => {
    const { db, ids } = await chainsQueued(3);
    market.hold(isBulk);
    const first = startWorker(db);
    await killWhenHeld(first, 1);
    await waitUntil(() => ids.every((id) => market.getOrder(id)?.status === 'DELIVERY'), 'step 1 applied at the fake', 10_000);
    await resumeToTheEnd(db, ids);
  }, 60_000);

  it('killed with step 2 in flight (step 1 settled and step 2 queued in one transaction): the restart reads it back and the chain ends reached, nothing resent', async () => {
    const { db, ids } = await chainsQueued(3);
    market.hold(isSingle);
    const first = startWorker(db);
    await killWhenHeld(first, ids.length);
    await waitUntil(() => ids.every((id) => market.getOrder(id)?.status === 'DELIVERED'), 'step 2 applied at the fake', 10_000);
    expect(ids.map(stepsReceived)).toEqual(ids.map(() => [1, 1]));
    await resumeToTheEnd(db, ids);
  }, 60_000);
});
