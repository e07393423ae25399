// `ym-orders sync`: read every order the Market changed since the last sync (all configured
// campaigns) and bring the database up to date, with progress; SIGINT/SIGTERM stop it at once
// (every page read is stored with its cursor; the read in flight changes nothing).

import type { Command } from 'commander';
import type { SyncProgress, SyncResult } from '../../engine/order-sync.js';
import { act, type Cli } from '../command.js';
import { requireCampaigns, withEngine } from '../context.js';
import { CLI_ERROR_CODES, CliError, EXIT_CODES } from '../errors.js';
import { num, seconds } from '../../format.js';
import { parsePositiveInteger } from '../input.js';
import { createStatusLine } from '../progress.js';
import { stopOnSignals } from '../stop-signals.js';

export function describeSyncProgress(p: SyncProgress): string {
  return `sync: ${num(p.pages)} page(s), ${num(p.seen)} order(s) read, ${num(p.created)} new, ${num(p.updated)} updated (business ${p.businessId})`;
}

function stoppedLines(result: SyncResult, maxPages: number | undefined): string[] {
  const lines: string[] = [];
  if (result.stoppedBy === 'aborted') lines.push('stopped early by a signal; run sync again to continue from the stored cursor');
  if (result.stoppedBy === 'pageCap') lines.push(`stopped early: --max-pages ${maxPages} reached for a business; run sync again to continue from the stored cursor`);
  if (result.resumeAt !== undefined) {
    lines.push(`stopped early: the getBusinessOrders budget is spent until ${new Date(result.resumeAt).toISOString()}; run sync again then to continue from the stored cursor`);
  }
  return lines;
}

export function registerSync(program: Command, cli: Cli): void {
  program
    .command('sync')
    .description('read orders the Market changed since the last sync and record their statuses')
    .option('--max-pages <n>', 'read at most this many pages (50 orders each) per business; the next sync continues')
    .addHelpText('after', '\nExample:\n  YM_API_KEY=... ym-orders --campaign 21000101:1100001:FBS sync')
    .action(
      act<{ maxPages?: string }>(cli, async ({ io, out, globals, opts }) => {
        const maxPages = opts.maxPages === undefined ? undefined : parsePositiveInteger(opts.maxPages, '--max-pages');
        return withEngine(io, globals, { api: 'sync' }, async (engine) => {
          requireCampaigns(engine, 'sync');
          const started = Date.now();
          const status = createStatusLine(out);
          status.update('sync: reading orders from the Market…', { final: true });
          const stop = stopOnSignals(out, 'stopping now; every page read so far is stored…');
          let result;
          try {
            result = await engine.sync({
              signal: stop.signal,
              onProgress: (p) => status.update(describeSyncProgress(p)),
              ...(maxPages !== undefined ? { maxPagesPerSweep: maxPages } : {}),
            });
          } finally {
            stop.dispose();
            status.stop();
          }
          const elapsedMs = Date.now() - started;
          out.result(
            () => [
              `synced ${engine.campaigns.size} campaign(s) in ${seconds(elapsedMs)}: ${num(result.seen)} order(s) read in ${num(result.pages)} page(s), ${num(result.created)} new, ${num(result.updated)} updated${result.skipped ? `, ${num(result.skipped)} of other campaigns skipped` : ''}`,
              ...stoppedLines(result, maxPages),
            ],
            () => ({ ...result, campaigns: engine.campaigns.size, elapsedMs }),
          );
          if (stop.received) {
            throw new CliError(CLI_ERROR_CODES.interrupted, `${stop.received} stopped the sync; the pages read are stored, and the next sync continues from the stored cursor.`, EXIT_CODES.failed);
          }
          return 0;
        });
      }),
    );
}
