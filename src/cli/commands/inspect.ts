// `ym-orders inspect`: the read-only web inspector over the database, on loopback by default,
// until SIGINT or SIGTERM. It opens the store read-only (no engine: nothing to migrate, claim or
// store), so it reads beside engines running on the same database and cannot write to it; it
// takes no campaigns (it would have to store them) and never the API key.

import type { Command } from 'commander';
import { TOKEN_ENV } from '../../inspector/access.js';
import { InspectorError } from '../../inspector/errors.js';
import { DEFAULT_POLL_MS, startInspector } from '../../inspector/server.js';
import { openStore } from '../../store/open-store.js';
import { act, type Cli } from '../command.js';
import { dbPath, requireDatabaseFile } from '../context.js';
import { CliError, EXIT_CODES, usageError } from '../errors.js';
import { parseSeconds } from '../input.js';
import { stopOnSignals } from '../stop-signals.js';

/** `127.0.0.1:8080`, `[::1]:0`, `0.0.0.0:8080` → host and port. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65_535) throw usageError(`--listen "${text}" is not HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free one).`);
  return { host: match[1] ?? match[2]!, port };
}

export function registerInspect(program: Command, cli: Cli): void {
  program
    .command('inspect')
    .description('serve read-only web pages over the database (orders, budgets, rules), live; runs until SIGINT/SIGTERM')
    .option('--listen <host:port>', 'where to listen; an address off loopback needs --token', '127.0.0.1:0')
    .option('--token <token>', `required by every request (at least 16 characters; default $${TOKEN_ENV}); needed off loopback`)
    .option('--poll <seconds>', 'how often open pages look for changes other processes made', String(DEFAULT_POLL_MS / 1000))
    .addHelpText('after', '\nExample:\n  ym-orders --db ./ym-orders.db inspect\n  YM_INSPECT_TOKEN=$(openssl rand -hex 16) ym-orders inspect --listen 0.0.0.0:8080')
    .action(
      act<{ listen: string; token?: string; poll: string }>(cli, async ({ io, out, globals, opts }) => {
        const { host, port } = parseListen(opts.listen);
        const token = opts.token ?? (io.env[TOKEN_ENV] || undefined);
        out.addSecret(token);
        const pollMs = Math.max(100, parseSeconds(opts.poll, '--poll'));
        if (globals.campaign.length > 0 || globals.config !== undefined) {
          throw usageError('inspect reads the campaigns stored in the database and never writes: leave out --campaign and --config.');
        }
        const file = dbPath(globals, io.cwd);
        requireDatabaseFile(file);
        const { store } = await openStore(file, { readOnly: true, now: Date.now() });
        try {
          let inspector;
          try {
            inspector = await startInspector({ store, host, port, pollMs, ...(token !== undefined ? { token } : {}) });
          } catch (error) {
            if (error instanceof InspectorError) throw new CliError(error.code, error.message, EXIT_CODES.usage, { ...error.details });
            throw error;
          }
          const stop = stopOnSignals(out, 'closing the inspector…');
          try {
            out.result(
              () => [
                `inspector on ${inspector.url} for ${store.name} (read-only)`,
                ...(token !== undefined ? [`  every request needs the token: open ${inspector.url}?token=<token> once (a cookie keeps it), or send Authorization: Bearer <token>`] : []),
                '  SIGINT/SIGTERM stops it',
              ],
              () => ({ url: inspector.url, host: inspector.host, port: inspector.port, db: store.name, token: token !== undefined }),
            );
            await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
          } finally {
            stop.dispose();
            await inspector.close();
          }
          return 0;
        } finally {
          await store.close();
        }
      }),
    );
}
