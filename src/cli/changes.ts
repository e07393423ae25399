// Queuing seller changes for `ship`, `cancel` and `set-status`: every id is checked to be
// tracked first (an unknown id changes nothing), the engine judges each change, and a refusal
// is printed with its blocker codes. Nothing refused is ever sent. Shared by `ship`, `cancel`
// and `set-status` (queueAndReport, with --flush to send at once).

import type { Engine, RequestChangesResult } from '../engine/engine.js';
import type { ChangeTarget as EngineChangeTarget, RequestChangeCommand } from '../engine/commands.js';
import { ChangeRefusedError, OrderNotFoundError } from '../engine/errors.js';
import type { Blocker } from '../../machines/explain.js';
import { findSellerRule, type StatusTarget } from '../../machines/rules.js';
import type { CommandContext } from './command.js';
import { apiKeyOf, withEngine } from './context.js';
import { CLI_ERROR_CODES, CliError, EXIT_CODES } from './errors.js';
import { describeFlush, flushFailure, flushJson, flushWithProgress, type FlushOutcome } from './flushing.js';
import { stopOnSignals } from './stop-signals.js';
import { collectIds } from './input.js';
import { label, num } from '../format.js';

export interface ChangeTarget {
  readonly status: string;
  readonly substatus?: string;
  readonly realDeliveryDate?: string;
  readonly callEvidence?: RequestChangeCommand['callEvidence'];
  /** `chain`: a target several steps away, planned and sent step after step (set-status --chain). */
  readonly via?: 'step' | 'chain';
}

/** One step of a plan as the CLI shows it: `1/2 DBS.hand-to-delivery → DELIVERY/DELIVERY_SERVICE_RECEIVED (queued)`. */
export interface PlanLine {
  readonly orderId: number;
  readonly step: number;
  readonly of: number;
  readonly ruleId: string;
  readonly status: string;
  readonly substatus: string;
  /** queued: the step on its way now; planned: sent once the one before is accepted; allowed: a dry run's verdict. */
  readonly state: 'queued' | 'planned' | 'allowed' | 'refused';
}

export interface Refused {
  readonly orderId: number;
  readonly from: string;
  readonly code: string;
  readonly message: string;
  readonly blockers: readonly Blocker[];
  readonly allowedTargets: readonly StatusTarget[];
}

export interface QueueOutcome {
  readonly target: ChangeTarget;
  /** Orders asked for (with --all-or-nothing a refusal queues none of them). */
  readonly requested: number;
  readonly queued: readonly { orderId: number; status: string; substatus: string | null; change: string }[];
  readonly refused: readonly Refused[];
}

async function refusedOf(engine: Engine, orderId: number, error: unknown): Promise<Refused> {
  const order = await engine.findOrder(orderId);
  const from = order ? label(order.status, order.substatus) : 'unknown';
  if (error instanceof ChangeRefusedError) {
    return { orderId, from, code: error.code, message: error.message, blockers: error.blockers, allowedTargets: error.allowedTargets };
  }
  const e = error as { code?: string; message?: string };
  return { orderId, from, code: e.code ?? 'INTERNAL', message: e.message ?? String(error), blockers: [], allowedTargets: [] };
}

/** Throws ORDER_NOT_FOUND (exit 2) naming every id the database does not track. */
export async function requireTracked(engine: Engine, ids: readonly number[]): Promise<void> {
  const unknown: number[] = [];
  for (const id of ids) if ((await engine.findOrder(id)) === undefined) unknown.push(id);
  if (unknown.length === 1) throw new OrderNotFoundError(unknown[0]!);
  if (unknown.length > 1) {
    const shown = unknown.slice(0, 10).join(', ') + (unknown.length > 10 ? `, … (${unknown.length} in all)` : '');
    throw new CliError('ORDER_NOT_FOUND', `Orders ${shown} are not tracked; import or sync them first. Nothing was queued.`, EXIT_CODES.usage, { orderIds: unknown });
  }
}

/**
 * Every refusal of an all-or-nothing request, as the engine explains them: its atomic call stops
 * at the first (`first`), and the operator should see them all. Nothing was written.
 */
async function allRefusals(engine: Engine, ids: readonly number[], target: EngineChangeTarget, first: ChangeRefusedError): Promise<Refused[]> {
  const refused: Refused[] = [];
  for (const id of ids) {
    const explanation = await engine.explain(id, target);
    if (!explanation.allowed) refused.push(await refusedOf(engine, id, new ChangeRefusedError(id, target, explanation.blockers, explanation.allowedTargets)));
  }
  // The order that was refused may have moved since (another process): its refusal still stands.
  return refused.length > 0 ? refused : [await refusedOf(engine, first.orderId, first)];
}

/**
 * Queues `target` for every id. With `atomic`, any refusal queues nothing at all; otherwise the
 * legal changes are queued and the refused ones reported.
 */
export async function queueChanges(engine: Engine, ids: readonly number[], target: ChangeTarget, options: { atomic?: boolean } = {}): Promise<QueueOutcome> {
  await requireTracked(engine, ids);
  // The operator's words, judged by the engine: a value no list has is refused (UNKNOWN_TARGET)
  // with the targets allowed, so the typed target is asserted here rather than checked twice.
  const request = target as EngineChangeTarget;
  const commands: RequestChangeCommand[] = ids.map((orderId) => ({ orderId, ...request }));
  let result: RequestChangesResult;
  try {
    result = await engine.requestChanges(commands, { atomic: options.atomic ?? false });
  } catch (error) {
    if (options.atomic && error instanceof ChangeRefusedError) return { target, requested: ids.length, queued: [], refused: await allRefusals(engine, ids, request, error) };
    throw error;
  }
  const refused: Refused[] = [];
  for (const r of result.refused) refused.push(await refusedOf(engine, r.orderId ?? 0, r.error));
  return {
    target,
    requested: ids.length,
    queued: result.queued.map((o) => ({ orderId: o.orderId, status: o.status, substatus: o.substatus, change: o.change })),
    refused,
  };
}

/** The plan of each order a chain was queued for: its steps, the first one queued. */
export async function queuedPlans(engine: Engine, outcome: QueueOutcome): Promise<PlanLine[]> {
  const lines: PlanLine[] = [];
  for (const { orderId } of outcome.queued) {
    const order = await engine.getOrder(orderId);
    const chain = order.chain;
    if (chain !== null) {
      for (const [i, s] of chain.steps.entries()) {
        lines.push({ orderId, step: i + 1, of: chain.of, ruleId: s.ruleId, status: s.status, substatus: s.substatus, state: i + 1 === chain.step ? 'queued' : 'planned' });
      }
    } else if (order.pending) {
      const rule = findSellerRule(order.model, { status: order.status, substatus: order.substatus ?? undefined }, order.pending);
      lines.push({ orderId, step: 1, of: 1, ruleId: rule?.id ?? '', status: order.pending.status, substatus: order.pending.substatus, state: 'queued' });
    }
  }
  return lines;
}

export function describePlan(plan: readonly PlanLine[]): string[] {
  return plan.map((p) => `  order ${p.orderId}: ${p.step}/${p.of} ${p.ruleId} → ${label(p.status, p.substatus)} (${p.state})`);
}

/** How each order's chain ended after a --flush: reached, stopped (and why), or still on its way. */
export async function chainEnds(engine: Engine, orderIds: readonly number[]): Promise<{ orderId: number; end: string; reason?: string }[]> {
  const ends: { orderId: number; end: string; reason?: string }[] = [];
  for (const orderId of orderIds) {
    const order = await engine.getOrder(orderId);
    const chain = order.lastOutcome?.chain;
    if (order.chain !== null) ends.push({ orderId, end: `on its way (step ${order.chain.step} of ${order.chain.of})` });
    else if (chain !== undefined) ends.push({ orderId, end: chain.end, ...(chain.stopReason ? { reason: `[${chain.stopReason.code}] ${chain.stopReason.message}` } : {}) });
  }
  return ends;
}

export function describeQueue(outcome: QueueOutcome, atomic: boolean): string[] {
  const wanted = label(outcome.target.status, outcome.target.substatus);
  const lines: string[] = [];
  if (outcome.queued.length > 0) lines.push(`queued ${num(outcome.queued.length)} change(s) to ${wanted}; \`ym-orders flush\` sends them`);
  else lines.push(`queued nothing${atomic && outcome.refused.length > 0 ? ' (--all-or-nothing)' : ''}`);
  for (const r of outcome.refused) {
    if (r.blockers.length === 0) {
      lines.push(`  order ${r.orderId} (${r.from}): refused [${r.code}] ${r.message}`);
      continue;
    }
    lines.push(`  order ${r.orderId} (${r.from}): refused ${wanted}`);
    for (const b of r.blockers) lines.push(`    [${b.code}] ${b.message}`);
  }
  return lines;
}

export function queueJson(outcome: QueueOutcome): Record<string, unknown> {
  return {
    target: outcome.target.callEvidence ? { ...outcome.target, callEvidence: '(given)' } : outcome.target,
    queued: outcome.queued,
    refused: outcome.refused.map((r) => ({ orderId: r.orderId, from: r.from, code: r.code, blockers: r.blockers, allowedTargets: r.allowedTargets })),
  };
}

export function queueFailure(outcome: QueueOutcome): CliError | undefined {
  if (outcome.refused.length === 0) return undefined;
  const codes = [...new Set(outcome.refused.flatMap((r) => (r.blockers.length > 0 ? r.blockers.map((b) => b.code) : [r.code])))];
  return new CliError(
    CLI_ERROR_CODES.changeRefused,
    `${outcome.refused.length} of ${outcome.requested} change(s) refused locally (${codes.join(', ')}); nothing was sent for them.`,
    EXIT_CODES.failed,
  );
}

/** The body of `ship`, `cancel` and `set-status`: collect ids, queue, report refusals (exit 1), and with --flush send. */
export interface ChangeOptions {
  readonly file?: string;
  readonly allOrNothing?: boolean;
  readonly flush?: boolean;
}

/** set-status --chain: print each order's plan, and with --flush how its chain ended. */
export interface ReportOptions {
  readonly plan?: boolean;
}

export async function queueAndReport(
  ctx: CommandContext<ChangeOptions>,
  args: readonly string[],
  target: ChangeTarget,
  ids?: readonly number[],
  report: ReportOptions = {},
): Promise<number> {
  const { io, out, globals, opts } = ctx;
  // Check the key before anything is queued, so a missing key changes nothing.
  if (opts.flush) apiKeyOf(io, '--flush');
  const orderIds = ids ?? (await collectIds(io, args, opts.file));
  return withEngine(io, globals, { mustExist: true, api: opts.flush ? '--flush' : false }, async (engine) => {
    const outcome = await queueChanges(engine, orderIds, target, { atomic: opts.allOrNothing ?? false });
    const plan = report.plan ? await queuedPlans(engine, outcome) : undefined;
    let flushed: FlushOutcome | undefined;
    if (opts.flush && outcome.queued.length > 0) {
      const stop = stopOnSignals(out);
      try {
        flushed = await flushWithProgress(engine, out, { stop });
      } finally {
        stop.dispose();
      }
    }
    const ends = plan && flushed ? await chainEnds(engine, outcome.queued.map((q) => q.orderId)) : undefined;
    out.result(
      () => [
        ...describeQueue(outcome, opts.allOrNothing ?? false),
        ...(plan ? describePlan(plan) : []),
        ...(flushed ? describeFlush(flushed) : []),
        ...(ends ?? []).map((e) => `  order ${e.orderId}: chain ${e.end}${e.reason ? ` ${e.reason}` : ''}`),
      ],
      () => ({ ...(plan ? { plan } : {}), ...queueJson(outcome), ...(flushed ? { flush: flushJson(flushed) } : {}), ...(ends ? { chains: ends } : {}) }),
    );
    const failure = queueFailure(outcome) ?? (flushed ? flushFailure(flushed) : undefined);
    if (failure) throw failure;
    return 0;
  });
}
