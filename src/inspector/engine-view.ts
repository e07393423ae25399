// What the engine page shows: every rate-limit budget with the requests in flight in its scope,
// the counters every engine on the database has stored, the outbox and operations by state, and
// the campaigns halted by a refused key.

import type { CampaignRow } from '../store/campaigns.js';
import type { HaltRow } from '../store/halts.js';
import { readBudgets, type BudgetView } from '../engine/budget-view.js';
import type { OutboxState } from '../store/outbox.js';
import type { StoreTx } from '../store/port.js';


export interface EngineView {
  readonly budgets: readonly BudgetView[];
  /** Every engine's counters summed, by name (`calls.<method>`, `accepted`, `rateLimited`, …). */
  readonly counters: Readonly<Record<string, number>>;
  readonly outbox: Readonly<Record<OutboxState, number>>;
  readonly operations: Readonly<Record<string, number>>;
  readonly halts: readonly HaltRow[];
  readonly campaigns: readonly CampaignRow[];
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
