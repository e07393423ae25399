// Runs one measurement in a child process (fresh heap, its own peak RSS) and returns its result.
// The child is bench/worker.ts, compiled to JavaScript (see compiled.ts) unless `runtime: 'tsx'`;
// it imports the benchmark module and calls the named task.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compiledWorker } from './compiled.js';

const TSX_WORKER = fileURLToPath(new URL('../worker.ts', import.meta.url));

export interface ChildTask {
  /** Module under bench/, e.g. `throughput`. */
  readonly module: string;
  readonly task: string;
  readonly args: unknown;
  /** The child is killed after this long, so a run always ends by itself. */
  readonly timeoutMs: number;
  /** Extra node flags, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[];
  /** `compiled` (default): plain node on tsc output; `tsx`: the TypeScript sources via tsx. */
  readonly runtime?: 'compiled' | 'tsx';
}

export type ChildReply = { ok: true; result: unknown } | { ok: false; error: string };

export function runChild<T>(spec: ChildTask): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const tsx = spec.runtime === 'tsx';
    const child = fork(tsx ? TSX_WORKER : compiledWorker(), [], {
      execArgv: [...(tsx ? ['--import', 'tsx'] : []), ...(spec.nodeFlags ?? [])],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let reply: ChildReply | undefined;
    const timer = setTimeout(() => {
      reply = { ok: false, error: `${spec.module}.${spec.task} did not finish within ${spec.timeoutMs} ms; killed` };
      child.kill('SIGKILL');
    }, spec.timeoutMs);
    child.on('message', (message: ChildReply) => {
      reply ??= message;
    });
    child.on('error', (error) => {
      reply ??= { ok: false, error: String(error) };
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (reply?.ok) resolve(reply.result as T);
      else reject(new Error(reply?.error ?? `${spec.module}.${spec.task} exited with ${code ?? signal} and no result`));
    });
    child.send({ module: spec.module, task: spec.task, args: spec.args });
  });
}
