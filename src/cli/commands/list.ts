// `ym-orders list`: the ids of the orders matching a filter (campaign, status, change state,
// stuck for longer than a duration), one a line, so they pipe into `ship --file -` and the like;
// `--json` prints them as one array with their main fields. Pages through the database by order
// id, so a million orders print without being held in memory.

import type { Command } from 'commander';
import { ORDER_STATUSES } from '../../../machines/statuses.js';
import { CHANGE_STATES, listOrders, type ListedOrder } from '../../engine/order-listing.js';
import type { OrderListFilter } from '../../store/orders.js';
import { act, type Cli } from '../command.js';
import { parseCampaignSpec, withEngine, type GlobalOptions } from '../context.js';
import { usageError } from '../errors.js';
import { parsePositiveInteger } from '../input.js';

/** Orders read per page: a read transaction each, short enough not to hold up a running engine. */
const PAGE_SIZE = 1_000;

const DURATION_UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
type DurationUnit = keyof typeof DURATION_UNITS;

/** `30m`, `2h`, `45s`, `1d`, `1h30m` → milliseconds. */
export function parseDuration(text: string, option: string): number {
  const t = text.trim().toLowerCase();
  if (!/^(\d{1,9}[dhms])+$/.test(t)) throw usageError(`${option} "${text}" is not a duration such as 30m, 2h, 45s or 1h30m.`);
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([dhms])/g)) ms += Number(n) * DURATION_UNITS[unit as DurationUnit];
  if (ms === 0) throw usageError(`${option} "${text}" is no time at all; give a duration such as 30m.`);
  return ms;
}

/**
 * The campaign to list: the global `--campaign`, given here as a bare id (or as the usual
 * `<campaignId>:<businessId>:<MODEL>`, whose id is taken). Commander hands every `--campaign` to
 * the program's option, wherever it stands on the line.
 */
function campaignFilter(globals: GlobalOptions): number | undefined {
  if (globals.campaign.length === 0) return undefined;
  if (globals.campaign.length > 1) throw usageError(`list takes one --campaign, got ${globals.campaign.length}: ${globals.campaign.join(', ')}.`);
  const spec = globals.campaign[0]!.trim();
  if (/^\d{1,16}$/.test(spec) && Number(spec) > 0 && Number(spec) <= Number.MAX_SAFE_INTEGER) return Number(spec);
  if (spec.includes(':')) return parseCampaignSpec(spec).campaignId;
  throw usageError(`--campaign "${spec}" is not a campaign id (a positive integer such as 21000101).`);
}

function statusFilter(text: string): string {
  if (!/^[A-Za-z0-9_]{1,100}$/.test(text.trim())) {
    throw usageError(`--status "${text}" is not a Market status (letters, digits and _, such as PROCESSING).`);
  }
  return text.trim().toUpperCase();
}

function changeFilter(text: string): string {
  const found = CHANGE_STATES.find((s) => s.toLowerCase() === text.trim().toLowerCase());
  if (!found) throw usageError(`--change "${text}" is not one of ${CHANGE_STATES.join(', ')}.`);
  return found;
}

function afterOption(text: string): number {
  if (!/^\d{1,16}$/.test(text.trim()) || Number(text) > Number.MAX_SAFE_INTEGER) throw usageError(`--after "${text}" is not an order id (a whole number).`);
  return Number(text);
}

interface ListOptions {
  status?: string;
  change?: string;
  stuck?: string;
  limit?: string;
  after?: string;
}

export function registerList(program: Command, cli: Cli): void {
  program
    .command('list')
    .description('the ids of the orders matching a filter, one a line (--json: an array with their main fields)')
    .option('--status <status>', 'orders at this Market status (a value no list has too), e.g. PROCESSING')
    .option('--change <state>', `orders whose change is in this state: ${CHANGE_STATES.join(' | ')}`)
    .option('--stuck <duration>', 'orders with an open change that has not moved for longer than this: 45s, 30m, 2h, 1d, 1h30m')
    .option('--limit <n>', 'print at most this many orders (default: every match)')
    .option('--after <id>', 'start after this order id (where a --limit run stopped)')
    .addHelpText(
      'after',
      '\nThe campaign filter is the global --campaign, here a bare campaign id.\n\nExample:\n  ym-orders list --stuck 30m\n  ym-orders list --campaign 21000101 --status PROCESSING --change queued --json\n  ym-orders list --change uncertain | ym-orders status …',
    )
    .action(
      act<ListOptions>(cli, async ({ io, out, globals, opts }) => {
        const campaignId = campaignFilter(globals);
        const status = opts.status === undefined ? undefined : statusFilter(opts.status);
        const changeState = opts.change === undefined ? undefined : changeFilter(opts.change);
        const stuckMs = opts.stuck === undefined ? undefined : parseDuration(opts.stuck, '--stuck');
        const limit = opts.limit === undefined ? Number.POSITIVE_INFINITY : parsePositiveInteger(opts.limit, '--limit');
        let after = opts.after === undefined ? 0 : afterOption(opts.after);
        if (status !== undefined && !(ORDER_STATUSES as readonly string[]).includes(status)) {
          out.warn(`${status} is not a status this ym-orders knows (${ORDER_STATUSES.join(', ')}); listing the orders stored with it.`);
        }
        // The campaigns stay those the database stores: the --campaign given is a filter here.
        return withEngine(io, { ...globals, campaign: [] }, { mustExist: true }, async (engine) => {
          const filter: OrderListFilter = {
            ...(campaignId !== undefined ? { campaignId } : {}),
            ...(status !== undefined ? { status } : {}),
            ...(changeState !== undefined ? { changeState } : {}),
            ...(stuckMs !== undefined ? { stuckBefore: engine.clock() - stuckMs } : {}),
          };
          const write = (order: ListedOrder, first: boolean): void =>
            out.raw(out.json ? `${first ? '' : ',\n'}  ${JSON.stringify(order)}` : `${order.orderId}\n`);
          if (out.json) out.raw('[\n');
          let printed = 0;
          let nextAfter: number | undefined;
          do {
            const page = await listOrders(engine.store, filter, { after, limit: Math.min(PAGE_SIZE, limit - printed) });
            for (const order of page.orders) write(order, printed++ === 0);
            nextAfter = page.nextAfter;
            after = nextAfter ?? after;
          } while (nextAfter !== undefined && printed < limit);
          if (out.json) out.raw(printed === 0 ? ']\n' : '\n]\n');
          if (printed === 0) out.note('no order matches.');
          if (nextAfter !== undefined) out.note(`more orders match: go on with --after ${nextAfter}.`);
          return 0;
        });
      }),
    );
}
