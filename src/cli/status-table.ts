// Orders counted by status/substatus, for `status` and the demo's summary.

import type { EngineSummary } from '../engine/engine.js';
import { label, num, table } from '../format.js';

export interface StatusRow {
  readonly status: string;
  readonly substatus: string | null;
  readonly count: number;
  /** Orders of this status whose seller change is not idle, by change state. */
  readonly changes: Record<string, number>;
}

/** The summary folded by status/substatus, most orders first. */
export function statusRows(summary: EngineSummary): StatusRow[] {
  const rows = new Map<string, { status: string; substatus: string | null; count: number; changes: Record<string, number> }>();
  for (const r of summary.byStatus) {
    const key = label(r.status, r.substatus);
    const row = rows.get(key) ?? { status: r.status, substatus: r.substatus, count: 0, changes: {} };
    row.count += r.count;
    if (r.change !== 'idle') row.changes[r.change] = (row.changes[r.change] ?? 0) + r.count;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => b.count - a.count || label(a.status, a.substatus).localeCompare(label(b.status, b.substatus)));
}

export function describeStatusRows(rows: readonly StatusRow[]): string[] {
  const width = Math.max(...rows.map((r) => num(r.count).length), 1);
  return table(
    rows.map((r) => [
      label(r.status, r.substatus),
      num(r.count).padStart(width),
      Object.entries(r.changes).map(([change, n]) => `${num(n)} ${change}`).join(', '),
    ]),
  );
}
