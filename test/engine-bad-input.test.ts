// Bad input (issue #3, DESIGN principle 7): every kind of wrong input gets a typed error
// (a YmOrdersError with a stable `code`), a message that says what to do, and changes
// NOTHING — checked against a dump of everything the store port shows, or the file's bytes for
// files that are not ours (built byte by byte: issue #10, engine tests know no SQL).

import fs from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine.js';
import { EngineError, InvalidCommandError } from '../src/engine/errors.js';
import { YmOrdersError } from '../src/errors.js';
import { APPLICATION_ID, LATEST_SCHEMA_VERSION } from '../src/store/index.js';
import { StoreError } from '../src/store/errors.js';
import {
  CAMPAIGNS,
  dumpFile,
  dumpViaPort,
  FakeClock,
  fileBytes,
  makeTempDir,
  openEngine,
  removeDir,
  sqliteImage,
  T0,
  thrownYmError,
  type Dump,
  type ImageTable,
} from './helpers/engine-fixtures.js';

let dir: string;
let file: string;
let clock: FakeClock;
let engine: Engine;

// Every order id a command in this file names: the dumps read orders by id.
const ORDER_IDS = [1, 2, 3, 4, 5, 6, 9, 404];

beforeEach(async () => {
  dir = makeTempDir('ym-orders-bad-input-');
  file = path.join(dir, 'orders.db');
  clock = new FakeClock();
  engine = await openEngine(file, clock);
  await engine.trackOrders([
    { orderId: 1, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
    { orderId: 2, campaignId: 20, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 },
  ]);
  await engine.requestChange({ orderId: 1, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
  clock.tick();
});

afterEach(async () => {
  await engine.close();
  removeDir(dir);
});


/** Runs `fn`, expects it to reject with `code`, and checks everything the port shows is exactly as before. */
async function refusesWithoutWriting(fn: () => Promise<unknown>, code: string, advice: RegExp): Promise<YmOrdersError> {
  const before: Dump = await dumpViaPort(engine, ORDER_IDS);
  const error = await thrownYmError(fn);
  expect(error.code).toBe(code);
  expect(error.message).toMatch(advice);
  expect(error.toJSON()).toMatchObject({ code, message: error.message });
  expect(await dumpViaPort(engine, ORDER_IDS)).toEqual(before);
  return error;
}

describe('malformed commands → INVALID_COMMAND', () => {
  const track = { orderId: 3, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED' };
  const request = { orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' } as const;
  const observation = { orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', observedAt: T0 + 5_000 };

  const cases: { name: string; run: () => Promise<unknown>; path: string }[] = [
    { name: 'track: orderId as a string', run: () => engine.trackOrders([{ ...track, orderId: '3' as unknown as number }]), path: 'orderId' },
    { name: 'track: negative orderId', run: () => engine.trackOrders([{ ...track, orderId: -3 }]), path: 'orderId' },
    { name: 'track: fractional campaignId', run: () => engine.trackOrders([{ ...track, campaignId: 10.5 }]), path: 'campaignId' },
    { name: 'track: lower-case status', run: () => engine.trackOrders([{ ...track, status: 'processing' }]), path: 'status' },
    { name: 'track: extra field', run: () => engine.trackOrders([{ ...track, price: 100 } as never]), path: '' },
    { name: 'track: observedAt not a date', run: () => engine.trackOrders([{ ...track, observedAt: 'yesterday' }]), path: 'observedAt' },
    { name: 'track: one bad order spoils the batch', run: () => engine.trackOrders([track, { ...track, orderId: 0 }]), path: 'orderId' },
    { name: 'track: null', run: () => engine.trackOrders([null as never]), path: '' },
    { name: 'observe: missing observedAt', run: () => engine.observe({ orderId: 2, status: 'DELIVERED' } as never), path: 'observedAt' },
    { name: 'observe: unknown source', run: () => engine.observe({ ...observation, source: 'rumour' as never }), path: 'source' },
    { name: 'observe: lower-case substatus', run: () => engine.observe({ ...observation, substatus: 'delivered' }), path: 'substatus' },
    { name: 'observe: negative time', run: () => engine.observe({ ...observation, observedAt: -1 }), path: 'observedAt' },
    { name: 'request: orderId as a string', run: () => engine.requestChange({ ...request, orderId: '2' as unknown as number }), path: 'orderId' },
    { name: 'request: negative orderId', run: () => engine.requestChange({ ...request, orderId: -2 }), path: 'orderId' },
    { name: 'request: lower-case status', run: () => engine.requestChange({ ...request, status: 'delivered' as never }), path: 'status' },
    { name: 'request: extra field', run: () => engine.requestChange({ ...request, force: true } as never), path: '' },
    { name: 'request: expectedRowVersion 0', run: () => engine.requestChange({ ...request, expectedRowVersion: 0 }), path: 'expectedRowVersion' },
    { name: 'request: call evidence of the wrong shape', run: () => engine.requestChange({ ...request, callEvidence: { calls: 3 } as never }), path: 'callEvidence.calls' },
    { name: 'bulk atomic: one malformed request', run: () => engine.requestChanges([request, { ...request, orderId: 1.5 }], { atomic: true }), path: 'orderId' },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const error = await refusesWithoutWriting(c.run, 'INVALID_COMMAND', /^Invalid (order #\d+|observation|change request): /);
      expect(error).toBeInstanceOf(InvalidCommandError);
      const issues = (error as InvalidCommandError).issues;
      expect(issues.length).toBeGreaterThan(0);
      expect(issues.map((i) => i.path)).toContain(c.path);
    });
  }

  it('lower-case values are refused with a hint at the expected form', async () => {
    const error = await refusesWithoutWriting(() => engine.requestChange({ orderId: 2, status: 'cancelled' as never, substatus: 'SHOP_FAILED' }), 'INVALID_COMMAND', /status: an upper-case Market value such as PROCESSING/);
    expect(error.details).toMatchObject({ command: 'change request' });
  });

  it('bulk, not atomic: malformed requests are reported, the good ones queued', async () => {
    const result = await engine.requestChanges([
      { orderId: 'two' as unknown as number, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
      { orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', color: 'red' } as never,
      request,
    ]);
    expect(result.refused.map((r) => [r.orderId, r.error.code])).toEqual([
      [undefined, 'INVALID_COMMAND'],
      [2, 'INVALID_COMMAND'],
    ]);
    expect(result.queued.map((s) => s.orderId)).toEqual([2]);
  });
});

describe('unknown orders → ORDER_NOT_FOUND', () => {
  const attempts: Record<string, () => Promise<unknown>> = {
    getOrder: () => engine.getOrder(404),
    history: () => engine.history(404),
    explain: () => engine.explain(404, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }),
    observe: () => engine.observe({ orderId: 404, status: 'CANCELLED', substatus: 'SHOP_FAILED', observedAt: T0 }),
    requestChange: () => engine.requestChange({ orderId: 404, status: 'CANCELLED', substatus: 'SHOP_FAILED' }),
    'requestChanges (atomic)': () =>
      engine.requestChanges(
        [
          { orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
          { orderId: 404, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
        ],
        { atomic: true },
      ),
    'a dispatcher event': () => engine.store.transaction((tx) => engine.orders.apply(tx, 404, { type: 'DISPATCH.SENT', at: T0 }, T0)),
  };
  for (const [name, run] of Object.entries(attempts)) {
    it(name, async () => {
      const error = await refusesWithoutWriting(run, 'ORDER_NOT_FOUND', /Order 404 is not tracked; import it or sync first/);
      expect(error).toBeInstanceOf(EngineError);
      expect(error.details).toEqual({ orderId: 404 });
    });
  }

  it('findOrder answers undefined instead', async () => {
    expect(await engine.findOrder(404)).toBeUndefined();
  });
});

describe('campaigns', () => {
  it('an order of an unknown campaign → CAMPAIGN_UNKNOWN, and its whole batch is rolled back', async () => {
    const error = await refusesWithoutWriting(
      () =>
        engine.trackOrders([
          { orderId: 5, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED' },
          { orderId: 6, campaignId: 77, status: 'PROCESSING', substatus: 'STARTED' },
        ]),
      'CAMPAIGN_UNKNOWN',
      /Campaign 77 is not configured \(known: 10, 20, 30, 40\); add it to the engine's campaigns/,
    );
    expect(error.details).toMatchObject({ campaignId: 77, knownCampaigns: [10, 20, 30, 40] });
    expect(await engine.findOrder(5)).toBeUndefined();
  });

  it('re-importing an order under another campaign → IMPORT_CONFLICT', async () => {
    const error = await refusesWithoutWriting(
      () => engine.trackOrders([{ orderId: 1, campaignId: 20, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 + 60_000 }]),
      'IMPORT_CONFLICT',
      /Order 1 is already tracked with campaignId 10, not 20.*Check the import file/,
    );
    expect(error.details).toMatchObject({ orderId: 1, field: 'campaignId', stored: 10, given: 20 });
    expect(await engine.getOrder(1)).toMatchObject({ campaignId: 10, substatus: 'STARTED' });
  });

  const badConfigs: { name: string; campaigns: unknown[]; path: string }[] = [
    { name: 'an unknown model', campaigns: [{ campaignId: 50, businessId: 5, model: 'FBY' }], path: 'model' },
    { name: 'a lower-case model', campaigns: [{ campaignId: 50, businessId: 5, model: 'fbs' }], path: 'model' },
    { name: 'no businessId', campaigns: [{ campaignId: 50, model: 'FBS' }], path: 'businessId' },
    { name: 'a negative campaignId', campaigns: [{ campaignId: -50, businessId: 5, model: 'FBS' }], path: 'campaignId' },
    { name: 'an extra field', campaigns: [{ campaignId: 50, businessId: 5, model: 'FBS', apiKey: 'secret-key-1234' }], path: '' },
    { name: 'one bad among good ones', campaigns: [...CAMPAIGNS, { campaignId: '51', businessId: 5, model: 'DBS' }], path: 'campaignId' },
  ];
  for (const c of badConfigs) {
    it(`invalid campaign config (${c.name}) → INVALID_COMMAND; an existing file is untouched, a new one is not created`, async () => {
      await engine.close();
      const bytes = fileBytes(file);
      const dump = await dumpFile(file, ORDER_IDS);
      const make = (db: string) => () => createEngine({ db, campaigns: c.campaigns as never, clock: clock.fn });
      const error = await thrownYmError(make(file));
      expect(error.code).toBe('INVALID_COMMAND');
      expect(error.message).toMatch(/^Invalid campaign: /);
      expect((error as InvalidCommandError).issues.map((i) => i.path)).toContain(c.path);
      expect(error.message).not.toContain('secret-key-1234');
      expect(fileBytes(file)).toEqual(bytes);
      expect(await dumpFile(file, ORDER_IDS)).toEqual(dump);

      const fresh = path.join(dir, 'never.db');
      expect((await thrownYmError(make(fresh))).code).toBe('INVALID_COMMAND');
      expect(fs.existsSync(fresh)).toBe(false);
      engine = await openEngine(file, clock);
    });
  }
});

describe('database files that are not usable', () => {
  /** Expects `code` from opening `target`, and not one byte written or file left behind. */
  async function refusesFile(target: string, code: string, advice: RegExp): Promise<StoreError> {
    const bytes = fileBytes(target);
    const listing = fs.readdirSync(path.dirname(target)).sort();
    const error = await thrownYmError(() => createEngine({ db: target, campaigns: CAMPAIGNS, clock: clock.fn }));
    expect(error).toBeInstanceOf(StoreError);
    expect(error.code).toBe(code);
    expect(error.message).toContain(target);
    expect(error.message).toMatch(advice);
    expect(fileBytes(target)).toEqual(bytes);
    expect(fs.readdirSync(path.dirname(target)).sort()).toEqual(listing);
    return error as StoreError;
  }

  /** Writes a hand-built SQLite file (no driver: this suite knows no SQL). */
  function sqliteFile(name: string, image: { applicationId?: number; wal?: boolean; tables?: readonly ImageTable[] }): string {
    const target = path.join(dir, name);
    fs.writeFileSync(target, sqliteImage(image));
    return target;
  }

  it("another application's SQLite database → DB_NOT_OURS", async () => {
    const target = sqliteFile('crm.sqlite', {
      tables: [
        {
          name: 'customers',
          sql: 'CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)',
          rows: [
            { rowid: 1, values: [null, 'Ann'] },
            { rowid: 2, values: [null, 'Bob'] },
          ],
        },
      ],
    });
    const error = await refusesFile(target, 'DB_NOT_OURS', /another application.*choose another --db file/);
    expect(error.details).toMatchObject({ applicationId: 0, tables: ['customers'] });
  });

  it('a database that even has an `orders` table, but another application_id → DB_NOT_OURS', async () => {
    const target = sqliteFile('shop.db', {
      applicationId: 1234,
      wal: true,
      tables: [
        { name: 'orders', sql: 'CREATE TABLE orders (id INTEGER PRIMARY KEY)' },
        { name: 'schema_migrations', sql: 'CREATE TABLE schema_migrations (version INTEGER)' },
      ],
    });
    const error = await refusesFile(target, 'DB_NOT_OURS', /application_id 1234/);
    expect(error.details).toMatchObject({ applicationId: 1234 });
  });

  it('another application_id on an empty database → DB_NOT_OURS', async () => {
    const target = sqliteFile('claimed.db', { applicationId: 42 });
    await refusesFile(target, 'DB_NOT_OURS', /application_id 42/);
  });

  it('random bytes → DB_CORRUPT', async () => {
    const target = path.join(dir, 'random.db');
    const random = Buffer.alloc(16_384);
    let x = 12345;
    for (let i = 0; i < random.length; i++) random[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    fs.writeFileSync(target, random);
    await refusesFile(target, 'DB_CORRUPT', /not a readable SQLite database.*Restore it from a backup/);
  });

  it('a text file → DB_CORRUPT', async () => {
    const target = path.join(dir, 'notes.txt');
    fs.writeFileSync(target, 'order 1: shipped\norder 2: cancelled\n'.repeat(200));
    await refusesFile(target, 'DB_CORRUPT', /not a readable SQLite database/);
  });

  it('our own database with a damaged schema page → DB_CORRUPT', async () => {
    await engine.close();
    const target = path.join(dir, 'damaged.db');
    const bytes = fs.readFileSync(file);
    bytes.fill(0xab, 100, 400); // page 1 after the header: sqlite_master's b-tree
    fs.writeFileSync(target, bytes);
    await refusesFile(target, 'DB_CORRUPT', /not a readable SQLite database/);
    engine = await openEngine(file, clock);
  });

  it('a schema newer than this code → DB_SCHEMA_TOO_NEW', async () => {
    // Ours (our application_id, WAL), with a migration row from a later release.
    const target = sqliteFile('future.db', {
      applicationId: APPLICATION_ID,
      wal: true,
      tables: [
        {
          name: 'schema_migrations',
          sql: 'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
          rows: [
            { rowid: 1, values: [null, 'initial', T0] },
            { rowid: LATEST_SCHEMA_VERSION + 1, values: [null, 'from the future', T0] },
          ],
        },
      ],
    });
    const error = await refusesFile(target, 'DB_SCHEMA_TOO_NEW', new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 1}, newer than this ym-orders knows \\(${LATEST_SCHEMA_VERSION}\\)\\. Upgrade ym-orders`));
    expect(error.details).toMatchObject({ schemaVersion: LATEST_SCHEMA_VERSION + 1, supportedVersion: LATEST_SCHEMA_VERSION });
  });

  it('a path that cannot be opened → DB_CANNOT_OPEN', async () => {
    const error = await thrownYmError(() => createEngine({ db: path.join(dir, 'no', 'such', 'dir', 'x.db'), campaigns: CAMPAIGNS }));
    expect(error.code).toBe('DB_CANNOT_OPEN');
    expect(error.message).toMatch(/Cannot open database/);
    expect(fs.existsSync(path.join(dir, 'no'))).toBe(false);
  });
});

describe('after close → ENGINE_CLOSED', () => {
  it('every method refuses, and the file is unchanged', async () => {
    await engine.close();
    await engine.close(); // closing twice is harmless
    const dump = await dumpFile(file, ORDER_IDS);
    const methods: Record<string, () => Promise<unknown>> = {
      trackOrders: () => engine.trackOrders([{ orderId: 9, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED' }]),
      observe: () => engine.observe({ orderId: 1, status: 'CANCELLED', substatus: 'SHOP_FAILED', observedAt: T0 + 9_000 }),
      requestChange: () => engine.requestChange({ orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }),
      requestChanges: () => engine.requestChanges([{ orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }]),
      explain: () => engine.explain(1, { status: 'CANCELLED', substatus: 'SHOP_FAILED' }),
      getOrder: () => engine.getOrder(1),
      findOrder: () => engine.findOrder(1),
      history: () => engine.history(1),
      timers: () => engine.timers(),
      pendingChanges: () => engine.pendingChanges(),
      settledChanges: () => engine.settledChanges({ state: 'accepted', since: T0 }),
      summary: () => engine.summary(),
      transitionCounts: () => engine.transitionCounts(),
      stats: () => engine.stats(),
    };
    for (const [name, run] of Object.entries(methods)) {
      const error = await thrownYmError(run);
      expect(error.code, name).toBe('ENGINE_CLOSED');
      expect(error.message).toMatch(/closed; create a new one/);
    }
    expect(await dumpFile(file, ORDER_IDS)).toEqual(dump);
  });
});

describe('campaign configuration that contradicts the stored orders', () => {
  it('refuses a model change for a campaign with orders (CAMPAIGN_CONFLICT) and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ym-conflict-'));
    const db = join(dir, 'orders.db');
    const first = await createEngine({ db, campaigns: [{ campaignId: 5, businessId: 50, model: 'FBS' }] });
    await first.trackOrders([{ orderId: 1, campaignId: 5, status: 'PROCESSING', substatus: 'STARTED', observedAt: 1 }]);
    await first.close();
    const error = await thrownYmError(() => createEngine({ db, campaigns: [{ campaignId: 5, businessId: 50, model: 'DBS' }] }));
    expect(error).toMatchObject({ code: 'CAMPAIGN_CONFLICT', details: { campaignId: 5, field: 'model', stored: 'FBS', given: 'DBS', orders: 1 } });
    const again = await createEngine({ db });
    expect(again.campaigns.get(5)?.model).toBe('FBS');
    expect((await again.getOrder(1)).model).toBe('FBS');
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets a campaign without orders be reconfigured', async () => {
    const engine = await createEngine({ db: ':memory:', campaigns: [{ campaignId: 6, businessId: 60, model: 'FBS' }] });
    const store = engine.store;
    const again = await createEngine({ db: store, campaigns: [{ campaignId: 6, businessId: 61, model: 'EXPRESS' }] });
    expect(again.campaigns.get(6)).toEqual({ campaignId: 6, businessId: 61, model: 'EXPRESS' });
    await engine.close();
  });
});

describe('inputs outside the declared types get INVALID_COMMAND, not a TypeError', () => {
  it.each([
    ['trackOrders(non-array)', (e: Engine) => e.trackOrders({} as never)],
    ['requestChanges(non-iterable)', (e: Engine) => e.requestChanges(42 as never)],
    ['getOrder(undefined)', (e: Engine) => e.getOrder(undefined as never)],
    ['findOrder(object)', (e: Engine) => e.findOrder({} as never)],
    ['history(huge)', (e: Engine) => e.history(2 ** 80)],
    ['explain(id, object status)', (e: Engine) => e.explain(1, { status: {} as never })],
  ])('%s', async (_name, call) => {
    const engine = await createEngine({ db: ':memory:', campaigns: [{ campaignId: 1, businessId: 1, model: 'FBS' }] });
    await expect(call(engine)).rejects.toThrow(expect.objectContaining({ code: 'INVALID_COMMAND' }));
    await engine.close();
  });

  it('createEngine with campaigns that are not a list', async () => {
    await expect(createEngine({ db: ':memory:', campaigns: 'FBS' as never })).rejects.toThrow(expect.objectContaining({ code: 'INVALID_COMMAND' }));
  });
});

describe('the API key never reaches an INVALID_COMMAND, wherever a caller puts it by mistake', () => {
  // zod names unknown keys in its messages; an engine with `api` redacts its key from them.
  const KEY = 'y0_AgAAAAB-secret-key-bad-input-0987654321';
  const request = { orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' } as const;
  const observation = { orderId: 2, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', observedAt: T0 + 5_000 };
  const track = { orderId: 3, campaignId: 10, status: 'PROCESSING', substatus: 'STARTED' };

  function expectNoKey(error: unknown): void {
    expect(error).toBeInstanceOf(InvalidCommandError);
    const e = error as InvalidCommandError;
    expect(e.message).not.toContain(KEY);
    expect(JSON.stringify(e)).not.toContain(KEY);
    expect(inspect(e, { depth: 20, showHidden: true })).not.toContain(KEY);
    expect(String(e.stack)).not.toContain(KEY);
  }

  const cases: { name: string; run: (e: Engine) => Promise<unknown>; shows: RegExp }[] = [
    { name: 'requestChange: the key as a field name', run: (e) => e.requestChange({ ...request, [KEY]: true } as never), shows: /Unrecognized key: "\[REDACTED\]"/ },
    { name: 'requestChange: the key as an unknown field', run: (e) => e.requestChange({ ...request, apiKey: KEY } as never), shows: /Unrecognized key: "apiKey"/ },
    { name: 'requestChange: the key as every value', run: (e) => e.requestChange({ orderId: KEY as never, status: KEY as never, substatus: KEY as never }), shows: /orderId: .*status: .*substatus: / },
    { name: 'requestChange: the key in call evidence', run: (e) => e.requestChange({ ...request, callEvidence: { [KEY]: KEY } as never }), shows: /callEvidence/ },
    { name: 'requestChanges, atomic', run: (e) => e.requestChanges([request, { ...request, [KEY]: 1 } as never], { atomic: true }), shows: /\[REDACTED\]/ },
    { name: 'observe: the key as a field name', run: (e) => e.observe({ ...observation, [KEY]: KEY } as never), shows: /Unrecognized key: "\[REDACTED\]"/ },
    { name: 'trackOrders: the key as a field name', run: (e) => e.trackOrders([track, { ...track, orderId: 4, [KEY]: 1 } as never]), shows: /^Invalid order #2: Unrecognized key: "\[REDACTED\]"$/ },
    { name: 'explain: the key as a field name', run: (e) => e.explain(1, { status: 'CANCELLED', [KEY]: 1 } as never), shows: /Unrecognized key: "\[REDACTED\]"/ },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const keyed = await openEngine(file, clock, { api: { baseUrl: 'http://127.0.0.1:9', apiKey: KEY } });
      try {
        const before = await dumpFile(file, ORDER_IDS);
        const error = await thrownYmError(() => c.run(keyed));
        expect(error.code).toBe('INVALID_COMMAND');
        expect(error.message).toMatch(c.shows);
        expectNoKey(error);
        expect(await dumpFile(file, ORDER_IDS)).toEqual(before);
      } finally {
        await keyed.close();
      }
    });
  }

  it('requestChanges, partial: each refusal comes back without the key, the good ones are queued', async () => {
    const keyed = await openEngine(file, clock, { api: { baseUrl: 'http://127.0.0.1:9', apiKey: KEY } });
    try {
      const result = await keyed.requestChanges([{ ...request, [KEY]: 1 } as never, { orderId: KEY as never, status: 'DELIVERED' }, request]);
      expect(result.queued.map((s) => s.orderId)).toEqual([2]);
      expect(result.refused.map((r) => [r.orderId, r.error.code])).toEqual([
        [2, 'INVALID_COMMAND'],
        [undefined, 'INVALID_COMMAND'],
      ]);
      for (const r of result.refused) expectNoKey(r.error);
      expect(result.refused[0]!.error.message).toMatch(/Unrecognized key: "\[REDACTED\]"/);
    } finally {
      await keyed.close();
    }
  });

  it('createEngine: the key as a field name of an option (INVALID_OPTION)', async () => {
    const before = await dumpFile(file, ORDER_IDS);
    const error = await thrownYmError(() => openEngine(file, clock, { api: { baseUrl: 'http://127.0.0.1:9', apiKey: KEY }, retry: { [KEY]: 1 } as never }));
    expect(error.code).toBe('INVALID_OPTION');
    expect(error.message).toMatch(/retry: Unrecognized key: "\[REDACTED\]"/);
    expect(error.message).not.toContain(KEY);
    expect(JSON.stringify(error)).not.toContain(KEY);
    expect(inspect(error, { depth: 20, showHidden: true })).not.toContain(KEY);
    expect(await dumpFile(file, ORDER_IDS)).toEqual(before);
  });

  it('createEngine: the key as a field name of a campaign', async () => {
    const before = await dumpFile(file, ORDER_IDS);
    const error = await thrownYmError(() =>
      openEngine(file, clock, {
        api: { baseUrl: 'http://127.0.0.1:9', apiKey: KEY },
        campaigns: [{ campaignId: 10, businessId: 1, model: 'FBS', [KEY]: 'FBS' } as never],
      }),
    );
    expect(error.code).toBe('INVALID_COMMAND');
    expect(error.message).toMatch(/^Invalid campaign: Unrecognized key: "\[REDACTED\]"$/);
    expectNoKey(error);
    expect(await dumpFile(file, ORDER_IDS)).toEqual(before);
  });
});
