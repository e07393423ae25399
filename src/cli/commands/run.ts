// `ym-orders run`: the long-running loop (send, read back, poll operations, sync every
// --sync-interval) until SIGINT or SIGTERM; the batch in flight finishes and is stored first.

import type { Command } from 'commander';
import type { FlushReport } from '../../engine/engine.js';
import { act, type Cli } from '../command.js';
import { withEngine } from '../context.js';
import { isMarketError } from '../../market/errors.js';
import { errorCode, errorMessage } from '../errors.js';
import { callsLine, describeLastErrors, errorReporter, waitReporter } from '../flushing.js';
import { num, seconds } from '../../format.js';
import { parsePositiveInteger, parseSeconds } from '../input.js';
import { createStatusLine } from '../progress.js';
import { stopOnSignals } from '../stop-signals.js';
import { describeSyncProgress } from './sync.js';

const STATUS_EVERY_MS = 5_000;

export function registerRun(program: Command, cli: Cli): void {
  program
    .command('run')
    .description('keep sending, polling and syncing until SIGINT/SIGTERM (finishes the batch in flight, then exits 0)')
    .option('--sync-interval <seconds>', 'sync from the Market this often; 0 turns syncing off', '60')
    .option('--sync-pages <n>', 'pages per business read in one sync pass; a longer sweep goes on after the next send pass', '100')
    .option('--idle <seconds>', 'sleep this long at most when there is nothing to do (default 1 on SQLite; 30 on PostgreSQL, where any process queuing a change wakes the loop)')
    .addHelpText('after', '\nExample:\n  YM_API_KEY=... ym-orders run --sync-interval 30')
    .action(
      act<{ syncInterval: string; syncPages: string; idle?: string }>(cli, async ({ io, out, globals, opts }) => {
        const syncMs = parseSeconds(opts.syncInterval, '--sync-interval');
        const syncPages = parsePositiveInteger(opts.syncPages, '--sync-pages');
        const idleMs = opts.idle === undefined ? undefined : Math.max(10, parseSeconds(opts.idle, '--idle'));
        return withEngine(io, globals, { api: 'run' }, async (engine, api) => {
          const stop = stopOnSignals(out);
          const started = Date.now();
          const syncing = syncMs > 0 && engine.campaigns.size > 0;
          // --json: one JSON object a line as the loop goes (a log a program can follow), not one document at the end.
          const event = (type: string, fields: Record<string, unknown>): void => {
            if (out.json) out.raw(`${JSON.stringify({ type, at: new Date().toISOString(), ...fields })}\n`);
          };
          event('started', { database: engine.store.name, campaigns: engine.campaigns.size, apiUrl: api?.baseUrl, syncIntervalMs: syncing ? syncMs : null });
          out.line(
            `running on ${engine.store.name} with ${engine.campaigns.size} campaign(s) against ${api?.baseUrl}; ${syncing ? `sync every ${seconds(syncMs)}` : 'no sync'}; SIGINT/SIGTERM stops cleanly`,
          );
          const status = createStatusLine(out, { plainEveryMs: STATUS_EVERY_MS, firstAtOnce: true });
          const reportErrors = errorReporter(out, status.above, engine.clock());
          const reportWaits = waitReporter(out, status.above, () => engine.clock());
          let lastEvent = '';
          let last: FlushReport = await engine.stats();
          let lastShown = '';
          const show = (text: string): void => {
            // In a log, a line that says nothing new is left out.
            if (!out.interactive && text === lastShown) return;
            lastShown = text;
            status.update(text);
          };
          // Set while the database fails passes: the loop waits and tries again, and says when it is back.
          let storeDownSince: number | undefined;
          const onProgress = (report: FlushReport): void => {
            if (storeDownSince !== undefined) {
              const downMs = Date.now() - storeDownSince;
              status.above(() => out.warn(`the database answers again after ${seconds(downMs)}; going on`));
              storeDownSince = undefined;
              event('storeBack', { downMs });
            }
            last = report;
            reportErrors(report.lastErrors);
            reportWaits(report.waitingFor);
            const { open, counters, halted, lastErrors, waitingFor } = report;
            const progress = JSON.stringify({ open, counters, halted, lastErrors, waitingFor });
            if (progress !== lastEvent) event('progress', JSON.parse(progress) as Record<string, unknown>);
            lastEvent = progress;
            show(`open ${num(report.open)}  accepted ${num(report.counters.accepted)}  rejected ${num(report.counters.rejected)}  calls: ${callsLine(report.counters)}`);
          };
          try {
            last = await engine.run({
              signal: stop.signal,
              ...(idleMs !== undefined ? { idleMs } : {}),
              onProgress,
              onStoreError: (error, retryInMs) => {
                storeDownSince ??= Date.now();
                event('storeError', { code: error.code, message: errorMessage(error), retryInMs });
                status.above(() => out.warn(`[${error.code}] ${errorMessage(error)}; trying again in ${seconds(retryInMs)}`));
              },
              onSyncProgress: (p) => {
                event('sync', { ...p });
                show(describeSyncProgress(p));
              },
              // The Market being unreachable is no reason to stop the loop: it syncs again later. Its
              // errors are shown per campaign with the others (onProgress); a repeated page token
              // is no failed call, so it is shown here.
              onSyncError: (error) => {
                if (error.code === 'MARKET_AUTH') throw error;
                event('syncError', { code: errorCode(error), message: errorMessage(error) });
                if (!isMarketError(error)) status.above(() => out.warn(`[${errorCode(error)}] ${errorMessage(error)}; syncing again later`));
              },
              ...(syncing ? { syncIntervalMs: syncMs, maxPagesPerSweep: syncPages } : {}),
            });
          } finally {
            stop.dispose();
            status.stop();
          }
          const elapsedMs = Date.now() - started;
          if (out.json) {
            event('stopped', { elapsedMs, ...last });
            return 0;
          }
          out.result(
            () => [
              `stopped after ${seconds(elapsedMs)}: ${num(last.counters.accepted)} accepted, ${num(last.counters.rejected)} rejected, ${num(last.open)} still open (kept for the next run)`,
              `  HTTP calls: ${callsLine(last.counters)}`,
              ...(last.marketCalls.failed > 0 ? [`  Market calls: ${num(last.marketCalls.answered)} answered, ${num(last.marketCalls.failed)} failed`] : []),
              ...describeLastErrors(last.lastErrors),
            ],
            () => ({ elapsedMs, ...last }),
          );
          return 0;
        });
      }),
    );
}
