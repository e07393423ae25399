// `ym-orders sync`: read every order the Market changed since the last sync (all configured
// campaigns) and bring the database up to date.

import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { requireCampaigns, withEngine } from '../context.js';
import { num, seconds } from '../format.js';

export function registerSync(program: Command, cli: Cli): void {
  program
    .command('sync')
    .description("read orders the Market changed since the last sync and record their statuses")
    .addHelpText('after', '\nExample:\n  YM_API_KEY=... ym-orders --campaign 21000101:1100001:FBS sync')
    .action(
      act(cli, async ({ io, out, globals }) =>
        withEngine(io, globals, { api: 'sync' }, async (engine) => {
          requireCampaigns(engine, 'sync');
          const started = Date.now();
          if (out.interactive) out.raw('sync: reading orders from the Market…');
          let result;
          try {
            result = await engine.sync();
          } finally {
            if (out.interactive) out.raw('\r\x1b[K');
          }
          const elapsedMs = Date.now() - started;
          out.result(
            () => [
              `synced ${engine.campaigns.size} campaign(s) in ${seconds(elapsedMs)}: ${num(result.seen)} order(s) read in ${num(result.pages)} page(s), ${num(result.created)} new, ${num(result.updated)} updated${result.skipped ? `, ${num(result.skipped)} of other campaigns skipped` : ''}`,
              ...(result.resumeAt !== undefined
                ? [`stopped early: the getBusinessOrders budget is spent until ${new Date(result.resumeAt).toISOString()}; run sync again then to continue from the stored cursor`]
                : []),
            ],
            () => ({ ...result, campaigns: engine.campaigns.size, elapsedMs }),
          );
          return 0;
        }),
      ),
    );
}
