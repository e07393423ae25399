// Shared fixtures for the durable-engine suites (issue #3, #10): temp databases, a fake clock,
// port dumps for "nothing was written" checks, the store invariants every suite asserts, and
// one command vocabulary (track / observe / request / bulk request / dispatcher event) that the
// property test, the crash worker and the concurrency worker all run. Everything here reads the
// database through the store port (issue #10): no SQL, no driver, so it holds for any adapter.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OrderEvent } from '../../machines/order-machine.js';
import type { KnownOrderStatus, KnownOrderSubstatus } from '../../machines/statuses.js';
import { createEngine, type Engine, type EngineOptions } from '../../src/engine/engine.js';
import type { CampaignConfig } from '../../src/engine/commands.js';
import { syncCursorName } from '../../src/engine/order-sync.js';
import { YmOrdersError } from '../../src/errors.js';
import { SqliteStore } from '../../src/store/index.js';
import type { CampaignRow } from '../../src/store/campaigns.js';
import type { HaltRow } from '../../src/store/halts.js';
import type { JournalRow } from '../../src/store/journal.js';
import type { BudgetRow } from '../../src/store/limiter.js';
import type { OperationRow } from '../../src/store/operations.js';
import type { OrderRow, StatusCount } from '../../src/store/orders.js';
import { OUTBOX_STATES, type OutboxRow, type OutboxState } from '../../src/store/outbox.js';
import type { Store, StoreTx } from '../../src/store/port.js';
import type { TimerRow } from '../../src/store/timers.js';

export const T0 = Date.UTC(2025, 4, 12, 9, 0, 0); // 2025-05-12T09:00:00Z

export const CAMPAIGNS: readonly CampaignConfig[] = [
  { campaignId: 10, businessId: 1, model: 'FBS' },
  { campaignId: 20, businessId: 2, model: 'DBS' },
  { campaignId: 30, businessId: 3, model: 'LAAS' },
  { campaignId: 40, businessId: 1, model: 'EXPRESS' },
];

/** The campaign an order id belongs to in the generated streams (so re-imports agree). */
export function campaignOf(orderId: number): number {
  return CAMPAIGNS[orderId % CAMPAIGNS.length]!.campaignId;
}

/**
 * Runs `fn`, whose promise must reject with one of our typed errors; resolves with it (the test
 * goes on to check it). The engine's API is async: an error thrown synchronously, before a
 * promise exists, is a failure of its own (a caller's `.catch` would miss it).
 */
export async function thrownYmError(fn: () => Promise<unknown>): Promise<YmOrdersError> {
  let promise: Promise<unknown>;
  try {
    promise = fn();
  } catch (error) {
    throw new Error(`expected a rejected promise, but the call threw synchronously: ${String(error)}`, { cause: error });
  }
  try {
    await promise;
  } catch (error) {
    if (error instanceof YmOrdersError) return error;
    throw new Error(`expected a YmOrdersError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected the call to reject with a YmOrdersError');
}

/** A fresh directory under the OS temp dir; remove it with `removeDir`. */
export function makeTempDir(prefix = 'ym-orders-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export class FakeClock {
  now: number;
  constructor(start = T0) {
    this.now = start;
  }
  readonly fn = (): number => this.now;
  tick(ms = 1_000): number {
    this.now += ms;
    return this.now;
  }
}

export function openEngine(db: string, clock: FakeClock, extra: Partial<EngineOptions> = {}): Promise<Engine> {
  return createEngine({ db, campaigns: CAMPAIGNS, clock: clock.fn, ...extra });
}

// ---------------------------------------------------------------------------------------------
// Dumps through the port

/** Everything a dump reads, each list in a stable order; compare two with toEqual. */
export interface Dump {
  readonly orders: readonly OrderRow[];
  readonly journal: readonly JournalRow[];
  readonly ordersByStatus: readonly StatusCount[];
  readonly outbox: readonly OutboxRow[];
  readonly outboxCounts: Record<OutboxState, number>;
  /** An id the journal names but the store lacks shows as `{ operation_id, missing: true }`. */
  readonly operations: readonly (OperationRow | { operation_id: string; missing: true })[];
  readonly operationCounts: Record<string, number>;
  readonly timers: readonly TimerRow[];
  readonly limiter: readonly BudgetRow[];
  readonly cursors: readonly { name: string; value: string | null }[];
  readonly campaigns: readonly CampaignRow[];
  readonly halts: readonly HaltRow[];
  readonly counters: Record<string, number>;
}

/** What a dump reads beyond the store-wide lists: the port finds orders and operations by id only. */
export interface DumpScope {
  /** Operations to read besides those the orders' journals started. */
  readonly operations?: Iterable<string>;
  /** Cursors to read besides every configured business's sync cursor. */
  readonly cursors?: Iterable<string>;
}

// Larger than any suite's outbox: the listings are complete (checked against counts()).
const ALL = 1_000_000;
const SETTLED_STATES = ['accepted', 'rejected', 'superseded'] as const;

/** Every outbox row, by id: the open ones plus every settled one. */
async function allOutboxRows(tx: StoreTx): Promise<OutboxRow[]> {
  const rows = await tx.outbox.open(ALL);
  for (const state of SETTLED_STATES) rows.push(...(await tx.outbox.settledSince(state, Number.MIN_SAFE_INTEGER, ALL)));
  return rows.sort((a, b) => a.id - b.id);
}

/** Operation ids the journal rows name (DISPATCH.OPERATION_STARTED creates the operation row). */
function startedOperations(journal: readonly JournalRow[]): string[] {
  const ids: string[] = [];
  for (const j of journal) {
    if (j.event_type !== 'DISPATCH.OPERATION_STARTED') continue;
    const event = JSON.parse(j.event) as { operationId?: unknown };
    if (typeof event.operationId === 'string') ids.push(event.operationId);
  }
  return ids;
}

/**
 * Everything observable through the store port, in one read: the rows and journals of the given
 * orders, the operations they started, the whole outbox and its counts, orders and operations per
 * state (so an order outside `orderIds` still shows), timers, budgets, cursors, campaigns, halts
 * and counters. Rate-limiter leases are not listable through the port and are left out.
 */
export async function dumpDatabase(store: Store, orderIds: Iterable<number>, scope: DumpScope = {}): Promise<Dump> {
  const ids = [...new Set(orderIds)].sort((a, b) => a - b);
  return store.read(async (tx): Promise<Dump> => {
    const orders: OrderRow[] = [];
    const journal: JournalRow[] = [];
    for (const id of ids) {
      const row = await tx.orders.get(id);
      if (row) orders.push(row);
      journal.push(...(await tx.journal.forOrder(id)));
    }
    journal.sort((a, b) => a.seq - b.seq);
    const operationIds = [...new Set([...startedOperations(journal), ...(scope.operations ?? [])])].sort();
    const operations: Dump['operations'][number][] = [];
    for (const id of operationIds) operations.push((await tx.operations.get(id)) ?? { operation_id: id, missing: true });
    const campaigns = await tx.campaigns.all();
    const cursorNames = [...new Set([...campaigns.map((c) => syncCursorName(c.business_id)), ...(scope.cursors ?? [])])].sort();
    const cursors: { name: string; value: string | null }[] = [];
    for (const name of cursorNames) cursors.push({ name, value: (await tx.cursors.get(name)) ?? null });
    return {
      orders,
      journal,
      ordersByStatus: await tx.orders.countByStatus(),
      outbox: await allOutboxRows(tx),
      outboxCounts: await tx.outbox.counts(),
      operations,
      operationCounts: await tx.operations.counts(),
      timers: await tx.timers.list(undefined, Number.MAX_SAFE_INTEGER),
      limiter: await tx.limiter.all(),
      cursors,
      campaigns,
      halts: await tx.halts.all(),
      counters: await tx.counters.totals(),
    };
  });
}

/** `dumpDatabase` of the engine's store: compare one before and one after to prove nothing changed. */
export function dumpViaPort(engine: { readonly store: Store }, orderIds: Iterable<number>, scope: DumpScope = {}): Promise<Dump> {
  return dumpDatabase(engine.store, orderIds, scope);
}

/** Opens the file as a store of its own (no engine, no campaign check), dumps, closes. */
export async function dumpFile(file: string, orderIds: Iterable<number>, scope: DumpScope = {}): Promise<Dump> {
  const store = SqliteStore.open(file, { busyTimeoutMs: 5_000 });
  try {
    return await dumpDatabase(store, orderIds, scope);
  } finally {
    await store.close();
  }
}

/** The bytes of a file and of its -wal/-shm companions, for "not one byte changed" checks. */
export function fileBytes(file: string): Record<string, string | null> {
  const read = (p: string): string | null => (fs.existsSync(p) ? fs.readFileSync(p).toString('base64') : null);
  return { main: read(file), wal: read(`${file}-wal`), journal: read(`${file}-journal`) };
}

// ---------------------------------------------------------------------------------------------
// Hand-built SQLite files

export type ImageValue = null | number | string;
/** A table of a hand-built SQLite file: its CREATE statement is stored as text, never run here. */
export interface ImageTable {
  readonly name: string;
  readonly sql: string;
  readonly rows?: readonly { readonly rowid: number; readonly values: readonly ImageValue[] }[];
}
const IMAGE_PAGE_BYTES = 4096;

function varint(n: number): number[] {
  // Big-endian groups of 7 bits, the high bit set on every byte but the last (n < 2^56 here).
  const groups: number[] = [];
  do {
    groups.unshift(n % 128);
    n = Math.floor(n / 128);
  } while (n > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g));
}

function record(values: readonly ImageValue[]): number[] {
  const types: number[] = [];
  const body: number[] = [];
  for (const v of values) {
    if (v === null) types.push(0);
    else if (typeof v === 'string') {
      const bytes = [...Buffer.from(v, 'utf8')];
      types.push(bytes.length * 2 + 13);
      body.push(...bytes);
    } else {
      // A 6-byte big-endian integer (serial type 5): enough for epoch ms and versions.
      types.push(5);
      const b = Buffer.alloc(6);
      b.writeIntBE(v, 0, 6);
      body.push(...b);
    }
  }
  const typeBytes = types.flatMap(varint);
  // The header size counts itself (one byte while the header is short).
  return [...varint(typeBytes.length + 1), ...typeBytes, ...body];
}

function leafPage(page: Buffer, headerAt: number, cells: readonly { rowid: number; values: readonly ImageValue[] }[]): void {
  let content = IMAGE_PAGE_BYTES;
  const pointers: number[] = [];
  for (const c of cells) {
    const payload = record(c.values);
    const cell = Buffer.from([...varint(payload.length), ...varint(c.rowid), ...payload]);
    content -= cell.length;
    cell.copy(page, content);
    pointers.push(content);
  }
  // Leaf pages only (no overflow, no interior pages): the files here are a few rows each.
  if (content < headerAt + 8 + 2 * cells.length) throw new Error('sqliteImage: the rows do not fit in one page');
  page[headerAt] = 0x0d; // a leaf page of a table b-tree
  page.writeUInt16BE(0, headerAt + 1); // no freeblock
  page.writeUInt16BE(cells.length, headerAt + 3);
  page.writeUInt16BE(content, headerAt + 5); // IMAGE_PAGE_BYTES when empty
  page[headerAt + 7] = 0;
  pointers.forEach((p, i) => page.writeUInt16BE(p, headerAt + 8 + 2 * i));
}

/**
 * The bytes of an SQLite database file, built by hand from the file format
 * (https://sqlite.org/fileformat2.html): page 1 holds sqlite_master with one row per table, each
 * table one leaf page of its rows. For the files the engine must refuse (another application's,
 * a schema from the future): built without a driver, so the engine suites know no SQL.
 */
export function sqliteImage(options: { applicationId?: number; wal?: boolean; tables?: readonly ImageTable[] }): Buffer {
  const tables = options.tables ?? [];
  const pages = 1 + tables.length;
  const file = Buffer.alloc(IMAGE_PAGE_BYTES * pages);
  file.write('SQLite format 3\u0000', 0, 'latin1');
  file.writeUInt16BE(IMAGE_PAGE_BYTES, 16);
  file[18] = file[19] = options.wal ? 2 : 1;
  file[21] = 64; // 21..23: the payload fractions the format fixes
  file[22] = 32;
  file[23] = 32;
  file.writeUInt32BE(1, 24); // file change counter
  file.writeUInt32BE(pages, 28);
  file.writeUInt32BE(1, 40); // schema cookie
  file.writeUInt32BE(4, 44); // schema format
  file.writeUInt32BE(1, 56); // UTF-8
  file.writeUInt32BE(options.applicationId ?? 0, 68);
  file.writeUInt32BE(1, 92); // version-valid-for: the change counter
  file.writeUInt32BE(3_045_000, 96);
  leafPage(
    file.subarray(0, IMAGE_PAGE_BYTES),
    100,
    tables.map((t, i) => ({ rowid: i + 1, values: ['table', t.name, t.name, i + 2, t.sql] })),
  );
  tables.forEach((t, i) => leafPage(file.subarray(IMAGE_PAGE_BYTES * (i + 1), IMAGE_PAGE_BYTES * (i + 2)), 0, t.rows ?? []));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Invariants

const OPEN_STATES: ReadonlySet<string> = new Set(['queued', 'sending', 'awaitingOperation', 'uncertain']);
const SETTLED: ReadonlySet<string> = new Set(SETTLED_STATES);

/**
 * Everything that must hold in a ym-orders database after any sequence of committed
 * transactions (and so after any crash), read through the port in one consistent view.
 * `orderIds` must include every tracked order (a superset is fine): the port finds orders by
 * id only, so an order missing from it is reported. Returns the violations; [] means consistent.
 */
export async function checkInvariants(store: Store, orderIds: Iterable<number>): Promise<string[]> {
  const ids = [...new Set(orderIds)].sort((a, b) => a - b);
  return store.read(async (tx) => {
    const problems: string[] = [];
    const orders: OrderRow[] = [];
    const journalByOrder = new Map<number, JournalRow[]>();
    const journalBySeq = new Map<number, JournalRow>();
    for (const id of ids) {
      const row = await tx.orders.get(id);
      const rows = await tx.journal.forOrder(id);
      if (row) orders.push(row);
      else if (rows.length > 0) problems.push(`journal has rows for order ${id}, which has no orders row`);
      journalByOrder.set(id, rows);
      for (const j of rows) journalBySeq.set(j.seq, j);
    }
    const tracked = (await tx.orders.countByStatus()).reduce((n, c) => n + c.n, 0);
    if (tracked !== orders.length) problems.push(`${tracked} orders are tracked, ${orders.length} of them among the ${ids.length} ids checked`);
    const orderIdSet = new Set(orders.map((o) => o.order_id));

    const expectedOpen = new Map<string, string>();
    for (const o of orders) {
      const where = `order ${o.order_id}`;
      // "No order between two states": the query columns are exactly what the snapshot says.
      let snap: { value: { change?: string }; context: Record<string, unknown> };
      try {
        snap = JSON.parse(o.snapshot);
      } catch {
        problems.push(`${where}: snapshot is not JSON`);
        continue;
      }
      const ctx = snap.context;
      if (ctx.orderId !== o.order_id) problems.push(`${where}: snapshot orderId ${String(ctx.orderId)}`);
      if (ctx.campaignId !== o.campaign_id) problems.push(`${where}: snapshot campaignId ${String(ctx.campaignId)} ≠ ${o.campaign_id}`);
      if (ctx.status !== o.status) problems.push(`${where}: column status ${o.status} ≠ snapshot ${String(ctx.status)}`);
      if ((ctx.substatus ?? null) !== o.substatus) problems.push(`${where}: column substatus ${o.substatus} ≠ snapshot ${String(ctx.substatus)}`);
      if (snap.value.change !== o.change_state) problems.push(`${where}: column change_state ${o.change_state} ≠ snapshot ${String(snap.value.change)}`);
      if (ctx.observedAt !== o.observed_at) problems.push(`${where}: column observed_at ${o.observed_at} ≠ snapshot ${String(ctx.observedAt)}`);
      const pending = ctx.pending as { requestNo: number; status: string; substatus: string } | null;
      if ((pending === null) !== (o.change_state === 'idle')) {
        problems.push(`${where}: change_state ${o.change_state} but pending ${JSON.stringify(pending)}`);
      }
      if (pending) expectedOpen.set(`${o.order_id}/${pending.requestNo}`, o.change_state);

      // The journal: row versions 1..n without gaps, chained, and its last row is the order row.
      const rows = journalByOrder.get(o.order_id) ?? [];
      const versions = rows.map((r) => r.row_version);
      const expectedVersions = Array.from({ length: o.row_version }, (_, i) => i + 1);
      if (JSON.stringify(versions) !== JSON.stringify(expectedVersions)) {
        problems.push(`${where}: journal row versions [${versions.join(',')}] ≠ 1..${o.row_version}`);
      }
      const last = rows[rows.length - 1];
      if (!last) {
        problems.push(`${where}: no journal row`);
      } else if (last.to_status !== o.status || last.to_substatus !== o.substatus || last.to_change !== o.change_state || last.row_version !== o.row_version) {
        problems.push(
          `${where}: last journal row (v${last.row_version} ${last.to_status}/${last.to_substatus} ${last.to_change}) ≠ order row (v${o.row_version} ${o.status}/${o.substatus} ${o.change_state})`,
        );
      }
      for (let i = 1; i < rows.length; i++) {
        const prev = rows[i - 1]!;
        const cur = rows[i]!;
        if (cur.from_status !== prev.to_status || cur.from_substatus !== prev.to_substatus || cur.from_change !== prev.to_change) {
          problems.push(`${where}: journal v${cur.row_version} starts from ${cur.from_status}/${cur.from_substatus}/${cur.from_change}, v${prev.row_version} ended at ${prev.to_status}/${prev.to_substatus}/${prev.to_change}`);
        }
        if (cur.seq <= prev.seq) problems.push(`${where}: journal v${cur.row_version} has seq ${cur.seq}, not after v${prev.row_version}'s ${prev.seq}`);
      }
    }

    const outbox = await allOutboxRows(tx);
    const counts = await tx.outbox.counts();
    const counted = OUTBOX_STATES.reduce((n, s) => n + counts[s], 0);
    if (counted !== outbox.length) problems.push(`outbox counts ${counted} rows, its listings ${outbox.length}`);
    const keys = new Set<string>();
    const actualOpen = new Map<string, string>();
    for (const r of outbox) {
      const where = `outbox #${r.id} (${r.idempotency_key})`;
      if (keys.has(r.idempotency_key)) problems.push(`${where}: duplicate idempotency key`);
      keys.add(r.idempotency_key);
      if (!/^\d+:[A-Z0-9_]+\/[A-Z0-9_]*:m\d+:r\d+$/.test(r.idempotency_key) || !r.idempotency_key.startsWith(`${r.order_id}:${r.status}/${r.substatus}:m`) || !r.idempotency_key.endsWith(`:r${r.request_no}`)) {
        problems.push(`${where}: key does not match order ${r.order_id}, target ${r.status}/${r.substatus}, request ${r.request_no}`);
      }
      const j = journalBySeq.get(r.journal_seq);
      if (!j) problems.push(`${where}: journal_seq ${r.journal_seq} is not in the journal`);
      else if (j.order_id !== r.order_id) problems.push(`${where}: journal_seq ${r.journal_seq} belongs to order ${j.order_id}`);
      if (!orderIdSet.has(r.order_id)) problems.push(`${where}: no orders row for order ${r.order_id}`);
      if (OPEN_STATES.has(r.state)) actualOpen.set(`${r.order_id}/${r.request_no}`, r.state);
      else if (!SETTLED.has(r.state)) problems.push(`${where}: unknown state ${r.state}`);
    }
    for (const [k, change] of expectedOpen) {
      const state = actualOpen.get(k);
      if (state === undefined) problems.push(`order/request ${k} has change ${change} but no open outbox row`);
      else if (state !== change) problems.push(`order/request ${k}: outbox state ${state} ≠ change ${change}`);
    }
    for (const k of actualOpen.keys()) {
      if (!expectedOpen.has(k)) problems.push(`outbox row ${k} is open (${actualOpen.get(k)}) but its order has no such pending change`);
    }
    return problems;
  });
}

/** `checkInvariants` of a file, opened as a store of its own (no engine) and closed again. */
export async function checkFileInvariants(file: string, orderIds: Iterable<number>): Promise<string[]> {
  const store = SqliteStore.open(file, { busyTimeoutMs: 5_000 });
  try {
    // SQLite's own check of the b-trees and indexes first: the port cannot see a damaged index.
    const damage = (await store.integrityCheck()).map((finding) => `SQLite integrity: ${finding}`);
    return [...damage, ...(await checkInvariants(store, orderIds))];
  } finally {
    await store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (mulberry32): the crash and concurrency workers replay from a seed.

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

// ---------------------------------------------------------------------------------------------
// The command vocabulary

/** Market states the streams observe: known ones, a substatus no list has, and unknown statuses. */
export const MARKET_STATES: readonly { status: string; substatus: string | null }[] = [
  { status: 'PROCESSING', substatus: 'STARTED' },
  { status: 'PROCESSING', substatus: 'STARTED' },
  { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
  { status: 'PROCESSING', substatus: 'SHIPPED' },
  { status: 'PROCESSING', substatus: 'BRAND_NEW_SUBSTATUS' },
  { status: 'RESERVED', substatus: null },
  { status: 'UNPAID', substatus: 'WAITING_USER_INPUT' },
  { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
  { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED' },
  { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
  { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
  { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' },
  { status: 'TELEPORTED', substatus: null },
  { status: 'ON_THE_MOON', substatus: 'SOMEWHERE' },
];

/** States seller rules start from, so requests often meet a legal situation. */
export const RULE_START_STATES: readonly { status: string; substatus: string | null }[] = [
  { status: 'PROCESSING', substatus: 'STARTED' },
  { status: 'RESERVED', substatus: null },
  { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
];

/** Seller targets: every legal target of some model, plus ones no rule allows. */
export const TARGETS: readonly { status: KnownOrderStatus; substatus?: KnownOrderSubstatus; realDeliveryDate?: string }[] = [
  { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
  { status: 'PROCESSING', substatus: 'READY_TO_SHIP' },
  { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
  { status: 'CANCELLED', substatus: 'SHOP_FAILED' },
  { status: 'PROCESSING', substatus: 'STARTED' },
  { status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED' },
  { status: 'PICKUP', substatus: 'PICKUP_SERVICE_RECEIVED', realDeliveryDate: '2025-05-01' },
  { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED' },
  { status: 'CANCELLED', substatus: 'USER_CHANGED_MIND' },
  // Never legal: Market-only, missing substatus, call evidence missing, a future date.
  { status: 'DELIVERED' },
  { status: 'PROCESSING', substatus: 'SHIPPED' },
  { status: 'CANCELLED', substatus: 'USER_UNREACHABLE' },
  { status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: '2099-01-01' },
];

export const DISPATCH_TYPES = [
  'DISPATCH.SENT',
  'DISPATCH.ACCEPTED',
  'DISPATCH.REJECTED',
  'DISPATCH.OPERATION_STARTED',
  'DISPATCH.UNKNOWN',
  'DISPATCH.DEFERRED',
] as const;
export type DispatchType = (typeof DISPATCH_TYPES)[number];

export interface RequestSpec {
  readonly orderId: number;
  readonly status: KnownOrderStatus;
  readonly substatus?: KnownOrderSubstatus;
  readonly realDeliveryDate?: string;
}

export type Command =
  | { readonly kind: 'track'; readonly orders: readonly { orderId: number; campaignId: number; status: string; substatus: string | null; dt: number }[] }
  | { readonly kind: 'observe'; readonly orderId: number; readonly status: string; readonly substatus: string | null; readonly dt: number; readonly readBack: boolean }
  | { readonly kind: 'request'; readonly request: RequestSpec }
  | { readonly kind: 'requestMany'; readonly requests: readonly RequestSpec[]; readonly atomic: boolean }
  | { readonly kind: 'dispatch'; readonly orderId: number; readonly type: DispatchType; readonly dt: number; readonly asStatus?: { status: string; substatus: string | null } };

/** Engine errors a generated stream may legitimately meet; anything else fails the suite. */
export const EXPECTED_CODES: ReadonlySet<string> = new Set(['ORDER_NOT_FOUND', 'CHANGE_REFUSED', 'IMPORT_CONFLICT', 'CAMPAIGN_UNKNOWN', 'CONCURRENT_UPDATE']);

/** The order events the dispatcher feeds back, built deterministically from a command. */
export function dispatchEvent(cmd: Extract<Command, { kind: 'dispatch' }>, now: number, n: number): OrderEvent {
  const at = now + cmd.dt;
  switch (cmd.type) {
    case 'DISPATCH.SENT':
      return { type: 'DISPATCH.SENT', at };
    case 'DISPATCH.ACCEPTED':
      return cmd.asStatus
        ? { type: 'DISPATCH.ACCEPTED', at, status: cmd.asStatus.status, substatus: cmd.asStatus.substatus }
        : { type: 'DISPATCH.ACCEPTED', at };
    case 'DISPATCH.REJECTED':
      return { type: 'DISPATCH.REJECTED', at, reason: 'STATUS_NOT_ALLOWED (fake)' };
    case 'DISPATCH.OPERATION_STARTED':
      return { type: 'DISPATCH.OPERATION_STARTED', at, operationId: `op-${cmd.orderId}-${n}`, operationType: 'ORDER_STATUS_UPDATE' };
    case 'DISPATCH.UNKNOWN':
      return { type: 'DISPATCH.UNKNOWN', at, reason: 'timeout (fake)' };
    case 'DISPATCH.DEFERRED':
      return { type: 'DISPATCH.DEFERRED', at, notBefore: at + 60_000, reason: '420 (fake)' };
  }
}

export type CommandResult = { readonly ok: true; readonly changed: number } | { readonly ok: false; readonly code: string };

function expected(error: unknown): CommandResult {
  if (error instanceof YmOrdersError && EXPECTED_CODES.has(error.code)) return { ok: false, code: error.code };
  throw error;
}

/**
 * Runs one command through the public engine API (dispatcher events through
 * `engine.orders.apply` inside `engine.store.transaction`, as the dispatcher does). Expected
 * typed refusals come back as `{ ok: false, code }`; anything else is thrown.
 */
export async function runCommand(engine: Engine, cmd: Command, now: number, n: number): Promise<CommandResult> {
  try {
    switch (cmd.kind) {
      case 'track': {
        const r = await engine.trackOrders(
          cmd.orders.map((o) => ({ orderId: o.orderId, campaignId: o.campaignId, status: o.status, substatus: o.substatus, observedAt: now + o.dt })),
        );
        return { ok: true, changed: r.created + r.updated };
      }
      case 'observe': {
        const before = (await engine.findOrder(cmd.orderId))?.rowVersion;
        const s = await engine.observe({
          orderId: cmd.orderId,
          status: cmd.status,
          substatus: cmd.substatus,
          observedAt: now + cmd.dt,
          source: cmd.readBack ? 'readBack' : 'notification',
        });
        return { ok: true, changed: s.rowVersion === before ? 0 : 1 };
      }
      case 'request':
        await engine.requestChange(cmd.request);
        return { ok: true, changed: 1 };
      case 'requestMany': {
        const r = await engine.requestChanges(cmd.requests, { atomic: cmd.atomic });
        for (const x of r.refused) expected(x.error);
        return { ok: true, changed: r.queued.length };
      }
      case 'dispatch': {
        const event = dispatchEvent(cmd, now, n);
        const r = await engine.store.transaction((tx) => engine.orders.apply(tx, cmd.orderId, event, now));
        return { ok: true, changed: r.changed ? 1 : 0 };
      }
    }
  } catch (error) {
    return expected(error);
  }
}

export interface StreamShape {
  /** Order ids 1..orders are tracked; `orders + 1` is never tracked (ORDER_NOT_FOUND). */
  readonly orders: number;
}

function randomRequest(random: () => number, shape: StreamShape): RequestSpec {
  const target = pick(random, TARGETS);
  return { orderId: 1 + Math.floor(random() * (shape.orders + 1)), ...target };
}

/** One random command from a seeded PRNG (the crash and concurrency workers' stream). */
export function randomCommand(random: () => number, shape: StreamShape): Command {
  const orderId = () => 1 + Math.floor(random() * (shape.orders + 1));
  const dt = () => Math.round((random() - 0.6) * 200_000);
  const r = random();
  if (r < 0.12) {
    const n = 1 + Math.floor(random() * 3);
    return {
      kind: 'track',
      orders: Array.from({ length: n }, () => {
        const id = 1 + Math.floor(random() * shape.orders);
        const s = random() < 0.6 ? { status: 'PROCESSING', substatus: 'STARTED' } : pick(random, MARKET_STATES);
        // Now and then the wrong campaign (IMPORT_CONFLICT) or one nobody configured.
        const campaignId = random() < 0.03 ? 99 : random() < 0.05 ? campaignOf(id + 1) : campaignOf(id);
        return { orderId: id, campaignId, ...s, dt: dt() };
      }),
    };
  }
  if (r < 0.26) {
    const s = random() < 0.4 ? pick(random, RULE_START_STATES) : pick(random, MARKET_STATES);
    return { kind: 'observe', orderId: orderId(), ...s, dt: dt(), readBack: random() < 0.3 };
  }
  if (r < 0.5) return { kind: 'request', request: randomRequest(random, shape) };
  if (r < 0.58) {
    return { kind: 'requestMany', requests: Array.from({ length: 1 + Math.floor(random() * 5) }, () => randomRequest(random, shape)), atomic: random() < 0.3 };
  }
  // SENT most often: the other events only matter once a change is on its way.
  const type = random() < 0.35 ? 'DISPATCH.SENT' : pick(random, DISPATCH_TYPES);
  return {
    kind: 'dispatch',
    orderId: orderId(),
    type,
    dt: Math.round(random() * 5_000),
    ...(type === 'DISPATCH.ACCEPTED' && random() < 0.25 ? { asStatus: pick(random, MARKET_STATES) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `node --import tsx <script>`: works on Node 20.6+ with tsx 4 (checked by the crash suite). */
export function workerArgs(script: string, args: readonly string[]): string[] {
  return ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'workers', script), ...args];
}
