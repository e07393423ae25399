// `npm run bench [-- --quick] [-- --only <name>[,<name>]] [-- --write]`
//
// Runs the five benchmarks of issue #6 and prints one table: every figure with the baseline it
// is compared with (measured in the same run), the ratio, the target and PASS/MISS. Each
// measurement runs in a child process of its own (a fresh heap and its own peak RSS); every
// child has a deadline, and the fake Market listens on loopback only. With --write the table,
// the machine and the date go to BENCHMARKS.md (the analysis part of that file is kept).

import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { removeCompiled } from './lib/compiled.js';
import { describeMachine, machineLine } from './lib/machine.js';
import { formatTable, type Row } from './lib/report.js';
import * as throughput from './throughput.js';
import * as apiCost from './api-cost.js';
import * as quota from './quota.js';
import * as scale from './scale.js';
import * as recovery from './recovery.js';

interface Benchmark {
  readonly name: string;
  readonly title: string;
  readonly run: (quick: boolean) => Promise<Row[]>;
}

const BENCHMARKS: readonly Benchmark[] = [
  { name: 'throughput', title: '1. Engine throughput', run: (quick) => throughput.run({ quick, synchronous: ['FULL', 'NORMAL'] }) },
  { name: 'api-cost', title: '2. API cost', run: (quick) => apiCost.run({ quick }) },
  { name: 'quota', title: '3. Quota use', run: (quick) => quota.run({ quick }) },
  { name: 'scale', title: '4. Scale', run: (quick) => scale.run({ quick }) },
  { name: 'recovery', title: '5. Recovery', run: (quick) => recovery.run({ quick }) },
];

const BENCHMARKS_MD = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));
const RESULTS_START = '<!-- bench:results:start -->';
const RESULTS_END = '<!-- bench:results:end -->';

interface Cli {
  readonly quick: boolean;
  readonly write: boolean;
  readonly only: readonly string[];
}

function parseCli(argv: readonly string[]): Cli {
  let quick = false;
  let write = false;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--write') write = true;
    else if (arg === '--only') only.push(...(argv[++i] ?? '').split(','));
    else if (arg.startsWith('--only=')) only.push(...arg.slice('--only='.length).split(','));
    else if (arg === '--help' || arg === '-h') {
      console.log(`usage: tsx bench/run.ts [--quick] [--only ${BENCHMARKS.map((b) => b.name).join('|')}[,...]] [--write]`);
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
  return { quick, write, only: only.filter(Boolean) };
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

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const machine = describeMachine();
  const started = new Date();
  const header = [
    `ym-orders benchmarks (issue #6)${cli.quick ? ' — QUICK run (smaller sizes)' : ''}`,
    `Machine: ${machineLine(machine)}`,
    `Date: ${started.toISOString()}`,
  ];
  console.log(header.join('\n'));
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const loadBefore = load();
  const selected = BENCHMARKS.filter((b) => cli.only.length === 0 || cli.only.includes(b.name));
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
      rows.push(...(await b.run(cli.quick)));
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
  console.log(`\n${table}\n\n${footer}`);
  if (cli.write) {
    writeResults(
      [
        `Command: \`npm run bench${cli.quick || cli.only.length ? ` -- ${[cli.quick ? '--quick' : '', cli.only.length ? `--only ${cli.only.join(',')}` : ''].filter(Boolean).join(' ')}` : ''}\``,
        '',
        `- Machine: ${machineLine(machine)}`,
        `- Date: ${started.toISOString()}`,
        `- ${footer}`,
        '',
        table,
      ].join('\n'),
    );
    console.log(`\nWrote ${BENCHMARKS_MD}`);
  }
  if (failed) process.exitCode = 1;
}

await main();
