// SIGINT/SIGTERM for the commands that talk to the Market for a while (flush, run, ship
// --flush): the first signal aborts the work, which stops starting requests and lets those in
// flight end (each within --api-timeout) and be stored; a second one exits at once.

import type { Output } from './output.js';

export interface StopSignals {
  readonly signal: AbortSignal;
  /** The signal that stopped the work, if one came. */
  readonly received: NodeJS.Signals | undefined;
  /** Removes the handlers (call in `finally`). */
  dispose(): void;
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** Exit code after a second signal: 128 + SIGINT, as shells report an interrupted command. */
const FORCED_EXIT_CODE = 130;

/** `what` says what happens next, e.g. "stopping after the batch in flight…". */
export function stopOnSignals(out: Output, what = 'stopping after the batch in flight…'): StopSignals {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals): void => {
    if (received === undefined) {
      received = signal;
      if (out.interactive) out.raw('\r\x1b[K');
      out.line(`${signal}: ${what}`);
      controller.abort();
    } else {
      out.note(`${signal} again: exiting now; an interrupted send is read back on the next run.`);
      process.exit(FORCED_EXIT_CODE);
    }
  };
  for (const s of STOP_SIGNALS) process.on(s, stop);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose() {
      for (const s of STOP_SIGNALS) process.off(s, stop);
    },
  };
}
