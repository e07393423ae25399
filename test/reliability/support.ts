// Shared plumbing for the reliability suites (issue #6): sizes (normal vs SOAK=1), seeds,
// the run-loop worker as a child process, and small tallies for the figures each suite prints.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MarketOperation } from '../../src/market/errors.js';
import type { FakeRequest } from '../../src/testing/index.js';
import { charged, ownerOf, unitsOf, type QuotaWindow } from '../helpers/effects-fixtures.js';
import type { RunWorkerConfig } from './workers/run-worker.js';

export const SOAK = process.env.SOAK === '1';

/** `normal` in `npm test`, `soak` under `npm run soak`. */
export function sized<T>(normal: T, soak: T): T {
  return SOAK ? soak : normal;
}

/** A seed from the environment (to replay a run) or a fresh random one. */
export function seedFrom(name: string): number {
  const given = process.env[name];
  return given !== undefined && given !== '' ? Number(given) : Math.floor(Math.random() * 2 ** 31);
}

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

const live = new Set<ChildProcess>();

/** SIGKILLs every worker still running (by its own pid); for afterAll. */
export function killWorkers(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/** Starts `test/reliability/workers/run-worker.ts` with `config`; the key goes in YM_API_KEY. */
export function startRunWorker(config: RunWorkerConfig, apiKey: string): RunningWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN_WORKER, JSON.stringify(config)], {
    cwd: REPO_ROOT,
    env: { ...process.env, YM_API_KEY: apiKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
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
  const done = new Promise<WorkerExit>((resolve) => {
    child.on('close', (code, signal) => {
      exited = true;
      live.delete(child);
      onFail(new Error(`worker exited (${code ?? signal}) before it was ready:\n${stdout}\n${stderr}`));
      resolve({ code, signal, stdout, stderr });
    });
  });
  // A kill before `ready` is a legitimate chaos outcome: callers that do not await `ready` must
  // not see an unhandled rejection.
  ready.catch(() => undefined);
  return { child, ready, done, exited: () => exited };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
