// The `ym-orders` command line. `bin/ym-orders.js` calls main(); `tsx src/cli/main.ts ...`
// runs it too. Exit codes: 0 done, 1 a change refused or failed at the Market, 2 bad usage or
// input (see errors.ts); every error prints `error [CODE]: message` on stderr.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { collect, type Cli } from './command.js';
import { API_KEY_ENV, API_URL_ENV, DB_ENV, DEFAULT_API_URL, type CliIo } from './context.js';
import { CLI_ERROR_CODES, EXIT_CODES, errorCode, errorMessage, exitCodeFor } from './errors.js';
import { Output } from './output.js';
import { registerCancel } from './commands/cancel.js';
import { registerCancellations } from './commands/cancellations.js';
import { registerDemo } from './commands/demo.js';
import { registerFakeMarket } from './commands/fake-market.js';
import { registerFlush } from './commands/flush.js';
import { registerGraph } from './commands/graph.js';
import { registerHistory } from './commands/history.js';
import { registerImport } from './commands/import.js';
import { registerInspect } from './commands/inspect.js';
import { registerLimits } from './commands/limits.js';
import { registerList } from './commands/list.js';
import { registerRun } from './commands/run.js';
import { registerServe } from './commands/serve.js';
import { registerSetStatus } from './commands/set-status.js';
import { registerShip } from './commands/ship.js';
import { registerStatus } from './commands/status.js';
import { registerSync } from './commands/sync.js';

function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ym-orders') return pkg.version ?? '0.0.0';
    } catch {
      // not here; look one level up
    }
    dir = path.dirname(dir);
  }
  return '0.0.0';
}

export function buildProgram(cli: Cli): Command {
  const program = new Command('ym-orders')
    .description('Order statuses for Yandex Market sellers (FBS, Express, DBS, LaaS): import, queue legal changes, send them within the API limits, inspect.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => cli.io.stdout.write(s),
      writeErr: (s) => cli.io.stderr.write(s),
      outputError: () => undefined, // main prints `error [USAGE]: ...` itself
    })
    .showSuggestionAfterError(true)
    .option('--db <path|url>', `the database: a SQLite file, or a postgres:// URL (default: $${DB_ENV}, else ./ym-orders.db)`, './ym-orders.db')
    .option('--api-url <url>', `the Market Partner API (default: $${API_URL_ENV}, else the config file's "apiUrl", else ${DEFAULT_API_URL}); the key comes from $${API_KEY_ENV} only`)
    .option('--config <file>', 'JSON: {"apiUrl"?, "campaigns": [{"campaignId", "businessId", "model"}]}')
    .option('--campaign <campaignId:businessId:MODEL>', 'a campaign, e.g. 21000101:1100001:FBS (repeatable; remembered in the database)', collect)
    .option('--json', 'print one JSON document instead of text')
    .option('--api-timeout <seconds>', 'how long one Market call may take; a send still unanswered then is read back before any resend', '10')
    .option('--verbose', 'more detail on errors (stack traces); never the API key')
    .addHelpText(
      'after',
      `\nExit codes: 0 done; 1 a change was refused or failed at the Market; 2 bad usage or input.\nThe API key is read from $${API_KEY_ENV} and never printed. \`npm start\` runs \`ym-orders demo\`.`,
    );
  registerDemo(program, cli);
  registerImport(program, cli);
  registerShip(program, cli);
  registerCancel(program, cli);
  registerCancellations(program, cli);
  registerSetStatus(program, cli);
  registerFlush(program, cli);
  registerRun(program, cli);
  registerServe(program, cli);
  registerSync(program, cli);
  registerStatus(program, cli);
  registerHistory(program, cli);
  registerList(program, cli);
  registerLimits(program, cli);
  registerGraph(program, cli);
  registerInspect(program, cli);
  registerFakeMarket(program, cli);
  return program;
}

/** Commander quotes the offending argument; never echo a value given as `--option=value`. */
function usageMessage(error: CommanderError): string {
  let message = error.message.replace(/^error: /, '');
  message = message.replace(/'(--?[\w-]+)=[^']*'/g, "'$1=…'");
  if (error.code === 'commander.unknownOption' && /--api-key|--token|--key/.test(message)) {
    message += `. The API key is read only from the ${API_KEY_ENV} environment variable, never from a flag.`;
  }
  return `${message} (see ym-orders --help)`;
}

export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** Runs the CLI with `args` (without node and the script) and returns the exit code. */
export async function main(args: readonly string[], io: CliIo = processIo()): Promise<number> {
  const cli: Cli = { io, exitCode: 0 };
  const program = buildProgram(cli);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return cli.exitCode;
  } catch (error) {
    const out = cli.out ?? new Output(io, { json: false, verbose: args.includes('--verbose') }, [io.env[API_KEY_ENV]]);
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT_CODES.ok;
      if (error.code === 'commander.help') {
        out.error(CLI_ERROR_CODES.usage, 'no command given; pick one of the commands listed above.');
        return EXIT_CODES.usage;
      }
      out.error(CLI_ERROR_CODES.usage, usageMessage(error));
      return EXIT_CODES.usage;
    }
    out.error(errorCode(error), errorMessage(error));
    if (out.verbose && error instanceof Error && error.stack) out.note(error.stack);
    return exitCodeFor(error);
  }
}

// Run when executed directly (e.g. `tsx src/cli/main.ts demo`); bin/ym-orders.js calls main() itself.
const invokedAs = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (invokedAs === fileURLToPath(import.meta.url) || invokedAs === fileURLToPath(import.meta.url).replace(/\.js$/, '.ts')) {
  process.exitCode = await main(process.argv.slice(2));
}
