// serve killed (SIGKILL) between acknowledging notifications and applying them (issue #12): the
// rows it answered 200 for are in the database, pending; a restarted serve applies each of them
// once, and what the Market retried while serve was down arrives too. Nothing lost, nothing twice.
//
// Deterministic without any test-only option: the run loop's first pass starts with a sync, and
// the fake Market holds that sync's getBusinessOrders call, so the loop cannot reach the inbox
// while the notifications are stored and acknowledged; the test sees them pending, then kills.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFakeMarket } from '../src/testing/index.js';
import { ensureBuilt, filesContaining, killRunning, makeTempDir, runCli, TEST_API_KEY, transcript } from './helpers/cli.js';
import { waitUntil } from './helpers/effects-fixtures.js';
import { createTestDatabase, openDbReader, sameOrders, startRelay, startServe } from './workers/serve-harness.js';

const FBS = { campaignId: 801, businessId: 81, model: 'FBS' } as const;
const CAMPAIGN = `${FBS.campaignId}:${FBS.businessId}:${FBS.model}`;
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await ensureBuilt();
});

afterAll(async () => {
  killRunning();
  for (const cleanup of cleanups) await cleanup();
  for (const text of transcript) expect(text).not.toContain(TEST_API_KEY);
  for (const d of dirs) expect(filesContaining(d, TEST_API_KEY)).toEqual([]);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const BACKENDS = [
  {
    name: 'SQLite',
    available: true,
    database: async () => {
      const dir = makeTempDir();
      dirs.push(dir);
      return path.join(dir, 'crash.db');
    },
  },
  {
    name: 'PostgreSQL',
    available: inject('postgres'),
    database: async () => {
      const db = await createTestDatabase();
      cleanups.push(db.drop);
      return db.url;
    },
  },
] as const;

for (const backend of BACKENDS) {
  describe.skipIf(!backend.available)(`serve killed on ${backend.name}`, () => {
    it('SIGKILL after the acks and before the loop applied them: a restart applies every notification once, and the ones the Market retried meanwhile', async () => {
      const relay = await startRelay();
      const market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS], notify: { url: relay.url, timeScale: 0.001, seed: 21 } });
      const db = await backend.database();
      const globals = ['--db', db, '--api-url', market.url, '--campaign', CAMPAIGN];
      const reader = { current: undefined as Awaited<ReturnType<typeof openDbReader>> | undefined };
      try {
        const ids = Array.from({ length: 12 }, (_, i) => 8_100_000_001 + i);
        market.seedOrders(ids.map((id) => ({ id, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: Date.now() - 60_000 })));
        const synced = await runCli([...globals, 'sync']);
        expect(synced.code, synced.stderr).toBe(0);

        market.hold((r) => r.endpoint === 'getBusinessOrders');
        // --api-timeout 60: the held sync stays unanswered for the whole test, not timed out.
        const first = await startServe([...globals, '--api-timeout', '60', 'serve', '--listen', '127.0.0.1:0', '--trusted-proxy', '127.0.0.1', '--allow', 'market', '--sync', '3600', '--idle', '1']);
        relay.target = first.url;
        await waitUntil(() => market.held().length === 1, 'the first sync call is at the Market, held');

        const before = ids.slice(0, 8);
        for (const id of before) market.setOrderStatus(id, 'PROCESSING', 'READY_TO_SHIP');
        await market.notifier!.idle();
        expect(market.notifier!.stats()).toMatchObject({ delivered: before.length, failedAttempts: 0 });
        reader.current = await openDbReader(db);
        const acked = await reader.current.view();
        // Acknowledged means stored: every one is there, and none applied yet (the loop is held).
        expect(acked.inbox).toEqual({ pending: before.length, done: 0, ignored: 0 });
        for (const id of before) expect(acked.orders.get(id)).toEqual({ status: 'PROCESSING', substatus: 'STARTED' });
        first.cli.child.kill('SIGKILL');
        const killed = await first.done;
        expect(killed.signal).toBe('SIGKILL');

        // While serve is down, the proxy answers 502 and the Market retries what it says now.
        relay.target = undefined;
        market.release();
        const during = ids.slice(8);
        for (const id of during) market.setOrderStatus(id, 'CANCELLED', 'SHOP_FAILED');
        await waitUntil(() => market.notifier!.stats().failedAttempts >= 2, 'the Market failed to deliver and will retry');

        const second = await startServe([...globals, 'serve', '--listen', '127.0.0.1:0', '--trusted-proxy', '127.0.0.1', '--allow', 'market', '--sync', '0', '--idle', '1']);
        relay.target = second.url;
        await market.notifier!.idle();
        await waitUntil(async () => {
          const view = await reader.current!.view();
          return view.inbox.pending === 0 && view.reads === 0 && sameOrders(view, market, ids);
        }, 'every notification is applied and the database equals the Market');

        const view = await reader.current.view();
        const statusRows = view.inboxRows.filter((r) => r.type === 'ORDER_STATUS_UPDATED');
        // Nothing twice: one row per status change, the retried ones included; each applied once.
        expect(statusRows.map((r) => r.order_id).sort()).toEqual([...ids].sort());
        expect(statusRows.every((r) => r.state === 'done' && r.processed_at !== null && r.last_error === null)).toBe(true);
        for (const id of ids) {
          const moves = (await reader.current.journal(id)).filter((r) => r.from_substatus === 'STARTED' && r.to_substatus !== 'STARTED');
          expect(moves, `order ${id}`).toHaveLength(1);
        }
        expect(market.notifier!.stats().retries).toBeGreaterThan(0);

        second.cli.child.kill('SIGTERM');
        const result = await second.done;
        expect(result.code, result.stderr).toBe(0);
      } finally {
        await reader.current?.close();
        await market.close();
        await relay.close();
      }
    });
  });
}
