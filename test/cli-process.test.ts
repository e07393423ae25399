// The long-running commands as real processes: `run` stopped by SIGTERM, `fake-market`
// serving and stopping, and `demo` (what `npm start` runs) end to end.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeMarket, type FakeMarket } from '../src/testing/index.js';
import { ensureBuilt, filesContaining, json, killRunning, makeTempDir, runCli, startCli, TEST_API_KEY, transcript } from './helpers/cli.js';

const FBS = { campaignId: 501, businessId: 51, model: 'FBS' } as const;
const dirs: string[] = [];

beforeAll(async () => {
  await ensureBuilt();
});

afterAll(() => {
  killRunning();
  for (const text of transcript) expect(text).not.toContain(TEST_API_KEY);
  for (const d of dirs) expect(filesContaining(d, TEST_API_KEY)).toEqual([]);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = makeTempDir();
  dirs.push(d);
  return d;
}

describe('run', () => {
  let market: FakeMarket;
  beforeAll(async () => {
    // Slow answers, so SIGTERM lands while a batch is in flight.
    market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS], latencyMs: 250 });
  });
  afterAll(async () => market?.close());

  it('sends until SIGTERM, finishes the batch in flight, exits 0 and leaves nothing in sending', async () => {
    const orders = Array.from({ length: 300 }, (_, i) => ({ id: 8_000_000_001 + i, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: Date.now() - 60_000 }));
    market.seedOrders(orders);
    const dir = tempDir();
    const db = ['--db', path.join(dir, 'run.db'), '--api-url', market.url, '--campaign', '501:51:FBS'];
    expect((await runCli([...db, 'sync'])).code).toBe(0);
    const shipped = await runCli([...db, 'ship', '--file', '-'], { input: orders.map((o) => o.id).join('\n') });
    expect(shipped.code, shipped.stderr).toBe(0);

    const running = startCli([...db, 'run', '--sync-interval', '0.2']);
    await running.waitForStdout(/SIGINT\/SIGTERM stops cleanly/);
    // Wait until the first status-update batch is at the Market, unanswered, then stop.
    const deadline = Date.now() + 15_000;
    while (!market.requests.some((r) => r.endpoint === 'updateOrderStatuses') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    running.child.kill('SIGTERM');
    const stoppedAt = Date.now();
    const result = await running.done;
    expect(result.code, result.stderr).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    expect(result.stdout).toMatch(/SIGTERM: stopping after the batch in flight/);
    expect(result.stdout).toMatch(/^stopped after .*: \d+ accepted, 0 rejected, \d+ still open \(kept for the next run\)/m);

    const status = json<{ outbox: Record<string, number> }>(await runCli([...db, 'status', '--json']));
    expect(status.outbox.sending).toBe(0);
    expect(status.outbox.uncertain).toBe(0);
    expect(status.outbox.accepted).toBeGreaterThan(0);
    // What the Market applied, the database knows: no order is READY_TO_SHIP there but not here.
    const applied = orders.filter((o) => market.getOrder(o.id)?.substatus === 'READY_TO_SHIP').length;
    expect(status.outbox.accepted).toBe(applied);
    expect(status.outbox.queued).toBe(orders.length - applied);

    // A second run picks up the rest; SIGINT stops it the same way.
    const again = startCli([...db, 'run', '--sync-interval', '0']);
    await again.waitForStdout(/SIGINT\/SIGTERM stops cleanly/);
    const until = Date.now() + 20_000;
    while (orders.some((o) => market.getOrder(o.id)?.substatus !== 'READY_TO_SHIP') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    again.child.kill('SIGINT');
    const second = await again.done;
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/SIGINT: stopping after the batch in flight/);
    expect(second.stdout).toMatch(/, 0 still open/);
    expect(market.stats().duplicateApplications).toBe(0);
  });
});

describe('fake-market', () => {
  it('starts on loopback, answers with the key from YM_API_KEY, and stops on SIGTERM', async () => {
    const running = startCli(['--campaign', '601:61:DBS', 'fake-market', '--seed-orders', '40', '--fault', 'status500:0.0001']);
    const stdout = await running.waitForStdout(/SIGINT\/SIGTERM stops it/);
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
    expect(stdout).toMatch(/campaigns: 601:61:DBS/);
    const read = (key: string) =>
      fetch(`${url}/v1/businesses/61/orders?limit=50`, { method: 'POST', headers: { 'Api-Key': key, 'Content-Type': 'application/json' }, body: '{}' });
    const ok = await read(TEST_API_KEY);
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { orders: { orderId: number; campaignId: number }[] };
    expect(body.orders).toHaveLength(40);
    expect(body.orders.every((o) => o.campaignId === 601)).toBe(true);
    expect((await read('wrong-key')).status).toBe(401);

    // The CLI itself can sync from it.
    const dir = tempDir();
    const synced = await runCli(['--db', path.join(dir, 'f.db'), '--api-url', url, '--campaign', '601:61:DBS', 'sync', '--json']);
    expect(json(synced)).toMatchObject({ seen: 40, created: 40 });

    running.child.kill('SIGTERM');
    const result = await running.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/fake Market stopped after \d+ request\(s\)/);
    await expect(read(TEST_API_KEY)).rejects.toThrow();
  });

  it('needs a key and valid faults (exit 2)', async () => {
    const noKey = await runCli(['fake-market'], { env: { YM_API_KEY: undefined } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/^error \[MISSING_API_KEY\]: fake-market needs the key/m);
    const badFault = await runCli(['fake-market', '--fault', 'explode:0.5']);
    expect(badFault.code).toBe(2);
    expect(badFault.stderr).toMatch(/^error \[USAGE\]: --fault "explode:0\.5": expected <kind>:<rate>/m);
  });
});

describe('demo', () => {
  it('runs end to end on a temporary database, exits 0, and makes the minimum number of status-update calls', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'demo.db');
    fs.writeFileSync(db, ''); // an empty file is replaced, not refused
    const started = Date.now();
    const result = await runCli(['--db', db, 'demo'], { cwd: dir, timeoutMs: 60_000 });
    const elapsed = Date.now() - started;
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(elapsed).toBeLessThan(45_000);
    const out = result.stdout;
    expect(out).toMatch(/^1\. sync: read 3 000 orders in \d+ pages/m);
    expect(out).toMatch(/^2\. requests: \d+ changes queued, \d+ refused locally \(never sent\)/m);
    expect(out).toMatch(/^3\. flush: (\d+) changes in .*: \1 accepted, 0 rejected, 0 still open \(\d+ via async operations\)/m);
    expect(out).toMatch(/^  orders by status \(3 000\):/m);
    const calls = /status-update calls\s+(\d+) made, minimum (\d+) = the minimum/.exec(out);
    expect(calls, out).not.toBeNull();
    expect(calls![1]).toBe(calls![2]);
    expect(out).toMatch(/420 answers\s+0/);
    expect(out).toMatch(/refused locally\s+\d+ request\(s\), never sent: .*TERMINAL_STATE/);
    expect(out).toMatch(/e\.g\. \[CHANGE_PENDING\] order \d+/);
    expect(out).toMatch(/operations\s+(\d+) completed/);
    expect(out).toMatch(/Market check\s+illegal requests received 0, duplicate applications 0; engine and Market agree on 3 000\/3 000 orders/);
    expect(out).toMatch(/elapsed\s+\d+\.\d+ s/);
    expect(out).toContain(`database             ${db}`);
    expect(out).toContain(`diagram              ${path.join(dir, 'demo.mmd')}`);
    expect(fs.readFileSync(path.join(dir, 'demo.mmd'), 'utf8')).toMatch(/^%% ym-orders demo[\s\S]*flowchart LR[\s\S]*==>\|"\d+ seller"\|/);
    // The database it left is a normal ym-orders database the other commands read.
    const status = json<{ orders: number; outbox: Record<string, number> }>(await runCli(['--db', db, 'status', '--json']));
    expect(status.orders).toBe(3000);
    expect(status.outbox).toMatchObject({ queued: 0, sending: 0, uncertain: 0, rejected: 0 });
  });
});
