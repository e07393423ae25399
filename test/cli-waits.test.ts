// `flush` and `run` say what they wait for and until when, and `run --json` is a log a program
// can follow: one JSON object a line as the loop goes (issue 13, "The CLI shows what it waits for").
//
// The fake Market allows 30 status changes a minute, so after the first call of 30 the next
// ones wait for the window; its honest rate-limit headers tell the engine when it reopens.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeMarket, type FakeMarket } from '../src/testing/index.js';
import { ensureBuilt, makeTempDir, runCli, startCli, TEST_API_KEY, transcript } from './helpers/cli.js';

const FBS = { campaignId: 701, businessId: 71, model: 'FBS' } as const;
const WINDOW_MS = 60_000;
const dirs: string[] = [];
let market: FakeMarket;

beforeAll(async () => {
  await ensureBuilt();
});

// A market of its own per test: each starts with the whole window's quota.
beforeEach(async () => {
  await market?.close();
  market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS], quotas: { updateOrderStatuses: { limit: 30, windowMs: WINDOW_MS } } });
});

afterAll(async () => {
  await market?.close();
  for (const text of transcript) expect(text).not.toContain(TEST_API_KEY);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A database with `count` orders synced from the fake and a ship queued for each. */
async function shipped(firstId: number, count: number): Promise<string[]> {
  const dir = makeTempDir();
  dirs.push(dir);
  const orders = Array.from({ length: count }, (_, i) => ({ id: firstId + i, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: Date.now() - 60_000 }));
  market.seedOrders(orders);
  const db = ['--db', path.join(dir, 'w.db'), '--api-url', market.url, '--campaign', `${FBS.campaignId}:${FBS.businessId}:FBS`];
  expect((await runCli([...db, 'sync'])).code).toBe(0);
  const ship = await runCli([...db, 'ship', '--file', '-'], { input: orders.map((o) => o.id).join('\n') });
  expect(ship.code, ship.stderr).toBe(0);
  return db;
}

// Quota spent when the engine saw the window's remaining reach 0 before its next call; blocked
// when a call already in flight meanwhile drew the Market's 420 (the engine starts from the
// documented hourly budget until the first answer's headers tell it the fake's).
const WAITING = new RegExp(
  `campaign ${FBS.campaignId}: updateOrderStatuses (quota spent, the window reopens at|blocked by the Market \\(420\\) until) \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(in [\\d.]+ s\\)`,
);

describe('what flush and run wait for', () => {
  it('flush names the spent quota and when its window reopens, as it happens and in NOT_SETTLED', async () => {
    const db = await shipped(9_100_000_001, 45);
    const flushed = await runCli([...db, 'flush', '--max-wait', '1']);
    expect(flushed.code).toBe(1);
    expect(flushed.stderr).toMatch(new RegExp(`^warning: waiting: ${WAITING.source}`, 'm'));
    expect(flushed.stderr).toMatch(new RegExp(`^error \\[NOT_SETTLED\\]: 15 change\\(s\\) are still open \\(waiting for ${WAITING.source}\\)`, 'm'));
    // The window it names is the Market's: it reopens within the minute of the first call.
    const said = /(?:reopens at|until) (\S+) \(in/.exec(flushed.stderr)![1]!;
    const first = market.requests.find((r) => r.endpoint === 'updateOrderStatuses' && orderIds(r.body).includes(9_100_000_001))!;
    expect(Date.parse(said)).toBeGreaterThan(first.receivedAt);
    expect(Date.parse(said)).toBeLessThanOrEqual(first.receivedAt + WINDOW_MS + 1_000);
  }, 120_000);

  it('run --json writes one JSON object a line: started, progress with what it waits for, stopped', async () => {
    const db = await shipped(9_200_000_001, 45);
    const running = startCli([...db, '--json', 'run', '--sync-interval', '0']);
    await running.waitForStdout(/"type":"progress".*"waitingFor":\[\{/);
    running.child.kill('SIGTERM');
    const result = await running.done;
    expect(result.code, result.stderr).toBe(0);
    const events = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; at: string; [k: string]: unknown });
    expect(events[0]).toMatchObject({ type: 'started', campaigns: 1, apiUrl: market.url });
    expect(events.at(-1)).toMatchObject({ type: 'stopped', open: 15 });
    for (const e of events) expect(Number.isNaN(Date.parse(e.at))).toBe(false);
    const waiting = events.find((e) => e.type === 'progress' && (e.waitingFor as unknown[]).length > 0)!;
    expect(waiting.waitingFor).toEqual([
      { operation: 'updateOrderStatuses', scope: { kind: 'campaign', id: FBS.campaignId }, reason: expect.stringMatching(/^(budget|blocked)$/), until: expect.any(Number) },
    ]);
    // A line that says nothing new is left out: no two progress events in a row are equal.
    const progress = events.filter((e) => e.type === 'progress').map(({ at: _at, ...rest }) => JSON.stringify(rest));
    for (let i = 1; i < progress.length; i++) expect(progress[i]).not.toBe(progress[i - 1]);
  }, 120_000);
});

function orderIds(body: unknown): number[] {
  return ((body as { orders?: { id: number }[] }).orders ?? []).map((o) => o.id);
}
