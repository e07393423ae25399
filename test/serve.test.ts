// `ym-orders serve` as a real process (issue #12): the fake Market's notifier posts through a
// reverse proxy to serve, on SQLite and on PostgreSQL; orders created at the Market arrive by
// notification and are read and tracked, a change queued with `ym-orders ship` is sent and its
// ORDER_STATUS_UPDATED comes back, a flood with duplicates and reorderings ends with every order
// as the Market has it. Then the service itself: health, the allow-list, options, binding
// failures, secrets, and SIGTERM with a request in flight.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFakeMarket, type FakeMarket } from '../src/testing/index.js';
import { ensureBuilt, filesContaining, killRunning, makeTempDir, runCli, TEST_API_KEY, transcript } from './helpers/cli.js';
import { waitUntil } from './helpers/effects-fixtures.js';
import {
  createTestDatabase, MARKET_ADDRESS, openDbReader, sameOrders, startRelay, startServe, type DbReader, type LogLine, type Relay, type ServeProcess,
} from './workers/serve-harness.js';

const FBS = { campaignId: 701, businessId: 71, model: 'FBS' } as const;
const CAMPAIGN = `${FBS.campaignId}:${FBS.businessId}:${FBS.model}`;
/** Retry intervals of the Market's schedule a thousand times shorter: a minute is 60 ms. */
const TIME_SCALE = 0.001;
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

function tempDir(): string {
  const d = makeTempDir();
  dirs.push(d);
  return d;
}

const range = (n: number, from: number): number[] => Array.from({ length: n }, (_, i) => from + i);

interface Backend {
  readonly name: string;
  readonly available: boolean;
  /** A database no other test uses: a SQLite file, or a PostgreSQL database of its own. */
  database(): Promise<string>;
}

const BACKENDS: readonly Backend[] = [
  { name: 'SQLite', available: true, database: async () => path.join(tempDir(), 'serve.db') },
  {
    name: 'PostgreSQL',
    available: inject('postgres'),
    database: async () => {
      const db = await createTestDatabase();
      cleanups.push(db.drop);
      return db.url;
    },
  },
];

/** serve with the fake Market behind, the notifier posting through the relay as the Market's address. */
async function startScene(backend: Backend, notify: { duplicateRate?: number; reorderRate?: number; seed: number }) {
  const relay = await startRelay();
  const market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS], notify: { url: relay.url, timeScale: TIME_SCALE, ...notify } });
  const db = await backend.database();
  const globals = ['--db', db, '--api-url', market.url, '--campaign', CAMPAIGN];
  // No sync: whatever serve learns, it learns from notifications and the reads they ask for.
  const serve = await startServe([...globals, 'serve', '--listen', '127.0.0.1:0', '--allow', 'market', '--trusted-proxy', '127.0.0.1', '--sync', '0']);
  relay.target = serve.url;
  const reader = await openDbReader(db);
  const close = async (): Promise<void> => {
    await reader.close();
    await market.close();
    await relay.close();
  };
  return { relay, market, db, globals, serve, reader, close };
}

async function stopGracefully(serve: ServeProcess): Promise<LogLine[]> {
  serve.cli.child.kill('SIGTERM');
  const result = await serve.done;
  expect(result.code, result.stderr).toBe(0);
  const lines = serve.lines();
  expect(lines.find((l) => l.msg === 'stopped')).toMatchObject({ requestsCut: 0 });
  return lines;
}

async function inStep(reader: DbReader, market: FakeMarket, ids: readonly number[]): Promise<boolean> {
  const view = await reader.view();
  return view.inbox.pending === 0 && view.reads === 0 && sameOrders(view, market, ids);
}

for (const backend of BACKENDS) {
  describe.skipIf(!backend.available)(`serve on ${backend.name}`, () => {
    it('tracks the orders created at the Market from notifications, sends a shipped change, hears it back, and ends equal to the Market', async () => {
      const scene = await startScene(backend, { seed: 3 });
      const { market, reader, serve } = scene;
      try {
        const ids = range(20, 7_100_000_001);
        for (const id of ids) market.createOrder({ id, campaignId: FBS.campaignId });
        await market.notifier!.idle();
        expect(market.notifier!.stats()).toMatchObject({ delivered: 20, rejected: 0, failedAttempts: 0 });
        await waitUntil(() => inStep(reader, market, ids), 'every order created at the Market is tracked');
        // Read in batches by id (getBusinessOrders takes 50), not one call per order and not by a sync.
        const reads = market.requests.filter((r) => r.endpoint === 'getBusinessOrders');
        expect(reads.length).toBeGreaterThan(0);
        expect(reads.length).toBeLessThan(ids.length);
        expect(reads.every((r) => Array.isArray((r.body as { orderIds?: unknown }).orderIds))).toBe(true);

        const shipped = ids.slice(0, 10);
        const ship = await runCli([...scene.globals, 'ship', ...shipped.map(String)]);
        expect(ship.code, ship.stderr).toBe(0);
        await waitUntil(() => shipped.every((id) => market.getOrder(id)!.substatus === 'READY_TO_SHIP'), 'the Market applied the shipped change');
        // The Market moves others itself.
        const cancelled = ids.slice(10, 15);
        for (const id of cancelled) market.setOrderStatus(id, 'CANCELLED', 'SHOP_FAILED');
        await market.notifier!.idle();
        await waitUntil(() => inStep(reader, market, ids), 'the database equals the Market');

        const view = await reader.view();
        expect(view.orders.size).toBe(ids.length);
        for (const id of shipped) expect(view.orders.get(id)).toEqual({ status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
        for (const id of cancelled) expect(view.orders.get(id)).toEqual({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
        // Every status update the fake pushed (the accepted change's too) is stored once and applied.
        const statusRows = view.inboxRows.filter((r) => r.type === 'ORDER_STATUS_UPDATED');
        expect(statusRows.map((r) => r.order_id).sort()).toEqual([...shipped, ...cancelled].sort());
        expect(statusRows.every((r) => r.state === 'done' && r.last_error === null)).toBe(true);
        expect(view.inboxRows.filter((r) => r.type === 'ORDER_CREATED')).toHaveLength(ids.length);
        expect(market.stats().duplicateApplications).toBe(0);
        // The notification and the read ORDER_CANCELLED asked for say the same: the order moved once.
        for (const id of cancelled) {
          const moves = (await reader.journal(id)).filter((r) => r.to_status === 'CANCELLED' && r.from_status !== 'CANCELLED');
          expect(moves.map((r) => r.source)).toEqual([expect.stringMatching(/^(notification|sync)$/)]);
        }

        const lines = await stopGracefully(serve);
        const notified = lines.filter((l) => l.msg === 'notification');
        expect(notified).toHaveLength(market.notifier!.stats().delivered);
        // The trusted proxy's X-Forwarded-For names the client: the Market's address, allowed.
        expect(notified.every((l) => l.client === MARKET_ADDRESS && l.status === 200)).toBe(true);
        expect(lines.some((l) => l.msg === 'progress')).toBe(true);
      } finally {
        await scene.close();
      }
    });

    it('a flood with duplicates and reorderings (rates 0.3) ends with every order as the Market has it, each notification stored once', async () => {
      const scene = await startScene(backend, { duplicateRate: 0.3, reorderRate: 0.3, seed: 11 });
      const { market, reader, serve } = scene;
      try {
        const ids = range(60, 7_200_000_001);
        for (const id of ids) market.createOrder({ id, campaignId: FBS.campaignId });
        // Each order moves three times at the Market, the orders interleaved.
        const moves = [
          ['PROCESSING', 'READY_TO_SHIP'],
          ['DELIVERY', 'DELIVERY_SERVICE_RECEIVED'],
          ['DELIVERED', 'DELIVERY_SERVICE_DELIVERED'],
        ] as const;
        for (const [status, substatus] of moves) {
          for (const [i, id] of ids.entries()) {
            // Some stop early, so the final states differ from order to order.
            if (status === 'DELIVERED' && i % 3 === 0) continue;
            if (status === 'DELIVERY' && i % 5 === 0) continue;
            market.setOrderStatus(id, status, substatus);
          }
        }
        await market.notifier!.idle();
        const stats = market.notifier!.stats();
        expect(stats.duplicatesSent).toBeGreaterThan(0);
        expect(stats.reordered).toBeGreaterThan(0);
        expect(stats.rejected).toBe(0);
        await waitUntil(() => inStep(reader, market, ids), 'the database equals the Market after the flood');

        const view = await reader.view();
        expect(view.orders.size).toBe(ids.length);
        expect(new Set([...view.orders.values()].map((o) => o.status))).toEqual(new Set(['PROCESSING', 'DELIVERY', 'DELIVERED']));
        // One row per distinct notification: every duplicate was recognised as one.
        expect(view.inboxRows).toHaveLength(stats.delivered - stats.duplicatesSent);
        const lines = await stopGracefully(serve);
        expect(lines.filter((l) => l.msg === 'notification' && l.outcome === 'duplicate').length).toBeGreaterThanOrEqual(stats.duplicatesSent);
      } finally {
        await scene.close();
      }
    });
  });
}

/** Opens a connection and sends the head of a POST /notification and the first half of its body. */
async function startSlowRequest(url: string, body: string): Promise<{ finish(): void; response: Promise<string> }> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  const response = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  const half = Math.floor(body.length / 2);
  socket.write(`POST /notification HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, half)}`);
  return { finish: () => socket.end(body.slice(half)), response };
}

const statusUpdate = (orderId: number, at = Date.now()) =>
  JSON.stringify({ notificationType: 'ORDER_STATUS_UPDATED', orderId, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updatedAt: new Date(at).toISOString() });

describe('serve, the service', () => {
  let market: FakeMarket;
  beforeAll(async () => {
    market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS] });
  });
  afterAll(async () => market?.close());
  const globals = (db: string): string[] => ['--db', db, '--api-url', market.url, '--campaign', CAMPAIGN];

  it('answers health while running, and SIGTERM lets a request in flight finish (200), refuses new connections and exits 0', async () => {
    const db = path.join(tempDir(), 'term.db');
    const serve = await startServe([...globals(db), 'serve', '--listen', '127.0.0.1:0', '--sync', '0']);
    const slow = await startSlowRequest(serve.url, statusUpdate(7_300_000_001));
    // Answered after the slow request's head was read (the server took that connection first).
    const health = await fetch(`${serve.url}/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ok', db, inboxPending: 0, readsPending: 0, open: 0 });
    expect(body.uptimeS).toEqual(expect.any(Number));

    serve.cli.child.kill('SIGTERM');
    await serve.waitForLine((l) => l.msg === 'stopping', 'stopping line');
    expect(serve.lines().find((l) => l.msg === 'stopping')).toMatchObject({ signal: 'SIGTERM', requestsInFlight: 1 });
    await expect(fetch(`${serve.url}/health`)).rejects.toThrow();
    slow.finish();
    const answer = await slow.response;
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer).toMatch(/"name":"ym-orders"/);
    const result = await serve.done;
    expect(result.code, result.stderr).toBe(0);
    expect(serve.lines().at(-1)).toMatchObject({ msg: 'stopped', requestsCut: 0, notifications: { stored: 1 } });
    expect(serve.lines().filter((l) => l.msg === 'notification')).toMatchObject([{ outcome: 'stored', status: 200, client: '127.0.0.1' }]);
    // Stored before it was answered: the row is there after the exit.
    const reader = await openDbReader(db);
    try {
      expect((await reader.view()).inboxRows.map((r) => r.order_id)).toEqual([7_300_000_001]);
    } finally {
      await reader.close();
    }
  });

  it('a stored notification wakes the sleeping loop: it is applied long before --idle would end the sleep', async () => {
    const db = path.join(tempDir(), 'wake.db');
    const serve = await startServe([...globals(db), 'serve', '--listen', '127.0.0.1:0', '--sync', '0', '--idle', '120']);
    // The first pass is over (it reported), so the loop sleeps now, for up to two minutes.
    await serve.waitForLine((l) => l.msg === 'progress', 'the first pass');
    const reader = await openDbReader(db);
    try {
      const posted = await fetch(`${serve.url}/notification`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: statusUpdate(7_300_000_020) });
      expect(posted.status).toBe(200);
      await waitUntil(async () => (await reader.view()).orders.get(7_300_000_020)?.substatus === 'READY_TO_SHIP', 'the notified order is tracked', 20_000);
    } finally {
      await reader.close();
    }
    await stopGracefully(serve);
  });

  it('a request that never finishes holds the exit no longer than the request timeout; a second signal exits at once', async () => {
    const db = path.join(tempDir(), 'stall.db');
    const serve = await startServe([...globals(db), 'serve', '--listen', '127.0.0.1:0', '--sync', '0']);
    await startSlowRequest(serve.url, statusUpdate(7_300_000_002));
    expect((await fetch(`${serve.url}/health`)).status).toBe(200);
    serve.cli.child.kill('SIGTERM');
    await serve.waitForLine((l) => l.msg === 'stopping', 'stopping line');
    const stoppingAt = Date.now();
    const result = await serve.done;
    expect(result.code, result.stderr).toBe(0);
    expect(Date.now() - stoppingAt).toBeLessThan(14_000);
    expect(serve.lines().find((l) => l.msg === 'stopped')).toMatchObject({ requestsCut: 1 });
    expect(serve.lines().filter((l) => l.msg === 'notification')).toMatchObject([{ outcome: 'aborted' }]);

    const again = await startServe([...globals(db), 'serve', '--listen', '127.0.0.1:0', '--sync', '0']);
    await startSlowRequest(again.url, statusUpdate(7_300_000_003));
    expect((await fetch(`${again.url}/health`)).status).toBe(200);
    again.cli.child.kill('SIGTERM');
    await again.waitForLine((l) => l.msg === 'stopping', 'stopping line');
    const secondAt = Date.now();
    again.cli.child.kill('SIGTERM');
    const forced = await again.done;
    expect(forced.code).toBe(130);
    expect(Date.now() - secondAt).toBeLessThan(5_000);
    expect(forced.stderr).toMatch(/SIGTERM again: exiting now/);
  });

  it('--allow denies other networks (403, nothing stored); a direct client is not believed to be the Market because of its header', async () => {
    const db = path.join(tempDir(), 'allow.db');
    const serve = await startServe([...globals(db), 'serve', '--listen', '127.0.0.1:0', '--sync', '0', '--allow', 'market']);
    const post = (headers: Record<string, string> = {}) =>
      fetch(`${serve.url}/notification`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: statusUpdate(7_300_000_010) });
    const denied = await post();
    expect(denied.status).toBe(403);
    // 127.0.0.1 is no trusted proxy here: its X-Forwarded-For is anyone's to write.
    expect((await post({ 'x-forwarded-for': MARKET_ADDRESS })).status).toBe(403);
    // Health is for the operator, whatever --allow says.
    expect((await fetch(`${serve.url}/health`)).status).toBe(200);
    await stopGracefully(serve);
    const reader = await openDbReader(db);
    try {
      expect((await reader.view()).inboxRows).toEqual([]);
    } finally {
      await reader.close();
    }
    expect(serve.lines().filter((l) => l.msg === 'notification').map((l) => [l.outcome, l.status, l.client])).toEqual([
      ['denied', 403, '127.0.0.1'],
      ['denied', 403, '127.0.0.1'],
    ]);
  });

  it('refuses bad options with exit 2 before opening anything, and an address in use with SERVE_LISTEN_FAILED', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'opts.db');
    const cases: [string[], RegExp][] = [
      [['--listen', 'nonsense'], /^error \[USAGE\]: --listen "nonsense" is not HOST:PORT/m],
      [['--listen', '127.0.0.1:70000'], /^error \[USAGE\]: --listen "127\.0\.0\.1:70000" is not HOST:PORT/m],
      [['--listen', 'bad_host!:8080'], /^error \[USAGE\]: --listen "bad_host!:8080": "bad_host!" is neither an IP address nor a host name/m],
      [['--allow', '300.1.1.1/8'], /^error \[NOTIFY_BAD_NETWORK\]: --allow: "300\.1\.1\.1\/8" is not a network/m],
      [['--trusted-proxy', 'proxy.local'], /^error \[NOTIFY_BAD_NETWORK\]: --trusted-proxy: "proxy\.local" is not a network/m],
      [['--max-body', '0'], /^error \[USAGE\]: --max-body "0" is not a whole number of at least 1/m],
      [['--sync', 'often'], /^error \[USAGE\]: --sync "often" is not a number of seconds/m],
    ];
    for (const [args, message] of cases) {
      const result = await runCli([...globals(db), 'serve', ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
    }
    expect(fs.existsSync(db)).toBe(false);

    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as net.AddressInfo;
      const busy = await runCli([...globals(db), 'serve', '--listen', `127.0.0.1:${port}`]);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(new RegExp(`^error \\[SERVE_LISTEN_FAILED\\]: Cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE\\. Another process listens there`, 'm'));
    } finally {
      taken.close();
    }
    const noKey = await runCli([...globals(db), 'serve'], { env: { YM_API_KEY: undefined } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/^error \[MISSING_API_KEY\]: serve needs the Market API/m);
  });

  it('never logs a database password (a PostgreSQL URL with one), nor the API key', async () => {
    const password = 'pw-never-in-a-log-4242';
    const unreachable = await runCli(['--db', `postgres://ym:${password}@127.0.0.1:1/test`, '--api-url', market.url, '--campaign', CAMPAIGN, 'serve', '--listen', '127.0.0.1:0']);
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stderr).toMatch(/^error \[DB_CANNOT_OPEN\]: .*postgres:\/\/ym:\*\*\*@127\.0\.0\.1:1\/test/m);
    expect(unreachable.stdout + unreachable.stderr).not.toContain(password);
    if (!inject('postgres')) return;
    // The test server trusts loopback, so a URL with a password connects, and serve runs on it.
    const database = await createTestDatabase(password);
    cleanups.push(database.drop);
    const serve = await startServe(['--db', database.url, '--api-url', market.url, '--campaign', CAMPAIGN, 'serve', '--listen', '127.0.0.1:0', '--sync', '0']);
    const health = await fetch(`${serve.url}/health`);
    const text = await health.text();
    expect(health.status).toBe(200);
    expect(text).toContain('***');
    expect(text).not.toContain(password);
    expect(serve.lines()[0]!.db).toMatch(/^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\//);
    // The database going away: health says so (503), the loop logs the store errors and waits.
    await database.drop();
    await waitUntil(async () => (await fetch(`${serve.url}/health`)).status === 503, 'health answers 503');
    await serve.waitForLine((l) => l.msg === 'storeError', 'a storeError line');
    serve.cli.child.kill('SIGKILL');
    const result = await serve.done;
    expect(result.stdout + result.stderr).not.toContain(password);
    expect(result.stdout + result.stderr).not.toContain(TEST_API_KEY);
  });
});
