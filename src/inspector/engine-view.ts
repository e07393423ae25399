// What the engine page shows: every rate-limit budget with the requests in flight in its scope,
// the counters every engine on the database has stored, the outbox and operations by state, and
// the campaigns halted by a refused key.

import type { CampaignRow } from '../store/campaigns.js';
import type { HaltRow } from '../store/halts.js';
import type { BudgetRow } from '../store/limiter.js';
import type { OutboxState } from '../store/outbox.js';
import type { StoreTx } from '../store/port.js';

export interface BudgetView extends BudgetRow {
  /** The Market method, e.g. `updateOrderStatuses`. */
  readonly operation: string;
  /** `campaign:<id>` or `business:<id>`. */
  readonly scope: string;
  /** Requests holding a parallel slot of the scope now (leases not yet expired or dropped). */
  readonly inFlight: number;
}

export interface EngineView {
  readonly budgets: readonly BudgetView[];
  /** Every engine's counters summed, by name (`calls.<method>`, `accepted`, `rateLimited`, …). */
  readonly counters: Readonly<Record<string, number>>;
  readonly outbox: Readonly<Record<OutboxState, number>>;
  readonly operations: Readonly<Record<string, number>>;
  readonly halts: readonly HaltRow[];
  readonly campaigns: readonly CampaignRow[];
}

/** `updateOrderStatuses@campaign:21000101` → its method and scope (the rate limiter's key shape). */
export function splitResourceKey(key: string): { operation: string; scope: string } {
  const at = key.lastIndexOf('@');
  return at < 0 ? { operation: key, scope: '' } : { operation: key.slice(0, at), scope: key.slice(at + 1) };
}

export async function readBudgets(tx: StoreTx): Promise<BudgetView[]> {
  const rows = await tx.limiter.all();
  const inFlight = new Map<string, number>();
  for (const row of rows) {
    const { scope } = splitResourceKey(row.resource_key);
    if (scope && !inFlight.has(scope)) inFlight.set(scope, await tx.limiter.inFlight(scope));
  }
  return rows.map((row) => {
    const { operation, scope } = splitResourceKey(row.resource_key);
    return { ...row, operation, scope, inFlight: inFlight.get(scope) ?? 0 };
  });
}

export async function readEngineView(tx: StoreTx): Promise<EngineView> {
  return {
    budgets: await readBudgets(tx),
    counters: await tx.counters.totals(),
    outbox: await tx.outbox.counts(),
    operations: await tx.operations.counts(),
    halts: await tx.halts.all(),
    campaigns: await tx.campaigns.all(),
  };
}
