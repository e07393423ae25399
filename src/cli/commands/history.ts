// `ym-orders history <id>`: the order's journal as a timeline, and its path through the
// machine (`--mermaid` prints a Mermaid state diagram of the statuses it visited).

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { act, type Cli } from '../command.js';
import { withEngine } from '../context.js';
import { label } from '../../format.js';
import { parseOrderId } from '../input.js';
import { usageError } from '../errors.js';
import { orderPathMermaid, timeline, visitedStatuses } from '../order-path.js';

export function registerHistory(program: Command, cli: Cli): void {
  program
    .command('history')
    .description("an order's journal as a timeline, with its path through the states")
    .argument('[id]', 'order id')
    .option('--order <id>', 'the order id, as an option (the same as the argument)')
    .option('--mermaid', 'print only a Mermaid state diagram of the statuses the order visited')
    .option('--out <file>', 'also write the Mermaid diagram to this file')
    .addHelpText('after', '\nExample:\n  ym-orders history 48000000001\n  ym-orders history --order 48000000001 --mermaid > order.mmd')
    .action(
      act<{ mermaid?: boolean; out?: string; order?: string }, [string | undefined]>(cli, async ({ io, out, globals, opts }, idArg) => {
        if (idArg !== undefined && opts.order !== undefined && idArg !== opts.order) {
          throw usageError(`history takes one order: got ${idArg} and --order ${opts.order}`);
        }
        const idText = idArg ?? opts.order;
        if (idText === undefined) throw usageError('history needs an order id: ym-orders history <id> (or --order <id>)');
        const orderId = parseOrderId(idText, '<id>');
        return withEngine(io, globals, { mustExist: true }, async (engine) => {
          const order = await engine.getOrder(orderId);
          const rows = await engine.history(orderId);
          const mermaid = orderPathMermaid(orderId, rows);
          let written: string | undefined;
          if (opts.out !== undefined) {
            written = path.resolve(io.cwd, opts.out);
            fs.writeFileSync(written, mermaid);
          }
          if (out.json) {
            out.document({
              order,
              path: visitedStatuses(rows),
              journal: rows.map((r) => ({ ...r, event: JSON.parse(r.event) as unknown })),
              mermaid,
              ...(written ? { out: written } : {}),
            });
          } else if (opts.mermaid) {
            out.raw(mermaid);
          } else {
            out.lines([
              `order ${orderId} (${order.model}, campaign ${order.campaignId}) now ${label(order.status, order.substatus)}, change ${order.change}; ${rows.length} journal entr${rows.length === 1 ? 'y' : 'ies'}`,
              ...timeline(rows),
              `path: ${visitedStatuses(rows).join(' → ')}`,
              ...(written ? [`wrote the Mermaid diagram to ${written}`] : ['(--mermaid prints this path as a Mermaid state diagram)']),
            ]);
          }
          return 0;
        });
      }),
    );
}
