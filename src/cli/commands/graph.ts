// `ym-orders graph`: the machines as Mermaid diagrams, or as JSON machine configs that XState's
// createMachine() and Stately's editor load back (machines/visualizer-config.ts); `--model` draws
// the seller rules with that model's edges highlighted.

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { orderMachine } from '../../../machines/order-machine.js';
import { operationMachine } from '../../../machines/operation-machine.js';
import { rulesToMermaid, toMermaid } from '../../../machines/mermaid.js';
import { SELLER_RULES } from '../../../machines/rules.js';
import { toMachineConfig } from '../../../machines/visualizer-config.js';
import type { FulfilmentModel } from '../../../machines/statuses.js';
import { act, type Cli } from '../command.js';
import { MODELS } from '../context.js';
import { usageError } from '../errors.js';

const MACHINES = ['order', 'operation', 'rules'] as const;
type MachineName = (typeof MACHINES)[number];
const FORMATS = ['mermaid', 'json'] as const;
type Format = (typeof FORMATS)[number];

function oneOf<T extends string>(values: readonly T[], value: string, option: string): T {
  const v = value.toLowerCase();
  const found = values.find((x) => x.toLowerCase() === v);
  if (!found) throw usageError(`${option} "${value}" is not one of ${values.join(', ')}.`);
  return found;
}

/** The diagram or machine config of a machine, as text. */
export function render(machine: MachineName, format: Format, model?: FulfilmentModel): string {
  if (format === 'mermaid') {
    if (machine === 'rules') return rulesToMermaid(model);
    return toMermaid(machine === 'order' ? orderMachine : operationMachine);
  }
  if (machine === 'rules') {
    const rules = model ? SELLER_RULES.filter((r) => r.models.includes(model)) : SELLER_RULES;
    return `${JSON.stringify({ model: model ?? null, rules }, null, 2)}\n`;
  }
  return `${JSON.stringify(toMachineConfig(machine === 'order' ? orderMachine : operationMachine), null, 2)}\n`;
}

export function registerGraph(program: Command, cli: Cli): void {
  program
    .command('graph')
    .description("draw a machine: Mermaid, or a JSON machine config that XState's createMachine() and Stately's editor load")
    .option('--machine <name>', `order | operation | rules (default: order, or rules with --model)`)
    .option('--model <MODEL>', `with the rules: highlight the seller edges of ${MODELS.join(' | ')}`)
    .option('--format <format>', 'mermaid | json', 'mermaid')
    .option('--out <file>', 'write to this file instead of stdout')
    .addHelpText(
      'after',
      "\nExample:\n  ym-orders graph --model DBS --out dbs-rules.mmd\n  ym-orders graph --machine order --format json > order-machine.json\n\nIn Stately's editor (stately.ai/editor): a new machine, Import, then paste createMachine(<the file's JSON>).",
    )
    .action(
      act<{ machine?: string; model?: string; format: string; out?: string }>(cli, async ({ io, out, opts }) => {
        const model = opts.model === undefined ? undefined : (oneOf(MODELS, opts.model, '--model') as FulfilmentModel);
        const machine = opts.machine === undefined ? (model ? 'rules' : 'order') : oneOf(MACHINES, opts.machine, '--machine');
        if (model && machine !== 'rules') throw usageError(`--model highlights seller rules; it goes with --machine rules, not --machine ${machine}.`);
        const format = oneOf(FORMATS, opts.format, '--format');
        const text = render(machine, format, model);
        let written: string | undefined;
        if (opts.out !== undefined) {
          written = path.resolve(io.cwd, opts.out);
          fs.writeFileSync(written, text);
        }
        if (out.json) {
          out.document({
            machine,
            model: model ?? null,
            format,
            ...(written ? { out: written, bytes: Buffer.byteLength(text) } : {}),
            ...(format === 'json' ? { content: JSON.parse(text) as unknown } : { content: text }),
          });
        } else if (written) {
          out.line(`wrote the ${machine} ${format === 'mermaid' ? 'diagram' : machine === 'rules' ? 'JSON' : 'machine config'}${model ? ` (${model} highlighted)` : ''} to ${written}`);
        } else {
          out.raw(text);
        }
        return 0;
      }),
    );
}
