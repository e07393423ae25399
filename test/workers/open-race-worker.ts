// Open race worker: `node --import tsx test/workers/open-race-worker.ts <dir> <files> <proc>`.
// After its start line (test/workers/start-line.ts) gives it the instant startAt, it opens
// <dir>/f<i>.db for i = 0..files-1 at startAt + i*15 ms; process 1 adds a lag that sweeps
// 0–2 ms, so two of these create the same new files at every relative timing within a typical
// open. Prints `done <json>` with the outcomes.

import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { waitForStartLine } from './start-line.js';

const [dir, filesArg, procArg] = process.argv.slice(2);
const proc = Number(procArg ?? 0);
const startAt = waitForStartLine();
const now = () => performance.timeOrigin + performance.now();
const outcomes: Record<string, number> = {};
const firstError: string[] = [];
for (let i = 0; i < Number(filesArg); i++) {
  const at = startAt + i * 15 + (proc === 1 ? (i % 9) * 0.25 : 0);
  while (now() < at) {
    /* spin: both processes open file i together */
  }
  let outcome = 'ok';
  try {
    await SqliteStore.open(path.join(dir!, `f${i}.db`), { now: 0 }).close();
  } catch (error) {
    const e = error as { code?: string; details?: { sqliteCode?: string }; message?: string };
    outcome = `${e.code ?? 'THROWN'}${e.details?.sqliteCode ? `/${e.details.sqliteCode}` : ''}`;
    if (firstError.length === 0) firstError.push(`f${i}.db: ${e.message ?? String(error)}`);
  }
  outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
}
fs.writeSync(1, `done ${JSON.stringify({ outcomes, firstError: firstError[0] ?? null })}\n`);
