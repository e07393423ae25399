// Where the CPU went during a measurement: the whole machine's busy time (all cores, os.cpus())
// and the PostgreSQL server's (every `postgres` process, from /proc; Linux only, else unknown).
// With the engine processes' own process.cpuUsage() this says what a figure is bound by. The
// server's time is every backend's, other clients' on the same server included.

import fs from 'node:fs';
import os from 'node:os';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

export interface CpuSample {
  readonly at: number;
  /** Busy time summed over all cores, ms. */
  readonly machineBusyMs: number;
  /** Per PostgreSQL process id, its user + system time so far, ms; undefined without /proc. */
  readonly postgresMs: ReadonlyMap<number, number> | undefined;
}

function postgresProcesses(): Map<number, number> | undefined {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const times = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue;
      // Fields after the name: state is the 3rd field of the line, utime the 14th, stime the 15th.
      const fields = stat.slice(close + 2).split(' ');
      times.set(Number(pid), ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return times;
}

export function sampleCpu(): CpuSample {
  const machineBusyMs = os.cpus().reduce((ms, cpu) => ms + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq, 0);
  return { at: performance.now(), machineBusyMs, postgresMs: postgresProcesses() };
}

export interface CpuUse {
  readonly wallMs: number;
  readonly cores: number;
  readonly machineBusyMs: number;
  /** CPU time of the server processes between the samples (a backend started meanwhile counts from 0); undefined without /proc. */
  readonly postgresMs: number | undefined;
}

export function cpuBetween(start: CpuSample, end: CpuSample): CpuUse {
  let postgresMs: number | undefined;
  if (start.postgresMs && end.postgresMs) {
    postgresMs = 0;
    for (const [pid, ms] of end.postgresMs) postgresMs += ms - (start.postgresMs.get(pid) ?? 0);
  }
  return { wallMs: end.at - start.at, cores: os.cpus().length, machineBusyMs: end.machineBusyMs - start.machineBusyMs, postgresMs };
}

/** `machine 96% of 2 cores busy: engines 55%, PostgreSQL 30%, …`: each share of all cores' time. */
export function describeCpu(use: CpuUse, parts: readonly { readonly label: string; readonly ms: number }[]): string {
  const capacity = use.wallMs * use.cores;
  const pct = (ms: number) => `${Math.round((ms / capacity) * 100)}%`;
  const known = [...parts, ...(use.postgresMs !== undefined ? [{ label: 'PostgreSQL', ms: use.postgresMs }] : [])];
  const rest = use.machineBusyMs - known.reduce((ms, p) => ms + p.ms, 0);
  return `machine ${pct(use.machineBusyMs)} of ${use.cores} cores busy: ${[...known, { label: 'other', ms: Math.max(0, rest) }].map((p) => `${p.label} ${pct(p.ms)}`).join(', ')}`;
}
