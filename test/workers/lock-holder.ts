// Lock holder: `node --import tsx test/workers/lock-holder.ts <dbfile> <holdMs>`.
// Takes the database's write lock (BEGIN IMMEDIATE), prints `locked`, holds it for <holdMs>,
// commits and prints `released`: another process's writes must wait (busy_timeout), not fail.

import fs from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';

const [file, holdArg] = process.argv.slice(2);
const db = new BetterSqlite3(file!, { fileMustExist: true });
db.exec('BEGIN IMMEDIATE');
fs.writeSync(1, 'locked\n');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(holdArg));
db.exec('COMMIT');
db.close();
fs.writeSync(1, 'released\n');
