// Tells a ym-orders database file from any other by its first bytes, without opening it with
// SQLite (which would create a missing file, or a -wal beside it).

import fs from 'node:fs';
import { APPLICATION_ID } from './open-database.js';

/** The 100-byte SQLite header: its magic string, and the application_id at offset 68. */
const MAGIC = 'SQLite format 3\u0000';
const APPLICATION_ID_OFFSET = 68;
const HEADER_BYTES = APPLICATION_ID_OFFSET + 4;

/**
 * Whether `path` may be deleted and created anew as a ym-orders database: nothing is there, the
 * file is empty, or it is an SQLite file with our application_id. False for anything else
 * (another application's database, any other file, a directory).
 */
export function isReplaceableDatabase(path: string): boolean {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
  if (!stat.isFile()) return false;
  if (stat.size === 0) return true;
  const header = Buffer.alloc(HEADER_BYTES);
  const fd = fs.openSync(path, 'r');
  let read: number;
  try {
    read = fs.readSync(fd, header, 0, HEADER_BYTES, 0);
  } finally {
    fs.closeSync(fd);
  }
  return read === HEADER_BYTES && header.toString('latin1', 0, MAGIC.length) === MAGIC && header.readUInt32BE(APPLICATION_ID_OFFSET) === APPLICATION_ID;
}
