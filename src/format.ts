// Text for people, shared by the CLI and the web inspector: statuses, numbers, times and durations.

export function label(status: string, substatus: string | null | undefined): string {
  return substatus ? `${status}/${substatus}` : status;
}

export function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`;
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** 3000 → "3 000" (thin grouping, as the docs write numbers). */
export function num(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

/** Left-aligned columns: each row's cells padded to the widest cell of the column. */
export function table(rows: readonly (readonly string[])[], indent = '  '): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}`.trimEnd());
}

/** Right-aligns a number column, for counts. */
export function padNum(n: number, width: number): string {
  return num(n).padStart(width);
}

/** "3 min ago", "in 40 s": how far `at` is from `now`. */
export function relative(at: number, now: number): string {
  const ms = Math.abs(now - at);
  const amount = ms < 60_000 ? `${Math.round(ms / 1000)} s` : ms < 3_600_000 ? `${Math.round(ms / 60_000)} min` : ms < 172_800_000 ? `${(ms / 3_600_000).toFixed(1)} h` : `${Math.round(ms / 86_400_000)} d`;
  return at <= now ? `${amount} ago` : `in ${amount}`;
}
