// Machine versions (issue #3): rows written by an older order machine keep working. The v1
// snapshots in test/fixtures/order-snapshots-v1.json were written by order machine version 1;
// they go into a real database file as machine_version = 1 rows (written through the store
// port: issue #10, engine tests know no SQL), and the engine must read
// them (upgrading through ORDER_SNAPSHOT_MIGRATIONS when the machine is newer), apply the next
// event, and store the result under the current ORDER_MACHINE_VERSION.

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DBS_CANCELLATION_ANSWER_MS, ORDER_MACHINE_VERSION } from '../machines/order-machine.js';
import type { Engine } from '../src/engine/engine.js';
import { SnapshotTooNewError } from '../src/engine/errors.js';
import {
  loadOrderSnapshot,
  ORDER_SNAPSHOT_MIGRATIONS,
  serializeOrderSnapshot,
  upgradeStoredSnapshot,
  type SnapshotMigration,
  type StoredSnapshot,
} from '../src/engine/order-snapshots.js';
import { YmOrdersError } from '../src/errors.js';
import { SqliteStore } from '../src/store/index.js';
import type { OutboxState } from '../src/store/outbox.js';
import { checkInvariants, dumpViaPort, FakeClock, makeTempDir, openEngine, removeDir, T0 } from './helpers/engine-fixtures.js';

interface V1Snapshot {
  value: { market: string | Record<string, string>; change: string };
  context: {
    orderId: number;
    campaignId: number;
    model: string;
    status: string;
    substatus: string | null;
    observedAt: number;
    pending: { status: string; substatus: string; requestNo: number; operationId?: string } | null;
  };
}

const FIXTURE = JSON.parse(
  fs.readFileSync(new URL('./fixtures/order-snapshots-v1.json', import.meta.url), 'utf8'),
) as { machineVersion: number; snapshots: V1Snapshot[] };

function marketPath(value: V1Snapshot['value']): string {
  return typeof value.market === 'string' ? value.market : Object.entries(value.market).map(([p, c]) => `${p}.${c}`)[0]!;
}

const IDS = [501, 502, 503];

/**
 * Writes the v1 snapshots as rows the v1 engine would have left: order, journal and open outbox
 * rows, through the store port on a connection of their own (as that older process would).
 */
async function insertV1Rows(file: string, snapshots: readonly V1Snapshot[], machineVersion = 1): Promise<void> {
  const store = SqliteStore.open(file, { now: T0 });
  try {
    await store.transaction(async (tx) => {
      for (const snap of snapshots) {
        const c = snap.context;
        await tx.orders.insert({
          order_id: c.orderId,
          campaign_id: c.campaignId,
          model: c.model,
          status: c.status,
          substatus: c.substatus,
          change_state: snap.value.change,
          observed_at: c.observedAt,
          machine_version: machineVersion,
          snapshot: JSON.stringify(snap),
          updated_at: T0,
        });
        const seq = await tx.journal.append({
          order_id: c.orderId,
          row_version: 1,
          event_type: 'TRACK',
          event: '{"type":"TRACK"}',
          source: 'import',
          from_status: null,
          from_substatus: null,
          from_change: null,
          to_status: c.status,
          to_substatus: c.substatus,
          to_change: snap.value.change,
          at: T0,
        });
        if (c.pending) {
          await tx.outbox.enqueue({
            idempotency_key: `${c.orderId}:${c.pending.status}/${c.pending.substatus}:m${machineVersion}:r${c.pending.requestNo}`,
            order_id: c.orderId,
            campaign_id: c.campaignId,
            request_no: c.pending.requestNo,
            status: c.pending.status,
            substatus: c.pending.substatus,
            real_delivery_date: null,
            next_attempt_at: T0,
            journal_seq: seq,
            now: T0,
          });
          // enqueue writes `queued`; the row follows the snapshot's change state (no send counted).
          if (snap.value.change !== 'queued') await tx.outbox.setState(c.orderId, c.pending.requestNo, snap.value.change as OutboxState, T0);
        }
      }
    });
  } finally {
    await store.close();
  }
}

/** The order row's stored snapshot, parsed. */
async function storedSnapshot(engine: Engine, orderId: number): Promise<unknown> {
  const row = await engine.store.read((tx) => tx.orders.get(orderId));
  return JSON.parse(row!.snapshot);
}

let dir: string;
let file: string;
let clock: FakeClock;
const engines: Engine[] = [];

async function open(): Promise<Engine> {
  const engine = await openEngine(file, clock);
  engines.push(engine);
  return engine;
}

beforeEach(async () => {
  dir = makeTempDir('ym-orders-versions-');
  file = path.join(dir, 'v1.db');
  clock = new FakeClock(T0 + 3_600_000);
  await (await open()).close(); // an empty ym-orders database
});

afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  removeDir(dir);
});

describe('snapshots written by order machine version 1', () => {
  it('the fixture is what it claims to be', () => {
    expect(FIXTURE.machineVersion).toBe(1);
    expect(FIXTURE.snapshots.map((s) => [s.context.orderId, s.context.model, s.value.change])).toEqual([
      [501, 'LAAS', 'awaitingOperation'],
      [502, 'FBS', 'queued'],
      [503, 'DBS', 'idle'],
    ]);
  });

  it('are read back by getOrder as the orders they were', async () => {
    await insertV1Rows(file, FIXTURE.snapshots);
    const engine = await open();
    expect(await checkInvariants(engine.store, IDS)).toEqual([]);
    for (const snap of FIXTURE.snapshots) {
      const c = snap.context;
      const state = await engine.getOrder(c.orderId);
      expect(state).toMatchObject({
        orderId: c.orderId,
        campaignId: c.campaignId,
        model: c.model,
        status: c.status,
        substatus: c.substatus,
        marketState: marketPath(snap.value),
        change: snap.value.change,
        observedAt: c.observedAt,
        rowVersion: 1,
        machineVersion: 1, // reading does not rewrite the row
      });
      if (c.pending) {
        expect(state.pending).toMatchObject({ status: c.pending.status, substatus: c.pending.substatus, requestNo: c.pending.requestNo });
      } else {
        expect(state.pending).toBeNull();
      }
      expect((await engine.explain(c.orderId, { status: 'CANCELLED', substatus: 'SHOP_FAILED' })).allowed).toBe(c.pending === null);
    }
  });

  it('take the next event and are then stored under the current machine version', async () => {
    await insertV1Rows(file, FIXTURE.snapshots);
    const engine = await open();
    const t = clock.now;

    // 502: FBS, queued to READY_TO_SHIP → the dispatcher sends it.
    const sent = await engine.store.transaction((tx) => engine.orders.apply(tx, 502, { type: 'DISPATCH.SENT', at: t }, t));
    expect(sent.changed).toBe(true);
    expect(sent.state).toMatchObject({ change: 'sending', rowVersion: 2, machineVersion: ORDER_MACHINE_VERSION, pending: { requestNo: 1, sends: 1 } });

    // 501: LaaS cancellation awaiting operation op-501 → the operation completed.
    const accepted = await engine.store.transaction((tx) => engine.orders.apply(tx, 501, { type: 'DISPATCH.ACCEPTED', at: t }, t));
    expect(accepted.state).toMatchObject({
      status: 'CANCELLED',
      substatus: 'SHOP_FAILED',
      change: 'idle',
      pending: null,
      lastOutcome: { kind: 'accepted', requestNo: 1 },
      machineVersion: ORDER_MACHINE_VERSION,
    });

    // 503: DBS in DELIVERY, idle → a seller request; its key carries the current machine version.
    const requested = await engine.requestChange({ orderId: 503, status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' });
    expect(requested).toMatchObject({ change: 'queued', rowVersion: 2, machineVersion: ORDER_MACHINE_VERSION, pending: { requestNo: 1 } });

    const dump = await dumpViaPort(engine, IDS);
    expect(dump.orders.map(({ order_id, machine_version, row_version }) => ({ order_id, machine_version, row_version }))).toEqual([
      { order_id: 501, machine_version: ORDER_MACHINE_VERSION, row_version: 2 },
      { order_id: 502, machine_version: ORDER_MACHINE_VERSION, row_version: 2 },
      { order_id: 503, machine_version: ORDER_MACHINE_VERSION, row_version: 2 },
    ]);
    expect([...dump.outbox].sort((a, b) => a.order_id - b.order_id).map(({ idempotency_key, state, attempts }) => ({ idempotency_key, state, attempts }))).toEqual([
      { idempotency_key: '501:CANCELLED/SHOP_FAILED:m1:r1', state: 'accepted', attempts: 0 },
      { idempotency_key: '502:PROCESSING/READY_TO_SHIP:m1:r1', state: 'sending', attempts: 1 },
      { idempotency_key: `503:DELIVERED/DELIVERY_SERVICE_DELIVERED:m${ORDER_MACHINE_VERSION}:r1`, state: 'queued', attempts: 0 },
    ]);
    expect(await checkInvariants(engine.store, IDS)).toEqual([]);

    // The rewritten rows load again after a reopen, and carry on.
    const before = await Promise.all(IDS.map((id) => engine.getOrder(id)));
    await engine.close();
    const again = await open();
    expect(await Promise.all(IDS.map((id) => again.getOrder(id)))).toEqual(before);
    const done = await again.store.transaction((tx) => again.orders.apply(tx, 502, { type: 'DISPATCH.ACCEPTED', at: t + 1 }, t + 1));
    expect(done.state).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP', change: 'idle' });
    expect(await checkInvariants(again.store, IDS)).toEqual([]);
  });

  it('a row written by a newer machine than this code is refused with SNAPSHOT_TOO_NEW and left alone', async () => {
    await insertV1Rows(file, FIXTURE.snapshots.slice(1, 2), ORDER_MACHINE_VERSION + 1);
    const engine = await open();
    const before = await dumpViaPort(engine, IDS);
    for (const attempt of [
      () => engine.getOrder(502),
      () => engine.requestChange({ orderId: 502, status: 'CANCELLED', substatus: 'SHOP_FAILED' }),
      () => engine.store.transaction((tx) => engine.orders.apply(tx, 502, { type: 'DISPATCH.SENT', at: clock.now }, clock.now)),
      () => engine.observe({ orderId: 502, status: 'PROCESSING', substatus: 'SHIPPED', observedAt: clock.now }),
    ]) {
      let error: unknown;
      try {
        await attempt();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SnapshotTooNewError);
      expect(error).toBeInstanceOf(YmOrdersError);
      expect((error as SnapshotTooNewError).code).toBe('SNAPSHOT_TOO_NEW');
      expect((error as Error).message).toMatch(/Upgrade ym-orders/);
    }
    expect(await dumpViaPort(engine, IDS)).toEqual(before);
  });
});

// The shipped migrations on the real v1 fixtures, compared whole: every field of the upgraded
// snapshot is written out here, so a migration that does nothing, drops a field, or guesses a
// state (e.g. a cancellation `requested` no v1 order can have been in) fails. Then each order
// takes a real event: a v1 order must behave as an order of today's machine in that state.
describe('the shipped migrations on the v1 fixtures', () => {
  // What the fixtures must become under machine version 5; a version 6 adds its step here.
  const MIGRATED: Record<number, StoredSnapshot> = {
    501: {
      status: 'active',
      value: { market: { PROCESSING: 'STARTED' }, change: 'awaitingOperation', cancellation: 'none' },
      historyValue: {},
      context: {
        orderId: 501,
        campaignId: 30,
        model: 'LAAS',
        status: 'PROCESSING',
        substatus: 'STARTED',
        observedAt: 1_700_000_000_000,
        observedSource: 'import',
        pending: {
          status: 'CANCELLED',
          substatus: 'SHOP_FAILED',
          requestNo: 1,
          requestedAt: 1_700_000_001_000,
          sends: 1,
          async: true,
          sentAt: 1_700_000_002_000,
          operationId: 'op-501',
          // v1 started operations only for LaaS status updates.
          operationType: 'ORDER_STATUS_UPDATE',
        },
        lastOutcome: null,
        lastRefusal: null,
        requestCount: 1,
        maxSends: 3,
        cancellationRequestedAt: null,
        asyncSettleMs: 60_000,
        cancellationAnswer: null,
        lastCancellationAnswer: null,
        lastAnswerRefusal: null,
        chain: null,
      },
      children: {},
    },
    502: {
      status: 'active',
      value: { market: { PROCESSING: 'STARTED' }, change: 'queued', cancellation: 'none' },
      historyValue: {},
      context: {
        orderId: 502,
        campaignId: 10,
        model: 'FBS',
        status: 'PROCESSING',
        substatus: 'STARTED',
        observedAt: 1_700_000_000_000,
        observedSource: 'import',
        pending: { status: 'PROCESSING', substatus: 'READY_TO_SHIP', requestNo: 1, requestedAt: 1_700_000_001_000, sends: 0, async: false },
        lastOutcome: null,
        lastRefusal: null,
        requestCount: 1,
        maxSends: 3,
        cancellationRequestedAt: null,
        asyncSettleMs: 60_000,
        cancellationAnswer: null,
        lastCancellationAnswer: null,
        lastAnswerRefusal: null,
        chain: null,
      },
      children: {},
    },
    503: {
      status: 'active',
      value: { market: 'DELIVERY', change: 'idle', cancellation: 'none' },
      historyValue: {},
      context: {
        orderId: 503,
        campaignId: 20,
        model: 'DBS',
        status: 'DELIVERY',
        substatus: 'DELIVERY_SERVICE_RECEIVED',
        observedAt: 1_700_000_000_000,
        observedSource: 'import',
        pending: null,
        lastOutcome: null,
        lastRefusal: null,
        requestCount: 0,
        maxSends: 3,
        cancellationRequestedAt: null,
        asyncSettleMs: 60_000,
        cancellationAnswer: null,
        lastCancellationAnswer: null,
        lastAnswerRefusal: null,
        chain: null,
      },
      children: {},
    },
  };

  const fixture = (orderId: number): StoredSnapshot =>
    JSON.parse(JSON.stringify(FIXTURE.snapshots.find((s) => s.context.orderId === orderId))) as StoredSnapshot;

  it('upgrade each v1 snapshot to exactly the expected v5 snapshot, v1 → v2 → v3 → v4 → v5', () => {
    expect(ORDER_MACHINE_VERSION).toBe(5);
    for (const orderId of [501, 502, 503]) {
      expect(upgradeStoredSnapshot(fixture(orderId), 1, orderId)).toStrictEqual(MIGRATED[orderId]);
      // v4 → v5 on its own: the v4 form is v5 without the chain.
      const { chain: _c, ...v4context } = MIGRATED[orderId]!.context;
      expect(upgradeStoredSnapshot({ ...MIGRATED[orderId]!, context: v4context }, 4, orderId)).toStrictEqual(MIGRATED[orderId]);
      // v3 → v5: the v3 form is v4 without the answer's fields.
      const { cancellationAnswer: _a, lastCancellationAnswer: _l, lastAnswerRefusal: _r, ...v3context } = v4context;
      expect(upgradeStoredSnapshot({ ...MIGRATED[orderId]!, context: v3context }, 3, orderId)).toStrictEqual(MIGRATED[orderId]);
      // v2 → v5: the v2 form is the v3 one without asyncSettleMs.
      const { asyncSettleMs: _added, ...v2context } = v3context;
      expect(upgradeStoredSnapshot({ ...MIGRATED[orderId]!, context: v2context }, 2, orderId)).toStrictEqual(MIGRATED[orderId]);
    }
  });

  it('v3 → v4: an open request (v3 `requested`, a leaf) becomes requested.unanswered, and the engine answers it', async () => {
    const v3: StoredSnapshot = {
      ...MIGRATED[503]!,
      value: { market: 'DELIVERY', change: 'idle', cancellation: 'requested' },
      context: (({ cancellationAnswer: _a, lastCancellationAnswer: _l, lastAnswerRefusal: _r, chain: _c, ...c }) => ({ ...c, cancellationRequestedAt: 1_700_000_000_000 }))(MIGRATED[503]!.context),
    };
    const up = upgradeStoredSnapshot(JSON.parse(JSON.stringify(v3)) as StoredSnapshot, 3, 503);
    expect(up.value).toStrictEqual({ market: 'DELIVERY', change: 'idle', cancellation: { requested: 'unanswered' } });
    expect(up.context).toMatchObject({ cancellationRequestedAt: 1_700_000_000_000, cancellationAnswer: null, lastCancellationAnswer: null, lastAnswerRefusal: null });
    // Through the engine: a v3 row with an open request takes an answer, queued under version 4.
    await insertV1Rows(file, [v3 as unknown as V1Snapshot], 3);
    const engine = await open();
    expect(await engine.getOrder(503)).toMatchObject({ cancellation: 'unanswered', cancellationRequestedAt: 1_700_000_000_000, machineVersion: 3 });
    const answered = await engine.answerCancellation(503, { accepted: true });
    expect(answered).toMatchObject({ cancellation: 'queued', cancellationAnswer: { accepted: true, requestNo: 1 }, machineVersion: ORDER_MACHINE_VERSION });
    expect((await engine.pendingChanges()).map((r) => [r.idempotency_key, r.kind, r.payload])).toEqual([
      [`503:CANCELLATION_ANSWER/ACCEPTED:m${ORDER_MACHINE_VERSION}:r1`, 'cancellationAnswer', '{"accepted":true}'],
    ]);
  });

  it('the engine loads them whole: snapshot, order state with its pending change, no timers, the outbox untouched', async () => {
    await insertV1Rows(file, FIXTURE.snapshots);
    const engine = await open();
    const outboxBefore = (await dumpViaPort(engine, IDS)).outbox;
    expect(outboxBefore).toHaveLength(2);
    for (const orderId of IDS) {
      const row = await engine.store.read((tx) => tx.orders.get(orderId));
      // Through XState's resolveState and back: nothing is lost or guessed on the way.
      expect(JSON.parse(serializeOrderSnapshot(loadOrderSnapshot(row!.snapshot, 1, orderId)))).toStrictEqual(MIGRATED[orderId]);
    }
    const common = { chain: null, lastOutcome: null, cancellationRequestedAt: null, cancellation: 'none', cancellationAnswer: null, lastCancellationAnswer: null, observedAt: 1_700_000_000_000, rowVersion: 1, machineVersion: 1, updatedAt: T0 };
    expect(await Promise.all(IDS.map((id) => engine.getOrder(id)))).toStrictEqual([
      {
        orderId: 501, campaignId: 30, model: 'LAAS', status: 'PROCESSING', substatus: 'STARTED', marketState: 'PROCESSING.STARTED', change: 'awaitingOperation',
        pending: MIGRATED[501]!.context.pending,
        ...common,
      },
      {
        orderId: 502, campaignId: 10, model: 'FBS', status: 'PROCESSING', substatus: 'STARTED', marketState: 'PROCESSING.STARTED', change: 'queued',
        pending: { status: 'PROCESSING', substatus: 'READY_TO_SHIP', requestNo: 1, requestedAt: 1_700_000_001_000, sends: 0, async: false },
        ...common,
      },
      {
        orderId: 503, campaignId: 20, model: 'DBS', status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', marketState: 'DELIVERY', change: 'idle',
        pending: null,
        ...common,
      },
    ]);
    expect(await engine.timers()).toEqual([]);
    expect((await dumpViaPort(engine, IDS)).outbox).toEqual(outboxBefore);
  });

  it('each takes a real event as an order of the current machine would, and no deadline appears from nowhere', async () => {
    await insertV1Rows(file, FIXTURE.snapshots);
    const engine = await open();
    const t = clock.now;

    // 501 (LaaS, awaiting op-501): a sync shows it not cancelled yet; it keeps waiting on the operation.
    await engine.observe({ orderId: 501, status: 'PROCESSING', substatus: 'STARTED', observedAt: t, source: 'sync' });
    expect(await storedSnapshot(engine, 501)).toStrictEqual({
      ...MIGRATED[501],
      context: { ...MIGRATED[501]!.context, observedAt: t, observedSource: 'sync' },
    });

    // 502 (FBS, queued READY_TO_SHIP): a sync shows it ready to ship; the change settles accepted.
    await engine.observe({ orderId: 502, status: 'PROCESSING', substatus: 'READY_TO_SHIP', observedAt: t, source: 'sync' });
    expect(await storedSnapshot(engine, 502)).toStrictEqual({
      ...MIGRATED[502],
      value: { market: { PROCESSING: 'READY_TO_SHIP' }, change: 'idle', cancellation: 'none' },
      context: {
        ...MIGRATED[502]!.context,
        substatus: 'READY_TO_SHIP',
        observedAt: t,
        observedSource: 'sync',
        pending: null,
        lastOutcome: { kind: 'accepted', status: 'PROCESSING', substatus: 'READY_TO_SHIP', requestNo: 1, at: t },
      },
    });

    // So far no cancellation region moved: no order has a deadline.
    expect(await engine.timers()).toEqual([]);

    // 503 (DBS, in delivery): the buyer asks to cancel; the 48 h answer deadline counts from now.
    await engine.observe({ orderId: 503, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', observedAt: t, source: 'notification', cancelRequested: true });
    expect(await storedSnapshot(engine, 503)).toStrictEqual({
      ...MIGRATED[503],
      value: { market: 'DELIVERY', change: 'idle', cancellation: { requested: 'unanswered' } },
      context: { ...MIGRATED[503]!.context, observedAt: t, observedSource: 'notification', cancellationRequestedAt: t },
    });
    expect(await engine.timers()).toEqual([{ kind: 'dbs.cancellationAnswer', orderId: 503, dueAt: t + DBS_CANCELLATION_ANSWER_MS }]);

    const dump = await dumpViaPort(engine, IDS);
    expect([...dump.outbox].sort((a, b) => a.order_id - b.order_id).map(({ order_id, state }) => ({ order_id, state }))).toEqual([
      { order_id: 501, state: 'awaitingOperation' },
      { order_id: 502, state: 'accepted' },
    ]);
    expect(dump.orders.map(({ order_id, machine_version, row_version }) => ({ order_id, machine_version, row_version }))).toEqual([
      { order_id: 501, machine_version: ORDER_MACHINE_VERSION, row_version: 2 },
      { order_id: 502, machine_version: ORDER_MACHINE_VERSION, row_version: 2 },
      { order_id: 503, machine_version: ORDER_MACHINE_VERSION, row_version: 2 },
    ]);
    expect(await checkInvariants(engine.store, IDS)).toEqual([]);
  });
});

describe('upgradeStoredSnapshot', () => {
  const base = (): StoredSnapshot => JSON.parse(JSON.stringify(FIXTURE.snapshots[1])) as StoredSnapshot;

  function synthetic(log: string[]): SnapshotMigration[] {
    // Deliberately listed out of order: the chain is found by `from`, not by position.
    return [
      {
        from: 2,
        description: 'v2 → v3: rename channel to source',
        migrate: (s) => {
          log.push('2→3');
          const { channel, ...context } = s.context;
          return { ...s, context: { ...context, source: `${String(channel)}-v3` } };
        },
      },
      {
        from: 1,
        description: 'v1 → v2: add channel',
        migrate: (s) => {
          log.push('1→2');
          return { ...s, context: { ...s.context, channel: 'market' } };
        },
      },
    ];
  }

  it('applies v1 → v2 → v3 in order', () => {
    const log: string[] = [];
    const up = upgradeStoredSnapshot(base(), 1, 502, synthetic(log), 3);
    expect(log).toEqual(['1→2', '2→3']);
    expect(up.context).toMatchObject({ orderId: 502, source: 'market-v3' });
    expect(up.context).not.toHaveProperty('channel');
  });

  it('starts from the stored version and leaves a current snapshot untouched', () => {
    const log: string[] = [];
    const v2 = { ...base(), context: { ...base().context, channel: 'notification' } };
    expect(upgradeStoredSnapshot(v2, 2, 502, synthetic(log), 3).context).toMatchObject({ source: 'notification-v3' });
    expect(log).toEqual(['2→3']);
    const v3 = base();
    expect(upgradeStoredSnapshot(v3, 3, 502, synthetic(log), 3)).toBe(v3);
    expect(log).toEqual(['2→3']);
  });

  it('a snapshot newer than the code throws SNAPSHOT_TOO_NEW', () => {
    let error: unknown;
    try {
      upgradeStoredSnapshot(base(), 4, 502, synthetic([]), 3);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SnapshotTooNewError);
    expect(error).toMatchObject({ code: 'SNAPSHOT_TOO_NEW', details: { id: 502, version: 4, supportedVersion: 3 } });
    expect(() => upgradeStoredSnapshot(base(), ORDER_MACHINE_VERSION + 1, 1)).toThrow(SnapshotTooNewError);
  });

  it('a gap in the migration chain is an error, not a silent skip', () => {
    const onlyFirst = synthetic([]).filter((m) => m.from === 1);
    expect(() => upgradeStoredSnapshot(base(), 1, 502, onlyFirst, 3)).toThrow(
      expect.objectContaining({ code: 'SNAPSHOT_MIGRATION_MISSING', message: expect.stringMatching(/machine version 2/) }),
    );
  });

  it('the shipped migrations form a chain from version 1 to ORDER_MACHINE_VERSION', () => {
    const froms = ORDER_SNAPSHOT_MIGRATIONS.map((m) => m.from).sort((a, b) => a - b);
    expect(froms).toEqual(Array.from({ length: ORDER_MACHINE_VERSION - 1 }, (_, i) => i + 1));
    for (const snap of FIXTURE.snapshots) {
      const up = upgradeStoredSnapshot(JSON.parse(JSON.stringify(snap)) as StoredSnapshot, 1, snap.context.orderId);
      expect(up.context).toMatchObject({ orderId: snap.context.orderId, status: snap.context.status });
    }
  });
});
