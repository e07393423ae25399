// `ym-orders flush`: send every queued change, read back unknown outcomes and poll async
// operations until nothing is open (or --max-wait passes, or SIGINT/SIGTERM stops it).

import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { withEngine } from '../context.js';
import { describeFlush, flushFailure, flushJson, flushWithProgress } from '../flushing.js';
import { parseSeconds } from '../input.js';
import { stopOnSignals } from '../stop-signals.js';

export function registerFlush(program: Command, cli: Cli): void {
  program
    .command('flush')
    .description('send queued changes to the Market until none is open, with progress; SIGINT/SIGTERM stop it after the batch in flight')
    .option('--max-wait <seconds>', 'give up waiting (for rate-limit windows, retries, operations) after this long', '60')
    .addHelpText('after', '\nExample:\n  YM_API_KEY=... ym-orders flush --json')
    .action(
      act<{ maxWait: string }>(cli, async ({ io, out, globals, opts }) => {
        const maxWaitMs = parseSeconds(opts.maxWait, '--max-wait');
        return withEngine(io, globals, { mustExist: true, api: 'flush' }, async (engine) => {
          const stop = stopOnSignals(out);
          let outcome;
          try {
            outcome = await flushWithProgress(engine, out, { maxWaitMs, stop });
          } finally {
            stop.dispose();
          }
          out.result(() => describeFlush(outcome), () => flushJson(outcome));
          const failure = flushFailure(outcome);
          if (failure) throw failure;
          return 0;
        });
      }),
    );
}
