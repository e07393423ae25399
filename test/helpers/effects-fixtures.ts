// Shared fixtures for the effects suites (issue #4): a fake Market over loopback HTTP, engines on
// real SQLite files in temp dirs, a secret API key and the checks that it leaked nowhere, a
// console capture, a client wrapper that records every call and error, and quota arithmetic
// over the fake's request log.
//
// Run as a script (`node --import tsx test/helpers/effects-fixtures.ts`) with
// YM_EFFECTS_CHILD=1 it is a child process for the multi-process limit test: it opens the
// database named by YM_DB, flushes until idle against YM_API_URL and prints its counters as JSON.
//
// No SQL here: the database is read through the store port (and as raw file bytes for the leak check).

import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { createEngine, type Engine, type EngineOptions } from '../../src/engine/engine.js';
import { syncCursorName } from '../../src/engine/order-sync.js';
import { createMarketClient, type MarketClient } from '../../src/market/client.js';
import type { MarketOperation } from '../../src/market/errors.js';
import { moscowDate } from '../../src/market/dates.js';
import {
  startFakeMarket,
  type FakeMarket,
  type FakeMarketOptions,
  type FakeRequest,
} from '../../src/testing/index.js';
import type { FakeCampaign, FakeOrderSeed } from '../../src/testing/order-book.js';
import type { LimiterPort } from '../../src/store/limiter.js';
import type { OutboxRow } from '../../src/store/outbox.js';
import type { Store, StoreTx } from '../../src/store/port.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/** A key that is easy to find if it leaks: no test asserts on anything that could contain it by chance. */
export const API_KEY = `ymk-SECRET-${randomBytes(12).toString('hex')}`;

export const BUSINESS_A = 9001;
export const BUSINESS_B = 9002;
export const FBS: FakeCampaign = { campaignId: 5101, businessId: BUSINESS_A, model: 'FBS' };
export const DBS: FakeCampaign = { campaignId: 5102, businessId: BUSINESS_A, model: 'DBS' };
export const LAAS: FakeCampaign = { campaignId: 5103, businessId: BUSINESS_B, model: 'LAAS' };
export const CAMPAIGNS: readonly FakeCampaign[] = [FBS, DBS, LAAS];

/** A past Moscow date the Market accepts as realDeliveryDate whatever the hour (UTC vs Moscow midnight). */
export function pastDeliveryDate(now = Date.now()): string {
  return moscowDate(now - 2 * 86_400_000);
}

// ---- temp dirs and databases ---------------------------------------------------------------

const dirs: string[] = [];

export function tempDbPath(name = 'orders.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'ym-effects-'));
  dirs.push(dir);
  return join(dir, name);
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** What the caller knows is in a database beyond what the port can list (it lists no order ids, no cursor names). */
export interface KnownKeys {
  readonly orderIds?: Iterable<number>;
  readonly cursorNames?: Iterable<string>;
}

const EVERYTHING = 1_000_000_000;

/**
 * Every row the store port can reach, as JSON text keyed by concern, read through a store of its
 * own on the file (open it only when no engine writes to it). The port lists outbox, timers,
 * budgets, campaigns, halts and counters; orders and their journals are read for the ids in
 * `known` plus every id those rows name, operations for the due ones plus every operation id the
 * journals name, cursors for the sync cursors of the stored campaigns plus `known.cursorNames`.
 */
export async function dumpDatabase(path: string, known: KnownKeys = {}): Promise<string> {
  const store = SqliteStore.open(path);
  try {
    return JSON.stringify(await store.read((tx) => dumpTx(tx, known)));
  } finally {
    await store.close();
  }
}

async function dumpTx(tx: StoreTx, known: KnownKeys): Promise<Record<string, unknown[]>> {
  const outbox: OutboxRow[] = [...(await tx.outbox.open(EVERYTHING))];
  for (const state of ['accepted', 'rejected', 'superseded'] as const) outbox.push(...(await tx.outbox.settledSince(state, 0, EVERYTHING)));
  const timers = await tx.timers.list(undefined, Number.MAX_SAFE_INTEGER);
  const dueOperations = await tx.operations.due(Number.MAX_SAFE_INTEGER, EVERYTHING);
  const orderIds = new Set<number>(known.orderIds ?? []);
  for (const r of outbox) orderIds.add(r.order_id);
  for (const r of timers) if (/^\d+$/.test(r.ref)) orderIds.add(Number(r.ref));
  for (const r of dueOperations) if (r.order_id !== null) orderIds.add(r.order_id);
  const orders: unknown[] = [];
  const journal: { event: string }[] = [];
  for (const id of [...orderIds].sort((a, b) => a - b)) {
    const row = await tx.orders.get(id);
    if (row === undefined) continue;
    orders.push(row);
    journal.push(...(await tx.journal.forOrder(id)));
  }
  // Operations that are no longer due are found through the events that started them.
  const operationIds = new Set(dueOperations.map((r) => r.operation_id));
  for (const j of journal) for (const m of j.event.matchAll(/"operationId":"([^"]+)"/g)) operationIds.add(m[1]!);
  const operations: unknown[] = [];
  for (const id of operationIds) {
    const row = await tx.operations.get(id);
    if (row !== undefined) operations.push(row);
  }
  const campaigns = await tx.campaigns.all();
  const cursorNames = new Set([...campaigns.map((c) => syncCursorName(c.business_id)), ...(known.cursorNames ?? [])]);
  const cursors: unknown[] = [];
  for (const name of cursorNames) {
    const value = await tx.cursors.get(name);
    if (value !== undefined) cursors.push({ name, value });
  }
  return {
    orders,
    journal,
    outbox,
    operations,
    timers,
    limiter: await tx.limiter.all(),
    cursors,
    campaigns,
    halts: await tx.halts.all(),
    counters: [await tx.counters.totals()],
    outboxCounts: [await tx.outbox.counts()],
    operationCounts: [await tx.operations.counts()],
  };
}

/** The raw bytes of the database and its WAL/SHM files, as latin1 text to search. */
export function rawDatabaseBytes(path: string): string {
  const dir = join(path, '..');
  const base = path.slice(dir.length + 1);
  return readdirSync(dir)
    .filter((f) => f.startsWith(base))
    .map((f) => readFileSync(join(dir, f)).toString('latin1'))
    .join('\n');
}

// ---- console capture -----------------------------------------------------------------------

export interface ConsoleCapture {
  readonly text: () => string;
  readonly restore: () => void;
}

/** Records everything written through console.* and process.stdout/stderr while still printing it. */
export function captureConsole(options: { passThrough?: boolean } = {}): ConsoleCapture {
  const passThrough = options.passThrough ?? true;
  const chunks: string[] = [];
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
  const saved = methods.map((m) => [m, console[m]] as const);
  for (const m of methods) {
    const original = console[m];
    console[m] = (...args: unknown[]) => {
      chunks.push(args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 8 }))).join(' '));
      if (passThrough) original.apply(console, args);
    };
  }
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    chunks.push(String(chunk));
    return passThrough ? (out as (...a: unknown[]) => boolean)(chunk, ...rest) : true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    chunks.push(String(chunk));
    return passThrough ? (err as (...a: unknown[]) => boolean)(chunk, ...rest) : true;
  }) as typeof process.stderr.write;
  return {
    text: () => chunks.join('\n'),
    restore: () => {
      for (const [m, fn] of saved) console[m] = fn;
      process.stdout.write = out as typeof process.stdout.write;
      process.stderr.write = err as typeof process.stderr.write;
    },
  };
}

// ---- the secret must be nowhere --------------------------------------------------------------

/** Every way an error can be shown: message, stack, JSON, util.inspect (cause chain included). */
export function renderError(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof Error) parts.push(e.message, e.stack ?? '');
    try {
      parts.push(JSON.stringify(e));
    } catch {
      // circular: inspect covers it
    }
    parts.push(inspect(e, { depth: 8, showHidden: true }));
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}

export interface LeakCheck {
  dbPaths?: readonly string[];
  /** Order ids and cursor names to read in those databases besides what the port lists (see dumpDatabase). */
  known?: KnownKeys;
  errors?: readonly unknown[];
  console?: ConsoleCapture;
  extra?: readonly unknown[];
}

/**
 * Whether `text` holds the key, or the larger half of it: SQLite stores a long value across
 * overflow pages, each starting with a 4-byte page number, so in the file's bytes a value may be
 * cut in two once; one piece is then at least half the key long.
 */
export function holdsKeyBytes(text: string, key = API_KEY): boolean {
  const piece = Math.ceil(key.length / 2);
  for (let start = 0; start + piece <= key.length; start++) {
    if (text.includes(key.slice(start, start + piece))) return true;
  }
  return false;
}

/** Throws naming where the key was found; returns how many places were searched. Open databases only when no engine writes to them. */
export async function assertNoSecret(check: LeakCheck, key = API_KEY): Promise<number> {
  const places: [string, string, (text: string) => boolean][] = [];
  const whole = (text: string) => text.includes(key);
  for (const p of check.dbPaths ?? []) {
    if (!existsSync(p)) continue;
    places.push([`tables of ${p}`, await dumpDatabase(p, check.known), whole]);
    places.push([`bytes of ${p}*`, rawDatabaseBytes(p), (text) => holdsKeyBytes(text, key)]);
  }
  (check.errors ?? []).forEach((e, i) => places.push([`error #${i}`, renderError(e), whole]));
  if (check.console) places.push(['console output', check.console.text(), whole]);
  (check.extra ?? []).forEach((x, i) => places.push([`extra #${i}`, typeof x === 'string' ? x : inspect(x, { depth: 10, showHidden: true }), whole]));
  const leaks = places.filter(([, text, holds]) => holds(text)).map(([where]) => where);
  if (leaks.length > 0) throw new Error(`the API key leaked into: ${leaks.join(', ')}`);
  return places.length;
}

// ---- the fake Market and engines -------------------------------------------------------------

export async function startMarket(options: Partial<FakeMarketOptions> = {}): Promise<FakeMarket> {
  return startFakeMarket({ apiKey: API_KEY, campaigns: CAMPAIGNS, ...options });
}

export function engineFor(market: FakeMarket, db: string, options: Partial<EngineOptions> = {}): Promise<Engine> {
  return createEngine({
    db,
    campaigns: CAMPAIGNS.map((c) => ({ campaignId: c.campaignId, businessId: c.businessId, model: c.model })),
    sqlite: { synchronous: 'NORMAL' },
    ...(options.client ? {} : { api: { baseUrl: market.url, apiKey: API_KEY, timeoutMs: 5_000 } }),
    ...options,
  });
}

/** `count` orders of one campaign with consecutive ids from `firstId`. */
export function seeds(campaign: FakeCampaign, firstId: number, count: number, status = 'PROCESSING', substatus = 'STARTED', updateDate?: number): FakeOrderSeed[] {
  return Array.from({ length: count }, (_, i) => ({
    id: firstId + i,
    campaignId: campaign.campaignId,
    status,
    substatus,
    ...(updateDate !== undefined ? { updateDate } : {}),
  }));
}

export function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

// ---- a recording client ----------------------------------------------------------------------

export interface RecordedCall {
  readonly method: keyof Omit<MarketClient, 'close'>;
  readonly args: readonly unknown[];
  readonly startedAt: number;
  endedAt?: number;
  error?: unknown;
}

export interface RecordingClient extends MarketClient {
  readonly calls: RecordedCall[];
  readonly errors: () => unknown[];
}

type Hooks = { [K in keyof Omit<MarketClient, 'close'>]?: (inner: MarketClient, ...args: Parameters<MarketClient[K]>) => ReturnType<MarketClient[K]> };

/**
 * A real HTTP client to the fake Market, wrapped to record each call and its error; `hooks`
 * may replace a method (to route one campaign to a client with a bad key, say).
 */
export function recordingClient(market: FakeMarket, options: { timeoutMs?: number; hooks?: Hooks; apiKey?: string } = {}): RecordingClient {
  const inner = createMarketClient({ baseUrl: market.url, apiKey: options.apiKey ?? API_KEY, timeoutMs: options.timeoutMs ?? 5_000 });
  const calls: RecordedCall[] = [];
  const wrap = <K extends keyof Omit<MarketClient, 'close'>>(method: K) =>
    (async (...args: unknown[]) => {
      const call: RecordedCall = { method, args, startedAt: Date.now() };
      calls.push(call);
      try {
        const hook = options.hooks?.[method] as ((c: MarketClient, ...a: unknown[]) => Promise<unknown>) | undefined;
        const fn = inner[method] as (...a: unknown[]) => Promise<unknown>;
        return await (hook ? hook(inner, ...args) : fn.apply(inner, args));
      } catch (error) {
        call.error = error;
        throw error;
      } finally {
        call.endedAt = Date.now();
      }
    }) as MarketClient[K];
  return {
    calls,
    errors: () => calls.filter((c) => c.error !== undefined).map((c) => c.error),
    updateOrderStatuses: wrap('updateOrderStatuses'),
    updateOrderStatus: wrap('updateOrderStatus'),
    getOperations: wrap('getOperations'),
    getBusinessOrders: wrap('getBusinessOrders'),
    acceptOrderCancellation: wrap('acceptOrderCancellation'),
    close: () => inner.close(),
  };
}

// ---- the request log ---------------------------------------------------------------------------

export function requestsTo(market: FakeMarket, endpoint: MarketOperation, owner?: number): FakeRequest[] {
  return market.requests.filter((r) => r.endpoint === endpoint && (owner === undefined || ownerOf(r) === owner));
}

/** The campaign or business id in the request's path. */
export function ownerOf(r: FakeRequest): number {
  return Number(/\/(?:campaigns|businesses)\/(\d+)/.exec(r.path)?.[1]);
}

/** Order ids a status request named (bulk body or PUT path). */
export function orderIdsOf(r: FakeRequest): number[] {
  if (r.endpoint === 'updateOrderStatuses') {
    const orders = (r.body as { orders?: { id: number }[] } | undefined)?.orders;
    return Array.isArray(orders) ? orders.map((o) => o.id) : [];
  }
  if (r.endpoint === 'updateOrderStatus' || r.endpoint === 'acceptOrderCancellation') {
    return [Number(/\/orders\/(\d+)\//.exec(r.path)?.[1])];
  }
  if (r.endpoint === 'getBusinessOrders') return ((r.body as { orderIds?: number[] } | undefined)?.orderIds ?? []);
  return [];
}

/** Every order id the fake was asked about or answered about: what an engine against it may have stored. */
export function orderIdsSeenBy(market: FakeMarket): Set<number> {
  const ids = new Set<number>();
  for (const r of market.requests) {
    for (const id of orderIdsOf(r)) ids.add(id);
    if (r.endpoint !== 'getBusinessOrders' || r.status !== 200 || r.responseBody === undefined) continue;
    try {
      for (const o of (JSON.parse(r.responseBody) as { orders?: { orderId?: unknown }[] }).orders ?? []) if (typeof o.orderId === 'number') ids.add(o.orderId);
    } catch {
      // a truncated answer (malformedJson): the engine stored nothing of it
    }
  }
  return ids;
}

/** Faults the fake applies after acting on the request (quota used, change applied). */
const AFTER_APPLY = new Set(['timeoutAfterApply', 'dropAfterApply', 'status500AfterApply', 'malformedJson', 'foreignIds']);

/** Whether the fake charged the request to its quota: answered < 500 (not 420), or faulted after applying. */
export function charged(r: FakeRequest): boolean {
  if (r.fault !== undefined && AFTER_APPLY.has(r.fault)) return true;
  return r.status !== undefined && r.status < 500 && r.status !== 420 && r.status !== 401 && r.status !== 403 && r.status !== 404;
}

/** Units a request weighs: orders for the bulk update, 1 for the rest. */
export function unitsOf(r: FakeRequest): number {
  return r.endpoint === 'updateOrderStatuses' ? Math.max(1, orderIdsOf(r).length) : 1;
}

export interface QuotaWindow {
  readonly startedAt: number;
  readonly units: number;
  readonly requests: number;
}

/**
 * Replays the fake's fixed windows for one endpoint and owner (a window opens at the first
 * request after the previous one ended) and sums the units it charged in each.
 */
export function quotaWindows(market: FakeMarket, endpoint: MarketOperation, owner: number, windowMs: number): QuotaWindow[] {
  const windows: { startedAt: number; units: number; requests: number }[] = [];
  for (const r of requestsTo(market, endpoint, owner)) {
    if (r.status === 401 || r.status === 403) continue;
    let w = windows.at(-1);
    if (w === undefined || r.receivedAt >= w.startedAt + windowMs) {
      w = { startedAt: r.receivedAt, units: 0, requests: 0 };
      windows.push(w);
    }
    if (charged(r)) {
      w.units += unitsOf(r);
      w.requests += 1;
    }
  }
  return windows;
}

/** 420s the fake served because a quota ran out (not injected, not the parallel limit). */
export function quota420s(market: FakeMarket): FakeRequest[] {
  return market.requests.filter((r) => r.status === 420 && r.fault === undefined && !/parallel/.test(r.responseBody ?? ''));
}

export function parallel420s(market: FakeMarket): FakeRequest[] {
  return market.requests.filter((r) => r.status === 420 && /parallel/.test(r.responseBody ?? ''));
}

/** Every order's status and substatus, engine vs Market, for the ones that differ. */
export async function mismatches(engine: Engine, market: FakeMarket, ids: readonly number[]): Promise<{ id: number; engine: string; market: string }[]> {
  const out: { id: number; engine: string; market: string }[] = [];
  for (const id of ids) {
    const e = await engine.findOrder(id);
    const m = market.getOrder(id);
    const es = e ? `${e.status}/${e.substatus ?? ''}` : 'untracked';
    const ms = m ? `${m.status}/${m.substatus}` : 'absent';
    if (es !== ms) out.push({ id, engine: es, market: ms });
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits on progress, not a clock: until `condition()` holds (it may read the engine, so it may be
 * async), looking again after each turn of the event loop. The limit only turns a hang into a
 * failure that names `what`.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > limitMs) throw new Error(`gave up waiting until ${what}`);
    await sleep(1);
  }
}

// ---- child processes -------------------------------------------------------------------------

export const FIXTURES_SCRIPT = fileURLToPath(import.meta.url);

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs this file as a child (`node --import tsx`) with the given environment; resolves when it exits. */
export function runChild(env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURES_SCRIPT], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

// ---- budget use, per engine -------------------------------------------------------------------

export interface BudgetUse {
  /** Times the engine read the shared budget row of the resource (each permit asked for). */
  consulted: number;
  /** Permits it got (leases added) for the resource. */
  acquired: number;
}

/**
 * `inner` with some of its methods replaced: every other property is the inner one (methods bound
 * to `inner`, so an adapter's private fields still work). For spies on one or two port methods.
 */
export function overriding<T extends object>(inner: T, overrides: Partial<T>): T {
  return new Proxy(inner, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * From now on every transaction and read of `store` (one engine's, say) hands its callback
 * `spy(tx)` instead of `tx`: the way to watch what that engine does through the port.
 */
export function spyOnStore(store: Store, spy: (tx: StoreTx) => StoreTx): void {
  const transaction = store.transaction.bind(store);
  const read = store.read.bind(store);
  store.transaction = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => transaction((tx) => fn(spy(tx)));
  store.read = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => read((tx) => fn(spy(tx)));
}

/** Counts how one engine's store used the shared budget rows of `operation` (a spy on its limiter). */
export function countBudgetUse(store: Store, operation: MarketOperation): BudgetUse {
  const use: BudgetUse = { consulted: 0, acquired: 0 };
  spyOnStore(store, (tx) => {
    const limiter: LimiterPort = overriding(tx.limiter, {
      get: (key) => {
        if (key.startsWith(`${operation}@`)) use.consulted++;
        return tx.limiter.get(key);
      },
      addLease: (leaseId, scopeKey, resourceKey, weight, now, leaseMs) => {
        if (resourceKey.startsWith(`${operation}@`)) use.acquired++;
        return tx.limiter.addLease(leaseId, scopeKey, resourceKey, weight, now, leaseMs);
      },
    });
    return overriding(tx, { limiter });
  });
  return use;
}

// ---- child process entry (multi-process limit test) --------------------------------------------

async function runFlushChild(): Promise<void> {
  const url = process.env.YM_API_URL!;
  const apiKey = process.env.YM_API_KEY!;
  const db = process.env.YM_DB!;
  const limits = JSON.parse(process.env.YM_LIMITS ?? '{}') as EngineOptions['limits'];
  const engine = await createEngine({
    db,
    api: { baseUrl: url, apiKey, timeoutMs: 5_000 },
    owner: `child-${process.pid}`,
    ...(limits ? { limits } : {}),
  });
  const budget = countBudgetUse(engine.store, 'updateOrderStatuses');
  try {
    // Both children start together (the parent says "go" once both are ready), so both compete
    // for the budget from the first round.
    process.stdout.write('ready\n');
    await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
    process.stdin.pause();
    const report = await engine.flush({ untilIdle: true, maxWaitMs: Number(process.env.YM_MAX_WAIT_MS ?? '60000') });
    process.stdout.write(`${JSON.stringify({ pid: process.pid, counters: report.counters, open: report.open, budget })}\n`);
  } finally {
    await engine.close();
  }
}

/**
 * A child that syncs and is killed (SIGKILL, no cleanup) just as it asks for page
 * YM_KILL_AT_PAGE of business YM_KILL_BUSINESS: the crash between pages of the sync test.
 */
async function runSyncKillChild(): Promise<void> {
  const killAt = Number(process.env.YM_KILL_AT_PAGE ?? '2');
  const business = Number(process.env.YM_KILL_BUSINESS ?? String(BUSINESS_A));
  let pages = 0;
  const inner = createMarketClient({ baseUrl: process.env.YM_API_URL!, apiKey: process.env.YM_API_KEY!, timeoutMs: 5_000 });
  const client: MarketClient = {
    updateOrderStatuses: (...a) => inner.updateOrderStatuses(...a),
    updateOrderStatus: (...a) => inner.updateOrderStatus(...a),
    getOperations: (...a) => inner.getOperations(...a),
    acceptOrderCancellation: (...a) => inner.acceptOrderCancellation(...a),
    getBusinessOrders: (businessId, body, query) => {
      if (businessId === business && ++pages === killAt) process.kill(process.pid, 'SIGKILL');
      return inner.getBusinessOrders(businessId, body, query);
    },
    close: () => inner.close(),
  };
  const engine = await createEngine({ db: process.env.YM_DB!, client, owner: `child-${process.pid}` });
  await engine.sync();
  process.stdout.write('sync finished: the kill never came\n');
  await engine.close();
}

/**
 * A child that flushes and is killed (SIGKILL) right after the Market applied its first status
 * update, before the answer is recorded: the outbox row stays `sending` under a live lease.
 */
async function runSendKillChild(): Promise<void> {
  const inner = createMarketClient({ baseUrl: process.env.YM_API_URL!, apiKey: process.env.YM_API_KEY!, timeoutMs: 5_000 });
  const client: MarketClient = {
    updateOrderStatuses: async (...a) => {
      await inner.updateOrderStatuses(...a);
      process.kill(process.pid, 'SIGKILL');
      throw new Error('unreachable');
    },
    updateOrderStatus: (...a) => inner.updateOrderStatus(...a),
    getOperations: (...a) => inner.getOperations(...a),
    acceptOrderCancellation: (...a) => inner.acceptOrderCancellation(...a),
    getBusinessOrders: (...a) => inner.getBusinessOrders(...a),
    close: () => inner.close(),
  };
  const engine = await createEngine({ db: process.env.YM_DB!, client, owner: `child-${process.pid}` });
  await engine.flush();
  process.stdout.write('flush finished: the kill never came\n');
  await engine.close();
}

if (process.env.YM_EFFECTS_CHILD === 'sendKill' && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runSendKillChild().catch((error: unknown) => {
    process.stderr.write(`child failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}

if (process.env.YM_EFFECTS_CHILD === 'syncKill' && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runSyncKillChild().catch((error: unknown) => {
    process.stderr.write(`child failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}

if (process.env.YM_EFFECTS_CHILD === '1' && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runFlushChild().catch((error: unknown) => {
    process.stderr.write(`child failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
