// The machine a run was measured on: CPU, cores, memory, Node and SQLite versions.

import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memory: string;
  readonly node: string;
  readonly sqlite: string;
  readonly betterSqlite3: string;
  readonly xstate: string;
  readonly platform: string;
}

function packageVersion(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * The SQLite that better-sqlite3 compiles in, read from the amalgamation's header it ships:
 * asking the database (`SELECT sqlite_version()`) would be SQL outside src/store/sqlite/.
 */
function bundledSqliteVersion(): string {
  try {
    const header = readFileSync(new URL('../../node_modules/better-sqlite3/deps/sqlite3/sqlite3.h', import.meta.url), 'utf8');
    return /^#define SQLITE_VERSION\s+"([^"]+)"/m.exec(header)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    sqlite: bundledSqliteVersion(),
    betterSqlite3: packageVersion('better-sqlite3'),
    xstate: packageVersion('xstate'),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export function machineLine(m: MachineInfo): string {
  return `CPU ${m.cpu} × ${m.cores} cores, ${m.memory} RAM, ${m.platform}; Node ${m.node}, SQLite ${m.sqlite} (better-sqlite3 ${m.betterSqlite3}), xstate ${m.xstate}`;
}
