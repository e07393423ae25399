// `ym-orders run`: the long-running loop (send, read back, poll operations, sync every
// --sync-interval) until SIGINT or SIGTERM; the batch in flight finishes and is stored first.

import type { Command } from 'commander';
import type { FlushReport } from '../../engine/engine.js';
import { act, type Cli } from '../command.js';
import { withEngine } from '../context.js';
import { errorCode, errorMessage } from '../errors.js';
import { callsLine } from '../flushing.js';
import { num, seconds } from '../format.js';
import { parseSeconds } from '../input.js';

const STATUS_EVERY_MS = 5_000;

export function registerRun(program: Command, cli: Cli): void {
  program
    .command('run')
    .description('keep sending, polling and syncing until SIGINT/SIGTERM (finishes the batch in flight, then exits 0)')
    .option('--sync-interval <seconds>', 'sync from the Market this often; 0 turns syncing off', '60')
    .option('--idle <seconds>', 'sleep this long at most when there is nothing to do', '1')
    .addHelpText('after', '\nExample:\n  YM_API_KEY=... ym-orders run --sync-interval 30')
    .action(
      act<{ syncInterval: string; idle: string }>(cli, async ({ io, out, globals, opts }) => {
        const syncMs = parseSeconds(opts.syncInterval, '--sync-interval');
        const idleMs = Math.max(10, parseSeconds(opts.idle, '--idle'));
        return withEngine(io, globals, { api: 'run' }, async (engine) => {
          const controller = new AbortController();
          let signals = 0;
          const stop = (signal: NodeJS.Signals): void => {
            signals++;
            if (signals === 1) {
              out.line(`${signal}: stopping after the batch in flight…`);
              controller.abort();
            } else {
              out.note(`${signal} again: exiting now; an interrupted send is read back on the next run.`);
              process.exit(130);
            }
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
          const started = Date.now();
          const syncing = syncMs > 0 && engine.campaigns.size > 0;
          out.line(
            `running on ${globals.db} with ${engine.campaigns.size} campaign(s); ${syncing ? `sync every ${seconds(syncMs)}` : 'no sync'}; SIGINT/SIGTERM stops cleanly`,
          );
          let last: FlushReport = engine.stats();
          let lastLine = 0;
          let lastShown = '';
          const onProgress = (report: FlushReport): void => {
            last = report;
            const text = `open ${num(report.open)}  accepted ${num(report.counters.accepted)}  rejected ${num(report.counters.rejected)}  calls: ${callsLine(report.counters)}`;
            if (out.interactive) {
              out.raw(`\r\x1b[K${text.slice(0, out.columns - 1)}`);
            } else if (text !== lastShown && Date.now() - lastLine >= STATUS_EVERY_MS) {
              lastLine = Date.now();
              lastShown = text;
              out.line(text);
            }
          };
          try {
            last = await engine.run({
              signal: controller.signal,
              idleMs,
              onProgress,
              // The Market being unreachable is no reason to stop the loop: say so; it syncs again later.
              onSyncError: (error) => {
                if (error.code === 'MARKET_AUTH') throw error;
                out.warn(`[${errorCode(error)}] ${errorMessage(error)}; syncing again later`);
              },
              ...(syncing ? { syncIntervalMs: syncMs } : {}),
            });
          } finally {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            if (out.interactive) out.raw('\r\x1b[K');
          }
          const elapsedMs = Date.now() - started;
          out.result(
            () => [
              `stopped after ${seconds(elapsedMs)}: ${num(last.counters.accepted)} accepted, ${num(last.counters.rejected)} rejected, ${num(last.open)} still open (kept for the next run)`,
              `  HTTP calls: ${callsLine(last.counters)}`,
            ],
            () => ({ elapsedMs, ...last }),
          );
          return 0;
        });
      }),
    );
}
