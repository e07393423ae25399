// The engine as a user drives it (issue #3): tracking, observing, requesting changes, bulk
// requests, history, optimistic concurrency and persistence across reopen, on real SQLite
// files in a temp dir and on `:memory:`. Every "nothing written" claim is checked by a dump
// through the store port (issue #10: engine tests know no SQL).

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ORDER_MACHINE_VERSION } from '../machines/order-machine.js';
import { createEngine, type Engine } from '../src/engine/engine.js';
import type { RequestChangeCommand } from '../src/engine/commands.js';
import { ChangeRefusedError, ConcurrentUpdateError } from '../src/engine/errors.js';
import { DEFAULT_DB_PATH } from '../src/store/index.js';
import type { OutboxRow } from '../src/store/outbox.js';
import { YmOrdersError } from '../src/errors.js';
import {
  CAMPAIGNS,
  checkInvariants,
  dumpViaPort,
  FakeClock,
  makeTempDir,
  openEngine,
  removeDir,
  T0,
} from './helpers/engine-fixtures.js';

const FBS = 10;
const DBS = 20;
const LAAS = 30;

let dir: string;
let clock: FakeClock;
const engines: Engine[] = [];

async function open(db: string = path.join(dir, 'orders.db')): Promise<Engine> {
  const engine = await openEngine(db, clock);
  engines.push(engine);
  return engine;
}

/** Every outbox row, by id, read through the port. */
async function outbox(engine: Engine): Promise<OutboxRow[]> {
  return [...(await dumpViaPort(engine, [])).outbox];
}

async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to reject');
}

beforeEach(() => {
  dir = makeTempDir('ym-orders-engine-');
  clock = new FakeClock();
});

afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  removeDir(dir);
});

describe('trackOrders', () => {
  it('counts created, updated and unchanged orders', async () => {
    const engine = await open();
    const orders = [
      { orderId: 1, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
      { orderId: 2, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
      { orderId: 3, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 },
    ];
    expect(await engine.trackOrders(orders)).toEqual({ created: 3, updated: 0, unchanged: 0 });
    // The same file again: nothing new.
    clock.tick();
    expect(await engine.trackOrders(orders)).toEqual({ created: 0, updated: 0, unchanged: 3 });
    // One order moved on at the Market, one new order.
    clock.tick();
    expect(
      await engine.trackOrders([
        ...orders.slice(0, 2),
        { ...orders[2]!, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', observedAt: T0 + 60_000 },
        { orderId: 4, campaignId: LAAS, status: 'RESERVED' },
      ]),
    ).toEqual({ created: 1, updated: 1, unchanged: 2 });
    const dump = await dumpViaPort(engine, [1, 2, 3, 4]);
    expect(dump.orders.map((r) => ({ order_id: r.order_id, status: r.status, substatus: r.substatus, row_version: r.row_version }))).toEqual([
      { order_id: 1, status: 'PROCESSING', substatus: 'STARTED', row_version: 1 },
      { order_id: 2, status: 'PROCESSING', substatus: 'STARTED', row_version: 1 },
      { order_id: 3, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', row_version: 2 },
      { order_id: 4, status: 'RESERVED', substatus: null, row_version: 1 },
    ]);
    // Those four are every order there is.
    expect((await engine.summary()).orders).toBe(4);
    // observedAt defaults to the engine clock.
    expect((await engine.getOrder(4)).observedAt).toBe(clock.now);
    expect(await checkInvariants(engine.store, [1, 2, 3, 4])).toEqual([]);
  });

  it('re-importing with a newer observation observes it; with an older one changes nothing', async () => {
    const engine = await open();
    await engine.trackOrders([{ orderId: 7, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);

    clock.tick();
    expect(
      await engine.trackOrders([{ orderId: 7, campaignId: FBS, status: 'PROCESSING', substatus: 'SHIPPED', observedAt: T0 + 10_000 }]),
    ).toEqual({ created: 0, updated: 1, unchanged: 0 });
    const newer = await engine.getOrder(7);
    expect(newer).toMatchObject({ status: 'PROCESSING', substatus: 'SHIPPED', marketState: 'PROCESSING.SHIPPED', observedAt: T0 + 10_000, rowVersion: 2 });
    expect((await engine.history(7)).at(-1)).toMatchObject({ event_type: 'MARKET.OBSERVED', source: 'import', to_substatus: 'SHIPPED' });

    const before = await dumpViaPort(engine, [7]);
    clock.tick();
    expect(
      await engine.trackOrders([{ orderId: 7, campaignId: FBS, status: 'CANCELLED', substatus: 'SHOP_FAILED', observedAt: T0 + 5_000 }]),
    ).toEqual({ created: 0, updated: 0, unchanged: 1 });
    expect(await engine.getOrder(7)).toEqual(newer);
    expect(await dumpViaPort(engine, [7])).toEqual(before);
  });
});

describe('requestChange', () => {
  it('queues an outbox row with the deterministic idempotency key', async () => {
    const engine = await open();
    await engine.trackOrders([{ orderId: 11, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);
    clock.tick();
    const state = await engine.requestChange({ orderId: 11, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    expect(state).toMatchObject({ change: 'queued', rowVersion: 2, pending: { status: 'PROCESSING', substatus: 'READY_TO_SHIP', requestNo: 1 } });

    const journal = (await engine.history(11)).filter((r) => r.event_type === 'SELLER.REQUEST');
    expect(journal).toHaveLength(1);
    const pick = ({ idempotency_key, order_id, campaign_id, request_no, status, substatus, state, attempts, next_attempt_at, journal_seq }: OutboxRow) =>
      ({ idempotency_key, order_id, campaign_id, request_no, status, substatus, state, attempts, next_attempt_at, journal_seq });
    expect((await outbox(engine)).map(pick)).toEqual([
      {
        idempotency_key: `11:PROCESSING/READY_TO_SHIP:m${ORDER_MACHINE_VERSION}:r1`,
        order_id: 11,
        campaign_id: FBS,
        request_no: 1,
        status: 'PROCESSING',
        substatus: 'READY_TO_SHIP',
        state: 'queued',
        attempts: 0,
        next_attempt_at: clock.now,
        journal_seq: journal[0]!.seq,
      },
    ]);

    // Settle it; the next request of the same order is r2 with its own key.
    await engine.store.transaction(async (tx) => {
      await engine.orders.apply(tx, 11, { type: 'DISPATCH.SENT', at: clock.tick() }, clock.now);
      await engine.orders.apply(tx, 11, { type: 'DISPATCH.ACCEPTED', at: clock.tick() }, clock.now);
    });
    clock.tick();
    await engine.requestChange({ orderId: 11, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    expect((await outbox(engine)).map((r) => ({ idempotency_key: r.idempotency_key, state: r.state, attempts: r.attempts }))).toEqual([
      { idempotency_key: `11:PROCESSING/READY_TO_SHIP:m${ORDER_MACHINE_VERSION}:r1`, state: 'accepted', attempts: 1 },
      { idempotency_key: `11:CANCELLED/SHOP_FAILED:m${ORDER_MACHINE_VERSION}:r2`, state: 'queued', attempts: 0 },
    ]);
    expect((await engine.pendingChanges()).map((r) => r.idempotency_key)).toEqual([`11:CANCELLED/SHOP_FAILED:m${ORDER_MACHINE_VERSION}:r2`]);
    expect(await checkInvariants(engine.store, [11])).toEqual([]);
  });

  it('refuses an illegal change with CHANGE_REFUSED, blockers and allowed targets, and writes nothing', async () => {
    const engine = await open();
    await engine.trackOrders([{ orderId: 12, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);
    const before = await dumpViaPort(engine, [12]);
    const counts = async () => {
      const dump = await dumpViaPort(engine, [12]);
      return { rv: dump.orders[0]?.row_version, journal: dump.journal.length, outbox: dump.outbox.length };
    };
    const countsBefore = await counts();
    clock.tick();

    const error = await thrown(() => engine.requestChange({ orderId: 12, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' }));
    expect(error).toBeInstanceOf(ChangeRefusedError);
    expect(error).toBeInstanceOf(YmOrdersError);
    const refused = error as ChangeRefusedError;
    expect(refused.code).toBe('CHANGE_REFUSED');
    expect(refused.blockers.map((b) => b.code)).toEqual(['FORBIDDEN_FOR_MODEL']);
    expect(refused.allowedTargets).toEqual(
      expect.arrayContaining([
        { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
        { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
      ]),
    );
    expect(refused.message).toMatch(/Allowed from here: .*PROCESSING\/READY_TO_SHIP/);
    expect(refused.toJSON()).toMatchObject({ code: 'CHANGE_REFUSED', orderId: 12 });

    expect(await counts()).toEqual(countsBefore);
    expect(countsBefore).toEqual({ rv: 1, journal: 1, outbox: 0 });
    expect(await dumpViaPort(engine, [12])).toEqual(before);
  });

  it('refuses a second change while one is pending (CHANGE_PENDING) and writes nothing', async () => {
    const engine = await open();
    await engine.trackOrders([{ orderId: 13, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);
    await engine.requestChange({ orderId: 13, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    const before = await dumpViaPort(engine, [13]);
    const error = (await thrown(() => engine.requestChange({ orderId: 13, status: 'CANCELLED', substatus: 'SHOP_FAILED' }))) as ChangeRefusedError;
    expect(error.code).toBe('CHANGE_REFUSED');
    expect(error.blockers.map((b) => b.code)).toContain('CHANGE_PENDING');
    expect(await dumpViaPort(engine, [13])).toEqual(before);
  });
});

describe('requestChanges', () => {
  const ids = [21, 22, 23, 24, 999];

  async function setup(engine: Engine): Promise<void> {
    await engine.trackOrders([
      { orderId: 21, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
      { orderId: 22, campaignId: FBS, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', observedAt: T0 },
      { orderId: 23, campaignId: DBS, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: T0 },
      { orderId: 24, campaignId: LAAS, status: 'RESERVED', observedAt: T0 },
    ]);
    clock.tick();
  }

  const batch: RequestChangeCommand[] = [
    { orderId: 21, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
    { orderId: 22, status: 'CANCELLED', substatus: 'SHOP_FAILED' }, // terminal: refused
    { orderId: 23, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: '2025-05-11' },
    { orderId: 999, status: 'CANCELLED', substatus: 'SHOP_FAILED' }, // not tracked
    { orderId: 24, status: 'PROCESSING', substatus: 'STARTED' },
  ];

  it('queues the legal ones in one transaction and reports each refusal per order', async () => {
    const engine = await open();
    await setup(engine);
    const before22 = (await dumpViaPort(engine, ids)).orders.find((r) => r.order_id === 22);
    expect(before22).toBeDefined();

    const result = await engine.requestChanges(batch);
    expect(result.queued.map((s) => [s.orderId, s.change, s.pending?.status])).toEqual([
      [21, 'queued', 'PROCESSING'],
      [23, 'queued', 'DELIVERED'],
      [24, 'queued', 'PROCESSING'],
    ]);
    expect(result.refused.map((r) => [r.orderId, r.error.code])).toEqual([
      [22, 'CHANGE_REFUSED'],
      [999, 'ORDER_NOT_FOUND'],
    ]);
    expect((result.refused[0]!.error as ChangeRefusedError).blockers.map((b) => b.code)).toEqual(['TERMINAL_STATE']);

    const after = await dumpViaPort(engine, ids);
    expect(
      [...after.outbox]
        .sort((a, b) => a.order_id - b.order_id)
        .map((r) => ({ order_id: r.order_id, idempotency_key: r.idempotency_key, real_delivery_date: r.real_delivery_date })),
    ).toEqual([
      { order_id: 21, idempotency_key: `21:PROCESSING/READY_TO_SHIP:m${ORDER_MACHINE_VERSION}:r1`, real_delivery_date: null },
      { order_id: 23, idempotency_key: `23:DELIVERED/DELIVERY_SERVICE_DELIVERED:m${ORDER_MACHINE_VERSION}:r1`, real_delivery_date: '2025-05-11' },
      { order_id: 24, idempotency_key: `24:PROCESSING/STARTED:m${ORDER_MACHINE_VERSION}:r1`, real_delivery_date: null },
    ]);
    expect(after.orders.find((r) => r.order_id === 22)).toEqual(before22);
    expect(after.journal.filter((r) => r.order_id === 22 || r.order_id === 999)).toHaveLength(1);
    expect(await checkInvariants(engine.store, ids)).toEqual([]);
  });

  it('with {atomic: true} throws the first refusal and writes nothing at all', async () => {
    const engine = await open();
    await setup(engine);
    const before = await dumpViaPort(engine, ids);
    const error = await thrown(() => engine.requestChanges(batch, { atomic: true }));
    expect(error).toBeInstanceOf(ChangeRefusedError);
    expect((error as ChangeRefusedError).orderId).toBe(22);
    // Order 21's change came first and was legal: it was rolled back with the rest.
    expect(await dumpViaPort(engine, ids)).toEqual(before);
    expect((await engine.getOrder(21)).change).toBe('idle');

    // The same batch without the bad ones goes through atomically.
    const ok = await engine.requestChanges([batch[0]!, batch[2]!], { atomic: true });
    expect(ok.refused).toEqual([]);
    expect(ok.queued).toHaveLength(2);
  });
});

describe('history', () => {
  it('returns the journal in order: from, to, event and source of every change', async () => {
    const engine = await open();
    await engine.trackOrders([{ orderId: 31, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);
    clock.tick();
    await engine.requestChange({ orderId: 31, status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    await engine.store.transaction((tx) => engine.orders.apply(tx, 31, { type: 'DISPATCH.SENT', at: clock.tick() }, clock.now));
    await engine.store.transaction((tx) => engine.orders.apply(tx, 31, { type: 'DISPATCH.ACCEPTED', at: clock.tick() }, clock.now));
    clock.tick();
    await engine.observe({ orderId: 31, status: 'PROCESSING', substatus: 'SHIPPED', observedAt: clock.now, source: 'notification' });
    // An observation that changes nothing leaves no journal row.
    await engine.observe({ orderId: 31, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 });

    const rows = await engine.history(31);
    expect(rows.map((r) => [r.row_version, r.event_type, r.source, r.from_status && `${r.from_status}/${r.from_substatus}`, r.from_change, `${r.to_status}/${r.to_substatus}`, r.to_change])).toEqual([
      [1, 'TRACK', 'import', null, null, 'PROCESSING/STARTED', 'idle'],
      [2, 'SELLER.REQUEST', 'seller', 'PROCESSING/STARTED', 'idle', 'PROCESSING/STARTED', 'queued'],
      [3, 'DISPATCH.SENT', 'dispatcher', 'PROCESSING/STARTED', 'queued', 'PROCESSING/STARTED', 'sending'],
      [4, 'DISPATCH.ACCEPTED', 'dispatcher', 'PROCESSING/STARTED', 'sending', 'PROCESSING/READY_TO_SHIP', 'idle'],
      [5, 'MARKET.OBSERVED', 'notification', 'PROCESSING/READY_TO_SHIP', 'idle', 'PROCESSING/SHIPPED', 'idle'],
    ]);
    expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((a, b) => a - b));
    expect(rows.map((r) => (JSON.parse(r.event) as { type: string }).type)).toEqual(rows.map((r) => r.event_type));
    expect(rows[1]!.at).toBe(T0 + 1_000);
    expect(await engine.getOrder(31)).toMatchObject({ rowVersion: 5, lastOutcome: { kind: 'accepted', requestNo: 1 } });
  });
});

describe('persistence', () => {
  it('getOrder and history after reopening the file return the same state', async () => {
    const file = path.join(dir, 'persist.db');
    const engine = await open(file);
    await engine.trackOrders([
      { orderId: 41, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
      { orderId: 42, campaignId: LAAS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 },
      { orderId: 43, campaignId: DBS, status: 'ALIEN_STATUS', substatus: 'ALIEN_SUBSTATUS', observedAt: T0 },
    ]);
    await engine.requestChanges([
      { orderId: 41, status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
      { orderId: 42, status: 'CANCELLED', substatus: 'SHOP_FAILED' },
    ]);
    await engine.store.transaction(async (tx) => {
      await engine.orders.apply(tx, 42, { type: 'DISPATCH.SENT', at: clock.tick() }, clock.now);
      await engine.orders.apply(tx, 42, { type: 'DISPATCH.OPERATION_STARTED', at: clock.tick(), operationId: 'op-42', operationType: 'ORDER_STATUS_UPDATE' }, clock.now);
    });
    const ids = [41, 42, 43];
    const states = await Promise.all(ids.map((id) => engine.getOrder(id)));
    const histories = await Promise.all(ids.map((id) => engine.history(id)));
    const summary = await engine.summary();
    const dump = await dumpViaPort(engine, ids);
    expect(dump.operations.map((o) => o.operation_id)).toEqual(['op-42']);
    expect(states.map((s) => [s.change, s.marketState])).toEqual([
      ['queued', 'PROCESSING.STARTED'],
      ['awaitingOperation', 'PROCESSING.STARTED'],
      ['idle', 'UNRECOGNIZED'],
    ]);
    await engine.close();

    const reopened = await open(file);
    expect(await Promise.all(ids.map((id) => reopened.getOrder(id)))).toEqual(states);
    expect(await Promise.all(ids.map((id) => reopened.history(id)))).toEqual(histories);
    expect(await reopened.summary()).toEqual(summary);
    expect(await dumpViaPort(reopened, ids)).toEqual(dump);
    expect(await reopened.store.read((tx) => tx.operations.get('op-42'))).toMatchObject({ order_id: 42, state: 'inProgress' });
    // And it carries on from where it was.
    await reopened.store.transaction((tx) => reopened.orders.apply(tx, 42, { type: 'DISPATCH.ACCEPTED', at: clock.tick() }, clock.now));
    expect(await reopened.getOrder(42)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED', change: 'idle' });
    expect(await checkInvariants(reopened.store, ids)).toEqual([]);
  });

  it('remembers the campaigns of earlier runs', async () => {
    const file = path.join(dir, 'campaigns.db');
    await (await open(file)).close();
    const later = await createEngine({ db: file, clock: clock.fn });
    engines.push(later);
    expect([...later.campaigns.values()]).toEqual(CAMPAIGNS.slice().sort((a, b) => a.campaignId - b.campaignId));
    expect((await later.trackOrders([{ orderId: 51, campaignId: DBS, status: 'PROCESSING', substatus: 'STARTED' }])).created).toBe(1);
  });
});

describe('expectedRowVersion', () => {
  it('a stale row version is refused with CONCURRENT_UPDATE and writes nothing; the current one is accepted', async () => {
    const engine = await open();
    await engine.trackOrders([{ orderId: 61, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);
    const read = await engine.getOrder(61);
    await engine.observe({ orderId: 61, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 + 1 }); // someone else's write
    const before = await dumpViaPort(engine, [61]);

    const error = await thrown(() =>
      engine.requestChange({ orderId: 61, status: 'PROCESSING', substatus: 'READY_TO_SHIP', expectedRowVersion: read.rowVersion }),
    );
    expect(error).toBeInstanceOf(ConcurrentUpdateError);
    expect((error as ConcurrentUpdateError).code).toBe('CONCURRENT_UPDATE');
    expect((error as ConcurrentUpdateError).details).toMatchObject({ expectedRowVersion: 1, actualRowVersion: 2 });
    expect((error as Error).message).toMatch(/read it again and retry/);
    expect(await dumpViaPort(engine, [61])).toEqual(before);

    const fresh = await engine.getOrder(61);
    expect((await engine.requestChange({ orderId: 61, status: 'PROCESSING', substatus: 'READY_TO_SHIP', expectedRowVersion: fresh.rowVersion })).rowVersion).toBe(3);

    // In a batch the stale one is reported, the others go through.
    await engine.trackOrders([{ orderId: 62, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);
    const r = await engine.requestChanges([
      { orderId: 62, status: 'PROCESSING', substatus: 'READY_TO_SHIP', expectedRowVersion: 7 },
    ]);
    expect(r.refused.map((x) => x.error.code)).toEqual(['CONCURRENT_UPDATE']);
    expect((await engine.getOrder(62)).rowVersion).toBe(1);
  });
});

// The SQLite file header (https://sqlite.org/fileformat.html): bytes 18 and 19 are 2 in WAL mode,
// bytes 68..71 the application_id. Read from the bytes, so this suite knows no SQL.
function sqliteHeader(file: string): { wal: boolean; applicationId: number } {
  const header = fs.readFileSync(file).subarray(0, 100);
  return { wal: header[18] === 2 && header[19] === 2, applicationId: header.readUInt32BE(68) };
}

describe('databases', () => {
  for (const kind of [':memory:', 'file'] as const) {
    it(`works on ${kind}`, async () => {
      const file = path.join(dir, 'kind.db');
      const db = kind === 'file' ? file : ':memory:';
      const engine = await open(db);
      await engine.trackOrders([{ orderId: 71, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED', observedAt: T0 }]);
      await engine.requestChange({ orderId: 71, status: 'CANCELLED', substatus: 'SHOP_FAILED' });
      expect(await engine.getOrder(71)).toMatchObject({ change: 'queued', rowVersion: 2 });
      expect(await engine.summary()).toMatchObject({ orders: 1, outbox: { queued: 1 } });
      expect(engine.store.name).toBe(db);
      expect(await checkInvariants(engine.store, [71])).toEqual([]);
      expect(fs.existsSync(file)).toBe(kind === 'file');
      // Closed, the WAL is checkpointed into the file: its header shows WAL mode and our application_id.
      await engine.close();
      if (kind === 'file') expect(sqliteHeader(file)).toEqual({ wal: true, applicationId: 0x594d4f52 });
    });
  }

  it(`uses ${DEFAULT_DB_PATH} in the working directory when db is omitted`, async () => {
    const cwd = process.cwd();
    const existedHere = fs.existsSync(path.join(cwd, 'ym-orders.db'));
    process.chdir(dir);
    try {
      const engine = await createEngine({ campaigns: CAMPAIGNS, clock: clock.fn });
      await engine.trackOrders([{ orderId: 81, campaignId: FBS, status: 'PROCESSING', substatus: 'STARTED' }]);
      await engine.close();
      expect(fs.existsSync(path.join(dir, 'ym-orders.db'))).toBe(true);
      const again = await createEngine({ clock: clock.fn });
      try {
        expect((await again.getOrder(81)).status).toBe('PROCESSING');
      } finally {
        await again.close();
      }
    } finally {
      process.chdir(cwd);
    }
    expect(process.cwd()).toBe(cwd);
    expect(fs.existsSync(path.join(cwd, 'ym-orders.db'))).toBe(existedHere);
  });
});
