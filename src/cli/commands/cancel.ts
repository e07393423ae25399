// `ym-orders cancel [ids...] --reason <SUBSTATUS>`: queue CANCELLED with a reason (default SHOP_FAILED).

import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { usageError } from '../errors.js';
import { queueAndReport, type ChangeOptions } from '../changes.js';

export function registerCancel(program: Command, cli: Cli): void {
  program
    .command('cancel')
    .description('queue CANCELLED/<reason> for orders (ids as arguments, --file, or stdin)')
    .argument('[ids...]', 'order ids')
    .option('--reason <SUBSTATUS>', 'the cancellation substatus; DBS shops may also give buyer reasons such as USER_CHANGED_MIND', 'SHOP_FAILED')
    .option('--file <path>', 'read ids from a file (- for stdin), one or more per line')
    .option('--all-or-nothing', 'queue nothing if any change is refused')
    .option('--flush', 'send at once (needs YM_API_KEY), as `ym-orders flush` would')
    .addHelpText('after', '\nExample:\n  ym-orders cancel 48000000003 --reason SHOP_FAILED')
    .action(
      act<ChangeOptions & { reason: string }, [string[]]>(cli, (ctx, ids) => {
        const reason = ctx.opts.reason.trim().toUpperCase();
        if (!/^[A-Z0-9_]{1,100}$/.test(reason)) throw usageError(`--reason "${ctx.opts.reason}" is not a substatus such as SHOP_FAILED.`);
        return queueAndReport(ctx, ids, { status: 'CANCELLED', substatus: reason });
      }),
    );
}
