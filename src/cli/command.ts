// The glue between commander and a command's body: resolves the global options and the
// output, and turns the body's result into the process exit code.

import type { Command } from 'commander';
import { globalsOf, outputFor, type CliIo, type GlobalOptions } from './context.js';
import type { Output } from './output.js';

export interface Cli {
  readonly io: CliIo;
  exitCode: number;
  /** The output of the running command, so main can print its errors in the same mode. */
  out?: Output;
}

export interface CommandContext<O> {
  readonly io: CliIo;
  readonly out: Output;
  readonly globals: GlobalOptions;
  readonly opts: O;
  readonly command: Command;
}

/** Wraps a command body for `.action()`: positional arguments first, then the context. */
export function act<O = Record<string, unknown>, P extends unknown[] = unknown[]>(
  cli: Cli,
  body: (ctx: CommandContext<O>, ...positional: P) => Promise<number | void>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const opts = args[args.length - 2] as O;
    const positional = args.slice(0, -2) as P;
    const globals = globalsOf(command, cli.io.env);
    const out = outputFor(cli.io, globals);
    cli.out = out;
    cli.exitCode = (await body({ io: cli.io, out, globals, opts, command }, ...positional)) ?? 0;
  };
}

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
