// One process of `ym-orders demo --processes <n>`, forked by demo/processes.ts (built to
// dist/src/cli/demo/worker.js, so plain node runs it). It gets the engine settings over the IPC
// channel, never argv or the environment (where `ps` would show the database password and the
// API key), opens an engine of its own, with its own lease owner, on the demo's database, says
// `ready`, and runs the run loop until SIGTERM, or until the parent goes away. What it did is in
// its counters, which the engine saves under its owner every round.

import { createEngine, type Engine } from '../../engine/engine.js';
import { isYmOrdersError } from '../../errors.js';
import { demoEngineOptions, type DemoEngineSettings } from './engine-options.js';

export type WorkerMessage =
  | { readonly type: 'ready'; readonly owner: string }
  | { readonly type: 'failed'; readonly code: string; readonly message: string };

/** The longest idle sleep: the fake's operations end in 150 ms, and the demo waits for them. */
const IDLE_MS = 100;

const stop = new AbortController();

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(message, undefined, {}, () => resolve());
  });
}

async function work(settings: DemoEngineSettings): Promise<void> {
  let engine: Engine | undefined;
  try {
    engine = await createEngine(demoEngineOptions(settings));
    await send({ type: 'ready', owner: engine.owner });
    await engine.run({ signal: stop.signal, idleMs: IDLE_MS });
  } catch (error) {
    process.exitCode = 1;
    await send({ type: 'failed', code: isYmOrdersError(error) ? error.code : 'INTERNAL', message: error instanceof Error ? error.message : String(error) });
  } finally {
    await engine?.close();
    // The open channel alone would keep this process alive.
    if (process.connected) process.disconnect();
  }
}

if (process.send === undefined) {
  process.stderr.write('worker.js is a process of `ym-orders demo --processes <n>`; run that instead.\n');
  process.exitCode = 2;
} else {
  // SIGINT too: Ctrl-C in a terminal signals the whole process group, the demo's children included.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop.abort());
  process.on('disconnect', () => stop.abort());
  process.once('message', (settings) => void work(settings as DemoEngineSettings));
}
