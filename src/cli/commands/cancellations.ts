// `ym-orders cancellations`: the DBS buyers' cancellation requests still open, with the time left
// to answer; `ym-orders cancellation accept|reject <orderId>`: queue the answer (sent by the next
// flush or run, or at once with --flush). The engine judges every answer; a refused one is
// printed with its blocker codes (exit 1) and nothing is queued.

import type { Command } from 'commander';
import { CANCELLATION_REFUSAL_REASONS, type CancellationRefusalReason } from '../../../machines/order-machine.js';
import type { Engine, OpenCancellation } from '../../engine/engine.js';
import { CancellationAnswerRefusedError } from '../../engine/errors.js';
import type { OrderState } from '../../engine/order-book.js';
import { isoTime, label, num, table } from '../../format.js';
import { act, type Cli, type CommandContext } from '../command.js';
import { apiKeyOf, withEngine } from '../context.js';
import { CLI_ERROR_CODES, CliError, EXIT_CODES, usageError } from '../errors.js';
import { describeFlush, flushFailure, flushJson, flushWithProgress, type FlushOutcome } from '../flushing.js';
import { parseOrderId, parsePositiveInteger } from '../input.js';
import { stopOnSignals } from '../stop-signals.js';

/** `31h 12m left`, `12m left`, or `overdue by 5m` once the deadline has passed. */
export function timeLeft(ms: number): string {
  const minutes = Math.floor(Math.abs(ms) / 60_000);
  const span = minutes >= 60 ? `${Math.floor(minutes / 60)}h ${minutes % 60}m` : `${minutes}m`;
  return ms >= 0 ? `${span} left` : `overdue by ${span}`;
}

function describeAnswer(c: OpenCancellation): string {
  if (c.answer) return `answer ${c.answer.accepted ? 'accept' : `refuse (${c.answer.reason})`} ${c.answerState}`;
  if (c.lastAnswer?.kind === 'rejected') return `last answer rejected: ${c.lastAnswer.message ?? ''}`.trim();
  return 'unanswered';
}

function describeOpen(list: readonly OpenCancellation[]): string[] {
  if (list.length === 0) return ['no open cancellation requests'];
  return [
    `${num(list.length)} open cancellation request(s), the soonest deadline first; answer with \`ym-orders cancellation accept|reject <orderId>\``,
    ...table(list.map((c) => [`order ${c.orderId}`, label(c.status, c.substatus), `asked ${isoTime(c.requestedAt)}`, `answer by ${isoTime(c.dueAt)}`, timeLeft(c.timeLeftMs), describeAnswer(c)])),
  ];
}

interface AnswerOptions {
  readonly reason?: string;
  readonly flush?: boolean;
}

function parseReason(text: string | undefined): CancellationRefusalReason {
  const reason = text?.trim().toUpperCase();
  const known = CANCELLATION_REFUSAL_REASONS.find((r) => r === reason);
  if (known === undefined) throw usageError(`reject needs --reason ${CANCELLATION_REFUSAL_REASONS.join(' or ')}${text === undefined ? '' : `, not "${text}"`}.`);
  return known;
}

function refusalError(error: CancellationAnswerRefusedError): CliError {
  return new CliError(CLI_ERROR_CODES.changeRefused, `${error.message} Nothing was queued.`, EXIT_CODES.failed, { orderId: error.orderId, blockers: error.blockers });
}

/** Queues the answer and, with --flush, sends it at once (as `ship --flush` does). */
async function queueAnswer(ctx: CommandContext<AnswerOptions>, idText: string, answer: { accepted: true } | { accepted: false; reason: CancellationRefusalReason }): Promise<number> {
  const { io, out, globals, opts } = ctx;
  const orderId = parseOrderId(idText, '<orderId>');
  // Checked before anything is queued, so a missing key changes nothing.
  if (opts.flush) apiKeyOf(io, '--flush');
  return withEngine(io, globals, { mustExist: true, api: opts.flush ? '--flush' : false }, async (engine: Engine) => {
    let state: OrderState;
    try {
      state = await engine.answerCancellation(orderId, answer);
    } catch (error) {
      if (!(error instanceof CancellationAnswerRefusedError)) throw error;
      out.result(
        () => [`order ${orderId}: refused`, ...error.blockers.map((b) => `  [${b.code}] ${b.message}`)],
        () => ({ orderId, answer, refused: { code: error.code, blockers: error.blockers } }),
      );
      throw refusalError(error);
    }
    let flushed: FlushOutcome | undefined;
    if (opts.flush) {
      const stop = stopOnSignals(out);
      try {
        flushed = await flushWithProgress(engine, out, { stop });
      } finally {
        stop.dispose();
      }
    }
    const after = flushed ? await engine.getOrder(orderId) : state;
    const what = answer.accepted ? 'accept' : `refuse (${answer.reason})`;
    out.result(
      () => [
        flushed ? `order ${orderId}: answer to ${what} sent` : `order ${orderId}: queued the answer to ${what}; \`ym-orders flush\` sends it`,
        ...(after.lastCancellationAnswer && flushed ? [`  ${after.lastCancellationAnswer.kind}${after.lastCancellationAnswer.message ? `: ${after.lastCancellationAnswer.message}` : ''}`] : []),
        ...(flushed ? describeFlush(flushed) : []),
      ],
      () => ({
        orderId,
        answer,
        cancellation: after.cancellation,
        pending: after.cancellationAnswer,
        lastAnswer: after.lastCancellationAnswer,
        ...(flushed ? { flush: flushJson(flushed) } : {}),
      }),
    );
    const failure = flushed ? flushFailure(flushed) : undefined;
    if (failure) throw failure;
    if (flushed && after.lastCancellationAnswer?.kind === 'rejected') {
      throw new CliError(CLI_ERROR_CODES.marketRejected, `The Market rejected the answer for order ${orderId}: ${after.lastCancellationAnswer.message ?? 'no reason given'}`, EXIT_CODES.failed);
    }
    return 0;
  });
}

export function registerCancellations(program: Command, cli: Cli): void {
  program
    .command('cancellations')
    .description('list the DBS buyers\' cancellation requests still open, with the time left to answer (48 h, then the Market cancels)')
    .option('--limit <n>', 'at most this many, the soonest deadline first', '1000')
    .addHelpText('after', '\nExample:\n  ym-orders cancellations\n  ym-orders cancellations --json')
    .action(
      act<{ limit: string }>(cli, async ({ io, out, globals, opts }) => {
        const limit = parsePositiveInteger(opts.limit, '--limit');
        return withEngine(io, globals, { mustExist: true }, async (engine) => {
          const open = await engine.openCancellations({ limit });
          out.result(() => describeOpen(open), () => ({ open }));
          return 0;
        });
      }),
    );

  const answer = program.command('cancellation').description('answer a DBS buyer\'s cancellation request: accept or reject');
  answer
    .command('accept')
    .description('queue an accept: the Market cancels the order')
    .argument('<orderId>', 'order id')
    .option('--flush', 'send at once (needs YM_API_KEY), as `ym-orders flush` would')
    .addHelpText('after', '\nExample:\n  ym-orders cancellation accept 48000000001 --flush')
    .action(act<AnswerOptions, [string]>(cli, (ctx, id) => queueAnswer(ctx, id, { accepted: true })));
  answer
    .command('reject')
    .description(`queue a refusal with a reason (${CANCELLATION_REFUSAL_REASONS.join(' or ')}): the order stays`)
    .argument('<orderId>', 'order id')
    .option('--reason <REASON>', CANCELLATION_REFUSAL_REASONS.join(' or '))
    .option('--flush', 'send at once (needs YM_API_KEY), as `ym-orders flush` would')
    .addHelpText('after', '\nExample:\n  ym-orders cancellation reject 48000000001 --reason ORDER_IN_DELIVERY')
    .action(act<AnswerOptions, [string]>(cli, (ctx, id) => queueAnswer(ctx, id, { accepted: false, reason: parseReason(ctx.opts.reason) })));
}
