// The long-running commands as real processes: `run` stopped by SIGTERM, `fake-market`
// serving, pushing notifications and stopping, and `demo` (what `npm start` runs) end to end;
// `run`, `flush` and `sync` stopping within the request timeout, and the Market's errors as an
// operator sees them (issue 9, items 1 and 4).

import fs from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeMarket, type FakeMarket } from '../src/testing/index.js';
import { waitUntil } from './helpers/effects-fixtures.js';
import { ensureBuilt, filesContaining, json, killRunning, makeTempDir, runCli, startCli, TEST_API_KEY, transcript, unreachableUrl } from './helpers/cli.js';

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

  it('--notify pushes each change to the receiver; the stop line counts what the receiver acknowledged', async () => {
    // A receiver that acknowledges the first notification and never answers the second: the
    // notifier sends one at a time, so once the second arrives the first's 200 has been counted,
    // and the stop line's delivered count is exact; SIGTERM must not wait for the second.
    const arrivals: { notificationType: string; orderId?: number; status?: string; substatus?: string }[] = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        arrivals.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof arrivals)[number]);
        if (arrivals.length > 1) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ version: '1', name: 'cli-process test', time: new Date().toISOString() }));
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notification`;
    try {
      const running = startCli(['--campaign', '701:71:FBS', 'fake-market', '--seed-orders', '5', '--notify', notifyUrl]);
      const stdout = await running.waitForStdout(/SIGINT\/SIGTERM stops it/);
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
      expect(stdout).toContain(`notifications: to ${notifyUrl} (duplicates 0, reorder 0)`);
      const headers = { 'Api-Key': TEST_API_KEY, 'Content-Type': 'application/json' };
      const read = await fetch(`${url}/v1/businesses/71/orders?limit=50`, { method: 'POST', headers, body: '{}' });
      const seeded = ((await read.json()) as { orders: { orderId: number; status: string; substatus: string }[] }).orders;
      expect(seeded).toHaveLength(5);
      const started = seeded.filter((o) => o.status === 'PROCESSING' && o.substatus === 'STARTED').map((o) => o.orderId);
      expect(started.length).toBeGreaterThanOrEqual(2);
      const [first, second] = started as [number, number];
      const changed = await fetch(`${url}/v2/campaigns/701/orders/status-update`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ orders: [first, second].map((id) => ({ id, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })) }),
      });
      expect(changed.status).toBe(200);
      await waitUntil(() => arrivals.length === 2, 'both notifications reached the receiver', 15_000);
      expect(arrivals).toEqual([first, second].map((orderId) => expect.objectContaining({ notificationType: 'ORDER_STATUS_UPDATED', orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })));

      running.child.kill('SIGTERM');
      const result = await running.done;
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^fake Market stopped after \d+ request\(s\); notifications: 1 delivered, 0 rejected, 0 retries$/m);
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
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
  it('runs end to end on a temporary database, exits 0, makes the minimum number of status-update calls, and hears the rest by notification', async () => {
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
    // The Market's moves after the flush reached the engine by notification only.
    expect(out).toMatch(/^4\. the Market moved on: couriers picked up 150 packed orders, buyers placed 300 new orders and opened 3 chats, told by notification only$/m);
    expect(out).toMatch(/^ {3}notifications: .*; 300\/300 new orders tracked; all applied/m);
    const pushed = /^ {2}notifications +([\d ]+) received \(the fake delivered ([\d ]+): (\d+) sent twice, \d+ out of order, 0 retries\); [\d ]+ stored, (\d+) duplicates ignored, 3 ignored \(CHAT_CREATED ×3\), 0 refused \(400\), 0 failed \(500\)$/m.exec(out);
    expect(pushed, out).not.toBeNull();
    const [received, delivered, sentTwice, ignoredTwice] = pushed!.slice(1).map((n) => Number(n.replace(/ /g, '')));
    expect(received).toBe(delivered);
    expect(sentTwice).toBeGreaterThan(0);
    expect(ignoredTwice).toBe(sentTwice);
    const reads = /^ {2}reads +(\d+) getBusinessOrders calls for ([\d ]+) notified orders \(0 not found\)$/m.exec(out);
    expect(reads, out).not.toBeNull();
    expect(Number(reads![1])).toBeGreaterThan(0);
    expect(Number(reads![2]!.replace(/ /g, ''))).toBeGreaterThanOrEqual(300);
    expect(out).toMatch(/^  orders by status \(3 300\):/m);
    const calls = /status-update calls\s+(\d+) made, minimum (\d+) = the minimum/.exec(out);
    expect(calls, out).not.toBeNull();
    expect(calls![1]).toBe(calls![2]);
    expect(out).toMatch(/420 answers\s+0/);
    expect(out).toMatch(/refused locally\s+\d+ request\(s\), never sent: .*TERMINAL_STATE/);
    expect(out).toMatch(/e\.g\. \[CHANGE_PENDING\] order \d+/);
    expect(out).toMatch(/operations\s+(\d+) completed/);
    expect(out).toMatch(/Market check\s+illegal requests received 0, duplicate applications 0; engine and Market agree on 3 300\/3 300 orders/);
    expect(out).toMatch(/elapsed\s+\d+\.\d+ s/);
    expect(out).toContain(`database             ${db}`);
    expect(out).toContain(`diagram              ${path.join(dir, 'demo.mmd')}`);
    expect(fs.readFileSync(path.join(dir, 'demo.mmd'), 'utf8')).toMatch(/^%% ym-orders demo[\s\S]*flowchart LR[\s\S]*==>\|"\d+ seller"\|/);
    // The database it left is a normal ym-orders database the other commands read.
    const status = json<{ orders: number; outbox: Record<string, number> }>(await runCli(['--db', db, 'status', '--json']));
    expect(status.orders).toBe(3300);
    expect(status.outbox).toMatchObject({ queued: 0, sending: 0, uncertain: 0, rejected: 0 });
  });
});

// ---- issue 9: stopping in time, and errors an operator can see -----------------------------

/** Polls `condition` until it holds; the test's own timeout bounds the wait. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}

/** A database in a fresh dir tracking `ids` (campaign 501, PROCESSING/STARTED) with a ship queued for each. */
async function dbWithShips(ids: readonly number[]): Promise<string> {
  const file = path.join(tempDir(), 'ops.db');
  const lines = ids.map((id) => JSON.stringify({ orderId: id, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' })).join('\n');
  const imported = await runCli(['--db', file, '--campaign', '501:51:FBS', 'import', '-'], { input: `${lines}\n` });
  expect(imported.code, imported.stderr).toBe(0);
  const shipped = await runCli(['--db', file, 'ship', ...ids.map(String)]);
  expect(shipped.code, shipped.stderr).toBe(0);
  return file;
}

function fbsSeeds(firstId: number, count: number) {
  return Array.from({ length: count }, (_, i) => ({ id: firstId + i, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: Date.now() - 60_000 }));
}

describe('run, flush and sync stop within the request timeout', () => {
  let market: FakeMarket;
  beforeAll(async () => {
    market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS] });
  });
  afterAll(async () => market?.close());

  it('run: SIGTERM abandons a sync read the Market never answers and exits 0, long before --api-timeout', async () => {
    market.inject({ kind: 'hang', endpoint: 'getBusinessOrders', times: Infinity });
    try {
      const reads = (): number => market.requests.filter((r) => r.endpoint === 'getBusinessOrders').length;
      const before = reads();
      const running = startCli(['--db', path.join(tempDir(), 'r.db'), '--api-url', market.url, '--campaign', '501:51:FBS', '--api-timeout', '60', 'run', '--sync-interval', '1'], { timeoutMs: 120_000 });
      await running.waitForStdout(/SIGINT\/SIGTERM stops cleanly/);
      await until(() => reads() > before);
      running.child.kill('SIGTERM');
      const signalledAt = Date.now();
      const result = await running.done;
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^SIGTERM: stopping after the batch in flight/m);
      // Without the abort it would wait for the 60 s timeout of the hung read.
      expect(Date.now() - signalledAt).toBeLessThan(30_000);
      expect(reads()).toBe(before + 1);
    } finally {
      market.clearFaults();
    }
  }, 150_000);

  it('flush: SIGTERM lets the send in flight end at --api-timeout, starts nothing more, and exits 1 with INTERRUPTED', async () => {
    const orders = fbsSeeds(8_100_000_001, 30);
    market.seedOrders(orders);
    const db = await dbWithShips(orders.map((o) => o.id));
    market.inject({ kind: 'hang', endpoint: 'updateOrderStatuses', times: Infinity });
    try {
      const before = market.requests.length;
      const running = startCli(['--db', db, '--api-url', market.url, '--api-timeout', '3', 'flush', '--max-wait', '120'], { timeoutMs: 120_000 });
      await until(() => market.requests.slice(before).some((r) => r.endpoint === 'updateOrderStatuses'));
      const seen = market.requests.length;
      running.child.kill('SIGTERM');
      const result = await running.done;
      expect(result.signal).toBeNull();
      expect(result.code, result.stderr).toBe(1);
      expect(result.stdout).toMatch(/^SIGTERM: stopping after the batch in flight/m);
      expect(result.stderr).toMatch(/^error \[INTERRUPTED\]: SIGTERM stopped the flush with 30 change\(s\) still open/m);
      // Nothing was sent or read back after the signal: the unanswered batch waits for a read-back.
      expect(market.requests.length).toBe(seen);
      const status = json<{ outbox: Record<string, number> }>(await runCli(['--db', db, 'status', '--json']));
      expect(status.outbox).toMatchObject({ sending: 0, uncertain: 30, accepted: 0 });
    } finally {
      market.clearFaults();
    }
  }, 150_000);

  it('sync: SIGTERM drops a read the Market never answers and exits 1 with INTERRUPTED, the pages read kept', async () => {
    const dbFile = path.join(tempDir(), 'stop.db');
    market.seedOrders(fbsSeeds(8_150_000_001, 60));
    const reads = (): number => market.requests.filter((r) => r.endpoint === 'getBusinessOrders').length;
    // The first page is answered, the second hangs.
    const capped = await runCli(['--db', dbFile, '--api-url', market.url, '--campaign', '501:51:FBS', 'sync', '--max-pages', '1']);
    expect(capped.code, capped.stderr).toBe(0);
    market.inject({ kind: 'hang', endpoint: 'getBusinessOrders', times: Infinity });
    try {
      const before = reads();
      const running = startCli(['--db', dbFile, '--api-url', market.url, '--api-timeout', '60', 'sync'], { timeoutMs: 120_000 });
      await until(() => reads() > before);
      running.child.kill('SIGTERM');
      const signalledAt = Date.now();
      const result = await running.done;
      expect(result.code, result.stderr).toBe(1);
      expect(result.stdout).toMatch(/^SIGTERM: stopping now; every page read so far is stored/m);
      expect(result.stdout).toMatch(/^stopped early by a signal; run sync again to continue from the stored cursor$/m);
      expect(result.stderr).toMatch(/^error \[INTERRUPTED\]: SIGTERM stopped the sync/m);
      expect(Date.now() - signalledAt).toBeLessThan(30_000);
      expect(json<{ orders: number }>(await runCli(['--db', dbFile, 'status', '--json'])).orders).toBe(50);
    } finally {
      market.clearFaults();
    }
    const rest = json<{ complete: boolean; created: number }>(await runCli(['--db', dbFile, '--api-url', market.url, 'sync', '--json']));
    expect(rest.complete).toBe(true);
    expect(json<{ orders: number }>(await runCli(['--db', dbFile, 'status', '--json'])).orders).toBeGreaterThanOrEqual(60);
  }, 150_000);

  it('sync prints its progress while it reads: in a pipe, a plain line at most every 2 s', async () => {
    // 12 pages at 250 ms each take at least 3 s, so a progress line is due whatever the machine's speed.
    const slow = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS], latencyMs: 250 });
    try {
      slow.seedOrders(fbsSeeds(8_200_000_001, 600));
      const result = await runCli(['--db', path.join(tempDir(), 's.db'), '--api-url', slow.url, '--campaign', '501:51:FBS', 'sync']);
      expect(result.code, result.stderr).toBe(0);
      const progress = /^sync: (\d+) page\(s\), (\d+) order\(s\) read, (\d+) new, 0 updated \(business 51\)$/m.exec(result.stdout);
      expect(progress, result.stdout).not.toBeNull();
      expect(Number(progress![2])).toBe(Number(progress![1]) * 50);
      expect(result.stdout.indexOf(progress![0])).toBeLessThan(result.stdout.indexOf('synced 1 campaign(s)'));
      expect(result.stdout).toMatch(/^synced 1 campaign\(s\) in .*: 600 order\(s\) read in 12 page\(s\), 600 new/m);
    } finally {
      await slow.close();
    }
  });

  it('sync --max-pages stops at the cap and the next sync continues from the stored cursor', async () => {
    const dbFile = path.join(tempDir(), 'cap.db');
    const fresh = fbsSeeds(8_300_000_001, 120);
    market.seedOrders(fresh);
    const capped = await runCli(['--db', dbFile, '--api-url', market.url, '--campaign', '501:51:FBS', 'sync', '--max-pages', '1']);
    expect(capped.code, capped.stderr).toBe(0);
    expect(capped.stdout).toMatch(/read in 1 page\(s\)/);
    expect(capped.stdout).toMatch(/^stopped early: --max-pages 1 reached for a business; run sync again to continue/m);
    const rest = json<{ complete: boolean }>(await runCli(['--db', dbFile, '--api-url', market.url, 'sync', '--json']));
    expect(rest).toMatchObject({ complete: true });
    const bad = await runCli(['--db', dbFile, '--api-url', market.url, 'sync', '--max-pages', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error \[USAGE\]: --max-pages "0" is not a whole number of at least 1/m);
  });
});

describe('errors an operator can see', () => {
  let market: FakeMarket;
  beforeAll(async () => {
    market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS] });
  });
  afterAll(async () => market?.close());

  it('flush against an unreachable Market warns while it works, lists the error per campaign and exits with MARKET_NETWORK', async () => {
    const ids = [8_400_000_001, 8_400_000_002, 8_400_000_003];
    const db = await dbWithShips(ids);
    const url = await unreachableUrl();
    const flushed = await runCli(['--db', db, '--api-url', url, 'flush', '--max-wait', '2']);
    expect(flushed.code).toBe(1);
    // While it works: the error, once, not on every retry.
    const warnings = flushed.stderr.match(/^warning: campaign 501: .*$/gm) ?? [];
    expect(warnings).toEqual([expect.stringMatching(/^warning: campaign 501: \[MARKET_NETWORK\] updateOrderStatuses \(POST \/v2\/campaigns\/501\/orders\/status-update\): could not connect; the request was not sent \(ECONNREFUSED\)$/)]);
    // In the summary, and as the exit error instead of NOT_SETTLED.
    expect(flushed.stdout).toMatch(/^  campaign 501: last error at \S+Z \[MARKET_NETWORK\] .*ECONNREFUSED/m);
    expect(flushed.stdout).toMatch(/^  Market calls: 0 answered, \d+ failed$/m);
    expect(flushed.stderr).toMatch(/^error \[MARKET_NETWORK\]: Every Market call of this flush failed \(\d+\); the latest, for campaign 501: .*ECONNREFUSED.*3 change\(s\) stay open: check the Market URL/m);
    expect(flushed.stderr).not.toMatch(/NOT_SETTLED/);

    // One pass over fresh changes (the ones above wait out their backoff): one failed call.
    const fresh = await dbWithShips([8_400_000_011]);
    const doc = await runCli(['--db', fresh, '--api-url', url, 'flush', '--max-wait', '0', '--json']);
    expect(doc.code).toBe(1);
    expect(json(doc)).toMatchObject({
      open: 1,
      marketCalls: { answered: 0, failed: 1 },
      lastErrors: [{ campaignId: 501, operation: 'updateOrderStatuses', code: 'MARKET_NETWORK', message: expect.stringMatching(/ECONNREFUSED/), at: expect.any(Number) }],
    });
  });

  it('status <id> shows the last error and when the next attempt is due', async () => {
    const [id] = [8_400_000_101];
    const db = await dbWithShips([id!]);
    const before = Date.now();
    expect((await runCli(['--db', db, '--api-url', await unreachableUrl(), 'flush', '--max-wait', '0'])).code).toBe(1);
    const human = await runCli(['--db', db, 'status', String(id)]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^  change +queued: PROCESSING\/READY_TO_SHIP, sent 0 time\(s\)$/m);
    expect(human.stdout).toMatch(/^  last error updateOrderStatuses \(POST \/v2\/campaigns\/501\/orders\/status-update\): could not connect; the request was not sent \(ECONNREFUSED\)$/m);
    expect(human.stdout).toMatch(/^  next try +\d{4}-\d\d-\d\dT\S+Z \((in \d+\.\d+ s|due now; the next flush or run tries it)\)$/m);
    const doc = json<{ outbox: { state: string; attempts: number; lastError: string; nextAttemptAt: number } }>(await runCli(['--db', db, 'status', String(id), '--json']));
    expect(doc.outbox).toMatchObject({ state: 'queued', attempts: 1, lastError: expect.stringMatching(/ECONNREFUSED/) });
    expect(doc.outbox.nextAttemptAt).toBeGreaterThanOrEqual(before);
    // Once the change settles there is no next attempt to show.
    market.seedOrders(fbsSeeds(id!, 1));
    expect((await runCli(['--db', db, '--api-url', market.url, 'flush'])).code).toBe(0);
    const settled = await runCli(['--db', db, 'status', String(id)]);
    expect(settled.stdout).not.toMatch(/next try|last error/);
    expect(json<{ outbox: unknown }>(await runCli(['--db', db, 'status', String(id), '--json'])).outbox).toBeNull();
  });

  it('run against an unreachable Market warns while it runs and lists the latest error per campaign when stopped', async () => {
    const db = await dbWithShips([8_400_000_201, 8_400_000_202]);
    const running = startCli(['--db', db, '--api-url', await unreachableUrl(), 'run', '--sync-interval', '0', '--idle', '0.05']);
    await running.waitForStderr(/^warning: campaign 501: \[MARKET_NETWORK\] updateOrderStatuses .*ECONNREFUSED/m);
    running.child.kill('SIGTERM');
    const result = await running.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^  Market calls: 0 answered, \d+ failed$/m);
    expect(result.stdout).toMatch(/^  campaign 501: last error at \S+Z \[MARKET_NETWORK\] .*ECONNREFUSED/m);
    expect(result.stderr.match(/^warning: campaign 501:/gm)).toHaveLength(1);
  });

  it('takes the Market URL from --api-url, else YM_API_URL, else the config file\'s "apiUrl"', async () => {
    market.seedOrders(fbsSeeds(8_400_001_001, 3));
    const dir = tempDir();
    const unreachable = await unreachableUrl();
    const config = (name: string, body: Record<string, unknown>): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, JSON.stringify({ campaigns: [FBS], ...body }));
      return file;
    };
    const toFake = config('fake.json', { apiUrl: market.url });
    const toNowhere = config('nowhere.json', { apiUrl: unreachable });
    const sync = (name: string, args: string[], env: Record<string, string | undefined> = {}) =>
      runCli(['--db', path.join(dir, `${name}.db`), ...args, 'sync', '--json'], { env });

    const fromConfig = await sync('config', ['--config', toFake]);
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    expect(json(fromConfig)).toMatchObject({ complete: true });
    // YM_API_URL beats the config file, both ways round.
    expect((await sync('env', ['--config', toNowhere], { YM_API_URL: market.url })).code).toBe(0);
    const envToNowhere = await sync('env-nowhere', ['--config', toFake], { YM_API_URL: unreachable });
    expect(envToNowhere.code).toBe(1);
    expect(envToNowhere.stderr).toMatch(/^error \[MARKET_NETWORK\]/m);
    // --api-url beats YM_API_URL.
    expect((await sync('flag', ['--config', toNowhere, '--api-url', market.url], { YM_API_URL: unreachable })).code).toBe(0);

    const badEnv = await sync('bad-env', ['--config', toFake], { YM_API_URL: 'not a url' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/^error \[USAGE\]: The Market URL "not a url" from YM_API_URL is not a URL/m);
    const badConfig = await sync('bad-config', ['--config', config('bad.json', { apiUrl: 'ftp://example.test' })]);
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toMatch(/^error \[USAGE\]: The Market URL from the config file's "apiUrl" must be http\(s\), not ftp:/m);
    // A misspelt key is refused, not silently ignored.
    const misspelt = await sync('misspelt', ['--config', config('misspelt.json', { apiURL: market.url })]);
    expect(misspelt.code).toBe(2);
    expect(misspelt.stderr).toMatch(/^error \[CONFIG_INVALID\]: Config file .* is invalid: .*apiURL/m);
  });
});
