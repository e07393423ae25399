// Lock holder: `node --import tsx test/workers/lock-holder.ts <dbfile> <holdMs | stdin>`.
// Takes the database's write lock (BEGIN IMMEDIATE), prints `locked <epoch ms>`, holds it for
// <holdMs> (or, with `stdin`, until a line arrives on stdin, STDIN_HOLD_CAP_MS at most), then
// prints `committing <epoch ms>`, commits and prints `released`: another process's writes must
// wait (busy_timeout), not fail.

import fs from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';

/** A parent stuck in a write that never gives up still gets the lock back, and its test an answer. */
const STDIN_HOLD_CAP_MS = 60_000;

const [file, holdArg] = process.argv.slice(2);
const db = new BetterSqlite3(file!, { fileMustExist: true });
db.exec('BEGIN IMMEDIATE');
fs.writeSync(1, `locked ${Date.now()}\n`);
if (holdArg === 'stdin') {
  await new Promise<void>((resolve) => {
    const cap = setTimeout(resolve, STDIN_HOLD_CAP_MS);
    process.stdin.once('data', () => (clearTimeout(cap), resolve()));
    process.stdin.once('end', () => (clearTimeout(cap), resolve()));
  });
  process.stdin.destroy();
} else {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(holdArg));
}
fs.writeSync(1, `committing ${Date.now()}\n`);
db.exec('COMMIT');
db.close();
fs.writeSync(1, 'released\n');
