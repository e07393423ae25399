// Flushing the outbox with progress, and what the Market said about it: the shared core of
// `flush`, `ship --flush` and the demo.

import type { Engine, FlushReport } from '../engine/engine.js';
import { MARKET_ERROR_CODES } from '../market/errors.js';
import type { OutboxState } from '../store/outbox.js';
import { CLI_ERROR_CODES, CliError, EXIT_CODES } from './errors.js';
import { isoTime, label, num, seconds } from '../format.js';
import type { Output } from './output.js';
import { createProgress } from './progress.js';
import type { StopSignals } from './stop-signals.js';

type DispatchCounters = FlushReport['counters'];
type CampaignError = FlushReport['lastErrors'][number];
type BudgetWait = FlushReport['waitingFor'][number];

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
  readonly halted: FlushReport['halted'];
  /** Market calls of this flush that were answered and that failed. */
  readonly marketCalls: FlushReport['marketCalls'];
  /** The latest failed Market call of each campaign during this flush. */
  readonly lastErrors: readonly CampaignError[];
  /** Budgets spent or blocked when the flush ended, and until when. */
  readonly waitingFor: readonly BudgetWait[];
  /** The signal (SIGINT, SIGTERM) that stopped the flush early, if one did. */
  readonly interruptedBy?: NodeJS.Signals;
}

/**
 * Prints each campaign's latest Market error on stderr when it is new, not on every retry, so an
 * operator sees at once why nothing moves. `above` clears a progress line drawn meanwhile.
 */
export function errorReporter(out: Output, above: (write: () => void) => void, since: number): (errors: readonly CampaignError[]) => void {
  const shown = new Map<number, string>();
  return (errors) => {
    for (const e of errors) {
      const text = `[${e.code}] ${e.message}`;
      if (e.at < since || shown.get(e.campaignId) === text) continue;
      shown.set(e.campaignId, text);
      above(() => out.warn(`campaign ${e.campaignId}: ${text}`));
    }
  };
}

/** "campaign 21000101: updateOrderStatuses quota spent, the window reopens at 2026-12-02T14:05:12.345Z (in 12.4 s)". */
export function describeWait(w: BudgetWait, now: number): string {
  const what = w.reason === 'budget' ? `${w.operation} quota spent, the window reopens at` : `${w.operation} blocked by the Market (420) until`;
  return `${w.scope.kind} ${w.scope.id}: ${what} ${isoTime(w.until)} (in ${seconds(Math.max(0, w.until - now))})`;
}

/** Prints what the engine waits for when it is new (another budget, or another window), not on every pass. */
export function waitReporter(out: Output, above: (write: () => void) => void, clock: () => number): (waits: readonly BudgetWait[]) => void {
  const shown = new Set<string>();
  return (waits) => {
    for (const w of waits) {
      const key = `${w.operation}@${w.scope.kind}:${w.scope.id}:${w.reason}:${w.until}`;
      if (shown.has(key)) continue;
      shown.add(key);
      above(() => out.warn(`waiting: ${describeWait(w, clock())}`));
    }
  };
}

export function describeLastErrors(errors: readonly CampaignError[]): string[] {
  return errors.map((e) => `  campaign ${e.campaignId}: last error at ${isoTime(e.at)} [${e.code}] ${e.message}`);
}

/** The changes the Market rejected since `since` (epoch ms, engine clock). */
export async function rejectedSince(engine: Engine, since: number, limit = 1_000): Promise<Rejection[]> {
  const rows = await engine.settledChanges({ state: 'rejected', since, limit });
  return rows.map((r) => ({ orderId: r.order_id, status: r.status, substatus: r.substatus, reason: r.last_error ?? 'no reason recorded' }));
}

export async function flushWithProgress(
  engine: Engine,
  out: Output,
  options: { maxWaitMs?: number; stop?: StopSignals; label?: string } = {},
): Promise<FlushOutcome> {
  const started = engine.clock();
  const atStart = await engine.stats();
  const openAtStart = atStart.open;
  const progress = createProgress(out, options.label ?? 'flush');
  const reportErrors = errorReporter(out, progress.above, started);
  const reportWaits = waitReporter(out, progress.above, () => engine.clock());
  progress.update(0, openAtStart);
  let report;
  try {
    report = await engine.flush({
      untilIdle: true,
      maxWaitMs: options.maxWaitMs ?? 60_000,
      ...(options.stop ? { signal: options.stop.signal } : {}),
      onProgress: (r) => {
        reportErrors(r.lastErrors);
        reportWaits(r.waitingFor);
        const total = Math.max(openAtStart, r.open);
        const c = r.counters;
        const failed = r.marketCalls.failed - atStart.marketCalls.failed;
        progress.update(
          total - r.open,
          total,
          `accepted ${c.accepted}  rejected ${c.rejected}  ops ${c.operationsStarted}  read-backs ${c.readBacks}${failed > 0 ? `  failed calls ${failed}` : ''}`,
        );
      },
    });
  } finally {
    progress.stop();
  }
  const interruptedBy = options.stop?.received;
  return {
    elapsedMs: engine.clock() - started,
    openAtStart,
    open: report.open,
    settled: settledBetween(atStart.outbox, report.outbox),
    outbox: report.outbox,
    counters: report.counters,
    rejections: await rejectedSince(engine, started),
    halted: report.halted,
    marketCalls: {
      answered: report.marketCalls.answered - atStart.marketCalls.answered,
      failed: report.marketCalls.failed - atStart.marketCalls.failed,
    },
    lastErrors: report.lastErrors.filter((e) => e.at >= started),
    waitingFor: report.waitingFor,
    ...(interruptedBy ? { interruptedBy } : {}),
  };
}

/** The changes that settled between two outbox counts, by outcome. */
export function settledBetween(before: Record<OutboxState, number>, after: Record<OutboxState, number>): FlushOutcome['settled'] {
  return { accepted: after.accepted - before.accepted, rejected: after.rejected - before.rejected, superseded: after.superseded - before.superseded };
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
  if (outcome.marketCalls.failed > 0) lines.push(`  Market calls: ${num(outcome.marketCalls.answered)} answered, ${num(outcome.marketCalls.failed)} failed`);
  lines.push(...describeLastErrors(outcome.lastErrors));
  if (outcome.open > 0) for (const w of outcome.waitingFor) lines.push(`  waiting: ${describeWait(w, Date.now())}`);
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
    marketCalls: outcome.marketCalls,
    lastErrors: outcome.lastErrors,
    waitingFor: outcome.waitingFor,
    ...(outcome.interruptedBy ? { interruptedBy: outcome.interruptedBy } : {}),
  };
}

// Codes that point at the address or the network rather than at the Market itself.
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([MARKET_ERROR_CODES.network, MARKET_ERROR_CODES.timeout]);

/**
 * The error a flush ends with, if any: halted campaigns, Market rejections, a stop signal, a
 * Market that failed every call (its latest error's code, e.g. MARKET_NETWORK), unsettled changes.
 */
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
  // The operator stopped it: say so first, whatever the Market did meanwhile (listed above).
  if (outcome.open > 0 && outcome.interruptedBy) {
    return new CliError(
      CLI_ERROR_CODES.interrupted,
      `${outcome.interruptedBy} stopped the flush with ${outcome.open} change(s) still open; they are kept (a send left unanswered is read back before any resend). Run \`ym-orders flush\` again.`,
      EXIT_CODES.failed,
    );
  }
  const latest = outcome.lastErrors.reduce<CampaignError | undefined>((a, e) => (a === undefined || e.at > a.at ? e : a), undefined);
  if (outcome.open > 0 && outcome.marketCalls.answered === 0 && latest) {
    const hint = UNREACHABLE_CODES.has(latest.code)
      ? 'check the Market URL (--api-url, YM_API_URL or the config file\'s "apiUrl") and the network'
      : 'the Market is failing; try again later';
    return new CliError(
      latest.code,
      `Every Market call of this flush failed (${num(outcome.marketCalls.failed)}); the latest, for campaign ${latest.campaignId}: ${latest.message}. ${outcome.open} change(s) stay open: ${hint}, then run \`ym-orders flush\` again.`,
      EXIT_CODES.failed,
      { campaignId: latest.campaignId, operation: latest.operation },
    );
  }
  if (outcome.open > 0) {
    const now = Date.now();
    const waits = outcome.waitingFor.map((w) => describeWait(w, now));
    const why = waits.length > 0 ? `waiting for ${waits.join('; ')}` : 'waiting for a retry or an operation';
    return new CliError(
      CLI_ERROR_CODES.notSettled,
      `${outcome.open} change(s) are still open (${why}); run \`ym-orders flush\` again or keep \`ym-orders run\` going.`,
      EXIT_CODES.failed,
    );
  }
  return undefined;
}
