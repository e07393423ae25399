// `ym-orders ship [ids...]`: queue PROCESSING/READY_TO_SHIP (packed and labelled) for orders.

import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { queueAndReport } from '../changes.js';

export function registerShip(program: Command, cli: Cli): void {
  program
    .command('ship')
    .description('queue PROCESSING/READY_TO_SHIP for orders (ids as arguments, --file, or stdin)')
    .argument('[ids...]', 'order ids')
    .option('--file <path>', 'read ids from a file (- for stdin), one or more per line')
    .option('--all-or-nothing', 'queue nothing if any change is refused')
    .option('--flush', 'send at once (needs YM_API_KEY), as `ym-orders flush` would')
    .addHelpText('after', '\nExample:\n  ym-orders ship 48000000001 48000000002\n  cut -d, -f1 packed.csv | ym-orders ship --flush')
    .action(
      act<{ file?: string; allOrNothing?: boolean; flush?: boolean }, [string[]]>(cli, (ctx, ids) =>
        queueAndReport(ctx, ids, { status: 'PROCESSING', substatus: 'READY_TO_SHIP' }),
      ),
    );
}
