// What `ym-orders demo` found, as plain data (runDemo returns it), and how it is shown: the
// step lines and the summary (describeDemo), the --json document (demoJson), and the error the
// demo ends with when a change stayed open, the engine and the fake Market disagree, the Market
// got a change twice, or it took more calls than needed (demoFailure).

import path from 'node:path';
import type { CampaignConfig } from '../../engine/commands.js';
import type { SyncResult } from '../../engine/order-sync.js';
import { CliError, EXIT_CODES } from '../errors.js';
import type { FlushOutcome } from '../flushing.js';
import { num, padNum, seconds, table } from '../../format.js';
import { describeStatusRows, type StatusRow } from '../status-table.js';
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

  /** 4. Orders the couriers picked up at the Market, and the incremental sync that read them. */
  readonly pickedUp: number;
  readonly secondSync: SyncResult;
  readonly secondSyncMs: number;

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
    `4. sync: couriers picked up ${num(r.pickedUp)} packed orders at the Market; incremental sync read ${num(r.secondSync.seen)} changed orders in ${num(r.secondSync.pages)} pages, ${num(r.secondSync.updated)} updated, in ${seconds(r.secondSyncMs)}`,
    '',
    `summary (${seconds(r.elapsedMs)})`,
    `  orders by status (${num(r.ordersStored)}):`,
    ...describeStatusRows(r.byStatus).map((l) => `  ${l}`),
    kv('status-update calls', `${num(calls.made)} made, minimum ${num(calls.minimum)} = ${callsVsMin} (${num(calls.bulk)} bulk calls for ${num(r.queued - calls.singles)} orders, minimum ${num(calls.minimumBulk)} = Σ ceil(orders/${ORDERS_PER_CALL}) per campaign; ${num(calls.single)} single PUTs for ${num(calls.singles)} realDeliveryDate changes)`),
    kv('other calls', `getBusinessOrders ${num(c.calls.getBusinessOrders ?? 0)}, getOperations ${num(c.calls.getOperations ?? 0)}`),
    kv('420 answers', `${num(r.rateLimited)}`),
    kv('retries/read-backs', `${num(c.deferred)} deferred and retried, ${num(c.uncertain)} unknown outcomes, ${num(c.readBacks)} orders read back`),
    kv('refused locally', `${num(r.refusedRequests)} request(s), never sent: ${refusalCounts(r.refusals)}`),
    ...r.refusals.map((g) => {
      const ex = g.examples[0]!;
      return `      e.g. [${g.code}] order ${ex.orderId} → ${ex.target}: ${shorten(ex.message)}`;
    }),
    kv('operations', `${num(opsEnded)} completed (${Object.entries(r.operations).map(([s, n]) => `${s} ${num(n)}`).join(', ') || 'none'}), polled with ${num(c.calls.getOperations ?? 0)} getOperations calls`),
    kv('Market check', `illegal requests received ${num(r.market.illegalRequests)}, duplicate applications ${num(r.market.duplicateApplications)}; engine and Market agree on ${num(r.market.agree)}/${num(r.orders)} orders`),
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
    sync: { first: r.firstSync, second: r.secondSync },
    queued: r.queued,
    statusUpdateCalls: r.statusUpdateCalls,
    calls: r.counters.calls,
    rateLimited: r.rateLimited,
    counters: r.counters,
    refused: { requests: r.refusedRequests, byCode: r.refusals },
    operations: r.operations,
    market: { ...r.market, differ: r.market.differ.slice(0, 20) },
    flush: { open: r.flush.open, rejections: r.flush.rejections },
    processes: r.processes.map((p) => ({ process: p.process, pid: p.pid, owner: p.owner, ...shareOf(p, r.processes), counters: p.counters })),
  };
}

/**
 * The error the demo ends with (exit 1), if any: DEMO_INCOMPLETE when a change stayed open or an
 * order differs from the Market; else DEMO_CHECK_FAILED when the Market received a change it had
 * applied already, or, without chaos (whose faults call for resends), more status-update calls
 * than the minimum.
 */
export function demoFailure(r: DemoReport): CliError | undefined {
  if (r.flush.open > 0 || r.market.differ.length > 0) {
    return new CliError(
      'DEMO_INCOMPLETE',
      `${r.flush.open} change(s) still open and ${r.market.differ.length} order(s) differ from the Market (e.g. ${r.market.differ.slice(0, 3).join(', ') || '-'}).`,
      EXIT_CODES.failed,
    );
  }
  const calls = r.statusUpdateCalls;
  const problems = [
    ...(r.market.duplicateApplications > 0 ? [`the Market received ${r.market.duplicateApplications} change(s) it had applied already`] : []),
    ...(!r.chaos && calls.made > calls.minimum ? [`${calls.made} status-update calls were made where ${calls.minimum} suffice`] : []),
  ];
  if (problems.length === 0) return undefined;
  return new CliError('DEMO_CHECK_FAILED', `${problems.join('; ')}.`, EXIT_CODES.failed, {
    duplicateApplications: r.market.duplicateApplications,
    statusUpdateCalls: calls.made,
    minimum: calls.minimum,
  });
}
