// `ym-orders limits`: what the rate limiter holds in the database, shared by every process on it:
// each budget (a Market method in a campaign's or business's scope) with what remains of it, when
// its window ends, until when a 420 blocks it, when its latest 420 came, and the requests in
// flight in each scope.
//
// What the store keeps of 420s: each budget's last_rate_limited_at (when the latest 420 came) and
// blocked_until (when the wait it imposed ends), and every engine's count of 420 answers.

import type { Command } from 'commander';
import type { CounterName } from '../../engine/counter-book.js';
import { readBudgets, type BudgetView } from '../../engine/budget-view.js';
import { act, type Cli } from '../command.js';
import { withEngine } from '../context.js';
import { isoTime, num, relative, table } from '../../format.js';

/** The counter every engine adds its 420 answers to. */
const RATE_LIMITED_COUNTER: CounterName = 'rateLimited';

function budgetJson(b: BudgetView, now: number): Record<string, unknown> {
  return {
    resource: b.resource_key,
    operation: b.operation,
    scope: b.scope,
    capacity: b.capacity,
    remaining: b.remaining,
    windowEndsAt: b.window_ends_at,
    // The stored count is of a window that is over: the next request opens a new, full one.
    windowOver: b.window_ends_at <= now,
    blockedUntil: b.blocked_until > 0 ? b.blocked_until : null,
    blocked: b.blocked_until > now,
    lastRateLimitedAt: b.last_rate_limited_at,
    inFlight: b.inFlight,
    updatedAt: b.updated_at,
  };
}

/** To the second: the Market's windows are named in whole seconds. */
function second(ms: number): string {
  return isoTime(Math.floor(ms / 1000) * 1000);
}

function at(ms: number, now: number): string {
  return `${second(ms)} (${relative(ms, now)})`;
}

function budgetCells(b: BudgetView, now: number): string[] {
  const window = b.window_ends_at > now ? `ends ${at(b.window_ends_at, now)}` : `ended ${at(b.window_ends_at, now)}: full at the next request`;
  const blocked = b.blocked_until > now ? `until ${at(b.blocked_until, now)}` : b.blocked_until > 0 ? `ended ${at(b.blocked_until, now)}` : '—';
  const last420 = b.last_rate_limited_at === null ? '—' : `at ${at(b.last_rate_limited_at, now)}`;
  return [b.scope, b.operation, `${num(b.remaining)} / ${num(b.capacity)}`, window, blocked, last420];
}

/** Each scope once, with the requests in flight in it (every budget of a scope carries the same count). */
function scopesOf(budgets: readonly BudgetView[]): { scope: string; inFlight: number }[] {
  return [...new Map(budgets.map((b) => [b.scope, b.inFlight]))].map(([scope, inFlight]) => ({ scope, inFlight }));
}

function describe(db: string, budgets: readonly BudgetView[], rateLimited: number, now: number): string[] {
  if (budgets.length === 0) return [`no budget in ${db} yet: no process has called the Market from this database.`];
  return [
    `${budgets.length} budget(s) in ${db}, at ${second(now)}`,
    ...table([['scope', 'method', 'remaining', 'window', 'blocked by a 420', 'last 420'], ...budgets.map((b) => budgetCells(b, now))]),
    `requests in flight: ${scopesOf(budgets).map((s) => `${s.scope} ${s.inFlight}`).join(', ')}`,
    `420 answers so far (every engine's count): ${num(rateLimited)}; "blocked by a 420" is when the latest 420's wait ends, "last 420" when it came`,
  ];
}

export function registerLimits(program: Command, cli: Cli): void {
  program
    .command('limits')
    .description('the rate-limit budgets every process on the database shares: remaining, window end, 420 blocks, the last 420, requests in flight')
    .addHelpText('after', '\nExample:\n  ym-orders limits\n  ym-orders --db postgres://… limits --json')
    .action(
      act(cli, async ({ io, out, globals }) => {
        return withEngine(io, globals, { mustExist: true }, async (engine) => {
          const now = engine.clock();
          const { budgets: byKey, counters } = await engine.store.read(async (tx) => ({ budgets: await readBudgets(tx), counters: await tx.counters.totals() }));
          // Grouped by scope: a campaign's or business's budgets and its requests in flight together.
          const budgets = [...byKey].sort((x, y) => x.scope.localeCompare(y.scope) || x.operation.localeCompare(y.operation));
          const rateLimited = counters[RATE_LIMITED_COUNTER] ?? 0;
          out.result(
            () => describe(engine.store.name, budgets, rateLimited, now),
            () => ({
              db: engine.store.name,
              now,
              budgets: budgets.map((b) => budgetJson(b, now)),
              scopes: scopesOf(budgets),
              rateLimited,
            }),
          );
          return 0;
        });
      }),
    );
}
