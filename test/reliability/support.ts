// Shared plumbing for the reliability suites (issue #6): sizes (normal vs SOAK=1), seeds (fixed
// in `npm test`, random under SOAK=1: test/helpers/seeds.ts),
// the run-loop worker as a child process, and small tallies for the figures each suite prints.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../../src/engine/engine.js';
import type { MarketOperation } from '../../src/market/errors.js';
import type { OutboxRow } from '../../src/store/outbox.js';
import type { FakeRequest } from '../../src/testing/index.js';
import { charged, ownerOf, unitsOf, type QuotaWindow } from '../helpers/effects-fixtures.js';
import type { RunWorkerConfig } from './workers/run-worker.js';

export const SOAK = process.env.SOAK === '1';

/**
 * How long the suites poll a LaaS operation (pollPolicy.timeoutMs). It also sets how long a LaaS
 * change whose answer was lost (a timeout, a drop, a kill) stays inconclusive before a read-back
 * showing "not yet" may lead to a resend: asyncSettleMs, by default this plus the Market's 10 s
 * request limit. The fake's operations take a fraction of a second, so it is short.
 */
export const POLL_TIMEOUT_MS = 10_000;

/** `normal` in `npm test`, `soak` under `npm run soak`. */
export function sized<T>(normal: T, soak: T): T {
  return SOAK ? soak : normal;
}

export { seedFrom } from '../helpers/seeds.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUN_WORKER = path.join(REPO_ROOT, 'test', 'reliability', 'workers', 'run-worker.ts');

export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningWorker {
  readonly child: ChildProcess;
  /** Resolves once the worker printed `ready` (its engine is open); rejects if it exits first. */
  readonly ready: Promise<void>;
  readonly done: Promise<WorkerExit>;
  /** Whether the process has exited. */
  exited(): boolean;
}

const live = new Map<ChildProcess, Promise<WorkerExit>>();

/**
 * SIGKILLs every worker still running (by its own pid) and waits until they have exited; for
 * afterAll, before the temp folders their databases are in are removed.
 */
export async function killWorkers(): Promise<void> {
  for (const child of live.keys()) child.kill('SIGKILL');
  await Promise.all(live.values());
}

/** Starts `test/reliability/workers/run-worker.ts` with `config`; the key goes in YM_API_KEY. */
export function startRunWorker(config: RunWorkerConfig, apiKey: string): RunningWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN_WORKER, JSON.stringify(config)], {
    cwd: REPO_ROOT,
    env: { ...process.env, YM_API_KEY: apiKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let exited = false;
  let onReady: () => void = () => undefined;
  let onFail: (e: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (/^ready \d+$/m.test(stdout)) onReady();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // A failed spawn is a failed worker ('close' follows), not an error nobody handles.
  child.on('error', (error) => (stderr += `fatal spawn failed: ${error.message}\n`));
  const done = new Promise<WorkerExit>((resolve) => {
    child.on('close', (code, signal) => {
      exited = true;
      live.delete(child);
      onFail(new Error(`worker exited (${code ?? signal}) before it was ready:\n${stdout}\n${stderr}`));
      resolve({ code, signal, stdout, stderr });
    });
  });
  live.set(child, done);
  // A kill before `ready` is a legitimate chaos outcome: callers that do not await `ready` must
  // not see an unhandled rejection.
  ready.catch(() => undefined);
  return { child, ready, done, exited: () => exited };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One turn of the event loop: what this process serves (the fake Market) gets to answer. */
export function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * How long the open changes may go without one of them settling before a suite gives up: long
 * enough that only a hang (nothing settles at all) reaches it, never a slow or busy machine,
 * since the suites wait on progress, not on a time budget. Their test timeouts are a backstop.
 */
export const STALL_MS = 90_000;

/**
 * Waits until `open()` is 0 (or `stop()` is true), for as long as `open()` keeps falling: it gives
 * up only once `stallMs` passed without it falling (`every` runs at each look). Returns what is still open.
 */
export async function untilSettled(
  open: () => Promise<number>,
  options: { stop?: () => boolean; stallMs?: number; every?: () => Promise<void> | void } = {},
): Promise<number> {
  const stallMs = options.stallMs ?? STALL_MS;
  let last = await open();
  let progressAt = Date.now();
  while (last > 0 && !options.stop?.()) {
    await sleep(100);
    await options.every?.();
    const now = await open();
    if (now < last) progressAt = Date.now();
    else if (Date.now() - progressAt > stallMs) break;
    last = now;
  }
  return open();
}

/** The most rows settledChanges() returns at once; more than any suite makes, even under SOAK=1. */
const EVERY_ROW = 100_000;

/**
 * Every outbox row of the database (open and settled), by id, through the engine's queries: the
 * suites check each change they queued by its row's state. Several reads, so call it once
 * nothing else writes (the workers stopped); the outbox counts prove the listing complete.
 */
export async function everyChange(engine: Engine): Promise<OutboxRow[]> {
  const settled = await Promise.all(
    (['accepted', 'rejected', 'superseded'] as const).map((state) => engine.settledChanges({ state, since: 0, limit: EVERY_ROW })),
  );
  const rows = [...(await engine.pendingChanges(EVERY_ROW)), ...settled.flat()].sort((a, b) => a.id - b.id);
  const total = Object.values((await engine.summary()).outbox).reduce((n, c) => n + c, 0);
  if (rows.length !== total) throw new Error(`listed ${rows.length} outbox rows of ${total}`);
  return rows;
}

/** Faults the fake Market served, by kind (and by endpoint:kind). */
export function faultTally(requests: readonly FakeRequest[]): { byKind: Record<string, number>; byEndpoint: Record<string, number>; total: number } {
  const byKind: Record<string, number> = {};
  const byEndpoint: Record<string, number> = {};
  let total = 0;
  for (const r of requests) {
    if (r.fault === undefined) continue;
    total++;
    byKind[r.fault] = (byKind[r.fault] ?? 0) + 1;
    const key = `${r.endpoint}:${r.fault}`;
    byEndpoint[key] = (byEndpoint[key] ?? 0) + 1;
  }
  return { byKind, byEndpoint, total };
}

/** `k=v` pairs for a suite's one-line summary. */
export function figures(name: string, values: Record<string, unknown>): string {
  return `${name}: ${Object.entries(values).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')}`;
}

/**
 * For a failure report: each 420 the quota caused, with the last dozen requests to its endpoint
 * and owner up to it (times relative to the 420's arrival: received, answered; status; units) and the
 * windows replayed from the log, so a report shows which window overflowed and how.
 */
export function quota420Report(requests: readonly FakeRequest[], rejected: readonly FakeRequest[], windowMs: number, latencyMs = 0): string[] {
  const lines: string[] = [];
  for (const r of rejected.slice(0, 3)) {
    const endpoint = r.endpoint!;
    const owner = ownerOf(r);
    const near = requests.filter((q) => q.endpoint === endpoint && ownerOf(q) === owner && q.receivedAt <= r.receivedAt + windowMs / 4).slice(-12);
    const windows = replayQuotaWindows(requests, endpoint, owner, windowMs, latencyMs).filter((w) => w.startedAt >= r.receivedAt - 3 * windowMs && w.startedAt <= r.receivedAt + windowMs);
    lines.push(`quota 420 ${endpoint}@${owner} at ${r.receivedAt}: ${r.responseBody ?? ''}`);
    lines.push(`  windows (start relative, units): ${windows.map((w) => `${w.startedAt - r.receivedAt}:${w.units}`).join(' ')}`);
    for (const q of near) lines.push(`  ${q.receivedAt - r.receivedAt} ${q.answeredAt === undefined ? '-' : q.answeredAt - r.receivedAt} ${q.status ?? '-'} ${q.fault ?? ''} units=${unitsOf(q)}`);
  }
  return lines;
}

/**
 * The fake Market's fixed quota windows of one endpoint and owner, replayed from its request log
 * the way the fake opens them: a window opens when a request reaches the quota book (every
 * authorised request but those dropped or hung before it) after the previous window ended, at
 * the moment it does (its answer time; for faults after applying, which send no answer, its
 * arrival plus the fake's latency). Returns the units charged in each window.
 *
 * (The helpers' quotaWindows opens windows at arrival times, hung and dropped requests included;
 * near a window's edge that can put two windows' requests into one and report a false excess.)
 */
export function replayQuotaWindows(requests: readonly FakeRequest[], endpoint: MarketOperation, owner: number, windowMs: number, latencyMs = 0): QuotaWindow[] {
  const touched = requests
    .filter((r) => r.endpoint === endpoint && ownerOf(r) === owner && r.status !== 401 && r.status !== 403)
    .filter((r) => r.fault !== 'drop' && !(r.fault === 'hang' && r.status === undefined))
    .map((r) => ({ r, at: r.answeredAt ?? r.receivedAt + latencyMs }))
    .sort((a, b) => a.at - b.at);
  const windows: { startedAt: number; units: number; requests: number }[] = [];
  for (const { r, at } of touched) {
    let w = windows.at(-1);
    if (w === undefined || at >= w.startedAt + windowMs) {
      w = { startedAt: at, units: 0, requests: 0 };
      windows.push(w);
    }
    if (charged(r)) {
      w.units += unitsOf(r);
      w.requests += 1;
    }
  }
  return windows;
}
