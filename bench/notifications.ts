// Benchmark 7: the notification receiver (issue 12, "Numbers"). The Market posts notifications at
// a steady 1 000 a second over loopback; we measure how many the receiver acknowledges per second
// and the p99 time from a request's planned send to its answer, against a bare node:http handler
// that parses the body and inserts one row into a SQLite file (WAL, synchronous FULL, as the
// engine's store), in the same run, alternating rounds.
//
// Each server runs in a child process of its own (bench/lib/steered-child.ts), the load in this
// one. Sends follow a fixed schedule (request i leaves at start + i ms) and latency is counted
// from the planned time, so a server that falls behind is charged for the queue it causes rather
// than hiding it (no coordinated omission). Bodies are distinct ORDER_STATUS_UPDATED notifications
// (so none is a duplicate) with one ORDER_CREATED in ten, for orders of a configured campaign.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import type { CampaignConfig } from '../src/engine/commands.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { NotificationReceiver } from '../src/notifications/receiver.js';
import { createNotificationHttpHandler } from '../src/notifications/http.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { awaitGo, startSteeredChild } from './lib/steered-child.js';
import { median, percentile, sidesInStep } from './lib/stats.js';
import { makeTempDir, removeDir } from './lib/tmp.js';

const CAMPAIGN: CampaignConfig = { campaignId: 701, businessId: 71, model: 'FBS' };
const RATE_PER_S = 1_000;
/** Connections the load keeps open: enough that a 1 000/s schedule never waits for a free one while the server keeps up. */
const CONNECTIONS = 32;
export const ACK_RATIO_TARGET = 0.8;

type ServerKind = 'engine' | 'bare';
const SIDES: Record<ServerKind, string> = { engine: 'ym-orders receiver', bare: 'bare node:http + 1 INSERT' };

interface ServeArgs {
  readonly kind: ServerKind;
  readonly path: string;
  readonly port: number;
}

interface ServeResult {
  readonly stored: number;
}

/** A server on 127.0.0.1:`port` until the parent stops it: the engine's receiver, or the bare baseline. */
async function serve(args: ServeArgs): Promise<ServeResult> {
  let handler: http.RequestListener;
  let stored: () => number;
  let close: () => Promise<void>;
  if (args.kind === 'engine') {
    const store = SqliteStore.open(args.path);
    const receiver = new NotificationReceiver({ store, campaigns: new Map([[CAMPAIGN.campaignId, CAMPAIGN]]), clock: Date.now, name: 'bench' });
    handler = createNotificationHttpHandler({ receiver });
    stored = () => 0;
    close = async () => {
      const counts = await store.read((tx) => tx.inbox.counts());
      stored = () => counts.pending + counts.done + counts.ignored;
      await store.close();
    };
  } else {
    const db = new Database(args.path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, body TEXT NOT NULL, received_at INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO inbox (type, body, received_at) VALUES (?, ?, ?)');
    handler = (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const body = JSON.parse(text) as { notificationType: string };
        insert.run(body.notificationType, text, Date.now());
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ version: '1', name: 'bare', time: new Date().toISOString() }));
      });
    };
    stored = () => (db.prepare('SELECT count(*) AS n FROM inbox').get() as { n: number }).n;
    close = async () => {
      const n = stored();
      stored = () => n;
      db.close();
    };
  }
  const server = http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(args.port, '127.0.0.1', resolve));
  const stopped = await awaitGo();
  await new Promise<void>((resolve) => stopped.addEventListener('abort', () => resolve(), { once: true }));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await close();
  return { stored: stored() };
}

export const tasks = { serve };

function body(i: number, at: number): string {
  const orderId = 71_000_001 + i;
  const time = new Date(at).toISOString();
  return JSON.stringify(
    i % 10 === 9
      ? { notificationType: 'ORDER_CREATED', campaignId: CAMPAIGN.campaignId, orderId, createdAt: time, items: [{ offerId: `sku-${i % 97}`, count: 1 }] }
      : { notificationType: 'ORDER_STATUS_UPDATED', campaignId: CAMPAIGN.campaignId, orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP', updatedAt: time },
  );
}

/** A port free a moment ago, for the child to listen on (it has no way to tell us one it picked). */
async function freePort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

interface Round {
  readonly acked: number;
  readonly failed: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly stored: number;
}

/** One round against one server: `count` notifications at RATE_PER_S, each timed from its planned send. */
async function round(kind: ServerKind, dir: string, n: number, count: number): Promise<Round> {
  const port = await freePort();
  const child = startSteeredChild<ServeResult>({ module: 'notifications', task: 'serve', args: { kind, path: `${dir}/${kind}-${n}.db`, port }, timeoutMs: 120_000 });
  try {
    await child.ready;
    child.go();
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 });
    const latencies: number[] = [];
    let failed = 0;
    const start = performance.now() + 20;
    const wall = Date.now() + 20;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const planned = start + (i * 1_000) / RATE_PER_S;
      const wait = planned - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      sends.push(
        pool
          .request({ method: 'POST', path: '/notification', headers: { 'content-type': 'application/json' }, body: body(n * count + i, wall + i) })
          .then(async (res) => {
            await res.body.text();
            if (res.statusCode === 200) latencies.push(performance.now() - planned);
            else failed++;
          })
          .catch(() => {
            failed++;
          }),
      );
    }
    await Promise.all(sends);
    const elapsed = performance.now() - start;
    await pool.close();
    child.stop();
    const { stored } = await child.result;
    return { acked: latencies.length, failed, perSecond: (latencies.length * 1_000) / elapsed, p50: median(latencies), p99: percentile(latencies, 99), stored };
  } catch (error) {
    child.kill();
    throw error;
  }
}

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const count = options.quick ? 3_000 : 10_000;
  const rounds = options.quick ? 2 : 4;
  const dir = makeTempDir('notifications');
  try {
    const results: Record<ServerKind, Round[]> = { engine: [], bare: [] };
    for (let k = 0; k < rounds; k++) {
      for (const kind of sidesInStep(k, 'engine' as ServerKind, 'bare' as ServerKind)) results[kind].push(await round(kind, dir, k, count));
    }
    for (const kind of ['engine', 'bare'] as const) {
      for (const r of results[kind]) {
        if (r.failed > 0 || r.stored !== count) throw new Error(`${SIDES[kind]}: ${r.failed} of ${count} not acknowledged, ${r.stored} stored`);
      }
    }
    const med = (kind: ServerKind, key: 'perSecond' | 'p50' | 'p99') => median(results[kind].map((r) => r[key]));
    const rate = med('engine', 'perSecond') / med('bare', 'perSecond');
    const what = `${num(count)} notifications at ${num(RATE_PER_S)}/s over loopback, ${CONNECTIONS} connections, median of ${rounds} rounds`;
    return [
      {
        id: '7a',
        bench: 'Notifications',
        metric: `acknowledged per second (${what}; each stored before its 200)`,
        value: `${num(med('engine', 'perSecond'))}/s`,
        baseline: `${num(med('bare', 'perSecond'))}/s (${SIDES.bare})`,
        ratio: rate.toFixed(2),
        target: `≥ ${ACK_RATIO_TARGET} of the bare handler`,
        verdict: verdict(rate >= ACK_RATIO_TARGET),
      },
      {
        id: '7b',
        bench: 'Notifications',
        metric: `p99 time to acknowledge, from the planned send (p50 ${ms(med('engine', 'p50'))} vs ${ms(med('bare', 'p50'))})`,
        value: ms(med('engine', 'p99')),
        baseline: `${ms(med('bare', 'p99'))} (${SIDES.bare})`,
        ratio: (med('engine', 'p99') / med('bare', 'p99')).toFixed(2),
        target: '< 1 s (PING\'s timeout; 10 s for the rest)',
        verdict: verdict(med('engine', 'p99') < 1_000),
      },
    ];
  } finally {
    removeDir(dir);
  }
}
