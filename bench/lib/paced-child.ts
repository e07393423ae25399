// A benchmark child that stops at marks of its own and lets the parent act at each one before
// it goes on: for a figure the parent measures on itself over part of the child's work (bench 9:
// the parent's CPU, which is the fake Market's, over one side's turns only). The child calls
// mark(label); the parent's onMark(label) runs, then the child's mark() resolves. Like child.ts,
// the child is bench/worker.ts on compiled JavaScript, with a deadline.

import { fork } from 'node:child_process';
import type { ChildReply } from './child.js';
import { compiledWorker } from './compiled.js';

const MARK = 'paced:mark';
const ACK = 'paced:ack';

interface MarkMessage {
  readonly type: typeof MARK;
  readonly seq: number;
  readonly label: string;
}

interface AckMessage {
  readonly type: typeof ACK;
  readonly seq: number;
}

export interface PacedTask {
  /** Module under bench/ and its task, as for runChild. */
  readonly module: string;
  readonly task: string;
  readonly args: unknown;
  /** The child is killed after this long, so a run always ends by itself. */
  readonly timeoutMs: number;
}

const isMark = (message: unknown): message is MarkMessage => (message as MarkMessage | null)?.type === MARK;
const isAck = (message: unknown): message is AckMessage => (message as AckMessage | null)?.type === ACK;

/** Runs the task; `onMark` runs synchronously at each of the child's marks, while the child waits. */
export function runPacedChild<T>(spec: PacedTask, onMark: (label: string) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(compiledWorker(), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let reply: ChildReply | undefined;
    const timer = setTimeout(() => {
      reply = { ok: false, error: `${spec.module}.${spec.task} did not finish within ${spec.timeoutMs} ms; killed` };
      child.kill('SIGKILL');
    }, spec.timeoutMs);
    child.on('message', (message: ChildReply | MarkMessage) => {
      if (!isMark(message)) {
        reply ??= message;
        return;
      }
      try {
        onMark(message.label);
      } catch (error) {
        // The parent's measurement failed: stop the child rather than let it run on unmeasured.
        reply ??= { ok: false, error: `onMark(${message.label}): ${error instanceof Error ? error.message : String(error)}` };
        child.kill('SIGKILL');
        return;
      }
      if (child.connected) child.send({ type: ACK, seq: message.seq } satisfies AckMessage);
    });
    child.on('error', (error) => {
      reply ??= { ok: false, error: String(error) };
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (reply?.ok) resolve(reply.result as T);
      else reject(new Error(reply?.ok === false ? reply.error : `${spec.module}.${spec.task} exited with ${code ?? signal} and no result`));
    });
    child.send({ module: spec.module, task: spec.task, args: spec.args });
  });
}

let nextSeq = 0;
const waiting = new Map<number, () => void>();
let listening = false;

/** The child side: tells the parent `label` and resolves once the parent's onMark has run. */
export function mark(label: string): Promise<void> {
  if (!listening) {
    listening = true;
    process.on('message', (message) => {
      if (!isAck(message)) return;
      waiting.get(message.seq)?.();
      waiting.delete(message.seq);
    });
    // A parent that went away leaves no one to answer: end instead of waiting forever.
    process.once('disconnect', () => process.exit(1));
  }
  const seq = nextSeq++;
  return new Promise((resolve) => {
    waiting.set(seq, resolve);
    process.send!({ type: MARK, seq, label } satisfies MarkMessage);
  });
}
