// `ym-orders demo` (= `npm start`): the whole engine end to end against a fake Market on
// loopback: sync ~3 000 orders, queue legal changes (and refuse illegal ones locally), flush
// them within the API limits, hear what the Market did next by push notification (a receiver in
// this process, demo/notifications.ts), and report the numbers. The work is runDemo
// (demo/run.ts); what it prints is describeDemo (demo/report.ts). On a postgres:// database the
// flush may be shared by several processes (--processes, demo/processes.ts).

import path from 'node:path';
import type { Command } from 'commander';
import { redactUrl } from '../../store/open-store.js';
import { act, type Cli } from '../command.js';
import { DB_ENV, isStoreUrl } from '../context.js';
import { CliError, EXIT_CODES, usageError } from '../errors.js';
import { DEFAULT_DEMO_SCHEMA, isPostgresUrl, type DemoDatabase } from '../demo/database.js';
import { demoFailure, demoJson, describeDemo } from '../demo/report.js';
import { runDemo } from '../demo/run.js';

const DEFAULT_DEMO_DB = './ym-orders-demo.db';
const MAX_PROCESSES = 8;

function diagramPath(dbFile: string): string {
  return dbFile.replace(/\.db$/i, '') + '.mmd';
}

/** What --db (or $YM_DB) and --schema name, checked against --processes. */
function demoDatabase(db: string, schema: string | undefined, processes: number, cwd: string): DemoDatabase {
  if (isPostgresUrl(db)) return { kind: 'postgres', url: db, schema: schema ?? DEFAULT_DEMO_SCHEMA };
  if (isStoreUrl(db)) {
    throw new CliError('DB_UNSUPPORTED', `${redactUrl(db)}: the demo runs on a SQLite file or a postgres:// URL.`, EXIT_CODES.usage);
  }
  if (schema !== undefined) throw usageError('--schema names a PostgreSQL schema: give --db (or YM_DB) a postgres:// URL, or leave --schema out.');
  if (processes > 1) {
    throw usageError(
      `--processes ${processes} needs a postgres:// database (--db or YM_DB), where several engine processes share one schema; on a SQLite file they would only take turns at its write lock. E.g. ym-orders demo --db postgres://postgres@127.0.0.1:5432/test --processes ${processes}`,
    );
  }
  return { kind: 'sqlite', file: path.resolve(cwd, db) };
}

export function registerDemo(program: Command, cli: Cli): void {
  program
    .command('demo')
    .description('run the engine end to end against a fake Market on loopback (what `npm start` does)')
    .option('--orders <n>', 'how many orders the fake Market holds', '3000')
    .option('--chaos', 'inject faults (500s, 503s, 420s, drops, timeouts) to show recovery')
    .option('--processes <n>', `engine processes that share the flush, 1 to ${MAX_PROCESSES}; more than 1 needs a postgres:// database`, '1')
    .option('--schema <name>', `the PostgreSQL schema the demo replaces on a postgres:// database (default ${DEFAULT_DEMO_SCHEMA})`)
    .addHelpText(
      'after',
      `\nThe database defaults to ${DEFAULT_DEMO_DB} (replaced on each run); --db chooses another file, or a postgres:// URL (the demo then replaces the schema ${DEFAULT_DEMO_SCHEMA}, or --schema).\nExamples:\n  ym-orders demo --chaos --db /tmp/demo.db\n  ym-orders demo --db postgres://postgres@127.0.0.1:5432/test --processes 4`,
    )
    .action(
      act<{ orders: string; chaos?: boolean; processes: string; schema?: string }>(cli, async ({ io, out, globals, opts, command }) => {
        if (!/^\d+$/.test(opts.orders) || Number(opts.orders) < 100 || Number(opts.orders) > 20_000) {
          throw usageError(`--orders "${opts.orders}" must be a whole number from 100 to 20000.`);
        }
        if (!/^\d+$/.test(opts.processes) || Number(opts.processes) < 1 || Number(opts.processes) > MAX_PROCESSES) {
          throw usageError(`--processes "${opts.processes}" must be a whole number from 1 to ${MAX_PROCESSES}.`);
        }
        const processes = Number(opts.processes);
        const dbChosen = command.getOptionValueSourceWithGlobals('db') !== 'default' || Boolean(io.env[DB_ENV]);
        const database = demoDatabase(dbChosen ? globals.db : DEFAULT_DEMO_DB, opts.schema, processes, io.cwd);
        // A PostgreSQL demo's diagram goes where the SQLite one would by default.
        const diagram = diagramPath(database.kind === 'sqlite' ? database.file : path.resolve(io.cwd, DEFAULT_DEMO_DB));
        const report = await runDemo({ orders: Number(opts.orders), chaos: opts.chaos === true, database, processes, diagram, cwd: io.cwd }, out);
        out.result(() => describeDemo(report), () => demoJson(report));
        const failure = demoFailure(report);
        if (failure) throw failure;
        return 0;
      }),
    );
}
