// `ym-orders set-status <id> <STATUS> [SUBSTATUS]`: queue any seller change the rules allow,
// e.g. DBS deliveries with a real delivery date, or USER_UNREACHABLE with call evidence. With
// --chain, a target several steps away: the engine plans the shortest legal chain and sends it
// step after step; --dry-run prints the verdict (the plan, each step judged) and queues nothing.

import type { Command } from 'commander';
import { act, type Cli, type CommandContext } from '../command.js';
import { withEngine } from '../context.js';
import { CLI_ERROR_CODES, CliError, EXIT_CODES } from '../errors.js';
import { label } from '../../format.js';
import { inputError, usageError } from '../errors.js';
import { parseOrderId, readTextFile } from '../input.js';
import { describePlan, queueAndReport, requireTracked, type ChangeOptions, type ChangeTarget, type PlanLine } from '../changes.js';
import type { ChangeTarget as EngineChangeTarget } from '../../engine/commands.js';

interface SetStatusOptions extends ChangeOptions {
  readonly realDeliveryDate?: string;
  readonly callEvidence?: string;
  readonly chain?: boolean;
  readonly dryRun?: boolean;
}

/** --dry-run: the engine's verdict on the request, step by step for a chain; nothing is queued or sent. */
async function dryRun(ctx: CommandContext<SetStatusOptions>, orderId: number, target: ChangeTarget): Promise<number> {
  const { io, out, globals } = ctx;
  return withEngine(io, globals, { mustExist: true }, async (engine) => {
    await requireTracked(engine, [orderId]);
    const order = await engine.getOrder(orderId);
    // The operator's words, judged by the engine (a value no list has is refused as UNKNOWN_TARGET).
    const verdict = await engine.explain(orderId, target as EngineChangeTarget);
    const judged = 'steps' in verdict ? verdict.steps.map((s) => ({ to: s.to, ruleId: s.ruleId, allowed: s.verdict.allowed })) : verdict.allowed ? [{ to: verdict.rule.to, ruleId: verdict.rule.id, allowed: true }] : [];
    const plan: PlanLine[] = judged.map((s, i) => ({ orderId, step: i + 1, of: judged.length, ruleId: s.ruleId, status: s.to.status, substatus: s.to.substatus, state: s.allowed ? 'allowed' : 'refused' }));
    const blockers = verdict.allowed ? [] : verdict.blockers;
    const wanted = label(target.status, target.substatus);
    out.result(
      () => [
        `dry run: order ${orderId} (${label(order.status, order.substatus)}) → ${wanted} ${verdict.allowed ? `is allowed in ${plan.length} step(s)` : 'is refused'}; nothing was queued`,
        ...describePlan(plan),
        ...blockers.map((b) => `    [${b.code}] ${b.message}`),
      ],
      () => ({ dryRun: true, plan, queued: [], refused: verdict.allowed ? [] : [{ orderId, from: label(order.status, order.substatus), code: 'CHANGE_REFUSED', blockers, allowedTargets: verdict.allowedTargets }] }),
    );
    if (!verdict.allowed) {
      throw new CliError(CLI_ERROR_CODES.changeRefused, `The change to ${wanted} is refused (${[...new Set(blockers.map((b) => b.code))].join(', ')}); nothing was queued.`, EXIT_CODES.failed);
    }
    return 0;
  });
}

const VALUE = /^[A-Z0-9_]{1,100}$/;

export function registerSetStatus(program: Command, cli: Cli): void {
  program
    .command('set-status')
    .description('queue a seller status change for one order')
    .argument('<id>', 'order id')
    .argument('<STATUS>', 'target status, e.g. DELIVERED')
    .argument('[SUBSTATUS]', 'target substatus, e.g. DELIVERY_SERVICE_DELIVERED')
    .option('--real-delivery-date <YYYY-MM-DD>', 'DBS, to PICKUP or DELIVERED: the day it really happened (not in the future)')
    .option('--call-evidence <json file>', 'for CANCELLED USER_UNREACHABLE: {"buyerTimeZone": "Europe/Moscow", "calls": [{"startedAt": "2025-05-12T09:00:00+03:00", "connectedSeconds": 7}, ...]}')
    .option('--chain', 'the target may be several steps away: plan the shortest legal chain and send it step after step')
    .option('--dry-run', 'print the verdict (with --chain, the plan with each step judged) and queue nothing')
    .option('--flush', 'send at once (needs YM_API_KEY), as `ym-orders flush` would; with --chain, until the chain ends')
    .addHelpText(
      'after',
      '\nExamples:\n  ym-orders set-status 48000000007 DELIVERED DELIVERY_SERVICE_DELIVERED --real-delivery-date 2025-05-11\n  ym-orders set-status 48000000007 DELIVERED DELIVERY_SERVICE_DELIVERED --real-delivery-date 2025-05-11 --chain --dry-run',
    )
    .action(
      act<SetStatusOptions, [string, string, string | undefined]>(cli, (ctx, idText, statusText, substatusText) => {
        const orderId = parseOrderId(idText, '<id>');
        const status = statusText.toUpperCase();
        const substatus = substatusText?.toUpperCase();
        if (!VALUE.test(status)) throw usageError(`<STATUS> "${statusText}" is not a Market status such as PROCESSING.`);
        if (substatus !== undefined && !VALUE.test(substatus)) throw usageError(`[SUBSTATUS] "${substatusText}" is not a Market substatus such as READY_TO_SHIP.`);
        const target: ChangeTarget = { status, ...(substatus ? { substatus } : {}) };
        const date = ctx.opts.realDeliveryDate;
        if (date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(date)) throw usageError(`--real-delivery-date "${date}" is not YYYY-MM-DD.`);
        let callEvidence: ChangeTarget['callEvidence'];
        if (ctx.opts.callEvidence !== undefined) {
          const text = readTextFile(ctx.opts.callEvidence, ctx.io.cwd, 'call evidence file');
          try {
            callEvidence = JSON.parse(text) as ChangeTarget['callEvidence'];
          } catch (error) {
            throw inputError(`Call evidence file ${ctx.opts.callEvidence} is not JSON: ${(error as Error).message}`);
          }
        }
        if (ctx.opts.dryRun && ctx.opts.flush) throw usageError('--dry-run queues nothing, so there is nothing to --flush.');
        const request: ChangeTarget = {
          ...target,
          ...(date !== undefined ? { realDeliveryDate: date } : {}),
          ...(callEvidence !== undefined ? { callEvidence } : {}),
          ...(ctx.opts.chain ? { via: 'chain' as const } : {}),
        };
        if (ctx.opts.dryRun) return dryRun(ctx, orderId, request);
        return queueAndReport(ctx, [], request, [orderId], { plan: ctx.opts.chain ?? false });
      }),
    );
}
