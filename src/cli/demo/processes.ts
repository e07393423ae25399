// The demo's flush done by several processes (`ym-orders demo --processes <n>`): n children
// (demo/worker.ts) share the demo's PostgreSQL schema, each running the run loop on an engine of
// its own with its own lease owner, while this process hosts the fake Market. It waits on the
// outbox's open count through its own engine, then stops the children with SIGTERM, and reads the
// counters each one saved under its owner: its share of the work.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../../engine/concurrency.js';
import { dispatchCounters, type DispatchCounters } from '../../engine/counter-book.js';
import type { Engine, FlushReport } from '../../engine/engine.js';
import { READ_COUNTERS } from '../../engine/order-reader.js';
import { CliError, EXIT_CODES } from '../errors.js';
import { rejectedSince, settledBetween, type FlushOutcome } from '../flushing.js';
import type { Output } from '../output.js';
import { createProgress } from '../progress.js';
import type { DemoEngineSettings } from './engine-options.js';
import type { WorkerMessage } from './worker.js';

type ReadCounts = FlushReport['reads'];

/** One child's part of the flush, from the counters its engine saved. */
export interface ProcessShare {
  /** 1 to n, in the order started. */
  readonly process: number;
  readonly pid: number;
  /** Its engine's lease owner, the name its counters are saved under. */
  readonly owner: string;
  readonly counters: DispatchCounters;
  /** Its reads of notified orders (it applied notifications too, while it ran). */
  readonly reads: ReadCounts;
}

// worker.js beside this file once built; worker.ts when the CLI runs under tsx, whose loader the
// child inherits (fork passes on this process's execArgv).
const WORKER = fileURLToPath(new URL(`./worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const POLL_MS = 100;
/** After SIGTERM a child finishes the batch in flight (within the request timeout) and closes its engine. */
const STOP_GRACE_MS = 30_000;
/** How much of a child's stderr a failure shows: the end of a stack trace, say. */
const STDERR_TAIL = 2_000;

interface Child {
  readonly process: number;
  readonly handle: ChildProcess;
  /** Resolves with its owner once its engine is open; rejects if it fails or exits first. */
  readonly ready: Promise<string>;
  readonly exited: Promise<void>;
  owner?: string;
  failure?: { readonly code: string; readonly message: string };
  exit?: { readonly code: number | null; readonly signal: NodeJS.Signals | null };
  stderr: string;
}

function failedError(c: Child): CliError {
  const why = c.failure
    ? `[${c.failure.code}] ${c.failure.message}`
    : c.exit === undefined
      ? 'did not stop'
      : `exited with ${c.exit.signal ?? `code ${c.exit.code}`}${c.stderr.trim() ? `: ${c.stderr.trim()}` : ''}`;
  return new CliError('DEMO_PROCESS_FAILED', `process ${c.process} (pid ${c.handle.pid ?? '?'}) failed: ${why}`, EXIT_CODES.failed, {
    process: c.process,
    ...(c.failure ? { cause: c.failure.code } : {}),
  });
}

function startChild(index: number, settings: DemoEngineSettings): Child {
  const handle = fork(WORKER, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let onReady: (owner: string) => void = () => undefined;
  let onNotReady: (error: CliError) => void = () => undefined;
  const ready = new Promise<string>((resolve, reject) => {
    onReady = resolve;
    onNotReady = reject;
  });
  // A child that fails after the caller stopped waiting for `ready` is reported by its exit.
  ready.catch(() => undefined);
  let onExit: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (onExit = resolve));
  const c: Child = { process: index, handle, ready, exited, stderr: '' };
  handle.stderr!.setEncoding('utf8').on('data', (chunk: string) => (c.stderr = (c.stderr + chunk).slice(-STDERR_TAIL)));
  handle.on('message', (message: WorkerMessage) => {
    if (message.type === 'ready') {
      c.owner = message.owner;
      onReady(message.owner);
    } else {
      c.failure = { code: message.code, message: message.message };
      onNotReady(failedError(c));
    }
  });
  // A spawn that fails ends as a failed child ('close' follows).
  handle.on('error', (error) => (c.stderr += `\n${error.message}`));
  handle.on('close', (code, signal) => {
    c.exit = { code, signal };
    onNotReady(failedError(c));
    onExit();
  });
  handle.send(settings);
  return c;
}

/** SIGTERM, then SIGKILL for a child still running STOP_GRACE_MS later. */
async function stop(c: Child): Promise<void> {
  if (c.exit) return;
  c.handle.kill('SIGTERM');
  const grace = new AbortController();
  const stoppedInTime = await Promise.race([c.exited.then(() => true), sleep(STOP_GRACE_MS, grace.signal).then(() => grace.signal.aborted)]);
  grace.abort();
  if (!stoppedInTime) {
    c.handle.kill('SIGKILL');
    await c.exited;
  }
}

function add(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [name, n] of Object.entries(from)) into[name] = (into[name] ?? 0) + n;
}

/** Counters of several engines added up. */
export function sumCounters(list: readonly DispatchCounters[]): DispatchCounters {
  const calls: Record<string, number> = {};
  const rest: Record<string, number> = {};
  for (const { calls: c, ...counts } of list) {
    add(calls, c);
    add(rest, counts);
  }
  return { ...dispatchCounters(rest), calls };
}

/** Reads of several engines added up. */
export function sumReads(list: readonly ReadCounts[]): ReadCounts {
  return list.reduce((sum, r) => ({ calls: sum.calls + r.calls, orders: sum.orders + r.orders, notFound: sum.notFound + r.notFound }), { calls: 0, orders: 0, notFound: 0 });
}

/** An engine's reads, from its saved counters. */
function readsOf(rows: Readonly<Record<string, number>>): ReadCounts {
  return { calls: rows[READ_COUNTERS.calls] ?? 0, orders: rows[READ_COUNTERS.orders] ?? 0, notFound: rows[READ_COUNTERS.notFound] ?? 0 };
}

export interface ProcessesFlush {
  readonly flush: FlushOutcome;
  readonly shares: readonly ProcessShare[];
}

/**
 * Starts `processes` children on the demo's database and waits until no change is open (or
 * `maxWaitMs` passed, or a child failed), drawing progress; then stops them all. Throws
 * DEMO_PROCESS_FAILED when a child failed or did not exit with 0.
 */
export async function flushWithProcesses(
  engine: Engine,
  out: Output,
  options: { processes: number; settings: DemoEngineSettings; maxWaitMs: number; label: string },
): Promise<ProcessesFlush> {
  const started = engine.clock();
  const atStart = await engine.stats();
  const total = atStart.open;
  const progress = createProgress(out, options.label);
  const draw = (r: FlushReport): void =>
    progress.update(
      total - r.open,
      total,
      `accepted ${r.outbox.accepted - atStart.outbox.accepted}  rejected ${r.outbox.rejected - atStart.outbox.rejected}  ${options.processes} processes`,
    );
  draw(atStart);
  const children = Array.from({ length: options.processes }, (_, i) => startChild(i + 1, options.settings));
  try {
    await Promise.all(children.map((c) => c.ready));
    let report = atStart;
    const deadline = started + options.maxWaitMs;
    while (report.open > 0 && engine.clock() < deadline && children.every((c) => c.exit === undefined)) {
      await sleep(POLL_MS);
      report = await engine.stats();
      draw(report);
    }
  } finally {
    progress.stop();
    await Promise.all(children.map(stop));
  }
  const failed = children.find((c) => c.failure !== undefined || c.exit?.code !== 0);
  if (failed) throw failedError(failed);

  const saved = await engine.store.read(async (tx) => {
    const rows: Record<string, number>[] = [];
    for (const c of children) rows.push(await tx.counters.forOwner(c.owner!));
    return rows;
  });
  const shares = children.map((c, i) => ({ process: c.process, pid: c.handle.pid!, owner: c.owner!, counters: dispatchCounters(saved[i]!), reads: readsOf(saved[i]!) }));
  const end = await engine.stats();
  const sum = (name: string): number => saved.reduce((n, rows) => n + (rows[name] ?? 0), 0);
  return {
    shares,
    flush: {
      elapsedMs: engine.clock() - started,
      openAtStart: total,
      open: end.open,
      settled: settledBetween(atStart.outbox, end.outbox),
      outbox: end.outbox,
      counters: sumCounters(shares.map((s) => s.counters)),
      rejections: await rejectedSince(engine, started),
      halted: end.halted,
      marketCalls: { answered: sum('market.answered'), failed: sum('market.failed') },
      // Each child keeps its latest errors in its own memory; the halts above are the database's.
      lastErrors: [],
      waitingFor: [],
    },
  };
}
