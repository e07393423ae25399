// One row of the benchmark table: a figure, what it is compared with, and its target.

export type Verdict = 'PASS' | 'MISS' | 'info';

export interface Row {
  /** Benchmark number and letter, e.g. `1a`. */
  readonly id: string;
  readonly bench: string;
  readonly metric: string;
  readonly value: string;
  /** The baseline measured in the same run, or `—`. */
  readonly baseline: string;
  /** value / baseline (or the figure the target is about), or `—`. */
  readonly ratio: string;
  readonly target: string;
  readonly verdict: Verdict;
  /** The goal of issue #14 this figure is a part of (1–5), for the summary under the table. */
  readonly goal?: Issue14Goal;
}

export type Issue14Goal = 1 | 2 | 3 | 4 | 5;

/** Issue #14's goals, as the summary under the table names them. */
export const ISSUE_14_GOALS: Readonly<Record<Issue14Goal, string>> = {
  1: 'bulk persisted transitions ≥ 0.8 of the floor',
  2: 'flush: engine CPU ≤ 3× the fake\'s, orders/s ≥ 0.8 of a stub client',
  3: 'PostgreSQL ≥ 0.7 of raw driver calls; 1, 2 and 4 processes',
  4: 'quota use over time ≥ 95 %, 0 × 420',
  5: 'no regression: < 256 MB at 1 000 000 orders, recovery < 3 s, API calls = minimum',
};

/** One line per goal of issue #14: PASS when every figure of it with a verdict passes, with the ratios. */
export function issue14Summary(rows: readonly Row[]): string[] {
  return (Object.keys(ISSUE_14_GOALS).map(Number) as Issue14Goal[]).map((goal) => {
    const mine = rows.filter((r) => r.goal === goal && r.verdict !== 'info');
    if (mine.length === 0) return `- goal ${goal} (${ISSUE_14_GOALS[goal]}): not measured in this run`;
    const pass = mine.every((r) => r.verdict === 'PASS');
    return `- goal ${goal} (${ISSUE_14_GOALS[goal]}): ${pass ? 'PASS' : 'MISS'}; ${mine.map((r) => `${r.id} ${r.ratio !== '—' ? r.ratio : r.value} ${r.verdict}`).join(', ')}`;
  });
}

export function verdict(pass: boolean): Verdict {
  return pass ? 'PASS' : 'MISS';
}

/** `12 345`, with a thin grouping space; `digits` decimals below 100. */
export function num(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const fixed = abs >= 100 || Number.isInteger(n) ? Math.round(n).toString() : n.toFixed(digits);
  const [int, frac] = fixed.split('.');
  const grouped = int!.replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

export function ms(n: number): string {
  return n >= 1000 ? `${num(n / 1000, 2)} s` : `${num(n, 2)} ms`;
}

export function mb(bytes: number): string {
  return `${num(bytes / 1024 / 1024, 1)} MB`;
}

const HEADERS = ['#', 'benchmark', 'metric', 'measured', 'baseline (same run)', 'ratio', 'target', 'result'] as const;

function cells(row: Row): string[] {
  return [row.id, row.bench, row.metric, row.value, row.baseline, row.ratio, row.target, row.verdict];
}

/** A Markdown pipe table, padded so it also reads well in a terminal. */
export function formatTable(rows: readonly Row[]): string {
  const all = [HEADERS as readonly string[], ...rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(all[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...all.slice(1).map(line)].join('\n');
}
