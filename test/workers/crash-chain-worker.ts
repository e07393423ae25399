// Chain crash worker: `node --import tsx test/workers/crash-chain-worker.ts <dbfile> <marketUrl>`
// (API key in YM_CHAIN_WORKER_KEY). Opens the engine on the SQLite file against the fake Market
// the parent (test/chain-crash.test.ts) runs, flushes until every change has settled and prints
// `done <open rows>`. The parent SIGKILLs it mid-chain and starts it again on the same file: all
// a restart needs is in the file (snapshots with their chains, outbox rows), nothing in memory.

import fs from 'node:fs';
import { createEngine } from '../../src/engine/engine.js';

const [file, url] = process.argv.slice(2);
const apiKey = process.env.YM_CHAIN_WORKER_KEY;
if (!file || !url || !apiKey) {
  process.stderr.write('usage: YM_CHAIN_WORKER_KEY=… crash-chain-worker.ts <dbfile> <marketUrl>\n');
  process.exit(2);
}
const campaigns = JSON.parse(process.env.YM_CHAIN_WORKER_CAMPAIGNS ?? '[]') as { campaignId: number; businessId: number; model: 'DBS' }[];
// A short request timeout makes a short lease (3×): a send orphaned by a kill is recovered soon after the restart.
const engine = await createEngine({ db: file, campaigns, api: { baseUrl: url, apiKey, timeoutMs: 500 }, random: () => 0 });
fs.writeSync(1, 'start\n');
const report = await engine.flush({ untilIdle: true, maxWaitMs: 30_000 });
await engine.close();
fs.writeSync(1, `done ${report.open}\n`);
