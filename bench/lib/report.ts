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
