// Shared fixtures for the durable-engine suites (issue #3): temp databases, a fake clock,
// full table dumps for "nothing was written" checks, the store invariants every suite
// asserts, and one command vocabulary (track / observe / request / bulk request / dispatcher
// event) that the property test, the crash worker and the concurrency worker all run.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import type { OrderEvent } from '../../machines/order-machine.js';
import type { KnownOrderStatus, KnownOrderSubstatus } from '../../machines/statuses.js';
import { createEngine, type Engine, type EngineOptions } from '../../src/engine/engine.js';
import type { CampaignConfig } from '../../src/engine/commands.js';
import { YmOrdersError } from '../../src/errors.js';

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

/** A fresh directory under the OS temp dir; remove it with `removeDir`. */
/** Runs `fn`, which must throw one of our typed errors; returns it (the test goes on to check it). */
export function thrownYmError(fn: () => unknown): YmOrdersError {
  try {
    fn();
  } catch (error) {
    if (error instanceof YmOrdersError) return error;
    throw new Error(`expected a YmOrdersError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected the call to throw a YmOrdersError');
}

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

export function openEngine(db: string, clock: FakeClock, extra: Partial<EngineOptions> = {}): Engine {
  return createEngine({ db, campaigns: CAMPAIGNS, clock: clock.fn, ...extra });
}

// ---------------------------------------------------------------------------------------------
// Dumps

export type Dump = Record<string, readonly Record<string, unknown>[]>;

/** Every row of every table (sqlite_sequence and schema_migrations included), in a stable order. */
export function dumpDatabase(db: Database): Dump {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all() as { name: string }[];
  const dump: Record<string, Record<string, unknown>[]> = {};
  for (const { name } of tables) {
    const columns = (db.prepare(`PRAGMA table_info("${name}")`).all() as { name: string }[]).map((c) => `"${c.name}"`);
    dump[name] = db.prepare(`SELECT * FROM "${name}" ORDER BY ${columns.join(', ')}`).all() as Record<string, unknown>[];
  }
  dump['#pragma'] = [
    {
      application_id: db.pragma('application_id', { simple: true }),
      user_version: db.pragma('user_version', { simple: true }),
      schema: (db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY type, name').all() as unknown[]).length,
    },
  ];
  return dump;
}

/** Opens a plain connection (no migrations, no claims), dumps, closes. */
export function dumpFile(file: string): Dump {
  const db = new BetterSqlite3(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return dumpDatabase(db);
  } finally {
    db.close();
  }
}

/** The bytes of a file and of its -wal/-shm companions, for "not one byte changed" checks. */
export function fileBytes(file: string): Record<string, string | null> {
  const read = (p: string): string | null => (fs.existsSync(p) ? fs.readFileSync(p).toString('base64') : null);
  return { main: read(file), wal: read(`${file}-wal`), journal: read(`${file}-journal`) };
}

// ---------------------------------------------------------------------------------------------
// Invariants

const OPEN_STATES = new Set(['queued', 'sending', 'awaitingOperation', 'uncertain']);
const SETTLED_STATES = new Set(['accepted', 'rejected', 'superseded']);

interface OrderRowLite {
  order_id: number;
  campaign_id: number;
  status: string;
  substatus: string | null;
  change_state: string;
  observed_at: number;
  machine_version: number;
  snapshot: string;
  row_version: number;
}

interface JournalRowLite {
  seq: number;
  order_id: number;
  row_version: number;
  event_type: string;
  from_status: string | null;
  from_substatus: string | null;
  from_change: string | null;
  to_status: string;
  to_substatus: string | null;
  to_change: string;
}

interface OutboxRowLite {
  id: number;
  idempotency_key: string;
  order_id: number;
  request_no: number;
  status: string;
  substatus: string;
  state: string;
  journal_seq: number;
}

/**
 * Everything that must hold in a ym-orders database after any sequence of committed
 * transactions (and so after any crash). Returns the violations; [] means consistent.
 */
export function checkInvariants(db: Database): string[] {
  const problems: string[] = [];
  const orders = db.prepare('SELECT * FROM orders ORDER BY order_id').all() as OrderRowLite[];
  const journal = db.prepare('SELECT * FROM journal ORDER BY seq').all() as JournalRowLite[];
  const outbox = db.prepare('SELECT * FROM outbox ORDER BY id').all() as OutboxRowLite[];
  const journalBySeq = new Map(journal.map((j) => [j.seq, j]));
  const journalByOrder = new Map<number, JournalRowLite[]>();
  for (const j of journal) {
    const list = journalByOrder.get(j.order_id) ?? [];
    list.push(j);
    journalByOrder.set(j.order_id, list);
  }
  const orderIds = new Set(orders.map((o) => o.order_id));
  for (const orderId of journalByOrder.keys()) {
    if (!orderIds.has(orderId)) problems.push(`journal has rows for order ${orderId}, which has no orders row`);
  }

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
    }
  }

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
    if (!orderIds.has(r.order_id)) problems.push(`${where}: no orders row for order ${r.order_id}`);
    if (OPEN_STATES.has(r.state)) actualOpen.set(`${r.order_id}/${r.request_no}`, r.state);
    else if (!SETTLED_STATES.has(r.state)) problems.push(`${where}: unknown state ${r.state}`);
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
}

export function checkFileInvariants(file: string): string[] {
  const db = new BetterSqlite3(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return checkInvariants(db);
  } finally {
    db.close();
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
 * `engine.orders.apply` inside `engine.store.write`, as the dispatcher does). Expected typed
 * refusals come back as `{ ok: false, code }`; anything else is thrown.
 */
export function runCommand(engine: Engine, cmd: Command, now: number, n: number): CommandResult {
  try {
    switch (cmd.kind) {
      case 'track': {
        const r = engine.trackOrders(
          cmd.orders.map((o) => ({ orderId: o.orderId, campaignId: o.campaignId, status: o.status, substatus: o.substatus, observedAt: now + o.dt })),
        );
        return { ok: true, changed: r.created + r.updated };
      }
      case 'observe': {
        const before = engine.findOrder(cmd.orderId)?.rowVersion;
        const s = engine.observe({
          orderId: cmd.orderId,
          status: cmd.status,
          substatus: cmd.substatus,
          observedAt: now + cmd.dt,
          source: cmd.readBack ? 'readBack' : 'notification',
        });
        return { ok: true, changed: s.rowVersion === before ? 0 : 1 };
      }
      case 'request':
        engine.requestChange(cmd.request);
        return { ok: true, changed: 1 };
      case 'requestMany': {
        const r = engine.requestChanges(cmd.requests, { atomic: cmd.atomic });
        for (const x of r.refused) expected(x.error);
        return { ok: true, changed: r.queued.length };
      }
      case 'dispatch': {
        const event = dispatchEvent(cmd, now, n);
        const r = engine.store.write(() => engine.orders.apply(cmd.orderId, event, now));
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
