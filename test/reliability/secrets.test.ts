// Secrets (issue #6): the API key goes to the Market and nowhere else.
//
// What it proves: after a representative workload — the real CLI (`node bin/ym-orders.js`)
// with YM_API_KEY set to a distinctive key: sync, import, ship, cancel, set-status (a legal and
// a refused one), flush and run against a fake Market that fails at random (500s, 503s, 420s,
// dropped connections before and after applying, truncated JSON, foreign ids); the same against a
// Market that answers 401 (with --verbose and --json too), against a port nobody listens on, and
// `fake-market` itself holding the key; status, history (and a Mermaid file written with --out);
// plus the library (createEngine) hitting the 401 — the key (and its random part, and its base64
// form) appears in:
//  - no line any process printed (stdout and stderr of every command, captured whole);
//  - no error message (every error the library threw, rendered every way: message, stack,
//    JSON, util.inspect with the cause chain; the flush report's halt messages);
//  - no database row (every row the store port reaches, on a store of its own), nor the raw
//    bytes of the database file and its -wal/-shm (a value SQLite cut across pages included);
//  - no file in the temp directory the commands ran in.
// It also checks the key did its job: the fake Market answered requests with it.
//
// On a busy machine each command starts slowly, so waits follow the commands (a line printed, a
// request the Market saw) and the timeouts only stop a hang. After the teardown no command
// starts: a test that timed out still runs on, and its next command used to spawn in the removed
// temp folder (an unhandled `spawn … ENOENT`).

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.js';
import { startFakeMarket, type FakeMarket } from '../../src/testing/index.js';
import { dumpDatabase, holdsKeyBytes, orderIdsOf, orderIdsSeenBy, pastDeliveryDate, rawDatabaseBytes, renderError } from '../helpers/effects-fixtures.js';
import { ensureBuilt, filesContaining, killRunning, makeTempDir, startCli, type CliResult, type RunningCli } from '../helpers/cli.js';
import { figures, sized, sleep } from './support.js';

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(50);
}

const SECRET_PART = randomBytes(18).toString('hex');
const KEY = `ymk-RELIABILITY-${SECRET_PART}`;
/** Every form the key could leak in. */
const NEEDLES = [KEY, SECRET_PART, Buffer.from(KEY).toString('base64'), Buffer.from(SECRET_PART).toString('base64').slice(0, 24)];

const FBS = { campaignId: 41001, businessId: 4100, model: 'FBS' } as const;
const DBS = { campaignId: 41002, businessId: 4100, model: 'DBS' } as const;
const LAAS = { campaignId: 41003, businessId: 4101, model: 'LAAS' } as const;
const CAMPAIGN_ARGS = [FBS, DBS, LAAS].flatMap((c) => ['--campaign', `${c.campaignId}:${c.businessId}:${c.model}`]);
const ORDERS = sized(60, 600);
/** A backstop for one command (`flush --max-wait 20` takes 20 s by design) and for the whole test. */
const COMMAND_TIMEOUT_MS = 5 * 60_000;
const TEST_TIMEOUT_MS = sized(20 * 60_000, 60 * 60_000);

const outputs: { cmd: string; result: CliResult }[] = [];
const rendered: string[] = [];
let dir: string;
let market: FakeMarket | undefined;
let refusing: FakeMarket | undefined;
/** Set by the teardown: from then on no command starts. */
let closed = false;
const commands = new Set<Promise<CliResult>>();

beforeAll(async () => {
  await ensureBuilt();
  dir = makeTempDir();
});

afterAll(async () => {
  closed = true;
  killRunning();
  await Promise.all(commands);
  await market?.close();
  await refusing?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function leaksIn(text: string): string[] {
  return NEEDLES.filter((n) => text.includes(n));
}

/** The same in a file's bytes, where SQLite may have cut a long value in two (an overflow page). */
function leaksInBytes(bytes: string): string[] {
  return NEEDLES.filter((n) => holdsKeyBytes(bytes, n));
}

/** Starts a command in the temp folder unless the teardown has begun; the teardown waits for it. */
function start(args: readonly string[], options: { input?: string; env?: Record<string, string | undefined> } = {}): RunningCli {
  if (closed) throw new Error(`the suite is over; not starting ${args.join(' ')}`);
  const running = startCli(args, { cwd: dir, env: { YM_API_KEY: KEY, ...options.env }, ...(options.input !== undefined ? { input: options.input } : {}), timeoutMs: COMMAND_TIMEOUT_MS });
  commands.add(running.done);
  void running.done.then(() => commands.delete(running.done));
  return running;
}

async function cli(args: readonly string[], options: { input?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  const result = await start(args, options).done;
  outputs.push({ cmd: args.join(' '), result });
  return result;
}

describe('secrets: the API key leaks nowhere', () => {
  it('not in output, errors, database rows, database bytes or files after a representative workload', { timeout: TEST_TIMEOUT_MS }, async () => {
    const t0 = Date.now();
    const windowed = { limit: 100_000, windowMs: 1_000 };
    market = await startFakeMarket({
      apiKey: KEY,
      campaigns: [FBS, DBS, LAAS],
      seed: 6,
      latencyMs: 1,
      quotas: { updateOrderStatuses: windowed, updateOrderStatus: windowed, getOperations: windowed, getBusinessOrders: windowed, acceptOrderCancellation: windowed },
    });
    const m = market;
    const backdated = Date.now() - 60_000;
    const ids = (first: number) => Array.from({ length: ORDERS }, (_, i) => first + i);
    const fbs = ids(41_100_001);
    const dbs = ids(41_200_001);
    const laas = ids(41_300_001);
    m.seedOrders([
      ...fbs.map((id) => ({ id, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: backdated })),
      ...dbs.map((id) => ({ id, campaignId: DBS.campaignId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', updateDate: backdated })),
      ...laas.map((id) => ({ id, campaignId: LAAS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: backdated })),
    ]);
    const db = path.join(dir, 'orders.db');
    const base = ['--db', db, '--api-url', m.url];

    // A clean import by sync, then the Market starts failing at random.
    expect((await cli([...base, ...CAMPAIGN_ARGS, 'sync'])).code).toBe(0);
    for (const kind of ['status500', 'status503', 'status420', 'drop', 'dropAfterApply', 'malformedJson', 'foreignIds'] as const) m.inject({ kind, probability: 0.06, times: Infinity });
    // import (an extra order from a file), ship, cancel, set-status: legal, and refused.
    fs.writeFileSync(path.join(dir, 'extra.jsonl'), `${JSON.stringify({ orderId: 41_100_999, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' })}\n`);
    m.seedOrders([{ id: 41_100_999, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: backdated }]);
    expect((await cli([...base, 'import', path.join(dir, 'extra.jsonl')])).code).toBe(0);
    const half = Math.floor(ORDERS / 2);
    expect((await cli([...base, 'ship', '--file', '-'], { input: [...fbs.slice(0, half), 41_100_999].join('\n') })).code).toBe(0);
    expect((await cli([...base, 'cancel', ...fbs.slice(half, half + 5).map(String)])).code).toBe(0);
    expect((await cli([...base, 'cancel', ...laas.slice(0, 10).map(String)])).code).toBe(0);
    expect((await cli([...base, 'set-status', String(dbs[0]), 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED', '--real-delivery-date', pastDeliveryDate()])).code).toBe(0);
    expect((await cli([...base, 'set-status', String(fbs[0]), 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED'])).code).toBe(1);
    expect((await cli([...base, 'set-status', String(dbs[1]), 'PICKUP', 'PICKUP_SERVICE_RECEIVED', '--flush', '--verbose'])).code).not.toBeNull();
    await cli([...base, 'flush', '--max-wait', '20']);
    await cli([...base, '--json', 'flush', '--max-wait', '5']);

    // The run loop, stopped by SIGINT, with more work queued while it runs.
    const running = start([...base, 'run', '--sync-interval', '0.5', '--idle', '0.05']);
    await running.waitForStdout(/SIGINT\/SIGTERM stops cleanly/, COMMAND_TIMEOUT_MS);
    const shippedWhileRunning = fbs.slice(half + 5, half + 15);
    const shipped = await cli([...base, 'ship', ...shippedWhileRunning.map(String)]);
    expect(shipped.code, shipped.stderr).toBe(0);
    // Stopped once the loop has sent some of them (through the random faults: it retries).
    await until(() => m.requests.some((r) => r.status === 200 && orderIdsOf(r).some((id) => shippedWhileRunning.includes(id))) || running.child.exitCode !== null);
    running.child.kill('SIGINT');
    const ran = await running.done;
    outputs.push({ cmd: 'run', result: ran });
    expect(ran.code, ran.stderr).toBe(0);

    // Reads, with a file written.
    await cli([...base, 'status']);
    await cli([...base, '--json', 'status']);
    await cli([...base, 'history', String(fbs[0])]);
    await cli([...base, '--json', 'history', String(dbs[0])]);
    await cli([...base, 'history', String(dbs[0]), '--mermaid', '--out', path.join(dir, 'history.mmd')]);

    // A Market that refuses the key (401), with --verbose stack traces and --json errors.
    refusing = await startFakeMarket({ apiKey: `someone-else-${randomBytes(4).toString('hex')}`, campaigns: [FBS, DBS, LAAS] });
    const denied = ['--db', path.join(dir, 'denied.db'), '--api-url', refusing.url, ...CAMPAIGN_ARGS];
    const sync401 = await cli([...denied, '--verbose', 'sync']);
    expect(sync401.code).not.toBe(0);
    expect(sync401.stderr).toMatch(/MARKET_AUTH/);
    await cli([...denied, '--json', 'sync']);
    await cli(['--db', db, '--api-url', refusing.url, '--verbose', 'flush', '--max-wait', '2']);
    await cli(['--db', db, '--api-url', refusing.url, '--json', 'flush', '--max-wait', '2']);
    await cli([...base, 'ship', ...fbs.slice(half + 15, half + 20).map(String)]);
    await cli(['--db', db, '--api-url', refusing.url, '--verbose', 'flush', '--max-wait', '2']);
    // Nobody listening; and a key with a typo.
    await cli(['--db', path.join(dir, 'nowhere.db'), '--api-url', 'http://127.0.0.1:1', ...CAMPAIGN_ARGS, '--verbose', 'sync']);
    await cli([...base, '--verbose', 'sync'], { env: { YM_API_KEY: `${KEY}x` } });

    // fake-market itself, holding the key.
    const fake = start(['fake-market', '--seed-orders', '20', '--fault', 'status500:0.2']);
    const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(await fake.waitForStdout(/listening on http/, COMMAND_TIMEOUT_MS))![1]!;
    await cli(['--db', path.join(dir, 'demo.db'), '--api-url', url, '--campaign', '21000101:1100001:FBS', 'sync']);
    // The orders that sync stored, for reading their rows back below (the port finds orders by id
    // only), asked again until one of the fake's answers is not its injected 500.
    let listed: Response | undefined;
    for (let attempt = 0; attempt < 50 && listed?.status !== 200; attempt++) {
      listed = await fetch(`${url}/v1/businesses/1100001/orders?limit=50`, { method: 'POST', headers: { 'Api-Key': KEY, 'Content-Type': 'application/json' }, body: '{}' });
    }
    expect(listed?.status).toBe(200);
    const demoOrderIds = ((await listed!.json()) as { orders: { orderId: number }[] }).orders.map((o) => o.orderId);
    expect(demoOrderIds.length).toBeGreaterThan(0);
    fake.child.kill('SIGINT');
    outputs.push({ cmd: 'fake-market', result: await fake.done });

    // The library: a 401 through createEngine; every error and report rendered every way.
    const engine = await createEngine({ db: path.join(dir, 'library.db'), campaigns: [FBS], api: { baseUrl: refusing.url, apiKey: KEY, timeoutMs: 2_000 } });
    try {
      await engine.sync().then(() => expect.fail('sync with a refused key succeeded'), (e: unknown) => rendered.push(renderError(e)));
      await engine.trackOrders([{ orderId: 41_100_001, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED' }]);
      await engine.requestChange({ orderId: 41_100_001, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
      const report = await engine.flush({ maxWaitMs: 2_000 });
      expect(report.halted.length).toBe(1);
      rendered.push(JSON.stringify(report), inspect(report, { depth: 10, showHidden: true }), inspect(engine, { depth: 4, showHidden: true }));
      rendered.push(JSON.stringify(await engine.history(41_100_001)), JSON.stringify(await engine.getOrder(41_100_001)));
      // The campaign's model cannot change under a tracked order: CAMPAIGN_CONFLICT, with the key in the options.
      await createEngine({ db: path.join(dir, 'library.db'), campaigns: [{ ...FBS, model: 'DBS' }], api: { baseUrl: refusing.url, apiKey: KEY } }).then(
        async (other) => {
          await other.close();
          expect.fail('a conflicting campaign was accepted');
        },
        (e: unknown) => rendered.push(renderError(e)),
      );
    } finally {
      await engine.close();
    }

    // The key did its job (the Market answered requests that carried it) ...
    expect(m.requests.filter((r) => r.status === 200).length).toBeGreaterThan(10);
    expect(refusing.requests.filter((r) => r.status === 401).length).toBeGreaterThan(0);
    // ... and is nowhere else.
    const printed = outputs.flatMap(({ cmd, result }) => [[`stdout of ${cmd}`, result.stdout], [`stderr of ${cmd}`, result.stderr]] as const);
    const outLeaks = printed.filter(([, text]) => leaksIn(text).length > 0).map(([where]) => where);
    expect(outLeaks).toEqual([]);
    expect(rendered.filter((t) => leaksIn(t).length > 0)).toEqual([]);
    const databases = fs.readdirSync(dir).filter((f) => f.endsWith('.db')).map((f) => path.join(dir, f));
    expect(databases.length).toBeGreaterThanOrEqual(4);
    // Every byte of the files as the commands left them, -wal and -shm included: first, since a
    // store opened on a file (for its rows, below) checkpoints it and removes its -wal and -shm.
    for (const file of databases) expect(leaksInBytes(rawDatabaseBytes(file)), `bytes of ${file}*`).toEqual([]);
    const files = fs.readdirSync(dir);
    const leakyFiles = NEEDLES.flatMap((n) => filesContaining(dir, n));
    expect(leakyFiles).toEqual([]);
    expect(files).toContain('history.mmd');
    // Every row the port reaches (orders by the ids any Market was asked or told about, and the demo's).
    const orderIds = new Set([...fbs, ...dbs, ...laas, 41_100_999, ...demoOrderIds, ...orderIdsSeenBy(m), ...orderIdsSeenBy(refusing)]);
    let rows = 0;
    for (const file of databases) {
      const dump = await dumpDatabase(file, { orderIds });
      rows += Object.values(JSON.parse(dump) as Record<string, unknown[]>).reduce((n, t) => n + t.length, 0);
      expect(leaksIn(dump), `rows of ${file}`).toEqual([]);
    }
    // The rows were there to search: every tracked order and its journal at least.
    expect(rows).toBeGreaterThan(2 * 3 * ORDERS);

    const lines = printed.reduce((n, [, text]) => n + text.split('\n').length, 0);
    const faults: Record<string, number> = {};
    for (const r of m.requests) if (r.fault) faults[r.fault] = (faults[r.fault] ?? 0) + 1;
    console.log(
      figures('secrets', {
        commands: outputs.length,
        outputLines: lines,
        errorsRendered: rendered.length,
        databases: databases.length,
        rowsScanned: rows,
        filesScanned: files.length,
        requestsWithKey: m.requests.length + refusing.requests.length,
        answered401: refusing.requests.filter((r) => r.status === 401).length,
        faults,
        leaks: 0,
        ms: Date.now() - t0,
      }),
    );
  });
});
