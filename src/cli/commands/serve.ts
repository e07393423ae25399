// `ym-orders serve`: the Market's push notifications and the whole run loop in one process. The
// receiver answers POST /notification once its inbox row is committed and rings the loop, which
// applies status updates, reads the orders notifications name, sends queued changes, polls
// operations and syncs now and then, as `run` does. GET /health says whether the database answers
// and what is waiting. The log is JSON lines on stdout, never a secret. SIGINT/SIGTERM: no new
// connection is accepted, requests in flight finish, the loop stops after the batch in flight,
// exit 0; a second signal exits at once.

import type { Command } from 'commander';
import type { Engine, FlushReport } from '../../engine/engine.js';
import { isMarketError } from '../../market/errors.js';
import { createNotificationHttpHandler } from '../../notifications/http.js';
import { NOTIFICATION_LIMITS } from '../../notifications/schemas.js';
import { act, collect, type Cli } from '../command.js';
import { outputFor, withEngine } from '../context.js';
import { errorCode, errorMessage } from '../errors.js';
import { startServer } from '../serve/http-server.js';
import { createJsonLog, databaseSecrets } from '../serve/json-log.js';
import { DEFAULT_LISTEN, MARKET_ALLOW_ALIAS, parseServeOptions, type ServeOptionsText } from '../serve/options.js';
import { stopOnSignals } from '../stop-signals.js';

/** The fields of the loop's report a log line is written for when one of them changed. */
function progressOf(report: FlushReport): Record<string, unknown> {
  const { open, inboxPending, readsPending, counters, reads, halted, lastErrors, waitingFor } = report;
  return { open, inboxPending, readsPending, counters, reads, halted, lastErrors, waitingFor };
}

export function registerServe(program: Command, cli: Cli): void {
  program
    .command('serve')
    .description('receive the Market\'s push notifications over HTTP and run the loop (apply, read, send, poll, sync) in one process, until SIGINT/SIGTERM')
    .option('--listen <host:port>', 'where to listen for POST /notification and GET /health (port 0: any free one)', DEFAULT_LISTEN)
    .option('--allow <cidr>', `only these networks may post (repeatable; "${MARKET_ALLOW_ALIAS}": the Market's own); default: anyone who reaches the port`, collect)
    .option('--trusted-proxy <ip>', 'a reverse proxy in front (repeatable): from it, the client is read from X-Forwarded-For', collect)
    .option('--max-body <bytes>', `the largest notification accepted, larger ones answered 413 (default ${NOTIFICATION_LIMITS.maxBodyBytes})`)
    .option('--sync <seconds>', 'sync from the Market this often, for what no notification said; 0 turns syncing off', '300')
    .option('--idle <seconds>', 'sleep this long at most when there is nothing to do (a stored notification or a change queued here wakes the loop at once)')
    .addHelpText(
      'after',
      '\nLogs are JSON lines on stdout; the first is {"msg":"listening","url":…}.\nExample:\n  YM_API_KEY=... ym-orders --campaign 21000101:1100001:FBS serve --listen 0.0.0.0:8080 --allow market',
    )
    .action(
      act<ServeOptionsText>(cli, async ({ io, out, globals, opts }) => {
        const settings = parseServeOptions(opts);
        for (const secret of databaseSecrets(globals.db)) out.addSecret(secret);
        const log = createJsonLog(out);
        const notifications = settings.maxBodyBytes !== undefined ? { notifications: { maxBodyBytes: settings.maxBodyBytes } } : {};
        return withEngine(io, globals, { api: 'serve', engine: notifications }, async (engine, api) => {
          const started = Date.now();
          const handler = createNotificationHttpHandler({
            // The engine stores what it is sent and wakes its own loop (run, below) for what it stored.
            receiver: { maxBodyBytes: settings.maxBodyBytes ?? NOTIFICATION_LIMITS.maxBodyBytes, handle: (body) => engine.handleNotification(body) },
            ...(settings.allow !== undefined ? { allow: settings.allow } : {}),
            trustedProxies: settings.trustedProxies,
            health: async () => {
              const report = await engine.stats();
              return {
                status: 'ok',
                db: engine.store.name,
                inboxPending: report.inboxPending,
                readsPending: report.readsPending,
                open: report.open,
                uptimeS: Math.floor((Date.now() - started) / 1000),
              };
            },
            log,
          });
          // The first signal is logged here; stopOnSignals' own line is for a terminal.
          const stop = stopOnSignals(outputFor(io, { json: true, verbose: globals.verbose }));
          try {
            const server = await startServer(handler, settings.host, settings.port);
            const syncing = settings.syncMs > 0 && engine.campaigns.size > 0;
            log({
              msg: 'listening',
              url: server.url,
              db: engine.store.name,
              campaigns: [...engine.campaigns.keys()],
              apiUrl: api?.baseUrl,
              allow: settings.allow ?? null,
              trustedProxies: settings.trustedProxies,
              syncIntervalMs: syncing ? settings.syncMs : null,
            });
            stop.signal.addEventListener('abort', () => log({ msg: 'stopping', signal: stop.received, requestsInFlight: server.inFlight }), { once: true });
            let lastProgress = '';
            let storeDownSince: number | undefined;
            const loop = engine
              .run({
                signal: stop.signal,
                ...(settings.idleMs !== undefined ? { idleMs: settings.idleMs } : {}),
                ...(syncing ? { syncIntervalMs: settings.syncMs } : {}),
                onProgress: (report) => {
                  if (storeDownSince !== undefined) {
                    log({ msg: 'storeBack', downMs: Date.now() - storeDownSince });
                    storeDownSince = undefined;
                  }
                  const progress = JSON.stringify(progressOf(report));
                  if (progress !== lastProgress) log({ msg: 'progress', ...(JSON.parse(progress) as Record<string, unknown>) });
                  lastProgress = progress;
                },
                onStoreError: (error, retryInMs) => {
                  storeDownSince ??= Date.now();
                  log({ msg: 'storeError', code: error.code, message: errorMessage(error), retryInMs });
                },
                onSyncProgress: (p) => {
                  if (p.created > 0 || p.updated > 0) log({ msg: 'sync', ...p });
                },
                // As in run: the Market unreachable is no reason to stop; a refused key is.
                onSyncError: (error) => {
                  if (error.code === 'MARKET_AUTH') throw error;
                  log({ msg: 'syncError', code: errorCode(error), message: errorMessage(error), market: isMarketError(error) });
                },
              })
              .then(
                (report) => ({ report }),
                (error: unknown) => ({ error }),
              );
            // Either a signal or the loop failing ends the service; the server closes in both cases.
            const stopped = stop.signal.aborted ? Promise.resolve() : new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
            await Promise.race([loop, stopped]);
            const [closed, ended] = await Promise.all([server.close(), loop]);
            if ('error' in ended) {
              log({ msg: 'failed', code: errorCode(ended.error), message: errorMessage(ended.error) });
              throw ended.error;
            }
            log({ msg: 'stopped', elapsedMs: Date.now() - started, requestsCut: closed.cut, notifications: engine.notificationStats(), ...progressOf(ended.report) });
            return 0;
          } finally {
            stop.dispose();
          }
        });
      }),
    );
}
