// Crash worker: `node --import tsx test/workers/crash-worker.ts <dbfile> <seed> <total>`.
// Applies commands 1..total of the deterministic stream of <seed> to <dbfile> through the engine
// (each command one committed engine transaction), keeps the stream position in the `cursors`
// table right after it (see crash-stream.ts for how a kill between the two is told apart), and
// prints `ack <n> <json>` once both are in: the journal rows and outbox rows the command wrote.
// So a restarted worker resumes exactly after the last committed command, and the file ends up
// what an uninterrupted run writes. The parent (test/crash.test.ts) kills it with SIGKILL at
// random moments.

import fs from 'node:fs';
import { createEngine } from '../../src/engine/engine.js';
import type { OutboxRow } from '../../src/store/outbox.js';
import { CAMPAIGNS, randomCommand, rng, runCommand, T0, type Command } from '../helpers/engine-fixtures.js';
import { commandTime, CRASH_CURSOR, CRASH_ORDER_IDS, CRASH_STREAM_ORDERS, streamPosition } from './crash-stream.js';

const [file, seedArg, totalArg] = process.argv.slice(2);
if (!file || !seedArg || !totalArg) {
  process.stderr.write('usage: crash-worker.ts <dbfile> <seed> <total>\n');
  process.exit(2);
}
const seed = Number(seedArg);
const total = Number(totalArg);

/** The orders a command may write to (it writes to no other). */
function ordersOf(cmd: Command): number[] {
  switch (cmd.kind) {
    case 'track':
      return cmd.orders.map((o) => o.orderId);
    case 'request':
      return [cmd.request.orderId];
    case 'requestMany':
      return cmd.requests.map((r) => r.orderId);
    case 'observe':
    case 'dispatch':
      return [cmd.orderId];
  }
}

let now = T0;
const engine = await createEngine({ db: file, campaigns: CAMPAIGNS, clock: () => now });
const { cursor, position } = await streamPosition(engine.store);
if (position > cursor) {
  // The last command committed but its position did not: write it as that command would have.
  now = commandTime(position);
  await engine.store.transaction((tx) => tx.cursors.set(CRASH_CURSOR, String(position), now));
}
// The journal's last sequence number: what a command appends comes after it.
let lastSeq = await engine.store.read(async (tx) => {
  let seq = 0;
  for (const id of CRASH_ORDER_IDS) for (const j of await tx.journal.forOrder(id)) seq = Math.max(seq, j.seq);
  return seq;
});

const random = rng(seed);
const commands: Command[] = [];
for (let n = 1; n <= total; n++) commands.push(randomCommand(random, { orders: CRASH_STREAM_ORDERS }));
fs.writeSync(1, `start ${position}\n`);

for (let n = position + 1; n <= total; n++) {
  now = commandTime(n);
  const cmd = commands[n - 1]!;
  const result = await runCommand(engine, cmd, now, n);
  const written = await engine.store.read(async (tx) => {
    const journal: [number, number, number, string][] = [];
    for (const id of new Set(ordersOf(cmd))) {
      for (const j of await tx.journal.forOrder(id)) if (j.seq > lastSeq) journal.push([j.seq, j.order_id, j.row_version, j.event_type]);
    }
    // Rows the command wrote or changed carry its instant.
    const outbox: OutboxRow[] = (await tx.outbox.open(1_000_000)).filter((r) => r.updated_at === now);
    for (const state of ['accepted', 'rejected', 'superseded'] as const) outbox.push(...(await tx.outbox.settledSince(state, now, 1_000_000)));
    return { journal: journal.sort((a, b) => a[0] - b[0]), outbox: outbox.sort((a, b) => a.id - b.id) };
  });
  await engine.store.transaction((tx) => tx.cursors.set(CRASH_CURSOR, String(n), now));
  lastSeq = Math.max(lastSeq, ...written.journal.map(([seq]) => seq));
  const ack = {
    r: result.ok ? 'ok' : result.code,
    j: written.journal.map(([, o, v, t]) => [o, v, t]),
    k: written.outbox.map((r) => [r.idempotency_key, r.state]),
  };
  fs.writeSync(1, `ack ${n} ${JSON.stringify(ack)}\n`);
}
await engine.close();
fs.writeSync(1, `done ${total}\n`);
