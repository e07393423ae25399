// `ym-orders demo` (= `npm start`): the whole engine end to end against a fake Market on
// loopback: sync ~3 000 orders, queue legal changes (and refuse illegal ones locally), flush
// them within the API limits, sync what the Market did next, and report the numbers. The work
// is runDemo (demo/run.ts); what it prints is describeDemo (demo/report.ts).

import path from 'node:path';
import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { DB_ENV, isStoreUrl } from '../context.js';
import { usageError } from '../errors.js';
import { demoFailure, demoJson, describeDemo } from '../demo/report.js';
import { runDemo } from '../demo/run.js';

const DEFAULT_DEMO_DB = './ym-orders-demo.db';

function diagramPath(dbFile: string): string {
  return dbFile.replace(/\.db$/i, '') + '.mmd';
}

export function registerDemo(program: Command, cli: Cli): void {
  program
    .command('demo')
    .description('run the engine end to end against a fake Market on loopback (what `npm start` does)')
    .option('--orders <n>', 'how many orders the fake Market holds', '3000')
    .option('--chaos', 'inject faults (500s, 503s, 420s, drops, timeouts) to show recovery')
    .addHelpText('after', `\nThe database defaults to ${DEFAULT_DEMO_DB} (replaced on each run); --db chooses another.\nExample:\n  ym-orders demo --chaos --db /tmp/demo.db`)
    .action(
      act<{ orders: string; chaos?: boolean }>(cli, async ({ io, out, globals, opts, command }) => {
        if (!/^\d+$/.test(opts.orders) || Number(opts.orders) < 100 || Number(opts.orders) > 20_000) {
          throw usageError(`--orders "${opts.orders}" must be a whole number from 100 to 20000.`);
        }
        const dbChosen = command.getOptionValueSourceWithGlobals('db') !== 'default' || Boolean(io.env[DB_ENV]);
        const db = dbChosen ? globals.db : DEFAULT_DEMO_DB;
        // A URL is refused by runDemo: the demo replaces its database, which it does only to a SQLite file.
        const database = isStoreUrl(db) ? db : path.resolve(io.cwd, db);
        const report = await runDemo(
          { orders: Number(opts.orders), chaos: opts.chaos === true, database, diagram: diagramPath(database), cwd: io.cwd },
          out,
        );
        out.result(() => describeDemo(report), () => demoJson(report));
        const failure = demoFailure(report);
        if (failure) throw failure;
        return 0;
      }),
    );
}
