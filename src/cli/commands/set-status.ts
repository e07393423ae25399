// `ym-orders set-status <id> <STATUS> [SUBSTATUS]`: queue any seller change the rules allow,
// e.g. DBS deliveries with a real delivery date, or USER_UNREACHABLE with call evidence.

import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { inputError, usageError } from '../errors.js';
import { parseOrderId, readTextFile } from '../input.js';
import { queueAndReport, type ChangeOptions, type ChangeTarget } from '../changes.js';

const VALUE = /^[A-Z0-9_]{1,100}$/;

export function registerSetStatus(program: Command, cli: Cli): void {
  program
    .command('set-status')
    .description('queue a seller status change for one order')
    .argument('<id>', 'order id')
    .argument('<STATUS>', 'target status, e.g. DELIVERED')
    .argument('[SUBSTATUS]', 'target substatus, e.g. DELIVERY_SERVICE_DELIVERED')
    .option('--real-delivery-date <YYYY-MM-DD>', 'DBS, to PICKUP or DELIVERED: the day it really happened (not in the future)')
    .option('--call-evidence <json file>', 'for CANCELLED USER_UNREACHABLE: {"buyerTimeZone": "Europe/Moscow", "calls": [{"startedAt": "2025-05-12T09:00:00+03:00", "connectedSeconds": 7}, ...]}')
    .option('--flush', 'send at once (needs YM_API_KEY), as `ym-orders flush` would')
    .addHelpText('after', '\nExample:\n  ym-orders set-status 48000000007 DELIVERED DELIVERY_SERVICE_DELIVERED --real-delivery-date 2025-05-11')
    .action(
      act<ChangeOptions & { realDeliveryDate?: string; callEvidence?: string }, [string, string, string | undefined]>(cli, (ctx, idText, statusText, substatusText) => {
        const orderId = parseOrderId(idText, '<id>');
        const status = statusText.toUpperCase();
        const substatus = substatusText?.toUpperCase();
        if (!VALUE.test(status)) throw usageError(`<STATUS> "${statusText}" is not a Market status such as PROCESSING.`);
        if (substatus !== undefined && !VALUE.test(substatus)) throw usageError(`[SUBSTATUS] "${substatusText}" is not a Market substatus such as READY_TO_SHIP.`);
        const target: ChangeTarget = { status, ...(substatus ? { substatus } : {}) };
        const date = ctx.opts.realDeliveryDate;
        if (date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(date)) throw usageError(`--real-delivery-date "${date}" is not YYYY-MM-DD.`);
        let callEvidence: ChangeTarget['callEvidence'];
        if (ctx.opts.callEvidence !== undefined) {
          const text = readTextFile(ctx.opts.callEvidence, ctx.io.cwd, 'call evidence file');
          try {
            callEvidence = JSON.parse(text) as ChangeTarget['callEvidence'];
          } catch (error) {
            throw inputError(`Call evidence file ${ctx.opts.callEvidence} is not JSON: ${(error as Error).message}`);
          }
        }
        return queueAndReport(
          ctx,
          [],
          { ...target, ...(date !== undefined ? { realDeliveryDate: date } : {}), ...(callEvidence !== undefined ? { callEvidence } : {}) },
          [orderId],
        );
      }),
    );
}
