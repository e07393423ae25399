// Flushing the outbox with progress, and what the Market said about it: the shared core of
// `flush`, `ship --flush` and the demo.

import type { Engine } from '../engine/engine.js';
import type { DispatchCounters, CampaignHalt } from '../engine/dispatcher.js';
import type { OutboxState } from '../store/outbox-table.js';
import { CLI_ERROR_CODES, CliError, EXIT_CODES } from './errors.js';
import { label, num, seconds } from './format.js';
import type { Output } from './output.js';
import { createProgress } from './progress.js';

export interface Rejection {
  readonly orderId: number;
  readonly status: string;
  readonly substatus: string;
  readonly reason: string;
}

export interface FlushOutcome {
  readonly elapsedMs: number;
  /** Changes open when the flush began. */
  readonly openAtStart: number;
  readonly open: number;
  /** Changes that settled during this flush, by outcome (outbox deltas: read-backs and operations included). */
  readonly settled: { readonly accepted: number; readonly rejected: number; readonly superseded: number };
  readonly outbox: Record<OutboxState, number>;
  /** This process's counters (HTTP calls by method, accepted, rejected, read-backs...). */
  readonly counters: DispatchCounters;
  readonly rejections: readonly Rejection[];
  readonly halted: readonly CampaignHalt[];
}

/**
 * The changes the Market rejected since `since` (epoch ms, engine clock).
 * Reads the outbox directly: the engine has no query for settled changes yet.
 */
export function rejectedSince(engine: Engine, since: number, limit = 1_000): Rejection[] {
  const rows = engine.store.db
    .prepare(`SELECT order_id, status, substatus, last_error FROM outbox WHERE state = 'rejected' AND updated_at >= ? ORDER BY id LIMIT ?`)
    .all(since, limit) as { order_id: number; status: string; substatus: string; last_error: string | null }[];
  return rows.map((r) => ({ orderId: r.order_id, status: r.status, substatus: r.substatus, reason: r.last_error ?? 'no reason recorded' }));
}

export async function flushWithProgress(
  engine: Engine,
  out: Output,
  options: { maxWaitMs?: number; signal?: AbortSignal; label?: string } = {},
): Promise<FlushOutcome> {
  const started = engine.clock();
  const atStart = engine.stats();
  const openAtStart = atStart.open;
  const progress = createProgress(out, options.label ?? 'flush');
  progress.update(0, openAtStart);
  let report;
  try {
    report = await engine.flush({
      untilIdle: true,
      maxWaitMs: options.maxWaitMs ?? 60_000,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (r) => {
        const total = Math.max(openAtStart, r.open);
        const c = r.counters;
        progress.update(total - r.open, total, `accepted ${c.accepted}  rejected ${c.rejected}  ops ${c.operationsStarted}  read-backs ${c.readBacks}`);
      },
    });
  } finally {
    progress.stop();
  }
  return {
    elapsedMs: engine.clock() - started,
    openAtStart,
    open: report.open,
    settled: {
      accepted: report.outbox.accepted - atStart.outbox.accepted,
      rejected: report.outbox.rejected - atStart.outbox.rejected,
      superseded: report.outbox.superseded - atStart.outbox.superseded,
    },
    outbox: report.outbox,
    counters: report.counters,
    rejections: rejectedSince(engine, started),
    halted: report.halted,
  };
}

export function callsLine(counters: DispatchCounters): string {
  const calls = Object.entries(counters.calls).filter(([, n]) => n > 0);
  return calls.length === 0 ? 'none' : calls.map(([method, n]) => `${method} ${num(n)}`).join(', ');
}

export function describeFlush(outcome: FlushOutcome): string[] {
  const c = outcome.counters;
  const s = outcome.settled;
  const lines = [
    `flushed ${num(outcome.openAtStart)} open change(s) in ${seconds(outcome.elapsedMs)}: ${num(s.accepted)} accepted, ${num(s.rejected)} rejected${s.superseded ? `, ${num(s.superseded)} superseded` : ''}, ${num(outcome.open)} still open`,
    `  HTTP calls: ${callsLine(c)}`,
    `  ${num(c.operationsStarted)} async operation(s) started; ${num(c.uncertain)} unknown outcome(s), ${num(c.readBacks)} order(s) read back; ${num(c.deferred)} deferred; 420s ${num(c.rateLimited)}`,
  ];
  for (const r of outcome.rejections.slice(0, 20)) lines.push(`  order ${r.orderId}: the Market rejected ${label(r.status, r.substatus)}: ${r.reason}`);
  if (outcome.rejections.length > 20) lines.push(`  … and ${outcome.rejections.length - 20} more rejection(s)`);
  for (const h of outcome.halted) lines.push(`  campaign ${h.campaignId} halted [${h.code}]: ${h.message}`);
  return lines;
}

export function flushJson(outcome: FlushOutcome): Record<string, unknown> {
  return {
    elapsedMs: outcome.elapsedMs,
    openAtStart: outcome.openAtStart,
    open: outcome.open,
    settled: outcome.settled,
    outbox: outcome.outbox,
    counters: outcome.counters,
    rejections: outcome.rejections,
    halted: outcome.halted,
  };
}

/** The error a flush ends with, if any: halted campaigns, Market rejections, unsettled changes. */
export function flushFailure(outcome: FlushOutcome): CliError | undefined {
  const halt = outcome.halted[0];
  if (halt) {
    return new CliError(halt.code, `Campaign ${halt.campaignId}: ${halt.message}. Check YM_API_KEY and the campaign's access; nothing more was sent for it.`, EXIT_CODES.failed);
  }
  if (outcome.rejections.length > 0) {
    return new CliError(
      CLI_ERROR_CODES.marketRejected,
      `The Market rejected ${outcome.rejections.length} change(s) (listed above); their orders keep the status the Market reports.`,
      EXIT_CODES.failed,
    );
  }
  if (outcome.open > 0) {
    return new CliError(
      CLI_ERROR_CODES.notSettled,
      `${outcome.open} change(s) are still open (waiting for a rate-limit window, a retry or an operation); run \`ym-orders flush\` again or keep \`ym-orders run\` going.`,
      EXIT_CODES.failed,
    );
  }
  return undefined;
}
