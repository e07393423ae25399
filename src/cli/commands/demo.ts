// `ym-orders demo` (= `npm start`): the whole engine end to end against a fake Market on
// loopback: sync ~3 000 orders, queue legal changes (and refuse illegal ones locally), flush
// them within the API limits, sync what the Market did next, and report the numbers.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { createEngine, type Engine } from '../../engine/engine.js';
import { MARKET_OPERATIONS } from '../../market/errors.js';
import { APPLICATION_ID } from '../../store/open-database.js';
import { startFakeMarket, type FakeMarket, type FakeOrderSeed } from '../../testing/index.js';
import { act, type Cli } from '../command.js';
import { CliError, EXIT_CODES, usageError } from '../errors.js';
import { flushWithProgress, type FlushOutcome } from '../flushing.js';
import { label, num, padNum, seconds, table } from '../format.js';
import type { Output } from '../output.js';
import { createProgress } from '../progress.js';
import { DEMO_CAMPAIGNS, generateOrders, planChanges, type PlannedGroup } from '../demo-data.js';
import { describeStatusRows, statusRows } from '../status-table.js';

const DEFAULT_DEMO_DB = './ym-orders-demo.db';
const ORDERS_PER_PAGE = 50;
const ORDERS_PER_CALL = 30;

interface RefusalExample {
  readonly orderId: number;
  readonly target: string;
  readonly message: string;
}

interface RefusalGroup {
  readonly code: string;
  count: number;
  readonly examples: RefusalExample[];
}

/** Refuses to delete a file that is not a ym-orders database (or empty). */
function replaceDatabase(file: string): void {
  if (fs.existsSync(file)) {
    const fd = fs.openSync(file, 'r');
    const header = Buffer.alloc(72);
    const read = fs.readSync(fd, header, 0, 72, 0);
    fs.closeSync(fd);
    const ours = read === 0 || (read >= 72 && header.subarray(0, 16).toString('latin1') === 'SQLite format 3\u0000' && header.readUInt32BE(68) === APPLICATION_ID);
    if (!ours) {
      throw new CliError('DB_NOT_OURS', `${file} exists and is not a ym-orders database; the demo replaces its database, so choose another --db.`, EXIT_CODES.usage);
    }
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${file}${suffix}`, { force: true });
}

function diagramPath(dbFile: string): string {
  return dbFile.replace(/\.db$/i, '') + '.mmd';
}

/** The status transitions the journal saw, with counts: seller changes bold, Market moves plain. */
function transitionsMermaid(engine: Engine): string {
  const rows = engine.store.db
    .prepare(
      `SELECT from_status AS fs, from_substatus AS fss, to_status AS ts, to_substatus AS tss,
              CASE WHEN event_type LIKE 'DISPATCH.%' THEN 'seller' ELSE 'market' END AS who, COUNT(*) AS n
         FROM journal
        WHERE from_status IS NOT NULL AND (from_status <> to_status OR IFNULL(from_substatus, '') <> IFNULL(to_substatus, ''))
        GROUP BY 1, 2, 3, 4, 5 ORDER BY n DESC`,
    )
    .all() as { fs: string; fss: string | null; ts: string; tss: string | null; who: string; n: number }[];
  const now = new Map(statusRows(engine.summary()).map((r) => [label(r.status, r.substatus), r.count]));
  const id = (s: string, ss: string | null): string => label(s, ss).replace(/[^A-Za-z0-9]+/g, '_');
  const nodes = new Map<string, string>();
  for (const [name, count] of now) nodes.set(name.replace(/[^A-Za-z0-9]+/g, '_'), `${name}<br/>${count} now`);
  for (const r of rows) {
    for (const [s, ss] of [[r.fs, r.fss], [r.ts, r.tss]] as const) {
      if (!nodes.has(id(s, ss))) nodes.set(id(s, ss), `${label(s, ss)}<br/>0 now`);
    }
  }
  const lines = [
    '%% ym-orders demo: order status transitions recorded in the journal.',
    '%% Bold edges: seller changes the engine sent; thin edges: moves the Market made (read by sync).',
    'flowchart LR',
    ...[...nodes].map(([key, text]) => `  ${key}["${text}"]`),
    ...rows.map((r) => `  ${id(r.fs, r.fss)} ${r.who === 'seller' ? '==>' : '-->'}|"${r.n} ${r.who}"| ${id(r.ts, r.tss)}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** Syncs with a progress bar; the demo knows how many pages to expect from its seeded orders. */
async function syncWithProgress(engine: Engine, out: Output, expectedPages: number, name: string) {
  const progress = createProgress(out, name);
  try {
    return await engine.sync({ onProgress: (p) => progress.update(Math.min(p.pages, expectedPages), expectedPages, 'pages') });
  } finally {
    progress.stop();
  }
}

function applyGroups(engine: Engine, groups: readonly PlannedGroup[]) {
  const queued: { group: string; orderId: number; campaignId: number; single: boolean }[] = [];
  const refused: { orderId: number; target: string; code: string; message: string }[] = [];
  for (const group of groups) {
    const result = engine.requestChanges(group.requests);
    const byId = new Map(group.requests.map((r) => [r.orderId, r]));
    for (const o of result.queued) queued.push({ group: group.name, orderId: o.orderId, campaignId: o.campaignId, single: byId.get(o.orderId)?.realDeliveryDate !== undefined });
    for (const r of result.refused) {
      const request = byId.get(r.orderId ?? 0);
      const blockers = (r.error.details.blockers as { code: string; message: string }[] | undefined) ?? [{ code: r.error.code, message: r.error.message }];
      for (const b of blockers) {
        refused.push({ orderId: r.orderId ?? 0, target: request ? label(request.status, request.substatus) : '?', code: b.code, message: b.message });
      }
    }
  }
  return { queued, refused };
}

const kv = (name: string, value: string): string => `  ${name.padEnd(20)} ${value}`;

/** A blocker's message without the "Allowed from here: …" hint, for one-line examples. */
function shorten(message: string): string {
  const text = message.replace(/\s*(Allowed from here:.*|No seller change is allowed from here\.)$/, '');
  return text.length > 110 ? `${text.slice(0, 109)}…` : text;
}

function groupRefusals(refused: readonly { orderId: number; target: string; code: string; message: string }[]): RefusalGroup[] {
  const groups = new Map<string, RefusalGroup>();
  for (const r of refused) {
    const g = groups.get(r.code) ?? { code: r.code, count: 0, examples: [] };
    g.count++;
    if (g.examples.length < 2) g.examples.push({ orderId: r.orderId, target: r.target, message: r.message });
    groups.set(r.code, g);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
}

/** Compares every order's status in the engine with the fake Market's. */
function agreement(engine: Engine, market: FakeMarket, orders: readonly FakeOrderSeed[]): { agree: number; differ: number[] } {
  const differ: number[] = [];
  for (const o of orders) {
    const theirs = market.getOrder(o.id);
    const ours = engine.findOrder(o.id);
    if (!theirs || !ours || theirs.status !== ours.status || theirs.substatus !== ours.substatus) differ.push(o.id);
  }
  return { agree: orders.length - differ.length, differ };
}

function injectChaos(market: FakeMarket): string[] {
  const faults = [
    { kind: 'status500', probability: 0.08 },
    { kind: 'status503', probability: 0.03 },
    { kind: 'status420', probability: 0.04 },
    { kind: 'drop', probability: 0.04 },
    { kind: 'dropAfterApply', probability: 0.04 },
    { kind: 'timeoutAfterApply', probability: 0.03, delayMs: 2_500 },
    { kind: 'hang', probability: 0.02, delayMs: 2_500 },
  ] as const;
  for (const f of faults) market.inject({ ...f, times: Infinity });
  return faults.map((f) => `${f.kind} ${Math.round(f.probability * 100)}%`);
}

export function registerDemo(program: Command, cli: Cli): void {
  program
    .command('demo')
    .description('run the engine end to end against a fake Market on loopback (what `npm start` does)')
    .option('--orders <n>', 'how many orders the fake Market holds', '3000')
    .option('--chaos', 'inject faults (500s, 503s, 420s, drops, timeouts) to show recovery')
    .addHelpText('after', `\nThe database defaults to ${DEFAULT_DEMO_DB} (replaced on each run); --db chooses another.\nExample:\n  ym-orders demo --chaos --db /tmp/demo.db`)
    .action(
      act<{ orders: string; chaos?: boolean }>(cli, async ({ io, out, globals, opts, command }) => {
        const started = Date.now();
        if (!/^\d+$/.test(opts.orders) || Number(opts.orders) < 100 || Number(opts.orders) > 20_000) {
          throw usageError(`--orders "${opts.orders}" must be a whole number from 100 to 20000.`);
        }
        const orderCount = Number(opts.orders);
        const chaos = opts.chaos === true;
        const dbChosen = command.getOptionValueSourceWithGlobals('db') !== 'default';
        const dbFile = path.resolve(io.cwd, dbChosen ? globals.db : DEFAULT_DEMO_DB);
        const mmdFile = diagramPath(dbFile);
        replaceDatabase(dbFile);
        fs.rmSync(mmdFile, { force: true });

        // A key made up for this run: it lives in this process only, as the fake's password.
        const apiKey = `demo-${randomBytes(24).toString('hex')}`;
        out.addSecret(apiKey);
        const campaigns = DEMO_CAMPAIGNS;
        const market = await startFakeMarket({
          apiKey,
          campaigns,
          operationDelayMs: 150,
          // Chaos injects 420s whose -Until is the end of the quota window: keep windows short,
          // and on whole seconds (the header has no milliseconds, so -Until is then exact).
          ...(chaos
            ? { now: () => Math.floor(Date.now() / 1000) * 1000, quotas: Object.fromEntries(MARKET_OPERATIONS.map((op) => [op, { limit: 10_000, windowMs: 2_000 }])) }
            : {}),
        });
        let engine: Engine | undefined;
        try {
          const seeded = generateOrders(campaigns, orderCount, Date.now());
          market.seedOrders(seeded);
          engine = createEngine({
            db: dbFile,
            campaigns,
            api: { baseUrl: market.url, apiKey, timeoutMs: chaos ? 1_500 : 5_000 },
            // The fake's operations end in 150 ms: a 5 s deadline is ample, and it bounds asyncSettleMs
            // (deadline + request timeout), the wait before a LaaS change whose answer was lost is resent.
            pollPolicy: { initialIntervalMs: 100, backoffCoefficient: 1.5, maximumIntervalMs: 500, timeoutMs: 5_000 },
            retry: { initialIntervalMs: 100, maximumIntervalMs: 1_000 },
          });
          const e = engine;
          out.lines([
            `ym-orders demo: ${num(orderCount)} orders, ${campaigns.length} campaigns, a fake Market on loopback${chaos ? ' with chaos' : ''}`,
            ...table([
              ['database', `${dbFile} (new)`],
              ['fake Market', `${market.url} (API key generated for this run, never printed or stored)`],
              ['campaigns', campaigns.map((c) => `${c.model} ${c.campaignId} (business ${c.businessId})`).join(', ')],
            ]),
            '',
          ]);

          // 1. Import through the read side, as a real first run would.
          const perBusiness = new Map<number, number>();
          for (const o of seeded) {
            const b = campaigns.find((c) => c.campaignId === o.campaignId)!.businessId;
            perBusiness.set(b, (perBusiness.get(b) ?? 0) + 1);
          }
          const expectedPages = [...perBusiness.values()].reduce((n, k) => n + Math.ceil(k / ORDERS_PER_PAGE), 0);
          const t1 = Date.now();
          const firstSync = await syncWithProgress(e, out, expectedPages, '1. sync');
          out.line(`1. sync: read ${num(firstSync.seen)} orders in ${num(firstSync.pages)} pages (getBusinessOrders), ${num(firstSync.created)} new, in ${seconds(Date.now() - t1)}`);

          // 2. Seller changes: the legal ones are queued, the mistakes refused before any I/O.
          const plan = planChanges(seeded, campaigns, Date.now());
          const legal = applyGroups(e, plan.legal);
          const mistakes = applyGroups(e, [plan.illegal]);
          const refused = [...legal.refused, ...mistakes.refused];
          const refusedRequests = new Set(refused.map((r) => `${r.orderId}|${r.target}`)).size;
          out.line(`2. requests: ${num(legal.queued.length)} changes queued, ${num(refusedRequests)} refused locally (never sent)`);
          for (const group of plan.legal) {
            const n = legal.queued.filter((q) => q.group === group.name).length;
            const singles = legal.queued.filter((q) => q.group === group.name && q.single).length;
            out.line(`   ${group.name.padEnd(38)} ${padNum(n, 5)} queued${singles ? ` (${singles} with realDeliveryDate, sent one by one)` : ''}`);
          }
          const refusalGroups = groupRefusals(refused);
          out.line(`   ${'refused by explainTransition'.padEnd(38)} ${padNum(refusedRequests, 5)}: ${refusalGroups.map((g) => `${g.code} ×${g.count}`).join(', ')}`);

          // 3. Flush: batches of 30 per campaign, within the limits; LaaS cancellations polled.
          const chaosFaults = chaos ? injectChaos(market) : [];
          if (chaos) out.line(`   chaos on: ${chaosFaults.join(', ')}`);
          const flush: FlushOutcome = await flushWithProgress(e, out, { label: '3. flush', maxWaitMs: 45_000 });
          const fc = flush.counters;
          out.line(
            `3. flush: ${num(flush.openAtStart)} changes in ${seconds(flush.elapsedMs)}: ${num(flush.settled.accepted)} accepted, ${num(flush.settled.rejected)} rejected, ${num(flush.open)} still open (${num(fc.operationsStarted)} via async operations${fc.readBacks ? `, ${num(fc.readBacks)} unknown outcomes settled by read-back` : ''})`,
          );
          if (chaos) market.clearFaults();

          // 4. The Market moves on (couriers pick up packed orders); a second sync reads only what changed.
          const ready = seeded.filter((o) => market.getOrder(o.id)?.substatus === 'READY_TO_SHIP').slice(0, Math.round(orderCount / 20));
          for (const o of ready) market.setOrderStatus(o.id, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED');
          const t4 = Date.now();
          const secondSync = await syncWithProgress(e, out, Math.max(1, Math.ceil((legal.queued.length + ready.length) / ORDERS_PER_PAGE)), '4. sync');
          out.line(`4. sync: couriers picked up ${num(ready.length)} packed orders at the Market; incremental sync read ${num(secondSync.seen)} changed orders in ${num(secondSync.pages)} pages, ${num(secondSync.updated)} updated, in ${seconds(Date.now() - t4)}`);

          // The numbers.
          const summary = e.summary();
          const rows = statusRows(summary);
          const bulkByCampaign = new Map<number, number>();
          let singles = 0;
          for (const q of legal.queued) {
            if (q.single) singles++;
            else bulkByCampaign.set(q.campaignId, (bulkByCampaign.get(q.campaignId) ?? 0) + 1);
          }
          const minimumBulk = [...bulkByCampaign.values()].reduce((n, k) => n + Math.ceil(k / ORDERS_PER_CALL), 0);
          const minimum = minimumBulk + singles;
          const bulkCalls = e.counters.calls.updateOrderStatuses ?? 0;
          const singleCalls = e.counters.calls.updateOrderStatus ?? 0;
          const made = bulkCalls + singleCalls;
          const stats = market.stats();
          const ops = summary.operations;
          const opsEnded = Object.entries(ops).filter(([s]) => s !== 'inProgress').reduce((n, [, k]) => n + k, 0);
          const check = agreement(e, market, seeded);
          fs.writeFileSync(mmdFile, transitionsMermaid(e));
          const elapsedMs = Date.now() - started;
          const c = e.counters;
          const callsVsMin = made === minimum ? 'the minimum' : `${made - minimum > 0 ? '+' : ''}${made - minimum} over the minimum${chaos ? ' (resends after faults)' : ''}`;

          out.lines([
            '',
            `summary (${seconds(elapsedMs)})`,
            `  orders by status (${num(summary.orders)}):`,
            ...describeStatusRows(rows).map((l) => `  ${l}`),
            kv('status-update calls', `${num(made)} made, minimum ${num(minimum)} = ${callsVsMin} (${num(bulkCalls)} bulk calls for ${num(legal.queued.length - singles)} orders, minimum ${num(minimumBulk)} = Σ ceil(orders/30) per campaign; ${num(singleCalls)} single PUTs for ${num(singles)} realDeliveryDate changes)`),
            kv('other calls', `getBusinessOrders ${num(c.calls.getBusinessOrders ?? 0)}, getOperations ${num(c.calls.getOperations ?? 0)}`),
            kv('420 answers', `${num(stats.rateLimited)}`),
            kv('retries/read-backs', `${num(c.deferred)} deferred and retried, ${num(c.uncertain)} unknown outcomes, ${num(c.readBacks)} orders read back`),
            kv('refused locally', `${num(refusedRequests)} request(s), never sent: ${refusalGroups.map((g) => `${g.code} ×${g.count}`).join(', ')}`),
            ...refusalGroups.map((g) => {
              const ex = g.examples[0]!;
              return `      e.g. [${g.code}] order ${ex.orderId} → ${ex.target}: ${shorten(ex.message)}`;
            }),
            kv('operations', `${num(opsEnded)} completed (${Object.entries(ops).map(([s, n]) => `${s} ${num(n)}`).join(', ') || 'none'}), polled with ${num(c.calls.getOperations ?? 0)} getOperations calls`),
            kv('Market check', `illegal requests received ${num(stats.illegalRequests)}, duplicate applications ${num(stats.duplicateApplications)}; engine and Market agree on ${num(check.agree)}/${num(seeded.length)} orders`),
            kv('elapsed', seconds(elapsedMs)),
            kv('database', dbFile),
            kv('diagram', `${mmdFile} (Mermaid: status transitions with counts)`),
            `next: ym-orders --db ${path.relative(io.cwd, dbFile) || dbFile} status | history ${legal.queued[0]?.orderId ?? seeded[0]!.id} | graph --model DBS`,
          ]);
          if (out.json) {
            out.document({
              database: dbFile,
              diagram: mmdFile,
              chaos,
              elapsedMs,
              orders: summary.orders,
              byStatus: rows,
              sync: { first: firstSync, second: secondSync },
              queued: legal.queued.length,
              statusUpdateCalls: { made, minimum, bulk: bulkCalls, minimumBulk, single: singleCalls, singles },
              calls: c.calls,
              rateLimited: stats.rateLimited,
              counters: c,
              refused: { requests: refusedRequests, byCode: refusalGroups },
              operations: ops,
              market: { illegalRequests: stats.illegalRequests, duplicateApplications: stats.duplicateApplications, agree: check.agree, differ: check.differ.slice(0, 20) },
              flush: { open: flush.open, rejections: flush.rejections },
            });
          }
          if (flush.open > 0 || check.differ.length > 0) {
            throw new CliError(
              'DEMO_INCOMPLETE',
              `${flush.open} change(s) still open and ${check.differ.length} order(s) differ from the Market (e.g. ${check.differ.slice(0, 3).join(', ') || '-'}).`,
              EXIT_CODES.failed,
            );
          }
          return 0;
        } finally {
          await engine?.close();
          await market.close();
        }
      }),
    );
}
