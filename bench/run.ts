// `npm run bench [-- --quick] [-- --only <name>[,<name>]] [-- --baseline <ref>|none] [-- --write]`
//
// Runs the benchmarks (issue #6; bench 6 for PostgreSQL, issue #11; bench 7 for notifications,
// issue #12; benches 8 and 9 for the hot path, issue #14: one machine step against XState's
// transition(), and a flush through the fake Market against an in-process stub client) and
// prints one table: every figure with the baseline it is compared with (measured in the same
// run), the ratio, the target and PASS/MISS. Bench 8 runs in this process (pure CPU, no I/O);
// the others in children. Bench 1 also compares our engine with the engine of a git ref (default DEFAULT_BASELINE_REF, the commit
// before issue 10's async engine; `--baseline none` skips it), both in one child, alternating
// batch by batch. Each measurement runs in a child process of its own (a fresh heap and its
// own peak RSS); every child has a deadline, and the fake Market listens on loopback only.
// With --write the table, the machine and the date go to BENCHMARKS.md (the analysis part of
// that file is kept).

import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { removeCompiled, resolveCommit } from './lib/compiled.js';
import { describeMachine, machineLine } from './lib/machine.js';
import { formatTable, issue14Summary, type Row } from './lib/report.js';
import * as throughput from './throughput.js';
import * as apiCost from './api-cost.js';
import * as quota from './quota.js';
import * as scale from './scale.js';
import * as recovery from './recovery.js';
import * as postgres from './postgres.js';
import * as notifications from './notifications.js';
import * as step from './step.js';
import * as flush from './flush.js';

interface Benchmark {
  readonly name: string;
  readonly title: string;
  readonly run: (quick: boolean, cli: Cli) => Promise<Row[]>;
}

const BENCHMARKS: readonly Benchmark[] = [
  { name: 'throughput', title: '1. Engine throughput', run: (quick, cli) => throughput.run({ quick, synchronous: ['FULL', 'NORMAL'], baseline: cli.baseline }) },
  { name: 'api-cost', title: '2. API cost', run: (quick) => apiCost.run({ quick }) },
  { name: 'quota', title: '3. Quota use', run: (quick) => quota.run({ quick }) },
  { name: 'scale', title: '4. Scale', run: (quick) => scale.run({ quick }) },
  { name: 'recovery', title: '5. Recovery', run: (quick) => recovery.run({ quick }) },
  { name: 'postgres', title: '6. PostgreSQL', run: (quick) => postgres.run({ quick }) },
  { name: 'notifications', title: '7. Notifications', run: (quick) => notifications.run({ quick }) },
  { name: 'step', title: '8. Machine step', run: (quick) => step.run({ quick }) },
  { name: 'flush', title: '9. Flush', run: (quick) => flush.run({ quick }) },
];

const BENCHMARKS_MD = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));
const RESULTS_START = '<!-- bench:results:start -->';
const RESULTS_END = '<!-- bench:results:end -->';
/** The last commit with the synchronous engine: issue 10 (the async engine) must cost bench 1 at most 10 % against it. */
const DEFAULT_BASELINE_REF = '701e7a0';

interface Cli {
  readonly quick: boolean;
  readonly write: boolean;
  readonly only: readonly string[];
  /** The `--baseline` argument as given: a ref, or `none`. */
  readonly baselineArg: string;
  readonly baseline: throughput.BaselineCommit | undefined;
}

function parseCli(argv: readonly string[]): Cli {
  let quick = false;
  let write = false;
  let baselineArg = DEFAULT_BASELINE_REF;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--write') write = true;
    else if (arg === '--only') only.push(...(argv[++i] ?? '').split(','));
    else if (arg.startsWith('--only=')) only.push(...arg.slice('--only='.length).split(','));
    else if (arg === '--baseline') baselineArg = argv[++i] ?? '';
    else if (arg.startsWith('--baseline=')) baselineArg = arg.slice('--baseline='.length);
    else if (arg === '--help' || arg === '-h') {
      console.log(
        `usage: tsx bench/run.ts [--quick] [--only ${BENCHMARKS.map((b) => b.name).join('|')}[,...]] [--baseline <git ref>|none (default ${DEFAULT_BASELINE_REF})] [--write]`,
      );
      process.exit(0);
    } else {
      console.error(`unknown argument: ${arg}`);
      process.exit(2);
    }
  }
  for (const name of only) {
    if (!BENCHMARKS.some((b) => b.name === name)) {
      console.error(`--only: unknown benchmark ${name}; one of ${BENCHMARKS.map((b) => b.name).join(', ')}`);
      process.exit(2);
    }
  }
  if (baselineArg === '') {
    console.error('--baseline: give a git ref of this repository, or none');
    process.exit(2);
  }
  let baseline: throughput.BaselineCommit | undefined;
  if (baselineArg !== 'none') {
    try {
      const commit = resolveCommit(baselineArg);
      baseline = { commit, label: commit.startsWith(baselineArg) ? baselineArg : `${baselineArg} (${commit.slice(0, 7)})` };
    } catch (error) {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(2);
    }
  }
  return { quick, write, only: only.filter(Boolean), baselineArg, baseline };
}

function writeResults(block: string): void {
  const section = `${RESULTS_START}\n${block}\n${RESULTS_END}`;
  const existing = fs.existsSync(BENCHMARKS_MD) ? fs.readFileSync(BENCHMARKS_MD, 'utf8') : '';
  const start = existing.indexOf(RESULTS_START);
  const end = existing.indexOf(RESULTS_END);
  const next =
    start >= 0 && end > start
      ? existing.slice(0, start) + section + existing.slice(end + RESULTS_END.length)
      : `# Benchmarks\n\n${section}\n${existing}`;
  fs.writeFileSync(BENCHMARKS_MD, next);
}

/** The command that reproduces this run, for BENCHMARKS.md. */
function commandLine(cli: Cli): string {
  const flags = [
    cli.quick ? '--quick' : '',
    cli.only.length > 0 ? `--only ${cli.only.join(',')}` : '',
    cli.baselineArg !== DEFAULT_BASELINE_REF ? `--baseline ${cli.baselineArg}` : '',
  ].filter(Boolean);
  return flags.length > 0 ? `npm run bench -- ${flags.join(' ')}` : 'npm run bench';
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const machine = describeMachine();
  const started = new Date();
  const selected = BENCHMARKS.filter((b) => cli.only.length === 0 || cli.only.includes(b.name));
  const header = [
    `ym-orders benchmarks${cli.quick ? ' — QUICK run (smaller sizes)' : ''}`,
    `Machine: ${machineLine(machine)}`,
    `Date: ${started.toISOString()}`,
    ...(cli.baseline && selected.some((b) => b.name === 'throughput') ? [`Bench 1 before/after: this tree against ${cli.baseline.label} = ${cli.baseline.commit}`] : []),
  ];
  console.log(header.join('\n'));
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const loadBefore = load();
  const rows: Row[] = [];
  let failed = false;
  process.on('exit', removeCompiled);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      removeCompiled();
      process.exit(130);
    });
  }
  for (const b of selected) {
    const t = performance.now();
    console.error(`… ${b.title}`);
    try {
      rows.push(...(await b.run(cli.quick, cli)));
    } catch (error) {
      failed = true;
      console.error(`${b.title} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      rows.push({ id: b.title.split('.')[0]!, bench: b.title.replace(/^\d+\.\s*/, ''), metric: 'benchmark failed (see stderr)', value: '—', baseline: '—', ratio: '—', target: '—', verdict: 'MISS' });
    }
    console.error(`  done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const elapsed = ((Date.now() - started.getTime()) / 1000).toFixed(0);
  const table = formatTable(rows);
  const misses = rows.filter((r) => r.verdict === 'MISS').length;
  const footer = `${rows.length} figures, ${misses} MISS; total time ${elapsed} s; load average (1/5/15 min) ${loadBefore} before, ${load()} after.`;
  const goals = ['Issue #14 goals (figures tagged in the table, verdicts as above):', ...issue14Summary(rows)].join('\n');
  console.log(`\n${table}\n\n${footer}\n\n${goals}`);
  if (cli.write) {
    writeResults(
      [
        `Command: \`${commandLine(cli)}\``,
        '',
        `- Machine: ${machineLine(machine)}`,
        `- Date: ${started.toISOString()}`,
        `- ${footer}`,
        '',
        table,
        '',
        goals,
      ].join('\n'),
    );
    console.log(`\nWrote ${BENCHMARKS_MD}`);
  }
  if (failed) process.exitCode = 1;
}

await main();
