// Crash worker: `node --import tsx test/workers/crash-worker.ts <dbfile> <seed> <total>`.
// Applies commands 1..total of the deterministic stream of <seed> to <dbfile>, one committed
// transaction per command, and prints `ack <n> <json>` to stdout right after each commit: the
// journal rows and outbox rows that transaction wrote. The stream position is kept in the
// `cursors` table inside the same transaction, so a restarted worker resumes exactly after the
// last committed command, and the file ends up byte-for-byte what an uninterrupted run writes.
// The parent (test/crash.test.ts) kills it with SIGKILL at random moments.

import fs from 'node:fs';
import { createEngine } from '../../src/engine/engine.js';
import { CAMPAIGNS, randomCommand, rng, runCommand, T0, type Command } from '../helpers/engine-fixtures.js';

export const CRASH_CURSOR = 'crash-worker';
export const CRASH_STREAM_ORDERS = 12;

const [file, seedArg, totalArg] = process.argv.slice(2);
if (!file || !seedArg || !totalArg) {
  process.stderr.write('usage: crash-worker.ts <dbfile> <seed> <total>\n');
  process.exit(2);
}
const seed = Number(seedArg);
const total = Number(totalArg);

let now = T0;
const engine = createEngine({ db: file, campaigns: CAMPAIGNS, clock: () => now });
const db = engine.store.db;
const maxSeq = db.prepare('SELECT COALESCE(MAX(seq), 0) AS n FROM journal').pluck();
const journalSince = db.prepare('SELECT order_id, row_version, event_type FROM journal WHERE seq > ? ORDER BY seq').raw();
const outboxTouched = db.prepare('SELECT idempotency_key, state FROM outbox WHERE updated_at = ? ORDER BY id').raw();

const start = Number(engine.store.cursors.get(CRASH_CURSOR) ?? 0);
const random = rng(seed);
const commands: Command[] = [];
for (let n = 1; n <= total; n++) commands.push(randomCommand(random, { orders: CRASH_STREAM_ORDERS }));
fs.writeSync(1, `start ${start}\n`);

for (let n = start + 1; n <= total; n++) {
  now = T0 + n * 1_000;
  const cmd = commands[n - 1]!;
  const ack = engine.store.write(() => {
    const seqBefore = maxSeq.get() as number;
    const result = runCommand(engine, cmd, now, n);
    engine.store.cursors.set(CRASH_CURSOR, String(n), now);
    return { r: result.ok ? 'ok' : result.code, j: journalSince.all(seqBefore), k: outboxTouched.all(now) };
  });
  fs.writeSync(1, `ack ${n} ${JSON.stringify(ack)}\n`);
}
engine.close();
fs.writeSync(1, `done ${total}\n`);
