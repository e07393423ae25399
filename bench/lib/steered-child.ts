// A benchmark child the parent lets go and stops, for measurements of several processes at once:
// each opens what it needs, says it is ready and waits; the parent starts the clock and lets all
// of them go at the same moment, then stops them when it sees the work done, and each sends back
// its result. Like child.ts, the child is bench/worker.ts on compiled JavaScript with a deadline;
// the task calls awaitGo() (the child side of this file) once it is ready.

import { fork, type ChildProcess } from 'node:child_process';
import type { ChildReply } from './child.js';
import { compiledWorker } from './compiled.js';

const READY = 'steered:ready';
const GO = 'steered:go';
const STOP = 'steered:stop';

export interface SteeredTask {
  /** Module under bench/ and its task, as for runChild. */
  readonly module: string;
  readonly task: string;
  readonly args: unknown;
  /** The child is killed after this long, so a run always ends by itself. */
  readonly timeoutMs: number;
}

export interface SteeredChild<T> {
  /** Resolves when the task called awaitGo(); rejects if the child ended first. */
  readonly ready: Promise<void>;
  go(): void;
  /** Aborts the signal awaitGo() gave the task; the task then returns its result. */
  stop(): void;
  readonly result: Promise<T>;
  /** SIGKILL, for cleaning up after a failure. */
  kill(): void;
}

export function startSteeredChild<T>(spec: SteeredTask): SteeredChild<T> {
  const child: ChildProcess = fork(compiledWorker(), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let reply: ChildReply | undefined;
  let markReady: () => void = () => undefined;
  let failReady: (error: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  const timer = setTimeout(() => {
    reply = { ok: false, error: `${spec.module}.${spec.task} did not finish within ${spec.timeoutMs} ms; killed` };
    child.kill('SIGKILL');
  }, spec.timeoutMs);
  const result = new Promise<T>((resolve, reject) => {
    child.on('message', (message: ChildReply | typeof READY) => {
      if (message === READY) markReady();
      else reply ??= message;
    });
    child.on('error', (error) => {
      reply ??= { ok: false, error: String(error) };
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const error = new Error(reply?.ok === false ? reply.error : `${spec.module}.${spec.task} exited with ${code ?? signal} and no result`);
      failReady(error);
      if (reply?.ok) resolve(reply.result as T);
      else reject(error);
    });
  });
  // A child that fails before it is ready rejects both; whoever awaits only one must not see the other unhandled.
  result.catch(() => undefined);
  ready.catch(() => undefined);
  const tell = (message: string) => {
    if (child.connected) child.send(message);
  };
  child.send({ module: spec.module, task: spec.task, args: spec.args });
  return { ready, go: () => tell(GO), stop: () => tell(STOP), result, kill: () => child.kill('SIGKILL') };
}

/**
 * The child side: tells the parent this task is ready, resolves when the parent lets it go, with
 * a signal that aborts when the parent stops it (or disconnects).
 */
export function awaitGo(): Promise<AbortSignal> {
  const stopped = new AbortController();
  return new Promise((resolve) => {
    process.on('message', (message) => {
      if (message === GO) resolve(stopped.signal);
      else if (message === STOP) stopped.abort();
    });
    // A parent that went away (killed, crashed) stops this child too, instead of leaving it running.
    process.once('disconnect', () => {
      stopped.abort();
      resolve(stopped.signal);
    });
    process.send!(READY);
  });
}
