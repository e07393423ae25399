// What `ym-orders demo` found, as plain data (runDemo returns it), and how it is shown: the
// step lines and the summary (describeDemo), the --json document (demoJson), and the error the
// demo ends with when a change or a notification stayed unsettled, the engine and the fake Market
// disagree, the Market got a change twice, the receiver refused the fake's notifications, or it
// took more calls than needed (demoFailure).

import path from 'node:path';
import type { CampaignConfig } from '../../engine/commands.js';
import type { SyncResult } from '../../engine/order-sync.js';
import { CliError, EXIT_CODES } from '../errors.js';
import type { FlushOutcome } from '../flushing.js';
import { num, padNum, seconds, table } from '../../format.js';
import { describeStatusRows, type StatusRow } from '../status-table.js';
import type { NotificationTally } from './notifications.js';
import type { ProcessShare } from './processes.js';

/** Bulk calls take at most this many orders: the minimum is Σ ceil(orders/30) per campaign. */
export const ORDERS_PER_CALL = 30;

export interface RefusalExample {
  readonly orderId: number;
  readonly target: string;
  readonly message: string;
}

/** Local refusals with one blocker code, the first two as examples. */
export interface RefusalGroup {
  readonly code: string;
  readonly count: number;
  readonly examples: readonly RefusalExample[];
}

export interface ChaosFault {
  readonly kind: string;
  readonly probability: number;
}

export interface DemoReport {
  readonly orders: number;
  readonly campaigns: readonly CampaignConfig[];
  readonly chaos: boolean;
  /** The SQLite file, or the PostgreSQL URL with its password redacted. */
  readonly database: string;
  /** The PostgreSQL schema the demo replaced; none for a SQLite file. */
  readonly schema?: string;
  /** The Mermaid file of the status transitions the journal saw. */
  readonly diagram: string;
  readonly marketUrl: string;
  /** The receiver the fake Market pushed its notifications to (POST /notification). */
  readonly receiverUrl: string;
  /** Where the demo ran: the closing hint names the database relative to it. */
  readonly cwd: string;
  /** From the start of the run to the summary. */
  readonly elapsedMs: number;

  /** 1. The first sync, which imports every order. */
  readonly firstSync: SyncResult;
  readonly firstSyncMs: number;

  /** 2. Seller changes asked for: the legal ones queued (per group), the mistakes refused locally. */
  readonly queued: number;
  readonly groups: readonly { readonly name: string; readonly queued: number; readonly singles: number }[];
  /** Distinct (order, target) requests refused; one may have several blockers. */
  readonly refusedRequests: number;
  readonly refusals: readonly RefusalGroup[];
  /** An order with a change queued (or the first seeded), for the closing hint. */
  readonly exampleOrderId: number;

  /** 3. The flush, with the faults injected meanwhile when chaos is on. */
  readonly chaosFaults: readonly ChaosFault[];
  /** With several processes, its counters are theirs, added up. */
  readonly flush: FlushOutcome;
  /** Each child's share when several processes flushed; empty when this process did. */
  readonly processes: readonly ProcessShare[];

  /**
   * 4. What the Market did next, told only by notification: orders the couriers picked up, new
   * orders the buyers placed (and how many of them the engine tracked from the notifications and
   * its reads), chats opened; and how long until every notification was applied.
   */
  readonly pickedUp: number;
  readonly placed: number;
  readonly placedTracked: number;
  readonly chats: number;
  readonly notifiedMs: number;
  /** What the receiver answered over the whole run; `unsettled`: stored, not applied or read at the end. */
  readonly notifications: NotificationTally & { readonly unsettled: number };
  /** The fake's side of the same: what it delivered (a 2xx), sent twice, sent out of order, retried, had refused. */
  readonly notifier: {
    readonly delivered: number;
    readonly duplicatesSent: number;
    readonly reordered: number;
    readonly retries: number;
    readonly rejected: number;
  };
  /** getBusinessOrders reads of notified orders, by every engine of the run. */
  readonly reads: { readonly calls: number; readonly orders: number; readonly notFound: number };

  /** The end state. */
  readonly byStatus: readonly StatusRow[];
  readonly ordersStored: number;
  readonly statusUpdateCalls: {
    readonly made: number;
    readonly minimum: number;
    readonly bulk: number;
    readonly minimumBulk: number;
    readonly single: number;
    /** Changes with a realDeliveryDate: each needs its own call. */
    readonly singles: number;
  };
  /** Every engine's of the run: this process's and the children's. */
  readonly counters: FlushOutcome['counters'];
  /** 420 answers the fake Market served. */
  readonly rateLimited: number;
  readonly operations: Record<string, number>;
  readonly market: {
    /** Orders the fake holds at the end: seeded and placed. */
    readonly orders: number;
    readonly illegalRequests: number;
    readonly duplicateApplications: number;
    readonly agree: number;
    readonly differ: readonly number[];
  };
}

const kv = (name: string, value: string): string => `  ${name.padEnd(20)} ${value}`;

/** A blocker's message without the "Allowed from here: …" hint, for one-line examples. */
function shorten(message: string): string {
  const text = message.replace(/\s*(Allowed from here:.*|No seller change is allowed from here\.)$/, '');
  return text.length > 110 ? `${text.slice(0, 109)}…` : text;
}

const refusalCounts = (groups: readonly RefusalGroup[]): string => groups.map((g) => `${g.code} ×${g.count}`).join(', ');

const statusUpdateCalls = (c: FlushOutcome['counters']): number => (c.calls.updateOrderStatuses ?? 0) + (c.calls.updateOrderStatus ?? 0);

/** One child's figures: changes it handed to the Market, the status-update calls it made for them, and its share of all. */
function shareOf(p: ProcessShare, processes: readonly ProcessShare[]) {
  const changes = p.counters.ordersSent;
  const all = processes.reduce((n, q) => n + q.counters.ordersSent, 0);
  return { changes, requests: statusUpdateCalls(p.counters), share: all === 0 ? 0 : changes / all };
}

function describeShare(p: ProcessShare, processes: readonly ProcessShare[]): string {
  const { changes, requests, share } = shareOf(p, processes);
  const others = Object.entries(p.counters.calls).filter(([m, n]) => n > 0 && m !== 'updateOrderStatuses' && m !== 'updateOrderStatus');
  return `   process ${p.process} (pid ${p.pid}): ${num(changes)} changes in ${num(requests)} requests, ${Math.round(share * 100)} %${others.length ? ` (${others.map(([m, n]) => `${m} ${num(n)}`).join(', ')})` : ''}`;
}

const databaseLine = (r: DemoReport): string => `${r.database}${r.schema ? `, schema ${r.schema}` : ''}`;

const ignoredLine = (n: DemoReport['notifications']): string =>
  `${num(n.ignored)} ignored${n.ignored ? ` (${Object.entries(n.ignoredTypes).map(([type, k]) => `${type} ×${num(k)}`).join(', ')})` : ''}`;

export function describeDemo(r: DemoReport): string[] {
  const fc = r.flush.counters;
  const c = r.counters;
  const calls = r.statusUpdateCalls;
  const overMinimum = calls.made - calls.minimum;
  const callsVsMin = overMinimum === 0 ? 'the minimum' : `${overMinimum > 0 ? '+' : ''}${overMinimum} over the minimum${r.chaos ? ' (resends after faults)' : ''}`;
  const opsEnded = Object.entries(r.operations).filter(([s]) => s !== 'inProgress').reduce((n, [, k]) => n + k, 0);
  return [
    `ym-orders demo: ${num(r.orders)} orders, ${r.campaigns.length} campaigns, a fake Market on loopback${r.chaos ? ' with chaos' : ''}`,
    ...table([
      ['database', `${databaseLine(r)} (new)`],
      ['fake Market', `${r.marketUrl} (API key generated for this run, never printed or stored)`],
      ['receiver', `${r.receiverUrl} (the fake pushes every change here, some twice, some out of order, as the Market does)`],
      ['campaigns', r.campaigns.map((k) => `${k.model} ${k.campaignId} (business ${k.businessId})`).join(', ')],
    ]),
    '',
    `1. sync: read ${num(r.firstSync.seen)} orders in ${num(r.firstSync.pages)} pages (getBusinessOrders), ${num(r.firstSync.created)} new, in ${seconds(r.firstSyncMs)}`,
    `2. requests: ${num(r.queued)} changes queued, ${num(r.refusedRequests)} refused locally (never sent)`,
    ...r.groups.map((g) => `   ${g.name.padEnd(38)} ${padNum(g.queued, 5)} queued${g.singles ? ` (${g.singles} with realDeliveryDate, sent one by one)` : ''}`),
    `   ${'refused by explainTransition'.padEnd(38)} ${padNum(r.refusedRequests, 5)}: ${refusalCounts(r.refusals)}`,
    ...(r.chaos ? [`   chaos on: ${r.chaosFaults.map((f) => `${f.kind} ${Math.round(f.probability * 100)}%`).join(', ')}`] : []),
    `3. flush: ${num(r.flush.openAtStart)} changes in ${seconds(r.flush.elapsedMs)}${r.processes.length ? ` by ${r.processes.length} processes sharing the database` : ''}: ${num(r.flush.settled.accepted)} accepted, ${num(r.flush.settled.rejected)} rejected, ${num(r.flush.open)} still open (${num(fc.operationsStarted)} via async operations${fc.readBacks ? `, ${num(fc.readBacks)} unknown outcomes settled by read-back` : ''})`,
    ...r.processes.map((p) => describeShare(p, r.processes)),
    `4. the Market moved on: couriers picked up ${num(r.pickedUp)} packed orders, buyers placed ${num(r.placed)} new orders and opened ${num(r.chats)} chats, told by notification only`,
    `   notifications: ${num(r.notifications.received)} received over the run, ${num(r.notifications.duplicates)} duplicates ignored, ${ignoredLine(r.notifications)}; ${num(r.reads.orders)} notified orders read in ${num(r.reads.calls)} calls; ${num(r.placedTracked)}/${num(r.placed)} new orders tracked; all applied ${seconds(r.notifiedMs)} after the Market moved`,
    '',
    `summary (${seconds(r.elapsedMs)})`,
    `  orders by status (${num(r.ordersStored)}):`,
    ...describeStatusRows(r.byStatus).map((l) => `  ${l}`),
    kv('status-update calls', `${num(calls.made)} made, minimum ${num(calls.minimum)} = ${callsVsMin} (${num(calls.bulk)} bulk calls for ${num(r.queued - calls.singles)} orders, minimum ${num(calls.minimumBulk)} = Σ ceil(orders/${ORDERS_PER_CALL}) per campaign; ${num(calls.single)} single PUTs for ${num(calls.singles)} realDeliveryDate changes)`),
    kv('other calls', `getBusinessOrders ${num(c.calls.getBusinessOrders ?? 0)}, getOperations ${num(c.calls.getOperations ?? 0)}`),
    kv('notifications', `${num(r.notifications.received)} received (the fake delivered ${num(r.notifier.delivered)}: ${num(r.notifier.duplicatesSent)} sent twice, ${num(r.notifier.reordered)} out of order, ${num(r.notifier.retries)} retries); ${num(r.notifications.stored)} stored, ${num(r.notifications.duplicates)} duplicates ignored, ${ignoredLine(r.notifications)}, ${num(r.notifications.invalid)} refused (400), ${num(r.notifications.failed)} failed (500)`),
    kv('reads', `${num(r.reads.calls)} getBusinessOrders calls for ${num(r.reads.orders)} notified orders (${num(r.reads.notFound)} not found)`),
    kv('420 answers', `${num(r.rateLimited)}`),
    kv('retries/read-backs', `${num(c.deferred)} deferred and retried, ${num(c.uncertain)} unknown outcomes, ${num(c.readBacks)} orders read back`),
    kv('refused locally', `${num(r.refusedRequests)} request(s), never sent: ${refusalCounts(r.refusals)}`),
    ...r.refusals.map((g) => {
      const ex = g.examples[0]!;
      return `      e.g. [${g.code}] order ${ex.orderId} → ${ex.target}: ${shorten(ex.message)}`;
    }),
    kv('operations', `${num(opsEnded)} completed (${Object.entries(r.operations).map(([s, n]) => `${s} ${num(n)}`).join(', ') || 'none'}), polled with ${num(c.calls.getOperations ?? 0)} getOperations calls`),
    kv('Market check', `illegal requests received ${num(r.market.illegalRequests)}, duplicate applications ${num(r.market.duplicateApplications)}; engine and Market agree on ${num(r.market.agree)}/${num(r.market.orders)} orders`),
    kv('elapsed', seconds(r.elapsedMs)),
    kv('database', databaseLine(r)),
    kv('diagram', `${r.diagram} (Mermaid: status transitions with counts)`),
    // The other commands open a PostgreSQL URL on the schema ym_orders, not the demo's.
    ...(r.schema ? [] : [`next: ym-orders --db ${path.relative(r.cwd, r.database) || r.database} status | history ${r.exampleOrderId} | graph --model DBS`]),
  ];
}

/** The --json document. */
export function demoJson(r: DemoReport): Record<string, unknown> {
  return {
    database: r.database,
    ...(r.schema ? { schema: r.schema } : {}),
    diagram: r.diagram,
    chaos: r.chaos,
    elapsedMs: r.elapsedMs,
    orders: r.ordersStored,
    byStatus: r.byStatus,
    sync: { first: r.firstSync },
    queued: r.queued,
    statusUpdateCalls: r.statusUpdateCalls,
    calls: r.counters.calls,
    rateLimited: r.rateLimited,
    counters: r.counters,
    refused: { requests: r.refusedRequests, byCode: r.refusals },
    operations: r.operations,
    market: { ...r.market, differ: r.market.differ.slice(0, 20) },
    marketMoves: { pickedUp: r.pickedUp, placed: r.placed, placedTracked: r.placedTracked, chats: r.chats, notifiedMs: r.notifiedMs },
    notifications: { ...r.notifications, receiverUrl: r.receiverUrl, fake: r.notifier },
    reads: r.reads,
    flush: { open: r.flush.open, rejections: r.flush.rejections },
    processes: r.processes.map((p) => ({ process: p.process, pid: p.pid, owner: p.owner, ...shareOf(p, r.processes), counters: p.counters, reads: p.reads })),
  };
}

/**
 * The error the demo ends with (exit 1), if any: DEMO_INCOMPLETE when a change stayed open, a
 * notification was not applied or read, a new order was not tracked from its notification, or an
 * order differs from the Market; else DEMO_CHECK_FAILED when the Market received a change it had
 * applied already, the receiver refused a notification of the fake's as malformed, or, without
 * chaos (whose faults call for resends), more status-update calls than the minimum.
 */
export function demoFailure(r: DemoReport): CliError | undefined {
  const untracked = r.placed - r.placedTracked;
  const unsettled = r.notifications.unsettled;
  if (r.flush.open > 0 || r.market.differ.length > 0 || untracked > 0 || unsettled > 0) {
    return new CliError(
      'DEMO_INCOMPLETE',
      `${r.flush.open} change(s) still open, ${unsettled} notification(s) not applied or read, ${untracked} new order(s) not tracked, and ${r.market.differ.length} order(s) differ from the Market (e.g. ${r.market.differ.slice(0, 3).join(', ') || '-'}).`,
      EXIT_CODES.failed,
      { open: r.flush.open, unsettledNotifications: unsettled, untracked, differ: r.market.differ.length },
    );
  }
  const calls = r.statusUpdateCalls;
  const problems = [
    ...(r.market.duplicateApplications > 0 ? [`the Market received ${r.market.duplicateApplications} change(s) it had applied already`] : []),
    ...(r.notifications.invalid > 0 ? [`the receiver refused ${r.notifications.invalid} notification(s) of the fake Market's as malformed`] : []),
    ...(!r.chaos && calls.made > calls.minimum ? [`${calls.made} status-update calls were made where ${calls.minimum} suffice`] : []),
  ];
  if (problems.length === 0) return undefined;
  return new CliError('DEMO_CHECK_FAILED', `${problems.join('; ')}.`, EXIT_CODES.failed, {
    duplicateApplications: r.market.duplicateApplications,
    invalidNotifications: r.notifications.invalid,
    statusUpdateCalls: calls.made,
    minimum: calls.minimum,
  });
}
