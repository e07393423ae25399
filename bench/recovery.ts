// Benchmark 5: recovery after a restart. A database holds 100 000 queued changes and 1 000
// whose outcome is unknown (sent, no answer recorded). A fresh process opens it and flushes;
// we time from just before opening the database to the first request the fake Market sees
// (a read-back of the uncertain orders comes first, by design), and to the first status-update
// batch. Both clocks are Date.now() on the same machine.

import { createEngine } from '../src/engine/engine.js';
import type { CampaignConfig } from '../src/engine/commands.js';
import { runChild } from './lib/child.js';
import { API_KEY, startBenchMarket, UNLIMITED_LIMITS } from './lib/market.js';
import { ms, num, verdict, type Row } from './lib/report.js';
import { makeTempDir, removeDir } from './lib/tmp.js';

const CAMPAIGN: CampaignConfig = { campaignId: 501, businessId: 51, model: 'FBS' };
const BATCH = 10_000;
export const RECOVERY_TARGET_MS = 3_000;

interface Sizes {
  readonly queued: number;
  readonly uncertain: number;
}

/** Orders 1..queued+uncertain with a queued change each; the last `uncertain` are then sent with no answer. */
async function prepare(args: { path: string } & Sizes): Promise<{ ms: number; outbox: Record<string, number> }> {
  const t = performance.now();
  const engine = await createEngine({ db: args.path, campaigns: [CAMPAIGN], sqlite: { synchronous: 'NORMAL' } });
  const total = args.queued + args.uncertain;
  for (let from = 1; from <= total; from += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, total - from + 1) }, (_, i) => from + i);
    await engine.trackOrders(ids.map((orderId) => ({ orderId, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED' })));
    await engine.requestChanges(ids.map((orderId) => ({ orderId, status: 'PROCESSING', substatus: 'READY_TO_SHIP' })));
  }
  // The dispatcher's own steps, sent and then no answer, as a process that died mid-call leaves them.
  const now = Date.now();
  await engine.store.transaction(async (tx) => {
    for (let orderId = args.queued + 1; orderId <= total; orderId++) {
      await engine.orders.apply(tx, orderId, { type: 'DISPATCH.SENT', at: now }, now);
      await engine.orders.apply(tx, orderId, { type: 'DISPATCH.UNKNOWN', at: now, reason: 'benchmark: the process stopped before the answer' }, now);
    }
  });
  const outbox = (await engine.stats()).outbox;
  await engine.close();
  return { ms: performance.now() - t, outbox };
}

interface Recovered {
  /** Date.now() just before createEngine. */
  readonly openingAt: number;
  readonly openedAt: number;
  readonly firstPassDoneAt: number;
  readonly readBacks: number;
  readonly sent: number;
}

async function recover(args: { path: string; url: string }): Promise<Recovered> {
  const openingAt = Date.now();
  const engine = await createEngine({ db: args.path, campaigns: [CAMPAIGN], api: { baseUrl: args.url, apiKey: API_KEY }, limits: UNLIMITED_LIMITS });
  const openedAt = Date.now();
  try {
    const report = await engine.flush();
    return { openingAt, openedAt, firstPassDoneAt: Date.now(), readBacks: report.counters.readBacks, sent: report.counters.ordersSent };
  } finally {
    await engine.close();
  }
}

export const tasks = { prepare, recover };

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const sizes: Sizes = options.quick ? { queued: 10_000, uncertain: 100 } : { queued: 100_000, uncertain: 1_000 };
  const dir = makeTempDir('recovery');
  const market = await startBenchMarket([CAMPAIGN]);
  try {
    const path = `${dir}/orders.db`;
    const prepared = await runChild<{ ms: number; outbox: Record<string, number> }>({ module: 'recovery', task: 'prepare', args: { path, ...sizes }, timeoutMs: 300_000 });
    if (prepared.outbox.queued !== sizes.queued || prepared.outbox.uncertain !== sizes.uncertain) {
      throw new Error(`prepared outbox is ${JSON.stringify(prepared.outbox)}, expected ${sizes.queued} queued and ${sizes.uncertain} uncertain`);
    }
    market.seedOrders(
      Array.from({ length: sizes.queued + sizes.uncertain }, (_, i) => ({ id: i + 1, campaignId: CAMPAIGN.campaignId, status: 'PROCESSING', substatus: 'STARTED' })),
    );
    const spawnedAt = Date.now();
    const r = await runChild<Recovered>({ module: 'recovery', task: 'recover', args: { path, url: market.url }, timeoutMs: 120_000 });
    const first = market.requests[0];
    const firstBatch = market.requests.find((q) => q.endpoint === 'updateOrderStatuses');
    if (!first || !firstBatch) throw new Error('the recovered engine sent nothing');
    const toFirst = first.receivedAt - r.openingAt;
    const toBatch = firstBatch.receivedAt - r.openingAt;
    const what = `${num(sizes.queued)} queued + ${num(sizes.uncertain)} uncertain`;
    return [
      {
        id: '5',
        bench: 'Recovery',
        metric: `open DB (${what}) → first request at the fake (${first.endpoint}, a read-back); open itself ${ms(r.openedAt - r.openingAt)}`,
        value: ms(toFirst),
        baseline: `from process spawn ${ms(first.receivedAt - spawnedAt)}`,
        ratio: '—',
        target: `< ${num(RECOVERY_TARGET_MS / 1000)} s`,
        verdict: verdict(toFirst < RECOVERY_TARGET_MS),
        goal: 5,
      },
      {
        id: '5',
        bench: 'Recovery',
        metric: `open DB → first status-update batch; first pass: ${num(r.readBacks)} read back, ${num(r.sent)} sent in ${ms(r.firstPassDoneAt - r.openingAt)} (setup took ${ms(prepared.ms)})`,
        value: ms(toBatch),
        baseline: `from process spawn ${ms(firstBatch.receivedAt - spawnedAt)}`,
        ratio: '—',
        target: `< ${num(RECOVERY_TARGET_MS / 1000)} s`,
        verdict: verdict(toBatch < RECOVERY_TARGET_MS),
        goal: 5,
      },
    ];
  } finally {
    await market.close();
    removeDir(dir);
  }
}
