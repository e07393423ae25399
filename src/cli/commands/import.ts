// `ym-orders import <file|->`: start tracking orders from a JSON Lines or CSV file (or stdin).
// Every line is checked first; re-importing is safe (older news changes nothing).

import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { withEngine } from '../context.js';
import { CampaignUnknownError } from '../../engine/errors.js';
import { num, seconds } from '../../format.js';
import { readStdin, readTextFile } from '../input.js';
import { detectFormat, parseOrderFile, type OrderFileFormat } from '../order-file.js';
import { createProgress } from '../progress.js';
import { usageError } from '../errors.js';

const CHUNK = 500;

export function registerImport(program: Command, cli: Cli): void {
  program
    .command('import')
    .description('track orders from a JSON Lines or CSV file (orderId,campaignId,status,substatus[,updatedAt]); - reads stdin')
    .argument('<file>', 'the file, or - for stdin')
    .option('--format <format>', 'jsonl | csv (default: by extension, else by content)')
    .addHelpText('after', '\nExample:\n  ym-orders --campaign 21000101:1100001:FBS import orders.csv\n  printf \'{"orderId":1,"campaignId":21000101,"status":"PROCESSING","substatus":"STARTED"}\\n\' | ym-orders import -')
    .action(
      act<{ format?: string }, [string]>(cli, async ({ io, out, globals, opts }, file) => {
        let format: OrderFileFormat | undefined;
        if (opts.format !== undefined) {
          const f = opts.format.toLowerCase();
          if (f !== 'jsonl' && f !== 'csv') throw usageError(`--format "${opts.format}" is not jsonl or csv.`);
          format = f;
        }
        const stdin = file === '-';
        const text = stdin ? await readStdin(io.stdin) : readTextFile(file, io.cwd, 'order file');
        const source = stdin ? 'stdin' : file;
        const records = parseOrderFile(text, format ?? detectFormat(stdin ? undefined : file, text), source);
        return withEngine(io, globals, {}, async (engine) => {
          const unknown = [...new Set(records.map((r) => r.campaignId))].filter((id) => !engine.campaigns.has(id));
          if (unknown.length > 0) throw new CampaignUnknownError(unknown[0]!, [...engine.campaigns.keys()]);
          const started = Date.now();
          const progress = createProgress(out, 'import');
          const total = { created: 0, updated: 0, unchanged: 0 };
          try {
            for (let i = 0; i < records.length; i += CHUNK) {
              const r = await engine.trackOrders(records.slice(i, i + CHUNK));
              total.created += r.created;
              total.updated += r.updated;
              total.unchanged += r.unchanged;
              progress.update(Math.min(i + CHUNK, records.length), records.length);
            }
          } finally {
            progress.stop();
          }
          const elapsedMs = Date.now() - started;
          out.result(
            () => [`imported ${num(records.length)} order(s) from ${source} in ${seconds(elapsedMs)}: ${num(total.created)} new, ${num(total.updated)} updated, ${num(total.unchanged)} unchanged`],
            () => ({ source, orders: records.length, ...total, elapsedMs }),
          );
          return 0;
        });
      }),
    );
}
