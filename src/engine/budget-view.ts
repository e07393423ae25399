// Every rate-limit budget with the requests in flight in its scope, as people read them: what
// `ym-orders limits` prints and the inspector's engine page shows.

import type { BudgetRow } from '../store/limiter.js';
import type { StoreTx } from '../store/port.js';
import { parseResourceKey, scopeKey } from './rate-limiter.js';

export interface BudgetView extends BudgetRow {
  /** The Market method, e.g. `updateOrderStatuses` (the whole key for a key of another shape). */
  readonly operation: string;
  /** `campaign:<id>` or `business:<id>` ('' for a key of another shape). */
  readonly scope: string;
  /** Requests holding a parallel slot of the scope now (leases not yet expired or dropped). */
  readonly inFlight: number;
}

export async function readBudgets(tx: StoreTx): Promise<BudgetView[]> {
  const rows = await tx.limiter.all();
  const named = rows.map((row) => {
    const key = parseResourceKey(row.resource_key);
    return { row, operation: key?.operation ?? row.resource_key, scope: key ? scopeKey(key.scope) : '' };
  });
  const inFlight = new Map<string, number>();
  for (const { scope } of named) if (scope && !inFlight.has(scope)) inFlight.set(scope, await tx.limiter.inFlight(scope));
  // The stored count dips below 0 while requests the Market already counted are still in flight (rate-limiter.ts): none left is what a reader needs to see.
  return named.map(({ row, operation, scope }) => ({ ...row, remaining: Math.max(0, row.remaining), operation, scope, inFlight: inFlight.get(scope) ?? 0 }));
}
